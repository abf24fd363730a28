#include "llama_random.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gguf.h"
#include "../core/quant.h"

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_u64(rng_t *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Box-Muller; one normal per call keeps the stream simple to reproduce. */
static double rng_normal(rng_t *r) {
    double u1 = ((double)(rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct {
    void **bufs;
    int n, cap;
} bufs_t;

static void *keep(bufs_t *b, size_t bytes) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        void **nb = realloc(b->bufs, sizeof(void *) * (size_t)cap);
        if (!nb) return NULL;
        b->bufs = nb;
        b->cap = cap;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p) b->bufs[b->n++] = p;
    return p;
}

/* Adds a tensor of rows x cols drawn as mean + std * N(0,1), stored in `type`. */
static err_code add(gguf_writer_t *w, bufs_t *b, rng_t *r, const char *name, int type, int64_t cols, int64_t rows,
                    double mean, double std, err_t *err) {
    const qt_traits *tr = qt_get(type);
    size_t row_bytes = qt_row_size(type, cols);
    if (!tr || !tr->from_float || row_bytes == 0)
        return err_set(err, ERR_UNSUPPORTED, "random model: cannot write %s as type %d with rows of %lld", name, type,
                       (long long)cols);
    float *row = malloc(sizeof(float) * (size_t)cols);
    unsigned char *data = keep(b, row_bytes * (size_t)rows);
    if (!row || !data) {
        free(row);
        return err_set(err, ERR_NOMEM, "random model: out of memory for %s", name);
    }
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) row[j] = (float)(mean + std * rng_normal(r));
        tr->from_float(row, data + (size_t)i * row_bytes, cols);
    }
    free(row);
    int64_t ne[2] = {cols, rows};
    return gguf_writer_add_tensor(w, name, type, rows > 1 ? 2 : 1, ne, data, row_bytes * (size_t)rows, err);
}

err_code lm_write_random(const char *path, const lm_random_spec *sp, err_t *err) {
    if (sp->dim <= 0 || sp->n_head <= 0 || sp->n_kv_head <= 0 || sp->dim % sp->n_head ||
        sp->n_head % sp->n_kv_head || sp->n_layer <= 0 || sp->hidden_dim <= 0 || sp->n_vocab <= 0)
        return err_set(err, ERR_ARG, "random model: inconsistent sizes");
    gguf_writer_t *w = gguf_writer_create();
    if (!w) return err_set(err, ERR_NOMEM, "random model: out of memory");
    bufs_t b = {0};
    rng_t r = {sp->seed};
    const int hd = sp->dim / sp->n_head;
    const int64_t D = sp->dim, H = sp->hidden_dim, QD = D, KD = (int64_t)sp->n_kv_head * hd;
    err_code rc = ERR_OK;
    char name[96];
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", "llava-mech random test model");
    gguf_writer_set_u32(w, "llama.context_length", (uint32_t)sp->n_ctx);
    gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)D);
    gguf_writer_set_u32(w, "llama.block_count", (uint32_t)sp->n_layer);
    gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)H);
    gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)hd);
    gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)sp->n_head);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)sp->n_kv_head);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", sp->norm_eps);
    gguf_writer_set_f32(w, "llama.rope.freq_base", sp->rope_base);
    const double sd = 1.0 / sqrt((double)D), sh = 1.0 / sqrt((double)H);
    if ((rc = add(w, &b, &r, "token_embd.weight", sp->type, D, sp->n_vocab, 0.0, sp->embd_std > 0 ? sp->embd_std : 1.0, err))) goto done;
    for (int l = 0; l < sp->n_layer && !rc; l++) {
        struct {
            const char *s;
            int64_t cols, rows;
            double mean, std;
            int f32;
        } t[] = {
            {"attn_norm.weight", D, 1, 1.0, 0.1, 1}, {"attn_q.weight", D, QD, 0.0, sd, 0},
            {"attn_k.weight", D, KD, 0.0, sd, 0},    {"attn_v.weight", D, KD, 0.0, sd, 0},
            {"attn_output.weight", QD, D, 0.0, sd, 0}, {"ffn_norm.weight", D, 1, 1.0, 0.1, 1},
            {"ffn_gate.weight", D, H, 0.0, sd, 0},   {"ffn_up.weight", D, H, 0.0, sd, 0},
            {"ffn_down.weight", H, D, 0.0, sh, 0},
        };
        for (size_t i = 0; i < sizeof t / sizeof *t && !rc; i++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, t[i].s);
            rc = add(w, &b, &r, name, t[i].f32 ? QT_F32 : sp->type, t[i].cols, t[i].rows, t[i].mean, t[i].std, err);
        }
    }
    if (!rc) rc = add(w, &b, &r, "output_norm.weight", QT_F32, D, 1, 1.0, 0.1, err);
    if (!rc && !sp->tied) rc = add(w, &b, &r, "output.weight", sp->type, D, sp->n_vocab, 0.0, sd, err);
    if (!rc) rc = gguf_writer_write(w, path, err);
done:
    for (int i = 0; i < b.n; i++) free(b.bufs[i]);
    free(b.bufs);
    gguf_writer_free(w);
    return rc;
}
