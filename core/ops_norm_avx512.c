/* ops_norm_avx512.c — AVX-512F row kernels for LayerNorm, RMSNorm and the sigmoid
 * (ops_row.h). Reductions convert each 16-float vector into two 8-double vectors and
 * accumulate in double, as the portable code in ops.c does; element-wise parts run in
 * f32 with masked tails. */
#include <immintrin.h>
#include <math.h>

#include "ops_row.h"

#define AVX512 __attribute__((target("avx512f,fma")))

AVX512 static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* Adds the 16 floats of v, widened to double, into the two accumulators. */
AVX512 static inline void acc_d(__m512d *a0, __m512d *a1, __m512 v) {
    *a0 = _mm512_add_pd(*a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *a1 = _mm512_add_pd(*a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

/* Sum of (x - c)^2 over the row, with products formed in double. */
AVX512 static double sum_sq_centered(const float *x, int64_t C, double c) {
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, vc = _mm512_set1_pd(c);
    for (int64_t j = 0; j < C; j += 16) {
        __mmask16 k = tail_mask(C - j);
        __m512 v = _mm512_maskz_loadu_ps(k, x + j);
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        /* masked-off lanes hold 0 and must not contribute c^2 */
        lo = _mm512_maskz_sub_pd((__mmask8)(k & 0xFF), lo, vc);
        hi = _mm512_maskz_sub_pd((__mmask8)(k >> 8), hi, vc);
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

AVX512 void ops_ln_row_fwd_avx512(float *y, const float *x, const float *w, const float *b, int64_t C, float eps,
                                  float *mean, float *rstd) {
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    for (int64_t j = 0; j < C; j += 16) acc_d(&a0, &a1, _mm512_maskz_loadu_ps(tail_mask(C - j), x + j));
    double m = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1)) / (double)C;
    double r = 1.0 / sqrt(sum_sq_centered(x, C, m) / (double)C + (double)eps);
    __m512 vm = _mm512_set1_ps((float)m), vr = _mm512_set1_ps((float)r);
    for (int64_t j = 0; j < C; j += 16) {
        __mmask16 k = tail_mask(C - j);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm), vr);
        __m512 o = _mm512_mul_ps(xh, _mm512_maskz_loadu_ps(k, w + j));
        if (b) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(k, b + j));
        _mm512_mask_storeu_ps(y + j, k, o);
    }
    *mean = (float)m;
    *rstd = (float)r;
}

AVX512 void ops_ln_row_bwd_avx512(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                  float mean, float rstd, int64_t C) {
    __m512 vm = _mm512_set1_ps(mean), vr = _mm512_set1_ps(rstd);
    if (dx) {
        __m512d s0 = _mm512_setzero_pd(), s1 = s0, t0 = s0, t1 = s0;
        for (int64_t j = 0; j < C; j += 16) {
            __mmask16 k = tail_mask(C - j);
            __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + j), _mm512_maskz_loadu_ps(k, w + j));
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm), vr);
            acc_d(&s0, &s1, g);
            acc_d(&t0, &t1, _mm512_mul_ps(g, xh));
        }
        float sg = (float)(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / (double)C);
        float sgx = (float)(_mm512_reduce_add_pd(_mm512_add_pd(t0, t1)) / (double)C);
        __m512 vsg = _mm512_set1_ps(sg), vsgx = _mm512_set1_ps(sgx);
        for (int64_t j = 0; j < C; j += 16) {
            __mmask16 k = tail_mask(C - j);
            __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + j), _mm512_maskz_loadu_ps(k, w + j));
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm), vr);
            __m512 t = _mm512_fnmadd_ps(xh, vsgx, _mm512_sub_ps(g, vsg));
            _mm512_mask_storeu_ps(dx + j, k, _mm512_fmadd_ps(vr, t, _mm512_maskz_loadu_ps(k, dx + j)));
        }
    }
    if (dw || db)
        for (int64_t j = 0; j < C; j += 16) {
            __mmask16 k = tail_mask(C - j);
            __m512 d = _mm512_maskz_loadu_ps(k, dy + j);
            if (dw) {
                __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm), vr);
                _mm512_mask_storeu_ps(dw + j, k, _mm512_fmadd_ps(d, xh, _mm512_maskz_loadu_ps(k, dw + j)));
            }
            if (db) _mm512_mask_storeu_ps(db + j, k, _mm512_add_ps(d, _mm512_maskz_loadu_ps(k, db + j)));
        }
}

AVX512 void ops_rms_row_fwd_avx512(float *y, const float *x, const float *w, int64_t C, float eps, float *rstd) {
    double r = 1.0 / sqrt(sum_sq_centered(x, C, 0.0) / (double)C + (double)eps);
    __m512 vr = _mm512_set1_ps((float)r);
    for (int64_t j = 0; j < C; j += 16) {
        __mmask16 k = tail_mask(C - j);
        __m512 o = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), vr), _mm512_maskz_loadu_ps(k, w + j));
        _mm512_mask_storeu_ps(y + j, k, o);
    }
    *rstd = (float)r;
}

AVX512 void ops_rms_row_bwd_avx512(float *dx, float *dw, const float *dy, const float *x, const float *w, float rstd,
                                   int64_t C) {
    __m512 vr = _mm512_set1_ps(rstd);
    if (dx) {
        __m512d s0 = _mm512_setzero_pd(), s1 = s0;
        for (int64_t j = 0; j < C; j += 16) {
            __mmask16 k = tail_mask(C - j);
            __m512 p = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + j), _mm512_maskz_loadu_ps(k, w + j)),
                                     _mm512_maskz_loadu_ps(k, x + j));
            acc_d(&s0, &s1, p);
        }
        double r = rstd;
        float kk = (float)(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) * r * r * r / (double)C);
        __m512 vk = _mm512_set1_ps(kk);
        for (int64_t j = 0; j < C; j += 16) {
            __mmask16 k = tail_mask(C - j);
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(vr, _mm512_maskz_loadu_ps(k, w + j)),
                                     _mm512_maskz_loadu_ps(k, dy + j));
            t = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(k, x + j), vk, t);
            _mm512_mask_storeu_ps(dx + j, k, _mm512_add_ps(t, _mm512_maskz_loadu_ps(k, dx + j)));
        }
    }
    if (dw)
        for (int64_t j = 0; j < C; j += 16) {
            __mmask16 k = tail_mask(C - j);
            __m512 t = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + j), _mm512_maskz_loadu_ps(k, x + j)), vr);
            _mm512_mask_storeu_ps(dw + j, k, _mm512_add_ps(t, _mm512_maskz_loadu_ps(k, dw + j)));
        }
}
