/* model.c — the trainable toy LLaVA (contract in model.h). Forward and backward read
 * top to bottom like the papers: CLIP ViT (Radford et al. 2021, HF CLIPVisionModel),
 * LLaVA-1.5 mlp projector (Liu et al. 2023), LLaMA (Touvron et al. 2023). Every
 * computation is a core/ops.h call; this file only wires buffers together. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/ops.h"

void tm_config_default(tm_config *c, int n_vocab) {
    *c = (tm_config){
        .image_size = 224, .patch_size = 16, .v_width = 128, .v_blocks = 4, .v_heads = 4, .v_ffn = 512,
        .v_eps = 1e-5f, .d = 128, .n_layer = 4, .n_head = 4, .n_kv_head = 2, .head_dim = 32, .ffn = 352,
        .n_vocab = n_vocab, .max_seq = 320, .rms_eps = 1e-5f, .rope_base = 10000.0f,
    };
}

void tm_config_micro(tm_config *c, int n_vocab) {
    *c = (tm_config){
        .image_size = 32, .patch_size = 8, .v_width = 16, .v_blocks = 2, .v_heads = 2, .v_ffn = 32,
        .v_eps = 1e-5f, .d = 16, .n_layer = 2, .n_head = 2, .n_kv_head = 1, .head_dim = 8, .ffn = 24,
        .n_vocab = n_vocab, .max_seq = 48, .rms_eps = 1e-5f, .rope_base = 10000.0f,
    };
}

err_code tm_config_check(const tm_config *c, err_t *err) {
#define REQ(cond, what)                                                                                   \
    do {                                                                                                  \
        if (!(cond)) return err_set(err, ERR_ARG, "toy model config: %s", what);                          \
    } while (0)
    REQ(c->patch_size > 0 && c->image_size > 0 && c->image_size % c->patch_size == 0,
        "image_size must be a positive multiple of patch_size");
    REQ(c->v_blocks >= 1 && c->v_blocks <= TM_MAX_BLOCKS, "v_blocks out of range 1..16");
    REQ(c->n_layer >= 1 && c->n_layer <= TM_MAX_BLOCKS, "n_layer out of range 1..16");
    REQ(c->v_heads > 0 && c->v_width % c->v_heads == 0, "v_width must be a multiple of v_heads");
    REQ(c->v_ffn > 0 && c->ffn > 0 && c->d > 0, "widths must be positive");
    REQ(c->n_head > 0 && c->n_kv_head > 0 && c->n_head % c->n_kv_head == 0, "n_head must be a multiple of n_kv_head");
    REQ(c->head_dim > 0 && c->head_dim % 2 == 0, "head_dim must be even (RoPE pairs)");
    REQ(c->n_vocab > 1, "n_vocab must be > 1");
    REQ(c->max_seq > tm_n_patches(c), "max_seq must exceed the image span");
#undef REQ
    return ERR_OK;
}

/* ---- parameter layout: one walk defines names, shapes, offsets and views ---- */

typedef struct {
    tm_param *table; /* NULL while counting */
    int n;
    size_t off;
    float *base;     /* NULL: no views */
    tm_weights *w;
} walker;

static float *walk_add(walker *k, int file, bool decay, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                       int64_t ne3, const char *name) {
    size_t n = (size_t)(ne0 * ne1 * ne2 * ne3);
    if (k->table) {
        tm_param *p = &k->table[k->n];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->file = file;
        p->decay = decay;
        p->n_dims = n_dims;
        p->ne[0] = ne0, p->ne[1] = ne1, p->ne[2] = ne2, p->ne[3] = ne3;
        p->offset = k->off;
        p->n = n;
    }
    float *v = k->base ? k->base + k->off : NULL;
    k->off += n;
    k->n++;
    return v;
}

/* Shorthands: a matrix [out][in] has ne {in, out}; vectors ne {n}. */
#define MAT(file, field, in, out, ...)                                                                    \
    do {                                                                                                  \
        snprintf(nm, sizeof nm, __VA_ARGS__);                                                             \
        (field) = walk_add(k, file, true, 2, (in), (out), 1, 1, nm);                                      \
    } while (0)
#define VEC(file, field, n, ...)                                                                          \
    do {                                                                                                  \
        snprintf(nm, sizeof nm, __VA_ARGS__);                                                             \
        (field) = walk_add(k, file, false, 1, (n), 1, 1, 1, nm);                                          \
    } while (0)

static void walk_layout(const tm_config *c, walker *k) {
    char nm[TM_NAME_MAX];
    tm_weights *w = k->w;
    const int C = c->v_width, F = c->v_ffn, ps = c->patch_size, T = tm_n_patches(c) + 1;
    const int V = TM_FILE_MMPROJ, L = TM_FILE_LM;
    /* Vision tower, llama.cpp clip-impl.h names. The conv weight keeps its 4-D shape
     * {ps, ps, 3, C} so clip.cpp's ggml_conv_2d reads it; it is decayed like any matrix. */
    w->patch_w = walk_add(k, V, true, 4, ps, ps, 3, C, "v.patch_embd.weight");
    VEC(V, w->class_embd, C, "v.class_embd");
    w->pos_embd = walk_add(k, V, false, 2, C, T, 1, 1, "v.position_embd.weight");
    VEC(V, w->pre_ln_w, C, "v.pre_ln.weight");
    VEC(V, w->pre_ln_b, C, "v.pre_ln.bias");
    for (int b = 0; b < c->v_blocks; b++) {
        tm_vblock *vb = &w->vb[b];
        MAT(V, vb->q_w, C, C, "v.blk.%d.attn_q.weight", b);
        VEC(V, vb->q_b, C, "v.blk.%d.attn_q.bias", b);
        MAT(V, vb->k_w, C, C, "v.blk.%d.attn_k.weight", b);
        VEC(V, vb->k_b, C, "v.blk.%d.attn_k.bias", b);
        MAT(V, vb->v_w, C, C, "v.blk.%d.attn_v.weight", b);
        VEC(V, vb->v_b, C, "v.blk.%d.attn_v.bias", b);
        MAT(V, vb->o_w, C, C, "v.blk.%d.attn_out.weight", b);
        VEC(V, vb->o_b, C, "v.blk.%d.attn_out.bias", b);
        VEC(V, vb->ln1_w, C, "v.blk.%d.ln1.weight", b);
        VEC(V, vb->ln1_b, C, "v.blk.%d.ln1.bias", b);
        /* ffn_up = fc1 (C -> F), ffn_down = fc2 (F -> C), as the legacy converter names them. */
        MAT(V, vb->up_w, C, F, "v.blk.%d.ffn_up.weight", b);
        VEC(V, vb->up_b, F, "v.blk.%d.ffn_up.bias", b);
        MAT(V, vb->down_w, F, C, "v.blk.%d.ffn_down.weight", b);
        VEC(V, vb->down_b, C, "v.blk.%d.ffn_down.bias", b);
        VEC(V, vb->ln2_w, C, "v.blk.%d.ln2.weight", b);
        VEC(V, vb->ln2_b, C, "v.blk.%d.ln2.bias", b);
    }
    MAT(V, w->mm0_w, C, c->d, "mm.0.weight");
    VEC(V, w->mm0_b, c->d, "mm.0.bias");
    MAT(V, w->mm2_w, c->d, c->d, "mm.2.weight");
    VEC(V, w->mm2_b, c->d, "mm.2.bias");
    /* Language model, llama.cpp names. */
    const int D = c->d, QD = c->n_head * c->head_dim, KD = c->n_kv_head * c->head_dim;
    MAT(L, w->tok_embd, D, c->n_vocab, "token_embd.weight");
    for (int l = 0; l < c->n_layer; l++) {
        tm_lblock *lb = &w->lb[l];
        VEC(L, lb->attn_norm, D, "blk.%d.attn_norm.weight", l);
        MAT(L, lb->wq, D, QD, "blk.%d.attn_q.weight", l);
        MAT(L, lb->wk, D, KD, "blk.%d.attn_k.weight", l);
        MAT(L, lb->wv, D, KD, "blk.%d.attn_v.weight", l);
        MAT(L, lb->wo, QD, D, "blk.%d.attn_output.weight", l);
        VEC(L, lb->ffn_norm, D, "blk.%d.ffn_norm.weight", l);
        MAT(L, lb->w_gate, D, c->ffn, "blk.%d.ffn_gate.weight", l);
        MAT(L, lb->w_up, D, c->ffn, "blk.%d.ffn_up.weight", l);
        MAT(L, lb->w_down, c->ffn, D, "blk.%d.ffn_down.weight", l);
    }
    VEC(L, w->out_norm, D, "output_norm.weight");
    MAT(L, w->output, D, c->n_vocab, "output.weight");
}
#undef MAT
#undef VEC

err_code tm_create(tm_model *m, const tm_config *c, err_t *err) {
    memset(m, 0, sizeof *m);
    err_code rc = tm_config_check(c, err);
    if (rc) return rc;
    m->cfg = *c;
    tm_weights scratch;
    walker k = {.w = &scratch};
    walk_layout(c, &k);
    m->n_tensors = k.n;
    m->n_params = k.off;
    m->table = calloc((size_t)k.n, sizeof *m->table);
    m->params = calloc(m->n_params, sizeof(float));
    if (!m->table || !m->params) {
        tm_free(m);
        return err_set(err, ERR_NOMEM, "toy model: cannot allocate %zu parameters", k.off);
    }
    walker k2 = {.table = m->table, .base = m->params, .w = &m->w};
    walk_layout(c, &k2);
    return ERR_OK;
}

void tm_free(tm_model *m) {
    free(m->params);
    free(m->table);
    memset(m, 0, sizeof *m);
}

void tm_views(const tm_model *m, float *base, tm_weights *w) {
    memset(w, 0, sizeof *w);
    walker k = {.base = base, .w = w};
    walk_layout(&m->cfg, &k);
}

/* splitmix64 (Steele et al. 2014) and Box-Muller: deterministic, platform-independent. */
static uint64_t init_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double init_uniform(uint64_t *s) { return ((double)(init_next(s) >> 11) + 0.5) * 0x1.0p-53; }

static void fill_normal(float *x, size_t n, double std, uint64_t *s) {
    for (size_t i = 0; i < n; i += 2) {
        double u1 = init_uniform(s), u2 = init_uniform(s);
        double r = sqrt(-2.0 * log(u1)) * std;
        x[i] = (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
    }
}

/* 2-D sin-cos position embeddings (MAE, He et al. 2022, get_2d_sincos_pos_embed) as the
 * starting point of the learned table: half the channels encode the row, half the
 * column, at C/4 geometric frequencies; CLS (row 0) starts at zero. A from-scratch ViT
 * with N(0, 0.02) positions starts almost position-blind (content is ~30x larger), so
 * neighbouring patches cannot find each other and the toy model sat at chance for
 * 15k examples; with this start attention can be local from the first step. */
static void pos_embd_sincos(float *pe, const tm_config *c) {
    const int C = c->v_width, g = c->image_size / c->patch_size, nf = C / 4;
    memset(pe, 0, (size_t)C * sizeof(float));
    for (int y = 0; y < g; y++)
        for (int x = 0; x < g; x++) {
            float *row = pe + (size_t)(1 + y * g + x) * C;
            memset(row, 0, (size_t)C * sizeof(float));
            for (int k = 0; k < nf; k++) {
                double om = pow(10000.0, -(double)k / nf);
                row[k] = (float)sin(y * om);
                row[nf + k] = (float)cos(y * om);
                row[2 * nf + k] = (float)sin(x * om);
                row[3 * nf + k] = (float)cos(x * om);
            }
        }
}

void tm_init_params(tm_model *m, uint64_t seed) { tm_init_params_ex(m, seed, TM_INIT_GPT2); }

void tm_init_params_ex(tm_model *m, uint64_t seed, int scheme) {
    uint64_t s = seed;
    const tm_config *c = &m->cfg;
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_param *p = &m->table[i];
        float *x = m->params + p->offset;
        const char *nm = p->name;
        bool is_norm = strstr(nm, "norm") || strstr(nm, "ln1.") || strstr(nm, "ln2.") || strstr(nm, "pre_ln");
        bool is_bias = strstr(nm, ".bias") != NULL;
        if (is_norm && !is_bias) {
            for (size_t j = 0; j < p->n; j++) x[j] = 1.0f;
        } else if (is_bias) {
            memset(x, 0, p->n * sizeof(float));
        } else if (x == m->w.pos_embd) {
            pos_embd_sincos(x, c);
        } else {
            /* Residual-branch outputs shrink with depth so the stream's variance stays
             * O(1) at init (GPT-2, Radford et al. 2019, sec. 2.3). */
            double std = 0.02;
            if (scheme == TM_INIT_LECUN && p->n_dims >= 2) {
                /* LeCun: unit gain per linear (fan_in = elements per output row), so
                 * signals reach the loss at O(1) in this narrow model; embeddings at the
                 * scale of a normalised row. */
                std = x == m->w.tok_embd ? 1.0 : 1.0 / sqrt((double)p->n / (double)p->ne[p->n_dims - 1]);
            }
            double base = std;
            if (strstr(nm, "attn_out.") || strstr(nm, "ffn_down.")) std = base / sqrt(2.0 * c->v_blocks);
            if (strstr(nm, "attn_output.") || (strstr(nm, "ffn_down.") && nm[0] == 'b'))
                std = base / sqrt(2.0 * c->n_layer);
            fill_normal(x, p->n, std, &s);
        }
    }
}

/* ---- activations of one example ---- */

typedef struct {
    float *ln1, *ln1_m, *ln1_r, *q, *k, *v, *att, *ay, *h, *ln2, *ln2_m, *ln2_r, *fc1, *act;
} vacts;

typedef struct {
    float *n1, *r1, *q, *k, *v, *att, *ay, *h, *n2, *r2, *gate, *up, *sw;
} lacts;

struct tm_state {
    tm_config cfg;
    arena_t arena;
    /* vision */
    float *patches, *emb, *pre_m, *pre_r;
    float *vx[TM_MAX_BLOCKS + 1];
    vacts va[TM_MAX_BLOCKS];
    float *mm0, *mma;
    /* language */
    float *lx[TM_MAX_BLOCKS + 1];
    lacts la[TM_MAX_BLOCKS];
    float *fn, *frstd, *logits, *probs, *losses;
    float *aux_fn, *aux_rstd, *aux_logits, *aux_probs; /* layer-0 lens on the image rows */
    double aux_loss;
    int64_t aux_count;
    /* scratch for the backward (and tmp for the forward's residual branches) */
    float *tmp, *dres, *dln, *dq, *dk, *dv, *day, *dfa, *dfb, *dfc, *demb, *dmm0, *dmma, *dlogits, *dfn, *att_scratch;
    int64_t n, t0, n_targets; /* of the last forward */
    bool lens_only;
};

static float *take(arena_t *a, size_t n, size_t *count) {
    if (!a->base) {
        *count += arena_round(n * sizeof(float));
        return NULL;
    }
    return arena_floats(a, n, NULL);
}

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

static void state_carve(tm_state *s, size_t *count) {
    const tm_config *c = &s->cfg;
    arena_t *a = &s->arena;
    const size_t P = (size_t)tm_n_patches(c), T = P + 1, C = (size_t)c->v_width, F = (size_t)c->v_ffn;
    const size_t L = (size_t)c->max_seq, D = (size_t)c->d, QD = (size_t)c->n_head * c->head_dim;
    const size_t KD = (size_t)c->n_kv_head * c->head_dim, LF = (size_t)c->ffn, V = (size_t)c->n_vocab;
    const size_t pd = 3 * (size_t)c->patch_size * c->patch_size;
    s->patches = take(a, P * pd, count);
    s->emb = take(a, T * C, count);
    s->pre_m = take(a, T, count);
    s->pre_r = take(a, T, count);
    for (int b = 0; b <= c->v_blocks; b++) s->vx[b] = take(a, T * C, count);
    for (int b = 0; b < c->v_blocks; b++) {
        vacts *v = &s->va[b];
        v->ln1 = take(a, T * C, count), v->ln1_m = take(a, T, count), v->ln1_r = take(a, T, count);
        v->q = take(a, T * C, count), v->k = take(a, T * C, count), v->v = take(a, T * C, count);
        v->att = take(a, (size_t)c->v_heads * T * T, count);
        v->ay = take(a, T * C, count), v->h = take(a, T * C, count);
        v->ln2 = take(a, T * C, count), v->ln2_m = take(a, T, count), v->ln2_r = take(a, T, count);
        v->fc1 = take(a, T * F, count), v->act = take(a, T * F, count);
    }
    s->mm0 = take(a, P * D, count);
    s->mma = take(a, P * D, count);
    for (int l = 0; l <= c->n_layer; l++) s->lx[l] = take(a, L * D, count);
    for (int l = 0; l < c->n_layer; l++) {
        lacts *x = &s->la[l];
        x->n1 = take(a, L * D, count), x->r1 = take(a, L, count);
        x->q = take(a, L * QD, count), x->k = take(a, L * KD, count), x->v = take(a, L * KD, count);
        x->att = take(a, (size_t)c->n_head * L * L, count);
        x->ay = take(a, L * QD, count), x->h = take(a, L * D, count);
        x->n2 = take(a, L * D, count), x->r2 = take(a, L, count);
        x->gate = take(a, L * LF, count), x->up = take(a, L * LF, count), x->sw = take(a, L * LF, count);
    }
    s->fn = take(a, L * D, count), s->frstd = take(a, L, count);
    s->logits = take(a, L * V, count), s->probs = take(a, L * V, count), s->losses = take(a, L, count);
    s->aux_fn = take(a, P * D, count), s->aux_rstd = take(a, P, count);
    s->aux_logits = take(a, P * V, count), s->aux_probs = take(a, P * V, count);
    size_t rowsw = zmax(T * C, L * zmax(D, QD));
    s->tmp = take(a, rowsw, count);
    s->dres = take(a, rowsw, count);
    s->dln = take(a, rowsw, count);
    s->dq = take(a, rowsw, count), s->dk = take(a, rowsw, count), s->dv = take(a, rowsw, count);
    s->day = take(a, rowsw, count);
    size_t ffw = zmax(T * F, L * LF);
    s->dfa = take(a, ffw, count), s->dfb = take(a, ffw, count), s->dfc = take(a, ffw, count);
    s->demb = take(a, T * C, count);
    s->dmm0 = take(a, P * D, count), s->dmma = take(a, P * D, count);
    s->dlogits = take(a, L * V, count), s->dfn = take(a, L * D, count);
    int64_t sc = ops_attention_bwd_scratch((int64_t)T, (int64_t)T, c->v_heads);
    int64_t sl = ops_attention_bwd_scratch((int64_t)L, (int64_t)L, c->n_head);
    s->att_scratch = take(a, (size_t)(sc > sl ? sc : sl), count);
}

err_code tm_state_create(tm_state **out, const tm_config *c, err_t *err) {
    *out = NULL;
    err_code rc = tm_config_check(c, err);
    if (rc) return rc;
    tm_state *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, ERR_NOMEM, "toy model: cannot allocate state");
    s->cfg = *c;
    size_t bytes = 0;
    state_carve(s, &bytes);
    rc = arena_create(&s->arena, bytes, err);
    if (rc) {
        free(s);
        return rc;
    }
    state_carve(s, &bytes);
    *out = s;
    return ERR_OK;
}

void tm_state_free(tm_state *s) {
    if (!s) return;
    arena_free(&s->arena);
    free(s);
}

const float *tm_state_logits(const tm_state *s) { return s->logits; }
double tm_state_aux_loss(const tm_state *s) { return s->aux_count ? s->aux_loss / (double)s->aux_count : 0.0; }

static void add_into(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- forward ---- */

static void vit_forward(const tm_model *m, tm_state *s, const float *img) {
    const tm_config *c = &m->cfg;
    const tm_weights *w = &m->w;
    const int64_t P = tm_n_patches(c), T = P + 1, C = c->v_width, F = c->v_ffn;
    const int64_t pd = 3 * (int64_t)c->patch_size * c->patch_size;
    const int hd = c->v_width / c->v_heads;
    /* Patch embedding = conv(stride = kernel = ps) as unfold + GEMM; CLS at row 0 and
     * learned absolute positions (HF CLIPVisionEmbeddings). */
    ops_patchify_fwd(s->patches, img, c->image_size, c->image_size, c->patch_size);
    ops_linear_fwd(s->emb + C, s->patches, w->patch_w, NULL, P, pd, C);
    memcpy(s->emb, w->class_embd, (size_t)C * sizeof(float));
    for (int64_t i = 0; i < T * C; i++) s->emb[i] += w->pos_embd[i];
    ops_layernorm_fwd(s->vx[0], s->pre_m, s->pre_r, s->emb, w->pre_ln_w, w->pre_ln_b, T, C, c->v_eps);
    for (int b = 0; b < c->v_blocks; b++) {
        const tm_vblock *B = &w->vb[b];
        vacts *a = &s->va[b];
        const float *x = s->vx[b];
        ops_layernorm_fwd(a->ln1, a->ln1_m, a->ln1_r, x, B->ln1_w, B->ln1_b, T, C, c->v_eps);
        ops_linear_fwd(a->q, a->ln1, B->q_w, B->q_b, T, C, C);
        ops_linear_fwd(a->k, a->ln1, B->k_w, B->k_b, T, C, C);
        ops_linear_fwd(a->v, a->ln1, B->v_w, B->v_b, T, C, C);
        ops_attention_fwd(a->ay, a->att, a->q, a->k, a->v, T, T, c->v_heads, c->v_heads, hd, 0, false, NULL, NULL);
        ops_linear_fwd(s->tmp, a->ay, B->o_w, B->o_b, T, C, C);
        add_into(a->h, x, s->tmp, T * C);
        ops_layernorm_fwd(a->ln2, a->ln2_m, a->ln2_r, a->h, B->ln2_w, B->ln2_b, T, C, c->v_eps);
        ops_linear_fwd(a->fc1, a->ln2, B->up_w, B->up_b, T, C, F);
        ops_quick_gelu_fwd(a->act, a->fc1, T * F);
        ops_linear_fwd(s->tmp, a->act, B->down_w, B->down_b, T, F, C);
        add_into(s->vx[b + 1], a->h, s->tmp, T * C);
    }
}

static void lm_layer_forward(const tm_model *m, tm_state *s, int l, int64_t n, const float *bias) {
    const tm_config *c = &m->cfg;
    const tm_lblock *B = &m->w.lb[l];
    lacts *a = &s->la[l];
    const int64_t D = c->d, QD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_kv_head * c->head_dim;
    const int64_t F = c->ffn;
    const float *x = s->lx[l];
    ops_rmsnorm_fwd(a->n1, a->r1, x, B->attn_norm, n, D, c->rms_eps);
    ops_linear_fwd(a->q, a->n1, B->wq, NULL, n, D, QD);
    ops_linear_fwd(a->k, a->n1, B->wk, NULL, n, D, KD);
    ops_linear_fwd(a->v, a->n1, B->wv, NULL, n, D, KD);
    ops_rope_fwd(a->q, n, c->n_head, c->head_dim, c->head_dim, 0, c->rope_base);
    ops_rope_fwd(a->k, n, c->n_kv_head, c->head_dim, c->head_dim, 0, c->rope_base);
    ops_attention_fwd(a->ay, a->att, a->q, a->k, a->v, n, n, c->n_head, c->n_kv_head, c->head_dim, 0, true, bias,
                      NULL);
    ops_linear_fwd(s->tmp, a->ay, B->wo, NULL, n, QD, D);
    add_into(a->h, x, s->tmp, n * D);
    ops_rmsnorm_fwd(a->n2, a->r2, a->h, B->ffn_norm, n, D, c->rms_eps);
    ops_linear_fwd(a->gate, a->n2, B->w_gate, NULL, n, D, F);
    ops_linear_fwd(a->up, a->n2, B->w_up, NULL, n, D, F);
    ops_swiglu_fwd(a->sw, a->gate, a->up, n * F);
    ops_linear_fwd(s->tmp, a->sw, B->w_down, NULL, n, F, D);
    add_into(s->lx[l + 1], a->h, s->tmp, n * D);
}

err_code tm_forward(const tm_model *m, tm_state *s, const tm_example *ex, double *loss_sum, err_t *err) {
    const tm_config *c = &m->cfg;
    const tm_weights *w = &m->w;
    const int64_t P = tm_n_patches(c), C = c->v_width, D = c->d, V = c->n_vocab, n = ex->n;
    if (n < 1 || n > c->max_seq)
        return err_set(err, ERR_RANGE, "toy model: sequence of %lld tokens outside 1..%d", (long long)n, c->max_seq);
    if (ex->image_start < 0 || ex->image_start + P > n)
        return err_set(err, ERR_RANGE, "toy model: image span %lld+%lld outside the sequence of %lld",
                       (long long)ex->image_start, (long long)P, (long long)n);
    if (ex->n_targets < 1 || ex->t0 < 0 || ex->t0 + ex->n_targets != n)
        return err_set(err, ERR_RANGE, "toy model: targets must be the last rows of the sequence");
    for (int64_t i = 0; i < n; i++) {
        bool img = i >= ex->image_start && i < ex->image_start + P;
        if (img ? ex->ids[i] != -1 : (ex->ids[i] < 0 || ex->ids[i] >= V))
            return err_set(err, ERR_RANGE, "toy model: token %lld has id %d (vocabulary %lld, image slots -1)",
                           (long long)i, ex->ids[i], (long long)V);
    }
    for (int64_t j = 0; j < ex->n_targets; j++)
        if (ex->targets[j] >= V)
            return err_set(err, ERR_RANGE, "toy model: target %lld has id %d", (long long)j, ex->targets[j]);
    s->n = n, s->t0 = ex->t0, s->n_targets = ex->n_targets;

    vit_forward(m, s, ex->img);
    /* Projector on the last block's patch rows (CLS dropped), written straight into the
     * image slots of the LM input (LLaVA-1.5: Linear, GELU, Linear). */
    const float *feat = s->vx[c->v_blocks] + C;
    float *img_rows = s->lx[0] + ex->image_start * D;
    ops_linear_fwd(s->mm0, feat, w->mm0_w, w->mm0_b, P, C, D);
    ops_gelu_fwd(s->mma, s->mm0, P * D);
    ops_linear_fwd(img_rows, s->mma, w->mm2_w, w->mm2_b, P, D, D);
    ops_embed_fwd(s->lx[0], w->tok_embd, ex->ids, ex->image_start, D);
    int64_t after = ex->image_start + P;
    ops_embed_fwd(s->lx[0] + after * D, w->tok_embd, ex->ids + after, n - after, D);
    s->aux_loss = 0.0, s->aux_count = 0;
    if (ex->aux_targets && ex->aux_weight > 0) {
        ops_rmsnorm_fwd(s->aux_fn, s->aux_rstd, img_rows, w->out_norm, P, D, c->rms_eps);
        ops_linear_fwd(s->aux_logits, s->aux_fn, w->output, NULL, P, D, V);
        for (int k = 0; k < TM_N_AUX; k++) {
            const int32_t *t = ex->aux_targets + k * P;
            for (int64_t i = 0; i < P; i++) {
                if (t[i] >= V)
                    return err_set(err, ERR_RANGE, "toy model: aux target %lld has id %d", (long long)i, t[i]);
                s->aux_count += t[i] >= 0;
            }
            s->aux_loss += ops_xent_fwd(NULL, k == 0 ? s->aux_probs : NULL, s->aux_logits, t, P, V);
        }
    }
    s->lens_only = ex->lens_only;
    if (ex->lens_only) {
        if (loss_sum) *loss_sum = 0.0;
        return ERR_OK;
    }
    for (int l = 0; l < c->n_layer; l++) lm_layer_forward(m, s, l, n, ex->lm_bias);
    /* Only the target rows need the head: RMSNorm is row-wise, so normalising the tail
     * rows alone is exact. */
    const int64_t nt = ex->n_targets;
    ops_rmsnorm_fwd(s->fn, s->frstd, s->lx[c->n_layer] + ex->t0 * D, w->out_norm, nt, D, c->rms_eps);
    ops_linear_fwd(s->logits, s->fn, w->output, NULL, nt, D, V);
    double loss = ops_xent_fwd(s->losses, s->probs, s->logits, ex->targets, nt, V);
    if (loss_sum) *loss_sum = loss;
    return ERR_OK;
}

/* ---- backward (reverse order; every op accumulates into din, so the residual
 * stream's gradient lives in one buffer and branches add into it) ---- */

static void zero(float *x, int64_t n) { memset(x, 0, (size_t)n * sizeof(float)); }

static void lm_layer_backward(const tm_model *m, tm_state *s, const tm_lblock *G, int l, int64_t n) {
    const tm_config *c = &m->cfg;
    const tm_lblock *B = &m->w.lb[l];
    lacts *a = &s->la[l];
    const int64_t D = c->d, QD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_kv_head * c->head_dim;
    const int64_t F = c->ffn;
    float *dres = s->dres;
    /* MLP branch: x_out = h + W_down (silu(W_gate n2) * W_up n2), n2 = rmsnorm(h). */
    zero(s->dfc, n * F);
    ops_linear_bwd(s->dfc, G->w_down, NULL, dres, a->sw, B->w_down, n, F, D);
    zero(s->dfa, n * F), zero(s->dfb, n * F);
    ops_swiglu_bwd(s->dfa, s->dfb, s->dfc, a->gate, a->up, n * F);
    zero(s->dln, n * D);
    ops_linear_bwd(s->dln, G->w_gate, NULL, s->dfa, a->n2, B->w_gate, n, D, F);
    ops_linear_bwd(s->dln, G->w_up, NULL, s->dfb, a->n2, B->w_up, n, D, F);
    ops_rmsnorm_bwd(dres, G->ffn_norm, s->dln, a->h, B->ffn_norm, a->r2, n, D);
    /* Attention branch: h = x + W_o attn(rope(W_q n1), rope(W_k n1), W_v n1). */
    zero(s->day, n * QD);
    ops_linear_bwd(s->day, G->wo, NULL, dres, a->ay, B->wo, n, QD, D);
    zero(s->dq, n * QD), zero(s->dk, n * KD), zero(s->dv, n * KD);
    ops_attention_bwd(s->dq, s->dk, s->dv, s->day, a->att, a->q, a->k, a->v, n, n, c->n_head, c->n_kv_head,
                      c->head_dim, s->att_scratch, NULL);
    ops_rope_bwd(s->dq, n, c->n_head, c->head_dim, c->head_dim, 0, c->rope_base);
    ops_rope_bwd(s->dk, n, c->n_kv_head, c->head_dim, c->head_dim, 0, c->rope_base);
    zero(s->dln, n * D);
    ops_linear_bwd(s->dln, G->wq, NULL, s->dq, a->n1, B->wq, n, D, QD);
    ops_linear_bwd(s->dln, G->wk, NULL, s->dk, a->n1, B->wk, n, D, KD);
    ops_linear_bwd(s->dln, G->wv, NULL, s->dv, a->n1, B->wv, n, D, KD);
    ops_rmsnorm_bwd(dres, G->attn_norm, s->dln, s->lx[l], B->attn_norm, a->r1, n, D);
}

static void vit_block_backward(const tm_model *m, tm_state *s, const tm_vblock *G, int b) {
    const tm_config *c = &m->cfg;
    const tm_vblock *B = &m->w.vb[b];
    vacts *a = &s->va[b];
    const int64_t T = tm_n_patches(c) + 1, C = c->v_width, F = c->v_ffn;
    const int hd = c->v_width / c->v_heads;
    float *dres = s->dres;
    /* MLP branch: x_out = h + fc2(quick_gelu(fc1(ln2(h)))). */
    zero(s->dfc, T * F);
    ops_linear_bwd(s->dfc, G->down_w, G->down_b, dres, a->act, B->down_w, T, F, C);
    zero(s->dfa, T * F);
    ops_quick_gelu_bwd(s->dfa, s->dfc, a->fc1, T * F);
    zero(s->dln, T * C);
    ops_linear_bwd(s->dln, G->up_w, G->up_b, s->dfa, a->ln2, B->up_w, T, C, F);
    ops_layernorm_bwd(dres, G->ln2_w, G->ln2_b, s->dln, a->h, B->ln2_w, a->ln2_m, a->ln2_r, T, C);
    /* Attention branch: h = x + out(attn(q(ln1 x), k(ln1 x), v(ln1 x))), bidirectional. */
    zero(s->day, T * C);
    ops_linear_bwd(s->day, G->o_w, G->o_b, dres, a->ay, B->o_w, T, C, C);
    zero(s->dq, T * C), zero(s->dk, T * C), zero(s->dv, T * C);
    ops_attention_bwd(s->dq, s->dk, s->dv, s->day, a->att, a->q, a->k, a->v, T, T, c->v_heads, c->v_heads, hd,
                      s->att_scratch, NULL);
    zero(s->dln, T * C);
    ops_linear_bwd(s->dln, G->q_w, G->q_b, s->dq, a->ln1, B->q_w, T, C, C);
    ops_linear_bwd(s->dln, G->k_w, G->k_b, s->dk, a->ln1, B->k_w, T, C, C);
    ops_linear_bwd(s->dln, G->v_w, G->v_b, s->dv, a->ln1, B->v_w, T, C, C);
    ops_layernorm_bwd(dres, G->ln1_w, G->ln1_b, s->dln, s->vx[b], B->ln1_w, a->ln1_m, a->ln1_r, T, C);
}

void tm_backward(const tm_model *m, tm_state *s, const tm_example *ex, const tm_weights *g, float scale) {
    const tm_config *c = &m->cfg;
    const tm_weights *w = &m->w;
    const int64_t P = tm_n_patches(c), T = P + 1, C = c->v_width, D = c->d, V = c->n_vocab, n = s->n;
    const int64_t nt = s->n_targets, t0 = s->t0;
    const int64_t pd = 3 * (int64_t)c->patch_size * c->patch_size;
    zero(s->dres, n * D);
    if (!s->lens_only) {
        /* Head: loss -> logits -> output -> final RMSNorm on the target rows. */
        zero(s->dlogits, nt * V);
        ops_xent_bwd(s->dlogits, s->probs, ex->targets, nt, V, scale);
        zero(s->dfn, nt * D);
        ops_linear_bwd(s->dfn, g->output, NULL, s->dlogits, s->fn, w->output, nt, D, V);
        ops_rmsnorm_bwd(s->dres + t0 * D, g->out_norm, s->dfn, s->lx[c->n_layer] + t0 * D, w->out_norm, s->frstd,
                        nt, D);
        for (int l = c->n_layer - 1; l >= 0; l--) lm_layer_backward(m, s, &g->lb[l], l, n);
    }
    if (ex->image_grad > 0 && ex->image_grad != 1.0f)
        for (int64_t i = ex->image_start * D; i < (ex->image_start + P) * D; i++) s->dres[i] *= ex->image_grad;
    if (s->aux_count > 0) {
        /* The lens reads the image rows of the LM input: its gradient joins theirs. */
        const float as = scale * ex->aux_weight / (float)s->aux_count;
        zero(s->dlogits, P * V);
        for (int k = 0; k < TM_N_AUX; k++) ops_xent_bwd(s->dlogits, s->aux_probs, ex->aux_targets + k * P, P, V, as);
        zero(s->dfn, P * D);
        ops_linear_bwd(s->dfn, g->output, NULL, s->dlogits, s->aux_fn, w->output, P, D, V);
        ops_rmsnorm_bwd(s->dres + ex->image_start * D, g->out_norm, s->dfn, s->lx[0] + ex->image_start * D,
                        w->out_norm, s->aux_rstd, P, D);
    }
    /* LM input: text rows -> embedding table, image rows -> projector. */
    ops_embed_bwd(g->tok_embd, s->dres, ex->ids, ex->image_start, D);
    int64_t after = ex->image_start + P;
    ops_embed_bwd(g->tok_embd, s->dres + after * D, ex->ids + after, n - after, D);
    zero(s->dmma, P * D);
    ops_linear_bwd(s->dmma, g->mm2_w, g->mm2_b, s->dres + ex->image_start * D, s->mma, w->mm2_w, P, D, D);
    zero(s->dmm0, P * D);
    ops_gelu_bwd(s->dmm0, s->dmma, s->mm0, P * D);
    /* The ViT's residual gradient reuses dres; CLS (row 0) gets no gradient from the LM. */
    zero(s->dres, T * C);
    ops_linear_bwd(s->dres + C, g->mm0_w, g->mm0_b, s->dmm0, s->vx[c->v_blocks] + C, w->mm0_w, P, C, D);
    for (int b = c->v_blocks - 1; b >= 0; b--) vit_block_backward(m, s, &g->vb[b], b);
    zero(s->demb, T * C);
    ops_layernorm_bwd(s->demb, g->pre_ln_w, g->pre_ln_b, s->dres, s->emb, w->pre_ln_w, s->pre_m, s->pre_r, T, C);
    for (int64_t i = 0; i < T * C; i++) g->pos_embd[i] += s->demb[i];
    for (int64_t i = 0; i < C; i++) g->class_embd[i] += s->demb[i];
    ops_linear_bwd(NULL, g->patch_w, NULL, s->demb + C, s->patches, w->patch_w, P, pd, C);
}
