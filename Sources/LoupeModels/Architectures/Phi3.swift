// Phi-3 (`Phi3ForCausalLM`): the Llama block with q, k, v fused into one `qkv_proj` (all q rows, then k,
// then v) and gate and up fused into one `gate_up_proj` (gate rows first); partial rotary through
// `partial_rotary_factor`; sliding-window attention when `sliding_window` is set.

enum Phi3 {
    static func describe(_ r: HFConfigReader) throws -> (ModelConfig, DecoderLayout) {
        let s = try r.sizes(contextDefault: 4096)
        let act = try r.activation("hidden_act", default: "silu", allowed: ["silu": .silu, "swish": .silu])
        let rope = try r.rope(defaultTheta: 10000)
        let topLevel = try r.optionalDouble("partial_rotary_factor")
        if let a = rope.partialFactor, let b = topLevel, a != b {
            throw ModelError.invalidConfig("\(r.path): partial_rotary_factor \(b) disagrees with rope_parameters' \(a)")
        }
        let partial = rope.partialFactor ?? topLevel ?? 1
        // Only the longrope scaling uses original_max_position_embeddings, and it is refused by rope().
        r.accept("original_max_position_embeddings")
        let (window, types) = try r.attentionLayers(layers: s.layers)
        let attentionBias = try r.bool("attention_bias", false)
        let tied = try r.bool("tie_word_embeddings", false)
        let config = ModelConfig(
            architecture: "Phi3ForCausalLM", nLayers: s.layers, dModel: s.dModel, nHeads: s.heads, dHead: s.dHead,
            dMLP: s.dMLP, dVocab: s.vocab, nCtx: s.context, nKeyValueHeads: s.kvHeads, eps: try r.epsilon("rms_norm_eps", 1e-5),
            normalization: .rmsNorm, activation: act, positional: .rotaryHalf, gatedMLP: true,
            rotaryBase: Float(rope.global.base), eosTokenID: r.eosToken(),
            rotaryDim: partial == 1 ? nil : Int(Double(s.dHead) * partial), ropeScaling: rope.global.scaling,
            slidingWindow: window, layerTypes: types)
        try r.finish(architecture: "Phi3ForCausalLM")
        try config.validate()
        var layout = DecoderLayout()
        layout.attention = .fusedQKV("self_attn.qkv_proj", o: "self_attn.o_proj")
        layout.mlp = .fusedGateUp("mlp.gate_up_proj", down: "mlp.down_proj")
        layout.qkvBias = attentionBias
        layout.oBias = attentionBias
        layout.tiedEmbeddings = tied
        return (config, layout)
    }
}
