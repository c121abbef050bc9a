import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

/// Token streams of a fixed seed for the tiny GPT-2 (ids below 2000).
func tinyCorpus(streams: Int, length: Int, seed: UInt64) -> [[Int]] {
    var rng = SeededGenerator(seed: seed, stream: 7)
    return (0..<streams).map { _ in (0..<length).map { _ in rng.nextInt(2000) } }
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

@Suite("Tuned lens: identity at init, training lowers KL, files round-trip, bad files are typed errors")
struct TunedLensTests {
    let model: HookedTransformer
    init() throws { model = try TinyGPT2.model() }

    func settings(steps: Int, checkpointEvery: Int = 0) -> TunedLensSettings {
        TunedLensSettings(steps: steps, batch: 2, context: 12, seed: 3,
                          optimizer: AdamWConfig(learningRate: 1e-2, totalSteps: steps, weightDecay: 0, clipNorm: nil),
                          checkpointEvery: checkpointEvery)
    }

    /// The identity translators give the logit lens: through `logitLens(tuned:)`, through the evaluation's
    /// `lensLogProbs`, and on the tape (the trainer's loss at step 0 is the logit lens's KL).
    @Test func identityLensIsTheLogitLens() throws {
        let tokens = [464, 3290, 318, 257, 1332, 286, 262, 995]
        let identity = TunedLens(identityLayers: model.config.nLayers, dModel: model.config.dModel, modelName: "tiny")
        let plain = try model.logitLens(tokens: tokens)
        let tuned = try model.logitLens(tokens: tokens, tuned: identity)
        #expect(plain.logits.scalars == tuned.logits.scalars)

        // lensLogProbs (used by the evaluation) against the logit lens's own normalization code.
        let (T, d, v) = (tokens.count, model.config.dModel, model.config.dVocab)
        let (_, cache) = try model.runWithCache(.tokens([tokens]), select: .names([.residPre(1)]))
        let mine = try model.lensLogProbs(cache[.residPre(1)]!.reshaped([T, d]))
        let label = try #require(plain.labels.firstIndex(of: "1_pre"))
        let theirs = Array(plain.logits.logSoftmax().scalars[(label * T * v)..<((label + 1) * T * v)])
        #expect(maxAbsDifference(mine.scalars, theirs) < 1e-4)

        // The tape's per-layer KL at init equals the evaluation's logit-lens KL on the same windows.
        let trainer = try TunedLensTrainer(model: model, modelName: "tiny", corpus: tinyCorpus(streams: 2, length: 40, seed: 1), settings: settings(steps: 1))
        let windows = trainer.windows(step: 0)
        let (perLayer, _) = try trainer.lossAndGradients(windows)
        let eval = try model.lensDivergence(windows: windows)
        // lossAndGradients averages over all rows at once; the evaluation, window by window: same mean.
        #expect(maxAbsDifference(perLayer, eval.logitLens) < 1e-4, "tape \(perLayer) vs evaluation \(eval.logitLens)")
    }

    /// A few dozen Adam steps lower KL(final ‖ lens) at every layer, on held-out windows too.
    @Test func trainingLowersKL() throws {
        let trainer = try TunedLensTrainer(model: model, modelName: "tiny", corpus: tinyCorpus(streams: 4, length: 60, seed: 1), settings: settings(steps: 30))
        try trainer.train()
        let heldOut = tinyCorpus(streams: 3, length: 12, seed: 99)
        let eval = try model.lensDivergence(windows: heldOut, tuned: trainer.lens)
        let tuned = try #require(eval.tunedLens)
        for l in 0..<model.config.nLayers {
            #expect(tuned[l] < 0.8 * eval.logitLens[l], "layer \(l): tuned \(tuned[l]) vs logit lens \(eval.logitLens[l])")
        }
        #expect(trainer.history.last!.loss < 0.8 * trainer.history.first!.loss)
    }

    /// Stopping after 2 steps, checkpointing and resuming gives the lens of 4 uninterrupted steps.
    @Test func resumeIsExact() throws {
        let corpus = tinyCorpus(streams: 3, length: 40, seed: 5)
        let straight = try TunedLensTrainer(model: model, modelName: "tiny", corpus: corpus, settings: settings(steps: 4))
        try straight.train()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tuned-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let first = try TunedLensTrainer(model: model, modelName: "tiny", corpus: corpus, settings: settings(steps: 4))
        var calls = 0
        let finished = try first.train(checkpoint: url, shouldStop: { calls += 1; return calls > 2 })
        #expect(!finished && first.step == 2)
        let resumed = try TunedLensTrainer.resume(from: url, model: model, corpus: corpus)
        #expect(resumed.step == 2 && resumed.history.count == 2)
        try resumed.train(checkpoint: url)
        for l in 0..<model.config.nLayers {
            #expect(resumed.lens.weights[l].scalars == straight.lens.weights[l].scalars, "layer \(l) A")
            #expect(resumed.lens.biases[l].scalars == straight.lens.biases[l].scalars, "layer \(l) b")
        }
        // The checkpoint is itself a lens.
        #expect(try TunedLens.load(path: url.path).weights[1].scalars == straight.lens.weights[1].scalars)
    }

    @Test func saveLoadRoundTrip() throws {
        var rng = SeededGenerator(seed: 4)
        let d = 6
        let lens = try TunedLens(weights: (0..<3).map { _ in Tensor(unchecked: [d, d], (0..<(d * d)).map { _ in rng.nextGaussian() }) },
                                 biases: (0..<3).map { _ in Tensor(unchecked: [d], (0..<d).map { _ in rng.nextGaussian() }) },
                                 modelName: "m")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lens-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try lens.save(to: url)
        let back = try TunedLens.load(path: url.path)
        #expect(back.modelName == "m" && back.dModel == d && back.nLayers == 3)
        for l in 0..<3 {
            #expect(back.weights[l].scalars == lens.weights[l].scalars)
            #expect(back.biases[l].scalars == lens.biases[l].scalars)
        }
        // Stored as nn.Linear's [out, in]: the file's weight is Aᵀ, and translate is h + h·A + b.
        let file = try SafetensorsFile(path: url.path)
        #expect(try file.tensor("layer_translators.2.weight").scalars == lens.weights[2].transposed().scalars)
        let h = Tensor(unchecked: [1, d], (0..<d).map { Float($0) - 2 })
        let y = try lens.translate(h, layer: 2)
        for j in 0..<d {
            let expected = h.scalars[j] + (0..<d).reduce(Float(0)) { $0 + h.scalars[$1] * lens.weights[2].scalars[$1 * d + j] } + lens.biases[2].scalars[j]
            #expect(abs(y.scalars[j] - expected) < 1e-4)
        }
    }

    @Test func badFilesAreTypedErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("badlens-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("none.safetensors").path
        #expect(throws: TunedLensError.notATunedLens(path: missing, reason: "no such file")) { try TunedLens.load(path: missing) }

        // A model's safetensors is not a lens.
        let modelFile = TinyGPT2.folder + "/model.safetensors"
        #expect { try TunedLens.load(path: modelFile) } throws: { error in
            guard case TunedLensError.notATunedLens(_, let reason) = error else { return false }
            return reason.contains("format")
        }

        // Right metadata, wrong shape.
        let bad = dir.appendingPathComponent("bad.safetensors")
        try writeSafetensors([("layer_translators.0.weight", Tensor(zeros: [4, 3])), ("layer_translators.0.bias", Tensor(zeros: [4]))],
                             metadata: ["format": "loupe-tuned-lens-1", "d_model": "4", "n_layers": "1"], to: bad)
        #expect(throws: TunedLensError.badShape(path: bad.path, tensor: "layer_translators.0.weight", expected: [4, 4], found: [4, 3])) {
            try TunedLens.load(path: bad.path)
        }
        // A missing layer.
        try writeSafetensors([("layer_translators.0.weight", Tensor(zeros: [4, 4])), ("layer_translators.0.bias", Tensor(zeros: [4]))],
                             metadata: ["format": "loupe-tuned-lens-1", "d_model": "4", "n_layers": "2"], to: bad)
        #expect(throws: TunedLensError.notATunedLens(path: bad.path, reason: "no tensor layer_translators.1.weight (n_layers is 2)")) {
            try TunedLens.load(path: bad.path)
        }
        // A lens for another model.
        let other = TunedLens(identityLayers: 3, dModel: 8, modelName: "other")
        #expect(throws: TunedLensError.modelMismatch(lens: "other", expected: "3 layers and d_model 8", found: "2 layers and d_model 32")) {
            try model.logitLens(tokens: [1, 2, 3], tuned: other)
        }
        // A lens file is not a training checkpoint.
        try TunedLens(identityLayers: 2, dModel: 32, modelName: "x").save(to: bad)
        #expect(throws: TrainingError.self) { try TunedLensTrainer.resume(from: bad, model: model, corpus: [[1, 2, 3]]) }
    }
}
