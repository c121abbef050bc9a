// A progress bar for long work: fraction done, rate, and time left, redrawn in place with \r on standard
// error (so it never mixes with results on standard output), and silent when standard error is not a
// terminal unless forced.

import Foundation

/// Progress of `total` units of work, drawn on one line of standard error.
///
///     let bar = ProgressBar(total: tokens.count, label: "neurons")
///     for … { bar.update(completed: done, extra: "layer 3") }
///     bar.finish()
public final class ProgressBar: @unchecked Sendable {
    public let total: Int
    public let label: String
    /// Whether anything is drawn.
    public let isEnabled: Bool

    private let write: (String) -> Void
    private let clock: () -> Double
    private let start: Double
    private var lastDraw = -Double.infinity
    private var lastWidth = 0
    private var completed = 0
    private var extra = ""
    private var finished = false
    private let lock = NSLock()

    /// A bar on standard error, drawn only when it is a terminal (`force` draws it anyway).
    /// `startedAt` (seconds of `ProgressBar.now()`) dates the start of the work when it began before the bar.
    public convenience init(total: Int, label: String, force: Bool = false, startedAt: Double? = nil) {
        self.init(total: total, label: label, enabled: force || isatty(STDERR_FILENO) != 0,
                  write: { FileHandle.standardError.write(Data($0.utf8)) }, clock: ProgressBar.now, startedAt: startedAt)
    }

    /// A bar writing through `write`, timed by `clock` (seconds), for tests and other outputs.
    public init(total: Int, label: String, enabled: Bool, write: @escaping (String) -> Void, clock: @escaping () -> Double,
                startedAt: Double? = nil) {
        self.total = max(0, total); self.label = label; self.isEnabled = enabled
        self.write = write; self.clock = clock; start = startedAt ?? clock()
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
        guard now - lastDraw >= 0.1 || self.completed == total else { return }
        lastDraw = now
        draw(now: now, end: "")
    }

    /// Draws the final state and ends the line; later updates draw nothing.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        guard isEnabled, !finished else { return }
        finished = true
        draw(now: clock(), end: "\n")
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
