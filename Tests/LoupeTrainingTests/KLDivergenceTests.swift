import Foundation
import LoupeFormats
import LoupeTensor
import Testing

@Suite("KL divergence op: forward and gradient equal PyTorch (float64) and finite differences")
struct KLDivergenceTests {
    /// scripts/make_kl_fixture.py: logits [3, 4, 7], target log-probs with one −∞, KL and its gradient.
    @Test func equalsPyTorch() throws {
        let file = try SafetensorsFile(path: GradFixtures.directory.appendingPathComponent("grad-kl.safetensors").path)
        let logits = Variable(try file.tensor("logits"), requiresGrad: true)
        let target = try file.tensor("target")
        #expect(target.scalars.contains(-Float.infinity), "the fixture has a zero-probability entry")
        let kl = try logits.klDivergence(targetLogProbs: target)
        let expected = try file.tensor("kl").scalars[0]
        #expect(abs(kl.value.scalars[0] - expected) < 1e-5 * max(1, abs(expected)), "KL \(kl.value.scalars[0]) vs PyTorch \(expected)")
        try kl.backward()
        let err = relativeError(logits.grad, try file.tensor("grad"))
        #expect(err < 1e-5, "gradient off by \(err) (relative) from PyTorch")
    }

    /// The other direction, KL(softmax(logits) ‖ p), as ROME keeps "{subject} is a" near where it was.
    @Test func reverseDirectionEqualsPyTorch() throws {
        let file = try SafetensorsFile(path: GradFixtures.directory.appendingPathComponent("grad-kl.safetensors").path)
        let logits = Variable(try file.tensor("logits"), requiresGrad: true)
        let kl = try logits.klDivergenceFromReference(logProbs: try file.tensor("reference"))
        let expected = try file.tensor("kl_reverse").scalars[0]
        #expect(abs(kl.value.scalars[0] - expected) < 1e-5 * max(1, abs(expected)), "KL \(kl.value.scalars[0]) vs PyTorch \(expected)")
        try kl.backward()
        let err = relativeError(logits.grad, try file.tensor("grad_reverse"))
        #expect(err < 1e-5, "gradient off by \(err) (relative) from PyTorch")
        // A reference that rules out what the logits allow: infinite, an error.
        #expect(throws: TensorError.self) { try logits.klDivergenceFromReference(logProbs: try file.tensor("target")) }
    }

    /// Central differences in Float32 on a small problem: about 3 digits agree.
    @Test func matchesFiniteDifferences() throws {
        var rng = SystemRandomNumberGenerator()
        let (rows, v) = (3, 5)
        let x0 = (0..<(rows * v)).map { _ in Float.random(in: -2...2, using: &rng) }
        var target = Tensor(unchecked: [rows, v], (0..<(rows * v)).map { _ in Float.random(in: -2...2, using: &rng) })
        target.scalars.withUnsafeMutableBufferPointer { Kernels.logSoftmaxRows($0.baseAddress!, rows: rows, n: v) }
        let x = Variable(Tensor(unchecked: [rows, v], x0), requiresGrad: true)
        try x.klDivergence(targetLogProbs: target).backward()
        let analytic = x.grad.scalars
        func loss(_ s: [Float]) throws -> Float {
            try Variable(Tensor(unchecked: [rows, v], s)).klDivergence(targetLogProbs: target).value.scalars[0]
        }
        let h: Float = 1e-2
        for i in 0..<x0.count {
            var plus = x0, minus = x0
            plus[i] += h; minus[i] -= h
            let numeric = (try loss(plus) - loss(minus)) / (2 * h)
            #expect(abs(numeric - analytic[i]) < 2e-3, "element \(i): finite difference \(numeric), gradient \(analytic[i])")
        }
    }

    @Test func zeroWhenEqualAndShapeChecked() throws {
        var lp = Tensor(unchecked: [2, 4], [0.1, 2, -1, 0.5, 3, 3, 3, -7])
        let logits = Variable(lp, requiresGrad: true)
        lp.scalars.withUnsafeMutableBufferPointer { Kernels.logSoftmaxRows($0.baseAddress!, rows: 2, n: 4) }
        let kl = try logits.klDivergence(targetLogProbs: lp)
        #expect(abs(kl.value.scalars[0]) < 1e-6)
        #expect(throws: TensorError.self) { try logits.klDivergence(targetLogProbs: Tensor(zeros: [2, 3])) }
    }
}
