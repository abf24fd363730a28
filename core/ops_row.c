/* ops_row.c — dispatch and portable versions of the softmax row kernels (ops_row.h). */
#include "ops_row.h"

#include <math.h>
#include <string.h>

#include "cpu.h"

/* Cephes expf: x = n ln2 + r with n = round(x log2e), ln2 split in two constants so
 * n*C1 is exact; exp(r) by a degree-7 polynomial; 2^n built in the exponent bits. */
float ops_row_exp1(float x) {
    if (x != x) return x;
    if (x < OPS_EXP_LO) return 0.0f;
    if (x > OPS_EXP_HI) x = OPS_EXP_HI;
    float fx = rintf(x * OPS_LOG2E);
    float r = x - fx * OPS_EXP_C1;
    r -= fx * OPS_EXP_C2;
    float y = ((((OPS_EXP_P0 * r + OPS_EXP_P1) * r + OPS_EXP_P2) * r + OPS_EXP_P3) * r + OPS_EXP_P4) * r + OPS_EXP_P5;
    y = y * (r * r) + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)fx + 127) << 23;
    float p2;
    memcpy(&p2, &bits, sizeof p2);
    return y * p2;
}

static float add_max_generic(float *s, const float *bias, int64_t n) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        if (bias) s[j] += bias[j];
        if (s[j] > mx) mx = s[j];
    }
    return mx;
}

static float exp_sum_generic(float *s, int64_t n, float mx) {
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        s[j] = ops_row_exp1(s[j] - mx);
        sum += s[j];
    }
    return sum;
}

static void scale_generic(float *s, int64_t n, float c) {
    for (int64_t j = 0; j < n; j++) s[j] *= c;
}

static float dot_generic(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += a[j] * b[j];
    return s;
}

static void softmax_bwd_generic(float *d, const float *p, int64_t n, float dot, float c) {
    for (int64_t j = 0; j < n; j++) d[j] = c * p[j] * (d[j] - dot);
}

float ops_row_exp_tail(float *s, int64_t n, float mx) { return exp_sum_generic(s, n, mx); }

float ops_row_add_max(float *s, const float *bias, int64_t n) {
    switch (cpu_level()) {
    case CPU_AVX512: return ops_row_add_max_avx512(s, bias, n);
    case CPU_AVX2: return ops_row_add_max_avx2(s, bias, n);
    default: return add_max_generic(s, bias, n);
    }
}

float ops_row_exp_sum(float *s, int64_t n, float mx) {
    switch (cpu_level()) {
    case CPU_AVX512: return ops_row_exp_sum_avx512(s, n, mx);
    case CPU_AVX2: return ops_row_exp_sum_avx2(s, n, mx);
    default: return exp_sum_generic(s, n, mx);
    }
}

void ops_row_scale(float *s, int64_t n, float c) {
    switch (cpu_level()) {
    case CPU_AVX512: ops_row_scale_avx512(s, n, c); break;
    case CPU_AVX2: ops_row_scale_avx2(s, n, c); break;
    default: scale_generic(s, n, c);
    }
}

void ops_row_qk_heads(float *s, int64_t ss, const float *q, int nh, int G, const float *k, int64_t ld, int64_t n,
                      int hd, float c) {
    if (cpu_level() >= CPU_AVX512) {
        ops_row_qk_heads_avx512(s, ss, q, nh, G, k, ld, n, hd, c);
        return;
    }
    /* rows outer, as in the AVX-512 kernel: each row's slice is read front to back */
    for (int64_t j = 0; j < n; j++)
        for (int h = 0; h < nh; h++)
            s[h * ss + j] = c * ops_row_dot(q + (int64_t)h * hd, k + j * ld + (int64_t)(h / G) * hd, hd);
}

void ops_row_pv_heads(float *o, const float *p, int64_t ss, int nh, int G, const float *v, int64_t ld, int64_t n,
                      int hd) {
    if (cpu_level() >= CPU_AVX512) {
        ops_row_pv_heads_avx512(o, p, ss, nh, G, v, ld, n, hd);
        return;
    }
    memset(o, 0, sizeof(float) * (size_t)nh * (size_t)hd);
    for (int64_t j = 0; j < n; j++)
        for (int h = 0; h < nh; h++) {
            const float pj = p[h * ss + j], *x = v + j * ld + (int64_t)(h / G) * hd;
            float *oh = o + (int64_t)h * hd;
            for (int d = 0; d < hd; d++) oh[d] += pj * x[d];
        }
}

float ops_row_dot(const float *a, const float *b, int64_t n) {
    switch (cpu_level()) {
    case CPU_AVX512: return ops_row_dot_avx512(a, b, n);
    case CPU_AVX2: return ops_row_dot_avx2(a, b, n);
    default: return dot_generic(a, b, n);
    }
}

void ops_row_softmax_bwd(float *d, const float *p, int64_t n, float dot, float c) {
    switch (cpu_level()) {
    case CPU_AVX512: ops_row_softmax_bwd_avx512(d, p, n, dot, c); break;
    case CPU_AVX2: ops_row_softmax_bwd_avx2(d, p, n, dot, c); break;
    default: softmax_bwd_generic(d, p, n, dot, c);
    }
}

void ops_row_exp(float *y, const float *x, int64_t n) {
    switch (cpu_level()) {
    case CPU_AVX512: ops_row_exp_avx512(y, x, n); break;
    case CPU_AVX2: ops_row_exp_avx2(y, x, n); break;
    default:
        for (int64_t j = 0; j < n; j++) y[j] = ops_row_exp1(x[j]);
    }
}

static void sigmoid_generic(float *s, const float *x, float k, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        float kx = k * x[j];
        float e = ops_row_exp1(-fabsf(kx));
        s[j] = (kx >= 0.0f ? 1.0f : e) / (1.0f + e);
    }
}

void ops_row_sigmoid(float *s, const float *x, float k, int64_t n) {
    switch (cpu_level()) {
    case CPU_AVX512: ops_row_sigmoid_avx512(s, x, k, n); break;
    case CPU_AVX2: ops_row_sigmoid_avx2(s, x, k, n); break;
    default: sigmoid_generic(s, x, k, n);
    }
}
