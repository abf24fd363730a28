/* cpu.c — run-time SIMD detection for the kernels in quant_avx2.c / quant_avx512.c.
 *
 * __builtin_cpu_supports (gcc and clang) reads the feature bits libgcc/compiler-rt
 * filled in at start-up from CPUID, and for AVX/AVX-512 it also checks XGETBV, i.e.
 * that the OS saves ymm/zmm state. The one cached value is a constant of the process
 * (hardware facts plus an environment cap read once), not model state. */
#include "cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CPU_X86 1
#endif

cpu_level_t cpu_level_hw(void) {
#ifdef CPU_X86
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    unsigned a, b, c, d;
    int f16c = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) f16c = (c >> 29) & 1;
    if (!avx2 || !f16c) return CPU_GENERIC;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return CPU_AVX512;
    return CPU_AVX2;
#else
    return CPU_GENERIC;
#endif
}

cpu_level_t cpu_level(void) {
    /* -1 = not yet computed; benign race: every thread computes the same value. */
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v >= 0) return (cpu_level_t)v;
    v = (int)cpu_level_hw();
    const char *cap = getenv("LLAVA_MECH_CPU");
    if (cap && !strcmp(cap, "generic")) v = CPU_GENERIC;
    else if (cap && !strcmp(cap, "avx2") && v > CPU_AVX2) v = CPU_AVX2;
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return (cpu_level_t)v;
}

int cpu_has_vnni(void) {
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v >= 0) return v;
    v = 0;
#ifdef CPU_X86
    if (cpu_level() == CPU_AVX512) {
        unsigned a, b, c, d;
        /* CPUID leaf 7 subleaf 0, ECX: bit 1 AVX512_VBMI, bit 8 GFNI, bit 11 AVX512_VNNI */
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) v = (c >> 1 & 1) && (c >> 8 & 1) && (c >> 11 & 1);
        const char *cap = getenv("LLAVA_MECH_CPU");
        if (cap && !strcmp(cap, "avx512")) v = 0;
    }
#endif
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return v;
}

const char *cpu_level_name(cpu_level_t l) {
    switch (l) {
    case CPU_AVX512: return "avx512";
    case CPU_AVX2: return "avx2";
    default: return "generic";
    }
}

void cpu_brand(char *buf, size_t size) {
    if (!size) return;
    const char *p = "unknown";
    size_t len = strlen(p);
#ifdef CPU_X86
    char s[49];
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(s, r, 48);
        s[48] = '\0';
        p = s;
        while (*p == ' ') p++;
        len = strlen(p);
        while (len && p[len - 1] == ' ') len--;
    }
#endif
    if (len >= size) len = size - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
}
