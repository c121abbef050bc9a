// Rotary position embeddings (Su et al. 2021, RoFormer): the first `rotary_dim` dimensions of each query
// and key head vector are rotated pairwise by angles position · inv_freq[i], inv_freq[i] =
// base^(−2i/rotary_dim), rescaled for long contexts where the config says so (Llama 3). The remaining
// dimensions (partial rotary: GPT-NeoX, Phi) pass through unchanged.

import Foundation
import LoupeTensor

/// cos and sin of every rotary angle of a forward pass: `[rows, rotary_dim / 2]` each.
struct RotaryTable {
    let cos: [Float], sin: [Float]
}

/// The rotary tables of one forward pass: one per distinct setting (Gemma 3's sliding layers have their own).
struct RotaryTables {
    let global: RotaryTable
    let sliding: RotaryTable?

    init?(config c: ModelConfig, positions: [Int]) {
        guard c.positional != .standard else { return nil }
        global = HookedTransformer.rotaryAngles(rope: c.globalRope, rotaryDim: c.rotatedDims, positions: positions)
        sliding = c.slidingRope.map { HookedTransformer.rotaryAngles(rope: $0, rotaryDim: c.rotatedDims, positions: positions) }
    }

    /// The table of layer `l`.
    func table(_ l: Int, config c: ModelConfig) -> RotaryTable {
        if let sliding, c.isSliding(l) { return sliding }
        return global
    }
}

extension HookedTransformer {
    /// The rotary table of `rope` for the given position ids.
    static func rotaryAngles(rope: ModelConfig.Rope, rotaryDim: Int, positions: [Int]) -> RotaryTable {
        let half = rotaryDim / 2
        let invFreq = rope.inverseFrequencies(rotaryDim: rotaryDim)
        var c = uninitializedFloats(positions.count * half), s = uninitializedFloats(positions.count * half)
        for (r, p) in positions.enumerated() {
            for i in 0..<half {
                // Angles in float32, as PyTorch computes them, so that long positions round alike.
                let angle = Float(p) * invFreq[i]
                c[r * half + i] = Foundation.cos(angle)
                s[r * half + i] = Foundation.sin(angle)
            }
        }
        return RotaryTable(cos: c, sin: s)
    }

    /// Rotates each head's (query or key) vector by its position: pairs (2i, 2i+1) for GGUF llama
    /// weights, (i, i + rotary_dim/2) for Hugging Face weights, over the first rotary_dim dimensions.
    func applyRotary(_ x: inout [Float], heads: Int, table: RotaryTable) {
        let dh = config.dHead, half = config.rotatedDims / 2
        let rows = table.cos.count / max(half, 1)
        let interleaved = config.positional == .rotaryInterleaved
        x.withUnsafeMutableBufferPointer { p in
            table.cos.withUnsafeBufferPointer { cosTable in
                table.sin.withUnsafeBufferPointer { sinTable in
                    for r in 0..<rows {
                        let cosRow = cosTable.baseAddress! + r * half, sinRow = sinTable.baseAddress! + r * half
                        for head in 0..<heads {
                            let v = p.baseAddress! + (r * heads + head) * dh
                            for i in 0..<half {
                                let (a, b) = interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                                let (x0, x1) = (v[a], v[b])
                                v[a] = x0 * cosRow[i] - x1 * sinRow[i]
                                v[b] = x0 * sinRow[i] + x1 * cosRow[i]
                            }
                        }
                    }
                }
            }
        }
    }
}
