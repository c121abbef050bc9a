// Loading a BPE tokenizer from files: OpenAI's `encoder.json` + `vocab.bpe`, or a Hugging Face
// `tokenizer.json` whose model is BPE.
// References: https://github.com/openai/gpt-2/blob/master/src/encoder.py (`get_encoder`);
// https://github.com/huggingface/tokenizers (`models/bpe/serialization.rs`, `AddedToken`).

import Foundation

extension BPETokenizer {
    /// GPT-2's tokenizer files: `encoder.json` (spelling → id) and `vocab.bpe` (a `#version` line, then one
    /// merge per line, `left right`, highest priority first). `<|endoftext|>`, if in the vocabulary, is special.
    ///
    /// - Throws: `TokenizerError.fileNotFound`, `.unreadableFile`, `.malformedJSON`, `.malformedMergesLine`,
    ///   `.mergeTokenNotInVocab`, `.invalidVocab`.
    public init(encoderJSON: URL, vocabBPE: URL) throws {
        let encoderData = try Self.readFile(encoderJSON)
        let vocab: [String: Int]
        do {
            vocab = try JSONDecoder().decode([String: Int].self, from: encoderData)
        } catch {
            throw TokenizerError.malformedJSON(
                path: encoderJSON.path,
                expected: "an object mapping token strings to integer ids (\(Self.describe(error)))")
        }
        let merges = try Self.parseMergesFile(vocabBPE)
        let special = vocab["<|endoftext|>"].map { ["<|endoftext|>": $0] } ?? [:]
        try self.init(vocab: vocab, merges: merges, specialTokens: special)
    }

    /// A Hugging Face `tokenizer.json` with a BPE model: `model.vocab` (spelling → id), `model.merges` (either
    /// `"left right"` strings or `["left", "right"]` pairs), optional `model.unk_token` and `model.ignore_merges`,
    /// and `added_tokens` (`{"id", "content", "special"}`): special ones are matched when encoding with
    /// `allowSpecial`, the others always.
    ///
    /// `pre_tokenizer` chooses `preTokenizer` (see `PreTokenizer.init?(tokenizerJSON:)` for the configurations
    /// understood: GPT-2's ByteLevel, SmolLM2's Digits + ByteLevel, Llama 3's and Qwen2's Split + ByteLevel);
    /// a file without the key is taken as GPT-2's. A `post_processor` template that starts with a special
    /// token (Llama 3's `<|begin_of_text|> $A`) sets `bosID` to it and `addsBOS`. Added tokens' `lstrip`/`rstrip`
    /// take the white space beside them (`stripsLeft`, `stripsRight`). Normalizers (such as Qwen2's NFC),
    /// tokens a template appends, and the `single_word` flags of added tokens are ignored.
    ///
    /// - Throws: `TokenizerError.fileNotFound`, `.unreadableFile`, `.malformedJSON` (naming the JSON path that
    ///   is wrong), `.unsupportedModel`, `.unsupportedPreTokenizer`, `.mergeTokenNotInVocab`, `.invalidVocab`.
    public init(tokenizerJSON: URL) throws {
        let path = tokenizerJSON.path
        let data = try Self.readFile(tokenizerJSON)
        let file: HFTokenizerFile
        do {
            file = try JSONDecoder().decode(HFTokenizerFile.self, from: data)
        } catch {
            throw TokenizerError.malformedJSON(
                path: path,
                expected: "a tokenizer.json with model.vocab and model.merges (\(Self.describe(error)))")
        }
        if file.model.type == "WordPiece" {
            try self.init(wordPieceFile: file, path: path)
            return
        }
        if let type = file.model.type, type != "BPE" {
            throw TokenizerError.unsupportedModel(path: path, type: type)
        }
        guard let modelMerges = file.model.merges else {
            throw TokenizerError.malformedJSON(path: path, expected: "a tokenizer.json with model.vocab and model.merges (key \"merges\" is missing in model)")
        }
        let preTokenizer: PreTokenizer
        switch file.preTokenizer {
        case .absent:
            preTokenizer = .gpt2
        case .present(let config):
            guard let known = PreTokenizer(tokenizerJSON: config) else {
                throw TokenizerError.unsupportedPreTokenizer(path: path, found: config.summary)
            }
            preTokenizer = known
        }

        var merges: [(String, String)] = []
        merges.reserveCapacity(modelMerges.count)
        for (index, merge) in modelMerges.enumerated() {
            switch merge {
            case .pair(let left, let right):
                merges.append((left, right))
            case .joined(let text):
                guard let pair = Self.splitMerge(Substring(text)) else {
                    throw TokenizerError.malformedJSON(
                        path: path,
                        expected: "model.merges[\(index)] to be \"left right\" (two tokens separated by one space), found \"\(text)\"")
                }
                merges.append(pair)
            case .other(let count):
                throw TokenizerError.malformedJSON(
                    path: path, expected: "model.merges[\(index)] to be a pair of strings, found an array of \(count)")
            }
        }

        var special: [String: Int] = [:]
        var added: [String: Int] = [:]
        for token in file.addedTokens ?? [] {
            if token.special ?? false { special[token.content] = token.id } else { added[token.content] = token.id }
        }
        var unknownID: Int?
        if let unk = file.model.unkToken {
            guard let id = file.model.vocab[unk] ?? special[unk] ?? added[unk] else {
                throw TokenizerError.malformedJSON(
                    path: path, expected: "model.unk_token \"\(unk)\" to be in model.vocab or added_tokens")
            }
            unknownID = id
        }
        try self.init(vocab: file.model.vocab, merges: merges, specialTokens: special,
                      addedTokens: added, unknownToken: unknownID,
                      preTokenizer: preTokenizer, ignoresMerges: file.model.ignoreMerges ?? false)
        if let bos = Self.templateTokens(file.postProcessor).first {
            guard bos < vocabSize, (try? spelling(bos)) != nil else {
                throw TokenizerError.malformedJSON(
                    path: path, expected: "the post_processor's first special token (id \(bos)) to be in the vocabulary")
            }
            bosID = bos
            addsBOS = true
        }
        readStripping(file.addedTokens)
    }

    /// `stripsLeft` and `stripsRight` from the added tokens' `lstrip` and `rstrip`.
    private mutating func readStripping(_ tokens: [HFTokenizerFile.AddedToken]?) {
        for token in tokens ?? [] {
            if token.lstrip ?? false { stripsLeft.insert(token.id) }
            if token.rstrip ?? false { stripsRight.insert(token.id) }
        }
    }

    /// A WordPiece `tokenizer.json` (BERT): `model.vocab`, `unk_token`, `continuing_subword_prefix`,
    /// `max_input_chars_per_word`; a `BertNormalizer` (or none); a `BertPreTokenizer`; and a `TemplateProcessing`
    /// or `BertProcessing` post-processor whose first and last special tokens become `bosID` and `appendedID`.
    private init(wordPieceFile file: HFTokenizerFile, path: String) throws {
        let m = file.model
        guard let unk = m.unkToken, let unkID = m.vocab[unk] else {
            throw TokenizerError.malformedJSON(path: path, expected: "model.unk_token of a WordPiece model to be in model.vocab")
        }
        let prefix = m.continuingSubwordPrefix ?? "##"
        let maxChars = m.maxInputCharsPerWord ?? 100
        guard !prefix.isEmpty, maxChars > 0 else {
            throw TokenizerError.malformedJSON(path: path, expected: "a non-empty continuing_subword_prefix and a positive max_input_chars_per_word")
        }
        // The normalizer changes what every word is: one we do not understand is an error, never skipped.
        var normalizer = BertNormalizer(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false)
        if let n = file.normalizer, n != .null {
            guard n["type"]?.string == "BertNormalizer" else {
                throw TokenizerError.unsupportedSetting(path: path, setting: "normalizer \(n["type"]?.string ?? "?")", supported: "BertNormalizer, or none, with WordPiece")
            }
            let known: Set<String> = ["type", "clean_text", "handle_chinese_chars", "strip_accents", "lowercase"]
            if case .object(let fields) = n, let odd = Set(fields.keys).subtracting(known).sorted().first {
                throw TokenizerError.unsupportedSetting(path: path, setting: "BertNormalizer option \(odd)", supported: "clean_text, handle_chinese_chars, strip_accents, lowercase")
            }
            func flag(_ key: String, _ fallback: Bool) throws -> Bool {
                switch n[key] {
                case nil, .null?: return fallback
                case .bool(let b)?: return b
                default: throw TokenizerError.malformedJSON(path: path, expected: "normalizer.\(key) to be true, false or null")
                }
            }
            normalizer.cleanText = try flag("clean_text", true)
            normalizer.handleChineseChars = try flag("handle_chinese_chars", true)
            normalizer.lowercase = try flag("lowercase", true)
            normalizer.stripAccents = try flag("strip_accents", normalizer.lowercase)
        }
        if case .present(let p) = file.preTokenizer, p != .null, p["type"]?.string != "BertPreTokenizer" {
            throw TokenizerError.unsupportedSetting(path: path, setting: "pre_tokenizer \(p["type"]?.string ?? "?") with a WordPiece model", supported: "BertPreTokenizer")
        }
        var pieces = ByteStringTable(capacity: m.vocab.count)
        for (token, id) in m.vocab where id >= 0 && id < Int(Int32.max) { _ = pieces.updateValue(Int32(id), for: token) }
        let model = WordPieceModel(pieces: pieces, unknownID: Int32(unkID), continuingPrefix: prefix,
                                   maxInputCharsPerWord: maxChars, normalizer: normalizer)
        var entries = m.vocab.map { VocabularyEntry(spelling: $0.key, id: $0.value, kind: .model) }
        for token in file.addedTokens ?? [] {
            entries.append(VocabularyEntry(spelling: token.content, id: token.id, kind: token.special ?? false ? .special : .added))
        }
        try self.init(entries: entries, merges: [], unknownToken: unkID, preTokenizer: .gpt2, ignoresMerges: false,
                      sentencePiece: nil, wordPiece: model, uniqueSpellings: false)
        let (first, last) = Self.templateTokens(file.postProcessor)
        for id in [first, last].compactMap({ $0 }) where id >= vocabSize || (try? spelling(id)) == nil {
            throw TokenizerError.malformedJSON(path: path, expected: "the post_processor's special token id \(id) to be in the vocabulary")
        }
        if let first { bosID = first; addsBOS = true }
        if let last { appendedID = last; eosID = last }
        readStripping(file.addedTokens)
    }

    // MARK: Helpers

    /// The contents of a file, or `fileNotFound` / `unreadableFile`.
    private static func readFile(_ url: URL) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError.fileNotFound(path: url.path)
        }
        if isDirectory.boolValue { throw TokenizerError.unreadableFile(path: url.path, reason: "it is a directory") }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }

    /// The merges of a `vocab.bpe` file. Line 1 may be a `#version` header; blank lines are skipped; a `\r`
    /// before the newline is tolerated. Lines are numbered from 1 in errors.
    static func parseMergesFile(_ url: URL) throws -> [(String, String)] {
        let data = try readFile(url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.unreadableFile(path: url.path, reason: "it is not UTF-8 text")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(50_000)
        var lineNumber = 0
        for rawLine in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(rawLine)
            if line.utf8.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.isEmpty || (lineNumber == 1 && line.hasPrefix("#version")) { continue }
            guard let pair = splitMerge(line) else {
                throw TokenizerError.malformedMergesLine(path: url.path, line: lineNumber, content: String(line))
            }
            merges.append(pair)
        }
        return merges
    }

    /// `"left right"` → `(left, right)`, or nil unless there is exactly one space with a token on each side.
    static func splitMerge(_ line: Substring) -> (String, String)? {
        let parts = line.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (String(Substring(parts[0])), String(Substring(parts[1])))
    }

    /// A decoding error as "what, at which JSON path".
    private static func describe(_ error: Error) -> String {
        func path(_ codingPath: [CodingKey]) -> String {
            let text = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return text.isEmpty ? "the top level" : String(text.drop { $0 == "." })
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            let at = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "key \"\(key.stringValue)\" is missing\(at)"
        case DecodingError.typeMismatch(let type, let context):
            return "\(path(context.codingPath)) is not \(typeName(type))"
        case DecodingError.valueNotFound(let type, let context):
            return "\(path(context.codingPath)) is null, expected \(typeName(type))"
        case DecodingError.dataCorrupted(let context):
            if context.codingPath.isEmpty { return "the file is not valid JSON" }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        default:
            let name = "\(type)"
            if name.hasPrefix("Dictionary") { return "an object" }
            if name.hasPrefix("Array") { return "an array" }
            return name
        }
    }
}

extension BPETokenizer {
    /// The parts of a Hugging Face `tokenizer.json` that a BPE tokenizer needs.
    fileprivate struct HFTokenizerFile: Decodable {
        struct Model: Decodable {
            let type: String?
            let vocab: [String: Int]
            let merges: [Merge]?
            let unkToken: String?
            let ignoreMerges: Bool?
            let continuingSubwordPrefix: String?
            let maxInputCharsPerWord: Int?

            enum CodingKeys: String, CodingKey {
                case type, vocab, merges
                case unkToken = "unk_token"
                case ignoreMerges = "ignore_merges"
                case continuingSubwordPrefix = "continuing_subword_prefix"
                case maxInputCharsPerWord = "max_input_chars_per_word"
            }
        }

        /// One entry of `model.merges`: `"left right"` (older files) or `["left", "right"]` (newer ones, which
        /// allow spaces inside tokens).
        enum Merge: Decodable {
            case joined(String)
            case pair(String, String)
            case other(count: Int)

            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) {
                    self = .joined(text)
                } else {
                    let parts = try container.decode([String].self)
                    self = parts.count == 2 ? .pair(parts[0], parts[1]) : .other(count: parts.count)
                }
            }
        }

        struct AddedToken: Decodable {
            let id: Int
            let content: String
            let special: Bool?
            let lstrip: Bool?
            let rstrip: Bool?
        }

        /// `pre_tokenizer`: absent (older hand-written files), or present, possibly `null`.
        enum PreTokenizerField {
            case absent
            case present(JSONValue)
        }

        let model: Model
        let addedTokens: [AddedToken]?
        let preTokenizer: PreTokenizerField
        let postProcessor: JSONValue?
        let normalizer: JSONValue?

        enum CodingKeys: String, CodingKey {
            case model, normalizer
            case addedTokens = "added_tokens"
            case preTokenizer = "pre_tokenizer"
            case postProcessor = "post_processor"
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            model = try container.decode(Model.self, forKey: .model)
            addedTokens = try container.decodeIfPresent([AddedToken].self, forKey: .addedTokens)
            if try container.contains(.preTokenizer) && container.decodeNil(forKey: .preTokenizer) {
                preTokenizer = .present(.null)
            } else if container.contains(.preTokenizer) {
                preTokenizer = .present(try container.decode(JSONValue.self, forKey: .preTokenizer))
            } else {
                preTokenizer = .absent
            }
            postProcessor = try container.decodeIfPresent(JSONValue.self, forKey: .postProcessor)
            normalizer = try container.decodeIfPresent(JSONValue.self, forKey: .normalizer)
        }
    }
}
