/* train.c — data, AdamW, schedule and the multi-threaded step of the toy trainer
 * (contract in train.h). Checkpoints live in train_ckpt.c, GGUF export in
 * train_gguf.c. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/threads.h"
#include "../vision/preprocess.h"
#include "train_impl.h"

/* The mean is the toy world's background colour (200/255), not CLIP's: with CLIP's
 * mean the uniform background becomes a large constant patch vector, and Adam's
 * sign-consistent updates grow the patch embedding along it until position and
 * content are ~1% of every token (measured: token norms 165 -> 357 through the tower,
 * deviations 4; the model sat at chance for 20k examples). A zero background leaves
 * the positions and the objects as the signal. The std is CLIP's. */
const float tr_image_mean[3] = {0.78431373f, 0.78431373f, 0.78431373f};
const float tr_image_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void tr_options_default(tr_options *o) {
    *o = (tr_options){
        .steps = 3000, .batch = 32, .warmup = 100, .lr = 2e-3f, .lr_min = 1e-4f, .weight_decay = 0.05f,
        .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .clip = 1.0f, .seed = 1234, .data_seed = TR_SEED_TRAIN,
        .data_n = 0, .threads = 1, .vision_lr_scale = 1.0f, .image_grad = 1.0f,
    };
}

/* Linear warm-up (Goyal et al. 2017) then half-cosine (Loshchilov & Hutter 2017) from
 * lr to lr_min over the remaining steps. `step` counts completed steps. */
float tr_lr_at(const tr_options *o, int64_t step) {
    if (step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    int64_t span = o->steps - o->warmup;
    double p = span > 0 ? (double)(step - o->warmup) / (double)span : 1.0;
    if (p > 1.0) p = 1.0;
    return (float)(o->lr_min + 0.5 * (o->lr - o->lr_min) * (1.0 + cos(M_PI * p)));
}

/* ---- examples ---- */

err_code tr_prepare_example(tr_worker *wk, const tm_config *cfg, const tok_t *tok, uint64_t seed, uint64_t idx,
                            err_t *err) {
    const int S = cfg->image_size, P = tm_n_patches(cfg);
    /* background noise on a hashed half of the indices, as toy generate --noise-half */
    err_code rc = sc_example_reuse(&wk->scene, &wk->qa, seed, idx, S, S, sc_noise_half(idx), err);
    if (rc) return rc;
    /* CHW, normalised by the same function inference uses, with the mean/std the mmproj records */
    const img_t view = {.w = S, .h = S, .rgb = wk->scene.rgb};
    pp_normalize(&view, tr_image_mean, tr_image_std, wk->img);
    int64_t np = 0, image_start = 0, na = 0;
    rc = tpl_build(tok, TPL_LLAVA, wk->qa.question, P, wk->ids, cfg->max_seq, &np, &image_start, err);
    if (rc) return err_prefix(err, "example %llu", (unsigned long long)idx);
    rc = tok_encode_answer(tok, wk->qa.answer, wk->targets, TR_MAX_TARGETS, &na, err);
    if (rc) return err_prefix(err, "example %llu answer '%s'", (unsigned long long)idx, wk->qa.answer);
    /* Teacher forcing: the answer pieces except the final EOS follow the prompt; row
     * np-1+j predicts targets[j]. */
    if (np + na - 1 > cfg->max_seq)
        return err_set(err, ERR_RANGE, "example %llu: %lld tokens exceed max_seq %d", (unsigned long long)idx,
                       (long long)(np + na - 1), cfg->max_seq);
    for (int64_t j = 0; j + 1 < na; j++) wk->ids[np + j] = wk->targets[j];
    wk->ex = (tm_example){.img = wk->img, .ids = wk->ids, .n = np + na - 1, .image_start = image_start,
                          .targets = wk->targets, .t0 = np - 1, .n_targets = na};
    return ERR_OK;
}

/* ---- trainer ---- */

static err_code worker_init(tr_worker *wk, const tm_model *m, err_t *err) {
    const tm_config *c = &m->cfg;
    memset(wk, 0, sizeof *wk);
    err_code rc = tm_state_create(&wk->st, c, err);
    if (rc) return rc;
    wk->grad = calloc(m->n_params, sizeof(float));
    wk->img = malloc((size_t)3 * c->image_size * c->image_size * sizeof(float));
    wk->ids = malloc((size_t)c->max_seq * sizeof(int32_t));
    wk->bias = malloc((size_t)c->max_seq * c->max_seq * sizeof(float));
    wk->aux = malloc((size_t)TM_N_AUX * tm_n_patches(c) * sizeof(int32_t));
    if (!wk->grad || !wk->img || !wk->ids || !wk->bias || !wk->aux)
        return err_set(err, ERR_NOMEM, "trainer: cannot allocate a worker");
    tm_views(m, wk->grad, &wk->gv);
    return ERR_OK;
}

static void worker_free(tr_worker *wk) {
    tm_state_free(wk->st);
    free(wk->grad);
    free(wk->img);
    free(wk->ids);
    free(wk->bias);
    free(wk->aux);
    sc_scene_free(&wk->scene);
}

err_code tr_create(tr_trainer **out, const tm_config *cfg, const tr_options *o, const tok_t *tok, err_t *err) {
    *out = NULL;
    if (o->batch < 1 || o->steps < 1 || o->threads < 1 || o->warmup < 1 || !(o->lr > 0) || !(o->image_grad > 0))
        return err_set(err, ERR_ARG, "trainer: batch, steps, threads, warmup, lr and image_grad must be positive");
    if (cfg->n_vocab != tok_n_vocab(tok))
        return err_set(err, ERR_MISMATCH, "trainer: model vocabulary %d differs from the tokenizer's %d",
                       cfg->n_vocab, tok_n_vocab(tok));
    tr_trainer *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, ERR_NOMEM, "trainer: out of memory");
    t->opt = *o;
    t->tok = tok;
    /* the lens targets: the first piece of each answer word */
    const char *word[SC_N_COLORS + SC_N_SHAPES + 2];
    int32_t *dest[SC_N_COLORS + SC_N_SHAPES + 2];
    int nw = 0;
    for (int i = 0; i < SC_N_COLORS; i++) word[nw] = sc_color_names[i], dest[nw++] = &t->color_id[i];
    for (int i = 0; i < SC_N_SHAPES; i++) word[nw] = sc_shape_names[i], dest[nw++] = &t->shape_id[i];
    word[nw] = "left", dest[nw++] = &t->side_id[0];
    word[nw] = "right", dest[nw++] = &t->side_id[1];
    for (int i = 0; i < nw; i++) {
        int32_t ids[TR_MAX_TARGETS];
        int64_t na = 0;
        if (tok_encode_answer(tok, word[i], ids, TR_MAX_TARGETS, &na, err)) {
            free(t);
            return err_prefix(err, "trainer: answer word '%s'", word[i]);
        }
        *dest[i] = ids[0];
    }
    err_code rc = tm_create(&t->model, cfg, err);
    if (rc) goto fail;
    tm_init_params_ex(&t->model, o->seed, o->init);
    t->m = calloc(t->model.n_params, sizeof(float));
    t->v = calloc(t->model.n_params, sizeof(float));
    t->n_workers = o->threads;
    t->workers = calloc((size_t)t->n_workers, sizeof *t->workers);
    if (!t->m || !t->v || !t->workers) {
        rc = err_set(err, ERR_NOMEM, "trainer: cannot allocate optimiser state");
        goto fail;
    }
    for (int i = 0; i < t->n_workers; i++)
        if ((rc = worker_init(&t->workers[i], &t->model, err))) goto fail;
    if (t->n_workers > 1 && (rc = pool_create(&t->pool, t->n_workers, err))) goto fail;
    *out = t;
    return ERR_OK;
fail:
    tr_free(t);
    return rc;
}

void tr_free(tr_trainer *t) {
    if (!t) return;
    pool_free(t->pool);
    if (t->workers)
        for (int i = 0; i < t->n_workers; i++) worker_free(&t->workers[i]);
    free(t->workers);
    free(t->m);
    free(t->v);
    tm_free(&t->model);
    free(t);
}

tm_model *tr_model(tr_trainer *t) { return &t->model; }
int64_t tr_steps_done(const tr_trainer *t) { return t->step; }

/* Single objects first: the answer is then read off one blob, so the image carries
 * signal before the LM learns to treat the image tokens as noise. Without it the
 * 224 px model sat at chance for 20k examples while the tower's output collapsed to
 * one common vector (the LM gains from constant image tokens while they are noise). */
static int curriculum_max_objects(const tr_options *o, int64_t step) {
    if (o->curriculum <= 0 || step >= o->curriculum) return SC_MAX_OBJECTS;
    return 1 + (int)(step * (SC_MAX_OBJECTS - 1) / o->curriculum);
}

/* Training aids for the 224 px model (measured in session 1: without them the LM
 * answers count from the image but sits at chance on every question that needs one
 * object's colour or shape, because 196 image tokens dilute the attention of the
 * answer position 1/200 and the routing gradient with it; the same code learns at
 * 64 px with 16 tokens).
 * - Keep ramp: during the first keep_ramp steps each background patch (no object
 *   pixel in its cell) is hidden from every LM query with probability 1 - step/ramp
 *   (a -inf attention bias, so its position and the causal layout stay as at
 *   inference); object patches are always visible. The LM first learns to route
 *   among the object tokens, as at 64 px, then to ignore the background.
 * - Layer-0 lens: each patch that an object covers by >= 1/4 must predict that
 *   object's colour word, shape word and side word (left/right, when the object's
 *   centre is outside the middle fifth, as the position questions ask) through the
 *   model's own final norm and output head, so the tower and projector learn
 *   per-token object identity with a dense signal instead of through the answer
 *   alone. */
static void training_aids(tr_trainer *t, tr_worker *wk, uint64_t idx) {
    const tm_config *c = &t->model.cfg;
    const tr_options *o = &t->opt;
    const int g = c->image_size / c->patch_size, ps = c->patch_size, P = g * g;
    const int64_t n = wk->ex.n, s0 = wk->ex.image_start;
    const sc_scene *sc = &wk->scene;
    int cnt[SC_MAX_OBJECTS + 1];
    const int64_t ramp_step = t->step > o->lens_only ? t->step - o->lens_only : 0; /* starts with the LM */
    const double keep = o->keep_ramp > 0 && ramp_step < o->keep_ramp ? (double)ramp_step / o->keep_ramp : 1.0;
    wk->ex.lm_bias = NULL;
    wk->ex.aux_targets = o->aux_lens > 0 ? wk->aux : NULL;
    wk->ex.aux_weight = o->aux_lens;
    wk->ex.lens_only = o->aux_lens > 0 && t->step < o->lens_only;
    wk->ex.image_grad = o->image_grad;
    if (!wk->ex.aux_targets && keep >= 1.0) return; /* neither needs the patches' objects */
    sc_rng r;
    sc_rng_seed(&r, idx * 0x9E3779B97F4A7C15ull + 0x5bd1e995ull);
    for (int p = 0; p < P; p++) {
        memset(cnt, 0, sizeof cnt);
        const int y0 = (p / g) * ps, x0 = (p % g) * ps;
        for (int y = y0; y < y0 + ps; y++)
            for (int x = x0; x < x0 + ps; x++) cnt[sc->mask[(size_t)y * sc->w + x]]++;
        int best = 0;
        for (int k = 1; k <= sc->n_objects; k++)
            if (cnt[k] > (best ? cnt[best] : 0)) best = k;
        bool on = best > 0 && cnt[best] * 4 >= ps * ps;
        wk->aux[p] = on ? t->color_id[sc->objects[best - 1].color] : -1;
        wk->aux[P + p] = on ? t->shape_id[sc->objects[best - 1].shape] : -1;
        const int side = on ? sc_side_of(&sc->objects[best - 1], sc->w) : -1;
        wk->aux[2 * P + p] = side >= 0 ? t->side_id[side] : -1;
        if (best != 0 || keep >= 1.0 || sc_rng_uniform(&r) < keep) continue;
        if (!wk->ex.lm_bias) { /* the first hidden patch */
            memset(wk->bias, 0, (size_t)n * n * sizeof(float));
            wk->ex.lm_bias = wk->bias;
        }
        for (int64_t q = 0; q < n; q++) wk->bias[q * n + s0 + p] = -INFINITY;
    }
}

/* One worker's share of a batch: forward + backward per example into its own gradient. */
typedef struct {
    tr_trainer *t;
    uint64_t seed, idx0;
    int64_t n;
    bool train;
} batch_job;

static void batch_worker(void *arg, int ith, int nth) {
    batch_job *job = arg;
    tr_trainer *t = job->t;
    tr_worker *wk = &t->workers[ith];
    const tm_model *m = &t->model;
    long lo, hi;
    pool_split((long)job->n, ith, nth, &lo, &hi);
    wk->rc = ERR_OK;
    wk->loss = 0.0, wk->aux_loss = 0.0;
    memset(wk->correct, 0, sizeof wk->correct);
    memset(wk->total, 0, sizeof wk->total);
    if (job->train) memset(wk->grad, 0, m->n_params * sizeof(float));
    for (long i = lo; i < hi; i++) {
        uint64_t idx = job->idx0 + (uint64_t)i;
        if (job->train && t->opt.data_n > 0) idx %= (uint64_t)t->opt.data_n;
        double ls = 0.0;
        err_code rc = tr_prepare_example(wk, &m->cfg, t->tok, job->seed, idx, &wk->err);
        /* Curriculum: while it lasts, scenes with more than max_obj objects are replaced
         * by later indices (a fixed odd stride keeps this a function of the step). */
        int max_obj = job->train ? curriculum_max_objects(&t->opt, t->step) : SC_MAX_OBJECTS;
        for (uint64_t a = 1; !rc && wk->scene.n_objects > max_obj; a++)
            rc = tr_prepare_example(wk, &m->cfg, t->tok, job->seed, idx + a * 0x9E3779B1ull, &wk->err);
        if (!rc && job->train) training_aids(t, wk, idx);
        if (!rc) rc = tm_forward(m, wk->st, &wk->ex, &ls, &wk->err);
        if (rc) {
            wk->rc = rc;
            return;
        }
        const int64_t nt = wk->ex.n_targets;
        wk->loss += ls / (double)nt;
        wk->aux_loss += tm_state_aux_loss(wk->st);
        if (job->train) {
            tm_backward(m, wk->st, &wk->ex, &wk->gv, 1.0f / (float)(nt * job->n));
        } else {
            const float *lg = tm_state_logits(wk->st);
            bool ok = true;
            for (int64_t r = 0; r < nt; r++) {
                const float *row = lg + r * m->cfg.n_vocab;
                int32_t best = 0;
                for (int32_t v = 1; v < m->cfg.n_vocab; v++)
                    if (row[v] > row[best]) best = v;
                if (best != wk->ex.targets[r]) ok = false;
            }
            wk->total[wk->qa.type]++;
            wk->correct[wk->qa.type] += ok;
        }
    }
}

static err_code run_batch(tr_trainer *t, batch_job *job, err_t *err) {
    if (t->pool)
        pool_run(t->pool, batch_worker, job);
    else
        batch_worker(job, 0, 1);
    for (int i = 0; i < t->n_workers; i++)
        if (t->workers[i].rc) {
            if (err) *err = t->workers[i].err;
            return t->workers[i].rc;
        }
    return ERR_OK;
}

/* AdamW (Loshchilov & Hutter 2019): decoupled decay p -= lr wd p on matrices, then
 * the bias-corrected Adam update (Kingma & Ba 2015, alg. 1). */
static void adamw_update(tr_trainer *t, const float *g, float lr, float gscale) {
    const tr_options *o = &t->opt;
    const tm_model *m = &t->model;
    const double step = (double)(t->step + 1);
    const float bc1 = (float)(1.0 - pow(o->beta1, step)), bc2 = (float)(1.0 - pow(o->beta2, step));
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_param *p = &m->table[i];
        float wd = p->decay ? o->weight_decay : 0.0f;
        const float plr = strncmp(p->name, "v.", 2) == 0 ? lr * o->vision_lr_scale : lr;
        float *x = m->params + p->offset, *mm = t->m + p->offset, *vv = t->v + p->offset;
        const float *gg = g + p->offset;
        for (size_t j = 0; j < p->n; j++) {
            float gj = gg[j] * gscale;
            mm[j] = o->beta1 * mm[j] + (1.0f - o->beta1) * gj;
            vv[j] = o->beta2 * vv[j] + (1.0f - o->beta2) * gj * gj;
            float mh = mm[j] / bc1, vh = vv[j] / bc2;
            x[j] -= plr * (mh / (sqrtf(vh) + o->eps) + wd * x[j]);
        }
    }
}

err_code tr_step(tr_trainer *t, tr_step_stats *st, err_t *err) {
    const tr_options *o = &t->opt;
    const tm_model *m = &t->model;
    batch_job job = {.t = t, .seed = o->data_seed, .idx0 = (uint64_t)t->step * (uint64_t)o->batch,
                     .n = o->batch, .train = true};
    err_code rc = run_batch(t, &job, err);
    if (rc) return rc;
    /* Sum the workers' gradients in worker order (deterministic for a thread count). */
    float *g = t->workers[0].grad;
    double loss = t->workers[0].loss, aux = t->workers[0].aux_loss;
    for (int i = 1; i < t->n_workers; i++) {
        aux += t->workers[i].aux_loss;
        const float *gi = t->workers[i].grad;
        for (size_t j = 0; j < m->n_params; j++) g[j] += gi[j];
        loss += t->workers[i].loss;
    }
    double ss = 0.0;
    for (size_t j = 0; j < m->n_params; j++) ss += (double)g[j] * g[j];
    double norm = sqrt(ss);
    if (!isfinite(norm))
        return err_set(err, ERR_RANGE, "trainer: gradient norm is not finite at step %lld", (long long)t->step);
    /* Global-norm clipping (Pascanu et al. 2013). */
    float gscale = (o->clip > 0 && norm > o->clip) ? (float)(o->clip / norm) : 1.0f;
    float lr = tr_lr_at(o, t->step);
    adamw_update(t, g, lr, gscale);
    t->step++;
    if (st)
        *st = (tr_step_stats){
            .step = t->step, .loss = loss / o->batch, .aux_loss = aux / o->batch, .grad_norm = norm, .lr = lr};
    return ERR_OK;
}

err_code tr_evaluate(tr_trainer *t, uint64_t seed, int64_t n_per_type, tr_eval *res, err_t *err) {
    memset(res, 0, sizeof *res);
    const int64_t total = n_per_type * SC_N_QTYPES;
    /* Chunks keep the per-worker loop short enough to stay responsive. */
    const int64_t chunk = 64 * t->n_workers;
    double loss = 0.0;
    for (int64_t i0 = 0; i0 < total; i0 += chunk) {
        batch_job job = {.t = t, .seed = seed, .idx0 = (uint64_t)i0, .n = total - i0 < chunk ? total - i0 : chunk,
                         .train = false};
        err_code rc = run_batch(t, &job, err);
        if (rc) return rc;
        for (int w = 0; w < t->n_workers; w++) {
            for (int q = 0; q < SC_N_QTYPES; q++) {
                res->correct[q] += t->workers[w].correct[q];
                res->total[q] += t->workers[w].total[q];
            }
            loss += t->workers[w].loss;
        }
    }
    res->loss = total ? loss / (double)total : 0.0;
    return ERR_OK;
}
