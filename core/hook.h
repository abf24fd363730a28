/* hook.h — named hook points on activations, shared by the vision and language models.
 *
 * Names follow one scheme: vision `v.blk.N.attn.pattern`, `v.blk.N.resid_post`,
 * `mm.hidden`, `mm.out`; language `embed`, `blk.N.attn.q`, `blk.N.attn.pattern`,
 * `blk.N.resid_post`, `final_norm`, `logits`. A hook's pattern is a name in which
 * '*' matches any run of characters: "blk.3.*", "blk.*.attn.pattern", "*".
 *
 * Contract: a model calls hook_want(hs, name) before materialising anything only a
 * hook needs; with no hooks registered (hs == NULL or empty) this is one branch, so
 * capturing nothing costs nothing. hook_call passes the activation (row-major,
 * shape[0] slowest) to every matching callback in registration order; a callback may
 * modify it in place (that is how interventions work) and returns 0 to continue or
 * non-zero to abort the forward with ERR_CALLBACK. */
#ifndef LLAVA_MECH_HOOK_H
#define LLAVA_MECH_HOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define HOOK_NAME_MAX 64
#define HOOK_MAX 64

typedef struct {
    const char *name;   /* the hook point */
    int n_dims;
    int64_t shape[4];   /* shape[0] slowest */
    int64_t pos0;       /* absolute position of row 0 for sequence activations (LM decode), else 0 */
} hook_info;

typedef int (*hook_fn)(void *user, const hook_info *info, float *data);

typedef struct {
    char pattern[HOOK_NAME_MAX];
    hook_fn fn;
    void *user;
} hook_entry;

typedef struct {
    int n;
    hook_entry entries[HOOK_MAX];
} hook_set_t;

void hook_set_init(hook_set_t *hs);
err_code hook_add(hook_set_t *hs, const char *pattern, hook_fn fn, void *user, err_t *err);
bool hook_want(const hook_set_t *hs, const char *name);
/* Builds the name with printf formatting only when some hook is registered. */
bool hook_wantf(const hook_set_t *hs, char *name_buf, const char *fmt, int layer);
err_code hook_call(const hook_set_t *hs, const hook_info *info, float *data, err_t *err);
/* A 64-bit hash of the bits of x[n]: taken before and after hook_emit, it tells
 * whether a callback edited the activation in place, so a model recomputes what
 * depends on it only then (a merely observing hook leaves the forward bit-identical). */
uint64_t hook_bits_hash(const float *x, int64_t n);
/* Convenience: fills a hook_info and calls; shape given as up to 4 dims. */
err_code hook_emit(const hook_set_t *hs, const char *name, float *data, int n_dims, const int64_t *shape,
                   int64_t pos0, err_t *err);

#endif
