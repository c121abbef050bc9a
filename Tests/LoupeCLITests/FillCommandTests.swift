// `loupe fill` on a tiny BERT (the random BertForMaskedLM fixture with a small WordPiece vocabulary), and
// encoders refused by the commands that read next-token predictions.

import Foundation
import LoupeModels
import LoupeTensor
import Testing
@testable import loupe

@Suite(.serialized) struct FillCommandTests: RunsLoupe {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// The random BERT with a WordPiece tokenizer of 12 tokens (ids below the model's 256).
    func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-fill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("bert/\(f)"), to: dir.appendingPathComponent(f))
        }
        let tokenizer = #"""
            {"added_tokens": [{"id": 0, "content": "[PAD]", "special": true}, {"id": 1, "content": "[UNK]", "special": true},
              {"id": 2, "content": "[CLS]", "special": true}, {"id": 3, "content": "[SEP]", "special": true},
              {"id": 4, "content": "[MASK]", "special": true}],
             "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
             "pre_tokenizer": {"type": "BertPreTokenizer"},
             "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
               {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
               "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2]}, "[SEP]": {"id": "[SEP]", "ids": [3]}}},
             "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
               "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "paris": 5, "is": 6, "the": 7, "capital": 8,
                         "of": 9, "france": 10, ".": 11}}}
            """#
        try tokenizer.write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test func fillsMasksAsTheLibraryPredicts() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try run(["fill", "--model", dir.path, "--prompt", "Paris is the [MASK] of [MASK].", "--top", "3", "--json"])
        #expect(r.status == 0, "\(r.output)")
        let text = r.output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(j["tokens"] as? [String] == ["[CLS]", "paris", "is", "the", "[MASK]", "of", "[MASK]", ".", "[SEP]"])
        let masks = try #require(j["masks"] as? [[String: Any]])
        #expect(masks.map { $0["position"] as? Int } == [4, 6])
        // The same model through the library: the softmax at each mask, best first.
        let model = try ModelLoader.load(path: dir.path).model
        let logits = try model.run([[2, 5, 6, 7, 4, 9, 4, 11, 3]])
        let v = model.config.dVocab
        for m in masks {
            let p = try #require(m["position"] as? Int)
            let probs = Tensor(unchecked: [v], Array(logits.scalars[(p * v)..<((p + 1) * v)])).softmax().scalars
            let best = probs.indices.sorted { probs[$0] > probs[$1] }.prefix(3)
            let got = try #require(m["predictions"] as? [[String: Any]])
            #expect(got.map { $0["id"] as? Int } == best.map { $0 })
            for (g, b) in zip(got, best) { #expect(abs((g["probability"] as? Double ?? 0) - Double(probs[b])) < 1e-5) }
        }
        var e = try run(["fill", "--model", dir.path, "--prompt", "Paris is the capital"])
        #expect(e.status != 0 && e.output.contains("no [MASK]"), "\(e.output)")
        e = try run(["fill", "--prompt", "It is a truth universally [MASK]."])
        #expect(e.status != 0 && e.output.contains("causal model"), "\(e.output)")
        e = try run(["run", "--model", dir.path, "--prompt", "Paris"])
        #expect(e.status != 0 && e.output.contains("masked-LM encoder"), "\(e.output)")
        e = try run(["hooks", "--model", dir.path])
        #expect(e.status == 0 && e.output.contains("hook_full_embed") && e.output.contains("mlm_head.ln.hook_normalized"), "\(e.output)")
        #expect(Fill.helpMessage(columns: 10_000).contains("Examples:"))
    }

    /// `loupe embed` and `loupe similarity` on the fetched all-MiniLM-L6-v2 against the reference embeddings.
    @Test func embedAndSimilarityOnMiniLM() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("minilm-embeddings.json"))
        let ref = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let sentences = Array(try #require(ref["sentences"] as? [String]).prefix(3))
        let want = try #require(ref["embeddings"] as? [[Double]])
        let cosine = try #require(ref["cosine"] as? [[Double]])
        var r = try run(["embed", "--model", "minilm-l6", "--json"] + sentences.flatMap { ["--sentence", $0] })
        #expect(r.status == 0, "\(r.output)")
        var text = r.output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let got = try #require(j["embeddings"] as? [[Double]])
        #expect(got.count == 3)
        for i in 0..<3 { #expect(zip(got[i], want[i]).map { abs($0 - $1) }.max()! < 1e-4) }
        r = try run(["similarity", "--model", "minilm-l6", "--json"] + sentences.flatMap { ["--sentence", $0] })
        text = r.output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n")
        let s = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let table = try #require(s["cosine"] as? [[Double]])
        for i in 0..<3 { for k in 0..<3 { #expect(abs(table[i][k] - cosine[i][k]) < 1e-4) } }
        var e = try run(["embed", "--sentence", "a"])
        #expect(e.status != 0 && e.output.contains("causal model"), "\(e.output)")
        e = try run(["similarity", "--model", "minilm-l6"])
        #expect(e.status != 0 && e.output.contains("give sentences"), "\(e.output)")
        #expect(Embed.helpMessage(columns: 10_000).contains("Examples:") && Similarity.helpMessage(columns: 10_000).contains("Examples:"))
    }

    /// `loupe train mlm` end to end on a small text: a tokenizer with [MASK] after its last id, a bidirectional
    /// model that `fill` and `eval` read, and the held-out masked-token figures.
    @Test func trainMaskedLMThenFillAndEval() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-mlm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("c.txt")
        try String(repeating: "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. ", count: 40)
            .write(to: corpus, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run").path
        var r = try run(["train", "mlm", "--corpus", corpus.path, "--vocab-size", "300", "--layers", "1", "--d-model", "16", "--heads", "2",
                         "--d-mlp", "32", "--ctx", "16", "--batch", "2", "--steps", "3", "--out", out, "--json"])
        #expect(r.status == 0, "\(r.output)")
        let last = try #require(r.output.split(separator: "\n").last { $0.hasPrefix("{") })
        let j = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        let accuracy = try #require(j["heldOutMaskedAccuracy"] as? Double)
        #expect(accuracy >= 0 && accuracy <= 1 && (j["maskedTokens"] as? Int ?? 0) > 0)
        let loaded = try ModelLoader.load(path: out)
        let mask = try #require(loaded.tokenizer?.specialTokens["[MASK]"])
        // The default layout is GPT-2's blocks with attention both ways (no BERT head).
        #expect(loaded.model.config.bidirectional && !loaded.model.config.postLayerNorm && mask == loaded.model.config.dVocab - 1)
        #expect(loaded.tokenizer?.stripsLeft == [mask])
        r = try run(["fill", "--model", out, "--prompt", "a single [MASK] in possession", "--json"])
        #expect(r.status == 0 && r.output.contains("\"masks\""), "\(r.output)")
        r = try run(["eval", "--model", out, "--text", corpus.path, "--json"])
        #expect(r.status == 0 && r.output.contains("masked_accuracy"), "\(r.output)")
        // BERT's layout: LayerNorms after the blocks and a masked-LM head.
        let bert = dir.appendingPathComponent("bert").path
        r = try run(["train", "mlm", "--corpus", corpus.path, "--vocab-size", "300", "--layers", "1", "--d-model", "16", "--heads", "2",
                     "--d-mlp", "32", "--ctx", "16", "--batch", "2", "--steps", "2", "--layout", "bert", "--out", bert])
        #expect(r.status == 0, "\(r.output)")
        let bertModel = try ModelLoader.load(path: bert).model
        #expect(bertModel.config.bidirectional && bertModel.config.postLayerNorm && bertModel.config.maskedLMHead)
        r = try run(["eval", "--model", "minilm-l6", "--text", corpus.path])
        #expect(r.status != 0 && r.output.contains("without a masked-LM head"), "\(r.output)")
    }
}
