// The matrices the forward pass multiplies by, as it multiplies them: float32 arrays laid out for
// `x · W`, or rows read in place from a memory-mapped file (`x · Wᵀ`): a GGUF's quantized blocks or a
// safetensors file's F32/F16/BF16 rows. Activations are float32 either way, so every hook point sees the
// same values (up to summation order).
//
// Legend: rows (activation rows, batch · pos), k (input features), n (output features).

import LoupeFormats
import LoupeTensor

/// One weight matrix of the forward pass.
enum LinearWeight: Sendable {
    /// `[k, n]` row-major: `out = x · W`.
    case dense([Float])
    /// `n` rows of `k` ggml-typed elements in a mapped file: `out = x · Wᵀ`, decoded as it is read.
    case mapped(QuantizedMatrix)

    /// The matrix as `[k, n]` float32 (a copy for mapped weights: for the rare per-head paths).
    func denseKN(k: Int, n: Int) -> [Float] {
        switch self {
        case .dense(let w): return w
        case .mapped(let q):
            let rows = q.dequantized(rows: 0..<q.rows)   // [n, k]
            var out = uninitializedFloats(k * n)
            for o in 0..<n { for i in 0..<k { out[i * n + o] = rows[o * k + i] } }
            return out
        }
    }
}

/// The token embedding: a `[d_vocab, d_model]` float32 table or rows in a mapped file (times `scale` where the
/// architecture scales embeddings, as Gemma does by sqrt(d_model)).
enum EmbeddingTable: Sendable {
    case dense([Float])
    case mapped(QuantizedMatrix, scale: Float?)

    /// Row `id` into `out` (`d` floats).
    func lookup(_ id: Int, d: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .dense(let table):
            table.withUnsafeBufferPointer { t in out.update(from: t.baseAddress! + id * d, count: d) }
        case .mapped(let q, let scale):
            q.row(id, into: out)
            if let s = scale { for j in 0..<d { out[j] *= s } }
        }
    }
}

/// Every matrix of the forward pass, in the form it runs in.
struct ExecutionWeights: Sendable {
    struct Block: Sendable {
        /// Q, K, V: d_model → heads·d_head (dense ones packed from `[heads, d_model, d_head]`).
        var q: LinearWeight, k: LinearWeight, v: LinearWeight
        /// heads·d_head → d_model
        var o: LinearWeight
        /// d_model → d_mlp (W_in, the up projection) and, in gated MLPs, W_gate.
        var up: LinearWeight, gate: LinearWeight?
        /// d_mlp → d_model
        var down: LinearWeight
    }
    var blocks: [Block]
    var embedding: EmbeddingTable
    /// d_model → d_vocab
    var unembed: LinearWeight

    /// Whether the matrices are read in place from a mapped file.
    var readsWeightsInPlace: Bool {
        if case .mapped = unembed { return true }
        return blocks.contains { if case .mapped = $0.q { return true } else { return false } }
    }

    /// The float32 weights as the forward pass reads them (Q, K and V packed for one GEMM each).
    init(dense w: TransformerWeights) {
        blocks = w.blocks.map { b in
            Block(q: .dense(Self.pack(b.wQ)), k: .dense(Self.pack(b.wK)), v: .dense(Self.pack(b.wV)),
                  o: .dense(b.wO.scalars), up: .dense(b.wIn.scalars), gate: b.wGate.map { .dense($0.scalars) },
                  down: .dense(b.wOut.scalars))
        }
        embedding = .dense(w.wE.scalars)
        unembed = .dense(w.wU.scalars)
    }

    init(blocks: [Block], embedding: EmbeddingTable, unembed: LinearWeight) {
        self.blocks = blocks
        self.embedding = embedding
        self.unembed = unembed
    }

    /// `[heads, d_model, d_head]` → `[d_model, heads·d_head]`.
    static func pack(_ w: Tensor) -> [Float] {
        let (h, d, dh) = (w.shape[0], w.shape[1], w.shape[2])
        var out = uninitializedFloats(h * d * dh)
        w.scalars.withUnsafeBufferPointer { src in
            for head in 0..<h {
                for i in 0..<d {
                    for j in 0..<dh { out[i * h * dh + head * dh + j] = src[(head * d + i) * dh + j] }
                }
            }
        }
        return out
    }
}

/// `out[rows, n] = x[rows, k] · weight + bias[n]`, for either form of weight.
func linear(_ x: [Float], rows: Int, k: Int, weight: LinearWeight, n: Int, bias: [Float]?, into out: inout [Float],
            fresh: Bool = false) {
    switch weight {
    case .dense(let w):
        linear(x, rows: rows, k: k, weight: w, n: n, bias: bias, into: &out, fresh: fresh)
    case .mapped(let q):
        prepare(&out, rows * n, fresh: fresh)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                q.multiply(xp.baseAddress!, rows: rows, into: op.baseAddress!)
                addBias(bias, to: op.baseAddress!, rows: rows, n: n)
            }
        }
    }
}

/// `out[r, :] += bias` for each of `rows` rows of width `n`; nothing for no bias or an all-zero one.
private func addBias(_ bias: [Float]?, to out: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
    guard let bias, bias.contains(where: { $0 != 0 }) else { return }
    bias.withUnsafeBufferPointer { bp in
        for r in 0..<rows { Kernels.add(out + r * n, bp.baseAddress!, count: n) }
    }
}

/// `out_i = x · weights[i] + biases[i]` for two or three weights read in place, in one pool pass (q, k, v;
/// gate, up). Returns false, doing nothing, when a weight is a float32 copy or there are too many rows for
/// the direct path; the caller then runs `linear` on each.
func projectInPlace(_ x: [Float], rows: Int, _ weights: [LinearWeight], widths: [Int], biases: [[Float]?],
                    into a: inout [Float], _ b: inout [Float], _ c: inout [Float], fresh: Bool) -> Bool {
    guard rows <= QuantizedMatrix.directRowLimit else { return false }
    var matrices: [QuantizedMatrix] = []
    for w in weights {
        guard case .mapped(let q) = w else { return false }
        matrices.append(q)
    }
    // One buffer for all outputs (rows ≤ directRowLimit: a few thousand floats), then one copy each.
    let offsets = widths.indices.map { i in widths[..<i].reduce(0, +) * rows }
    var all = uninitializedFloats(widths.reduce(0, +) * rows)
    x.withUnsafeBufferPointer { xp in
        all.withUnsafeMutableBufferPointer { ap in
            QuantizedMatrix.multiply(matrices, xp.baseAddress!, rows: rows, into: offsets.map { ap.baseAddress! + $0 })
        }
    }
    func take(_ i: Int, _ out: inout [Float]) {
        let n = widths[i]
        prepare(&out, rows * n, fresh: fresh)
        out.withUnsafeMutableBufferPointer { op in
            all.withUnsafeBufferPointer { op.baseAddress!.update(from: $0.baseAddress! + offsets[i], count: rows * n) }
            addBias(biases[i], to: op.baseAddress!, rows: rows, n: n)
        }
    }
    take(0, &a)
    take(1, &b)
    if weights.count > 2 { take(2, &c) }
    return true
}

/// Two outputs: gate and up.
func projectInPlace(_ x: [Float], rows: Int, _ weights: [LinearWeight], widths: [Int], biases: [[Float]?],
                    into a: inout [Float], _ b: inout [Float], fresh: Bool) -> Bool {
    var unused: [Float] = []
    return projectInPlace(x, rows: rows, weights, widths: widths, biases: biases, into: &a, &b, &unused, fresh: fresh)
}
