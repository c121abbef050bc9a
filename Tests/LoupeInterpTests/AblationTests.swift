// Ablation against independent computations: zero- and mean-ablating a head's hook_z equal editing the
// weights (the head's rows of W_O removed, its mean output folded into b_O); resampling between two prompts
// equals activation patching of that head (checked against TransformerLens elsewhere); a later position's
// ablation leaves earlier positions alone.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct AblationTests {
    static let prompts: [[Int]] = [[11, 502, 7, 88, 1403, 6, 90], [3, 77, 5010, 41, 8, 600, 12], [45, 9, 300, 2, 71, 18, 5]]

    func examples(_ m: HookedTransformer) -> [AblationExample] {
        Self.prompts.map { AblationExample(tokens: $0, metric: .logitDifference(answer: 262, wrong: 290)) }
    }

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    /// The model with head (l, h)'s output replaced by `mean` (nil: zero), by editing W_O and b_O.
    func withHeadOutput(_ m: HookedTransformer, layer l: Int, head h: Int, mean: [Float]?) throws -> HookedTransformer {
        var w = m.weights
        let (dh, d) = (m.config.dHead, m.config.dModel)
        var wO = w.blocks[l].wO.scalars, bO = w.blocks[l].bO.scalars
        for i in 0..<dh {
            for j in 0..<d {
                if let mean { bO[j] += mean[i] * wO[(h * dh + i) * d + j] }
                wO[(h * dh + i) * d + j] = 0
            }
        }
        w.blocks[l].wO = Tensor(unchecked: w.blocks[l].wO.shape, wO)
        w.blocks[l].bO = Tensor(unchecked: [d], bO)
        return try HookedTransformer(config: m.config, weights: w)
    }

    func metrics(_ m: HookedTransformer) throws -> [Float] {
        try Self.prompts.map { p in
            let logits = try m.run([p]).scalars.suffix(m.config.dVocab)
            let row = Array(logits)
            return row[262] - row[290]
        }
    }

    @Test func zeroAndMeanAblationEqualWeightEdits() throws {
        let m = try InterpFixtures.model()
        let (l, h) = (1, 2)
        let zero = try m.ablate(AblationSite(hook: .z(l), head: h), kind: .zero, examples: examples(m))
        #expect(maxDifference(zero.ablated, try metrics(try withHeadOutput(m, layer: l, head: h, mean: nil))) < 1e-4)
        #expect(maxDifference(zero.clean, try metrics(m)) < 1e-5)
        #expect(maxDifference(zero.ablated, zero.clean) > 1e-3, "the ablation changes something")

        // The head's mean z over every prompt and position, computed here.
        let dh = m.config.dHead
        var sum = [Double](repeating: 0, count: dh), n = 0
        for p in Self.prompts {
            let z = try #require(try m.runWithCache(.tokens([p]), select: .names([.z(l)])).cache[.z(l)])
            for pos in 0..<p.count {
                for i in 0..<dh { sum[i] += Double(z.scalars[(pos * m.config.nHeads + h) * dh + i]) }
                n += 1
            }
        }
        let mean = sum.map { Float($0 / Double(n)) }
        let meanAblated = try m.ablate(AblationSite(hook: .z(l), head: h), kind: .mean, examples: examples(m))
        #expect(maxDifference(meanAblated.ablated, try metrics(try withHeadOutput(m, layer: l, head: h, mean: mean))) < 1e-4)
    }

    @Test func resampleBetweenTwoPromptsIsActivationPatching() throws {
        let m = try InterpFixtures.model()
        let two = Array(examples(m).prefix(2))
        let r = try m.ablate(AblationSite(hook: .z(0), head: 3), kind: .resample, examples: two, seed: 4)
        // With two prompts each takes the other's activation.
        for (i, j) in [(0, 1), (1, 0)] {
            let patch = try m.activationPatch(clean: Self.prompts[j], corrupted: Self.prompts[i], target: .headOutAllPos,
                                              metric: .logitDifference(answer: 262, wrong: 290))
            let expected = patch.values.scalars[0 * m.config.nHeads + 3]
            #expect(abs(r.ablated[i] - expected) < 1e-4, "prompt \(i): \(r.ablated[i]) vs patching \(expected)")
        }
    }

    @Test func aPositionsAblationLeavesEarlierPositionsAlone() throws {
        let m = try InterpFixtures.model()
        let p = Self.prompts[0]
        let site = AblationSite(hook: .residMid(0), position: -3)
        // Through the library, then the same zeroing by hand, comparing every position's logits.
        let r = try m.ablate(site, kind: .zero, examples: [AblationExample(tokens: p, metric: .probability(262))])
        let full = try m.run([p])
        var hooks = Hooks()
        hooks.add(.residMid(0)) { a, _ in for j in 0..<m.config.dModel { a.scalars[(p.count - 3) * m.config.dModel + j] = 0 } }
        let edited = try m.run(.tokens([p]), hooks: hooks)
        let v = m.config.dVocab
        #expect(maxDifference(Array(full.scalars[0..<((p.count - 3) * v)]), Array(edited.scalars[0..<((p.count - 3) * v)])) == 0)
        let row = Array(edited.scalars.suffix(v))
        let mx = row.max() ?? 0
        let prob = Float(exp(Double(row[262] - mx)) / row.reduce(0.0) { $0 + exp(Double($1 - mx)) })
        #expect(abs(r.ablated[0] - prob) < 1e-6)
    }

    @Test func badSitesAreErrors() throws {
        let m = try InterpFixtures.model()
        let ex = examples(m)
        #expect(throws: InterpError.self) { try m.ablate(AblationSite(hook: .z(0), head: 9), kind: .zero, examples: ex) }
        #expect(throws: InterpError.self) { try m.ablate(AblationSite(hook: .residPre(0), position: 40), kind: .zero, examples: ex) }
        #expect(throws: InterpError.self) { try m.ablate(AblationSite(hook: .residPre(0), head: 1), kind: .zero, examples: ex) }
        #expect(throws: InterpError.self) { try m.ablate(AblationSite(hook: .pattern(0)), kind: .mean, examples: ex) }
        #expect(throws: InterpError.self) { try m.ablate(AblationSite(hook: .z(0)), kind: .resample, examples: Array(ex.prefix(1))) }
        let ragged = [ex[0], AblationExample(tokens: [1, 2, 3], metric: ex[0].metric)]
        #expect(throws: InterpError.self) { try m.ablate(AblationSite(hook: .z(0)), kind: .resample, examples: ragged) }
        #expect(throws: InterpError.self) { try m.ablate(AblationSite(hook: .z(0)), kind: .zero, examples: []) }
        #expect(throws: (any Error).self) { try m.ablate(AblationSite(hook: .z(7)), kind: .zero, examples: ex) }
    }
}
