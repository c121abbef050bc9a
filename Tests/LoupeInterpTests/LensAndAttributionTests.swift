import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct LogitLensTests {
    /// Equals TransformerLens's accumulated_resid(apply_ln=True) @ W_U + b_U (which recomputes the final
    /// norm per state), with and without resid_mid, and apply_ln_to_stack with the cached scale.
    @Test(arguments: [(false, LensNorm.recompute), (true, .recompute), (false, .cachedScale)])
    func matchesTransformerLens(includeMid: Bool, norm: LensNorm) throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let expected = try InterpFixtures.expected()
        let lens = try model.logitLens(tokens: meta.clean, includeMid: includeMid, norm: norm)
        let tag = norm == .cachedScale ? "lens.cached" : includeMid ? "lens.mid" : "lens"
        #expect(lens.labels == (includeMid ? ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"] : ["0_pre", "1_pre", "final_post"]))
        let head = try expected.tensor(tag + ".head"), lse = try expected.tensor(tag + ".lse")
        let (n, T, v) = (lens.logits.shape[0], lens.logits.shape[1], lens.logits.shape[2])
        var worst: Float = 0, worstLSE: Float = 0
        for r in 0..<(n * T) {
            let row = lens.logits.scalars[(r * v)..<((r + 1) * v)]
            for j in 0..<1024 { worst = max(worst, abs(row[row.startIndex + j] - head.scalars[r * 1024 + j])) }
            let m = row.max() ?? 0
            let l = m + Float(log(row.reduce(0.0) { $0 + exp(Double($1 - m)) }))
            worstLSE = max(worstLSE, abs(l - lse.scalars[r]))
        }
        #expect(worst <= 1e-4 && worstLSE <= 1e-4, "max difference \(worst), logsumexp \(worstLSE)")
        // The last label is the model's own prediction: its summary agrees with itself.
        let cells = try lens.summary(position: T - 1, topK: 3, target: meta.answer)
        let final = try #require(cells.last)
        #expect(final.finalTokenRank == 0 && abs(final.klToFinal) < 1e-5)
        #expect(cells.allSatisfy { $0.klToFinal >= -1e-5 && $0.entropy >= 0 && $0.top.count == 3 })
        #expect(throws: InterpError.self) { try lens.summary(position: T) }
    }

    @Test func recomputedNormDiffersOnlyInScale() throws {
        let model = try InterpFixtures.model()
        let tokens = try InterpFixtures.meta().clean
        let cached = try model.logitLens(tokens: tokens), recomputed = try model.logitLens(tokens: tokens, norm: .recompute)
        // The final residual is normalized by its own scale either way.
        let v = 50257, T = tokens.count
        let lastCached = Array(cached.logits.scalars[(2 * T * v)...]), lastRecomputed = Array(recomputed.logits.scalars[(2 * T * v)...])
        #expect(zip(lastCached, lastRecomputed).allSatisfy { abs($0 - $1) < 1e-3 })
    }
}

@Suite struct DirectLogitAttributionTests {
    /// Per-head DLA and the residual decomposition equal TransformerLens's logit_attrs.
    @Test func matchesTransformerLens() throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let expected = try InterpFixtures.expected()
        let dla = try model.directLogitAttribution(tokens: meta.clean, answer: meta.answer, wrong: meta.wrong)
        let heads = try expected.tensor("dla.heads")
        #expect(try dla.heads.reshaped([8]).maxAbsDifference(heads) <= 1e-4)
        #expect(dla.componentLabels == ["embed", "pos_embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"])
        #expect(Tensor(dla.components).maxAbsDifference(try expected.tensor("dla.components")) <= 1e-4)
        #expect(throws: InterpError.self) { try model.directLogitAttribution(tokens: meta.clean, answer: 50257) }
    }
}
