// A whole SAE run on a model and a corpus: split the tokens into training and held-out parts, harvest
// activations through a shuffle buffer, initialize b_dec from the data, train with checkpoints, and
// evaluate on held-out text (reconstruction metrics and cross-entropy loss recovered).

import Foundation
import LoupeModels
import LoupeTensor

/// What to train and how.
public struct SAERunOptions: Sendable {
    public var architecture: SAEArchitecture
    public var dSAE: Int
    public var k: Int?
    public var contextSize: Int = 128
    /// Training tokens (rows seen = steps × batch size).
    public var settings: SAETrainingSettings
    /// Rows in the shuffle buffer (at least 2 × batch size).
    public var bufferRows: Int
    /// Windows per forward pass when harvesting.
    public var windowsPerBatch: Int = 8
    /// When set, harvest at most this many training activations once, keep them in memory, and cycle
    /// through them (the shuffle buffer still mixes them): for runs longer than one pass of the model
    /// over the corpus can afford. Resuming harvests them again.
    public var storedRows: Int?
    /// The share of the token stream held out for evaluation (taken from its end).
    public var heldOutFraction: Double = 0.05
    /// Held-out windows used for the cross-entropy evaluation (0: skip it).
    public var evalWindows: Int = 16
    public var modelName: String?

    public init(architecture: SAEArchitecture, dSAE: Int, k: Int? = nil, contextSize: Int = 128,
                settings: SAETrainingSettings, bufferRows: Int? = nil, modelName: String? = nil) {
        self.architecture = architecture
        self.dSAE = dSAE
        self.k = k
        self.contextSize = contextSize
        self.settings = settings
        self.bufferRows = bufferRows ?? max(4 * settings.batchSize, 8192)
        self.modelName = modelName
    }
}

/// The outcome of a run.
public struct SAERunResult: Codable, Sendable {
    public let hook: String
    public let dIn: Int
    public let dSAE: Int
    public let architecture: String
    public let k: Int?
    public let steps: Int
    public let trainingTokens: Int
    public let corpusTokens: Int
    /// Passes over the training activations (the stored ones with `storedRows`).
    public let epochs: Double
    public let seconds: Double
    /// Dead (not fired for the dead window) at the end of training.
    public let deadFraction: Double
    public let resampled: Int
    public let heldOut: SAEReconstructionMetrics
    public let losses: SAESpliceLosses?
}

/// Progress of a run, for a progress bar.
public struct SAERunProgress: Sendable {
    public let step: Int
    public let steps: Int
    public let record: SAEStepRecord
    public let deadFraction: Float
}

extension HookedTransformer {
    /// Trains an SAE on `hook` over `tokens`. With `checkpointDirectory`, checkpoints go there every
    /// `settings.checkpointEvery` steps and at the end (the final SAE too, in SAELens layout); with
    /// `resume`, training continues from the checkpoint there (the shuffle buffer is refilled from the
    /// saved corpus position, so a resumed run sees the same windows but not the same batches).
    public func trainSAE(hook: HookName, tokens: [Int], options: SAERunOptions, checkpointDirectory: URL? = nil,
                         resume: Bool = false, shouldStop: () -> Bool = { false },
                         harvestProgress: ((Int, Int) -> Void)? = nil,
                         progress: ((SAERunProgress) -> Void)? = nil) throws -> (sae: SparseAutoencoder, result: SAERunResult) {
        let started = Date()
        let held = max(options.contextSize * max(options.evalWindows, 2), Int(Double(tokens.count) * options.heldOutFraction))
        guard tokens.count >= held + 2 * options.contextSize else {
            throw SAEError.invalid("the corpus has \(tokens.count) tokens; training needs at least \(held + 2 * options.contextSize) (held-out part \(held) + 2 windows of \(options.contextSize))")
        }
        let trainTokens = Array(tokens[..<(tokens.count - held)])
        let heldTokens = Array(tokens[(tokens.count - held)...])
        var harvester = try ActivationHarvester(model: self, hook: hook, tokens: trainTokens, contextSize: options.contextSize,
                                                windowsPerBatch: options.windowsPerBatch)
        let probe = try ActivationHarvester.activations(model: self, hook: hook, windows: [Array(trainTokens.prefix(options.contextSize))], dropFirst: true)
        let dIn = probe.shape[1]

        let trainer: SAETrainer
        if resume, let dir = checkpointDirectory {
            let (t, extra) = try SAETrainer.resume(from: dir, steps: options.settings.steps)
            guard t.sae.config.hookName == hook.description, t.sae.config.dIn == dIn else {
                throw TrainingError.checkpoint(path: dir.path, reason: "it is an SAE on \(t.sae.config.hookName) (d_in \(t.sae.config.dIn)), not on \(hook) (d_in \(dIn))")
            }
            trainer = t
            harvester.position = Int(extra["corpus_position"] ?? "") ?? 0
        } else {
            var config = SAEConfig(architecture: options.architecture, dIn: dIn, dSAE: options.dSAE, k: options.k,
                                   hookName: hook.description, modelName: options.modelName, contextSize: options.contextSize)
            config.applyBDecToInput = true
            let sae = try SparseAutoencoder.initialized(config, seed: options.settings.seed)
            trainer = try SAETrainer(sae: sae, settings: options.settings)
        }
        // The activation source: the model window by window, or activations harvested once.
        var store: [Float] = []
        var storeCursor = 0
        if let cap = options.storedRows {
            let windows = min(harvester.windowCount, (cap + harvester.rowsPerWindow - 1) / harvester.rowsPerWindow)
            var harvestOnce = try ActivationHarvester(model: self, hook: hook, tokens: trainTokens, contextSize: options.contextSize,
                                                      windowsPerBatch: options.windowsPerBatch)
            store.reserveCapacity(windows * harvester.rowsPerWindow * dIn)
            var done = 0
            while done < windows {
                store += try harvestOnce.next().scalars
                done += options.windowsPerBatch
                harvestProgress?(min(done, windows), windows)
            }
        }
        let rowsPerChunk = options.windowsPerBatch * harvester.rowsPerWindow
        func nextRows() throws -> Tensor {
            guard !store.isEmpty else { return try harvester.next() }
            let total = store.count / dIn
            if storeCursor >= total { storeCursor = 0 }
            let end = min(storeCursor + rowsPerChunk, total)
            defer { storeCursor = end }
            return Tensor(unchecked: [end - storeCursor, dIn], Array(store[(storeCursor * dIn)..<(end * dIn)]))
        }
        var buffer = ShuffleBuffer(capacity: max(options.bufferRows, 2 * options.settings.batchSize), width: dIn,
                                   seed: options.settings.seed &+ UInt64(trainer.step))
        if trainer.step == 0 {
            // b_dec from a sample of the data (SAELens's geometric-median initialization).
            let sample = try buffer.next(min(options.settings.batchSize, 2048)) { try nextRows() }
            try trainer.initializeDecoderBias(from: sample)
        }
        func save() throws {
            if let dir = checkpointDirectory {
                try trainer.saveCheckpoint(to: dir, extra: ["corpus_position": String(harvester.position), "hook": hook.description])
            }
        }
        while trainer.step < options.settings.steps {
            if shouldStop() { try save(); break }
            let batch = try buffer.next(options.settings.batchSize) { try nextRows() }
            let record = try trainer.trainStep(batch)
            progress?(SAERunProgress(step: trainer.step, steps: options.settings.steps, record: record, deadFraction: trainer.deadFraction))
            if options.settings.checkpointEvery > 0, trainer.step % options.settings.checkpointEvery == 0,
               trainer.step < options.settings.steps {
                try save()
            }
        }
        try save()

        // Held-out evaluation.
        let heldHarvester = try ActivationHarvester(model: self, hook: hook, tokens: heldTokens, contextSize: options.contextSize)
        var windows: [[Int]] = []
        for w in 0..<heldHarvester.windowCount {
            windows.append(Array(heldTokens[(w * options.contextSize)..<((w + 1) * options.contextSize)]))
        }
        let evalWindows = Array(windows.prefix(max(options.evalWindows, 1) * 4))
        var heldRows: [Float] = []
        for start in stride(from: 0, to: evalWindows.count, by: 8) {
            let chunk = Array(evalWindows[start..<min(start + 8, evalWindows.count)])
            heldRows += try ActivationHarvester.activations(model: self, hook: hook, windows: chunk, dropFirst: true).scalars
        }
        let heldOut = try trainer.sae.reconstructionMetrics(Tensor(unchecked: [heldRows.count / dIn, dIn], heldRows))
        let losses = options.evalWindows > 0 ? try saeSpliceLosses(trainer.sae, windows: Array(windows.prefix(options.evalWindows))) : nil
        let rowsSeen = trainer.step * options.settings.batchSize
        let result = SAERunResult(
            hook: hook.description, dIn: dIn, dSAE: trainer.sae.config.dSAE, architecture: trainer.sae.config.architecture.rawValue,
            k: trainer.sae.config.k, steps: trainer.step, trainingTokens: rowsSeen, corpusTokens: tokens.count,
            epochs: Double(rowsSeen) / Double(max(store.isEmpty ? harvester.windowCount * harvester.rowsPerWindow : store.count / dIn, 1)),
            seconds: Date().timeIntervalSince(started), deadFraction: Double(trainer.deadFraction), resampled: trainer.resampled,
            heldOut: heldOut, losses: losses)
        return (trainer.sae, result)
    }
}
