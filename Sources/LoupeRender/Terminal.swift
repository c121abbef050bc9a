// Heatmaps in the terminal: each cell's number on a 24-bit (truecolor) background in the colours of the
// SVG, PNG and HTML renderers, or plain text when colour is off (NO_COLOR, --no-color, or not a terminal).

import Foundation

/// ANSI truecolor escapes and when to use them.
public enum TerminalColor {
    public static let reset = "\u{1B}[0m"

    /// `ESC[48;2;r;g;bm`: a 24-bit background colour.
    public static func background(_ c: RGB) -> String { "\u{1B}[48;2;\(c.r);\(c.g);\(c.b)m" }

    /// `ESC[38;2;r;g;bm`: a 24-bit text colour.
    public static func foreground(_ c: RGB) -> String { "\u{1B}[38;2;\(c.r);\(c.g);\(c.b)m" }

    /// Whether output should be coloured: not when `disabled` (a `--no-color` flag), not when `NO_COLOR`
    /// is set to anything non-empty (no-color.org), not when the output is not a terminal.
    public static func enabled(disabled: Bool = false, isTerminal: Bool = isatty(STDOUT_FILENO) != 0,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if disabled { return false }
        if let v = environment["NO_COLOR"], !v.isEmpty { return false }
        return isTerminal
    }
}

/// A labelled grid of numbers for the terminal.
public struct TerminalHeatmap: Sendable {
    public let rowLabels: [String], columnLabels: [String]
    /// `[rows, columns]`, row-major.
    public let values: [Float]
    /// `printf` format of a cell, e.g. `%7.3f`.
    public let format: String
    public let scale: ColorScale
    /// The narrowest a column is drawn (wider when a label or a number needs it).
    public let minimumWidth: Int

    /// - Parameter scale: colours; by default fitted to the values (diverging when any is negative, else sequential).
    /// - Throws: `RenderError.shape` unless there are `rows × columns` values.
    public init(rowLabels: [String], columnLabels: [String], values: [Float], format: String = "%7.3f",
                minimumWidth: Int = 7, scale: ColorScale? = nil) throws {
        guard values.count == rowLabels.count * columnLabels.count else {
            throw RenderError.shape("a terminal heatmap needs rows × columns values (\(rowLabels.count) × \(columnLabels.count)); found \(values.count)")
        }
        self.rowLabels = rowLabels; self.columnLabels = columnLabels; self.values = values; self.format = format
        self.minimumWidth = minimumWidth
        self.scale = scale ?? ColorScale(fitting: values, kind: values.contains { $0 < 0 } ? .diverging : .sequential)
    }

    /// The lines of the grid: a header of column labels, then one line per row. With `colored`, each
    /// cell is its number on its colour (black or white text, whichever reads).
    public func render(colored: Bool) -> String {
        let width = max(minimumWidth, columnLabels.map(\.count).max() ?? 0,
                        values.map { String(format: format, $0).count }.max() ?? 0)
        let labelWidth = rowLabels.map(\.count).max() ?? 0
        func pad(_ s: String, _ n: Int, left: Bool) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return left ? fill + s : s + fill
        }
        var lines = [String(repeating: " ", count: labelWidth) + " " + columnLabels.map { pad($0, width, left: true) }.joined(separator: " ")]
        for (r, label) in rowLabels.enumerated() {
            var line = pad(label, labelWidth, left: false) + " "
            for c in columnLabels.indices {
                let v = values[r * columnLabels.count + c]
                let cell = pad(String(format: format, v), width, left: true)
                if colored {
                    let bg = scale.color(v)
                    line += TerminalColor.background(bg) + TerminalColor.foreground(bg.luminance < 0.55 ? .white : .black) + cell + " " + TerminalColor.reset
                } else {
                    line += cell + (c == columnLabels.count - 1 ? "" : " ")
                }
            }
            lines.append(colored ? line : line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
        }
        return lines.joined(separator: "\n")
    }
}
