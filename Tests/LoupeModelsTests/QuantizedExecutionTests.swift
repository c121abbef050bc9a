// Running a GGUF model from its quantized weights in place against the float32-dequantized reference
// path on the same file (SmolLM2-135M Q4_1, with a Q8_0 tied embedding): logits within 1e-3 and every
// hook point alike, with hooks, padding, the KV cache and per-head results; the dequantized weights a
// quantized model hands out on request equal the reference's bit for bit.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

enum SmolLM2Dequantized {
    static let loaded: Result<LoadedModel, Error> = Result {
        guard let known = ModelRegistry.model(named: "smollm2-135m") else { throw FetchError.unknownModel(name: "smollm2-135m", known: []) }
        return try ModelLoader.load(path: try ModelRegistry.fetch(known).path, dequantize: true)
    }
}

@Suite(.serialized) struct QuantizedExecutionTests {
    static func models() throws -> (quantized: HookedTransformer, reference: HookedTransformer, tokenizer: BPETokenizer) {
        let q = try SmolLM2.model(), r = try SmolLM2Dequantized.loaded.get()
        return (q.model, r.model, try q.requireTokenizer())
    }

    /// Largest |a − b| / max(1, |b|).
    static func relativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
    }

    @Test func loadsQuantizedByDefault() throws {
        let (q, r, _) = try Self.models()
        #expect(q.readsWeightsInPlace)
        #expect(!r.readsWeightsInPlace)
    }

    @Test func logitsAndEveryHookPointMatchTheDequantizedPath() throws {
        let (q, r, tok) = try Self.models()
        let ids = tok.encodeForModel("When Mary and John went to the store, John gave a drink to")
        let (lq, cq) = try q.runWithCache(.tokens([ids]))
        let (lr, cr) = try r.runWithCache(.tokens([ids]))
        #expect(lq.shape == lr.shape)
        #expect(lq.maxAbsDifference(lr) < 1e-3, "logits differ by \(lq.maxAbsDifference(lr))")
        #expect(Set(cq.names) == Set(cr.names))
        for name in cr.names {
            let a = try #require(cq[name]), b = try #require(cr[name])
            #expect(a.shape == b.shape, "\(name)")
            #expect(Self.relativeDifference(a, b) < 1e-3, "\(name): \(Self.relativeDifference(a, b))")
        }
    }

    @Test func hooksPaddingAndHeadResults() throws {
        let (q, r, tok) = try Self.models()
        let a = tok.encodeForModel("The Eiffel Tower is located in the city of")
        let b = tok.encodeForModel("Paris is")
        // Left-padded batch of two, a head ablated, per-head results materialized.
        let pad = a.count - b.count
        let batch = [a, [Int](repeating: 0, count: pad) + b]
        var options = ForwardOptions(attentionMask: [[Int](repeating: 1, count: a.count),
                                                     [Int](repeating: 0, count: pad) + [Int](repeating: 1, count: b.count)])
        options.useAttnResult = true
        let hooks: Hooks = [.z(4): { z, _ in z[.all, .all, 2] = 0 }]
        let (lq, cq) = try q.runWithCache(.tokens(batch), select: .names([.result(7), .mlpOut(29)]), hooks: hooks, options: options)
        let (lr, cr) = try r.runWithCache(.tokens(batch), select: .names([.result(7), .mlpOut(29)]), hooks: hooks, options: options)
        #expect(lq.maxAbsDifference(lr) < 1e-3)
        for name in [HookName.result(7), .mlpOut(29)] {
            #expect(Self.relativeDifference(try #require(cq[name]), try #require(cr[name])) < 1e-3, "\(name)")
        }
        // The ablation did something, on both paths alike.
        let plain = try q.run(.tokens(batch), options: options)
        #expect(plain.maxAbsDifference(lq) > 1e-2)
    }

    @Test func generationWithTheKVCacheAgrees() throws {
        let (q, r, tok) = try Self.models()
        let prompt = tok.encodeForModel("It is a truth universally acknowledged, that a single man")
        #expect(try q.generate(prompt: prompt, maxTokens: 12) == (try r.generate(prompt: prompt, maxTokens: 12)))
    }

    /// `weights` of a quantized model is made on request, and equals what the reference path loaded.
    @Test func dequantizedWeightsOnRequestAreTheReference() throws {
        let (q, r, _) = try Self.models()
        for (a, b) in zip(q.weights.namedTensors, r.weights.namedTensors) {
            #expect(a.name == b.name)
            let same = a.tensor.shape == b.tensor.shape && a.tensor.scalars.withUnsafeBytes { x in
                b.tensor.scalars.withUnsafeBytes { y in x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
            }
            #expect(same, "\(a.name)")
        }
    }
}

/// Hugging Face folders read their safetensors matrices in place too (F32/F16/BF16 rows, no copy at load)
/// when the family keeps q, k, v, gate and up as separate matrices; packed layouts are converted.
@Suite struct SafetensorsInPlaceTests {
    static let zoo = Fixtures.directory.appendingPathComponent("zoo")

    @Test(arguments: [("llama3", true), ("mistral", true), ("qwen2", true), ("qwen3", true), ("gemma3", true),
                      ("phi3", false), ("pythia", false)])
    func familiesReadInPlaceWhereTheLayoutAllows(family: String, inPlace: Bool) throws {
        let dir = Self.zoo.appendingPathComponent(family).path
        let model = try ModelLoader.load(path: dir).model
        #expect(model.readsWeightsInPlace == inPlace, "\(family)")
        let reference = try ModelLoader.load(path: dir, dequantize: true).model
        #expect(!reference.readsWeightsInPlace)
        let ids = [[1, 5, 9, 33, 2, 17, 8, 40]]
        let (a, ca) = try model.runWithCache(.tokens(ids))
        let (b, cb) = try reference.runWithCache(.tokens(ids))
        #expect(a.maxAbsDifference(b) < 1e-5, "\(family): logits differ by \(a.maxAbsDifference(b))")
        for name in cb.names {
            let x = try #require(ca[name]), y = try #require(cb[name])
            #expect(x.maxAbsDifference(y) < 1e-4, "\(family) \(name)")
        }
        // The float32 weights on request are the converted ones, bit for bit.
        #expect(model.weights == reference.weights)
    }

    /// The tiny Llama GGUF of the fuzz harness (`scripts/make_tiny_gguf.py`: F16 embedding, Q8_0 attention, Q4_1
    /// gate/up, Q4_0 down, its own BPE tokenizer): the in-place path equals the dequantized one, and the
    /// tokenizer read from the file merges as its merges say.
    @Test func tinyGGUFWithItsOwnTokenizer() throws {
        let path = Fixtures.directory.appendingPathComponent("gguf/llama-tiny.gguf").path
        let loaded = try ModelLoader.load(path: path)
        let reference = try ModelLoader.load(path: path, dequantize: true).model
        #expect(loaded.model.readsWeightsInPlace)
        let tok = try loaded.requireTokenizer()
        // " the" and " cat" are learned merges: one token each; the control token is matched literally.
        let ids = tok.encode("the cat sat<|endoftext|>")
        #expect(try ids.map { try tok.spelling($0) } == ["the", "\u{120}cat", "\u{120}sat", "<|endoftext|>"])
        #expect(try tok.decode(ids) == "the cat sat<|endoftext|>")
        let (a, ca) = try loaded.model.runWithCache(.tokens([ids]))
        let (b, cb) = try reference.runWithCache(.tokens([ids]))
        #expect(QuantizedExecutionTests.relativeDifference(a, b) < 1e-3, "logits differ by \(QuantizedExecutionTests.relativeDifference(a, b))")
        for name in cb.names {
            let x = try #require(ca[name]), y = try #require(cb[name])
            #expect(QuantizedExecutionTests.relativeDifference(x, y) < 1e-3, "\(name)")
        }
    }
}
