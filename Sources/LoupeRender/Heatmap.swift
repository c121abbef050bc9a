// Heatmaps as self-contained SVG: one rectangle per cell, labelled rows and columns, a colour scale,
// and each cell's value in its tooltip (<title>), so a patching or tracing result can be looked at in
// any browser or embedded in a report.

import Foundation

/// A grid of numbers with labels, drawn as an SVG heatmap.
public struct Heatmap: Sendable {
    public enum Scale: Sendable {
        /// Blue (negative) – white (0) – red (positive), symmetric around 0: for effects with a sign.
        case diverging
        /// White (minimum) to blue (maximum): for probabilities and attention.
        case sequential
    }

    public let values: [Float]
    public let rows: Int, columns: Int
    public let rowLabels: [String], columnLabels: [String]
    public let title: String
    public let scale: Scale

    /// - Throws: `RenderError.shape` unless there are `rows × columns` values and one label per row and column.
    public init(values: [Float], rows: Int, columns: Int, rowLabels: [String], columnLabels: [String],
                title: String, scale: Scale = .diverging) throws {
        guard rows > 0, columns > 0, values.count == rows * columns, rowLabels.count == rows, columnLabels.count == columns else {
            throw RenderError.shape("a heatmap needs rows × columns values (\(rows) × \(columns)) and a label for each; found \(values.count) values, \(rowLabels.count) row and \(columnLabels.count) column labels")
        }
        self.values = values; self.rows = rows; self.columns = columns
        self.rowLabels = rowLabels; self.columnLabels = columnLabels; self.title = title; self.scale = scale
    }

    /// The colour of a value as `#rrggbb`.
    public func color(_ v: Float) -> String {
        let finite = values.filter { $0.isFinite }
        guard v.isFinite, let lo = finite.min(), let hi = finite.max() else { return "#cccccc" }
        func mix(_ from: (Double, Double, Double), _ to: (Double, Double, Double), _ t: Double) -> String {
            let t = min(max(t, 0), 1)
            let c = (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t, from.2 + (to.2 - from.2) * t)
            return String(format: "#%02x%02x%02x", Int(c.0.rounded()), Int(c.1.rounded()), Int(c.2.rounded()))
        }
        let white = (255.0, 255.0, 255.0), red = (178.0, 24.0, 43.0), blue = (33.0, 102.0, 172.0)
        switch scale {
        case .diverging:
            let m = Double(max(abs(lo), abs(hi)))
            guard m > 0 else { return "#ffffff" }
            return v >= 0 ? mix(white, red, Double(v) / m) : mix(white, blue, Double(-v) / m)
        case .sequential:
            guard hi > lo else { return "#ffffff" }
            return mix(white, blue, Double(v - lo) / Double(hi - lo))
        }
    }

    /// The SVG document.
    public var svg: String {
        let cell = 22, labelWidth = min(220, 12 + 7 * (rowLabels.map(\.count).max() ?? 0))
        let headerHeight = 40 + 7 * min(30, columnLabels.map(\.count).max() ?? 0)
        let width = labelWidth + columns * cell + 20, height = headerHeight + rows * cell + 20
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
                    + "<title>\(escape(label)) × \(escape(columnLabels[c])): \(String(format: "%.4g", v))</title></rect>\n"
            }
        }
        return out + "</svg>\n"
    }

    /// Writes the SVG to `path`.
    public func write(to path: String) throws {
        do {
            try Data(svg.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw RenderError.write(path: path, reason: error.localizedDescription)
        }
    }

    private func escape(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(ch.value < 0x20 ? " " : ch)
            }
        }
        return out
    }
}

/// Problems rendering.
public enum RenderError: Error, Equatable, CustomStringConvertible {
    case shape(String)
    case write(path: String, reason: String)

    public var description: String {
        switch self {
        case .shape(let m): return m
        case .write(let p, let r): return "cannot write \(p): \(r)"
        }
    }
}
