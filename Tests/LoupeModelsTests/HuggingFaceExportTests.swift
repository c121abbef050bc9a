// Models written back as Hugging Face folders load again with the same logits — from a Hugging Face folder
// (Llama, GPT-2) and from a quantized GGUF (q/k rows put back in rotate-half order) — and the tokenizer.json
// made from SmolLM2's GGUF vocabulary is Hugging Face's own tokenizer.json for that model.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

@Suite("Hugging Face export: written folders reload with the same logits and tokenizer")
struct HuggingFaceExportTests {
    static let tokens: [[Int]] = [[5, 17, 40, 3, 99, 12, 7, 60, 33, 2]]

    func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("loupe-export-\(UUID().uuidString)")
    }

    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity
    }

    func roundTrip(_ source: String, dequantize: Bool = false, tolerance: Float) throws -> (LoadedModel, LoadedModel, URL) {
        let original = try ModelLoader.load(path: source, dequantize: dequantize)
        let dir = temporaryFolder()
        let (_, files) = try HuggingFaceExport.write(original.model, to: dir, tokenizerSource: source)
        #expect(files.map(\.lastPathComponent).starts(with: ["config.json", "model.safetensors"]))
        let reloaded = try ModelLoader.load(path: dir.path)
        let a = try original.model.run(Self.tokens), b = try reloaded.model.run(Self.tokens)
        #expect(a.shape == b.shape)
        let diff = maxDifference(a, b)
        #expect(diff <= tolerance, "logits differ by \(diff) after writing \(source) as \(dir.path)")
        return (original, reloaded, dir)
    }

    @Test func llamaFolderRoundTrips() throws {
        let (original, reloaded, dir) = try roundTrip(Fixtures.directory.appendingPathComponent("llama-tiny").path, tolerance: 0)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try HuggingFaceExport.family(of: original.model) == .llama)
        #expect(reloaded.model.config.positional == .rotaryHalf)
        #expect(reloaded.model.weights == original.model.weights)
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(config["model_type"] as? String == "llama" && config["tie_word_embeddings"] as? Bool == false)
    }

    @Test func gpt2FolderRoundTrips() throws {
        let (original, reloaded, dir) = try roundTrip(Fixtures.gpt2Tiny.path, tolerance: 0)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try HuggingFaceExport.family(of: original.model) == .gpt2)
        #expect(reloaded.model.weights == original.model.weights)
        // Tied: no lm_head.weight written.
        let file = try SafetensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        #expect(file.entries["lm_head.weight"] == nil && file.entries["transformer.wte.weight"] != nil)
    }

    /// A quantized GGUF (interleaved rotary pairs, its own byte-level BPE tokenizer) written as a float32
    /// Hugging Face folder: the same logits up to float32 rounding, the same tokens from the new tokenizer.json.
    @Test func ggufBecomesAHuggingFaceFolder() throws {
        let source = Fixtures.directory.appendingPathComponent("gguf/llama-tiny.gguf").path
        let (original, reloaded, dir) = try roundTrip(source, dequantize: true, tolerance: 1e-4)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(original.model.config.positional == .rotaryInterleaved && reloaded.model.config.positional == .rotaryHalf)
        let a = try original.requireTokenizer(), b = try reloaded.requireTokenizer()
        for text in ["Hello world, 12345 times!", "<|im_start|>user\nhi<|endoftext|>", "  spaced\ttabs and ünïcode 日本"] {
            #expect(a.encode(text) == b.encode(text), "\(text.debugDescription)")
        }
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer_config.json").path))
    }

    @Test func shapesHuggingFaceCannotHoldAreRefused() throws {
        let gemma = try ModelLoader.load(path: Fixtures.directory.appendingPathComponent("zoo/gemma3").path)
        do {
            _ = try HuggingFaceExport.family(of: gemma.model)
            Issue.record("a Gemma 3 model (post-norms, q/k norms) was accepted as GPT-2 or Llama")
        } catch let e as ModelError {
            #expect("\(e)".contains("cannot be written"))
        }
        let dir = temporaryFolder()
        #expect(throws: ModelError.self) { try HuggingFaceExport.write(gemma.model, to: dir, tokenizerSource: nil) }
        #expect(!FileManager.default.fileExists(atPath: dir.path), "nothing is written for a refused model")
    }

    /// The tokenizer.json made from SmolLM2's GGUF vocabulary is Hugging Face's SmolLM2 tokenizer.json
    /// (Tests/Fixtures/smollm2-tokenizer.json, from the model's hub folder): vocabulary, merges, added
    /// tokens and pre-tokenizer.
    @Test func smolLM2TokenizerJSONIsHuggingFaces() throws {
        let loaded = try SmolLM2.model()
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ours = try #require(try HuggingFaceExport.tokenizerFiles(from: loaded.source, model: loaded.model).first { $0.0 == "tokenizer.json" }?.1)
        let mine = try #require(try JSONSerialization.jsonObject(with: ours) as? [String: Any])
        let hf = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.directory.appendingPathComponent("smollm2-tokenizer.json"))) as? [String: Any])
        let (m1, m2) = (try #require(mine["model"] as? [String: Any]), try #require(hf["model"] as? [String: Any]))
        #expect((m1["vocab"] as? [String: Int]) == (m2["vocab"] as? [String: Int]))
        #expect((m1["merges"] as? [[String]]) == (m2["merges"] as? [[String]]))
        #expect(NSDictionary(dictionary: try #require(mine["pre_tokenizer"] as? [String: Any])).isEqual(to: try #require(hf["pre_tokenizer"] as? [String: Any])))
        let ids = { (j: [String: Any]) in ((j["added_tokens"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? Int } }
        #expect(ids(mine) == ids(hf))
    }
}
