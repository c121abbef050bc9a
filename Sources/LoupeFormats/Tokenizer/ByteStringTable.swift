// A hash table from byte strings to token ids, for vocabularies: token spellings → ids, SentencePiece pieces
// → ids, a byte-level vocabulary's decoded tokens → ids.
//
// Keys are UTF-8 bytes, not `String`s: Swift compares and hashes strings up to canonical equivalence (every
// non-ASCII key is normalized to NFC while hashing), which is slow for a 49k–262k-entry vocabulary and wrong
// for vocabularies that hold distinct, canonically equal tokens ("é" as one scalar and as two). Hugging Face
// `tokenizers` and llama.cpp compare bytes too. All keys live in one byte buffer: a few bytes a token, no
// allocation per entry.

import Foundation

/// Byte strings → `Int32` values: open addressing over an FNV-1a hash, keys stored back to back. Slots are
/// kept under three fifths full, and their count is not rounded up to a power of two.
struct ByteStringTable: Sendable {
    /// Entry index per slot, or -1.
    private var slots: [Int32]
    private var values: [Int32] = []
    /// The key of entry `e` is `bytes[offsets[e]..<offsets[e + 1]]`.
    private var bytes: [UInt8] = []
    private var offsets: [Int32] = [0]

    /// The number of keys.
    var count: Int { values.count }

    /// An empty table sized for about `capacity` keys (it grows past that).
    init(capacity: Int = 0) {
        slots = [Int32](repeating: -1, count: max(16, capacity * 5 / 3 + 1))
        values.reserveCapacity(capacity)
        offsets.reserveCapacity(capacity + 1)
        bytes.reserveCapacity(capacity * 8)
    }

    @inline(__always)
    private static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// The slot holding `key`'s entry, or the empty slot where it would go.
    @inline(__always)
    private func slot(of key: UnsafeBufferPointer<UInt8>) -> Int {
        let n = slots.count
        // The mixed hash's high bits, scaled to the slot count (multiply-shift range reduction).
        var i = Int(truncatingIfNeeded: (Self.hash(key) &* 0x9E37_79B9_7F4A_7C15).multipliedFullWidth(by: UInt64(n)).high)
        return slots.withUnsafeBufferPointer { slots in
            offsets.withUnsafeBufferPointer { offsets in
                bytes.withUnsafeBufferPointer { bytes in
                    while true {
                        let entry = Int(slots[i])
                        if entry < 0 { return i }
                        let start = Int(offsets[entry]), end = Int(offsets[entry + 1])
                        if end - start == key.count
                            && (key.isEmpty || memcmp(bytes.baseAddress! + start, key.baseAddress!, key.count) == 0) {
                            return i
                        }
                        i += 1
                        if i == n { i = 0 }
                    }
                }
            }
        }
    }

    /// The value of `key`, or nil.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let entry = slots[slot(of: key)]
        return entry < 0 ? nil : values[Int(entry)]
    }

    /// The value of `key`'s UTF-8 bytes, or nil.
    func lookup(_ key: String) -> Int32? {
        var key = key
        return key.withUTF8 { lookup($0) }
    }

    /// The value of `key`, or nil.
    func lookup(_ key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { lookup($0) }
    }

    /// Sets `key`'s value; returns the value it had, or nil for a new key.
    @discardableResult
    mutating func updateValue(_ value: Int32, for key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let i = slot(of: key)
        let entry = Int(slots[i])
        if entry >= 0 {
            defer { values[entry] = value }
            return values[entry]
        }
        slots[i] = Int32(values.count)
        values.append(value)
        bytes.append(contentsOf: key)
        offsets.append(Int32(bytes.count))
        if 5 * values.count >= 3 * slots.count { grow() }
        return nil
    }

    /// Sets the value of `key`'s UTF-8 bytes; returns the value it had, or nil for a new key.
    @discardableResult
    mutating func updateValue(_ value: Int32, for key: String) -> Int32? {
        var key = key
        return key.withUTF8 { updateValue(value, for: $0) }
    }

    /// Sets `key`'s value; returns the value it had, or nil for a new key.
    @discardableResult
    mutating func updateValue(_ value: Int32, for key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { updateValue(value, for: $0) }
    }

    /// Doubles the slots and re-enters every key.
    private mutating func grow() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        for entry in 0..<values.count {
            let start = Int(offsets[entry]), end = Int(offsets[entry + 1])
            let i = bytes.withUnsafeBufferPointer { slot(of: UnsafeBufferPointer(rebasing: $0[start..<end])) }
            slots[i] = Int32(entry)
        }
    }
}
