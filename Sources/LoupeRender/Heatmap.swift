// Heatmaps as self-contained SVG: one rectangle per cell, labelled rows and columns, a colour scale,
// and each cell's value in its tooltip (<title>), so a patching or tracing result can be looked at in
// any browser or embedded in a report.

import Foundation
import LoupeFormats

/// A grid of numbers with labels, drawn as an SVG heatmap.
public struct Heatmap: Sendable {
    public typealias Scale = ColorScale.Kind

    public let values: [Float]
    public let rows: Int, columns: Int
    public let rowLabels: [String], columnLabels: [String]
    public let title: String
    public let scale: Scale
    /// The colours, fitted to the finite values.
    public let colorScale: ColorScale

    /// - Throws: `RenderError.shape` unless there are `rows × columns` values and one label per row and column.
    public init(values: [Float], rows: Int, columns: Int, rowLabels: [String], columnLabels: [String],
                title: String, scale: Scale = .diverging) throws {
        guard rows > 0, columns > 0, values.count == rows * columns, rowLabels.count == rows, columnLabels.count == columns else {
            throw RenderError.shape("a heatmap needs rows × columns values (\(rows) × \(columns)) and a label for each; found \(values.count) values, \(rowLabels.count) row and \(columnLabels.count) column labels")
        }
        self.values = values; self.rows = rows; self.columns = columns
        self.rowLabels = rowLabels; self.columnLabels = columnLabels; self.title = title; self.scale = scale
        colorScale = ColorScale(fitting: values, kind: scale)
    }

    /// The value at `row`, `column`.
    public subscript(row: Int, column: Int) -> Float { values[row * columns + column] }

    /// The colour of a value as `#rrggbb`.
    public func color(_ v: Float) -> String { colorScale.color(v).hex }

    /// The SVG document.
    public var svg: String {
        let cell = 22, labelWidth = min(220, 12 + 7 * (rowLabels.map(\.count).max() ?? 0))
        let headerHeight = 40 + 7 * min(30, columnLabels.map(\.count).max() ?? 0)
        let legendHeight = 46
        let width = max(labelWidth + columns * cell + 20, 300), height = headerHeight + rows * cell + 20 + legendHeight
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="Helvetica, Arial, sans-serif" font-size="11">
        <text x="4" y="16" font-size="13" font-weight="bold">\(escape(title))</text>

        """
        for (c, label) in columnLabels.enumerated() {
            let x = labelWidth + c * cell + cell / 2, y = headerHeight - 6
            out += "<text x=\"\(x)\" y=\"\(y)\" transform=\"rotate(-60 \(x) \(y))\">\(escape(label))</text>\n"
        }
        for (r, label) in rowLabels.enumerated() {
            let y = headerHeight + r * cell
            out += "<text x=\"\(labelWidth - 6)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"end\">\(escape(label))</text>\n"
            for c in 0..<columns {
                let v = values[r * columns + c]
                out += "<rect x=\"\(labelWidth + c * cell)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(color(v))\" stroke=\"#eeeeee\">"
                    + "<title>\(escape(label)) × \(escape(columnLabels[c])): \(formatValue(v))</title></rect>\n"
            }
        }
        // The legend: the scale's colours in 40 steps, with its ends and middle written under it.
        let legendY = headerHeight + rows * cell + 16, legendX = 4, step = 6
        out += "<g class=\"legend\">\n"
        for (i, v) in colorScale.ticks(40).enumerated() {
            out += "<rect x=\"\(legendX + i * step)\" y=\"\(legendY)\" width=\"\(step)\" height=\"12\" fill=\"\(colorScale.color(v).hex)\"/>\n"
        }
        for (i, v) in colorScale.ticks(3).enumerated() {
            let anchor = ["start", "middle", "end"][i]
            out += "<text x=\"\(legendX + i * 20 * step)\" y=\"\(legendY + 26)\" text-anchor=\"\(anchor)\">\(formatValue(v))</text>\n"
        }
        return out + "</g>\n</svg>\n"
    }

    /// Writes the SVG to `path`.
    public func write(to path: String) throws {
        try writeFile(Data(svg.utf8), to: path)
    }

    private func escape(_ s: String) -> String { xmlEscape(s) }
}

/// A number as the renderers print it: four significant digits.
func formatValue(_ v: Float) -> String { String(format: "%.4g", v) }

/// Text safe inside XML/HTML text and double-quoted attributes; control characters become spaces.
func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(ch.value < 0x20 || ch.value == 0x7f ? " " : ch)
        }
    }
    return out
}

/// Writes `data` to `path` atomically (through symbolic links; devices and FIFOs in place: see
/// `writeAtomically`).
/// - Throws: `RenderError.write` naming the path and the system's reason.
public func writeFile(_ data: Data, to path: String) throws {
    do {
        try writeAtomically(data, to: URL(fileURLWithPath: path))
    } catch FileError.unwritable(_, let reason) {
        throw RenderError.write(path: path, reason: reason)
    }
}

/// Problems rendering.
public enum RenderError: Error, Equatable, CustomStringConvertible {
    /// Inputs whose sizes do not fit together (the message says what was expected and found).
    case shape(String)
    case write(path: String, reason: String)
    /// A PNG that cannot be encoded or decoded (the message says why).
    case png(String)

    public var description: String {
        switch self {
        case .shape(let m): return m
        case .write(let p, let r): return "cannot write \(p): \(r)"
        case .png(let m): return "PNG: \(m)"
        }
    }
}
