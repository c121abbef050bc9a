// Dequantization of ggml blocks to Float32, bit-exact with gguf-py's `gguf.quants.dequantize`.
// Reference: gguf-py/gguf/quants.py (`dequantize_blocks` of each type) and ggml/src/ggml-quants.c
// (`dequantize_row_*`). The operations follow gguf-py's order, but exactness does not hang on it: every
// product is of an f16 scale (11 significant bits) and small integers, so `d · q` and `(d · sc) · q` are
// exact in float32 for all types but Q6_K, whose product rounds once however it is grouped; the only
// other rounding is the final `+ m` or `− dmin · mn`. So any fused multiply-add would give the same bits.
//
// Block layouts (bytes; `d`, `m`, `dmin` are f16; 32 elements per block unless noted):
//   Q8_0  d | qs[32] int8                                   x = d · q
//   Q4_0  d | qs[16]: element j low nibble, j+16 high       x = d · (q − 8)
//   Q4_1  d | m | qs[16]                                    x = d · q + m
//   Q5_0  d | qh u32 (bit j: 5th bit of element j) | qs[16] x = d · (q − 16)
//   Q5_1  d | m | qh u32 | qs[16]                           x = d · q + m
//   Q4_K  256 elements, 8 sub-blocks of 32: d | dmin | scales[12] (6-bit scale and min per sub-block)
//         | qs[128]: 32-byte group g holds sub-block 2g in low nibbles, 2g+1 in high
//                                                          x = (d · sc) · q − dmin · mn
//   Q5_K  as Q4_K with qh[32] before qs: bit s of qh[l] is the 5th bit of element l of sub-block s
//   Q6_K  256 elements, 16 sub-blocks of 16: ql[128] | qh[64] | scales[16] int8 | d
//                                                          x = (d · sc) · (q − 32)

import Foundation
import LoupeTensor

/// Writes the `count` elements of type `type` stored at `src` to `dst` as Float32; `count` is a
/// multiple of the type's block size and `type.isDequantizable`.
func dequantizeGGML(_ type: GGMLType, from src: UnsafeRawPointer, to dst: UnsafeMutablePointer<Float>, count: Int) {
    let blocks = count / type.blockSize
    let q = src.assumingMemoryBound(to: UInt8.self)
    switch type {
    case .F32:
        memcpy(dst, src, count * 4)
        #if _endian(big)
        for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: dst[i].bitPattern)) }
        #endif
    case .F16:
        for i in 0..<count { dst[i] = halfToFloat(u16(q, 2 * i)) }
    case .BF16:
        for i in 0..<count { dst[i] = Float(bitPattern: UInt32(u16(q, 2 * i)) << 16) }
    case .Q8_0: for b in 0..<blocks { dequantizeQ8_0(q + 34 * b, dst + 32 * b) }
    case .Q4_0: for b in 0..<blocks { dequantizeQ4_0(q + 18 * b, dst + 32 * b) }
    case .Q4_1: for b in 0..<blocks { dequantizeQ4_1(q + 20 * b, dst + 32 * b) }
    case .Q5_0: for b in 0..<blocks { dequantizeQ5_0(q + 22 * b, dst + 32 * b) }
    case .Q5_1: for b in 0..<blocks { dequantizeQ5_1(q + 24 * b, dst + 32 * b) }
    case .Q4_K: for b in 0..<blocks { dequantizeQ4_K(q + 144 * b, dst + 256 * b) }
    case .Q5_K: for b in 0..<blocks { dequantizeQ5_K(q + 176 * b, dst + 256 * b) }
    case .Q6_K: for b in 0..<blocks { dequantizeQ6_K(q + 210 * b, dst + 256 * b) }
    default: break
    }
}

@inline(__always)
private func u16(_ p: UnsafePointer<UInt8>, _ offset: Int) -> UInt16 {
    UInt16(littleEndian: UnsafeRawPointer(p).loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always)
private func f16(_ p: UnsafePointer<UInt8>, _ offset: Int) -> Float { halfToFloat(u16(p, offset)) }

@inline(__always)
private func dequantizeQ8_0(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 0)
    for j in 0..<32 { y[j] = Float(Int8(bitPattern: b[2 + j])) * d }
}

@inline(__always)
private func dequantizeQ4_0(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 0)
    let qs = b + 2
    for j in 0..<16 {
        y[j] = d * Float(Int32(qs[j] & 0x0F) - 8)
        y[j + 16] = d * Float(Int32(qs[j] >> 4) - 8)
    }
}

@inline(__always)
private func dequantizeQ4_1(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 0), m = f16(b, 2)
    let qs = b + 4
    for j in 0..<16 {
        y[j] = d * Float(qs[j] & 0x0F) + m
        y[j + 16] = d * Float(qs[j] >> 4) + m
    }
}

@inline(__always)
private func dequantizeQ5_0(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 0)
    let qh = UInt32(littleEndian: UnsafeRawPointer(b).loadUnaligned(fromByteOffset: 2, as: UInt32.self))
    let qs = b + 6
    for j in 0..<16 {
        let lo = UInt32(qs[j] & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
        let hi = UInt32(qs[j] >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
        y[j] = d * Float(Int32(lo) - 16)
        y[j + 16] = d * Float(Int32(hi) - 16)
    }
}

@inline(__always)
private func dequantizeQ5_1(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 0), m = f16(b, 2)
    let qh = UInt32(littleEndian: UnsafeRawPointer(b).loadUnaligned(fromByteOffset: 4, as: UInt32.self))
    let qs = b + 8
    for j in 0..<16 {
        let lo = UInt32(qs[j] & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
        let hi = UInt32(qs[j] >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
        y[j] = d * Float(lo) + m
        y[j + 16] = d * Float(hi) + m
    }
}

/// The 6-bit scale and min of sub-block `s` (0..<8) from the 12 packed bytes of a Q4_K/Q5_K block
/// (ggml's `get_scale_min_k4`): sub-blocks 0-3 use the low 6 bits of bytes s and s+4; 4-7 take their
/// low 4 bits from byte s+4 and their top 2 bits from the spare high bits of bytes s-4 and s.
@inline(__always)
private func scaleMinK4(_ scales: UnsafePointer<UInt8>, _ s: Int) -> (scale: Float, min: Float) {
    if s < 4 {
        return (Float(scales[s] & 63), Float(scales[s + 4] & 63))
    }
    let sc = (scales[s + 4] & 0x0F) | ((scales[s - 4] >> 6) << 4)
    let mn = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4)
    return (Float(sc), Float(mn))
}

@inline(__always)
private func dequantizeQ4_K(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 0), dmin = f16(b, 2)
    let scales = b + 4, qs = b + 16
    for g in 0..<4 {
        let (sc1, m1) = scaleMinK4(scales, 2 * g)
        let (sc2, m2) = scaleMinK4(scales, 2 * g + 1)
        let d1 = d * sc1, dm1 = dmin * m1, d2 = d * sc2, dm2 = dmin * m2
        let q = qs + 32 * g, out = y + 64 * g
        for l in 0..<32 {
            out[l] = d1 * Float(q[l] & 0x0F) - dm1
            out[l + 32] = d2 * Float(q[l] >> 4) - dm2
        }
    }
}

@inline(__always)
private func dequantizeQ5_K(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 0), dmin = f16(b, 2)
    let scales = b + 4, qh = b + 16, qs = b + 48
    for g in 0..<4 {
        let (sc1, m1) = scaleMinK4(scales, 2 * g)
        let (sc2, m2) = scaleMinK4(scales, 2 * g + 1)
        let d1 = d * sc1, dm1 = dmin * m1, d2 = d * sc2, dm2 = dmin * m2
        let q = qs + 32 * g, out = y + 64 * g
        let shift1 = UInt8(2 * g), shift2 = UInt8(2 * g + 1)
        for l in 0..<32 {
            let lo = (q[l] & 0x0F) | ((qh[l] >> shift1) & 1) << 4
            let hi = (q[l] >> 4) | ((qh[l] >> shift2) & 1) << 4
            out[l] = d1 * Float(lo) - dm1
            out[l + 32] = d2 * Float(hi) - dm2
        }
    }
}

@inline(__always)
private func dequantizeQ6_K(_ b: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(b, 208)
    // Two halves of 128 elements, each from 64 bytes of ql, 32 of qh and 8 scales; within a half,
    // element l + 32k (k = 0..<4) takes scale 2k + l / 16.
    for h in 0..<2 {
        let ql = b + 64 * h, qh = b + 128 + 32 * h, out = y + 128 * h
        let sc = UnsafeRawPointer(b + 192 + 8 * h).assumingMemoryBound(to: Int8.self)
        for half in 0..<2 {
            let s1 = d * Float(sc[half]), s2 = d * Float(sc[half + 2])
            let s3 = d * Float(sc[half + 4]), s4 = d * Float(sc[half + 6])
            for l in (16 * half)..<(16 * half + 16) {
                let q1 = Int32((ql[l] & 0x0F) | (qh[l] & 3) << 4) - 32
                let q2 = Int32((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32
                let q3 = Int32((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32
                let q4 = Int32((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) - 32
                out[l] = s1 * Float(q1)
                out[l + 32] = s2 * Float(q2)
                out[l + 64] = s3 * Float(q3)
                out[l + 96] = s4 * Float(q4)
            }
        }
    }
}
