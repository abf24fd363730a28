/* vit.c — CLIP ViT + LLaVA mlp projector: loading (keys, shapes) and the forward pass.
 * Equations: Radford et al. 2021 (CLIP), Dosovitskiy et al. 2021 (ViT, pre-LN),
 * HF transformers modeling_clip.py / modeling_llava.py; see vit.h. */
#include "vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ops.h"
#include "../core/quant.h"

struct vit {
    vit_config cfg;
    gguf_t *owned; /* non-NULL when vit_load opened the file */
    const gguf_t *g;
    tensor_t patch_w;       /* view of v.patch_embd.weight as {3 p p, d} */
    const float *patch_b;   /* optional */
    const float *class_embd, *pos_embd, *pre_ln_w, *pre_ln_b;
    vit_block *blocks;      /* n_run */
    const tensor_t *mm0_w, *mm2_w;
    const float *mm0_b, *mm2_b;
    float *f32;             /* dequantized small tensors */
    size_t f32_used, f32_cap;
};

const vit_config *vit_get_config(const vit_t *v) { return &v->cfg; }
const gguf_t *vit_gguf(const vit_t *v) { return v->g; }

void vit_free(vit_t *v) {
    if (!v) return;
    free(v->blocks);
    free(v->f32);
    if (v->owned) gguf_close(v->owned);
    free(v);
}

double vit_flops(const vit_config *c) {
    double N = c->n_tokens, P = c->n_patches, d = c->d, ff = c->n_ff;
    double k = 3.0 * c->patch_size * c->patch_size;
    double blk = 2 * N * d * d * 4 + 2 * N * d * ff * 2 + 2 * 2 * N * N * d;
    return 2 * P * k * d + c->n_run * blk + 2 * P * d * c->d_proj_hidden + 2 * P * c->d_proj_hidden * c->d_out;
}

/* Finds a tensor with the given shape and returns an f32 copy (or the mapped data
 * when already f32 and aligned). */
static err_code load_vec(vit_t *v, const char *name, int n_dims, const int64_t *ne, bool optional, const float **out,
                         err_t *err) {
    *out = NULL;
    if (optional && !gguf_find_tensor(v->g, name)) return ERR_OK;
    const tensor_t *t;
    err_code rc = gguf_require_tensor(v->g, name, n_dims, ne, &t, err);
    if (rc) return rc;
    int64_t n = tensor_nelements(t);
    if (t->type == QT_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        *out = t->data;
        return ERR_OK;
    }
    const qt_traits *tr = qt_get(t->type);
    if (!tr) return err_set(err, ERR_UNSUPPORTED, "%s: tensor %s: unsupported type %d", gguf_path(v->g), name, t->type);
    if (v->f32_used + (size_t)n > v->f32_cap)
        return err_set(err, ERR_RANGE, "%s: tensor %s: internal f32 budget exceeded", gguf_path(v->g), name);
    float *dst = v->f32 + v->f32_used;
    tr->to_float(t->data, dst, n);
    v->f32_used += (size_t)n;
    *out = dst;
    return ERR_OK;
}

static err_code get_u32_key(const gguf_t *g, const char *key, int *out, err_t *err) {
    uint32_t u;
    err_code rc = gguf_get_u32(g, key, &u, err);
    if (rc) return rc;
    if (u == 0 || u > (1u << 20))
        return err_set(err, ERR_RANGE, "%s: %s = %u is out of range", gguf_path(g), key, u);
    *out = (int)u;
    return ERR_OK;
}

static err_code read_config(const gguf_t *g, vit_config *c, err_t *err) {
    const char *path = gguf_path(g);
    char s[64];
    err_code rc = gguf_get_str(g, "general.architecture", s, sizeof s, err);
    if (rc) return rc;
    if (strcmp(s, "clip") != 0)
        return err_set(err, ERR_UNSUPPORTED, "%s: general.architecture is '%s', expected 'clip' (an mmproj file)", path, s);
    bool b = true;
    if (gguf_find_key(g, "clip.has_vision_encoder") >= 0) {
        if ((rc = gguf_get_bool(g, "clip.has_vision_encoder", &b, err))) return rc;
        if (!b) return err_set(err, ERR_UNSUPPORTED, "%s: clip.has_vision_encoder is false", path);
    }
    if ((rc = gguf_get_str(g, "clip.projector_type", s, sizeof s, err))) return rc;
    if (strcmp(s, "mlp") != 0)
        return err_set(err, ERR_UNSUPPORTED, "%s: clip.projector_type '%s' is not supported (only 'mlp', LLaVA-1.5)",
                       path, s);
    if ((rc = get_u32_key(g, "clip.vision.image_size", &c->image_size, err))) return rc;
    if ((rc = get_u32_key(g, "clip.vision.patch_size", &c->patch_size, err))) return rc;
    if ((rc = get_u32_key(g, "clip.vision.embedding_length", &c->d, err))) return rc;
    if ((rc = get_u32_key(g, "clip.vision.feed_forward_length", &c->n_ff, err))) return rc;
    if ((rc = get_u32_key(g, "clip.vision.attention.head_count", &c->n_head, err))) return rc;
    if ((rc = get_u32_key(g, "clip.vision.block_count", &c->n_stored, err))) return rc;
    if ((rc = gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &c->eps, err))) return rc;
    if (!(c->eps > 0 && c->eps < 1))
        return err_set(err, ERR_RANGE, "%s: layer_norm_epsilon %g is out of range", path, (double)c->eps);
    c->use_gelu = false;
    if (gguf_find_key(g, "clip.use_gelu") >= 0 && (rc = gguf_get_bool(g, "clip.use_gelu", &c->use_gelu, err)))
        return rc;
    const char *arr_keys[2] = {"clip.vision.image_mean", "clip.vision.image_std"};
    float *arr_out[2] = {c->image_mean, c->image_std};
    for (int i = 0; i < 2; i++) {
        uint64_t n;
        if ((rc = gguf_get_arr_len(g, arr_keys[i], GGUF_T_F32, &n, err))) return rc;
        if (n != 3) return err_set(err, ERR_FORMAT, "%s: %s has %llu values, expected 3", path, arr_keys[i],
                                   (unsigned long long)n);
        if ((rc = gguf_get_arr_f32(g, arr_keys[i], arr_out[i], 3, err))) return rc;
    }
    for (int i = 0; i < 3; i++)
        if (!(c->image_std[i] > 0))
            return err_set(err, ERR_RANGE, "%s: clip.vision.image_std[%d] = %g must be positive", path, i,
                           (double)c->image_std[i]);
    if (c->image_size % c->patch_size)
        return err_set(err, ERR_FORMAT, "%s: image_size %d is not a multiple of patch_size %d", path, c->image_size,
                       c->patch_size);
    if (c->d % c->n_head)
        return err_set(err, ERR_FORMAT, "%s: embedding_length %d is not a multiple of head_count %d", path, c->d,
                       c->n_head);
    c->head_dim = c->d / c->n_head;
    c->grid = c->image_size / c->patch_size;
    if ((int64_t)c->grid * c->grid > 1 << 20) return err_set(err, ERR_RANGE, "%s: too many patches", path);
    c->n_patches = c->grid * c->grid;
    c->n_tokens = c->n_patches + 1;

    c->feature_layer = -1;
    c->n_run = c->n_stored;
    if (gguf_find_key(g, "clip.vision.feature_layer") >= 0) {
        uint64_t n;
        if ((rc = gguf_get_arr_len(g, "clip.vision.feature_layer", GGUF_T_I32, &n, err))) return rc;
        if (n == 0 || n > 16)
            return err_set(err, ERR_FORMAT, "%s: clip.vision.feature_layer has %llu entries", path,
                           (unsigned long long)n);
        int32_t fl[16];
        if ((rc = gguf_get_arr_i32(g, "clip.vision.feature_layer", fl, n, err))) return rc;
        int mx = fl[0];
        for (uint64_t i = 0; i < n; i++) {
            if (fl[i] != fl[0])
                return err_set(err, ERR_UNSUPPORTED,
                               "%s: clip.vision.feature_layer lists several layers (feature concatenation)", path);
            if (fl[i] > mx) mx = fl[i];
        }
        if (mx < 1 || mx > c->n_stored)
            return err_set(err, ERR_RANGE, "%s: clip.vision.feature_layer %d outside 1..%d (stored blocks)", path, mx,
                           c->n_stored);
        c->feature_layer = mx;
        c->n_run = mx;
    }
    return ERR_OK;
}

static err_code load_block(vit_t *v, int il, vit_block *b, err_t *err) {
    const vit_config *c = &v->cfg;
    int64_t d = c->d, ff = c->n_ff;
    int64_t ne_dd[2] = {d, d}, ne_d[1] = {d}, ne_f[1] = {ff};
    char name[96];
    err_code rc;
#define REQ_MAT(field, suffix, ne)                                                     \
    snprintf(name, sizeof name, "v.blk.%d.%s", il, suffix);                            \
    if ((rc = gguf_require_tensor(v->g, name, 2, ne, &b->field, err))) return rc;
#define REQ_VEC(field, suffix, ne)                                                     \
    snprintf(name, sizeof name, "v.blk.%d.%s", il, suffix);                            \
    if ((rc = load_vec(v, name, 1, ne, false, &b->field, err))) return rc;
    REQ_MAT(q_w, "attn_q.weight", ne_dd)
    REQ_MAT(k_w, "attn_k.weight", ne_dd)
    REQ_MAT(v_w, "attn_v.weight", ne_dd)
    REQ_MAT(o_w, "attn_out.weight", ne_dd)
    REQ_VEC(q_b, "attn_q.bias", ne_d)
    REQ_VEC(k_b, "attn_k.bias", ne_d)
    REQ_VEC(v_b, "attn_v.bias", ne_d)
    REQ_VEC(o_b, "attn_out.bias", ne_d)
    REQ_VEC(ln1_w, "ln1.weight", ne_d)
    REQ_VEC(ln1_b, "ln1.bias", ne_d)
    REQ_VEC(ln2_w, "ln2.weight", ne_d)
    REQ_VEC(ln2_b, "ln2.bias", ne_d)
#undef REQ_MAT
#undef REQ_VEC
    /* fc1 maps d -> n_ff (ne = {d, ff}), fc2 n_ff -> d: decide by shape. */
    char nu[96], nd[96], nub[96], ndb[96];
    snprintf(nu, sizeof nu, "v.blk.%d.ffn_up.weight", il);
    snprintf(nd, sizeof nd, "v.blk.%d.ffn_down.weight", il);
    snprintf(nub, sizeof nub, "v.blk.%d.ffn_up.bias", il);
    snprintf(ndb, sizeof ndb, "v.blk.%d.ffn_down.bias", il);
    const tensor_t *tu = gguf_find_tensor(v->g, nu), *td = gguf_find_tensor(v->g, nd);
    if (!tu) return err_set(err, ERR_NOTFOUND, "%s: tensor %s not found", gguf_path(v->g), nu);
    if (!td) return err_set(err, ERR_NOTFOUND, "%s: tensor %s not found", gguf_path(v->g), nd);
    bool swapped = ff != d && tu->n_dims == 2 && tu->ne[0] == ff && tu->ne[1] == d;
    const char *fc1 = swapped ? nd : nu, *fc2 = swapped ? nu : nd;
    const char *fc1b = swapped ? ndb : nub, *fc2b = swapped ? nub : ndb;
    int64_t ne_fc1[2] = {d, ff}, ne_fc2[2] = {ff, d};
    if ((rc = gguf_require_tensor(v->g, fc1, 2, ne_fc1, &b->up_w, err))) return rc;
    if ((rc = gguf_require_tensor(v->g, fc2, 2, ne_fc2, &b->down_w, err))) return rc;
    if ((rc = load_vec(v, fc1b, 1, ne_f, false, &b->up_b, err))) return rc;
    if ((rc = load_vec(v, fc2b, 1, ne_d, false, &b->down_b, err))) return rc;
    return ERR_OK;
}

err_code vit_load_gguf(vit_t **out, const gguf_t *g, err_t *err) {
    *out = NULL;
    vit_t *v = calloc(1, sizeof *v);
    if (!v) return err_set(err, ERR_NOMEM, "out of memory");
    v->g = g;
    err_code rc = read_config(g, &v->cfg, err);
    if (rc) goto fail;
    vit_config *c = &v->cfg;
    int64_t d = c->d, ff = c->n_ff, ps = c->patch_size;

    /* budget for dequantized vectors: embeddings + per block 9 d + ff + projector biases */
    const tensor_t *m0 = gguf_find_tensor(g, "mm.0.weight"), *m2 = gguf_find_tensor(g, "mm.2.weight");
    if (!m0) {
        rc = err_set(err, ERR_NOTFOUND, "%s: tensor mm.0.weight not found (no LLaVA projector)", gguf_path(g));
        goto fail;
    }
    if (!m2) {
        rc = err_set(err, ERR_NOTFOUND, "%s: tensor mm.2.weight not found (no LLaVA projector)", gguf_path(g));
        goto fail;
    }
    if (m0->n_dims != 2 || m0->ne[0] != d || m2->n_dims != 2 || m2->ne[0] != m0->ne[1]) {
        rc = err_set(err, ERR_MISMATCH,
                     "%s: projector shapes mm.0.weight [%lld, %lld] / mm.2.weight [%lld, %lld] do not chain from "
                     "width %lld",
                     gguf_path(g), (long long)m0->ne[0], (long long)m0->ne[1], (long long)m2->ne[0],
                     (long long)m2->ne[1], (long long)d);
        goto fail;
    }
    c->d_proj_hidden = (int)m0->ne[1];
    c->d_out = (int)m2->ne[1];
    v->f32_cap = (size_t)(c->n_tokens + 3) * d + (size_t)c->n_run * (9 * d + ff) + (size_t)c->d_proj_hidden +
                 (size_t)c->d_out + (size_t)d;
    v->f32 = malloc(v->f32_cap * sizeof(float));
    v->blocks = calloc((size_t)c->n_run, sizeof(vit_block));
    if (!v->f32 || !v->blocks) {
        rc = err_set(err, ERR_NOMEM, "%s: out of memory", gguf_path(g));
        goto fail;
    }

    const tensor_t *pw;
    int64_t ne_pw[4] = {ps, ps, 3, d};
    if ((rc = gguf_require_tensor(g, "v.patch_embd.weight", 4, ne_pw, &pw, err))) goto fail;
    /* the conv kernel [d][3][p][p] is row-major, i.e. a [d][3 p p] matrix as unfolded by
     * ops_patchify_fwd (channel, y, x) */
    v->patch_w = *pw;
    v->patch_w.n_dims = 2;
    v->patch_w.ne[0] = 3 * ps * ps;
    v->patch_w.ne[1] = d;
    v->patch_w.ne[2] = v->patch_w.ne[3] = 1;
    if (qt_row_size(pw->type, 3 * ps * ps) == 0) {
        rc = err_set(err, ERR_UNSUPPORTED, "%s: v.patch_embd.weight: rows of %lld values do not fit type %d blocks",
                     gguf_path(g), (long long)(3 * ps * ps), pw->type);
        goto fail;
    }
    int64_t ne_d[1] = {d}, ne_pos[2] = {d, c->n_tokens};
    if ((rc = load_vec(v, "v.patch_embd.bias", 1, ne_d, true, &v->patch_b, err))) goto fail;
    if ((rc = load_vec(v, "v.class_embd", 1, ne_d, false, &v->class_embd, err))) goto fail;
    const tensor_t *pe = gguf_find_tensor(g, "v.position_embd.weight");
    if (pe && pe->n_dims == 2 && pe->ne[0] == d && pe->ne[1] != c->n_tokens) {
        rc = err_set(err, ERR_MISMATCH,
                     "%s: v.position_embd.weight has %lld positions but image_size %d / patch_size %d needs %d "
                     "(position interpolation is not supported)",
                     gguf_path(g), (long long)pe->ne[1], c->image_size, c->patch_size, c->n_tokens);
        goto fail;
    }
    if ((rc = load_vec(v, "v.position_embd.weight", 2, ne_pos, false, &v->pos_embd, err))) goto fail;
    if ((rc = load_vec(v, "v.pre_ln.weight", 1, ne_d, false, &v->pre_ln_w, err))) goto fail;
    if ((rc = load_vec(v, "v.pre_ln.bias", 1, ne_d, false, &v->pre_ln_b, err))) goto fail;
    for (int il = 0; il < c->n_run; il++)
        if ((rc = load_block(v, il, &v->blocks[il], err))) goto fail;
    int64_t ne_h[1] = {c->d_proj_hidden}, ne_o[1] = {c->d_out};
    v->mm0_w = m0;
    v->mm2_w = m2;
    if ((rc = load_vec(v, "mm.0.bias", 1, ne_h, false, &v->mm0_b, err))) goto fail;
    if ((rc = load_vec(v, "mm.2.bias", 1, ne_o, false, &v->mm2_b, err))) goto fail;
    *out = v;
    return ERR_OK;
fail:
    vit_free(v);
    return rc;
}

err_code vit_load(vit_t **out, const char *path, err_t *err) {
    *out = NULL;
    gguf_t *g;
    err_code rc = gguf_open(&g, path, err);
    if (rc) return rc;
    vit_t *v;
    if ((rc = vit_load_gguf(&v, g, err))) {
        gguf_close(g);
        return rc;
    }
    v->owned = g;
    *out = v;
    return ERR_OK;
}

/* --- activations --- */

err_code vit_state_create(vit_state_t *st, const vit_t *v, err_t *err) {
    memset(st, 0, sizeof *st);
    const vit_config *c = &v->cfg;
    size_t N = (size_t)c->n_tokens, P = (size_t)c->n_patches, d = (size_t)c->d, ff = (size_t)c->n_ff;
    size_t k = 3 * (size_t)c->patch_size * (size_t)c->patch_size;
    size_t S = (size_t)c->image_size;
    size_t sizes[] = {3 * S * S, P * k, N * d, N * d, N * d, N * d, N * d, (size_t)c->n_head * N * N, N * d, N * d,
                      N * ff, N * ff, P * (size_t)c->d_proj_hidden, P * (size_t)c->d_out};
    enum { NBUF = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < NBUF; i++) total += arena_round(sizes[i] * sizeof(float));
    err_code rc = arena_create(&st->arena, total, err);
    if (rc) return rc;
    float **bufs[NBUF] = {&st->pixels, &st->patches, &st->x, &st->h, &st->q, &st->k, &st->v, &st->att, &st->a, &st->o,
                          &st->ff, &st->ff_act, &st->mm_hidden, &st->tokens};
    for (int i = 0; i < NBUF; i++) {
        *bufs[i] = arena_floats(&st->arena, sizes[i], err);
        if (!*bufs[i]) {
            arena_free(&st->arena);
            return err_set(err, ERR_NOMEM, "vision activations: arena of %zu bytes too small", total);
        }
    }
    st->n_tokens = (int64_t)N;
    return ERR_OK;
}

void vit_state_free(vit_state_t *st) {
    if (!st) return;
    arena_free(&st->arena);
    memset(st, 0, sizeof *st);
}

/* Calls the hooks registered for "fmt % layer" (layer < 0: fmt is the name). With no
 * hooks this is one branch. */
static err_code emit(const hook_set_t *hs, const char *fmt, int layer, float *data, int nd, int64_t s0, int64_t s1,
                     int64_t s2, err_t *err) {
    if (!hs || hs->n == 0) return ERR_OK;
    char name[HOOK_NAME_MAX];
    if (layer >= 0) {
        if (!hook_wantf(hs, name, fmt, layer)) return ERR_OK;
    } else {
        snprintf(name, sizeof name, "%s", fmt);
        if (!hook_want(hs, name)) return ERR_OK;
    }
    int64_t shape[3] = {s0, s1, s2};
    return hook_emit(hs, name, data, nd, shape, 0, err);
}

/* The pattern hook point. Without a hook on it this is one branch; with one, the
 * pattern is hashed before and after the callbacks and, when they changed it, the
 * heads' outputs are recomputed from it (capturing alone costs two hashes). */
static err_code emit_pattern(const hook_set_t *hs, int il, vit_state_t *st, int64_t H, int64_t N, int hd, pool_t *pool,
                             err_t *err) {
    if (!hs || hs->n == 0) return ERR_OK;
    char name[HOOK_NAME_MAX];
    if (!hook_wantf(hs, name, "v.blk.%d.attn.pattern", il)) return ERR_OK;
    const int64_t n = H * N * N, shape[3] = {H, N, N};
    const uint64_t before = hook_bits_hash(st->att, n);
    err_code rc = hook_emit(hs, name, st->att, 3, shape, 0, err);
    if (rc) return rc;
    /* ops_attention_fwd has already multiplied the pattern it computed: an edit reaches
     * the block's output only through this product */
    if (hook_bits_hash(st->att, n) != before) ops_attention_apply(st->a, st->att, st->v, N, N, (int)H, (int)H, hd, pool);
    return ERR_OK;
}

static void add_inplace(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

/* Element-wise activations over N x n_ff values are ~5% of a ViT-L forward when run
 * serially (one expf/erff each), so they are split over the matmul pool. Chunks are
 * independent, so the result does not depend on the thread count. */
typedef struct {
    float *out;
    const float *in;
    int64_t n;
    int kind; /* 0 quick_gelu, 1 gelu */
} act_job;

static void act_worker(void *arg, int ith, int nth) {
    const act_job *j = arg;
    long lo, hi;
    pool_split((long)j->n, ith, nth, &lo, &hi);
    if (hi <= lo) return;
    if (j->kind) ops_gelu_fwd(j->out + lo, j->in + lo, hi - lo);
    else ops_quick_gelu_fwd(j->out + lo, j->in + lo, hi - lo);
}

static void act_parallel(pool_t *pool, int kind, float *out, const float *in, int64_t n) {
    act_job j = {out, in, n, kind};
    pool_run(pool, act_worker, &j);
}

/* LayerNorm rows split over the pool (each row is independent). */
typedef struct {
    float *out;
    const float *in, *w, *b;
    int64_t N, C;
    float eps;
} ln_job;

static void ln_worker(void *arg, int ith, int nth) {
    const ln_job *j = arg;
    long lo, hi;
    pool_split((long)j->N, ith, nth, &lo, &hi);
    if (hi > lo) ops_layernorm_fwd(j->out + lo * j->C, NULL, NULL, j->in + lo * j->C, j->w, j->b, hi - lo, j->C, j->eps);
}

static void ln_parallel(pool_t *pool, float *out, const float *in, const float *w, const float *b, int64_t N,
                        int64_t C, float eps) {
    ln_job j = {out, in, w, b, N, C, eps};
    pool_run(pool, ln_worker, &j);
}

err_code vit_forward(const vit_t *v, vit_state_t *st, mm_ctx_t *mm, const float *pixels, const hook_set_t *hooks,
                     float *out, err_t *err) {
    const vit_config *c = &v->cfg;
    const int64_t N = c->n_tokens, P = c->n_patches, d = c->d, ff = c->n_ff, H = c->n_head;
    const int ps = c->patch_size, S = c->image_size;
    const int64_t k = 3LL * ps * ps;
    pool_t *pool = mm ? mm_ctx_pool(mm) : NULL;
    err_code rc;

    /* patch embedding: a conv with stride = kernel = p is a GEMM over unfolded patches;
     * rows 1..P of x receive the patches, row 0 the class embedding (HF order). */
    ops_patchify_fwd(st->patches, pixels, S, S, ps);
    if ((rc = mm_linear(mm, st->x + d, st->patches, P, k, &v->patch_w, v->patch_b, err))) return rc;
    memcpy(st->x, v->class_embd, (size_t)d * sizeof(float));
    add_inplace(st->x, v->pos_embd, N * d);
    if ((rc = emit(hooks, "v.embed", -1, st->x, 2, N, d, 1, err))) return rc;
    ln_parallel(pool, st->h, st->x, v->pre_ln_w, v->pre_ln_b, N, d, c->eps);
    memcpy(st->x, st->h, (size_t)(N * d) * sizeof(float));
    if ((rc = emit(hooks, "v.pre_ln", -1, st->x, 2, N, d, 1, err))) return rc;

    for (int il = 0; il < c->n_run; il++) {
        const vit_block *b = &v->blocks[il];
        ln_parallel(pool, st->h, st->x, b->ln1_w, b->ln1_b, N, d, c->eps);
        if ((rc = emit(hooks, "v.blk.%d.ln1", il, st->h, 2, N, d, 1, err))) return rc;
        if ((rc = mm_linear(mm, st->q, st->h, N, d, b->q_w, b->q_b, err))) return rc;
        if ((rc = mm_linear(mm, st->k, st->h, N, d, b->k_w, b->k_b, err))) return rc;
        if ((rc = mm_linear(mm, st->v, st->h, N, d, b->v_w, b->v_b, err))) return rc;
        if ((rc = emit(hooks, "v.blk.%d.attn.q", il, st->q, 2, N, d, 1, err))) return rc;
        if ((rc = emit(hooks, "v.blk.%d.attn.k", il, st->k, 2, N, d, 1, err))) return rc;
        if ((rc = emit(hooks, "v.blk.%d.attn.v", il, st->v, 2, N, d, 1, err))) return rc;
        ops_attention_fwd(st->a, st->att, st->q, st->k, st->v, N, N, (int)H, (int)H, c->head_dim, 0, false, NULL,
                          pool);
        if ((rc = emit_pattern(hooks, il, st, H, N, c->head_dim, pool, err))) return rc;
        if ((rc = mm_linear(mm, st->o, st->a, N, d, b->o_w, b->o_b, err))) return rc;
        if ((rc = emit(hooks, "v.blk.%d.attn_out", il, st->o, 2, N, d, 1, err))) return rc;
        add_inplace(st->x, st->o, N * d);
        if ((rc = emit(hooks, "v.blk.%d.resid_mid", il, st->x, 2, N, d, 1, err))) return rc;

        ln_parallel(pool, st->h, st->x, b->ln2_w, b->ln2_b, N, d, c->eps);
        if ((rc = emit(hooks, "v.blk.%d.ln2", il, st->h, 2, N, d, 1, err))) return rc;
        if ((rc = mm_linear(mm, st->ff, st->h, N, d, b->up_w, b->up_b, err))) return rc;
        act_parallel(pool, c->use_gelu ? 1 : 0, st->ff_act, st->ff, N * ff);
        if ((rc = emit(hooks, "v.blk.%d.mlp.hidden", il, st->ff_act, 2, N, ff, 1, err))) return rc;
        if ((rc = mm_linear(mm, st->o, st->ff_act, N, ff, b->down_w, b->down_b, err))) return rc;
        add_inplace(st->x, st->o, N * d);
        if ((rc = emit(hooks, "v.blk.%d.resid_post", il, st->x, 2, N, d, 1, err))) return rc;
    }

    /* LLaVA: features of the selected layer without CLS, then Linear-GELU-Linear. */
    const float *feat = st->x + d;
    if ((rc = mm_linear(mm, st->mm_hidden, feat, P, d, v->mm0_w, v->mm0_b, err))) return rc;
    act_parallel(pool, 1, st->mm_hidden, st->mm_hidden, P * c->d_proj_hidden);
    if ((rc = emit(hooks, "mm.hidden", -1, st->mm_hidden, 2, P, c->d_proj_hidden, 1, err))) return rc;
    if ((rc = mm_linear(mm, st->tokens, st->mm_hidden, P, c->d_proj_hidden, v->mm2_w, v->mm2_b, err))) return rc;
    if ((rc = emit(hooks, "mm.out", -1, st->tokens, 2, P, c->d_out, 1, err))) return rc;
    if (out) memcpy(out, st->tokens, (size_t)P * c->d_out * sizeof(float));
    return ERR_OK;
}

err_code vit_encode(const vit_t *v, vit_state_t *st, mm_ctx_t *mm, const img_t *image, pp_pipeline pipeline,
                    const hook_set_t *hooks, pp_geom *geom, err_t *err) {
    const vit_config *c = &v->cfg;
    pp_geom g;
    err_code rc = pp_run(image, pipeline, c->image_size, c->patch_size, c->image_mean, c->image_std, st->pixels, &g,
                         err);
    if (rc) return rc;
    if (geom) *geom = g;
    return vit_forward(v, st, mm, st->pixels, hooks, NULL, err);
}
