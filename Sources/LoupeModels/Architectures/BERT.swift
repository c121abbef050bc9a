// BERT (Hugging Face `BertForMaskedLM` checkpoints) → the canonical TransformerLens layout of `HookedEncoder`.
//
// Checkpoint keys (a `bert.` prefix, or none):
//   embeddings.{word,position,token_type}_embeddings.weight [rows, d_model], embeddings.LayerNorm.{weight,bias}
//   encoder.layer.{l}.attention.self.{query,key,value}.{weight [d_model, d_model] (out, in), bias}
//   encoder.layer.{l}.attention.output.dense.{weight, bias}, encoder.layer.{l}.attention.output.LayerNorm (ln1)
//   encoder.layer.{l}.intermediate.dense.{weight [d_mlp, d_model], bias}, output.dense.{weight [d_model, d_mlp], bias}
//   encoder.layer.{l}.output.LayerNorm (ln2)
//   cls.predictions.transform.dense.{weight, bias}, cls.predictions.transform.LayerNorm (the MLM head's norm)
//   cls.predictions.bias [d_vocab]; cls.predictions.decoder.weight [d_vocab, d_model] when untied (else W_E)
//   pooler / next-sentence weights: not part of the masked-LM forward pass, not read

import Foundation
import LoupeFormats
import LoupeTensor

public enum BERT {
    /// Reads a Hugging Face BERT `config.json` strictly.
    static func config(fromJSON j: [String: Any], path: String) throws -> ModelConfig {
        let r = HFConfigReader(json: j, path: path)
        let classes = try r.strings("architectures") ?? ["BertForMaskedLM"]
        let head: Bool
        switch classes.first {
        case "BertForMaskedLM": head = true
        case "BertModel": head = false
        default:
            throw ModelError.unsupported("\(path): \(classes.joined(separator: ", ")) is not supported yet; Loupe loads BertForMaskedLM (encoder and masked-LM head) and BertModel (the encoder alone, as sentence-embedding models are)")
        }
        r.accept("gradient_checkpointing")   // a training-time memory setting
        try r.require("position_embedding_type", isOneOf: ["absolute"], because: "Loupe implements BERT's learned absolute positions")
        try r.require("is_decoder", isOneOf: [false], because: "a BERT decoder is not supported")
        try r.require("add_cross_attention", isOneOf: [false], because: "cross-attention is not supported")
        let d = try r.int("hidden_size"), h = try r.int("num_attention_heads")
        guard h > 0, d > 0, d <= 1 << 16, d % h == 0 else {
            throw ModelError.invalidConfig("\(path): hidden_size (\(d)) must be a positive multiple of num_attention_heads (\(h)), at most 65536")
        }
        let activation = try r.activation("hidden_act", default: "gelu", allowed: [
            "gelu": .gelu, "gelu_new": .geluNew, "gelu_pytorch_tanh": .geluNew, "relu": .relu, "silu": .silu, "swish": .silu])
        let eps = try r.epsilon("layer_norm_eps", 1e-12)
        _ = try r.bool("tie_word_embeddings", true)   // the decoder weight is read when present, else W_E
        let config = ModelConfig(
            architecture: head ? "BertForMaskedLM" : "BertModel", nLayers: try r.int("num_hidden_layers"), dModel: d, nHeads: h, dHead: d / h,
            dMLP: try r.int("intermediate_size"), dVocab: try r.int("vocab_size"), nCtx: try r.int("max_position_embeddings", 512),
            eps: eps, normalization: .layerNorm, activation: activation, positional: .standard,
            bidirectional: true, postLayerNorm: true, nTokenTypes: try r.int("type_vocab_size", 2), maskedLMHead: head)
        try r.finish(architecture: head ? "BertForMaskedLM" : "BertModel")
        try config.validate()
        return config
    }

    /// Converts a `BertForMaskedLM` (or `BertModel`) safetensors checkpoint to canonical weights.
    static func weights(from file: SafetensorsFile, config c: ModelConfig) throws -> TransformerWeights {
        let prefix = file.entries["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        var read: Set<String> = []
        func load(_ key: String, _ shape: [Int], prefixed: Bool = true) throws -> Tensor {
            let name = (prefixed ? prefix : "") + key
            read.insert(name)
            guard file.entries[name] != nil else { throw ModelError.missingWeight(name: name, file: file.path) }
            let t = try file.tensor(name)
            guard t.shape == shape else { throw ModelError.weightShape(name: name, expected: shape, found: t.shape) }
            return t
        }
        let (d, h, dh, m, v) = (c.dModel, c.nHeads, c.dHead, c.dMLP, c.dVocab)
        /// A torch Linear weight [out, in] as `[in, out]` for `x · W`.
        func linear(_ key: String, out: Int, in k: Int, prefixed: Bool = true) throws -> Tensor {
            try load(key, [out, k], prefixed: prefixed).transposed()
        }
        /// Q, K or V: [d_model (out), d_model (in)] → [n_heads, d_model, d_head].
        func heads(_ key: String) throws -> (Tensor, Tensor) {
            let w = try linear(key + ".weight", out: d, in: d).scalars   // [d_model, heads·d_head]
            var out = uninitializedFloats(h * d * dh)
            for head in 0..<h { for i in 0..<d { for j in 0..<dh { out[(head * d + i) * dh + j] = w[i * d + head * dh + j] } } }
            return (Tensor(unchecked: [h, d, dh], out), try load(key + ".bias", [d]).reshaped([h, dh]))
        }
        let wE = try load("embeddings.word_embeddings.weight", [v, d])
        var blocks: [BlockWeights] = []
        for l in 0..<c.nLayers {
            let p = "encoder.layer.\(l)."
            let (wQ, bQ) = try heads(p + "attention.self.query")
            let (wK, bK) = try heads(p + "attention.self.key")
            let (wV, bV) = try heads(p + "attention.self.value")
            // The output projection's input rows are (head, d_head) in order: W_O [n_heads, d_head, d_model].
            let wO = try linear(p + "attention.output.dense.weight", out: d, in: d).reshaped([h, dh, d])
            blocks.append(BlockWeights(
                ln1W: try load(p + "attention.output.LayerNorm.weight", [d]), ln1B: try load(p + "attention.output.LayerNorm.bias", [d]),
                wQ: wQ, bQ: bQ, wK: wK, bK: bK, wV: wV, bV: bV,
                wO: wO, bO: try load(p + "attention.output.dense.bias", [d]),
                ln2W: try load(p + "output.LayerNorm.weight", [d]), ln2B: try load(p + "output.LayerNorm.bias", [d]),
                wIn: try linear(p + "intermediate.dense.weight", out: m, in: d), bIn: try load(p + "intermediate.dense.bias", [m]),
                wGate: nil,
                wOut: try linear(p + "output.dense.weight", out: d, in: m), bOut: try load(p + "output.dense.bias", [d])))
        }
        let wPos = try load("embeddings.position_embeddings.weight", [c.nCtx, d])
        var weights: TransformerWeights
        if c.maskedLMHead {
            let decoder = file.entries["cls.predictions.decoder.weight"] != nil
                ? try load("cls.predictions.decoder.weight", [v, d], prefixed: false) : wE
            weights = TransformerWeights(
                wE: wE, wPos: wPos, blocks: blocks,
                lnFinalW: try load("cls.predictions.transform.LayerNorm.weight", [d], prefixed: false),
                lnFinalB: try load("cls.predictions.transform.LayerNorm.bias", [d], prefixed: false),
                wU: try decoder.transposed(), bU: try load("cls.predictions.bias", [v], prefixed: false))
        } else {
            weights = TransformerWeights(wE: wE, wPos: wPos, blocks: blocks, lnFinalW: nil, lnFinalB: nil,
                                         wU: Tensor(zeros: [d, 0]), bU: Tensor(zeros: [0]))
        }
        weights.encoder = EncoderWeights(
            wTokenType: try load("embeddings.token_type_embeddings.weight", [c.nTokenTypes, d]),
            embedLNW: try load("embeddings.LayerNorm.weight", [d]), embedLNB: try load("embeddings.LayerNorm.bias", [d]),
            mlmW: c.maskedLMHead ? try linear("cls.predictions.transform.dense.weight", out: d, in: d, prefixed: false) : Tensor(zeros: [0, 0]),
            mlmB: c.maskedLMHead ? try load("cls.predictions.transform.dense.bias", [d], prefixed: false) : Tensor(zeros: [0]))
        // A tensor nobody read is a part of the model Loupe would leave out: an error, but for the parts that are
        // not on the masked-LM path (the pooler, the next-sentence head) and position-id buffers.
        let ignorable = [prefix + "pooler.", "cls.seq_relationship.", prefix + "embeddings.position_ids"]
        if let extra = file.entries.keys.filter({ k in !read.contains(k) && !ignorable.contains { k.hasPrefix($0) } }).sorted().first {
            throw ModelError.invalidConfig("\(file.path): tensor '\(extra)' is not part of a \(c.architecture) that Loupe understands; it is not loaded rather than ignored")
        }
        return weights
    }
}
