// The forward pass, as a short list of named steps over one `Workspace`:
//
//     embed → for each block: attention block, MLP block → unembed
//
// Each step is in its own file (Embedding, Attention, MLP, Normalization, Rotary). The same computation
// on the autograd tape is `differentiableForward` (HookedTransformer+Gradients.swift); a test holds the
// two equal at every hook point.

import LoupeTensor

extension HookedTransformer {
    func forward(_ input: ModelInput, options: ForwardOptions, runner: inout HookRunner,
                 kvCache: UnsafeMutablePointer<KVCache>?) throws -> Tensor {
        var ws = try Workspace(config: config, input: input, options: options, kvCache: kvCache?.pointee,
                               caching: runner.selection != nil)
        if config.bidirectional && kvCache != nil {
            throw ModelError.unsupported("\(config.architecture) attends in both directions: a KV cache (generation) has no meaning for it")
        }
        if options.tokenTypes != nil && config.nTokenTypes == 0 {
            throw ModelError.unsupported("token types are given, but \(config.architecture) has no token-type embeddings")
        }
        if case .tokens(let ids) = input {
            if config.postLayerNorm { try encoderEmbed(ids, &ws, tokenTypes: options.tokenTypes, runner: &runner) } else { try embed(ids, &ws, runner: &runner) }
        }
        kvCache?.pointee.reserve(ws.keyLen, maxContext: config.nCtx)

        for l in ws.start..<ws.stop {
            try runner.visit(.residPre(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
            if config.postLayerNorm {
                // BERT: attention reads the stream itself; ln1 after it feeds the MLP; ln2 after the MLP.
                let block = vectors.blocks[l]
                try attentionBlock(l, &ws, runner: &runner, kvCache: kvCache, options: options)
                try runner.visit(.residMid(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
                try normalizeStream(&ws, w: block.ln1W, b: block.ln1B, scaleHook: .ln1Scale(l), normHook: .ln1Normalized(l), runner: &runner)
                try mlpBlock(l, &ws, runner: &runner)
                try runner.visit(.residPost(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
                try normalizeStream(&ws, w: block.ln2W, b: block.ln2B, scaleHook: .ln2Scale(l), normHook: .ln2Normalized(l), runner: &runner)
                try runner.visit(.normalizedResidPost(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
                continue
            }
            if config.parallelAttnMLP {
                // Attention and the MLP both read resid_pre and both add into the stream.
                let residPre = ws.resid
                try attentionBlock(l, &ws, runner: &runner, kvCache: kvCache, options: options)
                try mlpBlock(l, &ws, input: residPre, runner: &runner)
                try runner.visit(.residPost(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
                continue
            }
            try attentionBlock(l, &ws, runner: &runner, kvCache: kvCache, options: options)
            if config.attnOnly {
                try runner.visit(.residPost(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
                continue
            }
            try runner.visit(.residMid(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
            try mlpBlock(l, &ws, runner: &runner)
            try runner.visit(.residPost(l), &ws.resid, shape: [ws.batch, ws.pos, config.dModel])
        }
        if let kv = kvCache { kv.pointee.append(mask: ws.keyMask, batch: ws.batch, past: ws.past, pos: ws.pos) }

        if ws.stop < config.nLayers || options.stopAtLayer != nil || !config.hasUnembedding {
            return Tensor(unchecked: [ws.batch, ws.pos, config.dModel], ws.resid)
        }
        return try unembed(&ws, lastPositionOnly: options.lastPositionOnly, runner: &runner)
    }

    /// Token embeddings (and learned positional embeddings) into the residual stream, with
    /// `hook_embed` and `hook_pos_embed`.
    func embed(_ ids: [[Int]], _ ws: inout Workspace, runner: inout HookRunner) throws {
        let (d, batch, pos) = (config.dModel, ws.batch, ws.pos)
        var embed = tokenEmbeddings(ids, ws)
        try runner.visit(.embed, &embed, shape: [batch, pos, d])
        ws.resid = embed
        guard let wPos = vectors.wPos else { return }
        var posEmbed = uninitializedFloats(ws.rows * d)   // [batch, pos, d_model]
        wPos.scalars.withUnsafeBufferPointer { wp in
            posEmbed.withUnsafeMutableBufferPointer { pe in
                for r in 0..<ws.rows {
                    // Padding gets no positional embedding, as in TransformerLens's PosEmbed.
                    if ws.isPadding(batch: r / pos, key: ws.past + r % pos) {
                        (pe.baseAddress! + r * d).update(repeating: 0, count: d)
                    } else {
                        (pe.baseAddress! + r * d).update(from: wp.baseAddress! + ws.positions[r] * d, count: d)
                    }
                }
            }
        }
        try runner.visit(.posEmbed, &posEmbed, shape: [batch, pos, d])
        addInPlace(&ws.resid, posEmbed)
    }

    /// The token embeddings of `ids`, `[batch, pos, d_model]`.
    private func tokenEmbeddings(_ ids: [[Int]], _ ws: Workspace) -> [Float] {
        let (d, pos) = (config.dModel, ws.pos)
        var out = uninitializedFloats(ws.rows * d)
        out.withUnsafeMutableBufferPointer { e in
            for b in 0..<ws.batch {
                for t in 0..<pos { exec.embedding.lookup(ids[b][t], d: d, into: e.baseAddress! + (b * pos + t) * d) }
            }
        }
        return out
    }

    /// The residual stream replaced by its norm (BERT's norms after the residual additions).
    private func normalizeStream(_ ws: inout Workspace, w: Tensor?, b: Tensor?, scaleHook: HookName, normHook: HookName,
                                 runner: inout HookRunner) throws {
        var normed: [Float] = []
        try normalize(ws.resid, into: &normed, scale: &ws.scale, rows: ws.rows, w: w, b: b, scaleHook: scaleHook,
                      normHook: normHook, batch: ws.batch, pos: ws.pos, runner: &runner)
        ws.resid = normed
    }

    /// An encoder's embeddings (TransformerLens `BertEmbed`): tokens, positions 0…pos−1 and token types summed,
    /// then LayerNorm-ed into the residual stream.
    func encoderEmbed(_ ids: [[Int]], _ ws: inout Workspace, tokenTypes: [[Int]]?, runner: inout HookRunner) throws {
        let (d, batch, pos) = (config.dModel, ws.batch, ws.pos)
        guard let e = vectors.encoder, let wPos = vectors.wPos else {
            throw ModelError.invalidConfig("\(config.architecture) has no encoder embeddings")
        }
        if let types = tokenTypes {
            guard types.count == batch, types.allSatisfy({ $0.count == pos }) else {
                throw ModelError.unsupported("token types must have the tokens' shape [\(batch)][\(pos)], found \(types.count) rows of \(Set(types.map(\.count)).sorted())")
            }
            if let bad = types.joined().first(where: { $0 < 0 || $0 >= config.nTokenTypes }) {
                throw ModelError.unsupported("token type \(bad) is out of range: the model has types 0..<\(config.nTokenTypes)")
            }
        }
        var tokens = tokenEmbeddings(ids, ws)
        try runner.visit(.encoderEmbed, &tokens, shape: [batch, pos, d])
        var positions = uninitializedFloats(ws.rows * d)
        for r in 0..<ws.rows { for j in 0..<d { positions[r * d + j] = wPos.scalars[(r % pos) * d + j] } }
        try runner.visit(.encoderPosEmbed, &positions, shape: [batch, pos, d])
        var sum = tokens
        addInPlace(&sum, positions)
        if config.nTokenTypes > 0 {
            var types = uninitializedFloats(ws.rows * d)
            for r in 0..<ws.rows {
                let type = tokenTypes?[r / pos][r % pos] ?? 0
                for j in 0..<d { types[r * d + j] = e.wTokenType.scalars[type * d + j] }
            }
            try runner.visit(.tokenTypeEmbed, &types, shape: [batch, pos, d])
            addInPlace(&sum, types)
        }
        ws.resid = sum
        try normalizeStream(&ws, w: e.embedLNW, b: e.embedLNB, scaleHook: .embedLNScale, normHook: .embedLNNormalized, runner: &runner)
        try runner.visit(.fullEmbed, &ws.resid, shape: [batch, pos, d])
    }

    /// The final norm and the unembedding: logits `[batch, pos, d_vocab]` (`[batch, 1, d_vocab]` for the
    /// last position only). An encoder's masked-LM head runs its dense layer and activation first, and its
    /// LayerNorm (`ln_final`'s weights) has the `mlm_head.ln` hook names.
    func unembed(_ ws: inout Workspace, lastPositionOnly: Bool, runner: inout HookRunner) throws -> Tensor {
        let (d, batch) = (config.dModel, ws.batch)
        var outPos = ws.pos
        if lastPositionOnly && ws.pos > 1 {
            var last = uninitializedFloats(batch * d)   // [batch, 1, d_model]
            for b in 0..<batch {
                for j in 0..<d { last[b * d + j] = ws.resid[(b * ws.pos + ws.pos - 1) * d + j] }
            }
            ws.resid = last
            outPos = 1
        }
        let outRows = batch * outPos
        if config.postLayerNorm, let e = vectors.encoder {
            var dense = uninitializedFloats(outRows * d)
            linear(ws.resid, rows: outRows, k: d, weight: .dense(e.mlmW.scalars), n: d, bias: e.mlmB.scalars, into: &dense)
            activate(&dense)
            ws.resid = dense
        }
        try normalize(ws.resid, into: &ws.normed, scale: &ws.scale, rows: outRows, w: vectors.lnFinalW, b: vectors.lnFinalB,
                      scaleHook: config.postLayerNorm ? .mlmLNScale : .lnFinalScale,
                      normHook: config.postLayerNorm ? .mlmLNNormalized : .lnFinalNormalized, batch: batch, pos: outPos, runner: &runner)
        try runner.visit(.unembedIn, &ws.normed, shape: [batch, outPos, d])
        var logits = uninitializedFloats(outRows * config.dVocab)   // [batch, pos, d_vocab]
        linear(ws.normed, rows: outRows, k: d, weight: exec.unembed, n: config.dVocab, bias: vectors.bU.scalars, into: &logits)
        try runner.visit(.unembedOut, &logits, shape: [batch, outPos, config.dVocab])
        return Tensor(unchecked: [batch, outPos, config.dVocab], logits)
    }
}

extension KVCache {
    /// Records the positions a forward pass just appended: their mask, and each row's real-token count.
    mutating func append(mask keyMask: [Float]?, batch: Int, past: Int, pos: Int) {
        let keyLen = past + pos
        for b in 0..<batch {
            for t in 0..<pos { mask[b * capacity + past + t] = keyMask?[b * keyLen + past + t] ?? 1 }
            realCount[b] += (0..<pos).filter { (keyMask?[b * keyLen + past + $0] ?? 1) == 1 }.count
        }
        length = keyLen
    }
}
