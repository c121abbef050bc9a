// Attribution patching (Nanda, "Attribution Patching: Activation Patching At Industrial Scale"): the
// linear approximation of activation patching. One forward and backward pass on the corrupted prompt
// gives the metric's gradient at every hook point; patching activation A from the clean run changes the
// metric by about (A_clean − A_corrupted) · ∂metric/∂A. Results have the shapes of `activationPatch`, and
// their values are the corrupted metric plus that estimate, so the two can be compared cell by cell.

import Foundation
import LoupeModels
import LoupeTensor

extension HookedTransformer {
    /// Attribution-patching estimates for each target, from one clean forward pass and one corrupted
    /// forward + backward pass.
    /// - Throws: `InterpError` for mismatched prompts or out-of-range tokens, `ModelError.unsupported` for
    ///   a custom metric (it has no gradient) or a model the tape does not support.
    public func attributionPatch(clean: [Int], corrupted: [Int], targets: [PatchTarget], metric: PatchMetric) throws -> [PatchResult] {
        guard clean.count == corrupted.count else {
            throw InterpError.lengthMismatch(clean: clean.count, corrupted: corrupted.count)
        }
        for t in metric.tokens() where t < 0 || t >= config.dVocab {
            throw InterpError.tokenOutOfRange(token: t, dVocab: config.dVocab)
        }
        let (nL, h, kvh, dh, d) = (config.nLayers, config.nHeads, config.nKeyValueHeads, config.dHead, config.dModel)
        let T = clean.count, v = config.dVocab
        var names = Set<HookName>()
        for target in targets { for l in 0..<nL { names.insert(target.hook(l)) } }
        let (cleanLogits, cleanCache) = try runWithCache(.tokens([clean]), select: .names(names))
        let cleanMetric = metric.evaluate(cleanLogits.scalars[((T - 1) * v)..<(T * v)])

        let run = try differentiableRun([corrupted], capture: names)
        let last = run.logits.value.scalars[((T - 1) * v)..<(T * v)]
        let corruptMetric = metric.evaluate(last)
        let m = try differentiableMetric(metric, logits: run.logits, row: T - 1)
        try m.backward()

        var results: [PatchResult] = []
        for target in targets {
            let heads = [.headKAllPos, .headVAllPos, .headKByPos, .headVByPos].contains(target) ? kvh : h
            var out: [Float]
            let shape: [Int]
            switch target.axes {
            case ["layer", "pos"]: shape = [nL, T]
            case ["layer", "head"]: shape = [nL, heads]
            case ["layer", "pos", "head"]: shape = [nL, T, heads]
            default: shape = [nL, h, T]
            }
            out = [Float](repeating: 0, count: shape.product)
            for l in 0..<nL {
                let name = target.hook(l)
                guard let a = run.activations[name], let cleanAct = cleanCache[name] else {
                    throw InterpError.invalid("\(name) was not captured")
                }
                let grad = a.grad.scalars, corruptAct = a.value.scalars, c = cleanAct.scalars
                func term(_ i: Int) -> Float { (c[i] - corruptAct[i]) * grad[i] }
                switch target {
                case .residPre, .residMid, .residPost, .attnOut, .mlpOut:
                    for p in 0..<T { for j in 0..<d { out[l * T + p] += term(p * d + j) } }
                case .headOutAllPos, .headQAllPos, .headKAllPos, .headVAllPos:
                    for p in 0..<T { for hh in 0..<heads { for j in 0..<dh { out[l * heads + hh] += term((p * heads + hh) * dh + j) } } }
                case .headOutByPos, .headQByPos, .headKByPos, .headVByPos:
                    for p in 0..<T { for hh in 0..<heads { for j in 0..<dh { out[(l * T + p) * heads + hh] += term((p * heads + hh) * dh + j) } } }
                case .headPatternAllPos:   // pattern [1, heads, T, T]
                    for hh in 0..<h { for i in 0..<(T * T) { out[l * h + hh] += term(hh * T * T + i) } }
                case .headPatternByPos:
                    for hh in 0..<h { for q in 0..<T { for k in 0..<T { out[(l * h + hh) * T + q] += term((hh * T + q) * T + k) } } }
                }
            }
            results.append(PatchResult(target: target, axes: target.axes,
                                       values: Tensor(unchecked: shape, out.map { corruptMetric + $0 }),
                                       clean: cleanMetric, corrupted: corruptMetric))
        }
        return results
    }

    /// The metric as a scalar on the tape, from one row of `logits [1, pos, d_vocab]`.
    private func differentiableMetric(_ metric: PatchMetric, logits: Variable, row: Int) throws -> Variable {
        let v = config.dVocab
        switch metric {
        case .logitDifference(let a, let b):
            let pair = try logits.gathering(flatIndices: [row * v + a, row * v + b])
            return try (pair * Variable(Tensor([1, -1]))).sum()
        case .probability(let t):
            let rowLogits = try logits.gathering(flatIndices: Array((row * v)..<((row + 1) * v)))
            return try rowLogits.softmax().gathering(flatIndices: [t]).sum()
        case .loss(let t):
            let rowLogits = try logits.gathering(flatIndices: Array((row * v)..<((row + 1) * v))).reshaped([1, v])
            return try rowLogits.crossEntropy(targets: [t])
        case .custom:
            throw ModelError.unsupported("attribution patching needs a differentiable metric: logit difference, probability or loss")
        }
    }
}

/// Pearson correlation of two equally long lists (0 when either is constant).
public func pearsonCorrelation(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count, a.count > 1 else { return 0 }
    let n = Double(a.count)
    let ma = a.reduce(0.0) { $0 + Double($1) } / n, mb = b.reduce(0.0) { $0 + Double($1) } / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for (x, y) in zip(a, b) {
        let dx = Double(x) - ma, dy = Double(y) - mb
        sab += dx * dy; saa += dx * dx; sbb += dy * dy
    }
    return saa > 0 && sbb > 0 ? Float(sab / (saa * sbb).squareRoot()) : 0
}
