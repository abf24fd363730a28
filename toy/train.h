/* train.h — trains the toy LLaVA (toy/model.h) on the synthetic scenes
 * (toy/scenes.h) and writes it as the two llama.cpp GGUF files.
 *
 * Contract:
 * - Data: example i of step s is sc_example(data_seed, s * batch + i) at image_size
 *   px (mod data_n when data_n > 0), background noise on for a hashed half of the
 *   indices; the prompt is tpl_build(TPL_LLAVA, question, n_patches); the target is
 *   tok_encode_answer(answer) (" word" pieces then EOS); loss only on those tokens,
 *   per example the mean token cross-entropy, averaged over the batch. During the
 *   first `curriculum` steps only scenes with at most 1, 2, 3 objects (a third of
 *   those steps each) are kept: the next index of a fixed stride is drawn instead.
 * - Training aids (keep_ramp, aux_lens, lens_only, image_grad) change only what is
 *   trained, never the exported model; train.c (training_aids) says why each exists.
 * - Optimiser: AdamW (decoupled decay on matrices only, tm_param.decay), linear
 *   warm-up then cosine decay to lr_min, global gradient-norm clipping.
 * - Determinism: the batch is split over `threads` workers in contiguous chunks;
 *   each accumulates its own gradient and the chunks are summed in worker order, so
 *   a run is bit-reproducible for a seed and thread count, and a checkpoint resumes
 *   it bit-exactly (the data position is a function of the step).
 * - Linears call OpenBLAS from every worker at once: callers must make OpenBLAS
 *   single-threaded (openblas_set_num_threads(1)) when threads > 1.
 * - Nothing prints; tr_step reports through tr_step_stats. */
#ifndef LLAVA_MECH_TOY_TRAIN_H
#define LLAVA_MECH_TOY_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/err.h"
#include "../language/tok.h"
#include "model.h"
#include "scenes.h"

/* Pixel normalisation (train.c says why the mean is the background colour), also
 * written to the mmproj as clip.vision.image_mean/std. */
extern const float tr_image_mean[3];
extern const float tr_image_std[3];

#define TR_SEED_TRAIN 1
#define TR_SEED_VAL 2
#define TR_SEED_TEST 3

typedef struct {
    int steps, batch, warmup;
    float lr, lr_min, weight_decay, beta1, beta2, eps, clip;
    uint64_t seed;      /* parameter initialisation */
    uint64_t data_seed; /* scene split (TR_SEED_TRAIN) */
    int64_t data_n;     /* > 0: cycle over this many examples (tests) */
    int curriculum;     /* steps of the object-count curriculum (0 = none), see train.c */
    float vision_lr_scale; /* learning-rate factor of the vision tower (v.*), default 1 */
    int init;              /* TM_INIT_* */
    int keep_ramp;         /* steps after lens_only over which background image tokens fade in (0 = all visible) */
    float aux_lens;        /* weight of the layer-0 lens loss on object patches (0 = off) */
    int lens_only;         /* first lens_only steps: tower + projector trained by the lens alone */
    float image_grad;      /* factor on the answer loss's gradient into projector + tower (default 1) */
    int threads;
} tr_options;

void tr_options_default(tr_options *o);

typedef struct {
    int64_t step;       /* completed optimiser steps after this one */
    double loss;        /* mean over the batch */
    double aux_loss;    /* mean layer-0 lens loss (0 without --aux-lens) */
    double grad_norm;   /* before clipping */
    float lr;
} tr_step_stats;

typedef struct {
    int64_t correct[SC_N_QTYPES], total[SC_N_QTYPES];
    double loss; /* mean per-example loss */
} tr_eval;

static inline double tr_eval_accuracy(const tr_eval *e, int type) {
    int64_t c = 0, t = 0;
    for (int i = 0; i < SC_N_QTYPES; i++)
        if (type < 0 || type == i) c += e->correct[i], t += e->total[i];
    return t ? (double)c / (double)t : 0.0;
}

typedef struct tr_trainer tr_trainer;

/* The trainer keeps a pointer to tok (must outlive it). Parameters are initialised
 * from o->seed. */
err_code tr_create(tr_trainer **out, const tm_config *cfg, const tr_options *o, const tok_t *tok, err_t *err);
void tr_free(tr_trainer *t);
tm_model *tr_model(tr_trainer *t);
int64_t tr_steps_done(const tr_trainer *t);
float tr_lr_at(const tr_options *o, int64_t step);

/* One optimiser step on the next batch. */
err_code tr_step(tr_trainer *t, tr_step_stats *st, err_t *err);

/* Greedy evaluation on n_per_type examples of each question type from split `seed`
 * (indices 0 .. 5 n_per_type - 1): an example is correct when the argmax at every
 * target row equals the target (the greedy answer is the word then EOS). */
err_code tr_evaluate(tr_trainer *t, uint64_t seed, int64_t n_per_type, tr_eval *res, err_t *err);

/* Checkpoint: header (magic, version, config, options, step), parameters, AdamW
 * moments and a checksum, written to path.tmp then renamed. Load requires the same
 * model config, batch, seeds and data_n; other options come from the caller. */
err_code tr_checkpoint_save(const tr_trainer *t, const char *path, err_t *err);
err_code tr_checkpoint_load(tr_trainer *t, const char *path, err_t *err);

/* Writes the LM (general.architecture "llama") and the mmproj ("clip", projector
 * "mlp") in llama.cpp's layout; type QT_F32 or QT_F16 (1-D tensors stay F32). */
err_code tr_write_gguf(const tm_model *m, const tok_t *tok, int type, const char *lm_path,
                       const char *mmproj_path, err_t *err);

#endif
