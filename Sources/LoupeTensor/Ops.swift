// Shape-checked tensor operations built on `Kernels`.

extension Tensor {
    /// Applies a buffer kernel to a copy of this tensor.
    @inlinable
    func mapped(_ kernel: (UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        var out = self
        let n = out.count
        out.scalars.withUnsafeMutableBufferPointer { p in if n > 0 { kernel(p.baseAddress!, n) } }
        return out
    }

    /// GELU with the tanh approximation (GPT-2's `gelu_new`).
    public func geluTanh() -> Tensor { mapped(Kernels.geluTanh) }
    /// GELU with the exact erf.
    public func geluErf() -> Tensor { mapped(Kernels.geluErf) }
    /// SiLU, `x · sigmoid(x)`.
    public func silu() -> Tensor { mapped(Kernels.silu) }

    /// Softmax over the last dimension; an all-−∞ row becomes zeros.
    public func softmax() -> Tensor {
        let n = shape.last ?? 1
        return mapped { Kernels.softmaxRows($0, rows: $1 / max(n, 1), n: n) }
    }

    /// Log-softmax over the last dimension.
    public func logSoftmax() -> Tensor {
        let n = shape.last ?? 1
        return mapped { Kernels.logSoftmaxRows($0, rows: $1 / max(n, 1), n: n) }
    }

    /// LayerNorm over the last dimension (weights optional, `[n]` each).
    public func layerNorm(weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5) throws -> Tensor {
        let n = shape.last ?? 1
        for (name, t) in [("weight", weight), ("bias", bias)] {
            if let t, t.shape != [n] {
                throw TensorError.shapeMismatch(operation: "layerNorm \(name)", expected: [n], found: t.shape)
            }
        }
        var out = Tensor(zeros: shape)
        let rows = count / max(n, 1)
        scalars.withUnsafeBufferPointer { x in
            out.scalars.withUnsafeMutableBufferPointer { o in
                (weight?.scalars ?? []).withUnsafeBufferPointer { w in
                    (bias?.scalars ?? []).withUnsafeBufferPointer { b in
                        Kernels.layerNormRows(x.baseAddress!, out: o.baseAddress!, rows: rows, n: n, eps: eps,
                                              weight: weight == nil ? nil : w.baseAddress,
                                              bias: bias == nil ? nil : b.baseAddress, scales: nil)
                    }
                }
            }
        }
        return out
    }

    /// RMSNorm over the last dimension.
    public func rmsNorm(weight: Tensor? = nil, eps: Float = 1e-6) throws -> Tensor {
        let n = shape.last ?? 1
        if let weight, weight.shape != [n] {
            throw TensorError.shapeMismatch(operation: "rmsNorm weight", expected: [n], found: weight.shape)
        }
        var out = Tensor(zeros: shape)
        let rows = count / max(n, 1)
        scalars.withUnsafeBufferPointer { x in
            out.scalars.withUnsafeMutableBufferPointer { o in
                if let weight {
                    weight.scalars.withUnsafeBufferPointer { w in
                        Kernels.rmsNormRows(x.baseAddress!, out: o.baseAddress!, rows: rows, n: n, eps: eps,
                                            weight: w.baseAddress, scales: nil)
                    }
                } else {
                    Kernels.rmsNormRows(x.baseAddress!, out: o.baseAddress!, rows: rows, n: n, eps: eps,
                                        weight: nil, scales: nil)
                }
            }
        }
        return out
    }

    /// Rows of a `[rows, d]` table: `embedding(table, ids)` → `[ids.count, d]`.
    public static func embedding(_ table: Tensor, _ ids: [Int]) throws -> Tensor {
        guard table.rank == 2 else { throw TensorError.rank(operation: "embedding", expected: 2, found: table.rank) }
        let (rows, d) = (table.shape[0], table.shape[1])
        var out = [Float](repeating: 0, count: ids.count * d)
        for (i, id) in ids.enumerated() {
            guard id >= 0 && id < rows else { throw TensorError.indexOutOfRange(shape: table.shape, index: [id]) }
            for j in 0..<d { out[i * d + j] = table.scalars[id * d + j] }
        }
        return Tensor(unchecked: [ids.count, d], out)
    }

    /// Sum over the last dimension (the dimension is removed).
    public func sumLastDim() -> Tensor {
        let n = shape.last ?? 1
        let rows = count / max(n, 1)
        var out = [Float](repeating: 0, count: rows)
        scalars.withUnsafeBufferPointer { p in
            for r in 0..<rows { out[r] = Kernels.sum(p.baseAddress! + r * n, count: n) }
        }
        return Tensor(unchecked: Array(shape.dropLast()), out)
    }

    /// Mean over the last dimension (the dimension is removed).
    public func meanLastDim() -> Tensor {
        let n = Float(shape.last ?? 1)
        return sumLastDim() * (1 / n)
    }

    /// The sum of all elements.
    public func sum() -> Float {
        scalars.withUnsafeBufferPointer { Kernels.sum($0.baseAddress!, count: count) }
    }

    /// The largest absolute difference to `other` (∞ when the shapes differ).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        guard shape == other.shape else { return .infinity }
        var m: Float = 0
        for i in 0..<count {
            let (a, b) = (scalars[i], other.scalars[i])
            if a == b { continue }  // also equal infinities
            m = Swift.max(m, abs(a - b))
            if a.isNaN != b.isNaN { return .infinity }
        }
        return m
    }

    /// Index of the largest element of each row (last dimension).
    public func argmaxLastDim() -> [Int] {
        let n = shape.last ?? 1
        let rows = count / max(n, 1)
        return (0..<rows).map { r in
            var best = 0
            for j in 1..<max(n, 1) where scalars[r * n + j] > scalars[r * n + best] { best = j }
            return best
        }
    }
}

/// The `k` largest values of `values` with their indices (offsets from the slice's start), largest
/// first; ties keep the lower index first.
public func topK(_ values: ArraySlice<Float>, k: Int) -> [(index: Int, value: Float)] {
    let k = min(k, values.count)
    if k <= 0 { return [] }
    let base = values.startIndex
    if k > 64 {
        // Many candidates: one O(n log n) sort beats inserting into a long sorted buffer.
        let order = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        return order.prefix(k).map { (index: $0 - base, value: values[$0]) }
    }
    // Few candidates (the usual top 10 of a 50k vocabulary): a small sorted buffer, one pass.
    var best: [(index: Int, value: Float)] = []
    best.reserveCapacity(k + 1)
    for i in values.indices {
        let v = values[i]
        if best.count == k, let last = best.last, !(v > last.value) { continue }
        var pos = best.count
        while pos > 0 && v > best[pos - 1].value { pos -= 1 }
        best.insert((index: i - base, value: v), at: pos)
        if best.count > k { best.removeLast() }
    }
    return best
}

// MARK: half-precision conversion

extension Tensor {
    /// Float32 from IEEE half-precision bit patterns.
    public static func float32(fromFloat16 bits: UnsafeBufferPointer<UInt16>) -> [Float] {
        bits.map { halfToFloat($0) }
    }

    /// Float32 from bfloat16 bit patterns (the top half of a float32).
    public static func float32(fromBFloat16 bits: UnsafeBufferPointer<UInt16>) -> [Float] {
        bits.map { Float(bitPattern: UInt32($0) << 16) }
    }
}

/// One IEEE-754 half to float, including subnormals, infinities and NaN.
@inlinable
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1f
    let mant = UInt32(h & 0x3ff)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal: value = mant · 2^-24.
        let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign == 0 ? v : -v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}
