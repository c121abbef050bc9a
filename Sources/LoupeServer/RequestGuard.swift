// What keeps a web page the user happens to visit from driving the API: the explorer binds to loopback, but a
// browser will still send a page's requests there (CSRF) or, after a DNS rebinding, under another name.
// Every request is checked before routing:
// - its Host must name this server (loopback names when bound to loopback, the bound name, or --allow-host);
// - a request carrying an Origin (every cross-origin one does) must come from this very origin — no CORS
//   headers are ever sent, so cross-origin reads and preflights fail;
// - a POST must say `Content-Type: application/json` (a form or `text/plain` post needs no preflight);
// - with a token (`--token`, LOUPE_TOKEN; required off loopback), /api/ requests must carry
//   `Authorization: Bearer TOKEN`; the page reads it from `?token=` in its address.

import Foundation
import HTTPTypes
import Hummingbird

struct RequestGuard: RouterMiddleware {
    typealias Context = BasicRequestContext
    let configuration: ExplorerConfiguration

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let authority = request.head.authority ?? ""
        guard let host = Self.hostname(of: authority), configuration.accepts(host: host) else {
            throw APIError(.misdirectedRequest, authority.isEmpty ? "the request has no Host header"
                : "Host '\(authority)' is not this server (it answers to \(configuration.acceptedHostsDescription)); "
                    + "start it with --allow-host NAME to be reached under another name")
        }
        if let origin = request.headers[.origin], origin != "null" || request.method != .get {
            guard let url = URL(string: origin), let scheme = url.scheme, scheme == "http",
                  Self.authority(of: url) == authority.lowercased() else {
                throw APIError(.forbidden, "cross-origin request from '\(origin)' refused: the API serves its own page only")
            }
        }
        if request.method == .post {
            let type = request.headers[.contentType] ?? ""
            let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard media == "application/json" else {
                throw APIError(.unsupportedMediaType, "send the body as JSON with 'Content-Type: application/json'"
                               + (type.isEmpty ? " (none was given)" : ", found '\(type)'"))
            }
        }
        if let token = configuration.token, request.uri.path.hasPrefix("/api/") {
            let given = request.headers[.authorization].flatMap { value -> String? in
                let parts = value.split(separator: " ", maxSplits: 1)
                return parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]) : nil
            }
            guard let given, Self.equalInConstantTime(given, token) else {
                throw APIError(.unauthorized, given == nil
                    ? "this server needs its token: send 'Authorization: Bearer TOKEN' (the page takes it from ?token=TOKEN in its address)"
                    : "wrong token")
            }
        }
        return try await next(request, context)
    }

    /// The host name of an authority (`name:port`, `[v6]:port`), lowercased; nil when it is not one.
    static func hostname(of authority: String) -> String? {
        let a = authority.lowercased()
        guard !a.isEmpty, !a.contains(where: { $0 == "/" || $0 == "@" || $0 == " " }) else { return nil }
        if a.hasPrefix("[") {
            guard let close = a.firstIndex(of: "]") else { return nil }
            let rest = a[a.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && Int(rest.dropFirst()) != nil) else { return nil }
            return String(a[a.index(after: a.startIndex)..<close])
        }
        let parts = a.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, !parts[0].isEmpty else { return nil }
        if parts.count == 2 { guard Int(parts[1]) != nil else { return nil } }
        return String(parts[0])
    }

    /// `host[:port]` of an origin URL, as a Host header would spell it.
    static func authority(of url: URL) -> String? {
        guard let host = url.host?.lowercased() else { return nil }
        let shown = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return url.port.map { "\(shown):\($0)" } ?? shown
    }

    static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }
}

extension ExplorerConfiguration {
    static let loopbackNames: Set<String> = ["localhost", "127.0.0.1", "::1"]

    /// Whether `host` is a loopback address or name.
    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let octets = h.split(separator: ".", omittingEmptySubsequences: false)
        let ipv4Loopback = octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        return loopbackNames.contains(h) || ipv4Loopback
    }

    /// Bound to every interface: any name may reach it (the token is what protects it then).
    var bindsEverywhere: Bool { ["0.0.0.0", "::", "[::]"].contains(host) }

    func accepts(host name: String) -> Bool {
        if bindsEverywhere { return true }
        if allowedHosts.contains(where: { $0.lowercased() == name }) { return true }
        if Self.isLoopback(host) { return Self.isLoopback(name) }
        return name == host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    }

    var acceptedHostsDescription: String {
        let own = Self.isLoopback(host) ? ["localhost", "127.0.0.1", "[::1]"] : [host]
        return (own + allowedHosts).map { "'\($0)'" }.joined(separator: ", ")
    }
}
