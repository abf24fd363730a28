/* quant.c — the type traits table, fp16/bf16 conversions and run-time selection of
 * the SIMD kernels (cpu.h). Layouts and formulas: ggml/src/ggml-common.h and
 * ggml-quants.c; see quant_ref.c and quant_quantize.c. */
#include "quant.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "cpu.h"
#include "quant_impl.h"

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K block");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K block");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K block");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K block");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K block");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K block");

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every half is
 * exactly representable as a float. */
float qt_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        const float v = (float)mant * 0x1p-24f;
        return bits_f32(f32_bits(v) | sign);
    }
    if (exp == 31) return bits_f32(sign | 0x7F800000u | mant << 13);
    return bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

/* Round to nearest even as F16C's vcvtps2ph with imm 0 (what ggml uses on x86):
 * overflow goes to inf, NaNs stay NaN (quietened, top payload bits kept). */
uint16_t qt_f32_to_f16(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF));
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {
        /* below 2^-14: the half is subnormal, q = |f| * 2^24 rounded to even (exact
         * scaling; q == 1024 correctly encodes the smallest normal) */
        const float q = rintf(bits_f32(a) * 0x1p24f);
        return (uint16_t)(sign | (uint16_t)q);
    }
    /* normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to even;
     * a carry out of the mantissa correctly bumps the exponent */
    const uint32_t r = a - 0x38000000u;
    return (uint16_t)(sign | ((r + 0x0FFFu + ((r >> 13) & 1)) >> 13));
}

float qt_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* ggml_compute_fp32_to_bf16: NaN -> quiet NaN, else round to nearest even. */
uint16_t qt_f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7FFFu + ((u >> 16) & 1))) >> 16);
}

/* ---- run-time dispatch: one entry per type, choosing the widest kernel ---- */

#define REF_DOT(T, BS, SZ)                                                               \
    static float dot_##T##_ref(const void *row, const float *x, int64_t n) {             \
        return qt_ref_dot(qt_ref_to_float_##T, BS, SZ, row, x, n);                       \
    }
REF_DOT(f16, 1, 2)
REF_DOT(bf16, 1, 2)
REF_DOT(q4_0, QK4_0, sizeof(block_q4_0))
REF_DOT(q4_1, QK4_1, sizeof(block_q4_1))
REF_DOT(q5_0, QK5_0, sizeof(block_q5_0))
REF_DOT(q5_1, QK5_1, sizeof(block_q5_1))
REF_DOT(q8_0, QK8_0, sizeof(block_q8_0))
REF_DOT(q2_K, QK_K, sizeof(block_q2_K))
REF_DOT(q3_K, QK_K, sizeof(block_q3_K))
REF_DOT(q4_K, QK_K, sizeof(block_q4_K))
REF_DOT(q5_K, QK_K, sizeof(block_q5_K))
REF_DOT(q6_K, QK_K, sizeof(block_q6_K))
REF_DOT(q8_K, QK_K, sizeof(block_q8_K))

#define DISPATCH_DOT(T)                                                                  \
    static float dot_##T(const void *row, const float *x, int64_t n) {                   \
        switch (cpu_level()) {                                                           \
        case CPU_AVX512: return qt_avx512_dot_##T(row, x, n);                            \
        case CPU_AVX2: return qt_avx2_dot_##T(row, x, n);                                \
        default: return dot_##T##_ref(row, x, n);                                        \
        }                                                                                \
    }
static float dot_f32_ref(const void *row, const float *x, int64_t n) {
    return qt_ref_dot_f32(row, x, n);
}
/* f32: the AVX2 kernel also on AVX-512 CPUs. Decoding streams f32 weights from
 * DRAM, and there the 64-byte-load kernel measured 25 GB/s against 38 GB/s for the
 * 32-byte-load one (Zen 5, one thread, 64 MiB matrix; a plain read: 42 GB/s). */
static float dot_f32(const void *row, const float *x, int64_t n) {
    return cpu_level() >= CPU_AVX2 ? qt_avx2_dot_f32(row, x, n) : dot_f32_ref(row, x, n);
}
DISPATCH_DOT(f16)
DISPATCH_DOT(q8_0)
/* bf16: the AVX2 kernel is already memory-bound on AVX-512 CPUs */
static float dot_bf16(const void *row, const float *x, int64_t n) {
    return cpu_level() >= CPU_AVX2 ? qt_avx2_dot_bf16(row, x, n) : dot_bf16_ref(row, x, n);
}
DISPATCH_DOT(q4_0)
DISPATCH_DOT(q4_K)
DISPATCH_DOT(q6_K)

/* Dequantization for the sgemm path: the AVX2 versions are bit-identical to the
 * reference ones (tested), just faster. */
#define DISPATCH_TO_FLOAT(T)                                                             \
    static void to_float_##T(const void *src, float *dst, int64_t n) {                   \
        if (cpu_level() >= CPU_AVX2) qt_avx2_to_float_##T(src, dst, n);                  \
        else qt_ref_to_float_##T(src, dst, n);                                           \
    }
DISPATCH_TO_FLOAT(f16)
DISPATCH_TO_FLOAT(bf16)
DISPATCH_TO_FLOAT(q8_0)
DISPATCH_TO_FLOAT(q4_0)
DISPATCH_TO_FLOAT(q4_K)
DISPATCH_TO_FLOAT(q5_K)
DISPATCH_TO_FLOAT(q6_K)

static const qt_traits traits[QT_COUNT] = {
    [QT_F32] = {"f32", 1, 4, qt_ref_to_float_f32, qt_ref_from_float_f32, dot_f32},
    [QT_F16] = {"f16", 1, 2, to_float_f16, qt_ref_from_float_f16, dot_f16},
    [QT_BF16] = {"bf16", 1, 2, to_float_bf16, qt_ref_from_float_bf16, dot_bf16},
    [QT_Q4_0] = {"q4_0", QK4_0, sizeof(block_q4_0), to_float_q4_0, qt_ref_from_float_q4_0,
                 dot_q4_0},
    [QT_Q4_1] = {"q4_1", QK4_1, sizeof(block_q4_1), qt_ref_to_float_q4_1, NULL, dot_q4_1_ref},
    [QT_Q5_0] = {"q5_0", QK5_0, sizeof(block_q5_0), qt_ref_to_float_q5_0, NULL, dot_q5_0_ref},
    [QT_Q5_1] = {"q5_1", QK5_1, sizeof(block_q5_1), qt_ref_to_float_q5_1, NULL, dot_q5_1_ref},
    [QT_Q8_0] = {"q8_0", QK8_0, sizeof(block_q8_0), to_float_q8_0, qt_ref_from_float_q8_0,
                 dot_q8_0},
    [QT_Q2_K] = {"q2_K", QK_K, sizeof(block_q2_K), qt_ref_to_float_q2_K, NULL, dot_q2_K_ref},
    [QT_Q3_K] = {"q3_K", QK_K, sizeof(block_q3_K), qt_ref_to_float_q3_K, NULL, dot_q3_K_ref},
    [QT_Q4_K] = {"q4_K", QK_K, sizeof(block_q4_K), to_float_q4_K, qt_ref_from_float_q4_K,
                 dot_q4_K},
    [QT_Q5_K] = {"q5_K", QK_K, sizeof(block_q5_K), to_float_q5_K, NULL, dot_q5_K_ref},
    [QT_Q6_K] = {"q6_K", QK_K, sizeof(block_q6_K), to_float_q6_K, NULL, dot_q6_K},
    [QT_Q8_K] = {"q8_K", QK_K, sizeof(block_q8_K), qt_ref_to_float_q8_K, NULL, dot_q8_K_ref},
};

const qt_traits *qt_get(int t) {
    if (t < 0 || t >= QT_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

size_t qt_row_size(int t, int64_t n) {
    const qt_traits *tr = qt_get(t);
    if (!tr || n < 0 || n % tr->block_size) return 0;
    return (size_t)(n / tr->block_size) * tr->type_size;
}

int qt_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < QT_COUNT; t++)
        if (traits[t].name && !strcasecmp(traits[t].name, name)) return t;
    return -1;
}
