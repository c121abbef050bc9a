// Loading a Llama-family model from a GGUF file: config from the metadata, weights dequantized to
// Float32 in the canonical layout, tokenizer from `tokenizer.ggml.*`.

import Foundation
import LoupeFormats
import LoupeTensor

extension Llama {
    /// The architectures whose GGUF tensors follow llama.cpp's llama layout.
    static let ggufArchitectures: Set<String> = ["llama"]

    /// A `ModelConfig` from GGUF metadata (`{arch}.block_count`, `.embedding_length`, …).
    public static func config(from gguf: GGUFFile) throws -> ModelConfig {
        let arch = try gguf.string("general.architecture")
        guard ggufArchitectures.contains(arch) else {
            throw ModelError.unsupported("\(gguf.path): architecture '\(arch)' is not supported (supported: \((ggufArchitectures.union(["gemma3"])).sorted().joined(separator: ", ")))")
        }
        let d = try gguf.int("\(arch).embedding_length")
        let h = try gguf.int("\(arch).attention.head_count")
        guard h > 0, d % h == 0 else {
            throw ModelError.invalidConfig("\(gguf.path): embedding_length \(d) is not a multiple of head_count \(h)")
        }
        let dh = d / h
        if let rotaryDims = try gguf.optionalInt("\(arch).rope.dimension_count"), rotaryDims != dh {
            throw ModelError.unsupported("\(gguf.path): partial rotary embeddings (\(rotaryDims) of \(dh) dimensions) are not supported")
        }
        if let scaling = try gguf.optionalString("\(arch).rope.scaling.type"), scaling != "none" {
            throw ModelError.unsupported("\(gguf.path): rope scaling '\(scaling)' is not supported")
        }
        let vocab = try gguf.optionalInt("\(arch).vocab_size")
            ?? (gguf.has("tokenizer.ggml.tokens") ? try gguf.stringArray("tokenizer.ggml.tokens").count : try gguf.info("token_embd.weight").shape[0])
        let config = ModelConfig(
            architecture: "LlamaForCausalLM (GGUF)", nLayers: try gguf.int("\(arch).block_count"), dModel: d, nHeads: h,
            dHead: dh, dMLP: try gguf.int("\(arch).feed_forward_length"), dVocab: vocab,
            nCtx: try gguf.optionalInt("\(arch).context_length") ?? 2048,
            nKeyValueHeads: try gguf.optionalInt("\(arch).attention.head_count_kv") ?? h,
            eps: try gguf.optionalFloat("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5,
            normalization: .rmsNorm, activation: .silu, positional: .rotaryInterleaved, gatedMLP: true,
            rotaryBase: try gguf.optionalFloat("\(arch).rope.freq_base") ?? 10000,
            eosTokenID: try gguf.optionalInt("tokenizer.ggml.eos_token_id"))
        try config.validate()
        return config
    }

    /// Canonical weights from a GGUF llama file, dequantized.
    public static func weights(from gguf: GGUFFile, config c: ModelConfig) throws -> TransformerWeights {
        try convert(config: c, source: gguf.path, names: Names.gguf) { name, shape in
            guard gguf.hasTensor(name) else { return nil }
            let info = try gguf.info(name)
            guard info.shape == shape else { throw ModelError.weightShape(name: name, expected: shape, found: info.shape) }
            return try gguf.tensor(name)
        }
    }
}

extension ModelLoader {
    /// Loads a GGUF file: model, tokenizer and chat template.
    public static func load(gguf path: String) throws -> LoadedModel {
        let file = try GGUFFile(path: path)
        let model: HookedTransformer
        switch try file.string("general.architecture") {
        case "gemma3":
            let (config, weights) = try Gemma3.load(gguf: file)
            model = try HookedTransformer(config: config, weights: weights)
        default:
            let config = try Llama.config(from: file)
            model = try HookedTransformer(config: config, weights: try Llama.weights(from: file, config: config))
        }
        let tokenizer = file.has("tokenizer.ggml.tokens") ? try BPETokenizer(gguf: file) : nil
        return LoadedModel(model: model, tokenizer: tokenizer, source: path,
                           chatTemplate: try file.optionalString("tokenizer.chat_template"))
    }
}
extension BPETokenizer {
    /// The tokenizer a GGUF file carries (`tokenizer.ggml.model` "gpt2": byte-level BPE; "llama":
    /// SentencePiece-style, with scores and byte fallback).
    public init(gguf: GGUFFile) throws {
        let model = try gguf.string("tokenizer.ggml.model")
        if model == "llama" {
            try self.init(
                ggufSentencePieceTokens: try gguf.stringArray("tokenizer.ggml.tokens"),
                scores: try gguf.floatArray("tokenizer.ggml.scores"),
                tokenTypes: gguf.has("tokenizer.ggml.token_type") ? try gguf.intArray("tokenizer.ggml.token_type") : nil,
                bosID: try gguf.optionalInt("tokenizer.ggml.bos_token_id"),
                eosID: try gguf.optionalInt("tokenizer.ggml.eos_token_id"),
                unknownID: try gguf.optionalInt("tokenizer.ggml.unknown_token_id"),
                addBOS: try gguf.optionalBool("tokenizer.ggml.add_bos_token") ?? true,
                addSpacePrefix: try gguf.optionalBool("tokenizer.ggml.add_space_prefix") ?? true)
            return
        }
        guard model == "gpt2" else {
            throw ModelError.unsupported("\(gguf.path): tokenizer model '\(model)' is not supported (Loupe reads 'gpt2', byte-level BPE, and 'llama', SentencePiece-style)")
        }
        try self.init(
            ggufTokens: try gguf.stringArray("tokenizer.ggml.tokens"),
            merges: try gguf.stringArray("tokenizer.ggml.merges"),
            tokenTypes: gguf.has("tokenizer.ggml.token_type") ? try gguf.intArray("tokenizer.ggml.token_type") : nil,
            preTokenizer: try gguf.optionalString("tokenizer.ggml.pre") ?? "default",
            bosID: try gguf.optionalInt("tokenizer.ggml.bos_token_id"),
            eosID: try gguf.optionalInt("tokenizer.ggml.eos_token_id"),
            unknownID: try gguf.optionalInt("tokenizer.ggml.unknown_token_id"),
            addBOS: try gguf.optionalBool("tokenizer.ggml.add_bos_token")
                ?? BPETokenizer.ggufAddsBOSByDefault(preTokenizer: try gguf.optionalString("tokenizer.ggml.pre") ?? "default"))
    }
}

