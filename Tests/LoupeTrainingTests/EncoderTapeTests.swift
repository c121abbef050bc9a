// The BERT layout on the autograd tape: every hook point equal to the fast forward pass, and gradients equal
// to finite differences of the fast forward pass with the weights moved (the random BertForMaskedLM fixture);
// and the same for GPT-2's layout with attention both ways.

import Foundation
import LoupeModels
import LoupeTensor
import LoupeTestSupport
import Testing

@Suite struct EncoderTapeTests {
    static func model() throws -> HookedTransformer {
        try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("bert").path).model
    }

    @Test func everyHookPointAgrees() throws {
        try ForwardEquivalenceTests.compareEveryHook(try Self.model(), label: "bert")
    }

    /// GPT-2's layout with attention both ways (what `loupe train mlm --layout pre-ln` trains), W_Q, W_K and W_V
    /// scaled by 6: the random fixture's attention is otherwise nearly uniform and its gradients tiny.
    static func bidirectionalGPT2() throws -> HookedTransformer {
        let gpt2 = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("gpt2-tiny").path).model
        return try modelVariant(gpt2, bidirectional: true, scalingQKV: 6)
    }

    @Test func preLNBidirectionalHooksAgree() throws {
        let model = try Self.bidirectionalGPT2()
        try ForwardEquivalenceTests.compareEveryHook(model, label: "bidirectional gpt2-tiny")
        // The pattern is not a triangle: the first position attends to later ones.
        let (_, cache) = try model.runWithCache(.tokens([[5, 42, 79, 116]]), select: .names([.pattern(0)]))
        let pattern = try #require(cache[.pattern(0)])
        #expect(pattern.scalars[1] > 0.01 && pattern.scalars[0] < 0.99, "query 0 attends only to itself: \(Array(pattern.scalars[0..<4]))")
    }

    @Test func preLNBidirectionalGradientsMatchFiniteDifferences() throws {
        try Self.checkGradients(try Self.bidirectionalGPT2(), names: ["blocks.0.attn.W_K", "blocks.0.attn.W_Q", "blocks.1.attn.W_V",
                                                                        "blocks.0.ln1.w", "pos_embed.W_pos", "embed.W_E"])
    }

    /// d(Σ logits ⊙ R)/dθ for weights on every part of the encoder path (embeddings and their LayerNorm, query and
    /// key projections, ln1, the MLP, the MLM head) against central differences of the fast forward pass.
    @Test func gradientsMatchFiniteDifferences() throws {
        try Self.checkGradients(try Self.model(), names: ["embed.ln.w", "blocks.0.attn.W_K", "blocks.0.attn.W_Q", "blocks.1.ln1.b",
                                                          "blocks.0.mlp.W_in", "mlm_head.W", "embed.W_E", "pos_embed.W_pos"])
    }

    /// The tape's gradient of the entry with the largest gradient of each named weight against central
    /// differences of the fast forward pass.
    static func checkGradients(_ model: HookedTransformer, names: [String]) throws {
        let tokens = [[5, 42, 79, 116, 153, 190]]
        let v = model.config.dVocab
        var rng = SeededGenerator(seed: 7)
        // Weights of about 1/√(min(d_vocab, 256)): gradients well above finite-difference noise for any vocabulary.
        let r = (0..<(tokens[0].count * v)).map { _ in Float(rng.nextInt(2001) - 1000) / 1000 / Float(min(v, 256)).squareRoot() }
        let weight = Tensor(unchecked: [1, tokens[0].count, v], r)
        let params = model.parameterVariables(trainable: true)
        let run = try HookedTransformer.differentiableForward(config: model.config, parameters: params, tokens: tokens)
        let loss = try (run.logits * Variable(weight)).sum()
        try loss.backward()
        func lossOf(_ m: HookedTransformer) throws -> Double {
            zip(try m.run(tokens).scalars, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        for name in names {
            // The entry with the largest gradient (so that the comparison is not of two near-zeros).
            let grad = try #require(params[name]).grad.scalars
            let index = try #require(grad.indices.max { abs(grad[$0]) < abs(grad[$1]) })
            let analytic = grad[index]
            let eps: Float = 1e-2
            func moved(_ delta: Float) throws -> HookedTransformer {
                var named = Dictionary(uniqueKeysWithValues: model.weights.namedTensors.map { ($0.name, $0.tensor) })
                var t = try #require(named[name])
                t.scalars[index] += delta
                named[name] = t
                return try HookedTransformer(config: model.config, weights: TransformerWeights(config: model.config, source: "test") { named[$0] })
            }
            let numeric = (try lossOf(moved(eps)) - lossOf(moved(-eps))) / (2 * Double(eps))
            #expect(abs(Double(analytic) - numeric) <= 2e-3 + 0.02 * abs(numeric), "\(name)[\(index)]: tape \(analytic), finite differences \(numeric)")
            #expect(abs(numeric) > 1e-2, "\(name)[\(index)]: a gradient this small tests nothing (\(numeric))")
        }
    }
}
