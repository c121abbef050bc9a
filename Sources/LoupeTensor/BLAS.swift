// Matrix products through BLAS (OpenBLAS on Linux, Accelerate on Apple).

import CBLAS
import CKernels

/// Controls for the BLAS library Loupe links.
public enum BLAS {
    /// Sets how many threads BLAS may use (OpenBLAS; a no-op on Accelerate).
    /// Threads for BLAS and for Loupe's own parallel kernels (the quantized products).
    public static func setThreads(_ n: Int) {
        loupe_blas_set_threads(Int32(min(max(1, n), 1024)))
        loupe_pool_set_threads(Int32(min(max(1, n), 64)))
    }

    /// The number of threads BLAS uses (1 where the library has no such control).
    public static var threads: Int { Int(loupe_blas_get_threads()) }

    /// The kernels BLAS runs: OpenBLAS's core name ("SkylakeX", "Haswell", …), "Accelerate" on Apple.
    public static var core: String { String(cString: loupe_blas_core()) }

    /// Whether the CPU has AVX2 and FMA (x86-64 only).
    public static var cpuHasAVX2: Bool { loupe_cpu_has_avx2_fma() != 0 }

    /// `C[m, n] = alpha · op(A) · op(B) + beta · C` on raw row-major buffers with leading dimensions.
    /// Pointer-level entry point for the forward pass; the shapes are the caller's responsibility.
    @inlinable
    public static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if m == 1 && !transA {
            // Below ~64k multiply-adds (a generation step's attention over its keys), plain loops: OpenBLAS
            // hands GEMVs over 9,216 elements to its threads, which then spin on sched_yield and take
            // the core from Loupe's own kernel threads.
            if n * k <= 65536 && (beta == 0 || beta == 1) {
                smallRowProduct(transB: transB, n: n, k: k, alpha: alpha, a: a, b: b, ldb: ldb, accumulate: beta == 1, c: c)
                return
            }
            // One row (a generation step): GEMV is 2–3× faster than OpenBLAS's GEMM with M = 1.
            if transB {   // B is [n, k]
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            } else {      // B is [k, n]
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `c[n] (+)= alpha · a[k] · op(B)` for one row: dot products with B's rows (`transB`, B is `[n, k]`)
    /// or a sum of B's rows scaled by a (B is `[k, n]`).
    @usableFromInline
    static func smallRowProduct(transB: Bool, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>,
                                b: UnsafePointer<Float>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>) {
        if transB {
            for j in 0..<n {
                let d = alpha * loupe_dot(a, b + j * ldb, k)
                c[j] = accumulate ? c[j] + d : d
            }
        } else {
            if !accumulate { c.update(repeating: 0, count: n) }
            for i in 0..<k { loupe_axpy(c, b + i * ldb, alpha * a[i], n) }
        }
    }
}

extension Tensor {
    /// Matrix product over the last two dimensions: `[..., m, k] · [k, n] → [..., m, n]`, or batched
    /// `[b..., m, k] · [b..., k, n] → [b..., m, n]` when both have the same leading dimensions.
    public func matmul(_ other: Tensor) throws -> Tensor {
        guard rank >= 1, other.rank >= 2 else {
            throw TensorError.rank(operation: "matmul", expected: 2, found: min(rank, other.rank))
        }
        let k = shape[rank - 1]
        let m = rank >= 2 ? shape[rank - 2] : 1
        let (k2, n) = (other.shape[other.rank - 2], other.shape[other.rank - 1])
        guard k == k2 else {
            throw TensorError.shapeMismatch(operation: "matmul (inner dimensions)", expected: [k, n], found: other.shape)
        }
        if other.rank == 2 {
            // Fold every leading dimension of self into the rows: one GEMM.
            let rows = count / max(k, 1)
            var out = [Float](repeating: 0, count: rows * n)
            if k == 0 { return Tensor(unchecked: Array(shape.dropLast()) + [n], out) }
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { c in
                        BLAS.sgemm(m: rows, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: n,
                                   c: c.baseAddress!, ldc: n)
                    }
                }
            }
            let outShape = rank == 1 ? [n] : Array(shape.dropLast()) + [n]
            return Tensor(unchecked: outShape, out)
        }
        guard rank == other.rank, shape.dropLast(2) == other.shape.dropLast(2) else {
            throw TensorError.shapeMismatch(operation: "batched matmul (leading dimensions)",
                                            expected: Array(shape.dropLast(2)) + [k, n], found: other.shape)
        }
        let batch = shape.dropLast(2).reduce(1, *)
        var out = [Float](repeating: 0, count: batch * m * n)
        if k > 0 {
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { c in
                        for i in 0..<batch {
                            BLAS.sgemm(m: m, n: n, k: k, a: a.baseAddress! + i * m * k, lda: k,
                                       b: b.baseAddress! + i * k * n, ldb: n, c: c.baseAddress! + i * m * n, ldc: n)
                        }
                    }
                }
            }
        }
        return Tensor(unchecked: Array(shape.dropLast(2)) + [m, n], out)
    }

    /// The transpose of a rank-2 tensor, or of the last two dimensions of a higher-rank one.
    public func transposed() throws -> Tensor {
        guard rank >= 2 else { throw TensorError.rank(operation: "transposed", expected: 2, found: rank) }
        let (m, n) = (shape[rank - 2], shape[rank - 1])
        let batch = count / max(m * n, 1)
        var out = uninitializedFloats(count)
        // In 32×32 tiles, so that both the reads and the writes stay within a few cache lines.
        let tile = 32
        scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<batch {
                    let s = src.baseAddress! + b * m * n, d = dst.baseAddress! + b * m * n
                    for i0 in stride(from: 0, to: m, by: tile) {
                        for j0 in stride(from: 0, to: n, by: tile) {
                            for i in i0..<min(i0 + tile, m) {
                                for j in j0..<min(j0 + tile, n) { d[j * m + i] = s[i * n + j] }
                            }
                        }
                    }
                }
            }
        }
        var outShape = shape
        outShape.swapAt(rank - 2, rank - 1)
        return Tensor(unchecked: outShape, out)
    }

    /// Reorders dimensions: `permuted([0, 2, 1, 3])` swaps the middle two of a rank-4 tensor.
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.count == rank, Set(order) == Set(0..<rank) else {
            throw TensorError.invalidArgument("permuted: \(order) is not a permutation of the \(rank) dimensions of shape \(shape)")
        }
        let newShape = order.map { shape[$0] }
        var srcStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { srcStrides[i] = srcStrides[i + 1] * shape[i + 1] }
        let strides = order.map { srcStrides[$0] }
        var out = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: rank)
        scalars.withUnsafeBufferPointer { src in
            for flat in 0..<count {
                var off = 0
                for d in 0..<rank { off += index[d] * strides[d] }
                out[flat] = src[off]
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < newShape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
        }
        return Tensor(unchecked: newShape, out)
    }
}
