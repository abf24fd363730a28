/* llama_random.h — write a LLaMA GGUF with seeded random weights (test fixtures, bench).
 *
 * Weights are N(0, 1/in) for linear layers (unit gain, so logits stay O(1) through the
 * layers and greedy decoding has clear margins), N(0, embd_std^2) for the token embedding, and
 * 1 + 0.1 N(0, 1) for the RMSNorm weights (stored F32 as llama.cpp does). 2-D weights
 * are stored in `type` (any quant.h type with a quantizer; rows must be a multiple of
 * its block size). q/k rows are written in the GGUF RoPE convention directly (random
 * weights have no HF layout to permute from). The PRNG is splitmix64 + Box-Muller in
 * double, so the same spec gives the same file on every machine. Only the LM keys are
 * written (no tokenizer) unless the caller adds them through `extra` later. */
#ifndef LLAVA_MECH_LLAMA_RANDOM_H
#define LLAVA_MECH_LLAMA_RANDOM_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/err.h"

typedef struct {
    int n_vocab, dim, n_layer, n_head, n_kv_head, hidden_dim, n_ctx;
    float norm_eps, rope_base;
    bool tied;   /* no output.weight */
    int type;    /* qtype of the 2-D weights */
    uint64_t seed;
    float embd_std; /* std of token_embd (0: 1.0); small values keep a tied head from
                       just echoing the current token */
} lm_random_spec;

err_code lm_write_random(const char *path, const lm_random_spec *spec, err_t *err);

#endif
