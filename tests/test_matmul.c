/* test_matmul.c — mm_linear against a double-precision reference for every type,
 * odd shapes, n = 1, 2, 3, 5 (fused-dot and sgemm paths) and 600, with and without
 * bias; bit-identical output for 1, 2 and 3 threads; error reporting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/matmul.h"
#include "core/quant.h"
#include "testutil.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) { return test_rnd(&rng_state); }
static float rndf(void) { return test_rndf(&rng_state); }

/* Random weights of type t: quantized from random floats when we can write the type,
 * otherwise random bytes with sane fp16 scales (every field is read, so any bytes
 * are a valid tensor once the scales are finite). */
static void *make_weights(int t, int64_t m, int64_t k) {
    const qt_traits *tr = qt_get(t);
    const size_t rs = qt_row_size(t, k);
    unsigned char *w = malloc((size_t)m * rs);
    float *row = malloc((size_t)k * sizeof(float));
    for (int64_t r = 0; r < m; r++) {
        unsigned char *dst = w + (size_t)r * rs;
        if (tr->from_float) {
            for (int64_t i = 0; i < k; i++) row[i] = rndf() * 0.5f;
            tr->from_float(row, dst, k);
            continue;
        }
        for (size_t i = 0; i < rs; i++) dst[i] = (unsigned char)rnd();
        for (int64_t b = 0; b < k / tr->block_size; b++) {
            unsigned char *blk = dst + (size_t)b * tr->type_size;
            const uint16_t d = qt_f32_to_f16(0.002f + 0.01f * (float)(rnd() % 100) / 100.0f);
            const uint16_t mn = qt_f32_to_f16(0.01f * rndf());
            switch (t) {
            case QT_BF16: { const uint16_t h = qt_f32_to_bf16(rndf()); memcpy(blk, &h, 2); break; }
            case QT_Q5_0: memcpy(blk, &d, 2); break;
            case QT_Q4_1: case QT_Q5_1: case QT_Q5_K: memcpy(blk, &d, 2); memcpy(blk + 2, &mn, 2); break;
            case QT_Q2_K: memcpy(blk + 80, &d, 2); memcpy(blk + 82, &mn, 2); break;
            case QT_Q3_K: memcpy(blk + 108, &d, 2); break;
            case QT_Q6_K: memcpy(blk + 208, &d, 2); break;
            case QT_Q8_K: { const float f = 0.003f; memcpy(blk, &f, 4); break; }
            }
        }
    }
    free(row);
    return w;
}

/* Y = X Wd^T + bias in double, Wd the reference dequantization */
static void reference(double *Y, double *mag, const float *X, const float *Wd, const float *bias,
                      int64_t n, int64_t m, int64_t k) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < m; r++) {
            double s = bias ? bias[r] : 0.0, a = bias ? fabs(bias[r]) : 0.0;
            for (int64_t j = 0; j < k; j++) {
                const double p = (double)X[i * k + j] * Wd[r * k + j];
                s += p;
                a += fabs(p);
            }
            Y[i * m + r] = s;
            mag[i * m + r] = a;
        }
}

static int check_against(const char *what, const float *Y, const double *ref, const double *mag,
                         int64_t count, int64_t k) {
    int bad = 0;
    for (int64_t i = 0; i < count; i++) {
        /* float accumulation: error grows ~ sqrt(k) ulps of the magnitude sum */
        const double tol = 2e-7 * sqrt((double)k) * mag[i] + 1e-30;
        if (!(fabs(Y[i] - ref[i]) <= tol)) {
            if (bad < 3) fprintf(stderr, "%s: Y[%lld] = %.9g, want %.9g (tol %.3g)\n", what, (long long)i, Y[i], ref[i], tol);
            bad++;
        }
    }
    return bad;
}

int main(void) {
    err_t err = {0};
    mm_ctx_t *c1 = NULL, *c2 = NULL, *c3 = NULL;
    CHECK_OK(mm_ctx_create(&c1, 1, &err), &err);
    CHECK_OK(mm_ctx_create(&c2, 2, &err), &err);
    CHECK_OK(mm_ctx_create(&c3, 3, &err), &err);
    if (!c1 || !c2 || !c3) return test_result("test_matmul");
    CHECK(mm_ctx_threads(c2) == 2 && mm_ctx_threads(c3) == 3);
    CHECK(pool_size(mm_ctx_pool(c3)) == 3);
    /* exact mode for the tight comparisons; the integer decode path is checked
     * separately below with its own error bound */
    mm_ctx_set_exact(c1, 1);
    mm_ctx_set_exact(c2, 1);
    mm_ctx_set_exact(c3, 1);

    static const int types[] = {QT_F32, QT_F16, QT_BF16, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1,
                                QT_Q8_0, QT_Q2_K, QT_Q3_K, QT_Q4_K, QT_Q5_K, QT_Q6_K, QT_Q8_K};
    const int64_t ns[] = {1, 2, 3, 5, 600};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const int t = types[ti];
        const qt_traits *tr = qt_get(t);
        const int64_t k = tr->block_size == 1 ? 77 : tr->block_size == 32 ? 160 : 512;
        const int64_t m = 53;
        void *wq = make_weights(t, m, k);
        tensor_t W = {.name = "w.test", .type = t, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq,
                      .nbytes = (size_t)m * qt_row_size(t, k)};
        float *Wd = malloc((size_t)(m * k) * sizeof(float));
        mm_dequant_rows(&W, 0, m, Wd);
        float bias[53];
        for (int r = 0; r < m; r++) bias[r] = rndf();
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
            const int64_t n = ns[ni];
            float *X = malloc((size_t)(n * k) * sizeof(float));
            for (int64_t i = 0; i < n * k; i++) X[i] = rndf();
            float *Y1 = malloc((size_t)(n * m) * sizeof(float)), *Y2 = malloc((size_t)(n * m) * sizeof(float));
            float *Y3 = malloc((size_t)(n * m) * sizeof(float));
            double *ref = malloc((size_t)(n * m) * sizeof(double)), *mag = malloc((size_t)(n * m) * sizeof(double));
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                const float *b = with_bias ? bias : NULL;
                reference(ref, mag, X, Wd, b, n, m, k);
                CHECK_OK(mm_linear(c1, Y1, X, n, k, &W, b, &err), &err);
                CHECK_OK(mm_linear(c2, Y2, X, n, k, &W, b, &err), &err);
                mm_ctx_set_tile_rows(c3, 16); /* several tiles: 53 = 16+16+16+5 */
                mm_ctx_set_tile_rows(c1, 16);
                CHECK_OK(mm_linear(c3, Y3, X, n, k, &W, b, &err), &err);
                char what[64];
                snprintf(what, sizeof what, "%s n=%lld bias=%d", tr->name, (long long)n, with_bias);
                CHECK_MSG(check_against(what, Y1, ref, mag, n * m, k) == 0, "%s vs reference", what);
                CHECK_MSG(!memcmp(Y1, Y2, (size_t)(n * m) * sizeof(float)), "%s: 1 vs 2 threads differ", what);
                CHECK_MSG(check_against(what, Y3, ref, mag, n * m, k) == 0, "%s (16-row tiles) vs reference", what);
                CHECK_OK(mm_linear(c1, Y1, X, n, k, &W, b, &err), &err);
                CHECK_MSG(!memcmp(Y1, Y3, (size_t)(n * m) * sizeof(float)), "%s: 1 vs 3 threads differ (16-row tiles)", what);
                mm_ctx_set_tile_rows(c3, 0);
                mm_ctx_set_tile_rows(c1, 0);
            }
            free(X), free(Y1), free(Y2), free(Y3), free(ref), free(mag);
        }
        free(Wd);
        free(wq);
    }

    /* integer decode path (n <= 4, every quant type): X is quantized to 8 bits per
     * block (|e| <= amax/254 per element), so |Y - ref| <= sum_j |w_j| amax_b(j)/254
     * plus float rounding; same bits for 1 and 2 threads */
    mm_ctx_set_exact(c1, 0);
    mm_ctx_set_exact(c2, 0);
    {
        static const int itypes[] = {QT_Q8_0, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q2_K, QT_Q3_K, QT_Q4_K, QT_Q5_K, QT_Q6_K};
        for (size_t ti = 0; ti < sizeof itypes / sizeof *itypes; ti++) {
            const int t = itypes[ti];
            const int64_t k = 1024, m = 64, n = 3, blk = qt_get(t)->block_size == 256 ? 256 : 32;
            void *wq = make_weights(t, m, k);
            tensor_t W = {.name = "w.int", .type = t, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq};
            float *Wd = malloc((size_t)(m * k) * sizeof(float)), X[3 * 1024], Y1[3 * 64], Y2[3 * 64];
            mm_dequant_rows(&W, 0, m, Wd);
            for (int64_t i = 0; i < n * k; i++) X[i] = rndf() * (i % 7 == 0 ? 3.0f : 1.0f);
            CHECK_OK(mm_linear(c1, Y1, X, n, k, &W, NULL, &err), &err);
            CHECK_OK(mm_linear(c2, Y2, X, n, k, &W, NULL, &err), &err);
            CHECK_MSG(!memcmp(Y1, Y2, sizeof Y1), "%s integer path: 1 vs 2 threads differ", qt_get(t)->name);
            int bad = 0;
            double worst = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t r = 0; r < m; r++) {
                    double ref = 0, bound = 0, mag = 0;
                    for (int64_t b0 = 0; b0 < k; b0 += blk) {
                        float amax = 0;
                        for (int64_t j = b0; j < b0 + blk; j++) amax = fmaxf(amax, fabsf(X[i * k + j]));
                        for (int64_t j = b0; j < b0 + blk; j++) {
                            const double p = (double)X[i * k + j] * Wd[r * k + j];
                            ref += p;
                            mag += fabs(p);
                            bound += fabs(Wd[r * k + j]) * amax / 254.0;
                        }
                    }
                    const double e = fabs(Y1[i * m + r] - ref);
                    if (e / (bound + 1e-30) > worst) worst = e / (bound + 1e-30);
                    if (!(e <= 1.01 * bound + 1e-5 * mag)) bad++;
                }
            CHECK_MSG(bad == 0, "%s integer path: %d outputs beyond the quantization bound", qt_get(t)->name, bad);
            /* the bound is loose (random signs), but the path must not be exact
             * f32 arithmetic in disguise nor grossly off */
            CHECK_MSG(worst > 1e-4 && worst < 0.5, "%s integer path: worst error/bound %.4f", qt_get(t)->name, worst);
            free(Wd), free(wq);
        }
    }

    /* decode shapes big enough to use the pool (small products run inline): same
     * bits for 1, 2 and 3 threads, exact and integer paths, n = 1..4 */
    {
        static const int gtypes[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q5_K, QT_Q6_K};
        const int64_t k = 1024, m = 301;
        float *X = malloc((size_t)(4 * k) * sizeof(float));
        for (int64_t i = 0; i < 4 * k; i++) X[i] = rndf();
        float *Y[3];
        for (int i = 0; i < 3; i++) Y[i] = malloc((size_t)(4 * m) * sizeof(float));
        mm_ctx_t *cs[3] = {c1, c2, c3};
        for (size_t ti = 0; ti < sizeof gtypes / sizeof *gtypes; ti++) {
            void *wq = make_weights(gtypes[ti], m, k);
            tensor_t W = {.name = "w.gemv", .type = gtypes[ti], .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq};
            for (int exact = 0; exact < 2; exact++)
                for (int64_t n = 1; n <= 4; n++) {
                    for (int i = 0; i < 3; i++) {
                        mm_ctx_set_exact(cs[i], exact);
                        CHECK_OK(mm_linear(cs[i], Y[i], X, n, k, &W, NULL, &err), &err);
                    }
                    CHECK_MSG(!memcmp(Y[0], Y[1], (size_t)(n * m) * sizeof(float)) &&
                                  !memcmp(Y[0], Y[2], (size_t)(n * m) * sizeof(float)),
                              "%s n=%lld exact=%d: results depend on the thread count", qt_get(gtypes[ti])->name,
                              (long long)n, exact);
                }
            free(wq);
        }
        for (int i = 0; i < 3; i++) free(Y[i]);
        free(X);
    }

    /* f32-activation decode dots each row in segments of ~2 KB (matmul.c): rows of
     * several segments and a short last one (F16 2500 = 1024 + 1024 + 452; F32 1300 =
     * 512 + 512 + 276; Q4_K 3840 = 3584 + 256 in exact mode) against the double
     * reference, n = 1..4, with a bias */
    {
        static const struct { int type; int64_t k; } segs[] = {{QT_F16, 2500}, {QT_F32, 1300}, {QT_BF16, 2500}, {QT_Q4_K, 3840}};
        const int64_t m = 70;
        mm_ctx_set_exact(c2, 1);
        for (size_t si = 0; si < sizeof segs / sizeof *segs; si++) {
            const int t = segs[si].type;
            const int64_t k = segs[si].k;
            void *wq = make_weights(t, m, k);
            tensor_t W = {.name = "w.seg", .type = t, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq};
            float *Wd = malloc((size_t)(m * k) * sizeof(float)), *X = malloc((size_t)(4 * k) * sizeof(float));
            float *Y = malloc((size_t)(4 * m) * sizeof(float)), *bias = malloc((size_t)m * sizeof(float));
            double *ref = malloc((size_t)(4 * m) * sizeof(double)), *mag = malloc((size_t)(4 * m) * sizeof(double));
            mm_dequant_rows(&W, 0, m, Wd);
            for (int64_t i = 0; i < 4 * k; i++) X[i] = rndf();
            for (int64_t r = 0; r < m; r++) bias[r] = rndf();
            for (int64_t n = 1; n <= 4; n++) {
                reference(ref, mag, X, Wd, bias, n, m, k);
                CHECK_OK(mm_linear(c2, Y, X, n, k, &W, bias, &err), &err);
                char what[64];
                snprintf(what, sizeof what, "segments %s k=%lld n=%lld", qt_get(t)->name, (long long)k, (long long)n);
                CHECK(check_against(what, Y, ref, mag, n * m, k) == 0);
            }
            free(wq), free(Wd), free(X), free(Y), free(bias), free(ref), free(mag);
        }
    }

    /* mm_linear_multi: weights of different types (three activation layouts plus
     * f32 activations) sharing one input give, bit for bit, what mm_linear gives for
     * each alone, for decode (one dispatch) and prefill sizes and 1-3 threads */
    {
        static const int mtypes[] = {QT_Q8_0, QT_Q4_K, QT_F16, QT_Q4_0};
        static const int64_t mrows[] = {301, 64, 130, 517};
        const int64_t k = 1024;
        float *X = malloc((size_t)(6 * k) * sizeof(float));
        for (int64_t i = 0; i < 6 * k; i++) X[i] = rndf();
        void *wq[4];
        tensor_t W[4];
        float *Ys[4], *Yr[4];
        mm_out_t out[4];
        for (int i = 0; i < 4; i++) {
            wq[i] = make_weights(mtypes[i], mrows[i], k);
            W[i] = (tensor_t){.name = "w.multi", .type = mtypes[i], .n_dims = 2, .ne = {k, mrows[i], 1, 1}, .data = wq[i]};
            Ys[i] = malloc((size_t)(6 * mrows[i]) * sizeof(float));
            Yr[i] = malloc((size_t)(6 * mrows[i]) * sizeof(float));
            out[i] = (mm_out_t){Ys[i], &W[i], NULL};
        }
        mm_ctx_t *cs[3] = {c1, c2, c3};
        const int64_t ns[] = {1, 3, 6};
        for (int ci = 0; ci < 3; ci++)
            for (int ni = 0; ni < 3; ni++) {
                mm_ctx_set_exact(cs[ci], 0);
                CHECK_OK(mm_linear_multi(cs[ci], X, ns[ni], k, out, 4, &err), &err);
                for (int i = 0; i < 4; i++) {
                    CHECK_OK(mm_linear(c1, Yr[i], X, ns[ni], k, &W[i], NULL, &err), &err);
                    CHECK_MSG(!memcmp(Ys[i], Yr[i], (size_t)(ns[ni] * mrows[i]) * sizeof(float)),
                              "multi %s n=%lld threads %d differs from mm_linear", qt_get(mtypes[i])->name,
                              (long long)ns[ni], ci + 1);
                }
            }
        CHECK(mm_linear_multi(c2, X, 1, k, out, 0, &err) == ERR_ARG);
        CHECK(mm_linear_multi(c2, X, 1, k, out, MM_MULTI_MAX + 1, &err) == ERR_ARG);
        CHECK(mm_linear_multi(c2, X, 1, 512, out, 2, &err) == ERR_MISMATCH);
        for (int i = 0; i < 4; i++) free(wq[i]), free(Ys[i]), free(Yr[i]);
        free(X);
    }

    /* a larger prefill-shaped product with several automatic tiles (k = 4096 ->
     * 128-row tiles): same bits for 1, 2 and 3 threads */
    {
        const int64_t n = 37, k = 4096, m = 300;
        void *wq = make_weights(QT_Q4_K, m, k);
        tensor_t W = {.name = "w.big", .type = QT_Q4_K, .n_dims = 2, .ne = {k, m, 1, 1}, .data = wq};
        CHECK(mm_tile_rows(m, k) < m);
        float *X = malloc((size_t)(n * k) * sizeof(float));
        for (int64_t i = 0; i < n * k; i++) X[i] = rndf();
        float *Y[3];
        mm_ctx_t *cs[3] = {c1, c2, c3};
        for (int i = 0; i < 3; i++) {
            Y[i] = malloc((size_t)(n * m) * sizeof(float));
            CHECK_OK(mm_linear(cs[i], Y[i], X, n, k, &W, NULL, &err), &err);
        }
        CHECK(!memcmp(Y[0], Y[1], (size_t)(n * m) * sizeof(float)));
        CHECK(!memcmp(Y[0], Y[2], (size_t)(n * m) * sizeof(float)));
        /* spot-check against the reference on a few outputs */
        float *Wd = malloc((size_t)k * sizeof(float));
        for (int64_t r = 0; r < m; r += 97) {
            mm_dequant_rows(&W, r, 1, Wd);
            for (int64_t i = 0; i < n; i += 11) {
                double s = 0, a = 0;
                for (int64_t j = 0; j < k; j++) {
                    s += (double)X[i * k + j] * Wd[j];
                    a += fabs((double)X[i * k + j] * Wd[j]);
                }
                CHECK_NEAR(Y[0][i * m + r], s, 2e-7 * sqrt((double)k) * a);
            }
        }
        for (int i = 0; i < 3; i++) free(Y[i]);
        free(Wd), free(X), free(wq);
    }

    /* errors: wrong k names the tensor; unsupported type; too few bytes */
    {
        float w[64] = {0}, x[64] = {0}, y[4];
        tensor_t W = {.name = "blk.0.attn_q.weight", .type = QT_F32, .n_dims = 2, .ne = {16, 4, 1, 1}, .data = w};
        err_clear(&err);
        CHECK(mm_linear(c2, y, x, 1, 8, &W, NULL, &err) == ERR_MISMATCH);
        CHECK(strstr(err.msg, "blk.0.attn_q.weight") != NULL);
        W.type = 4;
        CHECK(mm_linear(c2, y, x, 1, 16, &W, NULL, &err) == ERR_UNSUPPORTED);
        W.type = QT_F32;
        W.nbytes = 16;
        CHECK(mm_linear(c2, y, x, 1, 16, &W, NULL, &err) == ERR_MISMATCH);
        W.type = QT_Q8_0;
        W.nbytes = 0;
        CHECK(mm_linear(c2, y, x, 1, 16, &W, NULL, &err) == ERR_MISMATCH); /* 16 % 32 */
    }
    mm_ctx_free(c1);
    mm_ctx_free(c2);
    mm_ctx_free(c3);
    mm_ctx_free(NULL);
    return test_result("test_matmul");
}
