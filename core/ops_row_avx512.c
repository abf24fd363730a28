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

/* Sums each of 16 vectors: lane t of the result is the sum of v[t]'s lanes. Halves
 * are folded pairwise (256-bit, then 128-bit, then within 128-bit lanes), so every
 * sum is a tree of adds; the last step leaves key 4m + c in lane 4c + m. */
AVX512 static inline __m512 hsum16x16(const __m512 v[16]) {
    __m512 w[8], z[4], u[2];
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 4; i++)
        z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int i = 0; i < 2; i++)
        u[i] = _mm512_add_ps(_mm512_unpacklo_ps(z[2 * i], z[2 * i + 1]), _mm512_unpackhi_ps(z[2 * i], z[2 * i + 1]));
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, r);
}

/* One key's dot over 64 floats from four partial sums, so the FMA chains are short. */
AVX512 static inline __m512 dot64(const __m512 *q, const float *k) {
    __m512 a = _mm512_mul_ps(q[0], _mm512_loadu_ps(k)), b = _mm512_mul_ps(q[1], _mm512_loadu_ps(k + 16));
    a = _mm512_fmadd_ps(q[2], _mm512_loadu_ps(k + 32), a);
    b = _mm512_fmadd_ps(q[3], _mm512_loadu_ps(k + 48), b);
    return _mm512_add_ps(a, b);
}

/* Cache rows are n_kv_head * hd floats apart: for LLaMA-7B's 32 heads of 128 that
 * is 16 KB, a new page every row, which the hardware prefetchers do not follow, so
 * each row came in at DRAM latency (attention ran at about half the weights'
 * bandwidth). The row ROW_PF ahead is fetched explicitly. */
#define ROW_PF 8
AVX512 static inline void prefetch_row(const float *r, int hd) {
    for (int i = 0; i < hd; i += 16) _mm_prefetch((const char *)(r + i), _MM_HINT_T0);
}

/* 16 keys per step: each key's products stay in a vector over the head dimension,
 * and one tree reduction turns the 16 vectors into 16 scores. Heads of 64 and 128
 * (LLaMA's and CLIP's) keep q in registers; other widths take the masked loop. */
AVX512 void ops_row_qk_avx512(float *s, const float *q, const float *k, int64_t ld, int64_t n, int hd, float c) {
    const __m512 vc = _mm512_set1_ps(c);
    __m512 qv[8];
    if (hd == 64 || hd == 128)
        for (int i = 0; i < hd / 16; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        const int64_t nk = n - j0 < 16 ? n - j0 : 16;
        __m512 acc[16];
        for (int t = (int)nk; t < 16; t++) acc[t] = _mm512_setzero_ps();
        for (int t = 0; t < nk; t++) {
            const float *kt = k + (j0 + t) * ld;
            if (j0 + t + ROW_PF < n) prefetch_row(kt + ROW_PF * ld, hd);
            if (hd == 64) {
                acc[t] = dot64(qv, kt);
            } else if (hd == 128) {
                acc[t] = _mm512_add_ps(dot64(qv, kt), dot64(qv + 4, kt + 64));
            } else {
                __m512 a = _mm512_setzero_ps();
                for (int d = 0; d < hd; d += 16) {
                    const __mmask16 m = tail_mask(hd - d);
                    a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), _mm512_maskz_loadu_ps(m, kt + d), a);
                }
                acc[t] = a;
            }
        }
        _mm512_mask_storeu_ps(s + j0, tail_mask(nk), _mm512_mul_ps(vc, hsum16x16(acc)));
    }
}

/* 64 output floats per pass over the keys, two keys per step into separate
 * accumulators (eight independent FMA chains). The accumulators are named variables,
 * not an array: compilers keep an indexed array in memory, and the loop then runs at
 * the speed of store-to-load forwarding instead of the FMAs. */
/* hd = 128 in one pass over the rows (eight accumulators per row, two rows per
 * step): the cache rows sit a page apart, so a second pass for the upper half
 * would walk them all again. */
AVX512 static void pv128(float *o, const float *p, const float *v, int64_t ld, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    const float *r = v;
    int64_t j = 0;
    for (; j + 2 <= n; j += 2, r += 2 * ld) {
        if (j + ROW_PF + 1 < n) {
            prefetch_row(r + ROW_PF * ld, 128);
            prefetch_row(r + (ROW_PF + 1) * ld, 128);
        }
        const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
        const float *s = r + ld;
        a0 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r), a0), a1 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 16), a1);
        a2 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 32), a2), a3 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 48), a3);
        a4 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 64), a4), a5 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 80), a5);
        a6 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 96), a6), a7 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 112), a7);
        b0 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s), b0), b1 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s + 16), b1);
        b2 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s + 32), b2), b3 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s + 48), b3);
        b4 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s + 64), b4), b5 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s + 80), b5);
        b6 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s + 96), b6), b7 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(s + 112), b7);
    }
    if (j < n) {
        const __m512 p0 = _mm512_set1_ps(p[j]);
        a0 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r), a0), a1 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 16), a1);
        a2 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 32), a2), a3 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 48), a3);
        a4 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 64), a4), a5 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 80), a5);
        a6 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 96), a6), a7 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r + 112), a7);
    }
    _mm512_storeu_ps(o, _mm512_add_ps(a0, b0)), _mm512_storeu_ps(o + 16, _mm512_add_ps(a1, b1));
    _mm512_storeu_ps(o + 32, _mm512_add_ps(a2, b2)), _mm512_storeu_ps(o + 48, _mm512_add_ps(a3, b3));
    _mm512_storeu_ps(o + 64, _mm512_add_ps(a4, b4)), _mm512_storeu_ps(o + 80, _mm512_add_ps(a5, b5));
    _mm512_storeu_ps(o + 96, _mm512_add_ps(a6, b6)), _mm512_storeu_ps(o + 112, _mm512_add_ps(a7, b7));
}

AVX512 void ops_row_pv_avx512(float *o, const float *p, const float *v, int64_t ld, int64_t n, int hd) {
    if (hd == 128) {
        pv128(o, p, v, ld, n);
        return;
    }
    for (int d0 = 0; d0 < hd; d0 += 64) {
        const int w = hd - d0;
        const __mmask16 m0 = tail_mask(w), m1 = w > 16 ? tail_mask(w - 16) : 0, m2 = w > 32 ? tail_mask(w - 32) : 0,
                        m3 = w > 48 ? tail_mask(w - 48) : 0;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        const float *r = v + d0;
        int64_t j = 0;
        for (; j + 2 <= n; j += 2, r += 2 * ld) {
            if (d0 == 0 && j + ROW_PF + 1 < n) {
                prefetch_row(r + ROW_PF * ld, hd);
                prefetch_row(r + (ROW_PF + 1) * ld, hd);
            }
            const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
            a0 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m0, r), a0);
            a1 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m1, r + 16), a1);
            a2 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m2, r + 32), a2);
            a3 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m3, r + 48), a3);
            b0 = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(m0, r + ld), b0);
            b1 = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(m1, r + ld + 16), b1);
            b2 = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(m2, r + ld + 32), b2);
            b3 = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(m3, r + ld + 48), b3);
        }
        if (j < n) {
            const __m512 p0 = _mm512_set1_ps(p[j]);
            a0 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m0, r), a0);
            a1 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m1, r + 16), a1);
            a2 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m2, r + 32), a2);
            a3 = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m3, r + 48), a3);
        }
        _mm512_mask_storeu_ps(o + d0, m0, _mm512_add_ps(a0, b0));
        _mm512_mask_storeu_ps(o + d0 + 16, m1, _mm512_add_ps(a1, b1));
        _mm512_mask_storeu_ps(o + d0 + 32, m2, _mm512_add_ps(a2, b2));
        _mm512_mask_storeu_ps(o + d0 + 48, m3, _mm512_add_ps(a3, b3));
    }
}

/* Four heads of 64 against one key/value head: each cache row is loaded once into
 * four registers and used by all four queries (sixteen query registers). */
AVX512 void ops_row_qk4_avx512(float *s, int64_t ss, const float *q, const float *k, int64_t ld, int64_t n, float c) {
    const __m512 vc = _mm512_set1_ps(c);
    __m512 qv[16];
    for (int i = 0; i < 16; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        const int64_t nk = n - j0 < 16 ? n - j0 : 16;
        __m512 acc[4][16];
        for (int t = (int)nk; t < 16; t++) acc[0][t] = acc[1][t] = acc[2][t] = acc[3][t] = _mm512_setzero_ps();
        for (int t = 0; t < nk; t++) {
            const float *kt = k + (j0 + t) * ld;
            if (j0 + t + ROW_PF < n) prefetch_row(kt + ROW_PF * ld, 64);
            const __m512 k0 = _mm512_loadu_ps(kt), k1 = _mm512_loadu_ps(kt + 16), k2 = _mm512_loadu_ps(kt + 32),
                         k3 = _mm512_loadu_ps(kt + 48);
            for (int h = 0; h < 4; h++) {
                const __m512 a = _mm512_fmadd_ps(qv[4 * h + 2], k2, _mm512_mul_ps(qv[4 * h], k0));
                const __m512 b = _mm512_fmadd_ps(qv[4 * h + 3], k3, _mm512_mul_ps(qv[4 * h + 1], k1));
                acc[h][t] = _mm512_add_ps(a, b);
            }
        }
        const __mmask16 m = tail_mask(nk);
        for (int h = 0; h < 4; h++) _mm512_mask_storeu_ps(s + h * ss + j0, m, _mm512_mul_ps(vc, hsum16x16(acc[h])));
    }
}

/* Four heads of 64: sixteen accumulators (named, so they stay in registers), each
 * value row loaded once. */
AVX512 void ops_row_pv4_avx512(float *o, const float *p, int64_t ss, const float *v, int64_t ld, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    __m512 c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
    for (int64_t j = 0; j < n; j++) {
        const float *r = v + j * ld;
        if (j + ROW_PF < n) prefetch_row(r + ROW_PF * ld, 64);
        const __m512 v0 = _mm512_loadu_ps(r), v1 = _mm512_loadu_ps(r + 16), v2 = _mm512_loadu_ps(r + 32),
                     v3 = _mm512_loadu_ps(r + 48);
        const __m512 pa = _mm512_set1_ps(p[j]), pb = _mm512_set1_ps(p[ss + j]), pc = _mm512_set1_ps(p[2 * ss + j]),
                     pd = _mm512_set1_ps(p[3 * ss + j]);
        a0 = _mm512_fmadd_ps(pa, v0, a0), a1 = _mm512_fmadd_ps(pa, v1, a1);
        a2 = _mm512_fmadd_ps(pa, v2, a2), a3 = _mm512_fmadd_ps(pa, v3, a3);
        b0 = _mm512_fmadd_ps(pb, v0, b0), b1 = _mm512_fmadd_ps(pb, v1, b1);
        b2 = _mm512_fmadd_ps(pb, v2, b2), b3 = _mm512_fmadd_ps(pb, v3, b3);
        c0 = _mm512_fmadd_ps(pc, v0, c0), c1 = _mm512_fmadd_ps(pc, v1, c1);
        c2 = _mm512_fmadd_ps(pc, v2, c2), c3 = _mm512_fmadd_ps(pc, v3, c3);
        d0 = _mm512_fmadd_ps(pd, v0, d0), d1 = _mm512_fmadd_ps(pd, v1, d1);
        d2 = _mm512_fmadd_ps(pd, v2, d2), d3 = _mm512_fmadd_ps(pd, v3, d3);
    }
    float *oa = o, *ob = o + 64, *oc = o + 128, *od = o + 192;
    _mm512_storeu_ps(oa, a0), _mm512_storeu_ps(oa + 16, a1), _mm512_storeu_ps(oa + 32, a2), _mm512_storeu_ps(oa + 48, a3);
    _mm512_storeu_ps(ob, b0), _mm512_storeu_ps(ob + 16, b1), _mm512_storeu_ps(ob + 32, b2), _mm512_storeu_ps(ob + 48, b3);
    _mm512_storeu_ps(oc, c0), _mm512_storeu_ps(oc + 16, c1), _mm512_storeu_ps(oc + 32, c2), _mm512_storeu_ps(oc + 48, c3);
    _mm512_storeu_ps(od, d0), _mm512_storeu_ps(od + 16, d1), _mm512_storeu_ps(od + 32, d2), _mm512_storeu_ps(od + 48, d3);
}
