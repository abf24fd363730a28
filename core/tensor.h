/* tensor.h — a read-only view of a tensor stored in a model file.
 *
 * ne[] lists dimensions fastest-varying first, as GGUF and ggml do: a weight with
 * ne = {n_in, n_out} is row-major [n_out][n_in], i.e. PyTorch's (out, in). `data`
 * points into the mmapped file (or a caller's buffer) and is valid as long as the
 * owner (gguf_t, ...) lives. */
#ifndef LLAVA_MECH_TENSOR_H
#define LLAVA_MECH_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define TENSOR_MAX_DIMS 4

/* Row layout in memory. TENSOR_ROWS: the file's, one row after another (every
 * tensor read from a file). The others are weights repacked for decoding with 16
 * rows interleaved (core/quant_impl.h): TENSOR_Q4K_X16 a Q4_K weight per 256 inputs
 * (block_q4_Kx16), TENSOR_Q8_0_X16 a Q8_0 weight per 64 inputs (block_q8_0x16).
 * Only matmul.h reads them (mm_linear, mm_dequant_rows), and `data`/`nbytes` then
 * describe the repacked copy, not the file. */
enum { TENSOR_ROWS = 0, TENSOR_Q4K_X16 = 1, TENSOR_Q8_0_X16 = 2 };

typedef struct {
    const char *name;
    int type; /* qtype */
    int n_dims;
    int64_t ne[TENSOR_MAX_DIMS]; /* unused dims are 1 */
    const void *data;
    size_t nbytes;
    int layout; /* TENSOR_ROWS unless repacked (matmul.h, mm_pack) */
} tensor_t;

static inline int64_t tensor_nelements(const tensor_t *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

#endif
