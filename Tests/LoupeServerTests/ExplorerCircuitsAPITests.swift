// The API behind the explorer's circuits, SAE-features and tuned-lens views, each checked against the library
// called directly on the same model (gpt2-tiny), with SAEs and tuned lenses of random weights written to
// temporary files as `loupe train` writes them.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTraining
@testable import LoupeServer
import Testing

private func close(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-4) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { Swift.abs($0 - $1) <= tolerance * max(1, Swift.abs($1)) }
}

/// Seeded normal-ish values (sums of uniforms), scaled.
private func random(_ shape: [Int], seed: UInt64, scale: Float) -> Tensor {
    var g = SeededGenerator(seed: seed)
    let n = shape.reduce(1, *)
    return Tensor(unchecked: shape, (0..<n).map { _ in scale * ((0..<4).reduce(Float(0)) { s, _ in s + Float.random(in: -1...1, using: &g) }) })
}

private func temporary(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("loupe-circuits-api-\(ProcessInfo.processInfo.processIdentifier)-\(name)")
}

/// A ReLU SAE of random weights on gpt2-tiny's layer-1 residual, written in SAELens's layout.
private func writeSAE(_ name: String, model: String?, seed: UInt64 = 7) throws -> (path: String, sae: SparseAutoencoder) {
    let d = 32, s = 48
    let config = SAEConfig(architecture: .standard, dIn: d, dSAE: s, hookName: "blocks.1.hook_resid_post", modelName: model)
    let sae = try SparseAutoencoder(config: config, wEnc: random([d, s], seed: seed, scale: 0.3), bEnc: random([s], seed: seed + 1, scale: 0.1),
                                    wDec: random([s, d], seed: seed + 2, scale: 0.3), bDec: random([d], seed: seed + 3, scale: 0.05))
    let url = temporary(name)
    try? FileManager.default.removeItem(at: url)
    try SAELensFormat.write(sae, to: url)
    return (url.path, sae)
}

private func writeTunedLens(_ name: String, model: String, layers: Int = 2) throws -> (path: String, lens: TunedLens) {
    let lens = try TunedLens(weights: (0..<layers).map { random([32, 32], seed: 100 + UInt64($0), scale: 0.1) },
                             biases: (0..<layers).map { random([32], seed: 200 + UInt64($0), scale: 0.1) }, modelName: model)
    let url = temporary(name + ".safetensors")
    try lens.save(to: url)
    return (url.path, lens)
}

@Suite struct ExplorerCircuitsAPITests {
    static let prompt = ExplorerAPITests.prompt

    @Test func copyingAndCompositionMatchTheLibrary() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let model = try ExplorerAPITests.model().model
        let (nL, nH) = (model.config.nLayers, model.config.nHeads)
        let copying = try await s.post("/api/copying", ["model": "gpt2-tiny"]).decode(CopyingResponse.self)
        #expect(close(copying.scores.flatMap { $0 }, try model.copyingScores().scalars) && copying.scores.count == nL)

        let expected = try model.compositionScores(.k)
        let submitted = try await s.post("/api/composition", ["model": "gpt2-tiny", "mode": "k", "top": 3])
        #expect(submitted.status == 202, "\(submitted.error)")
        let id = try #require(submitted.json["id"] as? String)
        var status = try await s.get("/api/jobs/\(id)?wait=10").decode(JobStatus.self)
        for _ in 0..<30 where status.state != "done" { status = try await s.get("/api/jobs/\(id)?wait=10").decode(JobStatus.self) }
        let r = try #require(status.composition, "\(status.state) \(status.error ?? "")")
        #expect(r.mode == "k" && r.nLayers == nL && r.nHeads == nH && status.done == nL * nH)
        #expect(close(try #require(r.scores).flatMap { $0 }, expected.scalars))
        // The strongest pairs: the largest scores, each from an earlier layer to a later one.
        let largest = expected.scalars.sorted(by: >).prefix(3)
        #expect(r.top.count == 3 && close(r.top.map(\.score), Array(largest)))
        for p in r.top {
            #expect(p.from.layer < p.to.layer)
            #expect(Swift.abs(expected.scalars[((p.from.layer * nH + p.from.head) * nL + p.to.layer) * nH + p.to.head] - p.score) < 1e-5)
        }
        let bad = try await s.post("/api/composition", ["model": "gpt2-tiny", "mode": "x"])
        #expect(bad.status == 422 && bad.error.contains("'mode'"), "\(bad.error)")
    }

    @Test func saeFeaturesMatchTheLibrary() async throws {
        let (path, sae) = try writeSAE("sae-a", model: TestServer.fixture)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let s = try await TestServer.start(saes: [path])
        defer { s.stop() }
        let loaded = try ExplorerAPITests.model()
        let models = try await s.get("/api/models").decode(ModelsResponse.self)
        #expect(models.models.first { $0.name == "gpt2-tiny" }?.saes == ["loupe-circuits-api-\(ProcessInfo.processInfo.processIdentifier)-sae-a"])
        #expect(models.models.first { $0.name != "gpt2-tiny" }?.saes == nil)

        let ids = try loaded.requireTokenizer().encodeForModel(Self.prompt)
        let hook = try HookName(parsing: "blocks.1.hook_resid_post")
        let acts = try sae.encode(try loaded.model.hookRows(hook, windows: [ids], dropFirst: false))
        let s48 = sae.config.dSAE
        let reply = try await s.post("/api/features", ["model": "gpt2-tiny", "prompt": Self.prompt, "top": 5, "feature": 3, "splice": "ablate"])
        #expect(reply.status == 200, "\(reply.error)")
        let r = try reply.decode(FeaturesResponse.self)
        #expect(r.tokens.map(\.id) == ids && r.dSAE == s48 && r.hook == "blocks.1.hook_resid_post")
        // Each listed feature: its activations, its maximum after position 0; the list is strongest first.
        let maxima = (0..<s48).map { f in (1..<ids.count).map { acts.scalars[$0 * s48 + f] }.max() ?? 0 }
        #expect(r.features.count == 5 && r.features.map(\.max) == r.features.map(\.max).sorted(by: >))
        #expect(close(r.features.map(\.max), Array(maxima.filter { $0 > 0 }.sorted(by: >).prefix(5))))
        for f in r.features {
            #expect(close(f.activations, (0..<ids.count).map { acts.scalars[$0 * s48 + f.feature] }))
            #expect(f.activations[f.position] == f.max && f.position >= 1)
        }
        #expect(r.active == (0..<ids.count).map { p in (0..<s48).filter { acts.scalars[p * s48 + $0] != 0 }.count })
        let selected = try #require(r.selected)
        let effect = try loaded.model.saeTopLogitEffect(sae, feature: 3, k: 8)
        #expect(selected.promoted?.map(\.id) == effect.map(\.token) && close(selected.promoted?.map(\.logit) ?? [], effect.map(\.effect)))
        #expect(selected.suppressed?.first.map { $0.logit <= effect.last!.effect } == true)
        // Predictions: clean, with the reconstruction spliced in, with feature 3 ablated.
        #expect(r.predictions.map(\.mode) == ["clean", "sae", "ablate 3"])
        let spliced = try loaded.model.run(.tokens([ids]), hooks: [hook: try sae.hook(.reconstruct)]).topPredictions(k: 5)
        #expect(r.predictions[1].top.map(\.id) == spliced.map(\.id) && close(r.predictions[1].top.map(\.probability), spliced.map(\.probability)))
        let clean = try loaded.model.run([ids]).topPredictions(k: 5)
        #expect(r.predictions[0].top.map(\.id) == clean.map(\.id))
        let fvu = try #require(r.fractionOfVarianceUnexplained)
        #expect(fvu > 0 && fvu.isFinite)

        for (body, field) in [(["feature": 48], "'feature'"), (["splice": "ablate"], "'splice'"), (["sae": "nope"], "'sae'"),
                              (["feature": 1, "splice": "twist"], "'splice'")] as [([String: Any], String)] {
            let bad = try await s.post("/api/features", ["model": "gpt2-tiny", "prompt": Self.prompt].merging(body) { $1 })
            #expect(bad.status == 422 && bad.error.contains(field), "\(body): \(bad.status) \(bad.error)")
        }
    }

    @Test func aModelWithoutAnSAEOrTunedLensSaysHowToGiveOne() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let features = try await s.post("/api/features", ["model": "gpt2-tiny", "prompt": Self.prompt])
        #expect(features.status == 422 && features.error.contains("--sae"), "\(features.error)")
        let lens = try await s.post("/api/lens", ["model": "gpt2-tiny", "prompt": Self.prompt, "tuned": true])
        #expect(lens.status == 422 && lens.error.contains("--tuned-lens"), "\(lens.error)")
    }

    @Test func theTunedLensViewMatchesTheLibrary() async throws {
        let (path, lens) = try writeTunedLens("lens-a", model: TestServer.fixture)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let s = try await TestServer.start(tunedLenses: [path])
        defer { s.stop() }
        let loaded = try ExplorerAPITests.model()
        let ids = try loaded.requireTokenizer().encodeForModel(Self.prompt)
        let expected = try loaded.model.logitLens(tokens: ids, includeMid: false, norm: .recompute, tuned: lens).summary(position: ids.count - 1, topK: 3, target: nil)
        let plain = try loaded.model.logitLens(tokens: ids, includeMid: false, norm: .recompute).summary(position: ids.count - 1, topK: 3, target: nil)
        let r = try await s.post("/api/lens", ["model": "gpt2-tiny", "prompt": Self.prompt, "topK": 3, "tuned": true]).decode(LensResponse.self)
        #expect(r.tunedLens == URL(fileURLWithPath: path).lastPathComponent)
        #expect(close(r.cells.map(\.klToFinal), expected.map(\.klToFinal)) && r.cells.map { $0.top.map(\.id) } == expected.map { $0.top.map(\.id) })
        // The translators change the reading (else this test could not tell the lenses apart).
        #expect(!close(expected.map(\.klToFinal), plain.map(\.klToFinal)))
        let logit = try await s.post("/api/lens", ["model": "gpt2-tiny", "prompt": Self.prompt, "topK": 3]).decode(LensResponse.self)
        #expect(logit.tunedLens == nil && close(logit.cells.map(\.klToFinal), plain.map(\.klToFinal)))
        let models = try await s.get("/api/models").decode(ModelsResponse.self)
        #expect(models.models.first { $0.name == "gpt2-tiny" }?.tunedLens == URL(fileURLWithPath: path).lastPathComponent)
    }

    @Test func filesAreAttachedToTheModelTheyName() throws {
        let models = ExplorerModel.catalog(extra: [TestServer.fixture])
        let (other, _) = try writeSAE("sae-other", model: "some-other-model")
        let (unnamed, _) = try writeSAE("sae-unnamed", model: nil)
        let (lens1, _) = try writeTunedLens("lens-1", model: TestServer.fixture)
        let (lens2, _) = try writeTunedLens("lens-2", model: "gpt2-tiny")
        defer { for p in [other, unnamed, lens1, lens2] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(throws: APIError.self) { try Attachments(saes: [other], tunedLenses: [], models: models) }
        do { _ = try Attachments(saes: [other], tunedLenses: [], models: models); Issue.record("accepted") } catch let e as APIError {
            #expect(e.message.contains("some-other-model") && e.message.contains("MODEL="), "\(e.message)")
        }
        do { _ = try Attachments(saes: [unnamed], tunedLenses: [], models: models); Issue.record("accepted") } catch let e as APIError {
            #expect(e.message.contains("does not say which model"), "\(e.message)")
        }
        // MODEL=PATH attaches a file to a served model whatever it names.
        let explicit = try Attachments(saes: ["gpt2-tiny=\(other)", "gpt2-tiny=\(unnamed)"], tunedLenses: [], models: models)
        #expect(explicit.saes["gpt2-tiny"]?.count == 2)
        // One tuned lens a model (lens2 names the model by its served name).
        do { _ = try Attachments(saes: [], tunedLenses: [lens1, lens2], models: models); Issue.record("two lenses were accepted") } catch let e as APIError {
            #expect(e.message.contains("already has the tuned lens"), "\(e.message)")
        }
        #expect(throws: APIError.self) { try Attachments(saes: ["/no/such/folder"], tunedLenses: [], models: models) }
    }
}
