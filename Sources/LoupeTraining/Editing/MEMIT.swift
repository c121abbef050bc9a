// MEMIT, Mass-Editing Memory in a Transformer (Meng, Sen Sharma, Andonian, Belinkov & Bau 2023): many facts
// at once, spread over a range of MLPs.
//
// 1. For each fact, z: the residual after the range's last block (`blocks.L.hook_resid_post`) at the subject's
//    last token, optimised as ROME's v* (NLL of the target, KL on "{subject} is a", decay, norm clamp — MEMIT's
//    default clamp is 0.75 ‖v‖).
// 2. For each layer l of the range, in order, with the earlier layers already edited: the keys K `[d_mlp, N]`
//    (each fact's key at the subject: the bare prompt's and the contexts' mean, averaged), the residual still
//    missing at the last layer R = (z − h_L) / (layers left), and the update
//    ΔW_out = (λC + KKᵀ)⁻¹K Rᵀ — the least-squares change that writes R at the new keys while λC, the
//    second moment of the keys over a corpus weighted as λ earlier keys, holds the old ones.
// Reference: github.com/kmeng01/memit (memit/memit_main.py `execute_memit`, compute_z.py, compute_ks.py;
// hparams/MEMIT/gpt2-xl.json: λ = 20000, clamp 0.75, layers 13–17 of 48).

import Foundation
import LoupeModels
import LoupeTensor

/// MEMIT's settings; the optimisation of z takes ROME's (`value`), with MEMIT's clamp.
public struct MEMITSettings: Sendable, Equatable {
    /// The blocks whose MLP output matrices are rewritten, in increasing order.
    public var layers: [Int]
    /// λ, the weight of the keys' second moment against the new keys (nil: 2 × d_mlp). The paper's values,
    /// 15000 for GPT-J (d_mlp 16384) and 20000 for GPT-2 XL (6400), are 0.9 and 3.1 times the MLP's width, and
    /// the share of the missing residual a layer writes, kᵀ(λC + kkᵀ)⁻¹k ≈ (kᵀC⁻¹k/λ)/(1 + kᵀC⁻¹k/λ) with
    /// kᵀC⁻¹k ≈ d_mlp for a typical key, depends on λ relative to the width; 20000 on SmolLM2 (1536) writes 7%.
    public var covarianceWeight: Double?
    /// Steps, learning rate, KL, decay, clamp and contexts of the z optimisation (its `layer` is ignored).
    public var value: ROMESettings

    public init(layers: [Int]) {
        self.layers = layers
        value = ROMESettings(layer: layers.last ?? 0)
        value.clampNormFactor = 0.75
        value.contexts = [ROMESettings.ContextLength(tokens: 10, count: 5)]
    }

    func validate(_ c: ModelConfig) throws {
        guard !layers.isEmpty, layers == layers.sorted(), Set(layers).count == layers.count else {
            throw EditError.invalid("MEMIT needs distinct layers in increasing order, found \(layers)")
        }
        for l in layers where !(0..<c.nLayers).contains(l) { throw EditError.invalid("layer \(l) is out of range 0..<\(c.nLayers)") }
        if let l = covarianceWeight, !(l >= 0 && l.isFinite) { throw EditError.invalid("λ must be ≥ 0, found \(l)") }
    }
}

/// What MEMIT computed: each fact's z and optimisation, each layer's update.
public struct MEMITEdit: Sendable {
    public struct LayerUpdate: Sendable {
        public let layer: Int
        /// ΔW_out `[d_mlp · d_model]` row-major.
        public let delta: [Float]
        /// ‖z − h_L‖ averaged over the facts before this layer's update.
        public let meanResidual: Float
    }
    public let layers: [LayerUpdate]
    public let zs: [[Float]]
    public let steps: [[ROMEStep]]
}

public enum MEMIT {
    /// Edits `model` with every request; returns the edited model and what was done. `secondMoments[l]` is C at
    /// `blocks.l.mlp.hook_post` (`[d_mlp · d_mlp]`); a missing one is the identity.
    public static func apply(model: HookedTransformer, requests: [ROMETokenRequest], secondMoments: [Int: [Double]],
                             settings s: MEMITSettings, progress: ((Int, ROMEStep) -> Void)? = nil,
                             layerDone: ((Int) -> Void)? = nil) throws -> (HookedTransformer, MEMITEdit) {
        let c = model.config
        try ROME.check(c)
        try s.validate(c)
        guard !requests.isEmpty else { throw EditError.invalid("give at least one fact to write") }
        try s.value.validate(c)
        for r in requests { try r.validate(c) }
        let (d, m) = (c.dModel, c.dMLP)
        let zLayer = s.layers[s.layers.count - 1]
        if zLayer == c.nLayers - 1, requests.contains(where: { r in zip(r.contexts, r.subjectPositions).contains { $1 != $0.count - 1 } }) {
            throw EditError.invalid("layer \(zLayer) is the last block: its output at the subject cannot reach the prediction; end the range earlier")
        }
        for (l, moment) in secondMoments where moment.count != m * m {
            throw EditError.invalid("the second moment for layer \(l) has \(moment.count) entries; \(m * m) were expected")
        }

        func at(_ model: HookedTransformer, _ row: [Int], _ p: Int, _ hook: HookName, width: Int) throws -> [Float] {
            let cache = try model.runWithCache(.tokens([row]), select: .names([hook]),
                                               options: ForwardOptions(stopAtLayer: (hook.layer ?? c.nLayers - 1) + 1)).cache
            guard let t = cache[hook] else { throw EditError.invalid("\(hook) was not computed") }
            return Array(t.scalars[(p * width)..<((p + 1) * width)])
        }

        // 1. z for every fact at the last layer of the range.
        var zs: [[Float]] = [], histories: [[ROMEStep]] = []
        for (i, r) in requests.enumerated() {
            let initial = try at(model, r.contexts[0], r.subjectPositions[0], .residPost(zLayer), width: d)
            let (delta, steps) = try ROME.optimiseValue(model: model, request: r, settings: s.value, hook: .residPost(zLayer),
                                                        initialValue: initial) { progress?(i, $0) }
            zs.append(zip(initial, delta).map { $0 + $1 })
            histories.append(steps)
        }

        // 2. Layer by layer, each seeing the earlier layers' updates.
        var current = model
        var updates: [MEMITEdit.LayerUpdate] = []
        for (i, layer) in s.layers.enumerated() {
            var keys: [[Double]] = [], residuals: [[Float]] = []
            var meanResidual: Float = 0
            for (r, z) in zip(requests, zs) {
                let bare = try at(current, r.contexts[0], r.subjectPositions[0], .mlpPost(layer), width: m)
                var key = bare.map(Double.init)
                if r.contexts.count > 1 {
                    var others = [Double](repeating: 0, count: m)
                    for (row, p) in zip(r.contexts.dropFirst(), r.subjectPositions.dropFirst()) {
                        let k = try at(current, row, p, .mlpPost(layer), width: m)
                        for j in 0..<m { others[j] += Double(k[j]) }
                    }
                    let n = Double(r.contexts.count - 1)
                    key = (0..<m).map { (key[$0] + others[$0] / n) / 2 }
                }
                keys.append(key)
                let h = try at(current, r.contexts[0], r.subjectPositions[0], .residPost(zLayer), width: d)
                let missing = zip(z, h).map { $0 - $1 }
                meanResidual += missing.reduce(0) { $0 + $1 * $1 }.squareRoot() / Float(requests.count)
                residuals.append(missing.map { $0 / Float(s.layers.count - i) })
            }
            // A = λC + KKᵀ (C = identity without statistics).
            let lambda = s.covarianceWeight ?? 2 * Double(m)
            var a = [Double](repeating: 0, count: m * m)
            if let moment = secondMoments[layer] {
                for j in 0..<(m * m) { a[j] = lambda * moment[j] }
            } else {
                for j in 0..<m { a[j * m + j] = lambda }
            }
            for k in keys { for p in 0..<m where k[p] != 0 { for q in 0..<m { a[p * m + q] += k[p] * k[q] } } }
            let adjusted = try LAPACK.solvePositiveDefinite(a, n: m, columns: keys)
            var delta = [Float](repeating: 0, count: m * d)
            for (adj, res) in zip(adjusted, residuals) {
                for p in 0..<m where adj[p] != 0 {
                    let x = Float(adj[p])
                    for q in 0..<d { delta[p * d + q] += x * res[q] }
                }
            }
            var w = current.weights
            let old = w.blocks[layer].wOut.scalars
            w.blocks[layer].wOut = Tensor(unchecked: [m, d], zip(old, delta).map { $0 + $1 })
            current = try HookedTransformer(config: c, weights: w, tokenizer: model.tokenizer)
            updates.append(MEMITEdit.LayerUpdate(layer: layer, delta: delta, meanResidual: meanResidual))
            layerDone?(layer)
        }
        return (current, MEMITEdit(layers: updates, zs: zs, steps: histories))
    }
}
