// Normalization layers (LayerNorm, RMSNorm, and their weightless "Pre" forms after folding) with
// TransformerLens's two hook points, `hook_scale` `[batch, pos, 1]` and `hook_normalized`.

import LoupeTensor

extension HookedTransformer {
    /// The model's norm (LayerNorm or RMSNorm, with or without weights), with its two hook points. With
    /// `heads`, an RMSNorm over each head's d_head (QK-norm): `rows` counts batch · pos positions and the
    /// hook shapes are `[batch, pos, heads, 1]` and `[batch, pos, heads, d_head]`. `rmsOnly` forces RMSNorm
    /// (the norms Gemma puts after attention and the MLP).
    func normalize(_ x: [Float], into out: inout [Float], scale: inout [Float], rows positions: Int, w: Tensor?, b: Tensor?,
                   scaleHook: HookName, normHook: HookName, batch: Int, pos: Int, heads: Int? = nil,
                   rmsOnly: Bool = false, runner: inout HookRunner) throws {
        let d = heads == nil ? config.dModel : config.dHead
        let rows = positions * (heads ?? 1)
        let lead = heads.map { [batch, pos, $0] } ?? [batch, pos]
        let rms = rmsOnly || heads != nil || !config.centresNorm
        prepare(&out, rows * d, fresh: runner.selection != nil)
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
            try runner.visit(scaleHook, &scale, shape: lead + [1])
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
            try runner.visit(normHook, &out, shape: lead + [d])
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
}
