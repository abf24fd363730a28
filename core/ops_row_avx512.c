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

/* ---- decoding: query heads against a slice of the key/value cache ----
 * Cache rows are n_kv_head * hd floats apart (16 KB for LLaMA-7B). One head walked down
 * all the rows reads 512 bytes per page, which the hardware prefetchers do not follow:
 * 22-24 GB/s on one Zen 5 core, against 33 for a contiguous read. Here the rows go
 * outer and the heads of the slice inner, four rows at a time, so each row's slice
 * (4 KB for a unit of eight LLaMA-7B heads, ops_attention.c) is read front to back, and
 * fetching the first lines of rows a few rows ahead starts the L2 streamer on each page
 * early. 32 layers x 600 rows of LLaMA-7B on one core: q.k 22 -> 28 GB/s, p.v 24 -> 30.
 * Tried and slower (q.k, GB/s): horizontal sums after every four rows instead of once
 * per block of products parked in L1 (18-22), heads unrolled four at a time (24),
 * masked loads in the loop over the head dimension (21). */
enum {
    QK_BUF = 256,     /* partial-sum vectors of one block of q.k: 16 KB, a third of L1 */
    PF_AHEAD = 16384, /* bytes of slice between the rows read and the rows fetched */
    PF_LINES = 4,     /* lines fetched at the start of a row slice wider than 1 KB */
    ROW_PF = 8        /* rows ahead, in the grouped 64-wide kernels */
};

/* GCC deletes a loop whose only statements are __builtin_prefetch (it has no side
 * effects), so loops of prefetches use an asm statement; straight-line code keeps the
 * builtin, which the compiler schedules more freely (qk4 and pv4 ran ~3% faster). */
AVX512 static inline void prefetch_line(const float *p) { __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p)); }

AVX512 static inline void prefetch64(const float *r) {
    _mm_prefetch((const char *)r, _MM_HINT_T0), _mm_prefetch((const char *)(r + 16), _MM_HINT_T0);
    _mm_prefetch((const char *)(r + 32), _MM_HINT_T0), _mm_prefetch((const char *)(r + 48), _MM_HINT_T0);
}

/* Starts rows j .. j + 3 (those below n) of a slice w floats wide: the whole slice
 * when it is 1 KB or less (too short for the streamer), its first PF_LINES otherwise. */
AVX512 static inline void prefetch_rows(const float *x, int64_t ld, int64_t j, int64_t n, int w) {
    const int lines = w <= 256 ? (w + 15) / 16 : PF_LINES;
    for (int r = 0; r < 4 && j + r < n; r++)
        for (int i = 0; i < lines; i++) prefetch_line(x + (j + r) * ld + 16 * i);
}

/* Rows between the rows read and the rows fetched, a multiple of four. */
static inline int64_t prefetch_distance(int w) {
    const int64_t rows = PF_AHEAD / (4 * w) & ~3;
    return rows < 4 ? 4 : rows > 64 ? 64 : rows;
}

/* Partial sums (16 lanes) of one head's dots with four rows, parked at b[0..4). */
AVX512 static inline __attribute__((always_inline)) void qk_head4(__m512 *b, const float *qh, const float *const row[4],
                                                                  int64_t off, int hd) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float *x0 = row[0] + off, *x1 = row[1] + off, *x2 = row[2] + off, *x3 = row[3] + off;
    const int hd16 = hd & ~15;
    int d = 0;
#pragma GCC unroll 1
    for (; d < hd16; d += 16) {
        const __m512 qv = _mm512_loadu_ps(qh + d);
        a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(x0 + d), a0);
        a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(x1 + d), a1);
        a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(x2 + d), a2);
        a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(x3 + d), a3);
    }
    if (d < hd) {
        const __mmask16 m = tail_mask(hd - d);
        const __m512 qv = _mm512_maskz_loadu_ps(m, qh + d);
        a0 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, x0 + d), a0);
        a1 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, x1 + d), a1);
        a2 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, x2 + d), a2);
        a3 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, x3 + d), a3);
    }
    b[0] = a0, b[1] = a1, b[2] = a2, b[3] = a3;
}

/* Four heads of 64 sharing one key head, over all n rows: each cache row is loaded
 * once into four registers and used by the four queries (sixteen query registers);
 * 16 keys per step, one tree reduction per head. Out of line: inlined, it and pv4 ran
 * 3-4% slower. */
AVX512 static __attribute__((noinline)) void qk4(float *s, int64_t ss, const float *q, const float *k, int64_t ld,
                                                 int64_t n, float c) {
    const __m512 vc = _mm512_set1_ps(c);
    __m512 qv[16];
    for (int i = 0; i < 16; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        const int64_t nk = n - j0 < 16 ? n - j0 : 16;
        __m512 acc[4][16];
        for (int t = (int)nk; t < 16; t++) acc[0][t] = acc[1][t] = acc[2][t] = acc[3][t] = _mm512_setzero_ps();
        for (int t = 0; t < nk; t++) {
            const float *kt = k + (j0 + t) * ld;
            if (j0 + t + ROW_PF < n) prefetch64(kt + ROW_PF * ld);
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

AVX512 void ops_row_qk_heads_avx512(float *s, int64_t ss, const float *q, int nh, int G, const float *k, int64_t ld,
                                    int64_t n, int hd, float c) {
    /* Grouped heads of 64 (TinyLlama: eight per key head) take the four-head kernels:
     * four times a single head's arithmetic per cache byte, they are bound by it, not
     * by the row order, and versions in the row order below measured 10-40% slower. */
    if (hd == 64 && G % 4 == 0) {
        for (int h = 0; h < nh; h += 4) qk4(s + h * ss, ss, q + h * hd, k + (int64_t)(h / G) * hd, ld, n, c);
        return;
    }
    const __m512 vc = _mm512_set1_ps(c);
    /* Up to 16 heads per pass; a block is as many rows (a multiple of 16) as their
     * products fit in buf. */
    const int hg = nh < 16 ? nh : 16, B = QK_BUF / hg & ~15, w = (nh / G) * hd;
    const int64_t pf = prefetch_distance(w);
    __m512 buf[QK_BUF];
    for (int64_t j0 = 0; j0 < n; j0 += B) {
        const int nb = n - j0 < B ? (int)(n - j0) : B, nb16 = (nb + 15) & ~15;
        for (int h0 = 0; h0 < nh; h0 += hg) {
            const int ng = nh - h0 < hg ? nh - h0 : hg;
            for (int jj = 0; jj < nb; jj += 4) {
                if (h0 == 0) prefetch_rows(k, ld, j0 + jj + pf, n, w);
                /* a last group of fewer than four rows repeats its last row (those
                 * sums are zeroed below, past nb) */
                const float *row[4];
                for (int r = 0; r < 4; r++) row[r] = k + (j0 + (jj + r < nb ? jj + r : nb - 1)) * ld;
#pragma GCC unroll 1
                for (int i = 0; i < ng; i++)
                    qk_head4(buf + i * B + jj, q + (int64_t)(h0 + i) * hd, row, (int64_t)((h0 + i) / G) * hd, hd);
            }
            /* each lane of hsum16x16 sums one vector, so what sits past nb only
             * reaches lanes the masked store drops; it is zeroed to read nothing
             * stale */
            for (int i = 0; i < ng; i++) {
                __m512 *bi = buf + i * B;
                for (int u = nb; u < nb16; u++) bi[u] = _mm512_setzero_ps();
                for (int t = 0; t < nb; t += 16)
                    _mm512_mask_storeu_ps(s + (h0 + i) * ss + j0 + t, tail_mask(nb - t),
                                          _mm512_mul_ps(vc, hsum16x16(bi + t)));
            }
        }
    }
}

/* o += sum over four rows r of p[r] (row[r] + off), one fma per row in row order. */
AVX512 static inline __attribute__((always_inline)) void pv_head4(float *o, const float *p, const float *const row[4],
                                                                  int64_t off, int hd) {
    const __m512 p0 = _mm512_set1_ps(p[0]), p1 = _mm512_set1_ps(p[1]), p2 = _mm512_set1_ps(p[2]),
                 p3 = _mm512_set1_ps(p[3]);
    const float *x0 = row[0] + off, *x1 = row[1] + off, *x2 = row[2] + off, *x3 = row[3] + off;
    const int hd16 = hd & ~15;
    int d = 0;
#pragma GCC unroll 1
    for (; d < hd16; d += 16) {
        __m512 a = _mm512_loadu_ps(o + d);
        a = _mm512_fmadd_ps(p0, _mm512_loadu_ps(x0 + d), a);
        a = _mm512_fmadd_ps(p1, _mm512_loadu_ps(x1 + d), a);
        a = _mm512_fmadd_ps(p2, _mm512_loadu_ps(x2 + d), a);
        a = _mm512_fmadd_ps(p3, _mm512_loadu_ps(x3 + d), a);
        _mm512_storeu_ps(o + d, a);
    }
    if (d < hd) {
        const __mmask16 m = tail_mask(hd - d);
        __m512 a = _mm512_maskz_loadu_ps(m, o + d);
        a = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m, x0 + d), a);
        a = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(m, x1 + d), a);
        a = _mm512_fmadd_ps(p2, _mm512_maskz_loadu_ps(m, x2 + d), a);
        a = _mm512_fmadd_ps(p3, _mm512_maskz_loadu_ps(m, x3 + d), a);
        _mm512_mask_storeu_ps(o + d, m, a);
    }
}

/* Four heads of 64 sharing one value head, over all n rows: sixteen accumulators
 * (named, so they stay in registers), each value row loaded once. */
AVX512 static __attribute__((noinline)) void pv4(float *o, const float *p, int64_t ss, const float *v, int64_t ld,
                                                 int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    __m512 c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
    for (int64_t j = 0; j < n; j++) {
        const float *r = v + j * ld;
        if (j + ROW_PF < n) prefetch64(r + ROW_PF * ld);
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

AVX512 void ops_row_pv_heads_avx512(float *o, const float *p, int64_t ss, int nh, int G, const float *v, int64_t ld,
                                    int64_t n, int hd) {
    if (hd == 64 && G % 4 == 0) { /* as in ops_row_qk_heads_avx512 */
        for (int h = 0; h < nh; h += 4) pv4(o + h * hd, p + h * ss, ss, v + (int64_t)(h / G) * hd, ld, n);
        return;
    }
    for (int64_t i = 0; i < (int64_t)nh * hd; i += 16)
        _mm512_mask_storeu_ps(o + i, tail_mask((int64_t)nh * hd - i), _mm512_setzero_ps());
    const int w = (nh / G) * hd;
    const int64_t pf = prefetch_distance(w);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        prefetch_rows(v, ld, j + pf, n, w);
        const float *row[4] = {v + j * ld, v + (j + 1) * ld, v + (j + 2) * ld, v + (j + 3) * ld};
#pragma GCC unroll 1
        for (int h = 0; h < nh; h++) pv_head4(o + (int64_t)h * hd, p + h * ss + j, row, (int64_t)(h / G) * hd, hd);
    }
    for (; j < n; j++)
        for (int h = 0; h < nh; h++) {
            const __m512 pj = _mm512_set1_ps(p[h * ss + j]);
            const float *x = v + j * ld + (int64_t)(h / G) * hd;
            float *oh = o + (int64_t)h * hd;
            for (int d = 0; d < hd; d += 16) {
                const __mmask16 m = tail_mask(hd - d);
                _mm512_mask_storeu_ps(oh + d, m, _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m, x + d),
                                                                 _mm512_maskz_loadu_ps(m, oh + d)));
            }
        }
}
