// Llama-family models (Llama 2/3, SmolLM2, …) → the canonical TransformerLens layout.
//
// Hugging Face `LlamaForCausalLM` checkpoints (PyTorch `nn.Linear` weights are stored [out, in]):
//   model.embed_tokens.weight [d_vocab, d_model]
//   model.layers.{l}.self_attn.{q,k,v,o}_proj.weight: q [n_heads·d_head, d_model],
//       k/v [n_kv_heads·d_head, d_model], o [d_model, n_heads·d_head]; heads are contiguous row blocks
//   model.layers.{l}.mlp.{gate,up}_proj.weight [d_mlp, d_model], down_proj [d_model, d_mlp]
//   model.layers.{l}.{input,post_attention}_layernorm.weight, model.norm.weight: [d_model] (RMSNorm)
//   lm_head.weight [d_vocab, d_model] (absent when tied to the embedding)
//   Rotary embeddings rotate the first half of each head against the second ("rotate half").
// GGUF llama files (llama.cpp's converter): token_embd, blk.{l}.attn_{q,k,v,output}, blk.{l}.ffn_{gate,up,down},
//   blk.{l}.{attn,ffn}_norm, output_norm, output (optional) with the same [out, in] matrices once GGUF's
//   fastest-first dimensions are reversed; q and k rows are permuted so that rotary pairs are adjacent
//   (2i, 2i+1) — hence `.rotaryInterleaved` for GGUF and `.rotaryHalf` for Hugging Face weights.

import Foundation
import LoupeFormats
import LoupeTensor

public enum Llama {
    /// Reads a Hugging Face `LlamaForCausalLM` `config.json` (already parsed).
    public static func config(fromJSON j: [String: Any], path: String) throws -> ModelConfig {
        let reader = ConfigReader(json: j, path: path)
        let int = reader.int
        if let scaling = j["rope_scaling"], !(scaling is NSNull) {
            throw ModelError.invalidConfig("\(path): rope_scaling \(scaling) is not supported")
        }
        let act = (j["hidden_act"] as? String) ?? "silu"
        guard act == "silu" else { throw ModelError.invalidConfig("\(path): hidden_act '\(act)' is not supported (expected silu)") }
        let d = try int("hidden_size", nil), h = try int("num_attention_heads", nil)
        if reader.bool("mlp_bias", false) {
            throw ModelError.invalidConfig("\(path): mlp_bias = true is not supported (TransformerLens's gated MLP has no place for gate and up biases)")
        }
        guard h > 0, d % h == 0 || j["head_dim"] != nil else {
            throw ModelError.invalidConfig("\(path): hidden_size (\(d)) must be a multiple of num_attention_heads (\(h))")
        }
        let config = ModelConfig(
            architecture: "LlamaForCausalLM", nLayers: try int("num_hidden_layers", nil), dModel: d, nHeads: h,
            dHead: try int("head_dim", d / h), dMLP: try int("intermediate_size", nil), dVocab: try int("vocab_size", nil),
            nCtx: try int("max_position_embeddings", 2048), nKeyValueHeads: try int("num_key_value_heads", h),
            eps: Float((j["rms_norm_eps"] as? Double) ?? 1e-6), normalization: .rmsNorm, activation: .silu,
            positional: .rotaryHalf, gatedMLP: true, rotaryBase: Float((j["rope_theta"] as? Double) ?? 10000),
            eosTokenID: j["eos_token_id"] as? Int)
        try config.validate()
        return config
    }

    /// Converts a Hugging Face Llama safetensors checkpoint. `attentionBias` (config `attention_bias`)
    /// loads q/k/v/o biases; `tiedEmbeddings` (config `tie_word_embeddings`) says whether a missing
    /// `lm_head.weight` is expected.
    public static func weights(from file: SafetensorsFile, config c: ModelConfig, attentionBias: Bool = false,
                               tiedEmbeddings: Bool = true) throws -> TransformerWeights {
        var w = try convert(config: c, source: file.path, names: Names.huggingFace, requireUnembed: !tiedEmbeddings) { name, shape in
            guard file.entries[name] != nil else { return nil }
            let t = try file.tensor(name)
            guard t.shape == shape else { throw ModelError.weightShape(name: name, expected: shape, found: t.shape) }
            return t
        }
        if attentionBias {
            func load(_ name: String, _ shape: [Int]) throws -> Tensor {
                guard file.entries[name] != nil else { throw ModelError.missingWeight(name: name, file: file.path) }
                let t = try file.tensor(name)
                guard t.shape == shape else { throw ModelError.weightShape(name: name, expected: shape, found: t.shape) }
                return t
            }
            let (h, kv, dh, d) = (c.nHeads, c.nKeyValueHeads, c.dHead, c.dModel)
            for l in 0..<c.nLayers {
                let p = "model.layers.\(l).self_attn."
                w.blocks[l].bQ = try load(p + "q_proj.bias", [h * dh]).reshaped([h, dh])
                w.blocks[l].bK = try load(p + "k_proj.bias", [kv * dh]).reshaped([kv, dh])
                w.blocks[l].bV = try load(p + "v_proj.bias", [kv * dh]).reshaped([kv, dh])
                if file.entries[p + "o_proj.bias"] != nil { w.blocks[l].bO = try load(p + "o_proj.bias", [d]) }
            }
        }
        return w
    }

    /// Checkpoint names of one format.
    struct Names: Sendable {
        let embed: String, finalNorm: String, unembed: String
        let layer: @Sendable (Int, String) -> String
        static let huggingFace = Names(
            embed: "model.embed_tokens.weight", finalNorm: "model.norm.weight", unembed: "lm_head.weight",
            layer: { l, part in
                let map = ["q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
                           "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj",
                           "norm1": "input_layernorm", "norm2": "post_attention_layernorm"]
                return "model.layers.\(l).\(map[part]!).weight"
            })
        static let gguf = Names(
            embed: "token_embd.weight", finalNorm: "output_norm.weight", unembed: "output.weight",
            layer: { l, part in
                let map = ["q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "gate": "ffn_gate",
                           "up": "ffn_up", "down": "ffn_down", "norm1": "attn_norm", "norm2": "ffn_norm"]
                return "blk.\(l).\(map[part]!).weight"
            })
    }

    /// The conversion both formats share. `load(name, expectedShape)` returns nil for a missing tensor.
    static func convert(config c: ModelConfig, source: String, names: Names, requireUnembed: Bool = false,
                        load: (String, [Int]) throws -> Tensor?) throws -> TransformerWeights {
        let (d, h, kv, dh, m, v) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead, c.dMLP, c.dVocab)
        func need(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let t = try load(name, shape) else { throw ModelError.missingWeight(name: name, file: source) }
            return t
        }
        var blocks: [BlockWeights] = []
        for l in 0..<c.nLayers {
            let n = { names.layer(l, $0) }
            let wQ = try headsIn(try need(n("q"), [h * dh, d]), heads: h)     // [n_heads, d_model, d_head]
            let wK = try headsIn(try need(n("k"), [kv * dh, d]), heads: kv)
            let wV = try headsIn(try need(n("v"), [kv * dh, d]), heads: kv)
            // o_proj [d_model, n_heads·d_head]: W_O[h, j, :] = o[:, h·d_head + j] → transpose then reshape.
            let wO = try need(n("o"), [d, h * dh]).transposed().reshaped([h, dh, d])
            blocks.append(BlockWeights(
                ln1W: try need(n("norm1"), [d]), ln1B: nil,
                wQ: wQ, bQ: Tensor(zeros: [h, dh]), wK: wK, bK: Tensor(zeros: [kv, dh]), wV: wV, bV: Tensor(zeros: [kv, dh]),
                wO: wO, bO: Tensor(zeros: [d]),
                ln2W: try need(n("norm2"), [d]), ln2B: nil,
                wIn: try need(n("up"), [m, d]).transposed(), bIn: Tensor(zeros: [m]),
                wGate: try need(n("gate"), [m, d]).transposed(),
                wOut: try need(n("down"), [d, m]).transposed(), bOut: Tensor(zeros: [d])))
        }
        let wE = try need(names.embed, [v, d])
        let unembed = requireUnembed ? try need(names.unembed, [v, d]) : (try load(names.unembed, [v, d]) ?? wE)   // tied when absent
        return TransformerWeights(wE: wE, wPos: nil, blocks: blocks, lnFinalW: try need(names.finalNorm, [d]), lnFinalB: nil,
                                  wU: try unembed.transposed(), bU: Tensor(zeros: [v]))
    }

    /// `[heads·d_head, d_model]` (PyTorch [out, in]) → `[heads, d_model, d_head]`.
    static func headsIn(_ w: Tensor, heads: Int) throws -> Tensor {
        let (rows, d) = (w.shape[0], w.shape[1])
        let dh = rows / heads
        return try w.reshaped([heads, dh, d]).transposed()
    }
}
