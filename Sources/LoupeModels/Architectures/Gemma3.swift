// Gemma 3 text models (`Gemma3ForCausalLM`, config `gemma3_text`): embeddings scaled by sqrt(d_model);
// RMSNorm multiplying by (1 + w); norms before and after attention and the MLP; QK-norm; GeGLU with the
// tanh GELU; attention scaled by query_pre_attn_scalar^-1/2; sliding-window ("local") layers with their
// own rope base, and full ("global") layers every `sliding_window_pattern`-th; tied embeddings.
//
// Checkpoint: model.embed_tokens, model.layers.{l}.{input_layernorm, post_attention_layernorm,
// pre_feedforward_layernorm, post_feedforward_layernorm}, self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm,
// mlp.{gate,up,down}_proj, model.norm. Note the names: Gemma's post_attention_layernorm is the norm on the
// attention *output* (TransformerLens's ln1_post); the MLP's input norm is pre_feedforward_layernorm (ln2).

import Foundation

enum Gemma3 {
    static func describe(_ r: HFConfigReader) throws -> (ModelConfig, DecoderLayout) {
        let s = try r.sizes(contextDefault: 131_072)
        let act = try r.activation("hidden_activation", default: "gelu_pytorch_tanh",
                                   allowed: ["gelu_pytorch_tanh": .geluNew, "gelu_new": .geluNew, "gelu": .gelu])
        if r.has("hidden_act") && r.has("hidden_activation") { r.accept("hidden_act") }   // older configs carry both; hidden_activation wins
        for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
            if r.has(key) { throw ModelError.invalidConfig("\(r.path): \(key) is not supported (Gemma 3 has none; Gemma 2 does)") }
            r.accept(key)
        }
        try r.require("use_bidirectional_attention", isOneOf: [false], because: "Loupe runs causal decoders")
        let attentionBias = try r.bool("attention_bias", false)
        let scalar = try r.double("query_pre_attn_scalar", 256)
        guard scalar > 0 else { throw ModelError.invalidConfig("\(r.path): query_pre_attn_scalar must be positive, found \(scalar)") }
        // Older configs: rope_theta (global), rope_local_base_freq (sliding), rope_scaling (global only).
        let rope = try r.rope(defaultTheta: 1_000_000)
        let localBase = try r.optionalDouble("rope_local_base_freq")
        let slidingRope = rope.sliding ?? ModelConfig.Rope(base: localBase ?? 10_000)
        if rope.sliding != nil, localBase != nil {
            throw ModelError.invalidConfig("\(r.path): both rope_parameters.sliding_attention and rope_local_base_freq are given")
        }
        let pattern = try r.optionalInt("sliding_window_pattern") ?? r.optionalInt("_sliding_window_pattern") ?? 6
        guard pattern > 0 else { throw ModelError.invalidConfig("\(r.path): sliding_window_pattern must be positive, found \(pattern)") }
        let (window, types) = try r.attentionLayers(layers: s.layers) { ($0 + 1) % pattern == 0 ? .full : .sliding }
        let tied = try r.bool("tie_word_embeddings", true)
        let config = ModelConfig(
            architecture: "Gemma3ForCausalLM", nLayers: s.layers, dModel: s.dModel, nHeads: s.heads, dHead: s.dHead,
            dMLP: s.dMLP, dVocab: s.vocab, nCtx: s.context, nKeyValueHeads: s.kvHeads, eps: try r.epsilon("rms_norm_eps", 1e-6),
            normalization: .rmsNorm, activation: act, positional: .rotaryHalf, gatedMLP: true,
            rotaryBase: Float(rope.global.base), eosTokenID: r.eosToken(),
            rotaryDim: rope.partialFactor.map { Int(Double(s.dHead) * $0) }, ropeScaling: rope.global.scaling,
            slidingWindow: window, layerTypes: types, slidingRope: window == nil ? nil : slidingRope,
            qkNorm: true, postNorms: true, attnScale: Float(1 / scalar.squareRoot()))
        try r.finish(architecture: "Gemma3ForCausalLM")
        try config.validate()
        var layout = DecoderLayout()
        layout.norm2 = "pre_feedforward_layernorm"
        layout.postAttentionNorm = "post_attention_layernorm"
        layout.postMLPNorm = "post_feedforward_layernorm"
        layout.qNorm = "self_attn.q_norm"
        layout.kNorm = "self_attn.k_norm"
        layout.normPlusOne = true
        layout.qkvBias = attentionBias
        layout.oBias = attentionBias
        layout.tiedEmbeddings = tied
        layout.embedScale = Float(Double(s.dModel).squareRoot())
        return (config, layout)
    }
}
