/* quant_avx512.c — AVX-512 (F/BW/VL) fused dequantize-dot kernels, selected at run
 * time (cpu.h); same scheme as quant_avx2.c in 16 lanes: per sub-block
 * d_s * sum(q*x) - m_s * sum(x). */
#include <immintrin.h>

#include "quant_impl.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

AVX512 static inline __m512 u8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }
AVX512 static inline __m512 i8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

AVX512 float qt_avx512_dot_f32(const void *row, const float *x, int64_t n) {
    const float *w = row;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, w + i), _mm512_maskz_loadu_ps(k, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

AVX512 float qt_avx512_dot_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
#define H16(off) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + (off))))
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(H16(0), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(H16(16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(H16(32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(H16(48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(H16(0), _mm512_loadu_ps(x + i), a0);
#undef H16
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, w + i));
        a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

AVX512 float qt_avx512_dot_q8_0(const void *row, const float *x, int64_t n) {
    const block_q8_0 *b = row;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const __m128i lo = _mm_loadu_si128((const __m128i *)b[i].qs);
        const __m128i hi = _mm_loadu_si128((const __m128i *)(b[i].qs + 16));
        __m512 s = _mm512_mul_ps(i8x16_ps(lo), _mm512_loadu_ps(x));
        s = _mm512_fmadd_ps(i8x16_ps(hi), _mm512_loadu_ps(x + 16), s);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(b[i].d)), s, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 float qt_avx512_dot_q4_0(const void *row, const float *x, int64_t n) {
    const block_q4_0 *b = row;
    const __m128i m4 = _mm_set1_epi8(0x0F), off = _mm_set1_epi8(8);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        const __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), off);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), off);
        __m512 s = _mm512_mul_ps(i8x16_ps(lo), _mm512_loadu_ps(x));
        s = _mm512_fmadd_ps(i8x16_ps(hi), _mm512_loadu_ps(x + 16), s);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(b[i].d)), s, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 float qt_avx512_dot_q4_K(const void *row, const float *x, int64_t n) {
    const block_q4_K *b = row;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(b[i].d), min = _cvtsh_ss(b[i].dmin);
        for (int j = 0; j < 8; j += 2, x += 64) {
            uint8_t sc0, m0, sc1, m1;
            qk_scale_min_k4(j, b[i].scales, &sc0, &m0);
            qk_scale_min_k4(j + 1, b[i].scales, &sc1, &m1);
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 16 * j));
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
            const __m512 x2 = _mm512_loadu_ps(x + 32), x3 = _mm512_loadu_ps(x + 48);
            __m512 s0 = _mm512_mul_ps(u8x16_ps(_mm256_castsi256_si128(lo)), x0);
            s0 = _mm512_fmadd_ps(u8x16_ps(_mm256_extracti128_si256(lo, 1)), x1, s0);
            __m512 s1 = _mm512_mul_ps(u8x16_ps(_mm256_castsi256_si128(hi)), x2);
            s1 = _mm512_fmadd_ps(u8x16_ps(_mm256_extracti128_si256(hi, 1)), x3, s1);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc0), s0, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc1), s1, acc1);
            acc0 = _mm512_fnmadd_ps(_mm512_set1_ps(min * (float)m0), _mm512_add_ps(x0, x1), acc0);
            acc1 = _mm512_fnmadd_ps(_mm512_set1_ps(min * (float)m1), _mm512_add_ps(x2, x3), acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

AVX512 float qt_avx512_dot_q6_K(const void *row, const float *x, int64_t n) {
    const block_q6_K *b = row;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i off = _mm256_set1_epi8(32);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(b[i].d);
        for (int half = 0; half < 2; half++, x += 128) {
            const uint8_t *ql = b[i].ql + 64 * half, *qh = b[i].qh + 32 * half;
            const int8_t *sc = b[i].scales + 8 * half;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            for (int r = 0; r < 4; r++) {
                const __m256i v = _mm256_sub_epi8(q[r], off);
                const __m512 s0 = _mm512_mul_ps(i8x16_ps(_mm256_castsi256_si128(v)), _mm512_loadu_ps(x + 32 * r));
                const __m512 s1 = _mm512_mul_ps(i8x16_ps(_mm256_extracti128_si256(v, 1)),
                                                _mm512_loadu_ps(x + 32 * r + 16));
                acc0 = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc[2 * r]), s0, acc0);
                acc1 = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc[2 * r + 1]), s1, acc1);
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* Vectors l = 0..3 at q (64 bytes apart, dword r: 4 bytes of row r), each xor'ed
 * with flip -> t[c] with row 4j + c's 16 bytes in 128-bit lane j. Inlined into
 * registers: an indexed array of vectors made the compiler spill every load. */
AVX512 static inline void q8x16_transpose4(const uint8_t *q, __m512i flip, __m512i t[4]) {
    const __m512i w0 = _mm512_xor_si512(_mm512_loadu_si512((const void *)q), flip);
    const __m512i w1 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(q + 64)), flip);
    const __m512i w2 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(q + 128)), flip);
    const __m512i w3 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(q + 192)), flip);
    const __m512i lo01 = _mm512_unpacklo_epi32(w0, w1), hi01 = _mm512_unpackhi_epi32(w0, w1);
    const __m512i lo23 = _mm512_unpacklo_epi32(w2, w3), hi23 = _mm512_unpackhi_epi32(w2, w3);
    t[0] = _mm512_unpacklo_epi64(lo01, lo23);
    t[1] = _mm512_unpackhi_epi64(lo01, lo23);
    t[2] = _mm512_unpacklo_epi64(hi01, hi23);
    t[3] = _mm512_unpackhi_epi64(hi01, hi23);
}

/* One row's 32 weights (bytes a, then b) times its scale *d. */
AVX512 static inline void q8x16_store_row(float *out, const float *d, __m128i a, __m128i b) {
    const __m512 dr = _mm512_set1_ps(*d);
    _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(a)), dr));
    _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), dr));
}

/* All 16 rows of a block_q8_0x16 group as floats (row r at dst + r ld). Per
 * 32-input block the 8 vectors of 16 dwords (dword r: 4 bytes of row r) are
 * transposed in two unpack stages, after which 128-bit lane j of X[c] holds row
 * 4j + c's first 16 bytes and of Y[c] its last 16. Same bits as Q8_0's to_float
 * (q * d, one rounding). */
AVX512 void qt_avx512_q8_0x16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k) {
    const block_q8_0x16 *o = group;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int64_t i = 0; i < k / 64; i++)
        for (int h = 0; h < 2; h++) {
            __m512i X[4], Y[4];
            q8x16_transpose4(o[i].qs[h][0], flip, X);
            q8x16_transpose4(o[i].qs[h][4], flip, Y);
            float d[16];
            _mm512_storeu_ps(d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o[i].d[h])));
            float *out = dst + 64 * i + 32 * h;
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                q8x16_store_row(out + c * ld, d + c, _mm512_castsi512_si128(X[c]), _mm512_castsi512_si128(Y[c]));
                q8x16_store_row(out + (4 + c) * ld, d + 4 + c, _mm512_extracti32x4_epi32(X[c], 1),
                                _mm512_extracti32x4_epi32(Y[c], 1));
                q8x16_store_row(out + (8 + c) * ld, d + 8 + c, _mm512_extracti32x4_epi32(X[c], 2),
                                _mm512_extracti32x4_epi32(Y[c], 2));
                q8x16_store_row(out + (12 + c) * ld, d + 12 + c, _mm512_extracti32x4_epi32(X[c], 3),
                                _mm512_extracti32x4_epi32(Y[c], 3));
            }
        }
}

/* One row's sub-block of Q4_K (16 bytes: weights e in the low nibble of byte e,
 * 16 + e in the high) as ggml computes it: (d * sc) * q - dmin * m. */
AVX512 static inline void q4kx16_store_row(float *out, float d1, float m1, __m128i q) {
    const __m512i v = _mm512_cvtepu8_epi32(q);
    const __m512 vd = _mm512_set1_ps(d1), vm = _mm512_set1_ps(m1);
    const __m512i m4 = _mm512_set1_epi32(0xF);
    _mm512_storeu_ps(out, _mm512_sub_ps(_mm512_mul_ps(vd, _mm512_cvtepi32_ps(_mm512_and_si512(v, m4))), vm));
    _mm512_storeu_ps(out + 16, _mm512_sub_ps(_mm512_mul_ps(vd, _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4))), vm));
}

/* All 16 rows of a block_q4_Kx16 group as floats (row r at dst + r ld), each
 * sub-block's 4 vectors transposed like Q8_0's; the same bits as Q4_K's to_float. */
AVX512 void qt_avx512_q4_Kx16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k) {
    const block_q4_Kx16 *o = group;
    const __m512i none = _mm512_setzero_si512();
    for (int64_t i = 0; i < k / QK_K; i++) {
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o[i].d));
        const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o[i].dmin));
        for (int j = 0; j < 8; j++) {
            uint8_t mn8[16];
            for (int r = 0; r < 16; r++) mn8[r] = o[i].mn[j / 4][r][j % 4];
            float d1[16], m1[16];
            _mm512_storeu_ps(d1, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                                     _mm_loadu_si128((const __m128i *)o[i].sc[j])))));
            _mm512_storeu_ps(m1, _mm512_mul_ps(dm, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                                      _mm_loadu_si128((const __m128i *)mn8)))));
            __m512i X[4];
            q8x16_transpose4(o[i].qs[j][0], none, X);
            float *out = dst + QK_K * i + 32 * j;
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                q4kx16_store_row(out + c * ld, d1[c], m1[c], _mm512_castsi512_si128(X[c]));
                q4kx16_store_row(out + (4 + c) * ld, d1[4 + c], m1[4 + c], _mm512_extracti32x4_epi32(X[c], 1));
                q4kx16_store_row(out + (8 + c) * ld, d1[8 + c], m1[8 + c], _mm512_extracti32x4_epi32(X[c], 2));
                q4kx16_store_row(out + (12 + c) * ld, d1[12 + c], m1[12 + c], _mm512_extracti32x4_epi32(X[c], 3));
            }
        }
    }
}
