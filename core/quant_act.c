/* quant_act.c — 8-bit activation quantization and the portable integer dots of the
 * decode path (see quant_impl.h). The sums of products are exact integers; only the
 * per-block scale products are float. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "quant_impl.h"

size_t qt_act_row_size(qt_act_kind act, int64_t n) {
    switch (act) {
    case QT_ACT_Q8_32: return (size_t)(n / 32) * sizeof(act_q8_32);
    case QT_ACT_Q8_K: return (size_t)(n / QK_K) * sizeof(act_q8_K);
    case QT_ACT_Q8_32X4: return n % 32 ? 0 : (size_t)((n / 32 + 3) / 4) * sizeof(act_q8_32x4);
    default: return 0;
    }
}

/* Symmetric 8-bit: d = amax/127, q = round(x/d) in [-127, 127]. A NaN or inf in
 * the block makes d NaN (and q 0), so the dot comes out NaN as the f32 path's
 * would instead of silently finite. */
void qt_ref_quantize_block(const float *x, int len, float *d_out, int8_t *qs) {
    float amax = 0, probe = 0;
    for (int j = 0; j < len; j++) {
        amax = fmaxf(amax, fabsf(x[j]));
        probe += x[j] * 0.0f; /* NaN iff some x is NaN or inf */
    }
    if (probe != 0.0f) {
        memset(qs, 0, (size_t)len);
        *d_out = NAN;
        return;
    }
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    for (int j = 0; j < len; j++) qs[j] = (int8_t)lrintf(x[j] * id);
    *d_out = d;
}

static void quantize_block(const float *x, int len, float *d_out, int8_t *qs) {
    if (cpu_level() >= CPU_AVX2) qt_avx2_quantize_block(x, len, d_out, qs);
    else qt_ref_quantize_block(x, len, d_out, qs);
}

/* ggml stores a 32-block's activation scale as fp16 (block_q8_0.d) and its dots use that
 * rounded value; Q8_K keeps an f32 scale. Rounding ours the same way makes our 8-bit
 * decode agree with llama.cpp's to float summation order (tests/llamacpp), not just to
 * within the scale's 2^-11 rounding. */
static float fp16_round(float d) { return qt_f16_to_f32(qt_f32_to_f16(d)); }

void qt_quantize_act(qt_act_kind act, const float *x, void *dst, int64_t n) {
    if (act == QT_ACT_Q8_32) {
        act_q8_32 *b = dst;
        for (int64_t i = 0; i < n / 32; i++, x += 32) {
            quantize_block(x, 32, &b[i].d, b[i].qs);
            b[i].d = fp16_round(b[i].d);
            int32_t s = 0;
            for (int j = 0; j < 32; j++) s += b[i].qs[j];
            b[i].sum = s;
        }
    } else if (act == QT_ACT_Q8_32X4) {
        act_q8_32x4 *g = dst;
        const int64_t nb = n / 32;
        memset(g, 0, qt_act_row_size(act, n));
        for (int64_t i = 0; i < nb; i++, x += 32) {
            act_q8_32x4 *gi = &g[i / 4];
            const int j = (int)(i % 4);
            quantize_block(x, 32, &gi->d[j], gi->qs + 32 * j);
            gi->d[j] = fp16_round(gi->d[j]);
            int32_t s = 0;
            for (int l = 0; l < 32; l++) s += gi->qs[32 * j + l];
            for (int l = 0; l < 8; l++) gi->init[8 * j + l] = -16 * s;
        }
    } else if (act == QT_ACT_Q8_K) {
        act_q8_K *b = dst;
        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
            quantize_block(x, QK_K, &b[i].d, b[i].qs);
            for (int g = 0; g < QK_K / 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++) s += b[i].qs[16 * g + j];
                b[i].bsums[g] = (int16_t)s;
            }
        }
    }
}

float qt_ref_vdot_q8_0(const void *w, const void *xq, int64_t n) {
    const block_q8_0 *b = w;
    const act_q8_32 *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) sum += b[i].qs[j] * a[i].qs[j];
        s += qt_f16_to_f32(b[i].d) * a[i].d * (float)sum;
    }
    return s;
}

float qt_ref_vdot_q8_0x4(const void *w, const void *xq, int64_t n) {
    const block_q8_0 *b = w;
    const act_q8_32x4 *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const int8_t *x = a[i / 4].qs + 32 * (i % 4);
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) sum += b[i].qs[j] * x[j];
        s += qt_f16_to_f32(b[i].d) * a[i / 4].d[i % 4] * (float)sum;
    }
    return s;
}

/* sum (q - 8) * x = sum q * x - 8 * sum x */
float qt_ref_vdot_q4_0(const void *w, const void *xq, int64_t n) {
    const block_q4_0 *b = w;
    const act_q8_32 *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int32_t sum = 0;
        for (int j = 0; j < 16; j++)
            sum += (b[i].qs[j] & 0xF) * a[i].qs[j] + (b[i].qs[j] >> 4) * a[i].qs[j + 16];
        s += qt_f16_to_f32(b[i].d) * a[i].d * (float)(sum - 8 * a[i].sum);
    }
    return s;
}

/* x = d*sc*q - dmin*m per sub-block j, so w.x = d*dx * sum_j sc_j (q.qx)_j
 * - dmin*dx * sum_j m_j * sum(qx)_j, both integer sums. */
float qt_ref_vdot_q4_K(const void *w, const void *xq, int64_t n) {
    const block_q4_K *b = w;
    const act_q8_K *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            qk_scale_min_k4(j, b[i].scales, &sc, &m);
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            const int8_t *x = a[i].qs + 32 * j;
            int32_t dot = 0;
            for (int l = 0; l < 32; l++) dot += ((j & 1) ? q[l] >> 4 : q[l] & 0xF) * x[l];
            isum += sc * dot;
            msum += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        const float dx = a[i].d;
        s += qt_f16_to_f32(b[i].d) * dx * (float)isum - qt_f16_to_f32(b[i].dmin) * dx * (float)msum;
    }
    return s;
}

/* Q4_1: x = d*q + m, so w.x = d*dx * sum q*qx + m*dx * sum qx */
float qt_ref_vdot_q4_1(const void *w, const void *xq, int64_t n) {
    const block_q4_1 *b = w;
    const act_q8_32 *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int32_t sum = 0;
        for (int j = 0; j < 16; j++)
            sum += (b[i].qs[j] & 0xF) * a[i].qs[j] + (b[i].qs[j] >> 4) * a[i].qs[j + 16];
        s += qt_f16_to_f32(b[i].d) * a[i].d * (float)sum + qt_f16_to_f32(b[i].m) * a[i].d * (float)a[i].sum;
    }
    return s;
}

static inline uint32_t q5_qh(const uint8_t *qh) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

/* sum over a 32-block of q5 * qx with q5 = nibble | bit e of qh << 4 */
static int32_t q5_block_sum(const uint8_t *qs, uint32_t qh, const int8_t *x) {
    int32_t sum = 0;
    for (int j = 0; j < 16; j++) {
        sum += ((qs[j] & 0xF) | (int)((qh >> j) & 1) << 4) * x[j];
        sum += ((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) * x[j + 16];
    }
    return sum;
}

float qt_ref_vdot_q5_0(const void *w, const void *xq, int64_t n) {
    const block_q5_0 *b = w;
    const act_q8_32 *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const int32_t sum = q5_block_sum(b[i].qs, q5_qh(b[i].qh), a[i].qs) - 16 * a[i].sum;
        s += qt_f16_to_f32(b[i].d) * a[i].d * (float)sum;
    }
    return s;
}

float qt_ref_vdot_q5_1(const void *w, const void *xq, int64_t n) {
    const block_q5_1 *b = w;
    const act_q8_32 *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const int32_t sum = q5_block_sum(b[i].qs, q5_qh(b[i].qh), a[i].qs);
        s += qt_f16_to_f32(b[i].d) * a[i].d * (float)sum + qt_f16_to_f32(b[i].m) * a[i].d * (float)a[i].sum;
    }
    return s;
}

/* Q2_K: 16-groups with x = d*sc*q - dmin*m; group g of element e = 128h + 32r + l
 * is 8h + 2r + l/16 and q = (qs[32h + l] >> 2r) & 3 */
float qt_ref_vdot_q2_K(const void *w, const void *xq, int64_t n) {
    const block_q2_K *b = w;
    const act_q8_K *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int e = 0; e < QK_K; e += 16) {
            const int h = e / 128, r = (e % 128) / 32, g = e / 16;
            int32_t dot = 0;
            for (int l = e % 32; l < e % 32 + 16; l++) dot += ((b[i].qs[32 * h + l] >> (2 * r)) & 3) * a[i].qs[128 * h + 32 * r + l];
            isum += (b[i].scales[g] & 0xF) * dot;
            msum += (b[i].scales[g] >> 4) * a[i].bsums[g];
        }
        const float dx = a[i].d;
        s += qt_f16_to_f32(b[i].d) * dx * (float)isum - qt_f16_to_f32(b[i].dmin) * dx * (float)msum;
    }
    return s;
}

/* Q3_K: q = ((qs >> 2r) & 3) - (hmask bit clear ? 4 : 0), 16-groups scaled by the
 * signed 6-bit scales */
float qt_ref_vdot_q3_K(const void *w, const void *xq, int64_t n) {
    const block_q3_K *b = w;
    const act_q8_K *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t sc[16];
        qk_q3_scales(b[i].scales, sc);
        int32_t isum = 0;
        for (int e = 0; e < QK_K; e += 16) {
            const int h = e / 128, r = (e % 128) / 32;
            int32_t dot = 0;
            for (int l = e % 32; l < e % 32 + 16; l++) {
                const int q = ((b[i].qs[32 * h + l] >> (2 * r)) & 3) - (((b[i].hmask[l] >> (4 * h + r)) & 1) ? 0 : 4);
                dot += q * a[i].qs[128 * h + 32 * r + l];
            }
            isum += sc[e / 16] * dot;
        }
        s += qt_f16_to_f32(b[i].d) * a[i].d * (float)isum;
    }
    return s;
}

/* Q5_K: Q4_K plus a fifth bit (qh bit j of byte l for sub-block j) */
float qt_ref_vdot_q5_K(const void *w, const void *xq, int64_t n) {
    const block_q5_K *b = w;
    const act_q8_K *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            qk_scale_min_k4(j, b[i].scales, &sc, &m);
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            const int8_t *x = a[i].qs + 32 * j;
            int32_t dot = 0;
            for (int l = 0; l < 32; l++)
                dot += (((j & 1) ? q[l] >> 4 : q[l] & 0xF) | ((b[i].qh[l] >> j) & 1) << 4) * x[l];
            isum += sc * dot;
            msum += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        const float dx = a[i].d;
        s += qt_f16_to_f32(b[i].d) * dx * (float)isum - qt_f16_to_f32(b[i].dmin) * dx * (float)msum;
    }
    return s;
}

float qt_ref_vdot_q6_K(const void *w, const void *xq, int64_t n) {
    const block_q6_K *b = w;
    const act_q8_K *a = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t isum = 0;
        for (int e = 0; e < QK_K; e += 16) {
            int32_t dot = 0;
            for (int l = e; l < e + 16; l++) {
                const int h = l / 128, r = (l % 128) / 32, k = l % 32;
                const int byte = b[i].ql[64 * h + k + 32 * (r & 1)];
                const int lo = r < 2 ? byte & 0xF : byte >> 4;
                const int hi = (b[i].qh[32 * h + k] >> (2 * r)) & 3;
                dot += ((lo | hi << 4) - 32) * a[i].qs[l];
            }
            isum += b[i].scales[e / 16] * dot;
        }
        s += qt_f16_to_f32(b[i].d) * a[i].d * (float)isum;
    }
    return s;
}

static const qt_int_kernel int_ref[] = {
    [QT_Q8_0] = {QT_ACT_Q8_32, qt_ref_vdot_q8_0, qt_ref_vdot_q8_0},
    [QT_Q4_0] = {QT_ACT_Q8_32, qt_ref_vdot_q4_0, qt_ref_vdot_q4_0},
    [QT_Q4_K] = {QT_ACT_Q8_K, qt_ref_vdot_q4_K, qt_ref_vdot_q4_K},
    [QT_Q5_K] = {QT_ACT_Q8_K, qt_ref_vdot_q5_K, qt_ref_vdot_q5_K},
    [QT_Q4_1] = {QT_ACT_Q8_32, qt_ref_vdot_q4_1, qt_ref_vdot_q4_1},
    [QT_Q5_0] = {QT_ACT_Q8_32, qt_ref_vdot_q5_0, qt_ref_vdot_q5_0},
    [QT_Q5_1] = {QT_ACT_Q8_32, qt_ref_vdot_q5_1, qt_ref_vdot_q5_1},
    [QT_Q2_K] = {QT_ACT_Q8_K, qt_ref_vdot_q2_K, qt_ref_vdot_q2_K},
    [QT_Q3_K] = {QT_ACT_Q8_K, qt_ref_vdot_q3_K, qt_ref_vdot_q3_K},
    [QT_Q6_K] = {QT_ACT_Q8_K, qt_ref_vdot_q6_K, qt_ref_vdot_q6_K},
};
static const qt_int_kernel int_avx2[] = {
    [QT_Q8_0] = {QT_ACT_Q8_32, qt_avx2_vdot_q8_0, qt_ref_vdot_q8_0},
    [QT_Q4_0] = {QT_ACT_Q8_32, qt_avx2_vdot_q4_0, qt_ref_vdot_q4_0},
    [QT_Q4_K] = {QT_ACT_Q8_K, qt_avx2_vdot_q4_K, qt_ref_vdot_q4_K},
    [QT_Q5_K] = {QT_ACT_Q8_K, qt_avx2_vdot_q5_K, qt_ref_vdot_q5_K},
    [QT_Q4_1] = {QT_ACT_Q8_32, qt_avx2_vdot_q4_1, qt_ref_vdot_q4_1},
    [QT_Q5_0] = {QT_ACT_Q8_32, qt_avx2_vdot_q5_0, qt_ref_vdot_q5_0},
    [QT_Q5_1] = {QT_ACT_Q8_32, qt_avx2_vdot_q5_1, qt_ref_vdot_q5_1},
    [QT_Q2_K] = {QT_ACT_Q8_K, qt_avx2_vdot_q2_K, qt_ref_vdot_q2_K},
    [QT_Q3_K] = {QT_ACT_Q8_K, qt_avx2_vdot_q3_K, qt_ref_vdot_q3_K},
    [QT_Q6_K] = {QT_ACT_Q8_K, qt_avx2_vdot_q6_K, qt_ref_vdot_q6_K},
};
static const qt_int_kernel int_avx512[] = {
    [QT_Q8_0] = {QT_ACT_Q8_32, qt_avx2_vdot_q8_0, qt_ref_vdot_q8_0},
    [QT_Q4_0] = {QT_ACT_Q8_32, qt_avx2_vdot_q4_0, qt_ref_vdot_q4_0},
    [QT_Q4_K] = {QT_ACT_Q8_K, qt_avx512_vdot_q4_K, qt_ref_vdot_q4_K},
    [QT_Q5_K] = {QT_ACT_Q8_K, qt_avx512_vdot_q5_K, qt_ref_vdot_q5_K},
    [QT_Q4_1] = {QT_ACT_Q8_32, qt_avx2_vdot_q4_1, qt_ref_vdot_q4_1},
    [QT_Q5_0] = {QT_ACT_Q8_32, qt_avx2_vdot_q5_0, qt_ref_vdot_q5_0},
    [QT_Q5_1] = {QT_ACT_Q8_32, qt_avx2_vdot_q5_1, qt_ref_vdot_q5_1},
    [QT_Q2_K] = {QT_ACT_Q8_K, qt_avx2_vdot_q2_K, qt_ref_vdot_q2_K},
    [QT_Q3_K] = {QT_ACT_Q8_K, qt_avx2_vdot_q3_K, qt_ref_vdot_q3_K},
    [QT_Q6_K] = {QT_ACT_Q8_K, qt_avx512_vdot_q6_K, qt_ref_vdot_q6_K},
};

/* VNNI: Q8_0 with its own activation layout, Q4_K; the types left out run the
 * AVX-512BW kernels (qt_int_get falls back to int_avx512). */
static const qt_int_kernel int_vnni[sizeof int_ref / sizeof *int_ref] = {
    [QT_Q8_0] = {QT_ACT_Q8_32X4, qt_vnni_vdot_q8_0, qt_ref_vdot_q8_0x4},
    [QT_Q4_K] = {QT_ACT_Q8_K, qt_vnni_vdot_q4_K, qt_ref_vdot_q4_K},
};

const qt_int_kernel *qt_int_get(int t) {
    const int count = (int)(sizeof int_ref / sizeof *int_ref);
    if (t < 0 || t >= count || !int_ref[t].vdot) return NULL;
    switch (cpu_level()) {
    case CPU_AVX512: return cpu_has_vnni() && int_vnni[t].vdot ? &int_vnni[t] : &int_avx512[t];
    case CPU_AVX2: return &int_avx2[t];
    default: return &int_ref[t];
    }
}
