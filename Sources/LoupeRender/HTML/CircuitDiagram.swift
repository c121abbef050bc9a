// A circuit drawn as columns of components (e.g. the IOI circuit's head classes, in the order information
// flows) with arrows between columns, as inline SVG.

import Foundation

/// Columns of labelled boxes, and arrows from every box of one column to every box of another.
public struct CircuitDiagram: HTMLView {
    public struct Column: Sendable {
        public var name: String
        public var boxes: [String]
        /// A line under each box (e.g. its evidence), same count as `boxes` or empty.
        public var details: [String]
        public init(name: String, boxes: [String], details: [String] = []) { self.name = name; self.boxes = boxes; self.details = details }
    }
    /// An arrow from column `from` to column `to`, labelled (e.g. "K", "V", "Q").
    public struct Edge: Sendable {
        public var from: Int, to: Int, label: String
        public init(from: Int, to: Int, label: String) { self.from = from; self.to = to; self.label = label }
    }

    public let title: String
    public let columns: [Column]
    public let edges: [Edge]
    public let note: String

    /// - Throws: `RenderError.shape` for an edge naming a missing column or details that do not match the boxes.
    public init(title: String, columns: [Column], edges: [Edge], note: String = "") throws {
        for e in edges where !columns.indices.contains(e.from) || !columns.indices.contains(e.to) {
            throw RenderError.shape("a circuit edge joins columns \(e.from) and \(e.to), but there are \(columns.count) columns")
        }
        for c in columns where !c.details.isEmpty && c.details.count != c.boxes.count {
            throw RenderError.shape("column \(c.name) has \(c.boxes.count) boxes and \(c.details.count) detail lines")
        }
        self.title = title; self.columns = columns; self.edges = edges; self.note = note
    }

    /// The SVG alone.
    public var svg: String {
        let (boxW, boxH, gapX, gapY, top) = (150.0, 38.0, 70.0, 12.0, 40.0)
        let tallest = columns.map(\.boxes.count).max() ?? 0
        let width = Double(columns.count) * (boxW + gapX) + gapX
        let height = top + Double(max(tallest, 1)) * (boxH + gapY) + 20
        func center(_ c: Int, _ b: Int) -> (Double, Double) {
            let n = Double(max(columns[c].boxes.count, 1))
            let span = n * (boxH + gapY) - gapY
            let y0 = top + (Double(max(tallest, 1)) * (boxH + gapY) - gapY - span) / 2
            return (gapX + Double(c) * (boxW + gapX) + boxW / 2, y0 + Double(b) * (boxH + gapY) + boxH / 2)
        }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#666\"/></marker></defs>\n"
        for e in edges {
            for a in columns[e.from].boxes.indices {
                for b in columns[e.to].boxes.indices {
                    let (x1, y1) = center(e.from, a), (x2, y2) = center(e.to, b)
                    let forward = x2 > x1
                    let sx = x1 + (forward ? boxW / 2 : -boxW / 2), ex = x2 + (forward ? -boxW / 2 : boxW / 2)
                    out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-width=\"1\" marker-end=\"url(#arrow)\"/>\n", sx, y1, ex, y2)
                }
            }
            if let a = columns[e.from].boxes.indices.first, let b = columns[e.to].boxes.indices.first {
                let (x1, _) = center(e.from, a), (x2, _) = center(e.to, b)
                out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">%@</text>\n", (x1 + x2) / 2, top - 8, xmlEscape(e.label))
            }
        }
        for (c, column) in columns.enumerated() {
            let (x, _) = center(c, 0)
            out += String(format: "<text x=\"%.1f\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">%@</text>\n", x, xmlEscape(column.name))
            for (b, label) in column.boxes.enumerated() {
                let (cx, cy) = center(c, b)
                out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"5\" fill=\"#eef3fb\" stroke=\"#5577aa\"/>\n", cx - boxW / 2, cy - boxH / 2, boxW, boxH)
                let detail = column.details.isEmpty ? "" : column.details[b]
                out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-weight=\"bold\">%@</text>\n", cx, cy - (detail.isEmpty ? -4 : 2), xmlEscape(label))
                if !detail.isEmpty {
                    out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" fill=\"#333\">%@</text>\n", cx, cy + 13, xmlEscape(detail))
                }
            }
        }
        return out + "</svg>\n"
    }

    public func htmlBody(id: String) -> String {
        (note.isEmpty ? "" : "<p class=\"note\">\(xmlEscape(note))</p>\n") + "<div class=\"circuit\" id=\"\(id)\">\n" + svg + "</div>\n"
    }
}
