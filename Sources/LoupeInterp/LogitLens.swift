// The logit lens (nostalgebraist 2020): read the residual stream after each block through the final
// norm and the unembedding, to see the prediction form layer by layer. Equals TransformerLens's
// `cache.accumulated_resid(apply_ln=True)` (or `apply_ln_to_stack` with the cached scale) then `@ W_U + b_U`.

import Foundation
import LoupeModels
import LoupeTensor

/// How the final norm is applied to an intermediate residual stream.
public enum LensNorm: String, Sendable, CaseIterable {
    /// Normalize each intermediate residual by its own statistics, as the final norm would if the model
    /// stopped there (TransformerLens 3.9's `accumulated_resid(apply_ln=True)`). The default.
    case recompute
    /// Divide by the final norm's scale as the full run computed it (`apply_ln_to_stack`'s default):
    /// linear in the residual, so the layers' contributions add up.
    case cachedScale = "cached"
}

/// Logits read off every layer.
public struct LogitLens: Sendable {
    /// `0_pre`, (`0_mid`,) `1_pre`, …, `final_post`, as TransformerLens labels accumulated residuals.
    public let labels: [String]
    /// `[labels, pos, d_vocab]`.
    public let logits: Tensor
    public let tokens: [Int]

    /// Per label and position: how the lens prediction compares with the model's final one.
    public struct Cell: Sendable, Codable {
        public let top: [TokenPrediction]
        /// Rank (0 = top) and probability of the final prediction's top token.
        public let finalTokenRank: Int
        public let finalTokenProbability: Float
        /// Rank and probability of a chosen target token, when one was given.
        public let targetRank: Int?
        public let targetProbability: Float?
        /// KL(final ‖ this layer) in nats, and this layer's entropy.
        public let klToFinal: Float
        public let entropy: Float
    }

    /// Summaries of every label at one position.
    public func summary(position: Int, topK k: Int = 5, target: Int? = nil) throws -> [Cell] {
        let (n, T, v) = (logits.shape[0], logits.shape[1], logits.shape[2])
        guard position >= 0 && position < T else { throw InterpError.outOfRange(what: "position", value: position, count: T) }
        if let target, target < 0 || target >= v { throw InterpError.tokenOutOfRange(token: target, dVocab: v) }
        func logProbs(_ label: Int) -> [Float] {
            let start = (label * T + position) * v
            let row = Array(logits.scalars[start..<(start + v)])
            let m = row.max() ?? 0
            let lse = m + Float(log(row.reduce(0.0) { $0 + exp(Double($1 - m)) }))
            return row.map { $0 - lse }
        }
        let final = logProbs(n - 1)
        let finalTop = final.indices.max { final[$0] < final[$1] } ?? 0
        let finalProbs = final.map { exp($0) }
        return (0..<n).map { label in
            let lp = label == n - 1 ? final : logProbs(label)
            let top = topK(lp[...], k: k).map { TokenPrediction(id: $0.index, probability: exp($0.value), logit: $0.value) }
            func rank(_ t: Int) -> Int { lp.reduce(0) { $0 + ($1 > lp[t] ? 1 : 0) } }
            var kl: Double = 0, entropy: Double = 0
            for i in 0..<v {
                let p = Double(finalProbs[i]), q = Double(exp(lp[i]))
                if p > 0 { kl += p * (Double(final[i]) - Double(lp[i])) }
                if q > 0 { entropy -= q * Double(lp[i]) }
            }
            return Cell(top: top, finalTokenRank: rank(finalTop), finalTokenProbability: exp(lp[finalTop]),
                        targetRank: target.map(rank), targetProbability: target.map { exp(lp[$0]) },
                        klToFinal: Float(kl), entropy: Float(entropy))
        }
    }
}

extension HookedTransformer {
    /// The logit lens over `tokens`: every block's input residual (and, with `includeMid`, the residual
    /// between attention and MLP), and the final residual, through the final norm and the unembedding.
    /// With `tuned`, each block's input residual first goes through the tuned lens's translator of that
    /// layer (the tuned lens; `includeMid` is then not allowed: translators exist for `resid_pre` only).
    public func logitLens(tokens: [Int], includeMid: Bool = false, norm: LensNorm = .recompute,
                          tuned: TunedLens? = nil) throws -> LogitLens {
        let nL = config.nLayers, d = config.dModel, T = tokens.count
        if let tuned {
            try tuned.check(against: config)
            if includeMid { throw InterpError.invalid("the tuned lens has translators for resid_pre only: no --mid with a tuned lens") }
        }
        var names: Set<HookName> = [.lnFinalScale, .residPost(nL - 1)]
        var labelled: [(String, HookName)] = []
        for l in 0..<nL {
            names.insert(.residPre(l)); labelled.append(("\(l)_pre", .residPre(l)))
            if includeMid && !config.attnOnly { names.insert(.residMid(l)); labelled.append(("\(l)_mid", .residMid(l))) }
        }
        labelled.append(("final_post", .residPost(nL - 1)))
        let (_, cache) = try runWithCache(.tokens([tokens]), select: .names(names))
        guard let finalScale = cache[.lnFinalScale] else { throw InterpError.invalid("the final norm's scale was not cached") }
        // The stack of residuals, normalized like the final norm: [labels · pos, d_model].
        let rms = !config.centresNorm
        var stack = uninitializedFloats(labelled.count * T * d)
        for (i, (_, hook)) in labelled.enumerated() {
            guard var resid = cache[hook] else { continue }
            if let tuned, case .residPre(let l) = hook { resid = try tuned.translate(resid, layer: l) }
            for p in 0..<T {
                let src = Array(resid.scalars[(p * d)..<((p + 1) * d)])
                let mean = rms ? 0 : src.reduce(0, +) / Float(d)
                let centred = src.map { $0 - mean }
                let scale: Float
                switch norm {
                case .cachedScale: scale = finalScale.scalars[p]
                case .recompute: scale = (centred.reduce(0) { $0 + $1 * $1 } / Float(d) + config.eps).squareRoot()
                }
                for j in 0..<d {
                    var x = centred[j] / scale
                    if let w = weights.lnFinalW { x *= w.scalars[j] }
                    if let b = weights.lnFinalB { x += b.scalars[j] }
                    stack[(i * T + p) * d + j] = x
                }
            }
        }
        let logits = try Tensor(unchecked: [labelled.count * T, d], stack).matmul(weights.wU) + weights.bU
        return LogitLens(labels: labelled.map(\.0), logits: try logits.reshaped([labelled.count, T, config.dVocab]),
                         tokens: tokens)
    }
}
