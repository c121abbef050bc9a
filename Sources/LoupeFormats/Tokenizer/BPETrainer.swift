// Training a byte-level BPE vocabulary on texts (Sennrich et al. 2016, "Neural Machine Translation of Rare
// Words with Subword Units", at the byte level as GPT-2 does it).
// Reference: Hugging Face `tokenizers` `models/bpe/trainer.rs` (the same counting, merging and tie-breaking
// rules: on the Austen novels its merges equal ours, see scripts/bpe_reference.py); the plain, slow
// reference that the tests compare against is scripts/bpe_reference.py.
//
// texts → cut at special tokens → GPT-2 pre-tokenizer pieces → a table of distinct pieces ("words") with
// their counts → repeatedly merge the most frequent adjacent pair of symbols inside words.
//
// Speed: pair counts are kept up to date incrementally. An index from each pair to the words that contain
// it finds the words a merge touches; only those are recounted. A max-heap of (count, pair) with lazy
// deletion finds the best pair: counts of pairs that a merge does not create only fall, so a stale entry
// is always too high and is corrected when it reaches the top; pairs a merge creates are pushed afresh.

import Foundation

/// Problems with a BPE training request.
public enum BPETrainerError: Error, Equatable, CustomStringConvertible {
    /// The vocabulary cannot hold the 256 byte tokens and the special tokens.
    case vocabSizeTooSmall(requested: Int, minimum: Int)
    /// The texts hold no byte to train on (none given, all empty, or only special tokens).
    case emptyCorpus
    /// A special token that is empty, repeated, or spelled like a byte or learned token.
    case invalidSpecialToken(String, reason: String)
    /// A minimum pair frequency below 1.
    case invalidMinFrequency(Int)

    public var description: String {
        switch self {
        case .vocabSizeTooSmall(let requested, let minimum):
            return "vocabulary size \(requested) is too small: expected at least \(minimum) "
                + "(256 byte tokens + \(minimum - 256) special token\(minimum == 257 ? "" : "s"))"
        case .emptyCorpus:
            return "the corpus is empty: expected some text outside special tokens, found none"
        case .invalidSpecialToken(let token, let reason):
            return "special token \(token.quotedForDisplay): \(reason)"
        case .invalidMinFrequency(let found):
            return "minimum pair frequency must be at least 1, found \(found)"
        }
    }
}

/// Trains a byte-level BPE tokenizer (GPT-2's kind) on texts.
///
/// ```swift
/// let trained = try BPETrainer(vocabSize: 4096).train(texts: novels)
/// let tokenizer = try trained.tokenizer()
/// try trained.write(to: outDirectory)   // tokenizer.json, encoder.json, vocab.bpe
/// ```
///
/// Rules (those of Hugging Face `tokenizers`' `BpeTrainer` with a `ByteLevel` pre-tokenizer and its full
/// initial alphabet):
/// - Each text is cut at its special tokens (which are never trained on), then into GPT-2 pre-tokenizer
///   pieces; a merge never crosses a piece boundary. Distinct pieces are counted once with their frequency.
/// - Ids: the 256 byte tokens first, in GPT-2's `encoder.json` order (the byte alphabet sorted by code
///   point: `!`…`~`, `¡`…`¬`, `®`…`ÿ`, then `Ā`…`Ń` for the 68 other bytes, `Ġ` being space), then each
///   learned token in the order it was made, then the special tokens in the order given.
/// - Each step merges the adjacent pair with the highest count (the sum, over pieces, of piece frequency
///   times occurrences in the piece). **Ties go to the pair with the smallest (left id, right id).** Within a
///   piece, occurrences merge left to right without overlap (`a a a` → `aa a`).
/// - A merge whose result is already a token (`a bc` after `ab c`) reuses its id: it adds a merge but no
///   token.
/// - Training stops when byte tokens + learned tokens + special tokens reach `vocabSize`, or when the best
///   pair occurs fewer than `minFrequency` times (then the vocabulary is smaller than asked).
public struct BPETrainer: Sendable {
    /// The size of the trained vocabulary: 256 byte tokens + learned tokens + special tokens.
    public var vocabSize: Int
    /// Tokens matched literally in text (cut out before training), given the last ids.
    public var specialTokens: [String]
    /// Pairs seen fewer times than this are never merged.
    public var minFrequency: Int

    /// - Parameters:
    ///   - vocabSize: the vocabulary size to reach, at least 256 + `specialTokens.count`.
    ///   - specialTokens: literal tokens, such as the default `<|endoftext|>`.
    ///   - minFrequency: the smallest count a pair needs to be merged (at least 1).
    public init(vocabSize: Int, specialTokens: [String] = ["<|endoftext|>"], minFrequency: Int = 2) {
        self.vocabSize = vocabSize
        self.specialTokens = specialTokens
        self.minFrequency = minFrequency
    }

    /// Learns merges from `texts`.
    ///
    /// - Parameters:
    ///   - texts: the corpus; each text is pre-tokenized on its own (a piece never spans two texts).
    ///   - progress: called after each merge with the number of learned tokens so far and the number wanted
    ///     (`vocabSize - 256 - specialTokens.count`).
    /// - Returns: the vocabulary and merges.
    /// - Throws: `BPETrainerError.vocabSizeTooSmall`, `.invalidMinFrequency`, `.invalidSpecialToken`,
    ///   `.emptyCorpus`.
    public func train(texts: [String], progress: ((_ mergesDone: Int, _ total: Int) -> Void)? = nil) throws -> TrainedBPE {
        try validate()
        var words = WordTable(texts: texts, specialTokens: specialTokens)
        guard words.totalBytes > 0 else { throw BPETrainerError.emptyCorpus }

        // Token id → bytes; the byte tokens are ordered as GPT-2's alphabet sorted by code point.
        let byteOrder = (0..<256).sorted { ByteLevelAlphabet.scalars[$0].value < ByteLevelAlphabet.scalars[$1].value }
        var tokenBytes: [[UInt8]] = byteOrder.map { [UInt8($0)] }
        var idOfBytes: [[UInt8]: Int32] = [:]
        var byteID = [Int32](repeating: 0, count: 256)
        for (id, byte) in byteOrder.enumerated() {
            byteID[byte] = Int32(id)
            idOfBytes[[UInt8(byte)]] = Int32(id)
        }
        words.mapBytes(to: byteID)

        let target = vocabSize - specialTokens.count
        let wanted = target - 256
        var merges: [(Int32, Int32)] = []
        var counts = PairCounts()
        counts.countAll(words)

        var mergeIndex: Int32 = 0
        while tokenBytes.count < target, let (pair, count) = counts.popBest(), count >= minFrequency {
            let (left, right) = PairCounts.split(pair)
            let bytes = tokenBytes[Int(left)] + tokenBytes[Int(right)]
            let merged: Int32
            if let existing = idOfBytes[bytes] {
                merged = existing
            } else {
                merged = Int32(tokenBytes.count)
                tokenBytes.append(bytes)
                idOfBytes[bytes] = merged
            }
            merges.append((left, right))
            counts.merge(pair: pair, into: merged, words: &words, stamp: mergeIndex)
            mergeIndex += 1
            progress?(tokenBytes.count - 256, wanted)
        }

        var tokens = tokenBytes.map { ByteLevelAlphabet.spell($0) }
        var special: [String: Int] = [:]
        let spellings = Dictionary(tokens.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        for token in specialTokens {
            if let id = spellings[token] {
                throw BPETrainerError.invalidSpecialToken(
                    token, reason: "it is spelled like the \(id < 256 ? "byte" : "learned") token \(id); choose another")
            }
            special[token] = tokens.count
            tokens.append(token)
        }
        let mergeSpellings = merges.map { (tokens[Int($0.0)], tokens[Int($0.1)]) }
        return TrainedBPE(tokens: tokens, merges: mergeSpellings, specialTokens: special, requestedVocabSize: vocabSize)
    }

    private func validate() throws {
        let minimum = 256 + specialTokens.count
        guard vocabSize >= minimum else {
            throw BPETrainerError.vocabSizeTooSmall(requested: vocabSize, minimum: minimum)
        }
        guard minFrequency >= 1 else { throw BPETrainerError.invalidMinFrequency(minFrequency) }
        var seen: Set<String> = []
        for token in specialTokens {
            guard !token.isEmpty else { throw BPETrainerError.invalidSpecialToken(token, reason: "it is empty") }
            guard seen.insert(token).inserted else {
                throw BPETrainerError.invalidSpecialToken(token, reason: "it is given twice")
            }
        }
    }
}

// MARK: - Words

/// The distinct pre-tokenizer pieces of a corpus with their counts, each a run of symbols (token ids) in one
/// flat buffer. A merge only shortens a word, so each keeps its slot.
struct WordTable {
    /// The symbols of word `w` are `symbols[start[w] ..< start[w] + length[w]]`.
    var symbols: [Int32] = []
    var start: [Int32] = []
    var length: [Int32] = []
    /// How often each word occurs in the corpus.
    var frequency: [Int] = []
    /// The corpus size in bytes, outside special tokens.
    var totalBytes = 0

    var count: Int { start.count }

    /// Counts the pieces of `texts`; symbols start as raw byte values.
    init(texts: [String], specialTokens: [String]) {
        var index: [ArraySlice<UInt8>: Int] = [:]
        let literals = BPETokenizer.LiteralTokenMatcher(
            specialTokens.enumerated().map { .init(text: $0.element, id: $0.offset, isSpecial: true) })
        for text in texts {
            let (utf8, scalars, classes, starts) = PreTokenizer.scan(text)
            scalars.withUnsafeBufferPointer { scalars in
                classes.withUnsafeBufferPointer { classes in
                    func countSegment(_ range: Range<Int>) {
                        PreTokenizer.gpt2.split(scalars: scalars, classes: classes, range: range) { s, e in
                            let piece = utf8[starts[s]..<starts[e]]
                            if let w = index[piece] {
                                frequency[w] += 1
                            } else {
                                index[piece] = frequency.count
                                frequency.append(1)
                                start.append(Int32(symbols.count))
                                length.append(Int32(piece.count))
                                for b in piece { symbols.append(Int32(b)) }
                            }
                            totalBytes += piece.count
                        }
                    }
                    var segmentStart = 0
                    var i = 0
                    if !literals.isEmpty {
                        while i < scalars.count {
                            if let match = literals.match(scalars, at: i, allowSpecial: true) {
                                countSegment(segmentStart..<i)
                                i += match.length
                                segmentStart = i
                            } else {
                                i += 1
                            }
                        }
                    }
                    countSegment(segmentStart..<scalars.count)
                }
            }
        }
    }

    /// Replaces raw byte values by their token ids.
    mutating func mapBytes(to byteID: [Int32]) {
        for i in symbols.indices { symbols[i] = byteID[Int(symbols[i])] }
    }
}

// MARK: - Pair counts

/// Counts of adjacent symbol pairs over all words, the words each pair occurs in, and a lazy max-heap.
struct PairCounts {
    /// `left << 32 | right` → count; ids are non-negative, so keys order as (left, right).
    private var counts: [UInt64: Int] = [:]
    /// Pair → words that contain it, or once did (entries go stale and may repeat; checked on use).
    private var wordsWith: [UInt64: [Int32]] = [:]
    private var heap = PairHeap()
    /// `stamps[w]`: the last merge that visited word `w` (a word listed twice is merged once).
    private var stamps: [Int32] = []

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    static func split(_ key: UInt64) -> (Int32, Int32) {
        (Int32(truncatingIfNeeded: key >> 32), Int32(truncatingIfNeeded: key & 0xFFFF_FFFF))
    }

    /// Counts every pair of every word and fills the heap.
    mutating func countAll(_ words: WordTable) {
        stamps = [Int32](repeating: -1, count: words.count)
        for w in 0..<words.count {
            let s = Int(words.start[w]), n = Int(words.length[w]), f = words.frequency[w]
            guard n > 1 else { continue }
            for i in s..<(s + n - 1) {
                let k = Self.key(words.symbols[i], words.symbols[i + 1])
                counts[k, default: 0] += f
                wordsWith[k, default: []].append(Int32(w))
            }
        }
        heap.build(counts.map { PairHeap.Entry(count: $0.value, pair: $0.key) })
    }

    /// The pair with the highest count (smallest key on a tie) and its count, or nil if no pair is left.
    mutating func popBest() -> (UInt64, Int)? {
        while let entry = heap.pop() {
            let current = counts[entry.pair] ?? 0
            if current == entry.count { return (entry.pair, current) }
            // A stale entry is too high (a count the merges have lowered since): re-queue the true count.
            // A lower one is a leftover after a rise that was pushed afresh; drop it.
            if current > 0 && current < entry.count { heap.push(.init(count: current, pair: entry.pair)) }
        }
        return nil
    }

    /// Merges every occurrence of `pair` in every word into the symbol `merged`, updating counts, the index
    /// and the heap. `stamp` is unique to this merge.
    mutating func merge(pair: UInt64, into merged: Int32, words: inout WordTable, stamp: Int32) {
        let (left, right) = Self.split(pair)
        var created: Set<UInt64> = []
        for w32 in wordsWith.removeValue(forKey: pair) ?? [] {
            let w = Int(w32)
            guard stamps[w] != stamp else { continue }
            stamps[w] = stamp
            let s = Int(words.start[w]), n = Int(words.length[w]), f = words.frequency[w]
            var found = false
            for i in s..<(s + n - 1) where words.symbols[i] == left && words.symbols[i + 1] == right {
                found = true
                break
            }
            guard found else { continue }  // a stale index entry

            // Take the word's pairs out, merge left to right, put the new pairs in.
            for i in s..<(s + n - 1) { counts[Self.key(words.symbols[i], words.symbols[i + 1]), default: 0] -= f }
            var read = s, write = s
            let end = s + n
            while read < end {
                if read + 1 < end && words.symbols[read] == left && words.symbols[read + 1] == right {
                    words.symbols[write] = merged
                    read += 2
                } else {
                    words.symbols[write] = words.symbols[read]
                    read += 1
                }
                write += 1
            }
            let m = write - s
            words.length[w] = Int32(m)
            guard m > 1 else { continue }
            for i in s..<(s + m - 1) {
                let a = words.symbols[i], b = words.symbols[i + 1]
                let k = Self.key(a, b)
                counts[k, default: 0] += f
                // Only pairs holding the new symbol are new to this word; the others are listed already.
                if a == merged || b == merged {
                    wordsWith[k, default: []].append(w32)
                    created.insert(k)
                }
            }
        }
        counts[pair] = nil
        // Created pairs may have risen: push their counts. Every other pair only fell or stayed.
        for k in created {
            if let c = counts[k], c > 0 { heap.push(.init(count: c, pair: k)) }
        }
    }
}

/// A binary max-heap of (count, pair): higher count first, then smaller pair key (smaller left id, then
/// smaller right id).
struct PairHeap {
    struct Entry {
        var count: Int
        var pair: UInt64

        @inline(__always)
        func before(_ other: Entry) -> Bool {
            count != other.count ? count > other.count : pair < other.pair
        }
    }

    private var items: [Entry] = []

    mutating func build(_ entries: [Entry]) {
        items = entries
        var i = items.count / 2
        while i > 0 {
            i -= 1
            siftDown(from: i)
        }
    }

    mutating func push(_ entry: Entry) {
        items.append(entry)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !entry.before(items[parent]) { break }
            items[child] = items[parent]
            child = parent
        }
        items[child] = entry
    }

    mutating func pop() -> Entry? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        siftDown(from: 0)
        return top
    }

    private mutating func siftDown(from start: Int) {
        let n = items.count
        let entry = items[start]
        var parent = start
        while true {
            var child = 2 * parent + 1
            if child >= n { break }
            if child + 1 < n && items[child + 1].before(items[child]) { child += 1 }
            if !items[child].before(entry) { break }
            items[parent] = items[child]
            parent = child
        }
        items[parent] = entry
    }
}
