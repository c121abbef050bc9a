// The logit lens as a table: one row per layer, one column per position, each cell the lens's top token
// coloured by its probability, the top k on hover.

import Foundation

/// Top predictions read off every layer at every position.
public struct LogitLensView: HTMLView {
    /// One candidate token and its probability.
    public struct Candidate: Sendable, Equatable {
        public let token: String
        public let probability: Float
        public init(token: String, probability: Float) { self.token = token; self.probability = probability }
    }

    public let title: String
    public let layerLabels: [String]
    public let positionLabels: [String]
    /// `[layer][position]`: the top candidates, most likely first.
    public let cells: [[[Candidate]]]

    /// Probabilities are coloured on a fixed 0…1 scale, so tables of different prompts compare.
    public static let scale = ColorScale(kind: .sequential, lower: 0, upper: 1)

    /// - Throws: `RenderError.shape` unless there is a row of cells per layer, a cell per position, and a candidate in each.
    public init(title: String, layerLabels: [String], positionLabels: [String], cells: [[[Candidate]]]) throws {
        guard !layerLabels.isEmpty, !positionLabels.isEmpty, cells.count == layerLabels.count,
              cells.allSatisfy({ $0.count == positionLabels.count }), cells.allSatisfy({ $0.allSatisfy { !$0.isEmpty } }) else {
            throw RenderError.shape("a logit-lens table needs \(layerLabels.count) layers × \(positionLabels.count) positions of non-empty top-k lists; found \(cells.count) rows of \(cells.map(\.count)) cells")
        }
        self.title = title; self.layerLabels = layerLabels; self.positionLabels = positionLabels; self.cells = cells
    }

    public func htmlBody(id: String) -> String {
        var out = "<p class=\"note\">Each cell: the top token of that layer's residual stream read through the final norm and unembedding, coloured by its probability; hover for the top \(cells[0][0].count).</p>\n"
        out += "<div class=\"scroll\"><table class=\"heat lens\"><thead><tr><th></th>"
        for label in positionLabels { out += "<th><span>\(xmlEscape(label))</span></th>" }
        out += "</tr></thead><tbody>\n"
        for (l, row) in cells.enumerated() {
            out += "<tr><th class=\"r\">\(xmlEscape(layerLabels[l]))</th>"
            for (p, top) in row.enumerated() {
                let color = Self.scale.color(top[0].probability)
                let tip = "\(layerLabels[l]), position \(positionLabels[p])\n" + top.enumerated().map {
                    "\($0.offset + 1). \(visible($0.element.token))  \(String(format: "%.3f", $0.element.probability))"
                }.joined(separator: "\n")
                out += "<td class=\"c\" style=\"background:\(color.hex);color:\(textColor(on: color))\" data-tip=\"\(tipAttribute(tip))\">\(xmlEscape(visible(top[0].token)))</td>"
            }
            out += "</tr>\n"
        }
        out += "</tbody></table></div>\n" + legendHTML(Self.scale, caption: "probability of the top token")
        return out
    }
}

/// A token as shown in tables: quoted when it has leading or trailing spaces, newlines as ⏎.
func visible(_ token: String) -> String {
    let t = token.replacingOccurrences(of: "\n", with: "⏎")
    return t.hasPrefix(" ") || t.hasSuffix(" ") || t.isEmpty ? "\"\(t)\"" : t
}
