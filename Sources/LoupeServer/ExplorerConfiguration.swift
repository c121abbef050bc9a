// What `loupe serve` is started with: where it listens, which models it offers, and its limits.

import Foundation
import LoupeModels

/// Limits on what one request may ask for, so that no request can exhaust the machine.
public struct ExplorerLimits: Sendable, Codable, Equatable {
    /// Largest request body accepted (413 above it).
    public var maxBodyBytes: Int
    /// Most tokens in a prompt (422 above it; a model's own context can lower it).
    public var maxPromptTokens: Int
    /// Patching jobs queued or running at once (429 above it).
    public var maxActiveJobs: Int
    /// Finished jobs kept for polling; the oldest are forgotten first.
    public var maxKeptJobs: Int
    /// Requests waiting for the model at once (503 above it).
    public var maxPendingRequests: Int
    /// Most candidates a top-k list may ask for.
    public var maxTopK: Int

    public init(maxBodyBytes: Int = 64 * 1024, maxPromptTokens: Int = 256, maxActiveJobs: Int = 2, maxKeptJobs: Int = 64,
                maxPendingRequests: Int = 256, maxTopK: Int = 100) {
        self.maxBodyBytes = maxBodyBytes
        self.maxPromptTokens = maxPromptTokens
        self.maxActiveJobs = maxActiveJobs
        self.maxKeptJobs = maxKeptJobs
        self.maxPendingRequests = maxPendingRequests
        self.maxTopK = maxTopK
    }
}

/// A model the explorer offers: a name for the page and the API, and what `ModelRegistry.resolve` is given.
public struct ExplorerModel: Sendable, Equatable {
    public let name: String
    /// A known model's name or a path to a folder or a `.gguf` file.
    public let location: String
    public let summary: String

    public init(name: String, location: String, summary: String) {
        self.name = name
        self.location = location
        self.summary = summary
    }

    /// The models for a list of `--model` values: the shipped and the known models of `ModelRegistry`, then each given
    /// path under its last path component (or the whole path when that name is taken).
    public static func catalog(extra: [String]) -> [ExplorerModel] {
        var out = ModelRegistry.shipped.map { ExplorerModel(name: $0.name, location: $0.name, summary: $0.summary) }
            + ModelRegistry.known.map { ExplorerModel(name: $0.name, location: $0.name, summary: $0.summary) }
        for value in extra where !out.contains(where: { $0.name == value || $0.location == value }) {
            let base = URL(fileURLWithPath: value).lastPathComponent
            let name = out.contains(where: { $0.name == base }) || base.isEmpty ? value : base
            out.append(ExplorerModel(name: name, location: value, summary: "from \(value)"))
        }
        return out
    }
}

/// Everything the explorer is started with.
public struct ExplorerConfiguration: Sendable {
    /// The address to bind: loopback unless told otherwise.
    public var host: String
    /// The port; 0 picks a free one (reported to `run`'s `onRunning`).
    public var port: Int
    public var models: [ExplorerModel]
    /// Models loaded as soon as the server starts (names from `models`).
    public var preload: [String]
    public var limits: ExplorerLimits
    /// Log only critical problems (tests); otherwise the server's start and warnings are logged.
    public var quiet: Bool
    /// The token every /api/ request must carry (`Authorization: Bearer …`); required when not on loopback.
    public var token: String?
    /// Other names the server may be reached under (the Host header), besides its bound address.
    public var allowedHosts: [String]
    /// Seconds a connection may stay idle (a slow or silent client) before it is closed.
    public var idleTimeout: Double
    /// Neuron-index databases (`loupe neuron-index`) whose examples the neuron pages show: each serves the
    /// model and layer it was built for.
    public var neuronIndexes: [String]
    /// SAE folders (SAELens's layout) for the SAE view, each `PATH` or `MODEL=PATH`: attached to the served model
    /// named in its cfg.json (`model_name`), or to MODEL.
    public var saes: [String]
    /// Tuned lenses (`loupe train tuned-lens`) for the lens view, each `PATH` or `MODEL=PATH`, at most one a model.
    public var tunedLenses: [String]

    public init(host: String = "127.0.0.1", port: Int = 8080, models: [ExplorerModel] = ExplorerModel.catalog(extra: []),
                preload: [String] = [], limits: ExplorerLimits = ExplorerLimits(), quiet: Bool = false,
                token: String? = nil, allowedHosts: [String] = [], idleTimeout: Double = 30, neuronIndexes: [String] = [],
                saes: [String] = [], tunedLenses: [String] = []) {
        self.neuronIndexes = neuronIndexes
        self.saes = saes
        self.tunedLenses = tunedLenses
        self.quiet = quiet
        self.token = token
        self.allowedHosts = allowedHosts
        self.idleTimeout = idleTimeout
        self.host = host
        self.port = port
        self.models = models
        self.preload = preload
        self.limits = limits
    }
}
