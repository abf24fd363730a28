/* gguf_write.c — GGUF v3 writer.
 *
 * Metadata is serialized as it is set (one growing byte buffer), tensors are kept as
 * pointers or fill callbacks and streamed at write time through a buffered FILE.
 * llama.cpp's gguf.cpp (gguf_init_from_file_impl) requires each tensor's offset to be
 * exactly the previous offset plus its size padded to the alignment, tensor names
 * shorter than GGML_MAX_NAME (64) and general.alignment of type u32; we write that. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "quant.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGML_MAX_NAME 64
/* Streamed tensors are produced in chunks of about this many bytes. */
#define CHUNK_BYTES ((size_t)4 << 20)

typedef struct {
    char *name;
    int type;
    int n_dims;
    int64_t ne[TENSOR_MAX_DIMS];
    const void *data;
    size_t nbytes;
    size_t row_bytes;
    gguf_fill_fn fill;
    void *user;
} wtensor;

struct gguf_writer {
    uint32_t alignment;
    unsigned char *meta;
    size_t meta_len, meta_cap;
    char **keys;
    int64_t n_kv, keys_cap;
    wtensor *t;
    int64_t n_t, t_cap;
    gguf_progress_fn progress;
    void *progress_user;
};

gguf_writer_t *gguf_writer_create(void) {
    gguf_writer_t *w = calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer_t *w) {
    if (!w) return;
    free(w->meta);
    for (int64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (int64_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

void gguf_writer_set_alignment(gguf_writer_t *w, uint32_t alignment) { w->alignment = alignment; }

void gguf_writer_set_progress(gguf_writer_t *w, gguf_progress_fn fn, void *user) {
    w->progress = fn;
    w->progress_user = user;
}

int64_t gguf_writer_n_tensors(const gguf_writer_t *w) { return w->n_t; }

static err_code meta_put(gguf_writer_t *w, const void *p, size_t n) {
    if (n > SIZE_MAX / 2 - w->meta_len) return ERR_NOMEM;
    if (w->meta_len + n > w->meta_cap) {
        size_t cap = w->meta_cap ? w->meta_cap : 4096;
        while (cap < w->meta_len + n) cap *= 2;
        unsigned char *m = realloc(w->meta, cap);
        if (!m) return ERR_NOMEM;
        w->meta = m;
        w->meta_cap = cap;
    }
    memcpy(w->meta + w->meta_len, p, n);
    w->meta_len += n;
    return ERR_OK;
}

static err_code put_u32(gguf_writer_t *w, uint32_t v) { return meta_put(w, &v, 4); }
static err_code put_u64(gguf_writer_t *w, uint64_t v) { return meta_put(w, &v, 8); }
static err_code put_str(gguf_writer_t *w, const char *s, size_t n) {
    err_code rc = put_u64(w, n);
    return rc ? rc : meta_put(w, s, n);
}

/* Starts a kv: refuses duplicates, records the key, writes key and type tag. On a
 * later failure the caller rolls meta_len back via the returned mark. */
static err_code kv_begin(gguf_writer_t *w, const char *key, gguf_type type, size_t *mark) {
    if (!key || !*key || strlen(key) > 65535) return ERR_ARG;
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return ERR_ARG;
    if (w->n_kv == w->keys_cap) {
        int64_t cap = w->keys_cap ? 2 * w->keys_cap : 32;
        char **k = realloc(w->keys, (size_t)cap * sizeof *k);
        if (!k) return ERR_NOMEM;
        w->keys = k;
        w->keys_cap = cap;
    }
    *mark = w->meta_len;
    err_code rc = put_str(w, key, strlen(key));
    if (!rc) rc = put_u32(w, (uint32_t)type);
    if (rc) {
        w->meta_len = *mark;
        return rc;
    }
    return ERR_OK;
}

static err_code kv_end(gguf_writer_t *w, const char *key, size_t mark, err_code rc) {
    if (!rc) {
        w->keys[w->n_kv] = strdup(key);
        if (!w->keys[w->n_kv]) rc = ERR_NOMEM;
        else w->n_kv++;
    }
    if (rc) w->meta_len = mark;
    return rc;
}

static err_code set_scalar(gguf_writer_t *w, const char *key, gguf_type type, const void *v, size_t n) {
    size_t mark;
    err_code rc = kv_begin(w, key, type, &mark);
    if (rc) return rc;
    return kv_end(w, key, mark, meta_put(w, v, n));
}

err_code gguf_writer_set_u8(gguf_writer_t *w, const char *key, uint8_t v) { return set_scalar(w, key, GGUF_T_U8, &v, 1); }
err_code gguf_writer_set_i8(gguf_writer_t *w, const char *key, int8_t v) { return set_scalar(w, key, GGUF_T_I8, &v, 1); }
err_code gguf_writer_set_u16(gguf_writer_t *w, const char *key, uint16_t v) { return set_scalar(w, key, GGUF_T_U16, &v, 2); }
err_code gguf_writer_set_i16(gguf_writer_t *w, const char *key, int16_t v) { return set_scalar(w, key, GGUF_T_I16, &v, 2); }
err_code gguf_writer_set_u32(gguf_writer_t *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_T_U32, &v, 4); }
err_code gguf_writer_set_i32(gguf_writer_t *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_T_I32, &v, 4); }
err_code gguf_writer_set_u64(gguf_writer_t *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_T_U64, &v, 8); }
err_code gguf_writer_set_i64(gguf_writer_t *w, const char *key, int64_t v) { return set_scalar(w, key, GGUF_T_I64, &v, 8); }
err_code gguf_writer_set_f32(gguf_writer_t *w, const char *key, float v) { return set_scalar(w, key, GGUF_T_F32, &v, 4); }
err_code gguf_writer_set_f64(gguf_writer_t *w, const char *key, double v) { return set_scalar(w, key, GGUF_T_F64, &v, 8); }

err_code gguf_writer_set_bool(gguf_writer_t *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_T_BOOL, &b, 1);
}

err_code gguf_writer_set_str(gguf_writer_t *w, const char *key, const char *v) {
    if (!v) return ERR_ARG;
    size_t mark;
    err_code rc = kv_begin(w, key, GGUF_T_STRING, &mark);
    if (rc) return rc;
    return kv_end(w, key, mark, put_str(w, v, strlen(v)));
}

static const size_t elem_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

err_code gguf_writer_set_arr(gguf_writer_t *w, const char *key, gguf_type elem_type, const void *v, uint64_t n) {
    if ((int)elem_type < 0 || elem_type > GGUF_T_F64 || !elem_size[elem_type] || (n && !v)) return ERR_ARG;
    if (n > SIZE_MAX / 16) return ERR_NOMEM;
    size_t mark;
    err_code rc = kv_begin(w, key, GGUF_T_ARRAY, &mark);
    if (rc) return rc;
    rc = put_u32(w, (uint32_t)elem_type);
    if (!rc) rc = put_u64(w, n);
    if (!rc && n) rc = meta_put(w, v, (size_t)n * elem_size[elem_type]);
    return kv_end(w, key, mark, rc);
}

err_code gguf_writer_set_arr_f32(gguf_writer_t *w, const char *key, const float *v, uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_T_F32, v, n);
}

err_code gguf_writer_set_arr_i32(gguf_writer_t *w, const char *key, const int32_t *v, uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_T_I32, v, n);
}

err_code gguf_writer_set_arr_str(gguf_writer_t *w, const char *key, const char *const *v, const size_t *lens,
                                 uint64_t n) {
    if (n && !v) return ERR_ARG;
    size_t mark;
    err_code rc = kv_begin(w, key, GGUF_T_ARRAY, &mark);
    if (rc) return rc;
    rc = put_u32(w, GGUF_T_STRING);
    if (!rc) rc = put_u64(w, n);
    for (uint64_t i = 0; !rc && i < n; i++) rc = put_str(w, v[i], lens ? lens[i] : strlen(v[i]));
    return kv_end(w, key, mark, rc);
}

err_code gguf_writer_set_raw(gguf_writer_t *w, const char *key, gguf_type type, const void *bytes, size_t n) {
    if (n && !bytes) return ERR_ARG;
    size_t mark;
    err_code rc = kv_begin(w, key, type, &mark);
    if (rc) return rc;
    return kv_end(w, key, mark, n ? meta_put(w, bytes, n) : ERR_OK);
}

/* Shared checks of add_tensor and add_tensor_fn; fills everything but the source. */
static err_code tensor_begin(gguf_writer_t *w, const char *name, int type, int n_dims, const int64_t *ne,
                             wtensor *t, err_t *err) {
    memset(t, 0, sizeof *t);
    if (!name || !*name || strlen(name) >= GGML_MAX_NAME)
        return err_set(err, ERR_ARG, "gguf writer: tensor name '%s' must have 1..%d bytes", name ? name : "(null)",
                       GGML_MAX_NAME - 1);
    for (int64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return err_set(err, ERR_ARG, "gguf writer: duplicate tensor %s", name);
    const qt_traits *tr = qt_get(type);
    if (!tr) return err_set(err, ERR_UNSUPPORTED, "gguf writer: tensor %s: unsupported type %d", name, type);
    if (n_dims < 1 || n_dims > TENSOR_MAX_DIMS || !ne)
        return err_set(err, ERR_ARG, "gguf writer: tensor %s: %d dimensions (expected 1..4)", name, n_dims);
    int64_t prod = 1;
    for (int d = 0; d < TENSOR_MAX_DIMS; d++) {
        int64_t v = d < n_dims ? ne[d] : 1;
        if (v <= 0 || v > INT64_MAX / prod)
            return err_set(err, ERR_ARG, "gguf writer: tensor %s: bad dimension %d = %" PRId64, name, d, v);
        prod *= v;
        t->ne[d] = v;
    }
    size_t row = qt_row_size(type, t->ne[0]);
    if (!row)
        return err_set(err, ERR_ARG, "gguf writer: tensor %s: ne[0] = %" PRId64 " is not a multiple of %s's block size %d",
                       name, t->ne[0], tr->name, tr->block_size);
    uint64_t rows = (uint64_t)(prod / t->ne[0]);
    if (rows > SIZE_MAX / row) return err_set(err, ERR_ARG, "gguf writer: tensor %s: too large", name);
    t->type = type;
    t->n_dims = n_dims;
    t->row_bytes = row;
    t->nbytes = row * (size_t)rows;
    if (w->n_t == w->t_cap) {
        int64_t cap = w->t_cap ? 2 * w->t_cap : 64;
        wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return err_set(err, ERR_NOMEM, "gguf writer: out of memory");
        w->t = nt;
        w->t_cap = cap;
    }
    t->name = strdup(name);
    if (!t->name) return err_set(err, ERR_NOMEM, "gguf writer: out of memory");
    return ERR_OK;
}

err_code gguf_writer_add_tensor(gguf_writer_t *w, const char *name, int type, int n_dims, const int64_t *ne,
                                const void *data, size_t nbytes, err_t *err) {
    wtensor t;
    err_code rc = tensor_begin(w, name, type, n_dims, ne, &t, err);
    if (rc) return rc;
    if (nbytes != t.nbytes || (nbytes && !data)) {
        free(t.name);
        return err_set(err, ERR_ARG, "gguf writer: tensor %s: %zu bytes given, shape and type need %zu", name, nbytes,
                       t.nbytes);
    }
    t.data = data;
    w->t[w->n_t++] = t;
    return ERR_OK;
}

err_code gguf_writer_add_tensor_fn(gguf_writer_t *w, const char *name, int type, int n_dims, const int64_t *ne,
                                   gguf_fill_fn fill, void *user, err_t *err) {
    if (!fill) return err_set(err, ERR_ARG, "gguf writer: tensor %s: no fill function", name ? name : "(null)");
    wtensor t;
    err_code rc = tensor_begin(w, name, type, n_dims, ne, &t, err);
    if (rc) return rc;
    t.fill = fill;
    t.user = user;
    w->t[w->n_t++] = t;
    return ERR_OK;
}

static size_t pad_to(size_t x, size_t a) { return (x + a - 1) / a * a; }

typedef struct {
    FILE *f;
    const char *path;
    uint64_t pos;
    err_t *err;
} out_t;

static err_code out_put(out_t *o, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, o->f) != n)
        return err_set(o->err, ERR_IO, "%s: write failed at byte %" PRIu64 ": %s", o->path, o->pos, strerror(errno));
    o->pos += n;
    return ERR_OK;
}

static err_code out_pad(out_t *o, size_t align) {
    static const unsigned char zeros[256];
    uint64_t target = (o->pos + align - 1) / align * align;
    err_code rc = ERR_OK;
    while (!rc && o->pos < target) {
        uint64_t n = target - o->pos;
        rc = out_put(o, zeros, n > sizeof zeros ? sizeof zeros : (size_t)n);
    }
    return rc;
}

static err_code write_all(gguf_writer_t *w, out_t *o, unsigned char *chunk, size_t chunk_cap) {
    size_t a = w->alignment;
    bool write_align = a != GGUF_DEFAULT_ALIGNMENT;
    uint32_t u32;
    uint64_t u64;
    err_code rc = out_put(o, "GGUF", 4);
    u32 = 3;
    if (!rc) rc = out_put(o, &u32, 4);
    u64 = (uint64_t)w->n_t;
    if (!rc) rc = out_put(o, &u64, 8);
    u64 = (uint64_t)w->n_kv + (write_align ? 1 : 0);
    if (!rc) rc = out_put(o, &u64, 8);
    if (!rc) rc = out_put(o, w->meta, w->meta_len);
    if (!rc && write_align) {
        static const char key[] = "general.alignment";
        u64 = sizeof key - 1;
        rc = out_put(o, &u64, 8);
        if (!rc) rc = out_put(o, key, sizeof key - 1);
        u32 = GGUF_T_U32;
        if (!rc) rc = out_put(o, &u32, 4);
        u32 = w->alignment;
        if (!rc) rc = out_put(o, &u32, 4);
    }
    uint64_t off = 0, total = 0;
    for (int64_t i = 0; !rc && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        u64 = strlen(t->name);
        rc = out_put(o, &u64, 8);
        if (!rc) rc = out_put(o, t->name, (size_t)u64);
        u32 = (uint32_t)t->n_dims;
        if (!rc) rc = out_put(o, &u32, 4);
        for (int d = 0; !rc && d < t->n_dims; d++) {
            u64 = (uint64_t)t->ne[d];
            rc = out_put(o, &u64, 8);
        }
        u32 = (uint32_t)t->type;
        if (!rc) rc = out_put(o, &u32, 4);
        if (!rc) rc = out_put(o, &off, 8);
        off += pad_to(t->nbytes, a);
        total += t->nbytes;
    }
    if (!rc && w->n_t) rc = out_pad(o, a);
    uint64_t done = 0;
    for (int64_t i = 0; !rc && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if (t->data) {
            rc = out_put(o, t->data, t->nbytes);
            done += t->nbytes;
        } else {
            int64_t n_rows = (int64_t)(t->nbytes / t->row_bytes);
            int64_t per = (int64_t)(chunk_cap / t->row_bytes);
            for (int64_t r0 = 0; !rc && r0 < n_rows; r0 += per) {
                int64_t nr = n_rows - r0 < per ? n_rows - r0 : per;
                size_t nb = (size_t)nr * t->row_bytes;
                rc = t->fill(t->user, r0, nr, chunk, o->err);
                if (rc) {
                    err_prefix(o->err, "%s: tensor %s", o->path, t->name);
                    break;
                }
                rc = out_put(o, chunk, nb);
                done += nb;
                if (!rc && w->progress) w->progress(w->progress_user, done, total);
            }
        }
        if (!rc) rc = out_pad(o, a);
        if (!rc && w->progress) w->progress(w->progress_user, done, total);
    }
    return rc;
}

err_code gguf_writer_write(gguf_writer_t *w, const char *path, err_t *err) {
    uint32_t a = w->alignment;
    if (a == 0 || (a & (a - 1)))
        return err_set(err, ERR_ARG, "%s: alignment %u is not a power of two", path, a);
    /* One chunk buffer, sized for the largest streamed row batch, reused for all. */
    size_t chunk_cap = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        if (w->t[i].data) continue;
        size_t c = CHUNK_BYTES / w->t[i].row_bytes * w->t[i].row_bytes;
        if (c == 0) c = w->t[i].row_bytes;
        if (c > chunk_cap) chunk_cap = c;
    }
    unsigned char *chunk = NULL;
    if (chunk_cap && !(chunk = malloc(chunk_cap)))
        return err_set(err, ERR_NOMEM, "%s: out of memory for a %zu-byte write buffer", path, chunk_cap);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(chunk);
        return err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    }
    /* A failed write removes the partial file, but only a regular file: a path that
     * names a pipe, a device or /dev/stdout is the caller's and must survive. */
    struct stat st;
    const bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    setvbuf(f, NULL, _IOFBF, (size_t)1 << 20);
    out_t o = {f, path, 0, err};
    err_code rc = write_all(w, &o, chunk, chunk_cap ? chunk_cap : 1);
    if (fclose(f) != 0 && !rc) rc = err_set(err, ERR_IO, "%s: close failed: %s", path, strerror(errno));
    free(chunk);
    if (rc && regular) unlink(path);
    return rc;
}
