/* ops_row_avx512.c — AVX-512F versions of the softmax row kernels (ops_row.h);
 * tails use masked loads and stores, so every length runs in vector code. */
#include <immintrin.h>
#include <math.h>

#include "ops_row.h"

#define AVX512 __attribute__((target("avx512f,fma")))

AVX512 static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* Same Cephes polynomial as ops_row_exp1 in ops_row.c, 16 lanes. */
AVX512 static inline __m512 exp16(__m512 x) {
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(OPS_EXP_LO), _CMP_GE_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(OPS_EXP_LO)), _mm512_set1_ps(OPS_EXP_HI));
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(OPS_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(OPS_EXP_C1), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(OPS_EXP_C2), r);
    __m512 y = _mm512_set1_ps(OPS_EXP_P0);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(OPS_EXP_P1));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(OPS_EXP_P2));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(OPS_EXP_P3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(OPS_EXP_P4));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(OPS_EXP_P5));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(live, y, _mm512_castsi512_ps(e));
}

AVX512 float ops_row_add_max_avx512(float *s, const float *bias, int64_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = tail_mask(n - j);
        __m512 x = _mm512_maskz_loadu_ps(k, s + j);
        if (bias) {
            x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, bias + j));
            _mm512_mask_storeu_ps(s + j, k, x);
        }
        m = _mm512_mask_max_ps(m, k, m, x);
    }
    return _mm512_reduce_max_ps(m);
}

AVX512 float ops_row_exp_sum_avx512(float *s, int64_t n, float mx) {
    __m512 acc = _mm512_setzero_ps(), vm = _mm512_set1_ps(mx);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = tail_mask(n - j);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), vm));
        _mm512_mask_storeu_ps(s + j, k, e);
        acc = _mm512_mask_add_ps(acc, k, acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 void ops_row_scale_avx512(float *s, int64_t n, float c) {
    __m512 vc = _mm512_set1_ps(c);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = tail_mask(n - j);
        _mm512_mask_storeu_ps(s + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, s + j), vc));
    }
}

AVX512 float ops_row_dot_avx512(const float *a, const float *b, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = tail_mask(n - j);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + j), _mm512_maskz_loadu_ps(k, b + j), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 void ops_row_softmax_bwd_avx512(float *d, const float *p, int64_t n, float dot, float c) {
    __m512 vd = _mm512_set1_ps(dot), vc = _mm512_set1_ps(c);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = tail_mask(n - j);
        __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, d + j), vd);
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(vc, _mm512_maskz_loadu_ps(k, p + j)), x);
        _mm512_mask_storeu_ps(d + j, k, y);
    }
}

AVX512 void ops_row_exp_avx512(float *y, const float *x, int64_t n) {
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = tail_mask(n - j);
        _mm512_mask_storeu_ps(y + j, k, exp16(_mm512_maskz_loadu_ps(k, x + j)));
    }
}

AVX512 void ops_row_sigmoid_avx512(float *s, const float *x, float k, int64_t n) {
    __m512 vk = _mm512_set1_ps(k), one = _mm512_set1_ps(1.0f);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = tail_mask(n - j);
        __m512 kx = _mm512_mul_ps(vk, _mm512_maskz_loadu_ps(m, x + j));
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(kx)));
        __mmask16 pos = _mm512_cmp_ps_mask(kx, _mm512_setzero_ps(), _CMP_GE_OQ);
        __m512 num = _mm512_mask_blend_ps(pos, e, one);
        _mm512_mask_storeu_ps(s + j, m, _mm512_div_ps(num, _mm512_add_ps(one, e)));
    }
}
