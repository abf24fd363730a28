/* Method 4, occlusion: the LM-input embedding of a k x k block of image tokens is
 * replaced by a baseline vector (the model's mean image embedding when shipped, else
 * zero) and the drop in log p(w) is recorded; a patch's value is the mean drop over
 * the blocks that cover it. The text before the image is unchanged, so each run
 * resumes from the snapshot at layer 0 and the block's first position: the KV cache
 * of everything before it is reused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

err_code ex_occlusion(const ex_input *in, ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    const int gh = in->grid_h, gw = in->grid_w, D = cap->dim;
    const int64_t s = in->img_start, P = in->n_image;
    const int kb = opt->occ_block > 0 ? opt->occ_block : 1;
    const int stride = opt->occ_stride > 0 ? opt->occ_stride : kb;
    float *saved = malloc(sizeof(float) * (size_t)kb * kb * D);
    float *count = calloc((size_t)P, sizeof(float));
    r->map = calloc((size_t)P, sizeof(float));
    if (!saved || !count || !r->map) {
        free(saved), free(count);
        return err_set(err, ERR_NOMEM, "occlusion: out of memory");
    }
    err_code rc = ERR_OK;
    int runs = 0;
    for (int r0 = 0; r0 < gh && !rc; r0 += stride) {
        for (int c0 = 0; c0 < gw && !rc; c0 += stride) {
            int r1 = r0 + kb < gh ? r0 + kb : gh, c1 = c0 + kb < gw ? c0 + kb : gw;
            int m = 0;
            for (int rr = r0; rr < r1; rr++)
                for (int cc = c0; cc < c1; cc++, m++) {
                    float *x = lm_snapshot_resid(&cap->snap, 0, s + (int64_t)rr * gw + cc);
                    memcpy(saved + (size_t)m * D, x, sizeof(float) * (size_t)D);
                    if (opt->baseline) memcpy(x, opt->baseline, sizeof(float) * (size_t)D);
                    else memset(x, 0, sizeof(float) * (size_t)D);
                }
            rc = lm_resume(in->st, &cap->snap, 0, s + (int64_t)r0 * gw + c0, NULL, err);
            m = 0;
            for (int rr = r0; rr < r1; rr++)
                for (int cc = c0; cc < c1; cc++, m++)
                    memcpy(lm_snapshot_resid(&cap->snap, 0, s + (int64_t)rr * gw + cc), saved + (size_t)m * D,
                           sizeof(float) * (size_t)D);
            if (rc) break;
            float drop = cap->logp_target - ex_logp_of(lm_state_logits(in->st), in->lm->cfg.n_vocab, cap->target);
            for (int rr = r0; rr < r1; rr++)
                for (int cc = c0; cc < c1; cc++) {
                    r->map[rr * gw + cc] += drop;
                    count[rr * gw + cc] += 1;
                }
            runs++;
        }
    }
    free(saved);
    if (rc) {
        free(count);
        return rc;
    }
    for (int64_t j = 0; j < P; j++) r->map[j] = count[j] > 0 ? r->map[j] / count[j] : 0.0f;
    free(count);
    const char *baseline = opt->baseline_name ? opt->baseline_name : (opt->baseline ? "given" : "zero");
    snprintf(r->agg, sizeof r->agg, "%dx%d blocks, stride %d, baseline %s", kb, kb, stride, baseline);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition",
                            "log p(w) before - after replacing the LM-input embeddings of a block of image tokens "
                            "by the baseline; mean over the blocks covering each patch");
    cJSON_AddNumberToObject(r->json, "block", kb);
    cJSON_AddNumberToObject(r->json, "stride", stride);
    cJSON_AddStringToObject(r->json, "baseline", baseline);
    cJSON_AddNumberToObject(r->json, "forward_runs", runs);
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    return ERR_OK;
}
