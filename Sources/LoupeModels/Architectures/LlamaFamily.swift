// Llama, Mistral, Qwen 2 and Qwen 3 from Hugging Face checkpoints: the same block (RMSNorm, rotary with
// the halves rotated, grouped-query attention, SwiGLU MLP) with small differences —
//   Llama 3:  rope scaling `llama3` (low frequencies stretched for long contexts); optional attention biases
//   Mistral:  sliding-window attention on every layer (`sliding_window`)
//   Qwen 2:   biases on q, k and v; sliding windows only with `use_sliding_window`
//   Qwen 3:   RMSNorm on each query and key head before the rotary embedding (QK-norm), explicit head_dim

enum LlamaFamily {
    enum Variant: String {
        case llama, mistral, qwen2, qwen3
        var architecture: String {
            switch self {
            case .llama: return "LlamaForCausalLM"
            case .mistral: return "MistralForCausalLM"
            case .qwen2: return "Qwen2ForCausalLM"
            case .qwen3: return "Qwen3ForCausalLM"
            }
        }
    }

    static func describe(_ r: HFConfigReader, variant: Variant) throws -> (ModelConfig, DecoderLayout) {
        let s = try r.sizes(contextDefault: 2048)
        let act = try r.activation("hidden_act", default: "silu", allowed: ["silu": .silu, "swish": .silu])
        try r.require("mlp_bias", isOneOf: [false], because: "TransformerLens's gated MLP has no gate or up biases")
        let attentionBias = try r.bool("attention_bias", false)
        let rope = try r.rope(defaultTheta: 10000)
        if rope.sliding != nil { throw ModelError.invalidConfig("\(r.path): per-layer-type rope_parameters are not used by \(variant.architecture)") }
        let useWindows: Bool
        switch variant {
        case .qwen2, .qwen3:
            useWindows = try r.bool("use_sliding_window", false)
            r.accept("max_window_layers")   // only derives layer_types, read below
        case .mistral: useWindows = true
        case .llama: useWindows = false
        }
        // Qwen without layer_types: layers from max_window_layers on use the window.
        let maxWindowLayers = (r.json["max_window_layers"]).flatMap(HFConfigReader.integer) ?? s.layers
        let qwen = variant == .qwen2 || variant == .qwen3
        let (window, types) = try r.attentionLayers(layers: s.layers, enabled: useWindows,
                                                    derive: qwen ? { $0 >= maxWindowLayers ? .sliding : .full } : nil)
        if variant == .llama, window != nil { throw ModelError.invalidConfig("\(r.path): sliding_window is not part of Llama") }
        let tied = try r.bool("tie_word_embeddings", false)
        let config = ModelConfig(
            architecture: variant.architecture, nLayers: s.layers, dModel: s.dModel, nHeads: s.heads, dHead: s.dHead,
            dMLP: s.dMLP, dVocab: s.vocab, nCtx: s.context, nKeyValueHeads: s.kvHeads, eps: try r.epsilon("rms_norm_eps", 1e-6),
            normalization: .rmsNorm, activation: act, positional: .rotaryHalf, gatedMLP: true,
            rotaryBase: Float(rope.global.base), eosTokenID: r.eosToken(),
            rotaryDim: rope.partialFactor.map { Int(Double(s.dHead) * $0) }, ropeScaling: rope.global.scaling,
            slidingWindow: window, layerTypes: types, qkNorm: variant == .qwen3)
        try r.finish(architecture: variant.architecture)
        try config.validate()
        var layout = DecoderLayout()
        layout.qkvBias = attentionBias || variant == .qwen2
        layout.oBias = attentionBias && variant != .qwen2
        layout.tiedEmbeddings = tied
        if variant == .qwen3 { layout.qNorm = "self_attn.q_norm"; layout.kNorm = "self_attn.k_norm" }
        return (config, layout)
    }
}
