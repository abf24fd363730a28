/* llama_batch.c — batched resume of several edited copies of one snapshot's sequence
 * (contract in llama.h). The layer is llama.c's (the two halves in llama_impl.h), with
 * the rows of every copy stacked for the weight matmuls and attention done copy by
 * copy, each copy's keys/values being the snapshot's prefix followed by its own rows. */
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/ops.h"
#include "llama.h"
#include "llama_impl.h"

struct lm_batch {
    const lm_model_t *m;
    mm_ctx_t *mm;
    int max_copies;
    int64_t max_rows, n_ctx, max_q; /* max_rows includes the padding to LM_BATCH_MIN_ROWS */
    /* the batch being assembled */
    const lm_snapshot_t *snap;
    int layer, n;
    int64_t rows;
    int64_t *p0, *row0;      /* [max_copies]: resume position and first stacked row of each copy */
    /* stacked rows [max_rows][..] */
    float *x, *xb, *q, *z, *kr, *vr, *hb, *hb2;
    float *k, *v;            /* [max_copies][n_ctx][kv_dim]: each copy's keys/values of the current layer */
    float *att;              /* [n_head][max_q][n_ctx]; a copy has at most max_q rows */
    float *last, *lastn;     /* [max(max_copies, MIN_ROWS)][dim]: last rows, normalised */
    float *logits;           /* [max(max_copies, MIN_ROWS)][n_vocab] */
    void *arena_base;
    uint64_t arena_bytes;
};

static int64_t at_least_min(int64_t n) { return n < LM_BATCH_MIN_ROWS ? LM_BATCH_MIN_ROWS : n; }

err_code lm_batch_create(lm_batch_t **out, const lm_model_t *m, mm_ctx_t *mm, int max_copies, int64_t max_rows,
                         int64_t n_ctx, err_t *err) {
    *out = NULL;
    const lm_config_t *c = &m->cfg;
    if (max_copies <= 0 || max_rows <= 0 || n_ctx <= 0)
        return err_set(err, ERR_ARG, "lm_batch: bad size (%d copies, %lld rows, %lld positions)", max_copies,
                       (long long)max_rows, (long long)n_ctx);
    lm_batch_t *b = calloc(1, sizeof *b);
    if (!b) return err_set(err, ERR_NOMEM, "lm_batch: out of memory");
    b->m = m;
    b->mm = mm;
    b->max_copies = max_copies;
    b->max_rows = at_least_min(max_rows);
    b->n_ctx = n_ctx;
    b->max_q = b->max_rows < n_ctx ? b->max_rows : n_ctx;
    const size_t R = (size_t)b->max_rows, D = (size_t)c->dim, QD = (size_t)c->n_head * (size_t)c->head_dim,
                 KVD = (size_t)c->n_kv_head * (size_t)c->head_dim, H = (size_t)c->hidden_dim, N = (size_t)n_ctx,
                 C = (size_t)max_copies, CL = (size_t)at_least_min(max_copies), V = (size_t)c->n_vocab;
    size_t sizes[] = {R * D,   R * D,   R * QD,  R * QD, R * KVD, R * KVD, R * H, R * H,
                      C * N * KVD, C * N * KVD, (size_t)c->n_head * (size_t)b->max_q * N, CL * D, CL * D, CL * V};
    float **ptrs[] = {&b->x, &b->xb, &b->q,   &b->z,   &b->kr,    &b->vr,    &b->hb,
                      &b->hb2, &b->k, &b->v, &b->att, &b->last, &b->lastn, &b->logits};
    size_t total = 2 * arena_round(sizeof(int64_t) * C);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += arena_round(sizes[i] * sizeof(float));
    arena_t a;
    err_code rc = arena_create(&a, total, err);
    if (rc) {
        free(b);
        return err_prefix(err, "lm_batch: %d copies, %lld rows", max_copies, (long long)max_rows);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) *ptrs[i] = arena_floats(&a, sizes[i], NULL);
    b->p0 = arena_alloc(&a, sizeof(int64_t) * C, NULL);
    b->row0 = arena_alloc(&a, sizeof(int64_t) * C, NULL);
    b->arena_base = a.base;
    b->arena_bytes = a.cap;
    *out = b;
    return ERR_OK;
}

void lm_batch_free(lm_batch_t *b) {
    if (!b) return;
    free(b->arena_base);
    free(b);
}

uint64_t lm_batch_bytes(const lm_batch_t *b) { return b->arena_bytes; }
int lm_batch_count(const lm_batch_t *b) { return b->n; }
const float *lm_batch_logits(const lm_batch_t *b, int i) { return b->logits + (int64_t)i * b->m->cfg.n_vocab; }

err_code lm_batch_begin(lm_batch_t *b, const lm_snapshot_t *snap, int layer, err_t *err) {
    const lm_config_t *c = &b->m->cfg;
    if (snap->n_layer != c->n_layer || snap->dim != c->dim)
        return err_set(err, ERR_MISMATCH, "lm_batch: snapshot is of another model");
    if (layer < 0 || layer >= c->n_layer)
        return err_set(err, ERR_ARG, "lm_batch: layer %d outside [0, %d)", layer, c->n_layer);
    if (snap->n_pos <= 0 || snap->n_pos > b->n_ctx)
        return err_set(err, ERR_RANGE, "lm_batch: snapshot of %lld positions, batch holds %lld", (long long)snap->n_pos,
                       (long long)b->n_ctx);
    b->snap = snap;
    b->layer = layer;
    b->n = 0;
    b->rows = 0;
    return ERR_OK;
}

bool lm_batch_fits(const lm_batch_t *b, int64_t p0) {
    return b->snap && b->n < b->max_copies && p0 >= 0 && p0 < b->snap->n_pos &&
           b->rows + (b->snap->n_pos - p0) <= b->max_rows;
}

float *lm_batch_add(lm_batch_t *b, int64_t p0, err_t *err) {
    if (!b->snap) {
        err_set(err, ERR_ARG, "lm_batch_add: no lm_batch_begin");
        return NULL;
    }
    if (p0 < 0 || p0 >= b->snap->n_pos) {
        err_set(err, ERR_ARG, "lm_batch_add: position %lld outside [0, %lld)", (long long)p0,
                (long long)b->snap->n_pos);
        return NULL;
    }
    if (!lm_batch_fits(b, p0)) {
        err_set(err, ERR_RANGE, "lm_batch_add: batch full (%d copies, %lld of %lld rows)", b->n, (long long)b->rows,
                (long long)b->max_rows);
        return NULL;
    }
    const int64_t nr = b->snap->n_pos - p0, D = b->m->cfg.dim;
    float *x = b->x + b->rows * D;
    memcpy(x, lm_snapshot_resid(b->snap, b->layer, p0), sizeof(float) * (size_t)(nr * D));
    b->p0[b->n] = p0;
    b->row0[b->n] = b->rows;
    b->n++;
    b->rows += nr;
    return x;
}

err_code lm_batch_run(lm_batch_t *b, err_t *err) {
    if (!b->snap || b->n == 0) return err_set(err, ERR_ARG, "lm_batch_run: empty batch");
    const lm_model_t *m = b->m;
    const lm_config_t *c = &m->cfg;
    const lm_snapshot_t *snap = b->snap;
    const int64_t D = c->dim, hd = c->head_dim, QD = (int64_t)c->n_head * hd,
                  KVD = (int64_t)c->n_kv_head * hd, N = snap->n_pos;
    /* padding rows: zero in, zero through every layer (rmsnorm of 0 is 0), never attended to */
    const int64_t R = at_least_min(b->rows);
    memset(b->x + b->rows * D, 0, sizeof(float) * (size_t)((R - b->rows) * D));
    memset(b->z + b->rows * QD, 0, sizeof(float) * (size_t)((R - b->rows) * QD));
    pool_t *pool = mm_ctx_pool(b->mm);
    err_code rc;
    for (int l = b->layer; l < c->n_layer; l++) {
        if ((rc = lm_layer_attn_in(m, b->mm, l, b->x, b->xb, b->q, b->kr, b->vr, R, NULL, 0, err))) return rc;
        for (int i = 0; i < b->n; i++) {
            const int64_t p0 = b->p0[i], r0 = b->row0[i], nr = N - p0;
            float *q = b->q + r0 * QD, *kr = b->kr + r0 * KVD;
            float *k = b->k + (int64_t)i * b->n_ctx * KVD, *v = b->v + (int64_t)i * b->n_ctx * KVD;
            ops_rope_fwd(q, nr, c->n_head, (int)hd, c->n_rot, p0, c->rope_base);
            ops_rope_fwd(kr, nr, c->n_kv_head, (int)hd, c->n_rot, p0, c->rope_base);
            memcpy(k, kv_k(&snap->kv, l, 0), sizeof(float) * (size_t)(p0 * KVD));
            memcpy(v, kv_v(&snap->kv, l, 0), sizeof(float) * (size_t)(p0 * KVD));
            memcpy(k + p0 * KVD, kr, sizeof(float) * (size_t)(nr * KVD));
            memcpy(v + p0 * KVD, b->vr + r0 * KVD, sizeof(float) * (size_t)(nr * KVD));
            ops_attention_fwd(b->z + r0 * QD, b->att, q, k, v, nr, N, c->n_head, c->n_kv_head, (int)hd, p0, true,
                              NULL, pool);
        }
        if ((rc = lm_layer_attn_out_mlp(m, b->mm, l, b->x, b->xb, b->z, b->hb, b->hb2, R, NULL, 0, err))) return rc;
    }
    /* the head (final norm + unembedding) of each copy's last row, as one GEMM */
    const int64_t NL = at_least_min(b->n);
    for (int i = 0; i < b->n; i++)
        memcpy(b->last + (int64_t)i * D, b->x + (b->row0[i] + N - b->p0[i] - 1) * D, sizeof(float) * (size_t)D);
    memset(b->last + (int64_t)b->n * D, 0, sizeof(float) * (size_t)((NL - b->n) * D));
    ops_rmsnorm_fwd(b->lastn, NULL, b->last, m->w.output_norm_f32, NL, D, c->norm_eps);
    return mm_linear(b->mm, b->logits, b->lastn, NL, D, m->w.output, NULL, err);
}
