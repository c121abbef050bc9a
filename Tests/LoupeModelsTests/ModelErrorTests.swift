// Bad input gets a typed error with a message, never a crash.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

@Suite struct ModelErrorTests {
    @Test func tokenOutOfVocabulary() throws {
        let model = try Fixtures.model()
        #expect(throws: ModelError.tokenOutOfRange(token: 50257, position: 1, dVocab: 50257)) { try model.run([0, 50257]) }
        #expect(throws: ModelError.tokenOutOfRange(token: -1, position: 0, dVocab: 50257)) { try model.run([-1]) }
    }

    @Test func sequenceLongerThanContext() throws {
        let model = try Fixtures.model()
        #expect(throws: ModelError.sequenceTooLong(length: 65, nCtx: 64)) { try model.run(Array(repeating: 1, count: 65)) }
        // The KV cache counts what it already holds.
        var cache = KVCache(config: model.config)
        _ = try model.run([Array(repeating: 1, count: 60)], kvCache: &cache)
        #expect(throws: ModelError.sequenceTooLong(length: 65, nCtx: 64)) {
            try model.run([Array(repeating: 1, count: 5)], kvCache: &cache)
        }
    }

    @Test func emptyAndRaggedInput() throws {
        let model = try Fixtures.model()
        #expect(throws: ModelError.emptyInput) { try model.run([]) }
        #expect(throws: ModelError.emptyInput) { try model.run([[Int]]()) }
        #expect(throws: ModelError.raggedBatch(expected: 2, found: 1, row: 1)) { try model.run([[1, 2], [3]]) }
    }

    @Test func badAttentionMask() throws {
        let model = try Fixtures.model()
        #expect(throws: ModelError.self) { try model.run([[1, 2]], options: ForwardOptions(attentionMask: [[1]])) }
        #expect(throws: ModelError.self) { try model.run([[1, 2]], options: ForwardOptions(attentionMask: [[1, 2]])) }
    }

    @Test func hooksOutsideTheModel() throws {
        let model = try Fixtures.model()
        var hooks = Hooks()
        hooks.add(.residPre(2)) { _, _ in }
        #expect(throws: HookError.self) { try model.run(.tokens([[1, 2]]), hooks: hooks) }
        var rotary = Hooks()
        rotary.add(.rotQ(0)) { _, _ in }
        #expect(throws: HookError.self) { try model.run(.tokens([[1, 2]]), hooks: rotary) }
        #expect(throws: HookError.self) { try model.runWithCache(.tokens([[1]]), select: .names([.mlpPreLinear(0)])) }
    }

    @Test func hookThatChangesTheShape() throws {
        let model = try Fixtures.model()
        var hooks = Hooks()
        hooks.add(.pattern(0)) { act, _ in act = Tensor(zeros: [1]) }
        #expect(throws: HookError.shapeChanged(hook: "blocks.0.attn.hook_pattern", expected: [1, 4, 2, 2], found: [1])) {
            try model.run(.tokens([[1, 2]]), hooks: hooks)
        }
        var replace = Hooks()
        replace.add(.residPre(0), Hooks.replace(with: Tensor(zeros: [1, 3, 32])))
        #expect(throws: HookError.self) { try model.run(.tokens([[1, 2]]), hooks: replace) }
    }

    @Test func layerOptionsOutOfRange() throws {
        let model = try Fixtures.model()
        #expect(throws: ModelError.layerOutOfRange(name: "stopAtLayer", layer: 3, nLayers: 2)) {
            try model.run([[1]], options: ForwardOptions(stopAtLayer: 3))
        }
        #expect(throws: ModelError.self) { try model.run([[1]], options: ForwardOptions(startAtLayer: 1)) }
        #expect(throws: ModelError.inputShape(expected: [-1, -1, 32], found: [1, 2, 31])) {
            try model.run(.residual(Tensor(zeros: [1, 2, 31])), hooks: Hooks(), options: ForwardOptions(startAtLayer: 1))
        }
    }

    @Test func badSamplingOptions() throws {
        let model = try Fixtures.model()
        #expect(throws: ModelError.self) { try model.generate(prompt: [1], maxTokens: 2, sampling: SamplingOptions(temperature: -1)) }
        #expect(throws: ModelError.self) { try model.generate(prompt: [1], maxTokens: 2, sampling: SamplingOptions(temperature: 1, topP: 0)) }
        #expect(throws: ModelError.emptyInput) { try model.generate(prompt: [], maxTokens: 2) }
    }
}

/// Model folders with missing or wrong pieces.
@Suite struct ModelFolderErrorTests {
    func folder(config: String?, copyWeights: Bool = true) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let config { try Data(config.utf8).write(to: dir.appendingPathComponent("config.json")) }
        if copyWeights {
            try FileManager.default.copyItem(at: Fixtures.gpt2Tiny.appendingPathComponent("model.safetensors"),
                                             to: dir.appendingPathComponent("model.safetensors"))
        }
        return dir
    }

    static let goodConfig = """
    {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "n_positions": 64}
    """

    @Test func missingFolderConfigAndWeights() throws {
        #expect(throws: ModelError.missingFile(path: "/nonexistent/loupe-model", what: "model folder")) {
            try ModelLoader.load(path: "/nonexistent/loupe-model")
        }
        let noConfig = try folder(config: nil)
        #expect(throws: ModelError.missingFile(path: noConfig.appendingPathComponent("config.json").path, what: "model config")) {
            try ModelLoader.load(path: noConfig.path)
        }
        let noWeights = try folder(config: Self.goodConfig, copyWeights: false)
        #expect(throws: ModelError.missingFile(path: noWeights.appendingPathComponent("model.safetensors").path, what: "weights")) {
            try ModelLoader.load(path: noWeights.path)
        }
    }

    @Test(arguments: [
        ("not json", "is not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (#"{"model_type": "gpt2", "n_embd": 32, "n_head": 4, "vocab_size": 50257}"#, "n_layer"),
        (#"{"model_type": "t5", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257}"#, "model_type 't5' is not supported"),
        (#"{"model_type": "bert", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257}"#, "'hidden_size' is required"),
        (#"{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 256}"#, "num_hidden_layers"),
        (#"{"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 96, "vocab_size": 256, "rope_scaling": {"type": "yarn"}}"#, "rope_scaling"),
        (#"{"n_layer": 2, "n_embd": 30, "n_head": 4, "vocab_size": 50257}"#, "multiple of n_head"),
        (#"{"n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "activation_function": "swoosh"}"#, "swoosh"),
        // Values of the wrong type were once replaced by defaults; unknown keys were ignored.
        (#"{"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "activation_function": 0}"#,
         "'activation_function' must be a string, found 0"),
        (#"{"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "layer_norm_epsilon": "2"}"#,
         "'layer_norm_epsilon' must be a number, found 2"),
        (#"{"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "layer_norm_epsilon": -1}"#,
         "layer_norm_epsilon must be positive"),
        (#"{"model_type": "gpt2", "n_layer": "2", "n_embd": 32, "n_head": 4, "vocab_size": 50257}"#, "'n_layer' must be an integer"),
        (#"{"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "scale_attn_weights": false}"#,
         "scale_attn_weights = 0 is not supported"),
        (#"{"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "rotary_dim": 8}"#,
         "'rotary_dim' not understood by Loupe"),
    ])
    func badConfig(config: String, mentions: String) throws {
        let dir = try folder(config: config)
        do {
            _ = try ModelLoader.load(path: dir.path)
            Issue.record("expected an error for config \(config)")
        } catch let error as ModelError {
            #expect("\(error)".contains(mentions), "message: \(error)")
        }
    }

    /// A config that disagrees with the weights: the converter names the tensor and both shapes.
    @Test func configDisagreesWithWeights() throws {
        let dir = try folder(config: #"{"n_layer": 2, "n_embd": 64, "n_head": 4, "vocab_size": 50257, "n_positions": 64}"#)
        #expect(throws: ModelError.weightShape(name: "transformer.wte.weight", expected: [50257, 64], found: [50257, 32])) {
            try ModelLoader.load(path: dir.path)
        }
        let deeper = try folder(config: #"{"n_layer": 3, "n_embd": 32, "n_head": 4, "vocab_size": 50257, "n_positions": 64}"#)
        #expect(throws: ModelError.self) { try ModelLoader.load(path: deeper.path) }
    }
}
