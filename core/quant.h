/* quant.h — ggml tensor types: a traits table, dequantization and quantization.
 *
 * Contract: type ids are ggml's (GGML_TYPE_*), so a GGUF tensor's type field maps
 * straight onto qtype. Every type listed here dequantizes bit-exactly as ggml does
 * (ggml/src/ggml-quants.c); quantize is provided where traits->from_float != NULL
 * (F32, F16, BF16, Q8_0, Q4_0, Q4_K), reference (not speed) quality, matching ggml's
 * reference quantizers. Rows are `n` elements; n must be a multiple of block_size. */
#ifndef LLAVA_MECH_QUANT_H
#define LLAVA_MECH_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QT_F32 = 0,
    QT_F16 = 1,
    QT_Q4_0 = 2,
    QT_Q4_1 = 3,
    QT_Q5_0 = 6,
    QT_Q5_1 = 7,
    QT_Q8_0 = 8,
    QT_Q8_1 = 9,
    QT_Q2_K = 10,
    QT_Q3_K = 11,
    QT_Q4_K = 12,
    QT_Q5_K = 13,
    QT_Q6_K = 14,
    QT_Q8_K = 15,
    QT_BF16 = 30,
    QT_COUNT = 40 /* upper bound on ids, not a type */
} qtype;

typedef void (*qt_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*qt_from_float_fn)(const float *src, void *dst, int64_t n);
/* Dot product of one quantized row with an f32 vector, n elements (fused
 * dequantize-dot for decoding; reads the quantized bytes once). */
typedef float (*qt_dot_fn)(const void *row, const float *x, int64_t n);

typedef struct {
    const char *name;        /* ggml's name: "f32", "q4_K", ... */
    int block_size;          /* elements per block */
    size_t type_size;        /* bytes per block */
    qt_to_float_fn to_float; /* never NULL for a supported type */
    qt_from_float_fn from_float; /* NULL when we cannot write this type */
    qt_dot_fn dot;           /* never NULL for a supported type */
} qt_traits;

/* NULL when `t` is not a type we can read. */
const qt_traits *qt_get(int t);
/* Bytes of a row of n elements, or 0 when n is not a multiple of the block size
 * or the type is unsupported. */
size_t qt_row_size(int t, int64_t n);
/* Parses "f32", "F16", "q8_0", "Q4_K", ...; returns -1 when unknown. */
int qt_from_name(const char *name);

/* IEEE half and bfloat16 conversions (round to nearest even, as ggml). */
float qt_f16_to_f32(uint16_t h);
uint16_t qt_f32_to_f16(float f);
float qt_bf16_to_f32(uint16_t h);
uint16_t qt_f32_to_bf16(float f);

#endif
