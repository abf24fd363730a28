/* The analysis passes against independent recomputations on a random LLaMA
 * (tests/golden/lm/rand_f32.gguf, GQA 4/2 heads, 2 layers): each method's numbers
 * must equal what a plain forward with the same intervention gives, and the exact
 * decompositions must add up. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/explain.h"
#include "testutil.h"

#define N 30
#define S0 3
#define GH 4
#define GW 4
#define P (GH * GW)

typedef struct {
    lm_model_t *m;
    mm_ctx_t *mm;
    lm_state_t *st;
    int32_t ids[N];
    float *embd;
} fixture;

static uint64_t rng_state = 12345;
static float frand(void) { /* uniform (-1, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static int setup(fixture *f, err_t *err) {
    memset(f, 0, sizeof *f);
    if (lm_model_load(&f->m, LM_SOURCE_DIR "/tests/golden/lm/rand_f32.gguf", err)) return 1;
    if (mm_ctx_create(&f->mm, 1, err)) return 1;
    if (lm_state_create(&f->st, f->m, f->mm, N, N, err)) return 1;
    for (int i = 0; i < N; i++) f->ids[i] = (i >= S0 && i < S0 + P) ? -1 : (int32_t)((i * 37 + 5) % f->m->cfg.n_vocab);
    f->embd = malloc(sizeof(float) * P * f->m->cfg.dim);
    for (int i = 0; i < P * f->m->cfg.dim; i++) f->embd[i] = frand();
    return 0;
}

static void teardown(fixture *f) {
    free(f->embd);
    lm_state_free(f->st);
    mm_ctx_free(f->mm);
    lm_model_free(f->m);
}

/* A plain forward with an optional bias and embeddings; returns log p(w) at the last row. */
typedef struct {
    int64_t q, k; /* knock (q, k) in all layers; k < 0: none */
    int64_t q0, q1, k0, k1; /* or a block of queries x keys */
} plain_bias;

static int plain_bias_fn(void *user, int layer, int64_t q_pos0, int64_t Nq, int64_t Nk, float *bias) {
    (void)layer;
    const plain_bias *b = user;
    int any = 0;
    for (int64_t i = 0; i < Nq; i++)
        for (int64_t k = 0; k < Nk; k++) {
            int64_t q = q_pos0 + i;
            if ((q == b->q && k == b->k) || (q >= b->q0 && q < b->q1 && k >= b->k0 && k < b->k1)) {
                bias[i * Nk + k] = -INFINITY;
                any = 1;
            }
        }
    return any;
}

static float plain_logp(fixture *f, const float *embd, const plain_bias *b, int32_t w, err_t *err) {
    lm_run_opts o = {0};
    if (b) o.bias_fn = plain_bias_fn, o.bias_user = (void *)b;
    lm_input_t in = {.ids = f->ids, .n = N, .embd = embd, .n_embd = P};
    lm_state_set_pos(f->st, 0);
    if (lm_prefill(f->st, &in, &o, err)) return NAN;
    return ex_logp_of(lm_state_logits(f->st), f->m->cfg.n_vocab, w);
}

static cJSON *jget(cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

int main(void) {
    err_t err = {0};
    fixture f;
    if (setup(&f, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    const int L = f.m->cfg.n_layer;
    const int64_t V = f.m->cfg.n_vocab;
    ex_options opt;
    ex_options_default(&opt);
    ex_input in = {.lm = f.m, .st = f.st, .ids = f.ids, .n = N, .img_embd = f.embd, .img_start = S0, .n_image = P,
                   .grid_h = GH, .grid_w = GW, .T = N - 1, .target = -1};
    ex_capture_t cap;
    CHECK_OK(ex_capture(&cap, &in, &opt, &err), &err);
    const int32_t w = cap.target;
    const float lp0 = plain_logp(&f, f.embd, NULL, w, &err);
    CHECK_NEAR(cap.logp_target, lp0, 1e-5);
    CHECK(w == cap.argmax);

    /* attention: per-layer fractions of T's attention sum to 1 */
    ex_result r;
    CHECK_OK(ex_run(EX_ATTENTION, &in, &cap, &opt, &r, &err), &err);
    for (int l = 0; l < L; l++) {
        double s = 0;
        for (int k = 0; k < 4; k++) s += r.series[k].y[l];
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    double mean0 = 0;
    for (int j = 0; j < P; j++) mean0 += r.map[j];
    CHECK(mean0 > 0 && mean0 < 1);
    ex_result_free(&r);

    /* rollout: the vector propagation equals the dense product of the Â_l */
    CHECK_OK(ex_run(EX_ROLLOUT, &in, &cap, &opt, &r, &err), &err);
    {
        double *R = calloc(N * N, sizeof(double)), *A = calloc(N * N, sizeof(double)), *tmp = calloc(N * N, sizeof(double));
        for (int i = 0; i < N; i++) R[i * N + i] = 1;
        for (int l = 0; l < L; l++) { /* R <- Â_l ... : R = Â_l R (left multiply, layer order) */
            for (int q = 0; q < N; q++) {
                double s = 0;
                for (int k = 0; k <= q; k++) {
                    A[q * N + k] = 0.5 * cap.fused[((int64_t)l * N + q) * N + k] + (k == q ? 0.5 : 0);
                    s += A[q * N + k];
                }
                for (int k = 0; k < N; k++) A[q * N + k] = k <= q ? A[q * N + k] / s : 0;
            }
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < N; k++) s += A[i * N + k] * R[k * N + j];
                    tmp[i * N + j] = s;
                }
            memcpy(R, tmp, sizeof(double) * N * N);
        }
        double total = 0;
        for (int j = 0; j < N; j++) total += R[(N - 1) * N + j];
        CHECK_NEAR(total, 1.0, 1e-9);
        for (int j = 0; j < P; j++) CHECK_NEAR(r.map[j], R[(N - 1) * N + S0 + j], 1e-6);
        free(R), free(A), free(tmp);
    }
    ex_result_free(&r);

    /* knockout: resumed runs equal full forwards with the same bias */
    CHECK_OK(ex_run(EX_KNOCKOUT, &in, &cap, &opt, &r, &err), &err);
    {
        cJSON *wins = jget(r.json, "windows");
        cJSON *all = cJSON_GetArrayItem(wins, cJSON_GetArraySize(wins) - 1);
        cJSON *e = jget(jget(all, "edges"), "image -> T");
        plain_bias b = {.q = -1, .k = -1, .q0 = N - 1, .q1 = N, .k0 = S0, .k1 = S0 + P};
        CHECK(e != NULL);
        if (e) CHECK_NEAR(jget(e, "logp_after")->valuedouble, plain_logp(&f, f.embd, &b, w, &err), 2e-5);
        cJSON *e2 = jget(jget(all, "edges"), "image -> text after image");
        plain_bias b2 = {.q = -1, .k = -1, .q0 = S0 + P, .q1 = N, .k0 = S0, .k1 = S0 + P};
        CHECK(e2 != NULL);
        if (e2) CHECK_NEAR(jget(e2, "logp_after")->valuedouble, plain_logp(&f, f.embd, &b2, w, &err), 2e-5);
        for (int j = 0; j < P; j += 5) {
            plain_bias bj = {.q = N - 1, .k = S0 + j, .q0 = 0, .q1 = 0};
            CHECK_NEAR(r.map[j], lp0 - plain_logp(&f, f.embd, &bj, w, &err), 2e-5);
        }
    }
    ex_result_free(&r);

    /* occlusion: resumed runs equal full forwards with the embedding replaced */
    CHECK_OK(ex_run(EX_OCCLUSION, &in, &cap, &opt, &r, &err), &err);
    {
        const int D = f.m->cfg.dim;
        float *e2 = malloc(sizeof(float) * P * D);
        for (int j = 0; j < P; j += 3) {
            memcpy(e2, f.embd, sizeof(float) * P * D);
            memset(e2 + (size_t)j * D, 0, sizeof(float) * D);
            CHECK_NEAR(r.map[j], lp0 - plain_logp(&f, e2, NULL, w, &err), 2e-5);
        }
        free(e2);
    }
    ex_result_free(&r);
    /* the snapshot was restored: a second capture-free run gives the same map */
    CHECK_OK(ex_run(EX_OCCLUSION, &in, &cap, &opt, &r, &err), &err);
    {
        float m0 = r.map[0];
        ex_result r2;
        CHECK_OK(ex_run(EX_OCCLUSION, &in, &cap, &opt, &r2, &err), &err);
        CHECK(r2.map[0] == m0);
        ex_result_free(&r2);
    }
    ex_result_free(&r);

    /* logit lens: the final residual's lens is the model's own next-token distribution */
    CHECK_OK(ex_run(EX_LOGIT_LENS, &in, &cap, &opt, &r, &err), &err);
    {
        float *all = malloc(sizeof(float) * N * V);
        lm_run_opts o = {.all_logits = all};
        lm_input_t li = {.ids = f.ids, .n = N, .embd = f.embd, .n_embd = P};
        lm_state_set_pos(f.st, 0);
        CHECK_OK(lm_prefill(f.st, &li, &o, &err), &err);
        for (int j = 0; j < P; j++)
            CHECK_NEAR(r.maps[(int64_t)L * P + j], expf(ex_logp_of(all + (int64_t)(S0 + j) * V, V, w)), 1e-5);
        for (int j = 0; j < P; j++) {
            float mx = 0;
            for (int l = 0; l <= L; l++) mx = fmaxf(mx, r.maps[(int64_t)l * P + j]);
            CHECK(r.map[j] == mx);
        }
        free(all);
    }
    ex_result_free(&r);

    /* heads (true normaliser): layer increases telescope to logp(final) - logp(embedding) */
    opt.heads_true_norm = true;
    CHECK_OK(ex_run(EX_HEADS, &in, &cap, &opt, &r, &err), &err);
    {
        double s = 0;
        for (int l = 0; l < L; l++) s += r.series[0].y[l] + r.series[1].y[l];
        float *lg = malloc(sizeof(float) * V);
        CHECK_OK(ex_unembed(f.st, lm_snapshot_resid(&cap.snap, 0, N - 1), 1, NULL, lg, &err), &err);
        CHECK_NEAR(s, cap.logp_target - ex_logp_of(lg, V, w), 1e-4);
        free(lg);
    }
    ex_result_free(&r);
    opt.heads_true_norm = false;
    CHECK_OK(ex_run(EX_HEADS, &in, &cap, &opt, &r, &err), &err);
    ex_result_free(&r);

    /* dla: contributions add up to the target logit */
    CHECK_OK(ex_run(EX_DLA, &in, &cap, &opt, &r, &err), &err);
    CHECK_NEAR(jget(r.json, "sum_of_contributions")->valuedouble, cap.logits[w], 1e-3 * (1 + fabsf(cap.logits[w])));
    ex_result_free(&r);
    ex_capture_free(&cap);

    /* dla per source position: with every position an "image" token, the per-patch
     * split of the heads' terms adds up to the attention contributions */
    {
        float *embd = malloc(sizeof(float) * N * f.m->cfg.dim);
        int32_t ids[N];
        for (int i = 0; i < N * f.m->cfg.dim; i++) embd[i] = frand();
        for (int i = 0; i < N; i++) ids[i] = -1;
        ex_input all = {.lm = f.m, .st = f.st, .ids = ids, .n = N, .img_embd = embd, .img_start = 0, .n_image = N,
                        .grid_h = 5, .grid_w = 6, .T = N - 1, .target = -1};
        CHECK_OK(ex_capture(&cap, &all, &opt, &err), &err);
        CHECK_OK(ex_run(EX_DLA, &all, &cap, &opt, &r, &err), &err);
        double attn = 0;
        for (int l = 0; l < L; l++) attn += r.series[0].y[l];
        CHECK_NEAR(jget(r.json, "image_total")->valuedouble, attn, 1e-4 * (1 + fabs(attn)));
        ex_result_free(&r);
        ex_capture_free(&cap);
        free(embd);
    }

    /* bad inputs are errors, not crashes */
    ex_input bad = in;
    bad.T = 5;
    CHECK(ex_capture(&cap, &bad, &opt, &err) == ERR_ARG);
    bad = in;
    bad.n_image = P + 1;
    CHECK(ex_capture(&cap, &bad, &opt, &err) == ERR_ARG);
    unsigned mask;
    CHECK(ex_methods_parse("attention,bogus", &mask, &err) == ERR_ARG && strstr(err.msg, "bogus"));
    CHECK_OK(ex_methods_parse("rollout,dla", &mask, &err), &err);
    CHECK(mask == ((1u << EX_ROLLOUT) | (1u << EX_DLA)));
    teardown(&f);
    return test_result("test_explain");
}
