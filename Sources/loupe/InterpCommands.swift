// Commands for the interpretability techniques: lens, heads, patch, attribute.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

/// A token given on the command line: an id, or text that must be exactly one token.
func singleToken(_ value: String, _ option: String, _ loaded: LoadedModel) throws -> Int {
    do { return try loaded.model.singleToken(value) } catch let error as ModelError { throw ValidationError("\(option): \(error)") }
}

/// A `[rows, columns]` grid of numbers with labels, for terminal tables: each number on its colour
/// (24-bit) when colours are on.
func printGrid(rowLabels: [String], columnLabels: [String], values: (Int, Int) -> Float, format: String = "%7.3f") {
    let flat = rowLabels.indices.flatMap { r in columnLabels.indices.map { values(r, $0) } }
    guard let grid = try? TerminalHeatmap(rowLabels: rowLabels, columnLabels: columnLabels, values: flat, format: format) else { return }
    print(grid.render(colored: terminalColors))
}

/// `L0`, `L1`, … and `H0`, `H1`, …: axis labels of layer × head grids.
func layerLabels(_ n: Int) -> [String] { (0..<n).map { "L\($0)" } }
func headLabels(_ n: Int) -> [String] { (0..<n).map { "H\($0)" } }

struct Lens: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The logit lens: each layer's residual stream read through the final norm and the unembedding.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: .long, help: "Position to read (default: the last).")
    var position: Int?

    @Option(name: .long, help: "A token to follow through the layers (id or single-token text).")
    var target: String?

    @Option(name: .long, help: "Top tokens to show per layer.")
    var topK: Int = 3

    @Flag(name: .long, help: "Also read the residual between attention and MLP (resid_mid).")
    var mid = false

    @Option(name: .long, help: "Final norm: recompute (each state's own statistics, as TransformerLens's accumulated_resid) or cached (the run's scale).")
    var norm: String = "recompute"

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
        guard let lensNorm = LensNorm(rawValue: norm) else { throw ValidationError("--norm must be recompute or cached") }
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
        if json {
            try printJSON(Output(tokens: tokens.map(loaded.tokenText), position: p, labels: lens.labels, cells: cells, logitLensCells: plainCells))
            return
        }
        print("\(name.lowercased()) at position \(p) (\(shown(loaded.tokenText(tokens[p])))), final norm \(lensNorm.rawValue)\(tuned.map { ", translators from \($0)" } ?? "")")
        let final = cells.last?.top.first.map { shown(loaded.tokenText($0.id)) } ?? ""
        var header = "layer        top tokens" + String(repeating: " ", count: 30) + "rank/P of \(final)"
        if let targetID { header += "   rank/P of \(shown(loaded.tokenText(targetID)))" }
        print(header + "   KL to final  entropy")
        for (label, c) in zip(lens.labels, cells) {
            let top = c.top.map { "\(shown(loaded.tokenText($0.id))) \(String(format: "%.2f", $0.probability))" }.joined(separator: ", ")
            var line = label.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + top.padding(toLength: 40, withPad: " ", startingAt: 0)
            line += String(format: " %6d %.3f", c.finalTokenRank, c.finalTokenProbability)
            if let r = c.targetRank, let pr = c.targetProbability { line += String(format: "   %6d %.3f", r, pr) }
            line += String(format: "   %10.3f  %7.3f", c.klToFinal, c.entropy)
            print(line)
        }
        if let plainCells {
            print("\nlogit lens at the same position (for comparison)")
            for (label, c) in zip(lens.labels, plainCells) {
                let top = c.top.map { "\(shown(loaded.tokenText($0.id))) \(String(format: "%.2f", $0.probability))" }.joined(separator: ", ")
                var line = label.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + top.padding(toLength: 40, withPad: " ", startingAt: 0)
                line += String(format: " %6d %.3f", c.finalTokenRank, c.finalTokenProbability)
                if let r = c.targetRank, let pr = c.targetProbability { line += String(format: "   %6d %.3f", r, pr) }
                line += String(format: "   %10.3f  %7.3f", c.klToFinal, c.entropy)
                print(line)
            }
        }
    }
}

struct Heads: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score every head as a previous-token, duplicate-token and induction head (TransformerLens's detect_head).",
        discussion: "Without --prompt or --ids, runs the standard induction test: random tokens repeated twice, and reports the loss on each copy.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Text to score the heads on.")
    var prompt: String?

    @Option(name: .long, help: "Comma-separated token ids to score the heads on.")
    var ids: String?

    @Option(name: .long, help: "Length of the random sequence of the induction test.")
    var length: Int = 50

    @Option(name: .long, help: "Seed of the induction test.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Heads to list per pattern.")
    var top: Int = 5

    @Flag(name: .long, help: "Score mode abs (1 − mean |pattern − detection| · n) instead of mul (share of attention).")
    var abs = false

    @Flag(name: .long, help: "Print JSON: {\"previous_token\": [layer][head], \"duplicate_token\": …, \"induction\": …}.")
    var json = false

    @Option(name: .long, help: "For --svg/--png: the scores drawn (previous_token, duplicate_token, induction); --html draws all.")
    var pattern: String = "induction"

    @OptionGroup var figures: FigureOptions

    func run() throws {
        let loaded = try modelOptions.load()
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
            guard let chosen = HeadPattern(rawValue: pattern) else {
                throw ValidationError("--pattern must be one of \(HeadPattern.allCases.map(\.rawValue).joined(separator: ", ")), found '\(pattern)'")
            }
            try figures.write(heatmap: { try scores[chosen].map { try heatmap(chosen.rawValue, $0) } }, views: {
                var views: [any HTMLView] = try HeadPattern.allCases.compactMap { k in try scores[k].map { try heatmap(k.rawValue, $0) } }
                if let test { views.append(try heatmap("induction test", test.scores)) }
                return views
            }, title: "Head scores", metadata: [("model", modelOptions.model), ("tokens", "\(tokens.count)")])
        }
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

struct Patch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Activation patching: the corrupted run with one activation from the clean run, for every layer and position or head.",
        discussion: "Hooks: resid_pre, resid_mid, resid_post, attn_out, mlp_out (layer × position); z, q, k, v, pattern (layer × head; --by-position for z, q, k, v: layer × position × head, for pattern: layer × head × position). Results equal TransformerLens's patching.get_act_patch_* functions.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Clean prompt.") var clean: String?
    @Option(name: .long, help: "Corrupted prompt (same number of tokens).") var corrupt: String?
    @Option(name: .customLong("clean-ids"), help: "Clean token ids.") var cleanIDs: String?
    @Option(name: .customLong("corrupt-ids"), help: "Corrupted token ids.") var corruptIDs: String?

    @Option(name: .long, help: "What to patch: resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, q, k, v, pattern.")
    var hook: String = "resid_pre"

    @Flag(name: .long, help: "For z, q, k, v and pattern: patch each position separately.")
    var byPosition = false

    @Option(name: .long, help: "logit-diff (answer − wrong), normalized-logit-diff, prob (of answer), loss (of answer).")
    var metric: PatchMetricKind = .logitDiff

    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String
    @Option(name: .long, help: "Wrong token for logit differences (id or single-token text).") var wrong: String?

    @Flag(name: .long, help: "Attribution patching instead: the linear estimate (clean − corrupted) · gradient from one forward and backward pass.")
    var attribution = false

    @Flag(name: .long, help: "Run activation and attribution patching and print their Pearson correlation and times.")
    var compare = false

    @Flag(name: .long, help: "Print JSON: {hook, axes, result, clean, corrupted}.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable {
        let hook: String; let axes: [String]; let result: AnyNested; let clean: Float; let corrupted: Float
        var attributionPearson: Float? = nil
    }

    func run() throws {
        let loaded = try modelOptions.load()
        func ids(_ text: String?, _ list: String?, _ name: String) throws -> [Int] {
            if let list { return try parseIDs(list, option: "--\(name)-ids") }
            guard let text, !text.isEmpty else { throw ValidationError("give --\(name) TEXT or --\(name)-ids 1,2,3") }
            return try loaded.requireTokenizer().encodeForModel(text)
        }
        let cleanTokens = try ids(clean, cleanIDs, "clean"), corruptTokens = try ids(corrupt, corruptIDs, "corrupt")
        let a = try singleToken(answer, "--answer", loaded)
        let b = try wrong.map { try singleToken($0, "--wrong", loaded) }
        guard b != nil || !metric.needsWrongToken else { throw ValidationError("--metric \(metric.rawValue) needs --wrong") }
        let patchMetric = try metric.metric(answer: a, wrong: b)
        guard let target = PatchTarget(shortName: hook, byPosition: byPosition) else {
            throw ValidationError("--hook must be one of \(PatchTarget.shortNames.joined(separator: ", ")); found '\(hook)'")
        }
        var result: PatchResult
        var pearson: Float? = nil
        let t0 = Date()
        if attribution {
            result = try loaded.model.attributionPatch(clean: cleanTokens, corrupted: corruptTokens, targets: [target], metric: patchMetric)[0]
        } else {
            let progress = ProgressReporter("patching")
            result = try loaded.model.activationPatch(clean: cleanTokens, corrupted: corruptTokens, target: target,
                                                      metric: patchMetric) { l, n in
                progress.update(l, n, extra: "groups")
            }
            progress.finish()
        }
        if compare && !attribution {
            let seconds = Date().timeIntervalSince(t0)
            let t1 = Date()
            let estimate = try loaded.model.attributionPatch(clean: cleanTokens, corrupted: corruptTokens, targets: [target], metric: patchMetric)[0]
            let r = pearsonCorrelation(result.values.scalars, estimate.values.scalars)
            pearson = r
            let line = String(format: "attribution vs activation patching (%@): Pearson r = %.3f; activation %.2f s, attribution %.2f s",
                              target.rawValue, r, seconds, Date().timeIntervalSince(t1))
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        let values = metric.isNormalized ? result.normalized : result.values
        if figures.wanted {
            guard values.rank == 2 else { throw ValidationError("--html/--svg/--png draw layer × position and layer × head results; --by-position results have three axes") }
            let columns = result.axes[1] == "pos" ? loaded.positionLabels(cleanTokens) : headLabels(values.shape[1])
            let map = try Heatmap(values: values.scalars, rows: values.shape[0], columns: values.shape[1],
                                  rowLabels: layerLabels(values.shape[0]), columnLabels: columns,
                                  title: "patching \(target.rawValue): \(metric.rawValue)")
            try figures.write(heatmap: { map }, views: { [map] }, title: "Activation patching",
                              metadata: [("model", modelOptions.model), ("clean", clean ?? cleanIDs ?? ""), ("corrupted", corrupt ?? corruptIDs ?? ""),
                                         ("metric", metric.rawValue), ("clean value", String(format: "%.4f", result.clean)), ("corrupted value", String(format: "%.4f", result.corrupted))])
        }
        if json {
            try printJSON(Output(hook: target.rawValue, axes: result.axes, result: AnyNested(values),
                                 clean: result.clean, corrupted: result.corrupted, attributionPearson: pearson))
            return
        }
        print("patching \(target.rawValue), metric \(metric.rawValue): clean \(String(format: "%.3f", result.clean)), corrupted \(String(format: "%.3f", result.corrupted))")
        let shape = values.shape
        if shape.count == 2 {
            let columns = result.axes[1] == "pos"
                ? cleanTokens.indices.map { "\($0)" } : (0..<shape[1]).map { "H\($0)" }
            if result.axes[1] == "pos" {
                print("positions: " + cleanTokens.enumerated().map { "\($0.offset)=\(shown(loaded.tokenText($0.element)))" }.joined(separator: " "))
            }
            printGrid(rowLabels: (0..<shape[0]).map { "L\($0)" }, columnLabels: columns) { values.scalars[$0 * shape[1] + $1] }
        } else {
            for l in 0..<shape[0] {
                print("\nlayer \(l)")
                let inner = Array(values.scalars[(l * shape[1] * shape[2])..<((l + 1) * shape[1] * shape[2])])
                let rowNames = result.axes[1] == "pos" ? (0..<shape[1]).map { "pos \($0)" } : (0..<shape[1]).map { "H\($0)" }
                let colNames = result.axes[2] == "head" ? (0..<shape[2]).map { "H\($0)" } : (0..<shape[2]).map { "\($0)" }
                printGrid(rowLabels: rowNames, columnLabels: colNames) { inner[$0 * shape[2] + $1] }
            }
        }
    }
}

/// A tensor as nested JSON arrays.
struct AnyNested: Encodable {
    let tensor: Tensor
    init(_ t: Tensor) { tensor = t }
    func encode(to encoder: Encoder) throws {
        var container = encoder.unkeyedContainer()
        try encodeLevel(&container, dims: tensor.shape, offset: 0)
    }
    private func encodeLevel(_ c: inout UnkeyedEncodingContainer, dims: [Int], offset: Int) throws {
        if dims.count == 1 {
            for i in 0..<dims[0] { try c.encode(tensor.scalars[offset + i]) }
            return
        }
        let stride = dims.dropFirst().reduce(1, *)
        for i in 0..<dims[0] {
            var nested = c.nestedUnkeyedContainer()
            try encodeLevel(&nested, dims: Array(dims.dropFirst()), offset: offset + i * stride)
        }
    }
}

struct Attribute: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Direct logit attribution: each head's and each component's direct contribution to a logit (difference).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String
    @Option(name: .long, help: "Wrong token: attribute logit[answer] − logit[wrong].") var wrong: String?
    @Option(name: .long, help: "Position (default: the last).") var position: Int?
    @Option(name: .long, help: "Heads to list.") var top: Int = 10
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

struct Attention: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attention patterns: per-head summaries, or one head's pattern (raw and value-weighted) with its tokens.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: .long, help: "Show one head's pattern: LAYER.HEAD, e.g. 5.1.")
    var head: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var figures: FigureOptions

    func run() throws {
        let loaded = try modelOptions.load()
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
        if let one {
            if json { try printJSON(one); return }
            let labels = tokens.map { shown(loaded.tokenText($0)) }
            for (title, values) in [("pattern", one.pattern), ("value-weighted", one.valueWeighted)] {
                print("\nL\(one.layer)H\(one.head) \(title) (rows: query, columns: key)")
                printGrid(rowLabels: labels, columnLabels: tokens.indices.map { "\($0)" }, values: { values[$0 * tokens.count + $1] }, format: "%.2f")
            }
            return
        }
        if json { try printJSON(heads.map { Summary(layer: $0.layer, head: $0.head, entropy: $0.entropy, toFirst: $0.toFirst, toPrevious: $0.toPrevious, valueWeightedToFirst: $0.valueWeightedToFirst) }); return }
        print("head      entropy  to first  to previous  to first (value-weighted)")
        for a in heads {
            print("L\(a.layer)H\(a.head)".padding(toLength: 8, withPad: " ", startingAt: 0)
                  + String(format: " %8.3f  %8.3f  %11.3f  %12.3f", a.entropy, a.toFirst, a.toPrevious, a.valueWeightedToFirst))
        }
    }

    struct Summary: Encodable { let layer: Int; let head: Int; let entropy: Float; let toFirst: Float; let toPrevious: Float; let valueWeightedToFirst: Float }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Causal tracing (ROME): noise on the subject's embeddings, then restore one state at a time.",
        discussion: "Prints P(answer) restored at each layer × position: the residual stream after each block (--kind resid), or windows of MLP or attention outputs (--kind mlp|attn, --window, 10 in ROME).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "The prompt.") var prompt: String
    @Option(name: .long, help: "The subject: text inside the prompt whose tokens get noise.") var subject: String
    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String
    @Option(name: .long, help: "resid, mlp or attn.") var kind: String = "resid"
    @Option(name: .long, help: "Blocks restored together for mlp and attn.") var window: Int = 10
    @Option(name: .long, help: "Noise samples to average.") var samples: Int = 5
    @Option(name: .long, help: "Noise standard deviation (default: 3× the embedding's).") var noise: Float?
    @Option(name: .long, help: "Seed of the noise.") var seed: UInt64 = 0
    @Flag(name: .long, help: "Print JSON: {kind, window, subject, clean, corrupted, restored: [layer][pos]}.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable {
        let kind: String; let window: Int; let subject: [Int]; let tokens: [String]
        let clean: Float; let corrupted: Float; let restored: AnyNested
    }

    func run() throws {
        guard let traceKind = TraceKind(rawValue: kind) else { throw ValidationError("--kind must be resid, mlp or attn") }
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let tokens = try encodePrompt(prompt, chat: false, loaded: loaded)
        // The subject's token span: tokens overlapping the subject's bytes in the prompt.
        guard let range = prompt.range(of: subject) else { throw ValidationError("--subject \(subject.quotedForDisplay) is not in the prompt") }
        let startByte = prompt[..<range.lowerBound].utf8.count, endByte = startByte + subject.utf8.count
        var offset = 0
        var positions: [Int] = []
        for (i, t) in tokens.enumerated() {
            let n = try tokenizer.decodeBytes([t]).count
            if (t == tokenizer.bosID && i == 0) { continue }
            if offset < endByte && offset + n > startByte { positions.append(i) }
            offset += n
        }
        guard let first = positions.first, let last = positions.last else { throw ValidationError("--subject covers no token") }
        let a = try singleToken(answer, "--answer", loaded)
        let progress = ProgressReporter("tracing")
        let trace = try loaded.model.causalTrace(tokens: tokens, subject: first..<(last + 1), answer: a, kind: traceKind,
                                                 window: window, noise: noise, samples: samples, seed: seed) { done, total in
            progress.update(done, total)
        }
        progress.finish()
        if figures.wanted {
            let (nL, T) = (trace.restored.shape[0], trace.restored.shape[1])
            let map = try Heatmap(values: (0..<(T * nL)).map { trace.restored.scalars[($0 % nL) * T + $0 / nL] }, rows: T, columns: nL,
                                  rowLabels: tokens.enumerated().map { "\($0.offset)\(trace.subject.contains($0.offset) ? "*" : "") \(loaded.tokenText($0.element))" },
                                  columnLabels: (0..<nL).map { "\($0)" },
                                  title: "P(\(loaded.tokenText(a))) with \(traceKind.rawValue) restored", scale: .sequential)
            try figures.write(heatmap: { map }, views: { [map] }, title: "Causal tracing",
                              metadata: [("model", modelOptions.model), ("prompt", prompt), ("subject", subject),
                                         ("clean", String(format: "%.4f", trace.cleanProbability)), ("corrupted", String(format: "%.4f", trace.corruptedProbability))])
        }
        if json {
            try printJSON(Output(kind: traceKind.rawValue, window: trace.window, subject: Array(trace.subject),
                                 tokens: tokens.map(loaded.tokenText), clean: trace.cleanProbability,
                                 corrupted: trace.corruptedProbability, restored: AnyNested(trace.restored)))
            return
        }
        print("causal trace of P(\(shown(loaded.tokenText(a)))), restoring \(traceKind.rawValue)\(traceKind == .resid ? "" : " (window \(trace.window))"); subject tokens \(first)..<\(last + 1)")
        print(String(format: "clean %.3f, corrupted %.3f (mean of %d noise samples)", trace.cleanProbability, trace.corruptedProbability, samples))
        let labels = tokens.enumerated().map { "\($0.offset)\(trace.subject.contains($0.offset) ? "*" : "") \(shown(loaded.tokenText($0.element)))" }
        let T = tokens.count
        // Rows: positions (as in ROME's figures); columns: layers.
        printGrid(rowLabels: labels, columnLabels: (0..<trace.restored.shape[0]).map { "\($0)" }, values: { p, l in trace.restored.scalars[l * T + p] }, format: "%.2f")
    }
}

struct Path: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "path-patch",
        abstract: "Path patching: each head as the sender, through the direct path only, to the logits or to receiver heads' inputs.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Clean prompt.") var clean: String
    @Option(name: .long, help: "Corrupted prompt (same number of tokens).") var corrupt: String
    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String
    @Option(name: .long, help: "Wrong token (id or single-token text).") var wrong: String
    @Option(name: .long, help: "logits, or LAYER:HEAD,HEAD…:q|k|v (e.g. 9:6,9:q for the heads 6 and 9 of layer 9's queries).")
    var receiver: String = "logits"
    @Flag(name: .long, help: "Print JSON: {receiver, axes, result, clean, corrupted}.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable { let receiver: String; let axes: [String]; let result: AnyNested; let clean: Float; let corrupted: Float }

    func run() throws {
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let cleanTokens = tokenizer.encodeForModel(clean), corruptTokens = tokenizer.encodeForModel(corrupt)
        let metric = PatchMetric.logitDifference(answer: try singleToken(answer, "--answer", loaded), wrong: try singleToken(wrong, "--wrong", loaded))
        let target: PathReceiver
        if receiver == "logits" {
            target = .logits
        } else {
            let parts = receiver.split(separator: ":")
            guard parts.count == 3, let layer = Int(parts[0]), let input = PathReceiver.HeadInput(rawValue: String(parts[2])) else {
                throw ValidationError("--receiver must be logits or LAYER:HEADS:q|k|v, found '\(receiver)'")
            }
            let heads = try parts[1].split(separator: ",").map { s -> Int in
                guard let h = Int(s) else { throw ValidationError("--receiver: '\(s)' is not a head index") }
                return h
            }
            target = .heads(layer: layer, heads: heads, input: input)
        }
        let progress = ProgressReporter("path patching")
        let result = try loaded.model.pathPatch(clean: cleanTokens, corrupted: corruptTokens, receiver: target, metric: metric) { done, total in
            progress.update(done + 1, total, extra: "senders")
        }
        progress.finish()
        let normalized = result.normalized
        if figures.wanted {
            let (nL, h) = (normalized.shape[0], normalized.shape[1])
            // 0 = no effect; −1 = the sender alone carries the whole clean/corrupted difference.
            let map = try Heatmap(values: normalized.scalars.map { $0 - 1 }, rows: nL, columns: h, rowLabels: layerLabels(nL), columnLabels: headLabels(h),
                                  title: "path patching to \(receiver): (metric − clean) / (clean − corrupted)")
            try figures.write(heatmap: { map }, views: { [map] }, title: "Path patching",
                              metadata: [("model", modelOptions.model), ("clean", clean), ("corrupted", corrupt), ("receiver", receiver)])
        }
        if json {
            try printJSON(Output(receiver: receiver, axes: result.axes, result: AnyNested(result.values), clean: result.clean, corrupted: result.corrupted))
            return
        }
        print(String(format: "path patching to %@: clean %.3f, corrupted %.3f; cells: (metric − clean) / (clean − corrupted)", receiver, result.clean, result.corrupted))
        let (nL, h) = (result.values.shape[0], result.values.shape[1])
        printGrid(rowLabels: (0..<nL).map { "L\($0)" }, columnLabels: (0..<h).map { "H\($0)" },
                  values: { l, head in normalized.scalars[l * h + head] - 1 })
    }
}
