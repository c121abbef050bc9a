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
enum PreTokenizerTestData {
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
