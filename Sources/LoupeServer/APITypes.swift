// The JSON API's requests and responses (documented in docs/api.md). Field names are the JSON's.

import Foundation
import LoupeInterp
import LoupeModels

/// A token with its text.
public struct TokenInfo: Codable, Sendable, Equatable {
    public let id: Int
    public let text: String
}

/// A candidate token with its probability and logit.
public struct Candidate: Codable, Sendable {
    public let rank: Int
    public let id: Int
    public let token: String
    public let probability: Float
    public let logit: Float
}

/// The input every prompt endpoint takes: a model, and exactly one of `prompt` (text) or `ids`.
public protocol PromptRequest: Decodable, Sendable {
    var model: String { get }
    var prompt: String? { get }
    var ids: [Int]? { get }
}

public struct TokensRequest: PromptRequest {
    public let model: String; public let prompt: String?; public let ids: [Int]?
}
public struct TokensResponse: Codable, Sendable {
    public let model: String; public let tokens: [TokenInfo]
}

/// One token given as text or an id (an answer, a token to follow), resolved as the analyses resolve it.
public struct TokenRequest: Decodable, Sendable {
    public let model: String; public let text: String
}
public struct TokenResponse: Codable, Sendable {
    public let model: String; public let token: TokenInfo
    /// Set when the text lacks the leading space the word has inside a sentence and the spaced token is the commoner one.
    public let caution: String?
}

public struct PredictRequest: PromptRequest {
    public let model: String; public let prompt: String?; public let ids: [Int]?
    /// Candidates to return (default 10).
    public let topK: Int?
}
public struct PredictResponse: Codable, Sendable {
    public let model: String; public let tokens: [TokenInfo]; public let predictions: [Candidate]
}

public struct LensRequest: PromptRequest {
    public let model: String; public let prompt: String?; public let ids: [Int]?
    /// Position to read (default: the last; negative counts from the end).
    public let position: Int?
    /// Top tokens per layer (default 5).
    public let topK: Int?
    /// A token to follow through the layers: an id or a single token's text.
    public let target: String?
    /// Also read `resid_mid` (default false).
    public let mid: Bool?
    /// `recompute` (default) or `cached`.
    public let norm: String?
    /// Read through the model's tuned lens (`loupe serve --tuned-lens`) instead of the logit lens (default false).
    public let tuned: Bool?
}
public struct LensResponse: Codable, Sendable {
    public struct Cell: Codable, Sendable {
        public let label: String
        public let top: [Candidate]
        public let finalTokenRank: Int
        public let finalTokenProbability: Float
        public let targetRank: Int?
        public let targetProbability: Float?
        public let klToFinal: Float
        public let entropy: Float
    }
    public let model: String
    /// The tuned lens read through (its file's name), nil for the logit lens.
    public let tunedLens: String?
    public let tokens: [TokenInfo]; public let position: Int
    public let target: TokenInfo?
    public let cells: [Cell]
}

public struct AttentionRequest: PromptRequest {
    public let model: String; public let prompt: String?; public let ids: [Int]?
    /// With `head`: return this head's pattern.
    public let layer: Int?
    public let head: Int?
    /// Return every head's pattern too (`patterns`), when layers × heads × tokens² is at most 2,000,000.
    public let all: Bool?
}
public struct AttentionResponse: Codable, Sendable {
    public struct HeadSummary: Codable, Sendable {
        public let layer: Int; public let head: Int
        public let entropy: Float; public let toFirst: Float; public let toPrevious: Float; public let valueWeightedToFirst: Float
    }
    public struct Pattern: Codable, Sendable {
        public let layer: Int; public let head: Int
        /// `[query_pos][key_pos]`.
        public let pattern: [[Float]]
        /// The pattern weighted by each key's value-vector norm, rows renormalized.
        public let valueWeighted: [[Float]]
    }
    public let model: String; public let tokens: [TokenInfo]
    public let heads: [HeadSummary]
    public let selected: Pattern?
    /// With `all`: `[layer * n_heads + head][query_pos][key_pos]`.
    public let patterns: [[[Float]]]?
}

/// One neuron's page (as `loupe neurons --neurons N --db FILE`): what its value vector writes, and its top
/// corpus examples from a neuron index served with `--db`, each with the neuron's activation on every token.
public struct NeuronRequest: Decodable, Sendable {
    public let model: String; public let layer: Int; public let neuron: Int
    /// Tokens promoted and suppressed to list (default 10).
    public let topK: Int?
    /// Examples to show (default 20).
    public let examples: Int?
}
public struct NeuronResponse: Codable, Sendable {
    public struct Example: Codable, Sendable {
        public let activation: Float; public let document: Int; public let position: Int
        /// The context around the position, and the neuron's activation on each of its tokens when the context
        /// is run alone (`activation` is the corpus value, with the index window's earlier tokens before it).
        public let tokens: [TokenInfo]; public let activations: [Float]
        /// The position's index in `tokens`.
        public let focus: Int
    }
    public struct Histogram: Codable, Sendable {
        public let lower: Float; public let upper: Float; public let counts: [Int]
    }
    public let model: String; public let layer: Int; public let neuron: Int
    /// Cosine between the neuron's input (W_in column) and output (W_out row) directions.
    public let inputOutputCosine: Float
    public let promoted: [Candidate]; public let suppressed: [Candidate]
    /// The neuron index the examples come from (nil when none served fits this model and layer).
    public let index: String?
    public let examples: [Example]
    /// The neuron's activations on every token of the examples' contexts, in 20 bins.
    public let histogram: Histogram?
}

/// `loupe attribute`: each head's and each component's direct contribution to logit[answer] (− logit[wrong]).
public struct AttributeRequest: PromptRequest {
    public let model: String; public let prompt: String?; public let ids: [Int]?
    public let answer: String; public let wrong: String?
    /// The position read (default: the last).
    public let position: Int?
}
public struct AttributeResponse: Codable, Sendable {
    public struct Component: Codable, Sendable { public let label: String; public let value: Float }
    public let model: String; public let tokens: [TokenInfo]; public let position: Int
    public let answer: TokenInfo; public let wrong: TokenInfo?
    /// `[layer][head]`.
    public let heads: [[Float]]
    /// embed, pos_embed, each layer's attention and MLP, in order (bias terms where the model has them).
    public let components: [Component]
}

public struct HeadsRequest: Decodable, Sendable {
    public let model: String
    /// Text or ids to score the heads on; with neither, the induction test (random tokens repeated twice).
    public let prompt: String?
    public let ids: [Int]?
    /// `mul` (default, share of attention on the pattern) or `abs`.
    public let measure: String?
    /// Length of the induction test's random sequence (default 50, or what the context allows).
    public let length: Int?
    public let seed: UInt64?
}
public struct HeadsResponse: Codable, Sendable {
    public struct InductionTestResult: Codable, Sendable {
        public let length: Int; public let firstHalfLoss: Float; public let secondHalfLoss: Float
        /// The test's own score of each head `[layer][head]`.
        public let scores: [[Float]]
    }
    public let model: String; public let tokens: [TokenInfo]; public let measure: String
    /// `previous_token`, `duplicate_token`, `induction` → `[layer][head]`.
    public let scores: [String: [[Float]]]
    public let inductionTest: InductionTestResult?
}

public struct NeuronsRequest: PromptRequest {
    public let model: String; public let prompt: String?; public let ids: [Int]?
    public let layer: Int
    /// Neurons to return (default 10).
    public let top: Int?
    /// Rank neurons by their activation at this position (negative from the end); default: their
    /// highest activation over the prompt.
    public let position: Int?
    /// Tokens each value vector promotes and suppresses (default 5).
    public let topK: Int?
}
public struct NeuronsResponse: Codable, Sendable {
    public struct Neuron: Codable, Sendable {
        public let neuron: Int
        /// The activation it was ranked by, and where.
        public let activation: Float
        public let position: Int
        /// `mlp.hook_post` at every position.
        public let activations: [Float]
        /// Cosine of its input and output vectors (strongly negative: memory management).
        public let inputOutputCosine: Float
        /// Its value vector through the final norm and the unembedding.
        public let promoted: [Candidate]
        public let suppressed: [Candidate]
    }
    public let model: String; public let tokens: [TokenInfo]; public let layer: Int
    public let neurons: [Neuron]
}

public struct PatchRequest: Decodable, Sendable {
    public let model: String
    public let clean: String?; public let corrupt: String?
    public let cleanIds: [Int]?; public let corruptIds: [Int]?
    /// `resid_pre` (default), `resid_mid`, `resid_post`, `attn_out`, `mlp_out`, `z`, `q`, `k`, `v`, `pattern`.
    public let hook: String?
    public let byPosition: Bool?
    /// `logit-diff` (default), `normalized-logit-diff`, `prob`, `loss`.
    public let metric: String?
    /// The answer token and, for logit differences, the wrong one: ids or single-token texts.
    public let answer: String?
    public let wrong: String?
    /// A dataset of prompt pairs instead of `clean`/`corrupt`/`answer`/`wrong`: results are means over the pairs.
    public let pairs: [PatchPairRequest]?
}
/// One pair of a patching dataset: prompts (or ids) of one length, its tokens, and the scored position
/// (negative from the end; default the last).
public struct PatchPairRequest: Decodable, Sendable {
    public let clean: String?; public let corrupt: String?
    public let cleanIds: [Int]?; public let corruptIds: [Int]?
    public let answer: String
    public let wrong: String?
    public let position: Int?
}
public struct PatchResponse: Codable, Sendable {
    public let model: String; public let hook: String; public let metric: String
    public let axes: [String]; public let shape: [Int]
    /// Row-major values of the result, shaped by `shape`.
    public let values: [Float]
    /// `(patched − corrupted) / (clean − corrupted)`.
    public let normalized: [Float]
    public let clean: Float; public let corrupted: Float
    /// The (first) pair's tokens.
    public let cleanTokens: [TokenInfo]; public let corruptTokens: [TokenInfo]
    /// How many pairs the values are means over (1 for a single pair).
    public var pairs: Int = 1
}

/// `POST /api/ablate`: knock one activation out (as `loupe ablate --hook`) over a prompt or a dataset.
public struct AblateRequest: Decodable, Sendable {
    public let model: String
    /// One prompt (text or ids) with its answer and wrong tokens, or `examples`.
    public let prompt: String?
    public let ids: [Int]?
    public let answer: String?
    public let wrong: String?
    public let examples: [AblateExample]?
    /// A hook name (`blocks.23.attn.hook_z`), and optionally one head and one position (negative from the end).
    public let hook: String
    public let head: Int?
    public let position: Int?
    /// `zero` (default), `mean` or `resample`.
    public let kind: String?
    /// `logit-diff` (default), `prob` or `loss`.
    public let metric: String?
    public let seed: UInt64?
}
public struct AblateExample: Decodable, Sendable {
    public let prompt: String?
    public let ids: [Int]?
    public let answer: String
    public let wrong: String?
}
public struct AblateResponse: Codable, Sendable {
    public let model: String; public let hook: String; public let head: Int?; public let position: Int?
    public let kind: String; public let metric: String
    /// Each prompt's metric at its last position, unablated and ablated.
    public let clean: [Float]; public let ablated: [Float]
    public let meanClean: Float; public let meanAblated: Float
}

/// `loupe trace`: noise on the subject's embeddings, then each state restored in turn (a job).
public struct TraceRequest: Decodable, Sendable {
    public let model: String; public let prompt: String; public let subject: String; public let answer: String
    /// `resid` (default), `mlp` or `attn`.
    public let kind: String?
    /// Blocks restored together for mlp and attn (default 10, as ROME, or every layer of a smaller model).
    public let window: Int?
    /// Noise samples to average (default 5, at most 50).
    public let samples: Int?
    /// Noise standard deviation (default 3× the embedding's).
    public let noise: Float?
    public let seed: UInt64?
}
public struct TraceResponse: Codable, Sendable {
    public let model: String; public let tokens: [TokenInfo]; public let subject: [Int]; public let answer: TokenInfo
    public let kind: String; public let window: Int; public let samples: Int
    /// P(answer) in the clean run and in the corrupted runs (mean over the samples).
    public let clean: Float; public let corrupted: Float
    /// `[layer][position]`: P(answer) with that state restored.
    public let restored: [[Float]]
}

/// `loupe path-patch`: every head as the sender, into a receiver (a job).
public struct PathPatchRequest: Decodable, Sendable {
    public let model: String; public let clean: String; public let corrupt: String
    public let answer: String; public let wrong: String
    /// `logits` (default) or `LAYER:HEADS:q|k|v`, e.g. `9:6,9:q`.
    public let receiver: String?
}
public struct PathPatchResponse: Codable, Sendable {
    public let model: String; public let receiver: String
    /// logit[answer] − logit[wrong] in the clean and the corrupted run.
    public let clean: Float; public let corrupted: Float
    /// `[layer][head]`: the metric with that head's output from the corrupted run along the path.
    public let values: [[Float]]
    /// `(value − corrupted) / (clean − corrupted)`: 1 = no effect, 0 = the whole clean–corrupted difference.
    public let normalized: [[Float]]
    public let cleanTokens: [TokenInfo]
}

/// What a finished job gives: the response of its kind, encoded as that response.
public enum JobResult: Sendable, Encodable {
    case patch(PatchResponse)
    case trace(TraceResponse)
    case pathPatch(PathPatchResponse)
    case composition(CompositionResponse)

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .patch(let r): try r.encode(to: encoder)
        case .trace(let r): try r.encode(to: encoder)
        case .pathPatch(let r): try r.encode(to: encoder)
        case .composition(let r): try r.encode(to: encoder)
        }
    }
}

/// A job's state as `GET /api/jobs/{id}` reports it.
public struct JobStatus: Codable, Sendable {
    public let id: String
    /// `patch`, `trace`, `path-patch` or `composition`: what `result` holds.
    public let kind: String
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    public let state: String
    public let done: Int
    public let total: Int
    public let elapsedSeconds: Double
    public let result: JobResult?
    public let error: String?

    init(id: String, kind: String, state: String, done: Int, total: Int, elapsedSeconds: Double, result: JobResult?, error: String?) {
        (self.id, self.kind, self.state, self.done, self.total) = (id, kind, state, done, total)
        (self.elapsedSeconds, self.result, self.error) = (elapsedSeconds, result, error)
    }

    enum CodingKeys: String, CodingKey { case id, kind, state, done, total, elapsedSeconds, result, error }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        kind = try c.decode(String.self, forKey: .kind)
        state = try c.decode(String.self, forKey: .state)
        done = try c.decode(Int.self, forKey: .done)
        total = try c.decode(Int.self, forKey: .total)
        elapsedSeconds = try c.decode(Double.self, forKey: .elapsedSeconds)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        switch kind {
        case "trace": result = try c.decodeIfPresent(TraceResponse.self, forKey: .result).map { .trace($0) }
        case "path-patch": result = try c.decodeIfPresent(PathPatchResponse.self, forKey: .result).map { .pathPatch($0) }
        case "composition": result = try c.decodeIfPresent(CompositionResponse.self, forKey: .result).map { .composition($0) }
        default: result = try c.decodeIfPresent(PatchResponse.self, forKey: .result).map { .patch($0) }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(kind, forKey: .kind); try c.encode(state, forKey: .state)
        try c.encode(done, forKey: .done); try c.encode(total, forKey: .total); try c.encode(elapsedSeconds, forKey: .elapsedSeconds)
        try c.encodeIfPresent(result, forKey: .result); try c.encodeIfPresent(error, forKey: .error)
    }

    /// The result of a patching, tracing, path-patching or composition job.
    public var patch: PatchResponse? { if case .patch(let r)? = result { return r }; return nil }
    public var trace: TraceResponse? { if case .trace(let r)? = result { return r }; return nil }
    public var pathPatch: PathPatchResponse? { if case .pathPatch(let r)? = result { return r }; return nil }
    public var composition: CompositionResponse? { if case .composition(let r)? = result { return r }; return nil }
}

public struct ModelsResponse: Codable, Sendable {
    public let models: [ModelStatus]
    public let limits: ExplorerLimits
}
