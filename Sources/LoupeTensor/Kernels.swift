// Elementwise and row kernels on raw buffers: thin Swift names over the C kernels in `CKernels`,
// which the C compiler vectorizes (and builds for AVX2 and the baseline, picked at run time).

import CKernels

/// Low-level kernels used by `Tensor` operations and the forward pass.
public enum Kernels {
    /// `exp` in place: about 1 ulp for |x| < 87; exactly 0 below −87.3 (so `exp(−∞) = 0`).
    @inlinable public static func exp(_ p: UnsafeMutablePointer<Float>, count: Int) { loupe_exp(p, count) }
    /// `tanh` in place, as `1 − 2 / (exp(2x) + 1)`; absolute error about 1e-7.
    @inlinable public static func tanh(_ p: UnsafeMutablePointer<Float>, count: Int) { loupe_tanh(p, count) }
    /// GELU, tanh approximation (GPT-2's `gelu_new`), in place.
    @inlinable public static func geluTanh(_ p: UnsafeMutablePointer<Float>, count: Int) { loupe_gelu_tanh(p, count) }
    /// GELU with the exact erf (PyTorch's `gelu`), in place.
    @inlinable public static func geluErf(_ p: UnsafeMutablePointer<Float>, count: Int) { loupe_gelu_erf(p, count) }
    /// SiLU (`x · sigmoid(x)`), in place.
    @inlinable public static func silu(_ p: UnsafeMutablePointer<Float>, count: Int) { loupe_silu(p, count) }

    /// Sum of `count` floats (reassociated for speed: rounding may differ from a left-to-right sum).
    @inlinable public static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float { loupe_sum(p, count) }
    /// Dot product of two buffers.
    @inlinable public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        loupe_dot(a, b, count)
    }
    /// Maximum of `count` floats (−∞ for none).
    @inlinable public static func max(_ p: UnsafePointer<Float>, count: Int) -> Float { loupe_max(p, count) }
    /// `dst[i] += src[i]` for `count` floats.
    @inlinable public static func add(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        loupe_add(dst, src, count)
    }
    /// Multiplies `count` floats by `s`, in place.
    @inlinable public static func scale(_ p: UnsafeMutablePointer<Float>, count: Int, by s: Float) { loupe_scale(p, count, s) }

    /// Softmax of each of `rows` rows of length `n`, in place. A row that is all −∞ becomes all zeros
    /// (as TransformerLens does for fully masked attention rows).
    public static func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows { loupe_softmax_row(p + r * n, n) }
    }

    /// Log-softmax of each row, in place.
    public static func logSoftmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows { loupe_log_softmax_row(p + r * n, n) }
    }

    /// LayerNorm of each row as TransformerLens computes it: centre, `scale = sqrt(mean(x²) + eps)`,
    /// divide, then `· w + b` when weights are given. Writes `scale` per row when `scales` is non-nil.
    /// `x` and `out` must not overlap.
    @inlinable
    public static func layerNormRows(
        _ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float,
        weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, scales: UnsafeMutablePointer<Float>?
    ) {
        loupe_layer_norm_rows(x, out, rows, n, eps, weight, bias, scales)
    }

    /// RMSNorm of each row: `scale = sqrt(mean(x²) + eps)`, `x / scale · w`. `x` and `out` must not overlap.
    @inlinable
    public static func rmsNormRows(
        _ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float,
        weight: UnsafePointer<Float>?, scales: UnsafeMutablePointer<Float>?
    ) {
        loupe_rms_norm_rows(x, out, rows, n, eps, weight, scales)
    }
}
