// Tests of the GPT-2 byte-level BPE tokenizer against llama.cpp's GPT-2 test vectors, hand-derived
// expectations, and round trips. Shared data is found at `../shared` beside the package root, or at
// $LOUPE_SHARED; if it is missing the tests that need it fail (they do not skip).

import Foundation
import Testing
@testable import LoupeFormats

// MARK: - GPT-2 vocabulary

@Suite("BPETokenizer: GPT-2")
struct BPETokenizerGPT2Tests {
    /// llama.cpp's `test-tokenizer-0` vectors: `gpt2.inp` holds inputs, each followed by
    /// `\n__ggml_vocab_test__\n`; `gpt2.out` one line of space-separated ids per input (an empty line for an
    /// empty input). Splitting `gpt2.inp` at the separator leaves an empty remainder after the last one,
    /// which is not a case (llama.cpp's docs count it, hence "47 inputs": there are 46 pairs).
    @Test func llamaCppTestVectors() throws {
        let tok = try BPETestData.gpt2.get()
        let dir = try BPETestData.sharedDirectory().appendingPathComponent("data/tokenizer-tests")
        let inp = try [UInt8](Data(contentsOf: dir.appendingPathComponent("gpt2.inp")))
        let out = try [UInt8](Data(contentsOf: dir.appendingPathComponent("gpt2.out")))

        var inputs = BPETestData.split(inp, on: Array("\n__ggml_vocab_test__\n".utf8))
        #expect(inputs.last == [], "gpt2.inp should end with the separator")
        inputs.removeLast()
        var lines = BPETestData.split(out, on: [UInt8(ascii: "\n")])
        #expect(lines.last == [], "gpt2.out should end with a newline")
        lines.removeLast()
        try #require(inputs.count == lines.count, "gpt2.inp has \(inputs.count) inputs but gpt2.out \(lines.count) lines")
        #expect(inputs.count == 46)

        for (index, (input, line)) in zip(inputs, lines).enumerated() {
            let text = try #require(String(bytes: input, encoding: .utf8), "input \(index) is not UTF-8")
            let expected = try String(decoding: line, as: UTF8.self).split(separator: " ").map { field in
                try #require(Int(field), "gpt2.out line \(index + 1): \"\(field)\" is not an id")
            }
            let ids = tok.encode(text)
            #expect(ids == expected, "case \(index): \(text.debugDescription)")
            #expect(try tok.decode(ids) == text, "case \(index) does not round-trip: \(text.debugDescription)")
        }
    }

    @Test func vocabularyFacts() throws {
        let tok = try BPETestData.gpt2.get()
        #expect(tok.vocabSize == 50257)
        #expect(tok.endOfText == 50256)
        #expect(tok.specialTokens == ["<|endoftext|>": 50256])
        #expect(tok.id(for: "Ġthe") == 262)
        #expect(tok.id(for: "<|endoftext|>") == 50256)
        #expect(tok.id(for: "not a token") == nil)
        #expect(try tok.spelling(262) == "Ġthe")
        #expect(try tok.tokenString(262) == " the")
        #expect(try tok.tokenString(198) == "\n")
        #expect(try tok.tokenString(50256) == "<|endoftext|>")
    }

    /// Every entry of `encoder.json` is found by `id(for:)`, spelled back by `spelling`, and decodes to the
    /// bytes that `encoder.py`'s `bytes_to_unicode` assigns to its characters.
    @Test func everyTokenAgreesWithEncoderJSON() throws {
        let tok = try BPETestData.gpt2.get()
        let encoder = try BPETestData.encoderJSON()
        var scalarToByte: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in BPETestData.byteToScalar { scalarToByte[c] = b }
        var mismatches: [String] = []
        for (token, id) in encoder {
            let expectedBytes = token == "<|endoftext|>" ? Array(token.utf8) : token.unicodeScalars.compactMap { scalarToByte[$0] }
            if tok.id(for: token) != id || (try? tok.spelling(id)) != token || (try? tok.decodeBytes([id])) != expectedBytes {
                mismatches.append("\(token.debugDescription) (\(id))")
            }
        }
        #expect(encoder.count == 50257)
        #expect(mismatches.isEmpty, "tokens disagreeing with encoder.json: \(mismatches.prefix(10))")
        for b in 0..<256 {
            #expect(ByteLevelAlphabet.scalars[b] == BPETestData.byteToScalar[UInt8(b)], "byte \(b)")
        }
    }

    @Test func endOfTextIsSpecial() throws {
        let tok = try BPETestData.gpt2.get()
        #expect(tok.encode("<|endoftext|>") == [50256])
        // " world" is 995 and "Hello" 15496 (gpt2.out, "Hello world").
        #expect(tok.encode("Hello<|endoftext|> world") == [15496, 50256, 995])
        #expect(tok.encode("<|endoftext|><|endoftext|>") == [50256, 50256])
        // Ids from OpenAI's encoder.py, which never matches special tokens: "<|", "endoftext", "|>".
        #expect(tok.encode("<|endoftext|>", allowSpecial: false) == [27, 91, 437, 1659, 5239, 91, 29])
        #expect(tok.encode("Hello<|endoftext|> world", allowSpecial: false) == [15496, 27, 91, 437, 1659, 5239, 91, 29, 995])
        #expect(tok.encode("<|endoftext|", allowSpecial: true) == [27, 91, 437, 1659, 5239, 91])
        #expect(try tok.decode([15496, 50256, 995]) == "Hello<|endoftext|> world")
    }

    static let roundTripStrings: [String] = [
        "", " ", "\t", "\n", "\r\n", "  \n\t \u{0B}\u{0C}\r ", "trailing spaces   ", "   leading",
        "Hello, world! How's it going? I'd've thought they'll say 'RE'.",
        "emoji: 🦙🚀😶‍🌫️ 👩🏽‍💻 🇫🇷 ✅",
        "combining: e\u{301} a\u{308}\u{304} Z\u{335}\u{330}\u{31B}",
        "CJK: 我想在apple工作1314151天～ 日本語のテキスト 한국어",
        "Arabic: مرحبا بالعالم ١٢٣ — Hebrew: שלום",
        "Khmer: កាន់តែពិសេសអាចខលចេញ  Devanagari: नमस्ते दुनिया",
        "mixed whitespace:\u{A0}\u{2003}\u{3000}\u{85}\u{2028}\u{2029}x",
        "tabs\tand\tnewlines\n\n\nand\r\rcarriage returns",
        "inside text<|endoftext|>and after <|endoftext|>\n",
        "<|endoftext", "|>", "<|endoftext|><|endoftext|>",
        "digits 0 00 000 3.14159 1,000,000 ½ ⅓ ²",
        "controls \u{0}\u{1}\u{1C}\u{1F}\u{7F} zero width \u{200B}\u{200D}\u{FEFF}",
        "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀 \u{10FFFF}\u{E000}",
        String(repeating: "a", count: 3000), String(repeating: "🙂", count: 500),
    ]

    @Test(arguments: roundTripStrings)
    func roundTrip(_ text: String) throws {
        let tok = try BPETestData.gpt2.get()
        for allowSpecial in [true, false] {
            let ids = tok.encode(text, allowSpecial: allowSpecial)
            // Bytes, not String ==, which would accept a canonically equivalent but different text.
            #expect(try tok.decodeBytes(ids) == Array(text.utf8), "allowSpecial: \(allowSpecial)")
            #expect(try tok.decode(ids) == text)
        }
    }

    /// Strings of random scalars from several scripts, whitespace kinds and the astral planes.
    @Test func randomScalarsRoundTrip() throws {
        let tok = try BPETestData.gpt2.get()
        var rng = BPETestData.SplitMix64(state: 0x5EED)
        let ranges: [ClosedRange<UInt32>] = [
            0x20...0x7E, 0x00...0x20, 0x80...0x24F, 0x300...0x36F, 0x370...0x6FF, 0x900...0x97F, 0x1780...0x17FF,
            0x2000...0x206F, 0x3000...0x30FF, 0x4E00...0x9FFF, 0xAC00...0xD7A3, 0xE000...0xFFFD, 0x1F300...0x1FAFF,
            0x10000...0x10FFFF,
        ]
        for caseIndex in 0..<300 {
            var view = String.UnicodeScalarView()
            let length = Int.random(in: 0...40, using: &rng)
            for _ in 0..<length {
                let range = ranges[Int.random(in: 0..<ranges.count, using: &rng)]
                let value = UInt32.random(in: range, using: &rng)
                if let scalar = Unicode.Scalar(value) { view.append(scalar) }  // nil only for surrogates
            }
            let text = String(view)
            let ids = tok.encode(text)
            #expect(try tok.decodeBytes(ids) == Array(text.utf8), "random case \(caseIndex): \(text.debugDescription)")
        }
    }

    /// Decoding a token that holds part of a character gives U+FFFD per maximal invalid subsequence, as
    /// Python's `bytes.decode("utf-8", errors="replace")` does (expected strings from CPython).
    @Test func lossyDecoding() throws {
        let tok = try BPETestData.gpt2.get()
        func byteTokens(_ bytes: [UInt8]) throws -> [Int] {
            try bytes.map { b in try #require(BPETestData.byteToScalar[b].flatMap { tok.id(for: String($0)) }, "byte \(b)") }
        }
        let cases: [([UInt8], String)] = [
            ([0xF0, 0x9F], "\u{FFFD}"),
            ([0x80], "\u{FFFD}"),
            ([0xC3, 0x28], "\u{FFFD}("),
            ([0xE2, 0x82, 0x61], "\u{FFFD}a"),
            ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),
            ([0xC0, 0xAF], "\u{FFFD}\u{FFFD}"),
            ([0xF0, 0x9F, 0xA6, 0x99], "🦙"),
        ]
        for (bytes, expected) in cases {
            let ids = try byteTokens(bytes)
            #expect(try tok.decodeBytes(ids) == bytes)
            #expect(try tok.decode(ids) == expected, "bytes \(bytes)")
        }
        // " 🦙" is 12520 99 247 (gpt2.out); the first token alone is a space and half a character.
        #expect(try tok.decode([12520, 99, 247]) == " 🦙")
        #expect(try tok.tokenString(12520) == " \u{FFFD}")
    }

    @Test func unknownIDsThrow() throws {
        let tok = try BPETestData.gpt2.get()
        for id in [50257, -1, Int.max] {
            #expect(throws: TokenizerError.unknownTokenID(id, vocabSize: 50257)) { try tok.decode([15496, id]) }
            #expect(throws: TokenizerError.unknownTokenID(id, vocabSize: 50257)) { try tok.decodeBytes([id]) }
            #expect(throws: TokenizerError.unknownTokenID(id, vocabSize: 50257)) { try tok.tokenString(id) }
        }
    }

    /// The scan (short pieces) and heap (long pieces) merge loops agree on pieces of every length.
    @Test func mergeLoopsAgree() throws {
        let tok = try BPETestData.gpt2.get()
        var rng = BPETestData.SplitMix64(state: 42)
        let alphabet = Array("etaoinshrdlu".utf8) + [UInt8(ascii: "'"), 0xC3, 0xA9]
        for length in Array(2...80) + [150, 400, 1000] {
            let bytes = (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            var scan: [Int32] = [], heap: [Int32] = []
            var symbols = bytes.map { tok.byteTokens[Int($0)] }
            symbols.withUnsafeMutableBufferPointer { BPETokenizer.Merger.mergeByScan($0, table: tok.merges, into: &scan) }
            symbols = bytes.map { tok.byteTokens[Int($0)] }
            symbols.withUnsafeMutableBufferPointer { BPETokenizer.Merger.mergeByHeap($0, table: tok.merges, into: &heap) }
            #expect(scan == heap, "length \(length)")
            if length >= 10 { #expect(scan.count < length, "some merge should apply to \(length) letters") }
        }
    }

    /// Concurrent encoders sharing one tokenizer see the same ids as a serial run.
    @Test func concurrentEncodingIsConsistent() async throws {
        let tok = try BPETestData.gpt2.get()
        let texts = Self.roundTripStrings.filter { !$0.isEmpty }
        let serial = texts.map { tok.encode($0) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var same = true
                    for round in 0..<5 {
                        for (i, text) in texts.enumerated() where (i + worker + round) % 2 == 0 {
                            same = same && tok.encode(text) == serial[i]
                        }
                    }
                    return same
                }
            }
            for try await same in group { #expect(same) }
        }
    }
}

// MARK: - Pre-tokenizer

@Suite("GPT-2 pre-tokenizer")
struct GPT2PreTokenizerTests {
    /// Expected pieces from `regex.findall` with GPT-2's pattern (Python `regex` module).
    static let cases: [(String, [String])] = [
        ("Hello world", ["Hello", " world"]),
        ("   Hello", ["  ", " Hello"]),
        ("a  !", ["a", " ", " !"]),
        ("\n\nHello", ["\n", "\n", "Hello"]),
        ("x   ", ["x", "   "]),
        (" \t x", [" \t", " x"]),
        ("I'm they'll 'RE", ["I", "'m", " they", "'ll", " '", "RE"]),
        ("3.14 42abc", ["3", ".", "14", " 42", "abc"]),
        ("¿Qué?", ["¿", "Qué", "?"]),
        ("e\u{301}", ["e", "\u{301}"]),
        ("''s", ["''", "s"]),
        ("it's\u{A0}ok", ["it", "'s", "\u{A0}", "ok"]),
        ("tab\tsep\t\tx", ["tab", "\t", "sep", "\t", "\t", "x"]),
        ("a\u{3000}\u{3000}b", ["a", "\u{3000}", "\u{3000}", "b"]),
        ("  ", ["  "]),
        ("x\r\n", ["x", "\r\n"]),
        ("", []),
    ]

    @Test(arguments: cases)
    func pieces(_ text: String, _ expected: [String]) {
        let pieces = GPT2PreTokenizer.pieces(of: text)
        // Compare scalars: String == would also accept canonically equivalent pieces.
        #expect(pieces.map { Array($0.unicodeScalars) } == expected.map { Array($0.unicodeScalars) },
                "\(text.debugDescription) → \(pieces)")
    }

    @Test func classes() {
        typealias C = GPT2PreTokenizer.ScalarClass
        let cases: [(UInt32, C)] = [
            (0x41, .letter), (0xE9, .letter), (0x4E00, .letter), (0x2B0, .letter), (0x30, .number), (0xBD, .number),
            (0x2160, .number), (0x0661, .number), (0x20, .whitespace), (0x09, .whitespace), (0x85, .whitespace),
            (0xA0, .whitespace), (0x2028, .whitespace), (0x3000, .whitespace), (0x1C, .other), (0x200B, .other),
            (0xFEFF, .other), (0x301, .other), (0x27, .other), (0x1F999, .other), (0x0, .other),
        ]
        for (value, expected) in cases {
            #expect(GPT2PreTokenizer.classify(value) == expected, "U+\(String(value, radix: 16, uppercase: true))")
        }
    }
}
