/// What went wrong in a tensor operation, with the shapes involved.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    case invalidShape([Int])
    case elementCount(shape: [Int], expected: Int, found: Int)
    case reshape(from: [Int], to: [Int])
    case shapeMismatch(operation: String, expected: [Int], found: [Int])
    case rank(operation: String, expected: Int, found: Int)
    case indexRank(shape: [Int], index: [Int])
    case indexOutOfRange(shape: [Int], index: [Int])
    case invalidArgument(String)
    case lapack(routine: String, info: Int)
    /// A matrix that must be symmetric positive definite is not: the Cholesky pivot `failedAt` (1-based) of
    /// `order` was not positive.
    case notPositiveDefinite(order: Int, failedAt: Int)

    public var description: String {
        switch self {
        case .invalidShape(let s): return "invalid shape \(s): dimensions must be non-negative"
        case .elementCount(let s, let e, let f):
            return "shape \(s) holds \(e) elements, but \(f) were given"
        case .reshape(let from, let to): return "cannot reshape a tensor of shape \(from) to \(to)"
        case .shapeMismatch(let op, let e, let f): return "\(op): expected shape \(e), found \(f)"
        case .rank(let op, let e, let f): return "\(op): expected a tensor of rank \(e), found rank \(f)"
        case .indexRank(let s, let i): return "index \(i) does not fit a tensor of shape \(s)"
        case .indexOutOfRange(let s, let i): return "index \(i) is out of range for shape \(s)"
        case .invalidArgument(let m): return m
        case .lapack(let r, let info): return "LAPACK \(r) failed (info = \(info))"
        case .notPositiveDefinite(let n, let k):
            return "the \(n)×\(n) matrix is not positive definite (Cholesky pivot \(k) is not positive)"
        }
    }
}
