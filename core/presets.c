/* presets.c — the preset table and the random LLaVA model writers (see presets.h). */
#include "presets.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

static const preset_t presets[] = {
    {"tiny", "a few MB: ViT 224px/16 width 64, 2 blocks; LLaMA 2 layers, width 64, 4/2 heads, vocab 512",
     224, 16, 64, 2, 4, 256, 64, false, 1e-5f, 512, 64, 2, 4, 2, 192, 512, 1e-5f, 10000.0f},
    /* rows of 256 and 768 inputs, so every LM matrix takes Q4_K (tiny's fall back to Q4_0) and
     * the 16-row decode layouts (tests/llamacpp compares these with llama.cpp) */
    {"small", "~2 MB in Q4_K: the tiny ViT; LLaMA 2 layers, width 256, 8/2 heads, FFN 768, vocab 1024",
     224, 16, 64, 2, 4, 256, 64, false, 1e-5f, 512, 256, 2, 8, 2, 768, 1024, 1e-5f, 10000.0f},
    {"tinyllama-clip-b", "CLIP ViT-B/16 224px (11 stored blocks) + TinyLlama-1.1B (22 layers, GQA 32/4)",
     224, 16, 768, 11, 12, 3072, 512, false, 1e-5f, 2048, 2048, 22, 32, 4, 5632, 32000, 1e-5f, 10000.0f},
    {"llava-1.5-7b", "CLIP ViT-L/14 336px (23 stored blocks) + LLaMA-7B (32 layers, 4096 wide, FFN 11008)",
     336, 14, 1024, 23, 16, 4096, 768, false, 1e-5f, 4096, 4096, 32, 32, 32, 11008, 32000, 1e-5f, 10000.0f},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

/* CLIP's preprocessing constants (OpenAI CLIP, also the legacy converter's defaults). */
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* Token types as llama.cpp's llama_token_type. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

#define INIT_SCALE 0.02f

const preset_t *preset_find(const char *name) {
    for (int i = 0; name && i < N_PRESETS; i++)
        if (!strcmp(presets[i].name, name)) return &presets[i];
    return NULL;
}

const preset_t *preset_at(int i) { return i >= 0 && i < N_PRESETS ? &presets[i] : NULL; }

int64_t preset_lm_n_tensors(const preset_t *p) { return 3 + 9 * (int64_t)p->n_layer; }
int64_t preset_mmproj_n_tensors(const preset_t *p) { return 9 + 16 * (int64_t)p->v_blocks; }

int preset_weight_type(int type, int64_t ne0) {
    while (!qt_row_size(type, ne0)) {
        if (type == QT_Q4_K) type = QT_Q4_0;
        else if (type == QT_F16 || type == QT_F32) return QT_F32;
        else type = QT_F16;
    }
    return type;
}

int preset_file_type(int type) {
    /* enum llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7,
     * MOSTLY_Q4_K_S 14 (mostly Q4_K, which is what a uniform Q4_K file is). */
    switch (type) {
    case QT_F32: return 0;
    case QT_F16: return 1;
    case QT_Q4_0: return 2;
    case QT_Q8_0: return 7;
    case QT_Q4_K: return 14;
    default: return -1;
    }
}

/* ---- deterministic weights ---- */

typedef enum { GEN_RANDOM, GEN_ONES, GEN_ZEROS } gen_kind;

typedef struct {
    uint64_t key;      /* seed mixed with the tensor's index */
    gen_kind kind;
    int type;
    int64_t ne0;
    size_t row_bytes;
    int rope_head_dim; /* > 0: rows are q/k rows to permute into GGUF's RoPE order */
    float *row;        /* scratch: row_stride floats per thread */
    int64_t row_stride;
    pool_t *pool;
} gen_t;

/* splitmix64 (Steele, Lea, Flood 2014): a full-period 64-bit generator whose output
 * function also serves to derive independent per-row seeds. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Irwin-Hall: the sum of four U(0,1) has mean 2 and variance 1/3, so
 * (sum - 2) * sqrt(3) is close to N(0,1) and never beyond +-2*sqrt(3). One 64-bit
 * draw gives the four 16-bit uniforms. */
static void gen_row(float *dst, int64_t n, uint64_t key, uint64_t row) {
    uint64_t s = key ^ (row * 0xD1B54A32D192ED03ull);
    splitmix64(&s);
    const float k = 1.7320508f / 65536.0f * INIT_SCALE;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&s);
        uint32_t sum = (uint32_t)(r & 0xFFFF) + (uint32_t)((r >> 16) & 0xFFFF) + (uint32_t)((r >> 32) & 0xFFFF) +
                       (uint32_t)(r >> 48);
        /* (sum + 2) / 65536 is the sum of the four centred uniforms; minus 2 centres it. */
        dst[i] = ((float)sum + 2.0f - 131072.0f) * k;
    }
}

/* convert_hf_to_gguf.py permutes q/k rows per head: HF row j*(d/2) + i (j = 0 first
 * half, 1 second half of the head) becomes GGUF row 2i + j, so rotary pairs are
 * adjacent. We generate in HF order and write in GGUF order. */
static int64_t hf_row_of(int64_t r, int hd) {
    int64_t h = r / hd, w = r % hd;
    return h * hd + (w % 2) * (hd / 2) + w / 2;
}

typedef struct {
    const gen_t *g;
    int64_t row0, n_rows;
    unsigned char *dst;
} fill_task;

static void gen_rows(void *arg, int ith, int nth) {
    const fill_task *task = arg;
    const gen_t *g = task->g;
    long lo, hi;
    pool_split((long)task->n_rows, ith, nth, &lo, &hi);
    float *row = g->row + (size_t)ith * (size_t)g->row_stride;
    for (int64_t r = task->row0 + lo; r < task->row0 + hi; r++) {
        if (g->kind == GEN_RANDOM) {
            int64_t src = g->rope_head_dim ? hf_row_of(r, g->rope_head_dim) : r;
            gen_row(row, g->ne0, g->key, (uint64_t)src);
        } else {
            float v = g->kind == GEN_ONES ? 1.0f : 0.0f;
            for (int64_t i = 0; i < g->ne0; i++) row[i] = v;
        }
        unsigned char *d = task->dst + (size_t)(r - task->row0) * g->row_bytes;
        if (g->type == QT_F32) memcpy(d, row, g->row_bytes);
        else qt_get(g->type)->from_float(row, d, g->ne0);
    }
}

static err_code gen_fill(void *user, int64_t row0, int64_t n_rows, void *dst, err_t *err) {
    (void)err;
    const gen_t *g = user;
    fill_task task = {g, row0, n_rows, dst};
    pool_run(g->pool, gen_rows, &task);
    return ERR_OK;
}

/* ---- model building ---- */

typedef struct {
    gguf_writer_t *w;
    gen_t *gens;
    int64_t n, cap;
    uint64_t seed;
    float *row;
    int64_t row_cap;
    pool_t *pool;
    err_t *err;
} build_t;

static err_code add(build_t *b, const char *name, int type, int n_dims, const int64_t *ne, gen_kind kind,
                    int rope_head_dim) {
    if (b->n == b->cap) return err_set(b->err, ERR_RANGE, "make-model: more tensors than planned (%s)", name);
    if (!qt_get(type) || (type != QT_F32 && !qt_get(type)->from_float))
        return err_set(b->err, ERR_UNSUPPORTED, "make-model: tensor %s: cannot write type %d", name, type);
    gen_t *g = &b->gens[b->n];
    uint64_t s = b->seed ^ ((uint64_t)(b->n + 1) * 0xA0761D6478BD642Full);
    *g = (gen_t){splitmix64(&s), kind, type, ne[0], qt_row_size(type, ne[0]), rope_head_dim, b->row, b->row_cap,
                 b->pool};
    if (ne[0] > b->row_cap) return err_set(b->err, ERR_RANGE, "make-model: tensor %s: row longer than scratch", name);
    err_code rc = gguf_writer_add_tensor_fn(b->w, name, type, n_dims, ne, gen_fill, g, b->err);
    if (!rc) b->n++;
    return rc;
}

static err_code add2(build_t *b, const char *name, int type, int64_t ne0, int64_t ne1, gen_kind kind) {
    return add(b, name, preset_weight_type(type, ne0), 2, (int64_t[]){ne0, ne1}, kind, 0);
}

static err_code add1(build_t *b, const char *name, int64_t ne0, gen_kind kind) {
    return add(b, name, QT_F32, 1, (int64_t[]){ne0}, kind, 0);
}

static err_code build_begin(build_t *b, int64_t n_tensors, int64_t max_ne0, uint64_t seed, pool_t *pool,
                            err_t *err) {
    memset(b, 0, sizeof *b);
    b->err = err;
    b->seed = seed;
    b->cap = n_tensors;
    b->row_cap = max_ne0;
    b->pool = pool;
    b->w = gguf_writer_create();
    b->gens = calloc((size_t)n_tensors, sizeof *b->gens);
    int nth = pool ? pool_size(pool) : 1;
    b->row = malloc((size_t)max_ne0 * (size_t)nth * sizeof *b->row);
    if (!b->w || !b->gens || !b->row) return err_set(err, ERR_NOMEM, "make-model: out of memory");
    return ERR_OK;
}

static void build_end(build_t *b) {
    gguf_writer_free(b->w);
    free(b->gens);
    free(b->row);
}

static err_code check_keys(err_code rc, const char *path, err_t *err) {
    if (rc) return err_set(err, rc, "%s: could not set metadata (%s)", path, err_code_name(rc));
    return ERR_OK;
}

static err_code finish(build_t *b, const preset_opts *o, int64_t expect, const char *path) {
    if (b->n != expect)
        return err_set(b->err, ERR_RANGE, "%s: %" PRId64 " tensors planned, %" PRId64 " added", path, expect, b->n);
    gguf_writer_set_progress(b->w, o->progress, o->progress_user);
    return gguf_writer_write(b->w, path, b->err);
}

err_code preset_write_mmproj(const preset_t *p, const preset_opts *o, const char *path, err_t *err) {
    return preset_write_mmproj_pool(p, o, NULL, path, err);
}

err_code preset_write_lm(const preset_t *p, const preset_opts *o, const char *path, err_t *err) {
    return preset_write_lm_pool(p, o, NULL, path, err);
}

err_code preset_write_mmproj_pool(const preset_t *p, const preset_opts *o, pool_t *pool, const char *path,
                                  err_t *err) {
    if (o->mmproj_type != QT_F16 && o->mmproj_type != QT_F32)
        return err_set(err, ERR_ARG, "%s: mmproj type must be f16 or f32", path);
    build_t b;
    int64_t W = p->v_width, F = p->v_ffn, E = p->n_embd, P = p->patch_size;
    int64_t n_pos = (int64_t)(p->image_size / p->patch_size) * (p->image_size / p->patch_size) + 1;
    int64_t max0 = W > F ? W : F;
    if (E > max0) max0 = E;
    err_code rc = build_begin(&b, preset_mmproj_n_tensors(p), max0, o->seed ^ 0x6D6D70726F6Aull, pool, err);
    if (rc) {
        build_end(&b);
        return rc;
    }
    gguf_writer_t *w = b.w;
    int t = o->mmproj_type;
    char desc[160];
    snprintf(desc, sizeof desc, "image encoder for LLaVA (random weights, llava-mech preset %s, seed %" PRIu64 ")",
             p->name, o->seed);
    rc = gguf_writer_set_str(w, "general.architecture", "clip");
    if (!rc) rc = gguf_writer_set_bool(w, "clip.has_text_encoder", false);
    if (!rc) rc = gguf_writer_set_bool(w, "clip.has_vision_encoder", true);
    if (!rc) rc = gguf_writer_set_bool(w, "clip.has_llava_projector", true);
    if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", t == QT_F16 ? 1 : 0);
    if (!rc) rc = gguf_writer_set_str(w, "general.name", p->name);
    if (!rc) rc = gguf_writer_set_str(w, "general.description", desc);
    if (!rc) rc = gguf_writer_set_str(w, "clip.projector_type", "mlp");
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.image_size", (uint32_t)p->image_size);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.patch_size", (uint32_t)p->patch_size);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.embedding_length", (uint32_t)W);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)F);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.projection_dim", (uint32_t)p->v_proj_dim);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.attention.head_count", (uint32_t)p->v_heads);
    if (!rc) rc = gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", p->v_eps);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.block_count", (uint32_t)p->v_blocks);
    if (!rc) rc = gguf_writer_set_arr_f32(w, "clip.vision.image_mean", clip_mean, 3);
    if (!rc) rc = gguf_writer_set_arr_f32(w, "clip.vision.image_std", clip_std, 3);
    if (!rc) rc = gguf_writer_set_bool(w, "clip.use_gelu", p->use_gelu);
    rc = check_keys(rc, path, err);

    /* Projector first, as the legacy converter adds it before the tower. */
    if (!rc) rc = add2(&b, "mm.0.weight", t, W, E, GEN_RANDOM);
    if (!rc) rc = add1(&b, "mm.0.bias", E, GEN_RANDOM);
    if (!rc) rc = add2(&b, "mm.2.weight", t, E, E, GEN_RANDOM);
    if (!rc) rc = add1(&b, "mm.2.bias", E, GEN_RANDOM);
    if (!rc) rc = add1(&b, "v.class_embd", W, GEN_RANDOM);
    /* Conv kernel [out=W][in=3][kh][kw]; ggml's conv weights are always F16. */
    if (!rc) rc = add(&b, "v.patch_embd.weight", QT_F16, 4, (int64_t[]){P, P, 3, W}, GEN_RANDOM, 0);
    if (!rc) rc = add2(&b, "v.position_embd.weight", t, W, n_pos, GEN_RANDOM);
    if (!rc) rc = add1(&b, "v.pre_ln.weight", W, GEN_ONES);
    if (!rc) rc = add1(&b, "v.pre_ln.bias", W, GEN_ZEROS);
    char name[64];
    for (int l = 0; !rc && l < p->v_blocks; l++) {
        static const char *const attn[4] = {"attn_k", "attn_v", "attn_q", "attn_out"};
        for (int k = 0; !rc && k < 4; k++) {
            snprintf(name, sizeof name, "v.blk.%d.%s.weight", l, attn[k]);
            rc = add2(&b, name, t, W, W, GEN_RANDOM);
            snprintf(name, sizeof name, "v.blk.%d.%s.bias", l, attn[k]);
            if (!rc) rc = add1(&b, name, W, GEN_RANDOM);
        }
        snprintf(name, sizeof name, "v.blk.%d.ln1.weight", l);
        if (!rc) rc = add1(&b, name, W, GEN_ONES);
        snprintf(name, sizeof name, "v.blk.%d.ln1.bias", l);
        if (!rc) rc = add1(&b, name, W, GEN_ZEROS);
        /* fc1 (W -> F) under the legacy name ffn_down, fc2 (F -> W) as ffn_up. */
        snprintf(name, sizeof name, "v.blk.%d.ffn_down.weight", l);
        if (!rc) rc = add2(&b, name, t, W, F, GEN_RANDOM);
        snprintf(name, sizeof name, "v.blk.%d.ffn_down.bias", l);
        if (!rc) rc = add1(&b, name, F, GEN_RANDOM);
        snprintf(name, sizeof name, "v.blk.%d.ffn_up.weight", l);
        if (!rc) rc = add2(&b, name, t, F, W, GEN_RANDOM);
        snprintf(name, sizeof name, "v.blk.%d.ffn_up.bias", l);
        if (!rc) rc = add1(&b, name, W, GEN_RANDOM);
        snprintf(name, sizeof name, "v.blk.%d.ln2.weight", l);
        if (!rc) rc = add1(&b, name, W, GEN_ONES);
        snprintf(name, sizeof name, "v.blk.%d.ln2.bias", l);
        if (!rc) rc = add1(&b, name, W, GEN_ZEROS);
    }
    if (!rc) rc = finish(&b, o, preset_mmproj_n_tensors(p), path);
    build_end(&b);
    return rc;
}

/* ---- vocabulary ---- */

typedef struct {
    char *buf;
    const char **pieces;
    size_t *lens;
    float *scores;
    int32_t *types;
} vocab_t;

static void vocab_free(vocab_t *v) {
    free(v->buf);
    free(v->pieces);
    free(v->lens);
    free(v->scores);
    free(v->types);
}

/* <unk>, <s>, </s>, <0x00>..<0xFF>, then "▁" and, for L = 1, 2, ..., every L-letter
 * string over a..z with and without the "▁" (U+2581, SentencePiece's space) prefix,
 * until n pieces exist. All unique; scores fall with the index (shorter pieces are
 * preferred merges). */
static err_code vocab_build(vocab_t *v, int n, err_t *err) {
    memset(v, 0, sizeof *v);
    if (n < 260) return err_set(err, ERR_ARG, "make-model: vocabulary of %d is smaller than 260", n);
    size_t cap = (size_t)n * 16;
    v->buf = malloc(cap);
    v->pieces = malloc((size_t)n * sizeof *v->pieces);
    v->lens = malloc((size_t)n * sizeof *v->lens);
    v->scores = malloc((size_t)n * sizeof *v->scores);
    v->types = malloc((size_t)n * sizeof *v->types);
    if (!v->buf || !v->pieces || !v->lens || !v->scores || !v->types)
        return err_set(err, ERR_NOMEM, "make-model: out of memory for the vocabulary");
    size_t used = 0;
    int k = 0;
#define PUSH(str, len, type, score)                          \
    do {                                                     \
        memcpy(v->buf + used, (str), (len));                 \
        v->pieces[k] = v->buf + used;                        \
        v->lens[k] = (len);                                  \
        v->types[k] = (type);                                \
        v->scores[k] = (score);                              \
        used += (len);                                       \
        k++;                                                 \
    } while (0)
    PUSH("<unk>", 5, TT_UNKNOWN, 0.0f);
    PUSH("<s>", 3, TT_CONTROL, 0.0f);
    PUSH("</s>", 4, TT_CONTROL, 0.0f);
    for (int byte = 0; byte < 256; byte++) {
        char tmp[8];
        snprintf(tmp, sizeof tmp, "<0x%02X>", byte);
        PUSH(tmp, 6, TT_BYTE, 0.0f);
    }
    PUSH("\xe2\x96\x81", 3, TT_NORMAL, -1.0f);
    for (int L = 1; k < n && L <= 8; L++) {
        long combos = 1;
        for (int i = 0; i < L; i++) combos *= 26;
        for (long c = 0; c < combos && k < n; c++) {
            char s[16] = "\xe2\x96\x81";
            long x = c;
            for (int i = L - 1; i >= 0; i--, x /= 26) s[3 + i] = (char)('a' + x % 26);
            PUSH(s, (size_t)(3 + L), TT_NORMAL, -(float)k);
            if (k < n) PUSH(s + 3, (size_t)L, TT_NORMAL, -(float)k);
        }
    }
#undef PUSH
    return ERR_OK;
}

err_code preset_write_lm_pool(const preset_t *p, const preset_opts *o, pool_t *pool, const char *path, err_t *err) {
    int t = o->lm_type;
    if (preset_file_type(t) < 0 || !qt_get(t) || (t != QT_F32 && !qt_get(t)->from_float))
        return err_set(err, ERR_UNSUPPORTED, "%s: cannot write LM weights of type %d (f32, f16, q8_0, q4_0, q4_k)",
                       path, t);
    int64_t E = p->n_embd, F = p->n_ff, V = p->n_vocab, hd = p->n_embd / p->n_head;
    int64_t kv = hd * p->n_head_kv;
    vocab_t voc;
    err_code rc = vocab_build(&voc, p->n_vocab, err);
    if (rc) {
        vocab_free(&voc);
        return rc;
    }
    build_t b;
    rc = build_begin(&b, preset_lm_n_tensors(p), E > F ? E : F, o->seed ^ 0x6C6C616D61ull, pool, err);
    gguf_writer_t *w = b.w;
    if (!rc) {
        rc = gguf_writer_set_str(w, "general.architecture", "llama");
        if (!rc) rc = gguf_writer_set_str(w, "general.name", p->name);
        if (!rc) rc = gguf_writer_set_u32(w, "llama.block_count", (uint32_t)p->n_layer);
        if (!rc) rc = gguf_writer_set_u32(w, "llama.context_length", (uint32_t)p->ctx);
        if (!rc) rc = gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)E);
        if (!rc) rc = gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)F);
        if (!rc) rc = gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)p->n_head);
        if (!rc) rc = gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)p->n_head_kv);
        if (!rc) rc = gguf_writer_set_f32(w, "llama.rope.freq_base", p->rope_base);
        if (!rc) rc = gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", p->rms_eps);
        if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", (uint32_t)preset_file_type(t));
        if (!rc) rc = gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)V);
        if (!rc) rc = gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)hd);
        if (!rc) rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        if (!rc) rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", voc.pieces, voc.lens, (uint64_t)V);
        if (!rc) rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", voc.scores, (uint64_t)V);
        if (!rc) rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", voc.types, (uint64_t)V);
        if (!rc) rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        if (!rc) rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
        if (!rc) rc = gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        if (!rc) rc = gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
        if (!rc) rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
        if (!rc) rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
        if (!rc && t != QT_F32 && t != QT_F16) rc = gguf_writer_set_u32(w, "general.quantization_version", 2);
        rc = check_keys(rc, path, err);
    }
    if (!rc) rc = add2(&b, "token_embd.weight", t, E, V, GEN_RANDOM);
    char name[64];
    for (int l = 0; !rc && l < p->n_layer; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        rc = add1(&b, name, E, GEN_ONES);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        if (!rc) rc = add(&b, name, preset_weight_type(t, E), 2, (int64_t[]){E, E}, GEN_RANDOM, (int)hd);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        if (!rc) rc = add(&b, name, preset_weight_type(t, E), 2, (int64_t[]){E, kv}, GEN_RANDOM, (int)hd);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        if (!rc) rc = add2(&b, name, t, E, kv, GEN_RANDOM);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
        if (!rc) rc = add2(&b, name, t, E, E, GEN_RANDOM);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        if (!rc) rc = add1(&b, name, E, GEN_ONES);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
        if (!rc) rc = add2(&b, name, t, E, F, GEN_RANDOM);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        if (!rc) rc = add2(&b, name, t, E, F, GEN_RANDOM);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        if (!rc) rc = add2(&b, name, t, F, E, GEN_RANDOM);
    }
    if (!rc) rc = add1(&b, "output_norm.weight", E, GEN_ONES);
    if (!rc) rc = add2(&b, "output.weight", t, E, V, GEN_RANDOM);
    if (!rc) rc = finish(&b, o, preset_lm_n_tensors(p), path);
    build_end(&b);
    vocab_free(&voc);
    return rc;
}
