// MLP neurons as key→value memories (Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value
// Memories"): a neuron's input vector (its column of W_in, or of W_gate in gated MLPs: the direction that
// makes it fire) is the key; its output vector (row of W_out) is the value it writes. Read through the
// unembedding, the value shows which tokens the neuron promotes and suppresses. Neurons whose input and
// output vectors point in opposite directions erase what they read ("memory management", Gurnee et al. 2024).

import Foundation
import LoupeModels
import LoupeTensor

/// One neuron's value vector read through the unembedding.
public struct NeuronValue: Sendable, Codable {
    public let neuron: Int
    /// Tokens the value raises most, and lowers most, with their logit contributions per unit activation.
    public let promoted: [TokenPrediction]
    public let suppressed: [TokenPrediction]
}

/// A context where a neuron fired strongly.
public struct NeuronExample: Sendable, Codable {
    public let activation: Float
    /// The corpus document (examples read from a neuron index; nil for one analysed text).
    public let document: Int?
    /// The position's index in the analysed tokens (or in its document), and the tokens around it
    /// (`position` is at `focus`).
    public let position: Int
    public let context: [Int]
    public let focus: Int

    public init(activation: Float, document: Int? = nil, position: Int, context: [Int], focus: Int) {
        self.activation = activation
        self.document = document
        self.position = position
        self.context = context
        self.focus = focus
    }
}

extension HookedTransformer {
    private func checkLayer(_ layer: Int) throws {
        guard layer >= 0 && layer < config.nLayers else { throw InterpError.outOfRange(what: "layer", value: layer, count: config.nLayers) }
        if config.attnOnly { throw InterpError.invalid("the model is attention-only: it has no MLP neurons") }
    }

    /// Cosine of each neuron's input vector (W_gate column for gated MLPs, else W_in column) with its output
    /// vector (W_out row): `[d_mlp]`. Strongly negative: the neuron removes the direction it reads.
    public func neuronInputOutputCosines(layer: Int) throws -> [Float] {
        try checkLayer(layer)
        let b = weights.blocks[layer]
        let input = b.wGate ?? b.wIn   // [d_model, d_mlp]
        let (d, m) = (config.dModel, config.dMLP)
        return (0..<m).map { n in
            var dot: Float = 0, ni: Float = 0, no: Float = 0
            for j in 0..<d {
                let x = input.scalars[j * m + n], y = b.wOut.scalars[n * d + j]
                dot += x * y; ni += x * x; no += y * y
            }
            return ni > 0 && no > 0 ? dot / (ni.squareRoot() * no.squareRoot()) : 0
        }
    }

    /// Neurons' value vectors through the final norm's weight and the unembedding: the tokens each promotes
    /// and suppresses (`k` of each).
    public func neuronValues(layer: Int, neurons: [Int], k: Int = 5) throws -> [NeuronValue] {
        try checkLayer(layer)
        let (d, m) = (config.dModel, config.dMLP)
        for n in neurons where n < 0 || n >= m { throw InterpError.outOfRange(what: "neuron", value: n, count: m) }
        let wOut = weights.blocks[layer].wOut
        var rows = [Float](repeating: 0, count: neurons.count * d)
        for (i, n) in neurons.enumerated() {
            for j in 0..<d { rows[i * d + j] = wOut.scalars[n * d + j] * (weights.lnFinalW?.scalars[j] ?? 1) }
        }
        let logits = try Tensor(unchecked: [neurons.count, d], rows).matmul(weights.wU)   // [neurons, d_vocab]
        let v = config.dVocab
        return neurons.enumerated().map { i, n in
            let row = logits.scalars[(i * v)..<((i + 1) * v)]
            let up = topK(row, k: k).map { TokenPrediction(id: $0.index, probability: 0, logit: $0.value) }
            let down = topK(row.map { -$0 }[...], k: k).map { TokenPrediction(id: $0.index, probability: 0, logit: -$0.value) }
            return NeuronValue(neuron: n, promoted: up, suppressed: down)
        }
    }

    /// Each neuron's activations (`mlp.hook_post`) over `tokens`: `[pos, d_mlp]`.
    public func neuronActivations(layer: Int, tokens: [Int]) throws -> Tensor {
        try checkLayer(layer)
        // Blocks after this one cannot change it: stop there.
        let (_, cache) = try runWithCache(.tokens([tokens]), select: .names([.mlpPost(layer)]),
                                          options: ForwardOptions(stopAtLayer: layer + 1))
        guard let post = cache[.mlpPost(layer)] else { throw InterpError.invalid("mlp.hook_post was not cached") }
        return try post.reshaped([tokens.count, config.dMLP])
    }

    /// One neuron's activation (`mlp.hook_post`) on every token of each context, all run as one batch padded on the
    /// right: in a causal model no token attends to the padding after it, and positions still start at 0. An
    /// encoder (every token sees every other) runs each context alone.
    public func neuronActivations(layer: Int, neuron: Int, contexts: [[Int]]) throws -> [[Float]] {
        try checkLayer(layer)
        guard neuron >= 0 && neuron < config.dMLP else { throw InterpError.outOfRange(what: "neuron", value: neuron, count: config.dMLP) }
        let d = config.dMLP
        let width = contexts.map(\.count).max() ?? 0
        guard width > 0 else { return contexts.map { _ in [] } }
        if config.bidirectional || contexts.count == 1 {
            return try contexts.map { c in
                guard !c.isEmpty else { return [] }
                let acts = try neuronActivations(layer: layer, tokens: c)
                return (0..<c.count).map { acts.scalars[$0 * d + neuron] }
            }
        }
        let padded = contexts.map { $0 + [Int](repeating: 0, count: width - $0.count) }
        let (_, cache) = try runWithCache(.tokens(padded), select: .names([.mlpPost(layer)]), options: ForwardOptions(stopAtLayer: layer + 1))
        guard let post = cache[.mlpPost(layer)] else { throw InterpError.invalid("mlp.hook_post was not cached") }
        return contexts.enumerated().map { b, c in (0..<c.count).map { post.scalars[(b * width + $0) * d + neuron] } }
    }

    /// The `k` highest activations of each listed neuron over a token stream analysed in windows of
    /// `window` tokens, with `context` tokens either side.
    public func maxActivatingExamples(layer: Int, neurons: [Int], tokens: [Int], window: Int? = nil, k: Int = 5,
                                      context: Int = 8, progress: ((Int, Int) -> Void)? = nil) throws -> [Int: [NeuronExample]] {
        let window = window ?? min(128, config.nCtx)      // default: 128 tokens, or the whole context if shorter
        try checkLayer(layer)
        for n in neurons where n < 0 || n >= config.dMLP { throw InterpError.outOfRange(what: "neuron", value: n, count: config.dMLP) }
        guard window >= 1 && window <= config.nCtx else { throw InterpError.invalid("window must be 1…\(config.nCtx), found \(window)") }
        var best: [Int: [(Float, Int)]] = Dictionary(uniqueKeysWithValues: neurons.map { ($0, []) })
        var start = 0
        while start < tokens.count {
            let chunk = Array(tokens[start..<min(start + window, tokens.count)])
            let acts = try neuronActivations(layer: layer, tokens: chunk)
            for n in neurons {
                var list = best[n] ?? []
                for p in 0..<chunk.count { list.append((acts.scalars[p * config.dMLP + n], start + p)) }
                list.sort { $0.0 > $1.0 }
                best[n] = Array(list.prefix(k))
            }
            start += window
            progress?(min(start, tokens.count), tokens.count)
        }
        return best.mapValues { list in
            list.map { (a, p) in
                let lo = max(0, p - context), hi = min(tokens.count, p + context + 1)
                return NeuronExample(activation: a, position: p, context: Array(tokens[lo..<hi]), focus: p - lo)
            }
        }
    }
}
