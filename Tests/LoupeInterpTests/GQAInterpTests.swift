// The analyses on a Llama-shaped model (RMSNorm, rotary, grouped-query attention: 4 query heads sharing
// 2 key-value heads) against TransformerLens's own functions on the same processed weights
// (scripts/make_gqa_interp_fixtures.py). Under GQA, TransformerLens patches hook_k and hook_v per
// key-value head (2), everything else per query head (4); composition and copying scores are per query
// head (W_K, W_V expanded).

import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

enum GQAFixtures {
    static func model() throws -> HookedTransformer {
        try ModelLoader.load(path: InterpFixtures.directory.appendingPathComponent("llama-tiny").path).model.processed()
    }
    static func expected() throws -> SafetensorsFile {
        try SafetensorsFile(path: InterpFixtures.directory.appendingPathComponent("llama-tiny-interp.safetensors").path)
    }
    static func meta() throws -> InterpFixtures.Meta {
        try JSONDecoder().decode(InterpFixtures.Meta.self,
                                 from: Data(contentsOf: InterpFixtures.directory.appendingPathComponent("llama-tiny-interp.json")))
    }
}

@Suite struct GQAInterpTests {
    @Test(arguments: PatchTarget.allCases)
    func activationPatchingMatchesTransformerLens(target: PatchTarget) throws {
        let (model, meta, expected) = (try GQAFixtures.model(), try GQAFixtures.meta(), try GQAFixtures.expected())
        let result = try model.activationPatch(clean: meta.clean, corrupted: meta.corrupt, target: target,
                                               metric: .logitDifference(answer: meta.answer, wrong: meta.wrong))
        let want = try expected.tensor("patch.\(target.rawValue)")
        #expect(result.values.shape == want.shape, "\(target): shape \(result.values.shape) vs \(want.shape)")
        #expect(result.values.maxAbsDifference(want) <= 1e-3, "\(target): max difference \(result.values.maxAbsDifference(want))")
        #expect(abs(result.clean - (try expected.tensor("patch.clean_metric").scalars[0])) < 1e-3)
        #expect(abs(result.corrupted - (try expected.tensor("patch.corrupt_metric").scalars[0])) < 1e-3)
    }

    @Test(arguments: HeadPattern.allCases)
    func headDetectionMatchesTransformerLens(kind: HeadPattern) throws {
        let (model, meta, expected) = (try GQAFixtures.model(), try GQAFixtures.meta(), try GQAFixtures.expected())
        try expectDetectHeadScores(model, tokens: meta.repeated, kind: kind, expected: expected)
    }

    @Test func directLogitAttributionMatchesTransformerLens() throws {
        let (model, meta, expected) = (try GQAFixtures.model(), try GQAFixtures.meta(), try GQAFixtures.expected())
        let dla = try model.directLogitAttribution(tokens: meta.clean, answer: meta.answer, wrong: meta.wrong)
        #expect(try dla.heads.reshaped([8]).maxAbsDifference(try expected.tensor("dla.heads")) <= 1e-4)
        #expect(dla.componentLabels == ["embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"])
        #expect(Tensor(dla.components).maxAbsDifference(try expected.tensor("dla.components")) <= 1e-4)
    }

    @Test(arguments: CompositionMode.allCases)
    func compositionScoresMatchTransformerLens(mode: CompositionMode) throws {
        let scores = try GQAFixtures.model().compositionScores(mode)
        let want = try GQAFixtures.expected().tensor("comp.\(mode.rawValue)")
        #expect(scores.shape == [2, 4, 2, 4])
        #expect(scores.maxAbsDifference(want) <= 1e-4, "\(mode): \(scores.maxAbsDifference(want))")
    }

    @Test func copyingScoresMatchTransformerLens() throws {
        let scores = try GQAFixtures.model().copyingScores()
        #expect(scores.maxAbsDifference(try GQAFixtures.expected().tensor("circuits.copying")) <= 1e-4)
    }

    /// The logit lens (TransformerLens's accumulated_resid with apply_ln): every label's logits.
    @Test func logitLensMatchesTransformerLens() throws {
        let (model, meta, expected) = (try GQAFixtures.model(), try GQAFixtures.meta(), try GQAFixtures.expected())
        let lens = try model.logitLens(tokens: meta.clean, includeMid: false, norm: .recompute)
        let want = try expected.tensor("lens.head")
        #expect(lens.logits.shape == want.shape)
        #expect(lens.logits.maxAbsDifference(want) <= 1e-4, "\(lens.logits.maxAbsDifference(want))")
    }
}
