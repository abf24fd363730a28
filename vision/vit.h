/* vit.h — the CLIP ViT vision tower and the LLaVA `mlp` projector from an mmproj GGUF.
 *
 * Computation (HF CLIPVisionModel + LlavaMultiModalProjector, not llama.cpp's graph):
 *   patches = unfold(pixels) W_patch^T          [P][d]   (conv stride = kernel = p)
 *   x = [class_embd; patches] + pos_embd        [N = P+1][d], CLS at row/position 0
 *   x = LayerNorm_pre(x)
 *   for each of n_run blocks (pre-LN):
 *       h = LN1(x); q,k,v = h W^T + b; a = softmax(q k^T / sqrt(hd)) v (bidirectional)
 *       x = x + a W_o^T + b_o
 *       h = LN2(x); x = x + act(h W_up^T + b_up) W_down^T + b_down   act = quick_gelu
 *                                                    (x sigmoid(1.702x)) or gelu per clip.use_gelu
 *   features = x[1..N)  (CLS dropped)
 *   tokens = GELU_erf(features W_0^T + b_0) W_2^T + b_2     [P][d_lm]
 *
 * Feature layer rule (converters: llama.cpp legacy convert_image_encoder_to_gguf.py):
 * the file stores exactly the blocks LLaVA needs. Without clip.vision.feature_layer
 * the legacy converter pops the last block (block_count = 23 for CLIP-L, LLaVA's
 * vision_feature_layer = -2) so ALL stored blocks run. With clip.vision.feature_layer
 * (non-negative hidden-state indices; index f is the output of block f-1) we run
 * max(f) blocks; several distinct indices (feature concatenation) are unsupported.
 * v.post_ln, if present, is not applied (LLaVA does not use it). ffn_up / ffn_down are
 * told apart by shape (the first linear maps d -> n_ff), since older files swap the
 * names.
 *
 * Ownership: weights are views into the mmapped GGUF (any quant.h type; matmuls go
 * through mm_linear); small vectors (norms, biases, class/position embeddings) are
 * dequantized to f32 once at load. Activations live in one arena per vit_state_t,
 * sized at creation from the config. */
#ifndef LLAVA_MECH_VIT_H
#define LLAVA_MECH_VIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/err.h"
#include "../core/gguf.h"
#include "../core/hook.h"
#include "../core/matmul.h"
#include "../core/tensor.h"
#include "image.h"
#include "preprocess.h"

typedef struct {
    int image_size, patch_size, grid, n_patches, n_tokens; /* n_tokens = n_patches + 1 */
    int d, n_ff, n_head, head_dim;
    int n_stored; /* clip.vision.block_count */
    int n_run;    /* blocks executed (feature layer rule above) */
    int feature_layer; /* from the file, -1 when absent */
    int d_proj_hidden, d_out;
    float eps;
    bool use_gelu;
    float image_mean[3], image_std[3];
} vit_config;

typedef struct {
    const tensor_t *q_w, *k_w, *v_w, *o_w, *up_w, *down_w;
    const float *q_b, *k_b, *v_b, *o_b, *up_b, *down_b;
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
} vit_block;

typedef struct vit vit_t;

/* Opens and validates an mmproj file (owned by the vit_t). */
err_code vit_load(vit_t **out, const char *path, err_t *err);
/* Same from an open GGUF the caller keeps alive (and closes) after vit_free. */
err_code vit_load_gguf(vit_t **out, const gguf_t *g, err_t *err);
void vit_free(vit_t *v);
const vit_config *vit_get_config(const vit_t *v);
const gguf_t *vit_gguf(const vit_t *v);
/* FLOPs of one forward (2 per multiply-add, matmuls and attention only). */
double vit_flops(const vit_config *c);

typedef struct {
    arena_t arena;
    int64_t n_tokens;
    float *pixels;    /* [3][S][S] input of vit_encode */
    float *patches;   /* [P][3 p p] */
    float *x;         /* [N][d] residual stream */
    float *h;         /* [N][d] normalised */
    float *q, *k, *v; /* [N][d] */
    float *att;       /* [H][N][N] */
    float *a;         /* [N][d] attention heads concatenated */
    float *o;         /* [N][d] sublayer output */
    float *ff, *ff_act; /* [N][n_ff] */
    float *mm_hidden; /* [P][d_proj_hidden] */
    float *tokens;    /* [P][d_out]: the result */
} vit_state_t;

err_code vit_state_create(vit_state_t *st, const vit_t *v, err_t *err);
void vit_state_free(vit_state_t *st);

/* pixels: [3][S][S] normalised (preprocess.h). Runs the tower and the projector; the
 * image tokens end up in st->tokens ([P][d_out]) and, when out != NULL, are copied
 * there. hooks may be NULL. Hook points (shape, slowest first):
 *   v.embed [N][d] (after + pos), v.pre_ln [N][d],
 *   v.blk.L.{ln1, attn.q, attn.k, attn.v} [N][d], v.blk.L.attn.pattern [H][N][N],
 *   v.blk.L.attn_out [N][d] (after W_o, before the residual add), v.blk.L.resid_mid,
 *   v.blk.L.ln2 [N][d], v.blk.L.mlp.hidden [N][n_ff] (after the activation),
 *   v.blk.L.resid_post [N][d], mm.hidden [P][d_proj_hidden] (after GELU), mm.out.
 * A hook may modify the activation in place; the forward continues from it. */
err_code vit_forward(const vit_t *v, vit_state_t *st, mm_ctx_t *mm, const float *pixels, const hook_set_t *hooks,
                     float *out, err_t *err);

/* Convenience: preprocess `image` with the file's image_size/mean/std through
 * `pipeline` into st->pixels, record the geometry in *geom (may be NULL), then
 * vit_forward. The tokens end up in st->tokens. */
err_code vit_encode(const vit_t *v, vit_state_t *st, mm_ctx_t *mm, const img_t *image, pp_pipeline pipeline,
                    const hook_set_t *hooks, pp_geom *geom, err_t *err);

#endif
