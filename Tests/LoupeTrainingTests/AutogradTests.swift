import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

/// Fixtures made by scripts/make_grad_fixtures.py (PyTorch, float64 from the same float32 inputs).
enum GradFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func ops() throws -> SafetensorsFile {
        try SafetensorsFile(path: directory.appendingPathComponent("grad-ops.safetensors").path)
    }
}

/// Largest |a − b| relative to the largest |b| (or 1).
func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
    let scale = max(b.scalars.map(abs).max() ?? 0, 1e-3)
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

@Suite("Autograd: every op's forward and backward equal PyTorch's (float64) on the same inputs")
struct AutogradTests {
    let file: SafetensorsFile

    init() throws { file = try GradFixtures.ops() }

    /// Runs `op` on the fixture's inputs, back-propagates the fixture's cotangent, and compares.
    func check(_ name: String, inputs: Int, maskInfinite: Bool = false,
               _ op: ([Variable]) throws -> Variable) throws {
        let xs = try (0..<inputs).map { try Variable(file.tensor("\(name).in\($0)"), requiresGrad: true) }
        let y = try op(xs)
        var value = y.value
        if maskInfinite { value = Tensor(unchecked: value.shape, value.scalars.map { $0.isFinite ? $0 : 0 }) }
        // numpy writes a 0-d array as [1]: compare scalars under the op's shape.
        func fixture(_ key: String, as shape: [Int]) throws -> Tensor {
            let t = try file.tensor(key)
            return t.count == shape.product ? try t.reshaped(shape) : t
        }
        let expected = try fixture("\(name).out", as: value.shape)
        #expect(value.shape == expected.shape, "\(name): output shape")
        #expect(relativeError(value, expected) < 1e-5, "\(name): forward \(value.scalars.prefix(6)) vs \(expected.scalars.prefix(6))")
        try y.backward(seed: fixture("\(name).cot", as: y.value.shape))
        for (i, x) in xs.enumerated() {
            let g = try file.tensor("\(name).grad\(i)")
            #expect(x.grad.shape == g.shape, "\(name): gradient \(i) shape")
            let err = relativeError(x.grad, g)
            #expect(err < 1e-5, "\(name): gradient of input \(i) off by \(err) (relative)")
        }
    }

    @Test func linearAlgebraAndArithmetic() throws {
        try check("matmul", inputs: 2) { try $0[0].matmul($0[1]) }
        try check("add", inputs: 2) { try $0[0] + $0[1] }
        try check("sub", inputs: 2) { try $0[0] - $0[1] }
        try check("mul", inputs: 2) { try $0[0] * $0[1] }
        try check("addrow", inputs: 2) { try $0[0].addingRow($0[1]) }
        try check("mulrow", inputs: 2) { try $0[0].multiplyingRow($0[1]) }
        try check("scaled", inputs: 1) { $0[0].scaled(by: 0.37) }
        try check("sum", inputs: 1) { $0[0].sum() }
        try check("mean", inputs: 1) { $0[0].mean() }
        try check("gather", inputs: 1) { try $0[0].gathering(flatIndices: [0, 5, 5, 11, 7]) }
        try check("permute", inputs: 1) { try $0[0].permuted([1, 0, 2]) }
    }

    @Test func nonLinearitiesNormsAndSoftmax() throws {
        try check("gelu_tanh", inputs: 1) { $0[0].geluTanh() }
        try check("gelu_erf", inputs: 1) { $0[0].geluErf() }
        try check("relu", inputs: 1) { $0[0].relu() }
        try check("silu", inputs: 1) { $0[0].silu() }
        try check("layernorm", inputs: 1) { $0[0].normalized(centered: true, eps: 1e-5).normalized }
        try check("rmsnorm", inputs: 1) { $0[0].normalized(centered: false, eps: 1e-6).normalized }
        try check("softmax", inputs: 1) { $0[0].softmax() }
    }

    @Test func embeddingLossAndAttention() throws {
        try check("embedding", inputs: 1) { try Variable.embedding($0[0], [3, 0, 3, 6, 1]) }
        try check("crossentropy", inputs: 1) { try $0[0].crossEntropy(targets: [2, -1, 0, 5]) }
        try check("scores", inputs: 2, maskInfinite: true) { try Variable.causalAttentionScores(q: $0[0], k: $0[1]) }
        try check("mix", inputs: 2) { try Variable.attentionMix(pattern: $0[0], v: $0[1]) }
    }

    /// A composite (attention block with a norm and a loss) against central finite differences of the
    /// tape's own forward pass, in float32 with a step large enough for float32 rounding.
    @Test func compositeMatchesFiniteDifferences() throws {
        var rng = SeededGenerator(seed: 3)
        func rand(_ shape: [Int], _ s: Float = 1) -> Tensor {
            Tensor(unchecked: shape, (0..<shape.product).map { _ in Float.random(in: -s...s, using: &rng) })
        }
        let x0 = rand([1, 4, 6]), wq = rand([6, 6], 0.5), wv = rand([6, 6], 0.5), wu = rand([6, 5], 0.5)
        func loss(_ x: Variable, _ q: Variable, _ v: Variable, _ u: Variable) throws -> Variable {
            let n = x.normalized(centered: true, eps: 1e-5).normalized
            let qq = try n.matmul(q).reshaped([1, 4, 2, 3])
            let vv = try n.matmul(v).reshaped([1, 4, 2, 3])
            let pattern = try Variable.causalAttentionScores(q: qq, k: qq).softmax()
            let z = try Variable.attentionMix(pattern: pattern, v: vv).reshaped([1, 4, 6]).geluTanh()
            return try (z + x).matmul(u).crossEntropy(targets: [1, 4, -1, 0])
        }
        let vars = [x0, wq, wv, wu].map { Variable($0, requiresGrad: true) }
        try loss(vars[0], vars[1], vars[2], vars[3]).backward()
        let h: Float = 1e-2
        for (which, v) in vars.enumerated() {
            for i in stride(from: 0, to: v.value.count, by: 5) {
                func perturbed(_ delta: Float) throws -> Float {
                    var ts = vars.map(\.value)
                    ts[which].scalars[i] += delta
                    let c = ts.map { Variable($0) }
                    return try loss(c[0], c[1], c[2], c[3]).value.scalars[0]
                }
                let numeric = (try perturbed(h) - perturbed(-h)) / (2 * h)
                let analytic = v.grad.scalars[i]
                #expect(abs(numeric - analytic) < 2e-3 + 2e-2 * abs(numeric), "input \(which)[\(i)]: \(analytic) vs \(numeric)")
            }
        }
    }

    /// Rotary embeddings: the backward pass of a rotation is the inverse rotation; checked with finite
    /// differences (exact up to float32 rounding, the map being linear), both pair layouts.
    @Test func rotaryMatchesFiniteDifferences() throws {
        var rng = SeededGenerator(seed: 11)
        let x0 = Tensor(unchecked: [1, 3, 2, 4], (0..<24).map { _ in Float.random(in: -1...1, using: &rng) })
        let angles = (0..<6).map { Float($0) * 0.7 + 0.1 }
        let cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
        let weights = Variable(Tensor(unchecked: [1, 3, 2, 4], (0..<24).map { _ in Float.random(in: -1...1, using: &rng) }))
        for interleaved in [true, false] {
            let x = Variable(x0, requiresGrad: true)
            try (x.rotated(cos: cos, sin: sin, interleaved: interleaved) * weights).sum().backward()
            for i in 0..<24 {
                func f(_ d: Float) throws -> Float {
                    var t = x0; t.scalars[i] += d
                    return try (Variable(t).rotated(cos: cos, sin: sin, interleaved: interleaved) * weights).sum().value.scalars[0]
                }
                let numeric = (try f(0.01) - f(-0.01)) / 0.02
                let gap = abs(numeric - x.grad.scalars[i])
                #expect(gap < 1e-3, "element \(i), interleaved \(interleaved)")
            }
        }
        #expect(throws: TensorError.self) { try Variable(x0).rotated(cos: [1], sin: [0], interleaved: true) }
    }

    @Test func dropoutKeepsTheExpectationAndIsSeeded() throws {
        let x = Variable(Tensor(repeating: 1, shape: [10_000]), requiresGrad: true)
        var a = SeededGenerator(seed: 1), b = SeededGenerator(seed: 1)
        let y = x.dropout(0.3, using: &a)
        let again = x.dropout(0.3, using: &b)
        #expect(y.value == again.value)                       // same seed, same mask
        let zeros = y.value.scalars.filter { $0 == 0 }.count
        #expect(abs(Double(zeros) / 10_000 - 0.3) < 0.03)     // about p dropped
        let mean = y.value.scalars.reduce(0, +) / 10_000
        #expect(abs(mean - 1) < 0.05)                          // kept ones scaled by 1/(1−p)
        try y.sum().backward()
        #expect(x.grad.scalars == y.value.scalars)             // the gradient goes through the same mask
        #expect(x.dropout(0, using: &a) === x)
    }

    @Test func badShapesAndLossesThrow() throws {
        let a = Variable(Tensor(zeros: [2, 3]), requiresGrad: true)
        #expect(throws: TensorError.self) { try a.matmul(Variable(Tensor(zeros: [4, 2]))) }
        #expect(throws: TensorError.self) { try a + Variable(Tensor(zeros: [3, 2])) }
        #expect(throws: TensorError.self) { try a.crossEntropy(targets: [0]) }
        #expect(throws: TensorError.self) { try a.crossEntropy(targets: [0, 3]) }
        #expect(throws: TensorError.self) { try a.crossEntropy(targets: [-1, -1]) }
        #expect(throws: TensorError.self) { try a.backward() }   // not a scalar, no seed
        #expect(throws: TensorError.self) { try a.gathering(flatIndices: [6]) }
    }

    @Test func constantsGetNoGradientAndGradientsAccumulate() throws {
        let w = Variable(Tensor([1, 2, 3]), requiresGrad: true)
        let c = Variable(Tensor([4, 5, 6]))
        let y = try (w * c).sum()
        try y.backward()
        try y.backward()
        #expect(w.grad.scalars == [8, 10, 12])
        #expect(c.gradScalars == nil)
    }
}
