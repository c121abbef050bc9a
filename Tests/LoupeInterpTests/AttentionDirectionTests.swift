// Which way heads look (earlier / self / later shares and the mean offset), and how a token moves a prediction
// elsewhere, on the GPT-2 fixture and on the same weights with attention both ways.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTestSupport
import Testing

@Suite struct AttentionDirectionTests {
    static let tokens = [5, 42, 79, 116, 153, 190, 7, 42, 11]

    /// The summaries recomputed from the cached patterns, entry by entry.
    @Test(arguments: [false, true]) func directionSharesFollowThePattern(both: Bool) throws {
        let causal = try InterpFixtures.model()
        let model = both ? try modelVariant(causal, bidirectional: true) : causal
        let heads = try model.attentionAnalysis(tokens: Self.tokens)
        let T = Self.tokens.count
        let (_, cache) = try model.runWithCache(.tokens([Self.tokens]), select: .filter { if case .pattern = $0 { true } else { false } })
        var anyLater: Float = 0
        for a in heads {
            let p = try #require(cache[.pattern(a.layer)]).scalars
            func w(_ q: Int, _ k: Int) -> Float { p[(a.head * T + q) * T + k] }
            var earlier: Float = 0, own: Float = 0, later: Float = 0, offset: Float = 0, next: Float = 0
            for q in 0..<T {
                own += w(q, q)
                for k in 0..<q { earlier += w(q, k); offset -= Float(q - k) * w(q, k) }
                for k in (q + 1)..<max(T, q + 1) { later += w(q, k); offset += Float(k - q) * w(q, k) }
                if q + 1 < T { next += w(q, q + 1) }
            }
            let n = Float(T)
            #expect(abs(a.toEarlier - earlier / n) < 1e-5 && abs(a.toSelf - own / n) < 1e-5 && abs(a.toLater - later / n) < 1e-5)
            #expect(abs(a.meanOffset - offset / n) < 1e-4 && abs(a.toNext - next / (n - 1)) < 1e-5)
            #expect(abs(a.toEarlier + a.toSelf + a.toLater - 1) < 1e-4)
            if !both { #expect(a.toLater == 0 && a.toNext == 0 && a.meanOffset <= 0, "L\(a.layer)H\(a.head) looks forward in a causal model") }
            anyLater = max(anyLater, a.toLater)
        }
        if both { #expect(anyLater > 0.2, "no head of the bidirectional model looks forward (largest share \(anyLater))") }
    }

    /// A later token cannot move a causal prediction; with attention both ways it does. Each effect equals the
    /// difference of two separate runs.
    @Test func laterTokensMoveOnlyABidirectionalPrediction() throws {
        let fixture = try InterpFixtures.model()
        let causal = try modelVariant(fixture, bidirectional: false, scalingQKV: 6)
        let both = try modelVariant(fixture, bidirectional: true, scalingQKV: 6)
        let target = 42, readAt = 3
        let later = Array((readAt + 1)..<Self.tokens.count)
        let replacement = { (p: Int) in 300 + p }
        let c = try causal.tokenReplacementEffects(tokens: Self.tokens, readAt: readAt, target: target, positions: later, replacement: replacement)
        #expect(c.effects.count == later.count)
        #expect(c.effects.allSatisfy { $0.logProbabilityChange == 0 }, "\(c.effects.map(\.logProbabilityChange))")
        let b = try both.tokenReplacementEffects(tokens: Self.tokens, readAt: readAt, target: target, positions: later, replacement: replacement)
        #expect(b.effects.contains { abs($0.logProbabilityChange) > 1e-3 }, "\(b.effects.map(\.logProbabilityChange))")
        func logProbability(_ model: HookedTransformer, _ tokens: [Int]) throws -> Float {
            try model.run([tokens]).logSoftmax().scalars[readAt * model.config.dVocab + target]
        }
        let clean = try logProbability(both, Self.tokens)
        #expect(abs(b.logProbability - clean) < 1e-4)
        for e in b.effects {
            var changed = Self.tokens
            changed[e.position] = e.replacement
            #expect(e.token == Self.tokens[e.position])
            #expect(abs(e.logProbabilityChange - (try logProbability(both, changed) - clean)) < 1e-4, "position \(e.position)")
        }
        // An earlier token moves the causal prediction too.
        let earlier = try causal.tokenReplacementEffects(tokens: Self.tokens, readAt: readAt, target: target, positions: [1], replacement: replacement)
        #expect(abs(earlier.effects[0].logProbabilityChange) > 1e-4)
    }

    @Test func badArgumentsAreErrors() throws {
        let model = try InterpFixtures.model()
        let v = model.config.dVocab
        #expect(throws: InterpError.self) { try model.tokenReplacementEffects(tokens: Self.tokens, readAt: 9, target: 1, positions: []) { _ in 1 } }
        #expect(throws: InterpError.self) { try model.tokenReplacementEffects(tokens: Self.tokens, readAt: 0, target: v, positions: []) { _ in 1 } }
        #expect(throws: InterpError.self) { try model.tokenReplacementEffects(tokens: Self.tokens, readAt: 0, target: 1, positions: [9]) { _ in 1 } }
        #expect(throws: InterpError.self) { try model.tokenReplacementEffects(tokens: Self.tokens, readAt: 0, target: 1, positions: [2]) { _ in v } }
        #expect(throws: InterpError.self) { try model.tokenReplacementEffects(tokens: Self.tokens, readAt: 0, target: 1, positions: [1]) { _ in 42 } }
    }
}
