// Tests of the pre-tokenizers beyond GPT-2's (SmolLM2, Llama 3, Qwen2), of `tokenizer.json` pre-tokenizer
// configurations, and of loading from GGUF vocabulary data.
//
// Expected ids and pieces come from Hugging Face `tokenizers` (never from this code), through the fixtures that
// `scripts/make_tokenizer_fixtures.py` writes from the SmolLM2-135M-Instruct GGUF's vocabulary:
// `Tests/Fixtures/smollm2-tokenizer.json` (SmolLM2's tokenizer) and `*-tokenizer-cases.json`. The Llama 3 and
// Qwen2 tokenizers are synthetic: SmolLM2's with the `overrides` of their cases file (pre-tokenizer, added
// tokens, post-processor, `model.ignore_merges`) written into a temporary tokenizer.json. Each case runs
// through `init(tokenizerJSON:)` and through `init(ggufTokens:…)`, whose arrays are read out of that JSON.

import Foundation
import Testing
@testable import LoupeFormats

// MARK: - SmolLM2

@Suite("Pre-tokenizers: SmolLM2")
struct SmolLM2TokenizerTests {
    @Test func fixtureCasesThroughTokenizerJSON() throws {
        let file = try PreTokenizerTestData.caseFile("smollm2-tokenizer-cases.json")
        #expect(file.cases.count == 41)
        try PreTokenizerTestData.check(file.cases, try PreTokenizerTestData.smollm2.get().json, "tokenizer.json")
    }

    @Test func fixtureCasesThroughGGUFVocabulary() throws {
        let file = try PreTokenizerTestData.caseFile("smollm2-tokenizer-cases.json")
        try PreTokenizerTestData.check(file.cases, try PreTokenizerTestData.smollm2.get().gguf, "GGUF")
    }

    @Test func piecesMatchTokenizers() throws {
        let file = try PreTokenizerTestData.caseFile("smollm2-tokenizer-cases.json")
        PreTokenizerTestData.checkPieces(file.cases, .smollm)
    }

    /// ../shared/docs/references.md: the first 1200 characters (Unicode scalars, as Python counts them) of
    /// Pride and Prejudice are 320 SmolLM2 tokens.
    @Test func prideAndPrejudiceOpening() throws {
        let tok = try PreTokenizerTestData.smollm2.get()
        let file = try PreTokenizerTestData.caseFile("smollm2-tokenizer-cases.json")
        let text = try PreTokenizerTestData.prideAndPrejudice()
        var opening = String.UnicodeScalarView()
        opening.append(contentsOf: text.unicodeScalars.prefix(1200))
        let ids = tok.json.encode(String(opening))
        #expect(ids.count == 320)
        #expect(file.austen1200TokenCount == 320)
        #expect(tok.gguf.encode(String(opening)) == ids)
        #expect(try tok.json.decode(ids) == String(opening))
    }

    @Test func prideAndPrejudiceWhole() throws {
        let file = try PreTokenizerTestData.caseFile("smollm2-tokenizer-cases.json")
        let tok = try PreTokenizerTestData.smollm2.get()
        try PreTokenizerTestData.checkWholeBook(file, tok.json, "tokenizer.json")
        try PreTokenizerTestData.checkWholeBook(file, tok.gguf, "GGUF")
    }

    @Test func vocabularyFacts() throws {
        let tok = try PreTokenizerTestData.smollm2.get()
        for t in [tok.json, tok.gguf] {
            #expect(t.vocabSize == 49152)
            #expect(t.preTokenizer == .smollm)
            #expect(t.ignoresMerges == false)
            #expect(t.specialTokens.count == 17)
            #expect(t.specialTokens["<|im_start|>"] == 1)
            #expect(t.endOfText == 0)
            #expect(try t.spelling(216) == "Ġ")
            #expect(try t.tokenString(1) == "<|im_start|>")
        }
        // The GGUF's metadata: BOS 1, EOS 2, no BOS added; a tokenizer.json has no such notion.
        #expect(tok.gguf.bosID == 1)
        #expect(tok.gguf.eosID == 2)
        #expect(tok.gguf.addsBOS == false)
        #expect(tok.json.bosID == nil && tok.json.eosID == nil && tok.json.addsBOS == false)
        let prompt = "<|im_start|>user\nHi<|im_end|>"
        #expect(tok.gguf.encodeForModel(prompt) == tok.gguf.encode(prompt))
        #expect(tok.gguf.encodeForModel(prompt) == [1, 4093, 198, 26843, 2])  // the fixture's case
    }

    /// Changing `preTokenizer` on a loaded tokenizer changes the split and nothing else: SmolLM2 switched to
    /// `.llama3` encodes the Llama 3 cases as the synthetic Llama 3 tokenizer does (its `ignore_merges` changes
    /// nothing on this vocabulary, as make_tokenizer_fixtures.py checks), except where `<|begin_of_text|>`,
    /// which SmolLM2 lacks, is in the text.
    @Test func preTokenizerIsSwitchable() throws {
        var tok = try PreTokenizerTestData.smollm2.get().gguf
        tok.preTokenizer = .llama3
        let cases = try PreTokenizerTestData.caseFile("llama3-tokenizer-cases.json").cases
            .filter { !$0.text.contains("<|begin_of_text|>") }
        #expect(cases.count == 28)
        for c in cases { #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)") }
        #expect(PreTokenizer.gpt2.pieces(of: "Year 2024") == ["Year", " 2024"])
        #expect(PreTokenizer.smollm.pieces(of: "Year 2024") == ["Year", " ", "2", "0", "2", "4"])
        #expect(PreTokenizer.llama3.pieces(of: "Year 2024") == ["Year", " ", "202", "4"])
        #expect(PreTokenizer.qwen2.pieces(of: "Year 2024") == ["Year", " ", "2", "0", "2", "4"])
    }

    static let roundTripStrings: [String] = [
        "", " ", "\t", "\r\n", "  \n\t \u{0B}\u{0C}\r ", "0", "00 000 0000", "1.5e-10", "v1.2.3",
        "emoji: 🦙🚀😶‍🌫️ 👩🏽‍💻 🇫🇷 ✅", "combining: e\u{301} a\u{308}\u{304}", "CJK: 我想在apple工作1314151天～",
        "mixed whitespace:\u{A0}\u{2003}\u{3000}\u{85}\u{2028}\u{2029}x", "digits ١٢٣ ०१२ ½ ⅓ ² Ⅻ",
        "<|im_start|><|im_end|><|endoftext|>", "<|im_start", String(repeating: "9", count: 500),
        String(repeating: "ab12", count: 300), "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀 \u{10FFFF}\u{E000}",
    ]

    @Test(arguments: roundTripStrings)
    func roundTrip(_ text: String) throws {
        let tok = try PreTokenizerTestData.smollm2.get()
        for t in [tok.json, tok.gguf] {
            for allowSpecial in [true, false] {
                #expect(try t.decodeBytes(t.encode(text, allowSpecial: allowSpecial)) == Array(text.utf8))
            }
        }
        #expect(tok.json.encode(text) == tok.gguf.encode(text))
    }
}

// MARK: - Llama 3 and Qwen2

@Suite("Pre-tokenizers: Llama 3 and Qwen2")
struct Llama3TokenizerTests {
    @Test func llama3CasesThroughTokenizerJSON() throws {
        let file = try PreTokenizerTestData.caseFile("llama3-tokenizer-cases.json")
        #expect(file.cases.count == 29)
        #expect(file.cases.allSatisfy { $0.modelIDs != nil })
        try PreTokenizerTestData.check(file.cases, try PreTokenizerTestData.llama3.get().json, "tokenizer.json")
    }

    @Test func llama3CasesThroughGGUFVocabulary() throws {
        let file = try PreTokenizerTestData.caseFile("llama3-tokenizer-cases.json")
        try PreTokenizerTestData.check(file.cases, try PreTokenizerTestData.llama3.get().gguf, "GGUF")
    }

    @Test func prideAndPrejudiceWhole() throws {
        let llama3 = try PreTokenizerTestData.llama3.get()
        let llama3File = try PreTokenizerTestData.caseFile("llama3-tokenizer-cases.json")
        try PreTokenizerTestData.checkWholeBook(llama3File, llama3.json, "llama3 tokenizer.json")
        try PreTokenizerTestData.checkWholeBook(llama3File, llama3.gguf, "llama3 GGUF")
        let qwen2 = try PreTokenizerTestData.qwen2.get()
        let qwen2File = try PreTokenizerTestData.caseFile("qwen2-tokenizer-cases.json")
        try PreTokenizerTestData.checkWholeBook(qwen2File, qwen2.json, "qwen2 tokenizer.json")
        try PreTokenizerTestData.checkWholeBook(qwen2File, qwen2.gguf, "qwen2 GGUF")
    }

    @Test func llama3PiecesMatchTokenizers() throws {
        PreTokenizerTestData.checkPieces(try PreTokenizerTestData.caseFile("llama3-tokenizer-cases.json").cases, .llama3)
    }

    @Test func qwen2Cases() throws {
        let file = try PreTokenizerTestData.caseFile("qwen2-tokenizer-cases.json")
        #expect(file.cases.count == 11)
        let tok = try PreTokenizerTestData.qwen2.get()
        try PreTokenizerTestData.check(file.cases, tok.json, "qwen2 tokenizer.json")
        try PreTokenizerTestData.check(file.cases, tok.gguf, "qwen2 GGUF")
        PreTokenizerTestData.checkPieces(file.cases, .qwen2)
    }

    /// What the loaders read: the pre-tokenizer, `ignore_merges` (from model.ignore_merges, or implied by the
    /// name `llama-bpe`), and BOS (from the post_processor's template, or given).
    @Test func loadedSettings() throws {
        let llama3 = try PreTokenizerTestData.llama3.get()
        for t in [llama3.json, llama3.gguf] {
            #expect(t.preTokenizer == .llama3)
            #expect(t.ignoresMerges)
            #expect(t.bosID == 49152)
            #expect(t.addsBOS)
            #expect(t.encode("Hi") == [26843])
            #expect(t.encodeForModel("Hi") == [49152, 26843])
            #expect(t.encodeForModel("") == [49152])
        }
        let qwen2 = try PreTokenizerTestData.qwen2.get()
        for t in [qwen2.json, qwen2.gguf] {
            #expect(t.preTokenizer == .qwen2)
            #expect(t.ignoresMerges == false)
            #expect(t.addsBOS == false)
            #expect(t.encodeForModel("Hi") == [26843])
        }
    }

    /// Expected pieces from `tokenizers` (`pre_tokenizers.Split(Regex(pattern), "isolated")`): the long s
    /// folds to s under `(?i)` (and no other non-ASCII letter does), NEL and U+2028 are whitespace but not
    /// newlines, U+001C is not whitespace.
    static let llama3Pieces: [(String, [String])] = [
        ("x'ſt x'ẞx x'\u{212A}x", ["x", "'ſ", "t", " x", "'ẞx", " x", "'\u{212A}x"]),
        ("x'LLx x'lLx x'ſſx x'Ssx", ["x", "'LL", "x", " x", "'lL", "x", " x", "'ſ", "ſx", " x", "'S", "sx"]),
        ("a \u{1C}b \u{1D}c \u{85}d \u{180E}e \u{200B}f \u{FEFF}g \u{2028}h \u{0B}i \u{0C}j",
         ["a", " \u{1C}", "b", " \u{1D}", "c", " ", "\u{85}d", " \u{180E}", "e", " \u{200B}", "f", " \u{FEFF}", "g",
          " ", "\u{2028}h", " ", "\u{0B}i", " ", "\u{0C}j"]),
        ("a\u{85}\nb", ["a", "\u{85}\n", "b"]),
        ("x\u{2028}\u{2029}y", ["x", "\u{2028}", "\u{2029}y"]),
        ("a \u{0B}\nb", ["a", " \u{0B}\n", "b"]),
        ("a\t\tb  \n \n  c\r\n\r\nd", ["a", "\t", "\tb", "  \n \n", " ", " c", "\r\n\r\n", "d"]),
    ]

    @Test(arguments: llama3Pieces)
    func llama3Scanner(_ text: String, _ expected: [String]) {
        let pieces = PreTokenizer.llama3.pieces(of: text)
        #expect(pieces.map { Array($0.unicodeScalars) } == expected.map { Array($0.unicodeScalars) },
                "\(text.debugDescription) → \(pieces)")
    }

    /// `ignore_merges` on a vocabulary where it matters: "abc" is a token that the one merge (a b) cannot
    /// reach. Expected ids from `tokenizers` (models.BPE with ignore_merges true / false, ByteLevel):
    /// "abc" → [4] / [3, 2]; "abcabc" → [3, 2, 3, 2] (one piece, not a token); "cabc" → [2, 3, 2].
    @Test func ignoreMerges() throws {
        func tokenizerJSON(_ ignore: Bool) -> String {
            """
            {"added_tokens": [], "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
             "model": {"type": "BPE", "ignore_merges": \(ignore), "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "Ġ": 5},
                       "merges": [["a", "b"]]}}
            """
        }
        for ignore in [true, false] {
            let url = try PreTokenizerTestData.temporaryFile(text: tokenizerJSON(ignore))
            defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
            let json = try BPETokenizer(tokenizerJSON: url)
            let gguf = try BPETokenizer(ggufTokens: ["a", "b", "c", "ab", "abc", "Ġ"], merges: ["a b"], tokenTypes: nil,
                                        preTokenizer: ignore ? "llama-bpe" : "dbrx", bosID: nil, eosID: nil,
                                        unknownID: nil, addBOS: false)
            for tok in [json, gguf] {
                #expect(tok.ignoresMerges == ignore)
                #expect(tok.encode("abc") == (ignore ? [4] : [3, 2]))
                #expect(tok.encode("abcabc") == [3, 2, 3, 2])
                #expect(tok.encode("cabc") == [2, 3, 2])
            }
        }
    }
}
