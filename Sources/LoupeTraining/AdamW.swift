// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization") with linear warmup, cosine decay
// and gradient clipping by global norm — the schedule of GPT-2-style training and of the toy models in
// the interpretability literature.

import Foundation
import LoupeTensor

/// Hyperparameters of AdamW and its learning-rate schedule.
public struct AdamWConfig: Codable, Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.98
    public var eps: Float = 1e-8
    /// Decoupled weight decay, applied to matrices (rank ≥ 2) only, not to biases and norm weights.
    public var weightDecay: Float = 0.01
    /// Steps of linear warmup from 0 to `learningRate`.
    public var warmupSteps: Int = 0
    /// The step count the cosine decay spans; the rate ends at `minLearningRateFraction · learningRate`.
    public var totalSteps: Int
    public var minLearningRateFraction: Float = 0.1
    /// Gradients are scaled down so that their global L2 norm is at most this (nil: no clipping).
    public var clipNorm: Float? = 1.0

    public init(learningRate: Float, totalSteps: Int, warmupSteps: Int = 0, weightDecay: Float = 0.01,
                beta1: Float = 0.9, beta2: Float = 0.98, clipNorm: Float? = 1.0, minLearningRateFraction: Float = 0.1) {
        self.learningRate = learningRate
        self.totalSteps = totalSteps
        self.warmupSteps = warmupSteps
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.clipNorm = clipNorm
        self.minLearningRateFraction = minLearningRateFraction
    }

    /// The learning rate at a step (0-based): linear warmup, then cosine decay to the minimum.
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return learningRate * Float(step + 1) / Float(warmupSteps) }
        let span = max(totalSteps - warmupSteps, 1)
        let progress = min(Float(step - warmupSteps) / Float(span), 1)
        let minLR = learningRate * minLearningRateFraction
        return minLR + (learningRate - minLR) * 0.5 * (1 + cos(Float.pi * progress))
    }

    func validate() throws {
        guard learningRate > 0, learningRate.isFinite else { throw TrainingError.invalid("learning rate must be positive, found \(learningRate)") }
        guard totalSteps > 0 else { throw TrainingError.invalid("total steps must be positive, found \(totalSteps)") }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else { throw TrainingError.invalid("betas must be in [0, 1), found \(beta1), \(beta2)") }
        guard weightDecay >= 0 else { throw TrainingError.invalid("weight decay must be ≥ 0, found \(weightDecay)") }
        if let c = clipNorm, !(c > 0) { throw TrainingError.invalid("clip norm must be positive, found \(c)") }
    }
}

/// AdamW's state: first and second moments per parameter, and the step count.
public struct AdamW: Sendable {
    public let config: AdamWConfig
    public internal(set) var step = 0
    public internal(set) var m: [String: [Float]] = [:]
    public internal(set) var v: [String: [Float]] = [:]

    public init(config: AdamWConfig) throws {
        try config.validate()
        self.config = config
    }

    /// One update of `parameters` from `gradients` (same names; a missing gradient counts as zero).
    /// Returns the learning rate used and the gradient norm before clipping.
    @discardableResult
    public mutating func update(_ parameters: inout [String: Tensor], gradients: [String: [Float]]) -> (learningRate: Float, gradNorm: Float) {
        var sq: Double = 0
        for g in gradients.values { for x in g { sq += Double(x) * Double(x) } }
        let norm = Float(sq.squareRoot())
        var clip: Float = 1
        if let c = config.clipNorm, norm > c { clip = c / (norm + 1e-6) }
        let lr = config.learningRate(at: step)
        step += 1
        let (b1, b2) = (config.beta1, config.beta2)
        let c1 = 1 - pow(b1, Float(step)), c2 = 1 - pow(b2, Float(step))
        for name in parameters.keys.sorted() {
            guard var p = parameters[name], let g = gradients[name] else { continue }
            var mv = m[name] ?? [Float](repeating: 0, count: p.count)
            var vv = v[name] ?? [Float](repeating: 0, count: p.count)
            let decay = p.rank >= 2 ? config.weightDecay : 0
            p.scalars.withUnsafeMutableBufferPointer { w in
                for i in 0..<w.count {
                    let gi = g[i] * clip
                    mv[i] = b1 * mv[i] + (1 - b1) * gi
                    vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
                    let update = (mv[i] / c1) / ((vv[i] / c2).squareRoot() + config.eps)
                    w[i] -= lr * (update + decay * w[i])
                }
            }
            parameters[name] = p
            m[name] = mv
            v[name] = vv
        }
        return (lr, norm)
    }

    /// Restores a state saved from `m`, `v` and `step`, checking each moment against its parameter's
    /// element count (`parameterCounts`, by name).
    /// - Throws: `TrainingError.invalid` for a moment of another size or of an unknown parameter.
    public mutating func restore(step: Int, m: [String: [Float]], v: [String: [Float]], parameterCounts: [String: Int]) throws {
        for (kind, moments) in [("first", m), ("second", v)] {
            for (name, values) in moments where values.count != parameterCounts[name] {
                throw TrainingError.invalid("AdamW's \(kind) moment of \(name) has \(values.count) values; the parameter has \(parameterCounts[name].map(String.init) ?? "no entry")")
            }
        }
        guard step >= 0 else { throw TrainingError.invalid("AdamW's step must be ≥ 0, found \(step)") }
        self.step = step
        self.m = m
        self.v = v
    }

    /// Replaces the moments (the caller keeps their sizes; e.g. when SAE features are resampled).
    mutating func replaceMoments(m: [String: [Float]], v: [String: [Float]]) {
        self.m = m
        self.v = v
    }
}

/// What went wrong in training.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    case checkpoint(path: String, reason: String)
    case diverged(step: Int, loss: Float)

    public var description: String {
        switch self {
        case .invalid(let m): return m
        case .checkpoint(let p, let r): return "checkpoint \(p): \(r)"
        case .diverged(let s, let l): return "training diverged at step \(s): loss \(l) (try a lower learning rate)"
        }
    }
}
