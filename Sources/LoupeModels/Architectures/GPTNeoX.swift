// GPT-NeoX and Pythia (`GPTNeoXForCausalLM`): LayerNorm with biases; attention and MLP in parallel, both
// reading the block's input (`use_parallel_residual`); rotary embeddings on the first `rotary_pct` of each
// head (halves rotated); q, k, v fused per head; a plain GELU MLP with biases; an untied unembedding.
//
// Checkpoint: gpt_neox.embed_in, gpt_neox.layers.{l}.{input_layernorm, post_attention_layernorm},
// attention.query_key_value ([3·d_model, d_model], rows per head: q, k, v), attention.dense,
// mlp.dense_h_to_4h, mlp.dense_4h_to_h, gpt_neox.final_layer_norm, embed_out.

enum GPTNeoX {
    static func describe(_ r: HFConfigReader) throws -> (ModelConfig, DecoderLayout) {
        let d = try r.int("hidden_size"), h = try r.int("num_attention_heads")
        guard d > 0, h > 0, d % h == 0 else {
            throw ModelError.invalidConfig("\(r.path): hidden_size (\(d)) must be a positive multiple of num_attention_heads (\(h))")
        }
        let act = try r.activation("hidden_act", default: "gelu",
                                   allowed: ["gelu": .gelu, "gelu_new": .geluNew, "gelu_fast": .geluNew, "gelu_pytorch_tanh": .geluNew, "relu": .relu])
        // Older configs: rotary_pct and rotary_emb_base; transformers 5: rope_parameters.
        let legacyPct = try r.optionalDouble("rotary_pct")
        let rope = try r.rope(defaultTheta: try r.double("rotary_emb_base", 10000))
        let pct = rope.partialFactor ?? legacyPct ?? 1
        guard pct > 0, pct <= 1 else { throw ModelError.invalidConfig("\(r.path): the rotary fraction must be in (0, 1], found \(pct)") }
        let dh = d / h
        let parallel = try r.bool("use_parallel_residual", true)
        let bias = try r.bool("attention_bias", true)
        let tied = try r.bool("tie_word_embeddings", false)
        let config = ModelConfig(
            architecture: "GPTNeoXForCausalLM", nLayers: try r.int("num_hidden_layers"), dModel: d, nHeads: h, dHead: dh,
            dMLP: try r.int("intermediate_size"), dVocab: try r.int("vocab_size"), nCtx: try r.int("max_position_embeddings", 2048),
            eps: try r.epsilon("layer_norm_eps", 1e-5), normalization: .layerNorm, activation: act, positional: .rotaryHalf,
            rotaryBase: Float(rope.global.base), eosTokenID: r.eosToken(), rotaryDim: Int(Double(dh) * pct),
            ropeScaling: rope.global.scaling, parallelAttnMLP: parallel)
        try r.finish(architecture: "GPTNeoXForCausalLM")
        try config.validate()
        var layout = DecoderLayout()
        layout.embed = "gpt_neox.embed_in.weight"
        layout.finalNorm = "gpt_neox.final_layer_norm"
        layout.unembed = "embed_out.weight"
        layout.layerPrefix = { "gpt_neox.layers.\($0)." }
        layout.attention = .perHeadQKV("attention.query_key_value", o: "attention.dense")
        layout.mlp = .plain(up: "mlp.dense_h_to_4h", down: "mlp.dense_4h_to_h")
        layout.normBias = true
        layout.qkvBias = bias
        layout.oBias = bias
        layout.mlpBias = true
        layout.tiedEmbeddings = tied
        return (config, layout)
    }
}
