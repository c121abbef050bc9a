// Reading an SAE's features: where in a corpus each fires most (max-activating examples, kept in memory
// as a top-k per feature, like LoupeStore's neuron index does per neuron), what each does to the logits
// directly (W_dec[f] through the final norm's weight and W_U, as neuron value vectors are read), and
// predictions with the SAE spliced in.

import Foundation
import LoupeModels
import LoupeTensor

/// One place where a feature fires.
public struct FeatureExample: Codable, Sendable, Equatable {
    public let feature: Int
    public let activation: Float
    /// Token position in the corpus, the tokens around it, and where the position sits among them.
    public let position: Int
    public let context: [Int]
    public let focus: Int
}

/// Max-activating examples and firing statistics of features over a corpus.
public struct FeatureExamples: Sendable {
    /// Examples per feature, strongest first.
    public let examples: [Int: [FeatureExample]]
    /// How many corpus positions each feature fired on (`[d_sae]`), and how many positions were read.
    public let fireCounts: [Int]
    public let positions: Int

    /// The `count` features that fired most often, most frequent first (ties: lower index first).
    public func mostFrequent(_ count: Int) -> [Int] {
        Array(fireCounts.indices.sorted { (fireCounts[$0], $1) > (fireCounts[$1], $0) }.prefix(max(count, 0)))
    }

    /// The share of positions on which `feature` fired.
    public func fireRate(_ feature: Int) -> Double { Double(fireCounts[feature]) / Double(max(positions, 1)) }
}

extension HookedTransformer {
    /// The `k` tokens a feature's decoder direction promotes most (`saeLogitEffect`), largest first.
    public func saeTopLogitEffect(_ sae: SparseAutoencoder, feature: Int, k: Int) throws -> [(token: Int, effect: Float)] {
        let effect = try saeLogitEffect(sae, feature: feature)
        return topK(effect[...], k: k).map { (token: $0.index, effect: $0.value) }
    }

    /// The `k` strongest activations of each feature in `features` (all when nil) over `tokens`, read in
    /// windows of `contextSize` tokens (position 0 of each window left out, as in training), with
    /// `contextTokens` tokens either side of each example.
    public func saeFeatureExamples(_ sae: SparseAutoencoder, tokens: [Int], contextSize: Int, features: [Int]? = nil,
                                   k: Int = 10, contextTokens: Int = 8, windowsPerBatch: Int = 8,
                                   progress: ((Int, Int) -> Void)? = nil) throws -> FeatureExamples {
        let hook = try HookName(parsing: sae.config.hookName)
        let s = sae.config.dSAE
        if let features { for f in features where !(0..<s).contains(f) { throw SAEError.invalid("feature must be in 0…\(s - 1), found \(f)") } }
        let harvester = try ActivationHarvester(model: self, hook: hook, tokens: tokens, contextSize: contextSize, windowsPerBatch: 1)
        let wanted = features.map(Set.init)
        var best: [Int: [FeatureExample]] = [:]
        var counts = [Int](repeating: 0, count: s)
        var positions = 0
        let windows = harvester.windowCount
        for startWindow in stride(from: 0, to: windows, by: windowsPerBatch) {
            let batch = (startWindow..<min(startWindow + windowsPerBatch, windows)).map {
                Array(tokens[($0 * contextSize)..<(($0 + 1) * contextSize)])
            }
            let acts = try sae.encode(ActivationHarvester.activations(model: self, hook: hook, windows: batch, dropFirst: true))
            let rowsPerWindow = contextSize - 1
            for r in 0..<acts.shape[0] {
                let at = (startWindow + r / rowsPerWindow) * contextSize + 1 + r % rowsPerWindow
                positions += 1
                for f in 0..<s {
                    let a = acts.scalars[r * s + f]
                    guard a > 0 else { continue }
                    counts[f] += 1
                    if let wanted, !wanted.contains(f) { continue }
                    var list = best[f] ?? []
                    if list.count == k, let last = list.last, a <= last.activation { continue }
                    let lo = max(0, at - contextTokens), hi = min(tokens.count, at + contextTokens + 1)
                    list.append(FeatureExample(feature: f, activation: a, position: at, context: Array(tokens[lo..<hi]), focus: at - lo))
                    list.sort { $0.activation > $1.activation || ($0.activation == $1.activation && $0.position < $1.position) }
                    best[f] = Array(list.prefix(k))
                }
            }
            progress?(min(startWindow + windowsPerBatch, windows), windows)
        }
        return FeatureExamples(examples: best, fireCounts: counts, positions: positions)
    }

    /// Feature `feature`'s direct effect on the logits: W_dec[f] scaled by the final norm's weight,
    /// times W_U — `[d_vocab]`. The final norm's scale (1/RMS or 1/std of the whole residual) is left out,
    /// so the numbers rank tokens rather than predict logit changes; meaningful for SAEs on the residual stream.
    public func saeLogitEffect(_ sae: SparseAutoencoder, feature: Int) throws -> [Float] {
        let d = sae.config.dIn
        guard (0..<sae.config.dSAE).contains(feature) else {
            throw SAEError.invalid("feature must be in 0…\(sae.config.dSAE - 1), found \(feature)")
        }
        guard d == config.dModel else {
            throw SAEError.invalid("the logit effect needs an SAE on a d_model-wide hook (the residual stream); \(sae.config.hookName) has d_in \(d), d_model is \(config.dModel)")
        }
        var direction = Array(sae.wDec.scalars[(feature * d)..<((feature + 1) * d)])
        if let w = weights.lnFinalW { for j in 0..<d { direction[j] *= w.scalars[j] } }
        return try Tensor(unchecked: [1, d], direction).matmul(weights.wU).scalars   // [1, d_vocab]
    }

    /// Greedy continuation of `prompt` by up to `maxTokens` tokens (fewer when the context fills) with
    /// `hooks` on every forward step, through the KV cache (see `generate(prompt:maxTokens:hooks:)`).
    public func generateGreedy(prompt: [Int], maxTokens: Int, hooks: Hooks) throws -> [Int] {
        guard !prompt.isEmpty else { throw ModelError.emptyInput }
        guard prompt.count <= config.nCtx else { throw ModelError.sequenceTooLong(length: prompt.count, nCtx: config.nCtx) }
        return try generate(prompt: prompt, maxTokens: min(maxTokens, config.nCtx + 1 - prompt.count), hooks: hooks)
    }
}
