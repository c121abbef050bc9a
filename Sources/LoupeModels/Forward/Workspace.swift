// The state of one forward pass: its sizes, masks, and the activation buffers every block reuses
// (llm.c's `ActivationTensors`, one struct with each buffer's shape).
//
// Legend: batch, pos (new positions this call), past (positions already in the KV cache),
// key_pos = past + pos, rows = batch · pos, head_index, kv_heads, d_head, d_model, d_mlp.

import LoupeTensor

/// Buffers and sizes of one forward pass. A cached activation shares its buffer until the next write
/// copies it; while caching, buffers are replaced rather than copied before reuse (`caching`).
struct Workspace {
    let batch: Int, pos: Int, past: Int
    /// past + pos: the key positions attention reads.
    let keyLen: Int
    /// batch · pos
    let rows: Int
    /// Blocks `start..<stop` run.
    let start: Int, stop: Int
    /// `[batch, key_pos]`: 1 for a real token, 0 for padding; nil when every key is real and nothing is cached.
    let keyMask: [Float]?
    /// `[batch, pos]` position ids (only real tokens count, as in TransformerLens's left padding).
    let positions: [Int]
    /// Whether activations are being cached (then buffers are replaced, not overwritten).
    let caching: Bool

    var resid: [Float]          // [batch, pos, d_model]
    var normed: [Float]         // [batch, pos, d_model]
    var scale: [Float]          // [batch, pos, 1]
    var q: [Float]              // [batch, pos, head_index, d_head]
    var k: [Float]              // [batch, pos, kv_heads, d_head]
    var v: [Float]              // [batch, pos, kv_heads, d_head]
    var z: [Float]              // [batch, pos, head_index, d_head]
    var out: [Float]            // [batch, pos, d_model]: attention or MLP output
    var mlpPre: [Float]         // [batch, pos, d_mlp]
    /// cos and sin of the rotary angles of each row (rotary models).
    var rotary: RotaryTables?

    /// Checks the input against the model and the options, and sizes the buffers.
    init(config c: ModelConfig, input: ModelInput, options: ForwardOptions, kvCache: KVCache?, caching: Bool) throws {
        start = try Self.resolveLayer(options.startAtLayer, name: "startAtLayer", default: 0, nLayers: c.nLayers)
        stop = try Self.resolveLayer(options.stopAtLayer, name: "stopAtLayer", default: c.nLayers, nLayers: c.nLayers)
        if start > stop {
            throw ModelError.layerOutOfRange(name: "startAtLayer (after stopAtLayer \(stop))", layer: start, nLayers: c.nLayers)
        }
        let d = c.dModel
        switch input {
        case .tokens(let ids):
            guard start == 0 else {
                throw ModelError.unsupported("startAtLayer \(start) needs a residual-stream input, not tokens")
            }
            guard let first = ids.first, !first.isEmpty else { throw ModelError.emptyInput }
            (batch, pos) = (ids.count, first.count)
            for (r, row) in ids.enumerated() {
                guard row.count == pos else { throw ModelError.raggedBatch(expected: pos, found: row.count, row: r) }
                for (p, t) in row.enumerated() where t < 0 || t >= c.dVocab {
                    throw ModelError.tokenOutOfRange(token: t, position: p, dVocab: c.dVocab)
                }
            }
            resid = []
        case .residual(let t):
            guard t.rank == 3, t.shape[2] == d, t.shape[0] > 0, t.shape[1] > 0 else {
                throw ModelError.inputShape(expected: [-1, -1, d], found: t.shape)
            }
            (batch, pos) = (t.shape[0], t.shape[1])
            resid = t.scalars
        case .text:
            throw ModelError.unsupported("text reached the forward pass untokenized")
        }
        past = kvCache?.length ?? 0
        if let kv = kvCache {
            guard kv.batch == batch else { throw ModelError.inputShape(expected: [kv.batch, pos], found: [batch, pos]) }
            guard kv.keys.count == c.nLayers, kv.rowWidth == c.nKeyValueHeads * c.dHead else {
                throw ModelError.unsupported("this KV cache was made for another model (\(kv.keys.count) layers, key width \(kv.rowWidth)); this one has \(c.nLayers) layers, key width \(c.nKeyValueHeads * c.dHead)")
            }
        }
        keyLen = past + pos
        guard keyLen <= c.nCtx else { throw ModelError.sequenceTooLong(length: keyLen, nCtx: c.nCtx) }
        rows = batch * pos
        (keyMask, positions) = try Self.maskAndPositions(batch: batch, pos: pos, past: past, mask: options.attentionMask, kvCache: kvCache)
        self.caching = caching

        normed = uninitializedFloats(rows * d)
        scale = [Float](repeating: 0, count: rows)
        q = uninitializedFloats(rows * c.nHeads * c.dHead)
        k = uninitializedFloats(rows * c.nKeyValueHeads * c.dHead)
        v = uninitializedFloats(rows * c.nKeyValueHeads * c.dHead)
        z = uninitializedFloats(rows * c.nHeads * c.dHead)
        out = uninitializedFloats(rows * d)
        mlpPre = uninitializedFloats(rows * c.dMLP)
        rotary = RotaryTables(config: c, positions: positions)
    }

    /// The key mask over all key positions `[batch, key_pos]` and the position ids `[batch, pos]`.
    private static func maskAndPositions(batch: Int, pos: Int, past: Int, mask: [[Int]]?,
                                         kvCache: KVCache?) throws -> ([Float]?, [Int]) {
        if let m = mask {
            guard m.count == batch, m.allSatisfy({ $0.count == pos }) else {
                throw ModelError.attentionMask("expected \(batch) rows of \(pos) entries, found \(m.count) rows of \(m.map(\.count))")
            }
            guard m.allSatisfy({ $0.allSatisfy { $0 == 0 || $0 == 1 } }) else {
                throw ModelError.attentionMask("entries must be 0 (padding) or 1 (token)")
            }
        }
        var positions = [Int](repeating: 0, count: batch * pos)
        guard kvCache != nil || mask != nil else {
            for b in 0..<batch { for t in 0..<pos { positions[b * pos + t] = t } }
            return (nil, positions)
        }
        let keyLen = past + pos
        var km = [Float](repeating: 1, count: batch * keyLen)
        for b in 0..<batch {
            var seen = kvCache?.realCount[b] ?? 0
            if let kv = kvCache { for j in 0..<past { km[b * keyLen + j] = kv.mask[b * kv.capacity + j] } }
            for t in 0..<pos {
                let real = mask.map { $0[b][t] == 1 } ?? true
                km[b * keyLen + past + t] = real ? 1 : 0
                if real { seen += 1 }
                positions[b * pos + t] = max(seen - 1, 0)
            }
        }
        return (km, positions)
    }

    /// A layer option (negative counts from the end) as a block index in `0...nLayers`.
    private static func resolveLayer(_ value: Int?, name: String, default def: Int, nLayers: Int) throws -> Int {
        guard let v = value else { return def }
        let l = v < 0 ? nLayers + v : v
        guard l >= 0 && l <= nLayers else { throw ModelError.layerOutOfRange(name: name, layer: v, nLayers: nLayers) }
        return l
    }

    /// Whether key position `j` of batch row `b` is padding.
    @inline(__always)
    func isPadding(batch b: Int, key j: Int) -> Bool { keyMask.map { $0[b * keyLen + j] == 0 } ?? false }
}

// MARK: - Buffer helpers

/// Makes `buffer` ready to be overwritten with `count` floats: a new one when the cache may still hold
/// the old one (`fresh`), so that writing does not first copy what it overwrites.
@inline(__always)
func prepare(_ buffer: inout [Float], _ count: Int, fresh: Bool) {
    if fresh || buffer.count != count { buffer = uninitializedFloats(count) }
}

/// `out[rows, n] = x[rows, k] · weight[k, n] + bias[n]`.
func linear(_ x: [Float], rows: Int, k: Int, weight: [Float], n: Int, bias: [Float]?, into out: inout [Float],
            fresh: Bool = false) {
    prepare(&out, rows * n, fresh: fresh)
    x.withUnsafeBufferPointer { xp in
        weight.withUnsafeBufferPointer { wp in
            out.withUnsafeMutableBufferPointer { op in
                if let bias {
                    bias.withUnsafeBufferPointer { bp in
                        for r in 0..<rows { (op.baseAddress! + r * n).update(from: bp.baseAddress!, count: n) }
                    }
                }
                BLAS.sgemm(m: rows, n: n, k: k, a: xp.baseAddress!, lda: k, b: wp.baseAddress!, ldb: n,
                           beta: bias == nil ? 0 : 1, c: op.baseAddress!, ldc: n)
            }
        }
    }
}

/// `a += b`, elementwise.
func addInPlace(_ a: inout [Float], _ b: [Float]) {
    a.withUnsafeMutableBufferPointer { ap in
        b.withUnsafeBufferPointer { Kernels.add(ap.baseAddress!, $0.baseAddress!, count: ap.count) }
    }
}
