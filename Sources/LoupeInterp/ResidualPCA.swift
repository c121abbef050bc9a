// PCA of the residual stream across layers: for one predicted position, its residual states at every
// layer (each block's input, and the final output) are points in d_model; how much of their spread one
// direction explains, and whether that direction, read through the unembedding, already names the
// model's prediction. (The notes Loupe grew from report ~88% variance and ~77% agreement for GPT-2.)

import Foundation
import LoupeModels
import LoupeTensor

/// The first principal direction of one position's residual states.
public struct ResidualPCAPoint: Sendable, Codable {
    public let position: Int
    /// Share of the variance across layers the first direction explains.
    public let explained: Float
    /// The first direction's top token through the final norm's weight and W_U (sign fixed toward the
    /// final residual).
    public let directionTopToken: Int
    /// The model's own top-1 prediction at this position.
    public let predictedToken: Int
    public var agrees: Bool { directionTopToken == predictedToken }
}

extension HookedTransformer {
    /// Residual PCA at every position of `tokens` (or those in `positions`).
    public func residualPCA(tokens: [Int], positions: Range<Int>? = nil) throws -> [ResidualPCAPoint] {
        let (nL, d, v) = (config.nLayers, config.dModel, config.dVocab)
        let T = tokens.count
        let range = positions ?? 0..<T
        guard range.lowerBound >= 0, range.upperBound <= T else {
            throw InterpError.outOfRange(what: "position", value: range.upperBound - 1, count: T)
        }
        var names = Set((0..<nL).map { HookName.residPre($0) })
        names.insert(.residPost(nL - 1))
        let (logits, cache) = try runWithCache(.tokens([tokens]), select: .names(names))
        let states = (0..<nL).compactMap { cache[.residPre($0)] } + [cache[.residPost(nL - 1)]].compactMap { $0 }
        let n = states.count
        var out: [ResidualPCAPoint] = []
        for p in range {
            // X: [states, d_model], centred over the states.
            var x = [Float](repeating: 0, count: n * d)
            for (i, s) in states.enumerated() { for j in 0..<d { x[i * d + j] = s.scalars[p * d + j] } }
            for j in 0..<d {
                var mean: Float = 0
                for i in 0..<n { mean += x[i * d + j] }
                mean /= Float(n)
                for i in 0..<n { x[i * d + j] -= mean }
            }
            // The Gram matrix X Xᵀ (states × states) has the covariance's non-zero eigenvalues.
            let X = Tensor(unchecked: [n, d], x)
            let gram = try X.matmul(X.transposed())
            let (values, vectors) = try LAPACK.symmetricEigen(gram)
            let total = values.reduce(0) { $0 + max($1, 0) }
            let top = values.last ?? 0
            // First direction in d_model: Xᵀ u, with u the top eigenvector (the last row, ascending order).
            let u = Array(vectors.scalars[((n - 1) * n)..<(n * n)])
            var direction = [Float](repeating: 0, count: d)
            for i in 0..<n { for j in 0..<d { direction[j] += u[i] * x[i * d + j] } }
            // Point it toward the final residual state.
            let toward = (0..<d).reduce(Float(0)) { $0 + direction[$1] * x[(n - 1) * d + $1] }
            if toward < 0 { for j in 0..<d { direction[j] = -direction[j] } }
            // Read it as the final norm would pass it on: centred (LayerNorm), times the norm's weight
            // (already folded into W_U in processed models), then through the unembedding.
            if config.centresNorm {
                let mean = direction.reduce(0, +) / Float(d)
                for j in 0..<d { direction[j] -= mean }
            }
            if let w = weights.lnFinalW { for j in 0..<d { direction[j] *= w.scalars[j] } }
            let read = try Tensor(unchecked: [1, d], direction).matmul(weights.wU)
            let directionTop = read.argmaxLastDim()[0]
            let row = logits.scalars[(p * v)..<((p + 1) * v)]
            let predicted = (row.indices.max { row[$0] < row[$1] } ?? row.startIndex) - row.startIndex
            out.append(ResidualPCAPoint(position: p, explained: total > 0 ? top / total : 0,
                                        directionTopToken: directionTop, predictedToken: predicted))
        }
        return out
    }
}
