// Llama-family GGUF files → the canonical TransformerLens layout. (Hugging Face Llama folders are read by
// LlamaFamily.swift through the generic HFDecoder; the names of both formats are kept here side by side.)
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
