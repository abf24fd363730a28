/* quant_quantize.c — reference quantizers for the types we write, following ggml's
 * quantize_row_*_ref (ggml/src/ggml-quants.c): same scale choice and rounding, so
 * a row quantized here is the row ggml's reference path would write. */
#include <math.h>
#include <string.h>

#include "quant_impl.h"

/* Round to nearest, ties to even, for |f| < 2^22: adding 1.5 * 2^23 moves the
 * integer part into the low mantissa bits (ggml's nearest_int). */
static inline int nearest_int(float f) {
    const float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

void qt_ref_from_float_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void qt_ref_from_float_f16(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = qt_f32_to_f16(src[i]);
}

void qt_ref_from_float_bf16(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = qt_f32_to_bf16(src[i]);
}

/* Q8_0: d = max|x| / 127, q = round(x / d) (roundf: half away from zero). */
void qt_ref_from_float_q8_0(const float *src, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, src += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = qt_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)roundf(src[j] * id);
    }
}

/* Q4_0: the element of largest magnitude maps to -8 (d = max / -8, keeping its
 * sign), q = min(15, (int)(x/d + 8.5)), which truncates toward zero. */
void qt_ref_from_float_q4_0(const float *src, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, src += QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = qt_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const float x0 = src[j] * id, x1 = src[QK4_0 / 2 + j] * id;
            int q0 = (int8_t)(x0 + 8.5f), q1 = (int8_t)(x1 + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* Weighted least-squares fit of x ~ scale * L + min with L in [0, nmax] (ggml's
 * make_qkx2_quants with rmin = -1, rdelta = 0.1, nstep = 20, squared error): start
 * from the min/max grid, then try nstep+1 slightly different grid steps, solving the
 * 2x2 normal equations for (scale, min) on each candidate assignment and keeping the
 * one with the lowest weighted error. min is clamped to <= 0 (returned negated). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta,
                              int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        const float diff = scale * (float)L[i] + min - x[i];
        const float d2 = diff * diff; /* ggml's association: w * (diff^2) */
        best_error += w[i] * d2;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                const float diff = this_scale * (float)Laux[i] + this_min - x[i];
                const float d2 = diff * diff;
                cur_error += w[i] * d2;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q4_K (quantize_row_q4_K_ref): per 32-sub-block fit with weights |x| + rms(x), then
 * the 8 scales and 8 mins are themselves quantized to 6 bits against the block
 * maxima (d = max_scale/63, dmin = max_min/63) and the quants recomputed with the
 * rounded scales. */
void qt_ref_from_float_q4_K(const float *src, void *dst, int64_t n) {
    block_q4_K *b = dst;
    uint8_t L[QK_K], Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            const float *x = src + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += x[l] * x[l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[l]);
            scales[j] = make_qkx2_quants(32, 15, x, weights, L + 32 * j, &mins[j], Laux, -1.f,
                                         0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(b[i].scales, 0, sizeof b[i].scales);
        for (int j = 0; j < QK_K / 32; j++) {
            int ls = nearest_int(inv_scale * scales[j]);
            int lm = nearest_int(inv_min * mins[j]);
            ls = ls > 63 ? 63 : ls;
            lm = lm > 63 ? 63 : lm;
            if (j < 4) {
                b[i].scales[j] = (uint8_t)ls;
                b[i].scales[j + 4] = (uint8_t)lm;
            } else {
                b[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                b[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                b[i].scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        b[i].d = qt_f32_to_f16(max_scale / 63.f);
        b[i].dmin = qt_f32_to_f16(max_min / 63.f);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            qk_scale_min_k4(j, b[i].scales, &sc, &m);
            const float d = qt_f16_to_f32(b[i].d) * (float)sc;
            if (d == 0.0f) continue;
            const float dm = qt_f16_to_f32(b[i].dmin) * (float)m;
            for (int ii = 0; ii < 32; ii++) {
                int l = nearest_int((src[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
            }
        }
        uint8_t *q = b[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}
