// Training a sparse autoencoder on batches of activations, on the autograd tape.
//
// Loss per batch of `rows` activations (SAELens's convention: squared error summed over d_in, averaged
// over rows):
//   topk:     L = mean_rows ‖x − x̂‖²
//   standard: L = mean_rows ‖x − x̂‖² + λ · mean_rows Σ_f f_i · ‖W_dec[f]‖     (Anthropic, April 2024 update)
// Decoder rows are scaled back to unit norm after every step, so the decoder-norm factor of the L1 term
// is 1 at every forward pass (it is applied as a constant). AdamW without weight decay or clipping.
//
// Dead features: a feature that has not fired (activation > 0) for `deadWindow` steps is dead. Every
// `resampleEvery` steps (until `resampleStopFraction` of the run) dead features are resampled as in
// Anthropic's "Towards Monosemanticity" (2023), simplified: each takes the normalized residual x − x̂ of
// a batch row drawn with probability ∝ ‖x − x̂‖⁴ as its decoder row, that direction times 0.2 × the mean
// encoder-column norm of the live features as its encoder column, b_enc = 0, and fresh Adam moments.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

/// Settings of an SAE training run (saved in checkpoints).
public struct SAETrainingSettings: Codable, Sendable, Equatable {
    /// Activation rows per step.
    public var batchSize: Int
    public var steps: Int
    public var learningRate: Float = 4e-4
    public var warmupSteps: Int = 0
    /// λ of the L1 penalty (standard SAEs).
    public var l1Coefficient: Float = 5
    /// A feature that has not fired for this many steps counts as dead.
    public var deadWindow: Int = 200
    /// Resample dead features every this many steps (0: never).
    public var resampleEvery: Int = 0
    /// No resampling after this fraction of the run.
    public var resampleStopFraction: Float = 0.75
    public var seed: UInt64 = 0
    /// Save a checkpoint every this many steps (0: only at the end and when stopped).
    public var checkpointEvery: Int = 0

    public init(batchSize: Int, steps: Int, learningRate: Float = 4e-4, warmupSteps: Int = 0, l1Coefficient: Float = 5,
                deadWindow: Int = 200, resampleEvery: Int = 0, seed: UInt64 = 0, checkpointEvery: Int = 0) {
        self.batchSize = batchSize
        self.steps = steps
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.l1Coefficient = l1Coefficient
        self.deadWindow = deadWindow
        self.resampleEvery = resampleEvery
        self.seed = seed
        self.checkpointEvery = checkpointEvery
    }

    var optimizer: AdamWConfig {
        AdamWConfig(learningRate: learningRate, totalSteps: steps, warmupSteps: warmupSteps, weightDecay: 0,
                    beta1: 0.9, beta2: 0.999, clipNorm: nil, minLearningRateFraction: 0.1)
    }

    func validate() throws {
        guard batchSize >= 1, steps >= 1 else { throw SAEError.invalid("batch size and steps must be ≥ 1, found \(batchSize) and \(steps)") }
        guard l1Coefficient >= 0 else { throw SAEError.invalid("L1 coefficient must be ≥ 0, found \(l1Coefficient)") }
        guard deadWindow >= 1, resampleEvery >= 0 else { throw SAEError.invalid("dead window must be ≥ 1 and resample interval ≥ 0") }
    }
}

/// One training step's numbers.
public struct SAEStepRecord: Codable, Sendable, Equatable {
    public let step: Int
    public let loss: Float
    public let mse: Float
    /// Mean number of active features per row.
    public let l0: Float
    public let learningRate: Float
}

/// Trains one SAE: parameters, AdamW state, dead-feature counters.
public final class SAETrainer {
    public private(set) var sae: SparseAutoencoder
    public let settings: SAETrainingSettings
    public private(set) var optimizer: AdamW
    /// Steps since each feature last fired: `[d_sae]`.
    public private(set) var stepsSinceFired: [Int]
    public private(set) var history: [SAEStepRecord] = []
    /// Features resampled so far.
    public private(set) var resampled = 0
    private var rng: SeededGenerator

    public var step: Int { optimizer.step }

    public init(sae: SparseAutoencoder, settings: SAETrainingSettings) throws {
        try settings.validate()
        self.sae = sae
        self.settings = settings
        self.optimizer = try AdamW(config: settings.optimizer)
        self.stepsSinceFired = [Int](repeating: 0, count: sae.config.dSAE)
        self.rng = SeededGenerator(seed: settings.seed, stream: 31)
    }

    /// The fraction of features that have not fired for `deadWindow` steps.
    public var deadFraction: Float {
        Float(stepsSinceFired.filter { $0 >= settings.deadWindow }.count) / Float(max(stepsSinceFired.count, 1))
    }

    /// Sets `b_dec` to the geometric median of `sample` `[rows, d_in]` (Weiszfeld's iterations, as
    /// SAELens's `b_dec_init_method="geometric_median"`), or to its mean when `geometricMedian` is false.
    public func initializeDecoderBias(from sample: Tensor, geometricMedian: Bool = true, iterations: Int = 50) throws {
        let d = sae.config.dIn
        guard sample.rank == 2, sample.shape[1] == d, sample.shape[0] >= 1 else {
            throw SAEError.shape(tensor: "b_dec initialization sample", expected: [-1, d], found: sample.shape)
        }
        sae.bDec = geometricMedian ? SAETrainer.geometricMedian(sample, iterations: iterations) : SAETrainer.mean(sample)
    }

    static func mean(_ x: Tensor) -> Tensor {
        let (n, d) = (x.shape[0], x.shape[1])
        var m = [Double](repeating: 0, count: d)
        for r in 0..<n { for c in 0..<d { m[c] += Double(x.scalars[r * d + c]) } }
        return Tensor(m.map { Float($0 / Double(n)) })
    }

    /// The point minimizing the sum of Euclidean distances to the rows (Weiszfeld 1937).
    static func geometricMedian(_ x: Tensor, iterations: Int) -> Tensor {
        let (n, d) = (x.shape[0], x.shape[1])
        var y = mean(x).scalars.map(Double.init)
        for _ in 0..<iterations {
            var num = [Double](repeating: 0, count: d), den = 0.0
            for r in 0..<n {
                var dist = 0.0
                for c in 0..<d { let e = Double(x.scalars[r * d + c]) - y[c]; dist += e * e }
                let w = 1 / max(dist.squareRoot(), 1e-8)
                for c in 0..<d { num[c] += w * Double(x.scalars[r * d + c]) }
                den += w
            }
            var moved = 0.0
            for c in 0..<d { let v = num[c] / den; moved += (v - y[c]) * (v - y[c]); y[c] = v }
            if moved.squareRoot() < 1e-7 { break }
        }
        return Tensor(y.map(Float.init))
    }

    /// The loss of `batch` `[rows, d_in]` on the tape, with the parameters as leaves.
    func loss(_ batch: Tensor, parameters p: [String: Variable]) throws -> (loss: Variable, mse: Variable, features: Variable) {
        let c = sae.config
        let rows = batch.shape[0]
        let (wEnc, bEnc, wDec, bDec) = (p["W_enc"]!, p["b_enc"]!, p["W_dec"]!, p["b_dec"]!)
        let x = Variable(batch)                                                    // [rows, d_in]
        // (x − b_dec) · W_enc + b_enc, with b_dec moved into the bias: x · W_enc + (b_enc − b_dec · W_enc),
        // so no gradient to the (constant) input is computed.
        var bias = bEnc
        if c.applyBDecToInput {
            bias = try bEnc - bDec.reshaped([1, c.dIn]).matmul(wEnc).reshaped([c.dSAE])   // [d_sae]
        }
        let pre = try x.matmul(wEnc).addingRow(bias)                               // [rows, d_sae]
        let features: Variable
        let decoded: Variable
        switch c.architecture {
        case .topk:
            features = try pre.topKReLU(c.k ?? 1)
            decoded = try features.sparseMatmul(wDec)                              // [rows, d_in]
        case .standard:
            features = pre.relu()
            decoded = try features.matmul(wDec)
        }
        let err = try decoded.addingRow(bDec) - x
        let mse = try (err * err).sum().scaled(by: 1 / Float(rows))
        guard c.architecture == .standard, settings.l1Coefficient > 0 else { return (mse, mse, features) }
        let norms = Variable(Tensor(sae.decoderNorms))
        let l1 = try features.multiplyingRow(norms).sum().scaled(by: settings.l1Coefficient / Float(rows))
        return (try mse + l1, mse, features)
    }

    /// One optimizer step on `batch` `[rows, d_in]`; then decoder rows back to unit norm, the dead-feature
    /// counters, and resampling when due.
    /// - Throws: `SAEError.shape` for a batch of the wrong width, `TrainingError.diverged` for a
    ///   non-finite loss.
    @discardableResult
    public func trainStep(_ batch: Tensor) throws -> SAEStepRecord {
        let c = sae.config
        guard batch.rank == 2, batch.shape[1] == c.dIn, batch.shape[0] >= 1 else {
            throw SAEError.shape(tensor: "training batch", expected: [-1, c.dIn], found: batch.shape)
        }
        var params = ["W_enc": sae.wEnc, "b_enc": sae.bEnc, "W_dec": sae.wDec, "b_dec": sae.bDec]
        let leaves = params.mapValues { Variable($0, requiresGrad: true) }
        let (loss, mse, features) = try loss(batch, parameters: leaves)
        guard loss.value.scalars[0].isFinite else { throw TrainingError.diverged(step: step, loss: loss.value.scalars[0]) }
        try loss.backward()
        var grads: [String: [Float]] = [:]
        for (name, v) in leaves { grads[name] = v.gradScalars ?? [Float](repeating: 0, count: v.value.count) }
        let stepIndex = step
        let (lr, _) = optimizer.update(&params, gradients: grads)
        sae.wEnc = params["W_enc"]!
        sae.bEnc = params["b_enc"]!
        sae.wDec = params["W_dec"]!
        sae.bDec = params["b_dec"]!
        sae.normalizeDecoder()

        // Which features fired in this batch, and L0.
        let rows = batch.shape[0], s = c.dSAE
        var fired = [Bool](repeating: false, count: s)
        var active = 0
        features.value.scalars.withUnsafeBufferPointer { f in
            for i in 0..<f.count where f[i] > 0 { fired[i % s] = true; active += 1 }
        }
        for i in 0..<s { stepsSinceFired[i] = fired[i] ? 0 : stepsSinceFired[i] + 1 }
        let record = SAEStepRecord(step: stepIndex, loss: loss.value.scalars[0], mse: mse.value.scalars[0],
                                   l0: Float(active) / Float(rows), learningRate: lr)
        history.append(record)

        if settings.resampleEvery > 0, step % settings.resampleEvery == 0,
           Float(step) < settings.resampleStopFraction * Float(settings.steps) {
            try resampleDeadFeatures(using: batch)
        }
        return record
    }

    /// Resamples the dead features from the residuals of `batch` (see the file comment). Returns how many.
    @discardableResult
    public func resampleDeadFeatures(using batch: Tensor) throws -> Int {
        let c = sae.config
        let (d, s) = (c.dIn, c.dSAE)
        let dead = (0..<s).filter { stepsSinceFired[$0] >= settings.deadWindow }
        if dead.isEmpty { return 0 }
        let rows = batch.shape[0]
        let recon = try sae.reconstruct(batch)
        var residual = batch.scalars
        var weight = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            var e = 0.0
            for j in 0..<d { residual[r * d + j] -= recon.scalars[r * d + j]; e += Double(residual[r * d + j] * residual[r * d + j]) }
            weight[r] = e * e
        }
        let total = weight.reduce(0, +)
        guard total > 0 else { return 0 }
        // Mean encoder-column norm of the live features.
        var alive = 0.0, aliveCount = 0
        for f in 0..<s where stepsSinceFired[f] < settings.deadWindow {
            var n = 0.0
            for j in 0..<d { let w = Double(sae.wEnc.scalars[j * s + f]); n += w * w }
            alive += n.squareRoot(); aliveCount += 1
        }
        let encScale = Float(aliveCount > 0 ? alive / Double(aliveCount) : 1) * 0.2
        var m = optimizer.m, v = optimizer.v
        for f in dead {
            // Draw a row ∝ weight.
            var u = Double(rng.nextUnit()) * total
            var pick = rows - 1
            for r in 0..<rows { u -= weight[r]; if u < 0 { pick = r; break } }
            var norm: Float = 0
            for j in 0..<d { norm += residual[pick * d + j] * residual[pick * d + j] }
            norm = norm.squareRoot()
            guard norm > 0 else { continue }
            for j in 0..<d {
                let dir = residual[pick * d + j] / norm
                sae.wDec.scalars[f * d + j] = dir
                sae.wEnc.scalars[j * s + f] = dir * encScale
                m["W_dec"]?[f * d + j] = 0; v["W_dec"]?[f * d + j] = 0
                m["W_enc"]?[j * s + f] = 0; v["W_enc"]?[j * s + f] = 0
            }
            sae.bEnc.scalars[f] = 0
            m["b_enc"]?[f] = 0; v["b_enc"]?[f] = 0
            stepsSinceFired[f] = 0
        }
        optimizer.replaceMoments(m: m, v: v)
        resampled += dead.count
        return dead.count
    }

    // MARK: - Checkpoints

    static let stateFile = "trainer_state.safetensors"

    /// Writes the SAE (SAELens layout) and the training state (AdamW moments, step, dead-feature counters,
    /// settings, plus `extra` strings such as the corpus position) into `directory`.
    public func saveCheckpoint(to directory: URL, extra: [String: String] = [:]) throws {
        try SAELensFormat.write(sae, to: directory)
        var tensors: [(name: String, tensor: Tensor)] = []
        let shapes = ["W_enc": sae.wEnc.shape, "b_enc": sae.bEnc.shape, "W_dec": sae.wDec.shape, "b_dec": sae.bDec.shape]
        for name in shapes.keys.sorted() {
            if let mv = optimizer.m[name], let vv = optimizer.v[name] {
                tensors.append(("adam.m." + name, Tensor(unchecked: shapes[name]!, mv)))
                tensors.append(("adam.v." + name, Tensor(unchecked: shapes[name]!, vv)))
            }
        }
        tensors.append(("steps_since_fired", Tensor(stepsSinceFired.map(Float.init))))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var meta = extra
        meta["step"] = String(step)
        meta["resampled"] = String(resampled)
        meta["settings"] = String(decoding: try encoder.encode(settings), as: UTF8.self)
        meta["history"] = String(decoding: try encoder.encode(history), as: UTF8.self)
        try writeSafetensors(tensors, metadata: meta, to: directory.appendingPathComponent(Self.stateFile))
    }

    /// Resumes from a checkpoint written by `saveCheckpoint`. `steps` extends (or shortens) the run.
    /// Returns the trainer and the `extra` strings saved with it.
    public static func resume(from directory: URL, steps: Int? = nil) throws -> (trainer: SAETrainer, extra: [String: String]) {
        let path = directory.appendingPathComponent(stateFile).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError.checkpoint(path: path, reason: "no SAE checkpoint here (expected \(stateFile))")
        }
        let file = try SafetensorsFile(path: path)
        guard let stepText = file.metadata["step"], let step = Int(stepText), step >= 0,
              let settingsText = file.metadata["settings"],
              var settings = try? JSONDecoder().decode(SAETrainingSettings.self, from: Data(settingsText.utf8)) else {
            throw TrainingError.checkpoint(path: path, reason: "no valid 'step' and 'settings' in its metadata")
        }
        if let steps { settings.steps = steps }
        let sae = try SAELensFormat.read(from: directory)
        let trainer = try SAETrainer(sae: sae, settings: settings)
        var m: [String: [Float]] = [:], v: [String: [Float]] = [:]
        for name in file.entries.keys {
            if name.hasPrefix("adam.m.") { m[String(name.dropFirst(7))] = try file.tensor(name).scalars }
            if name.hasPrefix("adam.v.") { v[String(name.dropFirst(7))] = try file.tensor(name).scalars }
        }
        let counts = ["W_enc": sae.wEnc.count, "b_enc": sae.bEnc.count, "W_dec": sae.wDec.count, "b_dec": sae.bDec.count]
        do {
            try trainer.optimizer.restore(step: step, m: m, v: v, parameterCounts: counts)
        } catch {
            throw TrainingError.checkpoint(path: path, reason: "\(error)")
        }
        if file.entries["steps_since_fired"] != nil {
            let counts = try file.tensor("steps_since_fired").scalars.map { Int($0) }
            if counts.count == sae.config.dSAE { trainer.stepsSinceFired = counts }
        }
        trainer.resampled = Int(file.metadata["resampled"] ?? "") ?? 0
        if let h = file.metadata["history"], let records = try? JSONDecoder().decode([SAEStepRecord].self, from: Data(h.utf8)) {
            trainer.history = records.filter { $0.step < step }
        }
        // A different stream than a fresh run's, so a resumed run does not replay its draws.
        trainer.rng = SeededGenerator(seed: settings.seed &+ UInt64(step), stream: 31)
        var extra = file.metadata
        for key in ["step", "resampled", "settings", "history"] { extra[key] = nil }
        return (trainer, extra)
    }
}
