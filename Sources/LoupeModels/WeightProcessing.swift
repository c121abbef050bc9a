// Weight processing as TransformerLens does it (`HookedTransformer.process_weights_`): each step
// leaves the model's outputs unchanged (up to float error) while making the weights easier to read.
// Order as in TransformerLens: fold LayerNorm, centre writing weights, centre unembed, fold value biases.

import LoupeTensor

/// Which processing steps to apply.
public struct WeightProcessing: Sendable, Equatable {
    /// Fold each LayerNorm's weight and bias into the layer that reads its output; norms become `LNPre`
    /// and the reading weights are centred over d_model.
    public var foldLN: Bool
    /// Subtract the mean over d_model from every weight and bias that writes to the residual stream
    /// (LayerNorm models only: skipped under RMSNorm, as in TransformerLens).
    public var centerWritingWeights: Bool
    /// Subtract the mean over the vocabulary from `W_U` and `b_U` (softmax is shift-invariant).
    public var centerUnembed: Bool
    /// Move the value biases into `b_O` (attention patterns sum to one).
    public var foldValueBiases: Bool

    public init(foldLN: Bool = true, centerWritingWeights: Bool = true, centerUnembed: Bool = true,
                foldValueBiases: Bool = true) {
        self.foldLN = foldLN
        self.centerWritingWeights = centerWritingWeights
        self.centerUnembed = centerUnembed
        self.foldValueBiases = foldValueBiases
    }

    /// TransformerLens's `from_pretrained` defaults: all four.
    public static let transformerLensDefaults = WeightProcessing()
}

extension HookedTransformer {
    /// A copy of the model with processed weights (TransformerLens's `process_weights_`).
    public func processed(_ steps: WeightProcessing = .transformerLensDefaults) throws -> HookedTransformer {
        if config.postLayerNorm {
            throw ModelError.unsupported("\(config.architecture)'s norms come after the residual additions: folding them into the next weights (TransformerLens's processing) does not apply")
        }
        var c = config
        var w = weights
        if steps.foldLN {
            switch c.normalization {
            case .layerNorm:
                foldLayerNorm(&w)
                c.normalization = .layerNormPre
            case .rmsNorm:
                foldRMSNorm(&w)
                c.normalization = .rmsNormPre
            case .layerNormPre, .rmsNormPre:
                break
            }
        }
        // Centring writing weights is exact only when every reader first subtracts the mean (LayerNorm);
        // with RMSNorm TransformerLens skips it, and so does Loupe.
        if steps.centerWritingWeights && c.centresNorm {
            centerWriting(&w)
        }
        if steps.centerUnembed { w.wU = centerColumnsPerRow(w.wU); w.bU = centerVector(w.bU) }
        if steps.foldValueBiases { foldValueBias(&w, config: c) }
        return try HookedTransformer(config: c, weights: w, tokenizer: tokenizer)
    }
}

// MARK: - The steps

/// `W[.., i, ..] *= scale[i]` along dimension `dim` of size n (the d_model axis).
private func scaleAlong(_ t: Tensor, dim: Int, by scale: Tensor) -> Tensor {
    let outer = t.shape[..<dim].reduce(1, *), n = t.shape[dim], inner = t.shape[(dim + 1)...].reduce(1, *)
    var s = t.scalars
    for o in 0..<outer { for i in 0..<n { for j in 0..<inner { s[(o * n + i) * inner + j] *= scale.scalars[i] } } }
    return Tensor(unchecked: t.shape, s)
}

/// `Σ_i bias[i] · W[.., i, ..]` along dimension `dim`: the bias a LayerNorm bias becomes downstream.
private func contract(_ bias: Tensor, _ t: Tensor, dim: Int) -> [Float] {
    let outer = t.shape[..<dim].reduce(1, *), n = t.shape[dim], inner = t.shape[(dim + 1)...].reduce(1, *)
    var out = [Float](repeating: 0, count: outer * inner)
    for o in 0..<outer { for i in 0..<n { for j in 0..<inner { out[o * inner + j] += bias.scalars[i] * t.scalars[(o * n + i) * inner + j] } } }
    return out
}

/// `t + values`, element by element (same count).
private func plus(_ t: Tensor, _ values: [Float]) -> Tensor {
    Tensor(unchecked: t.shape, zip(t.scalars, values).map { $0 + $1 })
}

/// Subtracts the mean along dimension `dim`.
private func centerAlong(_ t: Tensor, dim: Int) -> Tensor {
    let outer = t.shape[..<dim].reduce(1, *), n = t.shape[dim], inner = t.shape[(dim + 1)...].reduce(1, *)
    var s = t.scalars
    for o in 0..<outer {
        for j in 0..<inner {
            var mean: Float = 0
            for i in 0..<n { mean += s[(o * n + i) * inner + j] }
            mean /= Float(n)
            for i in 0..<n { s[(o * n + i) * inner + j] -= mean }
        }
    }
    return Tensor(unchecked: t.shape, s)
}

/// Subtracts each row's mean (over the last dimension).
private func centerColumnsPerRow(_ t: Tensor) -> Tensor { centerAlong(t, dim: t.rank - 1) }
private func centerVector(_ t: Tensor) -> Tensor { centerAlong(t, dim: 0) }

private func foldLayerNorm(_ w: inout TransformerWeights) {
    for l in w.blocks.indices {
        var b = w.blocks[l]
        if let g = b.ln1W {
            let beta = b.ln1B ?? Tensor(zeros: g.shape)
            // b_Q += Σ_d b_ln[d] W_Q[h, d, :]; W_Q[h, d, :] *= w_ln[d]; then centre W_Q over d_model.
            b.bQ = plus(b.bQ, contract(beta, b.wQ, dim: 1))
            b.bK = plus(b.bK, contract(beta, b.wK, dim: 1))
            b.bV = plus(b.bV, contract(beta, b.wV, dim: 1))
            b.wQ = centerAlong(scaleAlong(b.wQ, dim: 1, by: g), dim: 1)
            b.wK = centerAlong(scaleAlong(b.wK, dim: 1, by: g), dim: 1)
            b.wV = centerAlong(scaleAlong(b.wV, dim: 1, by: g), dim: 1)
            b.ln1W = nil; b.ln1B = nil
        }
        if let g = b.ln2W {
            let beta = b.ln2B ?? Tensor(zeros: g.shape)
            b.bIn = plus(b.bIn, contract(beta, b.wIn, dim: 0))
            b.wIn = centerAlong(scaleAlong(b.wIn, dim: 0, by: g), dim: 0)
            if let gate = b.wGate { b.wGate = centerAlong(scaleAlong(gate, dim: 0, by: g), dim: 0) }
            b.ln2W = nil; b.ln2B = nil
        }
        w.blocks[l] = b
    }
    if let g = w.lnFinalW {
        let beta = w.lnFinalB ?? Tensor(zeros: g.shape)
        w.bU = plus(w.bU, contract(beta, w.wU, dim: 0))
        w.wU = centerAlong(scaleAlong(w.wU, dim: 0, by: g), dim: 0)
        w.lnFinalW = nil; w.lnFinalB = nil
    }
}

/// RMSNorm has no bias and does not centre: fold only the weight, and centre nothing.
private func foldRMSNorm(_ w: inout TransformerWeights) {
    for l in w.blocks.indices {
        var b = w.blocks[l]
        if let g = b.ln1W {
            b.wQ = scaleAlong(b.wQ, dim: 1, by: g); b.wK = scaleAlong(b.wK, dim: 1, by: g); b.wV = scaleAlong(b.wV, dim: 1, by: g)
            b.ln1W = nil
        }
        if let g = b.ln2W {
            b.wIn = scaleAlong(b.wIn, dim: 0, by: g)
            if let gate = b.wGate { b.wGate = scaleAlong(gate, dim: 0, by: g) }
            b.ln2W = nil
        }
        w.blocks[l] = b
    }
    if let g = w.lnFinalW { w.wU = scaleAlong(w.wU, dim: 0, by: g); w.lnFinalW = nil }
}

private func centerWriting(_ w: inout TransformerWeights) {
    w.wE = centerColumnsPerRow(w.wE)
    if let p = w.wPos { w.wPos = centerColumnsPerRow(p) }
    for l in w.blocks.indices {
        w.blocks[l].wO = centerColumnsPerRow(w.blocks[l].wO)
        w.blocks[l].bO = centerVector(w.blocks[l].bO)
        w.blocks[l].wOut = centerColumnsPerRow(w.blocks[l].wOut)
        w.blocks[l].bOut = centerVector(w.blocks[l].bOut)
    }
}

/// `b_O += Σ_h b_V[h] · W_O[h]`, `b_V = 0` (each query head reads its key-value head's bias).
private func foldValueBias(_ w: inout TransformerWeights, config c: ModelConfig) {
    let (h, dh, d) = (c.nHeads, c.dHead, c.dModel)
    for l in w.blocks.indices {
        var b = w.blocks[l]
        var bO = b.bO.scalars
        for head in 0..<h {
            let kv = head / c.groupSize
            for j in 0..<dh {
                let bv = b.bV.scalars[kv * dh + j]
                if bv == 0 { continue }
                for i in 0..<d { bO[i] += bv * b.wO.scalars[(head * dh + j) * d + i] }
            }
        }
        b.bO = Tensor(unchecked: [d], bO)
        b.bV = Tensor(zeros: b.bV.shape)
        w.blocks[l] = b
    }
}
