// How far each layer's lens prediction is from the model's final prediction over a corpus: the mean
// KL(p_final ‖ p_lens) per layer in nats, for the logit lens and a tuned lens — the comparison of
// Belrose et al. 2023 (figure 1 and section 3), on held-out text.

import Foundation
import LoupeModels
import LoupeTensor

/// Mean KL(final ‖ lens) per layer over a set of token windows.
public struct LensDivergence: Sendable, Codable {
    /// `0_pre`, `1_pre`, …: the residual entering each block.
    public let labels: [String]
    /// Mean KL in nats per layer, logit lens.
    public let logitLens: [Float]
    /// Mean KL in nats per layer, tuned lens (nil without one).
    public let tunedLens: [Float]?
    /// Positions averaged over.
    public let tokens: Int
}

extension HookedTransformer {
    /// Log-probabilities of the final norm (each row's own statistics, the logit lens's `recompute`) and
    /// the unembedding applied to residuals `[rows, d_model]`: `[rows, d_vocab]`.
    public func lensLogProbs(_ residual: Tensor) throws -> Tensor {
        let d = config.dModel
        guard residual.rank == 2, residual.shape[1] == d else {
            throw TensorError.shapeMismatch(operation: "lens residual [rows, d_model]", expected: [residual.shape.first ?? 0, d], found: residual.shape)
        }
        let normed = try config.normalize(residual, weight: weights.lnFinalW, bias: weights.lnFinalB)
        let logits = try normed.matmul(weights.wU) + weights.bU   // [rows, d_vocab]
        return logits.logSoftmax()
    }

    /// Mean KL(final ‖ lens) per layer over `windows` (token rows, each run separately), for the logit
    /// lens and, when given, a tuned lens. `progress(done, total)` after each window.
    public func lensDivergence(windows: [[Int]], tuned: TunedLens? = nil,
                               progress: ((Int, Int) -> Void)? = nil) throws -> LensDivergence {
        let nL = config.nLayers, d = config.dModel
        if let tuned { try tuned.check(against: config) }
        guard !windows.isEmpty, windows.allSatisfy({ !$0.isEmpty }) else { throw InterpError.invalid("no tokens to evaluate the lens on") }
        var logitSum = [Double](repeating: 0, count: nL), tunedSum = [Double](repeating: 0, count: nL)
        var count = 0
        for (w, window) in windows.enumerated() {
            let T = window.count
            let names = Set((0..<nL).map { HookName.residPre($0) })
            let (logits, cache) = try runWithCache(.tokens([window]), select: .names(names))
            let final = try logits.reshaped([T, config.dVocab]).logSoftmax()   // [pos, d_vocab]
            for l in 0..<nL {
                guard let resid = cache[.residPre(l)] else { throw InterpError.invalid("resid_pre \(l) was not cached") }
                let h = try resid.reshaped([T, d])
                logitSum[l] += try Self.klSum(final, lensLogProbs(h))
                if let tuned { tunedSum[l] += try Self.klSum(final, lensLogProbs(tuned.translate(h, layer: l))) }
            }
            count += T
            progress?(w + 1, windows.count)
        }
        return LensDivergence(labels: (0..<nL).map { "\($0)_pre" },
                              logitLens: logitSum.map { Float($0 / Double(count)) },
                              tunedLens: tuned == nil ? nil : tunedSum.map { Float($0 / Double(count)) }, tokens: count)
    }

    /// Σ over rows of KL(p ‖ q) from log-probabilities `[rows, d_vocab]` (0 · log 0 = 0).
    static func klSum(_ logP: Tensor, _ logQ: Tensor) -> Double {
        var total: Double = 0
        let v = logP.shape.last ?? 1
        logP.scalars.withUnsafeBufferPointer { lp in
            logQ.scalars.withUnsafeBufferPointer { lq in
                for r in 0..<(lp.count / v) {
                    var s: Double = 0
                    for j in (r * v)..<((r + 1) * v) where lp[j] > -Float.infinity {
                        s += Double(Foundation.exp(lp[j]) * (lp[j] - lq[j]))
                    }
                    total += s
                }
            }
        }
        return total
    }
}
