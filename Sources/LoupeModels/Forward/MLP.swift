// The MLP block: ln2 → W_in (and W_gate in gated MLPs) → activation → W_out, added into the residual
// stream. Legend: batch, pos, rows = batch · pos, d_model, d_mlp.

import LoupeTensor

extension HookedTransformer {
    /// ln2 and the MLP, added into the residual stream, with every hook point from `ln2.hook_scale` to
    /// `hook_mlp_out`.
    /// `input` is what ln2 reads when it is not the residual stream (parallel blocks read `resid_pre`).
    func mlpBlock(_ l: Int, _ ws: inout Workspace, input: [Float]? = nil, runner: inout HookRunner) throws {
        let (d, dMLP) = (config.dModel, config.dMLP)
        let (batch, pos, rows) = (ws.batch, ws.pos, ws.rows)
        let block = vectors.blocks[l]
        if config.postLayerNorm {
            ws.normed = ws.resid   // BERT: the MLP reads ln1's output, already the stream
        } else {
            try normalize(input ?? ws.resid, into: &ws.normed, scale: &ws.scale, rows: rows, w: block.ln2W, b: block.ln2B,
                          scaleHook: .ln2Scale(l), normHook: .ln2Normalized(l), batch: batch, pos: pos, runner: &runner)
        }
        var post: [Float]   // [batch, pos, d_mlp]
        let mats = exec.blocks[l]
        if let wGate = mats.gate {
            // As TransformerLens's GatedMLP: post = act(x·W_gate) * (x·W_in) + b_in.
            var up: [Float] = []
            if !projectInPlace(ws.normed, rows: rows, [wGate, mats.up], widths: [dMLP, dMLP], biases: [nil, nil],
                               into: &ws.mlpPre, &up, fresh: ws.caching) {
                linear(ws.normed, rows: rows, k: d, weight: wGate, n: dMLP, bias: nil, into: &ws.mlpPre, fresh: ws.caching)
                up = uninitializedFloats(rows * dMLP)
                linear(ws.normed, rows: rows, k: d, weight: mats.up, n: dMLP, bias: nil, into: &up)
            }
            try runner.visit(.mlpPre(l), &ws.mlpPre, shape: [batch, pos, dMLP])
            try runner.visit(.mlpPreLinear(l), &up, shape: [batch, pos, dMLP])
            post = ws.mlpPre
            ws.mlpPre = []   // post is now the only owner: the activation runs in place, no copy
            activate(&post)
            let bIn = block.bIn.scalars
            post.withUnsafeMutableBufferPointer { p in
                up.withUnsafeBufferPointer { u in
                    bIn.withUnsafeBufferPointer { bias in
                        for r in 0..<rows {
                            let pr = p.baseAddress! + r * dMLP, ur = u.baseAddress! + r * dMLP
                            for j in 0..<dMLP { pr[j] = pr[j] * ur[j] + bias[j] }
                        }
                    }
                }
            }
        } else {
            linear(ws.normed, rows: rows, k: d, weight: mats.up, n: dMLP, bias: block.bIn.scalars, into: &ws.mlpPre, fresh: ws.caching)
            try runner.visit(.mlpPre(l), &ws.mlpPre, shape: [batch, pos, dMLP])
            post = ws.mlpPre
            ws.mlpPre = []
            activate(&post)
        }
        try runner.visit(.mlpPost(l), &post, shape: [batch, pos, dMLP])
        linear(post, rows: rows, k: dMLP, weight: mats.down, n: d, bias: block.bOut.scalars, into: &ws.out, fresh: ws.caching)
        if config.postNorms {
            let raw = ws.out
            try normalize(raw, into: &ws.out, scale: &ws.scale, rows: rows, w: block.ln2PostW, b: nil, scaleHook: .ln2PostScale(l),
                          normHook: .ln2PostNormalized(l), batch: batch, pos: pos, rmsOnly: true, runner: &runner)
        }
        try runner.visit(.mlpOut(l), &ws.out, shape: [batch, pos, d])
        addInPlace(&ws.resid, ws.out)
    }

    /// The MLP's activation function, in place.
    func activate(_ x: inout [Float]) {
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
}
