/* test_pack.c — Q4_K repacked 16 rows at a time (mm_pack, TENSOR_Q4K_X16): unpacking
 * gives back the Q4_K bytes; dequantization and prefill are bit-identical to the
 * unpacked weight; decode agrees with it to float rounding, is bit-identical for
 * 1, 2 and 3 threads and inside mm_linear_multi; the VNNI kernel agrees with the
 * portable one, also at the extreme activation sums; bad layouts are errors. */
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

/* Q4_K rows quantized from random floats whose scale varies per row, so d, dmin,
 * scales and mins all differ between the 16 rows of a group. */
static void *make_q4k(int64_t m, int64_t k) {
    const size_t rs = qt_row_size(QT_Q4_K, k);
    unsigned char *w = malloc((size_t)m * rs);
    float *row = malloc((size_t)k * sizeof(float));
    for (int64_t r = 0; r < m; r++) {
        const float s = 0.05f + (float)(rnd() % 100) / 50.0f;
        for (int64_t i = 0; i < k; i++) row[i] = rndf() * s + (i % 64 < 8 ? 0.3f * s : 0.0f);
        qt_get(QT_Q4_K)->from_float(row, w + (size_t)r * rs, k);
    }
    free(row);
    return w;
}

static tensor_t pack(const tensor_t *W, void **buf, pool_t *pool) {
    const int64_t m = W->ne[1], k = W->ne[0];
    const size_t bytes = (size_t)m * QT_Q4_KX16_ROW_BYTES(k);
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

    /* k = 17 superblocks crosses the 16-block unpack batch; m = 3 groups */
    const int64_t shapes[][2] = {{48, 256}, {48, 17 * 256}, {64, 4096}};
    for (int si = 0; si < 3; si++) {
        const int64_t m = shapes[si][0], k = shapes[si][1];
        const size_t rs = qt_row_size(QT_Q4_K, k);
        void *wq = make_q4k(m, k);
        tensor_t W = {.name = "w.q4k", .type = QT_Q4_K, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq,
                      .nbytes = (size_t)m * rs};
        void *buf;
        const tensor_t P = pack(&W, &buf, si == 1 ? mm_ctx_pool(c2) : NULL);
        CHECK(P.layout == TENSOR_Q4K_X16 && P.type == QT_Q4_K && P.ne[0] == k && P.ne[1] == m);
        CHECK(P.nbytes == (size_t)m * k / 256 * 148);

        /* unpacking gives every Q4_K block back, byte for byte */
        int bad = 0;
        for (int64_t r = 0; r < m; r++)
            for (int64_t i = 0; i < k / 256; i++) {
                block_q4_K b;
                qt_q4_Kx16_get_block((const unsigned char *)buf + (size_t)(r / 16) * 16 * QT_Q4_KX16_ROW_BYTES(k),
                                     (int)(r % 16), i, &b);
                bad += memcmp(&b, (const unsigned char *)wq + (size_t)r * rs + (size_t)i * sizeof b, sizeof b) != 0;
            }
        CHECK_MSG(bad == 0, "k=%lld: %d blocks differ after unpacking", (long long)k, bad);

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
                CHECK_MSG(worst <= 1e-5, "k=%lld n=%lld exact=%d: packed decode off by %.3g of the magnitude",
                          (long long)k, (long long)nd, exact, worst);
                for (int t = 0; t < 3; t++) free(Y3[t]);
            }
        for (int t = 0; t < 3; t++) mm_ctx_set_exact(cs[t], 0);

        /* in one decode dispatch with an unpacked weight: the same bits as alone */
        {
            void *w2 = make_q4k(32, k);
            const tensor_t W2 = {.name = "w.other", .type = QT_Q4_K, .n_dims = 2, .ne = {k, 32, 1, 1}, .data = w2};
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

    /* the VNNI kernel against the portable one, with activations at the extremes of
     * the min term's split (sub-block sums of +-32*127) and random ones */
    if (cpu_has_vnni()) {
        const int64_t m = 16, k = 1024;
        void *wq = make_q4k(m, k);
        const tensor_t W = {.name = "w.vnni", .type = QT_Q4_K, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq};
        void *buf;
        const tensor_t P = pack(&W, &buf, NULL);
        float *x = malloc((size_t)k * sizeof(float)), *wd = malloc((size_t)(m * k) * sizeof(float));
        mm_dequant_rows(&W, 0, m, wd);
        void *xq = malloc(qt_act_row_size(QT_ACT_Q8_K, k));
        for (int kind = 0; kind < 4; kind++) {
            for (int64_t i = 0; i < k; i++)
                x[i] = kind == 0 ? 1.0f : kind == 1 ? -1.0f : kind == 2 ? (i % 512 < 256 ? 1.0f : -1.0f) : rndf();
            qt_quantize_act(QT_ACT_Q8_K, x, xq, k);
            float got[16], want[16];
            qt_vnni_vdot_q4_Kx16(P.data, xq, k, got);
            qt_ref_vdot_q4_Kx16(P.data, xq, k, want);
            for (int r = 0; r < 16; r++)
                CHECK_MSG(fabs(got[r] - want[r]) <= 1e-5 * row_mag(x, wd + r * k, k),
                          "activations %d row %d: vnni %.7g vs reference %.7g", kind, r, got[r], want[r]);
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
        W.type = QT_Q4_K;
        W.layout = 7;
        CHECK(mm_linear(c2, y, x, 1, 512, &W, NULL, &err) == ERR_MISMATCH);
    }
    mm_ctx_free(c1);
    mm_ctx_free(c2);
    mm_ctx_free(c3);
    return test_result("test_pack");
}
