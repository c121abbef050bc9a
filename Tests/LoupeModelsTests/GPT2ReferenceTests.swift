// The GPT-2 forward pass and every hook point against the numpy reference and TransformerLens,
// on the committed random 2-layer fixture.

import Foundation
import LoupeFormats
@testable import LoupeModels
import LoupeTensor
import Testing

@Suite struct GPT2ReferenceTests {
    @Test func logitsMatchNumpyReference() throws {
        let model = try Fixtures.model()
        let meta = try Fixtures.meta()
        let logits = try model.run([meta.ids16])
        #expect(logits.shape == [1, 16, 50257])
        try expectLogits(try logits.reshaped([16, 50257]), try Fixtures.expected(), "np.logits16")
    }

    /// Every hook point TransformerLens caches (with `use_attn_result`), unprocessed and processed.
    @Test(arguments: [("tl", false), ("tlp", true)])
    func cacheMatchesTransformerLens(prefix: String, processed: Bool) throws {
        var model = try Fixtures.model()
        if processed { model = try model.processed() }
        let expected = try Fixtures.expected()
        let (logits, cache) = try model.runWithCache(.tokens([try Fixtures.meta().ids8]), select: .all,
                                                     options: ForwardOptions(useAttnResult: true))
        let tlNames = Set(expected.names.filter { $0.hasPrefix(prefix + ".") && $0.contains("hook_") }
            .map { String($0.dropFirst(prefix.count + 1)) }
            .map { $0.hasSuffix(".head") || $0.hasSuffix(".lse") ? String($0.split(separator: ".").dropLast().joined(separator: ".")) : $0 })
        let ours = Set(cache.names.map(\.description))
        #expect(ours == tlNames, "hook points differ: only Loupe \(ours.subtracting(tlNames).sorted()), only TL \(tlNames.subtracting(ours).sorted())")
        for name in cache.names where name != .unembedOut {
            let want = try expected.tensor("\(prefix).\(name)")
            let got = try #require(cache[name])
            #expect(got.shape == want.shape, "\(name): shape \(got.shape), TransformerLens \(want.shape)")
            let diff = got.maxAbsDifference(want)
            #expect(diff <= 1e-4, "\(name): max difference \(diff)")
        }
        try expectLogits(try #require(cache[.unembedOut]), expected, "\(prefix).unembed.hook_out")
        try expectLogits(logits, expected, "\(prefix).logits")
    }

    @Test func processingKeepsLogits() throws {
        let model = try Fixtures.model()
        let ids = try Fixtures.meta().ids16
        let plain = try model.run([ids]).logSoftmax()
        let processed = try model.processed().run([ids]).logSoftmax()
        #expect(plain.maxAbsDifference(processed) < 1e-4)
        // Processing changes the weights in the documented ways.
        let p = try model.processed()
        #expect(p.config.normalization == .layerNormPre)
        #expect(p.weights.blocks[0].ln1W == nil)
        #expect(p.weights.blocks[0].bV.scalars.allSatisfy { $0 == 0 })
        let rowMean = p.weights.wE.scalars[0..<32].reduce(0, +) / 32
        #expect(abs(rowMean) < 1e-6, "W_E rows are centred")
    }

    @Test func replacingResidPreMatchesTransformerLens() throws {
        let model = try Fixtures.model()
        var hooks = Hooks()
        hooks.add(.residPre(1)) { act, _ in
            for j in 0..<32 { act.scalars[3 * 32 + j] *= 2 }   // [batch=1, pos, d_model]: position 3
        }
        let logits = try model.run(.tokens([try Fixtures.meta().ids8]), hooks: hooks)
        try expectLogits(logits, try Fixtures.expected(), "tl.patched_logits")
    }

    @Test func stopAndStartAtLayer() throws {
        let model = try Fixtures.model()
        let ids = try Fixtures.meta().ids8
        let expected = try Fixtures.expected()
        let resid = try model.run([ids], options: ForwardOptions(stopAtLayer: 1))
        let want = try expected.tensor("tl.stop_at_1")
        #expect(resid.shape == want.shape)
        #expect(resid.maxAbsDifference(want) <= 1e-4)
        let logits = try model.run(.residual(want), hooks: Hooks(), options: ForwardOptions(startAtLayer: 1))
        try expectLogits(logits, expected, "tl.logits")
    }

    @Test func leftPaddedBatchMatchesTransformerLens() throws {
        let model = try Fixtures.model()
        let meta = try Fixtures.meta()
        let expected = try Fixtures.expected()
        let logits = try model.run(meta.padded_tokens, options: ForwardOptions(attentionMask: meta.padded_mask))
        #expect(logits.shape == [2, 8, 50257])
        // Real positions only: TransformerLens's logits at padded query positions are not meaningful.
        let v = 50257
        let short = try expected.tensor("tl.unpadded_short_logits.head")
        var worst: Float = 0
        for t in 0..<5 { for j in 0..<1024 { worst = max(worst, abs(logits.scalars[(3 + t) * v + j] - short.scalars[t * 1024 + j])) } }
        #expect(worst <= 1e-4, "padded row vs the unpadded sequence: \(worst)")
        let full = try expected.tensor("tl.padded_logits.head")
        var worstFull: Float = 0
        for r in 0..<2 {
            for t in (r == 0 ? 3 : 0)..<8 {
                for j in 0..<1024 { worstFull = max(worstFull, abs(logits.scalars[(r * 8 + t) * v + j] - full.scalars[(r * 8 + t) * 1024 + j])) }
            }
        }
        #expect(worstFull <= 1e-4, "padded batch vs TransformerLens: \(worstFull)")
    }

    @Test func kvCacheMatchesFullRunAndHuggingFaceGreedy() throws {
        let model = try Fixtures.model()
        let meta = try Fixtures.meta()
        let generated = try model.generate(prompt: meta.ids8, maxTokens: 12)
        #expect(generated == meta.greedy12)
        // Token-by-token with the cache gives the same logits as one full run.
        var cache = KVCache(config: model.config)
        let full = try model.run([meta.ids16])
        let first = try model.run([Array(meta.ids16[0..<10])], kvCache: &cache)
        var worst = first.maxAbsDifference(try Tensor(shape: [1, 10, 50257], scalars: Array(full.scalars[0..<(10 * 50257)])))
        for t in 10..<16 {
            let step = try model.run([[meta.ids16[t]]], kvCache: &cache)
            let want = Array(full.scalars[(t * 50257)..<((t + 1) * 50257)])
            worst = max(worst, step.maxAbsDifference(try Tensor(shape: [1, 1, 50257], scalars: want)))
        }
        #expect(cache.length == 16)
        #expect(worst < 1e-4, "KV-cache logits vs full run: \(worst)")
    }
}

/// The causal query blocking must give the same numbers for any block size, on both attention paths
/// (fused per head, and with the pattern materialized for hooks).
@Suite struct AttentionBlockingTests {
    @Test func smallBlocksMatchReference() throws {
        var small = ForwardOptions()
        small.queryBlock = 3
        let model = try Fixtures.model()
        let meta = try Fixtures.meta()
        let expected = try Fixtures.expected()
        try expectLogits(try model.run([meta.ids16], options: small).reshaped([16, 50257]), expected, "np.logits16")
        let (logits, cache) = try model.runWithCache(.tokens([meta.ids8]), select: .names([.pattern(1), .z(1)]), options: small)
        try expectLogits(logits, expected, "tl.logits")
        #expect(try #require(cache[.pattern(1)]).maxAbsDifference(try expected.tensor("tl.blocks.1.attn.hook_pattern")) <= 1e-5)
        #expect(try #require(cache[.z(1)]).maxAbsDifference(try expected.tensor("tl.blocks.1.attn.hook_z")) <= 1e-5)
        var smallPadded = small
        smallPadded.attentionMask = meta.padded_mask
        let padded = try model.run(meta.padded_tokens, options: smallPadded)
        let full = try expected.tensor("tl.padded_logits.head")
        var worst: Float = 0
        for t in 0..<8 { for j in 0..<1024 { worst = max(worst, abs(padded.scalars[(8 + t) * 50257 + j] - full.scalars[(8 + t) * 1024 + j])) } }
        #expect(worst <= 1e-4)
    }
}
