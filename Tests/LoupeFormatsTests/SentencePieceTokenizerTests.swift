// The SentencePiece-style GGUF tokenizer on a hand-made vocabulary, where the merges by score, the byte
// fallback and the handling of canonically equal tokens can be worked out by hand.

import LoupeFormats
import Testing

@Suite struct SentencePieceTokenizerTests {
    /// ids: 0 <unk>, 1 <bos>, 2 <eos>, 3...258 <0x00>...<0xFF>, then the pieces below in order.
    static let pieces: [(String, Float)] = [
        ("\u{2581}", -10), ("h", -10), ("e", -10), ("l", -10), ("o", -10), ("ll", -1), ("llo", -2),
        ("\u{2581}h", -3), ("\u{2581}he", -4), ("\u{2581}hello", -5),
        ("\u{00E9}", -10), ("e\u{0301}", -10),            // é precomposed and decomposed: distinct tokens
    ]

    /// Id 259 + pieces.count: a user-defined token of two spaces (Gemma has such tokens for runs of whitespace).
    static let twoSpaces = 259 + pieces.count

    static func tokenizer(extra: [(String, Float)] = [], addSpacePrefix: Bool = true) throws -> BPETokenizer {
        var tokens = ["<unk>", "<bos>", "<eos>"], scores: [Float] = [0, 0, 0], types = [2, 3, 3]
        for b in 0..<256 {
            tokens.append("<0x\(String(b, radix: 16, uppercase: true).count == 1 ? "0" : "")\(String(b, radix: 16, uppercase: true))>")
            scores.append(0); types.append(6)
        }
        for (t, s) in pieces { tokens.append(t); scores.append(s); types.append(1) }
        tokens.append("  "); scores.append(0); types.append(4)
        for (t, s) in extra { tokens.append(t); scores.append(s); types.append(1) }
        return try BPETokenizer(ggufSentencePieceTokens: tokens, scores: scores, tokenTypes: types, bosID: 1, eosID: 2,
                                unknownID: 0, addBOS: true, addSpacePrefix: addSpacePrefix)
    }

    static func id(_ piece: String) -> Int { 259 + pieces.firstIndex { $0.0.utf8.elementsEqual(piece.utf8) }! }

    /// "▁hello": ll (−1) first, then llo (−2), ▁h (−3), ▁he (−4), ▁hello (−5): one token.
    @Test func mergesByScore() throws {
        let t = try Self.tokenizer()
        #expect(t.encodeForModel("hello") == [1, Self.id("\u{2581}hello")])
        // Without the space prefix "hello" can only reach h e llo.
        let bare = try Self.tokenizer(addSpacePrefix: false)
        #expect(bare.encodeForModel("hello") == [1, Self.id("h"), Self.id("e"), Self.id("llo")])
        // Decoding concatenates each token's text, "▁" read as a space (the space prefix is kept).
        #expect(try t.decode([Self.id("\u{2581}hello"), Self.id("\u{2581}h")]) == " hello h")
    }

    /// Characters with no token fall back to their UTF-8 bytes, which decode back to the text.
    @Test func byteFallback() throws {
        let t = try Self.tokenizer(addSpacePrefix: false)
        let ids = t.encodeForModel("h\u{1F99C}")
        #expect(ids == [1, Self.id("h"), 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x9C])
        #expect(try t.decode(Array(ids.dropFirst())) == "h\u{1F99C}")
    }

    /// Swift calls "é" and "e\u{301}" equal; the vocabulary does not, and neither may the tokenizer.
    @Test func canonicallyEqualTokensStayDistinct() throws {
        let t = try Self.tokenizer(addSpacePrefix: false)
        #expect(t.encodeForModel("\u{00E9}") == [1, Self.id("\u{00E9}")])
        #expect(t.encodeForModel("e\u{0301}") == [1, Self.id("e\u{0301}")])
        #expect(Self.id("\u{00E9}") != Self.id("e\u{0301}"))
        #expect(try t.decodeBytes([Self.id("e\u{0301}")]) == Array("e\u{0301}".utf8))
        #expect(try t.decodeBytes([Self.id("\u{00E9}")]) == Array("\u{00E9}".utf8))
        // Looked up and spelled by bytes too.
        #expect(t.id(for: "\u{00E9}") == Self.id("\u{00E9}"))
        #expect(t.id(for: "e\u{0301}") == Self.id("e\u{0301}"))
        #expect(try Array(t.spelling(Self.id("e\u{0301}")).utf8) == Array("e\u{0301}".utf8))
        #expect(try Array(t.spelling(Self.id("\u{00E9}")).utf8) == Array("\u{00E9}".utf8))
    }

    /// A space followed by a combining mark is one Swift Character; it is still a "▁", not a byte.
    @Test func spaceBeforeACombiningMark() throws {
        let t = try Self.tokenizer(addSpacePrefix: false)
        let ids = t.encodeForModel("h \u{0301}")
        #expect(ids == [1, Self.id("h"), Self.id("\u{2581}"), 3 + 0xCC, 3 + 0x81])
        #expect(try t.decode(Array(ids.dropFirst())) == "h \u{0301}")
        #expect(try t.decode([Self.id("\u{2581}"), 3 + 0xCC, 3 + 0x81]) == " \u{0301}")
    }

    /// User-defined tokens are found after "▁" and " " are made one, as Hugging Face normalizes before it
    /// looks for them: "h▁▁e" and "h  e" both hold the two-space token.
    @Test func userDefinedTokensMatchAfterNormalization() throws {
        let t = try Self.tokenizer(addSpacePrefix: false)
        let want = [1, Self.id("h"), Self.twoSpaces, Self.id("e")]
        #expect(t.encodeForModel("h  e") == want)
        #expect(t.encodeForModel("h\u{2581}\u{2581}e") == want)
        #expect(t.encodeForModel("h\u{2581} e") == want)
        #expect(try t.decode([Self.twoSpaces]) == "  ")
    }

    @Test func aTokenListedTwiceIsAnError() throws {
        #expect(throws: TokenizerError.invalidVocab(reason: "token \"ll\" is listed twice, as ids \(Self.id("ll")) and \(Self.twoSpaces + 1)")) {
            try Self.tokenizer(extra: [("ll", -7)])
        }
    }
}
