// Differentiable operations for sparse codes (sparse autoencoders): a per-row TopK-then-ReLU, and a
// matrix product whose left operand is mostly zeros. With k of d_sae features active per row, the decoder
// and its gradients cost rows·k·n instead of rows·d_sae·n.

import Foundation

extension Variable {
    /// Keeps the `k` largest entries of each row of `[rows, n]` and applies ReLU to them; every other
    /// entry becomes 0 (SAELens's `TopK`: `topk` then `relu` on the kept values). Ties go to the lower
    /// index. The gradient flows only through the kept, positive entries.
    /// - Throws: `TensorError.shapeMismatch` unless the value is rank 2 and `1 ≤ k ≤ n`.
    public func topKReLU(_ k: Int) throws -> Variable {
        guard value.rank == 2, k >= 1, k <= value.shape[1] else {
            throw TensorError.shapeMismatch(operation: "topKReLU (x [rows, n] with 1 ≤ k ≤ n; k = \(k))",
                                            expected: [-1, max(k, 1)], found: value.shape)
        }
        let rows = value.shape[0], n = value.shape[1]
        var out = [Float](repeating: 0, count: rows * n)
        var kept = [Int32](repeating: -1, count: rows * k)   // [rows, k] kept positive entries (−1: none)
        value.scalars.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { o in
                kept.withUnsafeMutableBufferPointer { kp in
                    var idx = [Int](repeating: 0, count: k)
                    for r in 0..<rows {
                        let row = x.baseAddress! + r * n
                        let m = Variable.topKIndices(row, n: n, k: k, into: &idx)
                        var slot = 0
                        for j in idx.prefix(m) where row[j] > 0 {
                            o[r * n + j] = row[j]
                            kp[r * k + slot] = Int32(j)
                            slot += 1
                        }
                    }
                }
            }
        }
        let x = self
        return Variable(Tensor(unchecked: value.shape, out), parents: [x]) { o in
            let g = o.g
            x.accumulate { dx, _ in
                for r in 0..<rows {
                    for s in 0..<k {
                        let j = Int(kept[r * k + s])
                        if j < 0 { break }
                        dx[r * n + j] += g[r * n + j]
                    }
                }
            }
        }
    }

    /// The indices of the `k` largest of `row[0..<n]` (ties to the lower index), in no particular order.
    /// Returns how many were written (`min(k, n)`). A min-heap of size k: O(n log k).
    static func topKIndices(_ row: UnsafePointer<Float>, n: Int, k: Int, into idx: inout [Int]) -> Int {
        let k = min(k, n)
        if idx.count < k { idx = [Int](repeating: 0, count: k) }
        // Heap ordered so the root is the smallest kept (value, then higher index counts as smaller).
        func less(_ a: Int, _ b: Int) -> Bool { row[a] < row[b] || (row[a] == row[b] && a > b) }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < k && less(idx[l], idx[m]) { m = l }
                if r < k && less(idx[r], idx[m]) { m = r }
                if m == i { return }
                idx.swapAt(i, m)
                i = m
            }
        }
        for j in 0..<k { idx[j] = j }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i) }
        var j = k
        while j < n {
            let root = row[idx[0]]
            if row[j] > root { idx[0] = j; siftDown(0) }   // equal values keep the lower (earlier) index
            j += 1
        }
        return k
    }

    /// `x · w` for `x [rows, k]` that is mostly zeros and `w [k, n]`: `[rows, n]`, computed from the
    /// nonzero entries of x only. The gradient to x is computed only where x ≠ 0 — exact when x is the
    /// output of `relu()` or `topKReLU(_:)`, whose derivative is 0 wherever they output 0.
    /// - Throws: `TensorError.shapeMismatch` unless x is `[rows, k]` and w is `[k, n]`.
    public func sparseMatmul(_ w: Variable) throws -> Variable {
        guard value.rank == 2, w.value.rank == 2, value.shape[1] == w.value.shape[0] else {
            throw TensorError.shapeMismatch(operation: "sparseMatmul (x [rows, k] · w [k, n])",
                                            expected: [value.shape.last ?? -1, -1], found: w.value.shape)
        }
        let rows = value.shape[0], k = value.shape[1], n = w.value.shape[1]
        // The nonzero entries of each row: CSR offsets, columns and values.
        var offsets = [Int](repeating: 0, count: rows + 1)
        var columns: [Int] = [], values: [Float] = []
        value.scalars.withUnsafeBufferPointer { x in
            for r in 0..<rows {
                for j in 0..<k where x[r * k + j] != 0 { columns.append(j); values.append(x[r * k + j]) }
                offsets[r + 1] = columns.count
            }
        }
        var out = [Float](repeating: 0, count: rows * n)
        w.value.scalars.withUnsafeBufferPointer { wp in
            out.withUnsafeMutableBufferPointer { o in
                for r in 0..<rows {
                    let orow = o.baseAddress! + r * n
                    for e in offsets[r]..<offsets[r + 1] {
                        let wrow = wp.baseAddress! + columns[e] * n, a = values[e]
                        for c in 0..<n { orow[c] += a * wrow[c] }
                    }
                }
            }
        }
        let x = self
        return Variable(Tensor(unchecked: [rows, n], out), parents: [x, w]) { o in
            let g = o.g
            g.withUnsafeBufferPointer { gp in
                if x.requiresGrad {
                    w.value.scalars.withUnsafeBufferPointer { wp in
                        x.accumulate { dx, _ in   // dx[r, j] += g[r] · w[j] where x[r, j] ≠ 0
                            for r in 0..<rows {
                                for e in offsets[r]..<offsets[r + 1] {
                                    let j = columns[e]
                                    dx[r * k + j] += Kernels.dot(gp.baseAddress! + r * n, wp.baseAddress! + j * n, count: n)
                                }
                            }
                        }
                    }
                }
                if w.requiresGrad {
                    w.accumulate { dw, _ in   // dw[j] += x[r, j] · g[r]
                        for r in 0..<rows {
                            let grow = gp.baseAddress! + r * n
                            for e in offsets[r]..<offsets[r + 1] {
                                let drow = dw + columns[e] * n, a = values[e]
                                for c in 0..<n { drow[c] += a * grow[c] }
                            }
                        }
                    }
                }
            }
        }
    }
}
