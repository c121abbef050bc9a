// Seeded mutations of valid inputs, for the fuzz tests: byte-level (bit flips, extreme bytes and length
// fields, truncation, insertion, deletion, duplication) and JSON-level (type swaps, extreme numbers, removed
// and unknown keys, long strings, deep nesting). The same seed gives the same cases on every machine.

import Foundation

public struct Mutator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    /// SplitMix64.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<n` (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }

    public mutating func pick<T>(_ options: [T]) -> T { options[below(options.count)] }

    /// Integers that break length and count fields.
    public mutating func extremeInteger(near size: Int) -> UInt64 {
        pick([0, 1, 2, 7, 8, 255, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
              UInt64(Int64.max), UInt64.max, UInt64.max - 7, UInt64(max(size - 1, 0)), UInt64(size), UInt64(size + 1),
              UInt64(size) * 2, next()])
    }

    /// One to four byte-level mutations of `data`.
    public mutating func mutate(bytes data: [UInt8]) -> [UInt8] {
        var b = data
        for _ in 0..<(1 + below(4)) {
            switch below(9) {
            case 0 where !b.isEmpty:                              // flip a bit
                b[below(b.count)] ^= UInt8(1 << below(8))
            case 1 where !b.isEmpty:                              // an extreme byte
                b[below(b.count)] = pick([0x00, 0xFF, 0x7F, 0x80, 0x22, 0x5C, 0x7B, 0x5B])
            case 2 where b.count >= 8:                            // an extreme 8-byte little-endian field
                let at = below(b.count / 8) * 8
                let v = extremeInteger(near: b.count)
                for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
            case 3 where b.count >= 4:                            // an extreme 4-byte field, anywhere
                let at = below(b.count - 3)
                let v = UInt32(truncatingIfNeeded: extremeInteger(near: b.count))
                for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            case 4:                                               // truncate
                b = Array(b.prefix(below(b.count + 1)))
            case 5:                                               // insert random bytes
                let at = below(b.count + 1)
                b.insert(contentsOf: (0..<(1 + below(16))).map { _ in UInt8(truncatingIfNeeded: next()) }, at: at)
            case 6 where b.count > 1:                             // delete a range
                let at = below(b.count), n = 1 + below(min(64, b.count - at))
                b.removeSubrange(at..<(at + n))
            case 7 where b.count > 1:                             // duplicate a range
                let at = below(b.count), n = 1 + below(min(64, b.count - at))
                b.insert(contentsOf: b[at..<(at + n)], at: below(b.count + 1))
            default:                                              // a byte anywhere
                if !b.isEmpty { b[below(b.count)] = UInt8(truncatingIfNeeded: next()) }
            }
        }
        return b
    }

    /// A mutated JSON document: usually structural (one to three edits of the parsed value), sometimes bytes.
    public mutating func mutate(json data: [UInt8]) -> [UInt8] {
        guard below(5) != 0, let value = try? JSONSerialization.jsonObject(with: Data(data), options: [.fragmentsAllowed]) else {
            return mutate(bytes: data)
        }
        var v = value
        for _ in 0..<(1 + below(3)) { v = mutate(value: v, depth: 0) }
        if below(10) == 0 {                                       // deep nesting
            let depth = pick([64, 512, 4096])
            v = (0..<depth).reduce(v) { inner, _ in [inner] }
        }
        guard let out = try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed]) else { return data }
        return Array(out)
    }

    /// A value of another JSON type, or an extreme one of the same.
    public mutating func replacement() -> Any {
        pick([
            NSNull(), true, false, 0, -1, 1, 2, -2_147_483_649, 2_147_483_648, Int64.max, Int64.min, 1.5, -0.5,
            1e308, -1e308, 4.9e-324, "", "x", String(repeating: "a", count: 1 + below(5000)), "-1", "1e9",
            [Any](), [0, -1, 1e300], [String: Any](), ["unknown_key": 1], "\u{0}\u{FFFF}\u{1F99C}",
        ] as [Any])
    }

    private mutating func mutate(value: Any, depth: Int) -> Any {
        // Descend into a random child now and then; otherwise edit here.
        if var object = value as? [String: Any], !object.isEmpty, depth < 8 {
            let key = object.keys.sorted()[below(object.count)]
            switch below(6) {
            case 0: object[key] = nil                                           // remove a key
            case 1: object[key] = replacement()                                 // swap its value
            case 2: object["fuzz_\(below(100))"] = replacement()                // an unknown key
            default: object[key] = mutate(value: object[key] as Any, depth: depth + 1)
            }
            return object
        }
        if var array = value as? [Any], !array.isEmpty, depth < 8 {
            let i = below(array.count)
            switch below(5) {
            case 0: array.remove(at: i)
            case 1: array[i] = replacement()
            case 2: array.append(contentsOf: array.prefix(1 + below(3)))
            default: array[i] = mutate(value: array[i], depth: depth + 1)
            }
            return array
        }
        return replacement()
    }
}

/// How many cases each fuzz family runs: `LOUPE_FUZZ_CASES` (default 200), and the seed (`LOUPE_FUZZ_SEED`).
public enum FuzzSettings {
    public static var cases: Int { ProcessInfo.processInfo.environment["LOUPE_FUZZ_CASES"].flatMap { Int($0) } ?? 200 }
    public static var seed: UInt64 { ProcessInfo.processInfo.environment["LOUPE_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20261203 }
}
