// Causal scrubbing (Chan et al. 2022, "Causal Scrubbing: a method for rigorously testing interpretability
// hypotheses"). A hypothesis names the paths that matter: edges from senders (the embeddings, heads, MLPs)
// to the inputs of receivers (a head's query, key or value input, an MLP's input, the logits). Scrubbing
// rebuilds every receiver input from the residual stream's parts: a part on an edge the hypothesis keeps is
// the sender's output on the same input, itself computed under the hypothesis; every other part is the
// sender's output on another input of the dataset (resampled), where it can carry no information about this
// input. The loss of the scrubbed model, between the model's own (1) and that of the fully scrubbed model,
// where every part of the logits' input is resampled (0), is the loss the hypothesis recovers.
//
// The residual stream is a sum of parts: the embeddings, each head's output (`hook_result`), each MLP's
// output and the attention output's bias. Models whose blocks are not such a sum (norms after the attention or
// MLP, as Gemma's) are refused. A node's value depends only on its input and on the resampling draws of the
// edges below it, which are fixed per (receiver input, input): so each node is computed once per input and
// shared (the treeified model's copies would be identical).

import Foundation
import LoupeModels
import LoupeTensor

/// A hypothesis: the edges that matter. Names: senders `embed`, `L{layer}H{head}`, `mlp{layer}`, or `*`
/// (every sender upstream of the receiver); receivers `logits`, `L{layer}H{head}.q|k|v`, `L{layer}H{head}`
/// (its three inputs), `mlp{layer}`, or `*` (every receiver input). A key or value input is named by a query
/// head; under grouped-query attention it is its key-value head's, shared with the group.
public struct ScrubHypothesis: Sendable, Codable, Equatable {
    public struct Edge: Sendable, Codable, Hashable {
        public var from: String
        public var to: String
        public init(from: String, to: String) { self.from = from; self.to = to }
    }
    /// Whether the resampled parts of one receiver input come from one other input (`together`, the default:
    /// the rest of the residual stream as one unclaimed whole) or each from its own (`separately`).
    public enum Resample: String, Sendable, Codable { case together, separately }

    /// What a receiver input that no edge names reads: everything (`kept`: the hypothesis makes claims only
    /// about the inputs it names, the rest is the model) or nothing of its own input (`resampled`, the default).
    public enum Rest: String, Sendable, Codable { case kept, resampled }

    public var name: String
    public var description: String?
    public var edges: [Edge]
    public var resample: Resample?
    public var rest: Rest?

    public init(name: String, description: String? = nil, edges: [Edge], resample: Resample? = nil, rest: Rest? = nil) {
        self.name = name; self.description = description; self.edges = edges; self.resample = resample; self.rest = rest
    }

    /// A hypothesis from its JSON: `{"name": …, "description": …, "edges": [{"from": …, "to": …}], "resample": …}`.
    /// A key outside these is an error (a misspelt `edges` would otherwise be a hypothesis that keeps nothing).
    public static func decode(_ data: Data) throws -> ScrubHypothesis {
        let shape = #"{"name": …, "description": …, "edges": [{"from": …, "to": …}, …], "resample": "together"|"separately", "rest": "resampled"|"kept"}"#
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw InterpError.invalid("a hypothesis is a JSON object \(shape); this is not")
        }
        let unknown = Set(object.keys).subtracting(["name", "description", "edges", "resample", "rest"])
        guard unknown.isEmpty else { throw InterpError.invalid("hypothesis: unknown key(s) \(unknown.sorted().joined(separator: ", ")); expected \(shape)") }
        guard object["edges"] != nil else { throw InterpError.invalid("hypothesis: no \"edges\"; expected \(shape)") }
        for (i, edge) in ((object["edges"] as? [Any]) ?? []).enumerated() {
            guard let e = edge as? [String: Any] else { throw InterpError.invalid("hypothesis edge \(i): expected {\"from\": …, \"to\": …}") }
            let extra = Set(e.keys).subtracting(["from", "to"])
            guard extra.isEmpty else { throw InterpError.invalid("hypothesis edge \(i): unknown key(s) \(extra.sorted().joined(separator: ", ")); expected from and to") }
        }
        do { return try JSONDecoder().decode(ScrubHypothesis.self, from: data) } catch {
            throw InterpError.invalid("hypothesis: expected \(shape); \(error)")
        }
    }

    /// Every edge kept: the model itself.
    public static let full = ScrubHypothesis(name: "full", description: "every path matters: the unscrubbed model", edges: [Edge(from: "*", to: "*")])
    /// No edge kept: every part of the logits' input resampled.
    public static let none = ScrubHypothesis(name: "none", description: "nothing matters: the logits' input resampled", edges: [])

    /// The induction hypothesis (Olsson et al. 2022; the causal-scrubbing write-up's induction example): the
    /// induction head's key reads only the previous-token head's output (K-composition), its query and value
    /// only the token embeddings, and the previous-token head reads only the embeddings; every other input is
    /// kept as it is (`rest: kept`), so what the model loses is what the induction head does that this story
    /// does not explain. Under grouped-query attention the key and value inputs are the induction head's
    /// key-value head's, shared with its group.
    public static func induction(previousToken p: (layer: Int, head: Int), induction i: (layer: Int, head: Int)) -> ScrubHypothesis {
        let prev = "L\(p.layer)H\(p.head)", ind = "L\(i.layer)H\(i.head)"
        return ScrubHypothesis(
            name: "induction",
            description: "\(prev) (previous token, reading the embeddings) → \(ind).k (K-composition); embeddings → \(ind).q and \(ind).v; every other input kept",
            edges: [Edge(from: "embed", to: prev), Edge(from: prev, to: "\(ind).k"), Edge(from: "embed", to: "\(ind).q"),
                    Edge(from: "embed", to: "\(ind).v")],
            rest: .kept)
    }
}

/// What scrubbing found: mean next-token losses over the scored positions.
public struct ScrubResult: Sendable {
    public let hypothesis: ScrubHypothesis
    public let modelLoss: Float
    /// With every part of the logits' input resampled.
    public let fullyScrubbedLoss: Float
    public let scrubbedLoss: Float
    /// `(fully scrubbed − scrubbed) / (fully scrubbed − model)`: 1 = the hypothesis explains the loss, 0 = nothing.
    public var lossRecovered: Float {
        let span = fullyScrubbedLoss - modelLoss
        return span == 0 ? 0 : (fullyScrubbedLoss - scrubbedLoss) / span
    }
    /// Each sequence's scrubbed loss.
    public let perSequence: [Float]
}

/// A part of the residual stream.
enum ScrubNode: Hashable, CustomStringConvertible {
    case embed, head(Int, Int), mlp(Int)
    var description: String {
        switch self {
        case .embed: return "embed"
        case .head(let l, let h): return "L\(l)H\(h)"
        case .mlp(let l): return "mlp\(l)"
        }
    }
}

/// A receiver's input. Keys and values are per key-value head.
enum ScrubInput: Hashable, CustomStringConvertible {
    case logits, q(Int, Int), k(Int, Int), v(Int, Int), mlp(Int)
    var description: String {
        switch self {
        case .logits: return "logits"
        case .q(let l, let h): return "L\(l)H\(h).q"
        case .k(let l, let h): return "L\(l)KV\(h).k"
        case .v(let l, let h): return "L\(l)KV\(h).v"
        case .mlp(let l): return "mlp\(l)"
        }
    }
}

/// A hypothesis resolved against a model: for each receiver input, the senders it keeps (nil: all).
struct ScrubPlan {
    var kept: [ScrubInput: Set<ScrubNode>] = [:]
    var keepAll: Set<ScrubInput> = []

    init(_ hypothesis: ScrubHypothesis, config c: ModelConfig) throws {
        guard !c.postNorms else {
            throw InterpError.invalid("causal scrubbing splits the residual stream into the outputs of heads and MLPs; \(c.architecture)'s norms after attention and MLP make it not such a sum")
        }
        var named: Set<ScrubInput> = []
        for edge in hypothesis.edges {
            let inputs = try Self.receivers(edge.to, c)
            named.formUnion(inputs)
            for input in inputs {
                if edge.from == "*" { keepAll.insert(input); continue }
                let node = try Self.sender(edge.from, c)
                guard Self.upstream(of: input, c).contains(node) else {
                    throw InterpError.invalid("hypothesis edge \(edge.from) → \(edge.to): \(edge.from) comes after \(input) and cannot reach it")
                }
                kept[input, default: []].insert(node)
            }
        }
        if hypothesis.rest == .kept {
            for input in try Self.receivers("*", c) where !named.contains(input) { keepAll.insert(input) }
        }
    }

    func isKept(_ node: ScrubNode, by input: ScrubInput) -> Bool {
        keepAll.contains(input) || kept[input]?.contains(node) == true
    }

    /// The parts of the residual stream a receiver input reads, in order.
    static func upstream(of input: ScrubInput, _ c: ModelConfig) -> [ScrubNode] {
        let (heads, mlps) = readers(input, c)
        var out: [ScrubNode] = [.embed]
        for l in 0..<c.nLayers {
            if l < heads { out += (0..<c.nHeads).map { .head(l, $0) } }
            if l < mlps { out.append(.mlp(l)) }
        }
        return out
    }

    /// How many blocks' heads and MLPs a receiver input sees.
    static func readers(_ input: ScrubInput, _ c: ModelConfig) -> (heads: Int, mlps: Int) {
        let mlpLayers = c.attnOnly ? 0 : c.nLayers
        switch input {
        case .logits: return (c.nLayers, mlpLayers)
        case .q(let l, _), .k(let l, _), .v(let l, _): return (l, min(l, mlpLayers))
        case .mlp(let l): return (c.parallelAttnMLP ? l : l + 1, l)
        }
    }

    static func sender(_ name: String, _ c: ModelConfig) throws -> ScrubNode {
        if name == "embed" { return .embed }
        if name.hasPrefix("mlp"), let l = Int(name.dropFirst(3)) {
            guard !c.attnOnly else { throw InterpError.invalid("hypothesis names \(name), but the model has no MLPs") }
            guard (0..<c.nLayers).contains(l) else { throw InterpError.outOfRange(what: "hypothesis \(name): layer", value: l, count: c.nLayers) }
            return .mlp(l)
        }
        if let (l, h) = try head(name, c) { return .head(l, h) }
        throw InterpError.invalid("hypothesis sender '\(name)' is not embed, L{layer}H{head}, mlp{layer} or *")
    }

    static func receivers(_ name: String, _ c: ModelConfig) throws -> [ScrubInput] {
        let group = c.groupSize
        if name == "*" {
            var all: [ScrubInput] = [.logits]
            for l in 0..<c.nLayers {
                for h in 0..<c.nHeads { all.append(.q(l, h)) }
                for h in 0..<c.nKeyValueHeads { all += [.k(l, h), .v(l, h)] }
                if !c.attnOnly { all.append(.mlp(l)) }
            }
            return all
        }
        if name == "logits" { return [.logits] }
        if name.hasPrefix("mlp") { if case .mlp(let l) = try sender(name, c) { return [.mlp(l)] } }
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        if let (l, h) = try head(parts[0], c) {
            if parts.count == 1 { return [.q(l, h), .k(l, h / group), .v(l, h / group)] }
            switch parts[1] {
            case "q": return [.q(l, h)]
            case "k": return [.k(l, h / group)]
            case "v": return [.v(l, h / group)]
            default: break
            }
        }
        throw InterpError.invalid("hypothesis receiver '\(name)' is not logits, L{layer}H{head}, L{layer}H{head}.q|k|v, mlp{layer} or *")
    }

    /// `L3H5` → (3, 5), checked against the model; nil when the name is not of that form.
    static func head(_ name: String, _ c: ModelConfig) throws -> (Int, Int)? {
        guard name.hasPrefix("L"), let hAt = name.firstIndex(of: "H"),
              let l = Int(name[name.index(after: name.startIndex)..<hAt]), let h = Int(name[name.index(after: hAt)...]) else { return nil }
        guard (0..<c.nLayers).contains(l) else { throw InterpError.outOfRange(what: "hypothesis \(name): layer", value: l, count: c.nLayers) }
        guard (0..<c.nHeads).contains(h) else { throw InterpError.outOfRange(what: "hypothesis \(name): head", value: h, count: c.nHeads) }
        return (l, h)
    }
}

extension HookedTransformer {
    /// Scrubs `hypothesis` on `sequences` (one length, at least two) and scores next-token loss at positions
    /// `lossFrom..<length−1` (predicting the token after each). `seed` fixes the resampling draws.
    /// - Throws: `InterpError` for an unknown or unreachable name in the hypothesis, fewer than two sequences,
    ///   sequences of different lengths or too long, or a model that is not a sum of parts.
    public func causalScrub(_ hypothesis: ScrubHypothesis, sequences: [[Int]], lossFrom: Int = 0, seed: UInt64 = 0,
                            progress: ProgressHandler? = nil) throws -> ScrubResult {
        let plan = try ScrubPlan(hypothesis, config: config)
        let none = try ScrubPlan(.none, config: config)
        try checkScrubbing(sequences)
        let T = sequences[0].count
        guard (0..<(T - 1)).contains(lossFrom) else { throw InterpError.outOfRange(what: "first scored position", value: lossFrom, count: T - 1) }
        let engine = try ScrubEngine(model: self, sequences: sequences, seed: seed, mode: hypothesis.resample ?? .together)
        var modelLoss = 0.0, noneLoss = 0.0, loss = 0.0
        var perSequence: [Float] = []
        for x in sequences.indices {
            modelLoss += Double(engine.loss(engine.cleanLogits[x], x, from: lossFrom))
            noneLoss += Double(engine.loss(try engine.logits(plan: none, x), x, from: lossFrom))
            let l = engine.loss(try engine.logits(plan: plan, x), x, from: lossFrom)
            perSequence.append(l)
            loss += Double(l)
            progress?(x + 1, sequences.count)
        }
        let n = Double(sequences.count)
        return ScrubResult(hypothesis: hypothesis, modelLoss: Float(modelLoss / n), fullyScrubbedLoss: Float(noneLoss / n),
                           scrubbedLoss: Float(loss / n), perSequence: perSequence)
    }

    /// The scrubbed model's logits `[1, T, d_vocab]` for each sequence under `hypothesis`.
    public func scrubbedLogits(_ hypothesis: ScrubHypothesis, sequences: [[Int]], seed: UInt64 = 0) throws -> [Tensor] {
        let plan = try ScrubPlan(hypothesis, config: config)
        try checkScrubbing(sequences)
        let engine = try ScrubEngine(model: self, sequences: sequences, seed: seed, mode: hypothesis.resample ?? .together)
        return try sequences.indices.map { try engine.logits(plan: plan, $0) }
    }

    private func checkScrubbing(_ sequences: [[Int]]) throws {
        guard sequences.count >= 2 else { throw InterpError.invalid("causal scrubbing resamples between inputs: give at least two sequences, found \(sequences.count)") }
        let T = sequences[0].count
        guard T >= 2, sequences.allSatisfy({ $0.count == T }) else {
            throw InterpError.invalid("causal scrubbing needs sequences of one length (at least 2 tokens), found lengths \(Set(sequences.map(\.count)).sorted())")
        }
        guard T <= config.nCtx else { throw InterpError.invalid("sequences of \(T) tokens are longer than the model's context (\(config.nCtx))") }
        for s in sequences { for t in s where t < 0 || t >= config.dVocab { throw InterpError.tokenOutOfRange(token: t, dVocab: config.dVocab) } }
    }
}

/// The scrubbed model's evaluation: the clean parts of every sequence, and the hypothesis's nodes memoized.
final class ScrubEngine {
    let model: HookedTransformer
    let config: ModelConfig
    let sequences: [[Int]]
    let seed: UInt64
    let mode: ScrubHypothesis.Resample
    let T: Int
    /// Per sequence: the clean value of every part `[T·d_model]`, the attention biases' sum per block, the logits.
    var clean: [[ScrubNode: [Float]]] = []
    var attnConstant: [[[Float]]] = []
    var cleanLogits: [Tensor] = []
    /// Nodes computed under the plan and sequence being evaluated (`logits` starts them afresh).
    private var memo: [ScrubNode: [Float]] = [:]
    /// Sums of the first n nodes under the plan and sequence being evaluated (`prefixSum`).
    private var prefixes: [Int: [Float]] = [:]
    /// Every node in the order receivers read them: `upstream(of:)` is a prefix of it.
    let order: [ScrubNode]

    init(model: HookedTransformer, sequences: [[Int]], seed: UInt64, mode: ScrubHypothesis.Resample) throws {
        self.model = model
        config = model.config
        self.sequences = sequences
        self.seed = seed
        self.mode = mode
        T = sequences[0].count
        order = ScrubPlan.upstream(of: .logits, model.config)
        let (nL, h, d) = (config.nLayers, config.nHeads, config.dModel)
        var names: Set<HookName> = [.residPre(0)]
        for l in 0..<nL {
            names.insert(.result(l)); names.insert(.attnOut(l))
            if !config.attnOnly { names.insert(.mlpOut(l)) }
        }
        for s in sequences {
            let (logits, cache) = try model.runWithCache(.tokens([s]), select: .names(names), options: ForwardOptions(useAttnResult: true))
            func get(_ n: HookName) throws -> Tensor {
                guard let t = cache[n] else { throw InterpError.invalid("\(n) was not computed") }
                return t
            }
            var parts: [ScrubNode: [Float]] = [.embed: try get(.residPre(0)).scalars]
            var constants: [[Float]] = []
            for l in 0..<nL {
                let result = try get(.result(l)).scalars                  // [1, T, h, d]
                var constant = try get(.attnOut(l)).scalars                // [1, T, d]
                for head in 0..<h {
                    var out = [Float](repeating: 0, count: T * d)
                    for p in 0..<T { for j in 0..<d { out[p * d + j] = result[(p * h + head) * d + j] } }
                    for i in 0..<(T * d) { constant[i] -= out[i] }
                    parts[.head(l, head)] = out
                }
                constants.append(constant)
                if !config.attnOnly { parts[.mlp(l)] = try get(.mlpOut(l)).scalars }
            }
            clean.append(parts)
            attnConstant.append(constants)
            cleanLogits.append(logits)
        }
    }

    /// The other sequence a receiver input's resampled parts come from (never `x` itself).
    func draw(_ input: ScrubInput, _ sender: ScrubNode, _ x: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        let key = mode == .together ? "\(input)|\(x)" : "\(input)|\(sender)|\(x)"
        for b in key.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        var rng = SeededGenerator(seed: hash, stream: 13)
        let other = rng.nextInt(sequences.count - 1)
        return other >= x ? other + 1 : other
    }

    /// A receiver input's residual stream `[T·d_model]` on sequence `x` under `plan`.
    func residual(_ input: ScrubInput, _ x: Int, plan: ScrubPlan) throws -> [Float] {
        let d = config.dModel
        let upstream = ScrubPlan.upstream(of: input, config)
        var r: [Float]
        if plan.keepAll.contains(input) {
            // Every part kept: the sum of a prefix of the nodes in order, shared by every such input.
            r = try prefixSum(upstream.count, x, plan: plan)
        } else {
            r = [Float](repeating: 0, count: T * d)
            for node in upstream {
                let part = plan.isKept(node, by: input) ? try value(node, x, plan: plan) : clean[draw(input, node, x)][node]!
                add(part, into: &r)
            }
        }
        for l in 0..<ScrubPlan.readers(input, config).heads { add(attnConstant[x][l], into: &r) }
        return r
    }

    private func add(_ part: [Float], into r: inout [Float]) {
        r.withUnsafeMutableBufferPointer { out in
            part.withUnsafeBufferPointer { p in for i in 0..<out.count { out[i] += p[i] } }
        }
    }

    /// The sum of the first `n` nodes (embeddings, then each layer's heads and MLP) under the plan: extended
    /// from the longest sum already made for this sequence.
    private func prefixSum(_ n: Int, _ x: Int, plan: ScrubPlan) throws -> [Float] {
        if let s = prefixes[n] { return s }
        let start = prefixes.keys.filter { $0 < n }.max()
        var r = start.map { prefixes[$0]! } ?? [Float](repeating: 0, count: T * config.dModel)
        for node in order[(start ?? 0)..<n] { add(try value(node, x, plan: plan), into: &r) }
        prefixes[n] = r
        return r
    }

    /// A node's output on sequence `x` with its inputs scrubbed under `plan`.
    func value(_ node: ScrubNode, _ x: Int, plan: ScrubPlan) throws -> [Float] {
        if let v = memo[node] { return v }
        let d = config.dModel, h = config.nHeads, group = config.groupSize
        let out: [Float]
        switch node {
        case .embed:
            out = clean[x][.embed]!
        case .mlp(let l):
            let input = try residual(.mlp(l), x, plan: plan)
            var hooks = Hooks()
            let t = Tensor(unchecked: [1, T, d], input)
            if !config.parallelAttnMLP { hooks.add(.residMid(l), Hooks.replace(with: t)) }
            let (_, cache) = try model.runWithCache(.residual(t), select: .names([.mlpOut(l)]), hooks: hooks,
                                                    options: ForwardOptions(startAtLayer: l, stopAtLayer: l + 1))
            guard let m = cache[.mlpOut(l)] else { throw InterpError.invalid("mlp\(l) output was not computed") }
            out = m.scalars
        case .head(let l, let head):
            // Rows: the query's, the key's and the value's residual stream; the key and value are moved into
            // row 0 before they are used, and row 0's head output is read.
            let kv = head / group
            let rows = [try residual(.q(l, head), x, plan: plan), try residual(.k(l, kv), x, plan: plan), try residual(.v(l, kv), x, plan: plan)]
            var hooks = Hooks()
            let dHead = config.dHead, T = self.T
            for (name, row) in [(HookName.k(l), 1), (HookName.v(l), 2)] {
                hooks.add(name) { act, _ in                                 // [3, T, kv heads, d_head]
                    let heads = act.shape[2]
                    act.scalars.withUnsafeMutableBufferPointer { p in
                        for pos in 0..<T {
                            for j in 0..<dHead { p[(pos * heads + kv) * dHead + j] = p[((row * T + pos) * heads + kv) * dHead + j] }
                        }
                    }
                }
            }
            let input = Tensor(unchecked: [3, T, d], rows.flatMap { $0 })
            let (_, cache) = try model.runWithCache(.residual(input), select: .names([.result(l)]), hooks: hooks,
                                                    options: ForwardOptions(startAtLayer: l, stopAtLayer: l + 1, useAttnResult: true))
            guard let result = cache[.result(l)] else { throw InterpError.invalid("L\(l) head outputs were not computed") }
            var o = [Float](repeating: 0, count: T * d)
            for p in 0..<T { for j in 0..<d { o[p * d + j] = result.scalars[(p * h + head) * d + j] } }
            out = o
        }
        memo[node] = out
        return out
    }

    /// The scrubbed logits `[1, T, d_vocab]` of sequence `x`.
    func logits(plan: ScrubPlan, _ x: Int) throws -> Tensor {
        memo = [:]; prefixes = [:]
        let r = try residual(.logits, x, plan: plan)
        let out = try model.run(.residual(Tensor(unchecked: [1, T, config.dModel], r)), options: ForwardOptions(startAtLayer: config.nLayers))
        memo = [:]; prefixes = [:]
        return out
    }

    /// Mean next-token loss of sequence `x` at positions `from..<T−1`.
    func loss(_ logits: Tensor, _ x: Int, from: Int) -> Float {
        let v = config.dVocab
        let total = (from..<(T - 1)).reduce(0.0) { sum, p in
            sum + Double(PatchMetric.loss(sequences[x][p + 1]).evaluate(logits.scalars[(p * v)..<((p + 1) * v)]))
        }
        return Float(total / Double(T - 1 - from))
    }
}
