/* explain_job.h — one explanation from an image and a question on a loaded LLaVA:
 * encode (with the ViT capture when attention or rollout is asked), build the prompt,
 * the shared forward, then every requested method. The `explain` command and the
 * VQA runner's --explain both go through it. */
#ifndef LLAVA_MECH_EXPLAIN_JOB_H
#define LLAVA_MECH_EXPLAIN_JOB_H

#include "analysis/explain.h"
#include "language/llava.h"

typedef struct {
    llava_t *l;
    const img_t *img;
    const char *question;
    unsigned methods;         /* bit set of (1 << ex_method) */
    const ex_options *opt;
    int32_t target;           /* < 0: the model's argmax at T */
    const double *bbox;       /* optional object box [x0, y0, x1, y1) in original pixels (knockout edge sets) */
    bool vit_side;            /* also vit-attention / vit-rollout when attention / rollout run */
    void (*progress)(void *ctx, const char *stage);
    void *progress_ctx;
} ex_job;

typedef struct {
    llava_image_t im;
    llava_prompt_t pr;
    ex_capture_t cap;
    ex_vit_capture_t vcap;
    int32_t *object_patches;
    int n_object_patches;
    ex_result results[EX_N_ALL];
    double seconds[EX_N_ALL];      /* wall clock per result */
    double cpu_seconds[EX_N_ALL];  /* process CPU time per result (all threads) */
    int n_results;
} ex_outcome;

err_code ex_job_run(const ex_job *job, ex_outcome *out, err_t *err);
/* The passes' input for a job that ex_job_run completed (to run a method again on the
 * same capture, e.g. with other options); valid while out and job->l are. */
void ex_job_input(const ex_job *job, const ex_outcome *out, ex_input *in);
void ex_outcome_free(ex_outcome *out);
/* The result of method m, or NULL when it did not run. */
const ex_result *ex_outcome_find(const ex_outcome *out, ex_method m);
/* Pointing game (top-1 patch inside the object's cells dilated by one patch) and
 * mass in mask for every result that has a map (analysis/evalmap.h): an object
 * {method: {"pointing": bool, "mass": number}}, or NULL when the object covers no
 * cell. mask (w x h labels) may be NULL: then bbox decides the object's cells. */
cJSON *ex_outcome_scores(const ex_outcome *out, const uint8_t *mask, int w, int h, int label, const double *bbox);
/* Patches whose cell centre (in original pixels) lies inside the box; returns the count. */
int ex_bbox_patches(const pp_geom *g, const double box[4], int32_t *out);

#endif
