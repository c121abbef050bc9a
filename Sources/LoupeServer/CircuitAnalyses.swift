// The explorer's circuits view: `loupe circuits copying` (each head's OV copying score) and `loupe circuits
// composition` (Q/K/V-composition between every earlier and later head, a job: it multiplies every pair of
// heads' circuits). Both read the weights alone, so each model's results are computed once and kept.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor

public struct CopyingRequest: Decodable, Sendable, ModelNamed {
    public let model: String
}

public struct CopyingResponse: Codable, Sendable {
    public let model: String
    /// `[layer][head]`: Σ Re λ / Σ |λ| over the eigenvalues of W_E W_V W_O W_U (1 = copies what it attends to).
    public let scores: [[Float]]
}

public struct CompositionRequest: Decodable, Sendable, ModelNamed {
    public let model: String
    /// `q`, `k` (default) or `v`: which input of the later head.
    public let mode: String?
    /// The strongest pairs listed (default 20).
    public let top: Int?
}

public struct CompositionResponse: Codable, Sendable {
    public struct Head: Codable, Sendable, Equatable { public let layer: Int; public let head: Int }
    public struct Pair: Codable, Sendable { public let from: Head; public let to: Head; public let score: Float }
    public let model: String
    public let mode: String
    public let nLayers: Int
    public let nHeads: Int
    /// `[earlier head][later head]`, heads numbered layer × n_heads + head; 0 where the later head is not in a
    /// later layer. Left out (nil) above `CompositionResponse.maxMatrixHeads` heads: `top` only.
    public let scores: [[Float]]?
    /// The strongest pairs, strongest first.
    public let top: [Pair]

    /// Most heads whose full matrix is sent (400² scores, about 3 MB of JSON).
    public static let maxMatrixHeads = 400
}

extension Analyses {
    func copying(_ r: CopyingRequest) throws -> CopyingResponse {
        let scores = try weightResults.value("\(name)/copying") { try loaded.model.copyingScores() }
        return CopyingResponse(model: name, scores: grid(scores))
    }

    struct CompositionPlan: Sendable { let mode: CompositionMode; let top: Int }

    func plan(_ r: CompositionRequest) throws -> CompositionPlan {
        let text = r.mode ?? CompositionMode.k.rawValue
        guard let mode = CompositionMode(rawValue: text) else {
            throw APIError.unprocessable("'mode' must be \(CompositionMode.allCases.map(\.rawValue).joined(separator: ", ")), found '\(text)'")
        }
        return CompositionPlan(mode: mode, top: try count(r.top, field: "top", default: 20))
    }

    func composition(_ p: CompositionPlan, progress: @escaping ProgressHandler,
                     isCancelled: @escaping @Sendable () -> Bool) throws -> CompositionResponse {
        let (nL, h) = (config.nLayers, config.nHeads)
        let scores = try weightResults.value("\(name)/composition-\(p.mode.rawValue)") {
            try loaded.model.compositionScores(p.mode, progress: progress, isCancelled: isCancelled)
        }
        let n = nL * h
        progress(n, n)
        let order = scores.scalars.indices.filter { scores.scalars[$0] > 0 }
            .sorted { (scores.scalars[$0], $1) > (scores.scalars[$1], $0) }
        let top = order.prefix(p.top).map { i in
            CompositionResponse.Pair(from: .init(layer: i / n / h, head: i / n % h), to: .init(layer: i % n / h, head: i % n % h),
                                     score: scores.scalars[i])
        }
        let matrix = n <= CompositionResponse.maxMatrixHeads
            ? (0..<n).map { Array(scores.scalars[($0 * n)..<(($0 + 1) * n)]) } : nil
        return CompositionResponse(model: name, mode: p.mode.rawValue, nLayers: nL, nHeads: h, scores: matrix, top: Array(top))
    }
}
