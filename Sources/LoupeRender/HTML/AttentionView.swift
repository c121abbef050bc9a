// Attention patterns of many heads on one prompt, as an interactive grid: hovering a token shows where
// it attends (its row of the selected head's pattern) and what attends to it (its column); the grid
// draws every head's pattern with the hovered token's row and column outlined.

import Foundation

/// Every head's `[query_pos, key_pos]` pattern over one prompt.
public struct AttentionPatternsView: HTMLView {
    public let title: String
    public let tokens: [String]
    /// Heads per row of the grid (a layer's heads).
    public let headsPerRow: Int
    /// One label per row of the grid, e.g. `L0`, `L1`, ….
    public let rowLabels: [String]
    /// One name per pattern, e.g. `L3H2`.
    public let names: [String]
    /// Each `[query_pos, key_pos]`, row-major, `tokens.count²` weights.
    public let patterns: [[Float]]

    /// - Parameters:
    ///   - patterns: `rows × headsPerRow` patterns (row-major: all heads of the first row first).
    ///   - rowLabels: one per row of the grid (default `L0`, `L1`, …); heads are named `L{row}H{head}`.
    /// - Throws: `RenderError.shape` when the counts do not fit together.
    public init(title: String, tokens: [String], headsPerRow: Int, patterns: [[Float]], rowLabels: [String]? = nil) throws {
        let T = tokens.count
        guard T > 0, headsPerRow > 0, !patterns.isEmpty, patterns.count % headsPerRow == 0 else {
            throw RenderError.shape("attention patterns need at least one token and a whole number of rows of \(headsPerRow) heads; found \(T) tokens and \(patterns.count) patterns")
        }
        if let bad = patterns.firstIndex(where: { $0.count != T * T }) {
            throw RenderError.shape("attention pattern \(bad) has \(patterns[bad].count) weights; \(T) tokens need \(T * T) ([query_pos, key_pos])")
        }
        let rows = patterns.count / headsPerRow
        let labels = rowLabels ?? (0..<rows).map { "L\($0)" }
        guard labels.count == rows else {
            throw RenderError.shape("attention grid has \(rows) rows but \(labels.count) row labels")
        }
        self.title = title; self.tokens = tokens; self.headsPerRow = headsPerRow; self.patterns = patterns
        self.rowLabels = labels
        names = (0..<patterns.count).map { "\(labels[$0 / headsPerRow])H\($0 % headsPerRow)" }
    }

    /// The embedded data: weights as integers in thousandths (`scale`), to keep pages small.
    var data: JSONText {
        .object([
            ("tokens", .strings(tokens)), ("heads", .int(headsPerRow)), ("rowLabels", .strings(rowLabels)),
            ("names", .strings(names)), ("scale", .int(1000)),
            ("patterns", .array(patterns.map { p in .array(p.map { .int($0.isFinite ? Int(($0 * 1000).rounded()) : 0) }) })),
        ])
    }

    public func htmlBody(id: String) -> String {
        """
        <div class="attn" data-src="\(id)-data">
        <p class="note">Hover a token: <span style="color:#2166ac">blue</span> is where it attends in the selected head (its row of the pattern), <span style="color:#e66101">orange</span> what attends to it (its column). Click a head in the grid to select it; hover a cell for its weight. Rows of the grid: \(xmlEscape(rowLabels.first ?? ""))…\(xmlEscape(rowLabels.last ?? "")); columns: heads.</p>
        <div>selected: <b class="current"></b></div>
        <div class="strip text"><b>attends to →</b><span class="to"></span></div>
        <div class="strip text"><b>← attended by</b><span class="from"></span></div>
        <noscript><p class="note">The attention grid needs JavaScript (inline; nothing is fetched).</p></noscript>
        <div class="grid"></div>
        </div>
        \(jsonScript(id: "\(id)-data", data))
        """
    }
}
