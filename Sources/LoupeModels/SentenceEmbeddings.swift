// Sentence embeddings as sentence-transformers computes them from a model folder: `modules.json` lists the
// steps (the transformer, a pooling, optionally L2 normalisation), `1_Pooling/config.json` (or the pooling
// module's folder) says how token states are pooled, and `sentence_bert_config.json` how long a text may be.

import Foundation
import LoupeFormats
import LoupeTensor

/// How a sentence-transformers folder turns an encoder's last hidden states into one vector per text.
public struct SentenceEmbedder: Sendable, Equatable {
    public enum Pooling: String, Sendable { case mean, cls, max }

    public var pooling: Pooling
    /// L2-normalise each embedding (a `Normalize` module).
    public var normalize: Bool
    /// Tokens per text, special tokens included (`max_seq_length`); longer texts are cut, as sentence-transformers
    /// cuts them.
    public var maxTokens: Int?

    public init(pooling: Pooling = .mean, normalize: Bool = true, maxTokens: Int? = nil) {
        self.pooling = pooling; self.normalize = normalize; self.maxTokens = maxTokens
    }

    /// The steps a sentence-transformers folder describes. A module or pooling mode Loupe does not implement
    /// (a `Dense` projection, weighted-mean or last-token pooling, …) is an error, never skipped.
    public init(folder: URL) throws {
        func json(_ name: String) throws -> Any? {
            let url = folder.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
            do { return try JSONSerialization.jsonObject(with: data) } catch {
                throw ModelError.invalidConfig("\(url.path) is not valid JSON")
            }
        }
        guard let modules = try json("modules.json") as? [[String: Any]] else {
            throw ModelError.missingFile(path: folder.appendingPathComponent("modules.json").path, what: "sentence-transformers modules list")
        }
        var pooling: Pooling?
        var normalize = false
        for (i, module) in modules.enumerated() {
            let type = (module["type"] as? String ?? "").replacingOccurrences(of: "sentence_transformers.models.", with: "")
            switch (i, type) {
            case (0, "Transformer"): break
            case (_, "Pooling") where pooling == nil && i > 0:
                let path = (module["path"] as? String) ?? ""
                guard let config = try json((path.isEmpty ? "" : path + "/") + "config.json") as? [String: Any] else {
                    throw ModelError.missingFile(path: folder.appendingPathComponent(path).appendingPathComponent("config.json").path, what: "pooling config")
                }
                let modes = config.filter { $0.key.hasPrefix("pooling_mode_") && ($0.value as? Bool) == true }.map(\.key)
                let known: [String: Pooling] = ["pooling_mode_mean_tokens": .mean, "pooling_mode_cls_token": .cls, "pooling_mode_max_tokens": .max]
                guard modes.count == 1, let mode = known[modes[0]] else {
                    throw ModelError.unsupported("\(folder.path): pooling \(modes.sorted()) is not supported (one of mean, cls or max tokens)")
                }
                pooling = mode
            case (_, "Normalize") where pooling != nil && !normalize: normalize = true
            default:
                throw ModelError.unsupported("\(folder.path): sentence-transformers module \(i) '\(type)' is not supported (Transformer, Pooling, Normalize)")
            }
        }
        guard let pooling else { throw ModelError.unsupported("\(folder.path): modules.json has no Pooling module") }
        self.pooling = pooling
        self.normalize = normalize
        maxTokens = (try json("sentence_bert_config.json") as? [String: Any])?["max_seq_length"] as? Int
    }

    /// The tokens of `text` as the encoder reads them: `[CLS] … [SEP]`, the words cut to fit `maxTokens`.
    public func tokens(_ text: String, tokenizer: BPETokenizer) -> [Int] {
        var words = tokenizer.encode(text)
        let specials = (tokenizer.addsBOS && tokenizer.bosID != nil ? 1 : 0) + (tokenizer.appendedID != nil ? 1 : 0)
        if let max = maxTokens, words.count + specials > max { words = Array(words.prefix(Swift.max(max - specials, 0))) }
        if tokenizer.addsBOS, let bos = tokenizer.bosID { words.insert(bos, at: 0) }
        if let sep = tokenizer.appendedID { words.append(sep) }
        return words
    }

    /// One embedding per text: the texts run as one right-padded batch, the last hidden states pooled over
    /// each text's own tokens, then normalised when the folder says so.
    /// - Throws: `ModelError` for a model that is not an encoder, or a text longer than its context.
    public func embed(_ texts: [[Int]], model: HookedTransformer) throws -> [[Float]] {
        guard model.config.bidirectional else {
            throw ModelError.unsupported("sentence embeddings pool an encoder's states; \(model.config.architecture) is causal")
        }
        guard let longest = texts.map(\.count).max(), longest > 0 else { throw ModelError.emptyInput }
        let pad = texts.map { $0 + Array(repeating: 0, count: longest - $0.count) }
        let mask = texts.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: longest - $0.count) }
        let states = try model.run(.tokens(pad), options: ForwardOptions(stopAtLayer: model.config.nLayers, attentionMask: mask))
        let d = model.config.dModel
        return texts.enumerated().map { b, text in
            var v = [Float](repeating: pooling == .max ? -.infinity : 0, count: d)
            let rows = pooling == .cls ? 0..<1 : 0..<text.count
            for p in rows {
                let row = (b * longest + p) * d
                for j in 0..<d { v[j] = pooling == .max ? Swift.max(v[j], states.scalars[row + j]) : v[j] + states.scalars[row + j] }
            }
            if pooling == .mean { for j in 0..<d { v[j] /= Float(text.count) } }
            if normalize {
                let norm = Swift.max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                for j in 0..<d { v[j] /= norm }
            }
            return v
        }
    }
}
