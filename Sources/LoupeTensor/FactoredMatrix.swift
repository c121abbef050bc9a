// A low-rank matrix kept as the product of its factors, A·B (`[m, k] · [k, n]`, k small), as TransformerLens's
// FactoredMatrix: the QK circuit W_Q W_Kᵀ and the OV circuit W_V W_O of a head are d_model × d_model matrices of
// rank d_head. Norms, eigenvalues and singular values come from k × k matrices; the product is formed only
// when asked (`ab`).

import CBLAS
import Foundation

/// A matrix `A · B` that is never materialized unless asked.
public struct FactoredMatrix: Sendable {
    /// `[m, k]`
    public let a: Tensor
    /// `[k, n]`
    public let b: Tensor

    /// - Throws: `TensorError` unless `a` is `[m, k]` and `b` is `[k, n]`.
    public init(_ a: Tensor, _ b: Tensor) throws {
        guard a.rank == 2 else { throw TensorError.rank(operation: "FactoredMatrix (left factor)", expected: 2, found: a.rank) }
        guard b.rank == 2 else { throw TensorError.rank(operation: "FactoredMatrix (right factor)", expected: 2, found: b.rank) }
        guard a.shape[1] == b.shape[0] else {
            throw TensorError.shapeMismatch(operation: "FactoredMatrix (inner dimensions)", expected: [a.shape[1], b.shape[1]], found: b.shape)
        }
        self.a = a
        self.b = b
    }

    /// `[m, n]`
    public var shape: [Int] { [a.shape[0], b.shape[1]] }
    /// The inner dimension k (an upper bound of the rank).
    public var innerDimension: Int { a.shape[1] }

    /// The product, materialized: `[m, n]`.
    public var ab: Tensor { (try? a.matmul(b)) ?? Tensor(zeros: shape) }

    /// `B · A`, `[k, k]`, for square products: it has the product's non-zero eigenvalues.
    public func ba() throws -> Tensor {
        guard shape[0] == shape[1] else {
            throw TensorError.invalidArgument("B·A needs a square product; this one is \(shape)")
        }
        return try b.matmul(a)
    }

    /// `(A B)ᵀ = Bᵀ Aᵀ`.
    public func transposed() throws -> FactoredMatrix { try FactoredMatrix(b.transposed(), a.transposed()) }

    /// `A · (B · M)`: the product with a matrix on the right, still factored.
    public func matmul(_ m: Tensor) throws -> FactoredMatrix { try FactoredMatrix(a, b.matmul(m)) }

    /// `(M · A) · B`: the product with a matrix on the left, still factored.
    public func leftMultiplied(by m: Tensor) throws -> FactoredMatrix { try FactoredMatrix(m.matmul(a), b) }

    /// `(A₁ B₁)(A₂ B₂) = A₁ (B₁ A₂ B₂)`.
    public func matmul(_ other: FactoredMatrix) throws -> FactoredMatrix {
        try FactoredMatrix(a, b.matmul(other.a).matmul(other.b))
    }

    /// ‖A B‖_F, from the k × k Gram matrices: ‖AB‖² = Σᵢⱼ (AᵀA)ᵢⱼ (BBᵀ)ᵢⱼ.
    public var frobeniusNorm: Float {
        guard let ga = try? a.transposed().matmul(a), let gb = try? b.matmul(b.transposed()) else { return 0 }
        var s: Double = 0
        for i in 0..<ga.count { s += Double(ga.scalars[i]) * Double(gb.scalars[i]) }
        return Float(max(s, 0).squareRoot())
    }

    /// The eigenvalues of a square product: those of the k × k matrix B·A (the product's non-zero
    /// eigenvalues, plus zeros up to k), sorted by decreasing modulus. Real and imaginary parts.
    public func eigenvalues() throws -> [(re: Float, im: Float)] {
        try LAPACK.eigenvalues(try ba()).sorted { hypot($0.re, $0.im) > hypot($1.re, $1.im) }
    }

    /// The singular values (the largest k), in decreasing order: square roots of the eigenvalues of
    /// (AᵀA)(BBᵀ), which are those of (AB)(AB)ᵀ.
    public func singularValues() throws -> [Float] {
        let product = try a.transposed().matmul(a).matmul(b.matmul(b.transposed()))
        return try LAPACK.eigenvalues(product).map { max($0.re, 0).squareRoot() }.sorted(by: >)
    }
}

/// LAPACK routines Loupe uses (OpenBLAS on Linux, Accelerate on Apple).
public enum LAPACK {
    /// All eigenvalues of a square matrix (`sgeev`), unsorted.
    public static func eigenvalues(_ m: Tensor) throws -> [(re: Float, im: Float)] {
        guard m.rank == 2, m.shape[0] == m.shape[1] else {
            throw TensorError.invalidArgument("eigenvalues need a square matrix, found shape \(m.shape)")
        }
        let n = m.shape[0]
        if n == 0 { return [] }
        guard m.scalars.allSatisfy({ $0.isFinite }) else {
            throw TensorError.invalidArgument("eigenvalues of a matrix with NaN or infinite entries")
        }
        // LAPACK is column-major: pass the transpose, which has the same eigenvalues.
        var a = m.scalars
        var wr = [Float](repeating: 0, count: n), wi = [Float](repeating: 0, count: n)
        var n32 = Int32(n), lda = Int32(n), one: Int32 = 1, info: Int32 = 0
        var jobvl = CChar(UInt8(ascii: "N")), jobvr = CChar(UInt8(ascii: "N"))
        var vl: Float = 0, vr: Float = 0   // eigenvectors are not computed
        var workSize: Float = 0
        var lwork: Int32 = -1
        sgeev_(&jobvl, &jobvr, &n32, &a, &lda, &wr, &wi, &vl, &one, &vr, &one, &workSize, &lwork, &info)
        lwork = Int32(max(workSize, Float(4 * n)))
        var work = [Float](repeating: 0, count: Int(lwork))
        sgeev_(&jobvl, &jobvr, &n32, &a, &lda, &wr, &wi, &vl, &one, &vr, &one, &work, &lwork, &info)
        guard info == 0 else { throw TensorError.lapack(routine: "sgeev", info: Int(info)) }
        return (0..<n).map { (re: wr[$0], im: wi[$0]) }
    }

    /// Eigenvalues (ascending) and orthonormal eigenvectors (rows of `vectors`, `[n, n]`) of a symmetric
    /// matrix (`ssyevd`; only the lower triangle is read).
    public static func symmetricEigen(_ m: Tensor) throws -> (values: [Float], vectors: Tensor) {
        guard m.rank == 2, m.shape[0] == m.shape[1] else {
            throw TensorError.invalidArgument("a symmetric eigendecomposition needs a square matrix, found shape \(m.shape)")
        }
        let n = m.shape[0]
        if n == 0 { return ([], Tensor(zeros: [0, 0])) }
        guard m.scalars.allSatisfy({ $0.isFinite }) else {
            throw TensorError.invalidArgument("eigenvalues of a matrix with NaN or infinite entries")
        }
        // Column-major LAPACK reads our row-major matrix as its transpose: the same symmetric matrix.
        var a = m.scalars
        var w = [Float](repeating: 0, count: n)
        var n32 = Int32(n), lda = Int32(n), info: Int32 = 0
        var jobz = CChar(UInt8(ascii: "V")), uplo = CChar(UInt8(ascii: "U"))
        var workSize: Float = 0, iworkSize: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        ssyevd_(&jobz, &uplo, &n32, &a, &lda, &w, &workSize, &lwork, &iworkSize, &liwork, &info)
        lwork = Int32(max(workSize, 1)); liwork = max(iworkSize, 1)
        var work = [Float](repeating: 0, count: Int(lwork)), iwork = [Int32](repeating: 0, count: Int(liwork))
        ssyevd_(&jobz, &uplo, &n32, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
        guard info == 0 else { throw TensorError.lapack(routine: "ssyevd", info: Int(info)) }
        // Column j of the column-major result (eigenvector j) is row j of `a` read row-major.
        return (w, Tensor(unchecked: [n, n], a))
    }

    /// The solution x of `A·x = b` for a symmetric positive-definite `A` (`[n, n]` row-major, float64;
    /// only one triangle is read), by Cholesky (`dposv`).
    /// - Throws: `TensorError.invalidArgument` for mismatched sizes or non-finite entries,
    ///   `TensorError.notPositiveDefinite` when the factorization meets a non-positive pivot.
    public static func solvePositiveDefinite(_ a: [Double], n: Int, _ b: [Double]) throws -> [Double] {
        try solvePositiveDefinite(a, n: n, columns: [b])[0]
    }

    /// The solutions of `A·X = B` for each column of B (given as separate vectors), by one Cholesky (`dposv`).
    public static func solvePositiveDefinite(_ a: [Double], n: Int, columns: [[Double]]) throws -> [[Double]] {
        let b = columns.flatMap { $0 }
        guard n > 0, a.count == n * n, !columns.isEmpty, columns.allSatisfy({ $0.count == n }) else {
            throw TensorError.invalidArgument("a positive-definite solve needs an n×n matrix and n values, found \(a.count) and \(b.count) for n = \(n)")
        }
        guard a.allSatisfy({ $0.isFinite }), b.allSatisfy({ $0.isFinite }) else {
            throw TensorError.invalidArgument("a positive-definite solve with NaN or infinite entries")
        }
        var m = a, x = b
        var n32 = Int32(n), nrhs = Int32(columns.count), lda = Int32(n), ldb = Int32(n), info: Int32 = 0
        var uplo = CChar(UInt8(ascii: "U"))
        dposv_(&uplo, &n32, &nrhs, &m, &lda, &x, &ldb, &info)
        if info > 0 { throw TensorError.notPositiveDefinite(order: n, failedAt: Int(info)) }
        guard info == 0 else { throw TensorError.lapack(routine: "dposv", info: Int(info)) }
        // Column-major B: column j is values j·n ..< (j+1)·n.
        return (0..<columns.count).map { Array(x[($0 * n)..<(($0 + 1) * n)]) }
    }
}
