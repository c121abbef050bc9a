import Foundation
import LoupeModels
import LoupeTensor
import Testing

/// The fast forward (`runWithCache`, workspace buffers, BLAS) and the tape forward (`differentiableRun`,
/// built from `Variable` ops) are two implementations of one model: they must agree at every hook point.
@Suite struct ForwardEquivalenceTests {
    static let fixtures = ["gpt2-tiny", "llama-tiny"]

    /// Every architecture family (tests/Fixtures/zoo): sliding windows, QK-norm, post-norms, parallel
    /// blocks, partial and scaled rotary.
    static let zoo = ["zoo/llama3", "zoo/mistral", "zoo/qwen2", "zoo/qwen3", "zoo/gemma3", "zoo/pythia",
                      "zoo/neox-sequential", "zoo/phi3"]

    @Test(arguments: fixtures + zoo, [false, true])
    func everyHookPointAgrees(fixture: String, processed: Bool) throws {
        var model = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent(fixture).path).model
        if processed { model = try model.processed() }
        try Self.compareEveryHook(model, label: fixture)
    }

    /// The fast forward and the tape forward at every hook point (hook_result is not on the tape; every other
    /// hook point is) and at the logits.
    static func compareEveryHook(_ model: HookedTransformer, label: String) throws {
        let tokens = [[3, 17, 42, 9, 17, 42, 5], [8, 1, 2, 3, 4, 5, 6]]
        let names = model.hookNames()
        #expect(names.count > 20)
        let (logits, cache) = try model.runWithCache(.tokens(tokens))
        let tape = try model.differentiableRun(tokens, capture: Set(names))
        #expect(tape.logits.value.maxAbsDifference(logits) < 1e-4)
        for name in names {
            let fast = try #require(cache[name], "\(name) not cached")
            let slow = try #require(tape.activations[name], "\(name) not captured on the tape").value
            #expect(fast.shape == slow.shape, "\(name): \(fast.shape) vs \(slow.shape)")
            let scale = max(1, fast.scalars.lazy.map { abs($0) }.filter(\.isFinite).max() ?? 1)
            let diff = fast.maxAbsDifference(slow)
            #expect(diff <= 2e-5 * scale, "\(label) \(name): max difference \(diff) (scale \(scale))")
        }
    }

    /// A hook written once runs the same way on both forwards (one convention: the activation, in place).
    @Test func oneHookConventionForBothForwards() throws {
        let model = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("gpt2-tiny").path).model
        let tokens = [[3, 17, 42, 9, 17, 42, 5]]
        let fast = try model.run(.tokens(tokens), hooks: [.z(1): { z, _ in z[.all, .all, 2] = 0 }])
        let tape = try model.differentiableRun(tokens, hooks: [.z(1): { z, _ in
            var t = z.value
            t[.all, .all, 2] = 0
            z = Variable(t)
        }])
        #expect(tape.logits.value.maxAbsDifference(fast) < 1e-4)
        #expect(fast.maxAbsDifference(try model.run(tokens)) > 1e-3, "the ablation changed nothing")
    }
}
