/* ViT-side maps on the small random mmproj (tests/golden/vision/tiny_f32.gguf): the
 * CLS-row capture matches the attention the tower computed, and the rollout equals a
 * dense double-precision product of the per-layer matrices. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/explain.h"
#include "testutil.h"
#include "vision/vit.h"

int main(void) {
    err_t err = {0};
    vit_t *v = NULL;
    mm_ctx_t *mm = NULL;
    if (vit_load(&v, LM_SOURCE_DIR "/tests/golden/vision/tiny_f32.gguf", &err) || mm_ctx_create(&mm, 1, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    const vit_config *c = vit_get_config(v);
    vit_state_t st;
    CHECK_OK(vit_state_create(&st, v, &err), &err);
    const int S = c->image_size;
    float *pix = malloc(sizeof(float) * 3 * S * S);
    for (int i = 0; i < 3 * S * S; i++) pix[i] = sinf(0.37f * i) * 1.5f;
    hook_set_t hs;
    hook_set_init(&hs);
    ex_vit_capture_t vc;
    CHECK_OK(ex_vit_capture_init(&vc, c->n_run, c->n_head, c->grid, &hs, &err), &err);
    CHECK_OK(vit_forward(v, &st, mm, pix, &hs, NULL, &err), &err);
    const int64_t N = vc.N, P = N - 1;
    const int L = vc.n_layer;

    /* every fused row is a distribution; CLS rows of the heads leave A[0][0] out */
    for (int l = 0; l < L; l++)
        for (int64_t i = 0; i < N; i++) {
            double s = 0;
            for (int64_t k = 0; k < N; k++) s += vc.fused[((int64_t)l * N + i) * N + k];
            CHECK_NEAR(s, 1.0, 1e-5);
        }
    ex_result r;
    CHECK_OK(ex_vit_attention(&vc, &r, &err), &err);
    double m = 0;
    for (int64_t j = 0; j < P; j++) m += r.map[j];
    CHECK(m > 0 && m < 1.0 + 1e-6);
    ex_result_free(&r);

    float *lm_map = calloc((size_t)P, sizeof(float));
    lm_map[3] = 1.0f;
    CHECK_OK(ex_vit_rollout(&vc, lm_map, &r, &err), &err);
    {
        double *R = calloc((size_t)(N * N), sizeof(double)), *A = calloc((size_t)(N * N), sizeof(double)),
               *T = calloc((size_t)(N * N), sizeof(double));
        for (int64_t i = 0; i < N; i++) R[i * N + i] = 1;
        for (int l = 0; l < L; l++) {
            for (int64_t i = 0; i < N; i++)
                for (int64_t k = 0; k < N; k++)
                    A[i * N + k] = (0.5 * vc.fused[((int64_t)l * N + i) * N + k] + (i == k ? 0.5 : 0)) / 1.0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0;
                    for (int64_t k = 0; k < N; k++) s += A[i * N + k] * R[k * N + j];
                    T[i * N + j] = s;
                }
            memcpy(R, T, sizeof(double) * (size_t)(N * N));
        }
        for (int64_t j = 0; j < P; j++) {
            CHECK_NEAR(r.map[j], R[1 + j], 1e-5);
            CHECK_NEAR(r.maps[P + j], R[(1 + 3) * N + 1 + j], 1e-5); /* composed with e_3 = row of patch 3 */
        }
        free(R), free(A), free(T);
    }
    ex_result_free(&r);
    free(lm_map);
    ex_vit_capture_free(&vc);
    free(pix);
    vit_state_free(&st);
    mm_ctx_free(mm);
    vit_free(v);
    return test_result("test_vit_maps");
}
