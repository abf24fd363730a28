/* test_llama.c — the LLaMA decoder against the PyTorch reference, plus behaviour:
 * KV-cache decoding == full recomputation, hooks, attention knockout, snapshots.
 *
 * Goldens (tests/golden/lm/) come from tests/reference/lm_ref.py (HF equations, float64)
 * on the committed random models, which this program writes with --write-fixtures DIR:
 *   rand_f32   untied head, GQA 4/2 heads, F32 weights
 *   rand_q8_0, rand_q4_k  the same weights (tied head) in Q8_0 and Q4_K; the reference
 *              runs on the dequantized weights, so only arithmetic error remains. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/gguf.h"
#include "core/matmul.h"
#include "core/npy.h"
#include "core/quant.h"
#include "language/llama.h"
#include "language/llama_random.h"
#include "language/sample.h"
#include "tests/testutil.h"

#define GOLD LM_SOURCE_DIR "/tests/golden/lm/"

typedef struct {
    const char *name;
    lm_random_spec spec;
    double tol; /* max abs logit error vs the reference */
} fixture_t;

static const fixture_t fixtures[] = {
    {"rand_f32", {256, 64, 2, 4, 2, 192, 64, 1e-5f, 10000.0f, false, QT_F32, 1, 1.0f}, 1e-3},
    {"rand_q8_0", {256, 256, 2, 4, 2, 256, 64, 1e-5f, 10000.0f, true, QT_Q8_0, 3, 0.05f}, 2e-3},
    {"rand_q4_k", {256, 256, 2, 4, 2, 256, 64, 1e-5f, 10000.0f, true, QT_Q4_K, 3, 0.05f}, 2e-3},
};
#define N_FIX (int)(sizeof fixtures / sizeof *fixtures)

static mm_ctx_t *g_mm; /* test-program state only */

static int load_npy(const char *fix, const char *what, npy_array_t *a) {
    char path[512];
    snprintf(path, sizeof path, GOLD "%s.%s.npy", fix, what);
    err_t e = {0};
    if (npy_read(path, a, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        test_failures_++;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ golden tests */

/* exact = 1: f32 activations in the decode GEMVs (mm_ctx_set_exact), compared with the
 * fixture's tolerance and identical greedy tokens; exact = 0: the default 8-bit
 * activations of the integer decode path (as llama.cpp), whose teacher-forced decode
 * logits may move by up to `tol8` (prefill rows are unaffected: n > 4 uses sgemm). */
static void test_golden(const fixture_t *f, int exact) {
    char path[512];
    snprintf(path, sizeof path, GOLD "%s.gguf", f->name);
    err_t e = {0};
    lm_model_t *m = NULL;
    lm_state_t *s = NULL;
    CHECK_OK(lm_model_load(&m, path, &e), &e);
    if (!m) return;
    CHECK_OK(lm_state_create(&s, m, g_mm, 64, 64, &e), &e);
    mm_ctx_set_exact(g_mm, exact);
    const bool int8 = !exact && f->spec.type != QT_F32;
    const double tol_dec = int8 ? 0.25 : f->tol;
    npy_array_t prompt = {0}, logits = {0}, sids = {0}, sembd = {0}, slogits = {0}, greedy = {0}, glogits = {0};
    if (load_npy(f->name, "prompt", &prompt) || load_npy(f->name, "logits", &logits) ||
        load_npy(f->name, "splice_ids", &sids) || load_npy(f->name, "splice_embd", &sembd) ||
        load_npy(f->name, "splice_logits", &slogits) || load_npy(f->name, "greedy", &greedy) ||
        load_npy(f->name, "greedy_logits", &glogits) || !s)
        goto done;
    const int V = m->cfg.n_vocab;
    const int64_t n = prompt.shape[0];
    float *all = malloc(sizeof(float) * (size_t)(n * V));
    lm_run_opts o = {.all_logits = all};

    lm_input_t in = {.ids = prompt.data, .n = n};
    CHECK_OK(lm_prefill(s, &in, &o, &e), &e);
    double err_plain = test_max_diff(all, logits.data, n * V);
    CHECK_MSG(err_plain <= f->tol, "%s: plain prompt max abs logit error %g > %g", f->name, err_plain, f->tol);

    lm_state_set_pos(s, 0);
    lm_input_t sin_ = {.ids = sids.data, .n = n, .embd = sembd.data, .n_embd = sembd.shape[0]};
    CHECK_OK(lm_prefill(s, &sin_, &o, &e), &e);
    double err_splice = test_max_diff(all, slogits.data, n * V);
    CHECK_MSG(err_splice <= f->tol, "%s: spliced prompt max abs logit error %g > %g", f->name, err_splice, f->tol);

    lm_state_set_pos(s, 0);
    CHECK_OK(lm_prefill(s, &in, NULL, &e), &e);
    double err_greedy = 0.0;
    int same = 0;
    const int32_t *gt = greedy.data;
    for (int64_t i = 0; i < greedy.shape[0]; i++) {
        const float *lg = lm_state_logits(s);
        double d = test_max_diff(lg, (const float *)glogits.data + i * V, V);
        if (d > err_greedy) err_greedy = d;
        int32_t t = sample_argmax(lg, V);
        if (!int8)
            CHECK_MSG(t == gt[i], "%s: greedy step %lld: token %d, reference %d", f->name, (long long)i, t, gt[i]);
        same += t == gt[i];
        CHECK_OK(lm_decode(s, gt[i], NULL, &e), &e);
    }
    CHECK_MSG(err_greedy <= tol_dec, "%s: greedy logits max abs error %g > %g", f->name, err_greedy, tol_dec);
    printf("%-10s %s max|dlogit| plain %.2e spliced %.2e decode %.2e; greedy tokens %d/%lld identical\n", f->name,
           exact ? "exact" : "int8 ", err_plain, err_splice, err_greedy, same, (long long)greedy.shape[0]);
    free(all);
done:
    npy_free(&prompt);
    npy_free(&logits);
    npy_free(&sids);
    npy_free(&sembd);
    npy_free(&slogits);
    npy_free(&greedy);
    npy_free(&glogits);
    lm_state_free(s);
    lm_model_free(m);
}

/* --------------------------------------------------------- behaviour tests */


#define SEQ 28

static void make_seq(int32_t *ids, int n, int V, uint64_t seed) {
    ids[0] = 1;
    for (int i = 1; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = 2 + (int32_t)((seed >> 33) % (uint64_t)(V - 2));
    }
}

/* A Q4_K or Q8_0 model repacked (lm_model_repack, when this CPU takes mm_pack)
 * against the same file as loaded: the prompt's KV cache bit-identical, logits within
 * float rounding; LLAVA_MECH_NO_REPACK=1 leaves the file's layout. */
static void test_repacked(const char *path, int type, int layout) {
    err_t e = {0};
    lm_model_t *q = NULL, *u = NULL, *v = NULL;
    CHECK_OK(lm_model_load(&q, path, &e), &e);
    CHECK_OK(lm_model_load(&u, path, &e), &e);
    CHECK_OK(lm_model_load(&v, path, &e), &e);
    if (!q || !u || !v) goto done;
    CHECK(q->w.tied && q->w.output == q->w.token_embd && q->w.layers[0].wq->type == type);
    const bool packs = mm_pack_size(q->w.layers[0].wq) > 0;
    if (!getenv("LLAVA_MECH_NO_REPACK")) CHECK(packs == cpu_has_vnni()); /* exercised wherever it can be */
    CHECK_OK(lm_model_repack(q, mm_ctx_pool(g_mm), &e), &e);
    CHECK_OK(lm_model_repack(q, NULL, &e), &e); /* twice: a no-op */
    setenv("LLAVA_MECH_NO_REPACK", "1", 1);
    if (v) CHECK_OK(lm_model_repack(v, NULL, &e), &e);
    unsetenv("LLAVA_MECH_NO_REPACK");
    for (int l = 0; l < q->cfg.n_layer; l++) {
        const tensor_t *t[LM_LAYER_TENSORS], *tv[LM_LAYER_TENSORS];
        lm_layer_tensors(&q->w.layers[l], t);
        lm_layer_tensors(&v->w.layers[l], tv);
        for (int i = 0; i < LM_LAYER_TENSORS; i++)
            if (t[i]->type == type) {
                CHECK(t[i]->layout == (packs ? layout : TENSOR_ROWS));
                CHECK(tv[i]->layout == TENSOR_ROWS);
            }
    }
    /* the tied head is repacked too, and stays one tensor with the embedding table */
    CHECK(q->w.output == q->w.token_embd && q->w.token_embd->layout == (packs ? layout : TENSOR_ROWS));
    /* the repacked Q4_K keeps 4 more bytes per row and superblock (unpacked scales);
     * repacked Q8_0 is exactly as large as the file's */
    uint64_t extra = 0;
    for (int l = 0; packs && l < q->cfg.n_layer; l++) {
        const tensor_t *t[LM_LAYER_TENSORS];
        lm_layer_tensors(&q->w.layers[l], t);
        for (int i = 0; i < LM_LAYER_TENSORS; i++)
            if (t[i]->type == QT_Q4_K) extra += (uint64_t)(t[i]->ne[1] * (t[i]->ne[0] / 256) * 4);
    }
    if (packs && type == QT_Q4_K) {
        const tensor_t *e = q->w.token_embd;
        extra += (uint64_t)(e->ne[1] * (e->ne[0] / 256) * 4);
    }
    CHECK(lm_model_weight_bytes(q) == lm_model_weight_bytes(u) + extra);
    mm_ctx_set_exact(g_mm, 0);
    lm_state_t *a = NULL, *b = NULL;
    CHECK_OK(lm_state_create(&a, q, g_mm, 64, 64, &e), &e);
    CHECK_OK(lm_state_create(&b, u, g_mm, 64, 64, &e), &e);
    if (a && b) {
        int32_t ids[SEQ];
        make_seq(ids, SEQ, q->cfg.n_vocab, 7);
        const int V = q->cfg.n_vocab;
        lm_input_t in = {.ids = ids, .n = SEQ};
        CHECK_OK(lm_prefill(a, &in, NULL, &e), &e);
        CHECK_OK(lm_prefill(b, &in, NULL, &e), &e);
        /* the prompt's keys and values come from prefill's GEMMs: the same bits; the
         * last row's logits are one GEMV through the repacked head, so only close */
        const size_t kv = sizeof(float) * SEQ * (size_t)a->kv.kv_dim;
        for (int l = 0; l < q->cfg.n_layer; l++)
            CHECK(!memcmp(kv_k(&a->kv, l, 0), kv_k(&b->kv, l, 0), kv) && !memcmp(kv_v(&a->kv, l, 0), kv_v(&b->kv, l, 0), kv));
        double worst = test_max_diff(lm_state_logits(a), lm_state_logits(b), V);
        for (int i = 0; i < 8; i++) {
            CHECK_OK(lm_decode(a, ids[i], NULL, &e), &e);
            CHECK_OK(lm_decode(b, ids[i], NULL, &e), &e);
            const double d = test_max_diff(lm_state_logits(a), lm_state_logits(b), V);
            if (!(d <= worst)) worst = d;
        }
        CHECK_MSG(worst <= 1e-4, "repacked %s decode logits differ by %g", path, worst);
    }
    lm_state_free(a);
    lm_state_free(b);
done:
    lm_model_free(q);
    lm_model_free(u);
    lm_model_free(v);
}

static void test_kv_decode(lm_model_t *m) {
    err_t e = {0};
    const int V = m->cfg.n_vocab;
    int32_t ids[SEQ];
    make_seq(ids, SEQ, V, 7);
    float *full = malloc(sizeof(float) * SEQ * V);
    lm_state_t *s = NULL, *s5 = NULL;
    CHECK_OK(lm_state_create(&s, m, g_mm, 64, 64, &e), &e);
    CHECK_OK(lm_state_create(&s5, m, g_mm, 64, 5, &e), &e);
    lm_run_opts o = {.all_logits = full};
    lm_input_t in = {.ids = ids, .n = SEQ};
    CHECK_OK(lm_prefill(s, &in, &o, &e), &e);
    /* incremental: a prompt of 10, then one token at a time through the cache */
    lm_state_set_pos(s, 0);
    lm_input_t head = {.ids = ids, .n = 10};
    CHECK_OK(lm_prefill(s, &head, NULL, &e), &e);
    double worst = test_max_diff(lm_state_logits(s), full + 9 * V, V);
    for (int i = 10; i < SEQ; i++) {
        CHECK_OK(lm_decode(s, ids[i], NULL, &e), &e);
        double d = test_max_diff(lm_state_logits(s), full + (int64_t)i * V, V);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst <= 1e-4, "KV-cache decode vs full prefill: max abs logit diff %g", worst);
    CHECK(lm_state_pos(s) == SEQ);
    /* chunked prefill (5 rows per chunk) == one chunk */
    float *chunked = malloc(sizeof(float) * SEQ * V);
    lm_run_opts o5 = {.all_logits = chunked};
    CHECK_OK(lm_prefill(s5, &in, &o5, &e), &e);
    double dc = test_max_diff(chunked, full, (int64_t)SEQ * V);
    CHECK_MSG(dc <= 1e-4, "chunked prefill vs one batch: max abs logit diff %g", dc);
    printf("kv decode vs full prefill: max|dlogit| %.2e; chunked prefill %.2e\n", worst, dc);
    free(chunked);
    free(full);
    lm_state_free(s);
    lm_state_free(s5);
}

typedef struct {
    int n_names;
    char names[64][HOOK_NAME_MAX];
    int64_t shapes[64][4];
} seen_t;

static int record_names(void *user, const hook_info *info, float *data) {
    (void)data;
    seen_t *s = user;
    for (int i = 0; i < s->n_names; i++)
        if (!strcmp(s->names[i], info->name)) return 0;
    if (s->n_names < 64) {
        snprintf(s->names[s->n_names], HOOK_NAME_MAX, "%s", info->name);
        memcpy(s->shapes[s->n_names], info->shape, sizeof info->shape);
        s->n_names++;
    }
    return 0;
}

static const int64_t *seen_shape(const seen_t *s, const char *name) {
    for (int i = 0; i < s->n_names; i++)
        if (!strcmp(s->names[i], name)) return s->shapes[i];
    return NULL;
}

static int scale2(void *user, const hook_info *info, float *data) {
    (void)user;
    int64_t n = info->shape[0] * info->shape[1];
    for (int64_t i = 0; i < n; i++) data[i] *= 2.0f;
    return 0;
}

static int stop_hook(void *user, const hook_info *info, float *data) {
    (void)user, (void)info, (void)data;
    return 1;
}

static void test_hooks(lm_model_t *m) {
    err_t e = {0};
    const lm_config_t *c = &m->cfg;
    const int V = c->n_vocab, n = 9;
    int32_t ids[SEQ];
    make_seq(ids, n, V, 11);
    lm_state_t *s = NULL;
    CHECK_OK(lm_state_create(&s, m, g_mm, 64, 64, &e), &e);
    lm_input_t in = {.ids = ids, .n = n};
    CHECK_OK(lm_prefill(s, &in, NULL, &e), &e);
    float *base = malloc(sizeof(float) * (size_t)V);
    memcpy(base, lm_state_logits(s), sizeof(float) * (size_t)V);

    /* every documented hook point fires with its shape */
    hook_set_t hs;
    hook_set_init(&hs);
    seen_t seen = {0};
    CHECK_OK(hook_add(&hs, "*", record_names, &seen, &e), &e);
    lm_run_opts o = {.hooks = &hs};
    lm_state_set_pos(s, 0);
    CHECK_OK(lm_prefill(s, &in, &o, &e), &e);
    CHECK_MSG(test_max_diff(lm_state_logits(s), base, V) == 0.0, "observing hooks changed the logits");
    const char *per_layer[] = {"attn_norm", "attn.q", "attn.k", "attn.v", "attn.pattern", "attn.z", "attn_out",
                               "resid_mid", "ffn_norm", "mlp.hidden", "mlp_out", "resid_post"};
    const int64_t hd = c->head_dim;
    const int64_t want[][3] = {{n, c->dim, 1},       {n, c->n_head, hd},  {n, c->n_kv_head, hd},
                               {n, c->n_kv_head, hd}, {c->n_head, n, n},   {n, c->n_head, hd},
                               {n, c->dim, 1},       {n, c->dim, 1},      {n, c->dim, 1},
                               {n, c->hidden_dim, 1}, {n, c->dim, 1},     {n, c->dim, 1}};
    char name[HOOK_NAME_MAX];
    for (int l = 0; l < c->n_layer; l++)
        for (int k = 0; k < 12; k++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, per_layer[k]);
            const int64_t *sh = seen_shape(&seen, name);
            CHECK_MSG(sh != NULL, "hook point %s never fired", name);
            if (sh)
                CHECK_MSG(sh[0] == want[k][0] && sh[1] == want[k][1] && sh[2] == want[k][2],
                          "%s shape [%lld %lld %lld]", name, (long long)sh[0], (long long)sh[1], (long long)sh[2]);
        }
    const char *global[] = {"embed", "final_norm", "logits"};
    for (int k = 0; k < 3; k++) CHECK_MSG(seen_shape(&seen, global[k]) != NULL, "hook point %s never fired", global[k]);
    CHECK(seen.n_names == 12 * c->n_layer + 3);

    /* an edit propagates: doubling final_norm doubles every logit (the head is linear) */
    hook_set_init(&hs);
    CHECK_OK(hook_add(&hs, "final_norm", scale2, NULL, &e), &e);
    lm_state_set_pos(s, 0);
    CHECK_OK(lm_prefill(s, &in, &o, &e), &e);
    double worst = 0.0;
    for (int i = 0; i < V; i++) {
        double d = fabs(lm_state_logits(s)[i] - 2.0 * base[i]);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst <= 1e-4, "final_norm x2 hook: logits differ from 2x by %g", worst);
    /* an edit upstream changes the output */
    hook_set_init(&hs);
    CHECK_OK(hook_add(&hs, "blk.0.mlp.hidden", scale2, NULL, &e), &e);
    lm_state_set_pos(s, 0);
    CHECK_OK(lm_prefill(s, &in, &o, &e), &e);
    CHECK_MSG(test_max_diff(lm_state_logits(s), base, V) > 1e-3, "mlp.hidden edit did not change the logits");
    /* a hook returning non-zero aborts with ERR_CALLBACK */
    hook_set_init(&hs);
    CHECK_OK(hook_add(&hs, "blk.1.attn_out", stop_hook, NULL, &e), &e);
    lm_state_set_pos(s, 0);
    CHECK(lm_prefill(s, &in, &o, &e) == ERR_CALLBACK);
    free(base);
    lm_state_free(s);
}

/* Knockout of every key but BOS (position 0). */
static int knock_all_but_bos(void *user, int layer, int64_t q_pos0, int64_t Nq, int64_t Nk, float *bias) {
    const int *from_layer = user;
    (void)q_pos0;
    if (from_layer && layer < *from_layer) return 0;
    for (int64_t i = 0; i < Nq; i++)
        for (int64_t j = 1; j < Nk; j++) bias[i * Nk + j] = -INFINITY;
    return 1;
}

typedef struct {
    double worst; /* max |A[h][i][0] - 1| */
} bos_check_t;

static int check_bos(void *user, const hook_info *info, float *data) {
    bos_check_t *b = user;
    const int64_t H = info->shape[0], Nq = info->shape[1], Nk = info->shape[2];
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < Nq; i++) {
            double d = fabs(data[(h * Nq + i) * Nk] - 1.0);
            if (d > b->worst) b->worst = d;
        }
    return 0;
}

static int onehot_bos(void *user, const hook_info *info, float *data) {
    (void)user;
    const int64_t H = info->shape[0], Nq = info->shape[1], Nk = info->shape[2];
    for (int64_t r = 0; r < H * Nq; r++)
        for (int64_t j = 0; j < Nk; j++) data[r * Nk + j] = j == 0 ? 1.0f : 0.0f;
    return 0;
}

static void test_knockout(lm_model_t *m) {
    err_t e = {0};
    const int V = m->cfg.n_vocab, n = 10;
    int32_t a[SEQ], b[SEQ];
    make_seq(a, n, V, 21);
    make_seq(b, n, V, 22);
    b[n - 1] = a[n - 1];
    lm_state_t *s = NULL;
    CHECK_OK(lm_state_create(&s, m, g_mm, 64, 64, &e), &e);
    hook_set_t hs;
    hook_set_init(&hs);
    bos_check_t bc = {0};
    CHECK_OK(hook_add(&hs, "blk.*.attn.pattern", check_bos, &bc, &e), &e);
    lm_run_opts o = {.hooks = &hs, .bias_fn = knock_all_but_bos};
    float *la = malloc(sizeof(float) * (size_t)V), *lb = malloc(sizeof(float) * (size_t)V);
    lm_input_t in = {.ids = a, .n = n};
    CHECK_OK(lm_prefill(s, &in, &o, &e), &e);
    memcpy(la, lm_state_logits(s), sizeof(float) * (size_t)V);
    CHECK_MSG(bc.worst == 0.0, "knocked-out pattern is not one-hot on BOS (max dev %g)", bc.worst);
    /* every position now reads only BOS and itself: the middle tokens cannot matter */
    lm_state_set_pos(s, 0);
    in.ids = b;
    CHECK_OK(lm_prefill(s, &in, &o, &e), &e);
    memcpy(lb, lm_state_logits(s), sizeof(float) * (size_t)V);
    double d_ab = test_max_diff(la, lb, V);
    CHECK_MSG(d_ab <= 1e-5, "with all keys but BOS knocked out, other tokens still matter (%g)", d_ab);
    /* and the same as overwriting the pattern with one-hot(BOS) through a hook */
    hook_set_init(&hs);
    CHECK_OK(hook_add(&hs, "blk.*.attn.pattern", onehot_bos, NULL, &e), &e);
    lm_run_opts o2 = {.hooks = &hs};
    lm_state_set_pos(s, 0);
    in.ids = a;
    CHECK_OK(lm_prefill(s, &in, &o2, &e), &e);
    double d_hook = test_max_diff(la, lm_state_logits(s), V);
    CHECK_MSG(d_hook <= 1e-5, "bias knockout vs pattern-edit hook: %g", d_hook);
    /* without knockout the middle tokens do matter (the test above can fail) */
    lm_state_set_pos(s, 0);
    CHECK_OK(lm_prefill(s, &in, NULL, &e), &e);
    memcpy(la, lm_state_logits(s), sizeof(float) * (size_t)V);
    lm_state_set_pos(s, 0);
    in.ids = b;
    CHECK_OK(lm_prefill(s, &in, NULL, &e), &e);
    CHECK(test_max_diff(la, lm_state_logits(s), V) > 1e-3);
    printf("knockout all-but-BOS: pattern dev %.1e, prompt-independence %.2e, vs pattern hook %.2e\n", bc.worst, d_ab,
           d_hook);
    free(la);
    free(lb);
    lm_state_free(s);
}

static void test_snapshot(lm_model_t *m) {
    err_t e = {0};
    const int V = m->cfg.n_vocab, n = 14;
    int32_t ids[SEQ];
    make_seq(ids, n, V, 31);
    lm_state_t *s = NULL;
    CHECK_OK(lm_state_create(&s, m, g_mm, 64, 64, &e), &e);
    lm_snapshot_t snap;
    CHECK_OK(lm_snapshot_create(&snap, m, 32, &e), &e);
    lm_run_opts rec = {.record = &snap};
    lm_input_t in = {.ids = ids, .n = n};
    CHECK_OK(lm_prefill(s, &in, &rec, &e), &e);
    CHECK(snap.n_pos == n);
    float *base = malloc(sizeof(float) * (size_t)V), *next = malloc(sizeof(float) * (size_t)V),
          *knock = malloc(sizeof(float) * (size_t)V);
    memcpy(base, lm_state_logits(s), sizeof(float) * (size_t)V);
    CHECK_OK(lm_decode(s, 5, NULL, &e), &e);
    memcpy(next, lm_state_logits(s), sizeof(float) * (size_t)V);

    /* the recorded final residual, unembedded, gives the same logits */
    float *xn = malloc(sizeof(float) * (size_t)m->cfg.dim), *ul = malloc(sizeof(float) * (size_t)V);
    CHECK_OK(lm_unembed(s, ul, xn, lm_snapshot_resid(&snap, m->cfg.n_layer, n - 1), 1, &e), &e);
    CHECK_MSG(memcmp(ul, base, sizeof(float) * (size_t)V) == 0, "lm_unembed of the final residual differs");
    free(xn);
    free(ul);
    for (int L = 0; L <= m->cfg.n_layer; L++) {
        CHECK_OK(lm_resume(s, &snap, L, 0, NULL, &e), &e);
        CHECK_MSG(memcmp(lm_state_logits(s), base, sizeof(float) * (size_t)V) == 0,
                  "resume from layer %d is not bit-identical", L);
    }
    /* knockout in layers >= 1: resume vs a full forward with the same bias */
    int from = 1;
    lm_run_opts ko = {.bias_fn = knock_all_but_bos, .bias_user = &from};
    CHECK_OK(lm_resume(s, &snap, 1, 0, &ko, &e), &e);
    memcpy(knock, lm_state_logits(s), sizeof(float) * (size_t)V);
    lm_state_set_pos(s, 0);
    CHECK_OK(lm_prefill(s, &in, &ko, &e), &e);
    CHECK_MSG(memcmp(lm_state_logits(s), knock, sizeof(float) * (size_t)V) == 0,
              "knockout resume differs from the full knockout forward");
    CHECK(test_max_diff(knock, base, V) > 1e-3);
    /* the knocked state changed layer-0 KV (full forward); resume from 1 must restore it */
    int from0 = 0;
    lm_run_opts ko0 = {.bias_fn = knock_all_but_bos, .bias_user = &from0};
    CHECK_OK(lm_resume(s, &snap, 0, 0, &ko0, &e), &e);
    CHECK_OK(lm_resume(s, &snap, 1, 0, NULL, &e), &e);
    CHECK_MSG(memcmp(lm_state_logits(s), base, sizeof(float) * (size_t)V) == 0,
              "resume after a knocked run did not restore the cache");
    /* decoding continues from a resumed state as from the original */
    CHECK_OK(lm_decode(s, 5, NULL, &e), &e);
    CHECK_MSG(memcmp(lm_state_logits(s), next, sizeof(float) * (size_t)V) == 0, "decode after resume differs");
    /* resuming only the last position (cheap knockout of edges into T) */
    CHECK_OK(lm_resume(s, &snap, 1, n - 1, NULL, &e), &e);
    double d_tail = test_max_diff(lm_state_logits(s), base, V);
    CHECK_MSG(d_tail <= 1e-5, "resume of the last position: %g", d_tail);
    CHECK(lm_state_pos(s) == n);
    /* bad arguments */
    CHECK(lm_resume(s, &snap, m->cfg.n_layer + 1, 0, NULL, &e) == ERR_ARG);
    CHECK(lm_resume(s, &snap, 0, n, NULL, &e) == ERR_ARG);
    printf("snapshot resume: bit-identical for layers 0..%d; last-position resume %.2e\n", m->cfg.n_layer, d_tail);
    free(base);
    free(next);
    free(knock);
    lm_snapshot_free(&snap);
    lm_state_free(s);
}

static void test_errors(lm_model_t *m, const char *dir) {
    err_t e = {0};
    lm_state_t *s = NULL;
    CHECK_OK(lm_state_create(&s, m, g_mm, 16, 8, &e), &e);
    int32_t ids[20];
    make_seq(ids, 20, m->cfg.n_vocab, 3);
    lm_input_t in = {.ids = ids, .n = 20};
    CHECK(lm_prefill(s, &in, NULL, &e) == ERR_RANGE);
    CHECK(strstr(e.msg, "context") != NULL);
    in.n = 4;
    ids[2] = m->cfg.n_vocab;
    CHECK(lm_prefill(s, &in, NULL, &e) == ERR_ARG);
    ids[2] = -1;
    CHECK(lm_prefill(s, &in, NULL, &e) == ERR_ARG); /* a slot without rows */
    ids[2] = -7;
    CHECK(lm_prefill(s, &in, NULL, &e) == ERR_ARG);
    lm_state_free(s);

    /* a file of another architecture, and one missing a tensor */
    char path[512];
    snprintf(path, sizeof path, "%s/lm_not_llama.gguf", dir);
    gguf_writer_t *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "clip");
    CHECK_OK(gguf_writer_write(w, path, &e), &e);
    gguf_writer_free(w);
    lm_model_t *bad = NULL;
    CHECK(lm_model_load(&bad, path, &e) == ERR_UNSUPPORTED && bad == NULL);
    CHECK(strstr(e.msg, "lm_not_llama.gguf") != NULL);
    snprintf(path, sizeof path, "%s/lm_no_tensors.gguf", dir);
    w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.embedding_length", 64);
    gguf_writer_set_u32(w, "llama.block_count", 1);
    gguf_writer_set_u32(w, "llama.attention.head_count", 4);
    gguf_writer_set_u32(w, "llama.feed_forward_length", 128);
    CHECK_OK(gguf_writer_write(w, path, &e), &e);
    gguf_writer_free(w);
    CHECK(lm_model_load(&bad, path, &e) == ERR_NOTFOUND && bad == NULL);
    CHECK(strstr(e.msg, "token_embd.weight") != NULL);
    /* RoPE scaling would change every angle: refused, not ignored */
    snprintf(path, sizeof path, "%s/lm_rope_scaled.gguf", dir);
    w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.embedding_length", 64);
    gguf_writer_set_u32(w, "llama.block_count", 1);
    gguf_writer_set_u32(w, "llama.attention.head_count", 4);
    gguf_writer_set_u32(w, "llama.feed_forward_length", 128);
    gguf_writer_set_str(w, "llama.rope.scaling.type", "linear");
    CHECK_OK(gguf_writer_write(w, path, &e), &e);
    gguf_writer_free(w);
    CHECK(lm_model_load(&bad, path, &e) == ERR_UNSUPPORTED && bad == NULL);
    CHECK(strstr(e.msg, "linear") != NULL);
}

/* ------------------------------------------------------------------ sampler */

static void test_sampler(void) {
    err_t e = {0};
    float lg[4] = {logf(0.5f), logf(0.3f), logf(0.2f), -INFINITY};
    sampler_t s;
    CHECK(sample_argmax(lg, 4) == 0);
    sample_params_t p = sample_defaults();
    CHECK_OK(sampler_create(&s, 4, p, &e), &e);
    CHECK(sampler_next(&s, lg) == 0);
    sampler_free(&s);
    p.temp = 1.0f;
    p.seed = 42;
    CHECK_OK(sampler_create(&s, 4, p, &e), &e);
    int cnt[4] = {0};
    const int N = 20000;
    int32_t first[8];
    for (int i = 0; i < N; i++) {
        int32_t t = sampler_next(&s, lg);
        if (i < 8) first[i] = t;
        cnt[t]++;
    }
    CHECK_NEAR(cnt[0] / (double)N, 0.5, 0.015);
    CHECK_NEAR(cnt[1] / (double)N, 0.3, 0.015);
    CHECK_NEAR(cnt[2] / (double)N, 0.2, 0.015);
    CHECK(cnt[3] == 0);
    sampler_free(&s);
    CHECK_OK(sampler_create(&s, 4, p, &e), &e); /* same seed, same draws */
    for (int i = 0; i < 8; i++) CHECK(sampler_next(&s, lg) == first[i]);
    sampler_free(&s);
    p.top_p = 0.75f; /* 0.5 + 0.3 reaches 0.75: token 2 is cut */
    CHECK_OK(sampler_create(&s, 4, p, &e), &e);
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < 4000; i++) cnt[sampler_next(&s, lg)]++;
    CHECK(cnt[2] == 0 && cnt[0] > 0 && cnt[1] > 0);
    CHECK_NEAR(cnt[0] / 4000.0, 0.625, 0.03);
    sampler_free(&s);
    p.top_p = 1.0f;
    p.top_k = 1;
    CHECK_OK(sampler_create(&s, 4, p, &e), &e);
    for (int i = 0; i < 100; i++) CHECK(sampler_next(&s, lg) == 0);
    sampler_free(&s);
    p.top_k = 0;
    p.temp = 0.01f; /* low temperature: essentially greedy */
    CHECK_OK(sampler_create(&s, 4, p, &e), &e);
    for (int i = 0; i < 100; i++) CHECK(sampler_next(&s, lg) == 0);
    sampler_free(&s);
    p.top_p = 0.0f;
    CHECK(sampler_create(&s, 4, p, &e) == ERR_ARG);
}

int main(int argc, char **argv) {
    err_t e = {0};
    if (argc == 3 && !strcmp(argv[1], "--write-fixtures")) {
        for (int i = 0; i < N_FIX; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s.gguf", argv[2], fixtures[i].name);
            if (lm_write_random(path, &fixtures[i].spec, &e)) {
                fprintf(stderr, "%s\n", e.msg);
                return 1;
            }
            printf("wrote %s\n", path);
        }
        return 0;
    }
    mm_init_blas(argc, argv);
    CHECK_OK(mm_ctx_create(&g_mm, 2, &e), &e);
    if (!g_mm) return test_result("test_llama");
    for (int i = 0; i < N_FIX; i++) test_golden(&fixtures[i], 1);
    for (int i = 1; i < N_FIX; i++) test_golden(&fixtures[i], 0);
    mm_ctx_set_exact(g_mm, 1); /* the behaviour tests below compare paths exactly */
    lm_model_t *m = NULL;
    CHECK_OK(lm_model_load(&m, GOLD "rand_f32.gguf", &e), &e);
    if (m) {
        CHECK(m->cfg.n_kv_head == 2 && m->cfg.n_head == 4 && !m->w.tied);
        test_kv_decode(m);
        test_hooks(m);
        test_knockout(m);
        test_snapshot(m);
        char dir[40];
        CHECK(test_tmpdir(dir) != NULL);
        test_errors(m, dir);
        test_rmdir(dir);
        lm_model_free(m);
    }
    test_repacked(GOLD "rand_q4_k.gguf", QT_Q4_K, TENSOR_Q4K_X16);
    test_repacked(GOLD "rand_q8_0.gguf", QT_Q8_0, TENSOR_Q8_0_X16);
    test_sampler();
    mm_ctx_free(g_mm);
    return test_result("test_llama");
}
