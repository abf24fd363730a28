/* The vision tower's side of methods 1 and 2: the CLS row of every ViT layer's
 * attention over the patches, and the ViT rollout (Abnar & Zuidema) through the
 * layers LLaVA runs (up to the feature layer). The rollout's patch-to-patch block
 * composes with an LM map over image tokens: composed = lm_map R_vit[patches, patches],
 * tracing the LM's weights on image tokens back to the patches that fed them. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

typedef struct {
    ex_vit_capture_t *vc;
} vit_hook_ctx;

static int on_vit_pattern(void *user, const hook_info *info, float *data) {
    ex_vit_capture_t *vc = user;
    int l = -1;
    if (sscanf(info->name, "v.blk.%d.", &l) != 1 || l < 0 || l >= vc->n_layer) return 0;
    const int64_t H = info->shape[0], N = info->shape[1], P = N - 1;
    if (N != vc->N || H != vc->n_head) return 0;
    float *f = vc->fused + (int64_t)l * N * N;
    memset(f, 0, sizeof(float) * (size_t)(N * N));
    for (int64_t h = 0; h < H; h++) {
        const float *a = data + h * N * N;
        for (int64_t i = 0; i < N * N; i++) f[i] += a[i] / (float)H;
        memcpy(vc->cls + ((int64_t)l * H + h) * P, a + 1, sizeof(float) * (size_t)P);
    }
    return 0;
}

err_code ex_vit_capture_init(ex_vit_capture_t *vc, int n_layer, int n_head, int grid, hook_set_t *vhooks, err_t *err) {
    memset(vc, 0, sizeof *vc);
    vc->n_layer = n_layer;
    vc->n_head = n_head;
    vc->grid = grid;
    vc->N = (int64_t)grid * grid + 1;
    vc->fused = calloc((size_t)(n_layer * vc->N * vc->N), sizeof(float));
    vc->cls = calloc((size_t)(n_layer * n_head * (vc->N - 1)), sizeof(float));
    if (!vc->fused || !vc->cls) {
        ex_vit_capture_free(vc);
        return err_set(err, ERR_NOMEM, "vit maps: cannot allocate %d layers of %lld x %lld attention", n_layer,
                       (long long)vc->N, (long long)vc->N);
    }
    return hook_add(vhooks, "v.blk.*.attn.pattern", on_vit_pattern, vc, err);
}

void ex_vit_capture_free(ex_vit_capture_t *vc) {
    free(vc->fused);
    free(vc->cls);
    memset(vc, 0, sizeof *vc);
}

err_code ex_vit_attention(const ex_vit_capture_t *vc, ex_result *r, err_t *err) {
    const int L = vc->n_layer, H = vc->n_head;
    const int64_t P = vc->N - 1;
    memset(r, 0, sizeof *r);
    r->method = EX_VIT_ATTENTION;
    r->map = calloc((size_t)P, sizeof(float));
    r->maps = calloc((size_t)(L * P), sizeof(float));
    r->map_labels = calloc((size_t)L, sizeof *r->map_labels);
    if (!r->map || !r->maps || !r->map_labels) return err_set(err, ERR_NOMEM, "vit-attention: out of memory");
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < H; h++)
            for (int64_t j = 0; j < P; j++) r->maps[(int64_t)l * P + j] += vc->cls[((int64_t)l * H + h) * P + j] / H;
        for (int64_t j = 0; j < P; j++) r->map[j] += r->maps[(int64_t)l * P + j] / L;
        snprintf(r->map_labels[l], sizeof r->map_labels[l], "ViT layer %d", l);
    }
    r->n_maps = L;
    snprintf(r->agg, sizeof r->agg, "ViT CLS row, mean over %d layers x %d heads", L, H);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition", "ViT attention of the CLS token (row 0) over the patches, per layer");
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    cJSON *pl = cJSON_CreateArray();
    for (int l = 0; l < L; l++) cJSON_AddItemToArray(pl, ex_json_floats(r->maps + (int64_t)l * P, P));
    cJSON_AddItemToObject(r->json, "per_layer", pl);
    float *heads = malloc(sizeof(float) * (size_t)(L * H * P));
    if (heads) {
        memcpy(heads, vc->cls, sizeof(float) * (size_t)(L * H * P));
        int64_t shape[3] = {L, H, P};
        ex_result_add_array(r, "cls_heads", false, 3, shape, heads);
    }
    return ERR_OK;
}

err_code ex_vit_rollout(const ex_vit_capture_t *vc, const float *lm_map, ex_result *r, err_t *err) {
    const int L = vc->n_layer;
    const int64_t N = vc->N, P = N - 1;
    memset(r, 0, sizeof *r);
    r->method = EX_VIT_ROLLOUT;
    float *R = malloc(sizeof(float) * (size_t)(N * N)), *A = malloc(sizeof(float) * (size_t)(N * N)),
          *T = malloc(sizeof(float) * (size_t)(N * N));
    r->map = calloc((size_t)P, sizeof(float));
    r->maps = calloc((size_t)(2 * P), sizeof(float));
    r->map_labels = calloc(2, sizeof *r->map_labels);
    if (!R || !A || !T || !r->map || !r->maps || !r->map_labels) {
        free(R), free(A), free(T);
        return err_set(err, ERR_NOMEM, "vit-rollout: out of memory");
    }
    /* R = Â_{L-1} ... Â_0, built left-multiplying layer by layer. */
    memset(R, 0, sizeof(float) * (size_t)(N * N));
    for (int64_t i = 0; i < N; i++) R[i * N + i] = 1;
    for (int l = 0; l < L; l++) {
        const float *f = vc->fused + (int64_t)l * N * N;
        for (int64_t i = 0; i < N; i++) {
            double s = 0;
            for (int64_t k = 0; k < N; k++) s += 0.5 * f[i * N + k] + (k == i ? 0.5 : 0.0);
            for (int64_t k = 0; k < N; k++) A[i * N + k] = (float)((0.5 * f[i * N + k] + (k == i ? 0.5 : 0.0)) / s);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)N, (int)N, 1.0f, A, (int)N, R, (int)N,
                    0.0f, T, (int)N);
        float *tmp = R;
        R = T;
        T = tmp;
    }
    for (int64_t j = 0; j < P; j++) r->map[j] = r->maps[j] = R[1 + j];
    snprintf(r->map_labels[0], sizeof r->map_labels[0], "ViT CLS rollout");
    r->n_maps = 1;
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "definition",
                            "ViT rollout R = A'_{L-1}...A'_0, A'_l = rownorm(0.5*mean_h A_l + 0.5*I); map = R[CLS, patches]");
    cJSON_AddNumberToObject(r->json, "layers", L);
    cJSON_AddItemToObject(r->json, "map", ex_json_floats(r->map, P));
    if (lm_map) {
        float *comp = r->maps + P;
        for (int64_t i = 0; i < P; i++) {
            if (lm_map[i] == 0) continue;
            const float *row = R + (1 + i) * N + 1;
            for (int64_t j = 0; j < P; j++) comp[j] += lm_map[i] * row[j];
        }
        snprintf(r->map_labels[1], sizeof r->map_labels[1], "LM rollout x ViT rollout");
        r->n_maps = 2;
        cJSON_AddStringToObject(r->json, "composed_definition",
                                "composed[j] = sum_i lm_rollout[i] * R[patch i, patch j]");
        cJSON_AddItemToObject(r->json, "composed_with_lm", ex_json_floats(comp, P));
    }
    snprintf(r->agg, sizeof r->agg, "ViT CLS row through %d layers%s", L,
             lm_map ? "; grid also shows the LM rollout composed with it" : "");
    free(R), free(A), free(T);
    return ERR_OK;
}
