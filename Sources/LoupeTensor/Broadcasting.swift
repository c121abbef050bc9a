// Elementwise arithmetic with numpy's broadcasting: shapes are aligned on their last dimensions, and a
// dimension of size 1 (or a missing one) stretches to match the other side. `resid - mean` with `mean`
// `[batch, pos, 1]`, `acts * mask` with `mask` `[pos, 1]`, `x + bias` with `bias` `[d_model]`.

extension Tensor {
    /// The shape two shapes broadcast to, or nil when they are incompatible.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard x == y || x == 1 || y == 1 else { return nil }
            out[i] = x == 1 ? y : x
        }
        return out
    }

    /// This tensor stretched to `target` (numpy's `broadcast_to`): dimensions of size 1, and missing
    /// leading ones, repeat.
    /// - Throws: `TensorError.shapeMismatch` when the shape does not broadcast to `target`.
    public func broadcast(to target: [Int]) throws -> Tensor {
        if shape == target { return self }
        guard rank <= target.count, Tensor.broadcastShape(shape, target) == target else {
            throw TensorError.shapeMismatch(operation: "broadcast", expected: target, found: shape)
        }
        let padded = [Int](repeating: 1, count: target.count - rank) + shape
        // Source strides, 0 along stretched dimensions.
        var strides = [Int](repeating: 0, count: target.count)
        var s = 1
        for a in stride(from: target.count - 1, through: 0, by: -1) {
            strides[a] = padded[a] == 1 && target[a] != 1 ? 0 : s
            s *= padded[a]
        }
        let total = target.product
        var out = uninitializedFloats(total)
        if total == 0 { return Tensor(unchecked: target, out) }
        // The trailing dimensions that are not stretched are copied as one run.
        var inner = 1, split = target.count
        while split > 0 && strides[split - 1] != 0 { inner *= target[split - 1]; split -= 1 }
        var counter = [Int](repeating: 0, count: split)
        scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var d = 0
                while d < total {
                    var o = 0
                    for a in 0..<split { o += counter[a] * strides[a] }
                    if inner == 1 { dst[d] = src[o] } else { (dst.baseAddress! + d).update(from: src.baseAddress! + o, count: inner) }
                    d += inner
                    var a = split - 1
                    while a >= 0 {
                        counter[a] += 1
                        if counter[a] < target[a] { break }
                        counter[a] = 0
                        a -= 1
                    }
                }
            }
        }
        return Tensor(unchecked: target, out)
    }

    /// Combines two tensors element by element after broadcasting them to a common shape.
    func combined(with other: Tensor, _ op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        guard let target = Tensor.broadcastShape(shape, other.shape) else {
            throw TensorError.shapeMismatch(operation: "\(op) (shapes must broadcast)", expected: shape, found: other.shape)
        }
        let a = try broadcast(to: target)
        // A right operand that is a suffix of the result repeats whole: no need to stretch it.
        let suffix = other.rank <= target.count && Array(target.suffix(other.rank)) == other.shape
        let b = suffix ? other : try other.broadcast(to: target)
        var out = a
        let n = b.count
        if n == 0 { return out }
        b.scalars.withUnsafeBufferPointer { bp in
            out.scalars.withUnsafeMutableBufferPointer { ap in
                if n == ap.count {
                    for i in 0..<n { ap[i] = f(ap[i], bp[i]) }
                } else {
                    var i = 0
                    while i < ap.count {
                        for j in 0..<n { ap[i + j] = f(ap[i + j], bp[j]) }
                        i += n
                    }
                }
            }
        }
        return out
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.combined(with: b, "add", +) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.combined(with: b, "subtract", -) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.combined(with: b, "multiply", *) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.combined(with: b, "divide", /) }

    public static func * (a: Tensor, s: Float) -> Tensor { a.mapped { Kernels.scale($0, count: $1, by: s) } }
    public static func + (a: Tensor, s: Float) -> Tensor { a.mapped { p, n in for i in 0..<n { p[i] += s } } }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static prefix func - (a: Tensor) -> Tensor { a * -1 }

    public static func += (a: inout Tensor, b: Tensor) throws { a = try a + b }
    public static func -= (a: inout Tensor, b: Tensor) throws { a = try a - b }
    public static func *= (a: inout Tensor, b: Tensor) throws { a = try a * b }
    public static func /= (a: inout Tensor, b: Tensor) throws { a = try a / b }
    public static func += (a: inout Tensor, s: Float) { a = a + s }
    public static func -= (a: inout Tensor, s: Float) { a = a - s }
    public static func *= (a: inout Tensor, s: Float) { a = a * s }
    public static func /= (a: inout Tensor, s: Float) { a = a / s }
}
