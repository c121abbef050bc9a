// `loupe lens`: the logit lens (and tuned lens) over the layers.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

struct Lens: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The logit lens: each layer's residual stream read through the final norm and the unembedding.",
        discussion: """
            Examples:
              loupe lens --model smollm2-135m --prompt "The Eiffel Tower is located in the city of" --top 2
              loupe lens --model smollm2-135m --prompt "The Eiffel Tower is located in the city of" --target " Paris" --html lens.html
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: .long, help: "Position to read (default: the last).")
    var position: Int?

    @Option(name: .long, help: "A token to follow through the layers (id or single-token text).")
    var target: String?

    @Option(name: [.customLong("top"), .customLong("top-k")], parsing: .unconditional, help: "Top tokens to show per layer.", transform: Count.nonNegative)
    var topK: Int = 3

    @Flag(name: .long, help: "Also read the residual between attention and MLP (resid_mid).")
    var mid = false

    @Option(name: .long, help: "Final norm: recompute (each state's own statistics, as TransformerLens's accumulated_resid) or cached (the run's scale).")
    var norm: LensNorm = .recompute

    @Option(name: .long, help: "A tuned lens file (from `loupe train tuned-lens`): each layer's translator before the final norm.")
    var tuned: String?

    @Flag(name: .long, help: "With --tuned: also show the logit lens, side by side with the tuned lens.")
    var compare = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var figures: FigureOptions

    struct Output: Encodable {
        let tokens: [String]; let position: Int; let labels: [String]; let cells: [LogitLens.Cell]
        var logitLensCells: [LogitLens.Cell]? = nil
    }

    func run() throws {
        let lensNorm = norm
        let loaded = try modelOptions.load()
        let tokens = try input.tokens(loaded)
        let targetID = try target.map { try singleToken($0, "--target", loaded) }
        if compare && tuned == nil { throw ValidationError("--compare needs --tuned FILE") }
        let tunedLens = try tuned.map { try TunedLens.load(path: $0) }
        let lens = try loaded.model.logitLens(tokens: tokens, includeMid: mid, norm: lensNorm, tuned: tunedLens)
        let name = tunedLens == nil ? "Logit lens" : "Tuned lens"
        let p = position ?? tokens.count - 1
        let cells = try lens.summary(position: p, topK: topK, target: targetID)
        let plainCells = compare ? try loaded.model.logitLens(tokens: tokens, norm: lensNorm).summary(position: p, topK: topK, target: targetID) : nil
        if figures.wanted {
            // Every position: [position][label] summaries.
            let all = try tokens.indices.map { try lens.summary(position: $0, topK: max(topK, 5)) }
            let T = tokens.count, n = lens.labels.count
            try figures.write(heatmap: {
                try Heatmap(values: (0..<(n * T)).map { all[$0 % T][$0 / T].finalTokenProbability }, rows: n, columns: T,
                            rowLabels: lens.labels,
                            columnLabels: tokens.indices.map { "\($0) \(loaded.tokenText(tokens[$0]))→\(loaded.tokenText(all[$0][n - 1].top.first?.id ?? 0))" },
                            title: "\(name.lowercased()): P(final prediction) at each layer", scale: .sequential)
            }, views: {
                [try LogitLensView(title: name, layerLabels: lens.labels, positionLabels: loaded.positionLabels(tokens),
                                   cells: (0..<n).map { l in (0..<T).map { p in all[p][l].top.map { LogitLensView.Candidate(token: loaded.tokenText($0.id), probability: $0.probability) } } })]
            }, title: name, metadata: [("model", modelOptions.model)] + (tuned.map { [("tuned lens", $0)] } ?? []))
        }
        try figures.write(tensors: { [ResultTensor("logits", lens.logits, axes: ["layer", "pos", "vocab"])] },
                          labels: ["layer": lens.labels, "pos": loaded.positionLabels(tokens)],
                          settings: [("model", modelOptions.model), ("norm", lensNorm.rawValue)] + (tuned.map { [("tuned lens", $0)] } ?? []))
        if json {
            try printJSON(Output(tokens: tokens.map(loaded.tokenText), position: p, labels: lens.labels, cells: cells, logitLensCells: plainCells))
            return
        }
        print("\(name.lowercased()) at position \(p) (\(shown(loaded.tokenText(tokens[p])))), final norm \(lensNorm.rawValue)\(tuned.map { ", translators from \($0)" } ?? "")")
        let final = cells.last?.top.first.map { shown(loaded.tokenText($0.id)) } ?? ""
        var header = "layer        top tokens" + String(repeating: " ", count: 30) + "rank/P of \(final)"
        if let targetID { header += "   rank/P of \(shown(loaded.tokenText(targetID)))" }
        print(header + "   KL to final  entropy")
        func printRow(_ label: String, _ c: LogitLens.Cell) {
            let top = c.top.map { "\(shown(loaded.tokenText($0.id))) \(String(format: "%.2f", $0.probability))" }.joined(separator: ", ")
            var line = label.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + top.padding(toLength: 40, withPad: " ", startingAt: 0)
            line += String(format: " %6d %.3f", c.finalTokenRank, c.finalTokenProbability)
            if let r = c.targetRank, let pr = c.targetProbability { line += String(format: "   %6d %.3f", r, pr) }
            line += String(format: "   %10.3f  %7.3f", c.klToFinal, c.entropy)
            print(line)
        }
        for (label, c) in zip(lens.labels, cells) {
            printRow(label, c)
        }
        if let plainCells {
            print("\nlogit lens at the same position (for comparison)")
            for (label, c) in zip(lens.labels, plainCells) {
                printRow(label, c)
            }
        }
    }
}
