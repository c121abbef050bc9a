import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

@Suite("AdamW, the training loop, checkpoints and resuming")
struct TrainerTests {
    @Test func adamWEqualsPyTorch() throws {
        let file = try SafetensorsFile(path: GradFixtures.directory.appendingPathComponent("grad-adamw.safetensors").path)
        var opt = try AdamW(config: AdamWConfig(learningRate: 0.01, totalSteps: 5, weightDecay: 0.1, beta1: 0.9, beta2: 0.98,
                                                clipNorm: nil, minLearningRateFraction: 1))
        var params = ["w": try file.tensor("w0")]
        for i in 0..<5 { opt.update(&params, gradients: ["w": try file.tensor("grad\(i)").scalars]) }
        let want = try file.tensor("final")
        #expect(params["w"]!.maxAbsDifference(want) < 1e-6)
    }

    @Test func scheduleWarmsUpDecaysAndClips() throws {
        let c = AdamWConfig(learningRate: 1, totalSteps: 110, warmupSteps: 10, minLearningRateFraction: 0.1)
        #expect(abs(c.learningRate(at: 0) - 0.1) < 1e-6)
        #expect(abs(c.learningRate(at: 9) - 1) < 1e-6)
        #expect(abs(c.learningRate(at: 60) - 0.55) < 1e-5)    // halfway through the cosine
        #expect(abs(c.learningRate(at: 110) - 0.1) < 1e-6)
        // Clipping: a huge gradient moves a parameter by about lr (Adam normalizes), and the reported norm is the raw one.
        var opt = try AdamW(config: AdamWConfig(learningRate: 0.1, totalSteps: 10, weightDecay: 0, clipNorm: 1))
        var p = ["b": Tensor([0, 0])]
        let (_, norm) = opt.update(&p, gradients: ["b": [300, 400]])
        #expect(abs(norm - 500) < 1e-3)
        #expect(abs(p["b"]!.scalars[0] + 0.1) < 1e-4)
        #expect(throws: TrainingError.self) { try AdamW(config: AdamWConfig(learningRate: -1, totalSteps: 10)) }
    }

    /// A short max-of-a-list run: the loss falls far below chance and the checkpoint resumes bit-exactly.
    @Test func interruptedRunResumesToTheSameWeights() throws {
        let task = MaxOfListTask()
        var settings = task.defaultSettings(seed: 5)
        settings.steps = 40
        settings.optimizer.totalSteps = 40
        settings.checkpointEvery = 0
        let straight = try Trainer(config: task.config, settings: settings)
        try straight.train(task)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try Trainer(config: task.config, settings: settings)
        var calls = 0
        let done = try first.train(task, checkpointDirectory: dir, shouldStop: { calls += 1; return calls > 17 })
        #expect(!done)
        #expect(first.step == 17)
        let resumed = try Trainer.resume(from: dir)
        #expect(resumed.step == 17)
        try resumed.train(task)
        #expect(resumed.step == 40)
        for (name, p) in straight.parameters {
            #expect(resumed.parameters[name] == p, "\(name) differs after resuming")
        }
        #expect(resumed.history.map(\.loss) == straight.history.map(\.loss))
        // The checkpoint folder is also a model folder.
        let loaded = try ModelLoader.load(path: dir.path).model
        #expect(loaded.config.attnOnly)
        #expect(loaded.hookNames().contains(.residMid(0)) == false)
        // Learning happened: the last losses sit well below the first (chance is ln 64 ≈ 4.16).
        let h = straight.history.map(\.loss)
        let late: Float = h.suffix(5).reduce(0, +) / 5, early: Float = h.prefix(5).reduce(0, +) / 5
        #expect(late < early - 0.5, "loss \(early) → \(late)")
        #expect(throws: TrainingError.self) { try Trainer.resume(from: dir.appendingPathComponent("nothing-here")) }
    }

    /// A checkpoint whose optimizer state does not fit its parameters is refused with a message, not a crash.
    @Test func lyingCheckpointIsATypedError() throws {
        let task = MaxOfListTask()
        var settings = task.defaultSettings(seed: 1)
        settings.steps = 2
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-lying-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = try Trainer(config: task.config, settings: settings)
        try trainer.train(task, checkpointDirectory: dir)
        let url = dir.appendingPathComponent("checkpoint.safetensors")
        let file = try SafetensorsFile(path: url.path)
        var tensors: [(name: String, tensor: Tensor)] = []
        for name in file.entries.keys.sorted() {
            var t = try file.tensor(name)
            if name == "adam.m.unembed.b_U" { t = Tensor([1, 2, 3]) }   // a moment of the wrong size
            tensors.append((name, t))
        }
        try writeSafetensors(tensors, metadata: file.metadata, to: url)
        #expect {
            try Trainer.resume(from: dir)
        } throws: { error in
            guard case TrainingError.checkpoint(_, let reason) = error else { return false }
            return reason.contains("unembed.b_U") && reason.contains("3 values")
        }
    }

    @Test func maxOfListReachesHighAccuracy() throws {
        let task = MaxOfListTask()
        var settings = task.defaultSettings(seed: 0)
        settings.steps = 300
        settings.optimizer.totalSteps = 300
        let trainer = try Trainer(config: task.config, settings: settings)
        try trainer.train(task)
        let accuracy = try task.accuracy(trainer.model())
        #expect(accuracy > 0.9, "max of a list after 300 steps: \(accuracy)")
    }

    /// An attention-only model computes what the same model with an all-zero MLP computes.
    @Test func attentionOnlyEqualsAZeroMLP() throws {
        let task = InductionTask(layers: 2)
        let params = Trainer.initialParameters(config: task.config, seed: 9)
        let attnOnly = try HookedTransformer(config: task.config, weights: TransformerWeights(config: task.config, source: "test") { params[$0] })
        var full = task.config
        full.attnOnly = false
        full.dMLP = 8
        var p2 = params
        for l in 0..<full.nLayers {
            let pre = "blocks.\(l)."
            p2[pre + "ln2.w"] = Tensor(repeating: 1, shape: [full.dModel]); p2[pre + "ln2.b"] = Tensor(zeros: [full.dModel])
            p2[pre + "mlp.W_in"] = Tensor(zeros: [full.dModel, 8]); p2[pre + "mlp.b_in"] = Tensor(zeros: [8])
            p2[pre + "mlp.W_out"] = Tensor(zeros: [8, full.dModel]); p2[pre + "mlp.b_out"] = Tensor(zeros: [full.dModel])
        }
        let withMLP = try HookedTransformer(config: full, weights: TransformerWeights(config: full, source: "test") { p2[$0] })
        let tokens = [[1, 5, 9, 1, 5, 9, 2]]
        #expect(try attnOnly.run(tokens).maxAbsDifference(withMLP.run(tokens)) < 1e-5)
        // On the tape too.
        #expect(try attnOnly.differentiableRun(tokens).logits.value.maxAbsDifference(attnOnly.run(tokens)) < 1e-4)
        #expect(!attnOnly.hookNames().contains(.mlpOut(0)))
        #expect(throws: (any Error).self) { try attnOnly.neuronInputOutputCosines(layer: 0) }
        var bad = task.config
        bad.dMLP = 4
        #expect(throws: ModelError.self) { try bad.validate() }
    }
}
