/* llama.h — the LLaMA decoder (general.architecture = "llama") on CPU, with hooks.
 *
 * Three structs, llama2.c style: lm_config_t (hyper-parameters from the GGUF keys
 * llama.*), lm_weights_t (views into the mmapped GGUF; any quant.h type, multiplied
 * through mm_linear), lm_state_t (RunState: activation buffers allocated once for
 * n_batch rows + the KV cache for n_ctx positions). Nothing allocates per token.
 *
 * The forward of one layer, for the rows x of a span of positions (HF
 * LlamaDecoderLayer; RoPE in the GGUF convention of ops_rope_fwd):
 *   h = rmsnorm(x) * attn_norm                          blk.L.attn_norm
 *   q = rope(h Wq^T), k = rope(h Wk^T), v = h Wv^T      blk.L.attn.q / .k / .v
 *   A = softmax(q k^T / sqrt(hd) + bias + causal mask)  blk.L.attn.pattern
 *   z = A v (per head)                                  blk.L.attn.z
 *   a = z Wo^T                                          blk.L.attn_out
 *   x = x + a                                           blk.L.resid_mid
 *   h = rmsnorm(x) * ffn_norm                           blk.L.ffn_norm
 *   m = silu(h Wgate^T) * (h Wup^T)                     blk.L.mlp.hidden
 *   o = m Wdown^T                                       blk.L.mlp_out
 *   x = x + o                                           blk.L.resid_post
 * then final_norm = rmsnorm(x) * output_norm and logits = final_norm Wout^T.
 *
 * Hook points (core/hook.h; every activation, row-major, shape[0] slowest, pos0 =
 * absolute position of row 0):
 *   embed [n][dim]                      (token embeddings with image rows spliced in)
 *   blk.L.attn_norm, blk.L.attn_out, blk.L.resid_mid, blk.L.ffn_norm, blk.L.mlp_out,
 *   blk.L.resid_post [n][dim]
 *   blk.L.attn.q [n][n_head][hd]        AFTER RoPE (the values the scores use)
 *   blk.L.attn.k, blk.L.attn.v [n][n_kv_head][hd]  k AFTER RoPE; these are the rows
 *                                       of the KV cache, so an edit persists for later
 *                                       tokens
 *   blk.L.attn.pattern [n_head][n][Nk]  post-softmax, Nk = pos0 + n keys; when a hook
 *                                       a hook may edit it: z is then recomputed
 *                                       from the edited pattern (an observing
 *                                       hook leaves the forward bit-identical)
 *   blk.L.attn.z [n][n_head][hd]        per-head outputs before attn_output
 *   blk.L.mlp.hidden [n][hidden]
 *   final_norm [r][dim], logits [r][n_vocab]  r = rows whose logits are computed (the
 *                                       last row, or all rows with opts.all_logits)
 * A hook may edit its activation in place; that is how interventions work. With no
 * hooks and no bias callback the forward does no extra work.
 *
 * Attention-score bias: opts.bias_fn(user, layer, q_pos0, Nq, Nk, bias) is asked per
 * layer; it fills bias[Nq][Nk] (zeroed before the call) and returns 1 to apply it to
 * every head of that layer before the softmax (-INFINITY = knockout), 0 for no bias,
 * <0 to abort (ERR_CALLBACK).
 *
 * Snapshots (cheap knockout sweeps): run a forward with opts.record = snap to save the
 * residual entering every layer and the KV cache; lm_resume(state, snap, L, p0, opts)
 * then recomputes only layers >= L for positions >= p0 (layers < L and positions < p0
 * come from the snapshot). With p0 = 0 and the same n_batch the result is bit-identical
 * to a full forward with the same opts.
 *
 * Threads: every matmul goes through the caller's mm_ctx (results do not depend on the
 * thread count). A state (and its mm_ctx) serves one calling thread at a time; several
 * states may share one model. */
#ifndef LLAVA_MECH_LLAMA_H
#define LLAVA_MECH_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/gguf.h"
#include "../core/hook.h"
#include "../core/matmul.h"
#include "../core/tensor.h"
#include "kvcache.h"

typedef struct {
    int n_vocab;     /* rows of token_embd */
    int dim;         /* llama.embedding_length */
    int n_layer;     /* llama.block_count */
    int n_head;      /* llama.attention.head_count */
    int n_kv_head;   /* llama.attention.head_count_kv (default n_head) */
    int head_dim;    /* dim / n_head */
    int hidden_dim;  /* llama.feed_forward_length */
    int n_rot;       /* llama.rope.dimension_count (default head_dim) */
    int n_ctx_train; /* llama.context_length */
    float norm_eps;  /* llama.attention.layer_norm_rms_epsilon */
    float rope_base; /* llama.rope.freq_base (default 10000) */
} lm_config_t;

typedef struct {
    const tensor_t *attn_norm, *wq, *wk, *wv, *wo;
    const tensor_t *ffn_norm, *w_gate, *w_up, *w_down;
    float *attn_norm_f32, *ffn_norm_f32; /* owned f32 copies of the norm weights */
} lm_layer_t;

typedef struct {
    const tensor_t *token_embd; /* ne {dim, n_vocab} */
    const tensor_t *output_norm;
    const tensor_t *output;     /* == token_embd when the file ties them */
    bool tied;
    float *output_norm_f32;
    lm_layer_t *layers; /* [n_layer] */
} lm_weights_t;

typedef struct {
    lm_config_t cfg;
    lm_weights_t w;
    gguf_t *gguf;   /* the file; owned when the model was opened by path */
    bool owns_gguf;
    float *norm_buf; /* one allocation behind the *_f32 norm copies */
    tensor_t *packed; /* views of the weights repacked for decoding (mm_pack) */
    void *pack_map;   /* their one anonymous mapping */
    size_t pack_len;
} lm_model_t;

/* Repacks the Q4_K and Q8_0 matrices (Q/K/V/O, MLP, the output head, tied or not) into the
 * decode layouts of mm_pack when the CPU takes them: decoding gets faster (Q4_K
 * ~1.3x in fast memory; Q8_0's kernel ~2x from cache), loading pays
 * one copy of those weights (on this project's VM fresh memory costs ~1 s/GB). The
 * file's pages of each matrix are dropped once copied, so resident memory does not
 * grow; lm_model_weight_bytes then counts the repacked bytes. Call before creating
 * states; pool (may be NULL) shares the work. A no-op when nothing qualifies, when
 * LLAVA_MECH_NO_REPACK is set, or when already done. */
err_code lm_model_repack(lm_model_t *m, pool_t *pool, err_t *err);
/* Opens path and loads the model (owns the file). */
err_code lm_model_load(lm_model_t **out, const char *path, err_t *err);
/* Loads from an open file the caller keeps alive (and closes) after lm_model_free. */
err_code lm_model_from_gguf(lm_model_t **out, gguf_t *g, err_t *err);
void lm_model_free(lm_model_t *m);
/* Bytes of all weight tensors (the mmapped part). */
uint64_t lm_model_weight_bytes(const lm_model_t *m);
/* A layer's weight tensors, in forward order (norms, Q, K, V, O, MLP). */
#define LM_LAYER_TENSORS 9
void lm_layer_tensors(const lm_layer_t *L, const tensor_t *out[LM_LAYER_TENSORS]);

/* Called per layer; see the header comment. */
typedef int (*lm_bias_fn)(void *user, int layer, int64_t q_pos0, int64_t Nq, int64_t Nk, float *bias);

typedef struct {
    int n_layer, dim;
    int64_t cap;   /* positions the snapshot can hold */
    int64_t n_pos; /* positions recorded (the state's n_pos after the recording forward) */
    float *resid;  /* [n_layer+1][cap][dim]: entering layer l; l = n_layer is the final residual */
    kv_cache_t kv;
} lm_snapshot_t;

err_code lm_snapshot_create(lm_snapshot_t *s, const lm_model_t *m, int64_t cap, err_t *err);
void lm_snapshot_free(lm_snapshot_t *s);
static inline float *lm_snapshot_resid(const lm_snapshot_t *s, int layer, int64_t pos) {
    return s->resid + ((int64_t)layer * s->cap + pos) * s->dim;
}

typedef struct {
    const hook_set_t *hooks; /* NULL: none */
    lm_bias_fn bias_fn;      /* NULL: none */
    void *bias_user;
    lm_snapshot_t *record;   /* NULL: none; positions must fit in record->cap */
    /* NULL: only the last row's logits (lm_state_logits). Else [n][n_vocab] for every
     * position of the span (the final_norm/logits hooks then see every row). */
    float *all_logits;
} lm_run_opts;

typedef struct {
    const lm_model_t *m;
    mm_ctx_t *mm; /* borrowed */
    int64_t n_ctx, n_batch;
    kv_cache_t kv; /* kv.n_pos = positions processed so far */
    /* RunState: [n_batch][..] buffers, carved from one arena */
    float *x, *xb, *q, *z, *ab, *hb, *hb2, *att, *bias, *logits;
    int32_t *ids; /* scratch for a chunk's ids */
    void *arena_base;
    uint64_t arena_bytes;
} lm_state_t;

/* n_ctx <= 0: the model's context length. n_batch <= 0: min(n_ctx, 512). The
 * attention buffer is n_head * n_batch * n_ctx floats. */
err_code lm_state_create(lm_state_t **out, const lm_model_t *m, mm_ctx_t *mm, int64_t n_ctx, int64_t n_batch,
                         err_t *err);
void lm_state_free(lm_state_t *s);
/* Forget positions >= n_pos (n_pos <= current): the next forward starts there. */
void lm_state_set_pos(lm_state_t *s, int64_t n_pos);
static inline int64_t lm_state_pos(const lm_state_t *s) { return s->kv.n_pos; }
/* Last computed row's logits [n_vocab]. */
static inline const float *lm_state_logits(const lm_state_t *s) { return s->logits; }
/* Bytes of the activation arena and the KV cache. */
uint64_t lm_state_bytes(const lm_state_t *s);

/* Input of a span: n positions appended at lm_state_pos(s). ids[i] >= 0 is a token;
 * ids[i] == -1 takes the next row of embd ([n_embd][dim], in order of appearance).
 * embd may be NULL when no id is -1. */
typedef struct {
    const int32_t *ids;
    int64_t n;
    const float *embd;
    int64_t n_embd;
} lm_input_t;

/* Runs the span through every layer (in chunks of n_batch rows), appending to the KV
 * cache. ERR_RANGE when the context would overflow; ERR_ARG for an id out of range or
 * an embedding row count that does not match the -1 slots. opts may be NULL. */
err_code lm_prefill(lm_state_t *s, const lm_input_t *in, const lm_run_opts *opts, err_t *err);
/* One token (a span of length 1). */
err_code lm_decode(lm_state_t *s, int32_t token, const lm_run_opts *opts, err_t *err);
/* Recomputes layers >= layer for positions [p0, snap->n_pos) from snap (residual
 * entering `layer`, KV of layers < layer, and KV of positions < p0), leaving the
 * state at snap->n_pos positions. 0 <= layer <= n_layer, 0 <= p0 < snap->n_pos.
 * Hooks fire for the recomputed layers and the head only (no `embed`); opts->record
 * may name another snapshot (not `snap`). */
err_code lm_resume(lm_state_t *s, const lm_snapshot_t *snap, int layer, int64_t p0, const lm_run_opts *opts,
                   err_t *err);

/* Final RMSNorm + unembedding of rows x [n][dim] into logits [n][n_vocab] (no hooks;
 * used by logit-lens style analyses). xn is scratch [n][dim]. */
err_code lm_unembed(const lm_state_t *s, float *logits, float *xn, const float *x, int64_t n, err_t *err);

/* Batched resume (llama_batch.c): several edited copies of one snapshot's sequence in
 * one pass, for sweeps such as occlusion. Copy i recomputes layers >= layer for
 * positions [p0_i, snap->n_pos) from its own residual rows entering `layer` (a copy of
 * the snapshot's, which the caller edits), attending to the snapshot's keys and values
 * of positions < p0_i (the shared prefix, never recomputed) and to its own. The rows of
 * all copies are stacked, so every weight matmul is one GEMM over all of them, and the
 * copies' last rows share one unembedding GEMM. A GEMM always has at least
 * LM_BATCH_MIN_ROWS rows (zero rows pad it): mm_linear's decode kernel (n <= 4) would
 * use other arithmetic (8-bit activations for quantized weights), and a copy's result
 * must not depend on what it was batched with. No hooks, bias or recording.
 *
 * Use: lm_batch_begin(b, snap, layer); x = lm_batch_add(b, p0, err) per copy (x is
 * [snap->n_pos - p0][dim], filled with the snapshot's residual; edit it);
 * lm_batch_run(b, err); lm_batch_logits(b, i) = copy i's logits at the last position.
 * Per copy the logits equal lm_resume's with the same edit up to float summation order. */
#define LM_BATCH_MIN_ROWS 5
typedef struct lm_batch lm_batch_t;
/* Room for max_copies copies with max_rows rows in all, in sequences of up to n_ctx positions. */
err_code lm_batch_create(lm_batch_t **out, const lm_model_t *m, mm_ctx_t *mm, int max_copies, int64_t max_rows,
                         int64_t n_ctx, err_t *err);
void lm_batch_free(lm_batch_t *b);
/* Starts an empty batch of copies of snap recomputing layers >= layer (0 <= layer < n_layer). */
err_code lm_batch_begin(lm_batch_t *b, const lm_snapshot_t *snap, int layer, err_t *err);
/* Whether one more copy resuming at p0 fits (copies and rows). */
bool lm_batch_fits(const lm_batch_t *b, int64_t p0);
/* Adds a copy resuming at p0 (0 <= p0 < snap->n_pos); returns its input rows, or NULL
 * (ERR_RANGE / ERR_ARG in err) when it does not fit or p0 is out of range. */
float *lm_batch_add(lm_batch_t *b, int64_t p0, err_t *err);
err_code lm_batch_run(lm_batch_t *b, err_t *err);
int lm_batch_count(const lm_batch_t *b);
/* [n_vocab] logits of copy i's last position after lm_batch_run. */
const float *lm_batch_logits(const lm_batch_t *b, int i);
/* Bytes of the batch's buffers. */
uint64_t lm_batch_bytes(const lm_batch_t *b);

#endif
