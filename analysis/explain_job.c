#include "explain_job.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/evalmap.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time: unlike the wall clock, not inflated by other processes on a shared machine */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

int ex_bbox_patches(const pp_geom *g, const double box[4], int32_t *out) {
    int n = 0;
    for (int r = 0; r < g->grid; r++)
        for (int c = 0; c < g->grid; c++) {
            double b[4];
            if (!pp_cell_box(g, r, c, b)) continue;
            double cx = 0.5 * (b[0] + b[2]), cy = 0.5 * (b[1] + b[3]);
            if (cx >= box[0] && cx < box[2] && cy >= box[1] && cy < box[3]) out[n++] = r * g->grid + c;
        }
    return n;
}

void ex_outcome_free(ex_outcome *out) {
    for (int i = 0; i < out->n_results; i++) ex_result_free(&out->results[i]);
    ex_capture_free(&out->cap);
    ex_vit_capture_free(&out->vcap);
    llava_prompt_free(&out->pr);
    llava_image_free(&out->im);
    free(out->object_patches);
    memset(out, 0, sizeof *out);
}

const ex_result *ex_outcome_find(const ex_outcome *out, ex_method m) {
    for (int i = 0; i < out->n_results; i++)
        if (out->results[i].method == m) return &out->results[i];
    return NULL;
}

static void stage(const ex_job *job, const char *what) {
    if (job->progress) job->progress(job->progress_ctx, what);
}

void ex_job_input(const ex_job *job, const ex_outcome *out, ex_input *in) {
    llava_t *l = job->l;
    *in = (ex_input){.lm = l->lm, .st = l->st, .ids = out->pr.ids, .n = out->pr.n, .img_embd = out->im.embd,
                     .img_start = out->pr.image_start, .n_image = out->pr.n_image, .grid_h = out->im.grid,
                     .grid_w = out->im.grid, .T = out->pr.n - 1, .target = job->target,
                     .object_patches = out->object_patches, .n_object_patches = out->n_object_patches,
                     .tok = l->tok, .vit = l->vit, .vst = &l->vst, .pixels = l->pixels, .geom = &out->im.geom};
}

err_code ex_job_run(const ex_job *job, ex_outcome *out, err_t *err) {
    memset(out, 0, sizeof *out);
    llava_t *l = job->l;
    const vit_config *vc = vit_get_config(l->vit);
    const bool vit_side = job->vit_side && (job->methods & ((1u << EX_ATTENTION) | (1u << EX_ROLLOUT)));
    hook_set_t vhooks;
    hook_set_init(&vhooks);
    err_code rc = ERR_OK;
    if (vit_side && (rc = ex_vit_capture_init(&out->vcap, vc->n_run, vc->n_head, vc->grid, &vhooks, err))) goto fail;
    if ((rc = llava_encode_img_hooks(l, job->img, vit_side ? &vhooks : NULL, &out->im, err))) goto fail;
    if ((rc = llava_build_prompt(l, job->question, &out->pr, err))) goto fail;
    if (job->bbox) {
        out->object_patches = malloc(sizeof(int32_t) * (size_t)out->pr.n_image);
        if (!out->object_patches) {
            rc = err_set(err, ERR_NOMEM, "out of memory");
            goto fail;
        }
        out->n_object_patches = ex_bbox_patches(&out->im.geom, job->bbox, out->object_patches);
    }
    ex_input in;
    ex_job_input(job, out, &in);
    stage(job, "shared forward");
    if ((rc = ex_capture(&out->cap, &in, job->opt, err))) goto fail;
    for (int m = 0; m < EX_N_METHODS; m++) {
        if (!(job->methods & (1u << m))) continue;
        stage(job, ex_method_name((ex_method)m));
        double t0 = now_s(), c0 = cpu_s();
        if ((rc = ex_run((ex_method)m, &in, &out->cap, job->opt, &out->results[out->n_results], err))) {
            err_prefix(err, "%s", ex_method_name((ex_method)m));
            goto fail;
        }
        out->cpu_seconds[out->n_results] = cpu_s() - c0;
        out->seconds[out->n_results++] = now_s() - t0;
    }
    for (int i = 0, n_lm = out->n_results; vit_side && i < n_lm; i++) {
        ex_method m = out->results[i].method;
        if (m != EX_ATTENTION && m != EX_ROLLOUT) continue;
        double t0 = now_s(), c0 = cpu_s();
        rc = m == EX_ATTENTION ? ex_vit_attention(&out->vcap, &out->results[out->n_results], err)
                               : ex_vit_rollout(&out->vcap, out->results[i].map, &out->results[out->n_results], err);
        if (rc) goto fail;
        out->cpu_seconds[out->n_results] = cpu_s() - c0;
        out->seconds[out->n_results++] = now_s() - t0;
    }
    return ERR_OK;
fail:
    ex_outcome_free(out);
    return rc;
}

cJSON *ex_outcome_scores(const ex_outcome *out, const uint8_t *mask, int w, int h, int label, const double *bbox) {
    const pp_geom *g = &out->im.geom;
    const int P = g->grid * g->grid;
    uint8_t *cells = malloc((size_t)P), *dil = malloc((size_t)P);
    cJSON *j = NULL;
    if (cells && dil && em_object_cells(g, mask, w, h, label, bbox, cells) > 0) {
        memcpy(dil, cells, (size_t)P);
        em_dilate(dil, g->grid, g->grid, 1);
        j = cJSON_CreateObject();
        for (int i = 0; i < out->n_results; i++) {
            const ex_result *r = &out->results[i];
            if (!r->map) continue;
            cJSON *m = cJSON_AddObjectToObject(j, ex_method_name(r->method));
            cJSON_AddBoolToObject(m, "pointing", em_pointing(r->map, dil, P));
            cJSON_AddItemToObject(m, "mass", ex_json_number(em_mass_in(r->map, cells, P)));
        }
    }
    free(cells);
    free(dil);
    return j;
}
