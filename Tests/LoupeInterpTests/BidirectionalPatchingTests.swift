// Activation patching of bidirectional models, scored at an inner position (a masked-LM's [MASK]): every cell
// equals a run of the corrupted prompt with that one activation replaced by a hook, and positions after the
// scored one matter (they are left out in a causal model).

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTestSupport
import Testing

@Suite struct BidirectionalPatchingTests {
    static func model(_ kind: String) throws -> HookedTransformer {
        if kind == "bert" { return try ModelLoader.load(path: InterpFixtures.directory.appendingPathComponent("bert").path).model }
        return try modelVariant(try InterpFixtures.model(), bidirectional: true, scalingQKV: 6)
    }

    @Test(arguments: ["bert", "gpt2"]) func patchingEqualsHookedRuns(kind: String) throws {
        let model = try Self.model(kind)
        let clean = [2, 17, 33, 4, 51, 60, 3], scored = 3
        var corrupted = clean
        corrupted[1] = 90; corrupted[5] = 91
        let metric = PatchMetric.logitDifference(answer: 10, wrong: 20)
        let v = model.config.dVocab
        func score(_ logits: Tensor) -> Float { metric.evaluate(logits.scalars[(scored * v)..<((scored + 1) * v)]) }
        let nL = model.config.nLayers, h = model.config.nHeads, T = clean.count
        let (cleanLogits, cleanCache) = try model.runWithCache(.tokens([clean]))
        let corruptedScore = score(try model.run([corrupted]))

        let resid = try model.activationPatch(clean: clean, corrupted: corrupted, target: .residPre, metric: metric, position: scored)
        #expect(resid.values.shape == [nL, T])
        #expect(abs(resid.clean - score(cleanLogits)) < 1e-5 && abs(resid.corrupted - corruptedScore) < 1e-5)
        for l in 0..<nL {
            for p in 0..<T {
                let source = try #require(cleanCache[.residPre(l)])[0, p]
                var hooks = Hooks()
                hooks.add(.residPre(l)) { act, _ in act[0, p] = source }
                let expected = score(try model.run(.tokens([corrupted]), hooks: hooks))
                #expect(abs(resid.values.scalars[l * T + p] - expected) < 1e-4, "resid_pre L\(l) pos \(p)")
            }
        }
        // Patching the later corrupted position (5) in layer 0 restores part of the clean prediction at 3.
        #expect(abs(resid.values.scalars[5] - corruptedScore) > 1e-4, "position 5 does not reach position 3")   // float error ~1e-6

        let z = try model.activationPatch(clean: clean, corrupted: corrupted, target: .headOutAllPos, metric: metric, position: scored - T)
        #expect(z.values.shape == [nL, h])
        for l in 0..<nL {
            for head in 0..<h {
                let source = try #require(cleanCache[.z(l)])[0, .all, head]
                var hooks = Hooks()
                hooks.add(.z(l)) { act, _ in act[0, .all, head] = source }
                let expected = score(try model.run(.tokens([corrupted]), hooks: hooks))
                #expect(abs(z.values.scalars[l * h + head] - expected) < 1e-4, "z L\(l)H\(head)")
            }
        }
        // Over a dataset of one pair scored at the same position: the same result.
        let pairs = try model.activationPatch(pairs: [PatchPair(clean: clean, corrupted: corrupted, metric: metric, position: scored)],
                                              target: .residPre)
        #expect(zip(pairs.values.scalars, resid.values.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(throws: InterpError.self) { try model.activationPatch(clean: clean, corrupted: corrupted, target: .residPre, metric: metric, position: T) }
        #expect(throws: InterpError.self) {
            try model.pathPatch(clean: clean, corrupted: corrupted, receiver: .logits, metric: metric)
        }
    }

    /// A causal model scored at an inner position: the prompts are cut after it.
    @Test func causalModelsCutAfterTheScoredPosition() throws {
        let model = try InterpFixtures.model()
        let clean = [2, 17, 33, 4, 51, 60, 3], corrupted = [2, 90, 33, 4, 51, 91, 3]
        let metric = PatchMetric.loss(10)
        let inner = try model.activationPatch(clean: clean, corrupted: corrupted, target: .residPre, metric: metric, position: 3)
        let cut = try model.activationPatch(clean: Array(clean[...3]), corrupted: Array(corrupted[...3]), target: .residPre, metric: metric)
        #expect(inner.values.shape == [model.config.nLayers, 4] && inner.values.scalars == cut.values.scalars)
    }
}
