/* Method table, options, results, dispatch and the shared scoring helpers. */
#include "explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[EX_N_ALL] = {
    "attention", "rollout", "knockout", "occlusion", "logit-lens", "heads", "dla", "vit-attention", "vit-rollout",
};

const char *ex_method_name(ex_method m) { return (unsigned)m < EX_N_ALL ? method_names[m] : "?"; }

int ex_method_from_name(const char *name) {
    for (int i = 0; i < EX_N_METHODS; i++)
        if (!strcmp(name, method_names[i])) return i;
    return -1;
}

err_code ex_methods_parse(const char *list, unsigned *mask, err_t *err) {
    *mask = 0;
    if (!strcmp(list, "all") || !strcmp(list, "default")) {
        *mask = EX_DEFAULT_METHODS;
        return ERR_OK;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[32];
        if (len == 0 || len >= sizeof name)
            return err_set(err, ERR_ARG, "bad method list '%s' (methods: attention, rollout, knockout, occlusion, "
                                         "logit-lens, heads, dla, or all)", list);
        memcpy(name, p, len);
        name[len] = '\0';
        int m = ex_method_from_name(name);
        if (m < 0)
            return err_set(err, ERR_ARG, "unknown method '%s' (methods: attention, rollout, knockout, occlusion, "
                                         "logit-lens, heads, dla, or all)", name);
        *mask |= 1u << m;
        p += len + (e ? 1 : 0);
    }
    if (!*mask) return err_set(err, ERR_ARG, "empty method list");
    return ERR_OK;
}

static const char *const occ_space_names[] = {"tokens", "pixels"};

const char *ex_occ_space_name(ex_occ_space s) { return (unsigned)s < 2 ? occ_space_names[s] : "?"; }

int ex_occ_space_from_name(const char *name) {
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, occ_space_names[i])) return i;
    return -1;
}

void ex_options_default(ex_options *o) {
    memset(o, 0, sizeof *o);
    o->fusion = EX_FUSE_MEAN;
    o->knockout_map = true;
    o->occ_block = 1;
    o->top_k = 5;
    o->top_heads = 3;
    o->baseline_name = "zero";
    o->baseline_rows = 1;
}

void ex_result_free(ex_result *r) {
    free(r->map);
    free(r->maps);
    free(r->map_labels);
    free(r->xticks);
    for (int i = 0; i < EX_MAX_SERIES; i++) free(r->series[i].y);
    for (int i = 0; i < r->n_arrays; i++) free(r->arrays[i].data);
    free(r->heat);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

bool ex_result_add_array(ex_result *r, const char *name, bool is_int, int n_dims, const int64_t *shape, void *data) {
    if (r->n_arrays >= EX_MAX_ARRAYS || n_dims < 1 || n_dims > 4) return false;
    ex_array *a = &r->arrays[r->n_arrays++];
    snprintf(a->name, sizeof a->name, "%s", name);
    a->is_int = is_int;
    a->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++) a->shape[i] = shape[i];
    a->data = data;
    return true;
}

void ex_result_layer_figures(ex_result *r, int L, int H, const char *what, const char *ylabel) {
    r->heat_rows = L;
    r->heat_cols = H;
    snprintf(r->heat_title, sizeof r->heat_title, "%s per head (rows: layers, columns: heads)", what);
    r->n_series = 2;
    r->n_points = L;
    r->chart_bars = true;
    for (int k = 0; k < 2; k++) r->series[k].points = L;
    snprintf(r->series[0].name, sizeof r->series[0].name, "attention");
    snprintf(r->series[1].name, sizeof r->series[1].name, "MLP");
    snprintf(r->chart_title, sizeof r->chart_title, "%s of the target per layer", what);
    snprintf(r->xlabel, sizeof r->xlabel, "LM layer");
    snprintf(r->ylabel, sizeof r->ylabel, "%s", ylabel);
}

cJSON *ex_json_number(double d) {
    if (!isfinite(d)) return cJSON_CreateNull(); /* JSON has no inf/nan */
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", d);
    return cJSON_CreateNumber(strtod(buf, NULL));
}

cJSON *ex_json_floats(const float *v, int64_t n) {
    cJSON *arr = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, ex_json_number(v[i]));
    return arr;
}

err_code ex_run(ex_method m, const ex_input *in, ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    memset(r, 0, sizeof *r);
    r->method = m;
    switch (m) {
    case EX_ATTENTION: return ex_attention(in, cap, opt, r, err);
    case EX_ROLLOUT: return ex_rollout(in, cap, opt, r, err);
    case EX_KNOCKOUT: return ex_knockout(in, cap, opt, r, err);
    case EX_OCCLUSION: return ex_occlusion(in, cap, opt, r, err);
    case EX_LOGIT_LENS: return ex_logit_lens(in, cap, opt, r, err);
    case EX_HEADS: return ex_heads(in, cap, opt, r, err);
    case EX_DLA: return ex_dla(in, cap, opt, r, err);
    default: return err_set(err, ERR_ARG, "unknown method %d", (int)m);
    }
}

float ex_rstd(const lm_model_t *lm, const float *x) {
    double ss = 0;
    for (int i = 0; i < lm->cfg.dim; i++) ss += (double)x[i] * x[i];
    return (float)(1.0 / sqrt(ss / lm->cfg.dim + lm->cfg.norm_eps));
}

err_code ex_unembed(const lm_state_t *st, const float *X, int64_t n, const float *rstd, float *logits, err_t *err) {
    const lm_model_t *lm = st->m;
    const int64_t D = lm->cfg.dim;
    float *xn = malloc(sizeof(float) * (size_t)(n * D));
    if (!xn) return err_set(err, ERR_NOMEM, "explain: cannot allocate %lld rows for unembedding", (long long)n);
    const float *g = lm->w.output_norm_f32;
    for (int64_t r = 0; r < n; r++) {
        const float *x = X + r * D;
        float s = rstd ? rstd[r] : ex_rstd(lm, x);
        for (int64_t i = 0; i < D; i++) xn[r * D + i] = x[i] * s * g[i];
    }
    err_code rc = mm_linear(st->mm, logits, xn, n, D, lm->w.output, NULL, err);
    free(xn);
    return rc;
}

float ex_logp_of(const float *logits, int64_t V, int32_t w) {
    double mx = logits[0];
    for (int64_t v = 1; v < V; v++)
        if (logits[v] > mx) mx = logits[v];
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += exp((double)logits[v] - mx);
    return (float)((double)logits[w] - mx - log(sum));
}
