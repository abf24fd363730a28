/* test_quant.c — ggml tensor types.
 *  - traits: block sizes and bytes as in ggml-common.h, names, row sizes;
 *  - fp16: every half round-trips, every tie between neighbours rounds to even,
 *    special values (subnormals, inf, nan, overflow) and agreement with the F16C
 *    instruction on a sweep of floats; bf16 rounding and nan;
 *  - hand-built blocks of every type whose values are computed here from the layout
 *    description (not by calling the library), compared exactly;
 *  - SIMD dequantizers bit-identical to the reference ones;
 *  - hand blocks go through every to_float implementation (reference, AVX2, dispatch);
 *  - quantizers on inputs whose output is worked out by hand (Q8_0, Q4_0, Q4_K, F16,
 *    BF16), including ggml's rounding rules;
 *  - quantize -> dequantize error bounds for the types we write;
 *  - every dot kernel (portable, AVX2, AVX-512) against a double-precision dot of
 *    the dequantized row. */
#include <immintrin.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/quant.h"
#include "core/quant_impl.h"
#include "testutil.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { return test_rnd(&rng_state); }
static float rndf(void) { return test_rndf(&rng_state); }
static float rnd_gauss(void) {
    float s = 0;
    for (int i = 0; i < 4; i++) s += rndf();
    return s * 0.8660254f;
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------------------------------------------------------- traits */
static void test_traits(void) {
    static const struct { int t; const char *name; int bs; size_t sz; int writable; } want[] = {
        {QT_F32, "f32", 1, 4, 1},     {QT_F16, "f16", 1, 2, 1},       {QT_BF16, "bf16", 1, 2, 1},
        {QT_Q4_0, "q4_0", 32, 18, 1}, {QT_Q4_1, "q4_1", 32, 20, 0},   {QT_Q5_0, "q5_0", 32, 22, 0},
        {QT_Q5_1, "q5_1", 32, 24, 0}, {QT_Q8_0, "q8_0", 32, 34, 1},   {QT_Q2_K, "q2_K", 256, 84, 0},
        {QT_Q3_K, "q3_K", 256, 110, 0}, {QT_Q4_K, "q4_K", 256, 144, 1}, {QT_Q5_K, "q5_K", 256, 176, 0},
        {QT_Q6_K, "q6_K", 256, 210, 0}, {QT_Q8_K, "q8_K", 256, 292, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const qt_traits *tr = qt_get(want[i].t);
        CHECK_MSG(tr != NULL, "type %s", want[i].name);
        if (!tr) continue;
        CHECK(!strcmp(tr->name, want[i].name));
        CHECK(tr->block_size == want[i].bs);
        CHECK(tr->type_size == want[i].sz);
        CHECK(tr->to_float && tr->dot);
        CHECK((tr->from_float != NULL) == want[i].writable);
        CHECK(qt_from_name(want[i].name) == want[i].t);
        CHECK(qt_row_size(want[i].t, 4096) == (size_t)(4096 / want[i].bs) * want[i].sz);
    }
    CHECK(qt_from_name("Q4_K") == QT_Q4_K);
    CHECK(qt_from_name("F16") == QT_F16);
    CHECK(qt_from_name("q9_9") == -1);
    CHECK(qt_get(4) == NULL); /* ggml's removed Q4_2 */
    CHECK(qt_get(-1) == NULL && qt_get(1000) == NULL);
    CHECK(qt_row_size(QT_Q4_K, 100) == 0);
    CHECK(qt_row_size(QT_Q8_0, 33) == 0);
    CHECK(qt_row_size(77, 256) == 0);
}

/* ---------------------------------------------------------------- fp16 / bf16 */
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) { return (uint16_t)_cvtss_sh(f, 0); }
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

static int is_nan_h(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF); }

static void test_f16(void) {
    CHECK(qt_f16_to_f32(0x3C00) == 1.0f);
    CHECK(qt_f16_to_f32(0xC000) == -2.0f);
    CHECK(qt_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(qt_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(qt_f16_to_f32(0x03FF) == 1023 * 0x1p-24f);
    CHECK(qt_f16_to_f32(0x0400) == 0x1p-14f);
    CHECK(qt_f16_to_f32(0x3555) == 0x1.554p-2f);
    CHECK(isinf(qt_f16_to_f32(0x7C00)) && qt_f16_to_f32(0x7C00) > 0);
    CHECK(isinf(qt_f16_to_f32(0xFC00)) && qt_f16_to_f32(0xFC00) < 0);
    CHECK(isnan(qt_f16_to_f32(0x7E00)) && isnan(qt_f16_to_f32(0xFC01)));
    CHECK(fbits(qt_f16_to_f32(0x8000)) == 0x80000000u);

    CHECK(qt_f32_to_f16(1.0f) == 0x3C00);
    CHECK(qt_f32_to_f16(-0.0f) == 0x8000);
    CHECK(qt_f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(qt_f32_to_f16(65519.99f) == 0x7BFF);
    CHECK(qt_f32_to_f16(65520.0f) == 0x7C00);   /* tie, 65504 is odd -> inf */
    CHECK(qt_f32_to_f16(1e10f) == 0x7C00);
    CHECK(qt_f32_to_f16(-INFINITY) == 0xFC00);
    CHECK(qt_f32_to_f16(0x1p-25f) == 0x0000);    /* tie between 0 and 2^-24 -> 0 */
    CHECK(qt_f32_to_f16(0x1.0002p-25f) == 0x0001);
    CHECK(qt_f32_to_f16(0x3p-25f) == 0x0002);    /* tie between 1 and 2 ulps -> 2 */
    CHECK(qt_f32_to_f16(1e-30f) == 0x0000);
    CHECK(qt_f32_to_f16(0x1p-149f) == 0x0000);  /* float subnormal */
    CHECK(qt_f32_to_f16(1.0f + 0x1p-11f) == 0x3C00);     /* tie -> even */
    CHECK(qt_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3C02); /* tie -> even (up) */
    CHECK(qt_f32_to_f16(0x1.ffep-15f) == 0x0400);        /* subnormal rounding up to normal */
    CHECK(is_nan_h(qt_f32_to_f16(NAN)));
    CHECK(is_nan_h(qt_f32_to_f16(bitsf(0x7F800001u)))); /* signalling nan stays nan */

    /* every half round-trips (nan stays nan) */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const uint16_t back = qt_f32_to_f16(qt_f16_to_f32((uint16_t)h));
        if (is_nan_h((uint16_t)h) ? !is_nan_h(back) : back != h) bad++;
    }
    CHECK_MSG(bad == 0, "%d halves do not round-trip", bad);

    /* midpoints between neighbouring positive finite halves go to the even one,
     * and one float ulp either side goes to the nearer one */
    bad = 0;
    for (uint32_t h = 0; h < 0x7BFF; h++) {
        const float a = qt_f16_to_f32((uint16_t)h), b = qt_f16_to_f32((uint16_t)(h + 1));
        const float mid = (a + b) * 0.5f; /* exact: needs one more bit than a half */
        const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (qt_f32_to_f16(mid) != even) bad++;
        if (qt_f32_to_f16(nextafterf(mid, 0.0f)) != h) bad++;
        if (qt_f32_to_f16(nextafterf(mid, INFINITY)) != h + 1) bad++;
        if (qt_f32_to_f16(-mid) != (even | 0x8000)) bad++;
    }
    CHECK_MSG(bad == 0, "%d tie/near-tie roundings wrong", bad);

    /* agreement with the hardware conversion ggml uses on x86 */
    if (cpu_level_hw() >= CPU_AVX2) {
        bad = 0;
        for (uint64_t u = 0; u < 0x100000000ull; u += 65521) {
            const float f = bitsf((uint32_t)u);
            const uint16_t mine = qt_f32_to_f16(f), hw = hw_f32_to_f16(f);
            if (mine != hw && !(is_nan_h(mine) && is_nan_h(hw))) bad++;
        }
        for (uint32_t h = 0; h < 0x10000; h++) {
            const float a = qt_f16_to_f32((uint16_t)h), b = hw_f16_to_f32((uint16_t)h);
            if (fbits(a) != fbits(b) && !(isnan(a) && isnan(b))) bad++;
        }
        CHECK_MSG(bad == 0, "%d conversions differ from F16C", bad);
    }

    /* bf16 */
    CHECK(qt_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(qt_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(qt_bf16_to_f32(0xC0A0) == -5.0f);
    CHECK(qt_f32_to_bf16(bitsf(0x3F808000u)) == 0x3F80); /* tie -> even */
    CHECK(qt_f32_to_bf16(bitsf(0x3F818000u)) == 0x3F82); /* tie -> even (up) */
    CHECK(qt_f32_to_bf16(bitsf(0x3F808001u)) == 0x3F81);
    CHECK(qt_f32_to_bf16(INFINITY) == 0x7F80);
    CHECK(qt_f32_to_bf16(bitsf(0x7F7FFFFFu)) == 0x7F80); /* FLT_MAX rounds to inf */
    const uint16_t bn = qt_f32_to_bf16(bitsf(0x7F800001u));
    CHECK((bn & 0x7F80) == 0x7F80 && (bn & 0x7F) && (bn & 0x40));
    for (uint32_t h = 0; h < 0x10000; h++)
        if ((h & 0x7F80) != 0x7F80 && qt_f32_to_bf16(qt_bf16_to_f32((uint16_t)h)) != h) bad++;
    CHECK_MSG(bad == 0, "%d bf16 values do not round-trip", bad);
}

/* ---------------------------------------------------------------- hand blocks */
static void check_exact(const char *what, const float *got, const float *want, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (fbits(got[i]) != fbits(want[i])) {
            if (bad < 4) fprintf(stderr, "%s[%d] = %.9g, want %.9g\n", what, i, got[i], want[i]);
            bad++;
        }
    CHECK_MSG(bad == 0, "%s: %d of %d values differ", what, bad, n);
}

/* Every implementation of a type's to_float, so each hand block below checks all of
 * them: the portable reference, the AVX2 version where there is one (when the CPU has
 * AVX2), and whatever qt_get dispatches to. */
static const struct {
    int t;
    qt_to_float_fn ref, avx2;
} to_float_impls[] = {
    {QT_F32, qt_ref_to_float_f32, NULL},
    {QT_F16, qt_ref_to_float_f16, qt_avx2_to_float_f16},
    {QT_BF16, qt_ref_to_float_bf16, qt_avx2_to_float_bf16},
    {QT_Q4_0, qt_ref_to_float_q4_0, qt_avx2_to_float_q4_0},
    {QT_Q4_1, qt_ref_to_float_q4_1, NULL},
    {QT_Q5_0, qt_ref_to_float_q5_0, NULL},
    {QT_Q5_1, qt_ref_to_float_q5_1, NULL},
    {QT_Q8_0, qt_ref_to_float_q8_0, qt_avx2_to_float_q8_0},
    {QT_Q2_K, qt_ref_to_float_q2_K, NULL},
    {QT_Q3_K, qt_ref_to_float_q3_K, NULL},
    {QT_Q4_K, qt_ref_to_float_q4_K, qt_avx2_to_float_q4_K},
    {QT_Q5_K, qt_ref_to_float_q5_K, qt_avx2_to_float_q5_K},
    {QT_Q6_K, qt_ref_to_float_q6_K, qt_avx2_to_float_q6_K},
    {QT_Q8_K, qt_ref_to_float_q8_K, NULL},
};
static int hand_impls_checked;

/* Also a three-block row [hand block, all-zero block, hand block] through every
 * implementation: the blocks must come out in place (a wrong stride or a block read
 * twice shows), the zero block as zeros. */
static void check_row3(int t, qt_to_float_fn fn, const char *impl, const unsigned char *row3, const float *one, int n) {
    float out[3 * QK_K];
    fn(row3, out, 3 * n);
    int bad = 0;
    for (int i = 0; i < n; i++) bad += fbits(out[i]) != fbits(one[i]) || fbits(out[2 * n + i]) != fbits(one[i]) ||
                                      out[n + i] != 0.0f;
    CHECK_MSG(bad == 0, "%s %s: %d values of a three-block row misplaced", qt_get(t)->name, impl, bad);
}

static void dequant(int t, const void *src, float *dst, int n) {
    const qt_traits *tr = qt_get(t);
    tr->to_float(src, dst, n);
    float other[QK_K];
    const size_t bytes = (size_t)(n / tr->block_size) * tr->type_size;
    unsigned char row3[3 * sizeof(block_q8_K)];
    memcpy(row3, src, bytes);
    memset(row3 + bytes, 0, bytes);
    memcpy(row3 + 2 * bytes, src, bytes);
    check_row3(t, tr->to_float, "dispatched", row3, dst, n);
    for (size_t i = 0; i < sizeof to_float_impls / sizeof *to_float_impls; i++) {
        if (to_float_impls[i].t != t) continue;
        to_float_impls[i].ref(src, other, n);
        CHECK_MSG(!memcmp(other, dst, (size_t)n * sizeof(float)), "%s: reference to_float differs from dispatched",
                  tr->name);
        check_row3(t, to_float_impls[i].ref, "reference", row3, dst, n);
        hand_impls_checked++;
        if (to_float_impls[i].avx2 && cpu_level_hw() >= CPU_AVX2) {
            to_float_impls[i].avx2(src, other, n);
            CHECK_MSG(!memcmp(other, dst, (size_t)n * sizeof(float)), "%s: avx2 to_float differs from dispatched",
                      tr->name);
            check_row3(t, to_float_impls[i].avx2, "avx2", row3, dst, n);
            hand_impls_checked++;
        }
    }
}

static void test_hand_blocks(void) {
    float got[QK_K], want[QK_K];
    /* Q4_0: d = 0.5; qs[j] = j | (15-j) << 4 -> x[j] = (j-8)/2, x[j+16] = (7-j)/2 */
    {
        block_q4_0 b = {.d = 0x3800};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | (15 - j) << 4);
        for (int j = 0; j < 16; j++) {
            want[j] = (float)(j - 8) * 0.5f;
            want[j + 16] = (float)(7 - j) * 0.5f;
        }
        dequant(QT_Q4_0, &b, got, 32);
        check_exact("q4_0", got, want, 32);
        CHECK(got[0] == -4.0f && got[31] == -4.0f && got[15] == 3.5f);
    }
    /* Q4_1: d = 0.25, m = -1 */
    {
        block_q4_1 b = {.d = 0x3400, .m = 0xBC00};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)((j * 3 % 16) | (j << 4));
        for (int j = 0; j < 16; j++) {
            want[j] = (float)(j * 3 % 16) * 0.25f - 1.0f;
            want[j + 16] = (float)j * 0.25f - 1.0f;
        }
        dequant(QT_Q4_1, &b, got, 32);
        check_exact("q4_1", got, want, 32);
        CHECK(got[17] == -0.75f);
    }
    /* Q5_0: d = 1, fifth bit of element e is bit e of qh (little endian) */
    {
        block_q5_0 b = {.d = 0x3C00, .qh = {0x55, 0xAA, 0x0F, 0xF0}};
        const uint32_t qh = 0xF00FAA55u;
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)((15 - j) | (j << 4));
        for (int e = 0; e < 32; e++) {
            const int nib = e < 16 ? 15 - e : e - 16;
            want[e] = (float)((nib | (int)((qh >> e) & 1) << 4) - 16);
        }
        dequant(QT_Q5_0, &b, got, 32);
        check_exact("q5_0", got, want, 32);
        CHECK(got[0] == 15.0f && got[1] == -2.0f && got[31] == 15.0f);
    }
    /* Q5_1: d = 2, m = 0.5 */
    {
        block_q5_1 b = {.d = 0x4000, .m = 0x3800, .qh = {0x01, 0x80, 0x00, 0xFF}};
        const uint32_t qh = 0xFF008001u;
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | (j << 4));
        for (int e = 0; e < 32; e++)
            want[e] = (float)((e % 16) | (int)((qh >> e) & 1) << 4) * 2.0f + 0.5f;
        dequant(QT_Q5_1, &b, got, 32);
        check_exact("q5_1", got, want, 32);
        CHECK(got[0] == 32.5f && got[31] == 62.5f);
    }
    /* Q8_0: d = 0.125, q = 4j - 64 */
    {
        block_q8_0 b = {.d = 0x3000};
        for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(4 * j - 64);
        for (int j = 0; j < 32; j++) want[j] = (float)(4 * j - 64) * 0.125f;
        dequant(QT_Q8_0, &b, got, 32);
        check_exact("q8_0", got, want, 32);
        CHECK(got[0] == -8.0f && got[31] == 7.5f);
    }
    /* Q2_K: d = 1, dmin = 0.5; element e: 128-half h = e/128, shift 2*((e%128)/32),
     * byte qs[32h + e%32]; group e/16 has scale scales[g] & 15 and min scales[g] >> 4 */
    {
        block_q2_K b = {.d = 0x3C00, .dmin = 0x3800};
        for (int g = 0; g < 16; g++) b.scales[g] = (uint8_t)((g + 1) % 16 | (15 - g) << 4);
        for (int i = 0; i < 64; i++) b.qs[i] = (uint8_t)(i * 37 + 11);
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, sh = 2 * ((e % 128) / 32), g = e / 16;
            const int q = (b.qs[32 * h + e % 32] >> sh) & 3;
            want[e] = 1.0f * (float)(b.scales[g] & 15) * (float)q - 0.5f * (float)(b.scales[g] >> 4);
        }
        dequant(QT_Q2_K, &b, got, 256);
        check_exact("q2_K", got, want, 256);
        /* e = 0: qs[0] = 11 -> q = 3, scale 1, min 15 -> 3 - 7.5 */
        CHECK(got[0] == -4.5f);
    }
    /* Q3_K with the 16 six-bit scales packed the way ggml's quantizer does; the
     * expected scale comes from ggml's kmask formulation (a second derivation). */
    {
        block_q3_K b = {.d = 0x3800};
        int sc6[16];
        for (int j = 0; j < 16; j++) sc6[j] = (j * 13 + 5) % 64;
        memset(b.scales, 0, 12);
        for (int j = 0; j < 16; j++) {
            const int l = sc6[j];
            if (j < 8) b.scales[j] = (uint8_t)(l & 0xF);
            else b.scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
            b.scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        uint32_t aux[4];
        memcpy(aux, b.scales, 12);
        const uint32_t k1 = 0x03030303u, k2 = 0x0f0f0f0fu, tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
        aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
        aux[0] = (aux[0] & k2) | (((tmp >> 0) & k1) << 4);
        aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
        int8_t sck[16];
        memcpy(sck, aux, 16);
        for (int j = 0; j < 16; j++) CHECK(sck[j] == sc6[j]);
        for (int i = 0; i < 64; i++) b.qs[i] = (uint8_t)(i * 91 + 7);
        for (int i = 0; i < 32; i++) b.hmask[i] = (uint8_t)(i * 29 + 3);
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, r = (e % 128) / 32, l = e % 32;
            const int lo = (b.qs[32 * h + l] >> (2 * r)) & 3;
            const int hb = (b.hmask[l] >> (4 * h + r)) & 1;
            want[e] = 0.5f * (float)(sc6[e / 16] - 32) * (float)(lo - (hb ? 0 : 4));
        }
        dequant(QT_Q3_K, &b, got, 256);
        check_exact("q3_K", got, want, 256);
    }
    /* Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scale and min per sub-block packed as
     * ggml's quantize_row_q4_K_ref does; element e is in sub-block j = e/32, uses
     * byte qs[32*(e/64) + e%32], low nibble for even j, high for odd. */
    {
        block_q4_K b = {.d = 0x3800, .dmin = 0x3400};
        block_q5_K b5 = {.d = 0x3800, .dmin = 0x3400};
        int ls[8], lm[8];
        memset(b.scales, 0, 12);
        for (int j = 0; j < 8; j++) {
            ls[j] = 10 + 7 * j;
            lm[j] = 63 - 5 * j;
            if (j < 4) {
                b.scales[j] = (uint8_t)ls[j];
                b.scales[j + 4] = (uint8_t)lm[j];
            } else {
                b.scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                b.scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
                b.scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
            }
        }
        memcpy(b5.scales, b.scales, 12);
        for (int i = 0; i < 128; i++) b.qs[i] = b5.qs[i] = (uint8_t)(i * 53 + 17);
        for (int i = 0; i < 32; i++) b5.qh[i] = (uint8_t)(i * 71 + 9);
        float want5[QK_K];
        for (int e = 0; e < 256; e++) {
            const int j = e / 32, byte = b.qs[32 * (e / 64) + e % 32];
            const int q = (j & 1) ? byte >> 4 : byte & 0xF;
            const int q5 = q + (((b5.qh[e % 32] >> j) & 1) << 4);
            want[e] = (0.5f * (float)ls[j]) * (float)q - 0.25f * (float)lm[j];
            want5[e] = (0.5f * (float)ls[j]) * (float)q5 - 0.25f * (float)lm[j];
        }
        dequant(QT_Q4_K, &b, got, 256);
        check_exact("q4_K", got, want, 256);
        /* e = 0: byte 17 -> q 1, scale 10 * 0.5, min 63 * 0.25 -> 5 - 15.75 */
        CHECK(got[0] == -10.75f);
        float ref[QK_K];
        qt_ref_to_float_q4_K(&b, ref, 256);
        check_exact("q4_K ref", ref, want, 256);
        dequant(QT_Q5_K, &b5, got, 256);
        check_exact("q5_K", got, want5, 256);
    }
    /* Q6_K: element e: half h = e/128, r = (e%128)/32, l = e%32; low 4 bits from
     * ql[64h + l + 32*(r&1)] (low nibble for r < 2), high 2 bits (qh[32h+l] >> 2r) & 3;
     * q - 32 times d * scales[e/16] */
    {
        block_q6_K b = {.d = 0x3400};
        for (int i = 0; i < 128; i++) b.ql[i] = (uint8_t)(i * 101 + 5);
        for (int i = 0; i < 64; i++) b.qh[i] = (uint8_t)(i * 67 + 1);
        for (int g = 0; g < 16; g++) b.scales[g] = (int8_t)(g * 9 - 70);
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, r = (e % 128) / 32, l = e % 32;
            const int byte = b.ql[64 * h + l + 32 * (r & 1)];
            const int lo = r < 2 ? byte & 0xF : byte >> 4;
            const int hi = (b.qh[32 * h + l] >> (2 * r)) & 3;
            want[e] = 0.25f * (float)b.scales[e / 16] * (float)((lo | hi << 4) - 32);
        }
        dequant(QT_Q6_K, &b, got, 256);
        check_exact("q6_K", got, want, 256);
        float ref[QK_K];
        qt_ref_to_float_q6_K(&b, ref, 256);
        check_exact("q6_K ref", ref, want, 256);
    }
    /* Q8_K: float d */
    {
        block_q8_K b = {.d = 0.375f};
        for (int j = 0; j < 256; j++) b.qs[j] = (int8_t)(j - 128);
        for (int j = 0; j < 256; j++) want[j] = 0.375f * (float)(j - 128);
        dequant(QT_Q8_K, &b, got, 256);
        check_exact("q8_K", got, want, 256);
    }
    /* F16 / BF16 / F32 */
    {
        const uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7BFF};
        const float hw[4] = {1.0f, -2.0f, 0x1p-24f, 65504.0f};
        dequant(QT_F16, h, got, 4);
        check_exact("f16", got, hw, 4);
        const uint16_t bf[3] = {0x3F80, 0xC0A0, 0x4049};
        const float bw[3] = {1.0f, -5.0f, 3.140625f};
        dequant(QT_BF16, bf, got, 3);
        check_exact("bf16", got, bw, 3);
        dequant(QT_F32, hw, got, 4);
        check_exact("f32", got, hw, 4);
    }
}

/* ---------------------------------------------------------------- known quantizations */
/* Inputs chosen so that ggml's reference quantizers' output can be worked out by hand
 * (exactly representable scales), including their rounding rules: Q8_0 rounds halves
 * away from zero (roundf), Q4_0 truncates x/d + 8.5 (halves go up) and clamps at 15,
 * and Q4_K on data lying exactly on a grid of 6-bit scales and mins recovers that grid. */
static void test_quantize_known(void) {
    /* Q8_0: amax 127/64 -> d = 1/64 (f16 0x2400), id = 64 exactly. */
    {
        float x[64];
        int want[32];
        x[0] = 127.0f / 64, want[0] = 127;
        x[1] = -100.0f / 64, want[1] = -100;
        x[2] = 2.5f / 64, want[2] = 3;   /* half: away from zero */
        x[3] = -2.5f / 64, want[3] = -3; /* half: away from zero */
        x[4] = 0.3f / 64, want[4] = 0;
        x[5] = 10.7f / 64, want[5] = 11;
        x[6] = -10.4f / 64, want[6] = -10;
        x[7] = -0.5f / 64, want[7] = -1;
        for (int j = 8; j < 32; j++) x[j] = (float)(3 * j - 50) / 64, want[j] = 3 * j - 50;
        for (int j = 32; j < 64; j++) x[j] = 0.0f; /* an all-zero block: d = 0, q = 0 */
        block_q8_0 b[2];
        memset(b, 0xAA, sizeof b);
        qt_get(QT_Q8_0)->from_float(x, b, 64);
        CHECK_MSG(b[0].d == 0x2400 && b[1].d == 0, "q8_0 d %04x %04x", b[0].d, b[1].d);
        int bad = 0;
        for (int j = 0; j < 32; j++) bad += b[0].qs[j] != want[j] || b[1].qs[j] != 0;
        CHECK_MSG(bad == 0, "q8_0: %d quants differ from the hand-computed ones", bad);
    }
    /* Q4_0: d = (signed value of largest magnitude) / -8. Block 0: max -2 -> d = 0.25
     * (0x3400), q = min(15, trunc(4x + 8.5)); block 1: max +2 -> d = -0.25 (0xB400). */
    {
        float x[64];
        int want[64];
        static const float v0[8] = {-2.0f, 1.75f, 1.9f, 0.1f, 0.125f, -0.125f, -1.3f, 0.6f};
        static const int q0[8] = {0, 15, 15, 8, 9, 8, 3, 10};
        for (int j = 0; j < 32; j++) x[j] = v0[j % 8], want[j] = q0[j % 8];
        static const float v1[4] = {2.0f, -1.0f, 0.125f, -1.9f};
        static const int q1[4] = {0, 12, 8, 15}; /* -8x + 8.5: 0.5, 16.5, 7.5, 23.7 -> clamp */
        for (int j = 32; j < 64; j++) x[j] = v1[j % 4], want[j] = q1[j % 4];
        block_q4_0 b[2];
        qt_get(QT_Q4_0)->from_float(x, b, 64);
        CHECK_MSG(b[0].d == 0x3400 && b[1].d == 0xB400, "q4_0 d %04x %04x", b[0].d, b[1].d);
        int bad = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 16; j++)
                bad += b[i].qs[j] != (want[32 * i + j] | want[32 * i + j + 16] << 4);
        CHECK_MSG(bad == 0, "q4_0: %d bytes differ from the hand-computed ones", bad);
    }
    /* Q4_K: sub-block j holds x = k_j/64 * L - mk_j/128 with L = (7l + j) mod 16 (all
     * of 0..15), max k = 63 and max mk = 63, so d = 1/64 (0x2400), dmin = 1/128 (0x2000),
     * the 6-bit scales are k_j, the mins mk_j, the quants L, and the block dequantizes
     * back to x exactly. */
    {
        static const int k[8] = {63, 10, 33, 1, 47, 20, 5, 40}, mk[8] = {1, 63, 17, 32, 5, 44, 60, 2};
        float x[QK_K], y[QK_K];
        int L[QK_K];
        for (int j = 0; j < 8; j++)
            for (int l = 0; l < 32; l++) {
                L[32 * j + l] = (7 * l + j) % 16;
                x[32 * j + l] = (float)(k[j] * L[32 * j + l]) / 64.0f - (float)mk[j] / 128.0f;
            }
        block_q4_K want = {.d = 0x2400, .dmin = 0x2000};
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                want.scales[j] = (uint8_t)k[j];
                want.scales[j + 4] = (uint8_t)mk[j];
            } else {
                want.scales[j + 4] = (uint8_t)((k[j] & 0xF) | ((mk[j] & 0xF) << 4));
                want.scales[j - 4] |= (uint8_t)((k[j] >> 4) << 6);
                want.scales[j] |= (uint8_t)((mk[j] >> 4) << 6);
            }
        }
        for (int e = 0; e < QK_K; e++) { /* element e: byte 32*(e/64) + e%32, high nibble for odd j */
            const int j = e / 32, byte = 32 * (e / 64) + e % 32;
            want.qs[byte] |= (uint8_t)((j & 1) ? L[e] << 4 : L[e]);
        }
        block_q4_K b;
        qt_get(QT_Q4_K)->from_float(x, &b, QK_K);
        CHECK_MSG(b.d == want.d && b.dmin == want.dmin, "q4_K d %04x dmin %04x", b.d, b.dmin);
        CHECK_MSG(!memcmp(b.scales, want.scales, sizeof b.scales), "q4_K scales differ from the hand-packed ones");
        CHECK_MSG(!memcmp(b.qs, want.qs, sizeof b.qs), "q4_K quants differ from the hand-computed ones");
        qt_get(QT_Q4_K)->to_float(&b, y, QK_K);
        check_exact("q4_K grid round trip", y, x, QK_K);
    }
    /* F16 / BF16 rows: from_float rounds every element as the scalar conversions
     * (ties to even, overflow to inf), whatever the row length. */
    {
        const float x[7] = {1.0f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65520.0f, 0x1p-25f, -0x3p-25f, -2.5f};
        const uint16_t h[7] = {0x3C00, 0x3C00, 0x3C02, 0x7C00, 0x0000, 0x8002, 0xC100};
        uint16_t got[7];
        qt_get(QT_F16)->from_float(x, got, 7);
        CHECK(!memcmp(got, h, sizeof h));
        const float xb[5] = {1.0f, bitsf(0x3F808000u), bitsf(0x3F818000u), bitsf(0x3F808001u), -5.0f};
        const uint16_t hb[5] = {0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC0A0};
        qt_get(QT_BF16)->from_float(xb, got, 5);
        CHECK(!memcmp(got, hb, sizeof hb));
    }
}

/* ---------------------------------------------------------------- random rows */
/* Random bytes for a row of type t with every fp16 scale field replaced by a sane
 * value (so no inf/nan), n elements. */
static void random_row(int t, void *dst, int64_t n) {
    const qt_traits *tr = qt_get(t);
    const size_t bytes = qt_row_size(t, n);
    unsigned char *p = dst;
    for (size_t i = 0; i < bytes; i++) p[i] = (unsigned char)rnd();
    const int64_t nb = n / tr->block_size;
    for (int64_t i = 0; i < nb; i++) {
        unsigned char *blk = p + (size_t)i * tr->type_size;
        const uint16_t d = qt_f32_to_f16(0.001f + 0.02f * (float)(rnd() % 1000) / 1000.0f);
        const uint16_t m = qt_f32_to_f16(0.01f * rndf());
        switch (t) {
        case QT_F32: {
            const float f = rndf();
            memcpy(blk, &f, 4);
            break;
        }
        case QT_F16: { const uint16_t h = qt_f32_to_f16(rndf()); memcpy(blk, &h, 2); break; }
        case QT_BF16: { const uint16_t h = qt_f32_to_bf16(rndf()); memcpy(blk, &h, 2); break; }
        case QT_Q4_0: case QT_Q5_0: case QT_Q8_0:
            memcpy(blk, &d, 2);
            break;
        case QT_Q4_1: case QT_Q5_1: case QT_Q4_K: case QT_Q5_K:
            memcpy(blk, &d, 2);
            memcpy(blk + 2, &m, 2);
            break;
        case QT_Q2_K: memcpy(blk + 80, &d, 2); memcpy(blk + 82, &m, 2); break;
        case QT_Q3_K: memcpy(blk + 108, &d, 2); break;
        case QT_Q6_K: memcpy(blk + 208, &d, 2); break;
        case QT_Q8_K: { const float f = 0.01f; memcpy(blk, &f, 4); break; }
        }
    }
}

static const int all_types[] = {QT_F32, QT_F16, QT_BF16, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1,
                                QT_Q8_0, QT_Q2_K, QT_Q3_K, QT_Q4_K, QT_Q5_K, QT_Q6_K, QT_Q8_K};

static void test_simd_dequant(void) {
    if (cpu_level_hw() < CPU_AVX2) return;
    enum { N = 4 * QK_K };
    static unsigned char row[N * 4];
    static float a[N], b[N];
    const struct { int t; qt_to_float_fn ref, simd; } k[] = {
        {QT_F16, qt_ref_to_float_f16, qt_avx2_to_float_f16},
        {QT_BF16, qt_ref_to_float_bf16, qt_avx2_to_float_bf16},
        {QT_Q8_0, qt_ref_to_float_q8_0, qt_avx2_to_float_q8_0},
        {QT_Q4_0, qt_ref_to_float_q4_0, qt_avx2_to_float_q4_0},
        {QT_Q4_K, qt_ref_to_float_q4_K, qt_avx2_to_float_q4_K},
        {QT_Q5_K, qt_ref_to_float_q5_K, qt_avx2_to_float_q5_K},
        {QT_Q6_K, qt_ref_to_float_q6_K, qt_avx2_to_float_q6_K},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        for (int rep = 0; rep < 20; rep++) {
            random_row(k[i].t, row, N);
            k[i].ref(row, a, N);
            k[i].simd(row, b, N);
            CHECK_MSG(!memcmp(a, b, sizeof a), "avx2 to_float of %s differs from reference", qt_get(k[i].t)->name);
        }
    /* f16 tail handling */
    random_row(QT_F16, row, 37);
    qt_ref_to_float_f16(row, a, 37);
    qt_avx2_to_float_f16(row, b, 37);
    CHECK(!memcmp(a, b, 37 * sizeof(float)));
}

/* ---------------------------------------------------------------- round trips */
static double rel_rmse(int t, const float *x, int64_t n, float *maxerr_out) {
    static unsigned char q[8192 * 4];
    static float y[8192];
    qt_get(t)->from_float(x, q, n);
    qt_get(t)->to_float(q, y, n);
    double se = 0, sx = 0;
    float mx = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = (double)y[i] - x[i];
        se += e * e;
        sx += (double)x[i] * x[i];
        if (fabs(e) > mx) mx = (float)fabs(e);
    }
    if (maxerr_out) *maxerr_out = mx;
    return sqrt(se / sx);
}

static void test_round_trips(void) {
    enum { N = 8192 };
    static float x[N];
    for (int i = 0; i < N; i++) x[i] = rnd_gauss() * (1.0f + (float)(i / 256 % 4));
    float mx;
    /* f32 exact, f16/bf16 relative error half an ulp */
    CHECK(rel_rmse(QT_F32, x, N, &mx) == 0.0);
    {
        static uint16_t h[N];
        qt_get(QT_F16)->from_float(x, h, N);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            const float y = qt_f16_to_f32(h[i]);
            if (fabsf(y - x[i]) > fabsf(x[i]) * 0x1p-11f + 0x1p-25f) bad++;
        }
        CHECK_MSG(bad == 0, "%d f16 values off by more than half an ulp", bad);
        qt_get(QT_BF16)->from_float(x, h, N);
        bad = 0;
        for (int i = 0; i < N; i++)
            if (fabsf(qt_bf16_to_f32(h[i]) - x[i]) > fabsf(x[i]) * 0x1p-8f) bad++;
        CHECK_MSG(bad == 0, "%d bf16 values off by more than half an ulp", bad);
    }
    /* Q8_0: |err| <= d/2 per element, d = amax/127 (plus the fp16 rounding of d) */
    {
        static block_q8_0 q[N / 32];
        static float y[N];
        qt_get(QT_Q8_0)->from_float(x, q, N);
        qt_get(QT_Q8_0)->to_float(q, y, N);
        int bad = 0;
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
            for (int j = 0; j < 32; j++)
                if (fabsf(y[32 * b + j] - x[32 * b + j]) > amax / 127.0f * 0.5f + amax * 0x1p-11f) bad++;
        }
        CHECK_MSG(bad == 0, "%d q8_0 values beyond d/2", bad);
        const double r = rel_rmse(QT_Q8_0, x, N, &mx);
        CHECK_MSG(r < 0.009, "q8_0 relative rmse %.5f", r);
    }
    /* Q4_0: |err| <= |d| = amax/8 (the +8 side clamps at 7), plus the fp16 rounding
     * of d (relative 2^-11) times at most 8 steps */
    {
        static block_q4_0 q[N / 32];
        static float y[N];
        qt_get(QT_Q4_0)->from_float(x, q, N);
        qt_get(QT_Q4_0)->to_float(q, y, N);
        int bad = 0;
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
            for (int j = 0; j < 32; j++)
                if (fabsf(y[32 * b + j] - x[32 * b + j]) > amax / 8.0f + amax * 0x1p-8f) bad++;
        }
        CHECK_MSG(bad == 0, "%d q4_0 values beyond d", bad);
        const double r = rel_rmse(QT_Q4_0, x, N, &mx);
        CHECK_MSG(r < 0.14, "q4_0 relative rmse %.5f", r);
    }
    /* Q4_K: better than Q4_0 on the same data; and ggml's test-quantize-fns bound
     * (mean squared error < 0.002 for 4-bit types on 0.1 + 2 cos(i)) */
    {
        const double r = rel_rmse(QT_Q4_K, x, N, &mx);
        const double r0 = rel_rmse(QT_Q4_0, x, N, NULL);
        CHECK_MSG(r < 0.11 && r < r0, "q4_K relative rmse %.5f (q4_0 %.5f)", r, r0);
        enum { NT = 32 * 128 };
        static float c[NT];
        for (int i = 0; i < NT; i++) c[i] = 0.1f + 2.0f * cosf((float)i);
        static block_q4_K q[NT / 256];
        static float y[NT];
        qt_get(QT_Q4_K)->from_float(c, q, NT);
        qt_get(QT_Q4_K)->to_float(q, y, NT);
        double se = 0;
        for (int i = 0; i < NT; i++) se += ((double)y[i] - c[i]) * ((double)y[i] - c[i]);
        /* ggml's metric is sqrt(sum of squares) / n; also the plain rms must beat a
         * uniform 16-level grid over the data's range 4.0 (4/15/sqrt(12) = 0.077) */
        CHECK_MSG(sqrt(se) / NT < 0.002, "q4_K error %.6f on ggml's test data", sqrt(se) / NT);
        CHECK_MSG(sqrt(se / NT) < 0.07, "q4_K rms error %.5f on ggml's test data", sqrt(se / NT));
        /* quantizing an all-zero block writes zeros and dequantizes to zeros */
        static float z[256];
        qt_get(QT_Q4_K)->from_float(z, q, 256);
        qt_get(QT_Q4_K)->to_float(q, y, 256);
        int nz = 0;
        for (int i = 0; i < 256; i++) nz += y[i] != 0.0f;
        CHECK(nz == 0);
        /* a constant positive block: min clamps to 0, reproduced within a step */
        for (int i = 0; i < 256; i++) z[i] = 3.0f;
        qt_get(QT_Q4_K)->from_float(z, q, 256);
        qt_get(QT_Q4_K)->to_float(q, y, 256);
        for (int i = 0; i < 256; i++) CHECK_NEAR(y[i], 3.0f, 3.0f / 15.0f);
    }
}

/* ---------------------------------------------------------------- dots */
static void test_dots(void) {
    enum { N = 8 * QK_K };
    static unsigned char row[N * 4];
    static float w[N], x[N];
    for (int i = 0; i < N; i++) x[i] = rndf();
    const int lvl = cpu_level_hw();
    for (size_t ti = 0; ti < sizeof all_types / sizeof *all_types; ti++) {
        const int t = all_types[ti];
        const qt_traits *tr = qt_get(t);
        const int64_t lens[] = {tr->block_size == 1 ? 37 : tr->block_size, N};
        for (int li = 0; li < 2; li++) {
            const int64_t n = lens[li];
            random_row(t, row, n);
            tr->to_float(row, w, n);
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                ref += (double)w[i] * x[i];
                mag += fabs((double)w[i] * x[i]);
            }
            const double tol = 4e-7 * mag * sqrt((double)n) / 8 + 1e-30;
            CHECK_MSG(fabs(tr->dot(row, x, n) - ref) <= tol, "%s dot n=%lld: %.9g vs %.9g", tr->name,
                      (long long)n, tr->dot(row, x, n), ref);
            CHECK_MSG(fabs(qt_ref_dot(tr->to_float, tr->block_size, tr->type_size, row, x, n) - ref) <= tol,
                      "%s portable dot", tr->name);
            qt_dot_fn simd[2] = {NULL, NULL};
            switch (t) {
            case QT_F32: simd[0] = qt_avx2_dot_f32; simd[1] = qt_avx512_dot_f32; break;
            case QT_F16: simd[0] = qt_avx2_dot_f16; simd[1] = qt_avx512_dot_f16; break;
            case QT_BF16: simd[0] = qt_avx2_dot_bf16; break;
            case QT_Q8_0: simd[0] = qt_avx2_dot_q8_0; simd[1] = qt_avx512_dot_q8_0; break;
            case QT_Q4_0: simd[0] = qt_avx2_dot_q4_0; simd[1] = qt_avx512_dot_q4_0; break;
            case QT_Q4_K: simd[0] = qt_avx2_dot_q4_K; simd[1] = qt_avx512_dot_q4_K; break;
            case QT_Q6_K: simd[0] = qt_avx2_dot_q6_K; simd[1] = qt_avx512_dot_q6_K; break;
            }
            for (int s = 0; s < 2; s++) {
                if (!simd[s] || lvl < (s ? CPU_AVX512 : CPU_AVX2)) continue;
                const float v = simd[s](row, x, n);
                CHECK_MSG(fabs(v - ref) <= tol, "%s %s dot n=%lld: %.9g vs %.9g", tr->name,
                          s ? "avx512" : "avx2", (long long)n, v, ref);
            }
        }
    }
    /* f32/f16 tails of every length up to 80 */
    for (int n = 1; n <= 80; n++) {
        float wf[80];
        uint16_t wh[80];
        for (int i = 0; i < n; i++) wh[i] = qt_f32_to_f16(wf[i] = rndf());
        double rf = 0, rh = 0, mag = 0;
        for (int i = 0; i < n; i++) {
            rf += (double)wf[i] * x[i];
            rh += (double)qt_f16_to_f32(wh[i]) * x[i];
            mag += fabs(wf[i] * x[i]);
        }
        CHECK_NEAR(qt_get(QT_F32)->dot(wf, x, n), rf, 1e-6 * mag + 1e-30);
        CHECK_NEAR(qt_get(QT_F16)->dot(wh, x, n), rh, 1e-6 * mag + 1e-30);
        if (lvl >= CPU_AVX2) {
            CHECK_NEAR(qt_avx2_dot_f32(wf, x, n), rf, 1e-6 * mag + 1e-30);
            CHECK_NEAR(qt_avx2_dot_f16(wh, x, n), rh, 1e-6 * mag + 1e-30);
        }
        if (lvl >= CPU_AVX512) {
            CHECK_NEAR(qt_avx512_dot_f32(wf, x, n), rf, 1e-6 * mag + 1e-30);
            CHECK_NEAR(qt_avx512_dot_f16(wh, x, n), rh, 1e-6 * mag + 1e-30);
        }
    }
}

/* ---------------------------------------------------------------- integer dots */
/* The hardware has the VNNI kernels' extensions (whatever LLAVA_MECH_CPU says). */
static int vnni_hw(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c >> 1 & 1) && (c >> 8 & 1) && (c >> 11 & 1);
#else
    return 0;
#endif
}

static void test_int_dots(void) {
    enum { N = 4 * QK_K };
    static unsigned char row[N * 4];
    static float w[N], x[N];
    /* act_q8_32x4 takes 272 bytes per 128 values */
    static unsigned char xq[N * 3], xq_plain[N * 3];
    const int types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q2_K, QT_Q3_K, QT_Q4_K, QT_Q5_K, QT_Q6_K};
    CHECK(qt_int_get(QT_F32) == NULL && qt_int_get(QT_Q8_K) == NULL && qt_int_get(-3) == NULL);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const int t = types[ti];
        const qt_int_kernel *ik = qt_int_get(t);
        CHECK(ik != NULL);
        if (!ik) continue;
        const int blk = ik->act == QT_ACT_Q8_K ? QK_K : 32;
        for (int rep = 0; rep < 10; rep++) {
            random_row(t, row, N);
            qt_get(t)->to_float(row, w, N);
            for (int i = 0; i < N; i++) x[i] = rndf() * (rep & 1 ? 10.0f : 0.1f);
            qt_quantize_act(ik->act, x, xq, N);
            double ref = 0, bound = 0, mag = 0;
            for (int b = 0; b < N; b += blk) {
                float amax = 0;
                for (int i = b; i < b + blk; i++) amax = fmaxf(amax, fabsf(x[i]));
                for (int i = b; i < b + blk; i++) {
                    ref += (double)w[i] * x[i];
                    mag += fabs((double)w[i] * x[i]);
                    bound += fabs(w[i]) * amax / 254.0;
                }
            }
            const float r = ik->vdot_ref(row, xq, N), v = ik->vdot(row, xq, N);
            CHECK_MSG(fabs(r - ref) <= 1.01 * bound + 1e-6 * mag, "%s vdot_ref %.7g vs %.7g (bound %.3g)", qt_get(t)->name, r, ref, bound);
            /* same integer sums, only float combination order may differ */
            CHECK_MSG(fabs(v - r) <= 1e-5 * mag, "%s vdot %.7g vs vdot_ref %.7g", qt_get(t)->name, v, r);
            /* every ISA's kernel, whatever this CPU's default is; the AVX2 and AVX-512BW
             * ones take the plain layouts */
            const qt_act_kind plain = blk == QK_K ? QT_ACT_Q8_K : QT_ACT_Q8_32;
            qt_quantize_act(plain, x, xq_plain, N);
            qt_vdot_fn all[3] = {NULL, NULL, NULL};
            if (cpu_level_hw() >= CPU_AVX2)
                all[0] = t == QT_Q8_0 ? qt_avx2_vdot_q8_0 : t == QT_Q4_0 ? qt_avx2_vdot_q4_0
                       : t == QT_Q4_1 ? qt_avx2_vdot_q4_1 : t == QT_Q5_0 ? qt_avx2_vdot_q5_0
                       : t == QT_Q5_1 ? qt_avx2_vdot_q5_1 : t == QT_Q2_K ? qt_avx2_vdot_q2_K
                       : t == QT_Q3_K ? qt_avx2_vdot_q3_K : t == QT_Q4_K ? qt_avx2_vdot_q4_K
                       : t == QT_Q5_K ? qt_avx2_vdot_q5_K : qt_avx2_vdot_q6_K;
            if (cpu_level_hw() >= CPU_AVX512)
                all[1] = t == QT_Q4_K ? qt_avx512_vdot_q4_K : t == QT_Q6_K ? qt_avx512_vdot_q6_K
                       : t == QT_Q5_K ? qt_avx512_vdot_q5_K : NULL;
            /* VNNI kernels with the layout they are dispatched with */
            if (cpu_level_hw() >= CPU_AVX512 && vnni_hw())
                all[2] = t == QT_Q8_0 ? qt_vnni_vdot_q8_0 : t == QT_Q4_K ? qt_vnni_vdot_q4_K : NULL;
            static const char *const isa[3] = {"avx2", "avx512", "vnni"};
            for (int k = 0; k < 3; k++)
                if (all[k]) {
                    unsigned char *xk = xq_plain;
                    if (k == 2 && t == QT_Q8_0) {
                        qt_quantize_act(QT_ACT_Q8_32X4, x, xq, N);
                        xk = xq;
                        /* the portable dot of that layout equals the plain one bit for bit:
                         * same integer sums, same float order */
                        CHECK(qt_ref_vdot_q8_0x4(row, xq, N) == qt_ref_vdot_q8_0(row, xq_plain, N));
                    }
                    const float u = all[k](row, xk, N);
                    CHECK_MSG(fabs(u - r) <= 1e-5 * mag, "%s %s vdot %.7g vs vdot_ref %.7g", qt_get(t)->name,
                              isa[k], u, r);
                }
        }
    }
    /* QT_ACT_Q8_32X4 with a partial last group (6 blocks: 1.5 groups): the zero fill,
     * the -16*sum start lanes and the VNNI kernel's tail */
    {
        enum { NB = 6 };
        static unsigned char wq[NB * sizeof(block_q8_0)];
        static act_q8_32x4 g[2];
        float xs[NB * 32];
        random_row(QT_Q8_0, wq, NB * 32);
        for (int i = 0; i < NB * 32; i++) xs[i] = rndf();
        CHECK(qt_act_row_size(QT_ACT_Q8_32X4, NB * 32) == 2 * sizeof(act_q8_32x4));
        CHECK(qt_act_row_size(QT_ACT_Q8_32X4, 48) == 0);
        memset(g, 0x55, sizeof g);
        qt_quantize_act(QT_ACT_Q8_32X4, xs, g, NB * 32);
        int32_t s5 = 0;
        for (int j = 0; j < 32; j++) s5 += g[1].qs[32 + j];
        CHECK(g[1].init[8] == -16 * s5 && g[1].init[15] == -16 * s5);
        CHECK(g[1].d[2] == 0.0f && g[1].d[3] == 0.0f && g[1].qs[64] == 0 && g[1].init[31] == 0);
        double mag = 0;
        float wf[NB * 32];
        qt_get(QT_Q8_0)->to_float(wq, wf, NB * 32);
        for (int i = 0; i < NB * 32; i++) mag += fabs((double)wf[i] * xs[i]);
        const float r = qt_ref_vdot_q8_0x4(wq, g, NB * 32);
        if (cpu_level_hw() >= CPU_AVX512 && vnni_hw())
            CHECK_MSG(fabs(qt_vnni_vdot_q8_0(wq, g, NB * 32) - r) <= 1e-5 * mag, "vnni q8_0 tail %.7g vs %.7g",
                      qt_vnni_vdot_q8_0(wq, g, NB * 32), r);
    }
    /* activation quantization: q = round(x * 127 / amax), sums consistent */
    float xa[256];
    for (int i = 0; i < 256; i++) xa[i] = (float)(i - 100) * 0.25f;
    act_q8_32 a[8];
    qt_quantize_act(QT_ACT_Q8_32, xa, a, 256);
    /* the 32-block scale is stored rounded to fp16, as ggml's block_q8_0.d (llama.cpp's
     * dots use the rounded value); Q8_K keeps the f32 scale */
    CHECK(a[0].qs[0] == -127 && a[0].d == qt_f16_to_f32(qt_f32_to_f16(25.0f / 127.0f)) && a[0].d != 25.0f / 127.0f);
    int32_t s = 0;
    for (int j = 0; j < 32; j++) s += a[1].qs[j];
    CHECK(s == a[1].sum);
    act_q8_K ak;
    qt_quantize_act(QT_ACT_Q8_K, xa, &ak, 256);
    CHECK(ak.qs[255] == 127 && ak.qs[100] == 0 && ak.d == 38.75f / 127.0f);
    act_q8_32x4 a4[2];
    qt_quantize_act(QT_ACT_Q8_32X4, xa, a4, 256);
    CHECK(a4[0].d[0] == a[0].d && a4[1].d[3] == a[7].d);
    int bs = 0;
    for (int j = 16; j < 32; j++) bs += ak.qs[j];
    CHECK(bs == ak.bsums[1]);
    /* the AVX2 block quantizer gives the same bytes and scale as the portable one,
     * including exact ties (amax 127 -> id 1: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2) */
    if (cpu_level_hw() >= CPU_AVX2) {
        float xr[256];
        int8_t q1[256], q2[256];
        for (int rep = 0; rep < 50; rep++) {
            float d1, d2;
            for (int i = 0; i < 256; i++) xr[i] = rndf() * (float)(rep + 1);
            if (rep == 0) {
                for (int i = 0; i < 256; i++) xr[i] = (float)(i % 64) - 31.5f;
                xr[255] = 127.0f;
            }
            qt_ref_quantize_block(xr, 256, &d1, q1);
            qt_avx2_quantize_block(xr, 256, &d2, q2);
            CHECK(d1 == d2 && !memcmp(q1, q2, 256));
            if (rep == 0) CHECK(d1 == 1.0f && q1[0] == -32 && q1[1] == -30 && q1[63] == 32 && q1[32] == 0);
        }
    }
    /* a NaN or inf activation makes the integer dot NaN, as the f32 dot would be */
    {
        static unsigned char wrow[sizeof(block_q4_K) * 1];
        random_row(QT_Q4_K, wrow, 256);
        xa[7] = NAN;
        qt_quantize_act(QT_ACT_Q8_K, xa, &ak, 256);
        CHECK(isnan(qt_int_get(QT_Q4_K)->vdot(wrow, &ak, 256)));
        CHECK(isnan(qt_int_get(QT_Q4_K)->vdot_ref(wrow, &ak, 256)));
        xa[7] = INFINITY;
        qt_quantize_act(QT_ACT_Q8_32, xa, a, 256);
        CHECK(isnan(a[0].d) && !isnan(a[1].d));
    }
}

int main(void) {
    printf("cpu level: %s\n", cpu_level_name(cpu_level()));
    test_traits();
    test_f16();
    test_hand_blocks();
    /* 14 types (13 file types + Q8_K) through their reference, and the 7 with AVX2
     * versions through those too, each at least once */
    CHECK_MSG(hand_impls_checked >= 14 + (cpu_level_hw() >= CPU_AVX2 ? 7 : 0), "%d implementations checked",
              hand_impls_checked);
    test_quantize_known();
    test_simd_dequant();
    test_round_trips();
    test_dots();
    test_int_dots();
    return test_result("test_quant");
}
