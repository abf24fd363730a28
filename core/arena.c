#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64

size_t arena_round(size_t bytes) { return (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

err_code arena_create(arena_t *a, size_t cap, err_t *err) {
    a->used = 0;
    a->cap = arena_round(cap);
    a->base = NULL;
    if (a->cap == 0) return ERR_OK;
    a->base = aligned_alloc(ARENA_ALIGN, a->cap);
    if (!a->base) return err_set(err, ERR_NOMEM, "cannot allocate %zu bytes for activations", a->cap);
    return ERR_OK;
}

void arena_free(arena_t *a) {
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

void *arena_alloc(arena_t *a, size_t bytes, err_t *err) {
    size_t need = arena_round(bytes);
    if (need < bytes || need > a->cap - a->used) {
        err_set(err, ERR_NOMEM, "arena exhausted: need %zu bytes, %zu of %zu free", bytes, a->cap - a->used, a->cap);
        return NULL;
    }
    void *p = a->base + a->used;
    a->used += need;
    memset(p, 0, need);
    return p;
}

float *arena_floats(arena_t *a, size_t n, err_t *err) {
    if (n > SIZE_MAX / sizeof(float)) {
        err_set(err, ERR_NOMEM, "arena request of %zu floats overflows", n);
        return NULL;
    }
    return arena_alloc(a, n * sizeof(float), err);
}

size_t arena_mark(const arena_t *a) { return a->used; }

void arena_reset_to(arena_t *a, size_t mark) {
    if (mark <= a->used) a->used = mark;
}
