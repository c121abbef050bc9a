// Pictures of a command's result: --html, --svg and --png files, and colours in terminal tables.

import ArgumentParser
import Foundation
import LoupeModels
import LoupeRender

/// Whether terminal tables are drawn in colour (set from --no-color, NO_COLOR and whether stdout is a terminal).
nonisolated(unsafe) var terminalColors = TerminalColor.enabled()

/// The files a command can draw its result into, shared by every analysis command with a picture, and the
/// files its numbers can go to for work in Python (`--npy`, `--safetensors`).
struct FigureOptions: ParsableArguments {
    @Option(name: .long, help: "Write the result as a self-contained HTML page (inline CSS/JS, no network).")
    var html: String?

    @Option(name: .long, help: "Write the result as an SVG heatmap.")
    var svg: String?

    @Option(name: .long, help: "Write the result as a PNG heatmap.")
    var png: String?

    @Flag(name: .long, help: "No colours in terminal tables (also: NO_COLOR=1, or output not a terminal).")
    var noColor = false

    @Option(name: .long, help: "Write the result's numbers to a NumPy .npy file (float32; the main tensor when the result has several).")
    var npy: String?

    @Option(name: .long, help: "Write every tensor of the result to a .safetensors file (float32), with axis names, labels and settings in its metadata.")
    var safetensors: String?

    mutating func validate() throws {
        terminalColors = TerminalColor.enabled(disabled: noColor)
    }

    /// Whether any file was asked for.
    var wanted: Bool { html != nil || svg != nil || png != nil }

    /// Writes the requested files: `heatmap` as SVG and PNG (built only when asked for; `nil` when the
    /// result has no heatmap, which makes --svg/--png an error saying `why`), and `views` as one HTML page.
    func write(heatmap: () throws -> Heatmap?, views: () throws -> [any HTMLView], title: String,
               metadata: [(String, String)] = [], noHeatmap why: String = "this result has no heatmap; use --html") throws {
        if svg != nil || png != nil {
            guard let map = try heatmap() else { throw ValidationError("--svg/--png: \(why)") }
            if let svg { try map.write(to: svg); note("wrote \(svg)") }
            if let png { try map.writePNG(to: png); note("wrote \(png)") }
        }
        if let html {
            var report = Report(title: title, metadata: metadata)
            for view in try views() { report.add(view) }
            try report.write(to: html)
            note("wrote \(html)")
        }
    }

    func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}

extension LoadedModel {
    /// `0 The`, `1  cat`, …: position and token text, for axis labels.
    func positionLabels(_ tokens: [Int]) -> [String] { tokens.enumerated().map { "\($0.offset) \(tokenText($0.element))" } }
}

/// A progress bar on standard error for a library call that reports `(done, total)`: the bar starts
/// with the first report, which brings the total.
/// Reports may come from worker threads (patching sweeps): a lock keeps them in order.
final class ProgressReporter: @unchecked Sendable {
    let label: String
    private let lock = NSLock()
    private var bar: ProgressBar?
    private let began = ProgressBar.now()

    init(_ label: String) { self.label = label }

    func update(_ done: Int, _ total: Int, extra: String = "") {
        lock.lock(); defer { lock.unlock() }
        if bar?.total != total { bar = ProgressBar(total: total, label: label, startedAt: began) }
        bar?.update(completed: done, extra: extra)
    }

    func finish() { lock.lock(); defer { lock.unlock() }; bar?.finish() }
}
