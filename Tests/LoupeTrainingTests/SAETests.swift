import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

/// SAE fixtures: Tests/Fixtures/sae (made by `loupe train sae` and scripts/make_sae_fixtures.py with SAELens).
enum SAEFixtures {
    static let directory = GradFixtures.directory.appendingPathComponent("sae")
    static let gpt2Tiny = GradFixtures.directory.appendingPathComponent("gpt2-tiny").path
}

private func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Rows that are sums of `active` of `features` random unit directions with positive weights: data an SAE
/// can explain exactly.
private func syntheticSparseData(rows: Int, dIn: Int, features: Int, active: Int, seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    var dirs = [Float](repeating: 0, count: features * dIn)
    for f in 0..<features {
        var n: Float = 0
        for j in 0..<dIn { let g = rng.nextGaussian(); dirs[f * dIn + j] = g; n += g * g }
        for j in 0..<dIn { dirs[f * dIn + j] /= n.squareRoot() }
    }
    var out = [Float](repeating: 0, count: rows * dIn)
    for r in 0..<rows {
        for _ in 0..<active {
            let f = rng.nextInt(features), a = 0.5 + rng.nextUnit() * 2
            for j in 0..<dIn { out[r * dIn + j] += a * dirs[f * dIn + j] }
        }
        for j in 0..<dIn { out[r * dIn + j] += 1 }   // an offset for b_dec to find
    }
    return Tensor(unchecked: [rows, dIn], out)
}

@Suite("Sparse autoencoders: ops, SAELens interop, training, metrics, splicing")
struct SAETests {
    // MARK: - Sparse ops

    @Test("topKReLU keeps each row's k largest positive entries; its gradient flows only through them")
    func topKReLU() throws {
        var rng = SeededGenerator(seed: 3)
        let (rows, n, k) = (5, 12, 4)
        let x = Variable(Tensor(unchecked: [rows, n], (0..<(rows * n)).map { _ in rng.nextGaussian() }), requiresGrad: true)
        let y = try x.topKReLU(k)
        for r in 0..<rows {
            let row = Array(x.value.scalars[(r * n)..<((r + 1) * n)])
            let keep = Set(row.indices.sorted { row[$0] > row[$1] }.prefix(k))
            for j in 0..<n {
                let expected = keep.contains(j) ? max(row[j], 0) : 0
                #expect(y.value.scalars[r * n + j] == expected, "row \(r) column \(j)")
            }
        }
        // d/dx Σ c·y: c where kept and positive, else 0.
        let c = Variable(Tensor(unchecked: [rows, n], (0..<(rows * n)).map { Float($0 % 7) - 3 }))
        try (y * c).sum().backward()
        for i in 0..<(rows * n) {
            #expect(x.grad.scalars[i] == (y.value.scalars[i] > 0 ? c.value.scalars[i] : 0), "gradient at \(i)")
        }
        #expect(throws: TensorError.self) { try x.topKReLU(0) }
        #expect(throws: TensorError.self) { try x.topKReLU(n + 1) }
    }

    @Test("sparseMatmul equals the dense matmul, forward and backward (where x ≠ 0)")
    func sparseMatmul() throws {
        var rng = SeededGenerator(seed: 5)
        let (rows, k, n) = (6, 10, 7)
        let pre = Tensor(unchecked: [rows, k], (0..<(rows * k)).map { _ in rng.nextGaussian() })
        let w = Tensor(unchecked: [k, n], (0..<(k * n)).map { _ in rng.nextGaussian() })
        let seed = Tensor(unchecked: [rows, n], (0..<(rows * n)).map { _ in rng.nextGaussian() })
        var results: [(out: [Float], dx: [Float], dw: [Float])] = []
        for sparse in [false, true] {
            let x = Variable(pre, requiresGrad: true), wv = Variable(w, requiresGrad: true)
            let f = x.relu()
            let y = sparse ? try f.sparseMatmul(wv) : try f.matmul(wv)
            try y.backward(seed: seed)
            results.append((y.value.scalars, x.grad.scalars, wv.grad.scalars))
        }
        #expect(maxAbsDiff(results[0].out, results[1].out) < 1e-5)
        #expect(maxAbsDiff(results[0].dx, results[1].dx) < 1e-5)
        #expect(maxAbsDiff(results[0].dw, results[1].dw) < 1e-5)
    }

    // MARK: - SAELens layout

    @Test("Loupe computes SAELens's feature activations and reconstructions within 1e-4", arguments: [
        ("loupe-gpt2-tiny", "loupe-gpt2-tiny-expected.safetensors"),
        ("loupe-gpt2-tiny-standard", "loupe-gpt2-tiny-standard-expected.safetensors"),
        ("saelens-standard", "saelens-standard/expected.safetensors"),
        ("saelens-topk", "saelens-topk/expected.safetensors"),
    ])
    func matchesSAELens(folder: String, expectedFile: String) throws {
        let sae = try SAELensFormat.read(from: SAEFixtures.directory.appendingPathComponent(folder))
        let expected = try SafetensorsFile(path: SAEFixtures.directory.appendingPathComponent(expectedFile).path)
        let inputs = try expected.tensor("inputs")
        let acts = try sae.encode(inputs)
        let out = try sae.decode(acts)
        let wantActs = try expected.tensor("feature_acts"), wantOut = try expected.tensor("sae_out")
        #expect(acts.shape == wantActs.shape)
        let dActs = maxAbsDiff(acts.scalars, wantActs.scalars), dOut = maxAbsDiff(out.scalars, wantOut.scalars)
        #expect(dActs < 1e-4, "\(folder): feature activations differ by \(dActs)")
        #expect(dOut < 1e-4, "\(folder): reconstructions differ by \(dOut)")
        // Same sparsity pattern: the same features are active.
        let active = acts.scalars.map { $0 > 0 }, wantActive = wantActs.scalars.map { $0 > 0 }
        #expect(active == wantActive, "\(folder): active features differ")
    }

    @Test("An SAE written in SAELens layout reads back equal")
    func roundTrip() throws {
        var config = SAEConfig(architecture: .topk, dIn: 8, dSAE: 16, k: 3, hookName: "blocks.1.hook_resid_pre",
                               modelName: "m", contextSize: 64)
        config.rescaleActsByDecoderNorm = true
        var sae = try SparseAutoencoder.initialized(config, seed: 1)
        sae.bDec = Tensor((0..<8).map { Float($0) * 0.1 })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sae-roundtrip-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SAELensFormat.write(sae, to: dir)
        let back = try SAELensFormat.read(from: dir)
        #expect(back.config == sae.config)
        #expect(back.wEnc == sae.wEnc && back.bEnc == sae.bEnc && back.wDec == sae.wDec && back.bDec == sae.bDec)
    }

    @Test("Reading a folder that is not a supported SAE names the problem", arguments: [
        ("{\"architecture\": \"jumprelu\", \"d_in\": 4, \"d_sae\": 8, \"metadata\": {\"hook_name\": \"hook_embed\"}}",
         "architecture 'jumprelu' is not supported"),
        ("{\"architecture\": \"standard\", \"d_in\": 4, \"d_sae\": 8, \"normalize_activations\": \"layer_norm\", \"metadata\": {\"hook_name\": \"hook_embed\"}}",
         "normalize_activations 'layer_norm' is not supported"),
        ("{\"architecture\": \"standard\", \"d_sae\": 8, \"metadata\": {\"hook_name\": \"hook_embed\"}}",
         "expected an integer 'd_in', found nothing"),
        ("{\"architecture\": \"standard\", \"d_in\": 4, \"d_sae\": 8}", "no hook_name"),
        ("{\"architecture\": \"standard\", \"d_in\": 5, \"d_sae\": 8, \"metadata\": {\"hook_name\": \"hook_embed\"}}",
         "W_enc: expected shape [5, 8], found [4, 8]"),
    ])
    func readErrors(cfg: String, message: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sae-bad-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try SparseAutoencoder.initialized(SAEConfig(architecture: .standard, dIn: 4, dSAE: 8, hookName: "hook_embed"), seed: 0)
        try SAELensFormat.write(good, to: dir)
        try Data(cfg.utf8).write(to: dir.appendingPathComponent("cfg.json"))
        do {
            _ = try SAELensFormat.read(from: dir)
            Issue.record("expected an error containing \(message)")
        } catch let error as SAEError {
            #expect(error.description.contains(message), "\(error.description)")
        }
    }

    // MARK: - Training

    @Test("Training recovers synthetic sparse data (explained variance, unit decoder rows)", arguments: [
        (SAEArchitecture.topk, 0.8), (SAEArchitecture.standard, 0.85),
    ])
    func trainsOnSyntheticData(architecture: SAEArchitecture, minimumEV: Double) throws {
        let (dIn, dSAE) = (16, 48)
        let all = syntheticSparseData(rows: 4096 + 512, dIn: dIn, features: 32, active: 3, seed: 7)
        let data = Tensor(unchecked: [4096, dIn], Array(all.scalars.prefix(4096 * dIn)))
        let held = Tensor(unchecked: [512, dIn], Array(all.scalars.suffix(512 * dIn)))
        let config = SAEConfig(architecture: architecture, dIn: dIn, dSAE: dSAE, k: architecture == .topk ? 4 : nil, hookName: "hook_embed")
        let settings = SAETrainingSettings(batchSize: 128, steps: 400, learningRate: 5e-3, warmupSteps: 20, l1Coefficient: 0.1,
                                           deadWindow: 100, resampleEvery: 100)
        let trainer = try SAETrainer(sae: SparseAutoencoder.initialized(config, seed: 2), settings: settings)
        try trainer.initializeDecoderBias(from: Tensor(unchecked: [512, dIn], Array(data.scalars.prefix(512 * dIn))))
        let before = try trainer.sae.reconstructionMetrics(held)
        for step in 0..<settings.steps {
            let start = (step * 128) % 4096
            try trainer.trainStep(Tensor(unchecked: [128, dIn], Array(data.scalars[(start * dIn)..<((start + 128) * dIn)])))
        }
        let after = try trainer.sae.reconstructionMetrics(held)
        #expect(after.explainedVariance >= minimumEV, "\(architecture): EV \(before.explainedVariance) → \(after.explainedVariance), L0 \(after.l0)")
        #expect(after.explainedVariance > before.explainedVariance)
        if architecture == .topk { #expect(after.l0 <= 4) } else { #expect(after.l0 < Double(dSAE) / 2, "L0 \(after.l0)") }
        for (f, norm) in trainer.sae.decoderNorms.enumerated() { #expect(abs(norm - 1) < 1e-4, "decoder row \(f) has norm \(norm)") }
    }

    @Test("b_dec starts at the geometric median (or the mean) of the data")
    func geometricMedian() throws {
        // Collinear points: the geometric median is the middle one; the mean is pulled by the outlier.
        let x = Tensor(unchecked: [3, 2], [0, 0, 1, 0, 10, 0])
        let trainer = try SAETrainer(sae: SparseAutoencoder.initialized(SAEConfig(architecture: .standard, dIn: 2, dSAE: 4, hookName: "hook_embed"), seed: 0),
                                     settings: SAETrainingSettings(batchSize: 1, steps: 1))
        try trainer.initializeDecoderBias(from: x, iterations: 500)
        #expect(abs(trainer.sae.bDec.scalars[0] - 1) < 1e-2 && abs(trainer.sae.bDec.scalars[1]) < 1e-6, "\(trainer.sae.bDec.scalars)")
        try trainer.initializeDecoderBias(from: x, geometricMedian: false)
        #expect(abs(trainer.sae.bDec.scalars[0] - 11.0 / 3) < 1e-5)
    }

    @Test("A feature that never fires counts as dead and is resampled toward a badly reconstructed input")
    func deadFeatureResampling() throws {
        let (dIn, dSAE) = (8, 16)
        let data = syntheticSparseData(rows: 64, dIn: dIn, features: 10, active: 2, seed: 11)
        var sae = try SparseAutoencoder.initialized(SAEConfig(architecture: .topk, dIn: dIn, dSAE: dSAE, k: 2, hookName: "hook_embed"), seed: 4)
        sae.bEnc.scalars[0] = -1e6   // feature 0 can never be among the top k
        let trainer = try SAETrainer(sae: sae, settings: SAETrainingSettings(batchSize: 64, steps: 100, learningRate: 1e-4, deadWindow: 5))
        for _ in 0..<6 { try trainer.trainStep(data) }
        #expect(trainer.stepsSinceFired[0] == 6)
        #expect(trainer.deadFraction >= 1 / Float(dSAE))
        let recon = try trainer.sae.reconstruct(data)
        let count = try trainer.resampleDeadFeatures(using: data)
        #expect(count >= 1)
        #expect(trainer.stepsSinceFired[0] == 0 && trainer.sae.bEnc.scalars[0] == 0)
        // The new decoder row is one of the normalized residuals x − x̂.
        let row = Array(trainer.sae.wDec.scalars[0..<dIn])
        var best: Float = 0
        for r in 0..<64 {
            let res = (0..<dIn).map { data.scalars[r * dIn + $0] - recon.scalars[r * dIn + $0] }
            let n = res.map { $0 * $0 }.reduce(0, +).squareRoot()
            best = max(best, zip(res, row).map { $0 * $1 }.reduce(0, +) / n)
        }
        #expect(abs(best - 1) < 1e-4, "cosine with the closest residual: \(best)")
    }

    @Test("A run resumed from a checkpoint continues exactly as the uninterrupted run")
    func checkpointResume() throws {
        let (dIn, dSAE) = (8, 24)
        let data = syntheticSparseData(rows: 320, dIn: dIn, features: 12, active: 2, seed: 13)
        func batch(_ i: Int) -> Tensor { Tensor(unchecked: [32, dIn], Array(data.scalars[((i % 10) * 32 * dIn)..<((i % 10 + 1) * 32 * dIn)])) }
        let settings = SAETrainingSettings(batchSize: 32, steps: 12, learningRate: 3e-3, warmupSteps: 2)
        let config = SAEConfig(architecture: .topk, dIn: dIn, dSAE: dSAE, k: 3, hookName: "hook_embed")
        let a = try SAETrainer(sae: SparseAutoencoder.initialized(config, seed: 8), settings: settings)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sae-ckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for i in 0..<12 {
            if i == 6 { try a.saveCheckpoint(to: dir, extra: ["corpus_position": "42"]) }
            try a.trainStep(batch(i))
        }
        let (b, extra) = try SAETrainer.resume(from: dir)
        #expect(b.step == 6 && extra["corpus_position"] == "42")
        #expect(b.history.count == 6)
        for i in 6..<12 { try b.trainStep(batch(i)) }
        #expect(b.sae.wEnc == a.sae.wEnc && b.sae.wDec == a.sae.wDec && b.sae.bEnc == a.sae.bEnc && b.sae.bDec == a.sae.bDec)
        #expect(b.stepsSinceFired == a.stepsSinceFired)
    }

    // MARK: - Harvesting

    @Test("The shuffle buffer serves each harvested row once per refill, in shuffled order")
    func shuffleBuffer() throws {
        var next = 0
        func source() -> Tensor {   // 3 rows of width 2: (id, −id)
            defer { next += 3 }
            return Tensor(unchecked: [3, 2], (next..<(next + 3)).flatMap { [Float($0), -Float($0)] })
        }
        var buffer = ShuffleBuffer(capacity: 16, width: 2, seed: 1)
        var served: [Int] = []
        for _ in 0..<4 {
            let b = try buffer.next(2) { source() }
            for r in 0..<2 {
                #expect(b.scalars[r * 2] == -b.scalars[r * 2 + 1], "rows stay whole")
                served.append(Int(b.scalars[r * 2]))
            }
        }
        #expect(Set(served).count == 8, "half the buffer without repeats: \(served)")
        #expect(served.allSatisfy { $0 < 16 })
        #expect(served != Array(0..<8), "shuffled")
        // After the refill the served rows are replaced by new ones (ids ≥ 16).
        var later: [Int] = []
        for _ in 0..<4 { let b = try buffer.next(2) { source() }; later += [Int(b.scalars[0]), Int(b.scalars[2])] }
        #expect(Set(later).count == 8)
        #expect(!Set(later).isSubset(of: Set(served)), "fresh rows appear")
        #expect(throws: SAEError.self) { _ = try buffer.next(9) { source() } }
    }

    @Test("Harvested activations are the hook's, without position 0, from a run that stops after the hook's block")
    func harvester() throws {
        let model = try ModelLoader.load(path: SAEFixtures.gpt2Tiny).model
        let windows = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]
        let hook = HookName.residPost(0)
        let rows = try ActivationHarvester.activations(model: model, hook: hook, windows: windows, dropFirst: true)
        let (_, cache) = try model.runWithCache(.tokens(windows), select: .names([hook]))
        let full = try #require(cache[hook])   // [2, 6, 32]
        #expect(rows.shape == [10, 32])
        for b in 0..<2 {
            for p in 1..<6 {
                let want = Array(full.scalars[((b * 6 + p) * 32)..<((b * 6 + p + 1) * 32)])
                let got = Array(rows.scalars[((b * 5 + p - 1) * 32)..<((b * 5 + p) * 32)])
                #expect(maxAbsDiff(got, want) < 1e-6)
            }
        }
        var h = try ActivationHarvester(model: model, hook: hook, tokens: Array(0..<20), contextSize: 6, windowsPerBatch: 2)
        _ = try h.next()
        _ = try h.next()   // 4 windows of 6 > 20 tokens: wraps around
        #expect(h.epochs == 1 && h.position == 6)
    }

    // MARK: - Splicing and metrics

    /// An SAE that reconstructs exactly: features [x, −x] through ReLU, decoded as relu(x) − relu(−x).
    private func identitySAE(dIn: Int, hook: String) throws -> SparseAutoencoder {
        var enc = [Float](repeating: 0, count: dIn * 2 * dIn), dec = [Float](repeating: 0, count: 2 * dIn * dIn)
        for j in 0..<dIn {
            enc[j * 2 * dIn + j] = 1; enc[j * 2 * dIn + dIn + j] = -1
            dec[j * dIn + j] = 1; dec[(dIn + j) * dIn + j] = -1
        }
        return try SparseAutoencoder(config: SAEConfig(architecture: .standard, dIn: dIn, dSAE: 2 * dIn, hookName: hook),
                                     wEnc: Tensor(unchecked: [dIn, 2 * dIn], enc), bEnc: Tensor(zeros: [2 * dIn]),
                                     wDec: Tensor(unchecked: [2 * dIn, dIn], dec), bDec: Tensor(zeros: [dIn]))
    }

    @Test("Splicing: an exact SAE recovers all the loss; zero-ablation, steering and ablation change what they should")
    func splicing() throws {
        let model = try ModelLoader.load(path: SAEFixtures.gpt2Tiny).model
        let windows = [[464, 3290, 318, 257, 1310, 286, 262, 995], [40, 588, 284, 6129, 1110, 290, 663, 13]]
        let exact = try identitySAE(dIn: 32, hook: "blocks.0.hook_resid_post")
        let losses = try model.saeSpliceLosses(exact, windows: windows)
        #expect(abs(losses.withSAE - losses.clean) < 1e-5)
        #expect(losses.zeroAblated != losses.clean)
        #expect(abs(losses.recovered - 1) < 1e-3, "recovered \(losses.recovered)")
        #expect(losses.tokens == 14)

        // Steering adds scale × W_dec[f] at positions ≥ 1 only.
        let sae = try SAELensFormat.read(from: SAEFixtures.directory.appendingPathComponent("loupe-gpt2-tiny"))
        let hook = HookName.residPost(0)
        let clean = try model.runWithCache(.tokens(windows), select: .names([hook])).cache[hook]!
        let steered = try model.runWithCache(.tokens(windows), select: .names([hook]), hooks: Hooks([(hook, sae.hook(.steer(feature: 3, scale: 2.5)))])).cache[hook]!
        for b in 0..<2 {
            for p in 0..<8 {
                for j in 0..<32 {
                    let i = (b * 8 + p) * 32 + j
                    let want = p == 0 ? clean.scalars[i] : clean.scalars[i] + 2.5 * sae.wDec.scalars[3 * 32 + j]
                    #expect(abs(steered.scalars[i] - want) < 1e-5)
                }
            }
        }
        // Ablating a feature removes exactly its contribution to the reconstruction.
        let ablated = try model.runWithCache(.tokens(windows), select: .names([hook]), hooks: Hooks([(hook, sae.hook(.ablate(feature: 3)))])).cache[hook]!
        let rows = Tensor(unchecked: [2 * 8, 32], clean.scalars)
        let acts = try sae.encode(rows)
        for r in 0..<16 where r % 8 != 0 {
            let a = acts.scalars[r * 64 + 3]
            for j in 0..<32 {
                #expect(abs(ablated.scalars[r * 32 + j] - (clean.scalars[r * 32 + j] - a * sae.wDec.scalars[3 * 32 + j])) < 1e-5)
            }
        }
        #expect(throws: SAEError.self) { _ = try sae.hook(.ablate(feature: 64)) }
    }

    @Test("Explained variance and L0 follow their definitions")
    func metrics() throws {
        let exact = try identitySAE(dIn: 4, hook: "hook_embed")
        let x = Tensor(unchecked: [3, 4], [1, -2, 0, 3, 0, 0, 1, 1, -1, 2, 2, 0])
        let m = try exact.reconstructionMetrics(x)
        #expect(abs(m.explainedVariance - 1) < 1e-9 && m.mse < 1e-12)
        #expect(abs(m.l0 - 8.0 / 3) < 1e-12)   // nonzero entries per row: 3, 2, 3
        #expect(m.neverFiredFraction == 2.0 / 8)   // −x of columns 2 and 3: no negative entries there
        // A zero SAE reconstructs nothing but b_dec = the mean: EV 0.
        var zero = exact
        zero.wDec = Tensor(zeros: [8, 4])
        zero.bDec = Tensor([0, 0, 1, 4.0 / 3])
        #expect(abs(try zero.reconstructionMetrics(x).explainedVariance) < 1e-6)
    }

    @Test("Logit effect is W_dec[f] through the final norm's weight and W_U")
    func logitEffect() throws {
        let model = try ModelLoader.load(path: SAEFixtures.gpt2Tiny).model
        let sae = try SAELensFormat.read(from: SAEFixtures.directory.appendingPathComponent("loupe-gpt2-tiny"))
        let effect = try model.saeLogitEffect(sae, feature: 5)
        #expect(effect.count == model.config.dVocab)
        let ln = try #require(model.weights.lnFinalW)
        for v in [0, 1, 50, 50256] {
            var want: Float = 0
            for j in 0..<32 { want += sae.wDec.scalars[5 * 32 + j] * ln.scalars[j] * model.weights.wU.scalars[j * model.config.dVocab + v] }
            #expect(abs(effect[v] - want) < 1e-4)
        }
    }

    @Test("Max-activating examples are each feature's strongest activations, at the right corpus positions")
    func featureExamples() throws {
        let model = try ModelLoader.load(path: SAEFixtures.gpt2Tiny).model
        let sae = try SAELensFormat.read(from: SAEFixtures.directory.appendingPathComponent("loupe-gpt2-tiny"))
        var rng = SeededGenerator(seed: 9)
        let tokens = (0..<200).map { _ in rng.nextInt(2000) }
        let found = try model.saeFeatureExamples(sae, tokens: tokens, contextSize: 16, k: 3, contextTokens: 2, windowsPerBatch: 4)
        #expect(found.positions == 12 * 15)   // 12 windows of 16, position 0 of each left out
        // Brute force: every feature's activation at every position, window by window.
        var all: [Int: [(Float, Int)]] = [:]
        for w in 0..<12 {
            let window = Array(tokens[(w * 16)..<((w + 1) * 16)])
            let acts = try sae.encode(ActivationHarvester.activations(model: model, hook: .residPost(0), windows: [window], dropFirst: true))
            for r in 0..<15 { for f in 0..<64 where acts.scalars[r * 64 + f] > 0 { all[f, default: []].append((acts.scalars[r * 64 + f], w * 16 + 1 + r)) } }
        }
        for f in 0..<64 {
            let want = (all[f] ?? []).sorted { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }.prefix(3)
            let got = found.examples[f] ?? []
            #expect(found.fireCounts[f] == (all[f]?.count ?? 0))
            #expect(got.map(\.position) == want.map(\.1), "feature \(f)")
            #expect(maxAbsDiff(got.map(\.activation), want.map(\.0)) < 1e-5)
            for e in got { #expect(e.context[e.focus] == tokens[e.position]) }
        }
    }

    @Test("trainSAE on gpt2-tiny: runs, evaluates held-out text, checkpoints and resumes")
    func endToEnd() throws {
        let model = try ModelLoader.load(path: SAEFixtures.gpt2Tiny).model
        var rng = SeededGenerator(seed: 21)
        let tokens = (0..<3000).map { _ in rng.nextInt(1000) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sae-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = SAERunOptions(architecture: .topk, dSAE: 48, k: 4, contextSize: 16,
                                    settings: SAETrainingSettings(batchSize: 64, steps: 10, learningRate: 2e-3, checkpointEvery: 5),
                                    bufferRows: 512)
        options.evalWindows = 4
        let (sae, result) = try model.trainSAE(hook: .residPost(1), tokens: tokens, options: options, checkpointDirectory: dir)
        #expect(result.steps == 10 && result.trainingTokens == 640)
        #expect(result.heldOut.l0 <= 4 && result.heldOut.explainedVariance.isFinite)
        #expect(try #require(result.losses).tokens == 4 * 15)
        let saved = try SAELensFormat.read(from: dir)
        #expect(saved.wDec == sae.wDec && saved.config.hookName == "blocks.1.hook_resid_post")
        options.settings.steps = 15
        let (_, resumed) = try model.trainSAE(hook: .residPost(1), tokens: tokens, options: options, checkpointDirectory: dir, resume: true)
        #expect(resumed.steps == 15)
        #expect(throws: TrainingError.self) {
            _ = try model.trainSAE(hook: .residPost(0), tokens: tokens, options: options, checkpointDirectory: dir, resume: true)
        }
        // Activations harvested once and cycled through: several epochs over a small store.
        var stored = options
        stored.storedRows = 200
        stored.settings.steps = 10
        var harvested: (Int, Int) = (0, 0)
        let (_, cycled) = try model.trainSAE(hook: .residPost(1), tokens: tokens, options: stored, harvestProgress: { harvested = ($0, $1) })
        #expect(harvested.0 == harvested.1 && harvested.1 == 14, "windows harvested: \(harvested)")   // ⌈200 / 15⌉
        #expect(cycled.steps == 10 && cycled.epochs > 2, "epochs \(cycled.epochs)")
    }
}
