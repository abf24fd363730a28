/* Method 1, attention: A^{l,h}[T, s:s+P] on the grid, per head, per layer (mean over
 * heads) and overall (mean over layers and heads), plus where each layer's attention
 * from T goes: BOS, text before the image, the image, text after it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

err_code ex_attention(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    (void)opt;
    const int L = cap->n_layer, H = cap->n_head;
    const int64_t n = cap->n, s = in->img_start, P = in->n_image;
    r->map = calloc((size_t)P, sizeof(float));
    r->maps = calloc((size_t)(L * P), sizeof(float));
    r->map_labels = calloc((size_t)L, sizeof *r->map_labels);
    float *heads = calloc((size_t)(L * H * P), sizeof(float));
    for (int k = 0; k < 4; k++) r->series[k].y = calloc((size_t)L, sizeof(float));
    if (!r->map || !r->maps || !r->map_labels || !heads || !r->series[3].y) {
        free(heads);
        return err_set(err, ERR_NOMEM, "attention: out of memory");
    }
    static const char *const part_names[4] = {"BOS", "text before image", "image", "text after image"};
    cJSON *fractions = cJSON_CreateArray();
    for (int l = 0; l < L; l++) {
        float frac[4] = {0, 0, 0, 0};
        for (int h = 0; h < H; h++) {
            const float *a = cap->att_T + ((int64_t)l * H + h) * n;
            for (int64_t j = 0; j < P; j++) {
                heads[((int64_t)l * H + h) * P + j] = a[s + j];
                r->maps[(int64_t)l * P + j] += a[s + j] / (float)H;
            }
            for (int64_t q = 0; q < n; q++) {
                int part = q == 0 ? 0 : q < s ? 1 : q < s + P ? 2 : 3;
                frac[part] += a[q] / (float)H;
            }
        }
        for (int64_t j = 0; j < P; j++) r->map[j] += r->maps[(int64_t)l * P + j] / (float)L;
        snprintf(r->map_labels[l], sizeof r->map_labels[l], "layer %d", l);
        cJSON *f = cJSON_CreateObject();
        for (int k = 0; k < 4; k++) {
            r->series[k].y[l] = frac[k];
            cJSON_AddItemToObject(f, part_names[k], ex_json_number(frac[k]));
        }
        cJSON_AddItemToArray(fractions, f);
    }
    for (int k = 0; k < 4; k++) {
        snprintf(r->series[k].name, sizeof r->series[k].name, "%s", part_names[k]);
        r->series[k].points = L;
    }
    r->n_series = 4;
    r->n_points = L;
    snprintf(r->chart_title, sizeof r->chart_title, "attention from T by part of the prompt (mean over heads)");
    snprintf(r->xlabel, sizeof r->xlabel, "LM layer");
    snprintf(r->ylabel, sizeof r->ylabel, "attention mass");
    r->n_maps = L;
    snprintf(r->agg, sizeof r->agg, "mean over %d layers x %d heads", L, H);

    int64_t shape[3] = {L, H, P};
    ex_result_add_array(r, "heads", false, 3, shape, heads);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition", "A^{l,h}[T, s:s+P] (post-softmax) reshaped to the grid");
    cJSON_AddStringToObject(r->json, "aggregation", r->agg);
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    cJSON *pl = cJSON_CreateArray();
    for (int l = 0; l < L; l++) cJSON_AddItemToArray(pl, ex_json_floats(r->maps + (int64_t)l * P, P));
    cJSON_AddItemToObject(r->json, "per_layer", pl);
    cJSON_AddItemToObject(r->json, "fractions", fractions);
    return ERR_OK;
}
