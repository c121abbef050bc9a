// Attention: the block (ln1 → Q, K, V → rotary → KV cache → scores → pattern → z → output) and its
// core, scores and pattern computed block by block over query rows.
//
// Legend: batch, pos (new queries), past (cached positions), key_pos = past + pos, head_index,
// kv_heads (grouped-query attention: each serves `groupSize` query heads), d_head, d_model.

import LoupeTensor

extension HookedTransformer {
    /// ln1, attention and its output projection, added into the residual stream, with every hook point
    /// from `ln1.hook_scale` to `hook_attn_out`.
    func attentionBlock(_ l: Int, _ ws: inout Workspace, runner: inout HookRunner,
                        kvCache: UnsafeMutablePointer<KVCache>?, options: ForwardOptions) throws {
        let (d, h, kvh, dh) = (config.dModel, config.nHeads, config.nKeyValueHeads, config.dHead)
        let (batch, pos, rows) = (ws.batch, ws.pos, ws.rows)
        let block = vectors.blocks[l]
        if config.postLayerNorm {
            ws.normed = ws.resid   // BERT: attention reads the stream itself (its norm comes after)
        } else {
            try normalize(ws.resid, into: &ws.normed, scale: &ws.scale, rows: rows, w: block.ln1W, b: block.ln1B,
                          scaleHook: .ln1Scale(l), normHook: .ln1Normalized(l), batch: batch, pos: pos, runner: &runner)
        }
        let mats = exec.blocks[l]
        if !projectInPlace(ws.normed, rows: rows, [mats.q, mats.k, mats.v], widths: [h * dh, kvh * dh, kvh * dh],
                           biases: [block.bQ.scalars, block.bK.scalars, block.bV.scalars], into: &ws.q, &ws.k, &ws.v, fresh: ws.caching) {
            linear(ws.normed, rows: rows, k: d, weight: mats.q, n: h * dh, bias: block.bQ.scalars, into: &ws.q, fresh: ws.caching)
            linear(ws.normed, rows: rows, k: d, weight: mats.k, n: kvh * dh, bias: block.bK.scalars, into: &ws.k, fresh: ws.caching)
            linear(ws.normed, rows: rows, k: d, weight: mats.v, n: kvh * dh, bias: block.bV.scalars, into: &ws.v, fresh: ws.caching)
        }
        try runner.visit(.q(l), &ws.q, shape: [batch, pos, h, dh])
        try runner.visit(.k(l), &ws.k, shape: [batch, pos, kvh, dh])
        try runner.visit(.v(l), &ws.v, shape: [batch, pos, kvh, dh])
        if config.qkNorm {
            var scale: [Float] = []
            try normalize(ws.q, into: &ws.q, scale: &scale, rows: rows, w: block.qNormW, b: nil, scaleHook: .qNormScale(l),
                          normHook: .qNormNormalized(l), batch: batch, pos: pos, heads: h, runner: &runner)
            try normalize(ws.k, into: &ws.k, scale: &scale, rows: rows, w: block.kNormW, b: nil, scaleHook: .kNormScale(l),
                          normHook: .kNormNormalized(l), batch: batch, pos: pos, heads: kvh, runner: &runner)
        }
        if let rotary = ws.rotary?.table(l, config: config) {
            applyRotary(&ws.q, heads: h, table: rotary)
            applyRotary(&ws.k, heads: kvh, table: rotary)
            try runner.visit(.rotQ(l), &ws.q, shape: [batch, pos, h, dh])
            try runner.visit(.rotK(l), &ws.k, shape: [batch, pos, kvh, dh])
        }

        // Keys and values of every position this call attends to: [batch, key_stride, kv_heads, d_head].
        let keyStride: Int
        if let kv = kvCache {
            kv.pointee.store(layer: l, keys: ws.k, values: ws.v, batch: batch, past: ws.past, pos: pos)
            keyStride = kv.pointee.capacity
        } else {
            keyStride = pos
        }

        // Scores, pattern and z = pattern · v.
        prepare(&ws.z, rows * h * dh, fresh: ws.caching)
        let geometry = AttentionGeometry(batch: batch, pos: pos, past: ws.past, keyLen: ws.keyLen, keyStride: keyStride)
        let (keys, values) = kvCache.map { ($0.pointee.keys[l], $0.pointee.values[l]) } ?? (ws.k, ws.v)
        try keys.withUnsafeBufferPointer { kp in
            try values.withUnsafeBufferPointer { vp in
                try attention(layer: l, q: ws.q, keys: kp.baseAddress!, values: vp.baseAddress!, geometry: geometry,
                              keyMask: ws.keyMask, queryBlock: options.queryBlock, z: &ws.z, runner: &runner)
            }
        }
        try runner.visit(.z(l), &ws.z, shape: [batch, pos, h, dh])

        // Output: through each head's result when asked for, else one GEMM.
        if options.useAttnResult || runner.wantsResult(l) {
            try headResults(l, &ws, runner: &runner)
        } else {
            linear(ws.z, rows: rows, k: h * dh, weight: exec.blocks[l].o, n: d, bias: block.bO.scalars, into: &ws.out, fresh: ws.caching)
        }
        if config.postNorms {
            let raw = ws.out
            try normalize(raw, into: &ws.out, scale: &ws.scale, rows: rows, w: block.ln1PostW, b: nil, scaleHook: .ln1PostScale(l),
                          normHook: .ln1PostNormalized(l), batch: batch, pos: pos, rmsOnly: true, runner: &runner)
        }
        try runner.visit(.attnOut(l), &ws.out, shape: [batch, pos, d])
        addInPlace(&ws.resid, ws.out)
    }

    /// Each head's output `z_h · W_O[h]` (`hook_result`, `[batch, pos, head_index, d_model]`), summed with
    /// `b_O` into the attention output.
    private func headResults(_ l: Int, _ ws: inout Workspace, runner: inout HookRunner) throws {
        let (d, h, dh, rows) = (config.dModel, config.nHeads, config.dHead, ws.rows)
        let block = vectors.blocks[l]
        var result = uninitializedFloats(rows * h * d)
        let wO = exec.blocks[l].o.denseKN(k: h * dh, n: d)   // [head_index · d_head, d_model]
        ws.z.withUnsafeBufferPointer { zp in
            wO.withUnsafeBufferPointer { wo in
                result.withUnsafeMutableBufferPointer { rp in
                    for head in 0..<h {
                        BLAS.sgemm(m: rows, n: d, k: dh, a: zp.baseAddress! + head * dh, lda: h * dh,
                                   b: wo.baseAddress! + head * dh * d, ldb: d,
                                   c: rp.baseAddress! + head * d, ldc: h * d)
                    }
                }
            }
        }
        try runner.visit(.result(l), &result, shape: [ws.batch, ws.pos, h, d])
        prepare(&ws.out, rows * d, fresh: false)
        ws.out.withUnsafeMutableBufferPointer { op in
            result.withUnsafeBufferPointer { rp in
                for r in 0..<rows {
                    let o = op.baseAddress! + r * d
                    o.update(from: block.bO.scalars, count: d)
                    for head in 0..<h { Kernels.add(o, rp.baseAddress! + (r * h + head) * d, count: d) }
                }
            }
        }
    }

    /// Sizes of one attention call: `pos` new queries after `past` cached positions; keys and values are
    /// laid out `[batch, keyStride, kv_heads, d_head]` with the first `keyLen` positions filled.
    struct AttentionGeometry {
        let batch: Int, pos: Int, past: Int, keyLen: Int, keyStride: Int
    }


    /// Attention scores, pattern and z for one layer, with their hook points. When neither scores nor
    /// pattern is hooked or cached, each head is done in a scratch buffer of `[pos, key_pos]`, block by
    /// block, and the `[batch, head, pos, key_pos]` tensors are never built.
    func attention(layer l: Int, q: [Float], keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                           geometry g: AttentionGeometry, keyMask: [Float]?, queryBlock: Int, z: inout [Float],
                           runner: inout HookRunner) throws {
        let (h, kvh, dh) = (config.nHeads, config.nKeyValueHeads, config.dHead)
        let (batch, pos, past, keyLen) = (g.batch, g.pos, g.past, g.keyLen)
        let alpha = config.attnScale ?? 1 / Float(dh).squareRoot()
        // Sliding-window layers: a query at absolute position i sees keys j with i − j < window.
        let window = config.window(l)
        let scoresHooked = runner.hooks[.attnScores(l)] != nil
        let patternHooked = runner.hooks[.pattern(l)] != nil
        let materialize = runner.wants(.attnScores(l)) || runner.wants(.pattern(l))

        /// Scores of queries [r0, r1) of (b, head) into `s` (row stride keyLen), masked: −∞ on padding and
        /// above the diagonal. With `fused`, the block's columns above the diagonal get 0 instead (they are
        /// then already the pattern's zeros, as softmax runs over each row's causal prefix only) and columns
        /// past the block are left alone; otherwise every column to keyLen is −∞.
        let causal = !config.bidirectional
        /// How many keys query row t sees (every key when attention is bidirectional).
        func seen(_ t: Int) -> Int { causal ? past + t + 1 : keyLen }
        func scoreBlock(_ qp: UnsafePointer<Float>, _ s: UnsafeMutablePointer<Float>, b: Int, head: Int,
                        r0: Int, r1: Int, fused: Bool) {
            let kvHead = head / config.groupSize
            let kmax = causal ? past + r1 : keyLen
            BLAS.sgemm(transB: true, m: r1 - r0, n: kmax, k: dh, alpha: alpha,
                       a: qp + (b * pos + r0) * h * dh + head * dh, lda: h * dh,
                       b: keys + b * g.keyStride * kvh * dh + kvHead * dh, ldb: kvh * dh,
                       c: s + r0 * keyLen, ldc: keyLen)
            for t in r0..<r1 {
                let row = s + t * keyLen
                let limit = seen(t)
                let end = fused ? kmax : keyLen
                if limit < end { (row + limit).update(repeating: fused ? 0 : -.infinity, count: end - limit) }
                if let window, limit > window { row.update(repeating: -.infinity, count: limit - window) }
                if let km = keyMask {
                    for j in 0..<limit where km[b * keyLen + j] == 0 { row[j] = -.infinity }
                }
            }
        }

        /// z rows [r0, r1) of (b, head) = pattern rows · v, reading `width` key columns.
        func valueBlock(_ p: UnsafePointer<Float>, _ zp: UnsafeMutablePointer<Float>, b: Int, head: Int,
                        r0: Int, r1: Int, width: Int) {
            BLAS.sgemm(m: r1 - r0, n: dh, k: width,
                       a: p + r0 * keyLen, lda: keyLen,
                       b: values + b * g.keyStride * kvh * dh + (head / config.groupSize) * dh, ldb: kvh * dh,
                       c: zp + (b * pos + r0) * h * dh + head * dh, ldc: h * dh)
        }

        // Query rows go in blocks: a block's queries see keys up to `past + end of block`, so the causal
        // upper triangle is mostly skipped rather than computed and masked.
        let step = max(queryBlock, 1)
        let blocks = stride(from: 0, to: pos, by: step).map { ($0, min($0 + step, pos)) }
        if !materialize {
            var scratch = uninitializedFloats(pos * keyLen)
            q.withUnsafeBufferPointer { qp in
                z.withUnsafeMutableBufferPointer { zp in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        let s = sp.baseAddress!
                        for b in 0..<batch {
                            for head in 0..<h {
                                for (r0, r1) in blocks {
                                    scoreBlock(qp.baseAddress!, s, b: b, head: head, r0: r0, r1: r1, fused: true)
                                    for t in r0..<r1 { Kernels.softmaxRows(s + t * keyLen, rows: 1, n: seen(t)) }
                                    valueBlock(s, zp.baseAddress!, b: b, head: head, r0: r0, r1: r1, width: causal ? past + r1 : keyLen)
                                }
                            }
                        }
                    }
                }
            }
            return
        }

        var scores = uninitializedFloats(batch * h * pos * keyLen)   // [batch, head_index, query_pos, key_pos]
        q.withUnsafeBufferPointer { qp in
            scores.withUnsafeMutableBufferPointer { sp in
                for b in 0..<batch {
                    for head in 0..<h {
                        let s = sp.baseAddress! + (b * h + head) * pos * keyLen
                        for (r0, r1) in blocks { scoreBlock(qp.baseAddress!, s, b: b, head: head, r0: r0, r1: r1, fused: false) }
                    }
                }
            }
        }
        try runner.visit(.attnScores(l), &scores, shape: [batch, h, pos, keyLen])
        // Softmax; unless a hook changed the scores, only the causal prefix of each row can be non-zero.
        scores.withUnsafeMutableBufferPointer { sp in
            for bh in 0..<(batch * h) {
                for t in 0..<pos {
                    let row = sp.baseAddress! + (bh * pos + t) * keyLen
                    let limit = scoresHooked ? keyLen : seen(t)
                    Kernels.softmaxRows(row, rows: 1, n: limit)
                    if limit < keyLen { (row + limit).update(repeating: 0, count: keyLen - limit) }
                }
            }
        }
        try runner.visit(.pattern(l), &scores, shape: [batch, h, pos, keyLen])
        let full = scoresHooked || patternHooked
        scores.withUnsafeBufferPointer { sp in
            z.withUnsafeMutableBufferPointer { zp in
                for b in 0..<batch {
                    for head in 0..<h {
                        let p = sp.baseAddress! + (b * h + head) * pos * keyLen
                        for (r0, r1) in blocks {
                            valueBlock(p, zp.baseAddress!, b: b, head: head, r0: r0, r1: r1, width: full || !causal ? keyLen : past + r1)
                        }
                    }
                }
            }
        }
    }
}

extension KVCache {
    /// Copies a layer's new keys and values `[batch, pos, kv_heads, d_head]` after the `past` cached ones.
    mutating func store(layer l: Int, keys k: [Float], values v: [Float], batch: Int, past: Int, pos: Int) {
        let (cap, w) = (capacity, rowWidth)
        // Rows of one batch entry are contiguous on both sides: one copy per entry.
        keys[l].withUnsafeMutableBufferPointer { kd in
            values[l].withUnsafeMutableBufferPointer { vd in
                k.withUnsafeBufferPointer { ks in
                    v.withUnsafeBufferPointer { vs in
                        for b in 0..<batch {
                            let dst = (b * cap + past) * w, src = b * pos * w
                            (kd.baseAddress! + dst).update(from: ks.baseAddress! + src, count: pos * w)
                            (vd.baseAddress! + dst).update(from: vs.baseAddress! + src, count: pos * w)
                        }
                    }
                }
            }
        }
    }
}
