// Activation patching (Meng et al. 2022; Wang et al. 2022; TransformerLens's `patching` module): run the
// corrupted prompt, put one activation back as it was in the clean run, and measure how much of the clean
// behaviour returns. Results have TransformerLens's shapes and equal its `get_act_patch_*` functions.
//
// Fast by design. A patch in block l cannot change blocks before l, so each patched run starts at block l
// from the corrupted residual stream. A patch at position p cannot change positions before p (causal
// attention), so those positions are not recomputed: their keys and values come from the corrupted run,
// through a prefilled KV cache. Patches that start at the same block and position are run as one batch,
// and only the last position is unembedded.

import Foundation
import LoupeModels
import LoupeTensor

/// Results of a sweep filled in by several threads.
private final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Float]
    private(set) var error: Error?
    private var done = 0

    init(count: Int) { values = [Float](repeating: 0, count: count) }

    var failed: Bool { lock.lock(); defer { lock.unlock() }; return error != nil }

    func set(_ cells: [(Int, Float)]) {
        lock.lock(); defer { lock.unlock() }
        for (i, v) in cells { values[i] = v }
    }

    func fail(_ e: Error) {
        lock.lock(); defer { lock.unlock() }
        if error == nil { error = e }
    }

    func finished(progress: ProgressHandler?, of total: Int) {
        lock.lock(); defer { lock.unlock() }
        done += 1
        progress?(done, total)
    }
}

/// What to patch, named as TransformerLens's `get_act_patch_{name}`.
public enum PatchTarget: String, CaseIterable, Sendable {
    case residPre = "resid_pre", residMid = "resid_mid", residPost = "resid_post", attnOut = "attn_out", mlpOut = "mlp_out"
    case headOutAllPos = "attn_head_out_all_pos", headOutByPos = "attn_head_out_by_pos"
    case headQByPos = "attn_head_q_by_pos", headKByPos = "attn_head_k_by_pos", headVByPos = "attn_head_v_by_pos"
    case headQAllPos = "attn_head_q_all_pos", headKAllPos = "attn_head_k_all_pos", headVAllPos = "attn_head_v_all_pos"
    case headPatternAllPos = "attn_head_pattern_all_pos", headPatternByPos = "attn_head_pattern_by_pos"

    /// The short hook names a person picks from (`resid_pre` … `mlp_out`, and `z`, `q`, `k`, `v`, `pattern`
    /// for heads), as `loupe patch --hook` and the explorer take them.
    public static let shortNames = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z", "q", "k", "v", "pattern"]

    /// The target for a short hook name; `byPosition` patches each position of a head separately (layer ×
    /// position × head; for `pattern`, layer × head × position). Nil for a name not in `shortNames`.
    public init?(shortName: String, byPosition: Bool = false) {
        switch shortName {
        case "resid_pre": self = .residPre
        case "resid_mid": self = .residMid
        case "resid_post": self = .residPost
        case "attn_out": self = .attnOut
        case "mlp_out": self = .mlpOut
        case "z": self = byPosition ? .headOutByPos : .headOutAllPos
        case "q": self = byPosition ? .headQByPos : .headQAllPos
        case "k": self = byPosition ? .headKByPos : .headKAllPos
        case "v": self = byPosition ? .headVByPos : .headVAllPos
        case "pattern": self = byPosition ? .headPatternByPos : .headPatternAllPos
        default: return nil
        }
    }

    /// The hook point patched in block `l`.
    func hook(_ l: Int) -> HookName {
        switch self {
        case .residPre: return .residPre(l)
        case .residMid: return .residMid(l)
        case .residPost: return .residPost(l)
        case .attnOut: return .attnOut(l)
        case .mlpOut: return .mlpOut(l)
        case .headOutAllPos, .headOutByPos: return .z(l)
        case .headQAllPos, .headQByPos: return .q(l)
        case .headKAllPos, .headKByPos: return .k(l)
        case .headVAllPos, .headVByPos: return .v(l)
        case .headPatternAllPos, .headPatternByPos: return .pattern(l)
        }
    }

    /// The result's axes, as TransformerLens orders them.
    public var axes: [String] {
        switch self {
        case .residPre, .residMid, .residPost, .attnOut, .mlpOut: return ["layer", "pos"]
        case .headOutAllPos, .headQAllPos, .headKAllPos, .headVAllPos, .headPatternAllPos: return ["layer", "head"]
        case .headOutByPos, .headQByPos, .headKByPos, .headVByPos: return ["layer", "pos", "head"]
        case .headPatternByPos: return ["layer", "head", "dest_pos"]
        }
    }
}

/// What a patched run is scored by, read off the logits at the last position.
public enum PatchMetric: Sendable {
    /// `logit[answer] − logit[wrong]` (TransformerLens's usual logit difference).
    case logitDifference(answer: Int, wrong: Int)
    /// The softmax probability of a token.
    case probability(Int)
    /// The negative log-probability of a token.
    case loss(Int)
    /// Any function of the last position's logits `[d_vocab]`.
    case custom(@Sendable ([Float]) -> Float)

    /// The metric of one row of logits.
    public func evaluate(_ logits: ArraySlice<Float>) -> Float {
        let row = Array(logits)
        switch self {
        case .logitDifference(let a, let b): return row[a] - row[b]
        case .probability(let t): return Float(exp(Double(row[t]) - logSumExp(row)))
        case .loss(let t): return Float(logSumExp(row) - Double(row[t]))
        case .custom(let f): return f(row)
        }
    }

    func tokens() -> [Int] {
        switch self {
        case .logitDifference(let a, let b): return [a, b]
        case .probability(let t), .loss(let t): return [t]
        case .custom: return []
        }
    }

    private func logSumExp(_ row: [Float]) -> Double {
        let m = row.max() ?? 0
        return Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
    }
}

/// A patching sweep's result.
public struct PatchResult: Sendable {
    public let target: PatchTarget
    /// Axis names, e.g. `["layer", "pos"]`.
    public let axes: [String]
    /// The metric of every patched run, shaped by `axes`.
    public let values: Tensor
    /// The metric of the clean and of the corrupted run, unpatched.
    public let clean: Float
    public let corrupted: Float

    /// `(patched − corrupted) / (clean − corrupted)`: 0 = no effect, 1 = the clean behaviour restored.
    public var normalized: Tensor {
        let span = clean - corrupted
        return Tensor(unchecked: values.shape, values.scalars.map { span == 0 ? 0 : ($0 - corrupted) / span })
    }
}

/// Problems with a patching request.
public enum InterpError: Error, Equatable, CustomStringConvertible {
    case lengthMismatch(clean: Int, corrupted: Int)
    case tokenOutOfRange(token: Int, dVocab: Int)
    case outOfRange(what: String, value: Int, count: Int)
    case invalid(String)

    public var description: String {
        switch self {
        case .lengthMismatch(let c, let x):
            return "clean and corrupted prompts must have the same number of tokens: clean has \(c), corrupted \(x)"
        case .tokenOutOfRange(let t, let v): return "token id \(t) is out of range: the vocabulary has ids 0..<\(v)"
        case .outOfRange(let w, let v, let c): return "\(w) \(v) is out of range 0..<\(c)"
        case .invalid(let m): return m
        }
    }
}

extension HookedTransformer {
    /// Activation patching of `target` in every block (and position or head, as the target says): the
    /// corrupted run with that one activation taken from the clean run, scored by `metric`.
    /// Equals TransformerLens's `patching.get_act_patch_{target}` with a metric of the scored position:
    /// `position` (negative: from the end), the last by default. In a causal model the positions after it
    /// cannot change its prediction and are left out (the result has the columns up to it); in a
    /// bidirectional model every position is patched and the metric read at `position`.
    /// `progress` hears (batches done, batches); when `isCancelled` returns true, no further batch starts
    /// and the sweep throws `CancellationError`.
    public func activationPatch(clean: [Int], corrupted: [Int], target: PatchTarget,
                                metric: PatchMetric, position: Int? = nil, progress: ProgressHandler? = nil,
                                isCancelled: (@Sendable () -> Bool)? = nil) throws -> PatchResult {
        guard clean.count == corrupted.count else {
            throw InterpError.lengthMismatch(clean: clean.count, corrupted: corrupted.count)
        }
        for t in metric.tokens() where t < 0 || t >= config.dVocab {
            throw InterpError.tokenOutOfRange(token: t, dVocab: config.dVocab)
        }
        let scored = (position ?? -1) < 0 ? clean.count + (position ?? -1) : position ?? 0
        guard (0..<clean.count).contains(scored) else {
            throw InterpError.outOfRange(what: "scored position", value: position ?? -1, count: clean.count)
        }
        if !config.bidirectional && scored < clean.count - 1 {
            return try activationPatch(clean: Array(clean[...scored]), corrupted: Array(corrupted[...scored]), target: target,
                                       metric: metric, progress: progress, isCancelled: isCancelled)
        }
        let (nL, h) = (config.nLayers, config.nHeads)
        let T = clean.count
        let patched: Set<HookName> = Set((0..<nL).map(target.hook))
        let (cleanLogits, cleanCache) = try runWithCache(.tokens([clean]), select: .names(patched))
        let (corruptLogits, corruptCache) = try runWithCache(.tokens([corrupted]), select: .names(patchEngineNames()))
        let v = config.dVocab
        let cleanMetric = metric.evaluate(cleanLogits.scalars[(scored * v)..<((scored + 1) * v)])
        let corruptMetric = metric.evaluate(corruptLogits.scalars[(scored * v)..<((scored + 1) * v)])

        let keyValueHeads = config.nKeyValueHeads
        // k and v have key-value heads (fewer under grouped-query attention), as in TransformerLens.
        let headCount = [.headKAllPos, .headVAllPos, .headKByPos, .headVByPos].contains(target) ? keyValueHeads : h
        let shape: [Int]
        switch target.axes {
        case ["layer", "pos"]: shape = [nL, T]
        case ["layer", "head"]: shape = [nL, headCount]
        case ["layer", "pos", "head"]: shape = [nL, T, headCount]
        default: shape = [nL, h, T]
        }
        // One job per cell of the result.
        var jobs: [PatchJob] = []
        for l in 0..<nL {
            guard let source = cleanCache[target.hook(l)] else { throw InterpError.invalid("\(target.hook(l)) was not cached") }   // clean, batch 1
            let hook = target.hook(l)
            func job(_ index: Int, start: Int, _ apply: @escaping @Sendable (inout Tensor, Int, Int) -> Void) {
                jobs.append(PatchJob(index: index, layer: l, start: start, patches: [hook: apply]))
            }
            // Each job writes one cell's clean slice into row `row` of a batch that starts at position
            // `s`: act is [rows, T − s, …] for activations by position, [rows, head, T − s, T] for patterns.
            switch target {
            case .residPre, .residMid, .residPost, .attnOut, .mlpOut:
                for p in 0..<T {
                    let clean = source[0, p]                               // [d_model]
                    job(l * T + p, start: p) { act, row, s in act[row, p - s] = clean }
                }
            case .headOutByPos, .headQByPos, .headKByPos, .headVByPos:
                for p in 0..<T {
                    for head in 0..<headCount {
                        let clean = source[0, p, head]                     // [d_head]
                        job((l * T + p) * headCount + head, start: p) { act, row, s in act[row, p - s, head] = clean }
                    }
                }
            case .headOutAllPos, .headQAllPos, .headKAllPos, .headVAllPos:
                for head in 0..<headCount {
                    let clean = source[0, .all, head]                      // [pos, d_head]
                    job(l * headCount + head, start: 0) { act, row, _ in act[row, .all, head] = clean }
                }
            case .headPatternAllPos:
                for head in 0..<h {
                    let clean = source[0, head]                            // [query_pos, key_pos]
                    job(l * h + head, start: 0) { act, row, _ in act[row, head] = clean }
                }
            case .headPatternByPos:
                for head in 0..<h {
                    for p in 0..<T {
                        let clean = source[0, head, p]                     // [key_pos]
                        job((l * h + head) * T + p, start: p) { act, row, s in act[row, head, p - s] = clean }
                    }
                }
            }
        }
        let results = try runPatchJobs(jobs, resultCount: shape.product, corruptCache: corruptCache, positions: T,
                                       scored: scored, metric: metric, progress: progress, isCancelled: isCancelled)
        return PatchResult(target: target, axes: target.axes, values: Tensor(unchecked: shape, results),
                           clean: cleanMetric, corrupted: corruptMetric)
    }

    /// The corrupted run's activations the job engine needs: each block's input residual, keys (after
    /// rotary, where there is one) and values.
    func patchEngineNames() -> Set<HookName> {
        let rotary = config.positional != .standard
        var names = Set<HookName>()
        for l in 0..<config.nLayers {
            names.insert(.residPre(l))
            names.insert(rotary ? .rotK(l) : .k(l))
            names.insert(.v(l))
        }
        return names
    }

    /// Runs patched copies of a corrupted run and scores each by `metric` at position `scored` (the last, in
    /// a causal model).
    ///
    /// A job's patches change nothing before block `layer`, and in a causal model nothing before position
    /// `start`, so it starts at that block from the corrupted residual stream, with the earlier positions'
    /// keys and values prefilled from the corrupted run. Jobs with the same block and the same half of the
    /// sequence share a batch; batches run two at a time with single-threaded BLAS. In a bidirectional
    /// model a patch reaches every position: each job runs the whole sequence from its block.
    func runPatchJobs(_ jobs: [PatchJob], resultCount: Int, corruptCache: ActivationCache, positions T: Int,
                      scored: Int, metric: PatchMetric, progress: ProgressHandler?,
                      isCancelled: (@Sendable () -> Bool)? = nil) throws -> [Float] {
        let (nL, d, v) = (config.nLayers, config.dModel, config.dVocab)
        let rotary = config.positional != .standard
        let both = config.bidirectional
        guard both || scored == T - 1 else { throw InterpError.invalid("a causal model's patching is scored at the last position") }
        // Large batches keep the GEMMs efficient; the second half of the sequence skips the unchanged first
        // half. (GPT-2-small, 16 tokens, resid_pre: halves 1.38–1.50 s, quarters 1.48 s, one batch 1.6 s.)
        let chunk = both ? T : max(1, T / 2)   // both ways: one group per block, from position 0
        let grouped = Dictionary(grouping: jobs) { [$0.layer, $0.start / chunk * chunk] }
        let groups = grouped.keys.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) }.map { ($0[0], $0[1], grouped[$0]!) }
        let outcome = Outcome(count: resultCount)
        let savedThreads = BLAS.threads
        let parallel = savedThreads > 1 && groups.count > 1
        if parallel { BLAS.setThreads(1) }
        defer { if parallel { BLAS.setThreads(savedThreads) } }
        DispatchQueue.concurrentPerform(iterations: groups.count) { g in
            guard !outcome.failed else { return }
            if isCancelled?() == true { outcome.fail(CancellationError()); return }
            let (l, s, group) = groups[g]
            do {
                let rows = group.count
                // The corrupted residual stream entering block l, positions s..<T, once per row.
                guard let resid = corruptCache[.residPre(l)] else { throw InterpError.invalid("missing corrupted resid_pre \(l)") }
                var input = uninitializedFloats(rows * (T - s) * d)
                for r in 0..<rows {
                    for i in 0..<((T - s) * d) { input[r * (T - s) * d + i] = resid.scalars[s * d + i] }
                }
                func prefix(_ name: HookName) throws -> Tensor {
                    guard let t = corruptCache[name] else { throw InterpError.invalid("missing corrupted \(name)") }
                    return try t.slice(0).slice(0..<s)
                }
                var hooks = Hooks()
                for name in Set(group.flatMap { $0.patches.keys }) {
                    hooks.add(name) { act, _ in
                        for (r, job) in group.enumerated() { job.patches[name]?(&act, r, s) }
                    }
                }
                var options = ForwardOptions(startAtLayer: l)
                let residual = ModelInput.residual(Tensor(unchecked: [rows, T - s, d], input))
                if both {
                    let logits = try run(residual, hooks: hooks, options: options)   // [rows, T, d_vocab]
                    outcome.set(group.enumerated().map { r, job in
                        (job.index, metric.evaluate(logits.scalars[((r * T + scored) * v)..<((r * T + scored + 1) * v)]))
                    })
                } else {
                    var kv = try KVCache(config: config, batch: rows,
                                         keys: (0..<nL).map { try prefix(rotary ? .rotK($0) : .k($0)) },
                                         values: (0..<nL).map { try prefix(.v($0)) })
                    options.lastPositionOnly = true
                    let logits = try run(residual, kvCache: &kv, hooks: hooks, options: options)   // [rows, 1, d_vocab]
                    outcome.set(group.enumerated().map { r, job in
                        (job.index, metric.evaluate(logits.scalars[(r * v)..<((r + 1) * v)]))
                    })
                }
                outcome.finished(progress: progress, of: groups.count)
            } catch {
                outcome.fail(error)
            }
        }
        if let error = outcome.error { throw error }
        return outcome.values
    }
}

/// One patched run: the result cell it fills, the first block and position it changes, and what it
/// does at each hook point (given the activation, its row in the batch, and the batch's first position).
struct PatchJob {
    let index: Int
    let layer: Int
    let start: Int
    let patches: [HookName: @Sendable (inout Tensor, Int, Int) -> Void]
}

extension HookedTransformer {
    /// Activation patching over a dataset of prompt pairs: each pair (clean and corrupted one length) is cut
    /// after its scored position (in a causal model; a bidirectional one reads the whole pair) and patched as `activationPatch(clean:corrupted:target:metric:)` does; the
    /// result is the mean metric of every cell, with the mean clean and corrupted metric (so `normalized` is
    /// the mean patched effect over the mean clean − corrupted difference, as the IOI paper averages).
    /// Pairs may differ in length for the targets over all positions (`resid_*`/`attn_out`/`mlp_out` are by
    /// position: those, and `--by-position` head targets, need pairs of one length up to the scored position).
    /// `progress` hears (pairs done, pairs).
    public func activationPatch(pairs: [PatchPair], target: PatchTarget, progress: ProgressHandler? = nil,
                                isCancelled: (@Sendable () -> Bool)? = nil) throws -> PatchResult {
        guard !pairs.isEmpty else { throw InterpError.invalid("patching a dataset needs at least one prompt pair") }
        let prepared = try pairs.enumerated().map { try $0.element.prepared(index: $0.offset, dVocab: config.dVocab, cut: !config.bidirectional) }
        let byPosition = target.axes.contains("pos") || target.axes.contains("dest_pos")
        let lengths = Set(prepared.map(\.clean.count))
        if byPosition && lengths.count > 1 {
            throw InterpError.invalid("patching \(target.rawValue) is by position: the pairs must have one length up to their scored positions, found lengths \(lengths.sorted()); patch a head target over all positions (z, q, k, v, pattern without --by-position) or give pairs of one length")
        }
        var sum: [Double] = []
        var shape: [Int] = []
        var clean = 0.0, corrupted = 0.0
        for (i, pair) in pairs.enumerated() {
            if isCancelled?() == true { throw CancellationError() }
            let one = try activationPatch(clean: prepared[i].clean, corrupted: prepared[i].corrupted, target: target,
                                          metric: pair.metric, position: prepared[i].scored, isCancelled: isCancelled)
            if sum.isEmpty { sum = [Double](repeating: 0, count: one.values.count); shape = one.values.shape }
            for (j, x) in one.values.scalars.enumerated() { sum[j] += Double(x) }
            clean += Double(one.clean)
            corrupted += Double(one.corrupted)
            progress?(i + 1, pairs.count)
        }
        let n = Double(pairs.count)
        return PatchResult(target: target, axes: target.axes, values: Tensor(unchecked: shape, sum.map { Float($0 / n) }),
                           clean: Float(clean / n), corrupted: Float(corrupted / n))
    }
}
