// A byte-level BPE tokenizer from the vocabulary arrays of a GGUF file (`tokenizer.ggml.model` = "gpt2"),
// independent of any GGUF reader: the caller passes the arrays and values it read.
// Reference: llama.cpp `src/llama-vocab.cpp` (`llama_vocab::impl::load`, `tokenizer_st_partition`) and
// `gguf-py/gguf/constants.py` (`TokenType`).

extension BPETokenizer {
    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    enum GGUFTokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// A tokenizer from GGUF vocabulary data.
    ///
    /// ```swift
    /// let tok = try BPETokenizer(ggufTokens: tokens, merges: merges, tokenTypes: types, preTokenizer: "smollm",
    ///                            bosID: 1, eosID: 2, unknownID: 0, addBOS: false)
    /// tok.encode("<|im_start|>user\nHi<|im_end|>")   // [1, 4093, 198, 26843, 2]
    /// ```
    ///
    /// - Parameters:
    ///   - ggufTokens: `tokenizer.ggml.tokens`: token `i` has id `i`, spelled in the byte alphabet (`"Ġthe"`);
    ///     control and user-defined tokens are spelled as their text (`"<|im_start|>"`).
    ///   - merges: `tokenizer.ggml.merges`, `"left right"`, highest priority first.
    ///   - tokenTypes: `tokenizer.ggml.token_type`, one per token, or nil (all normal). Control (3) and unknown
    ///     (2) tokens are special: matched literally in text when encoding with `allowSpecial`. User-defined
    ///     tokens (4) are matched literally always, as llama.cpp does. Normal (1), unused (5), byte (6) and
    ///     undefined (0) tokens are vocabulary entries.
    ///   - preTokenizer: `tokenizer.ggml.pre`: `"gpt2"`/`"gpt-2"`, `"smollm"`, `"llama-bpe"`, `"qwen2"`,
    ///     `"default"` (taken as GPT-2's pattern) and the other names llama.cpp gives the same patterns. The
    ///     Llama 3 names also set `ignoresMerges`, as llama.cpp does.
    ///   - bosID: `tokenizer.ggml.bos_token_id`.
    ///   - eosID: `tokenizer.ggml.eos_token_id`.
    ///   - unknownID: `tokenizer.ggml.unknown_token_id`: emitted for bytes the vocabulary cannot spell.
    ///   - addBOS: `tokenizer.ggml.add_bos_token` (when the key is absent, what llama.cpp assumes:
    ///     `ggufAddsBOSByDefault(preTokenizer:)`): whether `encodeForModel` puts `bosID` first.
    /// - Throws: `TokenizerError.unknownPreTokenizer`, `.malformedMerge`, `.mergeTokenNotInVocab`, or
    ///   `.invalidVocab` (token types not one per token or outside 0…6, a token listed twice, an empty token,
    ///   a BOS/EOS id outside the vocabulary, `addBOS` without a BOS id).
    public init(
        ggufTokens tokens: [String], merges: [String], tokenTypes: [Int]?, preTokenizer: String,
        bosID: Int?, eosID: Int?, unknownID: Int?, addBOS: Bool
    ) throws {
        guard let entry = PreTokenizer.gguf(named: preTokenizer) else {
            throw TokenizerError.unknownPreTokenizer(name: preTokenizer, known: PreTokenizer.ggufNames.map(\.name))
        }
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw TokenizerError.invalidVocab(
                reason: "\(tokenTypes.count) token types for \(tokens.count) tokens; expected one type per token")
        }

        var entries: [VocabularyEntry] = []
        entries.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            let rawType = tokenTypes?[id] ?? GGUFTokenType.normal.rawValue
            switch rawType == 0 ? .normal : GGUFTokenType(rawValue: rawType) {
            case .normal, .unused, .byte: entries.append(VocabularyEntry(spelling: token, id: id, kind: .model))
            case .unknown, .control: entries.append(VocabularyEntry(spelling: token, id: id, kind: .special))
            case .userDefined: entries.append(VocabularyEntry(spelling: token, id: id, kind: .added))
            case nil: throw Self.unknownTokenType(token, id: id, type: rawType)
            }
        }

        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            guard let pair = Self.splitMerge(Substring(merge)) else {
                throw TokenizerError.malformedMerge(index: index, content: merge)
            }
            pairs.append(pair)
        }

        for (name, id) in [("BOS", bosID), ("EOS", eosID)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw TokenizerError.invalidVocab(reason: "the \(name) id \(id) is outside 0..<\(tokens.count)")
            }
        }
        if addBOS && bosID == nil {
            throw TokenizerError.invalidVocab(reason: "addBOS is set but there is no BOS id")
        }

        try self.init(entries: entries, merges: pairs, unknownToken: unknownID, preTokenizer: entry.preTokenizer,
                      ignoresMerges: entry.ignoresMerges, sentencePiece: nil, uniqueSpellings: true)
        self.bosID = bosID
        self.eosID = eosID
        addsBOS = addBOS
    }

    /// What llama.cpp assumes for `tokenizer.ggml.add_bos_token` when a GGUF with this `tokenizer.ggml.pre` lacks
    /// the key: true for the Llama 3 names (`llama-bpe`, `llama3`, …), false for the others and for unknown names.
    public static func ggufAddsBOSByDefault(preTokenizer: String) -> Bool {
        PreTokenizer.gguf(named: preTokenizer)?.addsBOSByDefault ?? false
    }
}

extension BPETokenizer {
    /// A SentencePiece-style tokenizer from GGUF vocabulary data (`tokenizer.ggml.model` = "llama": Llama 2,
    /// Mistral, TinyLlama, Gemma): tokens spelled with "▁" for spaces, a score per token, and `<0xAB>` byte
    /// tokens for byte fallback. Control (3) and unknown (2) tokens are special, user-defined (4) tokens are
    /// matched literally, as in the byte-level initializer.
    /// - Throws: `TokenizerError.invalidVocab` when scores or types are not one per token, a token is listed
    ///   twice or is empty, or a BOS/EOS/unknown id is outside the vocabulary.
    public init(
        ggufSentencePieceTokens tokens: [String], scores: [Float], tokenTypes: [Int]?, bosID: Int?, eosID: Int?,
        unknownID: Int?, addBOS: Bool, addSpacePrefix: Bool
    ) throws {
        guard scores.count == tokens.count else {
            throw TokenizerError.invalidVocab(reason: "\(scores.count) scores for \(tokens.count) tokens; expected one score per token")
        }
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw TokenizerError.invalidVocab(reason: "\(tokenTypes.count) token types for \(tokens.count) tokens; expected one type per token")
        }
        for (name, id) in [("BOS", bosID), ("EOS", eosID), ("unknown", unknownID)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw TokenizerError.invalidVocab(reason: "the \(name) id \(id) is outside 0..<\(tokens.count)")
            }
        }
        if addBOS && bosID == nil { throw TokenizerError.invalidVocab(reason: "addBOS is set but there is no BOS id") }
        var entries: [VocabularyEntry] = []
        entries.reserveCapacity(tokens.count)
        var pieces = ByteStringTable(capacity: tokens.count)
        var byteTokens = [Int32](repeating: -1, count: 256)
        for (id, token) in tokens.enumerated() {
            let rawType = tokenTypes?[id] ?? GGUFTokenType.normal.rawValue
            switch rawType == 0 ? .normal : GGUFTokenType(rawValue: rawType) {
            case .normal, .unused:
                entries.append(VocabularyEntry(spelling: token, id: id, kind: .model))
                pieces.updateValue(Int32(id), for: token)
            case .byte:
                entries.append(VocabularyEntry(spelling: token, id: id, kind: .model))
                guard let b = SentencePieceModel.byteValue(token) else {
                    throw TokenizerError.invalidVocab(reason: "byte token \"\(token)\" (id \(id)) is not spelled <0xAB>")
                }
                byteTokens[Int(b)] = Int32(id)
            case .unknown, .control: entries.append(VocabularyEntry(spelling: token, id: id, kind: .special))
            case .userDefined:
                // Matched in the text as Hugging Face does, after "▁" and " " are made one (see `encode`).
                let text = SentencePieceModel.replacingScalar("\u{2581}", with: " ", in: token)
                entries.append(VocabularyEntry(spelling: text, id: id, kind: .added))
            case nil: throw Self.unknownTokenType(token, id: id, type: rawType)
            }
        }
        let model = SentencePieceModel(pieces: pieces, scores: scores, byteTokens: byteTokens,
                                       unknownID: unknownID.map { Int32($0) }, addSpacePrefix: addSpacePrefix)
        try self.init(entries: entries, merges: [], unknownToken: unknownID, preTokenizer: .gpt2, ignoresMerges: false,
                      sentencePiece: model, uniqueSpellings: true)
        self.bosID = bosID
        self.eosID = eosID
        addsBOS = addBOS
    }
}

extension BPETokenizer {
    static func unknownTokenType(_ token: String, id: Int, type: Int) -> TokenizerError {
        .invalidVocab(reason: "token \"\(token)\" (id \(id)) has type \(type); llama.cpp's types are 1 normal, "
                          + "2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte")
    }
}
