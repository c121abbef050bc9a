import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeStore
import LoupeTensor
import Testing

@Suite struct NeuronExampleIndexTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2-tiny")

    func model() throws -> HookedTransformer { try ModelLoader.load(path: Self.fixture.path).model }
    func database() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("loupe-index-\(UUID().uuidString).sqlite").path }
    let tokens = (0..<100).map { ($0 * 7919 + 3) % 50257 }
    let corpus = CorpusIdentity(digest: "test", documents: 1)

    /// A build interrupted after two windows and resumed from the database equals one uninterrupted build,
    /// and both equal the in-memory search.
    @Test func resumedBuildEqualsOneBuild() throws {
        let model = try model()
        let oneShot = try NeuronExampleIndex(path: database(), model: model, layer: 1, corpus: corpus, k: 3, context: 2, window: 16)
        #expect(try model.buildNeuronIndex(oneShot, tokens: tokens, windowsPerCommit: 2).tokens == 100)

        let path = database()
        let first = try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: corpus, k: 3, context: 2, window: 16)
        #expect(try model.buildNeuronIndex(first, tokens: tokens, windowsPerCommit: 2, maxWindows: 2).tokens == 32)
        let reopened = try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: corpus, k: 3, context: 2, window: 16)
        #expect(reopened.manifest.nextPosition == 32 && reopened.manifest.nextDocument == 0 && !reopened.manifest.finished)
        try model.buildNeuronIndex(reopened, tokens: tokens, windowsPerCommit: 2)
        #expect(try reopened.allExamples() == oneShot.allExamples())

        let memory = try model.maxActivatingExamples(layer: 1, neurons: [0, 17, 127], tokens: tokens, window: 16, k: 3, context: 2)
        for n in [0, 17, 127] {
            let stored = try oneShot.examples(neuron: n)
            #expect(stored.map(\.position) == memory[n]?.map(\.position))
            #expect(stored.map(\.context) == memory[n]?.map(\.context))
            #expect(zip(stored.map(\.activation), memory[n]?.map(\.activation) ?? []).allSatisfy { abs($0 - $1) < 1e-6 })
        }
    }

    @Test func refusesAnotherModelOrOtherSettings() throws {
        let path = database()
        let model = try model()
        _ = try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: corpus, k: 3, context: 2, window: 16)
        #expect(throws: IndexError.self) {
            try NeuronExampleIndex(path: path, model: model.processed(), layer: 1, corpus: corpus, k: 3, context: 2, window: 16)
        }
        #expect(throws: IndexError.self) {
            try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: CorpusIdentity(digest: "other", documents: 1), k: 3, context: 2, window: 16)
        }
        #expect(throws: InterpError.self) {
            try NeuronExampleIndex(path: database(), model: model, layer: 5, corpus: corpus, k: 3, context: 2, window: 16)
        }
        #expect(throws: IndexError.self) {
            try NeuronExampleIndex(path: "/nonexistent-dir/x.sqlite", model: model, layer: 1, corpus: corpus, k: 3, context: 2, window: 16)
        }
    }

    /// The tiny model's context is 64 tokens: the default window follows it, and a window past it is refused
    /// before any database file is made.
    @Test func windowsFollowTheModelsContext() throws {
        let model = try model()
        #expect(model.config.nCtx == 64)
        let found = try model.maxActivatingExamples(layer: 1, neurons: [3], tokens: tokens, k: 2)
        let inWindows = try model.maxActivatingExamples(layer: 1, neurons: [3], tokens: tokens, window: 64, k: 2)
        #expect(found[3]?.map(\.position) == inWindows[3]?.map(\.position) && found[3]?.count == 2)
        let path = database()
        #expect(throws: InterpError.self) {
            try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: corpus, k: 3, context: 2, window: 128)
        }
        #expect(!FileManager.default.fileExists(atPath: path), "no database is left behind")
    }
}
