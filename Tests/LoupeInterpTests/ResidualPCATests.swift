import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct ResidualPCATests {
    /// Explained variance and the direction's top token equal numpy's SVD of the same states.
    @Test func matchesNumpy() throws {
        let model = try InterpFixtures.model()
        let expected = try InterpFixtures.expected()
        let points = try model.residualPCA(tokens: try InterpFixtures.meta().clean)
        let explained = try expected.tensor("pca.explained").scalars, tops = try expected.tensor("pca.top").scalars
        #expect(points.count == 12)
        for (p, point) in points.enumerated() {
            #expect(abs(point.explained - explained[p]) < 1e-4, "position \(p): \(point.explained) vs \(explained[p])")
            #expect(point.directionTopToken == Int(tops[p]), "position \(p)")
        }
        let logits = try model.run([try InterpFixtures.meta().clean])
        #expect(points.map(\.predictedToken) == logits.argmaxLastDim())
    }

    @Test func symmetricEigenOfAKnownMatrix() throws {
        let (values, vectors) = try LAPACK.symmetricEigen(try Tensor(shape: [2, 2], scalars: [2, 1, 1, 2]))
        #expect(abs(values[0] - 1) < 1e-6 && abs(values[1] - 3) < 1e-6)
        let top = Array(vectors.scalars[2..<4])   // eigenvector of 3: ±(1, 1)/√2
        #expect(abs(abs(top[0]) - 0.70710678) < 1e-5 && top[0] * top[1] > 0)
        #expect(throws: TensorError.self) { try LAPACK.symmetricEigen(Tensor(zeros: [2, 3])) }
        let zero = try LAPACK.symmetricEigen(Tensor(zeros: [3, 3]))
        #expect(zero.values == [0, 0, 0])
    }

    @Test func positionsOutOfRange() throws {
        let model = try InterpFixtures.model()
        #expect(throws: InterpError.self) { try model.residualPCA(tokens: [1, 2, 3], positions: 0..<4) }
    }
}
