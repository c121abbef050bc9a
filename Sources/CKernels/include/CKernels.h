// Elementwise and row kernels for Loupe, in C so that the compiler vectorizes them (Swift's SIMD types
// lower poorly here: a SIMD16 exp ran ~20x slower than this loop). On x86-64 Linux each kernel is built
// twice, for AVX2/FMA and for the baseline, and the loader picks one at run time.
#ifndef LOUPE_CKERNELS_H
#define LOUPE_CKERNELS_H

/// exp in place; about 1 ulp for |x| < 87, 0 below -87.3 (so exp(-inf) is 0), saturating above 88.3.
void loupe_exp(float *p, long n);
/// tanh in place, as 1 - 2 / (exp(2x) + 1); absolute error about 1e-7.
void loupe_tanh(float *p, long n);
/// GELU with the tanh approximation (GPT-2's gelu_new), in place.
void loupe_gelu_tanh(float *p, long n);
/// GELU with the exact erf, in place.
void loupe_gelu_erf(float *p, long n);
/// SiLU, x * sigmoid(x), in place.
void loupe_silu(float *p, long n);
/// Softmax of one row in place; a row that is all -inf becomes zeros.
void loupe_softmax_row(float *p, long n);
/// Log-softmax of one row in place.
void loupe_log_softmax_row(float *p, long n);
float loupe_sum(const float *p, long n);
float loupe_dot(const float *a, const float *b, long n);
float loupe_max(const float *p, long n);
/// dst[i] += alpha * src[i]
void loupe_axpy(float *dst, const float *src, float alpha, long n);
/// dst[i] += src[i]
void loupe_add(float *dst, const float *src, long n);
/// p[i] *= s
void loupe_scale(float *p, long n, float s);
/// LayerNorm of each row as TransformerLens computes it: centre, scale = sqrt(mean(x^2) + eps), divide,
/// then * w + b where given (w, b may be NULL). Writes each row's scale when scales is not NULL.
void loupe_layer_norm_rows(const float *x, float *out, long rows, long n, float eps,
                           const float *w, const float *b, float *scales);
/// RMSNorm of each row: scale = sqrt(mean(x^2) + eps), x / scale * w (w may be NULL).
void loupe_rms_norm_rows(const float *x, float *out, long rows, long n, float eps, const float *w, float *scales);
/// Returns memory that malloc holds free to the system (glibc's malloc_trim; nothing elsewhere). Loading keeps
/// large transient tables (a tokenizer's strings, a file's metadata) that would otherwise stay resident.
void loupe_release_free_memory(void);
#include "CQuant.h"
#endif
