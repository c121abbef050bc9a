// HookedTransformer: a decoder-only transformer whose every activation is a named hook point, as in
// TransformerLens (https://github.com/TransformerLensOrg/TransformerLens, `HookedTransformer.py`).
//
// Legend (TransformerLens spelling): batch, pos (new positions this call), key_pos (cached + new),
// head_index, d_head, d_model, d_mlp, d_vocab. Activations are row-major Float32 buffers; `rows`
// means batch·pos. All weights right-multiply: `x · W`.

import LoupeTensor

/// What a forward pass starts from.
public enum ModelInput {
    /// Token ids `[batch][pos]`, all rows the same length.
    case tokens([[Int]])
    /// A residual stream `[batch, pos, d_model]` entering block `ForwardOptions.startAtLayer`.
    case residual(Tensor)
}

/// Options of one forward pass.
public struct ForwardOptions {
    /// Run blocks from this one on; the input must then be a residual stream.
    public var startAtLayer: Int?
    /// Stop before this block and return the residual stream `[batch, pos, d_model]` instead of logits.
    /// Negative values count from the end, as in Python.
    public var stopAtLayer: Int?
    /// `[batch][pos]` of 1 (real token) and 0 (padding). Padded keys get no attention; position ids
    /// count only real tokens, as TransformerLens does for left padding.
    public var attentionMask: [[Int]]?
    /// Compute `hook_result` (each head's output) even when no hook or cache names it.
    public var useAttnResult: Bool = false
    /// Unembed only the last position: logits `[batch, 1, d_vocab]` (and `ln_final.*`, `unembed.*` hooks
    /// of that shape). For metrics that read the next-token prediction only.
    public var lastPositionOnly: Bool = false
    /// Query rows per attention block (see `HookedTransformer.attention`); internal, for tests that split
    /// short sequences into several blocks.
    var queryBlock = 128

    public init(startAtLayer: Int? = nil, stopAtLayer: Int? = nil, attentionMask: [[Int]]? = nil,
                useAttnResult: Bool = false) {
        self.startAtLayer = startAtLayer
        self.stopAtLayer = stopAtLayer
        self.attentionMask = attentionMask
        self.useAttnResult = useAttnResult
    }
}

/// A transformer with TransformerLens hook points. Immutable; weight processing returns a new model.
public struct HookedTransformer: Sendable {
    public let config: ModelConfig
    public let weights: TransformerWeights
    /// Q, K, V weights packed for one GEMM each: `[d_model, heads·d_head]`.
    let packed: [PackedAttention]

    struct PackedAttention: Sendable {
        var wQ: [Float], wK: [Float], wV: [Float]
    }

    /// Builds a model from canonical weights, checking every shape against the config.
    public init(config: ModelConfig, weights: TransformerWeights) throws {
        try config.validate()
        try weights.validate(against: config)
        MemoryTuning.configure()
        self.config = config
        self.weights = weights
        packed = weights.blocks.map { b in
            PackedAttention(wQ: Self.pack(b.wQ), wK: Self.pack(b.wK), wV: Self.pack(b.wV))
        }
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

    /// Every hook point this model runs, in forward order (`hook_result` when `includeResult`).
    public func hookNames(includeResult: Bool = false) -> [HookName] {
        var out: [HookName] = [.embed]
        if config.positional == .standard { out.append(.posEmbed) }
        let rotary = config.positional != .standard
        for l in 0..<config.nLayers {
            for make in HookName.blockKinds {
                let n = make(l)
                switch n {
                case .rotQ, .rotK: if !rotary { continue }
                case .result: if !includeResult { continue }
                case .mlpPreLinear: if !config.gatedMLP || config.attnOnly { continue }
                case .residMid, .ln2Scale, .ln2Normalized, .mlpPre, .mlpPost, .mlpOut: if config.attnOnly { continue }
                default: break
                }
                out.append(n)
            }
        }
        return out + [.lnFinalScale, .lnFinalNormalized, .unembedIn, .unembedOut]
    }

    /// Checks that a hook name exists in this model.
    public func checkHook(_ name: HookName) throws {
        if let l = name.layer, l >= config.nLayers {
            throw HookError.notInModel(name: name.description, reason: "the model has \(config.nLayers) layers (0..<\(config.nLayers))")
        }
        if !hookNames(includeResult: true).contains(name) {
            throw HookError.notInModel(name: name.description, reason: "\(config.architecture) has no such hook point")
        }
    }

    // MARK: - Public entry points

    /// Logits `[batch, pos, d_vocab]` for token ids (or the residual stream when `stopAtLayer` is set).
    public func run(_ tokens: [[Int]], options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        var runner = HookRunner(hooks: [:], selection: nil)
        return try forward(.tokens(tokens), options: options, runner: &runner, kvCache: nil)
    }

    /// Logits for one sequence: `[1, pos, d_vocab]`.
    public func run(_ tokens: [Int]) throws -> Tensor { try run([tokens]) }

    /// Runs with hooks that may read or replace activations.
    public func run(_ input: ModelInput, hooks: Hooks, options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        for name in hooks.functions.keys { try checkHook(name) }
        var runner = HookRunner(hooks: hooks.functions, selection: nil)
        return try forward(input, options: options, runner: &runner, kvCache: nil)
    }

    /// Runs and returns the output with the selected activations.
    public func runWithCache(_ input: ModelInput, select: CacheSelection = .all, hooks: Hooks = Hooks(),
                             options: ForwardOptions = ForwardOptions()) throws -> (output: Tensor, cache: ActivationCache) {
        for name in hooks.functions.keys { try checkHook(name) }
        if case .names(let s) = select { for n in s { try checkHook(n) } }
        var runner = HookRunner(hooks: hooks.functions, selection: select)
        let out = try forward(input, options: options, runner: &runner, kvCache: nil)
        return (out, runner.cache)
    }

    /// Runs new tokens after those already in `kvCache`, appending their keys and values.
    /// Returns logits `[batch, pos, d_vocab]` for the new tokens.
    public func run(_ tokens: [[Int]], kvCache: inout KVCache, hooks: Hooks = Hooks(),
                    options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        try run(.tokens(tokens), kvCache: &kvCache, hooks: hooks, options: options)
    }

    /// Runs new positions (tokens, or a residual stream entering `options.startAtLayer`) after those in
    /// `kvCache`. With `startAtLayer`, the cache must hold keys and values for the blocks that run
    /// (e.g. one made by `KVCache(config:batch:keys:values:)` from another run's activations); blocks
    /// before it are neither run nor updated.
    public func run(_ input: ModelInput, kvCache: inout KVCache, hooks: Hooks = Hooks(),
                    options: ForwardOptions = ForwardOptions()) throws -> Tensor {
        for name in hooks.functions.keys { try checkHook(name) }
        guard options.stopAtLayer == nil else {
            throw ModelError.unsupported("stopAtLayer cannot be combined with a KV cache")
        }
        var runner = HookRunner(hooks: hooks.functions, selection: nil)
        return try withUnsafeMutablePointer(to: &kvCache) { p in
            try forward(input, options: options, runner: &runner, kvCache: p)
        }
    }

    // MARK: - Validation

    private func resolveLayer(_ value: Int?, name: String, default def: Int) throws -> Int {
        guard let v = value else { return def }
        let l = v < 0 ? config.nLayers + v : v
        guard l >= 0 && l <= config.nLayers else {
            throw ModelError.layerOutOfRange(name: name, layer: v, nLayers: config.nLayers)
        }
        return l
    }

    // MARK: - The forward pass

    func forward(_ input: ModelInput, options: ForwardOptions, runner: inout HookRunner,
                 kvCache: UnsafeMutablePointer<KVCache>?) throws -> Tensor {
        let c = config
        let (d, h, kvh, dh) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead)
        let start = try resolveLayer(options.startAtLayer, name: "startAtLayer", default: 0)
        let stop = try resolveLayer(options.stopAtLayer, name: "stopAtLayer", default: c.nLayers)
        if start > stop {
            throw ModelError.layerOutOfRange(name: "startAtLayer (after stopAtLayer \(stop))", layer: start, nLayers: c.nLayers)
        }

        // Shape of the input.
        let batch: Int, pos: Int
        var resid: [Float]   // [batch, pos, d_model]
        switch input {
        case .tokens(let rows):
            guard start == 0 else {
                throw ModelError.unsupported("startAtLayer \(start) needs a residual-stream input, not tokens")
            }
            guard let first = rows.first, !first.isEmpty else { throw ModelError.emptyInput }
            batch = rows.count
            pos = first.count
            for (r, row) in rows.enumerated() {
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
            batch = t.shape[0]
            pos = t.shape[1]
            resid = t.scalars
        }
        let past = kvCache?.pointee.length ?? 0
        if let kv = kvCache?.pointee {
            guard kv.batch == batch else { throw ModelError.inputShape(expected: [kv.batch, pos], found: [batch, pos]) }
            guard kv.keys.count == c.nLayers, kv.rowWidth == kvh * dh else {
                throw ModelError.unsupported("this KV cache was made for another model (\(kv.keys.count) layers, key width \(kv.rowWidth)); this one has \(c.nLayers) layers, key width \(kvh * dh)")
            }
        }
        let keyLen = past + pos
        guard keyLen <= c.nCtx else { throw ModelError.sequenceTooLong(length: keyLen, nCtx: c.nCtx) }
        let rows = batch * pos

        // Attention mask over all key positions [batch, key_pos] and position ids [batch, pos].
        var keyMask: [Float]? = nil
        var positions = [Int](repeating: 0, count: rows)
        if let m = options.attentionMask {
            guard m.count == batch, m.allSatisfy({ $0.count == pos }) else {
                throw ModelError.attentionMask("expected \(batch) rows of \(pos) entries, found \(m.count) rows of \(m.map(\.count))")
            }
            guard m.allSatisfy({ $0.allSatisfy { $0 == 0 || $0 == 1 } }) else {
                throw ModelError.attentionMask("entries must be 0 (padding) or 1 (token)")
            }
        }
        if kvCache != nil || options.attentionMask != nil {
            var km = [Float](repeating: 1, count: batch * keyLen)
            for b in 0..<batch {
                var seen = kvCache?.pointee.realCount[b] ?? 0
                for j in 0..<past { km[b * keyLen + j] = kvCache!.pointee.mask[b * kvCache!.pointee.capacity + j] }
                for t in 0..<pos {
                    let real = options.attentionMask.map { $0[b][t] == 1 } ?? true
                    km[b * keyLen + past + t] = real ? 1 : 0
                    if real { seen += 1 }
                    positions[b * pos + t] = max(seen - 1, 0)
                }
            }
            keyMask = km
        } else {
            for b in 0..<batch { for t in 0..<pos { positions[b * pos + t] = t } }
        }

        // Embedding.
        if case .tokens(let ids) = input {
            var embed = uninitializedFloats(rows * d)
            weights.wE.scalars.withUnsafeBufferPointer { wE in
                embed.withUnsafeMutableBufferPointer { e in
                    for b in 0..<batch {
                        for t in 0..<pos {
                            (e.baseAddress! + (b * pos + t) * d).update(from: wE.baseAddress! + ids[b][t] * d, count: d)
                        }
                    }
                }
            }
            try runner.visit(.embed, &embed, shape: [batch, pos, d])
            resid = embed
            if let wPos = weights.wPos {
                var posEmbed = uninitializedFloats(rows * d)
                wPos.scalars.withUnsafeBufferPointer { wp in
                    posEmbed.withUnsafeMutableBufferPointer { pe in
                        for r in 0..<rows {
                            // Padding gets no positional embedding, as in TransformerLens's PosEmbed.
                            let b = r / pos, t = r % pos
                            if let km = keyMask, km[b * keyLen + past + t] == 0 {
                                (pe.baseAddress! + r * d).update(repeating: 0, count: d)
                            } else {
                                (pe.baseAddress! + r * d).update(from: wp.baseAddress! + positions[r] * d, count: d)
                            }
                        }
                    }
                }
                try runner.visit(.posEmbed, &posEmbed, shape: [batch, pos, d])
                resid.withUnsafeMutableBufferPointer { r in
                    posEmbed.withUnsafeBufferPointer { Kernels.add(r.baseAddress!, $0.baseAddress!, count: rows * d) }
                }
            }
        }

        let rotary = c.positional == .standard ? nil : rotaryTable(positions: positions)

        // Buffers reused by every block. A cached activation shares its buffer until the next write copies it.
        var normed = uninitializedFloats(rows * d)
        var scale = [Float](repeating: 0, count: rows)
        var q = uninitializedFloats(rows * h * dh)
        var k = uninitializedFloats(rows * kvh * dh)
        var v = uninitializedFloats(rows * kvh * dh)
        var z = uninitializedFloats(rows * h * dh)
        var out = uninitializedFloats(rows * d)
        var mlpPre = uninitializedFloats(rows * c.dMLP)
        if let kv = kvCache { kv.pointee.reserve(keyLen, maxContext: c.nCtx) }
        // While caching, buffers handed to the cache are replaced rather than copied before reuse.
        let caching = runner.selection != nil

        for l in start..<stop {
            let block = weights.blocks[l]
            try runner.visit(.residPre(l), &resid, shape: [batch, pos, d])

            // ln1 → Q, K, V.
            try normalize(resid, into: &normed, scale: &scale, rows: rows, w: block.ln1W, b: block.ln1B,
                          scaleHook: .ln1Scale(l), normHook: .ln1Normalized(l), batch: batch, pos: pos, runner: &runner)
            linear(normed, rows: rows, k: d, weight: packed[l].wQ, n: h * dh, bias: block.bQ.scalars, into: &q, fresh: caching)
            linear(normed, rows: rows, k: d, weight: packed[l].wK, n: kvh * dh, bias: block.bK.scalars, into: &k, fresh: caching)
            linear(normed, rows: rows, k: d, weight: packed[l].wV, n: kvh * dh, bias: block.bV.scalars, into: &v, fresh: caching)
            try runner.visit(.q(l), &q, shape: [batch, pos, h, dh])
            try runner.visit(.k(l), &k, shape: [batch, pos, kvh, dh])
            try runner.visit(.v(l), &v, shape: [batch, pos, kvh, dh])
            if let rotary {
                applyRotary(&q, heads: h, table: rotary)
                applyRotary(&k, heads: kvh, table: rotary)
                try runner.visit(.rotQ(l), &q, shape: [batch, pos, h, dh])
                try runner.visit(.rotK(l), &k, shape: [batch, pos, kvh, dh])
            }

            // Keys and values of every position this call attends to: [batch, key_stride, kv_heads, d_head].
            let keyStride: Int
            if let kv = kvCache {
                let cap = kv.pointee.capacity
                let w = kvh * dh
                // Rows of one batch entry are contiguous on both sides: one copy per entry.
                kv.pointee.keys[l].withUnsafeMutableBufferPointer { kd in
                    kv.pointee.values[l].withUnsafeMutableBufferPointer { vd in
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
                keyStride = cap
            } else {
                keyStride = pos
            }

            // Scores, pattern and z = pattern · v.
            prepare(&z, rows * h * dh, fresh: caching)
            let geometry = AttentionGeometry(batch: batch, pos: pos, past: past, keyLen: keyLen, keyStride: keyStride)
            let (keys, values) = kvCache.map { ($0.pointee.keys[l], $0.pointee.values[l]) } ?? (k, v)
            try keys.withUnsafeBufferPointer { kp in
                try values.withUnsafeBufferPointer { vp in
                    try attention(layer: l, q: q, keys: kp.baseAddress!, values: vp.baseAddress!, geometry: geometry,
                                  keyMask: keyMask, queryBlock: options.queryBlock, z: &z, runner: &runner)
                }
            }
            try runner.visit(.z(l), &z, shape: [batch, pos, h, dh])

            // Attention output: through each head's result when asked for, else one GEMM.
            if options.useAttnResult || runner.wantsResult(l) {
                var result = uninitializedFloats(rows * h * d)
                z.withUnsafeBufferPointer { zp in
                    block.wO.scalars.withUnsafeBufferPointer { wo in
                        result.withUnsafeMutableBufferPointer { rp in
                            for head in 0..<h {
                                BLAS.sgemm(m: rows, n: d, k: dh, a: zp.baseAddress! + head * dh, lda: h * dh,
                                           b: wo.baseAddress! + head * dh * d, ldb: d,
                                           c: rp.baseAddress! + head * d, ldc: h * d)
                            }
                        }
                    }
                }
                try runner.visit(.result(l), &result, shape: [batch, pos, h, d])
                out.withUnsafeMutableBufferPointer { op in
                    result.withUnsafeBufferPointer { rp in
                        for r in 0..<rows {
                            let o = op.baseAddress! + r * d
                            o.update(from: block.bO.scalars, count: d)
                            for head in 0..<h { Kernels.add(o, rp.baseAddress! + (r * h + head) * d, count: d) }
                        }
                    }
                }
            } else {
                linear(z, rows: rows, k: h * dh, weight: block.wO.scalars, n: d, bias: block.bO.scalars, into: &out, fresh: caching)
            }
            try runner.visit(.attnOut(l), &out, shape: [batch, pos, d])
            addInPlace(&resid, out)
            if c.attnOnly {
                try runner.visit(.residPost(l), &resid, shape: [batch, pos, d])
                continue
            }
            try runner.visit(.residMid(l), &resid, shape: [batch, pos, d])

            // ln2 → MLP.
            try normalize(resid, into: &normed, scale: &scale, rows: rows, w: block.ln2W, b: block.ln2B,
                          scaleHook: .ln2Scale(l), normHook: .ln2Normalized(l), batch: batch, pos: pos, runner: &runner)
            var post: [Float]
            if let wGate = block.wGate {
                // As TransformerLens's GatedMLP: post = act(x·W_gate) * (x·W_in) + b_in.
                linear(normed, rows: rows, k: d, weight: wGate.scalars, n: c.dMLP, bias: nil, into: &mlpPre, fresh: caching)
                try runner.visit(.mlpPre(l), &mlpPre, shape: [batch, pos, c.dMLP])
                var up = uninitializedFloats(rows * c.dMLP)
                linear(normed, rows: rows, k: d, weight: block.wIn.scalars, n: c.dMLP, bias: nil, into: &up)
                try runner.visit(.mlpPreLinear(l), &up, shape: [batch, pos, c.dMLP])
                post = mlpPre
                mlpPre = []   // post is now the only owner: the activation runs in place, no copy
                activate(&post)
                let bIn = block.bIn.scalars
                post.withUnsafeMutableBufferPointer { p in
                    for r in 0..<rows {
                        for j in 0..<c.dMLP { p[r * c.dMLP + j] = p[r * c.dMLP + j] * up[r * c.dMLP + j] + bIn[j] }
                    }
                }
            } else {
                linear(normed, rows: rows, k: d, weight: block.wIn.scalars, n: c.dMLP, bias: block.bIn.scalars, into: &mlpPre, fresh: caching)
                try runner.visit(.mlpPre(l), &mlpPre, shape: [batch, pos, c.dMLP])
                post = mlpPre
                mlpPre = []
                activate(&post)
            }
            try runner.visit(.mlpPost(l), &post, shape: [batch, pos, c.dMLP])
            linear(post, rows: rows, k: c.dMLP, weight: block.wOut.scalars, n: d, bias: block.bOut.scalars, into: &out, fresh: caching)
            try runner.visit(.mlpOut(l), &out, shape: [batch, pos, d])
            addInPlace(&resid, out)
            try runner.visit(.residPost(l), &resid, shape: [batch, pos, d])
        }

        if let kv = kvCache {
            for b in 0..<batch {
                for t in 0..<pos { kv.pointee.mask[b * kv.pointee.capacity + past + t] = keyMask?[b * keyLen + past + t] ?? 1 }
                kv.pointee.realCount[b] += (0..<pos).filter { (keyMask?[b * keyLen + past + $0] ?? 1) == 1 }.count
            }
            kv.pointee.length = keyLen
        }

        if stop < c.nLayers || options.stopAtLayer != nil {
            return Tensor(unchecked: [batch, pos, d], resid)
        }
        var outPos = pos
        if options.lastPositionOnly && pos > 1 {
            var last = uninitializedFloats(batch * d)
            for b in 0..<batch {
                for j in 0..<d { last[b * d + j] = resid[(b * pos + pos - 1) * d + j] }
            }
            resid = last
            outPos = 1
        }
        let outRows = batch * outPos
        try normalize(resid, into: &normed, scale: &scale, rows: outRows, w: weights.lnFinalW, b: weights.lnFinalB,
                      scaleHook: .lnFinalScale, normHook: .lnFinalNormalized, batch: batch, pos: outPos, runner: &runner)
        try runner.visit(.unembedIn, &normed, shape: [batch, outPos, d])
        var logits = uninitializedFloats(outRows * c.dVocab)
        linear(normed, rows: outRows, k: d, weight: weights.wU.scalars, n: c.dVocab, bias: weights.bU.scalars, into: &logits)
        try runner.visit(.unembedOut, &logits, shape: [batch, outPos, c.dVocab])
        return Tensor(unchecked: [batch, outPos, c.dVocab], logits)
    }

    // MARK: - Pieces of the forward pass

    /// Sizes of one attention call: `pos` new queries after `past` cached positions; keys and values are
    /// laid out `[batch, keyStride, kv_heads, d_head]` with the first `keyLen` positions filled.
    struct AttentionGeometry {
        let batch: Int, pos: Int, past: Int, keyLen: Int, keyStride: Int
    }


    /// Attention scores, pattern and z for one layer, with their hook points. When neither scores nor
    /// pattern is hooked or cached, each head is done in a scratch buffer of `[pos, key_pos]`, block by
    /// block, and the `[batch, head, pos, key_pos]` tensors are never built.
    private func attention(layer l: Int, q: [Float], keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                           geometry g: AttentionGeometry, keyMask: [Float]?, queryBlock: Int, z: inout [Float],
                           runner: inout HookRunner) throws {
        let (h, kvh, dh) = (config.nHeads, config.nKeyValueHeads, config.dHead)
        let (batch, pos, past, keyLen) = (g.batch, g.pos, g.past, g.keyLen)
        let alpha = 1 / Float(dh).squareRoot()
        let scoresHooked = runner.hooks[.attnScores(l)] != nil
        let patternHooked = runner.hooks[.pattern(l)] != nil
        let materialize = runner.wants(.attnScores(l)) || runner.wants(.pattern(l))

        /// Scores of queries [r0, r1) of (b, head) into `s` (row stride keyLen), masked: −∞ on padding and
        /// above the diagonal. With `fused`, the block's columns above the diagonal get 0 instead (they are
        /// then already the pattern's zeros, as softmax runs over each row's causal prefix only) and columns
        /// past the block are left alone; otherwise every column to keyLen is −∞.
        func scoreBlock(_ qp: UnsafePointer<Float>, _ s: UnsafeMutablePointer<Float>, b: Int, head: Int,
                        r0: Int, r1: Int, fused: Bool) {
            let kvHead = head / config.groupSize
            let kmax = past + r1
            BLAS.sgemm(transB: true, m: r1 - r0, n: kmax, k: dh, alpha: alpha,
                       a: qp + (b * pos + r0) * h * dh + head * dh, lda: h * dh,
                       b: keys + b * g.keyStride * kvh * dh + kvHead * dh, ldb: kvh * dh,
                       c: s + r0 * keyLen, ldc: keyLen)
            for t in r0..<r1 {
                let row = s + t * keyLen
                let limit = past + t + 1
                let end = fused ? kmax : keyLen
                if limit < end { (row + limit).update(repeating: fused ? 0 : -.infinity, count: end - limit) }
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
                                    for t in r0..<r1 { Kernels.softmaxRows(s + t * keyLen, rows: 1, n: past + t + 1) }
                                    valueBlock(s, zp.baseAddress!, b: b, head: head, r0: r0, r1: r1, width: past + r1)
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
                    let limit = scoresHooked ? keyLen : past + t + 1
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
                            valueBlock(p, zp.baseAddress!, b: b, head: head, r0: r0, r1: r1, width: full ? keyLen : past + r1)
                        }
                    }
                }
            }
        }
    }

    /// Makes `buffer` ready to be overwritten with `count` floats: a new one when the cache may still
    /// hold the old one (`fresh`), so that writing does not first copy what it overwrites.
    @inline(__always)
    private func prepare(_ buffer: inout [Float], _ count: Int, fresh: Bool) {
        if fresh || buffer.count != count { buffer = uninitializedFloats(count) }
    }

    /// `out[rows, n] = x[rows, k] · weight[k, n] + bias[n]`.
    private func linear(_ x: [Float], rows: Int, k: Int, weight: [Float], n: Int, bias: [Float]?, into out: inout [Float],
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

    private func addInPlace(_ a: inout [Float], _ b: [Float]) {
        a.withUnsafeMutableBufferPointer { ap in
            b.withUnsafeBufferPointer { Kernels.add(ap.baseAddress!, $0.baseAddress!, count: ap.count) }
        }
    }

    /// The model's norm (LayerNorm or RMSNorm, with or without weights), with its two hook points.
    private func normalize(_ x: [Float], into out: inout [Float], scale: inout [Float], rows: Int, w: Tensor?, b: Tensor?,
                           scaleHook: HookName, normHook: HookName, batch: Int, pos: Int,
                           runner: inout HookRunner) throws {
        let d = config.dModel
        let rms = config.normalization == .rmsNorm || config.normalization == .rmsNormPre
        prepare(&out, rows * config.dModel, fresh: runner.selection != nil)
        if scale.count != rows { scale = [Float](repeating: 0, count: rows) }
        let eps = config.eps
        let wArray = w?.scalars ?? [], bArray = b?.scalars ?? []
        // TransformerLens's hook_normalized is `(x − mean) / scale`, before the weight and bias, and the
        // division uses the scale as hook_scale left it: the kernel applies the weight and bias itself
        // only when neither hook point is looked at.
        let scaleHooked = runner.hooks[scaleHook] != nil
        let wantsNormalized = runner.wants(normHook)
        let affineInKernel = !scaleHooked && !wantsNormalized
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                scale.withUnsafeMutableBufferPointer { sp in
                    wArray.withUnsafeBufferPointer { wp in
                        bArray.withUnsafeBufferPointer { bp in
                            let weight = affineInKernel && w != nil ? wp.baseAddress : nil
                            let bias = affineInKernel && b != nil ? bp.baseAddress : nil
                            if rms {
                                Kernels.rmsNormRows(xp.baseAddress!, out: op.baseAddress!, rows: rows, n: d, eps: eps,
                                                    weight: weight, scales: sp.baseAddress)
                            } else {
                                Kernels.layerNormRows(xp.baseAddress!, out: op.baseAddress!, rows: rows, n: d, eps: eps,
                                                      weight: weight, bias: bias, scales: sp.baseAddress)
                            }
                        }
                    }
                }
            }
        }
        if runner.wants(scaleHook) {
            try runner.visit(scaleHook, &scale, shape: [batch, pos, 1])
        }
        if scaleHooked {
            // Divide by the scale the hook returned.
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    for r in 0..<rows {
                        let src = xp.baseAddress! + r * d, dst = op.baseAddress! + r * d
                        let mean = rms ? 0 : Kernels.sum(src, count: d) / Float(d)
                        let inv = 1 / scale[r]
                        for j in 0..<d { dst[j] = (src[j] - mean) * inv }
                    }
                }
            }
        }
        if wantsNormalized {
            try runner.visit(normHook, &out, shape: [batch, pos, d])
        }
        if !affineInKernel && (w != nil || b != nil) {
            out.withUnsafeMutableBufferPointer { op in
                for r in 0..<rows {
                    let row = op.baseAddress! + r * d
                    if w != nil { for j in 0..<d { row[j] *= wArray[j] } }
                    if b != nil { for j in 0..<d { row[j] += bArray[j] } }
                }
            }
        }
    }

    private func activate(_ x: inout [Float]) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { p in
            switch config.activation {
            case .geluNew: Kernels.geluTanh(p.baseAddress!, count: n)
            case .gelu: Kernels.geluErf(p.baseAddress!, count: n)
            case .silu: Kernels.silu(p.baseAddress!, count: n)
            case .relu: for i in 0..<n { p[i] = max(p[i], 0) }
            }
        }
    }

    /// cos and sin of every rotary angle of a forward pass: `[rows, d_head / 2]` each.
    struct RotaryTable {
        let cos: [Float], sin: [Float]
    }

    /// Angles position · base^(−2i/d_head) for each row's position id.
    func rotaryTable(positions: [Int]) -> RotaryTable { Self.rotaryAngles(config: config, positions: positions) }

    /// The rotary table of `config` for the given position ids.
    static func rotaryAngles(config: ModelConfig, positions: [Int]) -> RotaryTable {
        let dh = config.dHead, half = dh / 2
        let base = Double(config.rotaryBase)
        let invFreq = (0..<half).map { 1 / pow(base, Double(2 * $0) / Double(dh)) }
        var c = uninitializedFloats(positions.count * half), s = uninitializedFloats(positions.count * half)
        for (r, p) in positions.enumerated() {
            for i in 0..<half {
                // Angles in float32, as PyTorch computes them, so that long positions round alike.
                let angle = Float(p) * Float(invFreq[i])
                c[r * half + i] = Foundation.cos(angle)
                s[r * half + i] = Foundation.sin(angle)
            }
        }
        return RotaryTable(cos: c, sin: s)
    }

    /// Rotates each head's (query or key) vector by its position: pairs (2i, 2i+1) for GGUF llama
    /// weights, (i, i + d_head/2) for Hugging Face llama weights.
    private func applyRotary(_ x: inout [Float], heads: Int, table: RotaryTable) {
        let dh = config.dHead, half = dh / 2
        let rows = table.cos.count / max(half, 1)
        let interleaved = config.positional == .rotaryInterleaved
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                for head in 0..<heads {
                    let v = p.baseAddress! + (r * heads + head) * dh
                    for i in 0..<half {
                        let (cosA, sinA) = (table.cos[r * half + i], table.sin[r * half + i])
                        let (a, b) = interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                        let (x0, x1) = (v[a], v[b])
                        v[a] = x0 * cosA - x1 * sinA
                        v[b] = x0 * sinA + x1 * cosA
                    }
                }
            }
        }
    }
}

import Foundation
