// One converter for every Hugging Face decoder family: a `DecoderLayout` says where a family keeps each
// weight and how it is packed; `HFDecoder.convert` turns a checkpoint into TransformerLens's canonical
// layout (`TransformerWeights`). A family file reads its config and fills in a layout — nothing more.

import Foundation
import LoupeFormats
import LoupeTensor

/// Where a family keeps its weights, and how they are packed.
struct DecoderLayout: Sendable {
    /// How q, k, v (and o) are stored.
    enum Attention {
        /// `q_proj`, `k_proj`, `v_proj`, `o_proj` (Llama, Mistral, Qwen, Gemma).
        case separate(q: String, k: String, v: String, o: String)
        /// One `[(heads + 2·kv_heads)·d_head, d_model]` matrix: all q rows, then k, then v (Phi-3).
        case fusedQKV(String, o: String)
        /// One `[3·d_model, d_model]` matrix with rows per head `(q, k, v)` blocks of d_head (GPT-NeoX).
        case perHeadQKV(String, o: String)
    }

    /// How the MLP is stored.
    enum MLP {
        /// `act(x·gate) * (x·up)`, then `down` (Llama family).
        case gated(gate: String, up: String, down: String)
        /// Gate and up stacked in one `[2·d_mlp, d_model]` matrix, gate first (Phi-3).
        case fusedGateUp(String, down: String)
        /// `act(x·W_in + b_in)·W_out + b_out` (GPT-NeoX).
        case plain(up: String, down: String)
    }

    var embed = "model.embed_tokens.weight"
    var finalNorm = "model.norm"
    var unembed = "lm_head.weight"
    var layerPrefix: @Sendable (Int) -> String = { "model.layers.\($0)." }
    var attention: Attention = .separate(q: "self_attn.q_proj", k: "self_attn.k_proj", v: "self_attn.v_proj", o: "self_attn.o_proj")
    var mlp: MLP = .gated(gate: "mlp.gate_proj", up: "mlp.up_proj", down: "mlp.down_proj")
    var norm1 = "input_layernorm"
    var norm2 = "post_attention_layernorm"
    /// Gemma's norms on the attention and MLP outputs.
    var postAttentionNorm: String? = nil
    var postMLPNorm: String? = nil
    /// QK-norm weights (per head, `[d_head]`).
    var qNorm: String? = nil
    var kNorm: String? = nil
    /// LayerNorm with biases (GPT-NeoX) rather than RMSNorm.
    var normBias = false
    /// Biases on q, k, v (Qwen 2, GPT-NeoX, `attention_bias`) and on the output projection.
    var qkvBias = false
    var oBias = false
    /// Biases on the MLP's projections (GPT-NeoX).
    var mlpBias = false
    /// Norm weights stored as w where the norm multiplies by (1 + w) (Gemma).
    var normPlusOne = false
    /// Embeddings multiplied by this at the input (Gemma: sqrt(d_model)); folded into W_E (the unembedding
    /// keeps the unscaled matrix when tied).
    var embedScale: Float? = nil
    /// The unembedding is the embedding matrix (no `lm_head.weight` in the checkpoint).
    var tiedEmbeddings = false
    /// The names llama.cpp's converter gives a decoder's tensors in a GGUF file (token_embd,
    /// blk.{l}.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down},
    /// output_norm, output — tied when absent); architectures add their own (Gemma's extra norms).
    static func llamaCpp(tiedEmbeddings: Bool) -> DecoderLayout {
        var layout = DecoderLayout()
        layout.embed = "token_embd.weight"
        layout.finalNorm = "output_norm"
        layout.unembed = "output.weight"
        layout.layerPrefix = { "blk.\($0)." }
        layout.attention = .separate(q: "attn_q", k: "attn_k", v: "attn_v", o: "attn_output")
        layout.mlp = .gated(gate: "ffn_gate", up: "ffn_up", down: "ffn_down")
        layout.norm1 = "attn_norm"
        layout.norm2 = "ffn_norm"
        layout.tiedEmbeddings = tiedEmbeddings
        layout.buffers = ["rope_freqs.weight"]   // llama 3's precomputed rotary frequencies: the config has them
        return layout
    }

    /// Buffers some checkpoints carry that are not weights.
    var buffers: [String] = ["rotary_emb.inv_freq", "attention.bias", "attention.masked_bias"]
}

enum HFDecoder {
    /// Converts a checkpoint with the given layout to canonical weights for `c`. With `vectorsOnly`, the
    /// matrices (projections, embedding, unembedding) are checked and marked used but not read — they are
    /// empty in the result — for a model that multiplies by them in place (`quantizedModel`).
    static func convert(_ ckpt: Checkpoint, layout L: DecoderLayout, config c: ModelConfig,
                        vectorsOnly: Bool = false) throws -> TransformerWeights {
        let (d, h, kv, dh, m, v) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead, c.dMLP, c.dVocab)
        let none = Tensor(zeros: [0])
        /// A matrix the forward pass multiplies by, converted; or, `vectorsOnly`, only claimed.
        func matrix(_ name: String, _ shape: [Int], _ convert: (Tensor) throws -> Tensor) throws -> Tensor {
            if vectorsOnly { try ckpt.claim(name, shape); return none }
            return try convert(ckpt.tensor(name, shape))
        }
        func packedUnsupported(_ what: String) -> Error {
            ModelError.unsupported("\(ckpt.path): \(what) cannot run in place yet; load it dequantized")
        }
        func norm(_ name: String, _ n: Int = d) throws -> (Tensor, Tensor?) {
            let w = try ckpt.tensor(name + ".weight", [n])
            return (L.normPlusOne ? HFLayout.plusOne(w) : w, L.normBias ? try ckpt.tensor(name + ".bias", [n]) : nil)
        }
        func bias(_ name: String, _ n: Int, _ present: Bool) throws -> Tensor {
            present ? try ckpt.tensor(name + ".bias", [n]) : Tensor(zeros: [n])
        }
        var blocks: [BlockWeights] = []
        for l in 0..<c.nLayers {
            let p = L.layerPrefix(l)
            let (ln1W, ln1B) = try norm(p + L.norm1)
            let (ln2W, ln2B) = try norm(p + L.norm2)
            var wQ: Tensor, wK: Tensor, wV: Tensor, bQ: Tensor, bK: Tensor, bV: Tensor, oName: String
            switch L.attention {
            case .separate(let q, let k, let vName, let o):
                wQ = try matrix(p + q + ".weight", [h * dh, d]) { try HFLayout.headsIn($0, heads: h) }
                wK = try matrix(p + k + ".weight", [kv * dh, d]) { try HFLayout.headsIn($0, heads: kv) }
                wV = try matrix(p + vName + ".weight", [kv * dh, d]) { try HFLayout.headsIn($0, heads: kv) }
                bQ = try bias(p + q, h * dh, L.qkvBias).reshaped([h, dh])
                bK = try bias(p + k, kv * dh, L.qkvBias).reshaped([kv, dh])
                bV = try bias(p + vName, kv * dh, L.qkvBias).reshaped([kv, dh])
                oName = o
            case .fusedQKV(let name, let o):
                if vectorsOnly { throw packedUnsupported("a fused q/k/v matrix") }
                let w = try ckpt.tensor(p + name + ".weight", [(h + 2 * kv) * dh, d])
                let b = try bias(p + name, (h + 2 * kv) * dh, L.qkvBias)
                wQ = try HFLayout.headsIn(HFLayout.rows(w, 0, h * dh), heads: h)
                wK = try HFLayout.headsIn(HFLayout.rows(w, h * dh, kv * dh), heads: kv)
                wV = try HFLayout.headsIn(HFLayout.rows(w, (h + kv) * dh, kv * dh), heads: kv)
                bQ = try HFLayout.rows(b, 0, h * dh).reshaped([h, dh])
                bK = try HFLayout.rows(b, h * dh, kv * dh).reshaped([kv, dh])
                bV = try HFLayout.rows(b, (h + kv) * dh, kv * dh).reshaped([kv, dh])
                oName = o
            case .perHeadQKV(let name, let o):
                if vectorsOnly { throw packedUnsupported("a fused q/k/v matrix") }
                guard kv == h else { throw ModelError.invalidConfig("\(ckpt.path): per-head fused qkv needs as many key-value heads as heads") }
                // Rows are [head][q|k|v][d_head]: gather each part's rows head by head.
                let w = try ckpt.tensor(p + name + ".weight", [3 * h * dh, d])
                let b = try bias(p + name, 3 * h * dh, L.qkvBias)
                func part(_ which: Int) throws -> (Tensor, Tensor) {
                    var ws: [Float] = [], bs: [Float] = []
                    ws.reserveCapacity(h * dh * d)
                    for head in 0..<h {
                        let start = (head * 3 + which) * dh
                        ws += HFLayout.rows(w, start, dh).scalars
                        bs += HFLayout.rows(b, start, dh).scalars
                    }
                    return (try HFLayout.headsIn(Tensor(unchecked: [h * dh, d], ws), heads: h), Tensor(unchecked: [h, dh], bs))
                }
                (wQ, bQ) = try part(0); (wK, bK) = try part(1); (wV, bV) = try part(2)
                oName = o
            }
            let wO = try matrix(p + oName + ".weight", [d, h * dh]) { try HFLayout.headsOut($0, heads: h) }
            let bO = try bias(p + oName, d, L.oBias)
            var wIn: Tensor, bIn: Tensor, wGate: Tensor?, wOut: Tensor, bOut: Tensor
            switch L.mlp {
            case .gated(let gate, let up, let down):
                wGate = try matrix(p + gate + ".weight", [m, d]) { try $0.transposed() }
                wIn = try matrix(p + up + ".weight", [m, d]) { try $0.transposed() }
                bIn = Tensor(zeros: [m])
                wOut = try matrix(p + down + ".weight", [d, m]) { try $0.transposed() }
                bOut = Tensor(zeros: [d])
            case .fusedGateUp(let name, let down):
                if vectorsOnly { throw packedUnsupported("a fused gate/up matrix") }
                let w = try ckpt.tensor(p + name + ".weight", [2 * m, d])
                wGate = try HFLayout.rows(w, 0, m).transposed()
                wIn = try HFLayout.rows(w, m, m).transposed()
                bIn = Tensor(zeros: [m])
                wOut = try ckpt.tensor(p + down + ".weight", [d, m]).transposed()
                bOut = Tensor(zeros: [d])
            case .plain(let up, let down):
                wGate = nil
                wIn = try matrix(p + up + ".weight", [m, d]) { try $0.transposed() }
                bIn = try bias(p + up, m, L.mlpBias)
                wOut = try matrix(p + down + ".weight", [d, m]) { try $0.transposed() }
                bOut = try bias(p + down, d, L.mlpBias)
            }
            blocks.append(BlockWeights(
                ln1W: ln1W, ln1B: ln1B, wQ: wQ, bQ: bQ, wK: wK, bK: bK, wV: wV, bV: bV, wO: wO, bO: bO,
                ln2W: ln2W, ln2B: ln2B, wIn: wIn, bIn: bIn, wGate: wGate, wOut: wOut, bOut: bOut,
                qNormW: try L.qNorm.map { try norm(p + $0, dh).0 }, kNormW: try L.kNorm.map { try norm(p + $0, dh).0 },
                ln1PostW: try L.postAttentionNorm.map { try norm(p + $0).0 }, ln2PostW: try L.postMLPNorm.map { try norm(p + $0).0 }))
        }
        if vectorsOnly {
            try ckpt.claim(L.embed, [v, d])
            if !L.tiedEmbeddings || ckpt.contains(L.unembed) { try ckpt.claim(L.unembed, [v, d]) }
            let (lnF, lnFB) = try norm(L.finalNorm)
            try ckpt.finish(ignoring: L.buffers)
            return TransformerWeights(wE: none, wPos: nil, blocks: blocks, lnFinalW: lnF, lnFinalB: lnFB, wU: none, bU: Tensor(zeros: [v]))
        }
        let embed = try ckpt.tensor(L.embed, [v, d])
        let unembed: Tensor
        if L.tiedEmbeddings {
            if ckpt.contains(L.unembed) {
                // Some tied checkpoints still carry a copy; it must be the same matrix.
                guard try ckpt.tensor(L.unembed, [v, d]) == embed else {
                    throw ModelError.invalidConfig("\(ckpt.path): tie_word_embeddings is true but \(L.unembed) differs from \(L.embed)")
                }
            }
            unembed = embed
        } else {
            unembed = try ckpt.tensor(L.unembed, [v, d])
        }
        let wE = L.embedScale.map { s in Tensor(unchecked: embed.shape, embed.scalars.map { $0 * s }) } ?? embed
        let (lnF, lnFB) = try norm(L.finalNorm)
        try ckpt.finish(ignoring: L.buffers)
        return TransformerWeights(wE: wE, wPos: nil, blocks: blocks, lnFinalW: lnF, lnFinalB: lnFB,
                                  wU: try unembed.transposed(), bU: Tensor(zeros: [v]))
    }
}

extension HFDecoder {
    /// The model a checkpoint holds: read in place (`inPlaceModel`) unless `dequantize` or the layout or
    /// a type does not allow it, else converted to float32 copies. `reload` reopens the checkpoint for the
    /// float32 weights an in-place model makes on request.
    static func model(_ ckpt: Checkpoint, layout L: DecoderLayout, config c: ModelConfig, dequantize: Bool,
                      reload: @escaping @Sendable () throws -> Checkpoint) throws -> HookedTransformer {
        if !dequantize, let model = try inPlaceModel(ckpt, layout: L, config: c, reload: reload) { return model }
        return try HookedTransformer(config: c, weights: try convert(ckpt, layout: L, config: c))
    }

    /// A model that multiplies by the checkpoint's matrices in place (views into the mapped GGUF or
    /// safetensors files: quantized blocks, or F32/F16/BF16 rows), with its norms and biases converted as
    /// `convert` does; `HookedTransformer.weights` is `convert` of `reload()`, made on first use. Nil when
    /// the layout packs q/k/v or gate/up into one matrix, or a matrix's type cannot be read in place:
    /// the caller then converts.
    static func inPlaceModel(_ ckpt: Checkpoint, layout L: DecoderLayout, config c: ModelConfig,
                             reload: @escaping @Sendable () throws -> Checkpoint) throws -> HookedTransformer? {
        let (d, h, kv, dh, m, v) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead, c.dMLP, c.dVocab)
        guard case .separate(let q, let k, let vName, let o) = L.attention else { return nil }
        var blocks: [ExecutionWeights.Block] = []
        for l in 0..<c.nLayers {
            let p = L.layerPrefix(l)
            guard let wq = try ckpt.matrix(p + q + ".weight", h * dh, d), let wk = try ckpt.matrix(p + k + ".weight", kv * dh, d),
                  let wv = try ckpt.matrix(p + vName + ".weight", kv * dh, d), let wo = try ckpt.matrix(p + o + ".weight", d, h * dh)
            else { return nil }
            let (up, gate, down): (QuantizedMatrix?, QuantizedMatrix?, QuantizedMatrix?)
            switch L.mlp {
            case .gated(let g, let u, let dn):
                (up, gate, down) = (try ckpt.matrix(p + u + ".weight", m, d), try ckpt.matrix(p + g + ".weight", m, d),
                                    try ckpt.matrix(p + dn + ".weight", d, m))
                if gate == nil { return nil }
            case .plain(let u, let dn):
                (up, gate, down) = (try ckpt.matrix(p + u + ".weight", m, d), nil, try ckpt.matrix(p + dn + ".weight", d, m))
            case .fusedGateUp:
                return nil
            }
            guard let up, let down else { return nil }
            blocks.append(ExecutionWeights.Block(q: .mapped(wq), k: .mapped(wk), v: .mapped(wv), o: .mapped(wo),
                                                 up: .mapped(up), gate: gate.map { .mapped($0) }, down: .mapped(down)))
        }
        let tiedCopy = L.tiedEmbeddings && ckpt.contains(L.unembed)
        guard let embed = try ckpt.matrix(L.embed, v, d),
              let unembed = L.tiedEmbeddings && !tiedCopy ? embed : try ckpt.matrix(L.unembed, v, d) else { return nil }
        if tiedCopy {
            // A tied checkpoint that still carries a copy of the embedding: it must be the same matrix.
            guard embed.hasSameContents(as: unembed) else {
                throw ModelError.invalidConfig("\(ckpt.path): tie_word_embeddings is true but \(L.unembed) differs from \(L.embed)")
            }
        }
        let vectors = try convert(ckpt, layout: L, config: c, vectorsOnly: true)
        let exec = ExecutionWeights(blocks: blocks, embedding: .mapped(embed, scale: L.embedScale), unembed: .mapped(unembed))
        return try HookedTransformer(config: c, vectors: vectors, exec: exec) {
            try HFDecoder.convert(try reload(), layout: L, config: c)
        }
    }
}
