// SentencePiece-style BPE over a scored vocabulary, as llama.cpp runs GGUF files with
// `tokenizer.ggml.model = "llama"` (Llama 2, Mistral, TinyLlama, Gemma): spaces become "▁" (U+2581); the
// text starts as one symbol per character; the adjacent pair whose concatenation is a vocabulary token
// with the highest score is merged, again and again (ties: leftmost); a final symbol that is no token is
// spelled by its UTF-8 bytes as `<0xAB>` byte tokens (byte fallback), or the unknown token.
// Reference: llama.cpp `src/llama-vocab.cpp` (`llm_tokenizer_spm_session`), and SentencePiece's BPE model.

import Foundation

/// The scored vocabulary of a SentencePiece BPE model.
struct SentencePieceModel: Sendable {
    /// Normal (and unused) tokens by their UTF-8 bytes (not by `String`: Swift compares strings up to
    /// canonical equivalence, and vocabularies hold distinct tokens that are canonically equal).
    let pieces: ByteStringTable
    /// Score of each id (higher merges first).
    let scores: [Float]
    /// `byteTokens[b]`: the id of `<0xBB>`, or -1.
    let byteTokens: [Int32]
    let unknownID: Int32?
    /// Whether a "▁" is put before the text (SentencePiece's `add_dummy_prefix`).
    let addSpacePrefix: Bool

    /// The bytes a token stands for: "▁" is a space, `<0xAB>` is the byte 0xAB.
    static func bytes(of token: String, isByteToken: Bool) -> [UInt8] {
        if isByteToken, let b = byteValue(token) { return [b] }
        return Array(replacingScalar("\u{2581}", with: " ", in: token).utf8)
    }

    /// `text` with every `scalar` replaced, scalar by scalar (`String.replacingOccurrences` compares
    /// characters, so a space followed by a combining mark would be left alone).
    static func replacingScalar(_ scalar: Unicode.Scalar, with replacement: Unicode.Scalar, in text: some StringProtocol) -> String {
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars { out.append(u == scalar ? replacement : u) }
        return String(out)
    }

    /// The byte of a `<0xAB>` token.
    static func byteValue(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
              u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    /// Appends the ids of one segment of text (no special tokens in it).
    func encode(_ text: Substring, atStart: Bool, into out: inout [Int32]) {
        guard !text.isEmpty else { return }
        var normalized = Self.replacingScalar(" ", with: "\u{2581}", in: text)
        if addSpacePrefix && atStart { normalized = "\u{2581}" + normalized }
        var text = normalized.unicodeScalars.map { Array(String($0).utf8) }
        let n = text.count
        // Symbols as a linked list: symbol i holds text[i] (scalars merged into it) until it is merged away.
        var prev = (0..<n).map { $0 - 1 }, next = (0..<n).map { $0 + 1 }
        var alive = [Bool](repeating: true, count: n)
        struct Bigram: Comparable {
            let score: Float, left: Int, right: Int, merged: [UInt8]
            static func < (a: Bigram, b: Bigram) -> Bool { a.score != b.score ? a.score < b.score : a.left > b.left }
            static func == (a: Bigram, b: Bigram) -> Bool { a.score == b.score && a.left == b.left }
        }
        var heap = BinaryHeap<Bigram>()
        func consider(_ l: Int, _ r: Int) {
            guard l >= 0, r < n else { return }
            let merged = text[l] + text[r]
            if let id = pieces.lookup(merged) { heap.push(Bigram(score: scores[Int(id)], left: l, right: r, merged: merged)) }
        }
        for i in 0..<(n - 1) { consider(i, i + 1) }
        while let best = heap.pop() {
            let (l, r) = (best.left, best.right)
            // Stale: one side was merged away or changed since this pair was seen.
            guard alive[l], alive[r], next[l] == r, text[l].count + text[r].count == best.merged.count,
                  text[l] + text[r] == best.merged else { continue }
            text[l] = best.merged
            alive[r] = false
            next[l] = next[r]
            if next[r] < n { prev[next[r]] = l }
            consider(prev[l], l)
            consider(l, next[l])
        }
        var i = 0
        while i < n {
            if let id = pieces.lookup(text[i]) {
                out.append(id)
            } else {
                for b in text[i] {
                    let id = byteTokens[Int(b)]
                    if id >= 0 { out.append(id) } else if let unknownID { out.append(unknownID) }
                }
            }
            i = next[i]
        }
    }
}

/// A max-heap.
struct BinaryHeap<Element: Comparable> {
    private var items: [Element] = []

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[parent] < items[i] else { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let (l, r) = (2 * i + 1, 2 * i + 2)
            var largest = i
            if l < items.count, items[largest] < items[l] { largest = l }
            if r < items.count, items[largest] < items[r] { largest = r }
            if largest == i { break }
            items.swapAt(i, largest)
            i = largest
        }
        return top
    }
}
