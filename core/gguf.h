/* gguf.h — read and write GGUF files (versions 2 and 3; we write 3).
 *
 * Reader contract: gguf_open mmaps the file and validates everything before
 * returning: every count, string length, array length, tensor offset and size is
 * bounds-checked against the file size without overflow; each tensor's type must be
 * one quant.h supports (else ERR_UNSUPPORTED naming the tensor and type), its dims
 * product a multiple of the block size, its data inside the file and aligned to
 * general.alignment; duplicate key or tensor names are rejected. On failure the
 * message names the file, the byte offset and what was expected. After a successful
 * open no accessor can read outside the mapping.
 *
 * Getters return ERR_NOTFOUND (with message) when the key is absent and
 * ERR_FORMAT when it has another type; integer getters accept any integer type whose
 * value fits. Strings returned are views into the mapping (not NUL-terminated in the
 * file, so they come with a length) — gguf_get_str copies into a caller buffer.
 *
 * Writer contract: collect metadata and tensor views, then gguf_writer_write writes
 * a v3 file with general.alignment (default 32) that llama.cpp's gguf reader accepts.
 * The writer keeps pointers to the caller's tensor data until written. */
#ifndef LLAVA_MECH_GGUF_H
#define LLAVA_MECH_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"

typedef enum {
    GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3, GGUF_T_U32 = 4,
    GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7, GGUF_T_STRING = 8, GGUF_T_ARRAY = 9,
    GGUF_T_U64 = 10, GGUF_T_I64 = 11, GGUF_T_F64 = 12
} gguf_type;

typedef struct gguf gguf_t;

err_code gguf_open(gguf_t **out, const char *path, err_t *err);
/* Same validation on a caller-owned buffer (fuzzing, tests); `name` is used in messages. */
err_code gguf_open_memory(gguf_t **out, const void *data, size_t size, const char *name, err_t *err);
void gguf_close(gguf_t *g);

const char *gguf_path(const gguf_t *g);
/* The caller has copied [p, p+n) (e.g. a repacked weight) and will not read it
 * again: the whole pages inside it leave the process's memory (they stay in the
 * page cache and would be read back from the file if touched). Does nothing unless
 * g mmapped its file and the range lies inside it. */
void gguf_drop_pages(const gguf_t *g, const void *p, size_t n);
uint32_t gguf_version(const gguf_t *g);
size_t gguf_alignment(const gguf_t *g);
size_t gguf_file_size(const gguf_t *g);

/* Metadata: enumerate */
int64_t gguf_n_kv(const gguf_t *g);
const char *gguf_kv_key(const gguf_t *g, int64_t i); /* NUL-terminated copy owned by g */
gguf_type gguf_kv_type(const gguf_t *g, int64_t i);
gguf_type gguf_kv_arr_type(const gguf_t *g, int64_t i); /* element type when an array */
uint64_t gguf_kv_arr_len(const gguf_t *g, int64_t i);   /* 0 when not an array */
int64_t gguf_find_key(const gguf_t *g, const char *key); /* -1 when absent */
/* One line, human readable, arrays abbreviated to their first few items (4 strings or
 * arrays, 8 numbers); an array nested in an array shows as "([i32 x 3] 1, 2, 3)". */
void gguf_kv_format(const gguf_t *g, int64_t i, char *buf, size_t cap);

/* Metadata: typed getters */
err_code gguf_get_u32(const gguf_t *g, const char *key, uint32_t *out, err_t *err);
err_code gguf_get_i64(const gguf_t *g, const char *key, int64_t *out, err_t *err);
err_code gguf_get_f32(const gguf_t *g, const char *key, float *out, err_t *err); /* f32 or f64 */
err_code gguf_get_bool(const gguf_t *g, const char *key, bool *out, err_t *err);
err_code gguf_get_str(const gguf_t *g, const char *key, char *buf, size_t cap, err_t *err);
/* String view without copying: *s points into the mapping, *len bytes. */
err_code gguf_get_str_view(const gguf_t *g, const char *key, const char **s, size_t *len, err_t *err);
/* Arrays: number of elements and element access. */
err_code gguf_get_arr_len(const gguf_t *g, const char *key, gguf_type elem_type, uint64_t *n, err_t *err);
err_code gguf_get_arr_f32(const gguf_t *g, const char *key, float *out, uint64_t n, err_t *err);
err_code gguf_get_arr_i32(const gguf_t *g, const char *key, int32_t *out, uint64_t n, err_t *err);
/* i-th string of a string array as a view (O(1) after open: offsets are indexed). */
err_code gguf_get_arr_str(const gguf_t *g, const char *key, uint64_t i, const char **s, size_t *len, err_t *err);

/* Tensors */
int64_t gguf_n_tensors(const gguf_t *g);
const tensor_t *gguf_tensor(const gguf_t *g, int64_t i);
const tensor_t *gguf_find_tensor(const gguf_t *g, const char *name); /* NULL when absent */
/* Finds a tensor and checks its shape (n_dims and ne[0..n_dims)); ERR_NOTFOUND or
 * ERR_MISMATCH with a message naming file, tensor, expected and found shapes. */
err_code gguf_require_tensor(const gguf_t *g, const char *name, int n_dims, const int64_t *ne,
                             const tensor_t **out, err_t *err);

/* Writer */
typedef struct gguf_writer gguf_writer_t;

gguf_writer_t *gguf_writer_create(void);
void gguf_writer_free(gguf_writer_t *w);
void gguf_writer_set_alignment(gguf_writer_t *w, uint32_t alignment);
err_code gguf_writer_set_u32(gguf_writer_t *w, const char *key, uint32_t v);
err_code gguf_writer_set_i32(gguf_writer_t *w, const char *key, int32_t v);
err_code gguf_writer_set_u64(gguf_writer_t *w, const char *key, uint64_t v);
err_code gguf_writer_set_f32(gguf_writer_t *w, const char *key, float v);
err_code gguf_writer_set_bool(gguf_writer_t *w, const char *key, bool v);
err_code gguf_writer_set_str(gguf_writer_t *w, const char *key, const char *v);
err_code gguf_writer_set_arr_f32(gguf_writer_t *w, const char *key, const float *v, uint64_t n);
err_code gguf_writer_set_arr_i32(gguf_writer_t *w, const char *key, const int32_t *v, uint64_t n);
/* Strings given with lengths (pieces may contain any bytes). */
err_code gguf_writer_set_arr_str(gguf_writer_t *w, const char *key, const char *const *v,
                                 const size_t *lens, uint64_t n);
/* ne fastest-varying first; data must stay valid until gguf_writer_write returns;
 * nbytes must equal qt_row_size(type, ne[0]) * ne[1] * ne[2] * ne[3]. */
err_code gguf_writer_add_tensor(gguf_writer_t *w, const char *name, int type, int n_dims,
                                const int64_t *ne, const void *data, size_t nbytes, err_t *err);
err_code gguf_writer_write(gguf_writer_t *w, const char *path, err_t *err);

/* Further scalar setters, so every GGUF type can be written. A key set twice is
 * ERR_ARG (as is a NULL/empty key); the first value stays. */
err_code gguf_writer_set_u8(gguf_writer_t *w, const char *key, uint8_t v);
err_code gguf_writer_set_i8(gguf_writer_t *w, const char *key, int8_t v);
err_code gguf_writer_set_u16(gguf_writer_t *w, const char *key, uint16_t v);
err_code gguf_writer_set_i16(gguf_writer_t *w, const char *key, int16_t v);
err_code gguf_writer_set_i64(gguf_writer_t *w, const char *key, int64_t v);
err_code gguf_writer_set_f64(gguf_writer_t *w, const char *key, double v);
/* Array of any fixed-size element type (not STRING/ARRAY): n elements of the
 * type's size, little-endian in memory (as on x86). */
err_code gguf_writer_set_arr(gguf_writer_t *w, const char *key, gguf_type elem_type,
                             const void *v, uint64_t n);
/* A value already serialized in GGUF layout (type tag excluded), e.g. nested arrays;
 * the writer copies the bytes unchecked — tests use it to build unusual files. */
err_code gguf_writer_set_raw(gguf_writer_t *w, const char *key, gguf_type type,
                             const void *bytes, size_t n);

/* Streaming tensors: instead of a pointer, a callback fills rows [row0, row0+n_rows)
 * (a row is ne[0] elements, qt_row_size(type, ne[0]) bytes) into dst while the file
 * is written, in order, in chunks of a few MiB, so a 13 GB model never sits in
 * memory. A non-OK return aborts the write (the partial file is removed). */
typedef err_code (*gguf_fill_fn)(void *user, int64_t row0, int64_t n_rows, void *dst, err_t *err);
err_code gguf_writer_add_tensor_fn(gguf_writer_t *w, const char *name, int type, int n_dims,
                                   const int64_t *ne, gguf_fill_fn fill, void *user, err_t *err);
/* Optional progress report during gguf_writer_write (bytes of tensor data). */
typedef void (*gguf_progress_fn)(void *user, uint64_t done, uint64_t total);
void gguf_writer_set_progress(gguf_writer_t *w, gguf_progress_fn fn, void *user);
int64_t gguf_writer_n_tensors(const gguf_writer_t *w);

/* Index-based value access for generic walkers (info, fuzzing). For a scalar kv, k
 * must be 0; for an array, k < gguf_kv_arr_len. gguf_kv_num: integer, float or bool
 * value as double (NaN when the element is a string/array or k is out of range).
 * gguf_kv_strv: string value or string-array element as a view (NULL otherwise). */
double gguf_kv_num(const gguf_t *g, int64_t i, uint64_t k);
const char *gguf_kv_strv(const gguf_t *g, int64_t i, uint64_t k, size_t *len);

/* Walking any value, arrays nested to any depth included (all validated at open, so
 * no call here can read outside the file). A gguf_val_t is a small view, valid while
 * g is open. gguf_kv_value gives kv i's value; gguf_val_elem steps into element k of
 * an array value (false when v is not an array or k >= its length): O(1) for
 * fixed-size elements and for the strings of a top-level string array, O(k) inside
 * nested arrays of strings or arrays. gguf_val_num: number (bool as 0/1) or NaN for a
 * string/array; gguf_val_str: the bytes of a string value, NULL otherwise. */
typedef struct {
    const gguf_t *g;
    size_t off;     /* file offset of the value (for an array: of its element-type field) */
    gguf_type type;
    int64_t kv;     /* index of the key whose top-level value this is, else -1 */
} gguf_val_t;
gguf_val_t gguf_kv_value(const gguf_t *g, int64_t i);
gguf_type gguf_val_arr_type(gguf_val_t v);
uint64_t gguf_val_arr_len(gguf_val_t v); /* 0 when not an array */
bool gguf_val_elem(gguf_val_t v, uint64_t k, gguf_val_t *out);
double gguf_val_num(gguf_val_t v);
/* Integer values exactly (a u64 or i64 beyond 2^53 does not survive a double): true
 * for the eight integer types, the value in *s (signed) or *u (unsigned). */
bool gguf_val_int(gguf_val_t v, int64_t *s, uint64_t *u, bool *is_unsigned);
const char *gguf_val_str(gguf_val_t v, size_t *len);

/* Name of a metadata type ("u32", "string", "array", ...); "?" when out of range. */
const char *gguf_type_name(int type);
/* Offset of the tensor data section in the file (tensor offsets are relative to it). */
size_t gguf_data_offset(const gguf_t *g);

#endif
