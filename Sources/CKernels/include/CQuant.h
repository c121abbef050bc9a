// Matrix products with ggml-quantized weights read in place (from a memory-mapped GGUF file), and the
// small thread pool they run on. Activations stay float32: each weight block is decoded to float32 in
// registers and multiplied with the float activations, so results equal a float32 product with the
// dequantized weights up to summation order (llama.cpp instead quantizes activations to 8 bits, which
// moves logits by ~1e-2). Weight types are ggml's raw type numbers (GGMLType.rawValue).
#ifndef LOUPE_CQUANT_H
#define LOUPE_CQUANT_H

/// Whether the kernels handle ggml type `type`: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
int loupe_quant_supported(int type);

/// y[r * ldy + o] = sum_i x[r * ldx + i] * W[o][i] for o in [0, n), r in [0, nx), where row o of W is the
/// `k` elements of type `type` at `w + o * row_bytes` (k a multiple of the type's block size). Split over
/// output rows on the pool. Returns 0, or -1 for an unsupported type.
int loupe_quant_matmul(int type, const void *w, long row_bytes, long n, long k,
                       const float *x, long nx, long ldx, float *y, long ldy);

/// `count` (at most 8) products with the same activations in one job: y_s = x · W_sᵀ for each s, where W_s
/// has `ns[s]` rows of type `types[s]` at `ws[s]`, `row_bytes[s]` apart, and y_s is at `ys[s]` with row
/// stride `ldys[s]`. Returns 0, or -1 for an unsupported type or count.
int loupe_quant_matmul_many(int count, const int *types, const void *const *ws, const long *row_bytes,
                            const long *ns, long k, const float *x, long nx, long ldx, float *const *ys,
                            const long *ldys);

/// Rows [r0, r1) of W dequantized into out ([r1 - r0, k], row-major), split over the pool. Returns 0 or -1.
int loupe_quant_dequantize_rows(int type, const void *w, long row_bytes, long r0, long r1, long k, float *out);

/// Threads the pool runs on (the caller included); at least 1. Default: the CPUs this process may use.
void loupe_pool_set_threads(int n);
/// Sends the pool's idle workers to sleep now rather than after their usual brief spin: call it before
/// work that other threads will run (a BLAS product), so spinning workers do not take their cores.
void loupe_pool_park(void);
int loupe_pool_threads(void);

#endif
