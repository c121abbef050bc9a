// Weight-based circuits (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"): each
// head's QK circuit W_Q W_Kᵀ (which positions attend to which) and OV circuit W_V W_O (what is moved),
// the full OV circuit through the embeddings W_E W_OV W_U and its copying score, and Q-, K- and
// V-composition scores between heads (equal to TransformerLens's `all_composition_scores`).

import Foundation
import LoupeModels
import LoupeTensor

extension HookedTransformer {
    private func checkHead(_ layer: Int, _ head: Int) throws {
        guard layer >= 0 && layer < config.nLayers else { throw InterpError.outOfRange(what: "layer", value: layer, count: config.nLayers) }
        guard head >= 0 && head < config.nHeads else { throw InterpError.outOfRange(what: "head", value: head, count: config.nHeads) }
    }

    /// `W_Q[head] W_K[head]ᵀ`, `[d_model, d_model]` of rank d_head (the key-value head it reads under GQA).
    public func qkCircuit(layer: Int, head: Int) throws -> FactoredMatrix {
        try checkHead(layer, head)
        let b = weights.blocks[layer], kv = head / config.groupSize
        return try FactoredMatrix(b.wQ.slice(head), b.wK.slice(kv).transposed())
    }

    /// `W_V[head] W_O[head]`, `[d_model, d_model]` of rank d_head.
    public func ovCircuit(layer: Int, head: Int) throws -> FactoredMatrix {
        try checkHead(layer, head)
        let b = weights.blocks[layer], kv = head / config.groupSize
        return try FactoredMatrix(b.wV.slice(kv), b.wO.slice(head))
    }

    /// The full OV circuit `W_E W_V W_O W_U`, `[d_vocab, d_vocab]`: what each attended token makes more likely.
    public func fullOVCircuit(layer: Int, head: Int) throws -> FactoredMatrix {
        let ov = try ovCircuit(layer: layer, head: head)
        return try FactoredMatrix(weights.wE.matmul(ov.a), ov.b.matmul(weights.wU))
    }

    /// The full QK circuit `(W_E + W_pos[q]) W_Q W_Kᵀ (W_E + W_pos[k])ᵀ`, `[d_vocab, d_vocab]`: the attention
    /// score a query token gives a key token, with the positional embeddings of the given positions added
    /// (as in the max-of-a-list analysis; ignored for models without W_pos). Norms are not applied.
    public func fullQKCircuit(layer: Int, head: Int, queryPosition: Int? = nil, keyPosition: Int? = nil) throws -> FactoredMatrix {
        let qk = try qkCircuit(layer: layer, head: head)
        func embedding(_ position: Int?) throws -> Tensor {
            guard let position, let wPos = weights.wPos else { return weights.wE }
            guard position >= 0 && position < config.nCtx else {
                throw InterpError.outOfRange(what: "position", value: position, count: config.nCtx)
            }
            return try weights.wE + wPos.slice(position)
        }
        return try FactoredMatrix(embedding(queryPosition).matmul(qk.a), qk.b.matmul(embedding(keyPosition).transposed()))
    }

    /// Copying scores `[n_layers, n_heads]`: Σ Re λ / Σ |λ| over the eigenvalues λ of each head's full OV
    /// circuit; near 1 for a head that copies the tokens it attends to. 0 for a head whose circuit is zero.
    public func copyingScores() throws -> Tensor {
        let (nL, h) = (config.nLayers, config.nHeads)
        // The eigenvalues of W_E W_V W_O W_U are those of W_O (W_U W_E) W_V (d_head × d_head), and W_U W_E
        // (d_model × d_model) is shared by every head: one product with the vocabulary instead of one per head.
        let unembedEmbed = try weights.wU.matmul(weights.wE)
        var out = [Float](repeating: 0, count: nL * h)
        for l in 0..<nL {
            for head in 0..<h {
                let ov = try ovCircuit(layer: l, head: head)
                let eigen = try LAPACK.eigenvalues(try ov.b.matmul(unembedEmbed).matmul(ov.a))
                let total = eigen.reduce(0.0) { $0 + Double(hypot($1.re, $1.im)) }
                out[l * h + head] = total > 0 ? Float(eigen.reduce(0.0) { $0 + Double($1.re) } / total) : 0
            }
        }
        return Tensor(unchecked: [nL, h], out)
    }

    /// Composition scores `[n_layers, n_heads, n_layers, n_heads]` between every earlier head (first two
    /// axes, its OV circuit) and every later head: ‖OV₁ · M₂‖_F / (‖OV₁‖_F ‖M₂‖_F) with M₂ the later head's
    /// QK circuit (Q-composition), its transpose (K-composition) or its OV circuit (V-composition).
    /// Pairs whose later head is not in a later layer are 0. `progress` hears (earlier heads done, heads in all);
    /// `isCancelled` is asked before each earlier head, and a yes stops the work with `CancellationError`.
    public func compositionScores(_ mode: CompositionMode, progress: ProgressHandler? = nil,
                                  isCancelled: (@Sendable () -> Bool)? = nil) throws -> Tensor {
        let (nL, h) = (config.nLayers, config.nHeads)
        var ov: [FactoredMatrix] = [], right: [FactoredMatrix] = []
        for l in 0..<nL {
            for head in 0..<h {
                let o = try ovCircuit(layer: l, head: head)
                ov.append(o)
                switch mode {
                case .q: right.append(try qkCircuit(layer: l, head: head))
                case .k: right.append(try qkCircuit(layer: l, head: head).transposed())
                case .v: right.append(o)
                }
            }
        }
        let leftNorms = ov.map(\.frobeniusNorm), rightNorms = right.map(\.frobeniusNorm)
        var out = [Float](repeating: 0, count: nL * h * nL * h)
        for i in 0..<(nL * h) {
            if isCancelled?() == true { throw CancellationError() }
            for j in 0..<(nL * h) where i / h < j / h {
                let denominator = leftNorms[i] * rightNorms[j]
                guard denominator > 0 else { continue }
                out[i * nL * h + j] = try ov[i].matmul(right[j]).frobeniusNorm / denominator
            }
            progress?(i + 1, nL * h)
        }
        return Tensor(unchecked: [nL, h, nL, h], out)
    }
}

/// Which input of the later head an earlier head's output composes with.
public enum CompositionMode: String, CaseIterable, Sendable {
    case q, k, v
}
