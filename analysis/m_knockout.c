/* Method 3, attention knockout (Geva et al. 2023): the pre-softmax score of chosen
 * (query, key) pairs is set to -inf in a window of layers, all heads, through the
 * LM's attention-bias callback. Layers before the window and positions before the
 * first knocked query are unchanged, so each run resumes from the shared forward's
 * snapshot at (first window layer, first query position).
 * The map knocks out one patch -> T edge in every layer at a time (P resumes of one
 * position each): drop in log p(w). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

typedef struct {
    int layer0, layer1;   /* window [layer0, layer1) */
    int64_t q0, q1;       /* knocked query positions [q0, q1) */
    const int64_t *keys;  /* knocked key positions */
    int64_t n_keys;
} ko_edges;

static int ko_bias(void *user, int layer, int64_t q_pos0, int64_t Nq, int64_t Nk, float *bias) {
    const ko_edges *e = user;
    if (layer < e->layer0 || layer >= e->layer1) return 0;
    int any = 0;
    for (int64_t i = 0; i < Nq; i++) {
        int64_t q = q_pos0 + i;
        if (q < e->q0 || q >= e->q1) continue;
        for (int64_t k = 0; k < e->n_keys; k++)
            if (e->keys[k] < Nk) {
                bias[i * Nk + e->keys[k]] = -INFINITY;
                any = 1;
            }
    }
    return any;
}

typedef struct {
    float logp, p;
    int32_t argmax;
} ko_outcome;

static err_code ko_run(const ex_input *in, const ex_capture_t *cap, const ko_edges *e, ko_outcome *out, err_t *err) {
    lm_run_opts o = {.bias_fn = ko_bias, .bias_user = (void *)e};
    err_code rc = lm_resume(in->st, &cap->snap, e->layer0, e->q0, &o, err);
    if (rc) return rc;
    const float *lg = lm_state_logits(in->st);
    const int64_t V = in->lm->cfg.n_vocab;
    out->logp = ex_logp_of(lg, V, cap->target);
    out->p = expf(out->logp);
    int32_t am = 0;
    for (int32_t v = 1; v < V; v++)
        if (lg[v] > lg[am]) am = v;
    out->argmax = am;
    return ERR_OK;
}

enum { KO_IMAGE_T, KO_OBJECT_T, KO_REST_T, KO_IMAGE_TEXT, KO_N_SETS };
static const char *const set_names[KO_N_SETS] = {"image -> T", "object -> T", "image except object -> T",
                                                 "image -> text after image"};

err_code ex_knockout(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err) {
    const int L = cap->n_layer;
    const int64_t n = cap->n, s = in->img_start, P = in->n_image, T = in->T;
    const int k = opt->window > 0 ? (opt->window < L ? opt->window : L) : (L / 4 > 0 ? L / 4 : 1);
    const int n_win = L - k + 1 + 1; /* sliding windows, then "all" */
    int64_t *image = malloc(sizeof(int64_t) * (size_t)P), *obj = malloc(sizeof(int64_t) * (size_t)P),
            *rest = malloc(sizeof(int64_t) * (size_t)P);
    r->xticks = calloc((size_t)n_win, sizeof *r->xticks);
    if (!image || !obj || !rest || !r->xticks) {
        free(image), free(obj), free(rest);
        return err_set(err, ERR_NOMEM, "knockout: out of memory");
    }
    int64_t n_obj = 0, n_rest = 0;
    unsigned char *is_obj = calloc((size_t)P, 1);
    for (int i = 0; i < in->n_object_patches && is_obj; i++)
        if (in->object_patches[i] >= 0 && in->object_patches[i] < P) is_obj[in->object_patches[i]] = 1;
    for (int64_t j = 0; j < P; j++) {
        image[j] = s + j;
        if (is_obj && is_obj[j]) obj[n_obj++] = s + j;
        else rest[n_rest++] = s + j;
    }
    free(is_obj);

    bool active[KO_N_SETS] = {true, n_obj > 0, n_obj > 0, s + P < n};
    ko_edges sets[KO_N_SETS] = {
        {0, 0, T, T + 1, image, P}, {0, 0, T, T + 1, obj, n_obj}, {0, 0, T, T + 1, rest, n_rest}, {0, 0, s + P, n, image, P}};
    err_code rc = ERR_OK;
    int n_series = 0;
    cJSON *windows = cJSON_CreateArray();
    for (int w = 0; w < n_win; w++) {
        int l0 = w < n_win - 1 ? w : 0, l1 = w < n_win - 1 ? w + k : L;
        if (w < n_win - 1) snprintf(r->xticks[w], sizeof r->xticks[w], k == 1 ? "%d" : "%d-%d", l0, l1 - 1);
        else snprintf(r->xticks[w], sizeof r->xticks[w], "all");
        cJSON *jw = cJSON_CreateObject();
        cJSON *layers = cJSON_CreateArray();
        cJSON_AddItemToArray(layers, cJSON_CreateNumber(l0));
        cJSON_AddItemToArray(layers, cJSON_CreateNumber(l1 - 1));
        cJSON_AddItemToObject(jw, "layers", layers);
        cJSON *edges = cJSON_CreateObject();
        for (int e = 0, si = 0; e < KO_N_SETS; e++) {
            if (!active[e]) continue;
            sets[e].layer0 = l0;
            sets[e].layer1 = l1;
            ko_outcome o;
            if ((rc = ko_run(in, cap, &sets[e], &o, err))) break;
            if (w == 0) {
                r->series[si].y = malloc(sizeof(float) * (size_t)n_win);
                r->series[si].points = n_win;
                snprintf(r->series[si].name, sizeof r->series[si].name, "%s", set_names[e]);
                n_series = si + 1;
            }
            if (r->series[si].y) r->series[si].y[w] = o.logp - cap->logp_target;
            si++;
            cJSON *je = cJSON_CreateObject();
            cJSON_AddItemToObject(je, "p_before", ex_json_number(cap->p_target));
            cJSON_AddItemToObject(je, "p_after", ex_json_number(o.p));
            cJSON_AddItemToObject(je, "logp_before", ex_json_number(cap->logp_target));
            cJSON_AddItemToObject(je, "logp_after", ex_json_number(o.logp));
            cJSON_AddNumberToObject(je, "argmax_after", o.argmax);
            cJSON_AddBoolToObject(je, "argmax_changed", o.argmax != cap->argmax);
            cJSON_AddItemToObject(edges, set_names[e], je);
        }
        cJSON_AddItemToObject(jw, "edges", edges);
        cJSON_AddItemToArray(windows, jw);
        if (rc) break;
    }
    r->n_series = n_series;
    r->n_points = n_win;
    r->chart_bars = true; /* windows are categories (the last is "all"), not a sequence */

    /* the per-patch map */
    if (!rc && opt->knockout_map) {
        r->map = calloc((size_t)P, sizeof(float));
        if (!r->map) rc = err_set(err, ERR_NOMEM, "knockout: out of memory");
        for (int64_t j = 0; j < P && !rc; j++) {
            ko_edges e = {0, L, T, T + 1, &image[j], 1};
            ko_outcome o;
            if (!(rc = ko_run(in, cap, &e, &o, err))) r->map[j] = cap->logp_target - o.logp;
        }
    }
    free(image), free(obj), free(rest);
    if (rc) {
        cJSON_Delete(windows);
        return rc;
    }
    snprintf(r->chart_title, sizeof r->chart_title, "attention knockout: change in log p(target), window %d layer%s", k,
             k == 1 ? "" : "s");
    snprintf(r->xlabel, sizeof r->xlabel, "knocked LM layers");
    snprintf(r->ylabel, sizeof r->ylabel, "log p after - log p before");
    snprintf(r->agg, sizeof r->agg, "patch -> T knocked out in all %d layers, all heads", L);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition",
                            "pre-softmax scores of (query, key) pairs set to -inf in a window of layers, all heads");
    cJSON_AddNumberToObject(r->json, "window", k);
    cJSON_AddNumberToObject(r->json, "object_patches", (double)n_obj);
    cJSON_AddItemToObject(r->json, "windows", windows);
    if (r->map) {
        cJSON_AddStringToObject(r->json, "map_definition",
                                "log p(w) before - after knocking out the edge patch -> T in every layer");
        cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    }
    return ERR_OK;
}
