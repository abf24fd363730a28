/* test_ops_row.c — the softmax row kernels of core/ops_row.h, every ISA version the
 * machine supports, against double-precision references: exp to a few ulp over the
 * whole range softmax uses (and exactly 0 below ln(2^-126) and for -inf), max, sums,
 * dot products and the softmax backward on lengths that exercise every tail, and the
 * decoding attention kernels. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/ops_row.h"
#include "tests/testutil.h"

typedef struct {
    const char *name;
    float (*add_max)(float *, const float *, int64_t);
    float (*exp_sum)(float *, int64_t, float);
    void (*scale)(float *, int64_t, float);
    float (*dot)(const float *, const float *, int64_t);
    void (*smbwd)(float *, const float *, int64_t, float, float);
    void (*exp)(float *, const float *, int64_t);
    void (*sigmoid)(float *, const float *, float, int64_t);
} row_impl;

static void test_impl(const row_impl *im) {
    enum { N = 1000 };
    static float x[N], y[N], b[N], d[N];
    /* exp over [-90, 0] plus -inf: relative error <= 4 ulp-ish (2.5e-7). */
    double max_rel = 0;
    for (int i = 0; i < N; i++) x[i] = -90.0f * (float)i / (N - 1);
    x[7] = -INFINITY;
    memcpy(y, x, sizeof y);
    float sum = im->exp_sum(y, N, 0.0f);
    double ref_sum = 0;
    for (int i = 0; i < N; i++) {
        double r = x[i] < -87.33654f ? 0.0 : exp((double)x[i]);
        ref_sum += r;
        if (r == 0.0) {
            CHECK_MSG(y[i] == 0.0f, "%s: exp(%g) = %g, want 0", im->name, x[i], y[i]);
        } else {
            double rel = fabs(y[i] - r) / r;
            if (rel > max_rel) max_rel = rel;
        }
    }
    CHECK_MSG(max_rel <= 2.5e-7, "%s: exp max relative error %.3g", im->name, max_rel);
    CHECK_NEAR(sum, ref_sum, 1e-6 * ref_sum);
    /* exp with a shift (x - mx), positive arguments up to 20. */
    for (int i = 0; i < 37; i++) x[i] = 20.0f * sinf((float)i);
    memcpy(y, x, 37 * sizeof(float));
    im->exp_sum(y, 37, -1.5f);
    for (int i = 0; i < 37; i++) CHECK_NEAR(y[i], exp((double)x[i] + 1.5), 3e-7 * exp((double)x[i] + 1.5));
    /* Array exp, out of place, every tail length; below ln(2^-126) and -inf give 0. */
    for (int n = 0; n <= 35; n++) {
        for (int i = 0; i < n; i++)
            x[i] = (i % 7 == 6) ? -INFINITY : 11.0f * sinf(2.1f * (float)i) - (i % 4 == 1 ? 90.0f : 0.0f);
        y[n] = 1234.0f;
        im->exp(y, x, n);
        for (int i = 0; i < n; i++) {
            double r = x[i] < -87.33654f ? 0.0 : exp((double)x[i]);
            CHECK_MSG(fabs(y[i] - r) <= 2.5e-7 * r, "%s: exp(%g) = %.9g, want %.9g", im->name, x[i], y[i], r);
        }
        CHECK(y[n] == 1234.0f);
    }

    /* Sigmoid: no overflow for large |k x|, 2 ulp-ish against double. */
    for (int n = 0; n <= 35; n++) {
        for (int i = 0; i < n; i++) x[i] = 30.0f * sinf(1.7f * (float)i) + (i % 5 == 2 ? 200.0f : 0.0f);
        y[n] = 1234.0f;
        im->sigmoid(y, x, 1.702f, n);
        for (int i = 0; i < n; i++) {
            double r = 1.0 / (1.0 + exp(-(double)(1.702f * x[i]))); /* k x rounds to f32 first */
            CHECK_MSG(fabs(y[i] - r) <= 3e-7 * r + 1e-37, "%s: sigmoid(%g) = %.9g, want %.9g", im->name, x[i], y[i], r);
        }
        CHECK(y[n] == 1234.0f);
    }

    for (int n = 0; n <= 40; n++) {
        for (int i = 0; i < n; i++) {
            x[i] = sinf(1.3f * (float)i + (float)n);
            b[i] = (i % 5 == 3) ? -INFINITY : cosf((float)i);
            d[i] = cosf(0.7f * (float)i);
        }
        x[n] = 1234.0f; /* beyond n: must be neither read into results nor written */
        b[n] = 1234.0f;
        memcpy(y, x, sizeof(float) * (size_t)(n + 1));
        float mx = im->add_max(y, b, n);
        float rmx = -INFINITY;
        for (int i = 0; i < n; i++) {
            CHECK(y[i] == x[i] + b[i]);
            if (x[i] + b[i] > rmx) rmx = x[i] + b[i];
        }
        CHECK_MSG(mx == rmx, "%s: add_max n=%d: %g vs %g", im->name, n, mx, rmx);
        CHECK(y[n] == 1234.0f);
        memcpy(y, x, sizeof(float) * (size_t)(n + 1));
        CHECK(im->add_max(y, NULL, n) == (n ? im->add_max(x, NULL, n) : -INFINITY));
        double rdot = 0;
        for (int i = 0; i < n; i++) rdot += (double)x[i] * d[i];
        CHECK_NEAR(im->dot(x, d, n), rdot, 1e-5);
        memcpy(y, d, sizeof(float) * (size_t)(n + 1));
        y[n] = 1234.0f;
        im->smbwd(y, x, n, 0.25f, 0.5f);
        for (int i = 0; i < n; i++) CHECK_NEAR(y[i], 0.5 * x[i] * (d[i] - 0.25), 1e-6);
        CHECK(y[n] == 1234.0f);
        im->scale(y, n, 2.0f);
        for (int i = 0; i < n; i++) CHECK_NEAR(y[i], x[i] * (d[i] - 0.25), 1e-6);
        CHECK(y[n] == 1234.0f);
    }
}

/* Worst relative error (to the sum of |terms|) of nh heads' scores s + h ss against
 * c * q_h . k_j in double; q_h = q + h hd, head h reads key head h / G, the key heads
 * hd floats apart at the start of rows ld apart. */
static double qk_error(const float *s, int64_t ss, const float *q, int nh, int G, int hd, const float *kv, int64_t ld,
                       int64_t n, double c) {
    double worst = 0;
    for (int h = 0; h < nh; h++)
        for (int64_t j = 0; j < n; j++) {
            const float *k = kv + j * ld + (int64_t)(h / G) * hd;
            double ref = 0, mag = 0;
            for (int d = 0; d < hd; d++) {
                const double x = (double)q[h * hd + d] * k[d];
                ref += x, mag += fabs(x);
            }
            worst = fmax(worst, fabs(s[h * ss + j] - c * ref) / (c * mag + 1e-30));
        }
    return worst;
}

/* The same for outputs o + h hd against sum_j p[h ss + j] v_j. */
static double pv_error(const float *o, const float *p, int64_t ss, int nh, int G, int hd, const float *kv, int64_t ld,
                       int64_t n) {
    double worst = 0;
    for (int h = 0; h < nh; h++)
        for (int d = 0; d < hd; d++) {
            double ref = 0, mag = 0;
            for (int64_t j = 0; j < n; j++) {
                const double x = (double)p[h * ss + j] * kv[j * ld + (int64_t)(h / G) * hd + d];
                ref += x, mag += fabs(x);
            }
            worst = fmax(worst, fabs(o[h * hd + d] - ref) / (mag + 1e-30));
        }
    return worst;
}

typedef void (*qk_fn)(float *, int64_t, const float *, int, int, const float *, int64_t, int64_t, int, float);
typedef void (*pv_fn)(float *, const float *, int64_t, int, int, const float *, int64_t, int64_t, int);

/* One shape: buffers are allocated to size (the cache ends where the last row's slice
 * ends) so the sanitizers see any access outside them; one float past each head's
 * scores and past the outputs must stay untouched. */
static void check_decode(const char *name, qk_fn qk, pv_fn pv, int nh, int G, int hd, int64_t n, uint64_t *rng) {
    const int w = nh / G * hd;
    const int64_t ld = w + 8, ss = n + 1;
    float *q = malloc(sizeof(float) * (size_t)(nh * hd)), *kv = malloc(sizeof(float) * (size_t)((n - 1) * ld + w));
    float *s = malloc(sizeof(float) * (size_t)(nh * ss)), *o = malloc(sizeof(float) * (size_t)(nh * hd + 1));
    for (int i = 0; i < nh * hd; i++) q[i] = test_rndf(rng);
    for (int64_t i = 0; i < (n - 1) * ld + w; i++) kv[i] = test_rndf(rng) * (i % 5 == 0 ? 3.0f : 1.0f);
    for (int h = 0; h < nh; h++) s[h * ss + n] = 1234.0f;
    qk(s, ss, q, nh, G, kv, ld, n, hd, 0.125f);
    double worst = qk_error(s, ss, q, nh, G, hd, kv, ld, n, 0.125);
    CHECK_MSG(worst <= 1e-6, "%s qk heads %d G %d hd %d n %ld: relative error %.3g", name, nh, G, hd, (long)n, worst);
    for (int h = 0; h < nh; h++) {
        CHECK_MSG(s[h * ss + n] == 1234.0f, "%s qk heads %d G %d hd %d n %ld wrote past the scores", name, nh, G, hd,
                  (long)n);
        for (int64_t j = 0; j < n; j++) s[h * ss + j] = 1.0f / (float)(j + h + 1);
    }
    o[nh * hd] = 1234.0f;
    pv(o, s, ss, nh, G, kv, ld, n, hd);
    worst = pv_error(o, s, ss, nh, G, hd, kv, ld, n);
    CHECK_MSG(worst <= 1e-6, "%s pv heads %d G %d hd %d n %ld: relative error %.3g", name, nh, G, hd, (long)n, worst);
    CHECK_MSG(o[nh * hd] == 1234.0f, "%s pv heads %d G %d hd %d n %ld wrote past the output", name, nh, G, hd,
              (long)n);
    free(q), free(kv), free(s), free(o);
}

/* The decoding kernels against double sums: every key tail (n % 4 and n % 16), blocks
 * of q.k rows (16 to 256 a block), head widths that are and are not multiples of 16
 * and of 64; single heads, runs of independent heads, more than 16 heads (two passes
 * of q.k), groups that share a key/value head four at a time (the 64-wide grouped
 * kernels) and groups that do not (G = 2, 3). */
static void test_decode(const char *name, qk_fn qk, pv_fn pv) {
    static const int hds[] = {64, 128, 7, 16, 80, 200};
    static const int shapes[][2] = {{1, 1}, {3, 1}, {8, 1}, {17, 1}, {4, 4}, {8, 8}, {12, 4}, {8, 2}, {6, 3}};
    uint64_t rng = 0x5eed;
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
        for (size_t b = 0; b < sizeof shapes / sizeof *shapes; b++) {
            for (int64_t n = 1; n <= 17; n++) check_decode(name, qk, pv, shapes[b][0], shapes[b][1], hds[a], n, &rng);
            check_decode(name, qk, pv, shapes[b][0], shapes[b][1], hds[a], 33, &rng);
            check_decode(name, qk, pv, shapes[b][0], shapes[b][1], hds[a], 70, &rng);
            if (shapes[b][0] <= 3) check_decode(name, qk, pv, shapes[b][0], shapes[b][1], hds[a], 301, &rng);
        }
}

int main(void) {
    static const row_impl dispatch = {"dispatch", ops_row_add_max, ops_row_exp_sum, ops_row_scale, ops_row_dot,
                                      ops_row_softmax_bwd, ops_row_exp, ops_row_sigmoid};
    static const row_impl avx2 = {"avx2", ops_row_add_max_avx2, ops_row_exp_sum_avx2, ops_row_scale_avx2,
                                  ops_row_dot_avx2, ops_row_softmax_bwd_avx2, ops_row_exp_avx2,
                                  ops_row_sigmoid_avx2};
    static const row_impl avx512 = {"avx512", ops_row_add_max_avx512, ops_row_exp_sum_avx512,
                                    ops_row_scale_avx512, ops_row_dot_avx512, ops_row_softmax_bwd_avx512,
                                    ops_row_exp_avx512, ops_row_sigmoid_avx512};
    test_impl(&dispatch);
    if (cpu_level_hw() >= CPU_AVX2) test_impl(&avx2);
    if (cpu_level_hw() >= CPU_AVX512) test_impl(&avx512);
    test_decode(cpu_level_name(cpu_level()), ops_row_qk_heads, ops_row_pv_heads);
    if (cpu_level_hw() >= CPU_AVX512) test_decode("avx512", ops_row_qk_heads_avx512, ops_row_pv_heads_avx512);
    return test_result("test_ops_row");
}
