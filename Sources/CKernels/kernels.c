#include "CKernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void loupe_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

#if defined(__x86_64__) && defined(__linux__)
#define KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

/* Cephes expf: range reduction by x*log2(e) rounded (via the 1.5*2^23 trick, whose low mantissa bits
   then hold the integer), a degree-6 polynomial, and 2^n built in the exponent field. */
static inline float exp_approx(float v) {
    float x = v < -87.3f ? -87.3f : (v > 88.3f ? 88.3f : v);
    float shifted = x * 1.44269504088896341f + 12582912.0f;
    float fx = shifted - 12582912.0f;
    x = x - fx * 0.693359375f;
    x = x + fx * 2.12194440e-4f;
    float z = x * x;
    float y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    int32_t bits;
    memcpy(&bits, &shifted, 4);
    int32_t e = ((bits - 0x4B400000) + 127) << 23;
    float pow2;
    memcpy(&pow2, &e, 4);
    float r = y * pow2;
    return v < -87.3f ? 0.0f : r;
}

static inline float tanh_approx(float x) { return 1.0f - 2.0f / (exp_approx(2.0f * x) + 1.0f); }

KERNEL void loupe_exp(float *restrict p, long n) {
    for (long i = 0; i < n; i++) p[i] = exp_approx(p[i]);
}

KERNEL void loupe_tanh(float *restrict p, long n) {
    for (long i = 0; i < n; i++) p[i] = tanh_approx(p[i]);
}

KERNEL void loupe_gelu_tanh(float *restrict p, long n) {
    for (long i = 0; i < n; i++) {
        float x = p[i];
        float inner = (x + 0.044715f * x * x * x) * 0.7978845608028654f;
        p[i] = 0.5f * x * (1.0f + tanh_approx(inner));
    }
}

void loupe_gelu_erf(float *restrict p, long n) {
    for (long i = 0; i < n; i++) {
        double x = p[i];
        p[i] = (float)(0.5 * x * (1.0 + erf(x * 0.7071067811865476)));
    }
}

KERNEL void loupe_silu(float *restrict p, long n) {
    for (long i = 0; i < n; i++) p[i] = p[i] / (1.0f + exp_approx(-p[i]));
}

/* Reductions may be reordered (that is what lets them vectorize): results differ from a strict
   left-to-right sum by rounding only. */
KERNEL float loupe_sum(const float *restrict p, long n) {
#pragma clang fp reassociate(on)
    float s = 0.0f;
    for (long i = 0; i < n; i++) s += p[i];
    return s;
}

KERNEL void loupe_axpy(float *restrict dst, const float *restrict src, float alpha, long n) {
    for (long i = 0; i < n; i++) dst[i] += alpha * src[i];
}

KERNEL float loupe_dot(const float *restrict a, const float *restrict b, long n) {
#pragma clang fp reassociate(on)
    float s = 0.0f;
    for (long i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

KERNEL float loupe_max(const float *restrict p, long n) {
    float m = -INFINITY;
    for (long i = 0; i < n; i++) m = p[i] > m ? p[i] : m;
    return m;
}

KERNEL void loupe_add(float *restrict dst, const float *restrict src, long n) {
    for (long i = 0; i < n; i++) dst[i] += src[i];
}

KERNEL void loupe_scale(float *restrict p, long n, float s) {
    for (long i = 0; i < n; i++) p[i] *= s;
}

KERNEL void loupe_softmax_row(float *restrict p, long n) {
#pragma clang fp reassociate(on)
    float m = -INFINITY;
    for (long i = 0; i < n; i++) m = p[i] > m ? p[i] : m;
    if (m == -INFINITY) {
        for (long i = 0; i < n; i++) p[i] = 0.0f;
        return;
    }
    float s = 0.0f;
    for (long i = 0; i < n; i++) {
        float e = exp_approx(p[i] - m);
        p[i] = e;
        s += e;
    }
    float inv = 1.0f / s;
    for (long i = 0; i < n; i++) p[i] *= inv;
}

KERNEL void loupe_log_softmax_row(float *restrict p, long n) {
#pragma clang fp reassociate(on)
    float m = -INFINITY;
    for (long i = 0; i < n; i++) m = p[i] > m ? p[i] : m;
    float s = 0.0f;
    for (long i = 0; i < n; i++) s += exp_approx(p[i] - m);
    float lse = m + logf(s);
    for (long i = 0; i < n; i++) p[i] -= lse;
}

KERNEL void loupe_layer_norm_rows(const float *restrict x, float *restrict out, long rows, long n, float eps,
                                  const float *restrict w, const float *restrict b, float *restrict scales) {
#pragma clang fp reassociate(on)
    for (long r = 0; r < rows; r++) {
        const float *src = x + r * n;
        float *dst = out + r * n;
        float mean = 0.0f;
        for (long j = 0; j < n; j++) mean += src[j];
        mean /= (float)n;
        float var = 0.0f;
        for (long j = 0; j < n; j++) {
            float d = src[j] - mean;
            var += d * d;
        }
        float scale = sqrtf(var / (float)n + eps);
        if (scales) scales[r] = scale;
        float inv = 1.0f / scale;
        if (w && b) {
            for (long j = 0; j < n; j++) dst[j] = (src[j] - mean) * inv * w[j] + b[j];
        } else if (w) {
            for (long j = 0; j < n; j++) dst[j] = (src[j] - mean) * inv * w[j];
        } else if (b) {
            for (long j = 0; j < n; j++) dst[j] = (src[j] - mean) * inv + b[j];
        } else {
            for (long j = 0; j < n; j++) dst[j] = (src[j] - mean) * inv;
        }
    }
}

KERNEL void loupe_rms_norm_rows(const float *restrict x, float *restrict out, long rows, long n, float eps,
                                const float *restrict w, float *restrict scales) {
#pragma clang fp reassociate(on)
    for (long r = 0; r < rows; r++) {
        const float *src = x + r * n;
        float *dst = out + r * n;
        float ms = 0.0f;
        for (long j = 0; j < n; j++) ms += src[j] * src[j];
        float scale = sqrtf(ms / (float)n + eps);
        if (scales) scales[r] = scale;
        float inv = 1.0f / scale;
        if (w) {
            for (long j = 0; j < n; j++) dst[j] = src[j] * inv * w[j];
        } else {
            for (long j = 0; j < n; j++) dst[j] = src[j] * inv;
        }
    }
}
