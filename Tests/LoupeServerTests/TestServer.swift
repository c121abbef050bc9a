import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import LoupeServer
import LoupeTestSupport
import Testing

/// An explorer server started in-process on a free loopback port, with the gpt2-tiny fixture as its
/// model, and a small HTTP client for it.
struct TestServer {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/gpt2-tiny").path

    let server: ExplorerServer
    let base: URL
    let task: Task<Void, Error>
    let session: URLSession

    /// A JSON answer: its status and body.
    struct Answer {
        let status: Int
        let body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var error: String { json["error"] as? String ?? "" }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: body) }
    }

    static func start(limits: ExplorerLimits = ExplorerLimits(maxBodyBytes: 4096, maxPromptTokens: 32, maxActiveJobs: 1),
                      preload: Bool = true, token: String? = nil, idleTimeout: Double = 30, neuronIndexes: [String] = [],
                      saes: [String] = [], tunedLenses: [String] = []) async throws -> TestServer {
        let models = ExplorerModel.catalog(extra: [fixture])
        let server = try ExplorerServer(configuration: ExplorerConfiguration(
            host: "127.0.0.1", port: 0, models: models, preload: preload ? ["gpt2-tiny"] : [], limits: limits,
            quiet: true, token: token, idleTimeout: idleTimeout, neuronIndexes: neuronIndexes, saes: saes, tunedLenses: tunedLenses))
        let (port, task) = try await ExplorerUnderTest.start(server)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        return TestServer(server: server, base: URL(string: "http://127.0.0.1:\(port)")!, task: task,
                          session: URLSession(configuration: configuration))
    }

    func stop() { task.cancel() }

    func request(_ method: String, _ path: String, body: Data? = nil) async throws -> Answer {
        guard let url = URL(string: path, relativeTo: base) else { throw APIError(.badRequest, "bad test path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let body { request.httpBody = body }
        if body != nil || method == "POST" { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        let (data, response) = try await session.data(for: request)
        return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }

    func get(_ path: String) async throws -> Answer { try await request("GET", path) }

    var port: Int { base.port ?? 0 }

    /// A request sent as it is over a new connection (so Host, Origin and Content-Type can be anything);
    /// `host: nil` leaves the Host header out.
    func raw(_ method: String, _ path: String, host: String?, headers: [String: String] = [:], body: String = "") async throws -> Answer {
        let a = try await RawHTTP.send(method, path, port: port, host: host, headers: headers, body: Array(body.utf8))
        return Answer(status: a.status, body: a.body)
    }

    func post(_ path: String, _ object: [String: Any]) async throws -> Answer {
        try await request("POST", path, body: try JSONSerialization.data(withJSONObject: object))
    }
}
