/* Method 2, attention rollout (Abnar & Zuidema 2020): per layer
 * Â_l = rownorm(0.5 * fuse_h A_l + 0.5 I), R = Â_{L-1} ... Â_0, map = R[T, s:s+P].
 * Only the row of T is needed, so R is never formed: r = e_T, then r <- r Â_l from the
 * last layer down to the first (the product's rightmost factor is layer 0). The maps
 * after each step give the rollout restricted to layers >= l. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One row of Â_l: fused weights of keys 0..q (causal), the smallest discard_ratio of
 * the off-diagonal ones zeroed, identity added, renormalised. */
static void rollout_row(const float *fused_row, int64_t q, float discard, float *out, float *tmp) {
    memcpy(out, fused_row, sizeof(float) * (size_t)(q + 1));
    if (discard > 0 && q > 0) {
        int64_t m = 0;
        for (int64_t k = 0; k <= q; k++)
            if (k != q) tmp[m++] = out[k];
        qsort(tmp, (size_t)m, sizeof(float), cmp_float);
        int64_t drop = (int64_t)floor(discard * (double)m);
        if (drop > 0) {
            float thr = tmp[drop - 1];
            int64_t dropped = 0;
            for (int64_t k = 0; k < q && dropped < drop; k++)
                if (out[k] <= thr) out[k] = 0, dropped++;
        }
    }
    double sum = 0;
    for (int64_t k = 0; k <= q; k++) sum += 0.5 * out[k];
    sum += 0.5;
    for (int64_t k = 0; k <= q; k++) out[k] = (float)((0.5 * out[k] + (k == q ? 0.5 : 0.0)) / sum);
}

err_code ex_rollout(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    const int L = cap->n_layer;
    const int64_t n = cap->n, s = in->img_start, P = in->n_image;
    double *v = calloc((size_t)n, sizeof(double)), *nv = calloc((size_t)n, sizeof(double));
    float *row = malloc(sizeof(float) * (size_t)n), *tmp = malloc(sizeof(float) * (size_t)n);
    r->map = calloc((size_t)P, sizeof(float));
    r->maps = calloc((size_t)(L * P), sizeof(float));
    r->map_labels = calloc((size_t)L, sizeof *r->map_labels);
    r->series[0].y = calloc((size_t)L, sizeof(float));
    if (!v || !nv || !row || !tmp || !r->map || !r->maps || !r->map_labels || !r->series[0].y) {
        free(v), free(nv), free(row), free(tmp);
        return err_set(err, ERR_NOMEM, "rollout: out of memory");
    }
    v[in->T] = 1.0;
    for (int l = L - 1; l >= 0; l--) {
        memset(nv, 0, sizeof(double) * (size_t)n);
        for (int64_t q = 0; q < n; q++) {
            if (v[q] == 0) continue;
            rollout_row(cap->fused + ((int64_t)l * n + q) * n, q, opt->discard_ratio, row, tmp);
            for (int64_t k = 0; k <= q; k++) nv[k] += v[q] * row[k];
        }
        memcpy(v, nv, sizeof(double) * (size_t)n);
        double img = 0;
        for (int64_t j = 0; j < P; j++) {
            r->maps[(int64_t)l * P + j] = (float)v[s + j];
            img += v[s + j];
        }
        r->series[0].y[l] = (float)img;
        snprintf(r->map_labels[l], sizeof r->map_labels[l], "layers %d..%d", l, L - 1);
    }
    for (int64_t j = 0; j < P; j++) r->map[j] = (float)v[s + j];
    free(v), free(nv), free(row), free(tmp);

    static const char *const fusion_names[] = {"mean", "max", "min"};
    r->n_maps = L;
    r->n_series = 1;
    r->n_points = L;
    r->series[0].points = L;
    snprintf(r->series[0].name, sizeof r->series[0].name, "rollout mass on the image");
    snprintf(r->chart_title, sizeof r->chart_title, "rollout from T through layers l..%d: mass on image tokens", L - 1);
    snprintf(r->xlabel, sizeof r->xlabel, "first LM layer of the rollout");
    snprintf(r->ylabel, sizeof r->ylabel, "mass on image");
    snprintf(r->agg, sizeof r->agg, "all %d layers, head fusion %s, discard %.2f", L, fusion_names[opt->fusion],
             opt->discard_ratio);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition",
                            "A_l' = rownorm(0.5*fuse_h(A_l) + 0.5*I); R = A'_{L-1}...A'_0; map = R[T, s:s+P]");
    cJSON_AddStringToObject(r->json, "head_fusion", fusion_names[opt->fusion]);
    cJSON_AddItemToObject(r->json, "discard_ratio", ex_json_number(opt->discard_ratio));
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    cJSON_AddItemToObject(r->json, "image_mass_from_layer", ex_json_floats(r->series[0].y, L));
    cJSON *pl = cJSON_CreateArray();
    for (int l = 0; l < L; l++) cJSON_AddItemToArray(pl, ex_json_floats(r->maps + (int64_t)l * P, P));
    cJSON_AddItemToObject(r->json, "from_layer", pl);
    return ERR_OK;
}
