/* Method 4, occlusion (methods.md): a k x k block of image patches is occluded and
 * the drop in log p(w) is recorded; a patch's value is the mean drop over the blocks
 * that cover it. Two spaces:
 *   tokens  the block's LM-input embeddings are replaced by a baseline: one vector, or
 *           one per grid position (the shipped toy model's is the mean image token at
 *           each position), else zero. Nothing before the
 *           block changes, so each occluded copy resumes at the block's first position:
 *           the KV cache of everything before it is reused.
 *   pixels  the block's patches are painted with the mean colour in the model image
 *           (the u8 colour LLaVA pads with, int(image_mean * 255)) and re-encoded by the
 *           vision tower; every image token may change, so copies resume at the image.
 * Copies run occ_batch at a time through lm_batch (language/llama.h): each weight
 * matmul is one GEMM over the stacked suffixes of all copies. The clean reference
 * log p(w) is a copy in the first batch (resuming at T with nothing occluded), so the
 * drops compare numbers made by the same arithmetic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

typedef struct {
    int r0, c0, r1, c1; /* cells [r0, r1) x [c0, c1) */
} occ_block;

typedef struct {
    const ex_input *in;
    const ex_options *opt;
    const occ_block *blocks;
    int nb;
    int64_t s, n;
    float fill[3];      /* the mean colour, normalised as pp_normalize does */
    uint8_t fill_u8[3];
    float *pixels;      /* [3][S][S] scratch */
} occ_ctx;

static int64_t block_p0(const occ_ctx *o, const occ_block *b) {
    return o->opt->occ_space == EX_OCC_PIXELS ? o->s : o->s + (int64_t)b->r0 * o->in->grid_w + b->c0;
}

/* Edits a copy's input rows x (positions p0.. of the sequence) for block b. */
static err_code occlude(const occ_ctx *o, const occ_block *b, int64_t p0, float *x, err_t *err) {
    const ex_input *in = o->in;
    const int64_t D = in->lm->cfg.dim;
    if (o->opt->occ_space == EX_OCC_TOKENS) {
        for (int rr = b->r0; rr < b->r1; rr++)
            for (int cc = b->c0; cc < b->c1; cc++) {
                const int64_t cell = (int64_t)rr * in->grid_w + cc;
                float *row = x + (o->s + cell - p0) * D;
                const float *base = o->opt->baseline;
                if (base && o->opt->baseline_rows > 1) base += cell * D;
                if (base) memcpy(row, base, sizeof(float) * (size_t)D);
                else memset(row, 0, sizeof(float) * (size_t)D);
            }
        return ERR_OK;
    }
    const vit_config *vc = vit_get_config(in->vit);
    const int S = vc->image_size, ps = vc->patch_size;
    memcpy(o->pixels, in->pixels, sizeof(float) * 3 * (size_t)S * S);
    for (int ch = 0; ch < 3; ch++)
        for (int y = b->r0 * ps; y < b->r1 * ps; y++)
            for (int xx = b->c0 * ps; xx < b->c1 * ps; xx++) o->pixels[((size_t)ch * S + y) * S + xx] = o->fill[ch];
    /* p0 = s: the copy's first P rows are the image tokens */
    return vit_forward(in->vit, in->vst, in->st->mm, o->pixels, NULL, x, err);
}

static cJSON *json_box(const double b[4]) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(a, ex_json_number(b[i]));
    return a;
}

/* One run's record: its cells, the drop and, in pixel space, the painted boxes. */
static cJSON *run_json(const occ_ctx *o, const occ_block *b, float drop) {
    cJSON *j = cJSON_CreateObject();
    const int cells[4] = {b->r0, b->c0, b->r1, b->c1};
    cJSON_AddItemToObject(j, "cells", cJSON_CreateIntArray(cells, 4));
    cJSON_AddItemToObject(j, "drop", ex_json_number(drop));
    if (o->opt->occ_space == EX_OCC_PIXELS) {
        const int ps = vit_get_config(o->in->vit)->patch_size;
        const double mb[4] = {b->c0 * ps, b->r0 * ps, b->c1 * ps, b->r1 * ps};
        cJSON_AddItemToObject(j, "model_box", json_box(mb));
        double ub[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
        bool any = false;
        for (int rr = b->r0; o->in->geom && rr < b->r1; rr++)
            for (int cc = b->c0; cc < b->c1; cc++) {
                double cb[4];
                if (!pp_cell_box(o->in->geom, rr, cc, cb)) continue;
                any = true;
                ub[0] = fmin(ub[0], cb[0]), ub[1] = fmin(ub[1], cb[1]);
                ub[2] = fmax(ub[2], cb[2]), ub[3] = fmax(ub[3], cb[3]);
            }
        cJSON_AddItemToObject(j, "original_box", any ? json_box(ub) : cJSON_CreateNull());
    }
    return j;
}

err_code ex_occlusion(const ex_input *in, ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    const int gh = in->grid_h, gw = in->grid_w;
    const int64_t s = in->img_start, P = in->n_image, n = cap->snap.n_pos, V = in->lm->cfg.n_vocab;
    const int kb = opt->occ_block > 0 ? opt->occ_block : 1;
    const int stride = opt->occ_stride > 0 ? opt->occ_stride : kb;
    const int B = opt->occ_batch > 0 ? opt->occ_batch : EX_OCC_BATCH_DEFAULT;
    const bool pixels = opt->occ_space == EX_OCC_PIXELS;
    if (pixels) {
        if (!in->vit || !in->vst || !in->pixels)
            return err_set(err, ERR_ARG, "occlusion: pixel space needs the vision tower and the model's input pixels");
        const vit_config *vc = vit_get_config(in->vit);
        if (vc->grid != gh || vc->grid != gw || vc->n_patches != P || vc->d_out != in->lm->cfg.dim)
            return err_set(err, ERR_MISMATCH, "occlusion: the vision tower's %dx%d grid does not match the input's %dx%d",
                           vc->grid, vc->grid, gh, gw);
    }
    if (!pixels && opt->baseline && opt->baseline_rows > 1 && opt->baseline_rows != P)
        return err_set(err, ERR_MISMATCH, "occlusion: the baseline has %lld rows, one per image position needs %lld",
                       (long long)opt->baseline_rows, (long long)P);
    occ_ctx o = {.in = in, .opt = opt, .s = s, .n = n};
    const int max_blocks = ((gh + stride - 1) / stride) * ((gw + stride - 1) / stride);
    occ_block *blocks = malloc(sizeof(occ_block) * (size_t)max_blocks);
    float *count = calloc((size_t)P, sizeof(float)), *drops = calloc((size_t)max_blocks, sizeof(float));
    bool *ran = calloc((size_t)max_blocks, sizeof(bool));
    r->map = calloc((size_t)P, sizeof(float));
    lm_batch_t *bt = NULL;
    err_code rc = ERR_OK;
    if (!blocks || !count || !drops || !ran || !r->map) {
        rc = err_set(err, ERR_NOMEM, "occlusion: out of memory");
        goto done;
    }
    int nb = 0;
    for (int r0 = 0; r0 < gh; r0 += stride)
        for (int c0 = 0; c0 < gw; c0 += stride)
            blocks[nb++] = (occ_block){r0, c0, r0 + kb < gh ? r0 + kb : gh, c0 + kb < gw ? c0 + kb : gw};
    o.blocks = blocks;
    o.nb = nb;
    if (pixels) {
        const vit_config *vc = vit_get_config(in->vit);
        for (int ch = 0; ch < 3; ch++) {
            double v = (double)vc->image_mean[ch] * 255.0; /* LLaVA's pad colour: int(mean * 255) */
            o.fill_u8[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        img_t one = {.w = 1, .h = 1, .rgb = o.fill_u8};
        pp_normalize(&one, vc->image_mean, vc->image_std, o.fill);
        if (!(o.pixels = malloc(sizeof(float) * 3 * (size_t)vc->image_size * vc->image_size))) {
            rc = err_set(err, ERR_NOMEM, "occlusion: out of memory");
            goto done;
        }
    }
    /* copies: B occluded + the clean reference (1 row) in the first batch */
    if ((rc = lm_batch_create(&bt, in->lm, in->st->mm, B + 1, (int64_t)B * (n - s) + 1, n, err))) goto done;
    const int n_batches = (nb + B - 1) / B;
    const int n_run = opt->occ_sample > 0 && opt->occ_sample < n_batches ? opt->occ_sample : n_batches;
    int64_t rows_run = 0, rows_full = 1;
    for (int i = 0; i < nb; i++) rows_full += n - block_p0(&o, &blocks[i]);
    float logp_clean = NAN;
    int runs = 0;
    for (int k = 0; k < n_run; k++) {
        /* evenly spread batches when sampling: k * n_batches / n_run */
        const int bi = (int)((int64_t)k * n_batches / n_run);
        const int i0 = bi * B, i1 = i0 + B < nb ? i0 + B : nb;
        if ((rc = lm_batch_begin(bt, &cap->snap, 0, err))) goto done;
        const bool clean = k == 0;
        if (clean && !lm_batch_add(bt, n - 1, err)) {
            rc = ERR_RANGE;
            goto done;
        }
        for (int i = i0; i < i1; i++) {
            const int64_t p0 = block_p0(&o, &blocks[i]);
            float *x = lm_batch_add(bt, p0, err);
            if (!x) {
                rc = ERR_RANGE;
                goto done;
            }
            if ((rc = occlude(&o, &blocks[i], p0, x, err))) goto done;
        }
        if ((rc = lm_batch_run(bt, err))) goto done;
        if (clean) logp_clean = ex_logp_of(lm_batch_logits(bt, 0), V, cap->target);
        for (int i = i0; i < i1; i++) {
            const float drop = logp_clean - ex_logp_of(lm_batch_logits(bt, (clean ? 1 : 0) + i - i0), V, cap->target);
            const occ_block *b = &blocks[i];
            drops[i] = drop;
            ran[i] = true;
            rows_run += n - block_p0(&o, b);
            for (int rr = b->r0; rr < b->r1; rr++)
                for (int cc = b->c0; cc < b->c1; cc++) {
                    r->map[rr * gw + cc] += drop;
                    count[rr * gw + cc] += 1;
                }
            runs++;
        }
        if (clean) rows_run += 1;
    }
    for (int64_t j = 0; j < P; j++) r->map[j] = count[j] > 0 ? r->map[j] / count[j] : 0.0f;
    const char *baseline = opt->baseline_name ? opt->baseline_name : (opt->baseline ? "given" : "zero");
    if (pixels)
        snprintf(r->agg, sizeof r->agg, "%dx%d blocks of pixels, stride %d, fill (%d,%d,%d), re-encoded", kb, kb,
                 stride, o.fill_u8[0], o.fill_u8[1], o.fill_u8[2]);
    else
        snprintf(r->agg, sizeof r->agg, "%dx%d blocks, stride %d, baseline %s", kb, kb, stride, baseline);
    if (n_run < n_batches)
        snprintf(r->agg + strlen(r->agg), sizeof r->agg - strlen(r->agg), "; PARTIAL: %d of %d batches", n_run,
                 n_batches);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition",
                            pixels ? "log p(w) before - after painting a block of patches with the mean colour in the "
                                     "model image and re-encoding it; mean over the blocks covering each patch"
                                   : "log p(w) before - after replacing the LM-input embeddings of a block of image "
                                     "tokens by the baseline; mean over the blocks covering each patch");
    cJSON_AddStringToObject(r->json, "space", ex_occ_space_name(opt->occ_space));
    cJSON_AddNumberToObject(r->json, "block", kb);
    cJSON_AddNumberToObject(r->json, "stride", stride);
    if (pixels) {
        const int rgb[3] = {o.fill_u8[0], o.fill_u8[1], o.fill_u8[2]};
        cJSON_AddItemToObject(r->json, "fill_rgb", cJSON_CreateIntArray(rgb, 3));
    } else {
        cJSON_AddStringToObject(r->json, "baseline", baseline);
    }
    cJSON_AddNumberToObject(r->json, "batch", B);
    cJSON_AddNumberToObject(r->json, "batches", n_batches);
    cJSON_AddNumberToObject(r->json, "batches_run", n_run);
    cJSON_AddBoolToObject(r->json, "partial", n_run < n_batches);
    /* rows = positions recomputed through every layer; the cost scales with them */
    cJSON_AddNumberToObject(r->json, "rows_run", (double)rows_run);
    cJSON_AddNumberToObject(r->json, "rows_full_sweep", (double)rows_full);
    cJSON_AddNumberToObject(r->json, "forward_runs", runs);
    cJSON_AddItemToObject(r->json, "logp_clean", ex_json_number(logp_clean));
    cJSON *jr = cJSON_AddArrayToObject(r->json, "runs");
    for (int i = 0; i < nb; i++)
        if (ran[i]) cJSON_AddItemToArray(jr, run_json(&o, &blocks[i], drops[i]));
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
done:
    if (rc) {
        free(r->map);
        r->map = NULL;
    }
    lm_batch_free(bt);
    free(o.pixels);
    free(blocks);
    free(count);
    free(drops);
    free(ran);
    return rc;
}
