// One hook point's activations over a batch of windows, as rows: what corpus jobs (SAE harvests, activation
// statistics) read. Only the blocks up to the hook are run.

import LoupeTensor

extension HookedTransformer {
    /// The activations of `hook` on `windows` `[batch][pos]` (all the same length), as `[rows, width]` rows
    /// in window order (a hook's trailing dimensions flattened: `hook_z` gives heads × d_head), without
    /// position 0 of each window when `dropFirst`.
    public func hookRows(_ hook: HookName, windows: [[Int]], dropFirst: Bool) throws -> Tensor {
        try checkHook(hook)
        var options = ForwardOptions()
        // Run only the blocks up to the hook's (all of them for ln_final/unembed hooks).
        if let layer = hook.layer, layer + 1 < config.nLayers {
            options.stopAtLayer = layer + 1
        } else if hook == .embed || hook == .posEmbed {
            options.stopAtLayer = 0
        }
        let (_, cache) = try runWithCache(.tokens(windows), select: .names([hook]), options: options)
        guard let acts = cache[hook] else { throw ModelError.unsupported("the forward pass did not record \(hook)") }
        let pos = windows.first?.count ?? 0
        let d = acts.count / max(windows.count * pos, 1)   // [batch, pos, width…] flattened per position
        guard dropFirst else { return Tensor(unchecked: [windows.count * pos, d], acts.scalars) }
        var out = [Float]()
        out.reserveCapacity(windows.count * max(pos - 1, 0) * d)
        acts.scalars.withUnsafeBufferPointer { a in
            for b in 0..<windows.count where pos > 1 { out.append(contentsOf: a[((b * pos + 1) * d)..<((b + 1) * pos * d)]) }
        }
        return Tensor(unchecked: [windows.count * max(pos - 1, 0), d], out)
    }
}
