// A bounds-checked little-endian reader over the mapped bytes of a GGUF file.

/// Reads GGUF primitives from `bytes`, advancing `offset`; every read checks the bytes left first and
/// throws `GGUFError.truncated` or `.lengthPastEnd` naming `what` was being read.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    /// The deepest nesting of arrays accepted (a limit so a hostile file cannot exhaust the stack).
    static let maxArrayDepth = 16

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else {
            throw GGUFError.truncated(path: path, what: what(), offset: offset, needed: size, fileSize: bytes.count)
        }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return v
    }

    /// Reads a u64 count of items each taking at least `minimumSize` bytes, checking they can fit.
    mutating func readCount(minimumSize: Int, _ what: @autoclosure () -> String) throws -> Int {
        let start = offset
        let n = try read(UInt64.self, "the length of " + what())
        guard n <= UInt64(remaining / minimumSize) else {
            throw GGUFError.lengthPastEnd(path: path, what: what(), length: n, offset: start, fileSize: bytes.count)
        }
        return Int(n)
    }

    /// A u64 byte length and that many bytes of UTF-8 (ill-formed sequences become U+FFFD).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let n = try readCount(minimumSize: 1, what())
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]), as: UTF8.self)
        offset += n
        return s
    }

    mutating func readValueType(key: String) throws -> GGUFValueType {
        let raw = try read(UInt32.self, "the value type of '\(key)'")
        guard let t = GGUFValueType(rawValue: raw) else {
            throw GGUFError.unknownValueType(path: path, key: key, type: raw)
        }
        return t
    }

    /// One value of type `type` belonging to metadata key `key`.
    mutating func readValue(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, "the value of '\(key)'"))
        case .int8: return .int8(try read(Int8.self, "the value of '\(key)'"))
        case .uint16: return .uint16(try read(UInt16.self, "the value of '\(key)'"))
        case .int16: return .int16(try read(Int16.self, "the value of '\(key)'"))
        case .uint32: return .uint32(try read(UInt32.self, "the value of '\(key)'"))
        case .int32: return .int32(try read(Int32.self, "the value of '\(key)'"))
        case .uint64: return .uint64(try read(UInt64.self, "the value of '\(key)'"))
        case .int64: return .int64(try read(Int64.self, "the value of '\(key)'"))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, "the value of '\(key)'")))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, "the value of '\(key)'")))
        case .bool: return .bool(try read(UInt8.self, "the value of '\(key)'") != 0)
        case .string: return .string(try readString("the string '\(key)'"))
        case .array:
            guard depth < Self.maxArrayDepth else {
                throw GGUFError.nestingTooDeep(path: path, key: key, limit: Self.maxArrayDepth)
            }
            let elementType = try readValueType(key: key)
            let n = try readCount(minimumSize: elementType.minimumSize, "the array '\(key)'")
            return .array(elementType: elementType, try readArray(elementType, count: n, key: key, depth: depth))
        }
    }

    /// `count` elements, already checked to fit. Fixed-size elements are read without per-element checks.
    private mutating func readArray(_ type: GGUFValueType, count n: Int, key: String, depth: Int) throws -> [GGUFValue] {
        let base = offset
        func fixed<T: FixedWidthInteger>(_: T.Type, _ make: (T) -> GGUFValue) -> [GGUFValue] {
            let size = MemoryLayout<T>.size
            return (0..<n).map { i in make(T(littleEndian: bytes.loadUnaligned(fromByteOffset: base + i * size, as: T.self))) }
        }
        var out: [GGUFValue]
        switch type {
        case .uint8: out = fixed(UInt8.self) { .uint8($0) }
        case .int8: out = fixed(Int8.self) { .int8($0) }
        case .uint16: out = fixed(UInt16.self) { .uint16($0) }
        case .int16: out = fixed(Int16.self) { .int16($0) }
        case .uint32: out = fixed(UInt32.self) { .uint32($0) }
        case .int32: out = fixed(Int32.self) { .int32($0) }
        case .uint64: out = fixed(UInt64.self) { .uint64($0) }
        case .int64: out = fixed(Int64.self) { .int64($0) }
        case .float32: out = fixed(UInt32.self) { .float32(Float(bitPattern: $0)) }
        case .float64: out = fixed(UInt64.self) { .float64(Double(bitPattern: $0)) }
        case .bool: out = fixed(UInt8.self) { .bool($0 != 0) }
        case .string, .array:
            out = []
            out.reserveCapacity(n)
            for i in 0..<n {
                if type == .string {
                    out.append(.string(try readString("element \(i) of '\(key)'")))
                } else {
                    out.append(try readValue(.array, key: key, depth: depth + 1))
                }
            }
            return out
        }
        offset += n * type.minimumSize
        return out
    }
}
