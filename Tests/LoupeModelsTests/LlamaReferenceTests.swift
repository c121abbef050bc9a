// The Llama architecture (RMSNorm, rotary, SwiGLU, grouped-query attention, untied unembedding) against
// Hugging Face and TransformerLens on the committed random LlamaForCausalLM.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

enum LlamaFixture {
    static let folder = Fixtures.directory.appendingPathComponent("llama-tiny")
    static func loaded() throws -> LoadedModel { try ModelLoader.load(path: folder.path) }
    static func expected() throws -> SafetensorsFile {
        try SafetensorsFile(path: Fixtures.directory.appendingPathComponent("llama-tiny-expected.safetensors").path)
    }
    static func ids() throws -> [Int] {
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("llama-tiny-expected.json"))
        return try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["ids"] as? [Int])
    }
}

@Suite struct LlamaReferenceTests {
    @Test func configAndWeightsFromHuggingFaceFolder() throws {
        let loaded = try LlamaFixture.loaded()
        let c = loaded.model.config
        #expect(c.architecture == "LlamaForCausalLM")
        #expect(c.nKeyValueHeads == 2 && c.nHeads == 4 && c.dHead == 16 && c.gatedMLP && c.positional == .rotaryHalf)
        #expect(loaded.tokenizer == nil, "a folder without tokenizer files has no tokenizer")
        #expect(throws: ModelError.self) { try loaded.requireTokenizer() }
    }

    @Test func logitsMatchHuggingFace() throws {
        let model = try LlamaFixture.loaded().model
        let logits = try model.run([try LlamaFixture.ids()])
        let want = try LlamaFixture.expected().tensor("hf.logits")
        #expect(logits.shape == want.shape)
        #expect(logits.maxAbsDifference(want) <= 1e-4, "max difference \(logits.maxAbsDifference(want))")
    }

    @Test(arguments: [("tl", false), ("tlp", true)])
    func cacheMatchesTransformerLens(prefix: String, processed: Bool) throws {
        var model = try LlamaFixture.loaded().model
        if processed { model = try model.processed(WeightProcessing(foldLN: true, centerWritingWeights: false, centerUnembed: false, foldValueBiases: false)) }
        let expected = try LlamaFixture.expected()
        let (logits, cache) = try model.runWithCache(.tokens([try LlamaFixture.ids()]))
        let tlNames = Set(expected.names.filter { $0.hasPrefix(prefix + ".") && $0.contains("hook_") }.map { String($0.dropFirst(prefix.count + 1)) })
        let ours = Set(cache.names.map(\.description))
        #expect(ours == tlNames, "only Loupe \(ours.subtracting(tlNames).sorted()), only TL \(tlNames.subtracting(ours).sorted())")
        for name in cache.names {
            let want = try expected.tensor("\(prefix).\(name)")
            let got = try #require(cache[name])
            #expect(got.shape == want.shape, "\(name): \(got.shape) vs \(want.shape)")
            #expect(got.maxAbsDifference(want) <= 1e-4, "\(name): max difference \(got.maxAbsDifference(want))")
        }
        #expect(logits.maxAbsDifference(try expected.tensor("\(prefix).logits")) <= 1e-4)
    }

    @Test func greedyGenerationMatchesHuggingFace() throws {
        let model = try LlamaFixture.loaded().model
        let ids = try LlamaFixture.ids()
        let want = try LlamaFixture.expected().tensor("hf.greedy10").scalars.map { Int($0) }
        #expect(try model.generate(prompt: Array(ids[0..<6]), maxTokens: 10) == want)
    }

    /// Under RMSNorm, TransformerLens's default processing folds the norms but skips centring the
    /// writing weights (the residual mean matters there); centring the unembedding still applies.
    @Test func defaultProcessingSkipsCentringUnderRMSNorm() throws {
        let model = try LlamaFixture.loaded().model
        let processed = try model.processed()
        #expect(processed.config.normalization == .rmsNormPre)
        #expect(processed.weights.wE == model.weights.wE)
        let ids = try LlamaFixture.ids()
        #expect(try processed.run([ids]).logSoftmax().maxAbsDifference(try model.run([ids]).logSoftmax()) <= 1e-4)
    }
}
