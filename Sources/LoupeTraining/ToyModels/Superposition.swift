// Toy models of superposition (Elhage et al. 2022, "Toy Models of Superposition", transformer-circuits.pub):
// n sparse features squeezed through m < n dimensions and read back, x' = ReLU(Wᵀ W x + b), trained to
// minimise Σ_i I_i (x_i − x'_i)². Each feature is 0 with probability S (the sparsity) and uniform on [0, 1]
// otherwise, independently. Dense features get orthogonal dimensions of their own (the m most important);
// sparse ones share them, in superposition: at S = 0.9, five equally important features in two dimensions
// take the corners of a regular pentagon. With the linear read-out (no ReLU) nothing is ever superposed.
// Reference: the paper's notebook (github.com/anthropics/toy-models-of-superposition, toy_models.ipynb):
// Xavier-normal W, zero b, Adam at 1e-3, batches of 1024; its measures of feature dimensionality,
// D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)², and of dimensions per feature, m / ‖W‖_F².
//
// The gradient is written out by hand (the model is two products and a ReLU); tests check it against the
// autograd tape and finite differences.

import Foundation
import LoupeModels
import LoupeTensor

/// A toy model's settings.
public struct SuperpositionConfig: Sendable, Codable, Equatable {
    public var features: Int
    public var dims: Int
    /// The probability that a feature is 0 in an example.
    public var sparsity: Float
    /// I_i, one per feature (the paper's `0.9^i` for a decaying importance; all 1 by default).
    public var importance: [Float]
    /// ReLU read-out (the paper's model) or linear (the baseline that never superposes).
    public var relu = true
    public var steps = 10_000
    public var batchSize = 1024
    public var learningRate: Float = 1e-3
    public var seed: UInt64 = 0

    /// `importanceDecay` r gives I_i = r^i.
    public init(features: Int, dims: Int, sparsity: Float, importanceDecay: Float = 1) {
        self.features = features
        self.dims = dims
        self.sparsity = sparsity
        importance = (0..<max(features, 0)).map { pow(importanceDecay, Float($0)) }
    }

    func validate() throws {
        guard features >= 1, dims >= 1 else { throw TrainingError.invalid("a toy model needs ≥ 1 feature and ≥ 1 dimension, found \(features) and \(dims)") }
        guard features * dims <= 1 << 22 else { throw TrainingError.invalid("\(features) features × \(dims) dimensions is too large for a toy model") }
        guard (0..<1).contains(sparsity) else { throw TrainingError.invalid("sparsity must be in [0, 1), found \(sparsity)") }
        guard importance.count == features, importance.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw TrainingError.invalid("importance needs \(features) non-negative values, found \(importance.count)")
        }
        guard steps >= 0, batchSize >= 1 else { throw TrainingError.invalid("steps must be ≥ 0 and the batch ≥ 1") }
        guard learningRate > 0, learningRate.isFinite else { throw TrainingError.invalid("learning rate must be positive, found \(learningRate)") }
    }
}

/// A trained (or initialised) toy model: `W` `[dims, features]` row-major, `b` `[features]`.
public struct SuperpositionModel: Sendable, Codable {
    public var config: SuperpositionConfig
    public var w: [Float]
    public var b: [Float]
    /// The loss every 100 steps (and the last).
    public var losses: [Float] = []

    /// Xavier-normal W, zero b.
    public init(config: SuperpositionConfig) throws {
        try config.validate()
        self.config = config
        var rng = SeededGenerator(seed: config.seed, stream: 1)
        let std = (2 / Float(config.features + config.dims)).squareRoot()
        w = (0..<(config.features * config.dims)).map { _ in rng.nextGaussian() * std }
        b = [Float](repeating: 0, count: config.features)
    }

    public init(config: SuperpositionConfig, w: [Float], b: [Float]) throws {
        try config.validate()
        guard w.count == config.features * config.dims, b.count == config.features else {
            throw TrainingError.invalid("W needs \(config.dims)×\(config.features) values and b \(config.features), found \(w.count) and \(b.count)")
        }
        (self.config, self.w, self.b) = (config, w, b)
    }

    /// A batch of examples, `[batch, features]`: each feature 0 with probability S, else uniform on [0, 1).
    public static func batch(_ c: SuperpositionConfig, size: Int, rng: inout SeededGenerator) -> [Float] {
        (0..<(size * c.features)).map { _ in rng.nextUnit() < c.sparsity ? 0 : rng.nextUnit() }
    }

    /// The read-out x' of a batch `[batch, features]`.
    public func forward(_ x: [Float]) -> [Float] {
        let (n, m) = (config.features, config.dims)
        let rows = x.count / n
        var out = [Float](repeating: 0, count: x.count)
        var h = [Float](repeating: 0, count: m)
        for r in 0..<rows {
            for k in 0..<m {
                var s: Float = 0
                for i in 0..<n { s += w[k * n + i] * x[r * n + i] }
                h[k] = s
            }
            for j in 0..<n {
                var y = b[j]
                for k in 0..<m { y += w[k * n + j] * h[k] }
                out[r * n + j] = config.relu ? max(y, 0) : y
            }
        }
        return out
    }

    /// The loss Σ_i I_i (x_i − x'_i)², averaged over the batch, and its gradients for W and b.
    public func lossAndGradients(_ x: [Float]) -> (loss: Float, w: [Float], b: [Float]) {
        let (n, m) = (config.features, config.dims)
        let rows = x.count / n
        var gw = [Float](repeating: 0, count: w.count), gb = [Float](repeating: 0, count: n)
        var h = [Float](repeating: 0, count: m), gy = [Float](repeating: 0, count: n), gh = [Float](repeating: 0, count: m)
        var loss: Double = 0
        let scale = 2 / Float(rows)
        for r in 0..<rows {
            let xr = r * n
            for k in 0..<m {
                var s: Float = 0
                for i in 0..<n where x[xr + i] != 0 { s += w[k * n + i] * x[xr + i] }
                h[k] = s
            }
            for j in 0..<n {
                var y = b[j]
                for k in 0..<m { y += w[k * n + j] * h[k] }
                let o = config.relu ? max(y, 0) : y
                let e = o - x[xr + j]
                loss += Double(config.importance[j] * e * e)
                gy[j] = (config.relu && y <= 0) ? 0 : scale * config.importance[j] * e
                gb[j] += gy[j]
            }
            // y = Wᵀh + b: dW[k, j] += h_k gy_j; h = W x: gh = W gy, dW[k, i] += gh_k x_i.
            for k in 0..<m {
                var s: Float = 0
                for j in 0..<n { s += w[k * n + j] * gy[j]; gw[k * n + j] += h[k] * gy[j] }
                gh[k] = s
            }
            for k in 0..<m { for i in 0..<n where x[xr + i] != 0 { gw[k * n + i] += gh[k] * x[xr + i] } }
        }
        return (Float(loss / Double(rows)), gw, gb)
    }

    /// Trains from the current weights for `config.steps` steps; `progress(step, loss)` every 100 steps.
    public mutating func train(progress: ((Int, Float) -> Void)? = nil) throws {
        let c = config
        var adam = try AdamW(config: AdamWConfig(learningRate: c.learningRate, totalSteps: max(c.steps, 1), weightDecay: 0,
                                                 beta1: 0.9, beta2: 0.999, clipNorm: nil, minLearningRateFraction: 1))
        var rng = SeededGenerator(seed: c.seed, stream: 2)
        losses = []
        for step in 0..<c.steps {
            let x = Self.batch(c, size: c.batchSize, rng: &rng)
            let (loss, gw, gb) = lossAndGradients(x)
            guard loss.isFinite else { throw TrainingError.diverged(step: step, loss: loss) }
            var p = ["W": Tensor(unchecked: [c.dims, c.features], w), "b": Tensor(unchecked: [c.features], b)]
            adam.update(&p, gradients: ["W": gw, "b": gb])
            w = p["W"]?.scalars ?? w
            b = p["b"]?.scalars ?? b
            if step % 100 == 0 || step == c.steps - 1 {
                losses.append(loss)
                progress?(step, loss)
            }
        }
    }

    /// The loss on `count` fresh examples (a fixed stream for a given config seed): comparable across runs.
    public func evaluationLoss(count: Int = 16_384) -> Float {
        var rng = SeededGenerator(seed: config.seed, stream: 3)
        return lossAndGradients(Self.batch(config, size: count, rng: &rng)).loss
    }

    /// Trains `instances` models from seeds `seed`, `seed + 1`, … and keeps the one with the lowest loss on
    /// the same held-out examples — as the paper's notebook trains many instances at once: gradient descent
    /// sometimes settles in a local minimum (five features in two dimensions as a square plus one left out).
    /// `progress(instance, step, loss)`.
    public static func trainBest(_ config: SuperpositionConfig, instances: Int,
                                 progress: ((Int, Int, Float) -> Void)? = nil) throws -> (best: SuperpositionModel, losses: [Float]) {
        guard instances >= 1 else { throw TrainingError.invalid("instances must be ≥ 1, found \(instances)") }
        var best: SuperpositionModel?
        var bestLoss = Float.infinity
        var losses: [Float] = []
        var evaluation = config
        for i in 0..<instances {
            var c = config
            c.seed = config.seed &+ UInt64(i)
            var model = try SuperpositionModel(config: c)
            try model.train { step, loss in progress?(i, step, loss) }
            // Every instance is judged on the same examples (those of the first seed).
            evaluation.seed = config.seed
            let judged = try SuperpositionModel(config: evaluation, w: model.w, b: model.b)
            let loss = judged.evaluationLoss()
            losses.append(loss)
            if loss < bestLoss { bestLoss = loss; best = model }
        }
        guard let best else { throw TrainingError.diverged(step: 0, loss: .nan) }
        return (best, losses)
    }

    // MARK: - Measures

    /// Column i of W: feature i's direction in the hidden space.
    public func column(_ i: Int) -> [Float] { (0..<config.dims).map { w[$0 * config.features + i] } }

    /// ‖W_i‖ per feature: ≈ 1 when represented, ≈ 0 when not.
    public var norms: [Float] { (0..<config.features).map { i in column(i).reduce(0) { $0 + $1 * $1 }.squareRoot() } }

    /// WᵀW `[features, features]`: the interference between features.
    public var gram: [Float] {
        let n = config.features
        var g = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { g[i * n + j] = (0..<config.dims).reduce(0) { $0 + w[$1 * n + i] * w[$1 * n + j] } } }
        return g
    }

    /// Σ_{j≠i} (Ŵ_i·W_j)² per feature: how much other features share its direction (0: a dimension of its own).
    public var superposition: [Float] {
        let n = config.features, g = gram, norms = self.norms
        return (0..<n).map { i in
            guard norms[i] > 0 else { return 0 }
            return (0..<n).filter { $0 != i }.reduce(0) { s, j in let p = g[i * n + j] / norms[i]; return s + p * p }
        }
    }

    /// The paper's feature dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²: 1 for a dimension of its own, 1/2 for
    /// an antipodal pair, 2/5 for a pentagon's corner, 0 for an unrepresented feature.
    public var dimensionality: [Float] {
        let n = config.features, g = gram, norms = self.norms
        return (0..<n).map { i in
            guard norms[i] > 1e-6 else { return 0 }
            let denominator = (0..<n).reduce(Float(0)) { s, j in let p = g[i * n + j] / norms[i]; return s + p * p }
            return denominator > 0 ? norms[i] * norms[i] / denominator : 0
        }
    }

    /// m / ‖W‖_F²: dimensions per (represented) feature; 1 without superposition, below 1 with it.
    public var dimensionsPerFeature: Float {
        let f = w.reduce(0) { $0 + $1 * $1 }
        return f > 0 ? Float(config.dims) / f : .infinity
    }

    /// The angles of the columns (radians, in [0, 2π)) of a 2-dimensional model, for its picture.
    public var angles: [Float]? {
        guard config.dims == 2 else { return nil }
        return (0..<config.features).map { i in
            let c = column(i)
            let a = atan2(c[1], c[0])
            return a < 0 ? a + 2 * .pi : a
        }
    }
}

// MARK: - Sweeps

/// What the second of two features does in one hidden dimension: the paper's phase diagram.
public enum SuperpositionPhase: String, Sendable, Codable {
    /// Only the first feature is represented.
    case notRepresented = "not represented"
    /// The second feature has the dimension to itself.
    case dedicated
    /// Both share it, with opposite signs.
    case superposed
}

public enum SuperpositionSweeps {
    /// The phase of feature 2 for two features in one dimension, feature 1 of importance 1 and feature 2 of
    /// `relativeImportance`, both present with probability `density` (1 − S): that of the best of `instances`
    /// models (the lowest held-out loss), since near the boundaries one run may stop in the other phase.
    public static func phase(density: Float, relativeImportance: Float, relu: Bool = true, steps: Int, learningRate: Float = 1e-3,
                             batchSize: Int = 1024, instances: Int = 3, seed: UInt64) throws -> (SuperpositionPhase, SuperpositionModel) {
        var c = SuperpositionConfig(features: 2, dims: 1, sparsity: 1 - density)
        c.importance = [1, relativeImportance]
        c.relu = relu
        c.steps = steps
        c.learningRate = learningRate
        c.batchSize = batchSize
        c.seed = seed
        let model = try SuperpositionModel.trainBest(c, instances: instances).best
        let n = model.norms
        let on = n.map { $0 > 0.5 }
        let phase: SuperpositionPhase = on[1] ? (on[0] ? .superposed : .dedicated) : .notRepresented
        return (phase, model)
    }

    /// The phase diagram: rows are relative importances, columns densities.
    public static func phaseDiagram(densities: [Float], importances: [Float], relu: Bool = true, steps: Int, learningRate: Float = 1e-3,
                                    batchSize: Int = 1024, instances: Int = 3, seed: UInt64,
                                    progress: ((Int) -> Void)? = nil) throws -> [[SuperpositionPhase]] {
        var out: [[SuperpositionPhase]] = []
        var done = 0
        for (r, importance) in importances.enumerated() {
            var row: [SuperpositionPhase] = []
            for (c, density) in densities.enumerated() {
                row.append(try phase(density: density, relativeImportance: importance, relu: relu, steps: steps, learningRate: learningRate,
                                     batchSize: batchSize, instances: instances, seed: seed &+ UInt64(instances * (r * densities.count + c))).0)
                done += 1
                progress?(done)
            }
            out.append(row)
        }
        return out
    }

    /// `count` values from `a` to `b`, evenly spaced on a log scale.
    public static func logSpaced(_ a: Float, _ b: Float, count: Int) -> [Float] {
        guard count > 1 else { return [a] }
        return (0..<count).map { a * pow(b / a, Float($0) / Float(count - 1)) }
    }
}
