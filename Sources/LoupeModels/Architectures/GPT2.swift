// GPT-2 (Hugging Face `GPT2LMHeadModel` checkpoints) → the canonical TransformerLens layout.
//
// Checkpoint keys, with or without the `transformer.` prefix (hub files have none):
//   wte.weight [d_vocab, d_model], wpe.weight [n_ctx, d_model]
//   h.{l}.ln_1.{weight,bias}, h.{l}.ln_2.{weight,bias}, ln_f.{weight,bias}: [d_model]
//   h.{l}.attn.c_attn.weight [d_model, 3·d_model]: Conv1D, stored [in, out] (y = x·W + b); the output
//       columns are Q, K, V, each with heads as contiguous d_head-wide blocks
//   h.{l}.attn.c_proj.weight [d_model, d_model], h.{l}.mlp.c_fc.weight [d_model, d_mlp],
//   h.{l}.mlp.c_proj.weight [d_mlp, d_model] (all [in, out]), with biases [out]
//   lm_head.weight [d_vocab, d_model] when present; otherwise tied to wte
//   h.{l}.attn.bias / masked_bias: causal-mask buffers, ignored

import Foundation
import LoupeFormats
import LoupeTensor

public enum GPT2 {
    /// Reads a Hugging Face GPT-2 `config.json`.
    public static func config(fromJSON data: Data, path: String) throws -> ModelConfig {
        try config(fromJSON: try parseConfigJSON(data, path: path), path: path)
    }

    /// Reads a parsed Hugging Face GPT-2 `config.json` strictly: a key of the wrong type, or one that changes
    /// the computation and is not understood, is an error.
    public static func config(fromJSON j: [String: Any], path: String) throws -> ModelConfig {
        let r = HFConfigReader(json: j, path: path)
        for flag in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"] {
            try r.require(flag, isOneOf: [false], because: "Loupe implements GPT-2's standard attention only")
        }
        try r.require("scale_attn_weights", isOneOf: [true], because: "attention scores are always scaled by 1/sqrt(d_head)")
        let nEmbd = try r.int("n_embd"), nHead = try r.int("n_head")
        guard nHead > 0, nEmbd > 0, nEmbd <= 1 << 16, nEmbd % nHead == 0 else {
            throw ModelError.invalidConfig("\(path): n_embd (\(nEmbd)) must be a positive multiple of n_head (\(nHead)), at most 65536")
        }
        let act = try r.string("activation_function", "gelu_new")
        let activation: ModelConfig.Activation
        switch act {
        case "gelu_new", "gelu_pytorch_tanh": activation = .geluNew
        case "gelu": activation = .gelu
        case "relu": activation = .relu
        case "silu", "swish": activation = .silu
        default: throw ModelError.invalidConfig("\(path): unsupported activation_function '\(act)'")
        }
        let eps = try r.double("layer_norm_epsilon", 1e-5)
        guard eps > 0, eps.isFinite else { throw ModelError.invalidConfig("\(path): layer_norm_epsilon must be positive, found \(eps)") }
        let nPositions = try r.int("n_positions", try r.int("n_ctx", 1024))
        _ = try r.optionalInt("n_ctx")                                  // legacy duplicate of n_positions
        _ = try r.bool("tie_word_embeddings", true)                     // lm_head.weight is used when present
        let eos = try r.optionalInt("eos_token_id")
        let nLayers = try r.int("n_layer"), dMLP = try r.optionalInt("n_inner") ?? 4 * nEmbd, vocab = try r.int("vocab_size")
        try r.finish(architecture: "GPT2LMHeadModel")
        let config = ModelConfig(
            architecture: "GPT2LMHeadModel", nLayers: nLayers, dModel: nEmbd, nHeads: nHead,
            dHead: nEmbd / nHead, dMLP: dMLP, dVocab: vocab, nCtx: nPositions, eps: Float(eps),
            normalization: .layerNorm, activation: activation, positional: .standard,
            eosTokenID: eos)
        try config.validate()
        return config
    }

    /// Converts a GPT-2 safetensors checkpoint to canonical weights.
    public static func weights(from file: SafetensorsFile, config c: ModelConfig) throws -> TransformerWeights {
        let prefix = file.entries["transformer.wte.weight"] != nil ? "transformer." : ""
        func load(_ key: String, _ shape: [Int], prefixed: Bool = true) throws -> Tensor {
            let name = (prefixed ? prefix : "") + key
            guard file.entries[name] != nil else { throw ModelError.missingWeight(name: name, file: file.path) }
            let t = try file.tensor(name)
            guard t.shape == shape else { throw ModelError.weightShape(name: name, expected: shape, found: t.shape) }
            return t
        }
        let (d, h, dh, m, v) = (c.dModel, c.nHeads, c.dHead, c.dMLP, c.dVocab)
        let wE = try load("wte.weight", [v, d])
        let wPos = try load("wpe.weight", [c.nCtx, d])
        var blocks: [BlockWeights] = []
        for l in 0..<c.nLayers {
            let p = "h.\(l)."
            let cAttn = try load(p + "attn.c_attn.weight", [d, 3 * d])   // [d_model, 3·n_heads·d_head]
            let cAttnB = try load(p + "attn.c_attn.bias", [3 * d])
            // Column block `which` (0 = Q, 1 = K, 2 = V) → [n_heads, d_model, d_head].
            func split(_ which: Int) -> (Tensor, Tensor) {
                var w = uninitializedFloats(h * d * dh)
                var b = uninitializedFloats(h * dh)
                cAttn.scalars.withUnsafeBufferPointer { src in
                    for head in 0..<h {
                        let col = which * d + head * dh
                        for i in 0..<d {
                            for j in 0..<dh { w[(head * d + i) * dh + j] = src[i * 3 * d + col + j] }
                        }
                        for j in 0..<dh { b[head * dh + j] = cAttnB.scalars[col + j] }
                    }
                }
                return (Tensor(unchecked: [h, d, dh], w), Tensor(unchecked: [h, dh], b))
            }
            let (wQ, bQ) = split(0), (wK, bK) = split(1), (wV, bV) = split(2)
            // c_proj rows are (head, d_head) pairs in order: a reshape gives W_O [n_heads, d_head, d_model].
            let wO = try load(p + "attn.c_proj.weight", [d, d]).reshaped([h, dh, d])
            blocks.append(BlockWeights(
                ln1W: try load(p + "ln_1.weight", [d]), ln1B: try load(p + "ln_1.bias", [d]),
                wQ: wQ, bQ: bQ, wK: wK, bK: bK, wV: wV, bV: bV,
                wO: wO, bO: try load(p + "attn.c_proj.bias", [d]),
                ln2W: try load(p + "ln_2.weight", [d]), ln2B: try load(p + "ln_2.bias", [d]),
                wIn: try load(p + "mlp.c_fc.weight", [d, m]), bIn: try load(p + "mlp.c_fc.bias", [m]), wGate: nil,
                wOut: try load(p + "mlp.c_proj.weight", [m, d]), bOut: try load(p + "mlp.c_proj.bias", [d])))
        }
        let unembedSource = file.entries["lm_head.weight"] != nil ? try load("lm_head.weight", [v, d], prefixed: false) : wE
        return TransformerWeights(
            wE: wE, wPos: wPos, blocks: blocks,
            lnFinalW: try load("ln_f.weight", [d]), lnFinalB: try load("ln_f.bias", [d]),
            wU: try unembedSource.transposed(), bU: Tensor(zeros: [v]))
    }
}

/// Parses a `config.json` into a JSON object.
func parseConfigJSON(_ data: Data, path: String) throws -> [String: Any] {
    let any: Any
    do { any = try JSONSerialization.jsonObject(with: data) } catch {
        throw ModelError.invalidConfig("\(path) is not valid JSON")
    }
    guard let j = any as? [String: Any] else { throw ModelError.invalidConfig("\(path): expected a JSON object") }
    return j
}
