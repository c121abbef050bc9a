// The explorer's request log: one line per request on standard error (unless the server is quiet), and
// the last requests at GET /api/requests for the page's Log view. Paths only: a query may carry the token.

import Foundation
import Hummingbird

/// One request as logged.
public struct LoggedRequest: Codable, Sendable {
    /// When it arrived (ISO 8601).
    public let time: String
    public let method: String
    public let path: String
    public let status: Int
    public let milliseconds: Double
}

/// The most recent requests, newest last.
actor RequestLog {
    private var entries: [LoggedRequest] = []
    let capacity: Int
    init(capacity: Int = 200) { self.capacity = capacity }

    func record(_ entry: LoggedRequest) {
        entries.append(entry)
        if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
    }

    /// Newest first.
    func recent() -> [LoggedRequest] { entries.reversed() }
}

struct RequestLogger: RouterMiddleware {
    typealias Context = BasicRequestContext
    let log: RequestLog
    let echo: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now()
        let arrived = Date()
        func record(_ status: Int) async {
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            let entry = LoggedRequest(time: ISO8601DateFormatter().string(from: arrived), method: request.method.rawValue,
                                      path: request.uri.path, status: status, milliseconds: (ms * 10).rounded() / 10)
            await log.record(entry)
            if echo {
                let line = "\(entry.time) \(entry.method) \(entry.path) \(entry.status) \(String(format: "%.1f", entry.milliseconds)) ms\n"
                FileHandle.standardError.write(Data(line.utf8))
            }
        }
        do {
            let response = try await next(request, context)
            await record(Int(response.status.code))
            return response
        } catch {
            await record(Int(APIError.from(error).status.code))
            throw error
        }
    }
}
