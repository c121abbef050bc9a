// What each endpoint computes, through the same library calls as the CLI's commands (`loupe run`, `lens`,
// `attention`, `heads`, `neurons`, `patch`). Blocking: the server runs these on its compute lane.

import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor

/// The explorer's analyses of one loaded model, with the request limits they enforce.
struct Analyses: Sendable {
    let loaded: LoadedModel
    let name: String
    let limits: ExplorerLimits
    /// The SAEs and the tuned lens the server was started with for this model.
    var saes: [Attachments.SAE] = []
    var tunedLens: Attachments.Lens? = nil
    /// Weight-only results kept across requests.
    var weightResults = WeightResults()

    var config: ModelConfig { loaded.model.config }

    /// Most tokens a prompt may have: the server's limit, within the model's context.
    var maxTokens: Int { min(limits.maxPromptTokens, config.nCtx) }

    func info(_ ids: [Int]) -> [TokenInfo] { ids.map { TokenInfo(id: $0, text: loaded.tokenText($0)) } }

    func candidates(_ predictions: [TokenPrediction]) -> [Candidate] {
        predictions.enumerated().map { Candidate(rank: $0.offset + 1, id: $0.element.id, token: loaded.tokenText($0.element.id),
                                                 probability: $0.element.probability, logit: $0.element.logit) }
    }

    /// The tokens of a prompt given as text (`prompt`) or ids (`ids`), exactly one of them, within the limits.
    func tokens(prompt: String?, ids: [Int]?, field: String = "prompt", idsField: String = "ids") throws -> [Int] {
        let tokens: [Int]
        switch (prompt, ids) {
        case (let text?, nil):
            guard !text.isEmpty else { throw APIError.unprocessable("'\(field)' is empty: nothing to run") }
            // The body limit bounds the text; the token limit is checked below.
            tokens = try loaded.requireTokenizer().encodeForModel(text)
            guard !tokens.isEmpty else { throw APIError.unprocessable("'\(field)' encodes to no tokens") }
        case (nil, let list?):
            guard !list.isEmpty else { throw APIError.unprocessable("'\(idsField)' is empty: nothing to run") }
            for id in list where id < 0 || id >= config.dVocab {
                throw APIError.unprocessable("'\(idsField)': token id \(id) is out of range 0..<\(config.dVocab)")
            }
            tokens = list
        case (nil, nil): throw APIError.badRequest("give '\(field)' (text) or '\(idsField)' (token ids)")
        case (_?, _?): throw APIError.badRequest("give only one of '\(field)' and '\(idsField)'")
        }
        guard tokens.count <= maxTokens else {
            throw APIError.tooLarge("'\(prompt != nil ? field : idsField)' is \(tokens.count) tokens; the limit is \(maxTokens)"
                                    + (maxTokens == config.nCtx ? " (the model's context)" : " (--max-prompt-tokens)"))
        }
        return tokens
    }

    func tokens(_ r: some PromptRequest) throws -> [Int] { try tokens(prompt: r.prompt, ids: r.ids) }

    /// A count within 1…`maxTopK`, or the default when absent.
    func count(_ value: Int?, field: String, default def: Int) throws -> Int {
        let v = value ?? def
        guard v >= 1 && v <= limits.maxTopK else { throw APIError.unprocessable("'\(field)' must be 1…\(limits.maxTopK), found \(v)") }
        return v
    }

    /// A position in 0..<count, negative values counting from the end.
    func position(_ value: Int?, count: Int, field: String = "position") throws -> Int? {
        guard let value else { return nil }
        let p = value < 0 ? count + value : value
        guard p >= 0 && p < count else { throw APIError.unprocessable("'\(field)' \(value) is out of range for \(count) tokens") }
        return p
    }

    func layer(_ value: Int, field: String = "layer") throws -> Int {
        guard value >= 0 && value < config.nLayers else {
            throw APIError.unprocessable("'\(field)' \(value) is out of range: the model has layers 0..<\(config.nLayers)")
        }
        return value
    }

    /// A token given as an id or as text that is exactly one token (as the CLI's `--answer`).
    func singleToken(_ value: String, field: String) throws -> Int {
        do { return try loaded.model.singleToken(value) } catch let error as ModelError { throw APIError.unprocessable("'\(field)': \(error)") }
    }

    // MARK: endpoints

    func tokenize(_ r: TokensRequest) throws -> TokensResponse {
        TokensResponse(model: name, tokens: info(try tokens(r)))
    }

    /// `loupe run`'s next-token predictions for several prompts in one forward pass, each with its own `k`: left-padded
    /// to the longest with an attention mask, only the last position unembedded. One prompt runs alone,
    /// exactly as `predict` does.
    func predictBatch(_ prompts: [(tokens: [Int], k: Int)]) throws -> [[TokenPrediction]] {
        if prompts.count == 1 { return [try loaded.model.run([prompts[0].tokens]).topPredictions(k: prompts[0].k)] }
        let width = prompts.map(\.tokens.count).max() ?? 0
        var options = ForwardOptions(attentionMask: prompts.map {
            [Int](repeating: 0, count: width - $0.tokens.count) + [Int](repeating: 1, count: $0.tokens.count)
        })
        options.lastPositionOnly = true
        let padded = prompts.map { [Int](repeating: 0, count: width - $0.tokens.count) + $0.tokens }
        let logits = try loaded.model.run(padded, options: options)   // [batch, 1, d_vocab]
        return try prompts.indices.map { try logits.topPredictions(k: prompts[$0].k, batch: $0, pos: 0) }
    }

    /// `loupe lens`: each layer's residual stream through the final norm and the unembedding.
    func lens(_ r: LensRequest) throws -> LensResponse {
        let k = try count(r.topK, field: "topK", default: 5)
        guard let norm = LensNorm(rawValue: r.norm ?? "recompute") else {
            throw APIError.unprocessable("'norm' must be recompute or cached, found '\(r.norm ?? "")'")
        }
        let ids = try tokens(r)
        let p = try position(r.position, count: ids.count) ?? ids.count - 1
        let target = try r.target.map { try singleToken($0, field: "target") }
        var tuned: Attachments.Lens?
        if r.tuned == true {
            guard let t = tunedLens else {
                throw APIError.unprocessable("\(name) has no tuned lens: start the server with --tuned-lens FILE (from `loupe train tuned-lens`)")
            }
            tuned = t
        }
        let lens = try loaded.model.logitLens(tokens: ids, includeMid: r.mid ?? false, norm: norm, tuned: tuned?.lens)
        let cells = try lens.summary(position: p, topK: k, target: target)
        return LensResponse(model: name, tunedLens: tuned?.name, tokens: info(ids), position: p, target: target.map { info([$0])[0] },
                            cells: zip(lens.labels, cells).map { label, c in
            LensResponse.Cell(label: label, top: candidates(c.top), finalTokenRank: c.finalTokenRank,
                              finalTokenProbability: c.finalTokenProbability, targetRank: c.targetRank,
                              targetProbability: c.targetProbability, klToFinal: c.klToFinal, entropy: c.entropy)
        })
    }

    /// `loupe attention`: every head's summary, and one head's pattern when asked.
    func attention(_ r: AttentionRequest) throws -> AttentionResponse {
        let ids = try tokens(r)
        var wanted: (Int, Int)? = nil
        switch (r.layer, r.head) {
        case (nil, nil): break
        case (let l?, let h?):
            _ = try layer(l)
            guard h >= 0 && h < config.nHeads else {
                throw APIError.unprocessable("'head' \(h) is out of range: the model has heads 0..<\(config.nHeads)")
            }
            wanted = (l, h)
        default: throw APIError.badRequest("give both 'layer' and 'head' for a head's pattern, or neither")
        }
        let n = ids.count
        if r.all == true && config.nLayers * config.nHeads * n * n > 2_000_000 {
            throw APIError.unprocessable("'all' sends every head's pattern when layers × heads × tokens² is at most 2,000,000; "
                                         + "this prompt gives \(config.nLayers) × \(config.nHeads) × \(n)²")
        }
        let heads = try loaded.model.attentionAnalysis(tokens: ids)
        func rows(_ flat: [Float]) -> [[Float]] { (0..<n).map { Array(flat[($0 * n)..<(($0 + 1) * n)]) } }
        let selected = wanted.flatMap { w in heads.first { $0.layer == w.0 && $0.head == w.1 } }.map {
            AttentionResponse.Pattern(layer: $0.layer, head: $0.head, pattern: rows($0.pattern), valueWeighted: rows($0.valueWeighted))
        }
        let ordered = heads.sorted { ($0.layer, $0.head) < ($1.layer, $1.head) }
        return AttentionResponse(model: name, tokens: info(ids), heads: heads.map {
            AttentionResponse.HeadSummary(layer: $0.layer, head: $0.head, entropy: $0.entropy, toFirst: $0.toFirst,
                                          toPrevious: $0.toPrevious, valueWeightedToFirst: $0.valueWeightedToFirst)
        }, selected: selected, patterns: r.all == true ? ordered.map { rows($0.pattern) } : nil)
    }

    /// One token from text or an id, with the caution the CLI prints for a word without its leading space.
    func token(_ r: TokenRequest) throws -> TokenResponse {
        let id = try singleToken(r.text, field: "text")
        return TokenResponse(model: name, token: info([id])[0], caution: loaded.model.tokenCaution(r.text))
    }

    /// `loupe attribute`: direct logit attribution per head and per component.
    func attribute(_ r: AttributeRequest) throws -> AttributeResponse {
        let ids = try tokens(r)
        let p = try position(r.position, count: ids.count) ?? ids.count - 1
        let a = try singleToken(r.answer, field: "answer")
        let w = try r.wrong.map { try singleToken($0, field: "wrong") }
        let dla = try loaded.model.directLogitAttribution(tokens: ids, answer: a, wrong: w, position: p)
        return AttributeResponse(model: name, tokens: info(ids), position: p, answer: info([a])[0], wrong: w.map { info([$0])[0] },
                                 heads: grid(dla.heads),
                                 components: zip(dla.componentLabels, dla.components).map { .init(label: $0, value: $1) })
    }

    /// `loupe heads`: previous-token, duplicate-token and induction scores of every head.
    func heads(_ r: HeadsRequest) throws -> HeadsResponse {
        let measureName = r.measure ?? "mul"
        guard let measure = HeadScoreMeasure(rawValue: measureName) else {
            throw APIError.unprocessable("'measure' must be mul or abs, found '\(measureName)'")
        }
        var ids: [Int]
        var test: HeadsResponse.InductionTestResult? = nil
        if r.prompt != nil || r.ids != nil {
            ids = try tokens(prompt: r.prompt, ids: r.ids)
        } else {
            let bos = loaded.tokenizer?.bosID.map { [$0] } ?? []
            // Both copies must fit in the context with room for detection (fewer than n_ctx tokens).
            let room = (min(maxTokens, config.nCtx - 1) - bos.count) / 2
            let length = r.length ?? min(50, room)
            guard length >= 2 && length <= room else {
                throw APIError.unprocessable("'length' must be 2…\(room) for this model and limit, found \(length)")
            }
            let induction = try loaded.model.inductionTest(length: length, seed: r.seed ?? 0, prefix: bos)
            ids = induction.tokens
            test = .init(length: length, firstHalfLoss: induction.firstHalfLoss, secondHalfLoss: induction.secondHalfLoss,
                         scores: grid(induction.scores))
        }
        let scores = try loaded.model.detectHeads(tokens: ids, measure: measure)
        var out: [String: [[Float]]] = [:]
        for (k, v) in scores { out[k.rawValue] = grid(v) }
        return HeadsResponse(model: name, tokens: info(ids), measure: measureName, scores: out, inductionTest: test)
    }

    /// `loupe neurons` on a prompt: the layer's most active neurons and what their value vectors write.
    func neurons(_ r: NeuronsRequest) throws -> NeuronsResponse {
        let top = try count(r.top, field: "top", default: 10)
        let k = try count(r.topK, field: "topK", default: 5)
        let l = try layer(r.layer)
        let ids = try tokens(r)
        let at = try position(r.position, count: ids.count)
        let acts = try loaded.model.neuronActivations(layer: l, tokens: ids)   // [pos, d_mlp]
        let m = config.dMLP
        // Each neuron's ranking activation and its position.
        let best: [(neuron: Int, value: Float, pos: Int)] = (0..<m).map { n in
            if let at { return (n, acts.scalars[at * m + n], at) }
            var (v, p) = (-Float.infinity, 0)
            for q in 0..<ids.count where acts.scalars[q * m + n] > v { (v, p) = (acts.scalars[q * m + n], q) }
            return (n, v, p)
        }
        let chosen = best.sorted { $0.value > $1.value }.prefix(min(top, m))
        let values = try loaded.model.neuronValues(layer: l, neurons: chosen.map(\.neuron), k: k)
        let cosines = try loaded.model.neuronInputOutputCosines(layer: l)
        return NeuronsResponse(model: name, tokens: info(ids), layer: l, neurons: zip(chosen, values).map { c, v in
            .init(neuron: c.neuron, activation: c.value, position: c.pos,
                  activations: (0..<ids.count).map { acts.scalars[$0 * m + c.neuron] },
                  inputOutputCosine: cosines[c.neuron], promoted: valueCandidates(v.promoted), suppressed: valueCandidates(v.suppressed))
        })
    }

    /// Tokens a neuron's value vector writes, as candidates: ranked, with the logit per unit of activation
    /// (no probability: 0).
    func valueCandidates(_ p: [TokenPrediction]) -> [Candidate] {
        p.enumerated().map { Candidate(rank: $0.offset + 1, id: $0.element.id, token: loaded.tokenText($0.element.id), probability: 0, logit: $0.element.logit) }
    }

    /// A checked patching request, ready to run.
    struct PatchPlan: Sendable {
        let pairs: [PatchPair]
        let target: PatchTarget
        let metric: PatchMetricKind
        let dataset: Bool
    }

    /// Checks a patching request (tokens, hook, metric, answer; or each pair of `pairs`) without running it,
    /// so that a bad job is refused when it is submitted.
    func plan(_ r: PatchRequest) throws -> PatchPlan {
        let hook = r.hook ?? "resid_pre"
        guard let target = PatchTarget(shortName: hook, byPosition: r.byPosition ?? false) else {
            throw APIError.unprocessable("unknown hook '\(hook)': 'hook' must be one of \(PatchTarget.shortNames.joined(separator: ", "))")
        }
        let name = r.metric ?? PatchMetricKind.logitDiff.rawValue
        guard let kind = PatchMetricKind(rawValue: name) else {
            throw APIError.unprocessable("'metric' must be \(PatchMetricKind.spelledOut), found '\(name)'")
        }
        func pair(clean: String?, corrupt: String?, cleanIds: [Int]?, corruptIds: [Int]?, answer: String?, wrong: String?,
                  position: Int?, prefix: String) throws -> PatchPair {
            let c = try tokens(prompt: clean, ids: cleanIds, field: prefix + "clean", idsField: prefix + "cleanIds")
            let x = try tokens(prompt: corrupt, ids: corruptIds, field: prefix + "corrupt", idsField: prefix + "corruptIds")
            guard c.count == x.count else {
                throw APIError.unprocessable(prefix + InterpError.lengthMismatch(clean: c.count, corrupted: x.count).description)
            }
            let metric = try self.metric(kind, named: name, answer: answer, wrong: wrong, prefix: prefix)
            if let position {
                let q = position < 0 ? c.count + position : position
                guard (0..<c.count).contains(q) else {
                    throw APIError.unprocessable("'\(prefix)position' \(position) is outside the prompt's \(c.count) tokens")
                }
            }
            return PatchPair(clean: c, corrupted: x, metric: metric, position: position)
        }
        if let list = r.pairs {
            guard r.clean == nil, r.corrupt == nil, r.cleanIds == nil, r.corruptIds == nil, r.answer == nil, r.wrong == nil else {
                throw APIError.unprocessable("'pairs' gives the prompts and tokens per pair: leave out clean, corrupt, cleanIds, corruptIds, answer and wrong")
            }
            guard !list.isEmpty else { throw APIError.unprocessable("'pairs' is empty: give at least one prompt pair") }
            let pairs = try list.enumerated().map { i, p in
                try pair(clean: p.clean, corrupt: p.corrupt, cleanIds: p.cleanIds, corruptIds: p.corruptIds, answer: p.answer,
                         wrong: p.wrong, position: p.position, prefix: "pairs[\(i)].")
            }
            let byPosition = target.axes.contains("pos") || target.axes.contains("dest_pos")
            let lengths = Set(pairs.map { pair in pair.position.map { p in p < 0 ? pair.clean.count + p + 1 : p + 1 } ?? pair.clean.count })
            if byPosition && lengths.count > 1 {
                throw APIError.unprocessable("'hook' \(hook) is patched by position: the pairs must have one length up to their scored positions, found \(lengths.sorted())")
            }
            return PatchPlan(pairs: pairs, target: target, metric: kind, dataset: true)
        }
        let one = try pair(clean: r.clean, corrupt: r.corrupt, cleanIds: r.cleanIds, corruptIds: r.corruptIds, answer: r.answer,
                           wrong: r.wrong, position: nil, prefix: "")
        return PatchPlan(pairs: [one], target: target, metric: kind, dataset: false)
    }

    /// A request's metric on its answer and wrong tokens (ids or single-token texts); fields are named with `prefix`
    /// (`pairs[2].`) in errors.
    func metric(_ kind: PatchMetricKind, named name: String, answer: String?, wrong: String?, prefix: String) throws -> PatchMetric {
        guard let answer else { throw APIError.unprocessable("'\(prefix)answer' is missing: give the answer token (an id or single-token text)") }
        let a = try singleToken(answer, field: prefix + "answer")
        let w = try wrong.map { try singleToken($0, field: prefix + "wrong") }
        guard w != nil || !kind.needsWrongToken else { throw APIError.unprocessable("'metric' \(name) needs '\(prefix)wrong'") }
        return try kind.metric(answer: a, wrong: w)
    }

    /// `loupe ablate --hook`: one activation knocked out over a prompt or a dataset, scored at each last position.
    func ablate(_ r: AblateRequest) throws -> AblateResponse {
        let hook: HookName
        do { hook = try HookName(parsing: r.hook) } catch { throw APIError.unprocessable("'hook': \(error)") }
        let kindName = r.kind ?? AblationKind.zero.rawValue
        guard let kind = AblationKind(rawValue: kindName) else {
            throw APIError.unprocessable("'kind' must be \(AblationKind.allCases.map(\.rawValue).joined(separator: ", ")), found '\(kindName)'")
        }
        let metricName = r.metric ?? PatchMetricKind.logitDiff.rawValue
        guard let metric = PatchMetricKind(rawValue: metricName), !metric.isNormalized else {
            throw APIError.unprocessable("'metric' must be logit-diff, prob or loss, found '\(metricName)'")
        }
        func example(prompt: String?, ids: [Int]?, answer: String?, wrong: String?, prefix: String) throws -> AblationExample {
            let t = try tokens(prompt: prompt, ids: ids, field: prefix + "prompt", idsField: prefix + "ids")
            return AblationExample(tokens: t, metric: try self.metric(metric, named: metricName, answer: answer, wrong: wrong, prefix: prefix))
        }
        let examples: [AblationExample]
        if let list = r.examples {
            guard r.prompt == nil, r.ids == nil, r.answer == nil, r.wrong == nil else {
                throw APIError.unprocessable("'examples' gives the prompts and tokens per example: leave out prompt, ids, answer and wrong")
            }
            guard !list.isEmpty else { throw APIError.unprocessable("'examples' is empty: give at least one prompt") }
            examples = try list.enumerated().map { i, e in
                try example(prompt: e.prompt, ids: e.ids, answer: e.answer, wrong: e.wrong, prefix: "examples[\(i)].")
            }
        } else {
            examples = [try example(prompt: r.prompt, ids: r.ids, answer: r.answer, wrong: r.wrong, prefix: "")]
        }
        let result = try loaded.model.ablate(AblationSite(hook: hook, head: r.head, position: r.position), kind: kind,
                                             examples: examples, seed: r.seed ?? 0)
        return AblateResponse(model: name, hook: hook.description, head: r.head, position: r.position, kind: kind.rawValue,
                              metric: metric.rawValue, clean: result.clean, ablated: result.ablated,
                              meanClean: result.meanClean, meanAblated: result.meanAblated)
    }

    /// `loupe patch`: activation patching from the clean into the corrupted run (or means over pairs).
    func patch(_ plan: PatchPlan, progress: @escaping ProgressHandler, isCancelled: @escaping @Sendable () -> Bool) throws -> PatchResponse {
        let result: PatchResult
        if plan.dataset {
            result = try loaded.model.activationPatch(pairs: plan.pairs, target: plan.target, progress: progress, isCancelled: isCancelled)
        } else {
            let one = plan.pairs[0]
            result = try loaded.model.activationPatch(clean: one.clean, corrupted: one.corrupted, target: plan.target,
                                                      metric: one.metric, progress: progress, isCancelled: isCancelled)
        }
        let normalized = result.normalized.scalars
        // The first pair's tokens up to its scored position (what a by-position result's columns are).
        let first = plan.pairs[0], scored = first.position ?? -1
        let cut = scored < 0 ? first.clean.count + scored + 1 : scored + 1
        var response = PatchResponse(model: name, hook: plan.target.rawValue, metric: plan.metric.rawValue, axes: result.axes,
                                     shape: result.values.shape, values: plan.metric.isNormalized ? normalized : result.values.scalars,
                                     normalized: normalized, clean: result.clean, corrupted: result.corrupted,
                                     cleanTokens: info(Array(first.clean.prefix(cut))), corruptTokens: info(Array(first.corrupted.prefix(cut))))
        response.pairs = plan.pairs.count
        return response
    }

    /// `[layer][head]` rows of a `[n_layers, n_heads]` tensor.
    func grid(_ t: Tensor) -> [[Float]] {
        (0..<t.shape[0]).map { l in Array(t.scalars[(l * t.shape[1])..<((l + 1) * t.shape[1])]) }
    }
}
