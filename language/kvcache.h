/* kvcache.h — the key/value cache of a LLaMA decoder.
 *
 * Contract: one allocation per tensor, k and v each [n_layer][n_ctx][kv_dim] f32,
 * kv_dim = n_kv_head * head_dim. Row p of layer l holds the (RoPE-rotated) key and the
 * value of absolute position p. n_pos counts the positions filled (the same for every
 * layer); positions >= n_pos are garbage. kv_copy copies a block of rows between two
 * caches of the same geometry (used by snapshots for knockout sweeps). */
#ifndef LLAVA_MECH_KVCACHE_H
#define LLAVA_MECH_KVCACHE_H

#include <stdint.h>

#include "../core/err.h"

typedef struct {
    int n_layer;
    int kv_dim;
    int64_t n_ctx;
    int64_t n_pos;
    float *k;
    float *v;
} kv_cache_t;

err_code kv_create(kv_cache_t *kv, int n_layer, int64_t n_ctx, int kv_dim, err_t *err);
void kv_free(kv_cache_t *kv);
/* Bytes held by a cache of this geometry (for memory reports). */
uint64_t kv_bytes(int n_layer, int64_t n_ctx, int kv_dim);

static inline float *kv_k(const kv_cache_t *kv, int layer, int64_t pos) {
    return kv->k + ((int64_t)layer * kv->n_ctx + pos) * kv->kv_dim;
}
static inline float *kv_v(const kv_cache_t *kv, int layer, int64_t pos) {
    return kv->v + ((int64_t)layer * kv->n_ctx + pos) * kv->kv_dim;
}

/* Copies rows [pos0, pos1) of layers [layer0, layer1) from src to dst. Both caches
 * must have the same n_layer and kv_dim and room for pos1 rows (asserted: callers
 * size them). Does not touch n_pos. */
void kv_copy(kv_cache_t *dst, const kv_cache_t *src, int layer0, int layer1, int64_t pos0, int64_t pos1);

#endif
