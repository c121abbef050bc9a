// Tests of the GPT-2 byte-level BPE tokenizer against llama.cpp's GPT-2 test vectors, hand-derived
// expectations, and round trips. Shared data is found at `../shared` beside the package root, or at
// $LOUPE_SHARED; if it is missing the tests that need it fail (they do not skip).

import Foundation
import Testing
@testable import LoupeFormats

// MARK: - tokenizer.json and errors

@Suite("BPETokenizer: files and errors")
struct BPETokenizerFileTests {
    /// A tiny byte-level BPE: the letters a b c and Ġ (space), merges a+b, ab+c, Ġ+ab, b+c (mixing both
    /// `tokenizer.json` merge spellings), an unknown token, one special and one non-special added token.
    static let tinyTokenizerJSON = """
        {
          "version": "1.0",
          "added_tokens": [
            {"id": 9, "content": "<|eot|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 10, "content": "<sep>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}
          ],
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
          "model": {
            "type": "BPE",
            "unk_token": "<unk>",
            "vocab": {"a": 0, "b": 1, "c": 2, "Ġ": 3, "ab": 4, "abc": 5, "Ġab": 6, "<unk>": 7, "bc": 8},
            "merges": ["a b", ["ab", "c"], "Ġ ab", ["b", "c"]]
          }
        }
        """

    @Test func tinyTokenizerJSON() throws {
        let dir = try BPETestData.temporaryDirectory(with: ["tokenizer.json": Self.tinyTokenizerJSON])
        defer { try? FileManager.default.removeItem(at: dir) }
        let tok = try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))

        #expect(tok.vocabSize == 11)
        #expect(tok.specialTokens == ["<|eot|>": 9])
        #expect(tok.endOfText == nil)
        #expect(tok.encode("abc") == [5])        // a b c → ab c → abc
        #expect(tok.encode(" ab") == [6])        // Ġ a b → Ġ ab → Ġab
        #expect(tok.encode("bca") == [8, 0])     // (b,c) rank 3, (c,a) none → bc a
        #expect(tok.encode("cab") == [2, 4])     // c ab; (c,ab) is no merge
        #expect(tok.encode("abc ab") == [5, 6])
        #expect(tok.encode("abc<|eot|>cab") == [5, 9, 2, 4])
        #expect(tok.encode("a<sep>b") == [0, 10, 1])
        #expect(tok.encode("a<sep>b", allowSpecial: false) == [0, 10, 1])  // added tokens always match
        #expect(tok.encode("x") == [7])          // a byte the vocabulary lacks → unk_token
        // "<|", "eot", "|>": seven bytes, none in the vocabulary.
        #expect(tok.encode("<|eot|>", allowSpecial: false) == Array(repeating: 7, count: 7))
        #expect(try tok.decode([5, 9, 6, 10]) == "abc<|eot|> ab<sep>")
        #expect(try tok.tokenString(3) == " ")
        #expect(throws: TokenizerError.unknownTokenID(11, vocabSize: 11)) { try tok.decode([11]) }
    }

    @Test func tokenizerJSONWithoutUnknownTokenDropsUnknownBytes() throws {
        let json = Self.tinyTokenizerJSON.replacingOccurrences(of: "\"unk_token\": \"<unk>\",", with: "")
        let dir = try BPETestData.temporaryDirectory(with: ["tokenizer.json": json])
        defer { try? FileManager.default.removeItem(at: dir) }
        let tok = try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
        #expect(tok.encode("xabcx") == [5])
    }

    /// Broken `tokenizer.json` files, each with the error it must raise.
    static let brokenTokenizerJSON: [(String, String, @Sendable (String) -> TokenizerError)] = [
        ("not JSON", "{\"model\": ", { .malformedJSON(path: $0, expected: "a tokenizer.json with model.vocab and model.merges (the file is not valid JSON)") }),
        ("no merges", #"{"model": {"type": "BPE", "vocab": {"a": 0}}}"#,
         { .malformedJSON(path: $0, expected: "a tokenizer.json with model.vocab and model.merges (key \"merges\" is missing in model)") }),
        ("vocab ids not integers", #"{"model": {"vocab": {"a": "zero"}, "merges": []}}"#,
         { .malformedJSON(path: $0, expected: "a tokenizer.json with model.vocab and model.merges (model.vocab.a is not an integer)") }),
        ("merge with two spaces", #"{"model": {"vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a  b"]}}"#,
         { .malformedJSON(path: $0, expected: "model.merges[0] to be \"left right\" (two tokens separated by one space), found \"a  b\"") }),
        ("merge triple", #"{"model": {"vocab": {"a": 0}, "merges": [["a", "a", "a"]]}}"#,
         { .malformedJSON(path: $0, expected: "model.merges[0] to be a pair of strings, found an array of 3") }),
        ("Unigram", #"{"model": {"type": "Unigram", "vocab": {"a": 0}, "merges": []}}"#,
         { .unsupportedModel(path: $0, type: "Unigram") }),
        ("WordPiece without its unknown token", #"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#,
         { .malformedJSON(path: $0, expected: "model.unk_token of a WordPiece model to be in model.vocab") }),
        ("merge of unknown token", #"{"model": {"vocab": {"a": 0, "ab": 2}, "merges": ["a b"]}}"#,
         { _ in .mergeTokenNotInVocab(rank: 0, merge: "a b", token: "b") }),
        ("merge result missing", #"{"model": {"vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}"#,
         { _ in .mergeTokenNotInVocab(rank: 0, merge: "a b", token: "ab") }),
        ("shared id", #"{"model": {"vocab": {"a": 0, "b": 0}, "merges": []}}"#,
         { _ in .invalidVocab(reason: "id 0 is used by both \"a\" and \"b\"") }),
        // One lying id once sized a 34 GB table: ids are checked against the number of entries first.
        ("vocab id near Int32.max", #"{"model": {"vocab": {"a": 0, "b": 2147483000}, "merges": []}}"#,
         { _ in .invalidVocab(reason: "token \"b\" has id 2147483000, far beyond the 2 entries (ids must run from 0 to about the vocabulary size; at most 1027 here)") }),
        ("added token id 2^30", #"{"model": {"vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1073741824, "content": "<x>", "special": true}]}"#,
         { _ in .invalidVocab(reason: "token \"<x>\" has id 1073741824, far beyond the 2 entries (ids must run from 0 to about the vocabulary size; at most 1027 here)") }),
        ("unk not in vocab", #"{"model": {"vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}}"#,
         { .malformedJSON(path: $0, expected: "model.unk_token \"<unk>\" to be in model.vocab or added_tokens") }),
    ]

    @Test(arguments: brokenTokenizerJSON.indices)
    func malformedTokenizerJSONThrows(_ index: Int) throws {
        let (name, json, expected) = Self.brokenTokenizerJSON[index]
        let dir = try BPETestData.temporaryDirectory(with: ["tokenizer.json": json])
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        #expect(throws: expected(url.path), "\(name)") { try BPETokenizer(tokenizerJSON: url) }
    }

    @Test func missingFilesThrowNamingThePath() throws {
        let dir = try BPETestData.temporaryDirectory(with: ["vocab.bpe": "#version: 0.2\n"])
        defer { try? FileManager.default.removeItem(at: dir) }
        let encoder = dir.appendingPathComponent("encoder.json")
        let error = #expect(throws: TokenizerError.self) {
            try BPETokenizer(encoderJSON: encoder, vocabBPE: dir.appendingPathComponent("vocab.bpe"))
        }
        #expect(error == .fileNotFound(path: encoder.path))
        #expect(error?.description == "tokenizer file not found: \(encoder.path)")

        let json = dir.appendingPathComponent("tokenizer.json")
        #expect(throws: TokenizerError.fileNotFound(path: json.path)) { try BPETokenizer(tokenizerJSON: json) }
    }

    @Test func malformedMergesLineThrowsWithLineNumber() throws {
        let dir = try BPETestData.temporaryDirectory(with: [
            "encoder.json": #"{"a": 0, "b": 1, "ab": 2, "Ġ": 3}"#,
            "vocab.bpe": "#version: 0.2\na b\nab\n",
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocabBPE = dir.appendingPathComponent("vocab.bpe")
        let error = #expect(throws: TokenizerError.self) {
            try BPETokenizer(encoderJSON: dir.appendingPathComponent("encoder.json"), vocabBPE: vocabBPE)
        }
        #expect(error == .malformedMergesLine(path: vocabBPE.path, line: 3, content: "ab"))
        #expect(error?.description == "\(vocabBPE.path):3: malformed merges line \"ab\": expected two tokens separated by one space")
    }

    @Test func smallEncoderJSONAndVocabBPE() throws {
        let dir = try BPETestData.temporaryDirectory(with: [
            "encoder.json": #"{"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4, "<|endoftext|>": 5}"#,
            "vocab.bpe": "#version: 0.2\r\na b\r\nĠ ab\r\n\r\n",
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let tok = try BPETokenizer(encoderJSON: dir.appendingPathComponent("encoder.json"),
                                   vocabBPE: dir.appendingPathComponent("vocab.bpe"))
        #expect(tok.endOfText == 5)
        #expect(tok.encode("ab ab<|endoftext|>b") == [2, 4, 5, 1])
    }

    @Test func malformedEncoderJSONThrows() throws {
        let dir = try BPETestData.temporaryDirectory(with: ["encoder.json": #"["a", "b"]"#, "vocab.bpe": "#version: 0.2\n"])
        defer { try? FileManager.default.removeItem(at: dir) }
        let encoder = dir.appendingPathComponent("encoder.json")
        #expect(throws: TokenizerError.malformedJSON(
            path: encoder.path,
            expected: "an object mapping token strings to integer ids (the top level is not an object)")) {
            try BPETokenizer(encoderJSON: encoder, vocabBPE: dir.appendingPathComponent("vocab.bpe"))
        }
    }

    /// Exact user-facing messages.
    @Test func errorMessages() {
        let cases: [(TokenizerError, String)] = [
            (.fileNotFound(path: "/x/encoder.json"), "tokenizer file not found: /x/encoder.json"),
            (.unreadableFile(path: "/x/vocab.bpe", reason: "it is not UTF-8 text"),
             "cannot read tokenizer file /x/vocab.bpe: it is not UTF-8 text"),
            (.malformedJSON(path: "/x/t.json", expected: "model.merges[0] to be a pair of strings, found an array of 3"),
             "/x/t.json: malformed tokenizer JSON: expected model.merges[0] to be a pair of strings, found an array of 3"),
            (.malformedMergesLine(path: "/x/vocab.bpe", line: 7, content: "a\tb"),
             "/x/vocab.bpe:7: malformed merges line \"a\\tb\": expected two tokens separated by one space"),
            (.unsupportedModel(path: "/x/t.json", type: "Unigram"),
             "/x/t.json: model type \"Unigram\" is not supported; expected \"BPE\" or \"WordPiece\""),
            (.mergeTokenNotInVocab(rank: 12, merge: "Ġ x", token: "Ġx"),
             "merge 12 (\"Ġ x\"): token \"Ġx\" is not in the vocabulary"),
            (.invalidVocab(reason: "an empty token has id 3"), "invalid vocabulary: an empty token has id 3"),
            (.unknownTokenID(50257, vocabSize: 50257), "unknown token id 50257: ids run from 0 to 50256"),
        ]
        for (error, message) in cases { #expect(error.description == message) }
    }

    /// encoder.json (GPT-2's vocab.json) goes through the same check.
    @Test func encoderJSONWithAHugeIDThrows() throws {
        let dir = try BPETestData.temporaryDirectory(with: ["encoder.json": #"{"a": 0, "b": 2147483646}"#, "vocab.bpe": "#version: 0.2\n"])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: TokenizerError.invalidVocab(reason: "token \"b\" has id 2147483646, far beyond the 2 entries (ids must run from 0 to about the vocabulary size; at most 1027 here)")) {
            try BPETokenizer(encoderJSON: dir.appendingPathComponent("encoder.json"), vocabBPE: dir.appendingPathComponent("vocab.bpe"))
        }
    }

    @Test func generalInitializerValidates() {
        #expect(throws: TokenizerError.invalidVocab(reason: "token \"a\" has id -1, outside 0..<2147483647")) {
            try BPETokenizer(vocab: ["a": -1], merges: [], specialTokens: [:])
        }
        #expect(throws: TokenizerError.invalidVocab(reason: "an empty token has id 0")) {
            try BPETokenizer(vocab: ["": 0], merges: [], specialTokens: [:])
        }
        #expect(throws: TokenizerError.invalidVocab(reason: "id 1 is used by both \"<s>\" and \"b\"")) {
            try BPETokenizer(vocab: ["a": 0, "b": 1], merges: [], specialTokens: ["<s>": 1])
        }
    }
}
