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
