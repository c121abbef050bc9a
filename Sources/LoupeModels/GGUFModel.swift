// Loading a Llama-family model from a GGUF file: config from the metadata, tokenizer from
// `tokenizer.ggml.*`, and weights either read in place (quantized, memory-mapped: the default) or
// dequantized to float32 in the canonical layout (`dequantize: true`, the reference path).

import Foundation
import CKernels
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
            ?? (gguf.has("tokenizer.ggml.tokens") ? try gguf.arrayCount("tokenizer.ggml.tokens") : try gguf.info("token_embd.weight").shape[0])
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

    /// Where llama.cpp's converter puts a llama model's tensors: token_embd, blk.{l}.{attn_norm, attn_q,
    /// attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output (tied when
    /// absent). q and k rows come permuted for interleaved rotary pairs (`.rotaryInterleaved` in the config).
    static func ggufLayout(_ gguf: GGUFFile) -> DecoderLayout {
        DecoderLayout.llamaCpp(tiedEmbeddings: !gguf.hasTensor("output.weight"))
    }

    /// Canonical weights from a GGUF llama file, dequantized.
    public static func weights(from gguf: GGUFFile, config c: ModelConfig) throws -> TransformerWeights {
        try HFDecoder.convert(try Checkpoint(gguf: gguf), layout: ggufLayout(gguf), config: c)
    }

    /// A llama GGUF file's model: every matrix a view into the mapping (no copy, no dequantization), norms
    /// read as float32 — or, with `dequantize` or a tensor type the kernels cannot read, float32 copies.
    public static func model(from gguf: GGUFFile, config c: ModelConfig, dequantize: Bool = false) throws -> HookedTransformer {
        try HFDecoder.model(gguf: gguf, layout: ggufLayout(gguf), config: c, dequantize: dequantize)
    }
}

extension HFDecoder {
    /// A GGUF file's model for `layout` (`model(_:layout:config:dequantize:reload:)`): the float32 weights an
    /// in-place model makes on request are read from the file reopened by its path, not from the parsed file,
    /// whose metadata need not live as long as the model.
    static func model(gguf: GGUFFile, layout: DecoderLayout, config: ModelConfig, dequantize: Bool) throws -> HookedTransformer {
        let path = gguf.path
        return try model(try Checkpoint(gguf: gguf), layout: layout, config: config, dequantize: dequantize,
                         reload: { try Checkpoint(gguf: GGUFFile(path: path)) })
    }
}

extension ModelLoader {
    /// Loads a GGUF file: model, tokenizer and chat template. Weights are read in place from the mapping,
    /// quantized, unless `dequantize` (then every tensor is dequantized to float32 at
    /// load, the reference path: four bytes a parameter).
    public static func load(gguf path: String, dequantize: Bool = false) throws -> LoadedModel {
        defer { loupe_release_free_memory() }   // as `load(path:)`: the metadata arrays and tokenizer tables
        return try openGGUF(path, dequantize: dequantize)
    }

    static func openGGUF(_ path: String, dequantize: Bool) throws -> LoadedModel {
        let file = try GGUFFile(path: path)
        let model: HookedTransformer
        switch try file.string("general.architecture") {
        case "gemma3": model = try Gemma3.model(gguf: file, dequantize: dequantize)
        default: model = try Llama.model(from: file, config: try Llama.config(from: file), dequantize: dequantize)
        }
        let tokenizer = file.has("tokenizer.ggml.tokens") ? try BPETokenizer(gguf: file) : nil
        let chatTemplate = try file.optionalString("tokenizer.chat_template")
        file.releaseHeaderPages()   // the weights after it stay mapped; the header was copied out
        return LoadedModel(model: model, tokenizer: tokenizer, source: path, chatTemplate: chatTemplate)
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

