// Training a tuned lens (Belrose et al. 2023): the frozen model runs on random windows of a corpus
// (the inference forward pass, so any architecture works); every layer's input residual and the final
// log-probabilities are harvested; then each layer's translator h ↦ h + h·A_l + b_l, followed by the
// model's final norm and unembedding, is optimized on the tape to minimize KL(p_final ‖ p_lens),
// averaged over positions. Layers have separate parameters and separate losses; the reported loss is
// their mean.
//
// Optimizer: AdamW (with warmup and cosine decay) rather than the paper's SGD with Nesterov momentum
// (lr 1, 250 steps of 2¹⁸ tokens): our budget is a few hundred steps of a few hundred tokens, where
// Adam's per-parameter scaling converges much faster. Weight decay on A_l pulls towards the identity
// translator (the logit lens).
//
// Cost per token and layer: the unembedding forward and its input gradient, 2 · d_model · d_vocab
// multiply-adds (57 M for SmolLM2-135M), dwarfing the translator's d_model² (0.33 M).

import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor

/// Settings of a tuned-lens run (saved in checkpoints).
public struct TunedLensSettings: Codable, Sendable, Equatable {
    public var steps: Int
    /// Windows per step.
    public var batch: Int
    /// Tokens per window.
    public var context: Int
    public var seed: UInt64
    public var optimizer: AdamWConfig
    /// Save a checkpoint every this many steps (0: only at the end and when stopped).
    public var checkpointEvery: Int

    public init(steps: Int, batch: Int = 2, context: Int = 128, seed: UInt64 = 0,
                optimizer: AdamWConfig? = nil, checkpointEvery: Int = 10) {
        self.steps = steps
        self.batch = batch
        self.context = context
        self.seed = seed
        self.optimizer = optimizer ?? AdamWConfig(learningRate: 1e-3, totalSteps: steps, warmupSteps: min(10, steps / 10),
                                                  weightDecay: 1e-3, beta1: 0.9, beta2: 0.99, clipNorm: nil)
        self.checkpointEvery = checkpointEvery
    }
}

/// A tuned lens being trained on a frozen model.
public final class TunedLensTrainer {
    public let model: HookedTransformer
    public let settings: TunedLensSettings
    /// Token streams to draw windows from (each at least one window long).
    public let corpus: [[Int]]
    public private(set) var lens: TunedLens
    public private(set) var optimizer: AdamW
    public private(set) var history: [TrainingRecord] = []
    /// The next step to run (steps already done).
    public var step: Int { optimizer.step }

    /// The head every lens reads through: the final norm's weight and bias and the unembedding (constants).
    private let lnW: Variable?, lnB: Variable?, wU: Variable, bU: Variable?

    /// Starts from `lens` (default: the identity lens, A = 0 and b = 0).
    /// - Throws: `TrainingError.invalid` for bad settings or a corpus without a full window.
    public init(model: HookedTransformer, modelName: String, corpus: [[Int]], settings: TunedLensSettings,
                lens: TunedLens? = nil) throws {
        guard settings.steps > 0, settings.batch > 0, settings.context > 0 else {
            throw TrainingError.invalid("steps, batch and context must be positive, found \(settings.steps), \(settings.batch), \(settings.context)")
        }
        let usable = corpus.filter { $0.count >= settings.context }
        guard !usable.isEmpty else {
            throw TrainingError.invalid("no text of the corpus has \(settings.context) tokens (the longest has \(corpus.map(\.count).max() ?? 0))")
        }
        for stream in usable { for t in stream where t < 0 || t >= model.config.dVocab { throw InterpError.tokenOutOfRange(token: t, dVocab: model.config.dVocab) } }
        let start = lens ?? TunedLens(identityLayers: model.config.nLayers, dModel: model.config.dModel, modelName: modelName)
        try start.check(against: model.config)
        self.model = model
        self.settings = settings
        self.corpus = usable
        self.lens = start
        self.optimizer = try AdamW(config: settings.optimizer)
        let w = model.weights
        lnW = w.lnFinalW.map { Variable($0) }
        lnB = w.lnFinalB.map { Variable($0) }
        wU = Variable(w.wU)
        bU = w.bU.scalars.contains { $0 != 0 } ? Variable(w.bU) : nil
    }

    /// The windows of a step: `batch` random windows of `context` tokens, chosen by a generator seeded
    /// with (seed, step), so that a resumed run sees what the uninterrupted one would.
    public func windows(step: Int) -> [[Int]] {
        var rng = SeededGenerator(seed: settings.seed, stream: UInt64(step))
        let starts = corpus.map { $0.count - settings.context + 1 }   // valid start positions per stream
        let total = starts.reduce(0, +)
        return (0..<settings.batch).map { _ in
            var k = rng.nextInt(total), s = 0
            while k >= starts[s] { k -= starts[s]; s += 1 }
            return Array(corpus[s][k..<(k + settings.context)])
        }
    }

    /// Lens logits on the tape for residuals `h [rows, d_model]` through translator `l` (nil: none).
    func lensLogits(_ h: Variable, translator: (a: Variable, b: Variable)?) throws -> Variable {
        var x = h
        if let t = translator { x = try (h + h.matmul(t.a)).addingRow(t.b) }   // h + h·A + b
        var y = x.normalized(centered: model.config.centresNorm, eps: model.config.eps).normalized
        if let lnW { y = try y.multiplyingRow(lnW) }
        if let lnB { y = try y.addingRow(lnB) }
        var logits = try y.matmul(wU)   // [rows, d_vocab]
        if let bU { logits = try logits.addingRow(bU) }
        return logits
    }

    /// Harvests the residuals and final log-probabilities of `windows`: `[layer]` of `[rows, d_model]`
    /// and `[rows, d_vocab]`.
    func harvest(_ windows: [[Int]]) throws -> (residuals: [Tensor], finalLogProbs: Tensor) {
        let nL = model.config.nLayers, d = model.config.dModel
        let rows = windows.reduce(0) { $0 + $1.count }
        let (logits, cache) = try model.runWithCache(.tokens(windows), select: .names(Set((0..<nL).map { HookName.residPre($0) })))
        let residuals = try (0..<nL).map { l -> Tensor in
            guard let r = cache[.residPre(l)] else { throw TrainingError.invalid("resid_pre \(l) was not cached") }
            return try r.reshaped([rows, d])
        }
        return (residuals, try logits.reshaped([rows, model.config.dVocab]).logSoftmax())
    }

    /// Per-layer KL(final ‖ lens) of `windows` with the current translators, and their gradients
    /// (`A.{l}` `[d_model, d_model]`, `b.{l}` `[d_model]`).
    public func lossAndGradients(_ windows: [[Int]]) throws -> (perLayer: [Float], gradients: [String: [Float]]) {
        let (residuals, target) = try harvest(windows)
        var losses: [Float] = [], grads: [String: [Float]] = [:]
        let scale = 1 / Float(model.config.nLayers)   // the loss is the mean over layers
        for (l, resid) in residuals.enumerated() {
            let a = Variable(lens.weights[l], requiresGrad: true), b = Variable(lens.biases[l], requiresGrad: true)
            let loss = try lensLogits(Variable(resid), translator: (a, b)).klDivergence(targetLogProbs: target)
            try loss.scaled(by: scale).backward()
            losses.append(loss.value.scalars[0])
            grads["A.\(l)"] = a.gradScalars ?? [Float](repeating: 0, count: a.value.count)
            grads["b.\(l)"] = b.gradScalars ?? [Float](repeating: 0, count: b.value.count)
        }
        return (losses, grads)
    }

    /// Trains until `settings.steps`, `shouldStop()`, or an error; checkpoints into `checkpoint` (a
    /// safetensors file, itself a loadable lens) every `checkpointEvery` steps, at the end and when stopped.
    /// - Returns: whether all steps are done.
    @discardableResult
    public func train(checkpoint: URL? = nil, progress: ((TrainingProgress) -> Void)? = nil,
                      shouldStop: () -> Bool = { false }) throws -> Bool {
        let start = Date()
        var tokens = 0
        while step < settings.steps {
            if shouldStop() {
                if let checkpoint { try saveCheckpoint(to: checkpoint) }
                return false
            }
            let s = step
            let windows = windows(step: s)
            let (perLayer, grads) = try lossAndGradients(windows)
            let loss = perLayer.reduce(0, +) / Float(perLayer.count)
            guard loss.isFinite else { throw TrainingError.diverged(step: s, loss: loss) }
            var params: [String: Tensor] = [:]
            for l in 0..<lens.nLayers { params["A.\(l)"] = lens.weights[l]; params["b.\(l)"] = lens.biases[l] }
            let (lr, norm) = optimizer.update(&params, gradients: grads)
            for l in 0..<lens.nLayers {
                if let a = params["A.\(l)"] { lens.weights[l] = a }
                if let b = params["b.\(l)"] { lens.biases[l] = b }
            }
            history.append(TrainingRecord(step: s, loss: loss, learningRate: lr, gradNorm: norm))
            tokens += windows.reduce(0) { $0 + $1.count }
            if let progress {
                let elapsed = Date().timeIntervalSince(start)
                let recent = history.suffix(20)
                progress(TrainingProgress(step: step, totalSteps: settings.steps, loss: loss,
                                          smoothedLoss: recent.map(\.loss).reduce(0, +) / Float(recent.count),
                                          tokensPerSecond: Double(tokens) / max(elapsed, 1e-9), elapsed: elapsed, learningRate: lr))
            }
            if let checkpoint, settings.checkpointEvery > 0, step % settings.checkpointEvery == 0, step < settings.steps {
                try saveCheckpoint(to: checkpoint)
            }
        }
        if let checkpoint { try saveCheckpoint(to: checkpoint) }
        return true
    }

    // MARK: - Checkpoints

    /// Writes the lens (loadable with `TunedLens.load`), AdamW's moments (`adam.m.*`, `adam.v.*`), and
    /// the step, settings and history in the metadata.
    public func saveCheckpoint(to url: URL) throws {
        var tensors: [(name: String, tensor: Tensor)] = []
        for name in optimizer.m.keys.sorted() {
            guard let m = optimizer.m[name], let v = optimizer.v[name] else { continue }
            tensors.append(("adam.m." + name, Tensor(unchecked: [m.count], m)))
            tensors.append(("adam.v." + name, Tensor(unchecked: [v.count], v)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let meta = ["step": String(step),
                    "settings": String(decoding: try encoder.encode(settings), as: UTF8.self),
                    "history": String(decoding: try encoder.encode(history), as: UTF8.self)]
        // The lens's own tensors and metadata first, then the optimizer state in the same file.
        let tmp = url.appendingPathExtension("tmp")
        try lens.save(to: tmp, extra: meta)
        let file = try SafetensorsFile(path: tmp.path)
        let lensTensors = try file.entries.keys.sorted().map { ($0, try file.tensor($0)) }
        try writeSafetensors(lensTensors + tensors, metadata: file.metadata, to: tmp)
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: tmp, to: url)
    }

    /// Resumes from a checkpoint written by `saveCheckpoint`, on the same model and corpus. `steps`
    /// extends (or shortens) the run.
    public static func resume(from url: URL, model: HookedTransformer, corpus: [[Int]], steps: Int? = nil) throws -> TunedLensTrainer {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError.checkpoint(path: path, reason: "no such file")
        }
        let lens = try TunedLens.load(path: path)
        let file = try SafetensorsFile(path: path)
        guard let stepText = file.metadata["step"], let step = Int(stepText), step >= 0,
              let settingsText = file.metadata["settings"],
              var settings = try? JSONDecoder().decode(TunedLensSettings.self, from: Data(settingsText.utf8)) else {
            throw TrainingError.checkpoint(path: path, reason: "a tuned lens without training state (no valid 'step' and 'settings' in its metadata)")
        }
        if let steps { settings.steps = steps }
        var m: [String: [Float]] = [:], v: [String: [Float]] = [:]
        for name in file.entries.keys {
            if name.hasPrefix("adam.m.") { m[String(name.dropFirst(7))] = try file.tensor(name).scalars }
            if name.hasPrefix("adam.v.") { v[String(name.dropFirst(7))] = try file.tensor(name).scalars }
        }
        let trainer = try TunedLensTrainer(model: model, modelName: lens.modelName, corpus: corpus, settings: settings, lens: lens)
        var counts: [String: Int] = [:]
        for l in 0..<lens.nLayers { counts["A.\(l)"] = lens.weights[l].count; counts["b.\(l)"] = lens.biases[l].count }
        do {
            try trainer.optimizer.restore(step: step, m: m, v: v, parameterCounts: counts)
        } catch {
            throw TrainingError.checkpoint(path: path, reason: "\(error)")
        }
        if let h = file.metadata["history"], let records = try? JSONDecoder().decode([TrainingRecord].self, from: Data(h.utf8)) {
            trainer.history = records.filter { $0.step < step }
        }
        return trainer
    }
}
