/* train_ckpt.c — trainer checkpoints (contract in train.h).
 *
 * Layout (little-endian): "LMTRCKPT", u32 version, u32 n_fields, n_fields i64 header
 * fields (model config, options that must match, step, n_params), then parameters,
 * first and second AdamW moments (f32 each) and a 64-bit FNV-1a of everything
 * before it. Written to PATH.tmp and renamed, so a crash never leaves a torn file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_impl.h"

#define CKPT_MAGIC "LMTRCKPT"
#define CKPT_VERSION 1u

enum {
    H_IMAGE, H_PATCH, H_VW, H_VB, H_VH, H_VF, H_VEPS, H_D, H_NL, H_NH, H_NKV, H_HD, H_FFN, H_NV, H_MAXSEQ,
    H_RMSEPS, H_ROPE, H_BATCH, H_SEED, H_DSEED, H_DATAN, H_CURR, H_STEP, H_NPARAMS, H_COUNT
};

static int64_t f2i(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (int64_t)u;
}

static void header_fill(const tr_trainer *t, int64_t *h) {
    const tm_config *c = &t->model.cfg;
    h[H_IMAGE] = c->image_size, h[H_PATCH] = c->patch_size, h[H_VW] = c->v_width, h[H_VB] = c->v_blocks;
    h[H_VH] = c->v_heads, h[H_VF] = c->v_ffn, h[H_VEPS] = f2i(c->v_eps), h[H_D] = c->d, h[H_NL] = c->n_layer;
    h[H_NH] = c->n_head, h[H_NKV] = c->n_kv_head, h[H_HD] = c->head_dim, h[H_FFN] = c->ffn, h[H_NV] = c->n_vocab;
    h[H_MAXSEQ] = c->max_seq, h[H_RMSEPS] = f2i(c->rms_eps), h[H_ROPE] = f2i(c->rope_base);
    h[H_BATCH] = t->opt.batch, h[H_SEED] = (int64_t)t->opt.seed, h[H_DSEED] = (int64_t)t->opt.data_seed;
    h[H_DATAN] = t->opt.data_n, h[H_CURR] = t->opt.curriculum, h[H_STEP] = t->step, h[H_NPARAMS] = (int64_t)t->model.n_params;
}

static const char *const header_names[H_COUNT] = {
    "image_size", "patch_size", "v_width", "v_blocks", "v_heads", "v_ffn", "v_eps", "d", "n_layer", "n_head",
    "n_kv_head", "head_dim", "ffn", "n_vocab", "max_seq", "rms_eps", "rope_base", "batch", "seed", "data_seed",
    "data_n", "curriculum", "step", "n_params"};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

static bool write_all(FILE *f, const void *p, size_t n, uint64_t *h) {
    *h = fnv1a(*h, p, n);
    return fwrite(p, 1, n, f) == n;
}

err_code tr_checkpoint_save(const tr_trainer *t, const char *path, err_t *err) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        err_code rc = err_set(err, ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int64_t h[H_COUNT];
    header_fill(t, h);
    uint32_t ver = CKPT_VERSION, nf = H_COUNT;
    uint64_t sum = 0xCBF29CE484222325ull;
    size_t np = t->model.n_params * sizeof(float);
    bool ok = write_all(f, CKPT_MAGIC, 8, &sum) && write_all(f, &ver, 4, &sum) && write_all(f, &nf, 4, &sum) &&
              write_all(f, h, sizeof h, &sum) && write_all(f, t->model.params, np, &sum) &&
              write_all(f, t->m, np, &sum) && write_all(f, t->v, np, &sum);
    ok = ok && fwrite(&sum, 8, 1, f) == 1;
    ok = (fflush(f) == 0) && ok;
    ok = ok && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        err_code rc = err_set(err, ERR_IO, "%s: cannot write checkpoint: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return ERR_OK;
}

static bool read_all(FILE *f, void *p, size_t n, uint64_t *h) {
    if (fread(p, 1, n, f) != n) return false;
    *h = fnv1a(*h, p, n);
    return true;
}

err_code tr_checkpoint_load(tr_trainer *t, const char *path, err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char magic[8];
    uint32_t ver = 0, nf = 0;
    int64_t h[H_COUNT], want[H_COUNT];
    uint64_t sum = 0xCBF29CE484222325ull, stored = 0;
    err_code rc = ERR_OK;
    if (!read_all(f, magic, 8, &sum) || memcmp(magic, CKPT_MAGIC, 8) != 0) {
        rc = err_set(err, ERR_FORMAT, "%s: not a llava-mech trainer checkpoint (bad magic)", path);
        goto done;
    }
    if (!read_all(f, &ver, 4, &sum) || !read_all(f, &nf, 4, &sum) || ver != CKPT_VERSION || nf != H_COUNT) {
        rc = err_set(err, ERR_FORMAT, "%s: checkpoint version %u with %u fields, expected %u with %d", path, ver, nf,
                     CKPT_VERSION, H_COUNT);
        goto done;
    }
    if (!read_all(f, h, sizeof h, &sum)) {
        rc = err_set(err, ERR_FORMAT, "%s: truncated header", path);
        goto done;
    }
    header_fill(t, want);
    for (int i = 0; i < H_COUNT; i++) {
        if (i == H_STEP) continue;
        if (h[i] != want[i]) {
            rc = err_set(err, ERR_MISMATCH, "%s: checkpoint %s is %lld, this run has %lld", path, header_names[i],
                         (long long)h[i], (long long)want[i]);
            goto done;
        }
    }
    size_t np = t->model.n_params * sizeof(float);
    if (!read_all(f, t->model.params, np, &sum) || !read_all(f, t->m, np, &sum) || !read_all(f, t->v, np, &sum) ||
        fread(&stored, 8, 1, f) != 1) {
        rc = err_set(err, ERR_FORMAT, "%s: truncated checkpoint data", path);
        goto done;
    }
    if (stored != sum || fgetc(f) != EOF) {
        rc = err_set(err, ERR_FORMAT, "%s: checkpoint checksum mismatch or trailing bytes (corrupt file)", path);
        goto done;
    }
    t->step = h[H_STEP];
done:
    fclose(f);
    if (rc) { /* never leave a half-loaded state behind */
        tm_init_params_ex(&t->model, t->opt.seed, t->opt.init);
        memset(t->m, 0, t->model.n_params * sizeof(float));
        memset(t->v, 0, t->model.n_params * sizeof(float));
    }
    return rc;
}
