// Loading a model from disk: a Hugging Face folder (config.json + model.safetensors + tokenizer files).

import Foundation
import CKernels
import LoupeFormats
import LoupeTensor

/// A model ready to run, with its tokenizer.
public struct LoadedModel: Sendable {
    public let model: HookedTransformer
    /// Nil for a folder with no tokenizer files whose architecture has no standard tokenizer to fall back on.
    public let tokenizer: BPETokenizer?
    /// Where it was loaded from.
    public let source: String
    /// The chat template (Jinja source) the model ships with, if any.
    public let chatTemplate: String?

    public init(model: HookedTransformer, tokenizer: BPETokenizer?, source: String, chatTemplate: String? = nil) {
        var model = model
        if model.tokenizer == nil { model.tokenizer = tokenizer }
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.chatTemplate = chatTemplate
    }
}

public enum ModelLoader {
    /// Loads a model folder: `config.json` and `model.safetensors` (GPT-2 or Llama family), and a tokenizer from
    /// `tokenizer.json`, `vocab.json` + `merges.txt`, or `encoder.json` + `vocab.bpe`; the bundled GPT-2
    /// tokenizer when the folder has none. Weights are read in place from the mapped files — a GGUF's
    /// quantized blocks, a folder's F32/F16/BF16 safetensors (families with separate q/k/v and gate/up
    /// matrices) — unless `dequantize` (then converted to float32 copies at load, the reference path).
    public static func load(path: String, dequantize: Bool = false) throws -> LoadedModel {
        // Loading builds large transient tables (a 49k–262k-token vocabulary's strings, a GGUF's metadata
        // arrays); hand their memory back rather than keep it resident for the life of the model.
        defer { loupe_release_free_memory() }
        return try open(path: path, dequantize: dequantize)
    }

    private static func open(path: String, dequantize: Bool) throws -> LoadedModel {
        let dir = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) else {
            throw ModelError.missingFile(path: dir.path, what: "model folder")
        }
        guard isDir.boolValue else {
            if isGGUF(path) { return try openGGUF(path, dequantize: dequantize) }
            throw ModelError.unsupported("\(dir.path) is neither a GGUF file nor a folder with config.json and model.safetensors")
        }
        let configURL = dir.appendingPathComponent("config.json")
        guard let configData = FileManager.default.contents(atPath: configURL.path) else {
            throw ModelError.missingFile(path: configURL.path, what: "model config")
        }
        let json = try parseConfigJSON(configData, path: configURL.path)
        let config: ModelConfig, weights: TransformerWeights
        let type = json["model_type"] as? String
        let architectures = json["architectures"] as? [String] ?? []
        if json["format"] as? String == "transformer_lens" {
            let file = try SafetensorsFile(path: try weightsFile(in: dir))
            let model = try TransformerLensFormat.read(json: json, file: file, path: configURL.path)
            let tokenizer = try loadTokenizer(in: dir, gpt2Fallback: model.config.architecture == "GPT2LMHeadModel")
            return LoadedModel(model: model, tokenizer: tokenizer, source: path)
        }
        if type == "gpt2" || (type == nil && (architectures.contains("GPT2LMHeadModel") || json["n_embd"] != nil)) {
            let file = try SafetensorsFile(path: try weightsFile(in: dir))
            config = try GPT2.config(fromJSON: json, path: configURL.path)
            weights = try GPT2.weights(from: file, config: config)
        } else if type == "bert" || (type == nil && architectures.contains { $0.hasPrefix("Bert") }) {
            let file = try SafetensorsFile(path: try weightsFile(in: dir))
            config = try BERT.config(fromJSON: json, path: configURL.path)
            weights = try BERT.weights(from: file, config: config)
        } else if let family = Architecture.find(modelType: type, classes: architectures) {
            let reader = HFConfigReader(json: json, path: configURL.path)
            if let declared = reader.json["architectures"] as? [String], let first = declared.first,
               first != family.hfClass, first.hasSuffix("ForCausalLM") || first.hasSuffix("LMHeadModel") {
                throw ModelError.invalidConfig("\(configURL.path): model_type '\(type ?? "none")' is \(family.hfClass), but architectures says \(first)")
            }
            let layout: DecoderLayout
            (config, layout) = try family.describe(reader)
            // Matrices read in place from the mapped safetensors (no copy) unless asked for float32 copies,
            // or the layout packs several projections into one matrix (then converted).
            let model = try HFDecoder.model(try Checkpoint(folder: dir), layout: layout, config: config, dequantize: dequantize,
                                            reload: { try Checkpoint(folder: dir) })
            return try finishFolder(model: model, config: config, dir: dir, path: path)
        } else {
            let supported = Architecture.all.flatMap(\.modelTypes).joined(separator: ", ")
            throw ModelError.invalidConfig("\(configURL.path): model_type '\(type ?? "none")' is not supported (supported: \(supported))")
        }
        return try finishFolder(model: try HookedTransformer(config: config, weights: weights), config: config, dir: dir, path: path)
    }

    /// A folder's model with its tokenizer and chat template.
    private static func finishFolder(model: HookedTransformer, config: ModelConfig, dir: URL, path: String) throws -> LoadedModel {
        let tokenizer = try loadTokenizer(in: dir, gpt2Fallback: config.architecture == "GPT2LMHeadModel")
        if let tokenizer, tokenizer.vocabSize > config.dVocab {
            throw ModelError.invalidConfig("the tokenizer has \(tokenizer.vocabSize) tokens but the model only \(config.dVocab)")
        }
        var template: String? = nil
        if let data = FileManager.default.contents(atPath: dir.appendingPathComponent("tokenizer_config.json").path),
           let j = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            template = j["chat_template"] as? String
        }
        return LoadedModel(model: model, tokenizer: tokenizer, source: path, chatTemplate: template)
    }

    /// `model.safetensors` of a folder (the single-file formats).
    static func weightsFile(in dir: URL) throws -> String {
        let url = dir.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError.missingFile(path: url.path, what: "weights") }
        return url.path
    }

    /// Whether a file starts with GGUF's magic.
    static func isGGUF(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }

    /// The tokenizer in a model folder; else the bundled GPT-2 one when `gpt2Fallback`, else nil.
    public static func loadTokenizer(in dir: URL, gpt2Fallback: Bool = true) throws -> BPETokenizer? {
        let fm = FileManager.default
        let file = { (name: String) in dir.appendingPathComponent(name) }
        if fm.fileExists(atPath: file("tokenizer.json").path) {
            return try BPETokenizer(tokenizerJSON: file("tokenizer.json"))
        }
        if fm.fileExists(atPath: file("vocab.json").path), fm.fileExists(atPath: file("merges.txt").path) {
            return try BPETokenizer(encoderJSON: file("vocab.json"), vocabBPE: file("merges.txt"))
        }
        if fm.fileExists(atPath: file("encoder.json").path), fm.fileExists(atPath: file("vocab.bpe").path) {
            return try BPETokenizer(encoderJSON: file("encoder.json"), vocabBPE: file("vocab.bpe"))
        }
        guard gpt2Fallback else { return nil }
        guard let bundled = BundledTokenizers.gpt2Directory else {
            throw ModelError.missingFile(path: dir.path, what: "tokenizer (and the bundled GPT-2 tokenizer is missing)")
        }
        return try BPETokenizer(encoderJSON: bundled.appendingPathComponent("encoder.json"),
                                vocabBPE: bundled.appendingPathComponent("vocab.bpe"))
    }
}

extension LoadedModel {
    /// The tokenizer, or an error saying that this model needs token ids.
    public func requireTokenizer() throws -> BPETokenizer {
        guard let tokenizer else {
            throw ModelError.unsupported("\(source) has no tokenizer files: give token ids instead of text")
        }
        return tokenizer
    }

    /// A token's text, or `<id>` when the model has no tokenizer (or the id is not in it).
    public func tokenText(_ id: Int) -> String {
        (try? tokenizer?.tokenString(id)) ?? "<\(id)>"
    }
}
