/* explain.h — analysis passes over one image-question pair (../shared/docs/methods.md,
 * forward-only methods 1-7): attention, rollout, knockout, occlusion, logit-lens,
 * heads, dla.
 *
 * Every pass is a library function built on the LM's public hook points, attention
 * bias callback and snapshots (language/llama.h) — no special case inside the model.
 * One shared forward (ex_capture) records what the forward-only methods need: the
 * residual entering every layer at every position and the KV cache (a snapshot), the
 * head-fused attention matrices, and per-head attention rows, per-head outputs z,
 * attention and MLP outputs at the explained position T. Methods that intervene
 * (knockout, occlusion) resume from that snapshot instead of re-running the prefix.
 *
 * Notation as methods.md: image tokens at positions [s, s+P), P = grid_h*grid_w,
 * row-major; T the explained position (the last prompt position); w the target token.
 * Every map is P floats, row-major over the grid, larger = more important. */
#ifndef LLAVA_MECH_EXPLAIN_H
#define LLAVA_MECH_EXPLAIN_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/err.h"
#include "language/llama.h"
#include "vision/vit.h"

typedef enum {
    EX_ATTENTION = 0,
    EX_ROLLOUT,
    EX_KNOCKOUT,
    EX_OCCLUSION,
    EX_LOGIT_LENS,
    EX_HEADS,
    EX_DLA,
    EX_N_METHODS,
    /* the vision tower's side of attention and rollout (vit_maps.c); run alongside them */
    EX_VIT_ATTENTION = EX_N_METHODS,
    EX_VIT_ROLLOUT,
    EX_N_ALL
} ex_method;

const char *ex_method_name(ex_method m);
int ex_method_from_name(const char *name); /* -1 when unknown */
/* Parses "attention,rollout" (or "all", or "default") into a bit set of (1 << ex_method). */
err_code ex_methods_parse(const char *list, unsigned *mask, err_t *err);
#define EX_DEFAULT_METHODS                                                                          \
    ((1u << EX_ATTENTION) | (1u << EX_ROLLOUT) | (1u << EX_KNOCKOUT) | (1u << EX_OCCLUSION) |      \
     (1u << EX_LOGIT_LENS) | (1u << EX_HEADS) | (1u << EX_DLA))

typedef enum { EX_FUSE_MEAN = 0, EX_FUSE_MAX, EX_FUSE_MIN } ex_fusion;
/* Where occlusion replaces a block: its LM-input embeddings by the baseline (tokens), or
 * its pixels in the model image by the mean colour, re-encoded by the vision tower
 * (pixels; methods.md 4). */
typedef enum { EX_OCC_TOKENS = 0, EX_OCC_PIXELS } ex_occ_space;
const char *ex_occ_space_name(ex_occ_space s);
int ex_occ_space_from_name(const char *name); /* -1 when unknown */
/* Occluded copies per batch when ex_options.occ_batch <= 0 (measured: README, bench explain). */
#define EX_OCC_BATCH_DEFAULT 8

typedef struct {
    /* rollout */
    ex_fusion fusion;
    float discard_ratio;   /* fraction of the smallest fused weights per row set to 0 (not the diagonal) */
    /* knockout */
    int window;            /* layers per window; <= 0: max(1, n_layer/4) */
    bool knockout_map;     /* also the per-patch map: knock out patch->T edges in all layers */
    /* occlusion */
    int occ_block;         /* k: k x k blocks of patches (default 1) */
    int occ_stride;        /* default = block */
    const float *baseline; /* [dim] replacement embedding, or [baseline_rows][dim] one per image
                              position (row-major grid order); NULL = zero vector */
    int64_t baseline_rows; /* 1, or the number of image tokens for a per-position baseline */
    const char *baseline_name;
    ex_occ_space occ_space; /* EX_OCC_TOKENS (default) or EX_OCC_PIXELS */
    int occ_batch;         /* occluded copies per batch (one GEMM per weight); <= 0: EX_OCC_BATCH_DEFAULT */
    int occ_sample;        /* > 0: run only this many batches, spread evenly over the sweep, and
                              leave the other blocks at 0 (benchmarks of large models) */
    /* logit-lens */
    int top_k;             /* default 5 */
    bool lens_cached_scale; /* TransformerLens's cached final-RMS variant instead of re-normalising */
    /* heads / dla */
    bool heads_true_norm;  /* heads: true normaliser instead of Yu's frozen final one */
    int top_heads;         /* heads whose per-patch maps are reported; default 3 */
} ex_options;

void ex_options_default(ex_options *o);

/* What the passes explain. The LM state must have room for n positions; the passes
 * leave it in an unspecified state. */
typedef struct {
    const lm_model_t *lm;
    lm_state_t *st;
    const int32_t *ids;     /* prompt with -1 at image slots */
    int64_t n;
    const float *img_embd;  /* [n_image][dim] projector outputs */
    int64_t img_start;      /* s */
    int64_t n_image;        /* P */
    int grid_h, grid_w;
    int64_t T;              /* explained position; must be n-1 */
    int32_t target;         /* w; < 0: the argmax at T */
    const int32_t *object_patches; /* optional: patch indices of the target object (knockout edge sets) */
    int n_object_patches;
    const struct tok *tok;  /* optional: names tokens in the report */
    /* pixel-space occlusion only: the vision tower + projector, its state (left in an
     * unspecified state), the normalised model input [3][S][S] that gave img_embd, and
     * the preprocessing geometry (for the occluded boxes in original pixels; optional) */
    const vit_t *vit;
    vit_state_t *vst;
    const float *pixels;
    const pp_geom *geom;
} ex_input;

/* The shared forward's record. */
typedef struct {
    int n_layer, n_head, dim;
    int64_t n;              /* positions */
    lm_snapshot_t snap;     /* residual entering each layer (+ final) at every position, and the KV cache */
    float *fused;           /* [n_layer][n][n]: head-fused attention (per ex_options.fusion), causal */
    float *att_T;           /* [n_layer][n_head][n]: attention row of T per head */
    float *z_T;             /* [n_layer][n_head][head_dim]: per-head outputs at T before W_O */
    float *attn_out_T;      /* [n_layer][dim] */
    float *mlp_out_T;       /* [n_layer][dim] */
    float *logits;          /* [n_vocab] at T */
    int32_t target;         /* w (resolved) */
    float logp_target;      /* log p(w) at T */
    float p_target;
    int32_t argmax;
} ex_capture_t;

err_code ex_capture(ex_capture_t *cap, const ex_input *in, const ex_options *opt, err_t *err);
void ex_capture_free(ex_capture_t *cap);

/* A method's result: numbers for the report and arrays for the figures. */
typedef struct {
    char name[64];
    int n, points;          /* series count is implied by the owner; n = points */
    float *y;               /* [points] owned */
} ex_series;

#define EX_MAX_SERIES 6
#define EX_MAX_ARRAYS 6

typedef struct {
    char name[48];          /* file stem: <method>_<name>.npy */
    bool is_int;            /* int32 instead of float32 */
    int n_dims;
    int64_t shape[4];
    void *data;             /* owned */
} ex_array;

typedef struct {
    ex_method method;
    char agg[160];          /* layer/head aggregation, for titles and the report */
    float *map;             /* [P] or NULL; owned */
    int n_maps;             /* per-layer or per-head small maps */
    float *maps;            /* [n_maps][P] owned */
    char (*map_labels)[40]; /* [n_maps] owned */
    /* a chart (per-layer curves, knockout windows) */
    int n_series, n_points;
    ex_series series[EX_MAX_SERIES];
    char (*xticks)[40];     /* [n_points] owned, or NULL */
    char chart_title[96], xlabel[48], ylabel[48];
    bool chart_bars;
    /* a matrix heat map (e.g. layer x head scores) */
    float *heat;            /* [heat_rows][heat_cols] owned, or NULL */
    int heat_rows, heat_cols;
    char heat_title[96];
    /* large arrays, written as .npy next to the report and referenced from it */
    int n_arrays;
    ex_array arrays[EX_MAX_ARRAYS];
    cJSON *json;            /* method details, owned; the report takes it */
} ex_result;

/* Adds an owned array to r (data is taken over); returns false when full. */
bool ex_result_add_array(ex_result *r, const char *name, bool is_int, int n_dims, const int64_t *shape, void *data);
/* Labels the layer x head heat map and the per-layer attention / MLP bar chart that
 * heads and dla share (series 0 = attention, 1 = MLP, already filled with L values). */
void ex_result_layer_figures(ex_result *r, int L, int H, const char *what, const char *ylabel);
/* A JSON array of floats rounded to 7 significant digits (short, stable output). */
cJSON *ex_json_floats(const float *v, int64_t n);
cJSON *ex_json_number(double v);

void ex_result_free(ex_result *r);

/* One function per method (each in its own file). cap must come from ex_capture on
 * the same input. Interventions (knockout, occlusion) run more forwards on in->st. */
err_code ex_attention(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);
err_code ex_rollout(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);
err_code ex_knockout(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);
err_code ex_occlusion(const ex_input *in, ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);
err_code ex_logit_lens(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);
err_code ex_heads(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);
err_code ex_dla(const ex_input *in, const ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);
/* Dispatch by enum. */
err_code ex_run(ex_method m, const ex_input *in, ex_capture_t *cap, const ex_options *opt, ex_result *r, err_t *err);

/* The ViT side (CLS row of the vision tower's attention; ViT rollout, optionally
 * composed with an LM map over patches). Register the capture's hook on the vision
 * hook set before encoding the image (llava_encode_img_hooks), then run the passes. */
typedef struct {
    int n_layer, n_head, grid;
    int64_t N;     /* tokens: CLS + grid*grid patches */
    float *fused;  /* [n_layer][N][N]: mean over heads */
    float *cls;    /* [n_layer][n_head][P]: CLS row over the patches */
} ex_vit_capture_t;

err_code ex_vit_capture_init(ex_vit_capture_t *vc, int n_layer, int n_head, int grid, hook_set_t *vhooks, err_t *err);
void ex_vit_capture_free(ex_vit_capture_t *vc);
err_code ex_vit_attention(const ex_vit_capture_t *vc, ex_result *r, err_t *err);
/* lm_map [P] (e.g. the LM rollout map) or NULL. */
err_code ex_vit_rollout(const ex_vit_capture_t *vc, const float *lm_map, ex_result *r, err_t *err);

/* Scoring helpers shared by the methods. The score of a residual vector x is
 * log_softmax(U (g * x * rstd))[w]: rstd = 1/rms(x) (the true normaliser) or a frozen
 * value (Yu & Ananiadou's final-layer normaliser, TransformerLens's cached scale). */
float ex_rstd(const lm_model_t *lm, const float *x);
/* logits [n][n_vocab] of rows X [n][dim]; rstd [n] per row, or NULL for each row's own. */
err_code ex_unembed(const lm_state_t *st, const float *X, int64_t n, const float *rstd, float *logits, err_t *err);
/* log softmax(logits)[w] over V entries, in double. */
float ex_logp_of(const float *logits, int64_t V, int32_t w);

#endif
