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

// MARK: - Fixtures

/// Fixtures and helpers, kept in one namespace so that nothing here collides with other test files.
private enum PreTokenizerTestData {
    struct FixtureError: Error, CustomStringConvertible {
        let description: String
    }

    /// `<root>/Tests/Fixtures` (this file is `<root>/Tests/LoupeFormatsTests/PreTokenizerTests.swift`).
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // LoupeFormatsTests
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures", isDirectory: true)

    /// One string and what Hugging Face `tokenizers` makes of it.
    struct Case: Decodable, Sendable {
        let text: String
        /// `encode(text, add_special_tokens=False)`.
        let ids: [Int]
        /// The same with special tokens spelled out as text, when that differs.
        let idsNoSpecial: [Int]?
        /// `encode(text, add_special_tokens=True)` (the Llama 3 cases, whose template prepends BOS).
        let modelIDs: [Int]?
        /// The pre-tokenizer's pieces, or nil when the text holds a special token.
        let pieces: [String]?

        enum CodingKeys: String, CodingKey {
            case text, ids, pieces
            case idsNoSpecial = "ids_no_special"
            case modelIDs = "model_ids"
        }
    }

    struct GGUFMetadata: Decodable, Sendable {
        let pre: String
        let bosID: Int
        let eosID: Int
        let unknownID: Int
        let addBOS: Bool
        let nTokens: Int
        let nMerges: Int

        enum CodingKeys: String, CodingKey {
            case pre
            case bosID = "bos_id", eosID = "eos_id", unknownID = "unknown_id", addBOS = "add_bos"
            case nTokens = "n_tokens", nMerges = "n_merges"
        }
    }

    struct CaseFile: Decodable, Sendable {
        let cases: [Case]
        let gguf: GGUFMetadata?
        let austen1200TokenCount: Int?
        /// Token count and checksum (sum of (i + 1) * ids[i]) of all of Pride and Prejudice.
        let austenTokenCount: Int
        let austenChecksum: Int

        enum CodingKeys: String, CodingKey {
            case cases, gguf
            case austen1200TokenCount = "austen_1200_token_count"
            case austenTokenCount = "austen_token_count"
            case austenChecksum = "austen_checksum"
        }
    }

    static func caseFile(_ name: String) throws -> CaseFile {
        try JSONDecoder().decode(CaseFile.self, from: Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static func jsonObject(_ data: Data, _ what: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FixtureError(description: "\(what) is not a JSON object")
        }
        return object
    }

    /// `smollm2-tokenizer.json` with the `overrides` and `model_overrides` of a cases file applied, as a
    /// JSON object (nil name: unchanged).
    static func tokenizerObject(variant casesName: String?) throws -> [String: Any] {
        var base = try jsonObject(Data(contentsOf: fixtures.appendingPathComponent("smollm2-tokenizer.json")),
                                  "smollm2-tokenizer.json")
        guard let casesName else { return base }
        let file = try jsonObject(Data(contentsOf: fixtures.appendingPathComponent(casesName)), casesName)
        guard let overrides = file["overrides"] as? [String: Any],
              let modelOverrides = file["model_overrides"] as? [String: Any],
              var model = base["model"] as? [String: Any]
        else { throw FixtureError(description: "\(casesName) lacks overrides or model_overrides") }
        for (key, value) in overrides { base[key] = value }
        for (key, value) in modelOverrides { model[key] = value }
        base["model"] = model
        return base
    }

    /// Writes a JSON object to a fresh temporary file.
    static func temporaryFile(_ object: Any, name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("loupe-pretok-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return url
    }

    static func temporaryFile(text: String, name: String = "tokenizer.json") throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("loupe-pretok-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// GGUF's vocabulary arrays, read out of a tokenizer.json object: `tokenizer.ggml.tokens` (id order),
    /// `.merges` (`"left right"`), `.token_type` (1 normal; 3 control for special added tokens, 4 user-defined
    /// for the others), as llama.cpp's converter writes them.
    struct GGUFArrays {
        var tokens: [String]
        var merges: [String]
        var types: [Int]
    }

    static func ggufArrays(_ object: [String: Any]) throws -> GGUFArrays {
        guard let model = object["model"] as? [String: Any], let vocab = model["vocab"] as? [String: Int],
              let rawMerges = model["merges"] as? [Any], let added = object["added_tokens"] as? [[String: Any]]
        else { throw FixtureError(description: "tokenizer.json lacks model.vocab, model.merges or added_tokens") }
        var byID: [Int: (String, Int)] = [:]
        for (token, id) in vocab { byID[id] = (token, 1) }
        for token in added {
            guard let id = token["id"] as? Int, let content = token["content"] as? String,
                  let special = token["special"] as? Bool
            else { throw FixtureError(description: "malformed added token \(token)") }
            byID[id] = (content, special ? 3 : 4)
        }
        let count = (byID.keys.max() ?? -1) + 1
        var tokens: [String] = [], types: [Int] = []
        for id in 0..<count {
            guard let (token, type) = byID[id] else { throw FixtureError(description: "no token has id \(id)") }
            tokens.append(token)
            types.append(type)
        }
        let merges = try rawMerges.map { merge -> String in
            if let pair = merge as? [String], pair.count == 2 { return pair[0] + " " + pair[1] }
            if let joined = merge as? String { return joined }
            throw FixtureError(description: "malformed merge \(merge)")
        }
        return GGUFArrays(tokens: tokens, merges: merges, types: types)
    }

    /// A tokenizer through `init(tokenizerJSON:)` and one through `init(ggufTokens:…)`, from one tokenizer.json.
    struct Pair: Sendable {
        let json: BPETokenizer
        let gguf: BPETokenizer
    }

    static func pair(variant: String?, pre: String, bosID: Int?, eosID: Int?, unknownID: Int?, addBOS: Bool) throws -> Pair {
        let object = try tokenizerObject(variant: variant)
        let url = try temporaryFile(object, name: "tokenizer.json")
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let arrays = try ggufArrays(object)
        return Pair(
            json: try BPETokenizer(tokenizerJSON: url),
            gguf: try BPETokenizer(ggufTokens: arrays.tokens, merges: arrays.merges, tokenTypes: arrays.types,
                                   preTokenizer: pre, bosID: bosID, eosID: eosID, unknownID: unknownID, addBOS: addBOS))
    }

    /// SmolLM2 as the fixture describes it (GGUF metadata from the cases file); loaded once.
    static let smollm2: Result<Pair, Error> = Result {
        guard let meta = try caseFile("smollm2-tokenizer-cases.json").gguf else {
            throw FixtureError(description: "smollm2-tokenizer-cases.json lacks the GGUF metadata")
        }
        // The committed tokenizer.json itself, not a re-serialized copy, for the tokenizer.json path.
        let json = try BPETokenizer(tokenizerJSON: fixtures.appendingPathComponent("smollm2-tokenizer.json"))
        let arrays = try ggufArrays(try tokenizerObject(variant: nil))
        let gguf = try BPETokenizer(ggufTokens: arrays.tokens, merges: arrays.merges, tokenTypes: arrays.types,
                                    preTokenizer: meta.pre, bosID: meta.bosID, eosID: meta.eosID,
                                    unknownID: meta.unknownID, addBOS: meta.addBOS)
        return Pair(json: json, gguf: gguf)
    }

    /// The synthetic Llama 3 tokenizer: `<|begin_of_text|>` (id 49152) is BOS, added by its template.
    static let llama3: Result<Pair, Error> = Result {
        try pair(variant: "llama3-tokenizer-cases.json", pre: "llama-bpe", bosID: 49152, eosID: 2, unknownID: 0, addBOS: true)
    }

    static let qwen2: Result<Pair, Error> = Result {
        try pair(variant: "qwen2-tokenizer-cases.json", pre: "qwen2", bosID: nil, eosID: 2, unknownID: 0, addBOS: false)
    }

    /// `$LOUPE_SHARED`, else the package root's sibling `shared`.
    static func sharedDirectory() throws -> URL {
        if let override = ProcessInfo.processInfo.environment["LOUPE_SHARED"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        let url = fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared", isDirectory: true)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureError(description: "shared test data not found at \(url.path) (or set LOUPE_SHARED)")
        }
        return url
    }

    /// Checks every case against a tokenizer: ids with and without special tokens, the ids the model reads
    /// (when the case has them), and that the ids decode to the text's bytes.
    static func check(_ cases: [Case], _ tok: BPETokenizer, _ label: String) throws {
        for (index, c) in cases.enumerated() {
            let name = "\(label) case \(index) \(c.text.debugDescription.prefix(60))"
            let ids = tok.encode(c.text)
            #expect(ids == c.ids, "\(name)")
            #expect(tok.encode(c.text, allowSpecial: false) == (c.idsNoSpecial ?? c.ids), "\(name), allowSpecial: false")
            if let modelIDs = c.modelIDs { #expect(tok.encodeForModel(c.text) == modelIDs, "\(name), for the model") }
            #expect(try tok.decodeBytes(c.ids) == Array(c.text.utf8), "\(name) does not decode to its text")
        }
    }

    static func prideAndPrejudice() throws -> String {
        let url = try sharedDirectory().appendingPathComponent("data/corpora/austen/pride-and-prejudice.txt")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// Checks the whole of Pride and Prejudice against the fixture's count and checksum, and the round trip.
    static func checkWholeBook(_ file: CaseFile, _ tok: BPETokenizer, _ label: String) throws {
        let text = try prideAndPrejudice()
        let ids = tok.encode(text)
        #expect(ids.count == file.austenTokenCount, "\(label)")
        #expect(ids.enumerated().reduce(0) { $0 + ($1.offset + 1) * $1.element } == file.austenChecksum, "\(label)")
        #expect(try tok.decodeBytes(ids) == Array(text.utf8), "\(label)")
    }

    /// Compares pieces by scalars: String == would also accept canonically equivalent pieces.
    static func checkPieces(_ cases: [Case], _ preTokenizer: PreTokenizer) {
        var compared = 0
        for c in cases {
            guard let expected = c.pieces else { continue }
            let pieces = preTokenizer.pieces(of: c.text)
            #expect(pieces.map { Array($0.unicodeScalars) } == expected.map { Array($0.unicodeScalars) },
                    "\(preTokenizer): \(c.text.debugDescription) → \(pieces)")
            compared += 1
        }
        #expect(compared >= cases.count - 5, "too few cases with pieces: \(compared)")
    }
}

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

// MARK: - Configurations, GGUF data and errors

@Suite("Pre-tokenizers: configurations and errors")
struct PreTokenizerConfigurationTests {
    static let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
    static let byteLevelNoRegex = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}"#
    static let llama3Split = #"{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}"#

    /// A tiny tokenizer.json with the given `pre_tokenizer` value (nil: no such key).
    static func tokenizerJSON(preTokenizer: String?) -> String {
        let pre = preTokenizer.map { "\"pre_tokenizer\": \($0)," } ?? ""
        return """
            {\(pre) "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "1": 4, "Ġ1": 5}, "merges": ["a b", "Ġ 1"]}}
            """
    }

    static let supported: [(String?, PreTokenizer)] = [
        (nil, .gpt2),
        (byteLevel, .gpt2),
        (#"{"type": "ByteLevel", "add_prefix_space": false}"#, .gpt2),
        (#"{"type": "Sequence", "pretokenizers": [\#(byteLevel)]}"#, .gpt2),
        (#"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, \#(byteLevel)]}"#, .smollm),
        (#"{"type": "Sequence", "pretokenizers": [\#(llama3Split), \#(byteLevelNoRegex)]}"#, .llama3),
        (#"{"type": "Sequence", "pretokenizers": [\#(llama3Split.replacingOccurrences(of: "{1,3}", with: "")), \#(byteLevelNoRegex)]}"#, .qwen2),
    ]

    @Test(arguments: supported.indices)
    func supportedPreTokenizer(_ index: Int) throws {
        let (config, expected) = Self.supported[index]
        let url = try PreTokenizerTestData.temporaryFile(text: Self.tokenizerJSON(preTokenizer: config))
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let tok = try BPETokenizer(tokenizerJSON: url)
        #expect(tok.preTokenizer == expected)
        // " 1": one piece (→ "Ġ1") for GPT-2; Digits and both Split patterns cut the space from the digit.
        #expect(tok.encode("ab 1") == (expected == .gpt2 ? [2, 5] : [2, 3, 4]))
    }

    /// Unsupported `pre_tokenizer` values and how the error names them.
    static let unsupported: [(String, String)] = [
        ("null", "null"),
        (#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}"#,
         #"Metaspace(prepend_scheme: "always", replacement: "▁", split: true)"#),
        (#"{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"#,
         "ByteLevel(add_prefix_space: true, trim_offsets: true, use_regex: true)"),
        (#"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}"#, "ByteLevel(add_prefix_space: false, use_regex: false)"),
        (#"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": false}, \#(byteLevel)]}"#,
         "Sequence[Digits(individual_digits: false), ByteLevel(add_prefix_space: false, trim_offsets: true, use_regex: true)]"),
        (#"{"type": "Sequence", "pretokenizers": [\#(llama3Split), \#(byteLevel)]}"#,
         #"Sequence[Split(behavior: "Isolated", invert: false, pattern: {Regex: "\#(PreTokenizer.llama3Pattern)"}), "#
            + "ByteLevel(add_prefix_space: false, trim_offsets: true, use_regex: true)]"),
        (#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}, \#(byteLevelNoRegex)]}"#,
         #"Sequence[Split(behavior: "Isolated", invert: false, pattern: {Regex: "\s+"}), ByteLevel(add_prefix_space: false, trim_offsets: true, use_regex: false)]"#),
        (#"{"type": "Whitespace"}"#, "Whitespace"),
    ]

    @Test(arguments: unsupported.indices)
    func unsupportedPreTokenizerThrows(_ index: Int) throws {
        let (config, summary) = Self.unsupported[index]
        let url = try PreTokenizerTestData.temporaryFile(text: Self.tokenizerJSON(preTokenizer: config))
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let error = #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: url) }
        #expect(error == .unsupportedPreTokenizer(path: url.path, found: summary))
        #expect(error?.description == "\(url.path): pre_tokenizer \(summary) is not supported; supported: "
                + "ByteLevel (GPT-2), Sequence[Digits(individual_digits: true), ByteLevel] (SmolLM2), "
                + "Sequence[Split(the Llama 3 or Qwen2 pattern), ByteLevel(use_regex: false)]")
    }

    /// Every name llama.cpp gives these pre-tokenizers loads, with its pre-tokenizer and `ignore_merges`.
    @Test func ggufNames() throws {
        let expected: [String: (PreTokenizer, Bool)] = [
            "default": (.gpt2, false), "gpt2": (.gpt2, false), "gpt-2": (.gpt2, false), "phi-2": (.gpt2, false),
            "mpt": (.gpt2, false), "olmo": (.gpt2, false), "jais": (.gpt2, false), "gigachat": (.gpt2, false),
            "jina-es": (.gpt2, false), "jina-de": (.gpt2, false), "jina-v2-es": (.gpt2, false), "jina-v2-de": (.gpt2, false),
            "a.x-4.0": (.gpt2, false), "mellum": (.gpt2, false), "trillion": (.gpt2, false),
            "granite-docling": (.gpt2, false), "exaone4": (.gpt2, false),
            "smollm": (.smollm, false), "starcoder": (.smollm, false), "refact": (.smollm, false),
            "command-r": (.smollm, false), "codeshell": (.smollm, false), "exaone": (.smollm, false),
            "minerva-7b": (.smollm, false),
            "llama3": (.llama3, true), "llama-v3": (.llama3, true), "llama-bpe": (.llama3, true), "falcon3": (.llama3, true),
            "falcon-h1": (.llama3, true), "pixtral": (.llama3, true), "midm-2.0": (.llama3, true), "lfm2": (.llama3, true),
            "jina-v5-nano": (.llama3, true), "dbrx": (.llama3, false), "smaug-bpe": (.llama3, false),
            "qwen2": (.qwen2, false), "deepseek-r1-qwen": (.qwen2, false), "kormo": (.qwen2, false),
            "megrez": (.qwen2, false), "stablelm2": (.qwen2, false), "hunyuan": (.qwen2, false),
        ]
        #expect(PreTokenizer.ggufNames.map(\.name) == expected.keys.sorted())
        for (name, (preTokenizer, ignoresMerges)) in expected {
            let tok = try BPETokenizer(ggufTokens: ["a", "b", "ab"], merges: ["a b"], tokenTypes: [1, 1, 1],
                                       preTokenizer: name, bosID: nil, eosID: nil, unknownID: nil, addBOS: false)
            #expect(tok.preTokenizer == preTokenizer, "\(name)")
            #expect(tok.ignoresMerges == ignoresMerges, "\(name)")
            // llama.cpp adds BOS by default exactly for the names that also ignore merges.
            #expect(BPETokenizer.ggufAddsBOSByDefault(preTokenizer: name) == ignoresMerges, "\(name)")
        }
        #expect(BPETokenizer.ggufAddsBOSByDefault(preTokenizer: "unknown") == false)
    }

    @Test func unknownGGUFPreTokenizerThrows() {
        for name in ["foo", "", "GPT2", "tekken", "deepseek-llm"] {
            let error = #expect(throws: TokenizerError.self) {
                try BPETokenizer(ggufTokens: ["a"], merges: [], tokenTypes: nil, preTokenizer: name,
                                 bosID: nil, eosID: nil, unknownID: nil, addBOS: false)
            }
            #expect(error == .unknownPreTokenizer(name: name, known: PreTokenizer.ggufNames.map(\.name)))
        }
        #expect(TokenizerError.unknownPreTokenizer(name: "foo", known: PreTokenizer.ggufNames.map(\.name)).description
                == "unknown pre-tokenizer \"foo\" (tokenizer.ggml.pre); known: a.x-4.0, codeshell, command-r, dbrx, deepseek-r1-qwen, "
                + "default, exaone, exaone4, falcon-h1, falcon3, gigachat, gpt-2, gpt2, granite-docling, hunyuan, "
                + "jais, jina-de, jina-es, jina-v2-de, jina-v2-es, jina-v5-nano, kormo, lfm2, llama-bpe, llama-v3, "
                + "llama3, megrez, mellum, midm-2.0, minerva-7b, mpt, olmo, phi-2, pixtral, qwen2, refact, "
                + "smaug-bpe, smollm, stablelm2, starcoder, trillion")
    }

    /// A small GGUF vocabulary: the letters a b c, Ġ, merges a+b and Ġ+ab, a control token `<s>` (BOS), an
    /// unknown-type token `<unk>`, a user-defined token `<tool>`, an unused and a byte-type token.
    static func tinyGGUF(addBOS: Bool = true, bosID: Int? = 6) throws -> BPETokenizer {
        try BPETokenizer(
            ggufTokens: ["a", "b", "c", "Ġ", "ab", "Ġab", "<s>", "</s>", "<unk>", "<tool>", "[UNUSED]", "<0x0A>"],
            merges: ["a b", "Ġ ab"], tokenTypes: [1, 1, 1, 1, 1, 1, 3, 3, 2, 4, 5, 6], preTokenizer: "gpt-2",
            bosID: bosID, eosID: 7, unknownID: 8, addBOS: addBOS)
    }

    @Test func ggufTokenTypes() throws {
        let tok = try Self.tinyGGUF()
        #expect(tok.vocabSize == 12)
        #expect(tok.specialTokens == ["<s>": 6, "</s>": 7, "<unk>": 8])
        #expect(tok.encode("ab ab") == [4, 5])
        // Control and unknown-type tokens only with allowSpecial; user-defined ones always (as llama.cpp).
        #expect(tok.encode("ab<s>ab</s>") == [4, 6, 4, 7])
        #expect(tok.encode("<unk><tool>") == [8, 9])
        #expect(tok.encode("ab<tool>c", allowSpecial: false) == [4, 9, 2])
        // With allowSpecial false "<s>" is text: "<", "s", ">" are bytes the vocabulary lacks, each → <unk>.
        #expect(tok.encode("<s>", allowSpecial: false) == [8, 8, 8])
        #expect(try tok.decode([6, 4, 9, 5, 7]) == "<s>ab<tool> ab</s>")
        // Unused and byte-type tokens are vocabulary entries spelled in the byte alphabet.
        #expect(tok.id(for: "[UNUSED]") == 10)
        #expect(try tok.tokenString(11) == "<0x0A>")
    }

    @Test func bosHandling() throws {
        var tok = try Self.tinyGGUF()
        #expect(tok.bosID == 6 && tok.eosID == 7 && tok.addsBOS)
        #expect(tok.encode("ab") == [4])              // encode never adds BOS
        #expect(tok.encodeForModel("ab") == [6, 4])
        #expect(tok.encodeForModel("") == [6])
        #expect(tok.encodeForModel("<s>ab") == [6, 6, 4])  // a BOS in the text is kept, as llama.cpp does
        tok.addsBOS = false
        #expect(tok.encodeForModel("ab") == [4])
        tok.addsBOS = true
        tok.bosID = nil
        #expect(tok.encodeForModel("ab") == [4])

        let off = try Self.tinyGGUF(addBOS: false)
        #expect(off.addsBOS == false && off.bosID == 6)
        #expect(off.encodeForModel("ab") == [4])
        let none = try Self.tinyGGUF(addBOS: false, bosID: nil)
        #expect(none.encodeForModel("ab") == [4])
    }

    /// GGUF data, by argument: `gguf(["a", "b"], bos: 2, addBOS: true)`.
    struct GGUFInput: Sendable {
        var tokens: [String]
        var merges: [String] = []
        var types: [Int]? = nil
        var bos: Int? = nil
        var eos: Int? = nil
        var unknown: Int? = nil
        var addBOS = false

        func load() throws -> BPETokenizer {
            try BPETokenizer(ggufTokens: tokens, merges: merges, tokenTypes: types, preTokenizer: "gpt2",
                             bosID: bos, eosID: eos, unknownID: unknown, addBOS: addBOS)
        }
    }

    /// Broken GGUF data, each with the error it must raise.
    static let brokenGGUF: [(String, GGUFInput, TokenizerError)] = [
        ("types not one per token", GGUFInput(tokens: ["a", "b"], types: [1]),
         .invalidVocab(reason: "1 token types for 2 tokens; expected one type per token")),
        ("type out of range", GGUFInput(tokens: ["a", "b"], types: [1, 7]),
         .invalidVocab(reason: "token \"b\" (id 1) has type 7; llama.cpp's types are 1 normal, 2 unknown, 3 control, "
            + "4 user-defined, 5 unused, 6 byte")),
        ("token listed twice", GGUFInput(tokens: ["a", "b", "a"]),
         .invalidVocab(reason: "token \"a\" is listed twice, as ids 0 and 2")),
        ("empty token", GGUFInput(tokens: ["a", ""]), .invalidVocab(reason: "an empty token has id 1")),
        ("merge without a space", GGUFInput(tokens: ["a", "b", "ab"], merges: ["a b", "ab"]),
         .malformedMerge(index: 1, content: "ab")),
        ("merge of an unknown token", GGUFInput(tokens: ["a", "ab"], merges: ["a b"]),
         .mergeTokenNotInVocab(rank: 0, merge: "a b", token: "b")),
        ("BOS outside the vocabulary", GGUFInput(tokens: ["a", "b"], bos: 2, addBOS: true),
         .invalidVocab(reason: "the BOS id 2 is outside 0..<2")),
        ("EOS negative", GGUFInput(tokens: ["a", "b"], eos: -1), .invalidVocab(reason: "the EOS id -1 is outside 0..<2")),
        ("BOS added but missing", GGUFInput(tokens: ["a", "b"], addBOS: true),
         .invalidVocab(reason: "addBOS is set but there is no BOS id")),
        ("unknown id names no token", GGUFInput(tokens: ["a", "b"], unknown: 5),
         .invalidVocab(reason: "the unknown-token id 5 names no token")),
    ]

    @Test(arguments: brokenGGUF.indices)
    func brokenGGUFThrows(_ index: Int) {
        let (name, input, expected) = Self.brokenGGUF[index]
        #expect(throws: expected, "\(name)") { _ = try input.load() }
    }

    /// A template's first special token must name a token.
    @Test func templateBOSOutsideVocabularyThrows() throws {
        let json = """
            {"pre_tokenizer": \(Self.byteLevel),
             "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                                "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [99], "tokens": ["<s>"]}}},
             "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}
            """
        let url = try PreTokenizerTestData.temporaryFile(text: json)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        #expect(throws: TokenizerError.malformedJSON(
            path: url.path, expected: "the post_processor's first special token (id 99) to be in the vocabulary")) {
            try BPETokenizer(tokenizerJSON: url)
        }
    }

    @Test func errorMessages() {
        let cases: [(TokenizerError, String)] = [
            (.unknownPreTokenizer(name: "foo\t", known: ["gpt2", "smollm"]),
             "unknown pre-tokenizer \"foo\\t\" (tokenizer.ggml.pre); known: gpt2, smollm"),
            (.unsupportedPreTokenizer(path: "/x/t.json", found: "Whitespace"),
             "/x/t.json: pre_tokenizer Whitespace is not supported; supported: ByteLevel (GPT-2), "
                + "Sequence[Digits(individual_digits: true), ByteLevel] (SmolLM2), "
                + "Sequence[Split(the Llama 3 or Qwen2 pattern), ByteLevel(use_regex: false)]"),
            (.malformedMerge(index: 3, content: "a  b"), "merge 3 \"a  b\": expected two tokens separated by one space"),
        ]
        for (error, message) in cases { #expect(error.description == message) }
    }
}
