/* quant_pack.c — Q4_K and Q8_0 repacked 16 rows at a time (layouts in quant_impl.h):
 * packing, unpacking back to the file's blocks, the portable kernels on the packed
 * forms, and the layout table matmul.c goes through. The fast decode kernels are
 * qt_vnni_vdot_q4_Kx16 and qt_vnni_vdot_q8_0x16 (quant_int_avx512.c); everything
 * here goes through the exact file block, so dequantization stays ggml's bit for bit. */
#include <string.h>

#include "cpu.h"
#include "quant_impl.h"
#include "tensor.h"

_Static_assert(sizeof(block_q4_Kx16) == 2368, "block_q4_Kx16: 16 Q4_K blocks + 64 bytes of unpacked scales");
_Static_assert(sizeof(block_q4_Kx16) % 64 == 0, "superblocks stay 64-byte aligned");

/* Sub-blocks 2c and 2c+1 of a Q4_K row share its bytes 32c..32c+31 (low and high
 * nibbles, element e in byte e). The packed form wants per sub-block 16 bytes with
 * element e in the low nibble of byte e and element 16 + e in the high one. On the
 * two 8-byte halves (a: bytes e, b: bytes 16 + e) that is a few word operations. */
static inline void split_pair(uint64_t a, uint64_t b, uint64_t *even, uint64_t *odd) {
    const uint64_t lo = 0x0F0F0F0F0F0F0F0Full;
    *even = (a & lo) | (b & lo) << 4;
    *odd = (a >> 4 & lo) | (b & ~lo);
}

void qt_q4_Kx16_pack_group(const void *src_rows, size_t row_bytes, void *dst, int64_t k) {
    const int64_t nb = k / QK_K;
    block_q4_Kx16 *out = dst;
    for (int64_t i = 0; i < nb; i++) {
        block_q4_Kx16 *o = &out[i];
        for (int r = 0; r < 16; r++) {
            const block_q4_K *b = (const block_q4_K *)((const uint8_t *)src_rows + (size_t)r * row_bytes) + i;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, mn;
                qk_scale_min_k4(j, b->scales, &sc, &mn);
                o->sc[j][r] = sc;
                o->mn[j / 4][r][j % 4] = mn;
            }
            for (int c = 0; c < 4; c++) {
                uint64_t q[4], t[2][2];
                memcpy(q, b->qs + 32 * c, 32);
                split_pair(q[0], q[2], &t[0][0], &t[1][0]); /* elements 0..7 with 16..23 */
                split_pair(q[1], q[3], &t[0][1], &t[1][1]); /* 8..15 with 24..31 */
                for (int h = 0; h < 2; h++)
                    for (int l = 0; l < 4; l++) {
                        const uint32_t w = (uint32_t)(t[h][l / 2] >> (32 * (l % 2)));
                        memcpy(&o->qs[2 * c + h][l][4 * r], &w, 4);
                    }
            }
            o->d[r] = b->d;
            o->dmin[r] = b->dmin;
        }
    }
}

void qt_q4_Kx16_get_block(const void *group, int r, int64_t i, block_q4_K *out) {
    const block_q4_Kx16 *o = (const block_q4_Kx16 *)group + i;
    out->d = o->d[r];
    out->dmin = o->dmin[r];
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = o->sc[j][r];
        mn[j] = o->mn[j / 4][r][j % 4];
    }
    /* inverse of qk_scale_min_k4: the 96 bits are all used, so this is exact */
    for (int j = 0; j < 4; j++) {
        out->scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        out->scales[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        out->scales[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
    }
    for (int c = 0; c < 4; c++) {
        /* t0/t1: sub-blocks 2c and 2c+1 as packed, elements 0..15 in the low nibbles
         * and 16..31 in the high */
        uint8_t t0[16], t1[16];
        for (int l = 0; l < 4; l++) {
            memcpy(t0 + 4 * l, &o->qs[2 * c][l][4 * r], 4);
            memcpy(t1 + 4 * l, &o->qs[2 * c + 1][l][4 * r], 4);
        }
        uint8_t *q = out->qs + 32 * c;
        for (int e = 0; e < 16; e++) {
            q[e] = (uint8_t)((t0[e] & 0xF) | (t1[e] & 0xF) << 4);
            q[16 + e] = (uint8_t)((t0[e] >> 4) | (t1[e] & 0xF0));
        }
    }
}

/* Blocks unpacked per call of the Q4_K kernels: 16 blocks = 2304 bytes of stack. */
#define UNPACK_BLOCKS 16

/* Unpacks up to UNPACK_BLOCKS blocks of row r from superblock i0 into tmp; returns
 * how many (the rest of the row's nb). */
static int64_t unpack_batch(const void *group, int r, int64_t i0, int64_t nb, block_q4_K *tmp) {
    const int64_t n = nb - i0 < UNPACK_BLOCKS ? nb - i0 : UNPACK_BLOCKS;
    for (int64_t i = 0; i < n; i++) qt_q4_Kx16_get_block(group, r, i0 + i, &tmp[i]);
    return n;
}

void qt_q4_Kx16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k) {
    if (cpu_level() >= CPU_AVX512) { /* through the exact block: 0.21 ns per weight, the file's 0.07 */
        qt_avx512_q4_Kx16_group_to_float(group, dst, ld, k);
        return;
    }
    for (int r = 0; r < 16; r++) qt_q4_Kx16_row_to_float(group, r, dst + r * ld, k);
}

void qt_q4_Kx16_row_to_float(const void *group, int r, float *dst, int64_t k) {
    const qt_to_float_fn to_float = qt_get(QT_Q4_K)->to_float;
    block_q4_K tmp[UNPACK_BLOCKS];
    for (int64_t i0 = 0; i0 < k / QK_K; i0 += UNPACK_BLOCKS)
        to_float(tmp, dst + i0 * QK_K, unpack_batch(group, r, i0, k / QK_K, tmp) * QK_K);
}

float qt_q4_Kx16_row_dot(const void *group, int r, const float *x, int64_t k) {
    const qt_dot_fn dot = qt_get(QT_Q4_K)->dot;
    block_q4_K tmp[UNPACK_BLOCKS];
    float s = 0;
    for (int64_t i0 = 0; i0 < k / QK_K; i0 += UNPACK_BLOCKS)
        s += dot(tmp, x + i0 * QK_K, unpack_batch(group, r, i0, k / QK_K, tmp) * QK_K);
    return s;
}

void qt_ref_vdot_q4_Kx16(const void *group, const void *xq, int64_t k, float out[16]) {
    const act_q8_K *a = xq;
    for (int r = 0; r < 16; r++) {
        float s = 0;
        for (int64_t i = 0; i < k / QK_K; i++) {
            block_q4_K b;
            qt_q4_Kx16_get_block(group, r, i, &b);
            s += qt_ref_vdot_q4_K(&b, &a[i], QK_K);
        }
        out[r] = s;
    }
}

/* ---- Q8_0, 16 rows per 64 inputs (block_q8_0x16) ---- */

_Static_assert(sizeof(block_q8_0x16) == 32 * sizeof(block_q8_0), "block_q8_0x16: exactly its 32 Q8_0 blocks");
_Static_assert(sizeof(block_q8_0x16) % 64 == 0, "blocks stay 64-byte aligned");

void qt_q8_0x16_pack_group(const void *src_rows, size_t row_bytes, void *dst, int64_t k) {
    block_q8_0x16 *out = dst;
    for (int64_t i = 0; i < k / 64; i++)
        for (int r = 0; r < 16; r++) {
            const block_q8_0 *b = (const block_q8_0 *)((const uint8_t *)src_rows + (size_t)r * row_bytes) + 2 * i;
            for (int h = 0; h < 2; h++) {
                out[i].d[h][r] = b[h].d;
                /* a word at a time: byte by byte this loop was most of a 7B model's load */
                uint32_t w[8];
                memcpy(w, b[h].qs, sizeof w);
                for (int l = 0; l < 8; l++) {
                    const uint32_t u = w[l] ^ 0x80808080u;
                    memcpy(&out[i].qs[h][l][4 * r], &u, 4);
                }
            }
        }
}

void qt_q8_0x16_get_block(const void *group, int r, int64_t i, block_q8_0 *out) {
    const block_q8_0x16 *o = (const block_q8_0x16 *)group + i / 2;
    const int h = (int)(i % 2);
    out->d = o->d[h][r];
    for (int l = 0; l < 8; l++) {
        uint32_t u;
        memcpy(&u, &o->qs[h][l][4 * r], 4);
        u ^= 0x80808080u;
        memcpy(out->qs + 4 * l, &u, 4);
    }
}

/* Q8_0 blocks unpacked per call of the plain kernels (1088 bytes of stack). */
#define UNPACK_Q8_BLOCKS 32
_Static_assert(UNPACK_Q8_BLOCKS % 4 == 0, "batches start at an act_q8_32x4 group");

static int64_t unpack_batch_q8(const void *group, int r, int64_t i0, int64_t nb, block_q8_0 *tmp) {
    const int64_t n = nb - i0 < UNPACK_Q8_BLOCKS ? nb - i0 : UNPACK_Q8_BLOCKS;
    for (int64_t i = 0; i < n; i++) qt_q8_0x16_get_block(group, r, i0 + i, &tmp[i]);
    return n;
}

/* Single rows only (embedding lookups, row ranges that do not start a group):
 * prefill's tiles take whole groups (group_to_float). */
void qt_q8_0x16_row_to_float(const void *group, int r, float *dst, int64_t k) {
    const qt_to_float_fn to_float = qt_get(QT_Q8_0)->to_float;
    block_q8_0 tmp[UNPACK_Q8_BLOCKS];
    for (int64_t i0 = 0; i0 < k / 32; i0 += UNPACK_Q8_BLOCKS)
        to_float(tmp, dst + i0 * 32, unpack_batch_q8(group, r, i0, k / 32, tmp) * 32);
}

/* Prefill dequantizes every weight once per tile: row by row through the block the
 * packed form ran at 0.8 ns per weight (0.22 with an AVX-512 gather per row) against
 * 0.05 for the file's rows; the whole group's transpose in registers is as fast as
 * the file's. */
void qt_q8_0x16_group_to_float(const void *group, float *dst, int64_t ld, int64_t k) {
    if (cpu_level() >= CPU_AVX512) {
        qt_avx512_q8_0x16_group_to_float(group, dst, ld, k);
        return;
    }
    for (int r = 0; r < 16; r++) qt_q8_0x16_row_to_float(group, r, dst + r * ld, k);
}

float qt_q8_0x16_row_dot(const void *group, int r, const float *x, int64_t k) {
    const qt_dot_fn dot = qt_get(QT_Q8_0)->dot;
    block_q8_0 tmp[UNPACK_Q8_BLOCKS];
    float s = 0;
    for (int64_t i0 = 0; i0 < k / 32; i0 += UNPACK_Q8_BLOCKS)
        s += dot(tmp, x + i0 * 32, unpack_batch_q8(group, r, i0, k / 32, tmp) * 32);
    return s;
}

/* The file layout's reference kernel on unpacked batches (whole activation groups:
 * UNPACK_Q8_BLOCKS is a multiple of 4). */
void qt_ref_vdot_q8_0x16(const void *group, const void *xq, int64_t k, float out[16]) {
    const act_q8_32x4 *a = xq;
    block_q8_0 tmp[UNPACK_Q8_BLOCKS];
    for (int r = 0; r < 16; r++) {
        float s = 0;
        for (int64_t i0 = 0; i0 < k / 32; i0 += UNPACK_Q8_BLOCKS)
            s += qt_ref_vdot_q8_0x4(tmp, a + i0 / 4, unpack_batch_q8(group, r, i0, k / 32, tmp) * 32);
        out[r] = s;
    }
}

static const qt_pack_traits pack_traits[] = {
    {TENSOR_Q4K_X16, QT_Q4_K, QK_K, sizeof(block_q4_Kx16), QT_ACT_Q8_K, qt_q4_Kx16_pack_group,
     qt_q4_Kx16_row_to_float, qt_q4_Kx16_group_to_float, qt_q4_Kx16_row_dot, qt_ref_vdot_q4_Kx16,
     qt_vnni_vdot_q4_Kx16},
    {TENSOR_Q8_0_X16, QT_Q8_0, 64, sizeof(block_q8_0x16), QT_ACT_Q8_32X4, qt_q8_0x16_pack_group,
     qt_q8_0x16_row_to_float, qt_q8_0x16_group_to_float, qt_q8_0x16_row_dot, qt_ref_vdot_q8_0x16,
     qt_vnni_vdot_q8_0x16},
};

const qt_pack_traits *qt_pack_get(int layout) {
    for (size_t i = 0; i < sizeof pack_traits / sizeof *pack_traits; i++)
        if (pack_traits[i].layout == layout) return &pack_traits[i];
    return NULL;
}

const qt_pack_traits *qt_pack_for_type(int t) {
    for (size_t i = 0; i < sizeof pack_traits / sizeof *pack_traits; i++)
        if (pack_traits[i].type == t) return &pack_traits[i];
    return NULL;
}
