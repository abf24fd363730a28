/* Method 7, direct logit attribution: the final residual at T is the embedding plus
 * every head's output plus every MLP's output, so with the final norm's scale frozen
 * (rstd of the final residual at T) the target logit splits exactly into
 * u . term, u = g * U[w] * rstd. A head's term further splits over source positions:
 * sum_j A[T,j] v_j . (W_O^h^T u), which gives an exact linear per-patch decomposition
 * of the direct path through attention. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/matmul.h"
#include "explain.h"

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

err_code ex_dla(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    (void)opt;
    const lm_config_t *c = &in->lm->cfg;
    const int L = c->n_layer, H = c->n_head, hd = c->head_dim, D = c->dim, group = c->n_head / c->n_kv_head;
    const int64_t T = in->T, P = in->n_image, s = in->img_start, HD = (int64_t)H * hd;
    float *u = malloc(sizeof(float) * (size_t)D), *wo = malloc(sizeof(float) * (size_t)(D * HD));
    double *rh = malloc(sizeof(double) * (size_t)HD);
    r->heat = calloc((size_t)(L * H), sizeof(float));
    r->maps = calloc((size_t)(L * P), sizeof(float));
    r->map = calloc((size_t)P, sizeof(float));
    r->map_labels = calloc((size_t)L, sizeof *r->map_labels);
    for (int k = 0; k < 2; k++) r->series[k].y = calloc((size_t)L, sizeof(float));
    if (!u || !wo || !rh || !r->heat || !r->maps || !r->map || !r->map_labels || !r->series[1].y) {
        free(u), free(wo), free(rh);
        return err_set(err, ERR_NOMEM, "dla: out of memory");
    }
    const float *x_final = lm_snapshot_resid(&cap->snap, L, T);
    const float rstd = ex_rstd(in->lm, x_final);
    mm_dequant_rows(in->lm->w.output, cap->target, 1, u);
    for (int d = 0; d < D; d++) u[d] *= in->lm->w.output_norm_f32[d] * rstd;

    double total = dot(u, lm_snapshot_resid(&cap->snap, 0, T), D);
    const double embed = total;
    for (int l = 0; l < L; l++) {
        /* r_h = W_O^h^T u for every head at once: W_O is [D][HD]. */
        mm_dequant_rows(in->lm->w.layers[l].wo, 0, D, wo);
        memset(rh, 0, sizeof(double) * (size_t)HD);
        for (int i = 0; i < D; i++) {
            const float *row = wo + (int64_t)i * HD;
            for (int64_t j = 0; j < HD; j++) rh[j] += (double)row[j] * u[i];
        }
        double attn = 0;
        for (int h = 0; h < H; h++) {
            const float *z = cap->z_T + ((int64_t)l * H + h) * hd;
            double hc = 0;
            for (int d = 0; d < hd; d++) hc += z[d] * rh[(int64_t)h * hd + d];
            r->heat[l * H + h] = (float)hc;
            attn += hc;
            const float *a = cap->att_T + ((int64_t)l * H + h) * cap->n;
            for (int64_t j = 0; j < P; j++) {
                const float *v = kv_v(&cap->snap.kv, l, s + j) + (int64_t)(h / group) * hd;
                double vc = 0;
                for (int d = 0; d < hd; d++) vc += v[d] * rh[(int64_t)h * hd + d];
                r->maps[(int64_t)l * P + j] += (float)(a[s + j] * vc);
            }
        }
        double mlp = dot(u, cap->mlp_out_T + (int64_t)l * D, D);
        r->series[0].y[l] = (float)attn;
        r->series[1].y[l] = (float)mlp;
        total += attn + mlp;
        for (int64_t j = 0; j < P; j++) r->map[j] += r->maps[(int64_t)l * P + j];
        snprintf(r->map_labels[l], sizeof r->map_labels[l], "layer %d", l);
    }
    free(u), free(wo), free(rh);
    double img_total = 0;
    for (int64_t j = 0; j < P; j++) img_total += r->map[j];

    r->n_maps = L;
    ex_result_layer_figures(r, L, H, "direct logit attribution", "contribution to the target logit");
    snprintf(r->agg, sizeof r->agg, "sum over %d layers x %d heads of A[T,j] v_j W_O^h . u (final norm frozen)", L, H);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition",
                            "u = g * U[w] / rms(x_final,T); contribution(term) = u . term; per patch: "
                            "sum_{l,h} A^{l,h}[T,j] v^{l,h}_j . (W_O^h^T u)");
    cJSON_AddItemToObject(r->json, "target_logit", ex_json_number(cap->logits[cap->target]));
    cJSON_AddItemToObject(r->json, "sum_of_contributions", ex_json_number(total));
    cJSON_AddItemToObject(r->json, "embedding", ex_json_number(embed));
    cJSON_AddItemToObject(r->json, "attention_per_layer", ex_json_floats(r->series[0].y, L));
    cJSON_AddItemToObject(r->json, "mlp_per_layer", ex_json_floats(r->series[1].y, L));
    cJSON *hs = cJSON_CreateArray();
    for (int l = 0; l < L; l++) cJSON_AddItemToArray(hs, ex_json_floats(r->heat + (int64_t)l * H, H));
    cJSON_AddItemToObject(r->json, "per_head", hs);
    cJSON_AddItemToObject(r->json, "image_total", ex_json_number(img_total));
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    cJSON *pl = cJSON_CreateArray();
    for (int l = 0; l < L; l++) cJSON_AddItemToArray(pl, ex_json_floats(r->maps + (int64_t)l * P, P));
    cJSON_AddItemToObject(r->json, "per_layer", pl);
    return ERR_OK;
}
