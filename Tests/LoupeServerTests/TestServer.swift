import Foundation
#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import LoupeServer
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
                      preload: Bool = true, token: String? = nil, idleTimeout: Double = 30) async throws -> TestServer {
        let models = ExplorerModel.catalog(extra: [fixture])
        let server = try ExplorerServer(configuration: ExplorerConfiguration(
            host: "127.0.0.1", port: 0, models: models, preload: preload ? ["gpt2-tiny"] : [], limits: limits,
            quiet: true, token: token, idleTimeout: idleTimeout))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw APIError(.internalServerError, "the server did not start") }
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

    /// Sends `text` as it is over a new connection (so Host, Origin and Content-Type can be anything) and
    /// returns the status and body of the answer.
    func raw(_ text: String) throws -> Answer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw APIError(.internalServerError, "socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw APIError(.internalServerError, "connect") }
        let bytes = Array(text.utf8)
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw APIError(.internalServerError, "send") }
        var response: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let reply = String(decoding: response, as: UTF8.self)
        let status = reply.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        let body = reply.range(of: "\r\n\r\n").map { String(reply[$0.upperBound...]) } ?? ""
        return Answer(status: status, body: Data(body.utf8))
    }

    /// A raw request with `Connection: close`; `host: nil` leaves the Host header out.
    func raw(_ method: String, _ path: String, host: String?, headers: [String: String] = [:], body: String = "") throws -> Answer {
        var lines = ["\(method) \(path) HTTP/1.1"]
        if let host { lines.append("Host: \(host)") }
        for (k, v) in headers.sorted(by: { $0.key < $1.key }) { lines.append("\(k): \(v)") }
        lines.append("Content-Length: \(body.utf8.count)")
        lines.append("Connection: close")
        return try raw(lines.joined(separator: "\r\n") + "\r\n\r\n" + body)
    }

    func post(_ path: String, _ object: [String: Any]) async throws -> Answer {
        try await request("POST", path, body: try JSONSerialization.data(withJSONObject: object))
    }
}
