// Differentiable causal self-attention in TransformerLens's layout, split at its hook points:
// scores (`hook_attn_scores`) = q·kᵀ / sqrt(d_head) with −∞ above the diagonal, pattern (`hook_pattern`)
// = softmax(scores), z (`hook_z`) = pattern · v. Grouped-query attention: query head h reads key/value
// head h / (heads / kv_heads).

import Foundation

extension Variable {
    private static func attentionShapes(_ q: Variable, _ k: Variable, _ op: String) throws
        -> (batch: Int, pos: Int, heads: Int, kvHeads: Int, dHead: Int) {
        guard q.value.rank == 4, k.value.rank == 4 else {
            throw TensorError.rank(operation: "\(op) (q [batch, pos, heads, d_head])", expected: 4, found: min(q.value.rank, k.value.rank))
        }
        let (b, p, h, dh) = (q.value.shape[0], q.value.shape[1], q.value.shape[2], q.value.shape[3])
        let kvh = k.value.shape[2]
        guard k.value.shape[0] == b, k.value.shape[1] == p, k.value.shape[3] == dh, kvh > 0, h % kvh == 0 else {
            throw TensorError.shapeMismatch(operation: "\(op) (k [batch, pos, kv_heads, d_head], heads a multiple of kv_heads)",
                                            expected: [b, p, h, dh], found: k.value.shape)
        }
        return (b, p, h, kvh, dh)
    }

    /// Causal attention scores `[batch, heads, query_pos, key_pos]` from `q [batch, pos, heads, d_head]`
    /// and `k [batch, pos, kv_heads, d_head]`, times `scale` (default 1/sqrt(d_head)); entries above the
    /// diagonal are −∞, and with a `window`, so are keys j of query i with i − j ≥ window.
    /// With `causal` false (encoders) no entry is masked: every query sees every key.
    public static func causalAttentionScores(q: Variable, k: Variable, scale: Float? = nil, window: Int? = nil,
                                             causal: Bool = true) throws -> Variable {
        let (b, p, h, kvh, dh) = try attentionShapes(q, k, "attention scores")
        let group = h / kvh
        let scale = scale ?? 1 / Float(dh).squareRoot()
        /// Keys before this one are outside query i's window.
        func firstKey(_ i: Int) -> Int { window.map { max(0, i - $0 + 1) } ?? 0 }
        var s = [Float](repeating: 0, count: b * h * p * p)
        q.value.scalars.withUnsafeBufferPointer { qp in
            k.value.scalars.withUnsafeBufferPointer { kp in
                s.withUnsafeMutableBufferPointer { sp in
                    for bi in 0..<b {
                        for hi in 0..<h {
                            let out = sp.baseAddress! + (bi * h + hi) * p * p
                            BLAS.sgemm(transB: true, m: p, n: p, k: dh, alpha: scale,
                                       a: qp.baseAddress! + bi * p * h * dh + hi * dh, lda: h * dh,
                                       b: kp.baseAddress! + bi * p * kvh * dh + (hi / group) * dh, ldb: kvh * dh,
                                       c: out, ldc: p)
                            for i in 0..<p where causal {
                                for j in (i + 1)..<max(p, i + 1) { out[i * p + j] = -.infinity }
                                for j in 0..<firstKey(i) { out[i * p + j] = -.infinity }
                            }
                        }
                    }
                }
            }
        }
        return Variable(Tensor(unchecked: [b, h, p, p], s), parents: [q, k]) { o in
            var gs = o.g
            // Masked entries carry no gradient (whatever a hook did to them).
            for bh in 0..<(b * h) {
                for i in 0..<p where causal {
                    for j in (i + 1)..<max(p, i + 1) { gs[bh * p * p + i * p + j] = 0 }
                    for j in 0..<firstKey(i) { gs[bh * p * p + i * p + j] = 0 }
                }
            }
            gs.withUnsafeBufferPointer { gp in
                if q.requiresGrad {
                    k.value.scalars.withUnsafeBufferPointer { kp in
                        q.accumulate { dq, _ in
                            for bi in 0..<b {
                                for hi in 0..<h {   // dq = gs · k · scale
                                    BLAS.sgemm(m: p, n: dh, k: p, alpha: scale, a: gp.baseAddress! + (bi * h + hi) * p * p, lda: p,
                                               b: kp.baseAddress! + bi * p * kvh * dh + (hi / group) * dh, ldb: kvh * dh,
                                               beta: 1, c: dq + bi * p * h * dh + hi * dh, ldc: h * dh)
                                }
                            }
                        }
                    }
                }
                if k.requiresGrad {
                    q.value.scalars.withUnsafeBufferPointer { qp in
                        k.accumulate { dk, _ in
                            for bi in 0..<b {
                                for hi in 0..<h {   // dk = gsᵀ · q · scale
                                    BLAS.sgemm(transA: true, m: p, n: dh, k: p, alpha: scale,
                                               a: gp.baseAddress! + (bi * h + hi) * p * p, lda: p,
                                               b: qp.baseAddress! + bi * p * h * dh + hi * dh, ldb: h * dh,
                                               beta: 1, c: dk + bi * p * kvh * dh + (hi / group) * dh, ldc: kvh * dh)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `z [batch, pos, heads, d_head]` = pattern `[batch, heads, query_pos, key_pos]` · `v [batch, pos, kv_heads, d_head]`.
    public static func attentionMix(pattern: Variable, v: Variable) throws -> Variable {
        guard pattern.value.rank == 4, v.value.rank == 4 else {
            throw TensorError.rank(operation: "attention mix (pattern [batch, heads, pos, pos], v [batch, pos, kv_heads, d_head])",
                                   expected: 4, found: min(pattern.value.rank, v.value.rank))
        }
        let (b, h, p) = (pattern.value.shape[0], pattern.value.shape[1], pattern.value.shape[2])
        let (kvh, dh) = (v.value.shape[2], v.value.shape[3])
        guard pattern.value.shape[3] == p, v.value.shape[0] == b, v.value.shape[1] == p, kvh > 0, h % kvh == 0 else {
            throw TensorError.shapeMismatch(operation: "attention mix (v [batch, pos, kv_heads, d_head])",
                                            expected: [b, p, kvh, dh], found: v.value.shape)
        }
        let group = h / kvh
        var z = [Float](repeating: 0, count: b * p * h * dh)
        pattern.value.scalars.withUnsafeBufferPointer { pp in
            v.value.scalars.withUnsafeBufferPointer { vp in
                z.withUnsafeMutableBufferPointer { zp in
                    for bi in 0..<b {
                        for hi in 0..<h {
                            BLAS.sgemm(m: p, n: dh, k: p, a: pp.baseAddress! + (bi * h + hi) * p * p, lda: p,
                                       b: vp.baseAddress! + bi * p * kvh * dh + (hi / group) * dh, ldb: kvh * dh,
                                       c: zp.baseAddress! + bi * p * h * dh + hi * dh, ldc: h * dh)
                        }
                    }
                }
            }
        }
        return Variable(Tensor(unchecked: [b, p, h, dh], z), parents: [pattern, v]) { o in
            let gz = o.g
            gz.withUnsafeBufferPointer { gp in
                if pattern.requiresGrad {
                    v.value.scalars.withUnsafeBufferPointer { vp in
                        pattern.accumulate { dp, _ in
                            for bi in 0..<b {
                                for hi in 0..<h {   // dpattern = gz · vᵀ
                                    BLAS.sgemm(transB: true, m: p, n: p, k: dh, a: gp.baseAddress! + bi * p * h * dh + hi * dh, lda: h * dh,
                                               b: vp.baseAddress! + bi * p * kvh * dh + (hi / group) * dh, ldb: kvh * dh,
                                               beta: 1, c: dp + (bi * h + hi) * p * p, ldc: p)
                                }
                            }
                        }
                    }
                }
                if v.requiresGrad {
                    pattern.value.scalars.withUnsafeBufferPointer { pp in
                        v.accumulate { dv, _ in
                            for bi in 0..<b {
                                for hi in 0..<h {   // dv = patternᵀ · gz
                                    BLAS.sgemm(transA: true, m: p, n: dh, k: p, a: pp.baseAddress! + (bi * h + hi) * p * p, lda: p,
                                               b: gp.baseAddress! + bi * p * h * dh + hi * dh, ldb: h * dh,
                                               beta: 1, c: dv + bi * p * kvh * dh + (hi / group) * dh, ldc: kvh * dh)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Variable {
    /// Rotary position embedding of `x [..., heads, d_head]`: each row r (all leading dimensions) rotates
    /// pairs of each head's first `rotaryDim` dimensions (default all of d_head) by the angles whose
    /// cosines and sines are `cos[r · rotaryDim/2 + i]`, `sin[…]`; pairs are (2i, 2i+1) when `interleaved`,
    /// else (i, i + rotaryDim/2); the other dimensions pass through. The backward pass rotates the gradient
    /// back (a rotation's inverse is its transpose).
    public func rotated(cos: [Float], sin: [Float], interleaved: Bool, rotaryDim: Int? = nil) throws -> Variable {
        guard value.rank >= 2 else { throw TensorError.rank(operation: "rotary embedding", expected: 2, found: value.rank) }
        let dh = value.shape[value.rank - 1], heads = value.shape[value.rank - 2]
        let half = (rotaryDim ?? dh) / 2
        let rows = value.count / max(heads * dh, 1)
        guard dh % 2 == 0, 2 * half <= dh, cos.count == rows * half, sin.count == rows * half else {
            throw TensorError.shapeMismatch(operation: "rotary embedding (angles per row and pair)", expected: [rows, half],
                                            found: [cos.count / max(half, 1), half])
        }
        func rotate(_ x: [Float], sign: Float) -> [Float] {
            var out = x
            for r in 0..<rows {
                for h in 0..<heads {
                    let base = (r * heads + h) * dh
                    for i in 0..<half {
                        let (c, s) = (cos[r * half + i], sign * sin[r * half + i])
                        let (a, b) = interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                        let (x0, x1) = (x[base + a], x[base + b])
                        out[base + a] = x0 * c - x1 * s
                        out[base + b] = x0 * s + x1 * c
                    }
                }
            }
            return out
        }
        let x = self
        return Variable(Tensor(unchecked: value.shape, rotate(value.scalars, sign: 1)), parents: [x]) { o in
            x.accumulate(rotate(o.g, sign: -1))
        }
    }
}
