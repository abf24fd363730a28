/* stb_decode.c — stb_image compiled with STBI_ASSERT as an escape (see stb_decode.h). */
#include "stb_decode.h"

#include <setjmp.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Every block stb allocates carries this header and sits in the current call's list,
 * so that an escape can free what stb had not yet freed itself. */
typedef struct stbd_link {
    struct stbd_link *prev, *next;
} stbd_link;

typedef struct {
    stbd_link link;
    alignas(max_align_t) unsigned char data[];
} stbd_block;

typedef struct {
    jmp_buf escape;
    stbd_link head;   /* list sentinel */
    size_t max_alloc; /* larger single requests fail (stb then reports "outofmem") */
    bool refused;     /* a request was over max_alloc */
} stbd_call;

/* The only mutable file-scope state: the call in progress on this thread, which the
 * allocation and assertion hooks below must reach and stb gives no context to. */
static _Thread_local stbd_call *stbd_current;

static void link_block(stbd_block *b) {
    stbd_link *h = &stbd_current->head, *l = &b->link;
    l->prev = h, l->next = h->next;
    h->next->prev = l, h->next = l;
}

static void unlink_block(stbd_block *b) { b->link.prev->next = b->link.next, b->link.next->prev = b->link.prev; }

/* Zeroed: stb reads Huffman tables that a malformed JPEG never defined (fuzz_image
 * found reads of leftover heap bytes); zeros make that a deterministic wrong decode of
 * a broken file instead of behaviour that depends on what the heap held. */
const char stbd_too_large[] = "it declares more data than its size can need";

static bool over_cap(size_t n) {
    if (n <= stbd_current->max_alloc) return false;
    stbd_current->refused = true;
    return true;
}

static void *stbd_malloc(size_t n) {
    if (over_cap(n)) return NULL;
    stbd_block *b = calloc(1, sizeof *b + n);
    if (!b) return NULL;
    link_block(b);
    return b->data;
}

static void stbd_release(void *p) {
    if (!p) return;
    stbd_block *b = (stbd_block *)((unsigned char *)p - offsetof(stbd_block, data));
    unlink_block(b);
    free(b);
}

static void *stbd_realloc(void *p, size_t n) {
    if (!p) return stbd_malloc(n);
    if (over_cap(n)) return NULL;
    stbd_block *b = (stbd_block *)((unsigned char *)p - offsetof(stbd_block, data));
    unlink_block(b);
    stbd_block *r = realloc(b, sizeof *r + n);
    if (!r) { /* the old block stays valid and listed */
        link_block(b);
        return NULL;
    }
    link_block(r);
    return r->data;
}

_Noreturn static void stbd_assert_failed(void) { longjmp(stbd_current->escape, 1); }

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_PSD
#define STBI_NO_HDR
#define STBI_NO_PIC
#define STBI_NO_LINEAR
#define STBI_ASSERT(x) ((x) ? (void)0 : stbd_assert_failed())
#define STBI_MALLOC(n) stbd_malloc(n)
#define STBI_REALLOC(p, n) stbd_realloc(p, n)
#define STBI_FREE(p) stbd_release(p)
/* stb declares every entry point static here; gcc reports the unused ones at the end
 * of the file, so that one warning stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wtype-limits"
#include <stb_image.h>
#pragma GCC diagnostic pop

static void free_all(stbd_call *c) {
    while (c->head.next != &c->head) {
        stbd_block *b = (stbd_block *)c->head.next; /* link is the first member */
        unlink_block(b);
        free(b);
    }
}

/* Why a call that returned nothing failed: the escape, the cap, or stb's own reason. */
static const char *reason(const stbd_call *c, bool escaped) {
    if (escaped) return "the decoder's internal consistency check failed (malformed data)";
    if (c->refused) return stbd_too_large;
    const char *r = stbi_failure_reason();
    return r ? r : "unknown reason";
}

/* Every entry point brackets stb between these; setjmp itself must stay in the
 * caller's frame. */
static stbd_call *call_enter(stbd_call *c, size_t max_alloc) {
    stbd_call *outer = stbd_current;
    c->head.prev = c->head.next = &c->head;
    c->max_alloc = max_alloc;
    c->refused = false;
    stbd_current = c;
    return outer;
}

static void call_leave(stbd_call *c, stbd_call *outer) {
    free_all(c);
    stbd_current = outer;
}

int stbd_info(const unsigned char *buf, int len, int *w, int *h, int *comp, const char **why) {
    stbd_call call;
    stbd_call *volatile outer = call_enter(&call, 2 * (size_t)len + ((size_t)16 << 20)); /* headers only */
    volatile int ok = 0;
    volatile bool escaped = false;
    if (setjmp(call.escape) == 0)
        ok = stbi_info_from_memory(buf, len, w, h, comp);
    else
        escaped = true;
    if (!ok && why) *why = reason(&call, escaped);
    call_leave(&call, outer);
    return ok;
}

/* The file as stb's callback source. From memory, stb answers a read past the end
 * with zeros and no error, so a cut BMP, TGA or GIF decoded "successfully" with a
 * black or garbage tail. Through callbacks every read past the end is seen here.
 * stb reads in two ways: refills of its own 128-byte look-ahead buffer (the first
 * read of a call, stbi__start_callbacks, is one, and they all land in that same
 * buffer), for which a short read near the end is normal and only a read that gets
 * nothing means the decoder wanted more; and stbi__getn's reads of a known count into
 * the decoder's own buffers (raster rows, PNG chunk data), for which any short read
 * means the file ended first. */
typedef struct {
    const unsigned char *buf;
    size_t len, pos;
    const char *refill_dst; /* stb's look-ahead buffer */
    bool overrun;           /* stb asked for bytes past the end */
} stbd_src;

static int src_read(void *user, char *data, int size) {
    stbd_src *s = user;
    if (!s->refill_dst) s->refill_dst = data;
    size_t left = s->len - s->pos, n = size > 0 ? (size_t)size : 0;
    if (n > left) n = left;
    if (size > 0 && (n == 0 || (n < (size_t)size && data != s->refill_dst))) s->overrun = true;
    memcpy(data, s->buf + s->pos, n);
    s->pos += n;
    return (int)n;
}

static void src_skip(void *user, int n) {
    stbd_src *s = user;
    if (n <= 0) return;
    if ((size_t)n > s->len - s->pos) {
        s->overrun = true;
        s->pos = s->len;
    } else {
        s->pos += (size_t)n;
    }
}

static int src_eof(void *user) {
    const stbd_src *s = user;
    return s->pos >= s->len;
}

const char stbd_truncated[] = "truncated: the decoder needed data past the end of the file";

unsigned char *stbd_load(const unsigned char *buf, int len, size_t max_alloc, int *w, int *h, int *comp,
                         const char **why) {
    stbd_call call;
    stbd_call *volatile outer = call_enter(&call, max_alloc);
    unsigned char *volatile px = NULL;
    volatile bool escaped = false;
    stbd_src src = {buf, len > 0 ? (size_t)len : 0, 0, NULL, false};
    const stbi_io_callbacks io = {src_read, src_skip, src_eof};
    if (setjmp(call.escape) == 0)
        px = stbi_load_from_callbacks(&io, &src, w, h, comp, 0);
    else
        escaped = true; /* px is still NULL: stb never returned */
    if (px && src.overrun) { /* decoded from zeros stb made up: refuse */
        stbi_image_free(px);
        px = NULL;
        if (why) *why = stbd_truncated;
    } else if (px) { /* the result leaves the list: the caller owns it */
        unlink_block((stbd_block *)(px - offsetof(stbd_block, data)));
    } else if (why) {
        *why = !escaped && src.overrun ? stbd_truncated : reason(&call, escaped);
    }
    call_leave(&call, outer);
    return px;
}

void stbd_free(unsigned char *pixels) {
    if (pixels) free(pixels - offsetof(stbd_block, data));
}
