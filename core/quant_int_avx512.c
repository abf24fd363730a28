/* quant_int_avx512.c — AVX-512BW integer dots of the decode path for the K-quants:
 * the same maddubs/madd scheme as quant_int_avx2.c on 64-byte vectors, which covers
 * one whole 64-element chunk (two 32-element sub-blocks) per instruction, and a
 * branch-free unpack of the Q4_K scales/mins. */
#include <immintrin.h>
#include <string.h>

#include "quant_impl.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

/* Q4_K's 12 scale bytes -> (scales 0-7, mins 0-7) as 8 bytes each in the low half
 * of two xmm registers (the layout of qk_scale_min_k4, done on 32-bit words and
 * moved to vectors from registers: a vector load of bytes just stored by scalar code
 * would stall on store forwarding). */
AVX512 static inline void q4k_unpack_scales(const uint8_t *s, __m128i *sc, __m128i *mn) {
    uint32_t u0, u1, u2;
    memcpy(&u0, s, 4);
    memcpy(&u1, s + 4, 4);
    memcpy(&u2, s + 8, 4);
    const uint32_t m6 = 0x3f3f3f3fu, m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    const uint32_t sc03 = u0 & m6, mn03 = u1 & m6;
    const uint32_t sc47 = (u2 & m4) | (((u0 >> 6) & m2) << 4);
    const uint32_t mn47 = ((u2 >> 4) & m4) | (((u1 >> 6) & m2) << 4);
    *sc = _mm_cvtsi64_si128((long long)((uint64_t)sc47 << 32 | sc03));
    *mn = _mm_cvtsi64_si128((long long)((uint64_t)mn47 << 32 | mn03));
}

AVX512 float qt_avx512_vdot_q4_K(const void *w, const void *xq, int64_t n) {
    const block_q4_K *b = w;
    const act_q8_K *a = xq;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    /* int16 lane p of chunk c (64 elements) belongs to sub-block 2c + p/16 */
    const __m512i half = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
                         10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 4);
    __m512i idx[4];
    for (int c = 0; c < 4; c++) idx[c] = _mm512_add_epi16(half, _mm512_set1_epi16((short)(2 * c)));
    __m512 acc = _mm512_setzero_ps();
    __m256 corr = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        __m128i sc8, mn8;
        q4k_unpack_scales(b[i].scales, &sc8, &mn8);
        const __m512i scw = _mm512_castsi128_si512(_mm_cvtepu8_epi16(sc8));
        const float dx = a[i].d;
        /* min term: sum_j m_j * (sum of x over sub-block j) */
        const __m256i bs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[i].bsums), ones);
        const __m256i mins = _mm256_cvtepu8_epi32(mn8);
        corr = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].dmin) * dx),
                               _mm256_cvtepi32_ps(_mm256_mullo_epi32(bs, mins)), corr);
        __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            /* the 32 bytes twice: low nibbles are elements 64c..64c+31, high nibbles
             * the next 32, matching x's 64 contiguous bytes */
            const __m512i q2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c)));
            const __m512i q = _mm512_and_si512(_mm512_mask_srli_epi16(q2, 0xFFFF0000u, q2, 4), m4);
            const __m512i x = _mm512_loadu_si512((const void *)(a[i].qs + 64 * c));
            const __m512i s = _mm512_permutexvar_epi16(idx[c], scw);
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q, x), s));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(b[i].d) * dx), _mm512_cvtepi32_ps(isum), acc);
    }
    const __m256 c8 = corr;
    __m128 cs = _mm_add_ps(_mm256_castps256_ps128(c8), _mm256_extractf128_ps(c8, 1));
    cs = _mm_add_ps(cs, _mm_movehl_ps(cs, cs));
    cs = _mm_add_ss(cs, _mm_movehdup_ps(cs));
    return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(cs);
}

/* Q5_K: the Q4_K kernel plus the fifth bit: for chunk c, element l of the low
 * half (sub-block 2c) takes bit 2c of qh[l], of the high half bit 2c+1. */
AVX512 float qt_avx512_vdot_q5_K(const void *w, const void *xq, int64_t n) {
    const block_q5_K *b = w;
    const act_q8_K *a = xq;
    const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    const __m256i ones = _mm256_set1_epi16(1);
    const __m512i half = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
                         10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 4);
    __m512i idx[4];
    for (int c = 0; c < 4; c++) idx[c] = _mm512_add_epi16(half, _mm512_set1_epi16((short)(2 * c)));
    __m512 acc = _mm512_setzero_ps();
    __m256 corr = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        __m128i sc8, mn8;
        q4k_unpack_scales(b[i].scales, &sc8, &mn8);
        const __m512i scw = _mm512_castsi128_si512(_mm_cvtepu8_epi16(sc8));
        const float dx = a[i].d;
        const __m256i bs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[i].bsums), ones);
        const __m256i mins = _mm256_cvtepu8_epi32(mn8);
        corr = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].dmin) * dx),
                               _mm256_cvtepi32_ps(_mm256_mullo_epi32(bs, mins)), corr);
        /* qh in both halves, the high half pre-shifted by one bit */
        const __m512i qh2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b[i].qh));
        const __m512i qh = _mm512_mask_srli_epi16(qh2, 0xFFFF0000u, qh2, 1);
        __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m512i q2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c)));
            const __m512i q4 = _mm512_and_si512(_mm512_mask_srli_epi16(q2, 0xFFFF0000u, q2, 4), m4);
            const __m512i h = _mm512_and_si512(_mm512_srli_epi16(qh, (unsigned)(2 * c)), one);
            const __m512i q = _mm512_or_si512(q4, _mm512_slli_epi16(h, 4));
            const __m512i x = _mm512_loadu_si512((const void *)(a[i].qs + 64 * c));
            const __m512i s = _mm512_permutexvar_epi16(idx[c], scw);
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q, x), s));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(b[i].d) * dx), _mm512_cvtepi32_ps(isum), acc);
    }
    const __m256 c8 = corr;
    __m128 cs = _mm_add_ps(_mm256_castps256_ps128(c8), _mm256_extractf128_ps(c8, 1));
    cs = _mm_add_ps(cs, _mm_movehl_ps(cs, cs));
    cs = _mm_add_ss(cs, _mm_movehdup_ps(cs));
    return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(cs);
}

AVX512 float qt_avx512_vdot_q6_K(const void *w, const void *xq, int64_t n) {
    const block_q6_K *b = w;
    const act_q8_K *a = xq;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
    /* lane p -> scale index base + p/8 for the four quarters of a super-block */
    const __m512i step = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
                         10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 3);
    const __m512i idx01_lo = step, idx23_lo = _mm512_add_epi16(step, _mm512_set1_epi16(4));
    const __m512i idx01_hi = _mm512_add_epi16(step, _mm512_set1_epi16(8));
    const __m512i idx23_hi = _mm512_add_epi16(step, _mm512_set1_epi16(12));
    __m512 acc = _mm512_setzero_ps();
    float corr = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *sc = b[i].scales;
        /* -32 offset through the activation group sums */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m512i scw = _mm512_castsi256_si512(sc16);
        const __m256i off8 = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)a[i].bsums));
        __m128i o = _mm_add_epi32(_mm256_castsi256_si128(off8), _mm256_extracti128_si256(off8, 1));
        o = _mm_add_epi32(o, _mm_shuffle_epi32(o, 0x4E));
        o = _mm_add_epi32(o, _mm_shuffle_epi32(o, 0xB1));
        const int32_t off = _mm_cvtsi128_si32(o);
        __m512i isum = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            /* elements 0..63 of this half: low nibbles of ql[0..63]; 64..127: high
             * nibbles; the 2 high bits of element l + 32r are bits 2r of qh[l] */
            const __m512i l = _mm512_loadu_si512((const void *)ql);
            const __m512i hh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
            /* r = 0,1 (low nibbles): high bits at shift 0 (first 32 bytes) and 2 */
            const __m512i h01 = _mm512_and_si512(_mm512_mask_srli_epi16(hh, 0xFFFF0000u, hh, 2), m2);
            const __m512i h23 = _mm512_and_si512(_mm512_mask_srli_epi16(_mm512_srli_epi16(hh, 4), 0xFFFF0000u,
                                                                        _mm512_srli_epi16(hh, 4), 2), m2);
            const __m512i q01 = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(h01, 4));
            const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_slli_epi16(h23, 4));
            const __m512i x01 = _mm512_loadu_si512((const void *)(a[i].qs + 128 * h));
            const __m512i x23 = _mm512_loadu_si512((const void *)(a[i].qs + 128 * h + 64));
            /* int16 lane p of a 64-element vector covers elements 2p, 2p+1, i.e.
             * scale group p/8 of its quarter: gather the scales with vpermw */
            const __m512i s01 = _mm512_permutexvar_epi16(h ? idx01_hi : idx01_lo, scw);
            const __m512i s23 = _mm512_permutexvar_epi16(h ? idx23_hi : idx23_lo, scw);
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q01, x01), s01));
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q23, x23), s23));
        }
        const float dd = _cvtsh_ss(b[i].d) * a[i].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(dd), _mm512_cvtepi32_ps(isum), acc);
        corr += dd * (float)(32 * off);
    }
    return _mm512_reduce_add_ps(acc) - corr;
}

/* ---- VNNI (AVX512-VNNI + VBMI + GFNI; cpu_has_vnni) ----
 * vpdpbusd multiplies u8 x s8 in groups of four and adds into int32 lanes, and
 * vpdpwssd does the same for int16 pairs: each replaces a maddubs/madd/add chain.
 * With a 1-thread streaming bandwidth of ~40 GB/s per Zen 5 core, the AVX-512BW
 * kernels above run at about that rate even from L2, so decoding was bound by
 * their instruction count, not by memory. */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,gfni,fma,f16c")))

/* Q8_0 x QT_ACT_Q8_32X4, four blocks per step: two 64-byte vpdpbusd on w + 128
 * (w xor 0x80) starting from the activation's -16*sum lanes (exact block dots),
 * then one float multiply-add per two blocks with the scales dw*dx spread over
 * each block's 8 lanes. */
VNNI float qt_vnni_vdot_q8_0(const void *w, const void *xq, int64_t n) {
    const block_q8_0 *b = w;
    const act_q8_32x4 *a = xq;
    const int64_t nb = n / 32;
    const __m512i off = _mm512_set1_epi8((char)0x80);
    const __m512i lo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i hi = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const act_q8_32x4 *g = &a[i / 4];
        const uint64_t h = (uint64_t)b[i].d | (uint64_t)b[i + 1].d << 16 | (uint64_t)b[i + 2].d << 32 |
                           (uint64_t)b[i + 3].d << 48;
        const __m128 s4 = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)h)), _mm_loadu_ps(g->d));
        const __m512 s = _mm512_castps128_ps512(s4);
        const __m512i w01 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[i].qs)),
                                               _mm256_loadu_si256((const __m256i *)b[i + 1].qs), 1);
        const __m512i w23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[i + 2].qs)),
                                               _mm256_loadu_si256((const __m256i *)b[i + 3].qs), 1);
        const __m512i p01 = _mm512_dpbusd_epi32(_mm512_loadu_si512((const void *)g->init), _mm512_xor_si512(w01, off),
                                                _mm512_loadu_si512((const void *)g->qs));
        const __m512i p23 = _mm512_dpbusd_epi32(_mm512_loadu_si512((const void *)(g->init + 16)),
                                                _mm512_xor_si512(w23, off), _mm512_loadu_si512((const void *)(g->qs + 64)));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), _mm512_permutexvar_ps(lo, s), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), _mm512_permutexvar_ps(hi, s), acc1);
    }
    float r = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) {
        /* a row whose block count is not a multiple of 4 (no LLaMA shape has one) */
        const int8_t *x = a[i / 4].qs + 32 * (i % 4);
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) sum += b[i].qs[j] * x[j];
        r += _cvtsh_ss(b[i].d) * a[i / 4].d[i % 4] * (float)sum;
    }
    return r;
}

/* Q4_K's 12 scale bytes -> one xmm with scales 0-7 in bytes 0-7 and mins 0-7 in
 * bytes 8-15: qk_scale_min_k4's layout on 32-bit lanes (u0..u2 the three words):
 * [u0 & 0x3f.., (u2 & 0x0f..) | ((u0 >> 6) & 3..) << 4, u1 & 0x3f..,
 * ((u2 >> 4) & 0x0f..) | ((u1 >> 6) & 3..) << 4], where ((b >> 6) & 3) << 4 of each
 * byte b is (word >> 2) & 0x30.. . The 16-byte load reads 4 bytes of qs past the
 * scales, inside the block. */
VNNI static inline __m128i q4k_scales_mins(const uint8_t *s) {
    const __m128i v = _mm_loadu_si128((const __m128i *)s);
    const __m128i x = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
    const __m128i lo = _mm_and_si128(x, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i y = _mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2);
    return _mm_or_si128(lo, _mm_and_si128(y, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)));
}

/* Q4_K: the AVX-512BW kernel's layout (each 32 weight bytes broadcast to both
 * halves, low nibbles against x's first 32 bytes, high against the next), with one
 * vgf2p8affineqb picking the low nibble in the lower half and the high nibble in
 * the upper (a per-qword 8x8 bit matrix: row i of the output is the qword's byte
 * 7-i) instead of shift + mask, and vpdpwssd for the scale multiply-add. */
VNNI float qt_vnni_vdot_q4_K(const void *w, const void *xq, int64_t n) {
    const block_q4_K *b = w;
    const act_q8_K *a = xq;
    const long long lo_nib = 0x0102040800000000ll, hi_nib = 0x1020408000000000ll;
    const __m512i nib = _mm512_set_epi64(hi_nib, hi_nib, hi_nib, hi_nib, lo_nib, lo_nib, lo_nib, lo_nib);
    const __m512i half = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
                         10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 4);
    __m512i idx[4];
    for (int c = 0; c < 4; c++) idx[c] = _mm512_add_epi16(half, _mm512_set1_epi16((short)(2 * c)));
    /* per super-block one float multiply-add on [isum folded to 8 lanes | min sums]
     * with [d*dx x8 | -dmin*dx x8] */
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i sign = _mm512_mask_set1_epi32(_mm512_setzero_si512(), 0xFF00, (int)0x80000000u);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i scmn = q4k_scales_mins(b[i].scales);
        const __m512i scw = _mm512_castsi128_si512(_mm_cvtepu8_epi16(scmn));
        /* min term: m_j times the sums of x's two 16-groups of sub-block j, one
         * vpmaddwd against [m0 m0 m1 m1 ...] (vpmulld is slow on Zen) */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scmn, scmn));
        const __m256i msum = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)a[i].bsums));
        uint32_t dd;
        memcpy(&dd, &b[i].d, 4); /* d, dmin */
        const __m128 f2 = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)), _mm_set1_ps(a[i].d));
        const __m512 f = _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(_mm512_permutexvar_ps(spread, _mm512_castps128_ps512(f2))), sign));
        __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m512i q2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c)));
            const __m512i q = _mm512_gf2p8affine_epi64_epi8(q2, nib, 0);
            const __m512i x = _mm512_loadu_si512((const void *)(a[i].qs + 64 * c));
            isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q, x), _mm512_permutexvar_epi16(idx[c], scw));
        }
        const __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
        const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(i8), msum, 1);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(both), f, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* Q4_K repacked 16 rows at a time (block_q4_Kx16): int32 lane r of every
 * accumulator is row r. Per sub-block, 4 loads of 64 bytes hold 4 bytes of each
 * row; their low nibbles meet x's 4 bytes at 32j + 4l by 32-bit broadcast, their high
 * nibbles the 4 at 32j + 16 + 4l (vpdpbusd: unsigned weights, signed x). The scale
 * multiplies the sub-block's lane sums, the min term is one more vpdpbusd pair: the
 * 8 sums s_j of x over each sub-block (|s_j| <= 32 * 127) are split as
 * 128 * h_j + l_j with l_j in 0..127 and h_j in -32..31, both int8, and
 * sum_j m_j s_j = sum_j m_j l_j + 128 * sum_j m_j h_j, with the rows' 4 mins of
 * sub-blocks 4p..4p+3 adjacent in mn[p]. The prefetch runs two superblocks
 * (4.7 KB) ahead: from DRAM one core measured 39.6 GB/s with it, 13 without. */
VNNI void qt_vnni_vdot_q4_Kx16(const void *group, const void *xq, int64_t k, float out[16]) {
    const block_q4_Kx16 *b = group;
    const act_q8_K *a = xq;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < k / QK_K; i++) {
        const char *pf = (const char *)(b + i + 2);
        for (int o = 0; o < (int)sizeof *b; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
        const __m256i s = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[i].bsums), ones);
        const __m128i lo = _mm256_cvtepi32_epi8(_mm256_and_si256(s, _mm256_set1_epi32(127)));
        const __m128i hi = _mm256_cvtepi32_epi8(_mm256_srai_epi32(s, 7));
        const __m512i mn0 = _mm512_loadu_si512((const void *)b[i].mn[0]);
        const __m512i mn1 = _mm512_loadu_si512((const void *)b[i].mn[1]);
        __m512i ml = _mm512_dpbusd_epi32(_mm512_setzero_si512(), mn0, _mm512_broadcastd_epi32(lo));
        ml = _mm512_dpbusd_epi32(ml, mn1, _mm512_broadcastd_epi32(_mm_srli_si128(lo, 4)));
        __m512i mh = _mm512_dpbusd_epi32(_mm512_setzero_si512(), mn0, _mm512_broadcastd_epi32(hi));
        mh = _mm512_dpbusd_epi32(mh, mn1, _mm512_broadcastd_epi32(_mm_srli_si128(hi, 4)));
        const __m512i msum = _mm512_add_epi32(ml, _mm512_slli_epi32(mh, 7));
        const int8_t *x = a[i].qs;
        __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m512i p0 = _mm512_setzero_si512(), p1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int l = 0; l < 4; l++) {
                const __m512i q = _mm512_loadu_si512((const void *)b[i].qs[j][l]);
                int32_t xl, xh;
                memcpy(&xl, x + 32 * j + 4 * l, 4);
                memcpy(&xh, x + 32 * j + 16 + 4 * l, 4);
                p0 = _mm512_dpbusd_epi32(p0, _mm512_and_si512(q, m4), _mm512_set1_epi32(xl));
                p1 = _mm512_dpbusd_epi32(p1, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4), _mm512_set1_epi32(xh));
            }
            const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b[i].sc[j]));
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(_mm512_add_epi32(p0, p1), sc));
        }
        const __m512 dx = _mm512_set1_ps(a[i].d);
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b[i].d)), dx);
        const __m512 dm = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b[i].dmin)), dx);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d, acc);
        acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), dm, acc);
    }
    _mm512_storeu_ps(out, acc);
}

/* Q8_0 repacked 16 rows at a time (block_q8_0x16): int32 lane r is row r. Per
 * 32-input block, 8 vpdpbusd of the rows' bytes (stored as w + 128, unsigned)
 * against x's 4-byte groups by 32-bit broadcast, in two chains; the first starts at
 * the block's -128 * sum(x) (8 times the activation's init lane), which cancels
 * the +128. The prefetch runs 4 blocks (4.3 KB) ahead, about the distance the
 * Q4_K kernel measured best. */
VNNI void qt_vnni_vdot_q8_0x16(const void *group, const void *xq, int64_t k, float out[16]) {
    const block_q8_0x16 *b = group;
    const act_q8_32x4 *a = xq;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < k / 64; i++) {
        const char *pf = (const char *)(b + i + 4);
        for (int o = 0; o < (int)sizeof *b; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
        const act_q8_32x4 *g = &a[i / 2];
        __m512 f[2];
        __m512i s[2];
        for (int h = 0; h < 2; h++) {
            const int blk = 2 * (int)(i % 2) + h; /* the block's place in its activation group */
            const int8_t *x = g->qs + 32 * blk;
            __m512i p0 = _mm512_set1_epi32(8 * g->init[8 * blk]), p1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int l = 0; l < 8; l += 2) {
                int32_t x0, x1;
                memcpy(&x0, x + 4 * l, 4);
                memcpy(&x1, x + 4 * l + 4, 4);
                p0 = _mm512_dpbusd_epi32(p0, _mm512_loadu_si512((const void *)b[i].qs[h][l]), _mm512_set1_epi32(x0));
                p1 = _mm512_dpbusd_epi32(p1, _mm512_loadu_si512((const void *)b[i].qs[h][l + 1]), _mm512_set1_epi32(x1));
            }
            s[h] = _mm512_add_epi32(p0, p1);
            f[h] = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b[i].d[h])),
                                 _mm512_set1_ps(g->d[blk]));
        }
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[0]), f[0], acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[1]), f[1], acc1);
    }
    _mm512_storeu_ps(out, _mm512_add_ps(acc0, acc1));
}
