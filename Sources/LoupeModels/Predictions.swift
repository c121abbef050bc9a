// Reading predictions off logits.

import LoupeTensor

/// One candidate next token.
public struct TokenPrediction: Sendable, Equatable, Codable {
    public let id: Int
    public let probability: Float
    public let logit: Float

    public init(id: Int, probability: Float, logit: Float) {
        self.id = id
        self.probability = probability
        self.logit = logit
    }
}

extension Tensor {
    /// The `k` most likely next tokens at position `pos` of batch row `batch`, from logits
    /// `[batch, pos, d_vocab]`, with softmax probabilities.
    public func topPredictions(k: Int, batch: Int = 0, pos: Int? = nil) throws -> [TokenPrediction] {
        guard rank == 3 else { throw TensorError.rank(operation: "topPredictions", expected: 3, found: rank) }
        let (nPos, v) = (shape[1], shape[2])
        let p = pos ?? nPos - 1
        guard batch >= 0, batch < shape[0], p >= 0, p < nPos else {
            throw TensorError.indexOutOfRange(shape: shape, index: [batch, p])
        }
        let start = (batch * nPos + p) * v
        let row = scalars[start..<(start + v)]
        let m = row.max() ?? 0
        let lse = m + Float(log(row.reduce(0.0) { $0 + exp(Double($1 - m)) }))
        return topK(row, k: k).map { TokenPrediction(id: $0.index, probability: exp($0.value - lse), logit: $0.value) }
    }
}

import Foundation
