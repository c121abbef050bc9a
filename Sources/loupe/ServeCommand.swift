import ArgumentParser
import Foundation
import LoupeModels
import LoupeServer
import LoupeStore
import LoupeTensor

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The web explorer: a page and a JSON API for predictions, lenses, attention, heads, attribution, patching, tracing, circuits, neurons and SAE features.",
        discussion: """
            Offers the known models (`loupe models`, once fetched) and every --model given; each loads once, on first use (--model ones at start). The API is documented in docs/api.md.

            Examples:
              loupe serve --model smollm2-135m
              loupe serve --model smollm2-135m --sae smollm2-l15-sae --tuned-lens smollm2-austen-tuned-lens.safetensors --db austen-l20.sqlite
              loupe serve --host 0.0.0.0 --port 8080 --token "$LOUPE_TOKEN"
            """)

    @Option(name: .long, help: "Address to bind: loopback unless told otherwise (0.0.0.0 for every interface needs --token).")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "A secret of 16+ characters that every API request must carry (Authorization: Bearer TOKEN; the page takes it from ?token= in its address). Default: $LOUPE_TOKEN. Required off loopback.")
    var token: String?

    @Option(name: .long, help: "Another host name the server may be reached under, e.g. behind a proxy (repeatable). Requests naming any other Host are refused.")
    var allowHost: [String] = []

    @Option(name: .long, help: "Seconds a connection may stay idle before it is closed.")
    var idleTimeout: Double = 30

    @Option(name: .long, help: "Port (0: any free port).")
    var port: Int = 8080

    @Option(name: .long, help: "A model to offer and load at start: a known name, a .gguf file or a folder (repeatable).")
    var model: [String] = []

    @Option(name: .long, help: "A neuron index (from `loupe neuron-index` or `loupe merge`) whose top examples the neuron pages show, for the model and layer it was built on (repeatable).")
    var db: [String] = []

    @Option(name: .long, help: "An SAE folder (from `loupe train sae`, or SAELens's) for the SAE view: PATH, attached to the model its cfg.json names, or MODEL=PATH (repeatable).")
    var sae: [String] = []

    @Option(name: .long, help: "A tuned lens (from `loupe train tuned-lens`) for the lens view: PATH, attached to the model it was trained on, or MODEL=PATH (repeatable, one a model).")
    var tunedLens: [String] = []

    @Option(name: .long, parsing: .unconditional, help: "BLAS threads.", transform: Count.positive)
    var threads: Int = 2

    @Option(name: .long, parsing: .unconditional, help: "Most tokens in a prompt (the model's context may be lower).", transform: Count.positive)
    var maxPromptTokens: Int = 256

    @Option(name: .long, parsing: .unconditional, help: "Largest request body in bytes.", transform: Count.positive)
    var maxBodyBytes: Int = 64 * 1024

    @Option(name: .long, parsing: .unconditional, help: "Patching jobs queued or running at once.", transform: Count.positive)
    var maxJobs: Int = 2

    func validate() throws {
        guard ParseChecks.enabled else { return }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535, found \(port)") }
        guard maxPromptTokens >= 1 else { throw ValidationError("--max-prompt-tokens must be at least 1") }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be at least 1024") }
        guard maxJobs >= 1 else { throw ValidationError("--max-jobs must be at least 1") }
        guard idleTimeout > 0, idleTimeout <= 3600 else { throw ValidationError("--idle-timeout must be 0…3600 seconds, found \(idleTimeout)") }
        do {
            try ExplorerConfiguration.checkAccess(host: host, token: resolvedToken)
        } catch let error as APIError {
            throw ValidationError(error.message)
        }
    }

    /// --token, else a non-empty LOUPE_TOKEN.
    var resolvedToken: String? {
        token ?? ProcessInfo.processInfo.environment["LOUPE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws {
        BLAS.setThreads(threads)
        // Models given here must be there at start: known ones are fetched now, as other commands do
        // (requests never fetch); paths must exist.
        for m in model {
            _ = try resolveModel(m)
        }
        let models = ExplorerModel.catalog(extra: model.filter { FileManager.default.fileExists(atPath: $0) })
        let preload = model.map { m in models.first { $0.location == m || $0.name == m }?.name ?? m }
        let token = resolvedToken
        for path in db {
            do { _ = try NeuronExampleIndex(openExisting: path) } catch { throw ValidationError("--db: \(error)") }
        }
        // Errors from here on are about models (a preload the server does not offer): "Error: …", no usage.
        let server = try ExplorerServer(configuration: ExplorerConfiguration(
            host: host, port: port, models: models, preload: preload,
            limits: ExplorerLimits(maxBodyBytes: maxBodyBytes, maxPromptTokens: maxPromptTokens, maxActiveJobs: maxJobs),
            token: token, allowedHosts: allowHost, idleTimeout: idleTimeout, neuronIndexes: db, saes: sae, tunedLenses: tunedLens))
        let host = self.host
        try await server.run { port in
            let shown = host.contains(":") ? "[\(host)]" : host
            let query = token.map { "?token=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" } ?? ""
            // Written straight to the descriptor (unbuffered), so that scripts waiting for the line see it.
            let line = "Loupe explorer at http://\(shown):\(port)/\(query) (models: \(models.map(\.name).joined(separator: ", ")))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }
}
