// The byte-keyed table behind every vocabulary lookup: keys compared as bytes, growth keeps every key.

@testable import LoupeFormats
import Testing

@Suite struct ByteStringTableTests {
    @Test func keysAreBytesNotCanonicalStrings() {
        var table = ByteStringTable()
        #expect(table.updateValue(1, for: "\u{00E9}") == nil)
        #expect(table.updateValue(2, for: "e\u{0301}") == nil)   // equal as Swift Strings, distinct bytes
        #expect(table.count == 2)
        #expect(table.lookup("\u{00E9}") == 1)
        #expect(table.lookup("e\u{0301}") == 2)
        #expect(table.lookup("e") == nil)
        #expect(table.updateValue(3, for: "\u{00E9}") == 1)    // replaced, not added
        #expect(table.lookup("\u{00E9}") == 3)
        #expect(table.count == 2)
    }

    /// A seeded set of keys (short and long, prefixes of each other, every byte value) far past the initial
    /// size: each key keeps its value through the rehashes, and absent keys stay absent.
    @Test func growthKeepsEveryKey() {
        var rng = BPETestData.SplitMix64(state: 7)
        var keys: [[UInt8]] = [[], [0], [0, 0], [255]]
        for _ in 0..<5000 {
            let n = Int(rng.next() % 12) + 1
            keys.append((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
        var expected: [[UInt8]: Int32] = [:]
        var table = ByteStringTable(capacity: 3)
        for (i, key) in keys.enumerated() {
            let before = expected.updateValue(Int32(i), forKey: key)
            #expect(table.updateValue(Int32(i), for: key) == before)
        }
        #expect(table.count == expected.count)
        for (key, value) in expected { #expect(table.lookup(key) == value) }
        for _ in 0..<2000 {
            let key = (0..<13).map { _ in UInt8(truncatingIfNeeded: rng.next()) }   // longer than any key
            #expect(table.lookup(key) == nil)
        }
    }
}
