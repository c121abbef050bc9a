// How good an SAE is: sparsity (L0), reconstruction (explained variance), and what the model loses when
// the reconstruction replaces the real activation (cross-entropy loss recovered), as in SAELens's evals
// and Bricken et al. 2023. Splicing an SAE in at its hook point is also how features are ablated and steered.

import Foundation
import LoupeModels
import LoupeTensor

/// Reconstruction and sparsity of an SAE on held-out activations.
public struct SAEReconstructionMetrics: Codable, Sendable, Equatable {
    public let rows: Int
    /// Mean number of nonzero features per row.
    public let l0: Double
    /// 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖² (x̄ the mean row): the share of the activations' variance the SAE explains.
    public let explainedVariance: Double
    /// Mean over rows of ‖x − x̂‖².
    public let mse: Double
    /// The fraction of features that never fired on these rows.
    public let neverFiredFraction: Double
}

/// The model's next-token loss with the hook point left alone, replaced by the SAE's reconstruction,
/// and zero-ablated.
public struct SAESpliceLosses: Codable, Sendable, Equatable {
    public let tokens: Int
    public let clean: Double
    public let withSAE: Double
    public let zeroAblated: Double
    /// (CE_zero − CE_SAE) / (CE_zero − CE_clean): 1 when splicing the SAE in costs nothing, 0 when it is
    /// as bad as deleting the activation.
    public let recovered: Double

    public init(tokens: Int, clean: Double, withSAE: Double, zeroAblated: Double) {
        self.tokens = tokens
        self.clean = clean
        self.withSAE = withSAE
        self.zeroAblated = zeroAblated
        self.recovered = (zeroAblated - withSAE) / (zeroAblated - clean)
    }
}

/// How an SAE changes the activation at its hook point.
public enum SAESplice: Sendable, Equatable {
    /// Replace the activation by the SAE's reconstruction.
    case reconstruct
    /// Remove one feature: x − f_i(x) · W_dec[i] (the SAE's error term is kept).
    case ablate(feature: Int)
    /// Add `scale` × W_dec[i] at every position.
    case steer(feature: Int, scale: Float)
    /// Replace the activation by zeros.
    case zero
}

extension SparseAutoencoder {
    /// L0, explained variance and MSE on activations `[rows, d_in]`.
    public func reconstructionMetrics(_ x: Tensor) throws -> SAEReconstructionMetrics {
        let f = try encode(x)
        let xhat = try decode(f)
        let (rows, d, s) = (xhat.shape[0], config.dIn, config.dSAE)
        var active = 0
        var fired = [Bool](repeating: false, count: s)
        for i in 0..<f.count where f.scalars[i] > 0 { active += 1; fired[i % s] = true }
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<rows { for j in 0..<d { mean[j] += Double(x.scalars[r * d + j]) } }
        for j in 0..<d { mean[j] /= Double(max(rows, 1)) }
        var sse = 0.0, sst = 0.0
        for r in 0..<rows {
            for j in 0..<d {
                let v = Double(x.scalars[r * d + j])
                let e = v - Double(xhat.scalars[r * d + j]), m = v - mean[j]
                sse += e * e
                sst += m * m
            }
        }
        return SAEReconstructionMetrics(rows: rows, l0: Double(active) / Double(max(rows, 1)),
                                        explainedVariance: sst > 0 ? 1 - sse / sst : 0, mse: sse / Double(max(rows, 1)),
                                        neverFiredFraction: Double(fired.filter { !$0 }.count) / Double(s))
    }

    /// A hook function applying `splice` to `[batch, pos, d_in]` activations, at positions `≥ fromPosition`
    /// (position 0, the attention sink, is left alone by default, as in training).
    public func hook(_ splice: SAESplice, fromPosition: Int = 1) throws -> HookFunction {
        if case .ablate(let f) = splice, !(0..<config.dSAE).contains(f) {
            throw SAEError.invalid("feature must be in 0…\(config.dSAE - 1), found \(f)")
        }
        if case .steer(let f, _) = splice, !(0..<config.dSAE).contains(f) {
            throw SAEError.invalid("feature must be in 0…\(config.dSAE - 1), found \(f)")
        }
        let sae = self
        return { activation, name in
            let d = sae.config.dIn
            guard activation.rank == 3, activation.shape[2] == d else {
                throw SAEError.shape(tensor: "\(name) (the SAE's input)", expected: [-1, -1, d], found: activation.shape)
            }
            let (batch, pos) = (activation.shape[0], activation.shape[1])
            let first = min(fromPosition, pos)
            if first >= pos { return }
            // The spliced rows, [batch·(pos − first), d_in].
            var rows = [Float]()
            rows.reserveCapacity(batch * (pos - first) * d)
            for b in 0..<batch { rows.append(contentsOf: activation.scalars[((b * pos + first) * d)..<((b + 1) * pos * d)]) }
            let x = Tensor(unchecked: [batch * (pos - first), d], rows)
            var out: [Float]
            switch splice {
            case .reconstruct:
                out = try sae.reconstruct(x).scalars
            case .zero:
                out = [Float](repeating: 0, count: rows.count)
            case .ablate(let f):
                let acts = try sae.encode(x)
                out = rows
                for r in 0..<x.shape[0] {
                    var a = acts.scalars[r * sae.config.dSAE + f]
                    if a == 0 { continue }
                    if sae.config.rescaleActsByDecoderNorm { a /= sae.decoderNorms[f] }
                    for j in 0..<d { out[r * d + j] -= a * sae.wDec.scalars[f * d + j] }
                }
            case .steer(let f, let scale):
                out = rows
                for r in 0..<x.shape[0] { for j in 0..<d { out[r * d + j] += scale * sae.wDec.scalars[f * d + j] } }
            }
            for b in 0..<batch {
                let n = (pos - first) * d
                activation.scalars.replaceSubrange(((b * pos + first) * d)..<((b + 1) * pos * d),
                                                   with: out[(b * n)..<((b + 1) * n)])
            }
        }
    }
}

extension HookedTransformer {
    /// Mean next-token cross-entropy on `windows` `[batch][pos]` with `hooks`, over all predictions.
    public func meanNextTokenLoss(_ windows: [[Int]], hooks: Hooks = Hooks()) throws -> (loss: Double, tokens: Int) {
        let logits = try run(.tokens(windows), hooks: hooks)   // [batch, pos, d_vocab]
        let v = config.dVocab, pos = windows.first?.count ?? 0
        var total = 0.0, count = 0
        var row = [Float](repeating: 0, count: v)
        for (b, w) in windows.enumerated() {
            for p in 0..<(pos - 1) {
                let start = (b * pos + p) * v
                for i in 0..<v { row[i] = logits.scalars[start + i] }
                row.withUnsafeMutableBufferPointer { Kernels.logSoftmaxRows($0.baseAddress!, rows: 1, n: v) }
                total -= Double(row[w[p + 1]])
                count += 1
            }
        }
        return (total / Double(max(count, 1)), count)
    }

    /// The loss clean, with `sae` spliced in at its hook point, and with that hook point zero-ablated
    /// (positions ≥ 1 of each window), on `windows`, `batch` windows per forward pass.
    public func saeSpliceLosses(_ sae: SparseAutoencoder, windows: [[Int]], batch: Int = 4) throws -> SAESpliceLosses {
        let hook = try HookName(parsing: sae.config.hookName)
        try checkHook(hook)
        var sums = [0.0, 0.0, 0.0], tokens = 0
        for start in stride(from: 0, to: windows.count, by: max(batch, 1)) {
            let chunk = Array(windows[start..<min(start + max(batch, 1), windows.count)])
            let clean = try meanNextTokenLoss(chunk)
            let spliced = try meanNextTokenLoss(chunk, hooks: [hook: sae.hook(.reconstruct)])
            let zero = try meanNextTokenLoss(chunk, hooks: [hook: sae.hook(.zero)])
            for (i, l) in [clean, spliced, zero].enumerated() { sums[i] += l.loss * Double(l.tokens) }
            tokens += clean.tokens
        }
        let n = Double(max(tokens, 1))
        return SAESpliceLosses(tokens: tokens, clean: sums[0] / n, withSAE: sums[1] / n, zeroAblated: sums[2] / n)
    }
}
