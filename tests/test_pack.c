/* test_pack.c — Q4_K and Q8_0 repacked 16 rows at a time (mm_pack, TENSOR_Q4K_X16,
 * TENSOR_Q8_0_X16): unpacking gives back the file's blocks; dequantization and
 * prefill are bit-identical to the unpacked weight; decode agrees with it to float
 * rounding, is bit-identical for 1, 2 and 3 threads and inside mm_linear_multi; the
 * VNNI kernels agree with the portable ones, also at the extreme activation sums;
 * bad layouts are errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/matmul.h"
#include "core/quant.h"
#include "core/quant_impl.h"
#include "testutil.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { return test_rnd(&rng_state); }
static float rndf(void) { return test_rndf(&rng_state); }

/* Rows of type t quantized from random floats whose scale varies per row, so the
 * block scales (and Q4_K's mins) all differ between the 16 rows of a group. */
static void *make_rows(int t, int64_t m, int64_t k) {
    const size_t rs = qt_row_size(t, k);
    unsigned char *w = malloc((size_t)m * rs);
    float *row = malloc((size_t)k * sizeof(float));
    for (int64_t r = 0; r < m; r++) {
        const float s = 0.05f + (float)(rnd() % 100) / 50.0f;
        for (int64_t i = 0; i < k; i++) row[i] = rndf() * s + (i % 64 < 8 ? 0.3f * s : 0.0f);
        qt_get(t)->from_float(row, w + (size_t)r * rs, k);
    }
    free(row);
    return w;
}

static tensor_t pack(const tensor_t *W, void **buf, pool_t *pool) {
    const int64_t m = W->ne[1], k = W->ne[0];
    /* not mm_pack_size, which is 0 without VNNI: the portable kernels are tested too */
    const size_t bytes = (size_t)(m / 16) * qt_pack_group_bytes(qt_pack_for_type(W->type), k);
    *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    tensor_t P;
    mm_pack(&P, W, *buf, pool);
    return P;
}

/* |sum| of |x_i w_i| per output row, the scale of its rounding error */
static double row_mag(const float *x, const float *w, int64_t k) {
    double a = 0;
    for (int64_t i = 0; i < k; i++) a += fabs((double)x[i] * w[i]);
    return a;
}

int main(void) {
    err_t err;
    err_clear(&err);
    mm_ctx_t *c1 = NULL, *c2 = NULL, *c3 = NULL;
    CHECK_OK(mm_ctx_create(&c1, 1, &err), &err);
    CHECK_OK(mm_ctx_create(&c2, 2, &err), &err);
    CHECK_OK(mm_ctx_create(&c3, 3, &err), &err);
    mm_ctx_t *cs[3] = {c1, c2, c3};

    /* Q4_K: k = 17 superblocks crosses the 16-block unpack batch; Q8_0: k = 33 x 64
     * crosses the 32-block one; m = 3 groups */
    const struct {
        int type, layout;
        int64_t m, k;
        size_t packed_row; /* bytes per row of the packed form, per 256 inputs */
    } cases[] = {{QT_Q4_K, TENSOR_Q4K_X16, 48, 256, 148},     {QT_Q4_K, TENSOR_Q4K_X16, 48, 17 * 256, 148},
                 {QT_Q4_K, TENSOR_Q4K_X16, 64, 4096, 148},    {QT_Q8_0, TENSOR_Q8_0_X16, 48, 64, 272},
                 {QT_Q8_0, TENSOR_Q8_0_X16, 48, 33 * 64, 272}, {QT_Q8_0, TENSOR_Q8_0_X16, 64, 4096, 272}};
    for (size_t si = 0; si < sizeof cases / sizeof *cases; si++) {
        const int type = cases[si].type;
        const int64_t m = cases[si].m, k = cases[si].k;
        const size_t rs = qt_row_size(type, k);
        void *wq = make_rows(type, m, k);
        tensor_t W = {.name = "w.packable", .type = type, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq,
                      .nbytes = (size_t)m * rs};
        void *buf;
        const tensor_t P = pack(&W, &buf, si % 3 == 1 ? mm_ctx_pool(c2) : NULL);
        CHECK(P.layout == cases[si].layout && P.type == type && P.ne[0] == k && P.ne[1] == m);
        CHECK(P.nbytes == (size_t)m * (size_t)k * cases[si].packed_row / 256);

        /* unpacking gives every block of the file back, byte for byte */
        int bad = 0;
        const size_t group = P.nbytes / (size_t)(m / 16);
        for (int64_t r = 0; r < m; r++) {
            const unsigned char *g = (const unsigned char *)buf + (size_t)(r / 16) * group;
            if (type == QT_Q4_K) {
                for (int64_t i = 0; i < k / 256; i++) {
                    block_q4_K b;
                    qt_q4_Kx16_get_block(g, (int)(r % 16), i, &b);
                    bad += memcmp(&b, (const unsigned char *)wq + (size_t)r * rs + (size_t)i * sizeof b, sizeof b) != 0;
                }
            } else {
                for (int64_t i = 0; i < k / 32; i++) {
                    block_q8_0 b;
                    qt_q8_0x16_get_block(g, (int)(r % 16), i, &b);
                    bad += memcmp(&b, (const unsigned char *)wq + (size_t)r * rs + (size_t)i * sizeof b, sizeof b) != 0;
                }
            }
        }
        CHECK_MSG(bad == 0, "type %d k=%lld: %d blocks differ after unpacking", type, (long long)k, bad);

        /* dequantized rows: the same bits, for any row range */
        float *A = malloc((size_t)(m * k) * sizeof(float)), *B = malloc((size_t)(m * k) * sizeof(float));
        const int64_t ranges[][2] = {{0, m}, {5, 20}, {m - 1, 1}};
        for (int ri = 0; ri < 3; ri++) {
            mm_dequant_rows(&W, ranges[ri][0], ranges[ri][1], A);
            mm_dequant_rows(&P, ranges[ri][0], ranges[ri][1], B);
            CHECK(!memcmp(A, B, (size_t)(ranges[ri][1] * k) * sizeof(float)));
        }
        mm_dequant_rows(&W, 0, m, A); /* A: the whole matrix, for the magnitudes below */

        /* prefill: the same bits as the unpacked weight, on 1..3 threads */
        const int64_t n = 9;
        float *X = malloc((size_t)(n * k) * sizeof(float));
        for (int64_t i = 0; i < n * k; i++) X[i] = rndf();
        float *Yw = malloc((size_t)(n * m) * sizeof(float)), *Yp = malloc((size_t)(n * m) * sizeof(float));
        float *bias = malloc((size_t)m * sizeof(float));
        for (int64_t r = 0; r < m; r++) bias[r] = rndf();
        CHECK_OK(mm_linear(c2, Yw, X, n, k, &W, bias, &err), &err);
        for (int t = 0; t < 3; t++) {
            CHECK_OK(mm_linear(cs[t], Yp, X, n, k, &P, bias, &err), &err);
            CHECK(!memcmp(Yw, Yp, (size_t)(n * m) * sizeof(float)));
        }

        /* decode, n = 1..4, integer and exact kernels: within float rounding of the
         * unpacked weight (same quantized activations, same integer sums) */
        for (int exact = 0; exact < 2; exact++)
            for (int64_t nd = 1; nd <= 4; nd++) {
                for (int t = 0; t < 3; t++) mm_ctx_set_exact(cs[t], exact);
                CHECK_OK(mm_linear(c1, Yw, X, nd, k, &W, bias, &err), &err);
                float *Y3[3];
                for (int t = 0; t < 3; t++) {
                    Y3[t] = malloc((size_t)(nd * m) * sizeof(float));
                    CHECK_OK(mm_linear(cs[t], Y3[t], X, nd, k, &P, bias, &err), &err);
                }
                CHECK(!memcmp(Y3[0], Y3[1], (size_t)(nd * m) * sizeof(float)));
                CHECK(!memcmp(Y3[0], Y3[2], (size_t)(nd * m) * sizeof(float)));
                double worst = 0;
                for (int64_t i = 0; i < nd; i++)
                    for (int64_t r = 0; r < m; r++) {
                        const double e = fabs((double)Y3[0][i * m + r] - Yw[i * m + r]) /
                                         (row_mag(X + i * k, A + r * k, k) + fabs(bias[r]));
                        if (!(e <= worst)) worst = e;
                    }
                CHECK_MSG(worst <= 1e-5, "type %d k=%lld n=%lld exact=%d: packed decode off by %.3g of the magnitude",
                          type, (long long)k, (long long)nd, exact, worst);
                for (int t = 0; t < 3; t++) free(Y3[t]);
            }
        for (int t = 0; t < 3; t++) mm_ctx_set_exact(cs[t], 0);

        /* in one decode dispatch with an unpacked weight: the same bits as alone */
        {
            void *w2 = make_rows(type, 32, k);
            const tensor_t W2 = {.name = "w.other", .type = type, .n_dims = 2, .ne = {k, 32, 1, 1}, .data = w2};
            float *Ya = malloc((size_t)m * sizeof(float)), *Yb = malloc(32 * sizeof(float));
            float *Ma = malloc((size_t)m * sizeof(float)), *Mb = malloc(32 * sizeof(float));
            CHECK_OK(mm_linear(c2, Ya, X, 1, k, &P, NULL, &err), &err);
            CHECK_OK(mm_linear(c2, Yb, X, 1, k, &W2, NULL, &err), &err);
            const mm_out_t out[2] = {{Mb, &W2, NULL}, {Ma, &P, NULL}};
            CHECK_OK(mm_linear_multi(c2, X, 1, k, out, 2, &err), &err);
            CHECK(!memcmp(Ya, Ma, (size_t)m * sizeof(float)) && !memcmp(Yb, Mb, 32 * sizeof(float)));
            free(w2), free(Ya), free(Yb), free(Ma), free(Mb);
        }
        free(A), free(B), free(X), free(Yw), free(Yp), free(bias), free(buf), free(wq);
    }

    /* the VNNI kernels against the portable ones, with activations at the extremes
     * (Q4_K: the min term's split at sub-block sums of +-32*127; Q8_0: the init
     * lanes at block sums of +-32*127) and random ones */
    if (cpu_has_vnni())
        for (int ti = 0; ti < 2; ti++) {
            const int type = ti ? QT_Q8_0 : QT_Q4_K;
            const qt_pack_traits *pt = qt_pack_for_type(type);
            const int64_t m = 16, k = 1024;
            void *wq = make_rows(type, m, k);
            const tensor_t W = {.name = "w.vnni", .type = type, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq};
            void *buf;
            const tensor_t P = pack(&W, &buf, NULL);
            float *x = malloc((size_t)k * sizeof(float)), *wd = malloc((size_t)(m * k) * sizeof(float));
            mm_dequant_rows(&W, 0, m, wd);
            void *xq = malloc(qt_act_row_size(pt->act, k));
            for (int kind = 0; kind < 4; kind++) {
                for (int64_t i = 0; i < k; i++)
                    x[i] = kind == 0 ? 1.0f : kind == 1 ? -1.0f : kind == 2 ? (i % 512 < 256 ? 1.0f : -1.0f) : rndf();
                qt_quantize_act(pt->act, x, xq, k);
                float got[16], want[16];
                pt->vdot_vnni(P.data, xq, k, got);
                pt->vdot_ref(P.data, xq, k, want);
                for (int r = 0; r < 16; r++)
                    CHECK_MSG(fabs(got[r] - want[r]) <= 1e-5 * row_mag(x, wd + r * k, k),
                              "type %d activations %d row %d: vnni %.7g vs reference %.7g", type, kind, r, got[r],
                              want[r]);
            }
            free(x), free(wd), free(xq), free(buf), free(wq);
        }

    /* which weights mm_pack_size takes, and the environment switch */
    {
        unsigned char dummy[1];
        tensor_t W = {.name = "w", .type = QT_Q4_K, .n_dims = 2, .ne = {512, 32, 1, 1}, .data = dummy};
        CHECK(mm_pack_size(&W) == (cpu_has_vnni() ? 32 * 2 * 148u : 0u));
        W.ne[1] = 40;
        CHECK(mm_pack_size(&W) == 0);
        W.ne[1] = 32;
        W.type = QT_Q8_0;
        CHECK(mm_pack_size(&W) == (cpu_has_vnni() ? 32 * 544u : 0u)); /* 512 inputs: 8 blocks of 34 bytes */
        W.ne[0] = 96; /* not a multiple of 64 */
        CHECK(mm_pack_size(&W) == 0);
        W.ne[0] = 512;
        W.type = QT_F16;
        CHECK(mm_pack_size(&W) == 0);
        W.type = QT_Q4_K;
        W.layout = TENSOR_Q4K_X16;
        CHECK(mm_pack_size(&W) == 0);
        W.layout = TENSOR_ROWS;
        setenv("LLAVA_MECH_NO_REPACK", "1", 1);
        CHECK(mm_pack_size(&W) == 0);
        setenv("LLAVA_MECH_NO_REPACK", "0", 1);
        CHECK(mm_pack_size(&W) == (cpu_has_vnni() ? 32 * 2 * 148u : 0u));
        unsetenv("LLAVA_MECH_NO_REPACK");
    }

    /* a packed layout on a weight it does not fit is an error naming the tensor */
    {
        float x[512] = {0}, y[48];
        unsigned char w[48 * 2 * 148] = {0};
        tensor_t W = {.name = "blk.3.ffn_up.weight", .type = QT_Q4_K, .n_dims = 2, .ne = {512, 40, 1, 1},
                      .data = w, .layout = TENSOR_Q4K_X16};
        err_clear(&err);
        CHECK(mm_linear(c2, y, x, 1, 512, &W, NULL, &err) == ERR_MISMATCH);
        CHECK(strstr(err.msg, "blk.3.ffn_up.weight") != NULL);
        W.ne[1] = 48;
        W.type = QT_Q8_0;
        CHECK(mm_linear(c2, y, x, 1, 512, &W, NULL, &err) == ERR_MISMATCH);
        W.layout = TENSOR_Q8_0_X16; /* Q8_0's layout on 96 inputs: not a multiple of 64 */
        W.ne[0] = 96;
        CHECK(mm_linear(c2, y, x, 1, 96, &W, NULL, &err) == ERR_MISMATCH);
        W.ne[0] = 512;
        W.type = QT_Q4_K;
        W.layout = 7;
        CHECK(mm_linear(c2, y, x, 1, 512, &W, NULL, &err) == ERR_MISMATCH);
    }
    mm_ctx_free(c1);
    mm_ctx_free(c2);
    mm_ctx_free(c3);
    return test_result("test_pack");
}
