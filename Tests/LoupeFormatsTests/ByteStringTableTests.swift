// The byte-keyed table behind every vocabulary lookup (keys compared as bytes, growth keeps every key) and the
// merge-rank table of byte-level BPE (filled to its capacity, with slot counts that are not powers of two).

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

    /// Merge tables filled to the capacity they were made for (the most a tokenizer puts in them): every
    /// pair finds its packed rank and merged id, the first rank of a pair stands, absent pairs and negative
    /// ids find nothing. (At three fifths full some probe runs cross the end of the table and wrap.)
    @Test func mergeTableFullToCapacity() {
        var rng = BPETestData.SplitMix64(state: 11)
        for capacity in [1, 2, 7, 16, 999, 4_890] {
            var table = BPETokenizer.MergeTable(capacity: capacity)
            var expected: [UInt64: UInt64] = [:]
            var rank: Int32 = 0
            while expected.count < capacity {
                let left = Int32(rng.next() % 3000), right = Int32(rng.next() % 3000)
                let key = UInt64(left) << 32 | UInt64(right)
                guard expected[key] == nil else { continue }
                expected[key] = UInt64(rank) << 32 | UInt64(rank + 7)
                table.insertIfAbsent(left: left, right: right, rank: rank, merged: rank + 7)
                table.insertIfAbsent(left: left, right: right, rank: rank + 100_000, merged: 1)   // ignored
                rank += 1
            }
            for (key, value) in expected {
                #expect(table.lookup(Int32(key >> 32), Int32(key & 0xFFFF_FFFF)) == value)
            }
            for _ in 0..<500 {
                let left = Int32(3000 + rng.next() % 3000), right = Int32(rng.next() % 6000)
                #expect(table.lookup(left, right) == BPETokenizer.MergeTable.noMerge)
            }
            #expect(table.lookup(-1, 0) == BPETokenizer.MergeTable.noMerge)
            #expect(table.lookup(0, -1) == BPETokenizer.MergeTable.noMerge)
        }
    }
}
