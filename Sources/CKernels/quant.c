// Quantized-weight matrix products (see CQuant.h) and the thread pool they run on.
//
// Each weight row is a run of ggml blocks. A block is decoded to float32 (the same arithmetic as
// LoupeFormats' dequantizer and gguf-py, so the decoded weights are bit-identical to the dequantized
// ones) — in registers for the 32-element types, into a small L1 buffer for the K-quants — then dotted
// with up to four activation rows at once, so that a block is decoded once per four rows. With fewer
// than four rows, Q4_0, Q4_1, Q5_0 and Q8_0 skip the decoding's scaling instead (ROW1_KERNEL: the block's
// scale and offset are applied to its partial sums), which rounds differently from the decoded product by a
// few ulps of the block's terms. The loops use clang's vector extensions, built for AVX-512, AVX2 and the baseline; the loader picks one at run time.
//
// Activations stay float32. llama.cpp instead quantizes them to int8 blocks for integer dot products;
// a two-level int8 version of that (≈16 bits a block, AVX512-VNNI) was tried here: not clearly faster on
// these 2-core machines, and SmolLM2's logits moved by 1e-2 (a block's small values lose precision next
// to an outlier dimension), against the 1e-3 this path keeps. So there is one path, the exact one.
// Block layouts: ggml/src/ggml-common.h; decoding: ggml/src/ggml-quants.c (`dequantize_row_*`).

#define _GNU_SOURCE
#include "CQuant.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__linux__)
#define KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
       T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30 };

/// Inlined everywhere (as are the decoders) so that each kernel clone converts with its own instructions
/// (F16C on x86-64-v3 and up) rather than a library call.
#define INLINE static inline __attribute__((always_inline))

INLINE float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    _Float16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

INLINE uint32_t u32le(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// MARK: - Block decoders: `y[0..<block)` from one block at `b`.

INLINE void decode_q8_0(const uint8_t *restrict b, float *restrict y) {
    const float d = f16(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

INLINE void decode_q4_0(const uint8_t *restrict b, float *restrict y) {
    const float d = f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((int)(qs[j] & 0x0F) - 8);
        y[j + 16] = d * (float)((int)(qs[j] >> 4) - 8);
    }
}

INLINE void decode_q4_1(const uint8_t *restrict b, float *restrict y) {
    const float d = f16(b), m = f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(qs[j] & 0x0F) + m;
        y[j + 16] = d * (float)(qs[j] >> 4) + m;
    }
}

INLINE void decode_q5_0(const uint8_t *restrict b, float *restrict y) {
    const float d = f16(b);
    const uint32_t qh = u32le(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
        const int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

INLINE void decode_q5_1(const uint8_t *restrict b, float *restrict y) {
    const float d = f16(b), m = f16(b + 2);
    const uint32_t qh = u32le(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
        const int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

/// The 6-bit scale and min of sub-block `s` of a Q4_K/Q5_K block (ggml's get_scale_min_k4).
INLINE void scale_min_k4(const uint8_t *q, int s, float *sc, float *mn) {
    if (s < 4) {
        *sc = (float)(q[s] & 63);
        *mn = (float)(q[s + 4] & 63);
    } else {
        *sc = (float)((q[s + 4] & 0x0F) | ((q[s - 4] >> 6) << 4));
        *mn = (float)((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
    }
}

/// Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins; Q5_K's fifth bits (`qh`, NULL for Q4_K)
/// sit between the scales and the low nibbles.
INLINE void decode_q45_k(const uint8_t *restrict b, float *restrict y, int five_bits) {
    const float d = f16(b), dmin = f16(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *qs = five_bits ? b + 48 : b + 16;
    for (int g = 0; g < 4; g++) {
        float sc1, m1, sc2, m2;
        scale_min_k4(scales, 2 * g, &sc1, &m1);
        scale_min_k4(scales, 2 * g + 1, &sc2, &m2);
        const float d1 = d * sc1, dm1 = dmin * m1, d2 = d * sc2, dm2 = dmin * m2;
        const uint8_t *q = qs + 32 * g;
        float *out = y + 64 * g;
        for (int l = 0; l < 32; l++) {
            const int lo = (q[l] & 0x0F) | (five_bits ? ((qh[l] >> (2 * g)) & 1) << 4 : 0);
            const int hi = (q[l] >> 4) | (five_bits ? ((qh[l] >> (2 * g + 1)) & 1) << 4 : 0);
            out[l] = d1 * (float)lo - dm1;
            out[l + 32] = d2 * (float)hi - dm2;
        }
    }
}

INLINE void decode_q4_k(const uint8_t *restrict b, float *restrict y) { decode_q45_k(b, y, 0); }
INLINE void decode_q5_k(const uint8_t *restrict b, float *restrict y) { decode_q45_k(b, y, 1); }

INLINE void decode_q6_k(const uint8_t *restrict b, float *restrict y) {
    const float d = f16(b + 208);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
        float *out = y + 128 * h;
        for (int half = 0; half < 2; half++) {
            const float s1 = d * (float)sc[half], s2 = d * (float)sc[half + 2];
            const float s3 = d * (float)sc[half + 4], s4 = d * (float)sc[half + 6];
            for (int l = 16 * half; l < 16 * half + 16; l++) {
                const int q1 = ((ql[l] & 0x0F) | (qh[l] & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) - 32;
                out[l] = s1 * (float)q1;
                out[l + 32] = s2 * (float)q2;
                out[l + 64] = s3 * (float)q3;
                out[l + 96] = s4 * (float)q4;
            }
        }
    }
}

// Plain types, in blocks of 32 elements so that they share the loops below.
INLINE void decode_f32(const uint8_t *restrict b, float *restrict y) { memcpy(y, b, 32 * 4); }

INLINE void decode_f16(const uint8_t *restrict b, float *restrict y) {
    const _Float16 *h = (const _Float16 *)b;
    for (int j = 0; j < 32; j++) y[j] = (float)h[j];
}

INLINE void decode_bf16(const uint8_t *restrict b, float *restrict y) {
    const uint16_t *h = (const uint16_t *)b;
    uint32_t u[32];
    for (int j = 0; j < 32; j++) u[j] = (uint32_t)h[j] << 16;
    memcpy(y, u, sizeof u);
}

// MARK: - Row kernels, one per type

typedef float v16 __attribute__((ext_vector_type(16)));
typedef float v16u __attribute__((ext_vector_type(16), aligned(4)));   // unaligned loads

typedef float v8 __attribute__((ext_vector_type(8)));
typedef float v4 __attribute__((ext_vector_type(4)));
// A macro, not a function: a 16-wide vector argument would change the ABI between the clones. A tree of
// adds (four dependent steps), not a chain of sixteen.
#define hsum(V) ({ const v16 h16_ = (V);                                                                  \
        const v8 h8_ = __builtin_shufflevector(h16_, h16_, 0, 1, 2, 3, 4, 5, 6, 7)                          \
                     + __builtin_shufflevector(h16_, h16_, 8, 9, 10, 11, 12, 13, 14, 15);                   \
        const v4 h4_ = __builtin_shufflevector(h8_, h8_, 0, 1, 2, 3) + __builtin_shufflevector(h8_, h8_, 4, 5, 6, 7); \
        (h4_[0] + h4_[2]) + (h4_[1] + h4_[3]); })

// In-register decoding of the 32-element types: a block straight into two 16-wide vectors (elements
// 0-15 and 16-31), the same arithmetic as the decoders above, so that no buffer round trip is made.
typedef uint8_t u8x16 __attribute__((ext_vector_type(16)));
typedef int8_t i8x16 __attribute__((ext_vector_type(16)));
typedef uint32_t u32x16 __attribute__((ext_vector_type(16)));
typedef _Float16 h16 __attribute__((ext_vector_type(16)));

#define LOAD_U8(P) ({ u8x16 v_; memcpy(&v_, (P), 16); v_; })
#define LOAD_I8(P) ({ i8x16 v_; memcpy(&v_, (P), 16); v_; })
#define TO_F(V) __builtin_convertvector((V), v16)

#define DECODEV_Q4_0(B, W0, W1) do { const float d_ = f16(B); const u8x16 q_ = LOAD_U8((B) + 2); \
        W0 = d_ * (TO_F(q_ & 15) - 8.0f); W1 = d_ * (TO_F(q_ >> 4) - 8.0f); } while (0)
#define DECODEV_Q4_1(B, W0, W1) do { const float d_ = f16(B), m_ = f16((B) + 2); const u8x16 q_ = LOAD_U8((B) + 4); \
        W0 = d_ * TO_F(q_ & 15) + m_; W1 = d_ * TO_F(q_ >> 4) + m_; } while (0)
#define DECODEV_Q8_0(B, W0, W1) do { const float d_ = f16(B); \
        W0 = TO_F(LOAD_I8((B) + 2)) * d_; W1 = TO_F(LOAD_I8((B) + 18)) * d_; } while (0)
static const u32x16 lane_shift = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
#define HIGH_BITS(QH, SHIFT) (((((u32x16)(QH)) >> (lane_shift + (SHIFT))) & 1) << 4)
#define DECODEV_Q5_0(B, W0, W1) do { const float d_ = f16(B); const uint32_t qh_ = u32le((B) + 2); \
        const u8x16 q_ = LOAD_U8((B) + 6); \
        W0 = d_ * (TO_F(__builtin_convertvector(q_ & 15, u32x16) | HIGH_BITS(qh_, 0)) - 16.0f); \
        W1 = d_ * (TO_F(__builtin_convertvector(q_ >> 4, u32x16) | HIGH_BITS(qh_, 16)) - 16.0f); } while (0)
#define DECODEV_Q5_1(B, W0, W1) do { const float d_ = f16(B), m_ = f16((B) + 2); const uint32_t qh_ = u32le((B) + 4); \
        const u8x16 q_ = LOAD_U8((B) + 8); \
        W0 = d_ * TO_F(__builtin_convertvector(q_ & 15, u32x16) | HIGH_BITS(qh_, 0)) + m_; \
        W1 = d_ * TO_F(__builtin_convertvector(q_ >> 4, u32x16) | HIGH_BITS(qh_, 16)) + m_; } while (0)

/// How far ahead of the block being read the one-row loops prefetch the weights, in bytes. A matrix that
/// does not fit the caches (Gemma 3's 262144-row unembedding, 178 MB in Q8_0) otherwise streams at ~15 GB/s
/// on two cores, half what they can read; with it, ~35 GB/s (a 6-16 KB distance works as well, 1-2 KB not).
#define PREFETCH_AHEAD 8192

/// Rows [o0, o1) of `y = x · Wᵀ`, one block of BS elements (BB bytes) at a time: PREP(block) runs once a
/// block (decoding a K-quant block into `buf`; nothing for types decoded in registers), HALVES(block, j,
/// w0, w1) gives elements j..j+31 as two 16-wide vectors, dotted with four activation rows at a time and
/// then with the rest one by one, in vector accumulators reduced once per output.
#define ROWS_KERNEL(NAME, BS, BB, PREP, HALVES)                                                              \
    KERNEL static void NAME(const uint8_t *restrict w, long row_bytes, long o0, long o1, long k,             \
                            const float *restrict x, long nx, long ldx, float *restrict y, long ldy) {       \
        float buf[BS] __attribute__((aligned(64)));                                                          \
        (void)buf;                                                                                           \
        const long nb = k / (BS);                                                                            \
        for (long o = o0; o < o1; o++) {                                                                     \
            const uint8_t *row = w + o * row_bytes;                                                          \
            long r0 = 0;                                                                                     \
            for (; r0 + 4 <= nx; r0 += 4) {                                                                  \
                const float *x0 = x + r0 * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;              \
                v16 a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                          \
                for (long b = 0; b < nb; b++) {                                                              \
                    const uint8_t *blk = row + b * (BB);                                                     \
                    PREP(blk);                                                                               \
                    for (int j = 0; j < (BS); j += 32) {                                                     \
                        v16 w0, w1;                                                                          \
                        HALVES(blk, j, w0, w1);                                                              \
                        const long off = b * (BS) + j;                                                       \
                        a0 += w0 * *(const v16u *)(x0 + off) + w1 * *(const v16u *)(x0 + off + 16);          \
                        a1 += w0 * *(const v16u *)(x1 + off) + w1 * *(const v16u *)(x1 + off + 16);          \
                        a2 += w0 * *(const v16u *)(x2 + off) + w1 * *(const v16u *)(x2 + off + 16);          \
                        a3 += w0 * *(const v16u *)(x3 + off) + w1 * *(const v16u *)(x3 + off + 16);          \
                    }                                                                                        \
                }                                                                                            \
                y[r0 * ldy + o] = hsum(a0); y[(r0 + 1) * ldy + o] = hsum(a1);                                \
                y[(r0 + 2) * ldy + o] = hsum(a2); y[(r0 + 3) * ldy + o] = hsum(a3);                          \
            }                                                                                                \
            for (; r0 < nx; r0++) {                                                                          \
                /* One row (generation): 32 elements at a time in pairs, on four accumulators, so that  */   \
                /* two independent chains of additions run per pair rather than one per 32 elements.    */   \
                const float *x0 = x + r0 * ldx;                                                              \
                v16 a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                          \
                long b = 0;                                                                                  \
                if ((BS) == 32) {                                                                            \
                    for (; b + 2 <= nb; b += 2) {                                                            \
                        const uint8_t *p0 = row + b * (BB), *p1 = p0 + (BB);                                 \
                        const float *xb = x0 + b * 32;                                                       \
                        v16 w0, w1, w2, w3;                                                                  \
                        __builtin_prefetch(p0 + PREFETCH_AHEAD);                                             \
                        PREP(p0);                                                                            \
                        HALVES(p0, 0, w0, w1);                                                               \
                        PREP(p1);                                                                            \
                        HALVES(p1, 0, w2, w3);                                                               \
                        a0 += w0 * *(const v16u *)xb; a1 += w1 * *(const v16u *)(xb + 16);                   \
                        a2 += w2 * *(const v16u *)(xb + 32); a3 += w3 * *(const v16u *)(xb + 48);            \
                    }                                                                                        \
                }                                                                                            \
                for (; b < nb; b++) {                                                                        \
                    const uint8_t *blk = row + b * (BB);                                                     \
                    __builtin_prefetch(blk + PREFETCH_AHEAD);                                                \
                    if ((BB) > 64) __builtin_prefetch(blk + PREFETCH_AHEAD + 64);                            \
                    if ((BB) > 128) __builtin_prefetch(blk + PREFETCH_AHEAD + 128);                          \
                    if ((BB) > 192) __builtin_prefetch(blk + PREFETCH_AHEAD + 192);                          \
                    PREP(blk);                                                                               \
                    for (int j = 0; j < (BS); j += 64) {                                                     \
                        const float *xb = x0 + b * (BS) + j;                                                 \
                        v16 w0, w1;                                                                          \
                        HALVES(blk, j, w0, w1);                                                              \
                        a0 += w0 * *(const v16u *)xb; a1 += w1 * *(const v16u *)(xb + 16);                   \
                        if (j + 32 < (BS)) {                                                                 \
                            HALVES(blk, j + 32, w0, w1);                                                     \
                            a2 += w0 * *(const v16u *)(xb + 32); a3 += w1 * *(const v16u *)(xb + 48);        \
                        }                                                                                    \
                    }                                                                                        \
                }                                                                                            \
                y[r0 * ldy + o] = hsum((a0 + a1) + (a2 + a3));                                               \
            }                                                                                                \
        }                                                                                                    \
    }

#define NO_PREP(B) ((void)0)
#define FROM_BUF(B, J, W0, W1) do { W0 = *(const v16 *)(buf + (J)); W1 = *(const v16 *)(buf + (J) + 16); } while (0)

/// Rows [r0, r1) of W decoded into `out`.
#define DEQUANT_KERNEL(NAME, DECODE, BS, BB)                                                                 \
    KERNEL static void NAME(const uint8_t *restrict w, long row_bytes, long r0, long r1, long k,             \
                            float *restrict out) {                                                           \
        const long nb = k / (BS);                                                                            \
        for (long r = r0; r < r1; r++) {                                                                     \
            const uint8_t *row = w + r * row_bytes;                                                          \
            float *dst = out + (r - r0) * k;                                                                 \
            for (long b = 0; b < nb; b++) DECODE(row + b * (BB), dst + b * (BS));                            \
        }                                                                                                    \
    }

/// Kernels of a type decoded into `buf` a block at a time, and of a 32-element type decoded in registers.
#define TYPE_KERNELS(T, DECODE, BS, BB)                                                                      \
    ROWS_KERNEL(rows_##T, BS, BB, PREP_##T, FROM_BUF) DEQUANT_KERNEL(deq_##T, DECODE, BS, BB)
#define TYPE_KERNELS32(T, DECODE, DECODEV, BB)                                                               \
    ROWS_KERNEL(rows_##T, 32, BB, NO_PREP, REGS_##T) DEQUANT_KERNEL(deq_##T, DECODE, 32, BB)
#define PREP_f32(B) decode_f32(B, buf)
#define PREP_f16(B) decode_f16(B, buf)
#define PREP_bf16(B) decode_bf16(B, buf)
#define PREP_q4_k(B) decode_q4_k(B, buf)
#define PREP_q5_k(B) decode_q5_k(B, buf)
#define PREP_q6_k(B) decode_q6_k(B, buf)
#define REGS_q4_0(B, J, W0, W1) DECODEV_Q4_0(B, W0, W1)
#define REGS_q4_1(B, J, W0, W1) DECODEV_Q4_1(B, W0, W1)
#define REGS_q5_0(B, J, W0, W1) DECODEV_Q5_0(B, W0, W1)
#define REGS_q5_1(B, J, W0, W1) DECODEV_Q5_1(B, W0, W1)
#define REGS_q8_0(B, J, W0, W1) DECODEV_Q8_0(B, W0, W1)
/// One to three activation rows (generation, small batches) for the types whose block is a scale `d` times
/// small integers plus an offset: each block contributes d·Σ q·x + offset·Σ x, so the integers are converted
/// but never scaled element by element, the scale is applied once per block to the partial sums, and the
/// offset terms are one short dot product a row (Σx of each block is computed once per call). Equal to the
/// decoded product up to rounding: d·(Σ q·x) and offset·Σx are rounded as such rather than each d·q + offset
/// (the tests hold it to the same 1e-5 of Σ|x·w| as the other kernels).
///
/// A row's f16 scales (and offsets) are gathered from its blocks with plain 2-byte loads and stores one
/// row ahead, then converted sixteen at a time: converting each block's scale on its own (an element insert,
/// a conversion and a broadcast on the vector ports the dot product needs) made these kernels ~1.4× slower.
/// The vector loads of a row's staged scales come a row after its stores, so they never wait on them.
#define ROW1_KERNEL(NAME, BB, RAW, KIND)                                                                     \
    KERNEL static void NAME(const uint8_t *restrict w, long row_bytes, long o0, long o1, long k,             \
                            const float *restrict x, long nx, long ldx, float *restrict y, long ldy) {       \
        const long nb = k / 32, nbp = (nb + 15) & ~15L, nbuf = nbp > 0 ? nbp : 16;                           \
        float sx[nbuf] __attribute__((aligned(64)));   /* Σx per block, zero-padded to 16s */                \
        float dd[nbuf] __attribute__((aligned(64)));   /* the row's block scales as floats */                \
        uint16_t hb[2][2 * nbuf] __attribute__((aligned(64)));   /* two rows' raw scales, then mins */        \
        memset(hb, 0, sizeof hb);                                                                            \
        for (long r = 0; r < nx; r++) {                                                                      \
            const float *x0 = x + r * ldx;                                                                   \
            for (long b = 0; b < nbp; b++)                                                                   \
                sx[b] = b < nb ? hsum(*(const v16u *)(x0 + 32 * b) + *(const v16u *)(x0 + 32 * b + 16)) : 0; \
            STAGE_SCALES(hb[o0 & 1], w + o0 * row_bytes, BB, KIND);                                          \
            for (long o = o0; o < o1; o++) {                                                                 \
                const uint8_t *row = w + o * row_bytes;                                                      \
                if (o + 1 < o1) STAGE_SCALES(hb[(o + 1) & 1], row + row_bytes, BB, KIND);                    \
                const uint16_t *h = hb[o & 1];                                                               \
                v16 so = 0;   /* the offsets' terms, offset_b · Σx_b, lane by lane */                       \
                for (long b = 0; b < nbp; b += 16) {                                                         \
                    const v16 d16 = __builtin_convertvector(*(const h16 *)(h + b), v16);                     \
                    *(v16 *)(dd + b) = d16;                                                                  \
                    if ((KIND) == MINUS_8) so += -8.0f * d16 * *(const v16 *)(sx + b);                       \
                    if ((KIND) == MINUS_16) so += -16.0f * d16 * *(const v16 *)(sx + b);                     \
                    if ((KIND) == WITH_MIN)                                                                  \
                        so += __builtin_convertvector(*(const h16 *)(h + nbuf + b), v16) * *(const v16 *)(sx + b); \
                }                                                                                            \
                v16 a0 = 0, a1 = 0;                                                                          \
                long b = 0;                                                                                  \
                for (; b + 2 <= nb; b += 2) {                                                                \
                    const float *xb = x0 + 32 * b;                                                           \
                    v16 q0, q1, q2, q3;                                                                      \
                    RAW(row + b * (BB), q0, q1);                                                             \
                    RAW(row + (b + 1) * (BB), q2, q3);                                                       \
                    __builtin_prefetch(row + b * (BB) + PREFETCH_AHEAD);                                     \
                    a0 += dd[b] * (q0 * *(const v16u *)xb + q1 * *(const v16u *)(xb + 16));                  \
                    a1 += dd[b + 1] * (q2 * *(const v16u *)(xb + 32) + q3 * *(const v16u *)(xb + 48));       \
                }                                                                                            \
                for (; b < nb; b++) {                                                                        \
                    const float *xb = x0 + 32 * b;                                                           \
                    v16 q0, q1;                                                                              \
                    RAW(row + b * (BB), q0, q1);                                                             \
                    a0 += dd[b] * (q0 * *(const v16u *)xb + q1 * *(const v16u *)(xb + 16));                  \
                }                                                                                            \
                y[r * ldy + o] = hsum((a0 + a1) + so);                                                       \
            }                                                                                                \
        }                                                                                                    \
    }
/// Kinds of ROW1_KERNEL: a scale only (Q8_0), a scale and the offset −8·scale (Q4_0) or −16·scale (Q5_0),
/// a scale and a min (Q4_1).
enum { SCALE_ONLY, MINUS_8, MINUS_16, WITH_MIN };
/// A row's scales (and mins) into `H` (scales at 0, mins at nbuf): the first two bytes of each block (a min
/// in the next two). Plain loads and stores: vectorized, the loop would be built of element inserts.
#define STAGE_SCALES(H, ROW, BB, KIND) do { _Pragma("clang loop vectorize(disable) interleave(disable)")      \
        for (long b_ = 0; b_ < nb; b_++) {                                                                   \
            memcpy((H) + b_, (ROW) + b_ * (BB), 2);                                                          \
            if ((KIND) == WITH_MIN) memcpy((H) + nbuf + b_, (ROW) + b_ * (BB) + 2, 2);                       \
        } } while (0)
#define RAW_Q4(B, OFF, Q0, Q1) do { const u8x16 q_ = LOAD_U8((B) + (OFF)); Q0 = TO_F(q_ & 15); Q1 = TO_F(q_ >> 4); } while (0)
#define RAW_q4_0(B, Q0, Q1) RAW_Q4(B, 2, Q0, Q1)
#define RAW_q4_1(B, Q0, Q1) RAW_Q4(B, 4, Q0, Q1)
#define RAW_q5_0(B, Q0, Q1) do { const uint32_t qh_ = u32le((B) + 2); const u8x16 q_ = LOAD_U8((B) + 6);          \
        Q0 = TO_F(__builtin_convertvector(q_ & 15, u32x16) | HIGH_BITS(qh_, 0));                             \
        Q1 = TO_F(__builtin_convertvector(q_ >> 4, u32x16) | HIGH_BITS(qh_, 16)); } while (0)
#define RAW_q8_0(B, Q0, Q1) do { Q0 = TO_F(LOAD_I8((B) + 2)); Q1 = TO_F(LOAD_I8((B) + 18)); } while (0)
ROW1_KERNEL(row1_q4_0, 18, RAW_q4_0, MINUS_8)
ROW1_KERNEL(row1_q4_1, 20, RAW_q4_1, WITH_MIN)
ROW1_KERNEL(row1_q5_0, 22, RAW_q5_0, MINUS_16)
ROW1_KERNEL(row1_q8_0, 34, RAW_q8_0, SCALE_ONLY)

TYPE_KERNELS(f32, decode_f32, 32, 128)
TYPE_KERNELS(f16, decode_f16, 32, 64)
TYPE_KERNELS(bf16, decode_bf16, 32, 64)
TYPE_KERNELS32(q4_0, decode_q4_0, DECODEV_Q4_0, 18)
TYPE_KERNELS32(q4_1, decode_q4_1, DECODEV_Q4_1, 20)
TYPE_KERNELS32(q5_0, decode_q5_0, DECODEV_Q5_0, 22)
TYPE_KERNELS32(q5_1, decode_q5_1, DECODEV_Q5_1, 24)
TYPE_KERNELS32(q8_0, decode_q8_0, DECODEV_Q8_0, 34)
TYPE_KERNELS(q4_k, decode_q4_k, 256, 144)
TYPE_KERNELS(q5_k, decode_q5_k, 256, 176)
TYPE_KERNELS(q6_k, decode_q6_k, 256, 210)

typedef void (*rows_fn)(const uint8_t *, long, long, long, long, const float *, long, long, float *, long);
typedef void (*deq_fn)(const uint8_t *, long, long, long, long, float *);

/// The kernels of a type and its block size; NULLs for an unsupported type. `rows1` is the kernel for fewer
/// than four activation rows: the type's ROW1_KERNEL where it has one, else `rows`.
static void kernels_for(int type, rows_fn *rows, rows_fn *rows1, deq_fn *deq, long *block) {
    *rows = NULL; *rows1 = NULL; *deq = NULL; *block = 32;
#define CASE(T, NAME, BS) case T: *rows = rows_##NAME; *deq = deq_##NAME; *block = BS; break;
#define CASE1(T, NAME, BS) case T: *rows = rows_##NAME; *rows1 = row1_##NAME; *deq = deq_##NAME; *block = BS; break;
    switch (type) {
    CASE(T_F32, f32, 32) CASE(T_F16, f16, 32) CASE(T_BF16, bf16, 32)
    CASE1(T_Q4_0, q4_0, 32) CASE1(T_Q4_1, q4_1, 32) CASE1(T_Q5_0, q5_0, 32) CASE(T_Q5_1, q5_1, 32)
    CASE1(T_Q8_0, q8_0, 32) CASE(T_Q4_K, q4_k, 256) CASE(T_Q5_K, q5_k, 256) CASE(T_Q6_K, q6_k, 256)
    default: break;
    }
#undef CASE
#undef CASE1
    if (!*rows1) *rows1 = *rows;
}

int loupe_quant_supported(int type) {
    rows_fn r, r1; deq_fn d; long b;
    kernels_for(type, &r, &r1, &d, &b);
    return r != NULL;
}

// MARK: - Thread pool
//
// Workers spin briefly after each job (a forward pass issues jobs tens of microseconds apart, and a
// condition-variable wake-up costs about as much as a small job), then sleep. One job at a time: a
// caller that finds the pool busy (another thread's forward pass) runs its job alone.

typedef void (*job_fn)(const void *ctx, long i0, long i1);

#define MAX_WORKERS 63
static struct {
    _Atomic int threads;
    int started;
    pthread_mutex_t run;        // held by the caller whose job the workers run
    pthread_mutex_t mu;         // guards sleeping and the condition
    pthread_cond_t cv;
    _Atomic unsigned long epoch;
    _Atomic unsigned long park;  // workers that have finished this epoch's job sleep at once instead of spinning
    _Atomic int sleepers;
    _Atomic int remaining;
    job_fn fn;
    const void *ctx;
    long n;
    long chunk;
    _Atomic long next;
    int parts;
} pool = { .threads = 0, .run = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER,
           .cv = PTHREAD_COND_INITIALIZER };

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static inline long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Takes chunks of the current job until none is left: threads that start late or run slow take fewer.
static void take_chunks(void) {
    for (;;) {
        const long i0 = atomic_fetch_add_explicit(&pool.next, pool.chunk, memory_order_relaxed);
        if (i0 >= pool.n) return;
        const long i1 = i0 + pool.chunk < pool.n ? i0 + pool.chunk : pool.n;
        pool.fn(pool.ctx, i0, i1);
    }
}

/// The epoch each worker was created in: a worker must not read the epoch itself when it starts, or it
/// would miss the job its creator posts before it runs.
static unsigned long start_epoch[MAX_WORKERS + 1];

static void *worker_main(void *arg) {
    const int id = (int)(intptr_t)arg;
    unsigned long seen = start_epoch[id];
    for (;;) {
        unsigned long e = atomic_load_explicit(&pool.epoch, memory_order_acquire);
        if (e == seen) {
            const long deadline = now_ns() + 1000000;   // spin 1 ms, then sleep
            for (int i = 1; (e = atomic_load_explicit(&pool.epoch, memory_order_acquire)) == seen; i++) {
                cpu_relax();
                if (atomic_load_explicit(&pool.park, memory_order_relaxed) == seen) break;
                if ((i & 255) == 0 && now_ns() > deadline) break;
            }
            if (e == seen) {
                pthread_mutex_lock(&pool.mu);
                atomic_fetch_add(&pool.sleepers, 1);
                while ((e = atomic_load(&pool.epoch)) == seen) pthread_cond_wait(&pool.cv, &pool.mu);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.mu);
            }
        }
        seen = e;
        if (id < pool.parts) take_chunks();
        atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_release);
    }
    return NULL;
}

static int default_threads(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
#endif
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

void loupe_pool_park(void) {
    atomic_store_explicit(&pool.park, atomic_load(&pool.epoch), memory_order_relaxed);
}

void loupe_pool_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > MAX_WORKERS + 1) n = MAX_WORKERS + 1;
    atomic_store(&pool.threads, n);
}

int loupe_pool_threads(void) {
    int t = atomic_load(&pool.threads);
    if (t == 0) {
        t = default_threads();
        if (t > MAX_WORKERS + 1) t = MAX_WORKERS + 1;
        int expected = 0;
        atomic_compare_exchange_strong(&pool.threads, &expected, t);
        t = atomic_load(&pool.threads);
    }
    return t;
}

/// Runs fn over [0, n) split in contiguous parts, one a thread; `min_part` is the smallest part worth a thread.
static void pool_run(job_fn fn, const void *ctx, long n, long min_part) {
    int want = loupe_pool_threads();
    if (min_part > 0 && n / min_part < want) want = (int)(n / min_part);
    if (want <= 1 || pthread_mutex_trylock(&pool.run) != 0) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    while (pool.started < want - 1) {
        pthread_t t;
        start_epoch[pool.started + 1] = atomic_load(&pool.epoch);
        if (pthread_create(&t, NULL, worker_main, (void *)(intptr_t)(pool.started + 1)) != 0) break;
        pthread_detach(t);
        pool.started++;
    }
    const int parts = want < pool.started + 1 ? want : pool.started + 1;
    if (parts <= 1) {
        pthread_mutex_unlock(&pool.run);
        fn(ctx, 0, n);
        return;
    }
    pool.fn = fn; pool.ctx = ctx; pool.n = n; pool.parts = parts;
    // Four chunks a thread (at least min_part rows each).
    long chunk = (n + 4 * parts - 1) / (4 * parts);
    if (chunk < min_part) chunk = min_part;
    pool.chunk = chunk > 0 ? chunk : 1;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    atomic_store(&pool.remaining, pool.started);
    atomic_fetch_add(&pool.epoch, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    take_chunks();
    while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0) cpu_relax();
    pthread_mutex_unlock(&pool.run);
}

// MARK: - Entry points

/// Several products with the same activations (q, k and v; gate and up): one job over all their output
/// rows, so the pool is woken once and the activations quantized once.
#define MAX_SEGMENTS 8
struct matmul_segment {
    int type;
    rows_fn rows;
    const uint8_t *w;
    long row_bytes, n, ldy, start;   // start: the first row's index in the job
    float *y;
};

struct matmul_job {
    int count;
    struct matmul_segment seg[MAX_SEGMENTS];
    long k, nx, ldx;
    const float *x;
};

static void matmul_part(const void *ctx, long i0, long i1) {
    const struct matmul_job *j = ctx;
    for (int s = 0; s < j->count; s++) {
        const struct matmul_segment *g = &j->seg[s];
        const long lo = i0 > g->start ? i0 - g->start : 0;
        const long hi = (i1 < g->start + g->n ? i1 : g->start + g->n) - g->start;
        if (hi <= lo) continue;
        g->rows(g->w, g->row_bytes, lo, hi, j->k, j->x, j->nx, j->ldx, g->y, g->ldy);
    }
}

int loupe_quant_matmul_many(int count, const int *types, const void *const *ws, const long *row_bytes,
                            const long *ns, long k, const float *x, long nx, long ldx, float *const *ys,
                            const long *ldys) {
    if (count < 1 || count > MAX_SEGMENTS) return -1;
    struct matmul_job job = { .count = count, .k = k, .nx = nx, .ldx = ldx, .x = x };
    long total = 0;
    for (int s = 0; s < count; s++) {
        rows_fn rows, rows1; deq_fn deq; long block;
        kernels_for(types[s], &rows, &rows1, &deq, &block);
        if (!rows || k % block != 0) return -1;
        if (nx < 4) rows = rows1;
        job.seg[s] = (struct matmul_segment){ types[s], rows, ws[s], row_bytes[s], ns[s], ldys[s], total, ys[s] };
        total += ns[s] > 0 ? ns[s] : 0;
    }
    if (total <= 0 || nx <= 0) return 0;
    // About 16k multiply-adds make a part worth handing to another thread.
    const long per_row = k * nx;
    pool_run(matmul_part, &job, total, per_row >= 16384 ? 1 : 16384 / per_row);
    return 0;
}

int loupe_quant_matmul(int type, const void *w, long row_bytes, long n, long k,
                       const float *x, long nx, long ldx, float *y, long ldy) {
    return loupe_quant_matmul_many(1, &type, &w, &row_bytes, &n, k, x, nx, ldx, &y, &ldy);
}

struct dequant_job {
    deq_fn deq;
    const uint8_t *w;
    long row_bytes, r0, k;
    float *out;
};

static void dequant_part(const void *ctx, long i0, long i1) {
    const struct dequant_job *j = ctx;
    j->deq(j->w, j->row_bytes, j->r0 + i0, j->r0 + i1, j->k, j->out + i0 * j->k);
}

int loupe_quant_dequantize_rows(int type, const void *w, long row_bytes, long r0, long r1, long k, float *out) {
    rows_fn rows, rows1; deq_fn deq; long block;
    kernels_for(type, &rows, &rows1, &deq, &block);
    if (!deq || k % block != 0) return -1;
    if (r1 <= r0) return 0;
    struct dequant_job job = { deq, w, row_bytes, r0, k, out };
    pool_run(dequant_part, &job, r1 - r0, k >= 16384 ? 1 : 16384 / k);
    return 0;
}
