/* quant_pack.c — Q4_K repacked 16 rows at a time (layout in quant_impl.h): packing,
 * unpacking back to Q4_K blocks, and the portable kernels on the packed form. The
 * fast decode kernel is qt_vnni_vdot_q4_Kx16 (quant_int_avx512.c); everything here
 * goes through the exact Q4_K block, so dequantization stays ggml's bit for bit. */
#include <string.h>

#include "quant_impl.h"

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
