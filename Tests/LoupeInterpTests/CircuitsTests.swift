import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct CircuitsTests {
    @Test(arguments: CompositionMode.allCases)
    func compositionScoresMatchTransformerLens(mode: CompositionMode) throws {
        let model = try InterpFixtures.model()
        let scores = try model.compositionScores(mode)
        let want = try InterpFixtures.expected().tensor("comp.\(mode.rawValue)")
        #expect(scores.shape == [2, 4, 2, 4])
        #expect(scores.maxAbsDifference(want) <= 1e-4, "\(mode): \(scores.maxAbsDifference(want))")
    }

    @Test func copyingScoresMatchTransformerLens() throws {
        let model = try InterpFixtures.model()
        let scores = try model.copyingScores()
        let want = try InterpFixtures.expected().tensor("circuits.copying")
        #expect(scores.maxAbsDifference(want) <= 1e-4, "\(scores.maxAbsDifference(want))")
    }

    /// Eigenvalues, singular values and the norm from the factors equal numpy's on the materialized product.
    @Test func factoredMatrixMatchesTheDenseProduct() throws {
        let model = try InterpFixtures.model()
        let expected = try InterpFixtures.expected()
        let ov = try model.ovCircuit(layer: 0, head: 1)
        #expect(ov.shape == [32, 32] && ov.innerDimension == 8)
        let eig = try ov.eigenvalues()
        let re = try expected.tensor("circuits.ov01.eig_re").scalars, im = try expected.tensor("circuits.ov01.eig_im").scalars
        // Sorted by modulus; conjugate pairs may come in either order, so compare as multisets of moduli and real parts.
        let scale = eig.map { hypot($0.re, $0.im) }.max() ?? 1
        #expect(zip(eig.map { hypot($0.re, $0.im) }, zip(re, im).map { hypot($0, $1) }).allSatisfy { abs($0 - $1) <= 1e-4 * scale })
        #expect(zip(eig.map(\.re).sorted(), re.sorted()).allSatisfy { abs($0 - $1) <= 1e-4 * scale })
        let sv = try ov.singularValues(), want = try expected.tensor("circuits.ov01.sv").scalars
        #expect(sv.count == 8)
        #expect(zip(sv, want).allSatisfy { abs($0 - $1) <= 1e-4 * want[0] }, "\(sv) vs \(want)")
        #expect(abs(ov.frobeniusNorm - (try expected.tensor("circuits.ov01.fro").scalars[0])) <= 1e-4 * ov.frobeniusNorm)
        // The dense product's own norm agrees with the factored one.
        let dense = ov.ab
        #expect(abs(dense.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot() - ov.frobeniusNorm) < 1e-4)
    }

    /// Zero and rank-deficient products: eigenvalues and singular values are zeros, never a crash.
    @Test func degenerateMatrices() throws {
        let zero = try FactoredMatrix(Tensor(zeros: [5, 3]), Tensor(zeros: [3, 5]))
        #expect(try zero.eigenvalues().allSatisfy { $0.re == 0 && $0.im == 0 })
        #expect(try zero.singularValues().allSatisfy { $0 == 0 })
        #expect(zero.frobeniusNorm == 0)
        // Rank 1 through an inner dimension of 3.
        let a = try Tensor(shape: [4, 3], scalars: [1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0])
        let b = try Tensor(shape: [3, 4], scalars: [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
        let rankOne = try FactoredMatrix(a, b)
        let eig = try rankOne.eigenvalues()
        #expect(abs(eig[0].re - 10) < 1e-4 && eig.dropFirst().allSatisfy { abs($0.re) < 1e-5 })
        let sv = try rankOne.singularValues()
        #expect(abs(sv[0] - (30 as Float).squareRoot() * 2) < 1e-3 && sv.dropFirst().allSatisfy { $0 < 1e-2 })
        #expect(throws: TensorError.self) { try FactoredMatrix(Tensor(zeros: [2, 3]), Tensor(zeros: [2, 3])) }
        #expect(throws: TensorError.self) { try FactoredMatrix(Tensor(zeros: [2, 3]), Tensor(zeros: [3, 4])).eigenvalues() }
        #expect(throws: TensorError.self) { try LAPACK.eigenvalues(Tensor(repeating: .nan, shape: [2, 2])) }
        let model = try InterpFixtures.model()
        #expect(throws: InterpError.self) { try model.ovCircuit(layer: 2, head: 0) }
        #expect(throws: InterpError.self) { try model.qkCircuit(layer: 0, head: 4) }
    }

    /// `processed()` equals TransformerLens's processed state_dict (from_pretrained defaults).
    @Test func processedWeightsMatchTransformerLens() throws {
        let model = try InterpFixtures.model()
        let expected = try InterpFixtures.expected()
        var worst: Float = 0
        for (name, tensor) in model.weights.namedTensors {
            if name == "embed.W_E" || name == "unembed.W_U" {
                let slice = try expected.tensor("state.\(name).slice")
                let mine = name == "embed.W_E" ? try tensor.slice(0..<256) : try tensor.transposed().slice(0..<256).transposed()
                worst = max(worst, mine.maxAbsDifference(slice))
                continue
            }
            let want = try expected.tensor("state.\(name)")
            #expect(tensor.shape == want.shape, "\(name)")
            worst = max(worst, tensor.maxAbsDifference(want))
        }
        #expect(worst <= 1e-5, "max difference \(worst)")
    }
}

@Suite struct FullCircuitTests {
    /// One entry of each full circuit equals the same product computed from the weights directly.
    @Test func entriesMatchTheDefinition() throws {
        let model = try InterpFixtures.model()
        let w = model.weights
        let (q, k, qp, kp) = (1234, 777, 3, 1)
        let wPos = try #require(w.wPos)
        let queryVector = try (w.wE.slice(q) + wPos.slice(qp)).reshaped([1, 32])
        let keyVector = try (w.wE.slice(k) + wPos.slice(kp)).reshaped([1, 32])
        let b = w.blocks[1]
        let score = try queryVector.matmul(b.wQ.slice(2)).matmul(keyVector.matmul(b.wK.slice(2)).transposed()).scalars[0]
        let full = try model.fullQKCircuit(layer: 1, head: 2, queryPosition: qp, keyPosition: kp)
        #expect(full.shape == [50257, 50257])
        let entry = try Tensor.embedding(full.a, [q]).matmul(full.b).scalars[k]
        #expect(abs(entry - score) < 1e-5)
        let ov = try model.fullOVCircuit(layer: 0, head: 3)
        let src = try w.wE.slice(k).reshaped([1, 32])
        let want = try src.matmul(w.blocks[0].wV.slice(3)).matmul(w.blocks[0].wO.slice(3)).matmul(w.wU).scalars[q]
        #expect(abs(try Tensor.embedding(ov.a, [k]).matmul(ov.b).scalars[q] - want) < 1e-5)
        #expect(throws: InterpError.self) { try model.fullQKCircuit(layer: 0, head: 0, queryPosition: 64) }
    }
}
