// Head detectors: how much of each head's attention lands where a previous-token, duplicate-token or
// induction head would attend (Olsson et al. 2022, "In-context learning and induction heads";
// TransformerLens's `head_detector.detect_head`, whose definitions and scores these equal).

import Foundation
import LoupeModels
import LoupeTensor

/// The attention patterns the detectors look for.
public enum HeadPattern: String, CaseIterable, Sendable, Codable {
    /// Each position attends to the one before it.
    case previousToken = "previous_token"
    /// Each position attends to earlier occurrences of its own token.
    case duplicateToken = "duplicate_token"
    /// Each position attends to the token after an earlier occurrence of its own token.
    case induction

    /// The detection pattern for `tokens`: `[query_pos, key_pos]` of 0/1, lower triangular.
    public func pattern(_ tokens: [Int]) -> [Float] {
        let n = tokens.count
        var out = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            switch self {
            case .previousToken:
                if i >= 1 { out[i * n + i - 1] = 1 }
            case .duplicateToken:
                for j in 0..<i where tokens[j] == tokens[i] { out[i * n + j] = 1 }
            case .induction:
                // The key after an earlier occurrence at j − 1 < i (so j may be the query itself).
                for j in 1...max(i, 1) where j <= i && tokens[j - 1] == tokens[i] { out[i * n + j] = 1 }
            }
        }
        return out
    }
}

/// How a head's pattern is compared with a detection pattern.
public enum HeadScoreMeasure: String, Sendable {
    /// Σ attention · detection / Σ attention: the share of attention on the pattern.
    case mul
    /// 1 − round(mean |attention − detection| · n, 3).
    case abs
}

extension HookedTransformer {
    /// Scores `[n_layers, n_heads]` of every head for each pattern on one token sequence.
    /// `excludeBOS` ignores attention to position 0, `excludeCurrentToken` attention to the query itself.
    public func detectHeads(tokens: [Int], patterns: [HeadPattern] = HeadPattern.allCases,
                            excludeBOS: Bool = false, excludeCurrentToken: Bool = false,
                            measure: HeadScoreMeasure = .mul) throws -> [HeadPattern: Tensor] {
        let n = tokens.count
        guard n > 1, n < config.nCtx else {
            throw InterpError.invalid("head detection needs between 2 and \(config.nCtx - 1) tokens, found \(n)")
        }
        let (_, cache) = try runWithCache(.tokens([tokens]), select: .filter {
            if case .pattern = $0 { return true } else { return false }
        })
        let (nL, h) = (config.nLayers, config.nHeads)
        var out: [HeadPattern: Tensor] = [:]
        for kind in patterns {
            let detection = kind.pattern(tokens)
            var scores = [Float](repeating: 0, count: nL * h)
            for l in 0..<nL {
                guard let pattern = cache[.pattern(l)] else { continue }
                for head in 0..<h {
                    let base = head * n * n
                    var attention = Array(pattern.scalars[base..<(base + n * n)])
                    switch measure {
                    case .mul:
                        if excludeBOS { for i in 0..<n { attention[i * n] = 0 } }
                        if excludeCurrentToken { for i in 0..<n { attention[i * n + i] = 0 } }
                        var hit: Double = 0, total: Double = 0
                        for i in 0..<(n * n) {
                            hit += Double(attention[i] * detection[i])
                            total += Double(attention[i])
                        }
                        scores[l * h + head] = Float(hit / total)
                    case .abs:
                        var diff = zip(attention, detection).map { Swift.abs($0 - $1) }
                        if excludeBOS { for i in 0..<n { diff[i * n] = 0 } }
                        if excludeCurrentToken { for i in 0..<n { diff[i * n + i] = 0 } }
                        let mean = diff.reduce(0.0) { $0 + Double($1) } / Double(n * n)
                        scores[l * h + head] = Float(1 - (mean * Double(n) * 1000).rounded() / 1000)
                    }
                }
            }
            out[kind] = Tensor(unchecked: [nL, h], scores)
        }
        return out
    }

    /// The standard induction test: a random token sequence repeated twice. Returns each head's average
    /// attention from the second copy to the token after the same token's first occurrence, and the mean
    /// next-token loss on each copy (an induction circuit makes the second copy far easier).
    public func inductionTest(length: Int = 50, seed: UInt64 = 0, prefix: [Int] = []) throws -> InductionTest {
        guard length >= 2, prefix.count + 2 * length <= config.nCtx else {
            throw InterpError.invalid("the induction test needs 2 ≤ length and prefix + 2·length ≤ n_ctx (\(config.nCtx))")
        }
        var rng = SeededGenerator(seed: seed)
        let vocabFloor = min(100, config.dVocab / 2)   // skip the first ids (often special tokens)
        let random = (0..<length).map { _ in vocabFloor + Int(rng.next() % UInt64(config.dVocab - vocabFloor)) }
        let tokens = prefix + random + random
        let (logits, cache) = try runWithCache(.tokens([tokens]), select: .filter {
            if case .pattern = $0 { return true } else { return false }
        })
        let n = tokens.count, p0 = prefix.count
        let (nL, h) = (config.nLayers, config.nHeads)
        var scores = [Float](repeating: 0, count: nL * h)
        for l in 0..<nL {
            guard let pattern = cache[.pattern(l)] else { continue }
            for head in 0..<h {
                var s: Float = 0
                for i in (p0 + length)..<n {
                    let j = i - length + 1   // the token after this token's first occurrence
                    s += pattern.scalars[(head * n + i) * n + j]
                }
                scores[l * h + head] = s / Float(length)
            }
        }
        let logProbs = logits.logSoftmax()
        let v = config.dVocab
        func meanLoss(_ range: Range<Int>) -> Float {
            let values = range.map { -logProbs.scalars[$0 * v + tokens[$0 + 1]] }
            return values.reduce(0, +) / Float(max(values.count, 1))
        }
        return InductionTest(tokens: tokens, scores: Tensor(unchecked: [nL, h], scores),
                             firstHalfLoss: meanLoss(p0..<(p0 + length - 1)),
                             secondHalfLoss: meanLoss((p0 + length)..<(n - 1)))
    }
}

/// The induction test's outcome.
public struct InductionTest: Sendable {
    public let tokens: [Int]
    /// `[n_layers, n_heads]`: mean attention to the induction target on the repeated half.
    public let scores: Tensor
    /// Mean next-token loss within the first copy, and within the second.
    public let firstHalfLoss: Float
    public let secondHalfLoss: Float
}
