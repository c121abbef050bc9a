// Gemma 3 from GGUF (`general.architecture = "gemma3"`, llama.cpp's converter): the same model as the
// Hugging Face folder, under llama.cpp's names, with two differences the converter makes — norm weights
// are stored as 1 + w already, and q/k rows are not permuted (Gemma rotates halves, as Hugging Face).
// llama.cpp fixes what the GGUF does not record: the sliding layers' rope base is 10,000 and every
// sixth layer is global (unless `gemma3.attention.sliding_window_pattern` says otherwise).
//
// Names: token_embd, blk.{l}.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_q_norm, attn_k_norm,
// post_attention_norm, ffn_norm, ffn_gate, ffn_up, ffn_down, post_ffw_norm}, output_norm, output (tied
// when absent).

import Foundation
import LoupeFormats
import LoupeTensor

extension Gemma3 {
    /// A gemma3 GGUF file's model: quantized weights read in place, or (`dequantize`) float32 copies.
    static func model(gguf: GGUFFile, dequantize: Bool) throws -> HookedTransformer {
        let (config, layout) = try ggufLayout(gguf)
        return try HFDecoder.model(gguf: gguf, layout: layout, config: config, dequantize: dequantize)
    }

    /// The config of a gemma3 GGUF file and where its weights are.
    static func ggufLayout(_ gguf: GGUFFile) throws -> (ModelConfig, DecoderLayout) {
        let a = "gemma3"
        let d = try gguf.int("\(a).embedding_length"), h = try gguf.int("\(a).attention.head_count")
        let dh = try gguf.optionalInt("\(a).attention.key_length") ?? d / max(h, 1)
        if let vlen = try gguf.optionalInt("\(a).attention.value_length"), vlen != dh {
            throw ModelError.unsupported("\(gguf.path): value_length \(vlen) differs from key_length \(dh)")
        }
        let scaling: ModelConfig.Rope.Scaling?
        switch try gguf.optionalString("\(a).rope.scaling.type") ?? "none" {
        case "none": scaling = nil
        case "linear":
            let f = try gguf.optionalFloat("\(a).rope.scaling.factor") ?? 1
            scaling = f == 1 ? nil : .linear(factor: Double(f))
        case let other: throw ModelError.unsupported("\(gguf.path): rope scaling '\(other)' is not supported (none, linear)")
        }
        for key in ["\(a).attn_logit_softcapping", "\(a).final_logit_softcapping"] where gguf.has(key) {
            throw ModelError.unsupported("\(gguf.path): \(key) is not supported")
        }
        let layers = try gguf.int("\(a).block_count")
        let window = try gguf.optionalInt("\(a).attention.sliding_window")
        let pattern = try gguf.optionalInt("\(a).attention.sliding_window_pattern") ?? 6
        guard pattern > 0 else { throw ModelError.invalidConfig("\(gguf.path): sliding_window_pattern must be positive") }
        let types: [ModelConfig.AttentionKind]? = window == nil ? nil : (0..<layers).map { ($0 + 1) % pattern == 0 ? .full : .sliding }
        let vocab = try gguf.optionalInt("\(a).vocab_size")
            ?? (gguf.has("tokenizer.ggml.tokens") ? try gguf.arrayCount("tokenizer.ggml.tokens") : try gguf.info("token_embd.weight").shape[0])
        let config = ModelConfig(
            architecture: "Gemma3ForCausalLM (GGUF)", nLayers: layers, dModel: d, nHeads: h, dHead: dh,
            dMLP: try gguf.int("\(a).feed_forward_length"), dVocab: vocab,
            nCtx: try gguf.optionalInt("\(a).context_length") ?? 32768,
            nKeyValueHeads: try gguf.optionalInt("\(a).attention.head_count_kv") ?? h,
            eps: try gguf.optionalFloat("\(a).attention.layer_norm_rms_epsilon") ?? 1e-6,
            normalization: .rmsNorm, activation: .geluNew, positional: .rotaryHalf, gatedMLP: true,
            rotaryBase: try gguf.optionalFloat("\(a).rope.freq_base") ?? 1_000_000,
            eosTokenID: try gguf.optionalInt("tokenizer.ggml.eos_token_id"),
            ropeScaling: scaling, slidingWindow: window, layerTypes: types,
            slidingRope: window == nil ? nil : ModelConfig.Rope(base: 10_000),
            qkNorm: true, postNorms: true, attnScale: 1 / Float(dh).squareRoot())
        try config.validate()
        var layout = DecoderLayout.llamaCpp(tiedEmbeddings: !gguf.hasTensor("output.weight"))
        layout.postAttentionNorm = "post_attention_norm"
        layout.postMLPNorm = "post_ffw_norm"
        layout.qNorm = "attn_q_norm"
        layout.kNorm = "attn_k_norm"
        layout.embedScale = Float(Double(d).squareRoot())
        return (config, layout)
    }
}
