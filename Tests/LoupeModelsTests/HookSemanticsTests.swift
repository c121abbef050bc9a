// Hook semantics that TransformerLens defines and the reference fixtures do not reach directly.

import Foundation
import LoupeModels
import LoupeTensor
import Testing

@Suite struct HookSemanticsTests {
    /// TransformerLens divides by the hooked scale: doubling `ln_final.hook_scale` halves the normalized
    /// residual, so (with LN folded: no weight, no bias) logits − b_U halve.
    @Test func hookedScaleIsUsed() throws {
        let model = try Fixtures.model().processed()
        let ids = try Fixtures.meta().ids8
        let plain = try model.run([ids])
        var hooks = Hooks()
        hooks.add(.lnFinalScale) { scale, _ in scale = scale * 2 }
        let hooked = try model.run(.tokens([ids]), hooks: hooks)
        let bU = model.weights.bU.scalars
        var worst: Float = 0
        for i in 0..<plain.count {
            let j = i % bU.count
            worst = max(worst, abs((hooked.scalars[i] - bU[j]) - (plain.scalars[i] - bU[j]) / 2))
        }
        #expect(worst < 1e-5, "max difference \(worst)")
    }

    /// Padding gets no positional embedding (TransformerLens's PosEmbed zeroes it).
    @Test func paddedPositionsHaveNoPositionalEmbedding() throws {
        let model = try Fixtures.model()
        let meta = try Fixtures.meta()
        let (_, cache) = try model.runWithCache(.tokens(meta.padded_tokens), select: .names([.posEmbed]),
                                                options: ForwardOptions(attentionMask: meta.padded_mask))
        let pe = try #require(cache[.posEmbed])   // [2, 8, 32]
        #expect(pe.scalars[0..<(3 * 32)].allSatisfy { $0 == 0 })
        // Row 0's first real token sits at position 0, like row 1's first token.
        #expect(Array(pe.scalars[(3 * 32)..<(4 * 32)]) == Array(pe.scalars[(8 * 32)..<(9 * 32)]))
    }

    @Test func kvCacheOfAnotherModelIsRejected() throws {
        let gpt2 = try Fixtures.model()
        var deeper = gpt2.config
        deeper.nLayers = 3
        var foreign = KVCache(config: deeper)
        #expect(throws: ModelError.self) { try gpt2.run([[1, 2]], kvCache: &foreign) }
        var wider = gpt2.config
        wider.dHead = 16
        var foreignWidth = KVCache(config: wider)
        #expect(throws: ModelError.self) { try gpt2.run([[1, 2]], kvCache: &foreignWidth) }
        var wrongBatch = KVCache(config: gpt2.config, batch: 2)
        #expect(throws: ModelError.self) { try gpt2.run([[1, 2]], kvCache: &wrongBatch) }
    }

    @Test func generationLengthLimits() throws {
        let model = try Fixtures.model()
        #expect(try model.generate(prompt: [1, 2], maxTokens: 0) == [])
        #expect(throws: ModelError.self) { try model.generate(prompt: [1, 2], maxTokens: -1) }
        #expect(throws: ModelError.sequenceTooLong(length: 65, nCtx: 64)) { try model.generate(prompt: [1, 2], maxTokens: 64) }
    }
}

@Suite struct SamplingTests {
    /// Sampled frequencies follow softmax(logits / T); top-k and top-p cut the tail.
    @Test func frequenciesFollowTheDistribution() {
        let logits: [Float] = [0, Float(log(3.0)), -20, -20]   // p ≈ 0.25, 0.75, ~0, ~0
        var rng = SeededGenerator(seed: 7)
        var counts = [0, 0, 0, 0]
        for _ in 0..<4000 { counts[sampleToken(logits[...], options: SamplingOptions(temperature: 1), rng: &rng)] += 1 }
        #expect(abs(Double(counts[1]) / 4000 - 0.75) < 0.03, "counts \(counts)")
        #expect(counts[2] + counts[3] == 0)
        for _ in 0..<200 {
            #expect(sampleToken(logits[...], options: SamplingOptions(temperature: 1, topK: 1), rng: &rng) == 1)
            #expect(sampleToken(logits[...], options: SamplingOptions(temperature: 1, topP: 0.7), rng: &rng) == 1)
        }
        #expect(sampleToken(logits[...], options: .greedy, rng: &rng) == 1)
    }

    @Test func sameSeedSameSample() throws {
        let model = try Fixtures.model()
        let options = SamplingOptions(temperature: 0.9, topK: 50, topP: 0.95, seed: 42)
        let a = try model.generate(prompt: [464, 3290], maxTokens: 6, sampling: options)
        let b = try model.generate(prompt: [464, 3290], maxTokens: 6, sampling: options)
        #expect(a == b)
        #expect(a.count == 6)
    }

    @Test func topKMatchesSorting() {
        var x: UInt64 = 1
        let values: [Float] = (0..<3000).map { _ in x = x &* 6364136223846793005 &+ 1; return Float(x >> 41) / 1000 }
        let sorted = values.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
        for k in [1, 10, 64, 65, 500] {
            #expect(topK(values[...], k: k).map(\.index) == sorted.prefix(k).map(\.offset), "k = \(k)")
        }
        #expect(topK(values[100..<200], k: 3).allSatisfy { $0.index < 100 })
    }
}

@Suite struct ConfigLimitTests {
    @Test func hostileSizesAreErrorsNotCrashes() throws {
        let json: [String: Any] = ["model_type": "gpt2", "n_embd": 2305843009213693952, "n_head": 1, "n_layer": 1, "vocab_size": 1]
        #expect(throws: ModelError.self) { try GPT2.config(fromJSON: json, path: "config.json") }
        let big = ModelConfig(architecture: "x", nLayers: 1, dModel: 64, nHeads: 1, dHead: 64, dMLP: 4, dVocab: 1 << 40, nCtx: 8)
        #expect(throws: ModelError.self) { try big.validate() }
    }

    @Test func weightsThatContradictTheConfig() throws {
        let model = try Fixtures.model()
        var config = model.config
        config.normalization = .layerNormPre   // but the weights still carry LayerNorm weights
        #expect(throws: ModelError.self) { try HookedTransformer(config: config, weights: model.weights) }
    }
}
