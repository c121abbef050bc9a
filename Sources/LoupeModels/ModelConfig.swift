// The architecture of a transformer, in TransformerLens's vocabulary.

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

    public init(architecture: String, nLayers: Int, dModel: Int, nHeads: Int, dHead: Int, dMLP: Int, dVocab: Int,
                nCtx: Int, nKeyValueHeads: Int? = nil, eps: Float = 1e-5, normalization: Normalization = .layerNorm,
                activation: Activation = .geluNew, positional: Positional = .standard, gatedMLP: Bool = false,
                rotaryBase: Float = 10000, eosTokenID: Int? = nil, attnOnly: Bool = false) {
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
    }

    enum CodingKeys: String, CodingKey {
        case architecture, nLayers, dModel, nHeads, dHead, dMLP, dVocab, nCtx, nKeyValueHeads, eps, normalization,
             activation, positional, gatedMLP, rotaryBase, eosTokenID, attnOnly
    }

    /// Decodes a config; `attnOnly` may be missing (configs written before it existed).
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
    }

    /// Whether normalization layers carry weights.
    public var normHasWeights: Bool { normalization == .layerNorm || normalization == .rmsNorm }
    /// Whether the norm subtracts each row's mean first (LayerNorm) or not (RMSNorm).
    public var centresNorm: Bool { normalization == .layerNorm || normalization == .layerNormPre }
    /// The query heads that share one key-value head.
    public var groupSize: Int { nHeads / nKeyValueHeads }
}

extension ModelConfig {
    /// The model's norm over the last dimension of `x` (LayerNorm or RMSNorm, with this config's eps),
    /// times `weight` and plus `bias` when given.
    public func normalize(_ x: Tensor, weight: Tensor?, bias: Tensor?) throws -> Tensor {
        centresNorm ? try x.layerNorm(weight: weight, bias: bias, eps: eps) : try x.rmsNorm(weight: weight, eps: eps)
    }
}
