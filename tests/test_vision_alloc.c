/* test_vision_alloc.c — the vision tower's memory contract (vit.h):
 *   - weights are views into the mmapped file: every matrix's data pointer lies in a
 *     read-only mapping of the mmproj file itself (/proc/self/maps);
 *   - activations live in one arena made by vit_state_create (one allocation);
 *   - a forward allocates nothing: after a first forward (where the matmul context
 *     may size its scratch once for the largest shape), further forwards, with no
 *     hooks, an empty hook set or hooks that match nothing, make zero heap calls —
 *     so nothing is allocated per block or per image in steady state.
 * The heap is counted by defining malloc & co. in this executable (they forward to
 * glibc's __libc_* entry points), which also sees calls from the pool's threads and
 * from OpenBLAS. Sanitizer builds replace the allocator themselves, so there the
 * counting part is compiled out and says so. Models: the F32 and F16 fixtures and,
 * when present, the shipped toy mmproj. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/hook.h"
#include "core/matmul.h"
#include "core/npy.h"
#include "testutil.h"
#include "vision/vit.h"

#define GOLDEN LM_SOURCE_DIR "/tests/golden/vision/"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNTING 0
#endif
#endif
#ifndef COUNTING
#define COUNTING 1
#endif

static atomic_long n_heap_calls;

#if COUNTING
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) {
    atomic_fetch_add_explicit(&n_heap_calls, 1, memory_order_relaxed);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    atomic_fetch_add_explicit(&n_heap_calls, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    atomic_fetch_add_explicit(&n_heap_calls, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n) {
    atomic_fetch_add_explicit(&n_heap_calls, 1, memory_order_relaxed);
    return __libc_memalign(al, n);
}
void *memalign(size_t al, size_t n) {
    atomic_fetch_add_explicit(&n_heap_calls, 1, memory_order_relaxed);
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n) {
    atomic_fetch_add_explicit(&n_heap_calls, 1, memory_order_relaxed);
    void *p = __libc_memalign(al, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
void free(void *p) {
    if (p) atomic_fetch_add_explicit(&n_heap_calls, 1, memory_order_relaxed);
    __libc_free(p);
}
#endif

static long heap_calls(void) { return atomic_load(&n_heap_calls); }

/* Is addr inside a mapping of `path` (the maps line's file name)? */
static int mapped_from(const void *addr, const char *path) {
    char real[4096];
    if (!realpath(path, real)) return 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[8192];
    int found = 0;
    uintptr_t a = (uintptr_t)addr;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        int off = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &off) < 3) continue;
        if (a < lo || a >= hi) continue;
        char *name = line + off;
        name[strcspn(name, "\n")] = 0;
        found = !strcmp(name, real) && perms[1] == '-' ? 1 : -1;
    }
    fclose(f);
    return found == 1;
}

static int dont_match(void *user, const hook_info *info, float *data) {
    (void)info, (void)data;
    (*(int *)user)++;
    return 0;
}

static void check_model(mm_ctx_t *mm, const char *path) {
    err_t e = {0};
    vit_t *v = NULL;
    CHECK_OK(vit_load(&v, path, &e), &e);
    if (!v) return;
    const vit_config *c = vit_get_config(v);
    const gguf_t *g = vit_gguf(v);

    /* weights: views into the file's read-only mapping */
    char nm[96];
    int n_views = 0, n_mats = 0;
    const char *mats[] = {"attn_q", "attn_k", "attn_v", "attn_out", "ffn_up", "ffn_down"};
    for (int l = 0; l < c->n_run; l++)
        for (int i = 0; i < 6; i++) {
            snprintf(nm, sizeof nm, "v.blk.%d.%s.weight", l, mats[i]);
            const tensor_t *t = gguf_find_tensor(g, nm);
            n_mats++;
            n_views += t && mapped_from(t->data, path);
        }
    const char *others[] = {"v.patch_embd.weight", "mm.0.weight", "mm.2.weight"};
    for (int i = 0; i < 3; i++) {
        const tensor_t *t = gguf_find_tensor(g, others[i]);
        n_mats++;
        n_views += t && mapped_from(t->data, path);
    }
    CHECK_MSG(n_views == n_mats, "%s: %d of %d weight matrices are views of the mmapped file", path, n_views, n_mats);

    /* activations: one arena, one allocation */
    vit_state_t st;
    long h0 = heap_calls();
    CHECK_OK(vit_state_create(&st, v, &e), &e);
    long h_state = heap_calls() - h0;
    if (COUNTING) CHECK_MSG(h_state == 1, "%s: vit_state_create made %ld heap calls, expected 1", path, h_state);
    const size_t S = (size_t)c->image_size;
    for (size_t i = 0; i < 3 * S * S; i++) st.pixels[i] = (float)((i * 7919) % 255) / 127.0f - 1.0f;

    h0 = heap_calls();
    CHECK_OK(vit_forward(v, &st, mm, st.pixels, NULL, NULL, &e), &e);
    long h_first = heap_calls() - h0;

    hook_set_t empty, other;
    hook_set_init(&empty);
    hook_set_init(&other);
    int calls = 0;
    CHECK_OK(hook_add(&other, "blk.*.attn.pattern", dont_match, &calls, &e), &e); /* LM names only */
    CHECK_OK(hook_add(&other, "v.blk.99999.*", dont_match, &calls, &e), &e);
    const hook_set_t *sets[3] = {NULL, &empty, &other};
    const char *set_names[3] = {"no hooks", "an empty hook set", "non-matching hooks"};
    long later[3];
    for (int i = 0; i < 3; i++) {
        h0 = heap_calls();
        CHECK_OK(vit_forward(v, &st, mm, st.pixels, sets[i], NULL, &e), &e);
        long h = later[i] = heap_calls() - h0;
        if (COUNTING)
            CHECK_MSG(h == 0, "%s: a forward with %s made %ld heap calls (%d blocks)", path, set_names[i], h, c->n_run);
    }
    CHECK(calls == 0);
    printf("%s: %d/%d matrices mmapped; arena %.2f MB; heap calls: state %ld, first forward %ld, later forwards "
           "%ld/%ld/%ld (no hooks/empty set/non-matching)%s\n",
           path, n_views, n_mats, (double)st.arena.cap / 1e6, h_state, h_first, later[0], later[1], later[2],
           COUNTING ? "" : " (not counted under a sanitizer)");
    vit_state_free(&st);
    vit_free(v);
}

int main(int argc, char **argv) {
    mm_init_blas(argc, argv);
    err_t e = {0};
    mm_ctx_t *mm = NULL;
    CHECK_OK(mm_ctx_create(&mm, 2, &e), &e);
    if (!mm) return test_result("test_vision_alloc");
    /* the counter itself works */
    long h0 = heap_calls();
    void *volatile p = malloc(64);
    free(p);
    if (COUNTING) CHECK(heap_calls() - h0 == 2);
    check_model(mm, GOLDEN "tiny_f32.gguf");
    check_model(mm, GOLDEN "tiny_f16.gguf");
    FILE *f = fopen(LM_SOURCE_DIR "/assets/model/llava-mech-toy-mmproj.gguf", "rb");
    if (f) {
        fclose(f);
        check_model(mm, LM_SOURCE_DIR "/assets/model/llava-mech-toy-mmproj.gguf");
    }
    mm_ctx_free(mm);
    return test_result("test_vision_alloc");
}
