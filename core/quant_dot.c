/* quant_dot.c — portable fused dequantize-dot: one block at a time into a small
 * stack buffer (stays in L1), so the quantized row is read once. */
#include "quant_impl.h"

float qt_ref_dot_f32(const void *row, const float *x, int64_t n) {
    const float *w = row;
    /* 8 independent partial sums: lets the compiler vectorize without reassociating
     * and keeps the rounding error growth at ~sqrt(n/8) */
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += w[i + j] * x[i + j];
    float s = 0;
    for (; i < n; i++) s += w[i] * x[i];
    return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

float qt_ref_dot(qt_to_float_fn to_float, int block_size, size_t type_size, const void *row,
                 const float *x, int64_t n) {
    /* dequantize groups of up to 256 elements (one K-quant super-block, or 8 blocks
     * of a 32-element type, or 256 f16 values) */
    float buf[QK_K];
    const int64_t group = QK_K - QK_K % block_size;
    const size_t group_bytes = (size_t)(group / block_size) * type_size;
    const unsigned char *p = row;
    float s = 0;
    for (int64_t i = 0; i < n; i += group, p += group_bytes) {
        const int64_t len = n - i < group ? n - i : group;
        to_float(p, buf, len);
        s += qt_ref_dot_f32(buf, x + i, len);
    }
    return s;
}
