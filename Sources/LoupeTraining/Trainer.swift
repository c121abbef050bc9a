// The training loop: batches from a seeded source, the differentiable forward pass, cross-entropy,
// AdamW; checkpoints every N steps and when asked to stop. Every random choice (initialization, batch,
// dropout) comes from a generator seeded by (seed, step), so a run resumed from a checkpoint computes
// exactly what the uninterrupted run would have.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

/// A batch: token rows of one length, and one next-token target per position (`-1`: no loss there).
public struct Batch: Sendable {
    public var tokens: [[Int]]
    public var targets: [Int]

    public init(tokens: [[Int]], targets: [Int]) {
        self.tokens = tokens
        self.targets = targets
    }
}

/// Where training batches come from. `batch(step:)` must depend only on the step and the generator,
/// which the trainer seeds from (seed, step).
public protocol BatchSource {
    func batch(step: Int, rng: inout SeededGenerator) throws -> Batch
}

/// Settings of a training run (saved in checkpoints).
public struct TrainingSettings: Codable, Sendable, Equatable {
    public var steps: Int
    public var seed: UInt64
    public var optimizer: AdamWConfig
    /// Dropout on embeddings and block outputs during training (0: none).
    public var dropout: Float = 0
    /// Save a checkpoint every this many steps (0: only at the end and on interrupt).
    public var checkpointEvery: Int = 0

    public init(steps: Int, seed: UInt64, optimizer: AdamWConfig, dropout: Float = 0, checkpointEvery: Int = 0) {
        self.steps = steps
        self.seed = seed
        self.optimizer = optimizer
        self.dropout = dropout
        self.checkpointEvery = checkpointEvery
    }
}

/// One step's record.
public struct TrainingRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var loss: Float
    public var learningRate: Float
    public var gradNorm: Float
}

/// What a progress callback sees after each step.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Float
    /// Mean loss over the last 50 steps.
    public var smoothedLoss: Float
    public var tokensPerSecond: Double
    public var elapsed: Double
    public var learningRate: Float
}

/// A model being trained, with its optimizer state and history.
public final class Trainer {
    public let config: ModelConfig
    public let settings: TrainingSettings
    public private(set) var parameters: [String: Tensor]
    public private(set) var optimizer: AdamW
    public private(set) var history: [TrainingRecord] = []
    /// The next step to run (steps already done).
    public var step: Int { optimizer.step }

    /// Starts from `parameters` (TransformerLens names), or from a seeded random initialization.
    public init(config: ModelConfig, settings: TrainingSettings, parameters: [String: Tensor]? = nil) throws {
        try config.validate()
        guard settings.steps > 0 else { throw TrainingError.invalid("steps must be positive, found \(settings.steps)") }
        guard (0..<1).contains(settings.dropout) else { throw TrainingError.invalid("dropout must be in [0, 1), found \(settings.dropout)") }
        self.config = config
        self.settings = settings
        self.optimizer = try AdamW(config: settings.optimizer)
        let params = parameters ?? Trainer.initialParameters(config: config, seed: settings.seed)
        // Checks names and shapes by building the model once.
        _ = try HookedTransformer(config: config, weights: TransformerWeights(config: config, source: "the parameters") { params[$0] })
        self.parameters = params
    }

    /// TransformerLens's initialization: matrices ~ N(0, 0.8/√d_model), embeddings likewise, biases 0,
    /// norm weights 1.
    public static func initialParameters(config c: ModelConfig, seed: UInt64) -> [String: Tensor] {
        var rng = SeededGenerator(seed: seed, stream: 0xC0FFEE)
        let std = 0.8 / Float(c.dModel).squareRoot()
        func normal(_ shape: [Int]) -> Tensor {
            Tensor(unchecked: shape, (0..<shape.product).map { _ in rng.nextGaussian() * std })
        }
        let (d, h, kv, dh, m, v) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead, c.dMLP, c.dVocab)
        var p: [String: Tensor] = ["embed.W_E": normal([v, d]), "unembed.W_U": normal([d, v]), "unembed.b_U": Tensor(zeros: [v])]
        if c.positional == .standard { p["pos_embed.W_pos"] = normal([c.nCtx, d]) }
        let norm = c.normHasWeights
        let bias = c.normalization == .layerNorm
        func addNorm(_ prefix: String) {
            if norm { p[prefix + ".w"] = Tensor(repeating: 1, shape: [d]) }
            if bias { p[prefix + ".b"] = Tensor(zeros: [d]) }
        }
        for l in 0..<c.nLayers {
            let pre = "blocks.\(l)."
            addNorm(pre + "ln1")
            p[pre + "attn.W_Q"] = normal([h, d, dh]); p[pre + "attn.b_Q"] = Tensor(zeros: [h, dh])
            p[pre + "attn.W_K"] = normal([kv, d, dh]); p[pre + "attn.b_K"] = Tensor(zeros: [kv, dh])
            p[pre + "attn.W_V"] = normal([kv, d, dh]); p[pre + "attn.b_V"] = Tensor(zeros: [kv, dh])
            p[pre + "attn.W_O"] = normal([h, dh, d]); p[pre + "attn.b_O"] = Tensor(zeros: [d])
            if c.attnOnly { continue }
            addNorm(pre + "ln2")
            p[pre + "mlp.W_in"] = normal([d, m]); p[pre + "mlp.b_in"] = Tensor(zeros: [m])
            if c.gatedMLP { p[pre + "mlp.W_gate"] = normal([d, m]) }
            p[pre + "mlp.W_out"] = normal([m, d]); p[pre + "mlp.b_out"] = Tensor(zeros: [d])
        }
        if c.hasUnembedding { addNorm("ln_final") } else { p["unembed.W_U"] = Tensor(zeros: [d, 0]); p["unembed.b_U"] = Tensor(zeros: [0]) }
        if c.postLayerNorm {
            // BERT: token types, the embedding LayerNorm, and the masked-LM head's dense layer (its norm is ln_final).
            p["embed.token_type_embed.W_token_type"] = normal([c.nTokenTypes, d])
            addNorm("embed.ln")
            p["mlm_head.W"] = c.maskedLMHead ? normal([d, d]) : Tensor(zeros: [0, 0])
            p["mlm_head.b"] = Tensor(zeros: [c.maskedLMHead ? d : 0])
        }
        return p
    }

    /// The model with the current parameters.
    public func model() throws -> HookedTransformer {
        try HookedTransformer(config: config, weights: TransformerWeights(config: config, source: "the trainer") { parameters[$0] })
    }

    /// Loss and gradients of one batch with the current parameters (no update).
    public func lossAndGradients(_ batch: Batch, dropoutSeed: UInt64? = nil) throws -> (loss: Float, gradients: [String: [Float]]) {
        let vars = parameters.mapValues { Variable($0, requiresGrad: true) }
        var rng = SeededGenerator(seed: settings.seed, stream: dropoutSeed ?? 0)
        let run = try HookedTransformer.differentiableForward(config: config, parameters: vars, tokens: batch.tokens,
                                                              dropout: dropoutSeed == nil ? 0 : settings.dropout, rng: &rng)
        let loss = try run.logits.crossEntropy(targets: batch.targets)
        try loss.backward()
        var grads: [String: [Float]] = [:]
        for (name, v) in vars { grads[name] = v.gradScalars ?? [Float](repeating: 0, count: v.value.count) }
        return (loss.value.scalars[0], grads)
    }

    /// Trains until `settings.steps`, `shouldStop()` says so, or an error. Saves a checkpoint into
    /// `checkpointDirectory` every `checkpointEvery` steps, at the end, and when stopped.
    /// - Returns: whether all steps are done.
    @discardableResult
    public func train(_ data: BatchSource, checkpointDirectory: URL? = nil,
                      progress: ((TrainingProgress) -> Void)? = nil, shouldStop: () -> Bool = { false }) throws -> Bool {
        let start = Date()
        var tokens = 0
        while step < settings.steps {
            if shouldStop() {
                if let dir = checkpointDirectory { try saveCheckpoint(to: dir) }
                return false
            }
            let s = step
            var rng = SeededGenerator(seed: settings.seed, stream: UInt64(s) &* 2 &+ 1)
            let batch = try data.batch(step: s, rng: &rng)
            let (loss, grads) = try lossAndGradients(batch, dropoutSeed: UInt64(s) &* 2 &+ 2)
            guard loss.isFinite else { throw TrainingError.diverged(step: s, loss: loss) }
            let (lr, norm) = optimizer.update(&parameters, gradients: grads)
            history.append(TrainingRecord(step: s, loss: loss, learningRate: lr, gradNorm: norm))
            tokens += batch.tokens.reduce(0) { $0 + $1.count }
            if let progress {
                let elapsed = Date().timeIntervalSince(start)
                let recent = history.suffix(50)
                progress(TrainingProgress(step: step, totalSteps: settings.steps, loss: loss,
                                          smoothedLoss: recent.map(\.loss).reduce(0, +) / Float(recent.count),
                                          tokensPerSecond: Double(tokens) / max(elapsed, 1e-9), elapsed: elapsed, learningRate: lr))
            }
            if let dir = checkpointDirectory, settings.checkpointEvery > 0, step % settings.checkpointEvery == 0, step < settings.steps {
                try saveCheckpoint(to: dir)
            }
        }
        if let dir = checkpointDirectory { try saveCheckpoint(to: dir) }
        return true
    }

    // MARK: - Checkpoints

    static let checkpointFile = "checkpoint.safetensors"
    static let historyFile = "history.json"

    /// Writes the parameters, AdamW's moments, the step, settings and history into `directory`, plus the
    /// model itself in TransformerLens layout (`config.json`, `model.safetensors`), so that the folder
    /// loads as a model (`loupe run --model DIR`).
    public func saveCheckpoint(to directory: URL) throws {
        try TransformerLensFormat.write(model(), to: directory)
        var tensors: [(name: String, tensor: Tensor)] = []
        for name in parameters.keys.sorted() {
            let p = parameters[name]!
            tensors.append(("param." + name, p))
            if let m = optimizer.m[name], let v = optimizer.v[name] {
                tensors.append(("adam.m." + name, Tensor(unchecked: p.shape, m)))
                tensors.append(("adam.v." + name, Tensor(unchecked: p.shape, v)))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let meta = ["step": String(step),
                    "config": String(decoding: try encoder.encode(config), as: UTF8.self),
                    "settings": String(decoding: try encoder.encode(settings), as: UTF8.self)]
        try writeSafetensors(tensors, metadata: meta, to: directory.appendingPathComponent(Self.checkpointFile))
        try writeAtomically(try encoder.encode(history), to: directory.appendingPathComponent(Self.historyFile))
    }

    /// Resumes from a checkpoint written by `saveCheckpoint`. `steps` extends (or shortens) the run.
    public static func resume(from directory: URL, steps: Int? = nil) throws -> Trainer {
        let path = directory.appendingPathComponent(checkpointFile).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError.checkpoint(path: path, reason: "no checkpoint here (expected \(checkpointFile))")
        }
        let file = try SafetensorsFile(path: path)
        func decode<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
            guard let s = file.metadata[key] else { throw TrainingError.checkpoint(path: path, reason: "no '\(key)' in its metadata") }
            do { return try JSONDecoder().decode(type, from: Data(s.utf8)) } catch {
                throw TrainingError.checkpoint(path: path, reason: "'\(key)' is not valid: \(error)")
            }
        }
        guard let stepText = file.metadata["step"], let step = Int(stepText), step >= 0 else {
            throw TrainingError.checkpoint(path: path, reason: "no valid 'step' in its metadata")
        }
        let config = try decode("config", ModelConfig.self)
        var settings = try decode("settings", TrainingSettings.self)
        if let steps { settings.steps = steps }
        var params: [String: Tensor] = [:], m: [String: [Float]] = [:], v: [String: [Float]] = [:]
        for name in file.entries.keys {
            if name.hasPrefix("param.") { params[String(name.dropFirst(6))] = try file.tensor(name) }
            if name.hasPrefix("adam.m.") { m[String(name.dropFirst(7))] = try file.tensor(name).scalars }
            if name.hasPrefix("adam.v.") { v[String(name.dropFirst(7))] = try file.tensor(name).scalars }
        }
        let trainer = try Trainer(config: config, settings: settings, parameters: params)
        do {
            try trainer.optimizer.restore(step: step, m: m, v: v, parameterCounts: params.mapValues(\.count))
        } catch {
            throw TrainingError.checkpoint(path: path, reason: "\(error)")
        }
        let historyURL = directory.appendingPathComponent(historyFile)
        if let data = try? Data(contentsOf: historyURL) {
            trainer.history = (try? JSONDecoder().decode([TrainingRecord].self, from: data)) ?? []
            trainer.history = trainer.history.filter { $0.step < step }
        }
        return trainer
    }
}
