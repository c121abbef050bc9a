import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct PathPatchingTests {
    /// A sender in the last layer has only the direct path to the logits: path patching equals activation
    /// patching of its output (clean input, corrupted output), which TransformerLens's functions check.
    @Test func lastLayerSendersEqualActivationPatching() throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let metric = PatchMetric.logitDifference(answer: meta.answer, wrong: meta.wrong)
        let path = try model.pathPatch(clean: meta.clean, corrupted: meta.corrupt, receiver: .logits, metric: metric)
        let activation = try model.activationPatch(clean: meta.corrupt, corrupted: meta.clean, target: .headOutAllPos, metric: metric)
        for head in 0..<4 {
            #expect(abs(try path.values.item([1, head]) - activation.values.item([1, head])) < 1e-4)
        }
    }

    /// A sender in layer 0 reaches the logits directly and through the MLPs, but not through the frozen
    /// layer-1 heads: the same run built by hand.
    @Test func firstLayerSendersFreezeLaterHeads() throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let metric = PatchMetric.logitDifference(answer: meta.answer, wrong: meta.wrong)
        let path = try model.pathPatch(clean: meta.clean, corrupted: meta.corrupt, receiver: .logits, metric: metric)
        let (_, clean) = try model.runWithCache(.tokens([meta.clean]), select: .names([.z(0), .z(1)]))
        let (_, corrupt) = try model.runWithCache(.tokens([meta.corrupt]), select: .names([.z(0)]))
        let sender = 2
        var hooks = Hooks()
        hooks.add(.z(0)) { z, _ in
            z = clean[.z(0)]!
            for p in 0..<12 { for j in 0..<8 { z.scalars[(p * 4 + sender) * 8 + j] = corrupt[.z(0)]!.scalars[(p * 4 + sender) * 8 + j] } }
        }
        hooks.add(.z(1), Hooks.replace(with: clean[.z(1)]!))
        let logits = try model.run(.tokens([meta.clean]), hooks: hooks)
        let v = 50257
        let want = metric.evaluate(logits.scalars[(11 * v)..<(12 * v)])
        #expect(abs(try path.values.item([0, sender]) - want) < 1e-5)
    }

    /// To receiver heads: senders at or after the receiver layer have no path (the clean metric), and a
    /// sender's effect on a receiver's values needs the receiver to read it.
    @Test func receiverHeads() throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let metric = PatchMetric.logitDifference(answer: meta.answer, wrong: meta.wrong)
        let result = try model.pathPatch(clean: meta.clean, corrupted: meta.corrupt,
                                         receiver: .heads(layer: 1, heads: [0, 3], input: .v), metric: metric)
        for head in 0..<4 { #expect(try result.values.item([1, head]) == result.clean) }
        #expect((0..<4).contains { (try? result.values.item([0, $0])) != result.clean })
        #expect(throws: InterpError.self) {
            try model.pathPatch(clean: meta.clean, corrupted: meta.corrupt, receiver: .heads(layer: 2, heads: [0], input: .q), metric: metric)
        }
    }
}
