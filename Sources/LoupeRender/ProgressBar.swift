// A progress bar for long work: fraction done, rate, and time left, redrawn in place with \r on standard
// error (so it never mixes with results on standard output). When standard error is not a terminal (a log
// file, a job scheduler, a pipe) work that lasts over two seconds prints the same text as plain lines every
// ten seconds and once at the end. LOUPE_PROGRESS=bar|lines|off chooses explicitly.

import Foundation

/// Progress of `total` units of work, drawn on one line of standard error.
///
///     let bar = ProgressBar(total: tokens.count, label: "neurons")
///     for … { bar.update(completed: done, extra: "layer 3") }
///     bar.finish()
public final class ProgressBar: @unchecked Sendable {
    public let total: Int
    public let label: String
    /// How progress is shown.
    public enum Style: Sendable, Equatable {
        /// One line redrawn in place (a terminal).
        case bar
        /// Plain lines, the first after `quiet` seconds of work, then every `every` seconds, and one at the end
        /// when any was written (logs).
        case lines(quiet: Double, every: Double)
        case off
    }
    public let style: Style
    /// Whether anything is shown.
    public var isEnabled: Bool { style != .off }
    /// Whether the bar is redrawn in place (on a terminal).
    public var drawsInPlace: Bool { style == .bar }

    private let write: (String) -> Void
    private let clock: () -> Double
    private let start: Double
    private var lastDraw = -Double.infinity
    private var lastWidth = 0
    private var linesWritten = 0
    private var completed = 0
    private var extra = ""
    private var finished = false
    private let lock = NSLock()

    /// Progress on standard error: a bar on a terminal (or when `force`d), lines otherwise.
    /// `startedAt` (seconds of `ProgressBar.now()`) dates the start of the work when it began before the bar.
    public convenience init(total: Int, label: String, force: Bool = false, startedAt: Double? = nil) {
        self.init(total: total, label: label, style: force ? .bar : ProgressBar.standardErrorStyle(),
                  write: { FileHandle.standardError.write(Data($0.utf8)) }, clock: ProgressBar.now, startedAt: startedAt)
    }

    /// A bar (or nothing) writing through `write`, timed by `clock` (seconds), for tests and other outputs.
    public convenience init(total: Int, label: String, enabled: Bool, write: @escaping (String) -> Void, clock: @escaping () -> Double,
                            startedAt: Double? = nil) {
        self.init(total: total, label: label, style: enabled ? .bar : .off, write: write, clock: clock, startedAt: startedAt)
    }

    public init(total: Int, label: String, style: Style, write: @escaping (String) -> Void, clock: @escaping () -> Double,
                startedAt: Double? = nil) {
        self.total = max(0, total); self.label = label; self.style = style
        self.write = write; self.clock = clock; start = startedAt ?? clock()
    }

    /// The style for standard error: `LOUPE_PROGRESS` (bar, lines, off) when set, else a bar on a terminal and
    /// lines (after 2 s, every 10 s) elsewhere.
    public static func standardErrorStyle(environment: [String: String] = ProcessInfo.processInfo.environment,
                                          terminal: Bool = isatty(STDERR_FILENO) != 0) -> Style {
        switch environment["LOUPE_PROGRESS"]?.lowercased() {
        case "bar": return .bar
        case "off", "none", "0": return .off
        case "lines": return .lines(quiet: 2, every: 10)
        default: return terminal ? .bar : .lines(quiet: 2, every: 10)
        }
    }

    /// The clock of bars on standard error: seconds since boot.
    public static func now() -> Double { ProcessInfo.processInfo.systemUptime }

    /// Records `completed` units done (clamped to 0…total) and redraws, at most ten times a second
    /// except when the work is complete.
    public func update(completed: Int, extra: String = "") {
        lock.lock(); defer { lock.unlock() }
        guard isEnabled, !finished else { return }
        self.completed = min(max(0, completed), total)
        self.extra = extra
        let now = clock()
        switch style {
        case .bar:
            guard now - lastDraw >= 0.1 || self.completed == total else { return }
            lastDraw = now
            draw(now: now, end: "")
        case .lines(let quiet, let every):
            guard now - start >= quiet, now - lastDraw >= every else { return }
            lastDraw = now
            writeLine(now: now)
        case .off: return
        }
    }

    /// Draws the final state and ends the line (lines: a last line, when the work was long enough to show
    /// any); later updates draw nothing.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        guard isEnabled, !finished else { return }
        finished = true
        let now = clock()
        switch style {
        case .bar: draw(now: now, end: "\n")
        case .lines(let quiet, _): if linesWritten > 0 || now - start >= quiet { writeLine(now: now) }
        case .off: return
        }
    }

    private func writeLine(now: Double) {
        linesWritten += 1
        write(ProgressBar.line(label: label, completed: completed, total: total, elapsed: now - start, extra: extra) + "\n")
    }

    private func draw(now: Double, end: String) {
        let text = ProgressBar.line(label: label, completed: completed, total: total, elapsed: now - start, extra: extra)
        let padding = String(repeating: " ", count: max(0, lastWidth - text.count))
        lastWidth = text.count
        write("\r" + text + padding + end)
    }

    /// The text of the bar: `label [████░░░░] 45% 450/1000 12.3/s ETA 0:41 extra`.
    public static func line(label: String, completed: Int, total: Int, elapsed: Double, extra: String = "", width: Int = 24) -> String {
        let fraction = total > 0 ? Double(completed) / Double(total) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        var out = "\(label) [" + String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled) + "]"
        out += String(format: " %3.0f%% %d/%d", fraction * 100, completed, total)
        if elapsed > 0, completed > 0 {
            let rate = Double(completed) / elapsed
            out += rate >= 100 ? String(format: " %.0f/s", rate) : String(format: " %.1f/s", rate)
            out += completed < total ? " ETA " + duration(Double(total - completed) / rate) : " in " + duration(elapsed)
        }
        return extra.isEmpty ? out : out + " " + extra
    }

    /// `m:ss`, or `h:mm:ss` from an hour.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
