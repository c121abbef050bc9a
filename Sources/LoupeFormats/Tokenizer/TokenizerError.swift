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

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "tokenizer file not found: \(path)"
        case .unreadableFile(let path, let reason):
            return "cannot read tokenizer file \(path): \(reason)"
        case .malformedJSON(let path, let expected):
            return "\(path): malformed tokenizer JSON: expected \(expected)"
        case .malformedMergesLine(let path, let line, let content):
            return "\(path):\(line): malformed merges line \(quoted(content)): expected two tokens separated by one space"
        case .unsupportedModel(let path, let type):
            return "\(path): model type \(quoted(type)) is not supported; expected \"BPE\""
        case .mergeTokenNotInVocab(let rank, let merge, let token):
            return "merge \(rank) (\(quoted(merge))): token \(quoted(token)) is not in the vocabulary"
        case .invalidVocab(let reason):
            return "invalid vocabulary: \(reason)"
        case .unknownTokenID(let id, let vocabSize):
            return "unknown token id \(id): ids run from 0 to \(vocabSize - 1)"
        }
    }

    /// `text` in double quotes with control characters escaped, so that a stray tab or newline in a
    /// message is visible.
    private func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
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
