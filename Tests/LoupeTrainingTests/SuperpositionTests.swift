// Toy models of superposition: the hand-written gradient against the autograd tape, the measures against
// hand-made geometries, and what the paper found — five sparse features in two dimensions form a regular
// pentagon (dimensionality 2/5 each), the linear model keeps only the most important features, and two
// features in one dimension go through the three phases of the paper's phase diagram.

import Foundation
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

@Suite("Toy models of superposition")
struct SuperpositionTests {
    /// The loss and gradient of x' = ReLU(WᵀWx + b) equal the tape's (W used twice: as W and as Wᵀ).
    @Test(arguments: [true, false]) func gradientEqualsTheTape(relu: Bool) throws {
        var c = SuperpositionConfig(features: 6, dims: 3, sparsity: 0.4, importanceDecay: 0.8)
        c.relu = relu
        c.seed = 5
        var rng = SeededGenerator(seed: 9)
        let model = try SuperpositionModel(config: c, w: (0..<18).map { _ in rng.nextGaussian() },
                                           b: (0..<6).map { _ in rng.nextGaussian() * 0.5 })
        let x = SuperpositionModel.batch(c, size: 16, rng: &rng)
        let (loss, gw, gb) = model.lossAndGradients(x)

        let (n, m) = (6, 3)
        let W = Variable(Tensor(unchecked: [m, n], model.w), requiresGrad: true)
        var wt = [Float](repeating: 0, count: n * m)
        for k in 0..<m { for i in 0..<n { wt[i * m + k] = model.w[k * n + i] } }
        let Wt = Variable(Tensor(unchecked: [n, m], wt), requiresGrad: true)
        let B = Variable(Tensor(unchecked: [n], model.b), requiresGrad: true)
        let X = Variable(Tensor(unchecked: [16, n], x))
        var y = try X.matmul(Wt).matmul(W).addingRow(B)
        if relu { y = y.relu() }
        let e = try y - X
        let weights = Variable(Tensor(unchecked: [16, n], (0..<16).flatMap { _ in c.importance }))
        let tapeLoss = try (e * e * weights).sum().scaled(by: 1 / 16)
        try tapeLoss.backward()
        #expect(abs(tapeLoss.value.scalars[0] - loss) < 1e-5 * max(1, abs(loss)))
        var expectedW = W.grad.scalars
        let gt = Wt.grad.scalars
        for k in 0..<m { for i in 0..<n { expectedW[k * n + i] += gt[i * m + k] } }
        #expect(relativeError(Tensor(gw), Tensor(expectedW)) < 1e-5)
        #expect(relativeError(Tensor(gb), B.grad) < 1e-5)
    }

    @Test func measuresOfKnownGeometries() throws {
        let c = SuperpositionConfig(features: 3, dims: 2, sparsity: 0.5)
        // f0 and f1 an antipodal pair on one axis, f2 alone on the other, f… none left out.
        let model = try SuperpositionModel(config: c, w: [1, -1, 0, 0, 0, 1], b: [0, 0, 0])
        #expect(model.norms == [1, 1, 1])
        #expect(model.dimensionality.map { ($0 * 1000).rounded() / 1000 } == [0.5, 0.5, 1])
        #expect(model.superposition == [1, 1, 0])
        #expect(abs(model.dimensionsPerFeature - 2.0 / 3.0) < 1e-6)
        // Five unit vectors 72° apart: each has dimensionality 2/5.
        let angles = (0..<5).map { Float($0) * 2 * .pi / 5 }
        let pentagon = try SuperpositionModel(config: SuperpositionConfig(features: 5, dims: 2, sparsity: 0.9),
                                              w: angles.map { cos($0) } + angles.map { sin($0) }, b: [0, 0, 0, 0, 0])
        for d in pentagon.dimensionality { #expect(abs(d - 0.4) < 1e-5) }
    }

    /// The paper's first figure: five equally important features at sparsity 0.9 in two dimensions.
    @Test func fiveSparseFeaturesFormAPentagon() throws {
        var c = SuperpositionConfig(features: 5, dims: 2, sparsity: 0.9)
        c.steps = 4000
        c.batchSize = 256
        c.learningRate = 3e-3
        let (model, _) = try SuperpositionModel.trainBest(c, instances: 3)
        for n in model.norms { #expect(n > 0.8, "every feature is represented: \(model.norms)") }
        let angles = try #require(model.angles).map { $0 * 180 / .pi }.sorted()
        let gaps = angles.indices.map { i in i + 1 < angles.count ? angles[i + 1] - angles[i] : angles[0] + 360 - angles[i] }
        for g in gaps { #expect(abs(g - 72) < 6, "neighbouring features 72° apart: \(gaps)") }
        for d in model.dimensionality { #expect(abs(d - 0.4) < 0.04, "dimensionality 2/5: \(model.dimensionality)") }
    }

    /// Without the ReLU nothing is superposed: the two most important features take the two dimensions.
    @Test func linearModelKeepsTheMostImportantFeatures() throws {
        var c = SuperpositionConfig(features: 5, dims: 2, sparsity: 0.9, importanceDecay: 0.7)
        c.relu = false
        c.steps = 3000
        c.batchSize = 256
        c.learningRate = 1e-2
        var model = try SuperpositionModel(config: c)
        try model.train()
        let norms = model.norms
        #expect(norms[0] > 0.9 && norms[1] > 0.9, "\(norms)")
        for i in 2..<5 { #expect(norms[i] < 0.2, "\(norms)") }
        #expect(model.superposition[0] < 0.05 && model.superposition[1] < 0.05)
    }

    /// The corners of the phase diagram: a dense, unimportant second feature is dropped; a dense, very
    /// important one takes the dimension; sparse equals share it in superposition.
    @Test func twoFeaturesInOneDimensionGoThroughThePhases() throws {
        #expect(try SuperpositionSweeps.phase(density: 1, relativeImportance: 0.2, steps: 3000, seed: 1).0 == .notRepresented)
        #expect(try SuperpositionSweeps.phase(density: 1, relativeImportance: 5, steps: 3000, seed: 1).0 == .dedicated)
        #expect(try SuperpositionSweeps.phase(density: 0.05, relativeImportance: 1, steps: 3000, seed: 1).0 == .superposed)
        #expect(try SuperpositionSweeps.phase(density: 0.03, relativeImportance: 0.8, steps: 3000, seed: 1).0 == .superposed)
    }

    @Test func badSettingsAreErrors() {
        #expect(throws: TrainingError.self) { try SuperpositionModel(config: SuperpositionConfig(features: 5, dims: 2, sparsity: 1)) }
        #expect(throws: TrainingError.self) { try SuperpositionModel(config: SuperpositionConfig(features: 0, dims: 2, sparsity: 0.5)) }
        #expect(throws: TrainingError.self) {
            try SuperpositionModel(config: SuperpositionConfig(features: 3, dims: 2, sparsity: 0.5), w: [1, 2], b: [0, 0, 0])
        }
    }
}
