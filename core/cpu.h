/* cpu.h — which x86 SIMD level the running CPU (and OS) supports.
 *
 * Contract: cpu_level() is cheap (a few loads; call it per row if needed) and
 * constant for the life of the process. CPU_AVX512 means AVX-512 F/BW/VL plus
 * FMA and F16C with the OS saving zmm state; CPU_AVX2 means AVX2 + FMA + F16C.
 * Setting the environment variable LLAVA_MECH_CPU to "generic", "avx2" or "avx512"
 * before the process starts caps the level (for testing the fallbacks). */
#ifndef LLAVA_MECH_CPU_H
#define LLAVA_MECH_CPU_H

#include <stddef.h>

typedef enum { CPU_GENERIC = 0, CPU_AVX2 = 1, CPU_AVX512 = 2 } cpu_level_t;

cpu_level_t cpu_level(void);
/* 1 when cpu_level() is CPU_AVX512 and the CPU also has AVX512-VNNI, AVX512-VBMI
 * and GFNI (Ice Lake, Zen 4 and later): the integer decode kernels of
 * quant_int_vnni.c. LLAVA_MECH_CPU=avx512 turns it off (plain AVX-512BW kernels). */
int cpu_has_vnni(void);
/* What the hardware supports, ignoring LLAVA_MECH_CPU. */
cpu_level_t cpu_level_hw(void);
const char *cpu_level_name(cpu_level_t l);
/* Writes the CPUID brand string ("AMD EPYC ...") into buf; "unknown" elsewhere. */
void cpu_brand(char *buf, size_t size);

#endif
