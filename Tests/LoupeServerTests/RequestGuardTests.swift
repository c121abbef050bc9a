// A web page the user visits must not be able to drive the API: foreign Host headers (DNS rebinding),
// cross-origin requests and non-JSON posts (CSRF) are refused; a token, when set, is required; silent
// connections are closed.

import Foundation
@testable import LoupeServer
import LoupeTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct RequestGuardTests {
    static let predict = #"{"model": "gpt2-tiny", "prompt": "Hello", "topK": 2}"#

    @Test func foreignHostsAreRefused() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let own = "127.0.0.1:\(s.port)"
        #expect(try await s.raw("GET", "/api/health", host: own).status == 200)
        #expect(try await s.raw("GET", "/api/health", host: "localhost:\(s.port)").status == 200)
        #expect(try await s.raw("GET", "/api/health", host: "[::1]:\(s.port)").status == 200)
        for foreign in ["evil.example:\(s.port)", "evil.example", "127.0.0.1.evil.example:\(s.port)", "10.0.0.1:\(s.port)"] {
            let a = try await s.raw("POST", "/api/predict", host: foreign, headers: ["Content-Type": "application/json"], body: Self.predict)
            #expect(a.status == 421, "\(foreign)")
            #expect(a.error.contains("is not this server"), "\(foreign): \(a.error)")
        }
        let page = try await s.raw("GET", "/", host: "rebound.example:\(s.port)")
        #expect(page.status == 421, "the page itself is not served under a foreign name")
        #expect(try await s.raw("GET", "/api/health", host: nil).status == 421)
    }

    @Test func postsMustBeJSON() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let own = "127.0.0.1:\(s.port)"
        for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
            let a = try await s.raw("POST", "/api/predict", host: own, headers: ["Content-Type": type], body: Self.predict)
            #expect(a.status == 415 && a.error.contains("application/json"), "\(type): \(a.status) \(a.error)")
        }
        #expect(try await s.raw("POST", "/api/predict", host: own, body: Self.predict).status == 415)
        let ok = try await s.raw("POST", "/api/predict", host: own, headers: ["Content-Type": "application/json; charset=utf-8"], body: Self.predict)
        #expect(ok.status == 200, "\(ok.error)")
    }

    @Test func crossOriginRequestsAreRefused() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let own = "127.0.0.1:\(s.port)"
        let json = ["Content-Type": "application/json"]
        for origin in ["http://evil.example", "http://127.0.0.1:1", "https://127.0.0.1:\(s.port)", "null"] {
            let a = try await s.raw("POST", "/api/predict", host: own, headers: json.merging(["Origin": origin]) { $1 }, body: Self.predict)
            #expect(a.status == 403 && a.error.contains("cross-origin"), "\(origin): \(a.status) \(a.error)")
        }
        let preflight = try await s.raw("OPTIONS", "/api/predict", host: own, headers: ["Origin": "http://evil.example",
                                                                                  "Access-Control-Request-Method": "POST"])
        #expect(preflight.status == 403)
        let same = try await s.raw("POST", "/api/predict", host: own, headers: json.merging(["Origin": "http://\(own)"]) { $1 }, body: Self.predict)
        #expect(same.status == 200, "the page's own origin: \(same.error)")
    }

    @Test func aTokenIsRequiredWhenSet() async throws {
        let token = "correct-horse-battery-staple"
        let s = try await TestServer.start(token: token)
        defer { s.stop() }
        let own = "127.0.0.1:\(s.port)"
        let none = try await s.raw("GET", "/api/models", host: own)
        #expect(none.status == 401 && none.error.contains("Authorization: Bearer"), "\(none.error)")
        #expect(try await s.raw("GET", "/api/models", host: own, headers: ["Authorization": "Bearer wrong-token-of-some-length"]).status == 401)
        #expect(try await s.raw("GET", "/api/models", host: own, headers: ["Authorization": "Bearer \(token)"]).status == 200)
        #expect(try await s.raw("GET", "/", host: own).status == 200, "the page loads, then sends the token it was given")
        let posted = try await s.raw("POST", "/api/predict", host: own,
                               headers: ["Authorization": "bearer \(token)", "Content-Type": "application/json"], body: Self.predict)
        #expect(posted.status == 200, "\(posted.error)")
    }

    @Test func offLoopbackNeedsAToken() throws {
        #expect(throws: APIError.self) { try ExplorerServer(configuration: ExplorerConfiguration(host: "0.0.0.0", quiet: true)) }
        #expect(throws: APIError.self) { try ExplorerServer(configuration: ExplorerConfiguration(host: "0.0.0.0", quiet: true, token: "short")) }
        _ = try ExplorerServer(configuration: ExplorerConfiguration(host: "0.0.0.0", quiet: true, token: "a-long-enough-token-1234"))
        let everywhere = ExplorerConfiguration(host: "0.0.0.0", token: "a-long-enough-token-1234")
        #expect(everywhere.accepts(host: "my-workstation.lan"))
        let named = ExplorerConfiguration(host: "127.0.0.1", allowedHosts: ["loupe.internal"])
        #expect(named.accepts(host: "loupe.internal") && named.accepts(host: "localhost") && !named.accepts(host: "other.internal"))
        #expect(RequestGuard.hostname(of: "[::1]:8080") == "::1" && RequestGuard.hostname(of: "Localhost") == "localhost")
        #expect(RequestGuard.hostname(of: "a:b:c") == nil && RequestGuard.hostname(of: "x:port") == nil && RequestGuard.hostname(of: "") == nil)
    }

    /// A client that connects and says nothing is disconnected after the idle timeout.
    @Test func silentClientsAreTimedOut() async throws {
        let s = try await TestServer.start(preload: false, idleTimeout: 0.5)
        defer { s.stop() }
        let port = s.port
        let began = Date()
        let n = try await RawHTTP.offPool { () -> Int in
            let fd = try RawHTTP.connectLoopback(port: port)
            defer { close(fd) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, 0)
        }
        #expect(n == 0, "the server closed the connection")
        #expect(Date().timeIntervalSince(began) < 4)
    }

    /// Mistyped fields are named with the type they need.
    @Test func badFieldsAreNamed() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let float = try await s.post("/api/predict", ["model": "gpt2-tiny", "prompt": "a", "topK": 1.5])
        #expect(float.status == 400 && float.error.contains("'topK'") && float.error.contains("integer"), "\(float.error)")
        let seed = try await s.post("/api/heads", ["model": "gpt2-tiny", "seed": -1])
        #expect(seed.status == 400 && seed.error.contains("'seed'") && seed.error.contains("integer 0 or more"), "\(seed.error)")
    }
}
