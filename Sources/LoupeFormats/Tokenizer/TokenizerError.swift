// Errors raised while loading or using a tokenizer.

/// Problems with tokenizer files or token ids, each naming the file, line, merge or id involved.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A tokenizer file does not exist.
    case fileNotFound(path: String)
    /// A tokenizer file exists but could not be read, or is not UTF-8 text.
    case unreadableFile(path: String, reason: String)
    /// A JSON file is not valid JSON or does not have the expected structure.
    case malformedJSON(path: String, expected: String)
    /// A line of a `vocab.bpe` merges file is not two tokens separated by one space.
    case malformedMergesLine(path: String, line: Int, content: String)
    /// A `tokenizer.json` describes a model other than BPE.
    case unsupportedModel(path: String, type: String)
    /// A merge (0-based rank) names, or produces, a token that the vocabulary does not contain.
    case mergeTokenNotInVocab(rank: Int, merge: String, token: String)
    /// The vocabulary is unusable: a negative id, an empty token, or two tokens sharing one id.
    case invalidVocab(reason: String)
    /// A token id that names no token.
    case unknownTokenID(Int, vocabSize: Int)
    /// A GGUF `tokenizer.ggml.pre` value that names no supported pre-tokenizer; `known` lists those that do.
    case unknownPreTokenizer(name: String, known: [String])
    /// A `tokenizer.json` whose `pre_tokenizer` is not one of the supported configurations (`found` describes it).
    case unsupportedPreTokenizer(path: String, found: String)
    /// A setting of a `tokenizer.json` that changes how text is tokenized and that Loupe does not implement.
    case unsupportedSetting(path: String, setting: String, supported: String)
    /// A merge (0-based index in a merges list such as GGUF's `tokenizer.ggml.merges`) that is not two tokens
    /// separated by one space.
    case malformedMerge(index: Int, content: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "tokenizer file not found: \(path)"
        case .unreadableFile(let path, let reason):
            return "cannot read tokenizer file \(path): \(reason)"
        case .malformedJSON(let path, let expected):
            return "\(path): malformed tokenizer JSON: expected \(expected)"
        case .malformedMergesLine(let path, let line, let content):
            return "\(path):\(line): malformed merges line \(content.quotedForDisplay): expected two tokens separated by one space"
        case .unsupportedModel(let path, let type):
            return "\(path): model type \(type.quotedForDisplay) is not supported; expected \"BPE\" or \"WordPiece\""
        case .mergeTokenNotInVocab(let rank, let merge, let token):
            return "merge \(rank) (\(merge.quotedForDisplay)): token \(token.quotedForDisplay) is not in the vocabulary"
        case .invalidVocab(let reason):
            return "invalid vocabulary: \(reason)"
        case .unknownTokenID(let id, let vocabSize):
            return "unknown token id \(id): ids run from 0 to \(vocabSize - 1)"
        case .unknownPreTokenizer(let name, let known):
            return "unknown pre-tokenizer \(name.quotedForDisplay) (tokenizer.ggml.pre); known: \(known.joined(separator: ", "))"
        case .unsupportedSetting(let path, let setting, let supported):
            return "\(path): \(setting) is not supported (it would change the tokens); supported: \(supported)"
        case .unsupportedPreTokenizer(let path, let found):
            return "\(path): pre_tokenizer \(found) is not supported; supported: ByteLevel (GPT-2), "
                + "Sequence[Digits(individual_digits: true), ByteLevel] (SmolLM2), "
                + "Sequence[Split(the Llama 3 or Qwen2 pattern), ByteLevel(use_regex: false)]"
        case .malformedMerge(let index, let content):
            return "merge \(index) \(content.quotedForDisplay): expected two tokens separated by one space"
        }
    }
}

extension String {
    /// The text in double quotes with quotes, backslashes and control characters escaped, so that a stray
    /// tab or newline in a token or a message is visible.
    public var quotedForDisplay: String {
        var out = "\""
        for scalar in unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
