// Transformer weights in TransformerLens's canonical layout. Every converter produces this; every
// analysis reads it. All matrices right-multiply the residual stream: `x · W`.

import LoupeTensor

/// One transformer block's weights.
public struct BlockWeights: Sendable, Equatable {
    /// The MLP weights of an attention-only block: zero-size `W_in`, `b_in`, `W_out` and a zero `b_out`.
    public static func emptyMLP(dModel d: Int) -> (wIn: Tensor, bIn: Tensor, wOut: Tensor, bOut: Tensor) {
        (Tensor(zeros: [d, 0]), Tensor(zeros: [0]), Tensor(zeros: [0, d]), Tensor(zeros: [d]))
    }

    /// LayerNorm/RMSNorm before attention `[d_model]`; nil when folded (`LNPre`).
    public var ln1W: Tensor?
    public var ln1B: Tensor?
    /// `[n_heads, d_model, d_head]`
    public var wQ: Tensor
    /// `[n_heads, d_head]`
    public var bQ: Tensor
    /// `[n_key_value_heads, d_model, d_head]`
    public var wK: Tensor
    /// `[n_key_value_heads, d_head]`
    public var bK: Tensor
    /// `[n_key_value_heads, d_model, d_head]`
    public var wV: Tensor
    /// `[n_key_value_heads, d_head]`
    public var bV: Tensor
    /// `[n_heads, d_head, d_model]`
    public var wO: Tensor
    /// `[d_model]`
    public var bO: Tensor
    public var ln2W: Tensor?
    public var ln2B: Tensor?
    /// `[d_model, d_mlp]` (the up projection in gated MLPs)
    public var wIn: Tensor
    /// `[d_mlp]`
    public var bIn: Tensor
    /// `[d_model, d_mlp]`, gated MLPs only
    public var wGate: Tensor?
    /// `[d_mlp, d_model]`
    public var wOut: Tensor
    /// `[d_model]`
    public var bOut: Tensor
    /// QK-norm weights `[d_head]` (`attn.q_norm.w`, `attn.k_norm.w`), shared by all heads; QK-norm models only.
    public var qNormW: Tensor?
    public var kNormW: Tensor?
    /// Post-attention and post-MLP norm weights `[d_model]` (`ln1_post.w`, `ln2_post.w`); Gemma only.
    public var ln1PostW: Tensor?
    public var ln2PostW: Tensor?

    public init(ln1W: Tensor?, ln1B: Tensor?, wQ: Tensor, bQ: Tensor, wK: Tensor, bK: Tensor, wV: Tensor, bV: Tensor,
                wO: Tensor, bO: Tensor, ln2W: Tensor?, ln2B: Tensor?, wIn: Tensor, bIn: Tensor, wGate: Tensor?,
                wOut: Tensor, bOut: Tensor, qNormW: Tensor? = nil, kNormW: Tensor? = nil, ln1PostW: Tensor? = nil,
                ln2PostW: Tensor? = nil) {
        self.ln1W = ln1W; self.ln1B = ln1B
        self.wQ = wQ; self.bQ = bQ; self.wK = wK; self.bK = bK; self.wV = wV; self.bV = bV
        self.wO = wO; self.bO = bO
        self.ln2W = ln2W; self.ln2B = ln2B
        self.wIn = wIn; self.bIn = bIn; self.wGate = wGate; self.wOut = wOut; self.bOut = bOut
        self.qNormW = qNormW; self.kNormW = kNormW; self.ln1PostW = ln1PostW; self.ln2PostW = ln2PostW
    }
}

/// The weights BERT-style encoders (`ModelConfig.postLayerNorm`) have beyond a decoder's.
public struct EncoderWeights: Sendable, Equatable {
    /// `[n_token_types, d_model]`
    public var wTokenType: Tensor
    /// The LayerNorm of the summed embeddings `[d_model]` (TransformerLens `embed.ln`).
    public var embedLNW: Tensor
    public var embedLNB: Tensor
    /// The masked-LM head's dense layer `[d_model, d_model]` and bias, before its activation and `ln_final`.
    public var mlmW: Tensor
    public var mlmB: Tensor

    public init(wTokenType: Tensor, embedLNW: Tensor, embedLNB: Tensor, mlmW: Tensor, mlmB: Tensor) {
        self.wTokenType = wTokenType; self.embedLNW = embedLNW; self.embedLNB = embedLNB; self.mlmW = mlmW; self.mlmB = mlmB
    }
}

/// All of a model's weights.
public struct TransformerWeights: Sendable, Equatable {
    /// BERT-style encoders only.
    public var encoder: EncoderWeights?
    /// `[d_vocab, d_model]`
    public var wE: Tensor
    /// `[n_ctx, d_model]`; nil for rotary models
    public var wPos: Tensor?
    public var blocks: [BlockWeights]
    /// Final norm `[d_model]`; nil when folded.
    public var lnFinalW: Tensor?
    public var lnFinalB: Tensor?
    /// `[d_model, d_vocab]`
    public var wU: Tensor
    /// `[d_vocab]`
    public var bU: Tensor

    public init(wE: Tensor, wPos: Tensor?, blocks: [BlockWeights], lnFinalW: Tensor?, lnFinalB: Tensor?, wU: Tensor, bU: Tensor) {
        self.wE = wE; self.wPos = wPos; self.blocks = blocks
        self.lnFinalW = lnFinalW; self.lnFinalB = lnFinalB; self.wU = wU; self.bU = bU
    }

    /// Checks every weight's shape against the config.
    public func validate(against c: ModelConfig) throws {
        func check(_ name: String, _ t: Tensor?, _ expected: [Int], optional: Bool = false) throws {
            guard let t else {
                if optional { return }
                throw ModelError.missingWeight(name: name, file: "the converted weights")
            }
            if t.shape != expected { throw ModelError.weightShape(name: name, expected: expected, found: t.shape) }
        }
        let (d, h, kv, dh, m, v) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead, c.dMLP, c.dVocab)
        try check("W_E", wE, [v, d])
        if c.positional == .standard {
            try check("W_pos", wPos, [c.nCtx, d])
        } else if wPos != nil {
            throw ModelError.invalidConfig("W_pos is given, but the model uses rotary embeddings")
        }
        guard blocks.count == c.nLayers else {
            throw ModelError.invalidConfig("the config has \(c.nLayers) layers but the weights have \(blocks.count) blocks")
        }
        let withNorm = c.normHasWeights
        let biasAllowed = c.normalization == .layerNorm   // RMSNorm has none; folded norms have none left
        func consistent(_ name: String, weight: Tensor?, bias: Tensor?) throws {
            if !withNorm && weight != nil {
                throw ModelError.invalidConfig("\(name).w is given, but normalization \(c.normalization.rawValue) has no weight")
            }
            if !biasAllowed && bias != nil {
                throw ModelError.invalidConfig("\(name).b is given, but normalization \(c.normalization.rawValue) has no bias")
            }
        }
        try consistent("ln_final", weight: lnFinalW, bias: lnFinalB)
        for (l, b) in blocks.enumerated() {
            let p = "blocks.\(l)."
            try consistent(p + "ln1", weight: b.ln1W, bias: b.ln1B)
            try consistent(p + "ln2", weight: b.ln2W, bias: b.ln2B)
            if !c.gatedMLP && b.wGate != nil {
                throw ModelError.invalidConfig("\(p)mlp.W_gate is given, but the config's MLP is not gated")
            }
            try check(p + "ln1.w", b.ln1W, [d], optional: !withNorm)
            try check(p + "ln1.b", b.ln1B, [d], optional: true)
            try check(p + "attn.W_Q", b.wQ, [h, d, dh]); try check(p + "attn.b_Q", b.bQ, [h, dh])
            try check(p + "attn.W_K", b.wK, [kv, d, dh]); try check(p + "attn.b_K", b.bK, [kv, dh])
            try check(p + "attn.W_V", b.wV, [kv, d, dh]); try check(p + "attn.b_V", b.bV, [kv, dh])
            try check(p + "attn.W_O", b.wO, [h, dh, d]); try check(p + "attn.b_O", b.bO, [d])
            if c.attnOnly && (b.ln2W != nil || b.ln2B != nil || b.bOut.scalars.contains { $0 != 0 }) {
                throw ModelError.invalidConfig("\(p)ln2 or mlp.b_out is given, but the model is attention-only")
            }
            try check(p + "ln2.w", b.ln2W, [d], optional: !withNorm || c.attnOnly)
            try check(p + "ln2.b", b.ln2B, [d], optional: true)
            try check(p + "mlp.W_in", b.wIn, [d, m]); try check(p + "mlp.b_in", b.bIn, [m])
            try check(p + "mlp.W_gate", b.wGate, [d, m], optional: !c.gatedMLP)
            try check(p + "mlp.W_out", b.wOut, [m, d]); try check(p + "mlp.b_out", b.bOut, [d])
            for (name, t, wanted, shape) in [("attn.q_norm.w", b.qNormW, c.qkNorm, [dh]), ("attn.k_norm.w", b.kNormW, c.qkNorm, [dh]),
                                             ("ln1_post.w", b.ln1PostW, c.postNorms, [d]),
                                             ("ln2_post.w", b.ln2PostW, c.postNorms && !c.attnOnly, [d])] {
                if wanted { try check(p + name, t, shape) } else if t != nil {
                    throw ModelError.invalidConfig("\(p)\(name) is given, but the config has no such norm")
                }
            }
        }
        if c.hasUnembedding {
            try check("ln_final.w", lnFinalW, [d], optional: !withNorm)
            try check("ln_final.b", lnFinalB, [d], optional: true)
            try check("unembed.W_U", wU, [d, v]); try check("unembed.b_U", bU, [v])
        } else if lnFinalW != nil || lnFinalB != nil || wU.count != 0 || bU.count != 0 {
            throw ModelError.invalidConfig("a head (ln_final, unembed) is given, but the encoder has none")
        }
        if c.postLayerNorm {
            guard let e = encoder else { throw ModelError.missingWeight(name: "embed.ln and token types", file: "the converted weights") }
            try check("embed.token_type_embed.W_token_type", e.wTokenType, [c.nTokenTypes, d])
            try check("embed.ln.w", e.embedLNW, [d]); try check("embed.ln.b", e.embedLNB, [d])
            try check("mlm_head.W", e.mlmW, c.maskedLMHead ? [d, d] : [0, 0]); try check("mlm_head.b", e.mlmB, c.maskedLMHead ? [d] : [0])
        } else if encoder != nil {
            throw ModelError.invalidConfig("encoder weights (embed.ln, token types, MLM head) are given, but the model is not a BERT-style encoder")
        }
    }

    /// Every weight under its TransformerLens state-dict name (`blocks.0.attn.W_Q`, `unembed.W_U`, …).
    public var namedTensors: [(name: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = [("embed.W_E", wE)]
        if let wPos { out.append(("pos_embed.W_pos", wPos)) }
        for (l, b) in blocks.enumerated() {
            let p = "blocks.\(l)."
            if let t = b.ln1W { out.append((p + "ln1.w", t)) }
            if let t = b.ln1B { out.append((p + "ln1.b", t)) }
            out += [(p + "attn.W_Q", b.wQ), (p + "attn.b_Q", b.bQ), (p + "attn.W_K", b.wK), (p + "attn.b_K", b.bK),
                    (p + "attn.W_V", b.wV), (p + "attn.b_V", b.bV), (p + "attn.W_O", b.wO), (p + "attn.b_O", b.bO)]
            if let t = b.qNormW { out.append((p + "attn.q_norm.w", t)) }
            if let t = b.kNormW { out.append((p + "attn.k_norm.w", t)) }
            if let t = b.ln1PostW { out.append((p + "ln1_post.w", t)) }
            if b.wIn.count == 0 { continue }   // attention-only: no ln2, no MLP
            if let t = b.ln2W { out.append((p + "ln2.w", t)) }
            if let t = b.ln2B { out.append((p + "ln2.b", t)) }
            out += [(p + "mlp.W_in", b.wIn), (p + "mlp.b_in", b.bIn)]
            if let t = b.wGate { out.append((p + "mlp.W_gate", t)) }
            out += [(p + "mlp.W_out", b.wOut), (p + "mlp.b_out", b.bOut)]
            if let t = b.ln2PostW { out.append((p + "ln2_post.w", t)) }
        }
        if let t = lnFinalW { out.append(("ln_final.w", t)) }
        if let t = lnFinalB { out.append(("ln_final.b", t)) }
        out += [("unembed.W_U", wU), ("unembed.b_U", bU)]
        if let e = encoder {
            out += [("embed.token_type_embed.W_token_type", e.wTokenType), ("embed.ln.w", e.embedLNW), ("embed.ln.b", e.embedLNB),
                    ("mlm_head.W", e.mlmW), ("mlm_head.b", e.mlmB)]
        }
        return out
    }

    /// Weights looked up by TransformerLens state-dict name (`lookup` returns nil for a missing name);
    /// attention-only models get empty MLP weights. `source` names where they come from, for errors.
    /// - Throws: `ModelError.missingWeight` for a required name that is missing.
    public init(config: ModelConfig, source: String, lookup: (String) throws -> Tensor?) throws {
        func load(_ name: String) throws -> Tensor {
            guard let t = try lookup(name) else { throw ModelError.missingWeight(name: name, file: source) }
            return t
        }
        var blocks: [BlockWeights] = []
        for l in 0..<config.nLayers {
            let p = "blocks.\(l)."
            let mlp = BlockWeights.emptyMLP(dModel: config.dModel)
            let attnOnly = config.attnOnly
            blocks.append(BlockWeights(
                ln1W: try lookup(p + "ln1.w"), ln1B: try lookup(p + "ln1.b"),
                wQ: try load(p + "attn.W_Q"), bQ: try load(p + "attn.b_Q"), wK: try load(p + "attn.W_K"), bK: try load(p + "attn.b_K"),
                wV: try load(p + "attn.W_V"), bV: try load(p + "attn.b_V"), wO: try load(p + "attn.W_O"), bO: try load(p + "attn.b_O"),
                ln2W: attnOnly ? nil : try lookup(p + "ln2.w"), ln2B: attnOnly ? nil : try lookup(p + "ln2.b"),
                wIn: attnOnly ? mlp.wIn : try load(p + "mlp.W_in"), bIn: attnOnly ? mlp.bIn : try load(p + "mlp.b_in"),
                wGate: attnOnly ? nil : try lookup(p + "mlp.W_gate"),
                wOut: attnOnly ? mlp.wOut : try load(p + "mlp.W_out"), bOut: attnOnly ? mlp.bOut : try load(p + "mlp.b_out"),
                qNormW: try lookup(p + "attn.q_norm.w"), kNormW: try lookup(p + "attn.k_norm.w"),
                ln1PostW: try lookup(p + "ln1_post.w"), ln2PostW: attnOnly ? nil : try lookup(p + "ln2_post.w")))
        }
        self.init(wE: try load("embed.W_E"), wPos: try lookup("pos_embed.W_pos"), blocks: blocks,
                  lnFinalW: try lookup("ln_final.w"), lnFinalB: try lookup("ln_final.b"),
                  wU: try load("unembed.W_U"), bU: try load("unembed.b_U"))
        if config.postLayerNorm {
            encoder = EncoderWeights(wTokenType: try load("embed.token_type_embed.W_token_type"), embedLNW: try load("embed.ln.w"),
                                     embedLNB: try load("embed.ln.b"), mlmW: try load("mlm_head.W"), mlmB: try load("mlm_head.b"))
        }
    }
}
