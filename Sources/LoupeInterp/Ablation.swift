// Ablation: knock one activation out and measure what the model loses, over a dataset of prompts.
// - zero: the activation (or one head's slice of it, or one position's) set to 0;
// - mean: set to its mean over the dataset (every prompt and position): the part that carries information
//   about the particular input is removed, the average contribution is kept;
// - resample: set to the same activation on another prompt of the dataset (a seeded derangement, same
//   position): the causal-scrubbing view, which keeps the activation on-distribution.
// Scored per prompt at its last position by a `PatchMetric` (logit difference, log-probability, …).
// Positions may be negative (−1: each prompt's last token), so prompts of different lengths share a site.

import Foundation
import LoupeModels
import LoupeTensor

public enum AblationKind: String, CaseIterable, Sendable, Codable { case zero, mean, resample }

/// Where to ablate: a hook, optionally one head (hooks with a head axis: q, k, v, z, result, pattern, scores)
/// and one position (negative: counted from each prompt's end).
public struct AblationSite: Sendable, Hashable, CustomStringConvertible {
    public var hook: HookName
    public var head: Int?
    public var position: Int?

    public init(hook: HookName, head: Int? = nil, position: Int? = nil) {
        self.hook = hook
        self.head = head
        self.position = position
    }

    public var description: String {
        hook.description + (head.map { " head \($0)" } ?? "") + (position.map { " position \($0)" } ?? "")
    }

    /// Attention patterns and scores are `[batch, head, query, key]`; everything else `[batch, pos, …]`.
    var isPattern: Bool {
        switch hook {
        case .pattern, .attnScores: return true
        default: return false
        }
    }
}

/// One prompt of an ablation dataset and how its last position is scored.
public struct AblationExample: Sendable {
    public var tokens: [Int]
    public var metric: PatchMetric
    public init(tokens: [Int], metric: PatchMetric) { self.tokens = tokens; self.metric = metric }
}

public struct AblationResult: Sendable {
    public let site: AblationSite
    public let kind: AblationKind
    /// Each prompt's metric, unablated and ablated.
    public let clean: [Float]
    public let ablated: [Float]
    public var meanClean: Float { clean.isEmpty ? 0 : clean.reduce(0, +) / Float(clean.count) }
    public var meanAblated: Float { ablated.isEmpty ? 0 : ablated.reduce(0, +) / Float(ablated.count) }
}

extension HookedTransformer {
    /// Ablates `site` on every example; `seed` orders the resampling.
    /// - Throws: `InterpError` for an empty dataset, a head or position out of range, mean or resample ablation of
    ///   attention patterns (whose sizes differ from prompt to prompt), resampling prompts of different lengths
    ///   or a dataset of one; `HookError` for an unknown hook; `ModelError` for bad tokens.
    public func ablate(_ site: AblationSite, kind: AblationKind, examples: [AblationExample], seed: UInt64 = 0) throws -> AblationResult {
        guard !examples.isEmpty else { throw InterpError.invalid("an ablation needs at least one prompt") }
        try checkHook(site.hook)
        for e in examples { for t in e.metric.tokens() where t < 0 || t >= config.dVocab { throw InterpError.tokenOutOfRange(token: t, dVocab: config.dVocab) } }
        if site.isPattern && kind != .zero {
            throw InterpError.invalid("\(kind.rawValue) ablation of \(site.hook) is not defined (patterns of prompts of different lengths have different sizes); ablate the head's hook_z instead")
        }
        // The clean runs, keeping the hook (for means, resampling and the shape checks).
        var cached: [Tensor] = [], clean: [Float] = []
        for e in examples {
            let (logits, cache) = try runWithCache(.tokens([e.tokens]), select: .names([site.hook]))
            guard let a = cache[site.hook] else { throw InterpError.invalid("\(site.hook) was not computed") }
            cached.append(a)
            clean.append(e.metric.evaluate(Self.lastRow(logits, config.dVocab)))
        }
        for (e, a) in zip(examples, cached) { _ = try Self.units(of: a, site: site, length: e.tokens.count) }

        var replacement: [@Sendable (Int, Int) -> ArraySlice<Float>?] = []   // per example: (start, length) → values; nil = 0
        switch kind {
        case .zero:
            replacement = examples.map { _ in { _, _ in nil } }
        case .mean:
            var sum: [Double] = [], count = 0
            for (e, a) in zip(examples, cached) {
                let allPositions = AblationSite(hook: site.hook, head: site.head, position: nil)
                for (start, n) in try Self.units(of: a, site: allPositions, length: e.tokens.count) {
                    if sum.isEmpty { sum = [Double](repeating: 0, count: n) }
                    for j in 0..<n { sum[j] += Double(a.scalars[start + j]) }
                    count += 1
                }
            }
            let mean = sum.map { Float($0 / Double(max(count, 1))) }
            replacement = examples.map { _ in { _, _ in mean[...] } }
        case .resample:
            guard examples.count >= 2 else { throw InterpError.invalid("resample ablation needs at least two prompts to resample from") }
            let lengths = Set(examples.map(\.tokens.count))
            guard lengths.count == 1 else {
                throw InterpError.invalid("resample ablation takes each activation from another prompt at the same position: the prompts must have one length, found \(lengths.sorted())")
            }
            let source = Self.derangement(examples.count, seed: seed)
            // Units are read from the source at the same offsets (same length, same shape).
            replacement = examples.indices.map { i in
                let other = cached[source[i]].scalars
                return { start, n in other[start..<(start + n)] }
            }
        }

        var ablated: [Float] = []
        for (i, e) in examples.enumerated() {
            let units = try Self.units(of: cached[i], site: site, length: e.tokens.count)
            let fill = replacement[i]
            var hooks = Hooks()
            hooks.add(site.hook) { a, _ in
                a.scalars.withUnsafeMutableBufferPointer { p in
                    for (start, n) in units {
                        if let values = fill(start, n) {
                            for (j, x) in values.enumerated() { p[start + j] = x }
                        } else {
                            for j in 0..<n { p[start + j] = 0 }
                        }
                    }
                }
            }
            let logits = try run(.tokens([e.tokens]), hooks: hooks)
            ablated.append(e.metric.evaluate(Self.lastRow(logits, config.dVocab)))
        }
        return AblationResult(site: site, kind: kind, clean: clean, ablated: ablated)
    }

    /// Every head's `hook_z` ablated in turn: `[layer][head]` mean ablated metric.
    public func ablateEveryHead(kind: AblationKind, examples: [AblationExample], position: Int? = nil, seed: UInt64 = 0,
                                progress: ProgressHandler? = nil) throws -> (clean: Float, ablated: [[Float]]) {
        var grid: [[Float]] = []
        var clean: Float = 0
        for l in 0..<config.nLayers {
            var row: [Float] = []
            for h in 0..<config.nHeads {
                let r = try ablate(AblationSite(hook: .z(l), head: h, position: position), kind: kind, examples: examples, seed: seed)
                clean = r.meanClean
                row.append(r.meanAblated)
                progress?(l * config.nHeads + h + 1, config.nLayers * config.nHeads)
            }
            grid.append(row)
        }
        return (clean, grid)
    }

    static func lastRow(_ logits: Tensor, _ v: Int) -> ArraySlice<Float> {
        logits.scalars[(logits.count - v)..<logits.count]
    }

    /// The (flat start, length) of each slice the site covers in one prompt's activation `[1, …]`.
    static func units(of a: Tensor, site: AblationSite, length: Int) throws -> [(Int, Int)] {
        let shape = a.shape
        func position(_ p: Int, _ count: Int) throws -> Int {
            let q = p < 0 ? count + p : p
            guard (0..<count).contains(q) else { throw InterpError.outOfRange(what: "position", value: p, count: count) }
            return q
        }
        if site.isPattern {   // [1, heads, query, key]
            guard shape.count == 4 else { throw InterpError.invalid("\(site.hook) has shape \(shape), expected [1, heads, query, key]") }
            let (heads, q, k) = (shape[1], shape[2], shape[3])
            let hs = try site.head.map { h -> [Int] in
                guard (0..<heads).contains(h) else { throw InterpError.outOfRange(what: "head", value: h, count: heads) }
                return [h]
            } ?? Array(0..<heads)
            let ps = try site.position.map { [try position($0, q)] } ?? Array(0..<q)
            return hs.flatMap { h in ps.map { p in ((h * q + p) * k, k) } }
        }
        guard shape.count >= 3, shape[0] == 1 else { throw InterpError.invalid("\(site.hook) has shape \(shape), expected [1, positions, …]") }
        let positions = shape[1]
        let perPosition = shape.dropFirst(2).reduce(1, *)
        var offset = 0, width = perPosition
        if let h = site.head {
            guard shape.count == 4 else { throw InterpError.invalid("\(site.hook) has no head axis (shape \(shape)); leave out the head") }
            guard (0..<shape[2]).contains(h) else { throw InterpError.outOfRange(what: "head", value: h, count: shape[2]) }
            width = shape[3]
            offset = h * width
        }
        let ps = try site.position.map { [try position($0, positions)] } ?? Array(0..<positions)
        return ps.map { p in (p * perPosition + offset, width) }
    }

    /// A permutation with no fixed point (n ≥ 2), seeded: Sattolo's shuffle.
    static func derangement(_ n: Int, seed: UInt64) -> [Int] {
        var p = Array(0..<n)
        var rng = SeededGenerator(seed: seed, stream: 7)
        for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, rng.nextInt(i)) }
        return p
    }
}
