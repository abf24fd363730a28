/* arena.h — one allocation carved into aligned views (activations, scratch).
 *
 * Contract: arena_create reserves `cap` bytes once; arena_alloc hands out 64-byte
 * aligned, zero-filled slices and returns NULL (with a message) when the arena is
 * full — it never grows, so a forward pass sized up front cannot allocate in a hot
 * loop. arena_mark/arena_reset_to release everything handed out after a mark. */
#ifndef LLAVA_MECH_ARENA_H
#define LLAVA_MECH_ARENA_H

#include <stddef.h>

#include "err.h"

typedef struct {
    unsigned char *base;
    size_t cap;
    size_t used;
} arena_t;

err_code arena_create(arena_t *a, size_t cap, err_t *err);
void arena_free(arena_t *a);
void *arena_alloc(arena_t *a, size_t bytes, err_t *err);
float *arena_floats(arena_t *a, size_t n, err_t *err);
size_t arena_mark(const arena_t *a);
void arena_reset_to(arena_t *a, size_t mark);
/* Bytes arena_alloc would consume for a request of `bytes` (for sizing up front). */
size_t arena_round(size_t bytes);

#endif
