// `loupe heads` (head detectors, induction test) and `loupe attention` (patterns).

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

struct Heads: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score every head as a previous-token, duplicate-token and induction head (TransformerLens's detect_head).",
        discussion: """
            Without --prompt or --ids, runs the standard induction test: random tokens repeated twice, and reports the loss on each copy.

            Examples:
              loupe heads --length 60
              loupe heads --model smollm2-135m --top 10 --json
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Text to score the heads on.")
    var prompt: String?

    @Option(name: .long, help: "Comma-separated token ids to score the heads on.")
    var ids: String?

    @Option(name: .long, parsing: .unconditional, help: "Length of the random sequence of the induction test.", transform: Count.positive)
    var length: Int = 50

    @Option(name: .long, help: "Seed of the induction test.")
    var seed: UInt64 = 0

    @Option(name: .long, parsing: .unconditional, help: "Heads to list per pattern.", transform: Count.nonNegative)
    var top: Int = 5

    @Flag(name: .long, help: "Score mode abs (1 − mean |pattern − detection| · n) instead of mul (share of attention).")
    var abs = false

    @Flag(name: .long, help: "Print JSON: {\"previous_token\": [layer][head], \"duplicate_token\": …, \"induction\": …}.")
    var json = false

    @Option(name: .long, help: "For --svg/--png: the scores drawn (previous_token, duplicate_token, induction); --html draws all.")
    var pattern: HeadPattern = .induction

    @OptionGroup var figures: FigureOptions

    func run() throws {
        let loaded = try modelOptions.load(encoders: true)
        if loaded.model.config.bidirectional && prompt == nil && ids == nil {
            throw ValidationError("\(modelOptions.model) attends both ways and predicts masked tokens: the induction test (next-token loss on a repeated sequence) does not apply. Give --prompt or --ids to score its heads")
        }
        var tokens: [Int]
        var test: InductionTest? = nil
        if let ids {
            tokens = try parseIDs(ids, option: "--ids")
        } else if let prompt {
            tokens = try encodePrompt(prompt, chat: false, loaded: loaded)
        } else {
            // The induction test's sequence, after a BOS when the model has one.
            let bos = loaded.tokenizer?.bosID.map { [$0] } ?? []
            let induction = try loaded.model.inductionTest(length: length, seed: seed, prefix: bos)
            test = induction
            tokens = induction.tokens
        }
        let scores = try loaded.model.detectHeads(tokens: tokens, measure: abs ? .abs : .mul)
        func grid(_ t: Tensor) -> [[Float]] { (0..<t.shape[0]).map { l in Array(t.scalars[(l * t.shape[1])..<((l + 1) * t.shape[1])]) } }
        func heatmap(_ name: String, _ t: Tensor) throws -> Heatmap {
            try Heatmap(values: t.scalars, rows: t.shape[0], columns: t.shape[1], rowLabels: layerLabels(t.shape[0]),
                        columnLabels: headLabels(t.shape[1]), title: "\(name) head scores", scale: .sequential)
        }
        if figures.wanted {
            let chosen = pattern
            try figures.write(heatmap: { try scores[chosen].map { try heatmap(chosen.rawValue, $0) } }, views: {
                var views: [any HTMLView] = try HeadPattern.allCases.compactMap { k in try scores[k].map { try heatmap(k.rawValue, $0) } }
                if let test { views.append(try heatmap("induction test", test.scores)) }
                return views
            }, title: "Head scores", metadata: [("model", modelOptions.model), ("tokens", "\(tokens.count)")])
        }
        try figures.write(tensors: {
            let kinds = [pattern] + HeadPattern.allCases.filter { $0 != pattern }
            return kinds.compactMap { k in scores[k].map { ResultTensor(k.rawValue, $0, axes: ["layer", "head"]) } }
                + (test.map { [ResultTensor("induction_test", $0.scores, axes: ["layer", "head"])] } ?? [])
        }, settings: [("model", modelOptions.model), ("tokens", "\(tokens.count)"), ("measure", abs ? "abs" : "mul")])
        if json {
            var out: [String: [[Float]]] = [:]
            for (k, v) in scores { out[k.rawValue] = grid(v) }
            if let test { out["induction_test"] = grid(test.scores) }
            try printJSON(out)
            return
        }
        print("\(tokens.count) tokens; scores are the share of attention on the pattern\(abs ? " (abs mode)" : "")")
        for kind in HeadPattern.allCases {
            guard let t = scores[kind] else { continue }
            let h = t.shape[1]
            let best = t.scalars.indices.sorted { t.scalars[$0] > t.scalars[$1] }.prefix(top)
            print("\n\(kind.rawValue) heads: " + best.map { "L\($0 / h)H\($0 % h) \(String(format: "%.2f", t.scalars[$0]))" }.joined(separator: ", "))
        }
        if let test {
            print(String(format: "\ninduction test (%d random tokens, twice): loss %.2f on the first copy, %.2f on the second",
                         length, test.firstHalfLoss, test.secondHalfLoss))
        }
    }
}

struct Attention: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attention patterns: per-head summaries, or one head's pattern (raw and value-weighted) with its tokens.",
        discussion: """
            Examples:
              loupe attention --prompt "It is a truth universally acknowledged" --head 1.1
              loupe attention --model smollm2-135m --prompt "The cat sat on the mat. The cat" --html attention.html
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: .long, help: "Show one head's pattern: LAYER.HEAD, e.g. 5.1.")
    var head: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var figures: FigureOptions

    func run() throws {
        let loaded = try modelOptions.load(encoders: true)
        let tokens = try input.tokens(loaded)
        let heads = try loaded.model.attentionAnalysis(tokens: tokens)
        let names = loaded.positionLabels(tokens)
        var one: HeadAttention?
        if let head {
            let (layer, index) = try parseHead(head, option: "--head")
            guard let found = heads.first(where: { $0.layer == layer && $0.head == index }) else {
                throw ValidationError("--head must be LAYER.HEAD within \(loaded.model.config.nLayers) layers and \(loaded.model.config.nHeads) heads, found '\(head)'")
            }
            one = found
        }
        if figures.wanted {
            // SVG/PNG: the chosen head's pattern; HTML: every head's, interactive, and the chosen head's heatmap.
            let map = try one.map {
                try Heatmap(values: $0.pattern, rows: tokens.count, columns: tokens.count, rowLabels: names, columnLabels: names,
                            title: "L\($0.layer)H\($0.head) attention (query × key)", scale: .sequential)
            }
            try figures.write(heatmap: { map }, views: {
                var views: [any HTMLView] = [try AttentionPatternsView(title: "Attention patterns", tokens: tokens.map(loaded.tokenText),
                                                                      headsPerRow: loaded.model.config.nHeads, patterns: heads.map(\.pattern))]
                if let map { views.append(map) }
                return views
            }, title: "Attention patterns", metadata: [("model", modelOptions.model)], noHeatmap: "give --head LAYER.HEAD to draw one head's pattern")
        }
        try figures.write(tensors: {
            let (nL, nH, T) = (loaded.model.config.nLayers, loaded.model.config.nHeads, tokens.count)
            func stacked(_ part: (HeadAttention) -> [Float]) throws -> Tensor {
                var out = [Float](repeating: 0, count: nL * nH * T * T)
                for a in heads { out.replaceSubrange(((a.layer * nH + a.head) * T * T)..<((a.layer * nH + a.head + 1) * T * T), with: part(a)) }
                return try Tensor(shape: [nL, nH, T, T], scalars: out)
            }
            return [ResultTensor("pattern", try stacked(\.pattern), axes: ["layer", "head", "query", "key"]),
                    ResultTensor("value_weighted", try stacked(\.valueWeighted), axes: ["layer", "head", "query", "key"])]
        }, labels: ["query": names, "key": names], settings: [("model", modelOptions.model)])
        if let one {
            if json { try printJSON(one); return }
            let labels = tokens.map { shown(loaded.tokenText($0)) }
            for (title, values) in [("pattern", one.pattern), ("value-weighted", one.valueWeighted)] {
                print("\nL\(one.layer)H\(one.head) \(title) (rows: query, columns: key)")
                printGrid(rowLabels: labels, columnLabels: tokens.indices.map { "\($0)" }, values: { values[$0 * tokens.count + $1] }, format: "%.2f")
            }
            return
        }
        if json {
            try printJSON(heads.map {
                Summary(layer: $0.layer, head: $0.head, entropy: $0.entropy, toFirst: $0.toFirst, toPrevious: $0.toPrevious,
                        valueWeightedToFirst: $0.valueWeightedToFirst, toEarlier: $0.toEarlier, toSelf: $0.toSelf, toLater: $0.toLater,
                        toNext: $0.toNext, meanOffset: $0.meanOffset)
            })
            return
        }
        // A bidirectional model's heads may look forward: show which way each one looks.
        let both = loaded.model.config.bidirectional
        print("head      entropy  to first  to previous  to first (value-weighted)" + (both ? "  to next  to later  mean offset" : ""))
        for a in heads {
            print("L\(a.layer)H\(a.head)".padding(toLength: 8, withPad: " ", startingAt: 0)
                  + String(format: " %8.3f  %8.3f  %11.3f  %12.3f", a.entropy, a.toFirst, a.toPrevious, a.valueWeightedToFirst)
                  + (both ? String(format: "               %8.3f  %7.3f  %+11.2f", a.toNext, a.toLater, a.meanOffset) : ""))
        }
    }

    struct Summary: Encodable {
        let layer: Int, head: Int, entropy: Float, toFirst: Float, toPrevious: Float, valueWeightedToFirst: Float
        let toEarlier: Float, toSelf: Float, toLater: Float, toNext: Float, meanOffset: Float
    }
}
