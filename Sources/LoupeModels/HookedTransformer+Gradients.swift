// The forward pass on the autograd tape: the same computation as `HookedTransformer.forward`, with the
// same hook points, built from `Variable`s so that `backward()` gives gradients for every weight and at
// every hook point. Training runs it with trainable weights; attribution patching runs it with frozen
// weights and reads the gradients at hook points.

import LoupeTensor

/// A hook on the tape: sees an activation as a `Variable` and may replace it with another of the same
/// shape (to steer, patch or ablate), in place, as `HookFunction` does for the fast forward:
/// `{ x, _ in x = x.scaled(by: 2) }`.
public typealias GradientHookFunction = (_ activation: inout Variable, _ hook: HookName) throws -> Void

/// What a differentiable forward pass returns.
public struct DifferentiableRun {
    /// `[batch, pos, d_vocab]`.
    public let logits: Variable
    /// The activations named in `capture`, as the model used them (after any hook). After `backward()`,
    /// `activations[name]!.grad` is the gradient at that hook point. `hook_scale` entries are constants.
    public let activations: [HookName: Variable]
}

extension HookedTransformer {
    /// The weights as leaf variables under their TransformerLens names.
    /// - Parameter trainable: whether gradients flow into them.
    public func parameterVariables(trainable: Bool) -> [String: Variable] {
        var out: [String: Variable] = [:]
        for (name, t) in weights.namedTensors { out[name] = Variable(t, requiresGrad: trainable, name: name) }
        return out
    }

    /// A forward pass on the tape with this model's weights (frozen unless `trainable`).
    public func differentiableRun(_ tokens: [[Int]], hooks: [HookName: GradientHookFunction] = [:],
                                  capture: Set<HookName> = [], trainable: Bool = false) throws -> DifferentiableRun {
        for name in hooks.keys { try checkHook(name) }
        for name in capture { try checkHook(name) }
        return try Self.differentiableForward(config: config, parameters: parameterVariables(trainable: trainable),
                                              tokens: tokens, hooks: hooks, capture: capture)
    }

    /// The forward pass as a function of named parameter variables (TransformerLens state-dict names).
    /// `dropout` (with `rng`) applies inverted dropout to the embeddings and each block's attention and MLP
    /// outputs, as GPT-2 does during training; leave it 0 for analysis.
    /// - Throws: `ModelError` for bad tokens or a missing parameter, `HookError` for a hook that changes a
    ///   shape, `ModelError.unsupported` for `hook_result` (not on the tape yet).
    public static func differentiableForward<R: RandomNumberGenerator>(
        config c: ModelConfig, parameters p: [String: Variable], tokens: [[Int]],
        hooks: [HookName: GradientHookFunction] = [:], capture: Set<HookName> = [],
        dropout: Float = 0, rng: inout R
    ) throws -> DifferentiableRun {
        if capture.contains(where: { if case .result = $0 { return true } else { return false } }) {
            throw ModelError.unsupported("hook_result is not available on the autograd tape; use hook_z and W_O")
        }
        guard let first = tokens.first, !first.isEmpty else { throw ModelError.emptyInput }
        let (batch, pos) = (tokens.count, first.count)
        for (r, row) in tokens.enumerated() {
            guard row.count == pos else { throw ModelError.raggedBatch(expected: pos, found: row.count, row: r) }
            for (i, t) in row.enumerated() where t < 0 || t >= c.dVocab {
                throw ModelError.tokenOutOfRange(token: t, position: i, dVocab: c.dVocab)
            }
        }
        guard pos <= c.nCtx else { throw ModelError.sequenceTooLong(length: pos, nCtx: c.nCtx) }
        let (d, h, kvh, dh) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead)

        func param(_ name: String) throws -> Variable {
            guard let v = p[name] else { throw ModelError.missingWeight(name: name, file: "the parameters given") }
            return v
        }
        func optionalParam(_ name: String) -> Variable? { p[name] }
        var captured: [HookName: Variable] = [:]
        func visit(_ name: HookName, _ x: Variable) throws -> Variable {
            var y = x
            if let f = hooks[name] {
                try f(&y, name)
                guard y.shape == x.shape else {
                    throw HookError.shapeChanged(hook: name.description, expected: x.shape, found: y.shape)
                }
            }
            if capture.contains(name) {
                // Nothing upstream needs a gradient (frozen weights): start the graph here, so that
                // backward() still reaches this hook point.
                if !y.requiresGrad { y = Variable(y.value, requiresGrad: true, name: name.description) }
                captured[name] = y
            }
            return y
        }
        func drop(_ x: Variable) -> Variable { dropout > 0 ? x.dropout(dropout, using: &rng) : x }
        func norm(_ x: Variable, _ prefix: String, scaleHook: HookName, normHook: HookName, rmsOnly: Bool = false) throws -> Variable {
            let (n, scale) = x.normalized(centered: c.centresNorm && !rmsOnly, eps: c.eps)
            if capture.contains(scaleHook) { captured[scaleHook] = Variable(scale) }
            var y = try visit(normHook, n)
            if let w = optionalParam(prefix + ".w") { y = try y.multiplyingRow(w) }
            if let b = optionalParam(prefix + ".b") { y = try y.addingRow(b) }
            return y
        }
        /// `x [.., d] · W [heads, d, d_head] + b [heads, d_head]` → `[batch, pos, heads, d_head]`.
        func project(_ x: Variable, _ w: Variable, _ b: Variable, heads: Int) throws -> Variable {
            let packed = try w.permuted([1, 0, 2]).reshaped([d, heads * dh])
            return try x.matmul(packed).addingRow(b.reshaped([heads * dh])).reshaped([batch, pos, heads, dh])
        }

        let ids = tokens.flatMap { $0 }
        if c.postLayerNorm {
            return try encoderForward(c, ids: ids, batch: batch, pos: pos, param: param, visit: visit,
                                      norm: { try norm($0, $1, scaleHook: $2, normHook: $3) },
                                      project: { try project($0, $1, $2, heads: $3) }, drop: drop, captured: { captured })
        }
        var resid = try visit(.embed, Variable.embedding(param("embed.W_E"), ids).reshaped([batch, pos, d]))
        if let wPos = optionalParam("pos_embed.W_pos") {
            let positions = (0..<batch).flatMap { _ in Array(0..<pos) }
            let posEmbed = try visit(.posEmbed, Variable.embedding(wPos, positions).reshaped([batch, pos, d]))
            resid = try resid + posEmbed
        }
        resid = drop(resid)
        // Rotary angles per row (batch × position), as the inference forward computes them.
        let rotary = RotaryTables(config: c, positions: (0..<batch).flatMap { _ in Array(0..<pos) })

        for l in 0..<c.nLayers {
            let pre = "blocks.\(l)."
            resid = try visit(.residPre(l), resid)
            let n1 = try norm(resid, pre + "ln1", scaleHook: .ln1Scale(l), normHook: .ln1Normalized(l))
            var q = try visit(.q(l), project(n1, param(pre + "attn.W_Q"), param(pre + "attn.b_Q"), heads: h))
            var k = try visit(.k(l), project(n1, param(pre + "attn.W_K"), param(pre + "attn.b_K"), heads: kvh))
            let v = try visit(.v(l), project(n1, param(pre + "attn.W_V"), param(pre + "attn.b_V"), heads: kvh))
            if c.qkNorm {
                q = try norm(q, pre + "attn.q_norm", scaleHook: .qNormScale(l), normHook: .qNormNormalized(l), rmsOnly: true)
                k = try norm(k, pre + "attn.k_norm", scaleHook: .kNormScale(l), normHook: .kNormNormalized(l), rmsOnly: true)
            }
            if let table = rotary?.table(l, config: c) {
                let interleaved = c.positional == .rotaryInterleaved
                q = try visit(.rotQ(l), q.rotated(cos: table.cos, sin: table.sin, interleaved: interleaved, rotaryDim: c.rotatedDims))
                k = try visit(.rotK(l), k.rotated(cos: table.cos, sin: table.sin, interleaved: interleaved, rotaryDim: c.rotatedDims))
            }
            let scores = try visit(.attnScores(l), Variable.causalAttentionScores(q: q, k: k, scale: c.attnScale, window: c.window(l),
                                                                                               causal: !c.bidirectional))
            let pattern = try visit(.pattern(l), scores.softmax())
            let z = try visit(.z(l), Variable.attentionMix(pattern: pattern, v: v))
            let wO = try param(pre + "attn.W_O").reshaped([h * dh, d])
            var attnOut = try z.reshaped([batch, pos, h * dh]).matmul(wO).addingRow(param(pre + "attn.b_O"))
            if c.postNorms {
                attnOut = try norm(attnOut, pre + "ln1_post", scaleHook: .ln1PostScale(l), normHook: .ln1PostNormalized(l), rmsOnly: true)
            }
            attnOut = try visit(.attnOut(l), attnOut)
            let residPre = resid
            resid = try resid + drop(attnOut)
            if c.attnOnly {
                resid = try visit(.residPost(l), resid)
                continue
            }
            if !c.parallelAttnMLP { resid = try visit(.residMid(l), resid) }
            let n2 = try norm(c.parallelAttnMLP ? residPre : resid, pre + "ln2", scaleHook: .ln2Scale(l), normHook: .ln2Normalized(l))
            var post: Variable
            if let wGate = optionalParam(pre + "mlp.W_gate") {
                let gate = try visit(.mlpPre(l), n2.matmul(wGate))
                let up = try visit(.mlpPreLinear(l), n2.matmul(param(pre + "mlp.W_in")))
                post = try (activate(gate, c.activation) * up).addingRow(param(pre + "mlp.b_in"))
            } else {
                let preAct = try visit(.mlpPre(l), n2.matmul(param(pre + "mlp.W_in")).addingRow(param(pre + "mlp.b_in")))
                post = activate(preAct, c.activation)
            }
            post = try visit(.mlpPost(l), post)
            var mlpOut = try post.matmul(param(pre + "mlp.W_out")).addingRow(param(pre + "mlp.b_out"))
            if c.postNorms {
                mlpOut = try norm(mlpOut, pre + "ln2_post", scaleHook: .ln2PostScale(l), normHook: .ln2PostNormalized(l), rmsOnly: true)
            }
            mlpOut = try visit(.mlpOut(l), mlpOut)
            resid = try resid + drop(mlpOut)
            resid = try visit(.residPost(l), resid)
        }
        let final = try norm(resid, "ln_final", scaleHook: .lnFinalScale, normHook: .lnFinalNormalized)
        let unembedIn = try visit(.unembedIn, final)
        let logits = try visit(.unembedOut, unembedIn.matmul(param("unembed.W_U")).addingRow(param("unembed.b_U")))
        return DifferentiableRun(logits: logits, activations: captured)
    }

    /// The BERT layout on the tape (as `Forward.swift`'s encoder steps): embeddings summed and normed, attention
    /// on the stream itself without a causal mask, ln1 after attention, ln2 after the MLP, then the masked-LM
    /// head (or, without one, the last hidden state as `logits`). Token types are all 0.
    private static func encoderForward(
        _ c: ModelConfig, ids: [Int], batch: Int, pos: Int, param: (String) throws -> Variable,
        visit: (HookName, Variable) throws -> Variable,
        norm: (Variable, String, HookName, HookName) throws -> Variable,
        project: (Variable, Variable, Variable, Int) throws -> Variable, drop: (Variable) -> Variable,
        captured: () -> [HookName: Variable]
    ) throws -> DifferentiableRun {
        let (d, h, kvh, dh) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead)
        let positions = (0..<batch).flatMap { _ in Array(0..<pos) }
        var sum = try visit(.encoderEmbed, Variable.embedding(param("embed.W_E"), ids).reshaped([batch, pos, d]))
        sum = try sum + visit(.encoderPosEmbed, Variable.embedding(param("pos_embed.W_pos"), positions).reshaped([batch, pos, d]))
        if c.nTokenTypes > 0 {
            let types = try Variable.embedding(param("embed.token_type_embed.W_token_type"), ids.map { _ in 0 })
            sum = try sum + visit(.tokenTypeEmbed, types.reshaped([batch, pos, d]))
        }
        var resid = try visit(.fullEmbed, norm(sum, "embed.ln", .embedLNScale, .embedLNNormalized))
        resid = drop(resid)
        for l in 0..<c.nLayers {
            let pre = "blocks.\(l)."
            resid = try visit(.residPre(l), resid)
            let q = try visit(.q(l), project(resid, param(pre + "attn.W_Q"), param(pre + "attn.b_Q"), h))
            let k = try visit(.k(l), project(resid, param(pre + "attn.W_K"), param(pre + "attn.b_K"), kvh))
            let v = try visit(.v(l), project(resid, param(pre + "attn.W_V"), param(pre + "attn.b_V"), kvh))
            let scores = try visit(.attnScores(l), Variable.causalAttentionScores(q: q, k: k, scale: c.attnScale, causal: false))
            let pattern = try visit(.pattern(l), scores.softmax())
            let z = try visit(.z(l), Variable.attentionMix(pattern: pattern, v: v))
            let wO = try param(pre + "attn.W_O").reshaped([h * dh, d])
            let attnOut = try visit(.attnOut(l), z.reshaped([batch, pos, h * dh]).matmul(wO).addingRow(param(pre + "attn.b_O")))
            resid = try visit(.residMid(l), resid + drop(attnOut))
            resid = try norm(resid, pre + "ln1", .ln1Scale(l), .ln1Normalized(l))
            let preAct = try visit(.mlpPre(l), resid.matmul(param(pre + "mlp.W_in")).addingRow(param(pre + "mlp.b_in")))
            let post = try visit(.mlpPost(l), activate(preAct, c.activation))
            let mlpOut = try visit(.mlpOut(l), post.matmul(param(pre + "mlp.W_out")).addingRow(param(pre + "mlp.b_out")))
            resid = try visit(.residPost(l), resid + drop(mlpOut))
            resid = try visit(.normalizedResidPost(l), norm(resid, pre + "ln2", .ln2Scale(l), .ln2Normalized(l)))
        }
        guard c.maskedLMHead else { return DifferentiableRun(logits: resid, activations: captured()) }
        let dense = activate(try resid.matmul(param("mlm_head.W")).addingRow(param("mlm_head.b")), c.activation)
        let unembedIn = try visit(.unembedIn, norm(dense, "ln_final", .mlmLNScale, .mlmLNNormalized))
        let logits = try visit(.unembedOut, unembedIn.matmul(param("unembed.W_U")).addingRow(param("unembed.b_U")))
        return DifferentiableRun(logits: logits, activations: captured())
    }

    /// The forward pass without dropout (no random numbers needed).
    public static func differentiableForward(config: ModelConfig, parameters: [String: Variable], tokens: [[Int]],
                                             hooks: [HookName: GradientHookFunction] = [:],
                                             capture: Set<HookName> = []) throws -> DifferentiableRun {
        var rng = SystemRandomNumberGenerator()
        return try differentiableForward(config: config, parameters: parameters, tokens: tokens, hooks: hooks,
                                         capture: capture, dropout: 0, rng: &rng)
    }

    private static func activate(_ x: Variable, _ a: ModelConfig.Activation) -> Variable {
        switch a {
        case .geluNew: return x.geluTanh()
        case .gelu: return x.geluErf()
        case .silu: return x.silu()
        case .relu: return x.relu()
        }
    }
}
