// Rotary position embeddings (Su et al. 2021, RoFormer): each query and key head vector is rotated
// pairwise by angles position · base^(−2i/d_head).

import Foundation
import LoupeTensor

/// cos and sin of every rotary angle of a forward pass: `[rows, d_head / 2]` each.
struct RotaryTable {
    let cos: [Float], sin: [Float]
}

extension HookedTransformer {

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
    func applyRotary(_ x: inout [Float], heads: Int, table: RotaryTable) {
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
