// `loupe attribute`: direct logit attribution per head and component.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

struct Attribute: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Direct logit attribution: each head's and each component's direct contribution to a logit (difference).",
        discussion: """
            Example:
              loupe attribute --model smollm2-135m --prompt "When Mary and John went to the store, John gave a drink to" --answer " Mary" --wrong " John" --top 5
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String
    @Option(name: .long, help: "Wrong token: attribute logit[answer] − logit[wrong].") var wrong: String?
    @Option(name: .long, help: "Position (default: the last).") var position: Int?
    @Option(name: .long, parsing: .unconditional, help: "Heads to list.", transform: Count.nonNegative) var top: Int = 10
    @Flag(name: .long, help: "Print JSON.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable { let heads: AnyNested; let components: [String: Float] }

    func run() throws {
        let loaded = try modelOptions.load()
        let tokens = try input.tokens(loaded)
        let a = try singleToken(answer, "--answer", loaded)
        let b = try wrong.map { try singleToken($0, "--wrong", loaded) }
        let dla = try loaded.model.directLogitAttribution(tokens: tokens, answer: a, wrong: b, position: position)
        let what = "logit[\(shown(loaded.tokenText(a)))]" + (b.map { " − logit[\(shown(loaded.tokenText($0)))]" } ?? "")
        if figures.wanted {
            let (nL, h) = (dla.heads.shape[0], dla.heads.shape[1])
            let heads = try Heatmap(values: dla.heads.scalars, rows: nL, columns: h, rowLabels: layerLabels(nL), columnLabels: headLabels(h),
                                    title: "direct logit attribution per head: \(what)")
            try figures.write(heatmap: { heads }, views: {
                [try BarChart(title: "Direct logit attribution", labels: dla.componentLabels, values: dla.components,
                              note: "Each component's direct contribution to \(what) (final norm's scale frozen from the run)."), heads]
            }, title: "Direct logit attribution", metadata: [("model", modelOptions.model), ("tokens", loaded.positionLabels(tokens).joined(separator: " | "))])
        }
        try figures.write(tensors: {
            [ResultTensor("heads", dla.heads, axes: ["layer", "head"]),
             ResultTensor("components", try Tensor(shape: [dla.components.count], scalars: dla.components), axes: ["component"])]
        }, labels: ["component": dla.componentLabels], settings: [("model", modelOptions.model), ("attributed", what)])
        if json {
            try printJSON(Output(heads: AnyNested(dla.heads), components: Dictionary(uniqueKeysWithValues: zip(dla.componentLabels, dla.components))))
            return
        }
        print("direct attribution of \(what)")
        let h = dla.heads.shape[1]
        let order = dla.heads.scalars.indices.sorted { Swift.abs(dla.heads.scalars[$0]) > Swift.abs(dla.heads.scalars[$1]) }
        print("\nheads (largest |contribution| first)")
        for i in order.prefix(top) { print("  L\(i / h)H\(i % h)".padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%+8.3f", dla.heads.scalars[i])) }
        print("\ncomponents       direct   accumulated")
        var total: Float = 0
        for (label, value) in zip(dla.componentLabels, dla.components) {
            total += value
            print("  " + label.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%+8.3f      %+8.3f", value, total))
        }
    }
}
