// The explorer's models: each loaded once, on first use (or at start), and kept.

import Foundation
import LoupeModels

/// A model's state as `GET /api/models` reports it.
public struct ModelStatus: Codable, Sendable {
    public let name: String
    public let summary: String
    /// `not loaded`, `loading`, `loaded` or `failed`.
    public let state: String
    /// Whether its file is there (a known model must be fetched with `loupe fetch` first).
    public let available: Bool
    /// How many times loading was started (1 once loaded: concurrent first requests share one load).
    public let loads: Int
    public let error: String?
    /// Set once loaded.
    public let config: ModelSummary?
    /// The names of its SAEs (`--sae`) and of its tuned lens (`--tuned-lens`), when the server has them.
    public var saes: [String]?
    public var tunedLens: String?
}

/// The dimensions the page needs to offer layers, heads and neurons.
public struct ModelSummary: Codable, Sendable {
    public let architecture: String
    public let nLayers: Int
    public let nHeads: Int
    public let dModel: Int
    public let dMLP: Int
    public let dVocab: Int
    public let nCtx: Int
    public let hasTokenizer: Bool

    init(_ loaded: LoadedModel) {
        let c = loaded.model.config
        architecture = c.architecture; nLayers = c.nLayers; nHeads = c.nHeads; dModel = c.dModel
        dMLP = c.dMLP; dVocab = c.dVocab; nCtx = c.nCtx; hasTokenizer = loaded.tokenizer != nil
    }
}

/// Loads each model at most once. Concurrent first requests for a model wait on the same load; a
/// failed load is reported to its waiters and may be tried again by a later request.
actor ModelStore {
    private let models: [ExplorerModel]
    private var loads: [String: Task<LoadedModel, Error>] = [:]
    private var loaded: [String: LoadedModel] = [:]
    private var failures: [String: String] = [:]
    private var loadCounts: [String: Int] = [:]
    private let loadQueue = DispatchQueue(label: "loupe.server.load")

    init(models: [ExplorerModel]) { self.models = models }

    /// The loaded model of this name, loading it first if needed.
    func model(_ name: String) async throws -> LoadedModel {
        if let m = loaded[name] { return m }
        guard let entry = models.first(where: { $0.name == name }) else {
            throw APIError.notFound("unknown model '\(name)': the server offers \(models.map(\.name).joined(separator: ", "))")
        }
        let task: Task<LoadedModel, Error>
        if let running = loads[name] {
            task = running
        } else {
            loadCounts[name, default: 0] += 1
            failures[name] = nil
            let queue = loadQueue
            task = Task {
                // Loading reads and converts the weights: blocking work, kept off the cooperative pool.
                try await withCheckedThrowingContinuation { continuation in
                    queue.async {
                        continuation.resume(with: Result {
                            // Never fetch from a request: a known model must be in the cache already.
                            let m = try ModelLoader.load(path: try ModelRegistry.resolve(entry.location))
                            // The explorer's views read next-token predictions and causal patterns.
                            if m.model.config.bidirectional {
                                throw APIError.unprocessable("\(name) is a masked-LM encoder (\(m.model.config.architecture)); the explorer's views need a causal model")
                            }
                            return m
                        })
                    }
                }
            }
            loads[name] = task
        }
        do {
            let m = try await task.value
            loaded[name] = m
            loads[name] = nil
            return m
        } catch {
            if loads[name] == task { loads[name] = nil; failures[name] = String(describing: error) }
            throw error
        }
    }

    /// Every offered model and its state.
    func statuses() -> [ModelStatus] {
        models.map { m in
            let state = loaded[m.name] != nil ? "loaded" : loads[m.name] != nil ? "loading" : failures[m.name] != nil ? "failed" : "not loaded"
            return ModelStatus(name: m.name, summary: m.summary, state: state,
                               available: (try? ModelRegistry.resolve(m.location)) != nil, loads: loadCounts[m.name] ?? 0,
                               error: failures[m.name], config: loaded[m.name].map(ModelSummary.init))
        }
    }
}
