/* quant_impl.h — internal to core/quant*.c and core/matmul*.c (and their tests):
 * ggml's block layouts and the per-ISA kernels behind the quant.h traits table.
 *
 * Block layouts follow ggml/src/ggml-common.h (QK_K = 256 super-blocks). All fp16
 * fields are stored as raw IEEE half bits. Structs contain only uint8_t/uint16_t
 * (plus one float in Q8_K), so sizeof equals ggml's block size with no padding; the
 * static asserts in quant.c pin that down. */
#ifndef LLAVA_MECH_QUANT_IMPL_H
#define LLAVA_MECH_QUANT_IMPL_H

#include <stdint.h>

#include "quant.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;
/* Q2_K: 16 sub-blocks of 16; scales hold a 4-bit scale (low) and 4-bit min (high). */
typedef struct {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d, dmin;
} block_q2_K;
/* Q3_K: 2 low bits in qs, the third bit in hmask, 16 6-bit scales packed in 12 bytes. */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} block_q3_K;
/* Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
/* Q6_K: 4 low bits in ql, 2 high bits in qh, 16 int8 scales. */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} block_q6_K;
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

/* Unpacks the j-th (0..7) 6-bit scale and min of a Q4_K/Q5_K block (ggml's
 * get_scale_min_k4): bytes 0-3 hold scales 0-3, bytes 4-7 mins 0-3, bytes 8-11 the
 * low nibbles of scales/mins 4-7 whose top two bits sit in bits 6-7 of bytes 0-7. */
static inline void qk_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K's 16 six-bit scales (stored with offset 32, returned without): low nibbles
 * in bytes 0-7 (scales 0-7 low nibble, 8-15 high nibble), top 2 bits in bytes 8-11
 * (scale j in byte 8 + j%4, bits 2*(j/4)). */
static inline void qk_q3_scales(const uint8_t *s, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
        const int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

/* Portable reference kernels (quant_ref.c, quant_quantize.c, quant_dot.c). */
void qt_ref_to_float_f32(const void *src, float *dst, int64_t n);
void qt_ref_to_float_f16(const void *src, float *dst, int64_t n);
void qt_ref_to_float_bf16(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q4_0(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q4_1(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q5_0(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q5_1(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q8_0(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q2_K(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q3_K(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q4_K(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q5_K(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q6_K(const void *src, float *dst, int64_t n);
void qt_ref_to_float_q8_K(const void *src, float *dst, int64_t n);

void qt_ref_from_float_f32(const float *src, void *dst, int64_t n);
void qt_ref_from_float_f16(const float *src, void *dst, int64_t n);
void qt_ref_from_float_bf16(const float *src, void *dst, int64_t n);
void qt_ref_from_float_q8_0(const float *src, void *dst, int64_t n);
void qt_ref_from_float_q4_0(const float *src, void *dst, int64_t n);
void qt_ref_from_float_q4_K(const float *src, void *dst, int64_t n);

/* Portable dot: dequantizes one block at a time into registers/stack and
 * accumulates in float; `to_float` is the type's reference dequantizer. */
float qt_ref_dot(qt_to_float_fn to_float, int block_size, size_t type_size, const void *row,
                 const float *x, int64_t n);
float qt_ref_dot_f32(const void *row, const float *x, int64_t n);

/* SIMD kernels (quant_avx2.c, quant_avx512.c). Callers must check cpu.h first.
 * to_float variants are bit-identical to the reference (same operations, no FMA
 * contraction); dot variants differ from the portable dot only in summation order. */
float qt_avx2_dot_f32(const void *row, const float *x, int64_t n);
float qt_avx2_dot_f16(const void *row, const float *x, int64_t n);
float qt_avx2_dot_bf16(const void *row, const float *x, int64_t n);
void qt_avx2_to_float_bf16(const void *src, float *dst, int64_t n);
float qt_avx2_dot_q8_0(const void *row, const float *x, int64_t n);
float qt_avx2_dot_q4_0(const void *row, const float *x, int64_t n);
float qt_avx2_dot_q4_K(const void *row, const float *x, int64_t n);
float qt_avx2_dot_q6_K(const void *row, const float *x, int64_t n);
void qt_avx2_to_float_f16(const void *src, float *dst, int64_t n);
void qt_avx2_to_float_q8_0(const void *src, float *dst, int64_t n);
void qt_avx2_to_float_q4_0(const void *src, float *dst, int64_t n);
void qt_avx2_to_float_q4_K(const void *src, float *dst, int64_t n);
void qt_avx2_to_float_q5_K(const void *src, float *dst, int64_t n);
void qt_avx2_to_float_q6_K(const void *src, float *dst, int64_t n);

float qt_avx512_dot_f32(const void *row, const float *x, int64_t n);
float qt_avx512_dot_f16(const void *row, const float *x, int64_t n);
float qt_avx512_dot_q8_0(const void *row, const float *x, int64_t n);
float qt_avx512_dot_q4_0(const void *row, const float *x, int64_t n);
float qt_avx512_dot_q4_K(const void *row, const float *x, int64_t n);
float qt_avx512_dot_q6_K(const void *row, const float *x, int64_t n);

/* ---- integer decode path (quant_act.c, quant_int_avx2.c) ----
 * For decoding, mm_linear quantizes the activation row x once to 8 bits and dots it
 * with the weights in integer arithmetic (as ggml's vec_dot does): per element the
 * error is at most half a step of x's block scale, |e| <= amax_block(x) / 254. */
typedef struct {
    float d;     /* amax / 127 */
    int32_t sum; /* sum of qs (Q4_0's -8 offset term) */
    int8_t qs[32];
} act_q8_32;
/* Activation super-block for K-quant weights (ggml's block_q8_K layout). */
typedef block_q8_K act_q8_K;

/* Activation layout of the VNNI Q8_0 kernel: four 32-blocks per group, their bytes
 * contiguous so one 64-byte load covers two blocks, the scales in one 16-byte load,
 * and per block the start value of the vpdpbusd accumulator: the kernel multiplies
 * the weights shifted to unsigned (w + 128) and the shift's 128 * sum(x), spread
 * over the block's 8 int32 lanes, is cancelled by starting each lane at
 * -16 * sum(x), so the integer block dot is exact. A last group with fewer than four
 * blocks is zero-filled. */
typedef struct {
    int8_t qs[128];
    int32_t init[32]; /* lanes 8b..8b+7: -16 * sum of block b's qs */
    float d[4];
} act_q8_32x4;

typedef enum { QT_ACT_NONE = 0, QT_ACT_Q8_32, QT_ACT_Q8_K, QT_ACT_Q8_32X4, QT_ACT_COUNT } qt_act_kind;
typedef float (*qt_vdot_fn)(const void *w, const void *xq, int64_t n);
typedef struct {
    qt_act_kind act;
    qt_vdot_fn vdot; /* best kernel for this CPU */
    qt_vdot_fn vdot_ref;
} qt_int_kernel;

/* NULL when type t has no integer path (f32/f16/bf16, Q8_K); every other quant
 * type has one. */
const qt_int_kernel *qt_int_get(int t);
size_t qt_act_row_size(qt_act_kind act, int64_t n);
void qt_quantize_act(qt_act_kind act, const float *x, void *dst, int64_t n);
/* One block of len (multiple of 32) values: d = amax/127, q = rint(x*127/amax). */
void qt_ref_quantize_block(const float *x, int len, float *d_out, int8_t *qs);

float qt_ref_vdot_q8_0(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q4_0(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q4_K(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q5_K(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q4_1(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q5_0(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q5_1(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q2_K(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q3_K(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q4_1(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q5_0(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q5_1(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q2_K(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q3_K(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q6_K(const void *w, const void *xq, int64_t n);
void qt_avx2_quantize_block(const float *x, int len, float *d_out, int8_t *qs);
float qt_avx2_vdot_q8_0(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q4_0(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q4_K(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q5_K(const void *w, const void *xq, int64_t n);
float qt_avx2_vdot_q6_K(const void *w, const void *xq, int64_t n);
float qt_ref_vdot_q8_0x4(const void *w, const void *xq, int64_t n); /* xq: QT_ACT_Q8_32X4 */
/* VNNI kernels (quant_int_avx512.c; callers check cpu_has_vnni()): Q8_0 takes
 * QT_ACT_Q8_32X4 activations, Q4_K act_q8_K. */
float qt_vnni_vdot_q8_0(const void *w, const void *xq, int64_t n);
float qt_vnni_vdot_q4_K(const void *w, const void *xq, int64_t n);
float qt_avx512_vdot_q4_K(const void *w, const void *xq, int64_t n);
float qt_avx512_vdot_q5_K(const void *w, const void *xq, int64_t n);
float qt_avx512_vdot_q6_K(const void *w, const void *xq, int64_t n);

/* ---- Q4_K repacked 16 rows at a time (quant_pack.c; tensor.h TENSOR_Q4K_X16) ----
 * The integer decode kernel of plain Q4_K is instruction-bound (~46 instructions
 * per 256 weights: nibble split, scale permutes, horizontal sums). Interleaving 16
 * rows makes each int32 lane of a vpdpbusd accumulator one row: no horizontal sums,
 * scales applied lane-wise, activations by 32-bit broadcast (~2x the bytes/s).
 *
 * One superblock (256 inputs) of 16 rows r = 0..15:
 *   qs[j][l][4r + b]: sub-block j (0..7), load l (0..3), byte b (0..3): low nibble
 *                     is the row's weight 32j + 4l + b, high nibble 32j + 16 + 4l + b;
 *   sc[j][r]          the 6-bit scale of sub-block j,
 *   mn[p][r][t]       the 6-bit min of sub-block 4p + t,
 *   d[r], dmin[r]     the block's fp16 d and dmin.
 * A group of 16 rows is its k/256 superblocks in a row; groups follow one another.
 * Unpacking gives back the Q4_K bytes exactly (qt_q4_Kx16_get_block). */
typedef struct {
    uint8_t qs[8][4][64];
    uint8_t sc[8][16];
    uint8_t mn[2][16][4];
    uint16_t d[16], dmin[16];
} block_q4_Kx16;

/* Repacks rows [16g, 16g+16) of a Q4_K matrix with k inputs per row (src_rows: the
 * first of the 16 rows, row_bytes apart) into group dst (k/256 superblocks). */
void qt_q4_Kx16_pack_group(const void *src_rows, size_t row_bytes, void *dst, int64_t k);
/* The Q4_K block of row r (0..15), superblock i of group `group`, exactly as packed. */
void qt_q4_Kx16_get_block(const void *group, int r, int64_t i, block_q4_K *out);
/* Row r (0..15) of a group as floats (k values), bit-identical to Q4_K's to_float. */
void qt_q4_Kx16_row_to_float(const void *group, int r, float *dst, int64_t k);
void qt_q4_Kx16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k);
void qt_avx512_q4_Kx16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k);
/* f32-activation dot of row r of a group with x (mm_ctx_set_exact's kernel). */
float qt_q4_Kx16_row_dot(const void *group, int r, const float *x, int64_t k);
/* out[r] = row r of the group dotted with act_q8_K activations xq (k inputs):
 * the portable reference and the VNNI kernel (quant_int_avx512.c). */
void qt_ref_vdot_q4_Kx16(const void *group, const void *xq, int64_t k, float out[16]);
void qt_vnni_vdot_q4_Kx16(const void *group, const void *xq, int64_t k, float out[16]);

/* ---- Q8_0 repacked 16 rows at a time (quant_pack.c; tensor.h TENSOR_Q8_0_X16) ----
 * The VNNI kernel on plain Q8_0 rows runs at ~45 GB/s per core even from cache
 * (scales spread over lanes by permutes, a horizontal sum per row), which leaves
 * little slack over a core's ~40 GB/s share of DRAM. With one row per int32 lane a
 * 32-input block is 8 vpdpbusd with 32-bit broadcast activations.
 * Two Q8_0 blocks (64 inputs) of 16 rows r = 0..15:
 *   qs[h][l][4r + b]: block h (0, 1), load l (0..7), byte b: the row's weight
 *                     32h + 4l + b plus 128, unsigned (vpdpbusd's unsigned operand;
 *                     the activations' init lanes cancel the 128 * sum(x));
 *   d[h][r]           block h's fp16 scale.
 * 1088 bytes, exactly the 32 Q8_0 blocks it holds, 64-byte aligned. Groups of 16 rows
 * are k/64 such blocks in a row; unpacking gives back the Q8_0 bytes exactly. */
typedef struct {
    uint8_t qs[2][8][64];
    uint16_t d[2][16];
} block_q8_0x16;

void qt_q8_0x16_pack_group(const void *src_rows, size_t row_bytes, void *dst, int64_t k);
/* Q8_0 block i (0..k/32-1) of row r (0..15) of a group, exactly as packed. */
void qt_q8_0x16_get_block(const void *group, int r, int64_t i, block_q8_0 *out);
void qt_q8_0x16_row_to_float(const void *group, int r, float *dst, int64_t k);
/* All 16 rows, row r at dst + r ld (the AVX-512 version transposes in registers). */
void qt_q8_0x16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k);
void qt_avx512_q8_0x16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k);
float qt_q8_0x16_row_dot(const void *group, int r, const float *x, int64_t k);
/* out[r] = row r dotted with QT_ACT_Q8_32X4 activations (portable and VNNI). */
void qt_ref_vdot_q8_0x16(const void *group, const void *xq, int64_t k, float out[16]);
void qt_vnni_vdot_q8_0x16(const void *group, const void *xq, int64_t k, float out[16]);

/* What matmul.c needs of a 16-row layout; one entry per tensor.h layout. A group of
 * 16 rows is (k / k_block) blocks of block_bytes. The integer kernels take `act`
 * activations; vdot_vnni needs cpu_has_vnni(), vdot_ref runs anywhere. */
typedef struct {
    int layout;
    int type;        /* the weight type it repacks */
    int64_t k_block; /* inputs per block: k must be a multiple */
    size_t block_bytes;
    qt_act_kind act;
    void (*pack_group)(const void *src_rows, size_t row_bytes, void *dst, int64_t k);
    void (*row_to_float)(const void *group, int r, float *dst, int64_t k);
    void (*group_to_float)(const void *group, float *dst, int64_t ld, int64_t k); /* 16 rows, ld apart */
    float (*row_dot)(const void *group, int r, const float *x, int64_t k);
    void (*vdot_ref)(const void *group, const void *xq, int64_t k, float out[16]);
    void (*vdot_vnni)(const void *group, const void *xq, int64_t k, float out[16]);
} qt_pack_traits;

/* The traits of a packed layout; NULL for TENSOR_ROWS and unknown values. */
const qt_pack_traits *qt_pack_get(int layout);
/* The packed layout for weights of type t, NULL when t has none. */
const qt_pack_traits *qt_pack_for_type(int t);
/* Bytes of one group of 16 packed rows of k inputs. */
static inline size_t qt_pack_group_bytes(const qt_pack_traits *p, int64_t k) {
    return (size_t)(k / p->k_block) * p->block_bytes;
}

#endif
