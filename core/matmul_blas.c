/* matmul_blas.c — choosing OpenBLAS's kernels before anything uses them.
 *
 * Debian's OpenBLAS is a DYNAMIC_ARCH build: a constructor picks the kernel set
 * ("core") when the shared library is loaded, i.e. before main(), reading
 * OPENBLAS_CORETYPE if set and CPUID otherwise. Setting the variable from main is
 * therefore too late, and on CPUs its table does not know (e.g. Zen 4/5 in some
 * 0.3.2x releases) it falls back to Haswell (AVX2) kernels although the SkylakeX
 * (AVX-512) kernels are ~1.7x faster. The fix: main asks OpenBLAS which core it
 * chose; if the CPU has AVX-512, the user did not choose (OPENBLAS_CORETYPE unset)
 * and the active core is not the wanted one, main re-executes itself once via
 * /proc/self/exe with OPENBLAS_CORETYPE set. A marker variable guards against
 * loops. Overrides: OPENBLAS_CORETYPE set by the user always wins;
 * LLAVA_MECH_NO_CORETYPE=1 disables the mechanism; LLAVA_MECH_CORETYPE names the
 * wanted core (default SkylakeX, which Cooperlake/SapphireRapids also satisfy). */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cpu.h"
#include "matmul.h"

#define REEXEC_MARK "LLAVA_MECH_BLAS_REEXEC"

static int core_satisfies(const char *active, const char *wanted) {
    if (!strcasecmp(active, wanted)) return 1;
    /* Cooperlake and SapphireRapids use the SkylakeX sgemm kernels (plus bf16/amx) */
    if (!strcasecmp(wanted, "SkylakeX"))
        return !strcasecmp(active, "Cooperlake") || !strcasecmp(active, "SapphireRapids");
    return 0;
}

const char *mm_init_blas(int argc, char **argv) {
    static const char *const known[] = {"SkylakeX", "Cooperlake", "SapphireRapids", "Haswell",
                                        "Zen", "Sandybridge", "Prescott"};
    (void)argc;
    const char *mark = getenv(REEXEC_MARK);
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (mark && set) {
        /* we are the re-executed process: report what we asked for */
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (!strcasecmp(set, known[i])) return known[i];
        return "SkylakeX";
    }
    if (set || mark) return NULL;
    const char *off = getenv("LLAVA_MECH_NO_CORETYPE");
    if (off && *off && strcmp(off, "0")) return NULL;
    const char *wanted = getenv("LLAVA_MECH_CORETYPE");
    if (!wanted || !*wanted) {
        if (cpu_level_hw() < CPU_AVX512) return NULL;
        wanted = "SkylakeX";
    }
    const char *active = openblas_get_corename();
    if (!active || core_satisfies(active, wanted)) return NULL;
    if (!argv || !argv[0]) return NULL;
    if (setenv("OPENBLAS_CORETYPE", wanted, 1) || setenv(REEXEC_MARK, "1", 1)) return NULL;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): carry on with the kernels we have */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(REEXEC_MARK);
    return NULL;
}
