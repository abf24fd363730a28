/* Method 6, log-probability increase (Yu & Ananiadou 2024): per layer l and head h,
 * the head's output at T, o = z_T^{l,h} W_O^h, scores logp(x_l,T + o) - logp(x_l,T).
 * The normaliser is frozen to the final residual's at T (Yu's choice, default) or the
 * true RMS of each vector. Layer level: attention increase logp(x+attn) - logp(x) and
 * MLP increase logp(x+attn+mlp) - logp(x+attn). Inside the best heads, the component
 * A[T,j] v_j W_O^h of each image position j scores the same way: the patch map. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

/* Unembeds rows and returns log p(w) per row. */
static err_code logp_rows(const ex_input *in, const ex_capture_t *cap, const float *X, int64_t n, float rstd_fixed,
                          float *out, err_t *err) {
    const int64_t V = in->lm->cfg.n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)(n * V)), *rs = calloc((size_t)n, sizeof(float));
    if (!lg || !rs) {
        free(lg), free(rs);
        return err_set(err, ERR_NOMEM, "heads: cannot allocate %lld x %lld logits", (long long)n, (long long)V);
    }
    for (int64_t i = 0; i < n; i++) rs[i] = rstd_fixed;
    err_code rc = ex_unembed(in->st, X, n, rstd_fixed > 0 ? rs : NULL, lg, err);
    for (int64_t i = 0; i < n && !rc; i++) out[i] = ex_logp_of(lg + i * V, V, cap->target);
    free(lg), free(rs);
    return rc;
}

/* rows[j] = x + (A[T, s+j] v_j placed in head h's slot) W_O^T, for the image positions. */
static err_code head_components(const ex_input *in, const ex_capture_t *cap, int l, int h, const float *x,
                                float *rows, float *zp, err_t *err) {
    const lm_config_t *c = &in->lm->cfg;
    const int hd = c->head_dim, H = c->n_head, group = c->n_head / c->n_kv_head;
    const int64_t P = in->n_image, s = in->img_start, HD = (int64_t)H * hd;
    memset(zp, 0, sizeof(float) * (size_t)(P * HD));
    const float *a = cap->att_T + ((int64_t)l * H + h) * cap->n;
    for (int64_t j = 0; j < P; j++) {
        const float *v = kv_v(&cap->snap.kv, l, s + j) + (int64_t)(h / group) * hd;
        for (int d = 0; d < hd; d++) zp[j * HD + (int64_t)h * hd + d] = a[s + j] * v[d];
    }
    err_code rc = mm_linear(in->st->mm, rows, zp, P, HD, in->lm->w.layers[l].wo, NULL, err);
    if (rc) return rc;
    for (int64_t j = 0; j < P; j++)
        for (int d = 0; d < c->dim; d++) rows[j * c->dim + d] += x[d];
    return ERR_OK;
}

err_code ex_heads(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    const lm_config_t *c = &in->lm->cfg;
    const int L = c->n_layer, H = c->n_head, hd = c->head_dim, D = c->dim;
    const int64_t T = in->T, P = in->n_image, HD = (int64_t)H * hd;
    const int64_t n_rows = (int64_t)L * H + 3 * L;
    const float rfix = opt->heads_true_norm ? 0.0f : ex_rstd(in->lm, lm_snapshot_resid(&cap->snap, L, T));
    float *X = malloc(sizeof(float) * (size_t)(n_rows * D)), *lp = malloc(sizeof(float) * (size_t)n_rows);
    float *Z = calloc((size_t)(H * HD), sizeof(float));
    r->heat = malloc(sizeof(float) * (size_t)(L * H));
    for (int k = 0; k < 2; k++) r->series[k].y = malloc(sizeof(float) * (size_t)L);
    if (!X || !lp || !Z || !r->heat || !r->series[1].y) {
        free(X), free(lp), free(Z);
        return err_set(err, ERR_NOMEM, "heads: out of memory");
    }
    err_code rc = ERR_OK;
    float *head_rows = X, *base = X + (int64_t)L * H * D, *mid = base + (int64_t)L * D, *post = mid + (int64_t)L * D;
    for (int l = 0; l < L && !rc; l++) {
        const float *x = lm_snapshot_resid(&cap->snap, l, T);
        for (int h = 0; h < H; h++)
            memcpy(Z + (int64_t)h * HD + (int64_t)h * hd, cap->z_T + ((int64_t)l * H + h) * hd, sizeof(float) * hd);
        rc = mm_linear(in->st->mm, head_rows + (int64_t)l * H * D, Z, H, HD, in->lm->w.layers[l].wo, NULL, err);
        for (int h = 0; h < H; h++) memset(Z + (int64_t)h * HD + (int64_t)h * hd, 0, sizeof(float) * hd);
        for (int h = 0; h < H && !rc; h++)
            for (int d = 0; d < D; d++) head_rows[((int64_t)l * H + h) * D + d] += x[d];
        memcpy(base + (int64_t)l * D, x, sizeof(float) * D);
        for (int d = 0; d < D; d++) mid[(int64_t)l * D + d] = x[d] + cap->attn_out_T[(int64_t)l * D + d];
        memcpy(post + (int64_t)l * D, lm_snapshot_resid(&cap->snap, l + 1, T), sizeof(float) * D);
    }
    if (!rc) rc = logp_rows(in, cap, X, n_rows, rfix, lp, err);
    free(Z);
    if (rc) {
        free(X), free(lp);
        return rc;
    }
    const float *lp_head = lp, *lp_base = lp + (int64_t)L * H, *lp_mid = lp_base + L, *lp_post = lp_mid + L;
    float *base_lp = malloc(sizeof(float) * (size_t)L);
    if (!base_lp) {
        free(X), free(lp);
        return err_set(err, ERR_NOMEM, "heads: out of memory");
    }
    memcpy(base_lp, lp_base, sizeof(float) * (size_t)L);
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < H; h++) r->heat[l * H + h] = lp_head[l * H + h] - lp_base[l];
        r->series[0].y[l] = lp_mid[l] - lp_base[l];
        r->series[1].y[l] = lp_post[l] - lp_mid[l];
    }
    free(X), free(lp);

    /* the best heads and their patch maps */
    int nt = opt->top_heads > 0 ? opt->top_heads : 3;
    if (nt > L * H) nt = L * H;
    int *best = malloc(sizeof(int) * (size_t)nt);
    float *rows = malloc(sizeof(float) * (size_t)(P * D)), *zp = malloc(sizeof(float) * (size_t)(P * HD));
    float *plp = malloc(sizeof(float) * (size_t)P);
    r->maps = calloc((size_t)(nt * P), sizeof(float));
    r->map = calloc((size_t)P, sizeof(float));
    r->map_labels = calloc((size_t)nt, sizeof *r->map_labels);
    if (!best || !rows || !zp || !plp || !r->maps || !r->map || !r->map_labels) {
        free(best), free(rows), free(zp), free(plp), free(base_lp);
        return err_set(err, ERR_NOMEM, "heads: out of memory");
    }
    for (int t = 0; t < nt; t++) {
        int bi = -1;
        for (int i = 0; i < L * H; i++) {
            bool taken = false;
            for (int u = 0; u < t; u++) taken |= best[u] == i;
            if (!taken && (bi < 0 || r->heat[i] > r->heat[bi])) bi = i;
        }
        best[t] = bi;
    }
    cJSON *jtop = cJSON_CreateArray();
    for (int t = 0; t < nt && !rc; t++) {
        int l = best[t] / H, h = best[t] % H;
        const float *x = lm_snapshot_resid(&cap->snap, l, T);
        rc = head_components(in, cap, l, h, x, rows, zp, err);
        if (!rc) rc = logp_rows(in, cap, rows, P, rfix, plp, err);
        if (rc) break;
        const float blp = base_lp[l];
        for (int64_t j = 0; j < P; j++) {
            r->maps[(int64_t)t * P + j] = plp[j] - blp;
            r->map[j] += plp[j] - blp;
        }
        snprintf(r->map_labels[t], sizeof r->map_labels[t], "L%d H%d", l, h);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", l);
        cJSON_AddNumberToObject(e, "head", h);
        cJSON_AddItemToObject(e, "score", ex_json_number(r->heat[best[t]]));
        cJSON_AddItemToObject(e, "patch_scores", ex_json_floats(r->maps + (int64_t)t * P, P));
        cJSON_AddItemToArray(jtop, e);
    }
    free(best), free(rows), free(zp), free(plp), free(base_lp);
    if (rc) {
        cJSON_Delete(jtop);
        return rc;
    }
    r->n_maps = nt;
    ex_result_layer_figures(r, L, H, "log-probability increase", "increase in log p(target)");
    const char *norm = opt->heads_true_norm ? "true normaliser" : "normaliser frozen to the final residual at T";
    snprintf(r->agg, sizeof r->agg, "sum over the top %d heads of per-patch log-prob increase, %s", nt, norm);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition",
                            "score(l,h) = logp(x_l,T + o^{l,h}) - logp(x_l,T), o = sum_j A[T,j] v_j W_O^h");
    cJSON_AddStringToObject(r->json, "normaliser", opt->heads_true_norm ? "true" : "frozen_final");
    cJSON *hs = cJSON_CreateArray();
    for (int l = 0; l < L; l++) cJSON_AddItemToArray(hs, ex_json_floats(r->heat + (int64_t)l * H, H));
    cJSON_AddItemToObject(r->json, "head_scores", hs);
    cJSON_AddItemToObject(r->json, "attention_increase", ex_json_floats(r->series[0].y, L));
    cJSON_AddItemToObject(r->json, "mlp_increase", ex_json_floats(r->series[1].y, L));
    cJSON_AddItemToObject(r->json, "top_heads", jtop);
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    return ERR_OK;
}
