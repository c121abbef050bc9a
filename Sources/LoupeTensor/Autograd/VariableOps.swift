// The differentiable operations a transformer needs: linear algebra, broadcasting arithmetic, norms,
// activations, embedding lookups, causal attention and cross-entropy. Each forward computes with the
// same kernels as inference; each backward is the textbook derivative, checked against finite
// differences and PyTorch in the tests.

import CBLAS
import Foundation

extension Variable {
    // MARK: - Shape

    /// The same elements under another shape.
    public func reshaped(_ shape: [Int]) throws -> Variable {
        let out = try value.reshaped(shape)
        return Variable(out, parents: [self]) { [self] o in accumulate(o.g) }
    }

    /// Reorders dimensions (`permuted([1, 0, 2])`).
    public func permuted(_ order: [Int]) throws -> Variable {
        let out = try value.permuted(order)
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return Variable(out, parents: [self]) { [self] o in
            // Shapes and orders were checked in the forward pass.
            if let back = try? o.grad.permuted(inverse) { accumulate(back.scalars) }
        }
    }

    // MARK: - Linear algebra

    /// `x · w` with `x [..., k]` and `w [k, n]`: `[..., n]`.
    public func matmul(_ w: Variable) throws -> Variable {
        guard value.rank >= 1, w.value.rank == 2, value.shape.last == w.value.shape[0] else {
            throw TensorError.shapeMismatch(operation: "matmul (x [..., k] · w [k, n])",
                                            expected: [value.shape.last ?? -1, -1], found: w.value.shape)
        }
        let k = w.value.shape[0], n = w.value.shape[1], rows = value.count / max(k, 1)
        var out = [Float](repeating: 0, count: rows * n)
        value.scalars.withUnsafeBufferPointer { x in
            w.value.scalars.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { o in
                    BLAS.sgemm(m: rows, n: n, k: k, a: x.baseAddress!, lda: k, b: wp.baseAddress!, ldb: n,
                               c: o.baseAddress!, ldc: n)
                }
            }
        }
        let x = self
        return Variable(Tensor(unchecked: Array(value.shape.dropLast()) + [n], out), parents: [x, w]) { o in
            let gy = o.g
            gy.withUnsafeBufferPointer { g in
                if x.requiresGrad {
                    w.value.scalars.withUnsafeBufferPointer { wp in
                        x.accumulate { dx, _ in   // dx += g · wᵀ
                            BLAS.sgemm(transB: true, m: rows, n: k, k: n, a: g.baseAddress!, lda: n,
                                       b: wp.baseAddress!, ldb: n, beta: 1, c: dx, ldc: k)
                        }
                    }
                }
                if w.requiresGrad {
                    x.value.scalars.withUnsafeBufferPointer { xp in
                        w.accumulate { dw, _ in   // dw += xᵀ · g
                            BLAS.sgemm(transA: true, m: k, n: n, k: rows, a: xp.baseAddress!, lda: k,
                                       b: g.baseAddress!, ldb: n, beta: 1, c: dw, ldc: n)
                        }
                    }
                }
            }
        }
    }

    // MARK: - Arithmetic

    private func sameShape(_ other: Variable, _ op: String) throws {
        guard value.shape == other.value.shape else {
            throw TensorError.shapeMismatch(operation: op, expected: value.shape, found: other.value.shape)
        }
    }

    /// Elementwise sum of two variables of one shape.
    public static func + (a: Variable, b: Variable) throws -> Variable {
        try a.sameShape(b, "add")
        var out = a.value.scalars
        out.withUnsafeMutableBufferPointer { o in
            b.value.scalars.withUnsafeBufferPointer { Kernels.add(o.baseAddress!, $0.baseAddress!, count: o.count) }
        }
        return Variable(Tensor(unchecked: a.value.shape, out), parents: [a, b]) { o in
            let g = o.g
            a.accumulate(g)
            b.accumulate(g)
        }
    }

    /// Elementwise difference of two variables of one shape.
    public static func - (a: Variable, b: Variable) throws -> Variable {
        try a.sameShape(b, "subtract")
        let out = zip(a.value.scalars, b.value.scalars).map { $0 - $1 }
        return Variable(Tensor(unchecked: a.value.shape, out), parents: [a, b]) { o in
            let g = o.g
            a.accumulate(g)
            b.accumulate(g.map { -$0 })
        }
    }

    /// Elementwise product of two variables of one shape.
    public static func * (a: Variable, b: Variable) throws -> Variable {
        try a.sameShape(b, "multiply")
        let out = zip(a.value.scalars, b.value.scalars).map { $0 * $1 }
        return Variable(Tensor(unchecked: a.value.shape, out), parents: [a, b]) { o in
            let g = o.g
            if a.requiresGrad { a.accumulate(zip(g, b.value.scalars).map { $0 * $1 }) }
            if b.requiresGrad { b.accumulate(zip(g, a.value.scalars).map { $0 * $1 }) }
        }
    }

    /// Every element times a constant.
    public func scaled(by s: Float) -> Variable {
        Variable(value * s, parents: [self]) { [self] o in accumulate(o.g.map { $0 * s }) }
    }

    private func rowVector(_ v: Variable, _ op: String) throws -> Int {
        let n = value.shape.last ?? 0
        guard v.value.rank == 1, v.value.count == n, n > 0 else {
            throw TensorError.shapeMismatch(operation: "\(op) (x [..., n] with a vector [n])", expected: [n], found: v.value.shape)
        }
        return n
    }

    /// `x + b` with `b [n]` added to every row of `x [..., n]`.
    public func addingRow(_ b: Variable) throws -> Variable {
        let n = try rowVector(b, "add a bias")
        var out = value.scalars
        let rows = out.count / n
        out.withUnsafeMutableBufferPointer { o in
            b.value.scalars.withUnsafeBufferPointer { bp in
                for r in 0..<rows { Kernels.add(o.baseAddress! + r * n, bp.baseAddress!, count: n) }
            }
        }
        let x = self
        return Variable(Tensor(unchecked: value.shape, out), parents: [x, b]) { o in
            let g = o.g
            x.accumulate(g)
            if b.requiresGrad {
                b.accumulate { db, _ in
                    g.withUnsafeBufferPointer { gp in for r in 0..<rows { Kernels.add(db, gp.baseAddress! + r * n, count: n) } }
                }
            }
        }
    }

    /// `x * w` with `w [n]` multiplying every row of `x [..., n]`.
    public func multiplyingRow(_ w: Variable) throws -> Variable {
        let n = try rowVector(w, "multiply by a row")
        let rows = value.count / n
        var out = value.scalars
        let wv = w.value.scalars
        for r in 0..<rows { for j in 0..<n { out[r * n + j] *= wv[j] } }
        let x = self
        return Variable(Tensor(unchecked: value.shape, out), parents: [x, w]) { o in
            let g = o.g
            if x.requiresGrad {
                var dx = g
                for r in 0..<rows { for j in 0..<n { dx[r * n + j] *= wv[j] } }
                x.accumulate(dx)
            }
            if w.requiresGrad {
                let xv = x.value.scalars
                w.accumulate { dw, _ in
                    for r in 0..<rows { for j in 0..<n { dw[j] += g[r * n + j] * xv[r * n + j] } }
                }
            }
        }
    }

    // MARK: - Reductions

    /// The sum of all elements (a scalar).
    public func sum() -> Variable {
        let n = value.count
        return Variable(Tensor(scalar: value.sum()), parents: [self]) { [self] o in
            accumulate([Float](repeating: o.g[0], count: n))
        }
    }

    /// The mean of all elements (a scalar).
    public func mean() -> Variable { sum().scaled(by: 1 / Float(max(value.count, 1))) }

    /// The elements at the given flat (row-major) indices, as a vector.
    public func gathering(flatIndices: [Int]) throws -> Variable {
        for i in flatIndices where i < 0 || i >= value.count {
            throw TensorError.indexOutOfRange(shape: value.shape, index: [i])
        }
        let x = value.scalars
        let n = value.count
        return Variable(Tensor(flatIndices.map { x[$0] }), parents: [self]) { [self] o in
            let g = o.g
            accumulate { dx, _ in for (k, i) in flatIndices.enumerated() { dx[i] += g[k] } }
            _ = n
        }
    }

    // MARK: - Elementwise non-linearities

    /// Applies `f` elementwise; `derivative(x, y)` is dy/dx.
    private func elementwise(_ kernel: (UnsafeMutablePointer<Float>, Int) -> Void,
                             derivative: @escaping (Float, Float) -> Float) -> Variable {
        let y = value.mapped(kernel)
        let x = self
        return Variable(y, parents: [x]) { o in
            let g = o.g, xv = x.value.scalars, yv = y.scalars
            var dx = [Float](repeating: 0, count: g.count)
            for i in 0..<g.count { dx[i] = g[i] * derivative(xv[i], yv[i]) }
            x.accumulate(dx)
        }
    }

    /// GELU with the tanh approximation (GPT-2's `gelu_new`).
    public func geluTanh() -> Variable {
        elementwise(Kernels.geluTanh) { x, _ in
            let c: Float = 0.7978845608028654   // sqrt(2/π)
            let inner = c * (x + 0.044715 * x * x * x)
            let t = Foundation.tanh(inner)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        }
    }

    /// GELU with the exact error function.
    public func geluErf() -> Variable {
        elementwise(Kernels.geluErf) { x, _ in
            0.5 * (1 + Foundation.erf(x / 1.4142135623730951)) + x * Foundation.exp(-0.5 * x * x) * 0.3989422804014327
        }
    }

    /// max(x, 0).
    public func relu() -> Variable {
        elementwise({ p, n in for i in 0..<n where !(p[i] > 0) { p[i] = 0 } }) { x, _ in x > 0 ? 1 : 0 }
    }

    /// x · sigmoid(x).
    public func silu() -> Variable {
        elementwise(Kernels.silu) { x, _ in
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        }
    }

    /// Zeroes each element with probability `p` and scales the rest by 1/(1−p) (inverted dropout).
    /// `p == 0` returns `self`.
    public func dropout(_ p: Float, using rng: inout some RandomNumberGenerator) -> Variable {
        guard p > 0 else { return self }
        let keep = 1 - p
        let mask: [Float] = (0..<value.count).map { _ in Float.random(in: 0..<1, using: &rng) < keep ? 1 / keep : 0 }
        let out = zip(value.scalars, mask).map { $0 * $1 }
        return Variable(Tensor(unchecked: value.shape, out), parents: [self]) { [self] o in
            accumulate(zip(o.g, mask).map { $0 * $1 })
        }
    }

    // MARK: - Normalization and softmax

    /// TransformerLens's normalization core over the last dimension, before any weight: LayerNorm
    /// (`centered`: `(x − mean) / sqrt(mean((x − mean)²) + eps)`) or RMSNorm (`x / sqrt(mean(x²) + eps)`).
    /// Returns the normalized variable and each row's scale (the `hook_scale` value).
    public func normalized(centered: Bool, eps: Float) -> (normalized: Variable, scale: Tensor) {
        let n = value.shape.last ?? 1
        let rows = value.count / max(n, 1)
        var y = [Float](repeating: 0, count: value.count)
        var scales = [Float](repeating: 0, count: rows)
        value.scalars.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                scales.withUnsafeMutableBufferPointer { sp in
                    if centered {
                        Kernels.layerNormRows(xp.baseAddress!, out: yp.baseAddress!, rows: rows, n: n, eps: eps,
                                              weight: nil, bias: nil, scales: sp.baseAddress)
                    } else {
                        Kernels.rmsNormRows(xp.baseAddress!, out: yp.baseAddress!, rows: rows, n: n, eps: eps,
                                            weight: nil, scales: sp.baseAddress)
                    }
                }
            }
        }
        let x = self
        let out = Variable(Tensor(unchecked: value.shape, y), parents: [x]) { o in
            let g = o.g
            var dx = [Float](repeating: 0, count: g.count)
            for r in 0..<rows {
                let base = r * n
                var meanG: Float = 0, meanGY: Float = 0
                for j in 0..<n { meanG += g[base + j]; meanGY += g[base + j] * y[base + j] }
                meanG /= Float(n); meanGY /= Float(n)
                let inv = 1 / scales[r]
                for j in 0..<n {
                    dx[base + j] = inv * (g[base + j] - (centered ? meanG : 0) - y[base + j] * meanGY)
                }
            }
            x.accumulate(dx)
        }
        var scaleShape = value.shape
        if !scaleShape.isEmpty { scaleShape[scaleShape.count - 1] = 1 }
        return (out, Tensor(unchecked: scaleShape, scales))
    }

    /// Softmax over the last dimension (−∞ entries get probability 0).
    public func softmax() -> Variable {
        let n = value.shape.last ?? 1
        let y = value.softmax()
        let x = self
        return Variable(y, parents: [x]) { o in
            let g = o.g, yv = y.scalars
            var dx = [Float](repeating: 0, count: g.count)
            for r in 0..<(g.count / max(n, 1)) {
                let base = r * n
                var dot: Float = 0
                for j in 0..<n { dot += g[base + j] * yv[base + j] }
                for j in 0..<n { dx[base + j] = yv[base + j] * (g[base + j] - dot) }
            }
            x.accumulate(dx)
        }
    }

    // MARK: - Embedding and loss

    /// Rows of `table [vocab, d]` for `ids`: `[ids.count, d]`.
    public static func embedding(_ table: Variable, _ ids: [Int]) throws -> Variable {
        let out = try Tensor.embedding(table.value, ids)
        let d = table.value.shape[1]
        return Variable(out, parents: [table]) { o in
            let g = o.g
            table.accumulate { dt, _ in
                g.withUnsafeBufferPointer { gp in
                    for (r, id) in ids.enumerated() { Kernels.add(dt + id * d, gp.baseAddress! + r * d, count: d) }
                }
            }
        }
    }

    /// Mean cross-entropy of `logits [..., vocab]` against one target per row; rows whose target is
    /// negative are ignored. A scalar.
    /// - Throws: `TensorError.shapeMismatch` for a wrong target count, `indexOutOfRange` for a target ≥ vocab,
    ///   `invalidArgument` when every target is ignored.
    public func crossEntropy(targets: [Int]) throws -> Variable {
        let v = value.shape.last ?? 0
        let rows = value.count / max(v, 1)
        guard targets.count == rows else {
            throw TensorError.shapeMismatch(operation: "crossEntropy targets (one per row)", expected: [rows], found: [targets.count])
        }
        for t in targets where t >= v { throw TensorError.indexOutOfRange(shape: [v], index: [t]) }
        let counted = targets.filter { $0 >= 0 }.count
        guard counted > 0 else { throw TensorError.invalidArgument("crossEntropy: every target is ignored (negative)") }
        var logProbs = value.scalars
        logProbs.withUnsafeMutableBufferPointer { Kernels.logSoftmaxRows($0.baseAddress!, rows: rows, n: v) }
        var loss: Double = 0
        for (r, t) in targets.enumerated() where t >= 0 { loss -= Double(logProbs[r * v + t]) }
        let x = self
        return Variable(Tensor(scalar: Float(loss / Double(counted))), parents: [x]) { o in
            let scale = o.g[0] / Float(counted)
            // d/dlogits = (softmax − onehot) · scale on counted rows, 0 on ignored ones.
            var dx = logProbs
            dx.withUnsafeMutableBufferPointer { Kernels.exp($0.baseAddress!, count: $0.count) }
            for (r, t) in targets.enumerated() {
                if t >= 0 {
                    dx.withUnsafeMutableBufferPointer { Kernels.scale($0.baseAddress! + r * v, count: v, by: scale) }
                    dx[r * v + t] -= scale
                } else {
                    for j in 0..<v { dx[r * v + j] = 0 }
                }
            }
            x.accumulate(dx)
        }
    }
}
