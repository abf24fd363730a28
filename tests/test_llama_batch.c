/* lm_batch (language/llama_batch.c) and the batched occlusion sweep built on it.
 *   - On a random GQA model (8 query / 2 KV heads, 3 layers): every copy of a batch
 *     gives the logits of lm_resume with the same edit (copies of 1..40 rows, alone or
 *     batched, resuming at layer 0 or 1); the edits change the logits, so a batch that
 *     dropped them or mixed copies up would fail.
 *   - Occlusion maps (ex_occlusion, batched 8, 3 and 1 at a time; 1x1 and overlapping 2x2
 *     blocks; zero and random baselines) equal the one-at-a-time sweep the batch replaced
 *     (edit the snapshot, lm_resume, restore) within 1e-4 of the map's largest value
 *     (measured 3e-6) on the random model, and within 1e-6 (float resolution; measured
 *     2.4e-7) on the shipped toy model, whose largest drop is 3.4e-3.
 *   - Pixel-space occlusion on the toy model and a non-square image: a map of the grid's
 *     size, finite; blocks whose model pixels already have the fill colour (padding and
 *     uniform background) change nothing; painting over objects does change log p. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/explain.h"
#include "analysis/explain_job.h"
#include "core/quant.h"
#include "language/llama_random.h"
#include "language/llava.h"
#include "testutil.h"

#define N 40
#define S0 4
#define GH 5
#define GW 5
#define P (GH * GW)

static uint64_t rng_state = 777;
static float frand(void) { /* uniform (-1, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

/* The one-at-a-time sweep that batching replaced: per block, the snapshot's layer-0
 * rows of the block are replaced by the baseline, lm_resume recomputes from the
 * block's first position, and the rows are restored. map = mean drop per patch. */
static void ref_occlusion(const ex_input *in, ex_capture_t *cap, int kb, int stride, const float *baseline,
                          int64_t baseline_rows, float *map, err_t *err) {
    const int gh = in->grid_h, gw = in->grid_w, D = cap->dim;
    const int64_t V = in->lm->cfg.n_vocab;
    float *saved = malloc(sizeof(float) * (size_t)kb * kb * D), *count = calloc((size_t)(gh * gw), sizeof(float));
    memset(map, 0, sizeof(float) * (size_t)(gh * gw));
    for (int r0 = 0; r0 < gh; r0 += stride)
        for (int c0 = 0; c0 < gw; c0 += stride) {
            const int r1 = r0 + kb < gh ? r0 + kb : gh, c1 = c0 + kb < gw ? c0 + kb : gw;
            int m = 0;
            for (int rr = r0; rr < r1; rr++)
                for (int cc = c0; cc < c1; cc++, m++) {
                    float *x = lm_snapshot_resid(&cap->snap, 0, in->img_start + (int64_t)rr * gw + cc);
                    memcpy(saved + (size_t)m * D, x, sizeof(float) * (size_t)D);
                    const float *b = baseline_rows > 1 ? baseline + ((int64_t)rr * gw + cc) * D : baseline;
                    if (b) memcpy(x, b, sizeof(float) * (size_t)D);
                    else memset(x, 0, sizeof(float) * (size_t)D);
                }
            CHECK_OK(lm_resume(in->st, &cap->snap, 0, in->img_start + (int64_t)r0 * gw + c0, NULL, err), err);
            m = 0;
            for (int rr = r0; rr < r1; rr++)
                for (int cc = c0; cc < c1; cc++, m++)
                    memcpy(lm_snapshot_resid(&cap->snap, 0, in->img_start + (int64_t)rr * gw + cc),
                           saved + (size_t)m * D, sizeof(float) * (size_t)D);
            const float drop = cap->logp_target - ex_logp_of(lm_state_logits(in->st), V, cap->target);
            for (int rr = r0; rr < r1; rr++)
                for (int cc = c0; cc < c1; cc++) map[rr * gw + cc] += drop, count[rr * gw + cc] += 1;
        }
    for (int j = 0; j < gh * gw; j++) map[j] = count[j] > 0 ? map[j] / count[j] : 0.0f;
    free(saved);
    free(count);
}

/* Batched occlusion vs the one-at-a-time sweep: max difference relative to the map's
 * scale, the scale floored at 1e-2 (1e-6 absolute: the float32 resolution of the log p
 * values a drop is the difference of; the toy model's drops are at most ~3e-3). */
static double occlusion_vs_ref(const ex_input *in, ex_capture_t *cap, ex_options opt, int batch, err_t *err) {
    const int64_t Pn = (int64_t)in->grid_h * in->grid_w;
    float *ref = malloc(sizeof(float) * (size_t)Pn);
    ref_occlusion(in, cap, opt.occ_block, opt.occ_stride > 0 ? opt.occ_stride : opt.occ_block, opt.baseline,
                  opt.baseline_rows, ref, err);
    opt.occ_batch = batch;
    ex_result r;
    double rel = INFINITY;
    CHECK_OK(ex_run(EX_OCCLUSION, in, cap, &opt, &r, err), err);
    if (r.map) {
        const double scale = fmax(test_max_abs(ref, Pn), 1e-2);
        rel = test_max_diff(r.map, ref, Pn) / scale;
        if (getenv("LM_TEST_VERBOSE")) printf("occlusion batch %d: max |map| %.3g, max diff / max |map| %.3g\n", batch, scale, rel);
        cJSON *runs = cJSON_GetObjectItemCaseSensitive(r.json, "runs");
        CHECK(cJSON_GetArraySize(runs) == (int)cJSON_GetObjectItemCaseSensitive(r.json, "forward_runs")->valuedouble);
    }
    ex_result_free(&r);
    free(ref);
    return rel;
}

typedef struct {
    int64_t p0;
    int layer;
    int n_edit;        /* rows from p0 overwritten with random values */
    float edit[3][64]; /* dim <= 64 */
} copy_spec;

/* lm_resume reference for one copy: edit the snapshot's rows, resume, restore. */
static void ref_copy(lm_state_t *st, lm_snapshot_t *snap, const copy_spec *c, int D, float *logits, int64_t V,
                     err_t *err) {
    float saved[3][64];
    for (int e = 0; e < c->n_edit; e++) {
        float *x = lm_snapshot_resid(snap, c->layer, c->p0 + e);
        memcpy(saved[e], x, sizeof(float) * (size_t)D);
        memcpy(x, c->edit[e], sizeof(float) * (size_t)D);
    }
    CHECK_OK(lm_resume(st, snap, c->layer, c->p0, NULL, err), err);
    memcpy(logits, lm_state_logits(st), sizeof(float) * (size_t)V);
    for (int e = 0; e < c->n_edit; e++)
        memcpy(lm_snapshot_resid(snap, c->layer, c->p0 + e), saved[e], sizeof(float) * (size_t)D);
}

static void test_random_model(const char *dir) {
    err_t err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/gqa.gguf", dir);
    const lm_random_spec spec = {256, 64, 3, 8, 2, 128, 64, 1e-5f, 10000.0f, false, QT_F32, 11, 1.0f};
    CHECK_OK(lm_write_random(path, &spec, &err), &err);
    lm_model_t *m = NULL;
    mm_ctx_t *mm = NULL;
    lm_state_t *st = NULL;
    lm_batch_t *bt = NULL;
    CHECK_OK(lm_model_load(&m, path, &err), &err);
    CHECK_OK(mm_ctx_create(&mm, 1, &err), &err);
    if (!m || !mm) return;
    const int D = m->cfg.dim;
    const int64_t V = m->cfg.n_vocab;
    CHECK_OK(lm_state_create(&st, m, mm, N, N, &err), &err);
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i >= S0 && i < S0 + P) ? -1 : (int32_t)((i * 53 + 7) % V);
    float *embd = malloc(sizeof(float) * P * D);
    for (int i = 0; i < P * D; i++) embd[i] = frand();

    /* LM level: copies of every length, alone and batched, from layer 0 and layer 1 */
    lm_snapshot_t snap;
    CHECK_OK(lm_snapshot_create(&snap, m, N, &err), &err);
    lm_run_opts ro = {.record = &snap};
    lm_input_t li = {.ids = ids, .n = N, .embd = embd, .n_embd = P};
    CHECK_OK(lm_prefill(st, &li, &ro, &err), &err);
    float *clean = malloc(sizeof(float) * V);
    memcpy(clean, lm_state_logits(st), sizeof(float) * V);
#define COPY(p, l, e) {.p0 = (p), .layer = (l), .n_edit = (e)}
    static copy_spec copies[] = {COPY(0, 0, 1),     COPY(S0, 0, 2),    COPY(17, 0, 1), COPY(S0 + P - 1, 0, 1),
                                 COPY(N - 3, 0, 3), COPY(N - 1, 0, 1), COPY(N - 1, 0, 0), COPY(9, 1, 2)};
#undef COPY
    const int NC = (int)(sizeof copies / sizeof *copies);
    for (int c = 0; c < NC; c++)
        for (int e = 0; e < copies[c].n_edit; e++)
            for (int d = 0; d < D; d++) copies[c].edit[e][d] = 2.0f * frand();
    float *ref = malloc(sizeof(float) * V * NC);
    for (int c = 0; c < NC; c++) ref_copy(st, &snap, &copies[c], D, ref + (int64_t)c * V, V, &err);
    /* the edits matter (so a batch that lost them would fail), and an unedited copy is clean */
    CHECK(test_max_diff(ref + 0 * V, clean, V) > 1e-2);
    CHECK(test_max_diff(ref + 5 * V, clean, V) > 1e-2);
    CHECK(test_max_diff(ref + 6 * V, clean, V) <= 1e-5 * test_max_abs(clean, V));
    CHECK_OK(lm_batch_create(&bt, m, mm, NC, (int64_t)NC * N, N, &err), &err);
    if (!bt) return;
    for (int layer = 0; layer < 2; layer++) {
        for (int alone = 0; alone < 2; alone++) {
            for (int c0 = 0; c0 < NC; c0++) {
                if (alone == 0 && c0 > 0) break; /* all copies of this layer in one batch */
                CHECK_OK(lm_batch_begin(bt, &snap, layer, &err), &err);
                int idx[16], nb = 0;
                for (int c = alone ? c0 : 0; c < (alone ? c0 + 1 : NC); c++) {
                    if (copies[c].layer != layer) continue;
                    float *x = lm_batch_add(bt, copies[c].p0, &err);
                    CHECK(x != NULL);
                    if (!x) continue;
                    CHECK(test_max_diff(x, lm_snapshot_resid(&snap, layer, copies[c].p0), D) == 0);
                    for (int e = 0; e < copies[c].n_edit; e++)
                        memcpy(x + (int64_t)e * D, copies[c].edit[e], sizeof(float) * D);
                    idx[nb++] = c;
                }
                if (nb == 0) continue;
                CHECK(lm_batch_count(bt) == nb);
                CHECK_OK(lm_batch_run(bt, &err), &err);
                for (int k = 0; k < nb; k++) {
                    const float *want = ref + (int64_t)idx[k] * V;
                    const double d = test_max_diff(lm_batch_logits(bt, k), want, V);
                    if (getenv("LM_TEST_VERBOSE"))
                        printf("layer %d copy %d %s: rel %.3g\n", layer, idx[k], alone ? "alone" : "batched",
                               d / test_max_abs(want, V));
                    CHECK_MSG(d <= 1e-4 * test_max_abs(want, V), "layer %d copy %d (%s): max |logit diff| %.3g", layer,
                              idx[k], alone ? "alone" : "batched", d);
                }
            }
        }
    }
    /* bad use is an error, not a crash */
    lm_batch_t *small = NULL;
    CHECK_OK(lm_batch_create(&small, m, mm, 2, 10, N, &err), &err);
    if (small) {
        CHECK(lm_batch_add(small, N - 1, &err) == NULL && err.code == ERR_ARG); /* before begin */
        CHECK(lm_batch_run(small, &err) == ERR_ARG);
        CHECK(lm_batch_begin(small, &snap, m->cfg.n_layer, &err) == ERR_ARG);
        CHECK_OK(lm_batch_begin(small, &snap, 0, &err), &err);
        CHECK(lm_batch_run(small, &err) == ERR_ARG); /* empty */
        CHECK(lm_batch_add(small, N, &err) == NULL && err.code == ERR_ARG);
        CHECK(lm_batch_fits(small, N - 5) && !lm_batch_fits(small, N - 11));
        CHECK(lm_batch_add(small, N - 5, &err) != NULL);
        CHECK(lm_batch_add(small, N - 6, &err) == NULL && err.code == ERR_RANGE); /* 5 + 6 rows > 10 */
        CHECK(lm_batch_add(small, N - 5, &err) != NULL);
        CHECK(lm_batch_add(small, N - 1, &err) == NULL && err.code == ERR_RANGE); /* 2 copies */
        lm_batch_free(small);
    }
    lm_snapshot_free(&snap);

    /* occlusion maps: batched == one at a time */
    ex_options opt;
    ex_options_default(&opt);
    ex_input in = {.lm = m, .st = st, .ids = ids, .n = N, .img_embd = embd, .img_start = S0, .n_image = P,
                   .grid_h = GH, .grid_w = GW, .T = N - 1, .target = -1};
    ex_capture_t cap;
    CHECK_OK(ex_capture(&cap, &in, &opt, &err), &err);
    const int batches[] = {8, 3, 1};
    for (int k = 0; k < 3; k++) {
        double rel = occlusion_vs_ref(&in, &cap, opt, batches[k], &err);
        CHECK_MSG(rel <= 1e-4, "random model, 1x1 blocks, batch %d: max diff / max |map| = %.3g", batches[k], rel);
    }
    float *base = malloc(sizeof(float) * D);
    for (int d = 0; d < D; d++) base[d] = 0.5f * frand();
    opt.baseline = base;
    opt.baseline_name = "random";
    opt.occ_block = 2;
    opt.occ_stride = 1;
    double rel = occlusion_vs_ref(&in, &cap, opt, 4, &err);
    CHECK_MSG(rel <= 1e-4, "random model, 2x2 blocks stride 1, batch 4: max diff / max |map| = %.3g", rel);
    /* a baseline row per image position: each cell gets its own row */
    float *rows = malloc(sizeof(float) * (size_t)(P * D));
    for (int64_t i = 0; i < P * D; i++) rows[i] = 0.5f * frand();
    opt.baseline = rows;
    opt.baseline_rows = P;
    opt.baseline_name = "random per position";
    rel = occlusion_vs_ref(&in, &cap, opt, 3, &err);
    CHECK_MSG(rel <= 1e-4, "random model, per-position baseline, 2x2 blocks stride 1: max diff / max |map| = %.3g",
              rel);
    /* and the map really depends on which row a cell gets: rows shifted by one cell differ */
    {
        ex_result a, b;
        CHECK_OK(ex_run(EX_OCCLUSION, &in, &cap, &opt, &a, &err), &err);
        opt.baseline = rows + D;
        opt.baseline_rows = P - 1;
        CHECK(ex_run(EX_OCCLUSION, &in, &cap, &opt, &b, &err) == ERR_MISMATCH); /* P - 1 rows: refused */
        ex_result_free(&b);
        memmove(rows, rows + D, sizeof(float) * (size_t)((P - 1) * D));
        opt.baseline = rows;
        opt.baseline_rows = P;
        CHECK_OK(ex_run(EX_OCCLUSION, &in, &cap, &opt, &b, &err), &err);
        CHECK(a.map && b.map && test_max_diff(a.map, b.map, P) > 1e-3 * test_max_abs(a.map, P));
        ex_result_free(&a);
        ex_result_free(&b);
    }
    free(rows);
    opt.baseline = base;
    opt.baseline_rows = 1;
    /* pixel space without a vision tower is refused */
    opt.occ_space = EX_OCC_PIXELS;
    ex_result r;
    CHECK(ex_run(EX_OCCLUSION, &in, &cap, &opt, &r, &err) == ERR_ARG);
    ex_result_free(&r);
    ex_capture_free(&cap);
    free(base);
    free(ref);
    free(clean);
    free(embd);
    lm_batch_free(bt);
    lm_state_free(st);
    mm_ctx_free(mm);
    lm_model_free(m);
}

static void test_toy_model(void) {
    err_t err = {0};
    llava_params_t p = llava_default_params();
    p.n_threads = 1;
    llava_t *l = NULL;
    CHECK_OK(llava_load(&l, &p, &err), &err);
    if (!l) return;
    ex_options opt;
    ex_options_default(&opt);
    opt.occ_block = 2;
    img_t img = {0};
    /* token space: batched == one at a time, on the real image tokens */
    CHECK_OK(img_load(&img, LM_SOURCE_DIR "/assets/examples/shapes.png", NULL, &err), &err);
    ex_job job = {.l = l, .img = &img, .question = "What color is the circle?", .methods = 0, .opt = &opt,
                  .target = -1};
    ex_outcome oc;
    CHECK_OK(ex_job_run(&job, &oc, &err), &err);
    ex_input in;
    ex_job_input(&job, &oc, &in);
    double rel = occlusion_vs_ref(&in, &oc.cap, opt, 8, &err);
    CHECK_MSG(rel <= 1e-4, "toy model, 2x2 blocks, batch 8: max diff / max |map| = %.3g", rel);
    ex_outcome_free(&oc);
    img_free(&img);

    /* pixel space on a non-square image (pad pipeline: rows of padding-only cells) */
    CHECK_OK(img_load(&img, LM_SOURCE_DIR "/assets/examples/wide.png", NULL, &err), &err);
    opt.occ_block = 1;
    opt.occ_stride = 2; /* every other cell: 49 re-encodes */
    opt.occ_space = EX_OCC_PIXELS;
    job.img = &img;
    job.question = "What color is the diamond?";
    job.methods = 1u << EX_OCCLUSION;
    CHECK_OK(ex_job_run(&job, &oc, &err), &err);
    const ex_result *r = ex_outcome_find(&oc, EX_OCCLUSION);
    CHECK(r && r->map);
    if (r && r->map) {
        const vit_config *vc = vit_get_config(l->vit);
        const int g = vc->grid, ps = vc->patch_size, S = vc->image_size;
        CHECK(oc.im.grid == g && oc.pr.n_image == (int64_t)g * g);
        for (int j = 0; j < g * g; j++) CHECK(isfinite(r->map[j]));
        cJSON *fill = cJSON_GetObjectItemCaseSensitive(r->json, "fill_rgb");
        CHECK(cJSON_GetArraySize(fill) == 3);
        uint8_t f[3];
        for (int c = 0; c < 3; c++) f[c] = (uint8_t)cJSON_GetArrayItem(fill, c)->valueint;
        img_t mimg;
        pp_geom geom;
        CHECK_OK(pp_model_image(&img, l->params.pipeline, S, ps, vc->image_mean, &mimg, &geom, &err), &err);
        int n_same = 0, n_pad = 0, n_moved = 0;
        double worst_same = 0, largest = 0;
        for (int rr = 0; rr < g; rr += 2)
            for (int cc = 0; cc < g; cc += 2) {
                bool same = true;
                for (int y = rr * ps; y < (rr + 1) * ps && same; y++)
                    for (int x = cc * ps; x < (cc + 1) * ps && same; x++)
                        same = !memcmp(mimg.rgb + ((size_t)y * S + x) * 3, f, 3);
                double b[4];
                const double d = fabs(r->map[rr * g + cc]);
                if (same) {
                    n_same++;
                    n_pad += !pp_cell_box(&geom, rr, cc, b);
                    worst_same = fmax(worst_same, d);
                } else {
                    largest = fmax(largest, d);
                    /* 100x the arithmetic noise of fill-coloured cells (measured 1.2e-7): the
                     * shipped model is confident, so whole-cell drops are small (largest 8e-5) */
                    n_moved += d > 1e-5;
                }
            }
        /* identical pixels give identical image tokens: only the batched arithmetic differs */
        if (getenv("LM_TEST_VERBOSE"))
            printf("pixels: %d fill-coloured cells (%d padding), worst |drop| %.3g; largest other |drop| %.3g, %d moved\n",
                   n_same, n_pad, worst_same, largest, n_moved);
        CHECK(n_same > 10 && n_pad >= 7);
        CHECK_MSG(worst_same <= 1e-5, "painting fill-coloured cells moved log p by %.3g", worst_same);
        CHECK_MSG(n_moved > 0, "no painted object changed log p (largest |drop| %.3g)", largest);
        /* the report's runs name the painted boxes; a padding-only cell has no original box */
        cJSON *runs = cJSON_GetObjectItemCaseSensitive(r->json, "runs");
        CHECK(cJSON_GetArraySize(runs) == 49);
        cJSON *r0 = cJSON_GetArrayItem(runs, 0);
        CHECK(r0 && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r0, "original_box")) &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r0, "model_box")) == 4);
        img_free(&mimg);
    }
    ex_outcome_free(&oc);
    img_free(&img);
    llava_free(l);
}

int main(void) {
    char dir[40];
    if (!test_tmpdir(dir)) {
        fprintf(stderr, "test_llama_batch: cannot make a temporary folder\n");
        return 1;
    }
    test_random_model(dir);
    test_toy_model();
    test_rmdir(dir);
    return test_result("test_llama_batch");
}
