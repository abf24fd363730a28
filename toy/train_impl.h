/* train_impl.h — internals shared by train.c, train_ckpt.c and train_gguf.c (not a
 * public contract). */
#ifndef LLAVA_MECH_TOY_TRAIN_IMPL_H
#define LLAVA_MECH_TOY_TRAIN_IMPL_H

#include "../core/threads.h"
#include "train.h"

#define TR_MAX_TARGETS 16

/* Per-thread state: activations, own gradient, the scene being rendered. */
typedef struct {
    tm_state *st;
    float *grad;
    tm_weights gv;
    sc_scene scene;
    sc_qa qa;
    float *img;
    int32_t *ids;
    int32_t targets[TR_MAX_TARGETS];
    tm_example ex;
    float *bias;         /* [max_seq][max_seq] LM attention bias (keep ramp) */
    int32_t *aux;        /* [TM_N_AUX][n_patches] lens targets */
    double loss, aux_loss;
    int64_t correct[SC_N_QTYPES], total[SC_N_QTYPES];
    err_code rc;
    err_t err;
} tr_worker;

struct tr_trainer {
    tr_options opt;
    const tok_t *tok;
    tm_model model;
    float *m, *v; /* AdamW moments, same layout as the parameters */
    int64_t step;
    int n_workers;
    tr_worker *workers;
    pool_t *pool;
    int32_t color_id[SC_N_COLORS], shape_id[SC_N_SHAPES], side_id[2]; /* first piece of " word" */
};

/* Renders example idx of split seed into wk (image, ids, targets, wk->ex). */
err_code tr_prepare_example(tr_worker *wk, const tm_config *cfg, const tok_t *tok, uint64_t seed, uint64_t idx,
                            err_t *err);

#endif
