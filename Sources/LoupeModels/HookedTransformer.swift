// HookedTransformer: a decoder-only transformer whose every activation is a named hook point, as in
// TransformerLens (https://github.com/TransformerLensOrg/TransformerLens, `HookedTransformer.py`).
//
// Legend (TransformerLens spelling): batch, pos (new positions this call), key_pos (cached + new),
// head_index, d_head, d_model, d_mlp, d_vocab. Activations are row-major Float32 buffers; `rows`
// means batch·pos. All weights right-multiply: `x · W`.

import Foundation
import LoupeFormats
import LoupeTensor

/// What a forward pass starts from. A string literal is text: `model.run("The Eiffel Tower is in")`.
public enum ModelInput: Sendable, ExpressibleByStringLiteral {
    /// Token ids `[batch][pos]`, all rows the same length.
    case tokens([[Int]])
    /// Text, tokenized by the model's tokenizer as `BPETokenizer.encodeForModel` does (with BOS where the
    /// tokenizer adds one): a batch of one.
    case text(String)
    /// A residual stream `[batch, pos, d_model]` entering block `ForwardOptions.startAtLayer`.
    case residual(Tensor)

    public init(stringLiteral value: String) { self = .text(value) }
}

/// Options of one forward pass.
public struct ForwardOptions: Sendable {
    /// Run blocks from this one on; the input must then be a residual stream.
    public var startAtLayer: Int?
    /// Stop before this block and return the residual stream `[batch, pos, d_model]` instead of logits.
    /// Negative values count from the end, as in Python.
    public var stopAtLayer: Int?
    /// `[batch][pos]` of 1 (real token) and 0 (padding). Padded keys get no attention; position ids
    /// count only real tokens, as TransformerLens does for left padding.
    public var attentionMask: [[Int]]?
    /// Compute `hook_result` (each head's output) even when no hook or cache names it.
    public var useAttnResult: Bool = false
    /// Unembed only the last position: logits `[batch, 1, d_vocab]` (and `ln_final.*`, `unembed.*` hooks
    /// of that shape). For metrics that read the next-token prediction only.
    public var lastPositionOnly: Bool = false
    /// `[batch][pos]` token types (segment ids, BERT's `token_type_ids`) of an encoder; nil: all 0.
    public var tokenTypes: [[Int]]?
    /// Query rows per attention block (see `HookedTransformer.attention`); internal, for tests that split
    /// short sequences into several blocks.
    var queryBlock = 128

    public init(startAtLayer: Int? = nil, stopAtLayer: Int? = nil, attentionMask: [[Int]]? = nil,
                useAttnResult: Bool = false) {
        self.startAtLayer = startAtLayer
        self.stopAtLayer = stopAtLayer
        self.attentionMask = attentionMask
        self.useAttnResult = useAttnResult
    }
}

/// A transformer with TransformerLens hook points. Immutable; weight processing returns a new model.
public struct HookedTransformer: Sendable {
    public let config: ModelConfig
    /// Every weight in TransformerLens's canonical float32 layout. A model that runs from quantized
    /// weights (a GGUF file, read in place) makes this dequantized copy on first use — four bytes a
    /// parameter — so weight-based analyses work on it too; running it never needs the copy.
    public var weights: TransformerWeights { source.weights }
    /// The tokenizer that text inputs go through (set by the loaders; nil for a model built from weights).
    public var tokenizer: BPETokenizer?
    /// The norms, biases and positional embeddings the forward pass reads. For a quantized model its
    /// matrices are empty: those the forward pass multiplies by are in `exec`.
    let vectors: TransformerWeights
    /// The matrices as the forward pass multiplies by them.
    let exec: ExecutionWeights
    let source: WeightSource

    /// Builds a model from canonical weights, checking every shape against the config.
    public init(config: ModelConfig, weights: TransformerWeights, tokenizer: BPETokenizer? = nil) throws {
        try config.validate()
        try weights.validate(against: config)
        MemoryTuning.configure()
        self.config = config
        self.tokenizer = tokenizer
        vectors = weights
        exec = ExecutionWeights(dense: weights)
        source = WeightSource(weights)
    }

    /// A model whose matrices are read in place (`exec`), with its norms and biases in `vectors` and
    /// `dequantize` making the float32 weights when something asks for them. The caller has checked
    /// every matrix's shape against the config.
    init(config: ModelConfig, vectors: TransformerWeights, exec: ExecutionWeights,
         dequantize: @escaping @Sendable () throws -> TransformerWeights) throws {
        try config.validate()
        MemoryTuning.configure()
        self.config = config
        self.vectors = vectors
        self.exec = exec
        source = WeightSource(dequantize)
    }

    /// Whether the forward pass reads its matrices in place from the mapped file (a GGUF's quantized
    /// blocks, a folder's safetensors), rather than from float32 copies.
    public var readsWeightsInPlace: Bool { exec.readsWeightsInPlace }

    /// Every hook point this model runs, in forward order (`hook_result` when `includeResult`).
    public func hookNames(includeResult: Bool = false) -> [HookName] {
        if config.postLayerNorm { return encoderHookNames(includeResult: includeResult) }
        var out: [HookName] = [.embed]
        if config.positional == .standard { out.append(.posEmbed) }
        let rotary = config.positional != .standard
        for l in 0..<config.nLayers {
            for make in HookName.blockKinds {
                let n = make(l)
                switch n {
                case .rotQ, .rotK: if !rotary { continue }
                case .result: if !includeResult { continue }
                case .mlpPreLinear: if !config.gatedMLP || config.attnOnly { continue }
                case .residMid: if config.attnOnly || config.parallelAttnMLP { continue }
                case .ln2Scale, .ln2Normalized, .mlpPre, .mlpPost, .mlpOut: if config.attnOnly { continue }
                case .qNormScale, .qNormNormalized, .kNormScale, .kNormNormalized: if !config.qkNorm { continue }
                case .ln1PostScale, .ln1PostNormalized: if !config.postNorms { continue }
                case .ln2PostScale, .ln2PostNormalized: if !config.postNorms || config.attnOnly { continue }
                case .normalizedResidPost: continue   // encoders only (`encoderHookNames`)
                default: break
                }
                out.append(n)
            }
        }
        return out + [.lnFinalScale, .lnFinalNormalized, .unembedIn, .unembedOut]
    }

    /// TransformerLens `HookedEncoder`'s hook points, in forward order: ln1 after attention, ln2 after the MLP.
    private func encoderHookNames(includeResult: Bool) -> [HookName] {
        var out: [HookName] = [.encoderEmbed, .encoderPosEmbed]
        if config.nTokenTypes > 0 { out.append(.tokenTypeEmbed) }
        out += [.embedLNScale, .embedLNNormalized, .fullEmbed]
        for l in 0..<config.nLayers {
            out += [.residPre(l), .q(l), .k(l), .v(l), .attnScores(l), .pattern(l), .z(l)]
            if includeResult { out.append(.result(l)) }
            out += [.attnOut(l), .residMid(l), .ln1Scale(l), .ln1Normalized(l), .mlpPre(l), .mlpPost(l), .mlpOut(l),
                    .residPost(l), .ln2Scale(l), .ln2Normalized(l), .normalizedResidPost(l)]
        }
        return config.maskedLMHead ? out + [.mlmLNScale, .mlmLNNormalized, .unembedIn, .unembedOut] : out
    }

    /// Checks that a hook name exists in this model.
    public func checkHook(_ name: HookName) throws {
        if let l = name.layer, l >= config.nLayers {
            throw HookError.notInModel(name: name.description, reason: "the model has \(config.nLayers) layers (0..<\(config.nLayers))")
        }
        if !hookNames(includeResult: true).contains(name) {
            throw HookError.notInModel(name: name.description, reason: "\(config.architecture) has no such hook point")
        }
    }

    // MARK: - Public entry points

    /// Logits `[batch, pos, d_vocab]` for token ids (or the residual stream when `stopAtLayer` is set).
    public func run(_ tokens: [[Int]], options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        try run(.tokens(tokens), hooks: [:], options: options)
    }

    /// Logits for one sequence: `[1, pos, d_vocab]`.
    public func run(_ tokens: [Int]) throws -> Tensor { try run([tokens]) }

    /// Runs text, token ids or a residual stream, with hooks that may read or replace activations:
    ///
    ///     let logits = try model.run("The Eiffel Tower is in", hooks: [
    ///         .z(5): { z, _ in z[.all, .all, 1] = 0 },   // ablate head 5.1
    ///     ])
    public func run(_ input: ModelInput, hooks: Hooks = [:], options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        for name in hooks.functions.keys { try checkHook(name) }
        var runner = HookRunner(hooks: hooks.functions, selection: nil)
        return try forward(resolve(input), options: options, runner: &runner, kvCache: nil)
    }

    /// Runs and returns the output with the selected activations (all by default, as TransformerLens's
    /// `run_with_cache`): `let (logits, cache) = try model.runWithCache("When Mary and John went")`.
    public func runWithCache(_ input: ModelInput, select: CacheSelection = .all, hooks: Hooks = [:],
                             options: ForwardOptions = ForwardOptions()) throws -> (output: Tensor, cache: ActivationCache) {
        for name in hooks.functions.keys { try checkHook(name) }
        if case .names(let s) = select { for n in s { try checkHook(n) } }
        var runner = HookRunner(hooks: hooks.functions, selection: select)
        let out = try forward(resolve(input), options: options, runner: &runner, kvCache: nil)
        return (out, runner.cache)
    }

    /// Runs new tokens after those already in `kvCache`, appending their keys and values.
    /// Returns logits `[batch, pos, d_vocab]` for the new tokens.
    public func run(_ tokens: [[Int]], kvCache: inout KVCache, hooks: Hooks = [:],
                    options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        try run(.tokens(tokens), kvCache: &kvCache, hooks: hooks, options: options)
    }

    /// Runs new positions (tokens, or a residual stream entering `options.startAtLayer`) after those in
    /// `kvCache`. With `startAtLayer`, the cache must hold keys and values for the blocks that run
    /// (e.g. one made by `KVCache(config:batch:keys:values:)` from another run's activations); blocks
    /// before it are neither run nor updated.
    public func run(_ input: ModelInput, kvCache: inout KVCache, hooks: Hooks = [:],
                    options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        for name in hooks.functions.keys { try checkHook(name) }
        guard options.stopAtLayer == nil else {
            throw ModelError.unsupported("stopAtLayer cannot be combined with a KV cache")
        }
        var runner = HookRunner(hooks: hooks.functions, selection: nil)
        let input = try resolve(input)
        return try withUnsafeMutablePointer(to: &kvCache) { p in
            try forward(input, options: options, runner: &runner, kvCache: p)
        }
    }

    // MARK: - Text

    /// The tokenizer, or an error saying that this model needs token ids.
    public func requireTokenizer() throws -> BPETokenizer {
        guard let tokenizer else {
            throw ModelError.unsupported("this \(config.architecture) model has no tokenizer: give token ids instead of text")
        }
        return tokenizer
    }

    /// Token ids for text, as the model expects them (with BOS where the tokenizer adds one), like
    /// TransformerLens's `to_tokens`.
    public func toTokens(_ text: String) throws -> [Int] {
        let ids = try requireTokenizer().encodeForModel(text)
        guard !ids.isEmpty else { throw ModelError.emptyInput }
        return ids
    }

    /// Each token's text (`<id>` for an id the tokenizer does not have), like `to_str_tokens`.
    public func toStrings(_ ids: [Int]) throws -> [String] {
        let t = try requireTokenizer()
        return ids.map { (try? t.tokenString($0)) ?? "<\($0)>" }
    }

    /// A token given as its id (`"7042"`) or as text that is exactly one token (`" Paris"`), as the
    /// CLI's `--answer` and the explorer's answer boxes take it.
    /// - Throws: `ModelError.notOneToken` for an id outside the vocabulary or text of several tokens
    ///   (the message lists them: `" Mary"` and `"Mary"` are different tokens).
    public func singleToken(_ value: String) throws -> Int {
        if let id = Int(value) {
            guard id >= 0 && id < config.dVocab else {
                throw ModelError.notOneToken("token id \(id) is out of range 0..<\(config.dVocab)")
            }
            return id
        }
        let ids = try requireTokenizer().encode(value)
        guard ids.count == 1 else {
            let shown = try toStrings(ids).map(\.quotedForDisplay).joined(separator: " ")
            throw ModelError.notOneToken("\(value.quotedForDisplay) is \(ids.count) tokens (\(shown)); give a single token or its id")
        }
        return ids[0]
    }

    /// A caution when `value` (text given as a token) is probably not the token meant: a word written without
    /// its leading space ("Mary") whose spaced form (" Mary") is one token too and the commoner one — learned
    /// earlier, so a lower id in a byte-level BPE vocabulary. Inside a sentence a word takes the spaced token;
    /// the bare one occurs only at the start of a text or after a newline or quote. Nil for ids and otherwise.
    public func tokenCaution(_ value: String) -> String? {
        guard Int(value) == nil, let first = value.unicodeScalars.first, !first.properties.isWhitespace,
              tokenizer != nil, let bare = try? singleToken(value), let spaced = try? singleToken(" " + value),
              spaced < bare else { return nil }
        return "\(value.quotedForDisplay) is token \(bare), the word without a leading space; inside a sentence "
            + "the word is \((" " + value).quotedForDisplay) (token \(spaced)), the more common one"
    }

    /// Text inputs as token ids.
    func resolve(_ input: ModelInput) throws -> ModelInput {
        if case .text(let text) = input { return .tokens([try toTokens(text)]) }
        return input
    }
}

/// Where `HookedTransformer.weights` comes from: the weights themselves, or a dequantization made once,
/// on first use, and kept.
final class WeightSource: @unchecked Sendable {
    private let lock = NSLock()
    private var made: TransformerWeights?
    private let make: (@Sendable () throws -> TransformerWeights)?

    init(_ weights: TransformerWeights) {
        made = weights
        make = nil
    }

    init(_ make: @escaping @Sendable () throws -> TransformerWeights) {
        self.make = make
    }

    var weights: TransformerWeights {
        lock.withLock {
            if let made { return made }
            do {
                guard let make else { preconditionFailure("a weight source with neither weights nor a way to make them") }
                let w = try make()
                made = w
                return w
            } catch {
                // The loader checked every tensor this reads (names, shapes, types) before building the model.
                preconditionFailure("dequantizing checked weights failed: \(error)")
            }
        }
    }
}
