// Horizontal bars around zero, e.g. direct logit attribution per component: red pushes the logit
// (difference) up, blue pushes it down.

import Foundation

/// Labelled values drawn as bars from a shared zero line.
public struct BarChart: HTMLView {
    public let title: String
    public let labels: [String]
    public let values: [Float]
    /// A sentence under the title saying what the values are.
    public let note: String

    /// - Throws: `RenderError.shape` unless there is one label per value and at least one value.
    public init(title: String, labels: [String], values: [Float], note: String = "") throws {
        guard !values.isEmpty, labels.count == values.count else {
            throw RenderError.shape("a bar chart needs one label per value and at least one value; found \(labels.count) labels and \(values.count) values")
        }
        self.title = title; self.labels = labels; self.values = values; self.note = note
    }

    /// Where zero sits (percent of the track) and the percent per unit, so all bars share one axis.
    var axis: (zero: Double, perUnit: Double) {
        let finite = values.filter(\.isFinite).map(Double.init)
        let lo = min(0, finite.min() ?? 0), hi = max(0, finite.max() ?? 0)
        guard hi > lo else { return (50, 0) }
        return (100 * -lo / (hi - lo), 100 / (hi - lo))
    }

    public func htmlBody(id: String) -> String {
        let (zero, perUnit) = axis
        var out = note.isEmpty ? "" : "<p class=\"note\">\(xmlEscape(note))</p>\n"
        out += "<div class=\"bars\">\n"
        for (label, v) in zip(labels, values) {
            let width = v.isFinite ? Swift.abs(Double(v)) * perUnit : 0
            let left = v >= 0 ? zero : zero - width
            let color = v >= 0 ? RGB.red : RGB.blue
            out += "<div>\(xmlEscape(label))</div><div class=\"track\" data-tip=\"\(tipAttribute("\(label): \(formatValue(v))"))\">"
                + "<div class=\"fill\" style=\"left:\(String(format: "%.2f", left))%;width:\(String(format: "%.2f", width))%;background:\(color.hex)\"></div>"
                + "<div class=\"zero\" style=\"left:\(String(format: "%.2f", zero))%\"></div></div>"
                + "<div class=\"v\">\(String(format: "%+.3f", v))</div>\n"
        }
        return out + "</div>\n"
    }
}
