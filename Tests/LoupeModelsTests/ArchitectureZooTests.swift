// Every architecture family against Hugging Face transformers and TransformerLens on random tiny models
// saved by `save_pretrained` (scripts/make_zoo_fixtures.py): logits at every position, greedy generation
// through the KV cache, and every hook point of TransformerLens's run_with_cache.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

enum Zoo {
    static let directory = Fixtures.directory.appendingPathComponent("zoo")
    /// Fixture name → the Hugging Face class it must load as.
    static let families: [(name: String, architecture: String)] = [
        ("llama3", "LlamaForCausalLM"), ("mistral", "MistralForCausalLM"), ("qwen2", "Qwen2ForCausalLM"),
        ("qwen3", "Qwen3ForCausalLM"), ("gemma3", "Gemma3ForCausalLM"), ("pythia", "GPTNeoXForCausalLM"),
        ("neox-sequential", "GPTNeoXForCausalLM"), ("phi3", "Phi3ForCausalLM"),
    ]
    static var names: [String] { families.map(\.name) }

    static func model(_ name: String) throws -> HookedTransformer {
        try ModelLoader.load(path: directory.appendingPathComponent(name).path).model
    }
    static func expected(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: directory.appendingPathComponent("\(name)-expected.safetensors").path)
    }
    static func ids(_ name: String) throws -> [Int] {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(name)-expected.json"))
        return try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["ids"] as? [Int])
    }
}

@Suite struct ArchitectureZooTests {
    @Test(arguments: Zoo.families.map(\.name))
    func logitsMatchHuggingFace(family: String) throws {
        let model = try Zoo.model(family)
        #expect(model.config.architecture == Zoo.families.first { $0.name == family }?.architecture)
        let logits = try model.run([try Zoo.ids(family)])
        let want = try Zoo.expected(family).tensor("hf.logits")
        #expect(logits.shape == want.shape)
        #expect(logits.maxAbsDifference(want) <= 1e-4, "\(family): max difference \(logits.maxAbsDifference(want))")
    }

    /// Generation goes through the KV cache (sliding windows and per-layer rope included).
    @Test(arguments: Zoo.families.map(\.name))
    func greedyGenerationMatchesHuggingFace(family: String) throws {
        let model = try Zoo.model(family)
        let ids = try Zoo.ids(family)
        let want = try Zoo.expected(family).tensor("hf.greedy10").scalars.map { Int($0) }
        #expect(try model.generate(prompt: Array(ids[0..<6]), maxTokens: 10) == want)
    }

    /// The same hook names as TransformerLens, and the same values. TransformerLens runs QK-norm on
    /// `[batch·pos·heads, d_head]`; Loupe keeps `[batch, pos, heads, d_head]` (same values, same order).
    @Test(arguments: Zoo.families.map(\.name))
    func cacheMatchesTransformerLens(family: String) throws {
        let model = try Zoo.model(family)
        let expected = try Zoo.expected(family)
        let (logits, cache) = try model.runWithCache(.tokens([try Zoo.ids(family)]))
        let tlNames = Set(expected.names.filter { $0.hasPrefix("tl.") && $0.contains("hook_") }.map { String($0.dropFirst(3)) })
        let ours = Set(cache.names.map(\.description))
        #expect(ours == tlNames, "\(family): only Loupe \(ours.subtracting(tlNames).sorted()), only TL \(tlNames.subtracting(ours).sorted())")
        for name in cache.names where tlNames.contains(name.description) {
            let want = try expected.tensor("tl.\(name)")
            let got = try #require(cache[name])
            #expect(got.count == want.count && got.shape.last == want.shape.last, "\(family) \(name): \(got.shape) vs \(want.shape)")
            let diff = try got.reshaped(want.shape).maxAbsDifference(want)
            #expect(diff <= 1e-4, "\(family) \(name): max difference \(diff)")
        }
        #expect(logits.maxAbsDifference(try expected.tensor("tl.logits")) <= 1e-4)
    }

    /// TransformerLens's default processing keeps every family's predictions.
    @Test(arguments: Zoo.families.map(\.name))
    func processingKeepsPredictions(family: String) throws {
        let model = try Zoo.model(family)
        let ids = try Zoo.ids(family)
        let processed = try model.processed()
        let diff = try processed.run([ids]).logSoftmax().maxAbsDifference(try model.run([ids]).logSoftmax())
        #expect(diff <= 1e-4, "\(family): processed log-probs differ by \(diff)")
    }

    /// Batches with left padding give each row what it gives alone.
    @Test(arguments: ["mistral", "gemma3", "pythia"])
    func paddedBatchMatchesSingleRuns(family: String) throws {
        let model = try Zoo.model(family)
        let ids = try Zoo.ids(family)
        let short = Array(ids[0..<7])
        let batch = [ids, [0, 0, 0, 0, 0] + short]
        let mask = [Array(repeating: 1, count: ids.count), Array(repeating: 0, count: 5) + Array(repeating: 1, count: 7)]
        let logits = try model.run(.tokens(batch), options: ForwardOptions(attentionMask: mask))
        let alone = try model.run([short])
        let v = model.config.dVocab
        let padded = Array(logits.scalars[(ids.count + 5) * v..<(2 * ids.count) * v])
        let diff = zip(padded, alone.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(diff <= 1e-4, "\(family): padded row differs by \(diff)")
    }
}

/// What a config or checkpoint says and Loupe does not understand is an error that names it.
@Suite struct ArchitectureErrorTests {
    /// A copy of a zoo fixture with its config edited (and optionally its weights).
    static func copy(_ family: String, edit: (inout [String: Any]) -> Void,
                     weights: (([(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)])? = nil) throws -> URL {
        let src = Zoo.directory.appendingPathComponent(family)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-zoo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("config.json"))) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("config.json"))
        let file = try SafetensorsFile(path: src.appendingPathComponent("model.safetensors").path)
        var tensors = try file.names.map { (name: $0, tensor: try file.tensor($0)) }
        if let weights { tensors = weights(tensors) }
        try writeSafetensors(tensors, to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    static func loadError(_ dir: URL) -> String? {
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try ModelLoader.load(path: dir.path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func unknownModelTypeNamesIt() throws {
        let message = try #require(Self.loadError(try Self.copy("qwen2") { $0["model_type"] = "falcon_mamba" }))
        #expect(message.contains("falcon_mamba") && message.contains("qwen3"), "\(message)")
    }

    @Test func unknownRopeTypeNamesIt() throws {
        let message = try #require(Self.loadError(try Self.copy("llama3") { j in
            j["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0]
        }))
        #expect(message.contains("yarn"), "\(message)")
    }

    /// The case: transformers 5's rope_parameters must be read (not fall back to the default theta),
    /// and the legacy spelling must give the same model.
    @Test func legacyRopeKeysGiveTheSameModel() throws {
        let dir = try Self.copy("llama3") { j in
            let p = j.removeValue(forKey: "rope_parameters") as? [String: Any] ?? [:]
            j["rope_theta"] = p["rope_theta"]
            j["rope_scaling"] = p.filter { $0.key != "rope_theta" }
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        let legacy = try ModelLoader.load(path: dir.path).model
        let ids = try Zoo.ids("llama3")
        let want = try Zoo.expected("llama3").tensor("hf.logits")
        #expect(try legacy.run([ids]).maxAbsDifference(want) <= 1e-4)
        #expect(legacy.config.rotaryBase == 500_000)
    }

    @Test(arguments: [
        ("llama3", "attn_logit_softcapping_v2", "attn_logit_softcapping_v2"),
        ("gemma3", "final_logit_softcapping", "final_logit_softcapping"),
        ("qwen3", "mlp_bias", "mlp_bias"),
        ("pythia", "rotary_emb_scale", "rotary_emb_scale"),
    ])
    func unknownOrUnsupportedKeyIsAnError(family: String, key: String, named: String) throws {
        let message = try #require(Self.loadError(try Self.copy(family) { $0[key] = key == "mlp_bias" ? true : 30.0 }),
                                   "\(family) loaded with \(key) set")
        #expect(message.contains(named), "\(message)")
    }

    /// Values of the wrong type (as JSON text) are errors, not defaults.
    @Test(arguments: [("rms_norm_eps", "\"1e-6\""), ("num_hidden_layers", "2.5"), ("tie_word_embeddings", "\"no\""),
                      ("hidden_act", "0")])
    func wrongTypesAreErrors(key: String, json: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        let message = try #require(Self.loadError(try Self.copy("qwen2") { $0[key] = value }))
        #expect(message.contains(key), "\(message)")
    }

    /// Found by the model-folder fuzz family (100k cases): an original context of 1e300 trapped converting to Int.
    @Test(arguments: [
        ["factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 1e300],
        ["factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192.5],
        ["factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192.0],
        ["factor": -2.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192.0],
    ] as [[String: Double]])
    func impossibleLlama3RopeScalingIsAnError(values: [String: Double]) throws {
        let message = try #require(Self.loadError(try Self.copy("llama3") { j in
            var p: [String: Any] = ["rope_type": "llama3", "rope_theta": 500_000.0]
            for (k, v) in values { p[k] = v }
            j["rope_parameters"] = p
        }))
        #expect(message.contains("llama3 rope scaling") || message.contains("original_max_position_embeddings"), "\(message)")
    }

    @Test func nonPositiveRopeThetaIsAnError() throws {
        let message = try #require(Self.loadError(try Self.copy("mistral") { $0["rope_parameters"] = ["rope_type": "default", "rope_theta": 0.0] }))
        #expect(message.contains("rope_theta"), "\(message)")
    }

    @Test func missingWeightNamesIt() throws {
        let name = "model.layers.1.self_attn.q_norm.weight"
        let message = try #require(Self.loadError(try Self.copy("qwen3", edit: { _ in }) { $0.filter { $0.name != name } }))
        #expect(message.contains(name), "\(message)")
    }

    /// A bias the config does not announce would be silently dropped: it is an error instead.
    @Test func unusedWeightIsAnError() throws {
        let name = "model.layers.0.self_attn.o_proj.bias"
        let message = try #require(Self.loadError(try Self.copy("qwen2", edit: { _ in }) { $0 + [(name: name, tensor: Tensor(zeros: [64]))] }))
        #expect(message.contains(name), "\(message)")
    }

    @Test func shardedCheckpointLoadsLikeOneFile() throws {
        let src = Zoo.directory.appendingPathComponent("phi3")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let file = try SafetensorsFile(path: src.appendingPathComponent("model.safetensors").path)
        var map: [String: String] = [:]
        for (i, half) in [file.names.filter { $0.contains("layers.0") }, file.names.filter { !$0.contains("layers.0") }].enumerated() {
            let shard = "model-0000\(i + 1)-of-00002.safetensors"
            // One shard in float16, one in float32: both are read.
            try writeSafetensors(try half.map { ($0, try file.tensor($0)) }, float16: i == 0, to: dir.appendingPathComponent(shard))
            for n in half { map[n] = shard }
        }
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let sharded = try ModelLoader.load(path: dir.path).model
        let ids = try Zoo.ids("phi3")
        let diff = try sharded.run([ids]).maxAbsDifference(try Zoo.model("phi3").run([ids]))
        #expect(diff > 0 && diff < 0.05, "float16 layer 0 should change the logits a little, not a lot: \(diff)")
    }
}
