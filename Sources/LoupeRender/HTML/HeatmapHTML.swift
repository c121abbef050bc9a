// Heatmaps in HTML pages (patching, QK/OV circuits, head scores): a table of coloured cells with each
// value on hover, or, for grids too large for a table, the PNG inline as a `data:` URL.

import Foundation

extension Heatmap: HTMLView {
    /// Grids with more cells than this are drawn as an inline PNG rather than a table.
    public static let htmlTableLimit = 6000

    public func htmlBody(id: String) -> String {
        if rows * columns > Heatmap.htmlTableLimit, let png = try? png() {
            return "<p class=\"note\">\(rows) × \(columns) cells, drawn as an image.</p>\n"
                + "<img alt=\"\(xmlEscape(title))\" src=\"data:image/png;base64,\(png.base64EncodedString())\">\n"
                + legendHTML(colorScale)
        }
        var out = "<div class=\"scroll\"><table class=\"heat\"><thead><tr><th></th>"
        for label in columnLabels { out += "<th><span>\(xmlEscape(label))</span></th>" }
        out += "</tr></thead><tbody>\n"
        for r in 0..<rows {
            out += "<tr><th class=\"r\">\(xmlEscape(rowLabels[r]))</th>"
            for c in 0..<columns {
                let v = self[r, c]
                out += "<td class=\"c\" style=\"background:\(colorScale.color(v).hex)\" data-tip=\"\(tipAttribute("\(rowLabels[r]) × \(columnLabels[c])\n\(formatValue(v))"))\"></td>"
            }
            out += "</tr>\n"
        }
        return out + "</tbody></table></div>\n" + legendHTML(colorScale)
    }
}
