// A weight matrix read in place from a memory-mapped file: `rows` rows (output features) of `columns`
// elements (input features) in a ggml type (F32, F16 and BF16 included: safetensors matrices are views
// too) — PyTorch's `[out, in]` layout, as GGUF and safetensors store linear layers. Nothing is copied or
// dequantized at load; products decode blocks as they go (CKernels/quant.c), so a model costs its file
// size in memory, not four bytes a parameter.

import CKernels
import Foundation
import LoupeTensor

/// A `[rows, columns]` matrix of ggml-typed rows inside a mapped file.
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    /// Output features (rows as stored).
    public let rows: Int
    /// Input features: the length of each row, a multiple of the type's block size.
    public let columns: Int
    /// Bytes from one row to the next.
    public let rowBytes: Int
    /// The first row.
    let base: UnsafeRawPointer
    /// Keeps the mapping alive as long as the matrix is.
    let owner: AnyObject

    /// Up to this many activation rows, products decode each block in registers and dot it with every
    /// row (the generation path); above it, tiles of weight rows are dequantized and multiplied by BLAS.
    public static let directRowLimit = 16

    /// The types products can read in place.
    public static func supports(_ type: GGMLType) -> Bool { loupe_quant_supported(Int32(type.rawValue)) != 0 }

    /// A view of `rows` rows of `columns` elements at `base`, which `owner` keeps mapped. The caller has
    /// checked the type, the shape and that the data lies inside the mapping.
    init(type: GGMLType, rows: Int, columns: Int, base: UnsafeRawPointer, owner: AnyObject) {
        self.type = type
        self.rows = rows
        self.columns = columns
        self.rowBytes = columns / type.blockSize * type.bytesPerBlock
        self.base = base
        self.owner = owner
    }

    /// Bytes the matrix occupies.
    public var byteCount: Int { rows * rowBytes }

    /// Whether `other` holds the same type, shape and bytes.
    public func hasSameContents(as other: QuantizedMatrix) -> Bool {
        type == other.type && rows == other.rows && columns == other.columns
            && (base == other.base || memcmp(base, other.base, byteCount) == 0)
    }

    /// `y[r, o] = Σᵢ x[r, i] · W[o, i]` for `nx` activation rows `x` (`[nx, columns]`, contiguous) into
    /// `y` (`[nx, rows]`, row stride `ldy`, default `rows`); float32 activations throughout.
    public func multiply(_ x: UnsafePointer<Float>, rows nx: Int, into y: UnsafeMutablePointer<Float>, ldy: Int? = nil) {
        let ldy = ldy ?? rows
        let t = Int32(type.rawValue)
        if nx <= Self.directRowLimit {
            _ = loupe_quant_matmul(t, base, rowBytes, rows, columns, x, nx, columns, y, ldy)
            return
        }
        // Float32 rows need no decoding: one GEMM straight from the mapping.
        if type == .F32, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            BLAS.sgemm(transB: true, m: nx, n: rows, k: columns, a: x, lda: columns,
                       b: base.assumingMemoryBound(to: Float.self), ldb: columns, c: y, ldc: ldy)
            return
        }
        // Tiles of about 2 MB of float32 weights: dequantized in parallel, then one GEMM each. On SmolLM2's
        // prompts 4 MB tiles were ~4% faster but held a whole 3.4 MB MLP matrix at once; 1 MB tiles were 12%
        // slower (each tile hands the cores from the kernel pool to OpenBLAS's threads and back).
        let tileRows = min(rows, max(64, (1 << 19) / max(columns, 1)))
        var tile = uninitializedFloats(tileRows * columns)
        tile.withUnsafeMutableBufferPointer { tp in
            guard let t0 = tp.baseAddress else { return }
            for o0 in stride(from: 0, to: rows, by: tileRows) {
                let o1 = min(o0 + tileRows, rows)
                _ = loupe_quant_dequantize_rows(t, base, rowBytes, o0, o1, columns, t0)
                loupe_pool_park()   // BLAS's threads take the cores next: the pool's workers must not spin on them
                BLAS.sgemm(transB: true, m: nx, n: o1 - o0, k: columns, a: x, lda: columns, b: t0, ldb: columns,
                           c: y + o0, ldc: ldy)
            }
        }
    }

    /// Several products with the same activations `x` (`[nx, columns]`, shared `columns`), each into its
    /// own output (`[nx, rows]`): q, k and v, or gate and up, in one pass of the thread pool. Up to
    /// `directRowLimit` rows; above, one product at a time.
    public static func multiply(_ matrices: [QuantizedMatrix], _ x: UnsafePointer<Float>, rows nx: Int,
                                into outputs: [UnsafeMutablePointer<Float>]) {
        precondition(matrices.count == outputs.count, "one output per matrix")
        let k = matrices.first?.columns ?? 0
        guard nx <= directRowLimit, (1...8).contains(matrices.count), matrices.allSatisfy({ $0.columns == k }) else {
            for (m, y) in zip(matrices, outputs) { m.multiply(x, rows: nx, into: y) }
            return
        }
        let types = matrices.map { Int32($0.type.rawValue) }
        let bases: [UnsafeRawPointer?] = matrices.map { $0.base }
        let rowBytes = matrices.map(\.rowBytes), ns = matrices.map(\.rows)
        let ys: [UnsafeMutablePointer<Float>?] = outputs
        _ = withExtendedLifetime(matrices) {
            loupe_quant_matmul_many(Int32(matrices.count), types, bases, rowBytes, ns, k, x, nx, k, ys, ns)
        }
    }

    /// Row `i` dequantized into `out` (`columns` floats): an embedding lookup.
    public func row(_ i: Int, into out: UnsafeMutablePointer<Float>) {
        _ = loupe_quant_dequantize_rows(Int32(type.rawValue), base, rowBytes, i, i + 1, columns, out)
    }

    /// Rows `range` dequantized, `[range.count, columns]` row-major.
    public func dequantized(rows range: Range<Int>) -> [Float] {
        var out = uninitializedFloats(range.count * columns)
        out.withUnsafeMutableBufferPointer { p in
            guard let o = p.baseAddress else { return }
            _ = loupe_quant_dequantize_rows(Int32(type.rawValue), base, rowBytes, range.lowerBound, range.upperBound, columns, o)
        }
        return out
    }

    /// The whole matrix as float32 `[rows, columns]`.
    public func dequantized() -> Tensor { Tensor(unchecked: [rows, columns], dequantized(rows: 0..<rows)) }
}
