/* quant_int_avx2.c — AVX2 integer dots of the decode path: weights (unsigned or
 * sign-folded bytes) times 8-bit activations with vpmaddubsw (u8 x s8 -> pairs of
 * int16, no overflow for these ranges: at most 2*128*127) and vpmaddwd (-> int32,
 * optionally weighted by the sub-block scales), as in ggml's AVX2 vec_dot kernels.
 * Also used on AVX-512 CPUs. */
#include <immintrin.h>

#include "quant_impl.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Activation block quantization (quant_act.c's quantize_block, same results: the
 * product x * (127/amax) is rounded to nearest even by vcvtps2dq as by lrintf).
 * len is a multiple of 32. */
AVX2 void qt_avx2_quantize_block(const float *x, int len, float *d_out, int8_t *qs) {
    const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
    __m256 vmax = zero, probe = zero;
    for (int j = 0; j < len; j += 8) {
        const __m256 v = _mm256_loadu_ps(x + j);
        vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, v));
        probe = _mm256_add_ps(probe, _mm256_mul_ps(v, zero)); /* NaN iff a NaN or inf */
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (hsum8(probe) != 0.0f) {
        for (int j = 0; j < len; j++) qs[j] = 0;
        *d_out = __builtin_nanf("");
        return;
    }
    const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int j = 0; j < len; j += 32) {
        const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), id));
        const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), id));
        const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 16), id));
        const __m256i e = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 24), id));
        /* the packs interleave 128-bit lanes; the permute restores element order */
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, e));
        _mm256_storeu_si256((__m256i *)(qs + j), _mm256_permutevar8x32_epi32(p, order));
    }
    *d_out = amax / 127.0f;
}

/* int32 x8 partial sums of one Q8_0 block: |w| times x with w's sign moved onto x
 * keeps vpmaddubsw's first operand unsigned */
AVX2 static inline __m256i q8_0_block(const block_q8_0 *b, const act_q8_32 *a) {
    const __m256i w = _mm256_loadu_si256((const __m256i *)b->qs);
    const __m256i x = _mm256_loadu_si256((const __m256i *)a->qs);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
}

/* Four blocks at a time: their 8-lane partial sums are reduced into one 4-lane
 * vector (block j in lane j) so the per-block scales d_w * d_x are applied with one
 * vector multiply instead of four scalar conversions and broadcasts. */
AVX2 float qt_avx2_vdot_q8_0(const void *w, const void *xq, int64_t n) {
    const block_q8_0 *b = w;
    const act_q8_32 *a = xq;
    const int64_t nb = n / 32;
    __m128 acc = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const __m256i p0 = q8_0_block(&b[i], &a[i]), p1 = q8_0_block(&b[i + 1], &a[i + 1]);
        const __m256i p2 = q8_0_block(&b[i + 2], &a[i + 2]), p3 = q8_0_block(&b[i + 3], &a[i + 3]);
        /* hadd twice leaves, per 128-bit half, lane j = half of block j's sum */
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
        const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        __m128i dw = _mm_cvtsi32_si128(b[i].d);
        dw = _mm_insert_epi16(dw, b[i + 1].d, 1);
        dw = _mm_insert_epi16(dw, b[i + 2].d, 2);
        dw = _mm_insert_epi16(dw, b[i + 3].d, 3);
        const __m128 dx = _mm_set_ps(a[i + 3].d, a[i + 2].d, a[i + 1].d, a[i].d);
        acc = _mm_fmadd_ps(_mm_mul_ps(_mm_cvtph_ps(dw), dx), _mm_cvtepi32_ps(sums), acc);
    }
    acc = _mm_add_ps(acc, _mm_movehl_ps(acc, acc));
    acc = _mm_add_ss(acc, _mm_movehdup_ps(acc));
    float s = _mm_cvtss_f32(acc);
    for (; i < nb; i++) {
        const __m256i p = q8_0_block(&b[i], &a[i]);
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
        s += _cvtsh_ss(b[i].d) * a[i].d * (float)_mm_cvtsi128_si32(t);
    }
    return s;
}

/* one Q4_0 block: sum (q - 8) * x as 8 int32 lanes; the -8 * sum(x) term goes
 * into lane 0 so everything stays in one vector */
AVX2 static inline __m256i q4_0_block(const block_q4_0 *b, const act_q8_32 *a) {
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F);
    const __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    /* low nibbles are elements 0..15, high nibbles 16..31 */
    const __m256i qq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
    const __m256i x = _mm256_loadu_si256((const __m256i *)a->qs);
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(qq, x), ones);
    return _mm256_sub_epi32(p, _mm256_castsi128_si256(_mm_cvtsi32_si128(8 * a->sum)));
}

AVX2 float qt_avx2_vdot_q4_0(const void *w, const void *xq, int64_t n) {
    const block_q4_0 *b = w;
    const act_q8_32 *a = xq;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 2 <= n / 32; i += 2) {
        const __m256i p0 = q4_0_block(&b[i], &a[i]), p1 = q4_0_block(&b[i + 1], &a[i + 1]);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a[i].d), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i + 1].d) * a[i + 1].d), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < n / 32; i++)
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a[i].d), _mm256_cvtepi32_ps(q4_0_block(&b[i], &a[i])), acc0);
    return hsum8(_mm256_add_ps(acc0, acc1));
}

AVX2 float qt_avx2_vdot_q4_K(const void *w, const void *xq, int64_t n) {
    const block_q4_K *b = w;
    const act_q8_K *a = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], m[8];
        int32_t msum = 0;
        for (int j = 0; j < 8; j++) {
            qk_scale_min_k4(j, b[i].scales, &sc[j], &m[j]);
            msum += m[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i xl = _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c));
            const __m256i xh = _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c + 32));
            const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_set1_epi16(sc[2 * c]));
            const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xh), _mm256_set1_epi16(sc[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(pl, ph));
        }
        const float dx = a[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * dx), _mm256_cvtepi32_ps(isum), acc);
        corr += _cvtsh_ss(b[i].dmin) * dx * (float)msum;
    }
    return hsum8(acc) - corr;
}

/* 32 bits -> 32 bytes, 0xFF where bit e of qh is set (byte e takes qh's byte e/8
 * and tests bit e%8) */
AVX2 static inline __m256i bits_to_bytes(uint32_t qh) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                          3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* the 32 quants of a 4-bit block in element order (low nibbles first) */
AVX2 static inline __m256i nibbles32(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

AVX2 static inline __m256i dot32_u8(__m256i q, const int8_t *x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)x)), _mm256_set1_epi16(1));
}

AVX2 static inline uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Q4_1 / Q5_1: x = d*q + m -> d*dx * sum q*qx + m*dx * sum qx */
AVX2 float qt_avx2_vdot_q4_1(const void *w, const void *xq, int64_t n) {
    const block_q4_1 *b = w;
    const act_q8_32 *a = xq;
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i p = dot32_u8(nibbles32(b[i].qs), a[i].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a[i].d), _mm256_cvtepi32_ps(p), acc);
        corr += _cvtsh_ss(b[i].m) * a[i].d * (float)a[i].sum;
    }
    return hsum8(acc) + corr;
}

AVX2 float qt_avx2_vdot_q5_1(const void *w, const void *xq, int64_t n) {
    const block_q5_1 *b = w;
    const act_q8_32 *a = xq;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i q = _mm256_or_si256(nibbles32(b[i].qs), _mm256_and_si256(bits_to_bytes(load_u32(b[i].qh)), b4));
        const __m256i p = dot32_u8(q, a[i].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a[i].d), _mm256_cvtepi32_ps(p), acc);
        corr += _cvtsh_ss(b[i].m) * a[i].d * (float)a[i].sum;
    }
    return hsum8(acc) + corr;
}

/* Q5_0: q5 - 16, the offset term folded into lane 0 as for Q4_0 */
AVX2 float qt_avx2_vdot_q5_0(const void *w, const void *xq, int64_t n) {
    const block_q5_0 *b = w;
    const act_q8_32 *a = xq;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i q = _mm256_or_si256(nibbles32(b[i].qs), _mm256_and_si256(bits_to_bytes(load_u32(b[i].qh)), b4));
        const __m256i p = _mm256_sub_epi32(dot32_u8(q, a[i].qs), _mm256_castsi128_si256(_mm_cvtsi32_si128(16 * a[i].sum)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum8(acc);
}

/* int16 scale vector for one 32-element run: lanes 0-7 (elements 0-15) s0, lanes
 * 8-15 s1 */
AVX2 static inline __m256i scale_pair(int s0, int s1) {
    return _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
}

AVX2 static inline int32_t hsum_epi32(__m256i v) {
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    return _mm_cvtsi128_si32(t);
}

/* Q2_K: q = (qs[32h + l] >> 2r) & 3 for element 128h + 32r + l; 16-groups with
 * scale (low nibble) and min (high nibble) */
AVX2 float qt_avx2_vdot_q2_K(const void *w, const void *xq, int64_t n) {
    const block_q2_K *b = w;
    const act_q8_K *a = xq;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *sc = b[i].scales;
        const __m256i mins = _mm256_srli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)sc)), 4);
        const int32_t msum = hsum_epi32(_mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)a[i].bsums)));
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * h));
            for (int r = 0; r < 4; r++) {
                const int g = 8 * h + 2 * r;
                const __m256i qr = _mm256_and_si256(_mm256_srli_epi16(q, 2 * r), m3);
                const __m256i x = _mm256_loadu_si256((const __m256i *)(a[i].qs + 128 * h + 32 * r));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(qr, x),
                                                                scale_pair(sc[g] & 0xF, sc[g + 1] & 0xF)));
            }
        }
        const float dx = a[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * dx), _mm256_cvtepi32_ps(isum), acc);
        corr += _cvtsh_ss(b[i].dmin) * dx * (float)msum;
    }
    return hsum8(acc) - corr;
}

/* Q3_K's 16 scales (minus 32) as int8 in an xmm, unpacked on 32-bit words in
 * registers (the layout of qk_q3_scales; a vector load of bytes just stored by
 * scalar code would stall on store forwarding) */
AVX2 static inline __m128i q3k_scales(const uint8_t *s) {
    const uint32_t k2 = 0x0f0f0f0fu, k1 = 0x03030303u;
    const uint32_t a0 = load_u32(s), a1 = load_u32(s + 4), t = load_u32(s + 8);
    const uint32_t s0 = (a0 & k2) | ((t & k1) << 4);
    const uint32_t s1 = (a1 & k2) | (((t >> 2) & k1) << 4);
    const uint32_t s2 = ((a0 >> 4) & k2) | (((t >> 4) & k1) << 4);
    const uint32_t s3 = ((a1 >> 4) & k2) | (((t >> 6) & k1) << 4);
    return _mm_sub_epi8(_mm_setr_epi32((int)s0, (int)s1, (int)s2, (int)s3), _mm_set1_epi8(32));
}

/* Q3_K: q + 4 = (2 low bits) | hmask bit << 2 is in 0..7 (unsigned for maddubs);
 * the -4 comes back through the activation group sums */
AVX2 float qt_avx2_vdot_q3_K(const void *w, const void *xq, int64_t n) {
    const block_q3_K *b = w;
    const act_q8_K *a = xq;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    /* scale pair (g, g+1) from the int16 scales: vpermd puts the pair in every
     * dword, vpshufb spreads g over the low 128 bits and g+1 over the high */
    const __m256i spread = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,
                                            2, 3, 2, 3, 2, 3, 2, 3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales(b[i].scales));
        const int32_t off = hsum_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)a[i].bsums)));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)b[i].hmask);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * h));
            for (int r = 0; r < 4; r++) {
                const int g = 8 * h + 2 * r;
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * r), m3);
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + r), one);
                const __m256i q3 = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
                const __m256i x = _mm256_loadu_si256((const __m256i *)(a[i].qs + 128 * h + 32 * r));
                const __m256i sp = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(g / 2)), spread);
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q3, x), sp));
            }
        }
        const __m256i tot = _mm256_sub_epi32(isum, _mm256_castsi128_si256(_mm_cvtsi32_si128(4 * off)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a[i].d), _mm256_cvtepi32_ps(tot), acc);
    }
    return hsum8(acc);
}

/* Q5_K: as Q4_K with the fifth bit of element l of sub-block j in bit j of qh[l] */
AVX2 float qt_avx2_vdot_q5_K(const void *w, const void *xq, int64_t n) {
    const block_q5_K *b = w;
    const act_q8_K *a = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], m[8];
        int32_t msum = 0;
        for (int j = 0; j < 8; j++) {
            qk_scale_min_k4(j, b[i].scales, &sc[j], &m[j]);
            msum += m[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        const __m256i qh = _mm256_loadu_si256((const __m256i *)b[i].qh);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
            const __m256i hl = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one);
            const __m256i hh = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(hl, 4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_slli_epi16(hh, 4));
            const __m256i xl = _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c));
            const __m256i xh = _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c + 32));
            const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_set1_epi16(sc[2 * c]));
            const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xh), _mm256_set1_epi16(sc[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(pl, ph));
        }
        const float dx = a[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * dx), _mm256_cvtepi32_ps(isum), acc);
        corr += _cvtsh_ss(b[i].dmin) * dx * (float)msum;
    }
    return hsum8(acc) - corr;
}

/* Q6_K: q in 0..63 (the -32 offset is applied through the activation sums
 * bsums), 16-element groups each with an int8 scale. */
AVX2 float qt_avx2_vdot_q6_K(const void *w, const void *xq, int64_t n) {
    const block_q6_K *b = w;
    const act_q8_K *a = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *sc = b[i].scales;
        int32_t off = 0;
        for (int g = 0; g < 16; g++) off += sc[g] * a[i].bsums[g];
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
            for (int r = 0; r < 4; r++) {
                const __m256i x = _mm256_loadu_si256((const __m256i *)(a[i].qs + 128 * h + 32 * r));
                /* int16 lanes 0-7 are elements 0-15 (group 2r), lanes 8-15 group 2r+1 */
                const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * r + 1]), _mm_set1_epi16(sc[8 * h + 2 * r]));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], x), s));
            }
        }
        const float dd = _cvtsh_ss(b[i].d) * a[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), _mm256_cvtepi32_ps(isum), acc);
        corr += dd * (float)(32 * off);
    }
    return hsum8(acc) - corr;
}
