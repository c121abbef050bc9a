import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct CausalTracingTests {
    /// The batched trace equals restoring each state in a full run with plain hooks (the definition).
    @Test(arguments: [(TraceKind.resid, 1), (.mlp, 2), (.attn, 3)])
    func equalsNaiveRestoration(kind: TraceKind, window: Int) throws {
        let model = try InterpFixtures.model()
        let tokens = try InterpFixtures.meta().clean
        let answer = 1234, subject = 2..<5, d = 32, v = 50257, T = tokens.count
        let trace = try model.causalTrace(tokens: tokens, subject: subject, answer: answer, kind: kind, window: window, seed: 9)
        #expect(trace.restored.shape == [2, T])
        let sigma = 3 * model.embeddingStandardDeviation
        let noise = gaussianNoise(count: subject.count * d, sigma: sigma, seed: 9)
        let hook: (Int) -> HookName = { kind == .resid ? .residPost($0) : kind == .mlp ? .mlpOut($0) : .attnOut($0) }
        let (_, clean) = try model.runWithCache(.tokens([tokens]), select: .names(Set((0..<2).map(hook))))
        func probability(_ hooks: Hooks) throws -> Float {
            let logits = try model.run(.tokens([tokens]), hooks: hooks)
            let row = Array(logits.scalars[((T - 1) * v)..<(T * v)])
            return PatchMetric.probability(answer).evaluate(row[...])
        }
        var corrupt = Hooks()
        corrupt.add(.embed) { act, _ in
            for (i, p) in subject.enumerated() { for j in 0..<d { act.scalars[p * d + j] += noise[i * d + j] } }
        }
        #expect(abs(try probability(corrupt) - trace.corruptedProbability) < 1e-6)
        for (l, p) in [(0, 0), (0, 3), (1, 4), (1, 11)] {
            var hooks = corrupt
            let layers = kind == .resid ? l..<(l + 1) : max(0, l - window / 2)..<min(2, l - window / 2 + window)
            for layer in layers {
                let source = try #require(clean[hook(layer)])
                hooks.add(hook(layer)) { act, _ in for j in 0..<d { act.scalars[p * d + j] = source.scalars[p * d + j] } }
            }
            let naive = try probability(hooks)
            let got = try trace.restored.item([l, p])
            #expect(abs(naive - got) < 1e-6, "\(kind) (\(l), \(p)): \(naive) vs \(got)")
        }
        // The last block's output at the last position is what the logits are read from: restoring it
        // restores the clean probability exactly.
        if kind == .resid {
            #expect(abs(try trace.restored.item([1, T - 1]) - trace.cleanProbability) < 1e-6)
        }
    }

    @Test func badRequests() throws {
        let model = try InterpFixtures.model()
        #expect(throws: InterpError.self) { try model.causalTrace(tokens: [1, 2, 3], subject: 2..<5, answer: 1) }
        #expect(throws: InterpError.self) { try model.causalTrace(tokens: [1, 2, 3], subject: 0..<1, answer: 99999) }
    }
}
