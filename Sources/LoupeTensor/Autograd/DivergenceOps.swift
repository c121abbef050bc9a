// KL divergence from a fixed distribution to the softmax of a variable's logits, fused with its
// log-softmax: the loss of the tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from
// Transformers with the Tuned Lens"), KL(p_final ‖ p_lens). The fused backward, (q − p) per row, never
// forms the Jacobian of the softmax and stays finite where q underflows.

import Foundation

extension Variable {
    /// Mean over rows of KL(p ‖ softmax(self)) in nats, where `targetLogProbs` holds log p (a constant,
    /// same shape as `self`, `[..., vocab]`, each row normalized). Entries of p that are 0 (log p = −∞)
    /// contribute nothing, as in PyTorch's `kl_div(..., log_target=True)`. A scalar.
    ///
    /// The gradient with respect to the logits is `(softmax(self) − p) / rows`.
    /// - Throws: `TensorError.shapeMismatch` when the shapes differ or the last dimension is empty.
    public func klDivergence(targetLogProbs: Tensor) throws -> Variable {
        guard targetLogProbs.shape == value.shape, let v = value.shape.last, v > 0 else {
            throw TensorError.shapeMismatch(operation: "klDivergence (logits and target log-probabilities of one shape [..., vocab])",
                                            expected: value.shape, found: targetLogProbs.shape)
        }
        let rows = value.count / v
        var logQ = value.scalars   // [rows, vocab]
        logQ.withUnsafeMutableBufferPointer { Kernels.logSoftmaxRows($0.baseAddress!, rows: rows, n: v) }
        var total: Double = 0
        targetLogProbs.scalars.withUnsafeBufferPointer { lp in
            logQ.withUnsafeBufferPointer { lq in
                for r in 0..<rows {
                    var s: Float = 0   // one row in Float (49152 terms lose ~4 digits at most), rows in Double
                    for j in (r * v)..<((r + 1) * v) where lp[j] > -Float.infinity {
                        s += Foundation.exp(lp[j]) * (lp[j] - lq[j])
                    }
                    total += Double(s)
                }
            }
        }
        let x = self
        return Variable(Tensor(scalar: Float(total / Double(max(rows, 1)))), parents: [x]) { o in
            let scale = o.g[0] / Float(max(rows, 1))
            // d/dlogits = (q − p) · scale, with q = exp(log q) and p = exp(log p).
            var p = targetLogProbs.scalars
            var dx = logQ
            p.withUnsafeMutableBufferPointer { Kernels.exp($0.baseAddress!, count: $0.count) }
            dx.withUnsafeMutableBufferPointer { d in
                Kernels.exp(d.baseAddress!, count: d.count)
                p.withUnsafeBufferPointer { pp in
                    for i in 0..<d.count { d[i] = (d[i] - pp[i]) * scale }
                }
            }
            x.accumulate(dx)
        }
    }
}

extension Variable {
    /// Mean over rows of KL(softmax(self) ‖ p) in nats, where `referenceLogProbs` holds log p (a constant,
    /// same shape, `[..., vocab]`): how far the variable's distribution has moved away from a reference.
    /// The direction ROME's `compute_v` keeps the subject's "is a" distribution in, PyTorch's
    /// `kl_div(log_p, log_q, log_target=True, reduction="batchmean")`. A scalar.
    ///
    /// The gradient with respect to the logits is `q ⊙ (log q − log p − KL) / rows` per row.
    /// - Throws: `TensorError.shapeMismatch` when the shapes differ or the last dimension is empty,
    ///   `invalidArgument` when p is 0 somewhere q is not (the divergence is infinite).
    public func klDivergenceFromReference(logProbs referenceLogProbs: Tensor) throws -> Variable {
        guard referenceLogProbs.shape == value.shape, let v = value.shape.last, v > 0 else {
            throw TensorError.shapeMismatch(operation: "klDivergenceFromReference (logits and reference log-probabilities of one shape [..., vocab])",
                                            expected: value.shape, found: referenceLogProbs.shape)
        }
        let rows = value.count / v
        var logQ = value.scalars
        logQ.withUnsafeMutableBufferPointer { Kernels.logSoftmaxRows($0.baseAddress!, rows: rows, n: v) }
        let logP = referenceLogProbs.scalars
        var perRow = [Float](repeating: 0, count: rows)
        var total: Double = 0
        for r in 0..<rows {
            var s: Double = 0
            for j in (r * v)..<((r + 1) * v) {
                let q = Foundation.exp(Double(logQ[j]))
                guard q > 0 else { continue }
                guard logP[j] > -Float.infinity else {
                    throw TensorError.invalidArgument("KL divergence from a reference that gives probability 0 to entry \(j - r * v) of row \(r)")
                }
                s += q * Double(logQ[j] - logP[j])
            }
            perRow[r] = Float(s)
            total += s
        }
        let x = self
        return Variable(Tensor(scalar: Float(total / Double(rows))), parents: [x]) { o in
            let scale = o.g[0] / Float(rows)
            var dx = [Float](repeating: 0, count: logQ.count)
            for r in 0..<rows {
                for j in (r * v)..<((r + 1) * v) {
                    let q = Foundation.exp(logQ[j])
                    dx[j] = q > 0 ? q * (logQ[j] - logP[j] - perRow[r]) * scale : 0
                }
            }
            x.accumulate(dx)
        }
    }
}
