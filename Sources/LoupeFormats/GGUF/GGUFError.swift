// Everything that can be wrong with a GGUF file or a request to it, each case naming the key or tensor
// and what was expected against what was found.

/// Problems reading a GGUF file.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    /// The first four bytes are not "GGUF" (`found` holds those present, fewer for a tiny file).
    case badMagic(path: String, found: [UInt8])
    /// A version other than 2 or 3.
    case unsupportedVersion(path: String, version: UInt32)
    /// The file ends inside `what`, which needs `needed` bytes from `offset`.
    case truncated(path: String, what: String, offset: Int, needed: Int, fileSize: Int)
    /// A string length or element count for `what` that cannot fit in the bytes left after `offset`.
    case lengthPastEnd(path: String, what: String, length: UInt64, offset: Int, fileSize: Int)
    /// A metadata value type tag outside 0...12.
    case unknownValueType(path: String, key: String, type: UInt32)
    /// Arrays nested more than `limit` deep (the reader's guard against exhausting the stack).
    case nestingTooDeep(path: String, key: String, limit: Int)
    case duplicateKey(path: String, key: String)
    /// `general.alignment` is not a uint32 power of two.
    case badAlignment(path: String, found: String)
    /// More than the 4 dimensions ggml allows.
    case tooManyDimensions(path: String, tensor: String, count: UInt32)
    /// A ggml type number this reader does not know (so the tensor's size is unknown).
    case unknownGGMLType(path: String, tensor: String, type: UInt32)
    /// The dimensions' product (or the tensor's byte size) does not fit in a signed 64-bit integer.
    case dimensionOverflow(path: String, tensor: String, dims: [UInt64])
    /// The innermost dimension is not a whole number of the type's blocks.
    case rowNotBlockMultiple(path: String, tensor: String, rowLength: Int, type: GGMLType)
    /// A tensor offset that is not a multiple of the file's alignment.
    case misalignedTensor(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// A tensor whose bytes run past the end of the data section.
    case tensorDataOutOfRange(path: String, tensor: String, offset: UInt64, byteCount: Int, dataSize: Int)
    case duplicateTensor(path: String, name: String)
    /// A known ggml type that `tensor(_:)` cannot dequantize (an IQ type, Q2_K, an integer type…).
    case unsupportedGGMLType(path: String, tensor: String, type: GGMLType)
    case missingTensor(path: String, name: String)
    /// A tensor used as a weight matrix has other than two dimensions.
    case notAMatrix(path: String, tensor: String, dims: [Int])
    case missingKey(path: String, key: String)
    /// A metadata value of another type than the accessor reads.
    case wrongType(path: String, key: String, expected: String, found: String)
    /// An integer value that does not fit in `Int`.
    case valueOutOfRange(path: String, key: String, value: String)

    public var description: String {
        switch self {
        case .badMagic(let p, let f):
            let shown = f.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }
            return "\(p): not a GGUF file: expected the magic \"GGUF\", found \"\(shown.joined())\""
        case .unsupportedVersion(let p, let v):
            if (1...3).contains(v.byteSwapped) {
                return "\(p): GGUF version reads as \(v): a big-endian file (version \(v.byteSwapped)); Loupe reads little-endian GGUF v2 and v3"
            }
            return "\(p): GGUF version \(v) is not supported; expected 2 or 3" + (v == 1 ? " (v1 used 32-bit counts)" : "")
        case .truncated(let p, let w, let o, let n, let s):
            return "\(p): the file ends inside \(w): needs \(n) bytes at offset \(o), but the file has \(s) bytes"
        case .lengthPastEnd(let p, let w, let l, let o, let s):
            return "\(p): \(w) has length \(l) at offset \(o), which runs past the end of the file (\(s) bytes)"
        case .unknownValueType(let p, let k, let t):
            return "\(p): metadata key '\(k)' has unknown value type \(t); expected 0...12"
        case .nestingTooDeep(let p, let k, let l):
            return "\(p): metadata key '\(k)' nests arrays more than \(l) deep"
        case .duplicateKey(let p, let k): return "\(p): metadata key '\(k)' appears twice"
        case .badAlignment(let p, let f):
            return "\(p): general.alignment must be a uint32 power of two, found \(f)"
        case .tooManyDimensions(let p, let t, let n):
            return "\(p): tensor '\(t)' has \(n) dimensions; expected at most 4"
        case .unknownGGMLType(let p, let t, let ty):
            return "\(p): tensor '\(t)' has unknown ggml type \(ty)"
        case .dimensionOverflow(let p, let t, let d):
            return "\(p): tensor '\(t)' has dimensions \(d) whose size overflows a 64-bit integer"
        case .rowNotBlockMultiple(let p, let t, let r, let ty):
            return "\(p): tensor '\(t)' has rows of \(r) elements, not a multiple of the \(ty) block size \(ty.blockSize)"
        case .misalignedTensor(let p, let t, let o, let a):
            return "\(p): tensor '\(t)' has data offset \(o), not a multiple of the alignment \(a)"
        case .tensorDataOutOfRange(let p, let t, let o, let n, let s):
            return "\(p): tensor '\(t)' needs \(n) bytes at data offset \(o), past the \(s) bytes of the data section (the file may be truncated)"
        case .duplicateTensor(let p, let n): return "\(p): tensor '\(n)' appears twice"
        case .unsupportedGGMLType(let p, let t, let ty):
            return "\(p): tensor '\(t)' has type \(ty); Loupe dequantizes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K"
        case .missingTensor(let p, let n): return "\(p): no tensor named '\(n)'"
        case .notAMatrix(let p, let t, let d):
            return "\(p): tensor '\(t)' should be a matrix (2 dimensions), found dims \(d)"
        case .missingKey(let p, let k): return "\(p): no metadata key '\(k)'"
        case .wrongType(let p, let k, let e, let f):
            return "\(p): metadata key '\(k)' should be \(e), found \(f)"
        case .valueOutOfRange(let p, let k, let v):
            return "\(p): metadata key '\(k)' holds \(v), which does not fit in Int"
        }
    }
}
