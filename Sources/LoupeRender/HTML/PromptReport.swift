// The standard views of one prompt in one page: predictions, logit lens, attention patterns of every
// head, head scores, and direct logit attribution. Built from plain numbers, so the command line, the
// web explorer and tests build the same page.

import Foundation

/// What a report on one prompt shows; every part is plain data.
public struct PromptReportData: Sendable {
    /// The next-token candidates at the last position.
    public struct Prediction: Sendable {
        public let token: String
        public let probability: Float
        public let logit: Float
        public init(token: String, probability: Float, logit: Float) { self.token = token; self.probability = probability; self.logit = logit }
    }

    public var model: String
    public var prompt: String
    public var tokens: [String]
    public var predictions: [Prediction]
    /// Logit lens: row labels and `[label][position]` top-k candidates.
    public var lensLabels: [String]
    public var lens: [[[LogitLensView.Candidate]]]
    /// Attention: `nLayers × nHeads` patterns, layer-major, each `[query_pos, key_pos]`.
    public var nLayers: Int, nHeads: Int
    public var patterns: [[Float]]
    /// Head scores by name (e.g. `induction`), each `[n_layers, n_heads]`, row-major.
    public var headScores: [(name: String, scores: [Float])]
    /// Direct logit attribution: what was attributed (e.g. `logit[" Mary"] − logit[" John"]`), the
    /// components with their labels, and `[n_layers, n_heads]` head contributions.
    public var attributionTarget: String
    public var componentLabels: [String]
    public var components: [Float]
    public var headAttribution: [Float]

    public init(model: String, prompt: String, tokens: [String], predictions: [Prediction], lensLabels: [String],
                lens: [[[LogitLensView.Candidate]]], nLayers: Int, nHeads: Int, patterns: [[Float]],
                headScores: [(name: String, scores: [Float])], attributionTarget: String, componentLabels: [String],
                components: [Float], headAttribution: [Float]) {
        self.model = model; self.prompt = prompt; self.tokens = tokens; self.predictions = predictions
        self.lensLabels = lensLabels; self.lens = lens; self.nLayers = nLayers; self.nHeads = nHeads; self.patterns = patterns
        self.headScores = headScores; self.attributionTarget = attributionTarget; self.componentLabels = componentLabels
        self.components = components; self.headAttribution = headAttribution
    }
}

extension Report {
    /// The standard report of one prompt: predictions, logit lens, attention grid, head scores, direct
    /// logit attribution (components as bars, heads as a heatmap).
    /// - Throws: `RenderError.shape` when the parts' sizes disagree (e.g. patterns for another number of tokens).
    public static func prompt(_ d: PromptReportData) throws -> Report {
        var report = Report(title: "Loupe report: \(d.prompt)", metadata: [
            ("model", d.model), ("prompt", d.prompt), ("tokens", "\(d.tokens.count): " + d.tokens.map(visible).joined(separator: " ")),
        ])
        report.add(try TableView(title: "Predictions", header: ["rank", "token", "probability", "logit"],
                                 rows: d.predictions.enumerated().map { i, p in
                                     ["\(i + 1)", visible(p.token), String(format: "%.4f", p.probability), String(format: "%.3f", p.logit)]
                                 }, note: "The model's next-token candidates after the last token."))
        let positions = d.tokens.enumerated().map { "\($0.offset) \($0.element)" }
        report.add(try LogitLensView(title: "Logit lens", layerLabels: d.lensLabels, positionLabels: positions, cells: d.lens))
        report.add(try AttentionPatternsView(title: "Attention patterns", tokens: d.tokens, headsPerRow: d.nHeads, patterns: d.patterns))
        let layers = (0..<d.nLayers).map { "L\($0)" }, heads = (0..<d.nHeads).map { "H\($0)" }
        for (name, scores) in d.headScores {
            report.add(try Heatmap(values: scores, rows: d.nLayers, columns: d.nHeads, rowLabels: layers, columnLabels: heads,
                                   title: "Head scores: \(name)", scale: .sequential))
        }
        report.add(try BarChart(title: "Direct logit attribution", labels: d.componentLabels, values: d.components,
                                note: "Each component's direct contribution to \(d.attributionTarget) at the last position (final norm's scale frozen)."))
        report.add(try Heatmap(values: d.headAttribution, rows: d.nLayers, columns: d.nHeads, rowLabels: layers, columnLabels: heads,
                               title: "Direct logit attribution per head: \(d.attributionTarget)", scale: .diverging))
        return report
    }
}
