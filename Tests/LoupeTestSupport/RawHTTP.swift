// A bare HTTP/1.1 client over a POSIX socket, for tests that must send what URLSession will not
// (any Host, Origin or Content-Type, malformed bodies).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum RawHTTP {
    public struct Answer: Sendable {
        public let status: Int
        public let body: Data
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        public var error: String { json["error"] as? String ?? "" }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Connects to 127.0.0.1:`port`; the caller closes the descriptor.
    public static func connectLoopback(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure(description: "connect to port \(port): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Sends `text` as it is and reads the answer until the server closes the connection.
    public static func send(_ text: [UInt8], port: Int) throws -> Answer {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        var sent = 0
        while sent < text.count {
            let n = text[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
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

    /// A request with `Connection: close`; `host: nil` leaves the Host header out.
    public static func request(_ method: String, _ path: String, port: Int, host: String?, headers: [String: String] = [:],
                               body: [UInt8] = []) throws -> Answer {
        var lines = ["\(method) \(path) HTTP/1.1"]
        if let host { lines.append("Host: \(host)") }
        for (k, v) in headers.sorted(by: { $0.key < $1.key }) { lines.append("\(k): \(v)") }
        lines.append("Content-Length: \(body.count)")
        lines.append("Connection: close")
        return try send(Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body, port: port)
    }

    /// `request` on a thread of its own: a blocking socket call inside an async test would hold one of the
    /// few cooperative threads the server under test needs too (on two cores, a deadlock).
    public static func send(_ method: String, _ path: String, port: Int, host: String?, headers: [String: String] = [:],
                            body: [UInt8] = []) async throws -> Answer {
        try await offPool { try request(method, path, port: port, host: host, headers: headers, body: body) }
    }

    /// Runs blocking work on a dispatch queue and awaits it.
    public static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}
