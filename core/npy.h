/* npy.h — NumPy .npy files (format version 1.0) of float32 or int32 arrays.
 *
 * Contract: npy_write writes a C-order little-endian array ('<f4' or '<i4') with the
 * given shape (up to NPY_MAX_DIMS dims, shape[0] slowest). npy_read accepts versions
 * 1.0, 2.0 and 3.0, dtypes '<f4' and '<i4' in C order (fortran_order False), checks
 * that the header is well formed and the data size matches the shape exactly, and
 * returns a malloc'ed buffer the caller frees with npy_free. Errors name the file.
 * Spec: numpy/lib/format.py ("NPY format"). */
#ifndef LLAVA_MECH_NPY_H
#define LLAVA_MECH_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define NPY_MAX_DIMS 8

typedef enum { NPY_F32 = 0, NPY_I32 = 1 } npy_dtype;

typedef struct {
    npy_dtype dtype;
    int n_dims;
    int64_t shape[NPY_MAX_DIMS];
    void *data; /* n_elements * 4 bytes, owned (npy_free) */
} npy_array_t;

err_code npy_write(const char *path, npy_dtype dtype, const void *data, int n_dims, const int64_t *shape,
                   err_t *err);
static inline err_code npy_write_f32(const char *path, const float *data, int n_dims, const int64_t *shape,
                                     err_t *err) {
    return npy_write(path, NPY_F32, data, n_dims, shape, err);
}
static inline err_code npy_write_i32(const char *path, const int32_t *data, int n_dims, const int64_t *shape,
                                     err_t *err) {
    return npy_write(path, NPY_I32, data, n_dims, shape, err);
}

err_code npy_read(const char *path, npy_array_t *out, err_t *err);
/* Parses an in-memory .npy image (copying the data); `name` is used in messages. */
err_code npy_parse(const void *buf, size_t size, const char *name, npy_array_t *out, err_t *err);
void npy_free(npy_array_t *a);
int64_t npy_nelements(const npy_array_t *a);

#endif
