// Attention patterns, their summaries, and value-weighted attention (Kobayashi et al. 2020, "Attention
// is not only a weight"): each weight scaled by the norm of what the source position sends through the
// head, ‖v_j W_O‖, which separates moving information from parking attention on the first token.

import Foundation
import LoupeModels
import LoupeTensor

/// One head's pattern and summaries over a prompt.
public struct HeadAttention: Sendable, Codable {
    public let layer: Int
    public let head: Int
    /// `[query_pos, key_pos]`, row-major.
    public let pattern: [Float]
    /// `[query_pos, key_pos]`: weight · ‖v_key W_O‖, each row renormalized to sum to 1.
    public let valueWeighted: [Float]
    /// Mean over query positions of the row entropy (nats).
    public let entropy: Float
    /// Mean attention to position 0, and to the previous position (over positions ≥ 1).
    public let toFirst: Float
    public let toPrevious: Float
    /// The same two, value-weighted.
    public let valueWeightedToFirst: Float
    /// Mean over query positions of the attention to earlier positions, to the position itself, and to later
    /// ones (the three add up to 1; `toLater` is 0 in a causal model).
    public let toEarlier: Float
    public let toSelf: Float
    public let toLater: Float
    /// Mean attention to the next position (over positions before the last).
    public let toNext: Float
    /// Mean over query positions of the expected key offset Σₖ pattern[q, k]·(k − q): −1 for a previous-token
    /// head, +1 for a next-token head.
    public let meanOffset: Float
}

extension HookedTransformer {
    /// Every head's pattern on `tokens`, with summaries and value-weighted attention.
    public func attentionAnalysis(tokens: [Int]) throws -> [HeadAttention] {
        let (nL, h, dh, d) = (config.nLayers, config.nHeads, config.dHead, config.dModel)
        let T = tokens.count
        var names = Set<HookName>()
        for l in 0..<nL { names.insert(.pattern(l)); names.insert(.v(l)) }
        let (_, cache) = try runWithCache(.tokens([tokens]), select: .names(names))
        var out: [HeadAttention] = []
        for l in 0..<nL {
            guard let pattern = cache[.pattern(l)], let v = cache[.v(l)] else { continue }
            let wO = weights.blocks[l].wO.scalars   // [head, d_head, d_model]
            let kvh = config.nKeyValueHeads
            for head in 0..<h {
                // ‖v_j W_O[head]‖ for each source position j.
                let kvHead = head / config.groupSize
                let norms: [Float] = (0..<T).map { j in
                    var sent = [Float](repeating: 0, count: d)
                    for k in 0..<dh {
                        let vk = v.scalars[(j * kvh + kvHead) * dh + k]
                        for i in 0..<d { sent[i] += vk * wO[(head * dh + k) * d + i] }
                    }
                    return sent.reduce(0) { $0 + $1 * $1 }.squareRoot()
                }
                let rows = Array(pattern.scalars[(head * T * T)..<((head + 1) * T * T)])
                var weighted = rows
                var entropy: Double = 0, first: Double = 0, previous: Double = 0, weightedFirst: Double = 0
                var earlier: Double = 0, own: Double = 0, later: Double = 0, next: Double = 0, offset: Double = 0
                for q in 0..<T {
                    for k in 0..<T {
                        let w = Double(rows[q * T + k])
                        if k < q { earlier += w } else if k == q { own += w } else { later += w }
                        offset += w * Double(k - q)
                    }
                    if q + 1 < T { next += Double(rows[q * T + q + 1]) }
                    var total: Float = 0
                    for k in 0..<T { weighted[q * T + k] *= norms[k]; total += weighted[q * T + k] }
                    if total > 0 { for k in 0..<T { weighted[q * T + k] /= total } }
                    for k in 0..<T where rows[q * T + k] > 0 { entropy -= Double(rows[q * T + k]) * log(Double(rows[q * T + k])) }
                    first += Double(rows[q * T])
                    weightedFirst += Double(weighted[q * T])
                    if q >= 1 { previous += Double(rows[q * T + q - 1]) }
                }
                out.append(HeadAttention(layer: l, head: head, pattern: rows, valueWeighted: weighted,
                                         entropy: Float(entropy / Double(T)), toFirst: Float(first / Double(T)),
                                         toPrevious: T > 1 ? Float(previous / Double(T - 1)) : 0,
                                         valueWeightedToFirst: Float(weightedFirst / Double(T)),
                                         toEarlier: Float(earlier / Double(T)), toSelf: Float(own / Double(T)),
                                         toLater: Float(later / Double(T)), toNext: T > 1 ? Float(next / Double(T - 1)) : 0,
                                         meanOffset: Float(offset / Double(T))))
            }
        }
        return out
    }
}
