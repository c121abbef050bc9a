// A plain table of text, e.g. the top predictions of a prompt.

import Foundation

/// Rows of text under a header.
public struct TableView: HTMLView {
    public let title: String
    public let header: [String]
    public let rows: [[String]]
    public let note: String

    /// - Throws: `RenderError.shape` unless every row has one cell per header column.
    public init(title: String, header: [String], rows: [[String]], note: String = "") throws {
        if let bad = rows.firstIndex(where: { $0.count != header.count }) {
            throw RenderError.shape("table row \(bad) has \(rows[bad].count) cells; the header has \(header.count) columns")
        }
        self.title = title; self.header = header; self.rows = rows; self.note = note
    }

    public func htmlBody(id: String) -> String {
        var out = note.isEmpty ? "" : "<p class=\"note\">\(xmlEscape(note))</p>\n"
        out += "<table class=\"plain\"><thead><tr>" + header.map { "<th>\(xmlEscape($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for row in rows { out += "<tr>" + row.map { "<td>\(xmlEscape($0))</td>" }.joined() + "</tr>\n" }
        return out + "</tbody></table>\n"
    }
}
