/* model.h — the trainable toy LLaVA in f32: a CLIP-style ViT, the LLaVA-1.5 `mlp`
 * projector and a LLaMA decoder, with forward and backward built only from
 * core/ops.h (llm.c style).
 *
 * Contract:
 * - tm_create lays out every parameter in ONE allocation carved into named views
 *   (tm_weights); tm_views carves the same layout over any buffer of tm_n_params
 *   floats, which is how gradients and AdamW moments get matching views. The layout
 *   table (tm_param) names every tensor with its llama.cpp GGUF name and ne, so the
 *   GGUF writer walks the table instead of repeating names.
 * - The computation is the HF one that the inference code matches: CLS at position 0,
 *   learned position embeddings, pre_ln, pre-norm blocks with quick_gelu, the LM sees
 *   the output of the LAST stored ViT block with CLS dropped (legacy llava layout:
 *   every stored block runs, no post_ln). Projector: Linear, GELU(erf), Linear. LLaMA:
 *   RMSNorm, RoPE in the GGUF "normal" convention (adjacent pairs), GQA, SwiGLU,
 *   untied output.
 * - tm_state holds the activations of ONE example (allocated once, sized for
 *   cfg.max_seq); a forward keeps what the backward needs. tm_backward ACCUMULATES
 *   into the gradient views (callers zero them), so examples of a batch add up.
 * - Nothing allocates after tm_state_create; no function prints. */
#ifndef LLAVA_MECH_TOY_MODEL_H
#define LLAVA_MECH_TOY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define TM_MAX_BLOCKS 16
#define TM_NAME_MAX 48
#define TM_N_AUX 3 /* lens targets per image row (trainer: colour, shape, side) */

typedef struct {
    /* vision tower */
    int image_size, patch_size;
    int v_width, v_blocks, v_heads, v_ffn;
    float v_eps;
    /* language model */
    int d, n_layer, n_head, n_kv_head, head_dim, ffn, n_vocab;
    int max_seq; /* longest LM sequence a tm_state can hold */
    float rms_eps, rope_base;
} tm_config;

/* The shipped model's sizes (README "toy model"). */
void tm_config_default(tm_config *c, int n_vocab);
/* A tiny model for tests and finite differences (image 32 px, patch 8). */
void tm_config_micro(tm_config *c, int n_vocab);
/* ERR_ARG naming the first field that is out of range or inconsistent. */
err_code tm_config_check(const tm_config *c, err_t *err);
static inline int tm_n_patches(const tm_config *c) {
    return (c->image_size / c->patch_size) * (c->image_size / c->patch_size);
}

typedef struct {
    float *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    float *ln2_w, *ln2_b, *up_w, *up_b, *down_w, *down_b;
} tm_vblock;

typedef struct {
    float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
} tm_lblock;

typedef struct {
    float *patch_w;  /* [v_width][3][ps][ps] (conv without bias) */
    float *class_embd; /* [v_width] */
    float *pos_embd; /* [n_patches + 1][v_width], row 0 is CLS */
    float *pre_ln_w, *pre_ln_b;
    tm_vblock vb[TM_MAX_BLOCKS];
    float *mm0_w, *mm0_b, *mm2_w, *mm2_b; /* [d][v_width], [d], [d][d], [d] */
    float *tok_embd; /* [n_vocab][d] */
    tm_lblock lb[TM_MAX_BLOCKS];
    float *out_norm; /* [d] */
    float *output;   /* [n_vocab][d] */
} tm_weights;

enum { TM_FILE_LM = 0, TM_FILE_MMPROJ = 1 };

typedef struct {
    char name[TM_NAME_MAX]; /* llama.cpp GGUF tensor name */
    int file;               /* TM_FILE_* */
    bool decay;             /* AdamW weight decay applies (matrices only) */
    int n_dims;
    int64_t ne[4];          /* GGUF order, fastest first */
    size_t offset, n;       /* in floats within the parameter buffer */
} tm_param;

typedef struct {
    tm_config cfg;
    size_t n_params;
    float *params; /* one allocation, n_params floats */
    tm_weights w;  /* views into params */
    int n_tensors;
    tm_param *table; /* n_tensors entries, in layout order */
} tm_model;

err_code tm_create(tm_model *m, const tm_config *c, err_t *err);
void tm_free(tm_model *m);
/* Carves the layout over base (n_params floats): views for gradients and moments. */
void tm_views(const tm_model *m, float *base, tm_weights *w);
/* Deterministic initialisation from seed: linear weights N(0, 0.02), output
 * projections of residual branches N(0, 0.02/sqrt(2 L)) (GPT-2), norms 1, biases 0. */
void tm_init_params(tm_model *m, uint64_t seed);
/* TM_INIT_GPT2 is tm_init_params; TM_INIT_LECUN draws matrices from N(0, 1/fan_in)
 * (residual outputs also / sqrt(2 L)) and token embeddings from N(0, 1). */
enum { TM_INIT_GPT2 = 0, TM_INIT_LECUN = 1 };
void tm_init_params_ex(tm_model *m, uint64_t seed, int scheme);

/* One training/eval example. The LM input is ids[0..n) with -1 in the n_patches image
 * slots starting at image_start; targets[j] is the token that must follow position
 * t0 + j, for j < n_targets (the last rows of the sequence: t0 + n_targets == n). */
typedef struct {
    const float *img; /* [3][image_size][image_size], normalised */
    const int32_t *ids;
    int64_t n, image_start;
    const int32_t *targets;
    int64_t t0, n_targets;
    /* Training aids, NULL/0 for plain examples (see train.c for why they exist):
     * lm_bias [n][n] is added to every LM attention score (-INFINITY hides a key);
     * aux_targets [TM_N_AUX][n_patches] are token ids (-1 = none) that each image row of the
     * LM input must predict through the model's own final norm and output head
     * (a layer-0 logit lens), weighted by aux_weight / (number of ids >= 0). */
    const float *lm_bias;
    const int32_t *aux_targets;
    float aux_weight;
    bool lens_only; /* skip the LM layers and the answer loss: train the tower by the lens alone */
    float image_grad; /* factor on the answer loss's gradient into the projector and tower (0 = as 1) */
} tm_example;

typedef struct tm_state tm_state;

err_code tm_state_create(tm_state **out, const tm_config *c, err_t *err);
void tm_state_free(tm_state *s);
/* Logits of the target rows after tm_forward: [n_targets][n_vocab]. */
const float *tm_state_logits(const tm_state *s);
/* The auxiliary lens loss of the last tm_forward (mean over its ids; 0 without). */
double tm_state_aux_loss(const tm_state *s);

/* Runs the model; returns the summed cross-entropy over the target rows in *loss_sum
 * (may be NULL). ERR_RANGE when the example does not fit cfg (length, image span). */
err_code tm_forward(const tm_model *m, tm_state *s, const tm_example *ex, double *loss_sum, err_t *err);
/* Backward of the last tm_forward on the same example: accumulates d(scale * loss_sum)
 * into g. */
void tm_backward(const tm_model *m, tm_state *s, const tm_example *ex, const tm_weights *g, float scale);

#endif
