// Path patching (Wang et al. 2022, "Interpretability in the Wild"; Goldowsky-Dill et al. 2023): the effect
// of sender heads on receivers through the direct path only. On the clean input, a sender head's output
// is replaced by its corrupted value while every other head's output is frozen at its clean value (MLPs
// recompute); what the receivers see in that run is then patched into a clean run and scored.
//
// Fast by design: nothing before the sender's block changes, so run 1 starts at the sender's block from
// the clean residual stream, with the block's heads as the rows of one batch (row r: head r is the
// sender); it stops after the last receiver's block. Run 2 starts at the first receiver's block. Only the
// last position is unembedded.

import Foundation
import LoupeModels
import LoupeTensor

/// Where path patching measures a sender's effect.
public enum PathReceiver: Sendable, Equatable {
    /// The final residual stream (the logits): the senders' direct effect.
    case logits
    /// Given heads' queries, keys or values (the inputs `q`, `k`, `v`), all in one layer.
    case heads(layer: Int, heads: [Int], input: HeadInput)
    /// Heads in any layers, each with the input it receives through; `position` says whether the receivers
    /// take the patched input at every position or only at the scored one (the IOI paper's name movers'
    /// queries at END).
    case headInputs([ReceiverHead], position: ReceiverPosition)

    public enum HeadInput: String, Sendable, CaseIterable { case q, k, v }
    public enum ReceiverPosition: String, Sendable, Equatable { case all, scored }

    /// `logits`, or `LAYER:HEADS:q|k|v` (e.g. `9:6,9:q`: heads 6 and 9 of layer 9 through their queries).
    public init(parsing text: String) throws {
        if text == "logits" { self = .logits; return }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let layer = Int(parts[0]), let input = HeadInput(rawValue: String(parts[2])) else {
            throw InterpError.invalid("a receiver is logits or LAYER:HEADS:q|k|v (e.g. 9:6,9:q), found '\(text)'")
        }
        let heads = try parts[1].split(separator: ",", omittingEmptySubsequences: false).map { s -> Int in
            guard let h = Int(s) else { throw InterpError.invalid("receiver '\(text)': '\(s)' is not a head index") }
            return h
        }
        self = .heads(layer: layer, heads: heads, input: input)
    }

    /// A receiving head and the input it is patched through.
    public struct ReceiverHead: Sendable, Equatable, Hashable {
        public var layer: Int
        public var head: Int
        public var input: HeadInput
        public init(layer: Int, head: Int, input: HeadInput) { self.layer = layer; self.head = head; self.input = input }
    }

    /// The receivers as a list (empty for the logits) and where they are patched.
    var receivers: (heads: [ReceiverHead], position: ReceiverPosition) {
        switch self {
        case .logits: return ([], .all)
        case .heads(let layer, let heads, let input): return (heads.map { ReceiverHead(layer: layer, head: $0, input: input) }, .all)
        case .headInputs(let heads, let position): return (heads, position)
        }
    }
}

/// One clean/corrupted pair of a patching dataset, scored at `position`.
public struct PatchPair: Sendable {
    public var clean: [Int]
    public var corrupted: [Int]
    public var metric: PatchMetric
    /// The position whose prediction is scored (negative: from the end); nil = the last. Positions after it
    /// cannot change that prediction, so they are left out of every run.
    public var position: Int?

    public init(clean: [Int], corrupted: [Int], metric: PatchMetric, position: Int? = nil) {
        self.clean = clean
        self.corrupted = corrupted
        self.metric = metric
        self.position = position
    }

    /// Both prompts, checked, and cut after the scored position unless `cut` is false (a bidirectional model,
    /// where later positions matter); `scored` is the scored position in what is returned.
    func prepared(index: Int, dVocab: Int, cut: Bool = true) throws -> (clean: [Int], corrupted: [Int], scored: Int) {
        guard !clean.isEmpty else { throw InterpError.invalid("pair \(index + 1): the clean prompt has no tokens") }
        guard clean.count == corrupted.count else {
            throw InterpError.invalid("pair \(index + 1): " + InterpError.lengthMismatch(clean: clean.count, corrupted: corrupted.count).description)
        }
        for t in metric.tokens() where t < 0 || t >= dVocab { throw InterpError.tokenOutOfRange(token: t, dVocab: dVocab) }
        let p = position ?? -1
        let q = p < 0 ? clean.count + p : p
        guard (0..<clean.count).contains(q) else {
            throw InterpError.invalid("pair \(index + 1): the scored position \(p) is outside the prompt's \(clean.count) tokens")
        }
        return cut ? (Array(clean[...q]), Array(corrupted[...q]), q) : (clean, corrupted, q)
    }
}

extension HookedTransformer {
    /// Path patching from every head (as the sender) to `receiver`: `[n_layers, n_heads]` of the metric
    /// (at the last position), run on `clean` with the senders' outputs from `corrupted`. Senders at or
    /// after the last receiver's layer have no path to it: their cells hold the clean metric.
    public func pathPatch(clean: [Int], corrupted: [Int], receiver: PathReceiver, metric: PatchMetric,
                          progress: ((Int, Int) -> Void)? = nil) throws -> PatchResult {
        guard clean.count == corrupted.count else {
            throw InterpError.lengthMismatch(clean: clean.count, corrupted: corrupted.count)
        }
        return try pathPatch(pairs: [PatchPair(clean: clean, corrupted: corrupted, metric: metric)], receiver: receiver,
                             progress: progress)
    }

    /// Path patching over a dataset of prompt pairs (each pair one length; pairs may differ, and each is
    /// scored at its own position): the mean metric of every sender, and the mean clean and corrupted metric.
    /// `progress` hears (sender layers done, sender layers in all).
    public func pathPatch(pairs: [PatchPair], receiver: PathReceiver, progress: ((Int, Int) -> Void)? = nil,
                          isCancelled: (@Sendable () -> Bool)? = nil) throws -> PatchResult {
        guard !pairs.isEmpty else { throw InterpError.invalid("path patching needs at least one prompt pair") }
        guard !config.bidirectional else {
            throw InterpError.invalid("path patching runs causal models (it reuses the corrupted run's keys and values before the scored position); \(config.architecture) attends both ways: use activation patching")
        }
        let (nL, h) = (config.nLayers, config.nHeads)
        let (receivers, _) = receiver.receivers
        if case .headInputs(let list, _) = receiver, list.isEmpty { throw InterpError.invalid("path patching to heads needs at least one receiver head") }
        for r in receivers {
            guard r.layer >= 0 && r.layer < nL else { throw InterpError.outOfRange(what: "receiver layer", value: r.layer, count: nL) }
            let count = r.input == .q ? h : config.nKeyValueHeads
            guard r.head >= 0 && r.head < count else { throw InterpError.outOfRange(what: "receiver head", value: r.head, count: count) }
        }
        let prepared = try pairs.enumerated().map { try $0.element.prepared(index: $0.offset, dVocab: config.dVocab) }
        let senderLayers = receivers.isEmpty ? nL : (receivers.map(\.layer).max() ?? 0)
        var sum = [Double](repeating: 0, count: nL * h)
        var clean = 0.0, corrupted = 0.0
        let steps = pairs.count * max(senderLayers, 1)
        for (i, pair) in pairs.enumerated() {
            let one = try pathPatchOne(clean: prepared[i].clean, corrupted: prepared[i].corrupted, receiver: receiver,
                                       metric: pair.metric) { done in
                if isCancelled?() == true { throw CancellationError() }
                progress?(i * max(senderLayers, 1) + done, steps)
            }
            for (j, x) in one.values.enumerated() { sum[j] += Double(x) }
            clean += Double(one.clean)
            corrupted += Double(one.corrupted)
        }
        let n = Double(pairs.count)
        return PatchResult(target: .headOutAllPos, axes: ["layer", "head"], values: Tensor(unchecked: [nL, h], sum.map { Float($0 / n) }),
                           clean: Float(clean / n), corrupted: Float(corrupted / n))
    }

    /// One pair (already cut after the scored position): each sender layer's heads as one batch.
    private func pathPatchOne(clean: [Int], corrupted: [Int], receiver: PathReceiver, metric: PatchMetric,
                              layerDone: (Int) throws -> Void) throws -> (values: [Float], clean: Float, corrupted: Float) {
        let (nL, h, v) = (config.nLayers, config.nHeads, config.dVocab)
        let T = clean.count
        let (receivers, receiverPosition) = receiver.receivers
        let firstReceiver = receivers.map(\.layer).min() ?? nL
        let lastReceiver = receivers.map(\.layer).max() ?? nL
        var names = Set((0..<nL).map { HookName.z($0) })
        for l in 0..<nL { names.insert(.residPre(l)) }
        let (cleanLogits, cleanCache) = try runWithCache(.tokens([clean]), select: .names(names))
        let (corruptLogits, corruptCache) = try runWithCache(.tokens([corrupted]), select: .names(Set((0..<nL).map { HookName.z($0) })))
        let score = { (logits: Tensor, row: Int, rowLength: Int) in metric.evaluate(logits.scalars[((row + 1) * rowLength - 1) * v..<((row + 1) * rowLength * v)]) }
        let cleanMetric = score(cleanLogits, 0, T), corruptMetric = score(corruptLogits, 0, T)
        var results = [Float](repeating: cleanMetric, count: nL * h)
        func cached(_ cache: ActivationCache, _ name: HookName) throws -> Tensor {
            guard let t = cache[name] else { throw InterpError.invalid("\(name) was not cached") }
            return t
        }
        func replicated(_ t: Tensor, rows: Int) -> Tensor {       // [1, …] → [rows, …]
            var out = uninitializedFloats(rows * t.count)
            for r in 0..<rows { for i in 0..<t.count { out[r * t.count + i] = t.scalars[i] } }
            return Tensor(unchecked: [rows] + t.shape.dropFirst(), out)
        }
        let dHead = config.dHead
        for sl in 0..<min(lastReceiver, nL) {
            let rows = h
            // Run 1: clean input from block sl on; row r's head r of block sl corrupted, every other head frozen.
            var hooks = Hooks()
            for l in sl..<min(lastReceiver, nL) {
                let cleanZ = try cached(cleanCache, .z(l))            // [1, pos, head_index, d_head]
                let corruptZ = l == sl ? try cached(corruptCache, .z(l)) : nil
                hooks.add(.z(l)) { z, _ in
                    z.scalars.withUnsafeMutableBufferPointer { p in
                        let n = cleanZ.count
                        for r in 0..<rows {
                            for i in 0..<n { p[r * n + i] = cleanZ.scalars[i] }
                            if let corruptZ {
                                for pos in 0..<T {
                                    let at = (pos * h + r) * dHead
                                    for j in 0..<dHead { p[r * n + at + j] = corruptZ.scalars[at + j] }
                                }
                            }
                        }
                    }
                }
            }
            let input = replicated(try cached(cleanCache, .residPre(sl)), rows: rows)
            if receivers.isEmpty {
                var options = ForwardOptions(startAtLayer: sl)
                options.lastPositionOnly = true
                let logits = try run(.residual(input), hooks: hooks, options: options)   // [rows, 1, d_vocab]
                for r in 0..<rows { results[sl * h + r] = score(logits, r, 1) }
            } else {
                // What the receivers see in run 1.
                // Receivers in block sl or before see the clean input already.
                let reached = receivers.filter { $0.layer > sl }
                let inputNames = Set(reached.map { inputHook($0) })
                let (_, seen) = try runWithCache(.residual(input), select: .names(inputNames), hooks: hooks,
                                                 options: ForwardOptions(startAtLayer: sl, stopAtLayer: lastReceiver + 1))
                // Run 2: clean from the first receiver's block, the receivers' inputs as run 1 left them.
                var receive = Hooks()
                for name in inputNames {
                    let got = try cached(seen, name)                   // [rows, pos, heads, d_head]
                    let heads = reached.filter { inputHook($0) == name }.map(\.head)
                    let hs = got.shape[2]
                    receive.add(name) { act, _ in
                        act.scalars.withUnsafeMutableBufferPointer { p in
                            let positions = receiverPosition == .all ? Array(0..<T) : [T - 1]
                            for r in 0..<rows {
                                for pos in positions {
                                    for head in heads {
                                        let at = ((r * T + pos) * hs + head) * dHead
                                        for j in 0..<dHead { p[at + j] = got.scalars[at + j] }
                                    }
                                }
                            }
                        }
                    }
                }
                let first = max(firstReceiver, sl + 1)
                var options = ForwardOptions(startAtLayer: first)
                options.lastPositionOnly = true
                let start = replicated(try cached(cleanCache, .residPre(first)), rows: rows)
                let logits = try run(.residual(start), hooks: receive, options: options)
                for r in 0..<rows { results[sl * h + r] = score(logits, r, 1) }
            }
            try layerDone(sl + 1)
        }
        return (results, cleanMetric, corruptMetric)
    }

    private func inputHook(_ r: PathReceiver.ReceiverHead) -> HookName {
        switch r.input {
        case .q: return .q(r.layer)
        case .k: return .k(r.layer)
        case .v: return .v(r.layer)
        }
    }
}
