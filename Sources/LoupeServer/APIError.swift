// Errors the API answers with: an HTTP status and a message, sent as `{"error": "..."}`.

import Foundation
import Hummingbird
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTraining

/// A request the explorer refuses, with the status and the message the client sees.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code) \(message)" }

    static func badRequest(_ m: String) -> APIError { APIError(.badRequest, m) }
    static func notFound(_ m: String) -> APIError { APIError(.notFound, m) }
    static func unprocessable(_ m: String) -> APIError { APIError(.unprocessableContent, m) }
    static func tooLarge(_ m: String) -> APIError { APIError(.contentTooLarge, m) }

    /// The API's answer to any error: its own status for `APIError` and Hummingbird's errors, 422 for
    /// the library's errors about the request (shapes, ranges, tokens), 500 otherwise.
    static func from(_ error: Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as DecodingError: return .badRequest(describe(e))
        case let e as HTTPError: return APIError(e.status, e.body ?? e.status.reasonPhrase)
        case let e as HTTPResponseError: return APIError(e.status, e.status.reasonPhrase)
        case let e as FetchError:
            if case .unknownModel = e { return .notFound(e.description) }
            return .unprocessable(e.description)
        case is InterpError, is ModelError, is TensorError, is TokenizerError, is HookError, is SAEError, is TunedLensError:
            return .unprocessable(String(describing: error))
        case is CancellationError: return APIError(.conflict, "cancelled")
        default: return APIError(.internalServerError, String(describing: error))
        }
    }

    /// A decoding error in words: which field, what was expected.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            guard !keys.isEmpty else { return "the body" }
            var out = ""
            for key in keys {
                if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return "'\(out)'"
        }
        switch error {
        case .dataCorrupted(let c):
            return c.codingPath.isEmpty ? "invalid JSON: \(c.underlyingError.map { "\($0.localizedDescription)" } ?? c.debugDescription)"
                                        : "\(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let key, let c): return "missing field \(path(c.codingPath + [key]))"
        case .typeMismatch(let type, let c): return "\(path(c.codingPath)) must be \(jsonType(type))"
        case .valueNotFound(let type, let c): return "\(path(c.codingPath)) must be \(jsonType(type)), found null"
        @unknown default: return "invalid request: \(error)"
        }
    }

    private static func jsonType(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is Double.Type, is Float.Type: return "a number"
        case is [Int].Type: return "an array of integers"
        default:
            let name = String(describing: type)
            return name.hasPrefix("Dictionary") || name.hasSuffix("Request") ? "a JSON object" : "a \(name)"
        }
    }
}
