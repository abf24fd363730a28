/* Method 5, logit lens over the image positions: for every layer l (0 = embeddings,
 * L = the final residual) and image position i, softmax(U g rmsnorm(x_l,i)). Two
 * normalisers are in use: each residual's own RMS (default) or the final layer's RMS
 * at that position (TransformerLens's cached scale). Top-k tokens per cell are kept by
 * partial selection; the map is the "internal confidence" max_l p_l,i(w). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "language/tok.h"

/* Keeps the k largest (value, index) pairs of v[0..V) in descending order. */
static void top_k(const float *v, int64_t V, int k, int32_t *idx, float *val) {
    int m = 0;
    for (int64_t i = 0; i < V; i++) {
        if (m == k && v[i] <= val[k - 1]) continue;
        int pos = m < k ? m++ : k - 1;
        while (pos > 0 && val[pos - 1] < v[i]) {
            val[pos] = val[pos - 1];
            idx[pos] = idx[pos - 1];
            pos--;
        }
        val[pos] = v[i];
        idx[pos] = (int32_t)i;
    }
    for (; m < k; m++) val[m] = -INFINITY, idx[m] = -1;
}

static cJSON *token_json(const ex_input *in, int32_t id, float p) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "id", id);
    if (in->tok && id >= 0) {
        size_t len = 0;
        const char *piece = tok_piece(in->tok, id, &len);
        char buf[64];
        if (len >= sizeof buf) len = sizeof buf - 1;
        memcpy(buf, piece ? piece : "", piece ? len : 0);
        buf[piece ? len : 0] = '\0';
        cJSON_AddStringToObject(t, "piece", buf);
    }
    cJSON_AddItemToObject(t, "p", ex_json_number(p));
    return t;
}

err_code ex_logit_lens(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    const int L = cap->n_layer, K = opt->top_k > 0 ? opt->top_k : 5;
    const int64_t s = in->img_start, P = in->n_image, V = in->lm->cfg.n_vocab;
    const int NL = L + 1;
    float *logits = malloc(sizeof(float) * (size_t)(P * V));
    float *rstd = malloc(sizeof(float) * (size_t)P);
    int32_t *top_id = malloc(sizeof(int32_t) * (size_t)(NL * P * K));
    float *top_p = malloc(sizeof(float) * (size_t)(NL * P * K));
    r->maps = calloc((size_t)(NL * P), sizeof(float));
    r->map = calloc((size_t)P, sizeof(float));
    r->map_labels = calloc((size_t)NL, sizeof *r->map_labels);
    r->series[0].y = calloc((size_t)NL, sizeof(float));
    r->xticks = calloc((size_t)NL, sizeof *r->xticks);
    if (!logits || !rstd || !top_id || !top_p || !r->maps || !r->map || !r->map_labels || !r->series[0].y ||
        !r->xticks) {
        free(logits), free(rstd), free(top_id), free(top_p);
        return err_set(err, ERR_NOMEM, "logit-lens: cannot allocate %lld x %lld logits", (long long)P, (long long)V);
    }
    for (int64_t j = 0; j < P; j++) rstd[j] = ex_rstd(in->lm, lm_snapshot_resid(&cap->snap, L, s + j));
    err_code rc = ERR_OK;
    for (int l = 0; l < NL && !rc; l++) {
        rc = ex_unembed(in->st, lm_snapshot_resid(&cap->snap, l, s), P, opt->lens_cached_scale ? rstd : NULL, logits, err);
        if (rc) break;
        float best = 0;
        for (int64_t j = 0; j < P; j++) {
            float *lg = logits + j * V;
            double mx = lg[0], sum = 0;
            for (int64_t v = 1; v < V; v++)
                if (lg[v] > mx) mx = lg[v];
            for (int64_t v = 0; v < V; v++) sum += exp((double)lg[v] - mx);
            float pw = (float)(exp((double)lg[cap->target] - mx) / sum);
            r->maps[(int64_t)l * P + j] = pw;
            if (pw > best) best = pw;
            int32_t *ti = top_id + ((int64_t)l * P + j) * K;
            float *tp = top_p + ((int64_t)l * P + j) * K;
            top_k(lg, V, K, ti, tp);
            for (int q = 0; q < K; q++) tp[q] = ti[q] >= 0 ? (float)(exp((double)tp[q] - mx) / sum) : 0.0f;
        }
        r->series[0].y[l] = best;
        snprintf(r->map_labels[l], sizeof r->map_labels[l], l == 0 ? "embeddings" : l == L ? "final" : "layer %d", l);
        snprintf(r->xticks[l], sizeof r->xticks[l], "%d", l);
    }
    free(logits), free(rstd);
    if (rc) {
        free(top_id), free(top_p);
        return rc;
    }
    int64_t peak = 0;
    for (int64_t j = 0; j < P; j++) {
        float m = 0;
        for (int l = 0; l < NL; l++) m = fmaxf(m, r->maps[(int64_t)l * P + j]);
        r->map[j] = m;
        if (m > r->map[peak]) peak = j;
    }
    r->n_maps = NL;
    r->n_series = 1;
    r->n_points = NL;
    r->series[0].points = NL;
    snprintf(r->series[0].name, sizeof r->series[0].name, "max over image of p(target)");
    snprintf(r->chart_title, sizeof r->chart_title, "logit lens on image tokens: best p(target) per layer");
    snprintf(r->xlabel, sizeof r->xlabel, "residual entering layer (L = final)");
    snprintf(r->ylabel, sizeof r->ylabel, "p(target)");
    const char *conv = opt->lens_cached_scale ? "final-layer RMS scale (TransformerLens cached)" : "re-normalised per layer";
    snprintf(r->agg, sizeof r->agg, "max over layers 0..%d of p(target), %s", L, conv);

    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition", "softmax(U g rmsnorm(x_l,i)) at image positions; map = max_l p(w)");
    cJSON_AddStringToObject(r->json, "normaliser", opt->lens_cached_scale ? "cached_final" : "per_layer");
    cJSON_AddNumberToObject(r->json, "top_k", K);
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    cJSON_AddItemToObject(r->json, "max_p_per_layer", ex_json_floats(r->series[0].y, NL));
    cJSON_AddNumberToObject(r->json, "peak_patch", (double)peak);
    cJSON *tops = cJSON_CreateArray();
    for (int l = 0; l < NL; l++) {
        cJSON *row = cJSON_CreateArray();
        for (int q = 0; q < K; q++) {
            int64_t o = ((int64_t)l * P + peak) * K + q;
            cJSON_AddItemToArray(row, token_json(in, top_id[o], top_p[o]));
        }
        cJSON_AddItemToArray(tops, row);
    }
    cJSON_AddItemToObject(r->json, "top_tokens_at_peak", tops);
    int64_t shape[3] = {NL, P, K};
    ex_result_add_array(r, "top_ids", true, 3, shape, top_id);
    ex_result_add_array(r, "top_p", false, 3, shape, top_p);
    int64_t mshape[2] = {NL, P};
    float *pw = malloc(sizeof(float) * (size_t)(NL * P));
    if (pw) {
        memcpy(pw, r->maps, sizeof(float) * (size_t)(NL * P));
        ex_result_add_array(r, "p_target", false, 2, mshape, pw);
    }
    return ERR_OK;
}
