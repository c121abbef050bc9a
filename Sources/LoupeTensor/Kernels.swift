// Vectorized elementwise and row kernels on raw buffers. Swift keeps strict float order, so a plain
// loop sum does not vectorize: reductions use SIMD16 accumulators, and exp/tanh are polynomial
// approximations (Cephes expf, about 1 ulp) evaluated 16 lanes at a time.

/// Low-level kernels used by `Tensor` operations and the forward pass.
public enum Kernels {
    public typealias V = SIMD16<Float>

    // MARK: exp and friends

    /// `exp(x)` lane-wise; about 1 ulp for |x| < 87; 0 below −87.3, saturating above 88.3.
    @inlinable @inline(__always)
    public static func exp(_ v: V) -> V {
        var x = v.clamped(lowerBound: V(repeating: -87.3), upperBound: V(repeating: 88.3))
        let fx = (x * 1.44269504088896341).rounded(.toNearestOrEven)
        x = x - fx * 0.693359375
        x = x + fx * 2.12194440e-4
        let z = x * x
        var y = V(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        // 2^fx: fx is an integer in [-126, 128]; the magic constant puts it in the low mantissa bits.
        let magic = unsafeBitCast(fx + 12582912.0, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let pow2 = unsafeBitCast((magic &+ 127) &<< 23, to: V.self)
        // exp(−∞) and anything below the float range is exactly 0, as softmax over masked scores needs.
        return (y * pow2).replacing(with: 0, where: v .< -87.3)
    }

    /// `tanh(x)` lane-wise, as `1 − 2 / (exp(2x) + 1)`; absolute error about 1e-7.
    @inlinable @inline(__always)
    public static func tanh(_ x: V) -> V {
        1 - 2 / (exp(x * 2) + 1)
    }

    /// Applies `f` to every element of `buf` in place, 16 at a time, the tail through a padded vector.
    @inlinable @inline(__always)
    public static func map(_ buf: UnsafeMutablePointer<Float>, count: Int, _ f: (V) -> V) {
        var i = 0
        while i + 16 <= count {
            let p = UnsafeMutableRawPointer(buf + i)
            p.storeBytes(of: f(p.loadUnaligned(as: V.self)), as: V.self)
            i += 16
        }
        if i < count {
            var tail = V(repeating: 0)
            for j in 0..<(count - i) { tail[j] = buf[i + j] }
            let r = f(tail)
            for j in 0..<(count - i) { buf[i + j] = r[j] }
        }
    }

    /// GELU, tanh approximation (GPT-2's `gelu_new`), in place.
    public static func geluTanh(_ buf: UnsafeMutablePointer<Float>, count: Int) {
        map(buf, count: count) { x in
            let inner = (x + x * x * x * 0.044715) * 0.7978845608028654
            return x * 0.5 * (1 + tanh(inner))
        }
    }

    /// SiLU (`x · sigmoid(x)`), in place.
    public static func silu(_ buf: UnsafeMutablePointer<Float>, count: Int) {
        map(buf, count: count) { x in x / (1 + exp(-x)) }
    }

    /// GELU with the exact erf (PyTorch's `gelu`), in place. Scalar: erf has no cheap vector form here.
    public static func geluErf(_ buf: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = buf[i]
            buf[i] = 0.5 * x * (1 + Float(erf(Double(x) * 0.7071067811865476)))
        }
    }

    // MARK: reductions

    /// Sum of `count` floats, with SIMD accumulators.
    @inlinable
    public static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + 16 <= count {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
            i += 16
        }
        var s = acc.sum()
        while i < count { s += p[i]; i += 1 }
        return s
    }

    /// Sum of squared deviations from `mean`.
    @inlinable
    public static func sumSquaredDeviation(_ p: UnsafePointer<Float>, count: Int, mean: Float) -> Float {
        var acc = V(repeating: 0)
        let m = V(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let d = UnsafeRawPointer(p + i).loadUnaligned(as: V.self) - m
            acc += d * d
            i += 16
        }
        var s = acc.sum()
        while i < count { let d = p[i] - mean; s += d * d; i += 1 }
        return s
    }

    /// Dot product of two buffers.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + 16 <= count {
            acc += UnsafeRawPointer(a + i).loadUnaligned(as: V.self) * UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
            i += 16
        }
        var s = acc.sum()
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// Maximum of `count` (≥ 1) floats.
    @inlinable
    public static func max(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if count >= 16 {
            var acc = V(repeating: -.infinity)
            while i + 16 <= count {
                acc = pointwiseMax(acc, UnsafeRawPointer(p + i).loadUnaligned(as: V.self))
                i += 16
            }
            m = acc.max()
        }
        while i < count { m = Swift.max(m, p[i]); i += 1 }
        return m
    }

    // MARK: row operations

    /// Softmax of each of `rows` rows of length `n`, in place. A row that is all −∞ becomes all zeros
    /// (as TransformerLens does for fully masked attention rows).
    public static func softmaxRows(_ buf: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows {
            let row = buf + r * n
            let m = max(row, count: n)
            if m == -.infinity {
                row.update(repeating: 0, count: n)
                continue
            }
            let mv = V(repeating: m)
            map(row, count: n) { exp($0 - mv) }
            // `map`'s tail pads with 0 and writes back only the live lanes, so the sum is exact.
            let inv = 1 / sum(row, count: n)
            scale(row, count: n, by: inv)
        }
    }

    /// Log-softmax of each row, in place.
    public static func logSoftmaxRows(_ buf: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows {
            let row = buf + r * n
            let m = max(row, count: n)
            var s: Float = 0
            var i = 0
            let mv = V(repeating: m)
            var acc = V(repeating: 0)
            while i + 16 <= n {
                acc += exp(UnsafeRawPointer(row + i).loadUnaligned(as: V.self) - mv)
                i += 16
            }
            s = acc.sum()
            while i < n { s += Float(Foundation.exp(Double(row[i] - m))); i += 1 }
            let lse = m + Float(Foundation.log(Double(s)))
            for j in 0..<n { row[j] -= lse }
        }
    }

    /// Multiplies `count` floats by `s`, in place.
    @inlinable
    public static func scale(_ buf: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
        let sv = V(repeating: s)
        map(buf, count: count) { $0 * sv }
    }

    /// `dst[i] += src[i]` for `count` floats.
    @inlinable
    public static func add(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let d = UnsafeMutableRawPointer(dst + i)
            d.storeBytes(of: d.loadUnaligned(as: V.self) + UnsafeRawPointer(src + i).loadUnaligned(as: V.self), as: V.self)
            i += 16
        }
        while i < count { dst[i] += src[i]; i += 1 }
    }

    /// Adds the vector `bias` (length `n`) to each of `rows` rows.
    @inlinable
    public static func addRows(_ buf: UnsafeMutablePointer<Float>, rows: Int, bias: UnsafePointer<Float>, n: Int) {
        for r in 0..<rows { add(buf + r * n, bias, count: n) }
    }

    /// LayerNorm of each row as TransformerLens computes it: centre, `scale = sqrt(mean(x²) + eps)`,
    /// divide, then `· w + b` when weights are given. Writes `scale` per row when `scales` is non-nil.
    public static func layerNormRows(
        _ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float,
        weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, scales: UnsafeMutablePointer<Float>?
    ) {
        for r in 0..<rows {
            let src = x + r * n, dst = out + r * n
            let mean = sum(src, count: n) / Float(n)
            let variance = sumSquaredDeviation(src, count: n, mean: mean) / Float(n)
            let scale = (variance + eps).squareRoot()
            scales?[r] = scale
            let inv = 1 / scale
            if let w = weight, let b = bias {
                for j in 0..<n { dst[j] = (src[j] - mean) * inv * w[j] + b[j] }
            } else if let w = weight {
                for j in 0..<n { dst[j] = (src[j] - mean) * inv * w[j] }
            } else {
                for j in 0..<n { dst[j] = (src[j] - mean) * inv }
            }
        }
    }

    /// RMSNorm of each row: `scale = sqrt(mean(x²) + eps)`, `x / scale · w`.
    public static func rmsNormRows(
        _ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float,
        weight: UnsafePointer<Float>?, scales: UnsafeMutablePointer<Float>?
    ) {
        for r in 0..<rows {
            let src = x + r * n, dst = out + r * n
            let scale = (dot(src, src, count: n) / Float(n) + eps).squareRoot()
            scales?[r] = scale
            let inv = 1 / scale
            if let w = weight {
                for j in 0..<n { dst[j] = src[j] * inv * w[j] }
            } else {
                for j in 0..<n { dst[j] = src[j] * inv }
            }
        }
    }
}

import Foundation
