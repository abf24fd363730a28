/* llama_impl.h — the two halves of a decoder layer around attention, shared by
 * llama.c's forward and llama_batch.c's stacked copies (not a public header).
 *
 * A layer is attn_in, then attention (which each caller does its own way: one KV cache,
 * or a snapshot's prefix per copy), then attn_out_mlp. Both halves work on n rows
 * and emit their hook points through o (NULL: no hooks), at absolute position pos0. */
#ifndef LLAVA_MECH_LLAMA_IMPL_H
#define LLAVA_MECH_LLAMA_IMPL_H
#include "llama.h"

/* h = rmsnorm(x) * attn_norm (hook attn_norm, left in xb); q, k, v = h Wq^T, h Wk^T,
 * h Wv^T before RoPE. */
err_code lm_layer_attn_in(const lm_model_t *m, mm_ctx_t *mm, int l, const float *x, float *xb, float *q, float *k,
                          float *v, int64_t n, const lm_run_opts *o, int64_t pos0, err_t *err);
/* From the heads' outputs z: x += z Wo^T (hooks attn_out, resid_mid), then
 * x += down(silu(h Wgate^T) * h Wup^T) with h = rmsnorm(x) * ffn_norm (hooks ffn_norm,
 * mlp.hidden, mlp_out, resid_post). xb, hb, hb2 are scratch of n rows. */
err_code lm_layer_attn_out_mlp(const lm_model_t *m, mm_ctx_t *mm, int l, float *x, float *xb, const float *z,
                               float *hb, float *hb2, int64_t n, const lm_run_opts *o, int64_t pos0, err_t *err);
#endif
