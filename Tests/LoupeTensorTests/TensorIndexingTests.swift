import LoupeTensor
import Testing

/// A `[2, 3, 4, 5]` tensor whose element at (a, b, c, d) is 1000a + 100b + 10c + d, so that every
/// selected value says where it came from.
private func coded() -> Tensor {
    var s: [Float] = []
    for a in 0..<2 { for b in 0..<3 { for c in 0..<4 { for d in 0..<5 { s.append(Float(1000 * a + 100 * b + 10 * c + d)) } } } }
    return Tensor(unchecked: [2, 3, 4, 5], s)
}

/// The code of element (a, b, c, d).
private func code(_ a: Int, _ b: Int, _ c: Int, _ d: Int) -> Float { Float(1000 * a + 100 * b + 10 * c + d) }

@Suite struct TensorIndexingTests {
    @Test func singleIndexDropsTheAxis() throws {
        let t = coded()
        let z = t[.all, .all, 3]                       // numpy t[:, :, 3]
        #expect(z.shape == [2, 3, 5])
        for a in 0..<2 { for b in 0..<3 { for d in 0..<5 { #expect(z.scalars[(a * 3 + b) * 5 + d] == code(a, b, 3, d)) } } }
        let last = t[..., -1]                           // numpy t[..., -1]
        #expect(last.shape == [2, 3, 4])
        #expect(last.scalars[((1 * 3 + 2) * 4) + 3] == code(1, 2, 3, 4))
        let element: Float = t[1, 2, 3, 4]
        #expect(element == code(1, 2, 3, 4))
        #expect(t[0].shape == [3, 4, 5])
    }

    @Test func rangesAndStrides() throws {
        let t = coded()
        let r = t[.all, 1..<3, 2..., ..<2]              // numpy t[:, 1:3, 2:, :2]
        #expect(r.shape == [2, 2, 2, 2])
        var expected: [Float] = []
        for a in 0..<2 { for b in 1..<3 { for c in 2..<4 { for d in 0..<2 { expected.append(code(a, b, c, d)) } } } }
        #expect(r.scalars == expected)
        let s = t[1, .all, .all, stride(from: 0, to: 5, by: 2)]   // numpy t[1, :, :, 0:5:2]
        #expect(s.shape == [3, 4, 3])
        #expect(s.scalars[0..<3] == [code(1, 0, 0, 0), code(1, 0, 0, 2), code(1, 0, 0, 4)])
        let closed = t[0, 0, 1...2, ...(-1)]            // numpy t[0, 0, 1:3, :]
        #expect(closed.shape == [2, 5])
        #expect(closed.scalars.first == code(0, 0, 1, 0) && closed.scalars.last == code(0, 0, 2, 4))
        let negative = t[-1, -2..<(-1)]                 // numpy t[-1, -2:-1]
        #expect(negative.shape == [1, 4, 5])
        #expect(negative.scalars.first == code(1, 1, 0, 0))
        #expect(t[.all, 2..<2].shape == [2, 0, 4, 5])
    }

    @Test func assignmentWritesOnlyTheSelection() throws {
        var t = coded()
        t[.all, .all, 3] = 0                            // ablate "head" 3
        for a in 0..<2 { for b in 0..<3 { for c in 0..<4 { for d in 0..<5 {
            let v = try t.item([a, b, c, d])
            #expect(v == (c == 3 ? 0 : code(a, b, c, d)))
        } } } }
        // A value broadcasts into the selection: one row per position.
        var u = coded()
        let row = Tensor((0..<5).map { Float(-$0) })
        u[0, .all, 1..<3] = row
        #expect(u[0, 2, 1].scalars == row.scalars && u[0, 2, 2].scalars == row.scalars)
        #expect(u[0, 2, 3].scalars == coded()[0, 2, 3].scalars)
        #expect(u[1, 2, 1].scalars == coded()[1, 2, 1].scalars)
        // Compound assignment through a subscript reads, combines and writes back.
        var v = coded()
        v[..., 4] *= 2
        #expect(try v.item([1, 1, 1, 4]) == 2 * code(1, 1, 1, 4))
        #expect(try v.item([1, 1, 1, 3]) == code(1, 1, 1, 3))
    }

    @Test(arguments: [
        ([TensorIndex.single(2)], "index 2 is out of range for axis 0 (size 2) of shape [2, 3, 4, 5]"),
        ([.whole, .single(-4)], "index -4 is out of range for axis 1 (size 3) of shape [2, 3, 4, 5]"),
        ([.single(0), .single(0), .single(0), .single(0), .single(0)], "a tensor subscript with 5 entries does not fit a tensor of rank 4 (shape [2, 3, 4, 5])"),
        ([.rest, .rest], "a tensor subscript may hold at most one ellipsis (...), found 2"),
        ([.span(lower: 0, upper: 3, step: 0)], "a slice step must be positive, found 0 (axis 0)"),
        ([.span(lower: 0, upper: 3, step: 1)], "index 3 is out of range for axis 0 (size 2) of shape [2, 3, 4, 5]"),
    ])
    func badIndicesAreTypedErrors(indices: [TensorIndex], message: String) {
        var t = coded()
        #expect(throws: TensorError.invalidArgument(message)) { try t.selecting(indices) }
        #expect(throws: TensorError.invalidArgument(message)) { try t.fill(1, at: indices) }
    }

    @Test func assigningAValueThatDoesNotBroadcastIsAnError() {
        var t = coded()
        #expect(throws: TensorError.shapeMismatch(operation: "broadcast", expected: [2, 3, 5], found: [4])) {
            try t.assign(Tensor([1, 2, 3, 4]), at: [TensorIndex.whole, .whole, .single(0)])
        }
    }
}

@Suite struct BroadcastingTests {
    @Test func shapesFollowNumpysRules() {
        #expect(Tensor.broadcastShape([2, 3, 4], [4]) == [2, 3, 4])
        #expect(Tensor.broadcastShape([2, 1, 4], [3, 1]) == [2, 3, 4])
        #expect(Tensor.broadcastShape([5, 1], [1, 6]) == [5, 6])
        #expect(Tensor.broadcastShape([2, 3], [3, 2]) == nil)
        #expect(Tensor.broadcastShape([], [7]) == [7])
    }

    @Test func arithmeticStretchesSizeOneDimensions() throws {
        let a = Tensor(unchecked: [2, 1, 3], [1, 2, 3, 4, 5, 6])
        let b = Tensor(unchecked: [4, 1], [10, 20, 30, 40])
        let sum = try a + b                             // [2, 4, 3]
        #expect(sum.shape == [2, 4, 3])
        for i in 0..<2 { for j in 0..<4 { for k in 0..<3 {
            #expect(try sum.item([i, j, k]) == a.scalars[i * 3 + k] + b.scalars[j])
        } } }
        let ratio = try b / a                           // [2, 4, 3] the other way round
        #expect(try ratio.item([1, 2, 0]) == 30 / 4)
        // Subtracting a per-row mean kept as [rows, 1].
        let x = Tensor(unchecked: [2, 3], [1, 2, 3, 10, 20, 30])
        let centred = try x - Tensor(unchecked: [2, 1], [2, 20])
        #expect(centred.scalars == [-1, 0, 1, -10, 0, 10])
        #expect((2 * x - 1).scalars == [1, 3, 5, 19, 39, 59])
        #expect((-x / 2).scalars == [-0.5, -1, -1.5, -5, -10, -15])
        #expect(throws: TensorError.self) { try x + Tensor([1, 2]) }
    }

    @Test func broadcastToRepeatsAlongStretchedAxes() throws {
        let col = Tensor(unchecked: [3, 1], [1, 2, 3])
        let wide = try col.broadcast(to: [2, 3, 4])
        #expect(wide.shape == [2, 3, 4])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { #expect(try wide.item([i, j, k]) == Float(j + 1)) } } }
        #expect(throws: TensorError.self) { try col.broadcast(to: [2, 4]) }
    }
}
