// The architecture of a transformer, in TransformerLens's vocabulary.

import Foundation
import LoupeTensor

/// Hyperparameters of a `HookedTransformer`.
public struct ModelConfig: Codable, Sendable, Equatable {
    /// How the residual stream is normalized before attention, the MLP and the unembedding.
    public enum Normalization: String, Codable, Sendable {
        /// LayerNorm with weight and bias.
        case layerNorm = "LN"
        /// LayerNorm without weights (they were folded into the next layer).
        case layerNormPre = "LNPre"
        /// RMSNorm with a weight.
        case rmsNorm = "RMS"
        /// RMSNorm without a weight (folded).
        case rmsNormPre = "RMSPre"
    }

    /// The MLP's non-linearity.
    public enum Activation: String, Codable, Sendable {
        case geluNew = "gelu_new", gelu = "gelu", silu = "silu", relu = "relu"
    }

    /// How positions enter the model.
    public enum Positional: String, Codable, Sendable {
        /// Learned absolute positional embeddings (`W_pos`), added after the token embedding.
        case standard
        /// Rotary embeddings on queries and keys, adjacent pairs (2i, 2i+1) rotated together (GGUF llama).
        case rotaryInterleaved
        /// Rotary embeddings, first half rotated against the second half (Hugging Face llama).
        case rotaryHalf
    }

    /// Rotary position embeddings: the base, and how the frequencies are rescaled for long contexts.
    public struct Rope: Codable, Sendable, Equatable {
        /// How the inverse frequencies `base^(−2i/rotary_dim)` are rescaled (Hugging Face `rope_type`).
        public enum Scaling: Codable, Sendable, Equatable {
            /// `rope_type: linear`: every frequency divided by `factor` (positions interpolated).
            case linear(factor: Double)
            /// `rope_type: llama3`: low frequencies divided by `factor`, high ones kept, a smooth blend between
            /// (wavelengths measured against `originalContext` tokens).
            case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContext: Int)
        }
        public var base: Double
        public var scaling: Scaling?

        public init(base: Double, scaling: Scaling? = nil) {
            self.base = base
            self.scaling = scaling
        }

        /// The inverse frequency of each rotated pair, for `rotaryDim` rotated dimensions, computed in
        /// float32 as Hugging Face computes them.
        public func inverseFrequencies(rotaryDim: Int) -> [Float] {
            let half = rotaryDim / 2
            var inv = (0..<half).map { i -> Float in
                1 / Float(Foundation.pow(Double(Float(base)), Double(Float(2 * i) / Float(rotaryDim))))
            }
            switch scaling {
            case nil:
                break
            case .linear(let factor):
                inv = inv.map { $0 / Float(factor) }
            case .llama3(let factor, let low, let high, let original):
                let lowWavelength = Float(original) / Float(low), highWavelength = Float(original) / Float(high)
                inv = inv.map { f in
                    let wavelength = 2 * Float.pi / f
                    if wavelength < highWavelength { return f }
                    if wavelength > lowWavelength { return f / Float(factor) }
                    let smooth = (Float(original) / wavelength - Float(low)) / (Float(high) - Float(low))
                    return (1 - smooth) * f / Float(factor) + smooth * f
                }
            }
            return inv
        }
    }

    /// What a layer's attention sees: every earlier position, or a window of the latest ones.
    public enum AttentionKind: String, Codable, Sendable {
        case full = "full_attention"
        case sliding = "sliding_attention"
    }

    /// Where the configuration came from, e.g. `GPT2LMHeadModel`.
    public var architecture: String
    public var nLayers: Int
    public var dModel: Int
    public var nHeads: Int
    public var dHead: Int
    public var dMLP: Int
    public var dVocab: Int
    /// The longest sequence the model accepts.
    public var nCtx: Int
    /// Key-value heads; equal to `nHeads` except under grouped-query attention.
    public var nKeyValueHeads: Int
    public var eps: Float
    public var normalization: Normalization
    public var activation: Activation
    public var positional: Positional
    /// A gated MLP (`act(x·W_gate) * (x·W_in)`), as in Llama.
    public var gatedMLP: Bool
    public var rotaryBase: Float
    /// The token id of `<|endoftext|>` / EOS, when the model has one.
    public var eosTokenID: Int?
    /// Blocks without an MLP (TransformerLens's `attn_only`): `resid_post = resid_pre + attn_out`, no
    /// `ln2`, `mlp` or `hook_resid_mid` hook points, and `d_mlp` is 0.
    public var attnOnly: Bool
    /// Rotated dimensions of each head (GPT-NeoX's `rotary_pct`, Phi's `partial_rotary_factor`); nil: all
    /// of `d_head`.
    public var rotaryDim: Int?
    /// Rotary rescaling for long contexts (Llama 3); nil for none.
    public var ropeScaling: Rope.Scaling?
    /// Sliding-window attention: a query at position i sees keys j with i − j < window. Applies to every
    /// layer unless `layerTypes` says which.
    public var slidingWindow: Int?
    /// Per layer: full or sliding-window attention (Gemma 3, Qwen 2); nil: every layer alike.
    public var layerTypes: [AttentionKind]?
    /// The rotary settings of sliding-window layers when they differ from the global ones (Gemma 3's
    /// local base of 10,000 against its global 1,000,000).
    public var slidingRope: Rope?
    /// RMSNorm of each query and key head over d_head before the rotary embedding (Qwen 3, Gemma 3):
    /// weights `attn.q_norm.w`, `attn.k_norm.w` `[d_head]`.
    public var qkNorm: Bool
    /// RMSNorms on the attention and MLP outputs before they are added to the residual stream (Gemma 2/3):
    /// weights `ln1_post.w`, `ln2_post.w` `[d_model]`.
    public var postNorms: Bool
    /// Attention and MLP both read the block's input and both add into it (GPT-NeoX, GPT-J):
    /// `resid_post = resid_pre + attn_out + mlp_out`; no `hook_resid_mid`.
    public var parallelAttnMLP: Bool
    /// The factor on attention scores; nil: 1/sqrt(d_head) (Gemma: `query_pre_attn_scalar^-1/2`).
    public var attnScale: Float?
    /// Every position attends to every other (BERT-style encoders); false: causal.
    public var bidirectional: Bool
    /// BERT's block layout (TransformerLens's `BertBlock`): the embeddings summed (tokens, positions, token
    /// types) and LayerNorm-ed; in each block attention reads the residual stream itself, then
    /// `ln1(resid_pre + attn_out)` feeds the MLP and `ln2(that + mlp_out)` is the block's output
    /// (`hook_normalized_resid_post`); the masked-LM head (dense, activation, LayerNorm `ln_final`) before
    /// the unembedding. Weights: `TransformerWeights.encoder`.
    public var postLayerNorm: Bool
    /// Token-type (segment) embeddings, BERT's `type_vocab_size`; 0: none.
    public var nTokenTypes: Int
    /// An encoder with its masked-LM head (`BertForMaskedLM`): the forward pass ends in logits. Without it
    /// (`BertModel`, sentence-embedding models) the forward pass returns the last hidden state
    /// `[batch, pos, d_model]` and there are no `mlm_head.*` or `unembed.*` hooks.
    public var maskedLMHead: Bool

    public init(architecture: String, nLayers: Int, dModel: Int, nHeads: Int, dHead: Int, dMLP: Int, dVocab: Int,
                nCtx: Int, nKeyValueHeads: Int? = nil, eps: Float = 1e-5, normalization: Normalization = .layerNorm,
                activation: Activation = .geluNew, positional: Positional = .standard, gatedMLP: Bool = false,
                rotaryBase: Float = 10000, eosTokenID: Int? = nil, attnOnly: Bool = false, rotaryDim: Int? = nil,
                ropeScaling: Rope.Scaling? = nil, slidingWindow: Int? = nil, layerTypes: [AttentionKind]? = nil,
                slidingRope: Rope? = nil, qkNorm: Bool = false, postNorms: Bool = false,
                parallelAttnMLP: Bool = false, attnScale: Float? = nil, bidirectional: Bool = false,
                postLayerNorm: Bool = false, nTokenTypes: Int = 0, maskedLMHead: Bool = false) {
        self.architecture = architecture
        self.nLayers = nLayers
        self.dModel = dModel
        self.nHeads = nHeads
        self.dHead = dHead
        self.dMLP = dMLP
        self.dVocab = dVocab
        self.nCtx = nCtx
        self.nKeyValueHeads = nKeyValueHeads ?? nHeads
        self.eps = eps
        self.normalization = normalization
        self.activation = activation
        self.positional = positional
        self.gatedMLP = gatedMLP
        self.rotaryBase = rotaryBase
        self.eosTokenID = eosTokenID
        self.attnOnly = attnOnly
        self.rotaryDim = rotaryDim
        self.ropeScaling = ropeScaling
        self.slidingWindow = slidingWindow
        self.layerTypes = layerTypes
        self.slidingRope = slidingRope
        self.qkNorm = qkNorm
        self.postNorms = postNorms
        self.parallelAttnMLP = parallelAttnMLP
        self.attnScale = attnScale
        self.bidirectional = bidirectional
        self.postLayerNorm = postLayerNorm
        self.nTokenTypes = nTokenTypes
        self.maskedLMHead = maskedLMHead
    }

    enum CodingKeys: String, CodingKey {
        case architecture, nLayers, dModel, nHeads, dHead, dMLP, dVocab, nCtx, nKeyValueHeads, eps, normalization,
             activation, positional, gatedMLP, rotaryBase, eosTokenID, attnOnly, rotaryDim, ropeScaling,
             slidingWindow, layerTypes, slidingRope, qkNorm, postNorms, parallelAttnMLP, attnScale, bidirectional,
             postLayerNorm, nTokenTypes, maskedLMHead
    }

    /// Decodes a config; `attnOnly` and the architecture variants may be missing (configs written before
    /// they existed).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try c.decode(String.self, forKey: .architecture)
        nLayers = try c.decode(Int.self, forKey: .nLayers)
        dModel = try c.decode(Int.self, forKey: .dModel)
        nHeads = try c.decode(Int.self, forKey: .nHeads)
        dHead = try c.decode(Int.self, forKey: .dHead)
        dMLP = try c.decode(Int.self, forKey: .dMLP)
        dVocab = try c.decode(Int.self, forKey: .dVocab)
        nCtx = try c.decode(Int.self, forKey: .nCtx)
        nKeyValueHeads = try c.decode(Int.self, forKey: .nKeyValueHeads)
        eps = try c.decode(Float.self, forKey: .eps)
        normalization = try c.decode(Normalization.self, forKey: .normalization)
        activation = try c.decode(Activation.self, forKey: .activation)
        positional = try c.decode(Positional.self, forKey: .positional)
        gatedMLP = try c.decode(Bool.self, forKey: .gatedMLP)
        rotaryBase = try c.decode(Float.self, forKey: .rotaryBase)
        eosTokenID = try c.decodeIfPresent(Int.self, forKey: .eosTokenID)
        attnOnly = try c.decodeIfPresent(Bool.self, forKey: .attnOnly) ?? false
        rotaryDim = try c.decodeIfPresent(Int.self, forKey: .rotaryDim)
        ropeScaling = try c.decodeIfPresent(Rope.Scaling.self, forKey: .ropeScaling)
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        layerTypes = try c.decodeIfPresent([AttentionKind].self, forKey: .layerTypes)
        slidingRope = try c.decodeIfPresent(Rope.self, forKey: .slidingRope)
        qkNorm = try c.decodeIfPresent(Bool.self, forKey: .qkNorm) ?? false
        postNorms = try c.decodeIfPresent(Bool.self, forKey: .postNorms) ?? false
        parallelAttnMLP = try c.decodeIfPresent(Bool.self, forKey: .parallelAttnMLP) ?? false
        attnScale = try c.decodeIfPresent(Float.self, forKey: .attnScale)
        bidirectional = try c.decodeIfPresent(Bool.self, forKey: .bidirectional) ?? false
        postLayerNorm = try c.decodeIfPresent(Bool.self, forKey: .postLayerNorm) ?? false
        nTokenTypes = try c.decodeIfPresent(Int.self, forKey: .nTokenTypes) ?? 0
        maskedLMHead = try c.decodeIfPresent(Bool.self, forKey: .maskedLMHead) ?? false
    }

    /// Checks the numbers fit together.
    public func validate() throws {
        func bad(_ why: String) -> ModelError { .invalidConfig(why) }
        for (name, v) in [("n_layers", nLayers), ("d_model", dModel), ("n_heads", nHeads), ("d_head", dHead),
                          ("d_vocab", dVocab), ("n_ctx", nCtx), ("n_key_value_heads", nKeyValueHeads)]
        where v <= 0 {
            throw bad("\(name) must be positive, found \(v)")
        }
        if attnOnly {
            if dMLP != 0 { throw bad("an attention-only model has d_mlp 0, found \(dMLP)") }
            if gatedMLP { throw bad("an attention-only model has no (gated) MLP") }
        } else if dMLP <= 0 {
            throw bad("d_mlp must be positive, found \(dMLP)")
        }
        // Sizes past these are not a model but a hostile or broken config: refuse before any arithmetic.
        for (name, v, cap) in [("n_layers", nLayers, 4096), ("d_model", dModel, 1 << 16), ("n_heads", nHeads, 4096),
                               ("d_head", dHead, 1 << 14), ("d_mlp", dMLP, 1 << 18), ("d_vocab", dVocab, 1 << 22),
                               ("n_ctx", nCtx, 1 << 22), ("n_key_value_heads", nKeyValueHeads, 4096)] where v > cap {
            throw bad("\(name) = \(v) is larger than Loupe supports (\(cap))")
        }
        if nHeads % nKeyValueHeads != 0 {
            throw bad("n_heads (\(nHeads)) must be a multiple of n_key_value_heads (\(nKeyValueHeads))")
        }
        if positional != .standard && dHead % 2 != 0 { throw bad("rotary embeddings need an even d_head, found \(dHead)") }
        if !(eps > 0) { throw bad("eps must be positive, found \(eps)") }
        if positional != .standard && !(rotaryBase > 0 && rotaryBase.isFinite) {
            throw bad("the rotary base (rope_theta) must be positive, found \(rotaryBase)")
        }
        if let r = rotaryDim, positional == .standard || r <= 0 || r > dHead || r % 2 != 0 {
            throw bad("rotary_dim must be even and in 2...d_head (\(dHead)) for a rotary model, found \(r)")
        }
        if let w = slidingWindow, w <= 0 { throw bad("sliding_window must be positive, found \(w)") }
        if let types = layerTypes {
            if types.count != nLayers { throw bad("layer_types has \(types.count) entries for \(nLayers) layers") }
            if types.contains(.sliding) && slidingWindow == nil { throw bad("layer_types names sliding layers but sliding_window is not set") }
        }
        if let r = slidingRope, !(r.base > 0 && r.base.isFinite) { throw bad("the sliding layers' rope base must be positive, found \(r.base)") }
        try ropeScaling.map { try Self.check($0) }
        try slidingRope?.scaling.map { try Self.check($0) }
        if let s = attnScale, !(s > 0 && s.isFinite) { throw bad("the attention scale must be positive, found \(s)") }
        if parallelAttnMLP && attnOnly { throw bad("an attention-only model has no MLP to run in parallel") }
        if nTokenTypes < 0 || nTokenTypes > 1 << 16 { throw bad("the number of token types must be 0…65536, found \(nTokenTypes)") }
        if maskedLMHead && !postLayerNorm { throw bad("a masked-LM head is part of the BERT layout (postLayerNorm)") }
        if nTokenTypes > 0 && !postLayerNorm { throw bad("token-type embeddings are part of the BERT layout (postLayerNorm)") }
        if postLayerNorm {
            guard normalization == .layerNorm, positional == .standard, !attnOnly, !parallelAttnMLP, !postNorms, !gatedMLP, !qkNorm else {
                throw bad("the BERT layout (postLayerNorm) has LayerNorms with weights, learned positions and a plain MLP after attention")
            }
        }
    }

    private static func check(_ s: Rope.Scaling) throws {
        switch s {
        case .linear(let f):
            guard f >= 1, f.isFinite else { throw ModelError.invalidConfig("rope scaling factor must be at least 1, found \(f)") }
        case .llama3(let f, let low, let high, let original):
            guard f >= 1, f.isFinite, low > 0, high > low, original > 0 else {
                throw ModelError.invalidConfig("llama3 rope scaling needs factor ≥ 1, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0; found factor \(f), low \(low), high \(high), original \(original)")
            }
        }
    }

    /// The rotated dimensions of each head.
    public var rotatedDims: Int { rotaryDim ?? dHead }

    /// Whether layer `l` uses sliding-window attention.
    public func isSliding(_ l: Int) -> Bool {
        guard slidingWindow != nil else { return false }
        guard let types = layerTypes else { return true }
        return l < types.count && types[l] == .sliding
    }

    /// The window of layer `l` (nil: full causal attention).
    public func window(_ l: Int) -> Int? { isSliding(l) ? slidingWindow : nil }

    /// The rotary settings of full-attention layers (and of every layer without `slidingRope`).
    public var globalRope: Rope { Rope(base: Double(rotaryBase), scaling: ropeScaling) }

    /// The rotary settings of layer `l`.
    public func rope(_ l: Int) -> Rope {
        if isSliding(l), let r = slidingRope { return r }
        return globalRope
    }

    /// Whether normalization layers carry weights.
    public var normHasWeights: Bool { normalization == .layerNorm || normalization == .rmsNorm }
    /// Whether the norm subtracts each row's mean first (LayerNorm) or not (RMSNorm).
    public var centresNorm: Bool { normalization == .layerNorm || normalization == .layerNormPre }
    /// The query heads that share one key-value head.
    public var groupSize: Int { nHeads / nKeyValueHeads }
    /// Whether the forward pass ends in logits over the vocabulary (false for an encoder without a head).
    public var hasUnembedding: Bool { !postLayerNorm || maskedLMHead }
}

extension ModelConfig {
    /// The model's norm over the last dimension of `x` (LayerNorm or RMSNorm, with this config's eps),
    /// times `weight` and plus `bias` when given.
    public func normalize(_ x: Tensor, weight: Tensor?, bias: Tensor?) throws -> Tensor {
        centresNorm ? try x.layerNorm(weight: weight, bias: bias, eps: eps) : try x.rmsNorm(weight: weight, eps: eps)
    }
}
