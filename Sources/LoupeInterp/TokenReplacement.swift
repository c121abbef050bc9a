// How much one prediction depends on each of some other tokens: replace one token at a time and read the
// change in a target's log-probability at a fixed position. Run on tokens after the position read, it is
// the plainest difference between a causal model (exactly zero: the future is masked) and a bidirectional
// one.

import Foundation
import LoupeModels
import LoupeTensor

/// The effect of replacing one token on the prediction read at another position.
public struct TokenReplacementEffect: Sendable, Codable, Equatable {
    /// The position whose token was replaced, the token there, and what replaced it.
    public let position: Int
    public let token: Int
    public let replacement: Int
    /// log p(target) at the position read, with the replacement, minus the unchanged run's.
    public let logProbabilityChange: Float
}

extension HookedTransformer {
    /// The log-probability of `target` at `readAt`, and for each position in `positions` the change in it
    /// when that token alone is replaced by `replacement(position)`. The runs go as one batch.
    /// - Throws: `InterpError` for an empty or out-of-range position, an out-of-vocabulary target or
    ///   replacement, or a replacement equal to the token it replaces.
    public func tokenReplacementEffects(tokens: [Int], readAt: Int, target: Int, positions: [Int],
                                        replacement: (Int) -> Int) throws -> (logProbability: Float, effects: [TokenReplacementEffect]) {
        let T = tokens.count, v = config.dVocab
        guard readAt >= 0 && readAt < T else { throw InterpError.outOfRange(what: "position read", value: readAt, count: T) }
        guard target >= 0 && target < v else { throw InterpError.tokenOutOfRange(token: target, dVocab: v) }
        var batch = [tokens]
        var replaced: [(position: Int, replacement: Int)] = []
        for p in positions {
            guard p >= 0 && p < T else { throw InterpError.outOfRange(what: "replaced position", value: p, count: T) }
            let r = replacement(p)
            guard r >= 0 && r < v else { throw InterpError.tokenOutOfRange(token: r, dVocab: v) }
            guard r != tokens[p] else { throw InterpError.invalid("the replacement at position \(p) is the token already there (\(r))") }
            var changed = tokens
            changed[p] = r
            batch.append(changed)
            replaced.append((p, r))
        }
        let logits = try run(batch)   // [batch, pos, vocab]
        func logProbability(_ b: Int) -> Float {
            let start = (b * T + readAt) * v
            return -PatchMetric.loss(target).evaluate(logits.scalars[start..<(start + v)])
        }
        let clean = logProbability(0)
        let effects = replaced.enumerated().map { i, r in
            TokenReplacementEffect(position: r.position, token: tokens[r.position], replacement: r.replacement,
                                   logProbabilityChange: logProbability(i + 1) - clean)
        }
        return (clean, effects)
    }
}
