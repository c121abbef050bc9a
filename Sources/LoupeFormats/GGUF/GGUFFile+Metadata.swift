// Typed reads of GGUF metadata: each throws `GGUFError.missingKey` for an absent key and `.wrongType`
// (naming the expected and found types) for a value of another type; the `optional…` forms return nil
// for an absent key but still throw on a wrong type.

extension GGUFFile {
    /// Whether the metadata holds `key`.
    public func has(_ key: String) -> Bool { metadata[key] != nil }

    /// The value of `key`.
    /// - Throws: `GGUFError.missingKey`.
    public func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        return v
    }

    /// A string value.
    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard case .string(let s) = v else { throw wrongType(key, "string", v) }
        return s
    }

    /// A value of any integer type (uint8 … int64), as `Int`.
    /// - Throws: also `GGUFError.valueOutOfRange` for a uint64 above `Int.max`.
    public func int(_ key: String) throws -> Int { try intValue(key, try value(key)) }

    /// A float32 or float64 value (a float64 rounded to the nearest Float).
    public func float(_ key: String) throws -> Float {
        let v = try value(key)
        guard let f = v.floatValue else { throw wrongType(key, "float32 or float64", v) }
        return f
    }

    /// A bool value.
    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard case .bool(let b) = v else { throw wrongType(key, "bool", v) }
        return b
    }

    /// An array of strings (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    public func stringArray(_ key: String) throws -> [String] {
        let v = try value(key)
        guard case .array(.string, let items) = v else { throw wrongType(key, "array of string", v) }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for case .string(let s) in items { out.append(s) }
        return out
    }

    /// The number of elements of an array value, of any element type.
    public func arrayCount(_ key: String) throws -> Int {
        let v = try value(key)
        guard case .array(_, let items) = v else { throw wrongType(key, "array", v) }
        return items.count
    }

    /// An array of any one integer type, as `[Int]`.
    public func intArray(_ key: String) throws -> [Int] {
        let v = try value(key)
        guard case .array(let t, let items) = v, Self.integerTypes.contains(t) else {
            throw wrongType(key, "array of an integer type", v)
        }
        return try items.map { try intValue(key, $0) }
    }

    /// An array of float32 or float64, as `[Float]`.
    public func floatArray(_ key: String) throws -> [Float] {
        let v = try value(key)
        guard case .array(let t, let items) = v, t == .float32 || t == .float64 else {
            throw wrongType(key, "array of float32 or float64", v)
        }
        return items.compactMap(\.floatValue)
    }

    /// `string(key)`, or nil when the key is absent.
    public func optionalString(_ key: String) throws -> String? { has(key) ? try string(key) : nil }
    /// `int(key)`, or nil when the key is absent.
    public func optionalInt(_ key: String) throws -> Int? { has(key) ? try int(key) : nil }
    /// `float(key)`, or nil when the key is absent.
    public func optionalFloat(_ key: String) throws -> Float? { has(key) ? try float(key) : nil }
    /// `bool(key)`, or nil when the key is absent.
    public func optionalBool(_ key: String) throws -> Bool? { has(key) ? try bool(key) : nil }

    private static let integerTypes: Set<GGUFValueType> = [.uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64]

    private func intValue(_ key: String, _ v: GGUFValue) throws -> Int {
        if let i = v.intValue { return i }
        if case .uint64 = v { throw GGUFError.valueOutOfRange(path: path, key: key, value: v.description) }
        throw wrongType(key, "an integer", v)
    }

    private func wrongType(_ key: String, _ expected: String, _ found: GGUFValue) -> GGUFError {
        .wrongType(path: path, key: key, expected: expected, found: found.typeDescription)
    }
}
