// `loupe patch` (activation and attribution patching), `loupe path-patch` and `loupe trace` (causal tracing).

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

struct Patch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Activation patching: the corrupted run with one activation from the clean run, for every layer and position or head.",
        discussion: """
            Hooks: resid_pre, resid_mid, resid_post, attn_out, mlp_out (layer × position); z, q, k, v, pattern (layer × head; --by-position for z, q, k, v: layer × position × head, for pattern: layer × head × position). Results equal TransformerLens's patching.get_act_patch_* functions.

            Examples:
              loupe patch --model smollm2-135m --clean "When Mary and John went to the store, John gave a drink to" --corrupt "When Mary and John went to the store, Mary gave a drink to" --answer " Mary" --wrong " John" --hook resid_pre
              loupe patch --model smollm2-135m --dataset pairs.jsonl --hook z --json
            """)

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

    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String?
    @Option(name: .long, help: "Wrong token for logit differences (id or single-token text).") var wrong: String?
    @Option(name: .long, parsing: .unconditional, help: "The scored position (negative: from the end). Default: the last; for a masked-LM, the clean prompt's [MASK].")
    var position: Int?
    @Option(name: .long, help: "A JSON Lines dataset of prompt pairs instead of one: {\"clean\", \"corrupt\", \"answer\", \"wrong\", \"position\"} per line (position: the scored token, negative from the end; default the last). Results are means over the pairs.")
    var dataset: String?

    @Flag(name: .long, help: "Attribution patching instead: the linear estimate (clean − corrupted) · gradient from one forward and backward pass.")
    var attribution = false

    @Flag(name: .long, help: "Run activation and attribution patching and print their Pearson correlation and times.")
    var compare = false

    @Flag(name: .long, help: "Print JSON: {hook, axes, result, clean, corrupted, pairs}.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable {
        let hook: String; let axes: [String]; let result: AnyNested; let clean: Float; let corrupted: Float
        var attributionPearson: Float? = nil
        var pairs: Int? = nil
    }

    func run() throws {
        if dataset != nil {
            guard clean == nil, corrupt == nil, cleanIDs == nil, corruptIDs == nil, answer == nil, wrong == nil else {
                throw ValidationError("--dataset gives the prompts and tokens per line: leave out --clean, --corrupt, --clean-ids, --corrupt-ids, --answer and --wrong")
            }
            guard !attribution && !compare else { throw ValidationError("--attribution and --compare take one prompt pair, not --dataset") }
        } else if answer == nil {
            throw ValidationError("give --answer (with --clean and --corrupt), or --dataset FILE.jsonl")
        }
        let loaded = try modelOptions.load(encoders: !attribution && !compare)
        guard let target = PatchTarget(shortName: hook, byPosition: byPosition) else {
            throw ValidationError("--hook must be one of \(PatchTarget.shortNames.joined(separator: ", ")); found '\(hook)'")
        }
        if let dataset {
            let pairs = try readPatchPairs(dataset, metric: metric, loaded: loaded)
            let progress = ProgressReporter("patching")
            let result = try loaded.model.activationPatch(pairs: pairs, target: target) { done, total in progress.update(done, total, extra: "pairs") }
            progress.finish()
            let first = pairs[0].clean, scored = pairs[0].position ?? -1
            let shown = Array(first.prefix(scored < 0 ? first.count + scored + 1 : scored + 1))
            try report(result, target: target, loaded: loaded, cleanTokens: shown, pearson: nil, pairs: pairs.count)
            return
        }
        func ids(_ text: String?, _ list: String?, _ name: String) throws -> [Int] {
            if let list { return try parseIDs(list, option: "--\(name)-ids") }
            guard let text, !text.isEmpty else { throw ValidationError("give --\(name) TEXT or --\(name)-ids 1,2,3") }
            return try loaded.requireTokenizer().encodeForModel(text)
        }
        let cleanTokens = try ids(clean, cleanIDs, "clean"), corruptTokens = try ids(corrupt, corruptIDs, "corrupt")
        // A masked-LM is scored where it fills in: the clean prompt's mask unless --position says otherwise.
        var scored = position
        if scored == nil && loaded.model.config.bidirectional {
            guard let mask = loaded.tokenizer?.maskID, let at = cleanTokens.firstIndex(of: mask) else {
                throw ValidationError("\(modelOptions.model) is a masked-LM: give --position, or a [MASK] in --clean to score")
            }
            scored = at
        }
        let a = try singleToken(answer ?? "", "--answer", loaded)
        let b = try wrong.map { try singleToken($0, "--wrong", loaded) }
        guard b != nil || !metric.needsWrongToken else { throw ValidationError("--metric \(metric.rawValue) needs --wrong") }
        let patchMetric = try metric.metric(answer: a, wrong: b)
        if scored != nil && (attribution || compare) { throw ValidationError("--position works with activation patching; --attribution and --compare score the last position") }
        // A causal model's result has the positions up to the scored one.
        var shownTokens = cleanTokens
        if let p = scored, !loaded.model.config.bidirectional, (p < 0 ? cleanTokens.count + p : p) >= 0 {
            shownTokens = Array(cleanTokens.prefix((p < 0 ? cleanTokens.count + p : p) + 1))
        }
        var result: PatchResult
        var pearson: Float? = nil
        let t0 = Date()
        if attribution {
            result = try loaded.model.attributionPatch(clean: cleanTokens, corrupted: corruptTokens, targets: [target], metric: patchMetric)[0]
        } else {
            let progress = ProgressReporter("patching")
            result = try loaded.model.activationPatch(clean: cleanTokens, corrupted: corruptTokens, target: target,
                                                      metric: patchMetric, position: scored) { l, n in
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
        try report(result, target: target, loaded: loaded, cleanTokens: shownTokens, pearson: pearson, pairs: nil)
    }

    /// Prints (or draws) a result; `pairs` is the dataset's size, nil for one pair.
    private func report(_ result: PatchResult, target: PatchTarget, loaded: LoadedModel, cleanTokens: [Int], pearson: Float?, pairs: Int?) throws {
        let values = metric.isNormalized ? result.normalized : result.values
        if figures.wanted {
            guard values.rank == 2 else { throw ValidationError("--html/--svg/--png draw layer × position and layer × head results; --by-position results have three axes") }
            let columns = result.axes[1] == "pos" ? loaded.positionLabels(cleanTokens) : headLabels(values.shape[1])
            let map = try Heatmap(values: values.scalars, rows: values.shape[0], columns: values.shape[1],
                                  rowLabels: layerLabels(values.shape[0]), columnLabels: columns,
                                  title: "patching \(target.rawValue): \(metric.rawValue)")
            try figures.write(heatmap: { map }, views: { [map] }, title: "Activation patching",
                              metadata: [("model", modelOptions.model), ("clean", dataset.map { "\(pairs ?? 0) pairs of \($0)" } ?? clean ?? cleanIDs ?? ""),
                                         ("corrupted", dataset == nil ? corrupt ?? corruptIDs ?? "" : "per pair"),
                                         ("metric", metric.rawValue), ("clean value", String(format: "%.4f", result.clean)), ("corrupted value", String(format: "%.4f", result.corrupted))])
        }
        try figures.write(tensors: { [ResultTensor("result", values, axes: result.axes)] }, labels: ["pos": loaded.positionLabels(cleanTokens)],
                          settings: [("model", modelOptions.model), ("hook", target.rawValue), ("metric", metric.rawValue),
                                     ("clean", "\(result.clean)"), ("corrupted", "\(result.corrupted)")] + (pairs.map { [("pairs", "\($0)")] } ?? []))
        if json {
            try printJSON(Output(hook: target.rawValue, axes: result.axes, result: AnyNested(values),
                                 clean: result.clean, corrupted: result.corrupted, attributionPearson: pearson, pairs: pairs))
            return
        }
        let means = pairs.map { " (means over \($0) pairs)" } ?? ""
        print("patching \(target.rawValue), metric \(metric.rawValue): clean \(String(format: "%.3f", result.clean)), corrupted \(String(format: "%.3f", result.corrupted))\(means)")
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

struct Path: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "path-patch",
        abstract: "Path patching: each head as the sender, through the direct path only, to the logits or to receiver heads' inputs.",
        discussion: """
            Example:
              loupe path-patch --model smollm2-135m --clean "When Mary and John went to the store, John gave a drink to" --corrupt "When Mary and John went to the store, Mary gave a drink to" --answer " Mary" --wrong " John" --receiver logits
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Clean prompt.") var clean: String?
    @Option(name: .long, help: "Corrupted prompt (same number of tokens).") var corrupt: String?
    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String?
    @Option(name: .long, help: "Wrong token (id or single-token text).") var wrong: String?
    @Option(name: .long, help: "A JSON Lines dataset of prompt pairs instead of one: {\"clean\", \"corrupt\", \"answer\", \"wrong\", \"position\"} per line; results are means over the pairs.")
    var dataset: String?
    @Option(name: .long, help: "logits, or LAYER:HEAD,HEAD…:q|k|v (e.g. 9:6,9:q for the heads 6 and 9 of layer 9's queries).")
    var receiver: String = "logits"
    @Flag(name: .long, help: "Print JSON: {receiver, axes, result, clean, corrupted}.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable { let receiver: String; let axes: [String]; let result: AnyNested; let clean: Float; let corrupted: Float; var pairs: Int? }

    func run() throws {
        let pairsGiven: Bool
        if dataset != nil {
            guard clean == nil, corrupt == nil, answer == nil, wrong == nil else {
                throw ValidationError("--dataset gives the prompts and tokens per line: leave out --clean, --corrupt, --answer and --wrong")
            }
            pairsGiven = true
        } else {
            guard clean != nil, corrupt != nil, answer != nil, wrong != nil else {
                throw ValidationError("give --clean, --corrupt, --answer and --wrong, or --dataset FILE.jsonl")
            }
            pairsGiven = false
        }
        let loaded = try modelOptions.load()
        let pairs: [PatchPair]
        if let dataset {
            pairs = try readPatchPairs(dataset, metric: .logitDiff, loaded: loaded)
        } else {
            let tokenizer = try loaded.requireTokenizer()
            pairs = [PatchPair(clean: tokenizer.encodeForModel(clean ?? ""), corrupted: tokenizer.encodeForModel(corrupt ?? ""),
                               metric: .logitDifference(answer: try singleToken(answer ?? "", "--answer", loaded), wrong: try singleToken(wrong ?? "", "--wrong", loaded)))]
            guard pairs[0].clean.count == pairs[0].corrupted.count else {
                throw ValidationError(InterpError.lengthMismatch(clean: pairs[0].clean.count, corrupted: pairs[0].corrupted.count).description)
            }
        }
        let target: PathReceiver
        do { target = try PathReceiver(parsing: receiver) } catch let e as InterpError { throw ValidationError("--receiver: \(e)") }
        let progress = ProgressReporter("path patching")
        let result = try loaded.model.pathPatch(pairs: pairs, receiver: target) { done, total in
            progress.update(done, total, extra: "sender layers")
        }
        progress.finish()
        let normalized = result.normalized
        if figures.wanted {
            let (nL, h) = (normalized.shape[0], normalized.shape[1])
            // 0 = no effect; −1 = the sender alone carries the whole clean/corrupted difference.
            let map = try Heatmap(values: normalized.scalars.map { $0 - 1 }, rows: nL, columns: h, rowLabels: layerLabels(nL), columnLabels: headLabels(h),
                                  title: "path patching to \(receiver): (metric − clean) / (clean − corrupted)")
            try figures.write(heatmap: { map }, views: { [map] }, title: "Path patching",
                              metadata: [("model", modelOptions.model), ("clean", dataset.map { "\(pairs.count) pairs of \($0)" } ?? clean ?? ""),
                                         ("corrupted", dataset == nil ? corrupt ?? "" : "per pair"), ("receiver", receiver)])
        }
        try figures.write(tensors: { [ResultTensor("result", result.values, axes: result.axes), ResultTensor("normalized", normalized, axes: result.axes)] },
                          settings: [("model", modelOptions.model), ("receiver", receiver), ("clean", "\(result.clean)"), ("corrupted", "\(result.corrupted)")])
        if json {
            try printJSON(Output(receiver: receiver, axes: result.axes, result: AnyNested(result.values), clean: result.clean, corrupted: result.corrupted,
                                 pairs: pairsGiven ? pairs.count : nil))
            return
        }
        print(String(format: "path patching to %@: clean %.3f, corrupted %.3f; cells: (metric − clean) / (clean − corrupted)", receiver, result.clean, result.corrupted))
        let (nL, h) = (result.values.shape[0], result.values.shape[1])
        printGrid(rowLabels: (0..<nL).map { "L\($0)" }, columnLabels: (0..<h).map { "H\($0)" },
                  values: { l, head in normalized.scalars[l * h + head] - 1 })
    }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Causal tracing (ROME): noise on the subject's embeddings, then restore one state at a time.",
        discussion: """
            Prints P(answer) restored at each layer × position: the residual stream after each block (--kind resid), or windows of MLP or attention outputs (--kind mlp|attn, --window, 10 in ROME).

            Example:
              loupe trace --model smollm2-135m --prompt "The Eiffel Tower is located in the city of" --subject "Eiffel Tower" --answer " Paris"
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "The prompt.") var prompt: String
    @Option(name: .long, help: "The subject: text inside the prompt whose tokens get noise.") var subject: String
    @Option(name: .long, help: "Answer token (id or single-token text).") var answer: String
    @Option(name: .long, help: "What is restored: the residual stream, or windows of MLP or attention outputs.") var kind: TraceKind = .resid
    @Option(name: .long, parsing: .unconditional, help: "Blocks restored together for mlp and attn.", transform: Count.positive) var window: Int = 10
    @Option(name: .long, parsing: .unconditional, help: "Noise samples to average.", transform: Count.positive) var samples: Int = 5
    @Option(name: .long, help: "Noise standard deviation (default: 3× the embedding's).") var noise: Float?
    @Option(name: .long, help: "Seed of the noise.") var seed: UInt64 = 0
    @Flag(name: .long, help: "Print JSON: {kind, window, subject, clean, corrupted, restored: [layer][pos]}.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable {
        let kind: String; let window: Int; let subject: [Int]; let tokens: [String]
        let clean: Float; let corrupted: Float; let restored: AnyNested
    }

    func run() throws {
        let traceKind = kind
        let loaded = try modelOptions.load()
        let tokens = try encodePrompt(prompt, chat: false, loaded: loaded)
        let span: Range<Int>
        do { span = try loaded.model.subjectPositions(subject, in: prompt, tokens: tokens) } catch let e as InterpError { throw ValidationError("--subject: \(e)") }
        let a = try singleToken(answer, "--answer", loaded)
        let progress = ProgressReporter("tracing")
        let trace = try loaded.model.causalTrace(tokens: tokens, subject: span, answer: a, kind: traceKind,
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
        try figures.write(tensors: { [ResultTensor("restored", trace.restored, axes: ["layer", "pos"])] }, labels: ["pos": loaded.positionLabels(tokens)],
                          settings: [("model", modelOptions.model), ("kind", traceKind.rawValue), ("window", "\(trace.window)"),
                                     ("subject", "\(trace.subject.lowerBound)..<\(trace.subject.upperBound)"),
                                     ("clean", "\(trace.cleanProbability)"), ("corrupted", "\(trace.corruptedProbability)")])
        if json {
            try printJSON(Output(kind: traceKind.rawValue, window: trace.window, subject: Array(trace.subject),
                                 tokens: tokens.map(loaded.tokenText), clean: trace.cleanProbability,
                                 corrupted: trace.corruptedProbability, restored: AnyNested(trace.restored)))
            return
        }
        print("causal trace of P(\(shown(loaded.tokenText(a)))), restoring \(traceKind.rawValue)\(traceKind == .resid ? "" : " (window \(trace.window))"); subject tokens \(span.lowerBound)..<\(span.upperBound)")
        print(String(format: "clean %.3f, corrupted %.3f (mean of %d noise samples)", trace.cleanProbability, trace.corruptedProbability, samples))
        let labels = tokens.enumerated().map { "\($0.offset)\(trace.subject.contains($0.offset) ? "*" : "") \(shown(loaded.tokenText($0.element)))" }
        let T = tokens.count
        // Rows: positions (as in ROME's figures); columns: layers.
        printGrid(rowLabels: labels, columnLabels: (0..<trace.restored.shape[0]).map { "\($0)" }, values: { p, l in trace.restored.scalars[l * T + p] }, format: "%.2f")
    }
}

/// One line of a patching dataset.
struct PatchPairLine: Decodable { var clean: String; var corrupt: String; var answer: String; var wrong: String?; var position: Int? }

/// The prompt pairs of a `--dataset` file, tokenized, with each line's tokens and metric checked.
func readPatchPairs(_ path: String, metric: PatchMetricKind, loaded: LoadedModel) throws -> [PatchPair] {
    let lines: [PatchPairLine] = try readJSONLines(path, option: "--dataset",
                                                   shape: "{\"clean\": TEXT, \"corrupt\": TEXT, \"answer\": TOKEN, \"wrong\": TOKEN, \"position\": N}")
    let tokenizer = try loaded.requireTokenizer()
    return try lines.enumerated().map { i, line in
        func token(_ text: String, _ field: String) throws -> Int {
            do { return try loaded.model.singleToken(text) } catch { throw ValidationError("--dataset \(path), line \(i + 1): \(field) \(text.quotedForDisplay): \(error)") }
        }
        let answer = try token(line.answer, "answer")
        let wrong = try line.wrong.map { try token($0, "wrong") }
        guard wrong != nil || !metric.needsWrongToken else {
            throw ValidationError("--dataset \(path), line \(i + 1): --metric \(metric.rawValue) needs a \"wrong\" token on every line")
        }
        let clean = tokenizer.encodeForModel(line.clean), corrupt = tokenizer.encodeForModel(line.corrupt)
        guard clean.count == corrupt.count else {
            throw ValidationError("--dataset \(path), line \(i + 1): the clean prompt has \(clean.count) tokens and the corrupted \(corrupt.count); a pair must have one length")
        }
        return PatchPair(clean: clean, corrupted: corrupt, metric: try metric.metric(answer: answer, wrong: wrong), position: line.position)
    }
}
