import LoupeTensor

/// Problems loading or running a model, each naming what was expected and what was found.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case missingFile(path: String, what: String)
    case invalidConfig(String)
    case missingWeight(name: String, file: String)
    case weightShape(name: String, expected: [Int], found: [Int])
    case emptyInput
    case tokenOutOfRange(token: Int, position: Int, dVocab: Int)
    case sequenceTooLong(length: Int, nCtx: Int)
    case raggedBatch(expected: Int, found: Int, row: Int)
    case attentionMask(String)
    case layerOutOfRange(name: String, layer: Int, nLayers: Int)
    case inputShape(expected: [Int], found: [Int])
    case unsupported(String)
    /// A token given as text that is not exactly one token, or an id outside the vocabulary.
    case notOneToken(String)

    public var description: String {
        switch self {
        case .missingFile(let p, let w): return "missing \(w): \(p)"
        case .invalidConfig(let m): return "invalid model config: \(m)"
        case .missingWeight(let n, let f): return "weight '\(n)' not found in \(f)"
        case .weightShape(let n, let e, let f): return "weight '\(n)': expected shape \(e), found \(f)"
        case .emptyInput: return "empty input: at least one token is needed"
        case .tokenOutOfRange(let t, let p, let v):
            return "token id \(t) at position \(p) is out of range: the vocabulary has ids 0..<\(v)"
        case .sequenceTooLong(let n, let c):
            return "sequence of \(n) tokens is longer than the model's context of \(c) (n_ctx)"
        case .raggedBatch(let e, let f, let r):
            return "batch rows must have the same length: row 0 has \(e) tokens, row \(r) has \(f) (pad them and pass an attention mask)"
        case .attentionMask(let m): return "attention mask: \(m)"
        case .layerOutOfRange(let n, let l, let c): return "\(n) = \(l) is out of range for a model with \(c) layers"
        case .inputShape(let e, let f): return "input: expected shape \(e), found \(f)"
        case .unsupported(let m): return m
        case .notOneToken(let m): return m
        }
    }
}
