// The result of BPE training: a vocabulary and merges, as a `BPETokenizer` or as the files that load one
// (Hugging Face `tokenizer.json`; OpenAI's `encoder.json` + `vocab.bpe`).
// Reference: the `tokenizer.json` that Hugging Face `tokenizers` writes for a ByteLevel BPE model
// (`Tokenizer.save`), and GPT-2's `encoder.json` / `vocab.bpe`.

import Foundation

/// A trained byte-level BPE vocabulary (see `BPETrainer`).
///
/// ```swift
/// let trained = try BPETrainer(vocabSize: 2048).train(texts: [text])
/// trained.vocabSize          // 2048 (fewer if the corpus ran out of pairs)
/// trained.merges.first       // ("Ġ", "t")
/// try trained.write(to: dir) // then BPETokenizer(tokenizerJSON: dir/tokenizer.json) encodes the same
/// ```
public struct TrainedBPE: Sendable {
    /// `tokens[id]`: the token spelled in GPT-2's byte alphabet (`"Ġthe"`), or a special token's text.
    public let tokens: [String]
    /// The merges, highest priority (earliest learned) first, spelled in the byte alphabet.
    public let merges: [(left: String, right: String)]
    /// Special tokens → ids (the last ids).
    public let specialTokens: [String: Int]
    /// The vocabulary size asked for; `vocabSize` is smaller when training ran out of pairs.
    public let requestedVocabSize: Int

    init(tokens: [String], merges: [(String, String)], specialTokens: [String: Int], requestedVocabSize: Int) {
        self.tokens = tokens
        self.merges = merges.map { (left: $0.0, right: $0.1) }
        self.specialTokens = specialTokens
        self.requestedVocabSize = requestedVocabSize
    }

    /// Byte tokens + learned tokens + special tokens.
    public var vocabSize: Int { tokens.count }

    /// Spelling → id, for every token including the special ones.
    public var vocab: [String: Int] {
        Dictionary(tokens.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
    }

    /// The tokenizer: GPT-2 pre-tokenizer, these merges, special tokens matched literally.
    /// - Throws: `TokenizerError` only if the vocabulary were inconsistent, which training does not produce.
    public func tokenizer() throws -> BPETokenizer {
        try BPETokenizer(vocab: vocab, merges: merges.map { ($0.left, $0.right) }, specialTokens: specialTokens)
    }

    // MARK: Files

    /// The names `write(to:)` uses.
    public static let fileNames = (tokenizerJSON: "tokenizer.json", encoderJSON: "encoder.json", vocabBPE: "vocab.bpe")

    /// Writes `tokenizer.json`, `encoder.json` and `vocab.bpe` into `directory` (created if missing).
    ///
    /// `BPETokenizer(tokenizerJSON:)` and `BPETokenizer(encoderJSON:vocabBPE:)` load them back into a
    /// tokenizer that encodes as `tokenizer()` does; `encoder.json` knows only `<|endoftext|>` as special
    /// (GPT-2's convention), so other special tokens survive only through `tokenizer.json`.
    /// - Returns: the three files' URLs.
    /// - Throws: `CocoaError` from the file system.
    @discardableResult
    public func write(to directory: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files = [
            (Self.fileNames.tokenizerJSON, tokenizerJSON()),
            (Self.fileNames.encoderJSON, encoderJSON()),
            (Self.fileNames.vocabBPE, vocabBPE()),
        ]
        return try files.map { name, text in
            let url = directory.appendingPathComponent(name)
            try writeAtomically(Data(text.utf8), to: url)
            return url
        }
    }

    /// A Hugging Face `tokenizer.json`: a BPE model with the vocabulary in id order and the merges as
    /// `["left", "right"]` pairs, GPT-2's ByteLevel pre-tokenizer and decoder, special tokens as added tokens.
    public func tokenizerJSON() -> String {
        let byteLevel = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}"
        return Self.byteLevelTokenizerJSON(
            tokens: tokens, merges: merges, addedTokens: specialTokens.sorted { $0.value < $1.value }.map { (id: $0.value, content: $0.key) },
            preTokenizer: byteLevel,
            postProcessor: "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true}",
            decoder: byteLevel, unknownToken: nil)
    }

    /// A Hugging Face `tokenizer.json` for a byte-level BPE vocabulary (`tokens[id]` spelled in GPT-2's byte
    /// alphabet, special tokens by their text); the pre-tokenizer, post-processor and decoder are JSON
    /// objects as `tokenizers` writes them (nil: `null`). Added tokens are special and matched literally.
    public static func byteLevelTokenizerJSON(tokens: [String], merges: [(left: String, right: String)],
                                              addedTokens: [(id: Int, content: String)], preTokenizer: String,
                                              postProcessor: String?, decoder: String, unknownToken: String?) -> String {
        var out = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ["
        out += addedTokens.map { id, token in
            "\n    {\"id\": \(id), \"content\": \(Self.jsonString(token)), \"single_word\": false, \"lstrip\": false, "
                + "\"rstrip\": false, \"normalized\": false, \"special\": true}"
        }.joined(separator: ",")
        out += addedTokens.isEmpty ? "],\n" : "\n  ],\n"
        out += "  \"normalizer\": null,\n"
        out += "  \"pre_tokenizer\": \(preTokenizer),\n"
        out += "  \"post_processor\": \(postProcessor ?? "null"),\n"
        out += "  \"decoder\": \(decoder),\n"
        out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": \(unknownToken.map(Self.jsonString) ?? "null"),\n"
        out += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
        out += "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
        out += "    \"vocab\": {\n"
        out += tokens.enumerated().map { "      \(Self.jsonString($0.element)): \($0.offset)" }.joined(separator: ",\n")
        out += "\n    },\n    \"merges\": [\n"
        out += merges.map { "      [\(Self.jsonString($0.left)), \(Self.jsonString($0.right))]" }.joined(separator: ",\n")
        out += merges.isEmpty ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n"
        return out
    }

    /// GPT-2's `encoder.json`: spelling → id for every token, in id order.
    public func encoderJSON() -> String {
        "{" + tokens.enumerated().map { "\(Self.jsonString($0.element)): \($0.offset)" }.joined(separator: ", ") + "}\n"
    }

    /// GPT-2's `vocab.bpe`: a `#version: 0.2` line, then one merge per line, `left right`. Byte-alphabet
    /// spellings hold no spaces or newlines, so every line splits back into its pair.
    public func vocabBPE() -> String {
        "#version: 0.2\n" + merges.map { $0.left + " " + $0.right + "\n" }.joined()
    }

    /// `text` as a JSON string literal (quotes, backslashes and control characters escaped; the rest as UTF-8).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension BPETokenizer {
    /// UTF-8 bytes per token over `texts` (special tokens matched): how well the vocabulary compresses them.
    /// Zero when the texts encode to no tokens.
    public func bytesPerToken(_ texts: [String]) -> Double {
        var bytes = 0, tokens = 0
        for text in texts {
            bytes += text.utf8.count
            tokens += encode(text).count
        }
        return tokens == 0 ? 0 : Double(bytes) / Double(tokens)
    }
}
