/* gguf.c — GGUF reader: mmap, validate everything up front, then O(1) accessors.
 *
 * Layout (ggml/include/gguf.h, gguf-py/gguf/gguf_reader.py), all little-endian:
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv                  (v2 and v3; v1 used u32 counts)
 *   n_kv x { string key, u32 type, value }                       string = u64 length + bytes
 *     array value = u32 elem_type, u64 n, n values (arrays may nest)
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to general.alignment (u32, default 32), then the data section; tensor
 *   offsets are relative to it and aligned.
 * The parser is a cursor with one bounds check per read; counts are compared with the
 * bytes left before anything is allocated, so a hostile count cannot make us allocate
 * more than a small multiple of the file size. This file assumes a little-endian host. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant.h"

#define GGUF_DEFAULT_ALIGNMENT 32
/* Arrays of arrays are legal but nothing real nests deeper than 2; the limit stops a
 * recursion bomb from exhausting the stack. */
#define GGUF_MAX_DEPTH 8

typedef struct {
    char *key;
    size_t key_pos;     /* file offset of the key, for messages */
    gguf_type type;
    gguf_type arr_type;
    uint64_t arr_len;
    size_t val_off;     /* scalar value, or the first array element */
    size_t *str_offs;   /* string arrays: offset of each element's length field */
} gguf_kv;

typedef struct {
    const char *name;
    int64_t idx;
} name_idx;

struct gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    void *map; /* non-NULL when we own an mmap */
    uint32_t version;
    size_t alignment;
    size_t data_off;
    int64_t n_kv;
    gguf_kv *kv;
    name_idx *kv_sorted;
    int64_t n_tensors;
    tensor_t *tensors;
    name_idx *t_sorted;
};

typedef struct {
    const uint8_t *p;
    size_t size;
    size_t pos;
    const char *name;
    err_t *err;
} rd_t;

static const size_t type_size_tab[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const type_name_tab[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                            "bool", "string", "array", "u64", "i64", "f64"};

const char *gguf_type_name(int type) {
    if (type < 0 || type > GGUF_T_F64) return "?";
    return type_name_tab[type];
}

static size_t left(const rd_t *r) { return r->size - r->pos; }

static err_code rd_need(rd_t *r, size_t n, const char *what) {
    if (n > left(r))
        return err_set(r->err, ERR_FORMAT, "%s: byte %zu: expected %s (%zu bytes), found end of file (size %zu)",
                       r->name, r->pos, what, n, r->size);
    return ERR_OK;
}

static err_code rd_u32(rd_t *r, uint32_t *v, const char *what) {
    err_code rc = rd_need(r, 4, what);
    if (rc) return rc;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return ERR_OK;
}

static err_code rd_u64(rd_t *r, uint64_t *v, const char *what) {
    err_code rc = rd_need(r, 8, what);
    if (rc) return rc;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return ERR_OK;
}

/* A string: u64 length then bytes; off and len locate the bytes in the buffer. */
static err_code rd_str_of(rd_t *r, size_t *off, size_t *len, const char *key, const char *what) {
    size_t at = r->pos;
    uint64_t n;
    err_code rc = rd_u64(r, &n, what);
    if (rc) return rc;
    if (n > left(r))
        return err_set(r->err, ERR_FORMAT,
                       "%s: byte %zu: %s%s%s%s has length %" PRIu64 " but only %zu bytes remain in the file",
                       r->name, at, key ? "key " : "", key ? key : "", key ? ": " : "", what, n, left(r));
    *off = r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return ERR_OK;
}

static err_code rd_str(rd_t *r, size_t *off, size_t *len, const char *what) {
    return rd_str_of(r, off, len, NULL, what);
}

/* Copies a key or tensor name to a C string; NUL bytes inside are refused because
 * every consumer looks names up as C strings. */
static err_code dup_name(rd_t *r, size_t off, size_t len, const char *what, char **out) {
    if (memchr(r->p + off, 0, len))
        return err_set(r->err, ERR_FORMAT, "%s: byte %zu: %s contains a NUL byte", r->name, off, what);
    char *s = malloc(len + 1);
    if (!s) return err_set(r->err, ERR_NOMEM, "%s: out of memory for %s", r->name, what);
    memcpy(s, r->p + off, len);
    s[len] = '\0';
    *out = s;
    return ERR_OK;
}

static err_code rd_type(rd_t *r, gguf_type *t, const char *key, const char *what) {
    size_t at = r->pos;
    uint32_t v;
    err_code rc = rd_u32(r, &v, what);
    if (rc) return rc;
    if (v > GGUF_T_F64)
        return err_set(r->err, ERR_FORMAT, "%s: byte %zu: key %s: unknown %s %u (expected 0..12)", r->name, at,
                       key, what, v);
    *t = (gguf_type)v;
    return ERR_OK;
}

/* Checks one value of type t at the cursor and moves past it. For a top-level string
 * array, offs (sized by the caller) receives each element's offset. */
static err_code rd_value(rd_t *r, gguf_type t, int depth, const char *key, size_t *offs);

static err_code rd_array(rd_t *r, int depth, const char *key, gguf_type *et_out, uint64_t *n_out,
                         size_t **offs_out) {
    if (depth >= GGUF_MAX_DEPTH)
        return err_set(r->err, ERR_FORMAT, "%s: byte %zu: key %s: arrays nested deeper than %d levels", r->name,
                       r->pos, key, GGUF_MAX_DEPTH);
    gguf_type et;
    err_code rc = rd_type(r, &et, key, "array element type");
    if (rc) return rc;
    size_t at = r->pos;
    uint64_t n;
    rc = rd_u64(r, &n, "array length");
    if (rc) return rc;
    /* Every element takes at least this many bytes: a length field for strings, a type
     * and length for nested arrays. Compare before looping or allocating. */
    size_t min = et == GGUF_T_STRING ? 8 : et == GGUF_T_ARRAY ? 12 : type_size_tab[et];
    if (n > left(r) / min)
        return err_set(r->err, ERR_FORMAT,
                       "%s: byte %zu: key %s: array of %" PRIu64 " %s needs at least %" PRIu64
                       " bytes but only %zu remain in the file",
                       r->name, at, key, n, gguf_type_name(et), n > UINT64_MAX / min ? UINT64_MAX : n * min,
                       left(r));
    if (et_out) *et_out = et;
    if (n_out) *n_out = n;
    size_t *offs = NULL;
    if (offs_out && et == GGUF_T_STRING && n > 0) {
        offs = malloc((size_t)n * sizeof *offs);
        if (!offs) return err_set(r->err, ERR_NOMEM, "%s: key %s: out of memory for %" PRIu64 " strings", r->name, key, n);
    }
    if (et != GGUF_T_STRING && et != GGUF_T_ARRAY && et != GGUF_T_BOOL) {
        r->pos += (size_t)n * min;
    } else {
        for (uint64_t i = 0; i < n; i++) {
            rc = rd_value(r, et, depth + 1, key, offs ? offs + i : NULL);
            if (rc) {
                free(offs);
                return rc;
            }
        }
    }
    if (offs_out) *offs_out = offs;
    return ERR_OK;
}

static err_code rd_value(rd_t *r, gguf_type t, int depth, const char *key, size_t *offs) {
    if (t == GGUF_T_STRING) {
        if (offs) *offs = r->pos;
        size_t o, l;
        return rd_str_of(r, &o, &l, key, "string value");
    }
    if (t == GGUF_T_ARRAY) return rd_array(r, depth, key, NULL, NULL, NULL);
    char what[32];
    snprintf(what, sizeof what, "%s value", gguf_type_name(t));
    err_code rc = rd_need(r, type_size_tab[t], what);
    if (rc) return rc;
    if (t == GGUF_T_BOOL && r->p[r->pos] > 1)
        return err_set(r->err, ERR_FORMAT, "%s: byte %zu: key %s: bool value %u (expected 0 or 1)", r->name, r->pos,
                       key, r->p[r->pos]);
    r->pos += type_size_tab[t];
    return ERR_OK;
}

static int cmp_name_idx(const void *a, const void *b) {
    return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

/* Sorted index for lookup; a duplicate shows up as equal neighbours. */
static err_code sort_names(name_idx **out, int64_t n, const char *name_of(const gguf_t *, int64_t),
                           const size_t *pos, const gguf_t *g, const char *what, err_t *err) {
    *out = NULL;
    if (n == 0) return ERR_OK;
    name_idx *s = malloc((size_t)n * sizeof *s);
    if (!s) return err_set(err, ERR_NOMEM, "%s: out of memory indexing %ss", g->path, what);
    for (int64_t i = 0; i < n; i++) s[i] = (name_idx){name_of(g, i), i};
    qsort(s, (size_t)n, sizeof *s, cmp_name_idx);
    *out = s;
    for (int64_t i = 1; i < n; i++)
        if (!strcmp(s[i - 1].name, s[i].name)) {
            int64_t a = s[i - 1].idx < s[i].idx ? s[i - 1].idx : s[i].idx;
            int64_t b = s[i - 1].idx < s[i].idx ? s[i].idx : s[i - 1].idx;
            return err_set(err, ERR_FORMAT, "%s: byte %zu: duplicate %s name '%s' (%s %" PRId64 " repeats %s %" PRId64
                           " at byte %zu)", g->path, pos[b], what, s[i].name, what, b, what, a, pos[a]);
        }
    return ERR_OK;
}

static const char *kv_name_of(const gguf_t *g, int64_t i) { return g->kv[i].key; }
static const char *t_name_of(const gguf_t *g, int64_t i) { return g->tensors[i].name; }

static err_code parse_kvs(gguf_t *g, rd_t *r, uint64_t n_kv) {
    /* A kv takes at least 8 (key length) + 4 (type) + 1 (smallest value) bytes. */
    if (n_kv > left(r) / 13)
        return err_set(r->err, ERR_FORMAT, "%s: byte 16: metadata count %" PRIu64 " cannot fit in the %zu bytes left",
                       r->name, n_kv, left(r));
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    if (!g->kv) return err_set(r->err, ERR_NOMEM, "%s: out of memory for %" PRIu64 " keys", r->name, n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        size_t off, len;
        kv->key_pos = r->pos;
        err_code rc = rd_str(r, &off, &len, "metadata key");
        if (rc) return rc;
        rc = dup_name(r, off, len, "metadata key", &kv->key);
        if (rc) return rc;
        g->n_kv = (int64_t)i + 1; /* so cleanup frees this key */
        rc = rd_type(r, &kv->type, kv->key, "value type");
        if (rc) return rc;
        if (kv->type == GGUF_T_ARRAY) {
            /* Element 0 follows the 12-byte array header (u32 type, u64 count). */
            kv->val_off = r->pos + 12;
            rc = rd_array(r, 0, kv->key, &kv->arr_type, &kv->arr_len, &kv->str_offs);
            if (rc) return rc;
        } else {
            kv->val_off = r->pos;
            rc = rd_value(r, kv->type, 0, kv->key, NULL);
            if (rc) return rc;
        }
    }
    return ERR_OK;
}

static err_code parse_alignment(gguf_t *g, err_t *err) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = gguf_find_key(g, "general.alignment");
    if (i < 0) return ERR_OK;
    const gguf_kv *kv = &g->kv[i];
    if (kv->type != GGUF_T_U32)
        return err_set(err, ERR_FORMAT, "%s: byte %zu: general.alignment has type %s (expected u32)", g->path,
                       kv->val_off, gguf_type_name(kv->type));
    uint32_t a;
    memcpy(&a, g->base + kv->val_off, 4);
    if (a == 0 || (a & (a - 1)))
        return err_set(err, ERR_FORMAT, "%s: byte %zu: general.alignment is %u (expected a power of two)", g->path,
                       kv->val_off, a);
    g->alignment = a;
    return ERR_OK;
}

/* offs[i]: tensor i's data offset; pos[i]: where its info starts; opos[i]: where its
 * offset field is (for messages). */
static err_code parse_tensor_infos(gguf_t *g, rd_t *r, uint64_t n_t, uint64_t *offs, size_t *pos, size_t *opos) {
    for (uint64_t i = 0; i < n_t; i++) {
        tensor_t *t = &g->tensors[i];
        size_t at = r->pos, off, len;
        pos[i] = at;
        err_code rc = rd_str(r, &off, &len, "tensor name");
        if (rc) return rc;
        char *name;
        rc = dup_name(r, off, len, "tensor name", &name);
        if (rc) return rc;
        t->name = name;
        g->n_tensors = (int64_t)i + 1;
        size_t dpos = r->pos;
        uint32_t nd;
        rc = rd_u32(r, &nd, "tensor dimension count");
        if (rc) return rc;
        if (nd < 1 || nd > TENSOR_MAX_DIMS)
            return err_set(r->err, ERR_FORMAT, "%s: byte %zu: tensor %s: %u dimensions (expected 1..%d)", r->name,
                           dpos, name, nd, TENSOR_MAX_DIMS);
        t->n_dims = (int)nd;
        int64_t prod = 1;
        for (int d = 0; d < TENSOR_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            size_t epos = r->pos;
            uint64_t v;
            rc = rd_u64(r, &v, "tensor dimension");
            if (rc) return rc;
            if (v == 0 || v > (uint64_t)INT64_MAX)
                return err_set(r->err, ERR_FORMAT, "%s: byte %zu: tensor %s: dimension %u is %" PRIu64
                               " (expected 1..2^63-1)", r->name, epos, name, d, v);
            if ((int64_t)v > INT64_MAX / prod)
                return err_set(r->err, ERR_FORMAT, "%s: byte %zu: tensor %s: element count overflows 64 bits",
                               r->name, epos, name);
            prod *= (int64_t)v;
            t->ne[d] = (int64_t)v;
        }
        size_t tpos = r->pos;
        uint32_t type;
        rc = rd_u32(r, &type, "tensor type");
        if (rc) return rc;
        const qt_traits *tr = qt_get((int)type);
        if (!tr) {
            char known[256];
            size_t k = 0;
            known[0] = '\0';
            for (int q = 0; q < QT_COUNT && k < sizeof known; q++)
                if (qt_get(q)) k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", k ? ", " : "", qt_get(q)->name);
            return err_set(r->err, ERR_UNSUPPORTED, "%s: byte %zu: tensor %s: unsupported tensor type %u (expected one of %s)",
                           r->name, tpos, name, type, known);
        }
        t->type = (int)type;
        if (t->ne[0] % tr->block_size)
            return err_set(r->err, ERR_FORMAT,
                           "%s: byte %zu: tensor %s: ne[0] = %" PRId64 " is not a multiple of %s's block size %d",
                           r->name, at, name, t->ne[0], tr->name, tr->block_size);
        /* Bytes = blocks per row * type_size * rows, each product checked. */
        uint64_t row = (uint64_t)(t->ne[0] / tr->block_size), rows = (uint64_t)(prod / t->ne[0]);
        if (row > SIZE_MAX / tr->type_size || row * tr->type_size > SIZE_MAX / rows)
            return err_set(r->err, ERR_FORMAT, "%s: byte %zu: tensor %s: byte size overflows", r->name, at, name);
        t->nbytes = (size_t)(row * tr->type_size * rows);
        opos[i] = r->pos;
        rc = rd_u64(r, &offs[i], "tensor data offset");
        if (rc) return rc;
    }
    return ERR_OK;
}

static err_code place_tensors(gguf_t *g, const uint64_t *offs, const size_t *opos, err_t *err) {
    for (int64_t i = 0; i < g->n_tensors; i++) {
        tensor_t *t = &g->tensors[i];
        uint64_t o = offs[i];
        if (o % g->alignment)
            return err_set(err, ERR_FORMAT,
                           "%s: byte %zu: tensor %s: data offset %" PRIu64 " is not a multiple of the alignment %zu",
                           g->path, opos[i], t->name, o, g->alignment);
        if (g->data_off > g->size || o > g->size - g->data_off || t->nbytes > g->size - g->data_off - o)
            return err_set(err, ERR_FORMAT,
                           "%s: byte %zu: tensor %s: data [%" PRIu64 ", +%zu) relative to the data section at %zu "
                           "lies beyond the end of the file (size %zu)",
                           g->path, opos[i], t->name, o, t->nbytes, g->data_off, g->size);
        t->data = g->base + g->data_off + o;
    }
    return ERR_OK;
}

static void gguf_free_parts(gguf_t *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_offs);
    }
    free(g->kv);
    free(g->kv_sorted);
    for (int64_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->tensors);
    free(g->t_sorted);
    if (g->map) munmap(g->map, g->size);
    free(g->path);
    free(g);
}

void gguf_close(gguf_t *g) { gguf_free_parts(g); }

static err_code parse(gguf_t *g, err_t *err) {
    rd_t r = {g->base, g->size, 0, g->path, err};
    err_code rc = rd_need(&r, 4, "magic \"GGUF\"");
    if (rc) return rc;
    if (memcmp(g->base, "GGUF", 4))
        return err_set(err, ERR_FORMAT, "%s: byte 0: expected magic \"GGUF\", found %02x %02x %02x %02x (not a GGUF file)",
                       g->path, g->base[0], g->base[1], g->base[2], g->base[3]);
    r.pos = 4;
    uint32_t ver;
    if ((rc = rd_u32(&r, &ver, "version"))) return rc;
    if (ver == 1)
        return err_set(err, ERR_UNSUPPORTED, "%s: byte 4: GGUF version 1 is not supported (expected 2 or 3)", g->path);
    if (ver != 2 && ver != 3) {
        if (ver == 0x02000000u || ver == 0x03000000u)
            return err_set(err, ERR_UNSUPPORTED, "%s: byte 4: big-endian GGUF is not supported", g->path);
        return err_set(err, ERR_FORMAT, "%s: byte 4: version %u (expected 2 or 3)", g->path, ver);
    }
    g->version = ver;
    uint64_t n_t, n_kv;
    if ((rc = rd_u64(&r, &n_t, "tensor count"))) return rc;
    if ((rc = rd_u64(&r, &n_kv, "metadata count"))) return rc;
    if ((rc = parse_kvs(g, &r, n_kv))) return rc;
    size_t *kpos = malloc((g->n_kv ? (size_t)g->n_kv : 1) * sizeof *kpos);
    if (!kpos) return err_set(err, ERR_NOMEM, "%s: out of memory", g->path);
    for (int64_t i = 0; i < g->n_kv; i++) kpos[i] = g->kv[i].key_pos;
    rc = sort_names(&g->kv_sorted, g->n_kv, kv_name_of, kpos, g, "key", err);
    free(kpos);
    if (rc) return rc;
    if ((rc = parse_alignment(g, err))) return rc;

    /* A tensor info takes at least 8 (name) + 4 (n_dims) + 8 (ne0) + 4 (type) + 8 (offset). */
    if (n_t > left(&r) / 32)
        return err_set(err, ERR_FORMAT, "%s: byte 8: tensor count %" PRIu64 " cannot fit in the %zu bytes left",
                       g->path, n_t, left(&r));
    size_t nt = n_t ? (size_t)n_t : 1;
    g->tensors = calloc(nt, sizeof *g->tensors);
    uint64_t *offs = malloc(nt * sizeof *offs);
    size_t *pos = malloc(nt * sizeof *pos), *opos = malloc(nt * sizeof *opos);
    if (!g->tensors || !offs || !pos || !opos) {
        rc = err_set(err, ERR_NOMEM, "%s: out of memory for %" PRIu64 " tensors", g->path, n_t);
    } else {
        rc = parse_tensor_infos(g, &r, n_t, offs, pos, opos);
        if (!rc) rc = sort_names(&g->t_sorted, g->n_tensors, t_name_of, pos, g, "tensor", err);
    }
    if (!rc) {
        /* Data begins at the next multiple of the alignment after the infos. */
        size_t a = g->alignment;
        g->data_off = r.pos % a ? r.pos + (a - r.pos % a) : r.pos;
        if (g->data_off < r.pos) g->data_off = SIZE_MAX;
        rc = place_tensors(g, offs, opos, err);
    }
    free(offs);
    free(pos);
    free(opos);
    return rc;
}

static err_code finish_open(gguf_t *g, gguf_t **out, err_t *err) {
    err_code rc = parse(g, err);
    if (rc) {
        gguf_free_parts(g);
        return rc;
    }
    *out = g;
    return ERR_OK;
}

err_code gguf_open_memory(gguf_t **out, const void *data, size_t size, const char *name, err_t *err) {
    *out = NULL;
    gguf_t *g = calloc(1, sizeof *g);
    if (!g) return err_set(err, ERR_NOMEM, "%s: out of memory", name);
    g->path = strdup(name ? name : "(memory)");
    if (!g->path) {
        free(g);
        return err_set(err, ERR_NOMEM, "%s: out of memory", name);
    }
    g->base = data;
    g->size = data ? size : 0;
    if (!g->base) g->base = (const uint8_t *)"";
    return finish_open(g, out, err);
}

err_code gguf_open(gguf_t **out, const char *path, err_t *err) {
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO (or a terminal) must not wait for a writer; the
     * regular-file check below refuses it. Reads of a regular file ignore the flag. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, ERR_IO, "%s: %s (expected a GGUF file)", path,
                       S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    }
    gguf_t *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        close(fd);
        return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    }
    g->size = (size_t)st.st_size;
    if (g->size == 0) {
        g->base = (const uint8_t *)"";
    } else {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            g->size = 0;
            gguf_free_parts(g);
            return err_set(err, ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        g->map = m;
        g->base = m;
    }
    close(fd);
    return finish_open(g, out, err);
}

const char *gguf_path(const gguf_t *g) { return g->path; }

void gguf_drop_pages(const gguf_t *g, const void *p, size_t n) {
    const uintptr_t lo = (uintptr_t)p, base = (uintptr_t)g->map;
    if (!g->map || lo < base || n > g->size || lo - base > g->size - n) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = (lo + page - 1) / page * page, b = (lo + n) / page * page;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}
uint32_t gguf_version(const gguf_t *g) { return g->version; }
size_t gguf_alignment(const gguf_t *g) { return g->alignment; }
size_t gguf_file_size(const gguf_t *g) { return g->size; }
size_t gguf_data_offset(const gguf_t *g) { return g->data_off; }

int64_t gguf_n_kv(const gguf_t *g) { return g->n_kv; }
const char *gguf_kv_key(const gguf_t *g, int64_t i) { return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL; }
gguf_type gguf_kv_type(const gguf_t *g, int64_t i) { return g->kv[i].type; }
gguf_type gguf_kv_arr_type(const gguf_t *g, int64_t i) { return g->kv[i].arr_type; }
uint64_t gguf_kv_arr_len(const gguf_t *g, int64_t i) { return g->kv[i].type == GGUF_T_ARRAY ? g->kv[i].arr_len : 0; }

static int64_t find_sorted(const name_idx *s, int64_t n, const char *name) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s[mid].name, name);
        if (c == 0) return s[mid].idx;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

int64_t gguf_find_key(const gguf_t *g, const char *key) {
    if (!g->kv_sorted) { /* during parsing, before the index exists */
        for (int64_t i = 0; i < g->n_kv; i++)
            if (!strcmp(g->kv[i].key, key)) return i;
        return -1;
    }
    return find_sorted(g->kv_sorted, g->n_kv, key);
}

/* ---- typed getters ---- */

static err_code get_kv(const gguf_t *g, const char *key, const gguf_kv **kv, err_t *err) {
    int64_t i = gguf_find_key(g, key);
    if (i < 0) return err_set(err, ERR_NOTFOUND, "%s: key %s not found", g->path, key);
    *kv = &g->kv[i];
    return ERR_OK;
}

/* Reads an integer element of type t at p, widened; false when t is not an integer. */
static bool read_int(gguf_type t, const uint8_t *p, int64_t *s, uint64_t *u, bool *is_unsigned) {
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64;
    } v;
    if (t > GGUF_T_F64 || !type_size_tab[t]) return false;
    memcpy(&v, p, type_size_tab[t]);
    *is_unsigned = false;
    switch (t) {
    case GGUF_T_U8: *u = v.u8; *is_unsigned = true; break;
    case GGUF_T_U16: *u = v.u16; *is_unsigned = true; break;
    case GGUF_T_U32: *u = v.u32; *is_unsigned = true; break;
    case GGUF_T_U64: *u = v.u64; *is_unsigned = true; break;
    case GGUF_T_I8: *s = v.i8; break;
    case GGUF_T_I16: *s = v.i16; break;
    case GGUF_T_I32: *s = v.i32; break;
    case GGUF_T_I64: *s = v.i64; break;
    default: return false;
    }
    return true;
}

/* Integer value as a signed range check: fits in [lo, hi]. */
static err_code get_int_in(const gguf_t *g, const char *key, int64_t lo, uint64_t hi, int64_t *s_out,
                           uint64_t *u_out, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_kv(g, key, &kv, err);
    if (rc) return rc;
    int64_t s = 0;
    uint64_t u = 0;
    bool uns;
    if (!read_int(kv->type, g->base + kv->val_off, &s, &u, &uns))
        return err_set(err, ERR_FORMAT, "%s: key %s has type %s (expected an integer)", g->path, key,
                       gguf_type_name(kv->type));
    bool ok = uns ? u <= hi : (s >= lo && (s < 0 || (uint64_t)s <= hi));
    if (!ok) {
        if (uns)
            return err_set(err, ERR_RANGE, "%s: key %s = %" PRIu64 " out of range", g->path, key, u);
        return err_set(err, ERR_RANGE, "%s: key %s = %" PRId64 " out of range", g->path, key, s);
    }
    if (uns) s = (int64_t)u;
    else u = (uint64_t)s;
    if (s_out) *s_out = s;
    if (u_out) *u_out = u;
    return ERR_OK;
}

err_code gguf_get_u32(const gguf_t *g, const char *key, uint32_t *out, err_t *err) {
    uint64_t u;
    err_code rc = get_int_in(g, key, 0, UINT32_MAX, NULL, &u, err);
    if (!rc) *out = (uint32_t)u;
    return rc;
}

err_code gguf_get_i64(const gguf_t *g, const char *key, int64_t *out, err_t *err) {
    return get_int_in(g, key, INT64_MIN, INT64_MAX, out, NULL, err);
}

err_code gguf_get_f32(const gguf_t *g, const char *key, float *out, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_kv(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type == GGUF_T_F32) {
        memcpy(out, g->base + kv->val_off, 4);
    } else if (kv->type == GGUF_T_F64) {
        double d;
        memcpy(&d, g->base + kv->val_off, 8);
        *out = (float)d;
    } else {
        return err_set(err, ERR_FORMAT, "%s: key %s has type %s (expected f32 or f64)", g->path, key,
                       gguf_type_name(kv->type));
    }
    return ERR_OK;
}

err_code gguf_get_bool(const gguf_t *g, const char *key, bool *out, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_kv(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_T_BOOL)
        return err_set(err, ERR_FORMAT, "%s: key %s has type %s (expected bool)", g->path, key, gguf_type_name(kv->type));
    *out = g->base[kv->val_off] != 0;
    return ERR_OK;
}

/* View of the string whose u64 length field is at off (validated at open). */
static void str_at(const gguf_t *g, size_t off, const char **s, size_t *len) {
    uint64_t n;
    memcpy(&n, g->base + off, 8);
    *s = (const char *)g->base + off + 8;
    *len = (size_t)n;
}

err_code gguf_get_str_view(const gguf_t *g, const char *key, const char **s, size_t *len, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_kv(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_T_STRING)
        return err_set(err, ERR_FORMAT, "%s: key %s has type %s (expected string)", g->path, key,
                       gguf_type_name(kv->type));
    str_at(g, kv->val_off, s, len);
    return ERR_OK;
}

err_code gguf_get_str(const gguf_t *g, const char *key, char *buf, size_t cap, err_t *err) {
    const char *s;
    size_t len;
    err_code rc = gguf_get_str_view(g, key, &s, &len, err);
    if (rc) return rc;
    if (len + 1 > cap)
        return err_set(err, ERR_RANGE, "%s: key %s: string of %zu bytes does not fit a buffer of %zu", g->path, key,
                       len, cap);
    memcpy(buf, s, len);
    buf[len] = '\0';
    return ERR_OK;
}

static err_code get_arr(const gguf_t *g, const char *key, const gguf_kv **kv, err_t *err) {
    err_code rc = get_kv(g, key, kv, err);
    if (rc) return rc;
    if ((*kv)->type != GGUF_T_ARRAY)
        return err_set(err, ERR_FORMAT, "%s: key %s has type %s (expected array)", g->path, key,
                       gguf_type_name((*kv)->type));
    return ERR_OK;
}

err_code gguf_get_arr_len(const gguf_t *g, const char *key, gguf_type elem_type, uint64_t *n, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_arr(g, key, &kv, err);
    if (rc) return rc;
    if (kv->arr_type != elem_type)
        return err_set(err, ERR_FORMAT, "%s: key %s is an array of %s (expected %s)", g->path, key,
                       gguf_type_name(kv->arr_type), gguf_type_name(elem_type));
    *n = kv->arr_len;
    return ERR_OK;
}

static err_code check_n(const gguf_t *g, const char *key, const gguf_kv *kv, uint64_t n, err_t *err) {
    if (n != kv->arr_len)
        return err_set(err, ERR_MISMATCH, "%s: key %s has %" PRIu64 " elements (expected %" PRIu64 ")", g->path, key,
                       kv->arr_len, n);
    return ERR_OK;
}

err_code gguf_get_arr_f32(const gguf_t *g, const char *key, float *out, uint64_t n, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_arr(g, key, &kv, err);
    if (rc) return rc;
    if (kv->arr_type != GGUF_T_F32 && kv->arr_type != GGUF_T_F64)
        return err_set(err, ERR_FORMAT, "%s: key %s is an array of %s (expected f32)", g->path, key,
                       gguf_type_name(kv->arr_type));
    if ((rc = check_n(g, key, kv, n, err))) return rc;
    const uint8_t *p = g->base + kv->val_off;
    for (uint64_t i = 0; i < n; i++) {
        if (kv->arr_type == GGUF_T_F32) {
            memcpy(&out[i], p + 4 * i, 4);
        } else {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
    }
    return ERR_OK;
}

err_code gguf_get_arr_i32(const gguf_t *g, const char *key, int32_t *out, uint64_t n, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_arr(g, key, &kv, err);
    if (rc) return rc;
    gguf_type t = kv->arr_type;
    if (t == GGUF_T_STRING || t == GGUF_T_ARRAY || t == GGUF_T_BOOL || t == GGUF_T_F32 || t == GGUF_T_F64)
        return err_set(err, ERR_FORMAT, "%s: key %s is an array of %s (expected integers)", g->path, key,
                       gguf_type_name(t));
    if ((rc = check_n(g, key, kv, n, err))) return rc;
    const uint8_t *p = g->base + kv->val_off;
    for (uint64_t i = 0; i < n; i++) {
        int64_t s = 0;
        uint64_t u = 0;
        bool uns;
        read_int(t, p + i * type_size_tab[t], &s, &u, &uns);
        if (uns ? u > INT32_MAX : (s < INT32_MIN || s > INT32_MAX))
            return err_set(err, ERR_RANGE, "%s: key %s: element %" PRIu64 " does not fit in 32 bits", g->path, key, i);
        out[i] = uns ? (int32_t)u : (int32_t)s;
    }
    return ERR_OK;
}

err_code gguf_get_arr_str(const gguf_t *g, const char *key, uint64_t i, const char **s, size_t *len, err_t *err) {
    const gguf_kv *kv = NULL;
    err_code rc = get_arr(g, key, &kv, err);
    if (rc) return rc;
    if (kv->arr_type != GGUF_T_STRING)
        return err_set(err, ERR_FORMAT, "%s: key %s is an array of %s (expected string)", g->path, key,
                       gguf_type_name(kv->arr_type));
    if (i >= kv->arr_len)
        return err_set(err, ERR_RANGE, "%s: key %s: index %" PRIu64 " beyond its %" PRIu64 " strings", g->path, key, i,
                       kv->arr_len);
    str_at(g, kv->str_offs[i], s, len);
    return ERR_OK;
}

/* ---- tensors ---- */

int64_t gguf_n_tensors(const gguf_t *g) { return g->n_tensors; }
const tensor_t *gguf_tensor(const gguf_t *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const tensor_t *gguf_find_tensor(const gguf_t *g, const char *name) {
    int64_t i = find_sorted(g->t_sorted, g->n_tensors, name);
    return i < 0 ? NULL : &g->tensors[i];
}

static void shape_str(char *buf, size_t cap, int n_dims, const int64_t *ne) {
    size_t k = 0;
    buf[0] = '\0';
    for (int d = 0; d < n_dims && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, d ? " x " : "[", ne[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

err_code gguf_require_tensor(const gguf_t *g, const char *name, int n_dims, const int64_t *ne,
                             const tensor_t **out, err_t *err) {
    const tensor_t *t = gguf_find_tensor(g, name);
    if (!t) return err_set(err, ERR_NOTFOUND, "%s: tensor %s not found", g->path, name);
    bool ok = t->n_dims == n_dims;
    for (int d = 0; ok && d < n_dims; d++) ok = t->ne[d] == ne[d];
    if (!ok) {
        char want[96], have[96];
        shape_str(want, sizeof want, n_dims, ne);
        shape_str(have, sizeof have, t->n_dims, t->ne);
        return err_set(err, ERR_MISMATCH, "%s: tensor %s has shape %s (expected %s)", g->path, name, have, want);
    }
    if (out) *out = t;
    return ERR_OK;
}

/* ---- formatting ---- */

typedef struct {
    char *buf;
    size_t cap, len;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->len + 1 >= b->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n > 0) b->len = b->len + (size_t)n < b->cap ? b->len + (size_t)n : b->cap - 1;
}

/* Quoted, with non-printable bytes escaped and long strings cut at 60 bytes. */
static void sb_quoted(sbuf *b, const char *s, size_t len) {
    sb_printf(b, "\"");
    size_t n = len > 60 ? 60 : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
        else if (c == '\n') sb_printf(b, "\\n");
        else if (c < 0x20 || c == 0x7f) sb_printf(b, "\\x%02x", c);
        else sb_printf(b, "%c", c);
    }
    sb_printf(b, len > n ? "\"..." : "\"");
}

/* One scalar value of type t at p. */
static void sb_scalar(sbuf *b, gguf_type t, const uint8_t *p) {
    int64_t s;
    uint64_t u;
    bool uns;
    if (read_int(t, p, &s, &u, &uns)) {
        if (uns) sb_printf(b, "%" PRIu64, u);
        else sb_printf(b, "%" PRId64, s);
    } else if (t == GGUF_T_F32) {
        /* Shortest of %.6g / %.9g that reads back to the same float. */
        float f;
        memcpy(&f, p, 4);
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.6g", f);
        if (strtof(tmp, NULL) != f) snprintf(tmp, sizeof tmp, "%.9g", f);
        sb_printf(b, "%s", tmp);
    } else if (t == GGUF_T_F64) {
        double d;
        memcpy(&d, p, 8);
        char tmp[40];
        snprintf(tmp, sizeof tmp, "%.15g", d);
        if (strtod(tmp, NULL) != d) snprintf(tmp, sizeof tmp, "%.17g", d);
        sb_printf(b, "%s", tmp);
    } else if (t == GGUF_T_BOOL) {
        sb_printf(b, "%s", *p ? "true" : "false");
    }
}

/* ---- values of any depth ---- */

static uint32_t rd32_at(const gguf_t *g, size_t off) {
    uint32_t v;
    memcpy(&v, g->base + off, 4);
    return v;
}

static uint64_t rd64_at(const gguf_t *g, size_t off) {
    uint64_t v;
    memcpy(&v, g->base + off, 8);
    return v;
}

/* Bytes the value of type t at off takes. Only called on validated values, whose
 * nesting depth parse bounded (GGUF_MAX_DEPTH) and whose sizes all fit in the file. */
static size_t value_size(const gguf_t *g, size_t off, gguf_type t) {
    if (t == GGUF_T_STRING) return 8 + (size_t)rd64_at(g, off);
    if (t != GGUF_T_ARRAY) return type_size_tab[t];
    gguf_type et = (gguf_type)rd32_at(g, off);
    uint64_t n = rd64_at(g, off + 4);
    if (et != GGUF_T_STRING && et != GGUF_T_ARRAY) return 12 + (size_t)n * type_size_tab[et];
    size_t p = off + 12;
    for (uint64_t k = 0; k < n; k++) p += value_size(g, p, et);
    return p - off;
}

gguf_val_t gguf_kv_value(const gguf_t *g, int64_t i) {
    gguf_val_t v = {g, 0, GGUF_T_U8, -1};
    if (i < 0 || i >= g->n_kv) return v;
    const gguf_kv *kv = &g->kv[i];
    v.type = kv->type;
    v.off = kv->type == GGUF_T_ARRAY ? kv->val_off - 12 : kv->val_off;
    v.kv = i;
    return v;
}

gguf_type gguf_val_arr_type(gguf_val_t v) {
    return v.type == GGUF_T_ARRAY ? (gguf_type)rd32_at(v.g, v.off) : v.type;
}

uint64_t gguf_val_arr_len(gguf_val_t v) { return v.type == GGUF_T_ARRAY ? rd64_at(v.g, v.off + 4) : 0; }

bool gguf_val_elem(gguf_val_t v, uint64_t k, gguf_val_t *out) {
    if (v.type != GGUF_T_ARRAY || k >= rd64_at(v.g, v.off + 4)) return false;
    gguf_type et = (gguf_type)rd32_at(v.g, v.off);
    size_t p = v.off + 12;
    if (et != GGUF_T_STRING && et != GGUF_T_ARRAY) p += (size_t)k * type_size_tab[et];
    else if (et == GGUF_T_STRING && v.kv >= 0) p = v.g->kv[v.kv].str_offs[k];
    else
        for (uint64_t j = 0; j < k; j++) p += value_size(v.g, p, et);
    *out = (gguf_val_t){v.g, p, et, -1};
    return true;
}

double gguf_val_num(gguf_val_t v) {
    if (v.type == GGUF_T_STRING || v.type == GGUF_T_ARRAY) return NAN;
    const uint8_t *p = v.g->base + v.off;
    int64_t s;
    uint64_t u;
    bool uns;
    if (read_int(v.type, p, &s, &u, &uns)) return uns ? (double)u : (double)s;
    if (v.type == GGUF_T_BOOL) return *p ? 1.0 : 0.0;
    if (v.type == GGUF_T_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    double d;
    memcpy(&d, p, 8);
    return d;
}

bool gguf_val_int(gguf_val_t v, int64_t *s, uint64_t *u, bool *is_unsigned) {
    if (v.type == GGUF_T_STRING || v.type == GGUF_T_ARRAY) return false;
    *s = 0;
    *u = 0;
    return read_int(v.type, v.g->base + v.off, s, u, is_unsigned);
}

const char *gguf_val_str(gguf_val_t v, size_t *len) {
    if (v.type != GGUF_T_STRING) return NULL;
    const char *s;
    size_t n;
    str_at(v.g, v.off, &s, &n);
    if (len) *len = n;
    return s;
}

/* An array, abbreviated: "[type x n] e0, e1, ..."; nested arrays in parentheses. */
static void sb_value(sbuf *b, gguf_val_t v) {
    if (v.type == GGUF_T_STRING) {
        size_t len;
        const char *s = gguf_val_str(v, &len);
        sb_quoted(b, s, len);
        return;
    }
    if (v.type != GGUF_T_ARRAY) {
        sb_scalar(b, v.type, v.g->base + v.off);
        return;
    }
    gguf_type et = gguf_val_arr_type(v);
    uint64_t n = gguf_val_arr_len(v);
    sb_printf(b, "[%s x %" PRIu64 "]", gguf_type_name(et), n);
    uint64_t show = et == GGUF_T_STRING || et == GGUF_T_ARRAY ? 4 : 8;
    if (show > n) show = n;
    for (uint64_t k = 0; k < show && b->len + 1 < b->cap; k++) {
        gguf_val_t e;
        gguf_val_elem(v, k, &e);
        sb_printf(b, k ? ", " : " ");
        if (et == GGUF_T_ARRAY) sb_printf(b, "(");
        sb_value(b, e);
        if (et == GGUF_T_ARRAY) sb_printf(b, ")");
    }
    if (n > show) sb_printf(b, ", ...");
}

void gguf_kv_format(const gguf_t *g, int64_t i, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = '\0';
    if (i < 0 || i >= g->n_kv) return;
    sbuf b = {buf, cap, 0};
    sb_value(&b, gguf_kv_value(g, i));
}

/* kv i's value, or element k of it when it is an array (k must be 0 otherwise). */
static bool kv_item(const gguf_t *g, int64_t i, uint64_t k, gguf_val_t *out) {
    if (i < 0 || i >= g->n_kv) return false;
    gguf_val_t v = gguf_kv_value(g, i);
    if (v.type == GGUF_T_ARRAY) return gguf_val_elem(v, k, out);
    *out = v;
    return k == 0;
}

double gguf_kv_num(const gguf_t *g, int64_t i, uint64_t k) {
    gguf_val_t v;
    return kv_item(g, i, k, &v) ? gguf_val_num(v) : NAN;
}

const char *gguf_kv_strv(const gguf_t *g, int64_t i, uint64_t k, size_t *len) {
    gguf_val_t v;
    return kv_item(g, i, k, &v) ? gguf_val_str(v, len) : NULL;
}
