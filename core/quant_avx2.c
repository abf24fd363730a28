/* quant_avx2.c — AVX2+FMA+F16C kernels, selected at run time (cpu.h). Each function
 * carries its own target attribute so the rest of the build stays baseline x86-64.
 *
 * to_float: the same per-element operations as quant_ref.c (int -> float, one mul,
 * one sub/add; no FMA), hence bit-identical. dot: w.x = sum over sub-blocks of
 * d_s * sum(q*x) - m_s * sum(x), accumulated with FMA in 8 lanes. */
#include <immintrin.h>
#include "quant_impl.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 bytes at p (as int32 lanes) -> floats */
AVX2 static inline __m256 u8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
AVX2 static inline __m256 i8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

AVX2 float qt_avx2_dot_f32(const void *row, const float *x, int64_t n) {
    const float *w = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

AVX2 float qt_avx2_dot_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
#define H8(off) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + (off))))
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(H8(0), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(H8(8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(H8(16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(H8(24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(H8(0), _mm256_loadu_ps(x + i), a0);
#undef H8
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += qt_f16_to_f32(w[i]) * x[i];
    return s;
}

/* bf16 is the top half of an f32: widen to 32 bits and shift left 16 */
AVX2 static inline __m256 bf16x8_ps(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

AVX2 float qt_avx2_dot_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(bf16x8_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(bf16x8_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(bf16x8_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(bf16x8_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(bf16x8_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += qt_bf16_to_f32(w[i]) * x[i];
    return s;
}

AVX2 void qt_avx2_to_float_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, bf16x8_ps(h + i));
    for (; i < n; i++) dst[i] = qt_bf16_to_f32(h[i]);
}

AVX2 float qt_avx2_dot_q8_0(const void *row, const float *x, int64_t n) {
    const block_q8_0 *b = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const __m128i lo = _mm_loadu_si128((const __m128i *)b[i].qs);
        const __m128i hi = _mm_loadu_si128((const __m128i *)(b[i].qs + 16));
        __m256 s = _mm256_mul_ps(i8x8_ps(lo), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(i8x8_ps(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(i8x8_ps(hi), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(i8x8_ps(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d)), s, acc);
    }
    return hsum8(acc);
}

AVX2 float qt_avx2_dot_q4_0(const void *row, const float *x, int64_t n) {
    const block_q4_0 *b = row;
    const __m128i m4 = _mm_set1_epi8(0x0F), off = _mm_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        const __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), off);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), off);
        __m256 s = _mm256_mul_ps(i8x8_ps(lo), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(i8x8_ps(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(i8x8_ps(hi), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(i8x8_ps(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d)), s, acc);
    }
    return hsum8(acc);
}

/* sum over 32 elements of q*x and of x, q = 32 unsigned bytes in a 256-bit vector */
AVX2 static inline void dot32_u8(__m256i q, const float *x, __m256 *sq, __m256 *sx) {
    const __m128i q0 = _mm256_castsi256_si128(q), q1 = _mm256_extracti128_si256(q, 1);
    const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
    const __m256 x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
    __m256 s = _mm256_mul_ps(u8x8_ps(q0), x0);
    s = _mm256_fmadd_ps(u8x8_ps(_mm_srli_si128(q0, 8)), x1, s);
    s = _mm256_fmadd_ps(u8x8_ps(q1), x2, s);
    *sq = _mm256_fmadd_ps(u8x8_ps(_mm_srli_si128(q1, 8)), x3, s);
    *sx = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
}

AVX2 float qt_avx2_dot_q4_K(const void *row, const float *x, int64_t n) {
    const block_q4_K *b = row;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(b[i].d), min = _cvtsh_ss(b[i].dmin);
        for (int j = 0; j < 8; j += 2, x += 64) {
            uint8_t sc, m;
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 16 * j));
            __m256 sq, sx;
            qk_scale_min_k4(j, b[i].scales, &sc, &m);
            dot32_u8(_mm256_and_si256(q, m4), x, &sq, &sx);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc), sq, acc);
            acc = _mm256_fnmadd_ps(_mm256_set1_ps(min * (float)m), sx, acc);
            qk_scale_min_k4(j + 1, b[i].scales, &sc, &m);
            dot32_u8(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), x + 32, &sq, &sx);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc), sq, acc);
            acc = _mm256_fnmadd_ps(_mm256_set1_ps(min * (float)m), sx, acc);
        }
    }
    return hsum8(acc);
}

/* Q6_K: the 6-bit values of one 128-half as 4 vectors of 32 signed bytes (q - 32),
 * element order l + 32r for r = 0..3 as in quant_ref.c. */
AVX2 static inline void q6k_unpack(const uint8_t *ql, const uint8_t *qh, __m256i out[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i off = _mm256_set1_epi8(32);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(h, m2), 4);
    const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4);
    const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4);
    const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4);
    out[0] = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l0, m4), h0), off);
    out[1] = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l1, m4), h1), off);
    out[2] = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2), off);
    out[3] = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3), off);
}

AVX2 float qt_avx2_dot_q6_K(const void *row, const float *x, int64_t n) {
    const block_q6_K *b = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(b[i].d);
        for (int half = 0; half < 2; half++) {
            __m256i q[4];
            q6k_unpack(b[i].ql + 64 * half, b[i].qh + 32 * half, q);
            const int8_t *sc = b[i].scales + 8 * half;
            const float *xh = x + 128 * half + 256 * i;
            for (int r = 0; r < 4; r++) {
                const __m128i g0 = _mm256_castsi256_si128(q[r]);
                const __m128i g1 = _mm256_extracti128_si256(q[r], 1);
                const float *xr = xh + 32 * r;
                __m256 s0 = _mm256_mul_ps(i8x8_ps(g0), _mm256_loadu_ps(xr));
                s0 = _mm256_fmadd_ps(i8x8_ps(_mm_srli_si128(g0, 8)), _mm256_loadu_ps(xr + 8), s0);
                __m256 s1 = _mm256_mul_ps(i8x8_ps(g1), _mm256_loadu_ps(xr + 16));
                s1 = _mm256_fmadd_ps(i8x8_ps(_mm_srli_si128(g1, 8)), _mm256_loadu_ps(xr + 24), s1);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * r]), s0, acc);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * r + 1]), s1, acc);
            }
        }
    }
    return hsum8(acc);
}

/* ---- bit-exact dequantization ---- */

AVX2 void qt_avx2_to_float_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) dst[i] = qt_f16_to_f32(h[i]);
}

AVX2 void qt_avx2_to_float_q8_0(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++, dst += QK8_0) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d));
        for (int j = 0; j < QK8_0; j += 8) {
            const __m128i v = _mm_loadl_epi64((const __m128i *)(b[i].qs + j));
            _mm256_storeu_ps(dst + j, _mm256_mul_ps(i8x8_ps(v), d));
        }
    }
}

AVX2 void qt_avx2_to_float_q4_0(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = src;
    const __m128i m4 = _mm_set1_epi8(0x0F), off = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / QK4_0; i++, dst += QK4_0) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d));
        const __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), off);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), off);
        _mm256_storeu_ps(dst, _mm256_mul_ps(i8x8_ps(lo), d));
        _mm256_storeu_ps(dst + 8, _mm256_mul_ps(i8x8_ps(_mm_srli_si128(lo, 8)), d));
        _mm256_storeu_ps(dst + 16, _mm256_mul_ps(i8x8_ps(hi), d));
        _mm256_storeu_ps(dst + 24, _mm256_mul_ps(i8x8_ps(_mm_srli_si128(hi, 8)), d));
    }
}

/* 32 unsigned bytes -> dst[0..32) = d * q - m */
AVX2 static inline void store32_u8(__m256i q, float d, float m, float *dst) {
    const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    const __m128i q0 = _mm256_castsi256_si128(q), q1 = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(dst, _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_ps(q0)), vm));
    _mm256_storeu_ps(dst + 8, _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_ps(_mm_srli_si128(q0, 8))), vm));
    _mm256_storeu_ps(dst + 16, _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_ps(q1)), vm));
    _mm256_storeu_ps(dst + 24, _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_ps(_mm_srli_si128(q1, 8))), vm));
}

AVX2 void qt_avx2_to_float_q4_K(const void *src, float *dst, int64_t n) {
    const block_q4_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(b[i].d), min = _cvtsh_ss(b[i].dmin);
        for (int j = 0; j < 8; j += 2, dst += 64) {
            uint8_t sc, m;
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 16 * j));
            qk_scale_min_k4(j, b[i].scales, &sc, &m);
            store32_u8(_mm256_and_si256(q, m4), d * (float)sc, min * (float)m, dst);
            qk_scale_min_k4(j + 1, b[i].scales, &sc, &m);
            store32_u8(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), d * (float)sc,
                       min * (float)m, dst + 32);
        }
    }
}

AVX2 void qt_avx2_to_float_q5_K(const void *src, float *dst, int64_t n) {
    const block_q5_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(b[i].d), min = _cvtsh_ss(b[i].dmin);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)b[i].qh);
        for (int j = 0; j < 8; j += 2, dst += 64) {
            uint8_t sc, m;
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 16 * j));
            const __m256i hl = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, j), one), 4);
            const __m256i hh = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, j + 1), one), 4);
            qk_scale_min_k4(j, b[i].scales, &sc, &m);
            store32_u8(_mm256_or_si256(_mm256_and_si256(q, m4), hl), d * (float)sc, min * (float)m, dst);
            qk_scale_min_k4(j + 1, b[i].scales, &sc, &m);
            store32_u8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hh), d * (float)sc,
                       min * (float)m, dst + 32);
        }
    }
}

AVX2 void qt_avx2_to_float_q6_K(const void *src, float *dst, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(b[i].d);
        for (int half = 0; half < 2; half++, dst += 128) {
            __m256i q[4];
            q6k_unpack(b[i].ql + 64 * half, b[i].qh + 32 * half, q);
            const int8_t *sc = b[i].scales + 8 * half;
            for (int r = 0; r < 4; r++) {
                const __m128i g0 = _mm256_castsi256_si128(q[r]);
                const __m128i g1 = _mm256_extracti128_si256(q[r], 1);
                /* (d * sc) * q, the reference's association */
                const __m256 s0 = _mm256_set1_ps(d * (float)sc[2 * r]);
                const __m256 s1 = _mm256_set1_ps(d * (float)sc[2 * r + 1]);
                float *o = dst + 32 * r;
                _mm256_storeu_ps(o, _mm256_mul_ps(s0, i8x8_ps(g0)));
                _mm256_storeu_ps(o + 8, _mm256_mul_ps(s0, i8x8_ps(_mm_srli_si128(g0, 8))));
                _mm256_storeu_ps(o + 16, _mm256_mul_ps(s1, i8x8_ps(g1)));
                _mm256_storeu_ps(o + 24, _mm256_mul_ps(s1, i8x8_ps(_mm_srli_si128(g1, 8))));
            }
        }
    }
}
