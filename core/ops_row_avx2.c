/* ops_row_avx2.c — AVX2+FMA versions of the softmax row kernels (ops_row.h); the
 * last n % 8 elements run in scalar code with the same formulas. */
#include <immintrin.h>
#include <math.h>

#include "ops_row.h"

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum8(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

AVX2 static inline float hmax8(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* Same Cephes polynomial as ops_row_exp1 in ops_row.c, 8 lanes. */
AVX2 static inline __m256 exp8(__m256 x) {
    __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(OPS_EXP_LO), _CMP_GE_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(OPS_EXP_LO)), _mm256_set1_ps(OPS_EXP_HI));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(OPS_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(OPS_EXP_C1), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(OPS_EXP_C2), r);
    __m256 y = _mm256_set1_ps(OPS_EXP_P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(OPS_EXP_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(OPS_EXP_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(OPS_EXP_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(OPS_EXP_P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(OPS_EXP_P5));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(live, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

AVX2 float ops_row_add_max_avx2(float *s, const float *bias, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_loadu_ps(s + j);
        if (bias) {
            x = _mm256_add_ps(x, _mm256_loadu_ps(bias + j));
            _mm256_storeu_ps(s + j, x);
        }
        m = _mm256_max_ps(m, x);
    }
    float mx = hmax8(m);
    for (; j < n; j++) {
        if (bias) s[j] += bias[j];
        if (s[j] > mx) mx = s[j];
    }
    return mx;
}

AVX2 float ops_row_exp_sum_avx2(float *s, int64_t n, float mx) {
    __m256 acc = _mm256_setzero_ps(), vm = _mm256_set1_ps(mx);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    return hsum8(acc) + ops_row_exp_tail(s + j, n - j, mx);
}

AVX2 void ops_row_scale_avx2(float *s, int64_t n, float c) {
    __m256 vc = _mm256_set1_ps(c);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), vc));
    for (; j < n; j++) s[j] *= c;
}

AVX2 float ops_row_dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc);
    float s = hsum8(acc);
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

AVX2 void ops_row_softmax_bwd_avx2(float *d, const float *p, int64_t n, float dot, float c) {
    __m256 vd = _mm256_set1_ps(dot), vc = _mm256_set1_ps(c);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_sub_ps(_mm256_loadu_ps(d + j), vd);
        _mm256_storeu_ps(d + j, _mm256_mul_ps(_mm256_mul_ps(vc, _mm256_loadu_ps(p + j)), x));
    }
    for (; j < n; j++) d[j] = c * p[j] * (d[j] - dot);
}

AVX2 void ops_row_exp_avx2(float *y, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, exp8(_mm256_loadu_ps(x + j)));
    for (; j < n; j++) y[j] = ops_row_exp1(x[j]);
}

AVX2 void ops_row_sigmoid_avx2(float *s, const float *x, float k, int64_t n) {
    __m256 vk = _mm256_set1_ps(k), one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 kx = _mm256_mul_ps(vk, _mm256_loadu_ps(x + j));
        __m256 e = exp8(_mm256_or_ps(kx, sign)); /* -|kx| */
        __m256 pos = _mm256_cmp_ps(kx, _mm256_setzero_ps(), _CMP_GE_OQ);
        __m256 num = _mm256_blendv_ps(e, one, pos);
        _mm256_storeu_ps(s + j, _mm256_div_ps(num, _mm256_add_ps(one, e)));
    }
    for (; j < n; j++) {
        float kx = k * x[j];
        float e = ops_row_exp1(-fabsf(kx));
        s[j] = (kx >= 0.0f ? 1.0f : e) / (1.0f + e);
    }
}
