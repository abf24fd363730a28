/* The shared forward of the explain passes: one prefill that records everything the
 * forward-only methods read (see explain.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "explain.h"

typedef struct {
    ex_capture_t *cap;
    ex_fusion fusion;
    int64_t T;
    int head_dim;
} capture_ctx;

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) return -1;
    return l;
}

/* blk.L.attn.pattern [n_head][nq][Nk]: fuse heads for rollout and keep T's row per head. */
static int on_pattern(void *user, const hook_info *info, float *data) {
    capture_ctx *c = user;
    ex_capture_t *cap = c->cap;
    int l = layer_of(info->name);
    if (l < 0 || l >= cap->n_layer) return 0;
    const int64_t H = info->shape[0], nq = info->shape[1], nk = info->shape[2], n = cap->n;
    for (int64_t i = 0; i < nq; i++) {
        const int64_t q = info->pos0 + i;
        if (q >= n) continue;
        float *f = cap->fused + ((int64_t)l * n + q) * n;
        for (int64_t k = 0; k < nk && k < n; k++) {
            float acc = c->fusion == EX_FUSE_MAX ? -INFINITY : c->fusion == EX_FUSE_MIN ? INFINITY : 0.0f;
            for (int64_t h = 0; h < H; h++) {
                float a = data[(h * nq + i) * nk + k];
                if (c->fusion == EX_FUSE_MAX) acc = a > acc ? a : acc;
                else if (c->fusion == EX_FUSE_MIN) acc = a < acc ? a : acc;
                else acc += a;
            }
            f[k] = c->fusion == EX_FUSE_MEAN ? acc / (float)H : acc;
        }
        if (q == c->T)
            for (int64_t h = 0; h < H; h++)
                memcpy(cap->att_T + ((int64_t)l * H + h) * n, data + (h * nq + i) * nk,
                       sizeof(float) * (size_t)(nk < n ? nk : n));
    }
    return 0;
}

/* Rows of T for [n][...] activations: z [n][n_head][hd], attn_out / mlp_out [n][dim]. */
static const float *row_of_T(const capture_ctx *c, const hook_info *info, const float *data, int64_t row_len) {
    int64_t i = c->T - info->pos0;
    if (i < 0 || i >= info->shape[0]) return NULL;
    return data + i * row_len;
}

static int on_z(void *user, const hook_info *info, float *data) {
    capture_ctx *c = user;
    int l = layer_of(info->name);
    int64_t len = (int64_t)c->cap->n_head * c->head_dim;
    const float *r = row_of_T(c, info, data, len);
    if (l >= 0 && l < c->cap->n_layer && r) memcpy(c->cap->z_T + l * len, r, sizeof(float) * (size_t)len);
    return 0;
}

static int on_attn_out(void *user, const hook_info *info, float *data) {
    capture_ctx *c = user;
    int l = layer_of(info->name);
    const float *r = row_of_T(c, info, data, c->cap->dim);
    if (l >= 0 && l < c->cap->n_layer && r)
        memcpy(c->cap->attn_out_T + (int64_t)l * c->cap->dim, r, sizeof(float) * (size_t)c->cap->dim);
    return 0;
}

static int on_mlp_out(void *user, const hook_info *info, float *data) {
    capture_ctx *c = user;
    int l = layer_of(info->name);
    const float *r = row_of_T(c, info, data, c->cap->dim);
    if (l >= 0 && l < c->cap->n_layer && r)
        memcpy(c->cap->mlp_out_T + (int64_t)l * c->cap->dim, r, sizeof(float) * (size_t)c->cap->dim);
    return 0;
}

void ex_capture_free(ex_capture_t *cap) {
    lm_snapshot_free(&cap->snap);
    free(cap->fused);
    free(cap->att_T);
    free(cap->z_T);
    free(cap->attn_out_T);
    free(cap->mlp_out_T);
    free(cap->logits);
    memset(cap, 0, sizeof *cap);
}

err_code ex_capture(ex_capture_t *cap, const ex_input *in, const ex_options *opt, err_t *err) {
    memset(cap, 0, sizeof *cap);
    const lm_config_t *cfg = &in->lm->cfg;
    if (in->n <= 0 || in->T != in->n - 1)
        return err_set(err, ERR_ARG, "explain: the explained position must be the last prompt position");
    if (in->img_start < 0 || in->n_image != (int64_t)in->grid_h * in->grid_w || in->img_start + in->n_image > in->n)
        return err_set(err, ERR_ARG, "explain: image span [%lld, %lld) and grid %dx%d do not fit a prompt of %lld",
                       (long long)in->img_start, (long long)(in->img_start + in->n_image), in->grid_h, in->grid_w,
                       (long long)in->n);
    const int64_t n = in->n, L = cfg->n_layer, H = cfg->n_head, D = cfg->dim;
    cap->n_layer = (int)L;
    cap->n_head = (int)H;
    cap->dim = (int)D;
    cap->n = n;
    err_code rc = lm_snapshot_create(&cap->snap, in->lm, n, err);
    if (rc) return rc;
    cap->fused = calloc((size_t)(L * n * n), sizeof(float));
    cap->att_T = calloc((size_t)(L * H * n), sizeof(float));
    cap->z_T = calloc((size_t)(L * H * cfg->head_dim), sizeof(float));
    cap->attn_out_T = calloc((size_t)(L * D), sizeof(float));
    cap->mlp_out_T = calloc((size_t)(L * D), sizeof(float));
    cap->logits = calloc((size_t)cfg->n_vocab, sizeof(float));
    if (!cap->fused || !cap->att_T || !cap->z_T || !cap->attn_out_T || !cap->mlp_out_T || !cap->logits) {
        ex_capture_free(cap);
        return err_set(err, ERR_NOMEM, "explain: cannot allocate the capture of %lld positions x %lld layers",
                       (long long)n, (long long)L);
    }
    capture_ctx ctx = {.cap = cap, .fusion = opt->fusion, .T = in->T, .head_dim = cfg->head_dim};
    hook_set_t hooks;
    hook_set_init(&hooks);
    hook_add(&hooks, "blk.*.attn.pattern", on_pattern, &ctx, NULL);
    hook_add(&hooks, "blk.*.attn.z", on_z, &ctx, NULL);
    hook_add(&hooks, "blk.*.attn_out", on_attn_out, &ctx, NULL);
    hook_add(&hooks, "blk.*.mlp_out", on_mlp_out, &ctx, NULL);
    lm_run_opts ro = {.hooks = &hooks, .record = &cap->snap};
    lm_input_t li = {.ids = in->ids, .n = n, .embd = in->img_embd, .n_embd = in->n_image};
    lm_state_set_pos(in->st, 0);
    if ((rc = lm_prefill(in->st, &li, &ro, err))) {
        ex_capture_free(cap);
        return rc;
    }
    memcpy(cap->logits, lm_state_logits(in->st), sizeof(float) * (size_t)cfg->n_vocab);
    int32_t am = 0;
    for (int32_t v = 1; v < cfg->n_vocab; v++)
        if (cap->logits[v] > cap->logits[am]) am = v;
    cap->argmax = am;
    cap->target = in->target >= 0 ? in->target : am;
    if (cap->target >= cfg->n_vocab) {
        ex_capture_free(cap);
        return err_set(err, ERR_ARG, "explain: target token %d outside the vocabulary (%d)", in->target, cfg->n_vocab);
    }
    double mx = cap->logits[am], sum = 0;
    for (int32_t v = 0; v < cfg->n_vocab; v++) sum += exp((double)cap->logits[v] - mx);
    cap->logp_target = (float)((double)cap->logits[cap->target] - mx - log(sum));
    cap->p_target = expf(cap->logp_target);
    return ERR_OK;
}
