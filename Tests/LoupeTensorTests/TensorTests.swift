import Foundation
import LoupeTensor
import Testing

/// Deterministic pseudo-random floats in [-1, 1).
func randomScalars(_ n: Int, seed: UInt64) -> [Float] {
    var x = seed &+ 0x9E37_79B9_7F4A_7C15
    return (0..<n).map { _ in
        x = x &* 6364136223846793005 &+ 1442695040888963407
        return Float(x >> 40) / Float(1 << 23) - 1
    }
}

@Suite struct TensorTests {
    @Test(arguments: [(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 128, 48)])
    func matmulMatchesNaiveProduct(m: Int, k: Int, n: Int) throws {
        let a = try Tensor(shape: [m, k], scalars: randomScalars(m * k, seed: 1))
        let b = try Tensor(shape: [k, n], scalars: randomScalars(k * n, seed: 2))
        let c = try a.matmul(b)
        #expect(c.shape == [m, n])
        var worst: Float = 0
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k { s += Double(a.scalars[i * k + p]) * Double(b.scalars[p * n + j]) }
                worst = max(worst, abs(Float(s) - c.scalars[i * n + j]))
            }
        }
        #expect(worst < 1e-4, "max difference \(worst)")
    }

    @Test func batchedMatmulAndLeadingDimensions() throws {
        let a = try Tensor(shape: [2, 3, 4], scalars: randomScalars(24, seed: 3))
        let b = try Tensor(shape: [2, 4, 5], scalars: randomScalars(40, seed: 4))
        let c = try a.matmul(b)
        #expect(c.shape == [2, 3, 5])
        let second = try a.slice(1).matmul(b.slice(1))
        #expect(try c.slice(1).maxAbsDifference(second) < 1e-6)
        // [2, 3, 4] · [4, 5] folds the batch into the rows.
        let flat = try a.matmul(b.slice(0))
        #expect(flat.shape == [2, 3, 5])
        #expect(try flat.slice(0).maxAbsDifference(c.slice(0)) < 1e-6)
    }

    @Test func matmulShapeErrors() throws {
        let a = Tensor(zeros: [2, 3])
        #expect(throws: TensorError.shapeMismatch(operation: "matmul (inner dimensions)", expected: [3, 4], found: [4, 4])) {
            try a.matmul(Tensor(zeros: [4, 4]))
        }
        #expect(throws: TensorError.self) { try Tensor(zeros: [2, 2, 3]).matmul(Tensor(zeros: [3, 3, 4])) }
        #expect(throws: TensorError.elementCount(shape: [2, 2], expected: 4, found: 3)) { try Tensor(shape: [2, 2], scalars: [1, 2, 3]) }
        #expect(throws: TensorError.reshape(from: [2, 3], to: [4, -1])) { try a.reshaped([4, -1]) }
        #expect(try a.reshaped([3, -1]).shape == [3, 2])
    }

    @Test func expAndTanhAccuracy() {
        let xs = stride(from: -90.0, through: 88.0, by: 0.37).map(Float.init) + [0, -0, 1e-8, -87.2, -.infinity]
        var e = xs, t = xs
        e.withUnsafeMutableBufferPointer { Kernels.exp($0.baseAddress!, count: $0.count) }
        t.withUnsafeMutableBufferPointer { Kernels.tanh($0.baseAddress!, count: $0.count) }
        var worstRel: Float = 0
        for (i, x32) in xs.enumerated() {
            let x = Double(x32)
            if x < -87.3 { #expect(e[i] == 0) } else {
                worstRel = max(worstRel, Float(abs(Double(e[i]) - Foundation.exp(x)) / Foundation.exp(x)))
            }
            #expect(abs(Double(t[i]) - Foundation.tanh(x)) < 2e-7, "tanh(\(x)) = \(t[i])")
        }
        #expect(worstRel < 3e-7, "exp relative error \(worstRel)")
    }

    @Test func softmaxRowsSumToOneAndMaskedRowsAreZero() throws {
        let x = try Tensor(shape: [3, 20], scalars: randomScalars(60, seed: 5).map { $0 * 10 })
        let s = x.softmax()
        for r in 0..<3 {
            let row = s.scalars[(r * 20)..<((r + 1) * 20)]
            #expect(abs(row.reduce(0, +) - 1) < 1e-6)
            let xr = Array(x.scalars[(r * 20)..<((r + 1) * 20)])
            let m = xr.max()!
            let denom = xr.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) }
            for (j, v) in row.enumerated() { #expect(abs(Double(v) - Foundation.exp(Double(xr[j] - m)) / denom) < 1e-6) }
        }
        let masked = try Tensor(shape: [2, 3], scalars: [-.infinity, -.infinity, -.infinity, 0, -.infinity, 0]).softmax()
        #expect(masked.scalars == [0, 0, 0, 0.5, 0, 0.5])
        let ls = x.logSoftmax()
        #expect(zip(ls.scalars, s.scalars).allSatisfy { abs(Foundation.exp($0) - $1) < 1e-6 })
    }

    @Test func layerNormAndRMSNormMatchDefinitions() throws {
        let n = 37
        let x = try Tensor(shape: [2, n], scalars: randomScalars(2 * n, seed: 6).map { $0 * 3 + 1 })
        let w = Tensor(randomScalars(n, seed: 7)), b = Tensor(randomScalars(n, seed: 8))
        let y = try x.layerNorm(weight: w, bias: b, eps: 1e-5)
        let r = try x.rmsNorm(weight: w, eps: 1e-6)
        for row in 0..<2 {
            let xs = x.scalars[(row * n)..<((row + 1) * n)].map(Double.init)
            let mean = xs.reduce(0, +) / Double(n)
            let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
            let ms = xs.map { $0 * $0 }.reduce(0, +) / Double(n)
            for j in 0..<n {
                let want = (xs[j] - mean) / (variance + 1e-5).squareRoot() * Double(w.scalars[j]) + Double(b.scalars[j])
                #expect(abs(Double(y.scalars[row * n + j]) - want) < 1e-5)
                let wantRMS = xs[j] / (ms + 1e-6).squareRoot() * Double(w.scalars[j])
                #expect(abs(Double(r.scalars[row * n + j]) - wantRMS) < 1e-5)
            }
        }
        #expect(throws: TensorError.self) { try x.layerNorm(weight: Tensor(zeros: [3])) }
    }

    @Test func activations() {
        let xs = (0..<41).map { Float($0) * 0.25 - 5 }
        let g = Tensor(xs).geluTanh(), e = Tensor(xs).geluErf(), s = Tensor(xs).silu()
        for (i, x) in xs.enumerated() {
            let d = Double(x)
            let tanhGelu = 0.5 * d * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
            #expect(abs(Double(g.scalars[i]) - tanhGelu) < 1e-6)
            #expect(abs(Double(e.scalars[i]) - 0.5 * d * (1 + erf(d / 2.0.squareRoot()))) < 1e-6)
            #expect(abs(Double(s.scalars[i]) - d / (1 + Foundation.exp(-d))) < 1e-6)
        }
    }

    @Test func reductionsTopKArgmaxPermute() throws {
        let v = randomScalars(1000, seed: 9)
        #expect(abs(Tensor(v).sum() - Float(v.map(Double.init).reduce(0, +))) < 1e-3)
        let top = topK(v[...], k: 5)
        let sorted = v.enumerated().sorted { $0.element > $1.element }.prefix(5)
        #expect(top.map(\.index) == sorted.map(\.offset))
        #expect(try Tensor(shape: [2, 3], scalars: [1, 5, 2, 9, 0, 9]).argmaxLastDim() == [1, 0])
        let t = try Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let p = try t.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(try p.item([3, 1, 2]) == t.item([1, 2, 3]))
        #expect(try t.transposed().item([1, 3, 2]) == t.item([1, 2, 3]))
        #expect(throws: TensorError.indexOutOfRange(shape: [2, 3, 4], index: [2, 0, 0])) { try t.item([2, 0, 0]) }
        #expect(try (t + Tensor([1, 1, 1, 1])).scalars[5] == 6)
        #expect(throws: TensorError.self) { try t + Tensor([1, 1, 1]) }
    }
}
