/* ops.h — forward and backward of every operation of the CLIP ViT, the LLaVA
 * projector and the LLaMA decoder, in f32 (llm.c style: one forward and one backward
 * per op, side by side, plain loops checkable against the math).
 *
 * Used by inference (the forwards; weights of other types go through mm_linear), by
 * the trainer, and by the gradient-based analysis passes (the backwards).
 *
 * Conventions: activations are row-major [N][C], N tokens. Weights are PyTorch
 * layout [OUT][IN]. Every backward ACCUMULATES (+=) into its gradient outputs, so
 * residual branches add up naturally; callers zero gradients. Gradient pointers may
 * be NULL when not wanted (e.g. din of the first layer). No op allocates: scratch is
 * passed in. `pool` may be NULL (serial); results never depend on the thread count.
 * Threading: with a pool of >= 2 threads the attention splits (head, 64-row block)
 * units across it and runs OpenBLAS single-threaded meanwhile (restoring the previous
 * setting); with pool == NULL it runs on the calling thread and OpenBLAS uses whatever
 * thread count the caller set, so concurrent callers (the trainer's workers) must have
 * set OpenBLAS to 1 thread, and bit-identity with pooled runs holds when it is 1.
 * The softmax and sigmoid exps use a vectorised Cephes polynomial (core/ops_row.h,
 * ~1 ulp; AVX-512/AVX2/generic chosen at run time, which changes the last bits only). */
#ifndef LLAVA_MECH_OPS_H
#define LLAVA_MECH_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "threads.h"

/* LayerNorm (CLIP): y = (x - mean) * rstd * w + b. mean/rstd [N] may be NULL in fwd. */
void ops_layernorm_fwd(float *out, float *mean, float *rstd, const float *in, const float *w, const float *b,
                       int64_t N, int64_t C, float eps);
void ops_layernorm_bwd(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                       const float *mean, const float *rstd, int64_t N, int64_t C);

/* RMSNorm (LLaMA): y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps). rstd [N] may be NULL in fwd. */
void ops_rmsnorm_fwd(float *out, float *rstd, const float *in, const float *w, int64_t N, int64_t C, float eps);
void ops_rmsnorm_bwd(float *din, float *dw, const float *dout, const float *in, const float *w,
                     const float *rstd, int64_t N, int64_t C);

/* Linear with an f32 weight: out[N][OUT] = in[N][IN] w[OUT][IN]^T + b (b may be NULL). cblas. */
void ops_linear_fwd(float *out, const float *in, const float *w, const float *b, int64_t N, int64_t IN,
                    int64_t OUT);
void ops_linear_bwd(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                    int64_t N, int64_t IN, int64_t OUT);

/* Element-wise activations. gelu = x/2 (1 + erf(x/sqrt 2)) (HF "gelu"); quick_gelu =
 * x sigmoid(1.702 x) (CLIP); swiglu: out = silu(gate) * up (LLaMA MLP). */
void ops_gelu_fwd(float *out, const float *in, int64_t n);
void ops_gelu_bwd(float *din, const float *dout, const float *in, int64_t n);
void ops_quick_gelu_fwd(float *out, const float *in, int64_t n);
void ops_quick_gelu_bwd(float *din, const float *dout, const float *in, int64_t n);
void ops_swiglu_fwd(float *out, const float *gate, const float *up, int64_t n);
void ops_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);

/* RoPE in GGUF/llama.cpp "normal" convention: inside each head of head_dim, pairs
 * (2i, 2i+1) for 2i < n_rot rotate by angle pos * base^(-2i/n_rot); elements >= n_rot
 * are untouched. x is [N][n_head*head_dim]; row r has position pos0 + r. In place.
 * The backward rotates the gradient by the negative angle (in place on dx). */
void ops_rope_fwd(float *x, int64_t N, int n_head, int head_dim, int n_rot, int64_t pos0, float base);
void ops_rope_bwd(float *dx, int64_t N, int n_head, int head_dim, int n_rot, int64_t pos0, float base);

/* Multi-head attention with grouped-query heads (n_head % n_kv_head == 0; query head h
 * reads kv head h / (n_head/n_kv_head)).
 *   q [Nq][n_head*hd], k, v [Nk][n_kv_head*hd], out [Nq][n_head*hd],
 *   att [n_head][Nq][Nk]: the post-softmax pattern (always written; hooks read it).
 * scores = q k^T / sqrt(hd) (+ bias[Nq][Nk] for every head when bias != NULL, e.g.
 * -INFINITY for knockout). causal: query row i sits at absolute position q_pos0 + i
 * and sees keys j <= q_pos0 + i (keys are positions 0..Nk-1). A row whose every key
 * is masked gets all-zero attention and output. */
void ops_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v, int64_t Nq,
                       int64_t Nk, int n_head, int n_kv_head, int hd, int64_t q_pos0, bool causal,
                       const float *bias, pool_t *pool);
/* scratch: at least ops_attention_bwd_scratch(Nq, Nk, n_head) floats (about
 * n_head*Nq*Nk: 46 MB for 32 heads x 600 x 600). The backward reads which keys each
 * query row could see from the zeros of att (so causal/bias masks need not be passed)
 * and skips the masked ranges. dq, dk, dv may each be NULL. */
int64_t ops_attention_bwd_scratch(int64_t Nq, int64_t Nk, int n_head);
void ops_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                       const float *k, const float *v, int64_t Nq, int64_t Nk, int n_head, int n_kv_head, int hd,
                       float *scratch, pool_t *pool);

/* out = att v per head from a pattern the caller supplies (after a hook edited the one
 * ops_attention_fwd returned): out [Nq][n_head*hd], att [n_head][Nq][Nk], v
 * [Nk][n_kv_head*hd]. Heads are shared over the pool, each one single-threaded sgemm,
 * so the result does not depend on the pool size. */
void ops_attention_apply(float *out, const float *att, const float *v, int64_t Nq, int64_t Nk, int n_head,
                         int n_kv_head, int hd, pool_t *pool);

/* Gradient with respect to the post-softmax pattern itself, for methods that weight
 * attention by its gradient (Chefer et al. relevancy, attribution patching on
 * patterns): datt[h][i][j] += dout_h[i] . v_{kv(h)}[j], same layout as att. */
void ops_attention_bwd_att(float *datt, const float *dout, const float *v, int64_t Nq, int64_t Nk, int n_head,
                           int n_kv_head, int hd, pool_t *pool);

/* Token embedding lookup: out[N][C] = table[ids[n]]. */
void ops_embed_fwd(float *out, const float *table, const int32_t *ids, int64_t N, int64_t C);
void ops_embed_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t C);

/* Patch unfold for the ViT patch embedding (a conv with stride = kernel = ps as a GEMM):
 * img is [3][H][W] (CHW, normalised), out [P][3*ps*ps] with P = (H/ps)*(W/ps) patches
 * row-major over the grid, each patch flattened in (channel, y, x) order to match the
 * conv weight [d][3][ps][ps] viewed as [d][3*ps*ps]. */
void ops_patchify_fwd(float *out, const float *img, int H, int W, int ps);
void ops_patchify_bwd(float *dimg, const float *dout, int H, int W, int ps);

/* Softmax cross-entropy per row: loss[n] = -log softmax(logits[n])[target[n]];
 * rows with target < 0 are ignored (loss 0). probs [N][V] receives the softmax.
 * Returns the sum of losses over counted rows. loss and probs may be NULL (then only
 * the sum is computed; the backward needs probs). Backward: dlogits += scale * (probs -
 * onehot) on counted rows. */
double ops_xent_fwd(float *loss, float *probs, const float *logits, const int32_t *target, int64_t N, int64_t V);
void ops_xent_bwd(float *dlogits, const float *probs, const int32_t *target, int64_t N, int64_t V, float scale);

/* Row-wise log-softmax into out (may alias in). */
void ops_log_softmax(float *out, const float *in, int64_t N, int64_t V);

#endif
