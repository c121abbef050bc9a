// safetensors: an 8-byte little-endian header length, a JSON header
// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
// then the raw little-endian tensor bytes (offsets relative to the end of the header).
// Reference: https://github.com/huggingface/safetensors (format description in its README).

import Foundation
import LoupeTensor

/// Element types a safetensors file may declare.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, U16, U32, U64
    case F8_E4M3 = "F8_E4M3", F8_E5M2 = "F8_E5M2"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        }
    }
}

/// Problems with a safetensors file, each naming what was expected and what was found.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case tooShort(path: String, size: Int)
    case headerPastEnd(path: String, headerLength: UInt64, fileSize: Int)
    case malformedHeader(path: String, reason: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case badShape(path: String, tensor: String, reason: String)
    case offsetsOutOfRange(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlapping(path: String, first: String, second: String)
    case byteLengthMismatch(path: String, tensor: String, shape: [Int], dtype: String, expected: Int, found: Int)
    case missingTensor(path: String, name: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)

    public var description: String {
        switch self {
        case .tooShort(let p, let s):
            return "\(p): not a safetensors file: \(s) bytes, expected at least 8 (the header length)"
        case .headerPastEnd(let p, let n, let s):
            return "\(p): header length \(n) runs past the end of the file (\(s) bytes in all); the file is truncated or not safetensors"
        case .malformedHeader(let p, let r): return "\(p): malformed safetensors header: \(r)"
        case .unknownDType(let p, let t, let d): return "\(p): tensor '\(t)' has unknown dtype '\(d)'"
        case .badShape(let p, let t, let r): return "\(p): tensor '\(t)': \(r)"
        case .offsetsOutOfRange(let p, let t, let b, let e, let s):
            return "\(p): tensor '\(t)' data_offsets [\(b), \(e)] are outside the \(s) bytes of data (the file may be truncated)"
        case .overlapping(let p, let a, let b): return "\(p): tensors '\(a)' and '\(b)' overlap in the data section"
        case .byteLengthMismatch(let p, let t, let sh, let d, let e, let f):
            return "\(p): tensor '\(t)' of shape \(sh) and dtype \(d) needs \(e) bytes, but its data_offsets span \(f)"
        case .missingTensor(let p, let n): return "\(p): no tensor named '\(n)'"
        case .unsupportedDType(let p, let t, let d):
            return "\(p): tensor '\(t)' has dtype \(d); Loupe reads F32, F16, BF16 and F64"
        }
    }
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range within the data section.
    public let begin: Int, end: Int
}

/// A validated, memory-mapped safetensors file.
public struct SafetensorsFile: Sendable {
    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// Opens and validates a file: the header is well-formed JSON, every dtype is known, shapes are
    /// non-negative, offsets lie inside the data and do not overlap, and shape × dtype size equals each
    /// tensor's byte length.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let size = file.bytes.count
        guard size >= 8 else { throw SafetensorsError.tooShort(path: path, size: size) }
        let headerLength = file.load(UInt64.self, at: 0)
        guard headerLength <= UInt64(size - 8) else {
            throw SafetensorsError.headerPastEnd(path: path, headerLength: headerLength, fileSize: size)
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = size - dataStart
        let headerBytes = Data(file.bytes[8..<dataStart])
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw SafetensorsError.malformedHeader(path: path, reason: "the header is not valid JSON")
        }
        guard let dict = json as? [String: Any] else {
            throw SafetensorsError.malformedHeader(path: path, reason: "expected a JSON object at the top level")
        }
        var entries: [String: SafetensorsEntry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw SafetensorsError.malformedHeader(path: path, reason: "__metadata__ must be an object of strings")
                }
                for (k, v) in m { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw SafetensorsError.malformedHeader(path: path, reason: "entry '\(name)' is not an object")
            }
            guard let dtypeName = info["dtype"] as? String else {
                throw SafetensorsError.malformedHeader(path: path, reason: "entry '\(name)' has no string 'dtype'")
            }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
            }
            guard let rawShape = info["shape"] as? [Any], let shape = Self.integers(rawShape) else {
                throw SafetensorsError.badShape(path: path, tensor: name, reason: "'shape' must be an array of integers")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw SafetensorsError.badShape(path: path, tensor: name, reason: "negative dimension in shape \(shape)")
            }
            guard let rawOffsets = info["data_offsets"] as? [Any], let offsets = Self.integers(rawOffsets),
                  offsets.count == 2 else {
                throw SafetensorsError.malformedHeader(path: path, reason: "entry '\(name)' needs 'data_offsets' [begin, end]")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw SafetensorsError.offsetsOutOfRange(path: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
            }
            let (elements, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || o)
            }
            let expected = elements.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, !expected.overflow, expected.partialValue == end - begin else {
                throw SafetensorsError.byteLengthMismatch(path: path, tensor: name, shape: shape, dtype: dtypeName,
                                                          expected: overflow ? Int.max : expected.partialValue,
                                                          found: end - begin)
            }
            entries[name] = SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
        }
        let sorted = entries.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end {
            throw SafetensorsError.overlapping(path: path, first: a.name, second: b.name)
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            // JSONSerialization gives NSNumber; booleans report objCType "c" (and `is Bool` is true even for 0/1).
            guard let n = v as? NSNumber else { return nil }
            switch String(cString: n.objCType) {
            case "c", "B": return nil
            case "f", "d":
                let d = n.doubleValue
                guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
                out.append(Int(d))
            default: out.append(n.intValue)
            }
        }
        return out
    }

    /// The tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// A 2-D F32, F16 or BF16 tensor as a matrix read in place (no copy): row-major `[rows, columns]`,
    /// which for a PyTorch linear layer (`[out, in]`) is a row per output feature. Nil for other dtypes or
    /// ranks (read those with `tensor(_:)`).
    public func matrix(_ name: String) throws -> QuantizedMatrix? {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(path: path, name: name) }
        let type: GGMLType
        switch e.dtype {
        case .F32: type = .F32
        case .F16: type = .F16
        case .BF16: type = .BF16
        default: return nil
        }
        guard e.shape.count == 2, e.shape[1] % 32 == 0, e.shape[0] > 0, let base = file.bytes.baseAddress else { return nil }
        #if _endian(big)
        return nil
        #else
        return QuantizedMatrix(type: type, rows: e.shape[0], columns: e.shape[1], base: base + dataStart + e.begin, owner: file)
        #endif
    }

    /// A float64 tensor's values (row-major), exactly as stored.
    public func doubles(_ name: String) throws -> [Double] {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(path: path, name: name) }
        guard e.dtype == .F64 else { throw SafetensorsError.unsupportedDType(path: path, tensor: name, dtype: e.dtype.rawValue + " (expected F64)") }
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.begin)..<(dataStart + e.end)])
        return (0..<e.shape.reduce(1, *)).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) }
    }

    /// A tensor converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(path: path, name: name) }
        let n = e.shape.reduce(1, *)
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.begin)..<(dataStart + e.end)])
        switch e.dtype {
        case .F32, .F16, .BF16, .F64: break
        default: throw SafetensorsError.unsupportedDType(path: path, tensor: name, dtype: e.dtype.rawValue)
        }
        var out = uninitializedFloats(n)
        out.withUnsafeMutableBufferPointer { dst in
            switch e.dtype {
            case .F32:
                if n > 0 { _ = memcpy(dst.baseAddress!, raw.baseAddress!, n * 4) }
                #if _endian(big)
                for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: dst[i].bitPattern)) }
                #endif
            case .F16:
                for i in 0..<n { dst[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            case .BF16:
                for i in 0..<n {
                    let b = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(bitPattern: UInt32(b) << 16)
                }
            case .F64:
                for i in 0..<n {
                    dst[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            default: break
            }
        }
        return try Tensor(shape: e.shape, scalars: out)
    }
}

/// Writes tensors as a safetensors file (written atomically), in float32 or, with `float16`, in IEEE half
/// precision (values beyond ±65504 become ±∞). Names keep the given order.
public func writeSafetensors(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                             float16: Bool = false, to url: URL) throws {
    try writeSafetensors(entries: tensors.map { name, t in
        if float16 {
            let halves = t.scalars.map { Float16($0).bitPattern.littleEndian }
            return (name, .F16, t.shape, halves.withUnsafeBytes { Data($0) })
        }
        return (name, .F32, t.shape, t.scalars.withUnsafeBytes { Data($0) })
    }, metadata: metadata, to: url)
}

/// Writes float64 arrays (sums that must merge without float32 rounding) as a safetensors file.
public func writeSafetensors(doubles: [(name: String, shape: [Int], values: [Double])], metadata: [String: String] = [:],
                             to url: URL) throws {
    try writeSafetensors(entries: doubles.map { name, shape, values in
        (name, .F64, shape, values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Data($0) })
    }, metadata: metadata, to: url)
}

/// Writes raw little-endian tensor data of the given types, atomically; names keep the given order and the
/// data starts 8-byte aligned, as the reference writer does.
public func writeSafetensors(entries: [(name: String, dtype: SafetensorsDType, shape: [Int], data: Data)],
                             metadata: [String: String] = [:], to url: URL) throws {
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var offset = 0
    for (name, dtype, shape, data) in entries {
        precondition(data.count == shape.reduce(1, *) * dtype.size, "\(name): \(data.count) bytes for \(shape) \(dtype)")
        header[name] = ["dtype": dtype.rawValue, "shape": shape, "data_offsets": [offset, offset + data.count]] as [String: Any]
        offset += data.count
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var data = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    for entry in entries { data.append(entry.data) }
    try writeAtomically(data, to: url)
}
