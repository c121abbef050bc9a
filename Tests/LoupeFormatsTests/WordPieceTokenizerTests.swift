// WordPiece (BERT) tokenizers from `tokenizer.json`: all-MiniLM-L6-v2's tokenizer against Hugging Face
// `tokenizers` on varied text (Tests/Fixtures/minilm-tokenizer-cases.json, made by scripts/make_bert_fixtures.py),
// a hand-made vocabulary whose splits are worked out by hand, and the settings that must be refused.

import Foundation
import Testing
@testable import LoupeFormats

@Suite struct WordPieceTokenizerTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let miniLM = fixtures.appendingPathComponent("minilm-tokenizer.json")

    /// The cases: a list of `{"text", "ids"}`, or an object holding one under `cases`.
    static func cases() throws -> [(text: String, ids: [Int])] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("minilm-tokenizer-cases.json"))
        let json = try JSONSerialization.jsonObject(with: data)
        let list = (json as? [[String: Any]]) ?? ((json as? [String: Any])?["cases"] as? [[String: Any]]) ?? []
        return list.compactMap { c in
            guard let text = c["text"] as? String, let ids = c["ids"] as? [Int] else { return nil }
            return (text, ids)
        }
    }

    @Test func miniLMEqualsHuggingFace() throws {
        let tok = try BPETokenizer(tokenizerJSON: Self.miniLM)
        let cases = try Self.cases()
        #expect(cases.count >= 100, "\(cases.count) cases")
        var wrong: [String] = []
        for (text, ids) in cases where tok.encodeForModel(text) != ids {
            wrong.append("\(text.debugDescription): \(tok.encodeForModel(text)) vs \(ids)")
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(cases.count) differ:\n\(wrong.prefix(8).joined(separator: "\n"))")
        #expect(tok.bosID == tok.id(for: "[CLS]") && tok.appendedID == tok.id(for: "[SEP]"))
        // Special tokens in the text are matched; the rest is normalized (lower-cased, accents stripped).
        let mask = try #require(tok.id(for: "[MASK]"))
        #expect(tok.encode("Paris is the [MASK] of France").contains(mask))
        #expect(tok.encode("CAFÉ") == tok.encode("cafe"))
    }

    /// A vocabulary small enough to split by hand.
    static let tiny = """
        {
          "version": "1.0",
          "added_tokens": [
            {"id": 0, "content": "[PAD]", "special": true}, {"id": 1, "content": "[UNK]", "special": true},
            {"id": 2, "content": "[CLS]", "special": true}, {"id": 3, "content": "[SEP]", "special": true}
          ],
          "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
          "pre_tokenizer": {"type": "BertPreTokenizer"},
          "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [], "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
          "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
          "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 9,
            "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "un": 4, "##aff": 5, "##able": 6, "a": 7, "##ff": 8,
                      "!": 9, "cafe": 10, "中": 11, "##a": 12, "unaff": 13}}
        }
        """

    func tokenizer(_ json: String) throws -> BPETokenizer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-wp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("tokenizer.json")
        try json.write(to: file, atomically: true, encoding: .utf8)
        return try BPETokenizer(tokenizerJSON: file)
    }

    @Test func greedyLongestMatchByHand() throws {
        let tok = try tokenizer(Self.tiny)
        // "unaffable": longest first piece "unaff" (13), then "##able" (6).
        #expect(tok.encode("unaffable") == [13, 6])
        // "UNAFF!": lower-cased, punctuation split off.
        #expect(tok.encode("UNAFF!") == [13, 9])
        // "Café": accents stripped (strip_accents null follows lowercase).
        #expect(tok.encode("Café") == [10])
        // "aa": "a" then "##a"; "ab": no piece for "##b", so the whole word is unknown.
        #expect(tok.encode("aa ab") == [7, 12, 1])
        // CJK ideographs are words of their own, even without spaces.
        #expect(tok.encode("中中") == [11, 11])
        // Longer than max_input_chars_per_word (9): unknown.
        #expect(tok.encode("aaaaaaaaaa") == [1])
        #expect(tok.encode("aaaaaaaaa") == [7] + Array(repeating: 12, count: 8))
        // Control characters are dropped; tabs and newlines separate words.
        #expect(tok.encode("a\u{7}a\tun\n!") == [7, 12, 4, 9])
        #expect(tok.encodeForModel("un!") == [2, 4, 9, 3])
        #expect(try tok.decode([4, 5, 6, 9]) == "unaffable !")
        #expect(try tok.decode([2, 4, 3]) == "[CLS] un [SEP]")
    }

    @Test func settingsThatChangeTokensAreRefusedWhenUnknown() throws {
        func message(_ json: String) -> String {
            do { _ = try tokenizer(json); return "no error" } catch { return "\(error)" }
        }
        let lowercaseOnly = Self.tiny.replacingOccurrences(
            of: #""normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}"#,
            with: #""normalizer": {"type": "Lowercase"}"#)
        #expect(message(lowercaseOnly).contains("normalizer Lowercase"))
        #expect(message(Self.tiny.replacingOccurrences(of: #""lowercase": true}"#, with: #""lowercase": true, "nfkc": true}"#)).contains("nfkc"))
        #expect(message(Self.tiny.replacingOccurrences(of: #"{"type": "BertPreTokenizer"}"#, with: #"{"type": "Whitespace"}"#)).contains("Whitespace"))
        #expect(message(Self.tiny.replacingOccurrences(of: #""unk_token": "[UNK]""#, with: #""unk_token": "[NOPE]""#)).contains("unk_token"))
        #expect(message(Self.tiny.replacingOccurrences(of: #""lowercase": true}"#, with: #""lowercase": "yes"}"#)).contains("lowercase"))
        #expect(message(Self.tiny.replacingOccurrences(of: #""type": "WordPiece", "unk_token""#, with: #""type": "Unigram", "unk_token""#)).contains("Unigram"))
    }
}
