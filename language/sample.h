/* sample.h — choosing the next token from logits: greedy, or temperature / top-k /
 * top-p sampling with a seeded PRNG owned by the sampler (no globals).
 *
 * Order (as llama.cpp's common sampler): top-k, then softmax at temperature T, then
 * top-p (smallest prefix of the sorted distribution whose mass reaches p), then a draw.
 * temp <= 0 means greedy (argmax, lowest id on ties); top_k <= 0 and top_p >= 1 disable
 * those filters. The same seed and logits give the same tokens on every machine
 * (splitmix64 PRNG, double arithmetic for the draw). */
#ifndef LLAVA_MECH_SAMPLE_H
#define LLAVA_MECH_SAMPLE_H

#include <stdint.h>

#include "../core/err.h"

typedef struct {
    float temp;    /* 0: greedy (default) */
    int top_k;     /* 0: off */
    float top_p;   /* 1: off */
    uint64_t seed;
} sample_params_t;

typedef struct {
    float v; /* logit, then probability */
    int32_t id;
} sample_cand_t;

typedef struct {
    sample_params_t p;
    uint64_t rng;
    int n_vocab;
    sample_cand_t *cand; /* [n_vocab] scratch */
} sampler_t;

static inline sample_params_t sample_defaults(void) {
    sample_params_t p = {0.0f, 0, 1.0f, 0};
    return p;
}

err_code sampler_create(sampler_t *s, int n_vocab, sample_params_t p, err_t *err);
void sampler_free(sampler_t *s);
int32_t sample_argmax(const float *logits, int n);
/* Next token from logits [n_vocab] (not modified). */
int32_t sampler_next(sampler_t *s, const float *logits);
/* Next uniform double in [0, 1) of the sampler's PRNG. */
double sampler_uniform(sampler_t *s);

#endif
