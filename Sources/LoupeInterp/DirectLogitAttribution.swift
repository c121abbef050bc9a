// Direct logit attribution: how much each component writes, directly, along the unembedding direction of
// an answer (minus a wrong answer), at one position, with the final norm's scale frozen from the run
// (Elhage et al. 2021; TransformerLens's `stack_head_results` / `decompose_resid` + `logit_attrs`).

import Foundation
import LoupeModels
import LoupeTensor

/// Direct contributions to a logit (difference).
public struct LogitAttribution: Sendable {
    /// `[n_layers, n_heads]`: each head's output (z · W_O, without b_O).
    public let heads: Tensor
    /// The residual decomposition: `embed`, `pos_embed` (if any), then `{l}_attn_out`, `{l}_mlp_out`.
    public let componentLabels: [String]
    public let components: [Float]
}

extension HookedTransformer {
    /// Attributes `logit[answer] − logit[wrong]` (or `logit[answer]` without `wrong`) at `position`
    /// (default: last) to heads and to the residual stream's components. Each contribution is centred
    /// (LayerNorm models) and divided by the final norm's scale from the run; the norm's weight, if not
    /// folded, is applied; biases (b_U, the norm's bias) are not attributed.
    public func directLogitAttribution(tokens: [Int], answer: Int, wrong: Int? = nil, position: Int? = nil) throws -> LogitAttribution {
        let (nL, h, dh, d, v) = (config.nLayers, config.nHeads, config.dHead, config.dModel, config.dVocab)
        let T = tokens.count
        let p = position ?? T - 1
        guard p >= 0 && p < T else { throw InterpError.outOfRange(what: "position", value: p, count: T) }
        for t in [answer] + (wrong.map { [$0] } ?? []) where t < 0 || t >= v {
            throw InterpError.tokenOutOfRange(token: t, dVocab: v)
        }
        // The direction in the normalized residual stream: W_U[:, answer] − W_U[:, wrong], times the norm's weight.
        var direction = (0..<d).map { i in weights.wU.scalars[i * v + answer] - (wrong.map { weights.wU.scalars[i * v + $0] } ?? 0) }
        if let w = weights.lnFinalW { for j in 0..<d { direction[j] *= w.scalars[j] } }
        var names: Set<HookName> = [.lnFinalScale, .embed]
        if config.positional == .standard { names.insert(.posEmbed) }
        for l in 0..<nL { names.formUnion(config.attnOnly ? [.z(l), .attnOut(l)] : [.z(l), .attnOut(l), .mlpOut(l)]) }
        let (_, cache) = try runWithCache(.tokens([tokens]), select: .names(names))
        guard let scale = cache[.lnFinalScale]?.scalars[p] else { throw InterpError.invalid("the final norm's scale was not cached") }
        let centre = config.centresNorm
        func attribute(_ x: ArraySlice<Float>) -> Float {
            let mean = centre ? x.reduce(0, +) / Float(d) : 0
            var s: Float = 0
            for (j, value) in x.enumerated() { s += (value - mean) * direction[j] }
            return s / scale
        }
        var heads = [Float](repeating: 0, count: nL * h)
        for l in 0..<nL {
            guard let z = cache[.z(l)] else { continue }
            let wO = weights.blocks[l].wO.scalars   // [head, d_head, d_model]
            for head in 0..<h {
                var out = [Float](repeating: 0, count: d)
                for j in 0..<dh {
                    let zj = z.scalars[(p * h + head) * dh + j]
                    for i in 0..<d { out[i] += zj * wO[(head * dh + j) * d + i] }
                }
                heads[l * h + head] = attribute(out[...])
            }
        }
        var labels: [String] = [], components: [Float] = []
        func add(_ label: String, _ hook: HookName) {
            guard let t = cache[hook] else { return }
            labels.append(label)
            components.append(attribute(t.scalars[(p * d)..<((p + 1) * d)]))
        }
        add("embed", .embed)
        if config.positional == .standard { add("pos_embed", .posEmbed) }
        for l in 0..<nL {
            add("\(l)_attn_out", .attnOut(l))
            if !config.attnOnly { add("\(l)_mlp_out", .mlpOut(l)) }
        }
        return LogitAttribution(heads: Tensor(unchecked: [nL, h], heads), componentLabels: labels, components: components)
    }
}
