// Path patching (Wang et al. 2022, "Interpretability in the Wild"; Goldowsky-Dill et al. 2023): the effect
// of sender heads on receivers through the direct path only. On the clean input, a sender head's output
// is replaced by its corrupted value while every other head's output is frozen at its clean value (MLPs
// recompute); what the receivers see in that run is then patched into a clean run and scored.

import Foundation
import LoupeModels
import LoupeTensor

/// Where path patching measures a sender's effect.
public enum PathReceiver: Sendable, Equatable {
    /// The final residual stream (the logits): the senders' direct effect.
    case logits
    /// Given heads' queries, keys or values (the inputs `q`, `k`, `v`), all in one layer.
    case heads(layer: Int, heads: [Int], input: HeadInput)

    public enum HeadInput: String, Sendable, CaseIterable { case q, k, v }
}

extension HookedTransformer {
    /// Path patching from every head (as the sender) to `receiver`: `[n_layers, n_heads]` of the metric
    /// (at the last position), run on `clean` with the senders' outputs from `corrupted`. Senders at or
    /// after a receiver head's layer have no path to it: their cells hold the clean metric.
    public func pathPatch(clean: [Int], corrupted: [Int], receiver: PathReceiver, metric: PatchMetric,
                          progress: ((Int, Int) -> Void)? = nil) throws -> PatchResult {
        guard clean.count == corrupted.count else {
            throw InterpError.lengthMismatch(clean: clean.count, corrupted: corrupted.count)
        }
        for t in metric.tokens() where t < 0 || t >= config.dVocab { throw InterpError.tokenOutOfRange(token: t, dVocab: config.dVocab) }
        let (nL, h, v) = (config.nLayers, config.nHeads, config.dVocab)
        let T = clean.count
        var receiverLayer = nL
        if case .heads(let layer, let heads, let input) = receiver {
            guard layer >= 0 && layer < nL else { throw InterpError.outOfRange(what: "receiver layer", value: layer, count: nL) }
            let count = input == .q ? h : config.nKeyValueHeads
            for head in heads where head < 0 || head >= count {
                throw InterpError.outOfRange(what: "receiver head", value: head, count: count)
            }
            receiverLayer = layer
        }
        let zNames = Set((0..<nL).map { HookName.z($0) })
        let (cleanLogits, cleanCache) = try runWithCache(.tokens([clean]), select: .names(zNames))
        let (corruptLogits, corruptCache) = try runWithCache(.tokens([corrupted]), select: .names(zNames))
        let score = { (logits: Tensor) in metric.evaluate(logits.scalars[((T - 1) * v)..<(T * v)]) }
        let cleanMetric = score(cleanLogits), corruptMetric = score(corruptLogits)
        var results = [Float](repeating: cleanMetric, count: nL * h)
        let senders = (0..<min(receiverLayer, nL)).flatMap { l in (0..<h).map { (l, $0) } }
        for (i, (sl, sh)) in senders.enumerated() {
            progress?(i, senders.count)
            // Run 1 (clean input): the sender's z from the corrupted run, every other head frozen at clean.
            var hooks = Hooks()
            for l in 0..<nL {
                guard let cleanZ = cleanCache[.z(l)], let corruptZ = corruptCache[.z(l)] else { continue }
                var frozen = cleanZ                                    // [1, pos, head_index, d_head]
                if l == sl { frozen[.all, .all, sh] = corruptZ[.all, .all, sh] }
                hooks.add(.z(l), Hooks.replace(with: frozen))
            }
            switch receiver {
            case .logits:
                results[sl * h + sh] = score(try run(.tokens([clean]), hooks: hooks))
            case .heads(let layer, let heads, let input):
                // Run 2 (clean input): the receivers' inputs as run 1 left them.
                let name: HookName = input == .q ? .q(layer) : input == .k ? .k(layer) : .v(layer)
                let (_, patched) = try runWithCache(.tokens([clean]), select: .names([name]), hooks: hooks)
                guard let received = patched[name] else { continue }
                var receive = Hooks()
                receive.add(name) { act, _ in                          // [1, pos, head_index, d_head]
                    for head in heads { act[.all, .all, head] = received[.all, .all, head] }
                }
                results[sl * h + sh] = score(try run(.tokens([clean]), hooks: receive))
            }
        }
        return PatchResult(target: .headOutAllPos, axes: ["layer", "head"], values: Tensor(unchecked: [nL, h], results),
                           clean: cleanMetric, corrupted: corruptMetric)
    }
}
