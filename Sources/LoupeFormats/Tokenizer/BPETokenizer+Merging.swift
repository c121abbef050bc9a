// The BPE merge step: a merge-rank table keyed on pairs of token ids, and the merge loop itself.
// Reference: `Encoder.bpe` in https://github.com/openai/gpt-2/blob/master/src/encoder.py

extension BPETokenizer {
    /// Merge ranks keyed on a pair of token ids: an open-addressing hash table, because the merge loop
    /// does one lookup per adjacent pair per step and `Dictionary`'s SipHash dominates otherwise.
    ///
    /// A lookup returns `rank << 32 | mergedID` (so packed values order by rank), or `UInt64.max` for a pair
    /// that never merges.
    struct MergeTable: Sendable {
        static let noMerge = UInt64.max
        private var keys: [UInt64]
        private var values: [UInt64]

        /// An empty table with room for `capacity` merges at a load factor under three fifths (the slot count
        /// is not rounded up to a power of two: SmolLM2's 48,900 merges take 1.3 MB, not 2 MB).
        init(capacity: Int) {
            let n = max(16, capacity * 5 / 3 + 1)
            keys = [UInt64](repeating: MergeTable.noMerge, count: n)
            values = [UInt64](repeating: MergeTable.noMerge, count: n)
        }

        @inline(__always)
        private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
            UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        }

        @inline(__always)
        private func slot(for key: UInt64) -> Int {
            // The product's high bits, scaled to the slot count (Lemire's multiply-shift range reduction).
            Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15).multipliedFullWidth(by: UInt64(keys.count)).high)
        }

        /// Records that `left right` merges into `merged` with `rank`, unless the pair already has a (lower) rank.
        /// Ids are non-negative, so no real pair collides with the empty-slot key.
        mutating func insertIfAbsent(left: Int32, right: Int32, rank: Int32, merged: Int32) {
            let k = MergeTable.key(left, right)
            var i = slot(for: k)
            while keys[i] != MergeTable.noMerge {
                if keys[i] == k { return }
                i += 1
                if i == keys.count { i = 0 }
            }
            keys[i] = k
            values[i] = UInt64(UInt32(rank)) << 32 | UInt64(UInt32(merged))
        }

        /// `rank << 32 | mergedID` for the pair, or `noMerge`. Negative ids (bytes missing from the
        /// vocabulary) find nothing: their key either misses or lands on an empty slot, whose value is `noMerge`.
        @inline(__always)
        func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
            let k = MergeTable.key(left, right)
            var i = slot(for: k)
            return keys.withUnsafeBufferPointer { keys in
                while true {
                    let found = keys[i]
                    if found == k || found == MergeTable.noMerge { return values[i] }
                    i += 1
                    if i == keys.count { i = 0 }
                }
            }
        }
    }

    /// The merge loop: repeatedly merge the adjacent pair of lowest rank (the leftmost one on a tie) until no
    /// pair merges. This is what Hugging Face `tokenizers` and `tiktoken` do; for a merges list in training
    /// order it equals `encoder.py`'s "merge every occurrence of the best pair" loop.
    enum Merger {
        /// Pieces longer than this many symbols use the heap-based loop (O(n log n)) instead of the scan
        /// (O(n²)), which is faster only for short pieces.
        static let scanLimit = 48

        /// Merges `symbols` (the initial token ids, one per byte; -1 for a byte missing from the vocabulary)
        /// and appends the result to `out`.
        @inline(__always)
        static func merge(_ symbols: UnsafeMutableBufferPointer<Int32>, table: MergeTable, into out: inout [Int32]) {
            if symbols.count <= scanLimit {
                mergeByScan(symbols, table: table, into: &out)
            } else {
                mergeByHeap(symbols, table: table, into: &out)
            }
        }

        /// The scan loop: keeps each adjacent pair's packed rank, takes the minimum, shifts the tail left.
        static func mergeByScan(_ symbols: UnsafeMutableBufferPointer<Int32>, table: MergeTable, into out: inout [Int32]) {
            var n = symbols.count
            if n > 1 {
                withUnsafeTemporaryAllocation(of: UInt64.self, capacity: n - 1) { ranks in
                    for i in 0..<(n - 1) { ranks[i] = table.lookup(symbols[i], symbols[i + 1]) }
                    while n > 1 {
                        var best = 0
                        var bestRank = ranks[0]
                        for i in 1..<(n - 1) where ranks[i] < bestRank {
                            best = i
                            bestRank = ranks[i]
                        }
                        if bestRank == MergeTable.noMerge { break }
                        symbols[best] = Int32(truncatingIfNeeded: bestRank & 0xFFFF_FFFF)
                        // Drop symbols[best + 1] and ranks[best]: pair i now joins symbols i and i + 1 again.
                        var i = best + 1
                        while i < n - 1 { symbols[i] = symbols[i + 1]; i += 1 }
                        i = best
                        while i < n - 2 { ranks[i] = ranks[i + 1]; i += 1 }
                        n -= 1
                        if best > 0 { ranks[best - 1] = table.lookup(symbols[best - 1], symbols[best]) }
                        if best < n - 1 { ranks[best] = table.lookup(symbols[best], symbols[best + 1]) }
                    }
                }
            }
            for i in 0..<n { out.append(symbols[i]) }
        }

        /// The heap loop: a doubly linked list of symbols and a min-heap of `(rank, left position)` entries.
        /// Stale entries (the left symbol was absorbed, or its pair changed) are skipped when popped; a
        /// position never moves, so the heap's tie order (lower position first) is the scan's leftmost rule.
        static func mergeByHeap(_ symbols: UnsafeMutableBufferPointer<Int32>, table: MergeTable, into out: inout [Int32]) {
            let n = symbols.count
            var next = [Int32](unsafeUninitializedCapacity: n) { buffer, count in
                for i in 0..<n { buffer[i] = i + 1 < n ? Int32(i + 1) : -1 }
                count = n
            }
            var prev = [Int32](unsafeUninitializedCapacity: n) { buffer, count in
                for i in 0..<n { buffer[i] = Int32(i) - 1 }
                count = n
            }
            var alive = [Bool](repeating: true, count: n)
            var heap = MinHeap()
            heap.reserve(n)
            for i in 0..<(n - 1) {
                let packed = table.lookup(symbols[i], symbols[i + 1])
                if packed != MergeTable.noMerge { heap.push((packed >> 32) << 32 | UInt64(i)) }
            }
            while let entry = heap.pop() {
                let rank = entry >> 32
                let position = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF)
                guard alive[position] else { continue }
                let right = next[position]
                guard right >= 0 else { continue }
                let packed = table.lookup(symbols[position], symbols[Int(right)])
                guard packed >> 32 == rank, packed != MergeTable.noMerge else { continue }

                symbols[position] = Int32(truncatingIfNeeded: packed & 0xFFFF_FFFF)
                alive[Int(right)] = false
                let after = next[Int(right)]
                next[position] = after
                if after >= 0 { prev[Int(after)] = Int32(position) }

                let before = prev[position]
                if before >= 0 {
                    let p = table.lookup(symbols[Int(before)], symbols[position])
                    if p != MergeTable.noMerge { heap.push((p >> 32) << 32 | UInt64(before)) }
                }
                if after >= 0 {
                    let p = table.lookup(symbols[position], symbols[Int(after)])
                    if p != MergeTable.noMerge { heap.push((p >> 32) << 32 | UInt64(position)) }
                }
            }
            var i: Int32 = 0
            while i >= 0 {
                out.append(symbols[Int(i)])
                i = next[Int(i)]
            }
        }

        /// A binary min-heap of packed `rank << 32 | position` entries.
        private struct MinHeap {
            private var items: [UInt64] = []

            mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

            mutating func push(_ value: UInt64) {
                items.append(value)
                var child = items.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    if items[parent] <= value { break }
                    items[child] = items[parent]
                    child = parent
                }
                items[child] = value
            }

            mutating func pop() -> UInt64? {
                guard let last = items.popLast() else { return nil }
                guard !items.isEmpty else { return last }
                let top = items[0]
                let n = items.count
                var parent = 0
                while true {
                    var child = 2 * parent + 1
                    if child >= n { break }
                    if child + 1 < n && items[child + 1] < items[child] { child += 1 }
                    if last <= items[child] { break }
                    items[parent] = items[child]
                    parent = child
                }
                items[parent] = last
                return top
            }
        }
    }
}
