import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct ActivationPatchingTests {
    /// Every patching target against TransformerLens's `get_act_patch_*` on the same weights and prompts.
    @Test(arguments: PatchTarget.allCases)
    func matchesTransformerLens(target: PatchTarget) throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let expected = try InterpFixtures.expected()
        let result = try model.activationPatch(clean: meta.clean, corrupted: meta.corrupt, target: target,
                                               metric: .logitDifference(answer: meta.answer, wrong: meta.wrong))
        let want = try expected.tensor("patch.\(target.rawValue)")
        #expect(result.values.shape == want.shape, "\(target): shape \(result.values.shape) vs \(want.shape)")
        let diff = result.values.maxAbsDifference(want)
        #expect(diff <= 1e-3, "\(target): max difference \(diff)")
        #expect(abs(result.clean - (try expected.tensor("patch.clean_metric").scalars[0])) < 1e-3)
        #expect(abs(result.corrupted - (try expected.tensor("patch.corrupt_metric").scalars[0])) < 1e-3)
    }

    /// The batched sweep equals patching one cell at a time with plain hooks (the definition).
    @Test func equalsNaivePatching() throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let metric = PatchMetric.logitDifference(answer: meta.answer, wrong: meta.wrong)
        let fast = try model.activationPatch(clean: meta.clean, corrupted: meta.corrupt, target: .attnOut, metric: metric)
        let (_, clean) = try model.runWithCache(.tokens([meta.clean]), select: .names([.attnOut(1)]))
        let source = try #require(clean[.attnOut(1)])
        for p in [0, 5, 11] {
            var hooks = Hooks()
            hooks.add(.attnOut(1)) { act, _ in
                for j in 0..<32 { act.scalars[p * 32 + j] = source.scalars[p * 32 + j] }
            }
            let logits = try model.run(.tokens([meta.corrupt]), hooks: hooks)
            let v = 50257
            let naive = metric.evaluate(logits.scalars[(11 * v)..<(12 * v)])
            #expect(abs(naive - (try fast.values.item([1, p]))) < 1e-4)
        }
        #expect(fast.normalized.shape == [2, 12])
    }

    /// A sweep asked to stop throws `CancellationError` and reports no batch after the request.
    @Test func cancellation() throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let batches = LockedCounter()
        #expect(throws: CancellationError.self) {
            try model.activationPatch(clean: meta.clean, corrupted: meta.corrupt, target: .residPre,
                                      metric: .probability(meta.answer), progress: { _, _ in batches.increment() }, isCancelled: { true })
        }
        #expect(batches.value == 0)
    }

    /// Every short hook name maps to a target, and back to the hook point it patches.
    @Test func shortNames() throws {
        let expected: [String: (PatchTarget, PatchTarget)] = [
            "resid_pre": (.residPre, .residPre), "resid_mid": (.residMid, .residMid), "resid_post": (.residPost, .residPost),
            "attn_out": (.attnOut, .attnOut), "mlp_out": (.mlpOut, .mlpOut), "z": (.headOutAllPos, .headOutByPos),
            "q": (.headQAllPos, .headQByPos), "k": (.headKAllPos, .headKByPos), "v": (.headVAllPos, .headVByPos),
            "pattern": (.headPatternAllPos, .headPatternByPos)]
        #expect(Set(PatchTarget.shortNames) == Set(expected.keys))
        for (name, (all, byPos)) in expected {
            #expect(PatchTarget(shortName: name) == all)
            #expect(PatchTarget(shortName: name, byPosition: true) == byPos)
        }
        #expect(PatchTarget(shortName: "blocks.0.hook_resid_pre") == nil)
    }

    @Test func badRequests() throws {
        let model = try InterpFixtures.model()
        #expect(throws: InterpError.lengthMismatch(clean: 3, corrupted: 2)) {
            try model.activationPatch(clean: [1, 2, 3], corrupted: [1, 2], target: .residPre, metric: .probability(1))
        }
        #expect(throws: InterpError.tokenOutOfRange(token: 60000, dVocab: 50257)) {
            try model.activationPatch(clean: [1, 2], corrupted: [1, 3], target: .residPre, metric: .probability(60000))
        }
    }
}

/// A count that worker threads may increment.
final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
