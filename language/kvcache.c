#include "kvcache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

uint64_t kv_bytes(int n_layer, int64_t n_ctx, int kv_dim) {
    return 2ull * (uint64_t)n_layer * (uint64_t)n_ctx * (uint64_t)kv_dim * sizeof(float);
}

err_code kv_create(kv_cache_t *kv, int n_layer, int64_t n_ctx, int kv_dim, err_t *err) {
    memset(kv, 0, sizeof *kv);
    if (n_layer <= 0 || n_ctx <= 0 || kv_dim <= 0)
        return err_set(err, ERR_ARG, "kv cache: bad geometry (%d layers, %lld positions, width %d)", n_layer,
                       (long long)n_ctx, kv_dim);
    size_t n = (size_t)n_layer * (size_t)n_ctx * (size_t)kv_dim;
    /* calloc: untouched pages of a large context stay unmapped until used. */
    kv->k = calloc(n, sizeof(float));
    kv->v = calloc(n, sizeof(float));
    if (!kv->k || !kv->v) {
        kv_free(kv);
        return err_set(err, ERR_NOMEM, "kv cache: cannot allocate %llu bytes",
                       (unsigned long long)kv_bytes(n_layer, n_ctx, kv_dim));
    }
    kv->n_layer = n_layer;
    kv->n_ctx = n_ctx;
    kv->kv_dim = kv_dim;
    return ERR_OK;
}

void kv_free(kv_cache_t *kv) {
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
    kv->n_pos = 0;
}

void kv_copy(kv_cache_t *dst, const kv_cache_t *src, int layer0, int layer1, int64_t pos0, int64_t pos1) {
    assert(dst->n_layer == src->n_layer && dst->kv_dim == src->kv_dim);
    assert(pos1 <= dst->n_ctx && pos1 <= src->n_ctx);
    if (pos1 <= pos0) return;
    size_t bytes = (size_t)(pos1 - pos0) * (size_t)src->kv_dim * sizeof(float);
    for (int l = layer0; l < layer1; l++) {
        memcpy(kv_k(dst, l, pos0), kv_k(src, l, pos0), bytes);
        memcpy(kv_v(dst, l, pos0), kv_v(src, l, pos0), bytes);
    }
}
