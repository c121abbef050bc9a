// Keys and values of earlier positions, so that generation feeds one new token at a time.

import LoupeTensor

/// Per-layer keys and values of the positions run so far, with their attention mask.
///
/// With a cache, `hook_k`, `hook_v` and `hook_rot_k` see only the new positions, and what they leave is
/// what is cached: a hook there acts once per position. (TransformerLens caches un-rotated keys and runs
/// `hook_rot_k` over all keys at every step.)
/// Layout per layer: `[batch, capacity, n_key_value_heads, d_head]`, the first `length` positions filled.
public struct KVCache: Sendable {
    public let batch: Int
    /// Positions stored.
    public internal(set) var length: Int = 0
    var capacity: Int = 0
    var keys: [[Float]]
    var values: [[Float]]
    /// `[batch, capacity]`: 1 for a real token, 0 for padding.
    var mask: [Float] = []
    /// Real tokens seen so far in each row (the next token's position id).
    var realCount: [Int]
    let rowWidth: Int

    /// An empty cache for `config` and `batch` rows.
    public init(config: ModelConfig, batch: Int = 1) {
        let batch = max(batch, 0)   // a cache for no rows fits no input: the forward pass says so
        self.batch = batch
        keys = Array(repeating: [], count: config.nLayers)
        values = Array(repeating: [], count: config.nLayers)
        realCount = Array(repeating: 0, count: batch)
        rowWidth = config.nKeyValueHeads * config.dHead
    }

    /// A cache holding one sequence's keys and values for every batch row: `keys[l]`, `values[l]` are
    /// `[key_pos, n_key_value_heads, d_head]` (the keys after rotary embedding, as `hook_rot_k` shows them;
    /// `hook_k` for models without rotary), e.g. from a cached run. Every position counts as a real token.
    public init(config: ModelConfig, batch: Int, keys: [Tensor], values: [Tensor]) throws {
        self.init(config: config, batch: batch)
        guard keys.count == config.nLayers, values.count == config.nLayers else {
            throw ModelError.inputShape(expected: [config.nLayers], found: [keys.count, values.count])
        }
        let length = keys.first?.shape.first ?? 0
        let shape = [length, config.nKeyValueHeads, config.dHead]
        for t in keys + values where t.shape != shape {
            throw ModelError.inputShape(expected: shape, found: t.shape)
        }
        guard length <= config.nCtx else { throw ModelError.sequenceTooLong(length: length, nCtx: config.nCtx) }
        reserve(length, maxContext: config.nCtx)
        let w = rowWidth
        for l in 0..<config.nLayers {
            for b in 0..<self.batch {
                for i in 0..<(length * w) {
                    self.keys[l][b * capacity * w + i] = keys[l].scalars[i]
                    self.values[l][b * capacity * w + i] = values[l].scalars[i]
                }
            }
        }
        for b in 0..<self.batch {
            for j in 0..<length { mask[b * capacity + j] = 1 }
            realCount[b] = length
        }
        self.length = length
    }

    /// Makes room for `total` positions, keeping what is stored.
    mutating func reserve(_ total: Int, maxContext: Int) {
        guard total > capacity else { return }
        let newCap = min(max(total, capacity * 2, 16), max(maxContext, total))
        func grow(_ old: [Float], width: Int) -> [Float] {
            var new = [Float](repeating: 0, count: batch * newCap * width)
            for b in 0..<batch where length > 0 {
                for i in 0..<(length * width) { new[b * newCap * width + i] = old[b * capacity * width + i] }
            }
            return new
        }
        for l in 0..<keys.count {
            keys[l] = grow(keys[l], width: rowWidth)
            values[l] = grow(values[l], width: rowWidth)
        }
        mask = grow(mask, width: 1)
        capacity = newCap
    }
}
