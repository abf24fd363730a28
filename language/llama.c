/* llama.c — LLaMA decoder: load from GGUF, prefill/decode with hooks, snapshots. */
#include "llama.h"
#include "llama_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>


#include "../core/arena.h"
#include "../core/ops.h"
#include "../core/quant.h"

/* ---------------------------------------------------------------- loading */

static err_code get_u32_opt(const gguf_t *g, const char *key, uint32_t def, uint32_t *out, err_t *err) {
    if (gguf_find_key(g, key) < 0) {
        *out = def;
        return ERR_OK;
    }
    return gguf_get_u32(g, key, out, err);
}

static err_code read_config(const gguf_t *g, lm_config_t *c, err_t *err) {
    const char *path = gguf_path(g);
    char arch[64];
    err_code rc = gguf_get_str(g, "general.architecture", arch, sizeof arch, err);
    if (rc) return err_prefix(err, "%s", path);
    if (strcmp(arch, "llama") != 0)
        return err_set(err, ERR_UNSUPPORTED, "%s: general.architecture is '%s', expected 'llama' (a language model file)",
                       path, arch);
    uint32_t dim, n_layer, n_head, n_kv, hidden, n_ctx, n_rot;
    if ((rc = gguf_get_u32(g, "llama.embedding_length", &dim, err)) ||
        (rc = gguf_get_u32(g, "llama.block_count", &n_layer, err)) ||
        (rc = gguf_get_u32(g, "llama.attention.head_count", &n_head, err)) ||
        (rc = gguf_get_u32(g, "llama.feed_forward_length", &hidden, err)) ||
        (rc = get_u32_opt(g, "llama.context_length", 2048, &n_ctx, err)) ||
        (rc = get_u32_opt(g, "llama.attention.head_count_kv", n_head, &n_kv, err)))
        return err_prefix(err, "%s", path);
    if (dim == 0 || n_layer == 0 || n_head == 0 || n_kv == 0 || hidden == 0 || n_ctx == 0 || dim > (1u << 20) ||
        n_layer > 4096 || hidden > (1u << 22))
        return err_set(err, ERR_FORMAT, "%s: implausible llama sizes (dim %u, layers %u, heads %u/%u, ffn %u, ctx %u)",
                       path, dim, n_layer, n_head, n_kv, hidden, n_ctx);
    if (dim % n_head != 0 || n_head % n_kv != 0)
        return err_set(err, ERR_FORMAT, "%s: embedding_length %u, head_count %u, head_count_kv %u do not divide", path,
                       dim, n_head, n_kv);
    uint32_t hd = dim / n_head;
    if ((rc = get_u32_opt(g, "llama.rope.dimension_count", hd, &n_rot, err))) return err_prefix(err, "%s", path);
    if (n_rot > hd || n_rot % 2 != 0)
        return err_set(err, ERR_FORMAT, "%s: rope.dimension_count %u must be even and <= head size %u", path, n_rot,
                       hd);
    uint32_t key_len;
    if ((rc = get_u32_opt(g, "llama.attention.key_length", hd, &key_len, err))) return err_prefix(err, "%s", path);
    if (key_len != hd)
        return err_set(err, ERR_UNSUPPORTED, "%s: attention.key_length %u differs from embedding/heads %u", path,
                       key_len, hd);
    float eps = 1e-5f, base = 10000.0f;
    if (gguf_find_key(g, "llama.attention.layer_norm_rms_epsilon") >= 0 &&
        (rc = gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, err)))
        return err_prefix(err, "%s", path);
    if (gguf_find_key(g, "llama.rope.freq_base") >= 0 && (rc = gguf_get_f32(g, "llama.rope.freq_base", &base, err)))
        return err_prefix(err, "%s", path);
    if (!(eps > 0.0f && eps < 1.0f) || !(base > 1.0f))
        return err_set(err, ERR_FORMAT, "%s: bad rms epsilon %g or rope freq_base %g", path, (double)eps, (double)base);
    /* Variants that would silently compute something else are refused: RoPE scaling
     * (linear/yarn: LLaVA-1.5 uses none) and mixture-of-experts blocks. */
    if (gguf_find_key(g, "llama.rope.scaling.type") >= 0) {
        char st[32];
        if ((rc = gguf_get_str(g, "llama.rope.scaling.type", st, sizeof st, err))) return err_prefix(err, "%s", path);
        if (strcmp(st, "none") != 0)
            return err_set(err, ERR_UNSUPPORTED, "%s: rope scaling '%s' is not supported", path, st);
    }
    float lin = 1.0f;
    if (gguf_find_key(g, "llama.rope.scale_linear") >= 0 &&
        (rc = gguf_get_f32(g, "llama.rope.scale_linear", &lin, err)))
        return err_prefix(err, "%s", path);
    if (lin != 1.0f) return err_set(err, ERR_UNSUPPORTED, "%s: rope.scale_linear %g is not supported", path, (double)lin);
    uint32_t n_expert = 0;
    if ((rc = get_u32_opt(g, "llama.expert_count", 0, &n_expert, err))) return err_prefix(err, "%s", path);
    if (n_expert > 0)
        return err_set(err, ERR_UNSUPPORTED, "%s: mixture-of-experts models (%u experts) are not supported", path,
                       n_expert);
    c->dim = (int)dim;
    c->n_layer = (int)n_layer;
    c->n_head = (int)n_head;
    c->n_kv_head = (int)n_kv;
    c->head_dim = (int)hd;
    c->hidden_dim = (int)hidden;
    c->n_rot = (int)n_rot;
    c->n_ctx_train = (int)n_ctx;
    c->norm_eps = eps;
    c->rope_base = base;
    return ERR_OK;
}

static err_code need(const gguf_t *g, const char *name, int64_t ne0, int64_t ne1, const tensor_t **out, err_t *err) {
    int64_t ne[2] = {ne0, ne1};
    return gguf_require_tensor(g, name, ne1 > 0 ? 2 : 1, ne, out, err);
}

static err_code need_l(const gguf_t *g, int l, const char *suffix, int64_t ne0, int64_t ne1, const tensor_t **out,
                       err_t *err) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", l, suffix);
    return need(g, name, ne0, ne1, out, err);
}

static void to_f32(const tensor_t *t, float *dst) {
    qt_get(t->type)->to_float(t->data, dst, tensor_nelements(t));
}

/* The slots of the weights mm_pack takes, with their copies' 64-byte-rounded sizes. */
typedef struct {
    const tensor_t ***slot;
    size_t *bytes;
    int n;
    size_t total;
} pack_list;

static void pack_take(pack_list *p, const tensor_t **slot) {
    const size_t b = (mm_pack_size(*slot) + 63) / 64 * 64;
    if (!b) return;
    p->slot[p->n] = slot;
    p->bytes[p->n++] = b;
    p->total += b;
}

/* One anonymous mapping for all the copies; each weight's file pages are dropped
 * right after its copy, so the peak resident size is the weights plus one matrix. */
err_code lm_model_repack(lm_model_t *m, pool_t *pool, err_t *err) {
    if (m->pack_map) return ERR_OK;
    const gguf_t *g = m->gguf;
    const size_t cap = 7 * (size_t)m->cfg.n_layer + 1; /* the matrices mm_linear multiplies with */
    pack_list p = {malloc(sizeof *p.slot * cap), malloc(sizeof *p.bytes * cap), 0, 0};
    err_code rc = ERR_OK;
    if (!p.slot || !p.bytes) {
        rc = err_set(err, ERR_NOMEM, "out of memory for the language model");
        goto done;
    }
    for (int l = 0; l < m->cfg.n_layer; l++) {
        lm_layer_t *L = &m->w.layers[l];
        const tensor_t **mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++) pack_take(&p, mats[i]);
    }
    /* a tied head is the embedding table too: its rows are looked up through
     * mm_dequant_rows, which reads the packed form */
    pack_take(&p, m->w.tied ? &m->w.token_embd : &m->w.output);
    if (p.n == 0) goto done;
    void *map = mmap(NULL, p.total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m->packed = calloc((size_t)p.n, sizeof(tensor_t));
    if (map == MAP_FAILED || !m->packed) {
        if (map != MAP_FAILED) munmap(map, p.total);
        free(m->packed);
        m->packed = NULL;
        rc = err_set(err, ERR_NOMEM, "%s: cannot allocate %zu bytes for the repacked weights", gguf_path(g), p.total);
        goto done;
    }
    m->pack_map = map;
    m->pack_len = p.total;
    size_t off = 0;
    for (int i = 0; i < p.n; i++) {
        const tensor_t *W = *p.slot[i];
        mm_pack(&m->packed[i], W, (unsigned char *)map + off, pool);
        gguf_drop_pages(g, W->data, W->nbytes);
        *p.slot[i] = &m->packed[i];
        off += p.bytes[i];
    }
    if (m->w.tied) m->w.output = m->w.token_embd;
done:
    free(p.slot);
    free(p.bytes);
    return rc;
}

err_code lm_model_from_gguf(lm_model_t **out, gguf_t *g, err_t *err) {
    *out = NULL;
    lm_model_t *m = calloc(1, sizeof *m);
    if (!m) return err_set(err, ERR_NOMEM, "out of memory for the language model");
    m->gguf = g;
    err_code rc = read_config(g, &m->cfg, err);
    if (rc) goto fail;
    lm_config_t *c = &m->cfg;
    const tensor_t *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb) {
        rc = err_set(err, ERR_NOTFOUND, "%s: tensor token_embd.weight is missing", gguf_path(g));
        goto fail;
    }
    if (emb->n_dims != 2 || emb->ne[0] != c->dim || emb->ne[1] < 1 || emb->ne[1] > (1 << 24)) {
        rc = err_set(err, ERR_MISMATCH, "%s: tensor token_embd.weight has shape [%lld, %lld], expected [%d, n_vocab]",
                     gguf_path(g), (long long)emb->ne[0], (long long)emb->ne[1], c->dim);
        goto fail;
    }
    c->n_vocab = (int)emb->ne[1];
    m->w.token_embd = emb;
    m->w.layers = calloc((size_t)c->n_layer, sizeof(lm_layer_t));
    m->norm_buf = malloc(sizeof(float) * (size_t)c->dim * (2 * (size_t)c->n_layer + 1));
    if (!m->w.layers || !m->norm_buf) {
        rc = err_set(err, ERR_NOMEM, "out of memory for the language model");
        goto fail;
    }
    const int64_t D = c->dim, H = c->hidden_dim, QD = (int64_t)c->n_head * c->head_dim,
                  KD = (int64_t)c->n_kv_head * c->head_dim;
    if ((rc = need(g, "output_norm.weight", D, 0, &m->w.output_norm, err))) goto fail;
    if (gguf_find_tensor(g, "output.weight")) {
        if ((rc = need(g, "output.weight", D, c->n_vocab, &m->w.output, err))) goto fail;
    } else {
        m->w.output = emb;
        m->w.tied = true;
    }
    m->w.output_norm_f32 = m->norm_buf;
    to_f32(m->w.output_norm, m->w.output_norm_f32);
    for (int l = 0; l < c->n_layer; l++) {
        lm_layer_t *L = &m->w.layers[l];
        if ((rc = need_l(g, l, "attn_norm.weight", D, 0, &L->attn_norm, err)) ||
            (rc = need_l(g, l, "attn_q.weight", D, QD, &L->wq, err)) ||
            (rc = need_l(g, l, "attn_k.weight", D, KD, &L->wk, err)) ||
            (rc = need_l(g, l, "attn_v.weight", D, KD, &L->wv, err)) ||
            (rc = need_l(g, l, "attn_output.weight", QD, D, &L->wo, err)) ||
            (rc = need_l(g, l, "ffn_norm.weight", D, 0, &L->ffn_norm, err)) ||
            (rc = need_l(g, l, "ffn_gate.weight", D, H, &L->w_gate, err)) ||
            (rc = need_l(g, l, "ffn_up.weight", D, H, &L->w_up, err)) ||
            (rc = need_l(g, l, "ffn_down.weight", H, D, &L->w_down, err)))
            goto fail;
        L->attn_norm_f32 = m->norm_buf + D * (1 + 2 * (int64_t)l);
        L->ffn_norm_f32 = L->attn_norm_f32 + D;
        to_f32(L->attn_norm, L->attn_norm_f32);
        to_f32(L->ffn_norm, L->ffn_norm_f32);
    }
    *out = m;
    return ERR_OK;
fail:
    m->gguf = NULL; /* the caller still owns g */
    lm_model_free(m);
    return rc;
}

err_code lm_model_load(lm_model_t **out, const char *path, err_t *err) {
    *out = NULL;
    gguf_t *g = NULL;
    err_code rc = gguf_open(&g, path, err);
    if (rc) return rc;
    if ((rc = lm_model_from_gguf(out, g, err))) {
        gguf_close(g);
        return rc;
    }
    (*out)->owns_gguf = true;
    return ERR_OK;
}

void lm_model_free(lm_model_t *m) {
    if (!m) return;
    if (m->owns_gguf) gguf_close(m->gguf);
    free(m->w.layers);
    free(m->norm_buf);
    free(m->packed);
    if (m->pack_map) munmap(m->pack_map, m->pack_len);
    free(m);
}

void lm_layer_tensors(const lm_layer_t *L, const tensor_t *out[LM_LAYER_TENSORS]) {
    const tensor_t *t[LM_LAYER_TENSORS] = {L->attn_norm, L->wq,     L->wk,   L->wv,    L->wo,
                                           L->ffn_norm,  L->w_gate, L->w_up, L->w_down};
    memcpy(out, t, sizeof t);
}

uint64_t lm_model_weight_bytes(const lm_model_t *m) {
    uint64_t b = m->w.token_embd->nbytes + m->w.output_norm->nbytes + (m->w.tied ? 0 : m->w.output->nbytes);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const tensor_t *t[LM_LAYER_TENSORS];
        lm_layer_tensors(&m->w.layers[l], t);
        for (int i = 0; i < LM_LAYER_TENSORS; i++) b += t[i]->nbytes;
    }
    return b;
}

/* -------------------------------------------------------------- snapshots */

err_code lm_snapshot_create(lm_snapshot_t *s, const lm_model_t *m, int64_t cap, err_t *err) {
    memset(s, 0, sizeof *s);
    const lm_config_t *c = &m->cfg;
    if (cap <= 0) return err_set(err, ERR_ARG, "snapshot: capacity %lld must be positive", (long long)cap);
    s->resid = malloc(sizeof(float) * (size_t)(c->n_layer + 1) * (size_t)cap * (size_t)c->dim);
    if (!s->resid) return err_set(err, ERR_NOMEM, "snapshot: cannot allocate residuals for %lld positions", (long long)cap);
    err_code rc = kv_create(&s->kv, c->n_layer, cap, c->n_kv_head * c->head_dim, err);
    if (rc) {
        free(s->resid);
        s->resid = NULL;
        return rc;
    }
    s->n_layer = c->n_layer;
    s->dim = c->dim;
    s->cap = cap;
    return ERR_OK;
}

void lm_snapshot_free(lm_snapshot_t *s) {
    free(s->resid);
    s->resid = NULL;
    kv_free(&s->kv);
}

/* ------------------------------------------------------------------ state */

err_code lm_state_create(lm_state_t **out, const lm_model_t *m, mm_ctx_t *mm, int64_t n_ctx, int64_t n_batch,
                         err_t *err) {
    *out = NULL;
    const lm_config_t *c = &m->cfg;
    if (n_ctx <= 0) n_ctx = c->n_ctx_train;
    if (n_batch <= 0) n_batch = n_ctx < 512 ? n_ctx : 512;
    if (n_batch > n_ctx) n_batch = n_ctx;
    lm_state_t *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, ERR_NOMEM, "out of memory for the language model state");
    s->m = m;
    s->mm = mm;
    s->n_ctx = n_ctx;
    s->n_batch = n_batch;
    const size_t B = (size_t)n_batch, D = (size_t)c->dim, QD = (size_t)c->n_head * (size_t)c->head_dim,
                 H = (size_t)c->hidden_dim, V = (size_t)c->n_vocab, N = (size_t)n_ctx;
    size_t sizes[] = {B * D, B * D, B * QD, B * QD, B * H, B * H, (size_t)c->n_head * B * N, B * N, V};
    float **ptrs[] = {&s->x, &s->xb, &s->q, &s->z, &s->hb, &s->hb2, &s->att, &s->bias, &s->logits};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += arena_round(sizes[i] * sizeof(float));
    arena_t a;
    err_code rc = arena_create(&a, total, err);
    if (rc) {
        free(s);
        return err_prefix(err, "language model activations (%lld positions, batch %lld)", (long long)n_ctx,
                          (long long)n_batch);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) *ptrs[i] = arena_floats(&a, sizes[i], NULL);
    s->ab = s->xb;
    s->arena_base = a.base;
    s->arena_bytes = a.cap;
    if ((rc = kv_create(&s->kv, c->n_layer, n_ctx, c->n_kv_head * c->head_dim, err))) {
        free(s->arena_base);
        free(s);
        return rc;
    }
    *out = s;
    return ERR_OK;
}

void lm_state_free(lm_state_t *s) {
    if (!s) return;
    kv_free(&s->kv);
    free(s->arena_base);
    free(s);
}

void lm_state_set_pos(lm_state_t *s, int64_t n_pos) {
    if (n_pos >= 0 && n_pos <= s->kv.n_pos) s->kv.n_pos = n_pos;
}

uint64_t lm_state_bytes(const lm_state_t *s) {
    return s->arena_bytes + kv_bytes(s->kv.n_layer, s->kv.n_ctx, s->kv.kv_dim);
}

/* ---------------------------------------------------------------- forward */

static err_code emit(const lm_run_opts *o, const char *fmt, int layer, float *data, int nd, int64_t a, int64_t b,
                     int64_t c, int64_t pos0, err_t *err) {
    char name[HOOK_NAME_MAX];
    if (!o || !hook_wantf(o->hooks, name, fmt, layer)) return ERR_OK;
    int64_t shape[3] = {a, b, c};
    return hook_emit(o->hooks, name, data, nd, shape, pos0, err);
}

static bool want(const lm_run_opts *o, const char *fmt, int layer) {
    char name[HOOK_NAME_MAX];
    return o && hook_wantf(o->hooks, name, fmt, layer);
}

static void add_rows(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

err_code lm_layer_attn_in(const lm_model_t *m, mm_ctx_t *mm, int l, const float *x, float *xb, float *q, float *k,
                          float *v, int64_t n, const lm_run_opts *o, int64_t pos0, err_t *err) {
    const lm_config_t *c = &m->cfg;
    const lm_layer_t *L = &m->w.layers[l];
    ops_rmsnorm_fwd(xb, NULL, x, L->attn_norm_f32, n, c->dim, c->norm_eps);
    err_code rc = emit(o, "blk.%d.attn_norm", l, xb, 2, n, c->dim, 0, pos0, err);
    if (rc) return rc;
    /* one call: a decoded token's input is quantized once and Q, K, V share one pool
     * dispatch (prefill: three plain mm_linear) */
    const mm_out_t qkv[3] = {{q, L->wq, NULL}, {k, L->wk, NULL}, {v, L->wv, NULL}};
    return mm_linear_multi(mm, xb, n, c->dim, qkv, 3, err);
}

err_code lm_layer_attn_out_mlp(const lm_model_t *m, mm_ctx_t *mm, int l, float *x, float *xb, const float *z,
                               float *hb, float *hb2, int64_t n, const lm_run_opts *o, int64_t pos0, err_t *err) {
    const lm_config_t *c = &m->cfg;
    const lm_layer_t *L = &m->w.layers[l];
    const int64_t D = c->dim, H = c->hidden_dim;
    err_code rc;
    if ((rc = mm_linear(mm, xb, z, n, (int64_t)c->n_head * c->head_dim, L->wo, NULL, err))) return rc;
    if ((rc = emit(o, "blk.%d.attn_out", l, xb, 2, n, D, 0, pos0, err))) return rc;
    add_rows(x, xb, n * D);
    if ((rc = emit(o, "blk.%d.resid_mid", l, x, 2, n, D, 0, pos0, err))) return rc;
    ops_rmsnorm_fwd(xb, NULL, x, L->ffn_norm_f32, n, D, c->norm_eps);
    if ((rc = emit(o, "blk.%d.ffn_norm", l, xb, 2, n, D, 0, pos0, err))) return rc;
    const mm_out_t gate_up[2] = {{hb, L->w_gate, NULL}, {hb2, L->w_up, NULL}};
    if ((rc = mm_linear_multi(mm, xb, n, D, gate_up, 2, err))) return rc;
    ops_swiglu_fwd(hb, hb, hb2, n * H);
    if ((rc = emit(o, "blk.%d.mlp.hidden", l, hb, 2, n, H, 0, pos0, err))) return rc;
    if ((rc = mm_linear(mm, xb, hb, n, H, L->w_down, NULL, err))) return rc;
    if ((rc = emit(o, "blk.%d.mlp_out", l, xb, 2, n, D, 0, pos0, err))) return rc;
    add_rows(x, xb, n * D);
    return emit(o, "blk.%d.resid_post", l, x, 2, n, D, 0, pos0, err);
}

/* Final norm + unembedding of rows x [n][dim]; hooks see final_norm and logits. */
static err_code head(const lm_state_t *s, float *logits, float *xn, const float *x, int64_t n, int64_t pos0,
                     const lm_run_opts *o, err_t *err) {
    const lm_config_t *c = &s->m->cfg;
    ops_rmsnorm_fwd(xn, NULL, x, s->m->w.output_norm_f32, n, c->dim, c->norm_eps);
    err_code rc;
    if (o && hook_want(o->hooks, "final_norm")) {
        int64_t sh[2] = {n, c->dim};
        if ((rc = hook_emit(o->hooks, "final_norm", xn, 2, sh, pos0, err))) return rc;
    }
    if ((rc = mm_linear(s->mm, logits, xn, n, c->dim, s->m->w.output, NULL, err))) return rc;
    if (o && hook_want(o->hooks, "logits")) {
        int64_t sh[2] = {n, c->n_vocab};
        if ((rc = hook_emit(o->hooks, "logits", logits, 2, sh, pos0, err))) return rc;
    }
    return ERR_OK;
}

err_code lm_unembed(const lm_state_t *s, float *logits, float *xn, const float *x, int64_t n, err_t *err) {
    return head(s, logits, xn, x, n, 0, NULL, err);
}

/* Runs layers [layer0, n_layer) on s->x (n rows at positions pos0..), then the head.
 * The KV cache rows [pos0, pos0+n) of those layers are (re)written; kv.n_pos must
 * equal pos0. logits_out: all rows' logits, or NULL (last row into s->logits when
 * want_last). */
static err_code run_layers(lm_state_t *s, int64_t pos0, int64_t n, int layer0, const lm_run_opts *o,
                           float *logits_out, bool want_last, err_t *err) {
    const lm_model_t *m = s->m;
    const lm_config_t *c = &m->cfg;
    const int64_t D = c->dim, hd = c->head_dim, Nk = pos0 + n;
    pool_t *pool = mm_ctx_pool(s->mm);
    lm_snapshot_t *rec = o ? o->record : NULL;
    err_code rc;
    float *x = s->x, *xb = s->xb;
    for (int l = layer0; l < c->n_layer; l++) {
        if (rec) memcpy(lm_snapshot_resid(rec, l, pos0), x, sizeof(float) * (size_t)(n * D));
        float *k = kv_k(&s->kv, l, pos0), *v = kv_v(&s->kv, l, pos0);
        if ((rc = lm_layer_attn_in(m, s->mm, l, x, xb, s->q, k, v, n, o, pos0, err))) return rc;
        ops_rope_fwd(s->q, n, c->n_head, (int)hd, c->n_rot, pos0, c->rope_base);
        ops_rope_fwd(k, n, c->n_kv_head, (int)hd, c->n_rot, pos0, c->rope_base);
        if ((rc = emit(o, "blk.%d.attn.q", l, s->q, 3, n, c->n_head, hd, pos0, err)) ||
            (rc = emit(o, "blk.%d.attn.k", l, k, 3, n, c->n_kv_head, hd, pos0, err)) ||
            (rc = emit(o, "blk.%d.attn.v", l, v, 3, n, c->n_kv_head, hd, pos0, err)))
            return rc;
        const float *bias = NULL;
        if (o && o->bias_fn) {
            memset(s->bias, 0, sizeof(float) * (size_t)(n * Nk));
            int r = o->bias_fn(o->bias_user, l, pos0, n, Nk, s->bias);
            if (r < 0) return err_set(err, ERR_CALLBACK, "attention bias callback stopped the forward at layer %d", l);
            if (r > 0) bias = s->bias;
        }
        ops_attention_fwd(s->z, s->att, s->q, kv_k(&s->kv, l, 0), kv_v(&s->kv, l, 0), n, Nk, c->n_head,
                          c->n_kv_head, (int)hd, pos0, true, bias, pool);
        if (want(o, "blk.%d.attn.pattern", l)) {
            const int64_t na = (int64_t)c->n_head * n * Nk;
            const uint64_t before = hook_bits_hash(s->att, na);
            if ((rc = emit(o, "blk.%d.attn.pattern", l, s->att, 3, c->n_head, n, Nk, pos0, err))) return rc;
            if (hook_bits_hash(s->att, na) != before)
                ops_attention_apply(s->z, s->att, kv_v(&s->kv, l, 0), n, Nk, c->n_head, c->n_kv_head, (int)hd, pool);
        }
        if ((rc = emit(o, "blk.%d.attn.z", l, s->z, 3, n, c->n_head, hd, pos0, err))) return rc;
        if ((rc = lm_layer_attn_out_mlp(m, s->mm, l, x, xb, s->z, s->hb, s->hb2, n, o, pos0, err))) return rc;
    }
    if (rec) {
        memcpy(lm_snapshot_resid(rec, c->n_layer, pos0), x, sizeof(float) * (size_t)(n * D));
        kv_copy(&rec->kv, &s->kv, 0, c->n_layer, pos0, pos0 + n);
        rec->n_pos = pos0 + n;
    }
    s->kv.n_pos = pos0 + n;
    if (logits_out) return head(s, logits_out, xb, x, n, pos0, o, err);
    if (want_last) return head(s, s->logits, xb, x + (n - 1) * D, 1, pos0 + n - 1, o, err);
    return ERR_OK;
}

static err_code check_span(const lm_state_t *s, int64_t pos0, int64_t n, const lm_run_opts *o, err_t *err) {
    if (n <= 0) return err_set(err, ERR_ARG, "language model: empty input span");
    if (pos0 + n > s->n_ctx)
        return err_set(err, ERR_RANGE, "language model: %lld positions do not fit the context of %lld (%lld in use)",
                       (long long)n, (long long)s->n_ctx, (long long)pos0);
    if (o && o->record) {
        const lm_snapshot_t *r = o->record;
        if (pos0 + n > r->cap || r->n_layer != s->m->cfg.n_layer || r->dim != s->m->cfg.dim)
            return err_set(err, ERR_RANGE, "language model: snapshot holds %lld positions, forward needs %lld",
                           (long long)r->cap, (long long)(pos0 + n));
    }
    return ERR_OK;
}

err_code lm_prefill(lm_state_t *s, const lm_input_t *in, const lm_run_opts *o, err_t *err) {
    const lm_config_t *c = &s->m->cfg;
    const int64_t pos0 = s->kv.n_pos, n = in->n, D = c->dim;
    err_code rc = check_span(s, pos0, n, o, err);
    if (rc) return rc;
    int64_t n_slots = 0;
    for (int64_t i = 0; i < n; i++) {
        if (in->ids[i] == -1)
            n_slots++;
        else if (in->ids[i] < 0 || in->ids[i] >= c->n_vocab)
            return err_set(err, ERR_ARG, "language model: token id %d at position %lld outside the vocabulary (%d)",
                           in->ids[i], (long long)(pos0 + i), c->n_vocab);
    }
    if (n_slots != (in->embd ? in->n_embd : 0))
        return err_set(err, ERR_ARG, "language model: %lld embedding slots in the input but %lld rows given",
                       (long long)n_slots, (long long)(in->embd ? in->n_embd : 0));
    int64_t e = 0;
    for (int64_t c0 = 0; c0 < n; c0 += s->n_batch) {
        const int64_t nc = n - c0 < s->n_batch ? n - c0 : s->n_batch;
        for (int64_t i = 0; i < nc; i++) {
            const int32_t id = in->ids[c0 + i];
            if (id >= 0)
                mm_dequant_rows(s->m->w.token_embd, id, 1, s->x + i * D);
            else
                memcpy(s->x + i * D, in->embd + (e++) * D, sizeof(float) * (size_t)D);
        }
        if ((rc = emit(o, "embed", 0, s->x, 2, nc, D, 0, pos0 + c0, err))) return rc;
        float *lo = o && o->all_logits ? o->all_logits + c0 * (int64_t)c->n_vocab : NULL;
        if ((rc = run_layers(s, pos0 + c0, nc, 0, o, lo, c0 + nc == n, err))) return rc;
    }
    return ERR_OK;
}

err_code lm_decode(lm_state_t *s, int32_t token, const lm_run_opts *o, err_t *err) {
    lm_input_t in = {.ids = &token, .n = 1};
    return lm_prefill(s, &in, o, err);
}

err_code lm_resume(lm_state_t *s, const lm_snapshot_t *snap, int layer, int64_t p0, const lm_run_opts *o,
                   err_t *err) {
    const lm_config_t *c = &s->m->cfg;
    if (snap->n_layer != c->n_layer || snap->dim != c->dim)
        return err_set(err, ERR_MISMATCH, "lm_resume: snapshot is of another model");
    if (layer < 0 || layer > c->n_layer || p0 < 0 || p0 >= snap->n_pos)
        return err_set(err, ERR_ARG, "lm_resume: layer %d / position %lld outside [0, %d] / [0, %lld)", layer,
                       (long long)p0, c->n_layer, (long long)snap->n_pos);
    if (snap->n_pos > s->n_ctx)
        return err_set(err, ERR_RANGE, "lm_resume: snapshot of %lld positions exceeds the context %lld",
                       (long long)snap->n_pos, (long long)s->n_ctx);
    if (o && o->record == snap) return err_set(err, ERR_ARG, "lm_resume: cannot record into the snapshot it reads");
    err_code rc = check_span(s, p0, snap->n_pos - p0, o, err);
    if (rc) return rc;
    kv_copy(&s->kv, &snap->kv, 0, layer, 0, snap->n_pos);
    kv_copy(&s->kv, &snap->kv, layer, c->n_layer, 0, p0);
    s->kv.n_pos = p0;
    const int64_t n = snap->n_pos - p0, D = c->dim;
    for (int64_t c0 = 0; c0 < n; c0 += s->n_batch) {
        const int64_t nc = n - c0 < s->n_batch ? n - c0 : s->n_batch;
        memcpy(s->x, lm_snapshot_resid(snap, layer, p0 + c0), sizeof(float) * (size_t)(nc * D));
        float *lo = o && o->all_logits ? o->all_logits + c0 * (int64_t)c->n_vocab : NULL;
        if ((rc = run_layers(s, p0 + c0, nc, layer, o, lo, c0 + nc == n, err))) return rc;
    }
    return ERR_OK;
}
