// Gemma 3 270M, the real Q4_K_M GGUF fetched by Loupe (`gemma3-270m`), against Hugging Face transformers on
// the same file (scripts/make_gemma3_fixtures.py): the SentencePiece tokenizer, logits at every position of
// two prompts and past the 512-token sliding window, and a greedy continuation.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

enum Gemma3 {
    /// Fetched and loaded once for every test in the process.
    static let loaded: Result<LoadedModel, Error> = Result {
        guard let known = ModelRegistry.model(named: "gemma3-270m") else { throw FetchError.unknownModel(name: "gemma3-270m", known: []) }
        return try ModelLoader.load(path: try ModelRegistry.fetch(known).path)
    }

    static func model() throws -> LoadedModel { try loaded.get() }

    static func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("gemma3-270m-reference.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

@Suite(.serialized) struct Gemma3Tests {
    @Test func configFromGGUF() throws {
        let c = try Gemma3.model().model.config
        #expect(c.nLayers == 18 && c.dModel == 640 && c.nHeads == 4 && c.nKeyValueHeads == 1 && c.dHead == 256)
        #expect(c.dMLP == 2048 && c.dVocab == 262_144 && c.slidingWindow == 512 && c.qkNorm && c.postNorms)
        let full = (0..<18).filter { c.layerTypes?[$0] == .full }
        #expect(full == [5, 11, 17], "global layers \(full)")
        #expect(c.rotaryBase == 1_000_000 && c.slidingRope?.base == 10_000)
    }

    /// Ids (with BOS) and decoded text of every case equal Hugging Face's tokenizer built from the same GGUF:
    /// byte fallback, canonically equal but distinct tokens, control tokens, runs of spaces and newlines, and
    /// 200 seeded cases nobody chose (windows of news and Austen, soups of characters from many scripts).
    @Test func tokenizerMatchesHuggingFace() throws {
        let tokenizer = try Gemma3.model().requireTokenizer()
        let cases = try #require(try Gemma3.reference()["tokenizer"] as? [[String: Any]])
        #expect(cases.count >= 200)
        var wrong: [String] = []
        for c in cases {
            let text = try #require(c["text"] as? String), ids = try #require(c["ids"] as? [Int])
            let got = tokenizer.encodeForModel(text)
            if got != ids { wrong.append("\(text.debugDescription): \(got) != \(ids)") }
            if try tokenizer.decode(Array(ids.dropFirst())) != (c["decoded"] as? String) { wrong.append("decoding \(text.debugDescription)") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(cases.count) cases differ; first: \(wrong.prefix(3).joined(separator: "\n"))")
    }

    /// At every recorded position: the log-sum-exp and the 32 largest logits (by id) within 1e-4 of transformers'.
    @Test func logitsMatchHuggingFace() throws {
        let model = try Gemma3.model().model
        let prompts = try #require(try Gemma3.reference()["logits"] as? [[String: Any]])
        let v = model.config.dVocab
        var sawWindow = false
        for p in prompts {
            let ids = try #require(p["ids"] as? [Int]), first = p["first_position"] as? Int ?? 0
            let lses = try #require(p["lse"] as? [Double]), topIDs = try #require(p["top_ids"] as? [[Int]])
            let topLogits = try #require(p["top_logits"] as? [[Double]])
            sawWindow = sawWindow || ids.count > 512
            let logits = try model.run(.tokens([ids])).scalars
            var worst = 0.0
            for (k, lse) in lses.enumerated() {
                let row = logits[((first + k) * v)..<((first + k + 1) * v)]
                let m = Double(row.max() ?? 0)
                let got = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
                worst = max(worst, abs(got - lse))
                for (id, want) in zip(topIDs[k], topLogits[k]) {
                    worst = max(worst, abs(Double(row[row.startIndex + id]) - want))
                }
                #expect(row.indices.max { row[$0] < row[$1] }.map { $0 - row.startIndex } == topIDs[k][0],
                        "argmax at position \(first + k)")
            }
            #expect(worst < 1e-4, "\(ids.count)-token prompt: logits differ by up to \(worst)")
        }
        #expect(sawWindow, "one prompt must be longer than the sliding window")
    }

    @Test func greedyContinuationMatchesHuggingFace() throws {
        let loaded = try Gemma3.model()
        let greedy = try #require(try Gemma3.reference()["greedy"] as? [String: Any])
        let prompt = try loaded.requireTokenizer().encodeForModel(try #require(greedy["prompt"] as? String))
        let out = try loaded.model.generate(prompt: prompt, maxTokens: 10)
        #expect(out == (greedy["ids"] as? [Int]))
        #expect(try loaded.requireTokenizer().decode(out) == " Paris, France. It is the tallest building in")
    }
}
