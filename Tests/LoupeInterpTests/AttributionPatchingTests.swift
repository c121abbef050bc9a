import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite("Attribution patching: the gradient estimate equals the slope of real patching, and tracks activation patching")
struct AttributionPatchingTests {
    /// Each cell's estimate minus the corrupted metric must equal the derivative of the metric along the
    /// straight line from the corrupted activation to the clean one, measured with inference-time hooks
    /// (central finite differences): an independent path through the model.
    @Test func estimatesAreDirectionalDerivatives() throws {
        let model = try InterpFixtures.model()
        let m = try InterpFixtures.meta()
        let metric = PatchMetric.logitDifference(answer: m.answer, wrong: m.wrong)
        let results = try model.attributionPatch(clean: m.clean, corrupted: m.corrupt, targets: [.residPre, .headOutAllPos], metric: metric)
        let T = m.clean.count, d = model.config.dModel, dh = model.config.dHead, h = model.config.nHeads, v = model.config.dVocab
        let (_, cleanCache) = try model.runWithCache(.tokens([m.clean]), select: .names([.residPre(1), .z(0)]))
        let (_, corruptCache) = try model.runWithCache(.tokens([m.corrupt]), select: .names([.residPre(1), .z(0)]))
        func metricWith(_ hook: HookName, _ eps: Float, cells: [Int]) throws -> Float {
            let c = cleanCache[hook]!, x = corruptCache[hook]!
            let f: HookFunction = { act, _ in for i in cells { act.scalars[i] = x.scalars[i] + eps * (c.scalars[i] - x.scalars[i]) } }
            let logits = try model.run(.tokens([m.corrupt]), hooks: Hooks([(hook, f)]))
            return metric.evaluate(logits.scalars[((T - 1) * v)..<(T * v)])
        }
        let eps: Float = 0.05
        // resid_pre of layer 1 at three positions.
        for p in [2, 7, T - 1] {
            let cells = Array((p * d)..<((p + 1) * d))
            let up = try metricWith(.residPre(1), eps, cells: cells), down = try metricWith(.residPre(1), -eps, cells: cells)
            let slope = (up - down) / (2 * eps)
            let estimate = results[0].values.scalars[1 * T + p] - results[0].corrupted
            let tolerance: Float = 1e-3 + 1e-2 * abs(slope)
            let gap: Float = abs(slope - estimate)
            #expect(gap < tolerance, "resid_pre 1, pos \(p): \(estimate) vs slope \(slope)")
        }
        // z of layer 0, each head over all positions.
        for head in 0..<h {
            var cells: [Int] = []
            for p in 0..<T { cells += Array(((p * h + head) * dh)..<((p * h + head + 1) * dh)) }
            let up = try metricWith(.z(0), eps, cells: cells), down = try metricWith(.z(0), -eps, cells: cells)
            let slope = (up - down) / (2 * eps)
            let estimate = results[1].values.scalars[head] - results[1].corrupted
            let tolerance: Float = 1e-3 + 1e-2 * abs(slope)
            let gap: Float = abs(slope - estimate)
            #expect(gap < tolerance, "z 0.\(head): \(estimate) vs slope \(slope)")
        }
        #expect(results[0].values.shape == [model.config.nLayers, T])
        #expect(results[1].values.shape == [model.config.nLayers, h])
    }

    @Test func tracksActivationPatchingAndRejectsBadInput() throws {
        let model = try InterpFixtures.model()
        let m = try InterpFixtures.meta()
        let metric = PatchMetric.logitDifference(answer: m.answer, wrong: m.wrong)
        let estimate = try model.attributionPatch(clean: m.clean, corrupted: m.corrupt, targets: [.attnOut], metric: metric)[0]
        let actual = try model.activationPatch(clean: m.clean, corrupted: m.corrupt, target: .attnOut, metric: metric)
        #expect(estimate.clean == actual.clean)
        let corruptedGap: Float = abs(estimate.corrupted - actual.corrupted)
        #expect(corruptedGap < 1e-4)
        // A random tiny model is close to linear in one activation: the estimate must track the real effect.
        let agreement = pearsonCorrelation(estimate.values.scalars, actual.values.scalars)
        #expect(agreement > 0.9, "Pearson r \(agreement)")
        #expect(throws: InterpError.self) {
            try model.attributionPatch(clean: m.clean, corrupted: Array(m.corrupt.dropLast()), targets: [.residPre], metric: metric)
        }
        #expect(throws: (any Error).self) {
            try model.attributionPatch(clean: m.clean, corrupted: m.corrupt, targets: [.residPre], metric: .custom { $0[0] })
        }
        let r = pearsonCorrelation([1, 2, 3], [2, 4, 6.5])
        #expect(abs(r - 0.9986) < 1e-3)
    }
}
