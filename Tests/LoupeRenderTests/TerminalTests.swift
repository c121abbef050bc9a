import Foundation
import LoupeRender
import Testing

@Suite struct TerminalTests {
    @Test func truecolorCellsAndPlainFallback() throws {
        let grid = try TerminalHeatmap(rowLabels: ["L0", "L1"], columnLabels: ["0", "1"], values: [-1, 0, 0.5, 1])
        let colored = grid.render(colored: true)
        // −1 and 1 are the diverging scale's ends; 0 is white with black text.
        #expect(colored.contains("\u{1B}[48;2;33;102;172m\u{1B}[38;2;255;255;255m -1.000 \u{1B}[0m"))
        #expect(colored.contains("\u{1B}[48;2;178;24;43m"))
        #expect(colored.contains("\u{1B}[48;2;255;255;255m\u{1B}[38;2;0;0;0m  0.000 \u{1B}[0m"))
        let plain = grid.render(colored: false)
        #expect(!plain.contains("\u{1B}"))
        #expect(plain.split(separator: "\n").map(String.init) == ["         0       1", "L0  -1.000   0.000", "L1   0.500   1.000"])
        let positive = try TerminalHeatmap(rowLabels: ["a"], columnLabels: ["b", "c"], values: [0, 2], format: "%.2f")
        #expect(positive.scale.kind == .sequential && positive.render(colored: true).contains("\u{1B}[48;2;33;102;172m"))
        #expect(throws: RenderError.self) { try TerminalHeatmap(rowLabels: ["a"], columnLabels: ["b"], values: [1, 2]) }
    }

    @Test func whenToColor() {
        #expect(TerminalColor.enabled(disabled: false, isTerminal: true, environment: [:]))
        #expect(!TerminalColor.enabled(disabled: true, isTerminal: true, environment: [:]))
        #expect(!TerminalColor.enabled(disabled: false, isTerminal: false, environment: [:]))
        #expect(!TerminalColor.enabled(disabled: false, isTerminal: true, environment: ["NO_COLOR": "1"]))
        #expect(TerminalColor.enabled(disabled: false, isTerminal: true, environment: ["NO_COLOR": ""]))
    }
}

@Suite struct ProgressBarTests {
    final class Recorder: @unchecked Sendable {
        var text = ""
        var now = 0.0
    }

    @Test func lineShowsFractionRateAndTimeLeft() {
        let line = ProgressBar.line(label: "tokens", completed: 250, total: 1000, elapsed: 5, extra: "layer 3", width: 8)
        #expect(line == "tokens [██░░░░░░]  25% 250/1000 50.0/s ETA 0:15 layer 3")
        #expect(ProgressBar.line(label: "x", completed: 1000, total: 1000, elapsed: 4000, width: 4) == "x [████] 100% 1000/1000 0.2/s in 1:06:40")
        #expect(ProgressBar.line(label: "x", completed: 0, total: 10, elapsed: 0, width: 2) == "x [░░]   0% 0/10")
    }

    @Test func redrawsInPlaceThrottledAndFinishes() {
        let r = Recorder()
        let bar = ProgressBar(total: 10, label: "p", enabled: true, write: { r.text += $0 }, clock: { r.now })
        r.now = 1; bar.update(completed: 1)
        r.now = 1.05; bar.update(completed: 2)   // within 0.1 s of the last draw: skipped
        r.now = 1.2; bar.update(completed: 3, extra: "more")
        bar.update(completed: 10)                 // complete: always drawn
        bar.finish()
        bar.update(completed: 5)                  // after finish: nothing
        let draws = r.text.components(separatedBy: "\r").dropFirst()
        #expect(draws.count == 4)
        #expect(draws.first?.hasPrefix("p [") == true && draws.first?.contains(" 1/10 ") == true)
        #expect(!r.text.contains(" 2/10 ") && r.text.contains(" 3/10 ") && r.text.contains("more"))
        #expect(r.text.hasSuffix("\n") && r.text.filter { $0 == "\n" }.count == 1)
    }

    @Test func silentWhenDisabled() {
        let r = Recorder()
        let bar = ProgressBar(total: 3, label: "p", enabled: false, write: { r.text += $0 }, clock: { r.now })
        bar.update(completed: 3); bar.finish()
        #expect(r.text.isEmpty && !bar.isEnabled)
    }
}

extension ProgressBarTests {
    @Test func rateCountsFromTheStartOfTheWork() {
        let r = Recorder()
        r.now = 10
        let bar = ProgressBar(total: 100, label: "w", enabled: true, write: { r.text += $0 }, clock: { r.now }, startedAt: 8)
        bar.update(completed: 50)
        #expect(r.text.contains("50/100 25.0/s ETA 0:02"))
    }
}

extension ProgressBarTests {
    /// Not on a terminal: nothing for short work; for long work plain lines (no \r), the first after the
    /// quiet time, then one per period, and a last one at the end.
    @Test func logsGetPeriodicLines() {
        let r = Recorder()
        let bar = ProgressBar(total: 100, label: "trace", style: .lines(quiet: 2, every: 10), write: { r.text += $0 }, clock: { r.now })
        r.now = 1; bar.update(completed: 10)          // within the quiet time: nothing
        #expect(r.text.isEmpty)
        r.now = 2.5; bar.update(completed: 20)        // first line
        r.now = 8; bar.update(completed: 40)          // under 10 s since the last: nothing
        r.now = 12.6; bar.update(completed: 60, extra: "layer 5")   // second line
        r.now = 20; bar.finish()                       // last line
        let lines = r.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(!r.text.contains("\r") && lines.count == 4 && lines.last == "", "\(r.text)")
        #expect(lines[0].hasPrefix("trace [") && lines[0].contains(" 20/100 "))
        #expect(lines[1].contains(" 60/100 ") && lines[1].hasSuffix("layer 5"))
        #expect(lines[2].contains(" 60/100 ") && lines[2].contains("ETA"))
        // Short work leaves no trace in a log.
        let quiet = Recorder()
        let short = ProgressBar(total: 5, label: "x", style: .lines(quiet: 2, every: 10), write: { quiet.text += $0 }, clock: { quiet.now })
        quiet.now = 0.5; short.update(completed: 5); short.finish()
        #expect(quiet.text.isEmpty && short.isEnabled && !short.drawsInPlace)
    }

    @Test func theEnvironmentChoosesTheStyle() {
        #expect(ProgressBar.standardErrorStyle(environment: [:], terminal: true) == .bar)
        #expect(ProgressBar.standardErrorStyle(environment: [:], terminal: false) == .lines(quiet: 2, every: 10))
        #expect(ProgressBar.standardErrorStyle(environment: ["LOUPE_PROGRESS": "off"], terminal: true) == .off)
        #expect(ProgressBar.standardErrorStyle(environment: ["LOUPE_PROGRESS": "bar"], terminal: false) == .bar)
        #expect(ProgressBar.standardErrorStyle(environment: ["LOUPE_PROGRESS": "lines"], terminal: true) == .lines(quiet: 2, every: 10))
    }
}
