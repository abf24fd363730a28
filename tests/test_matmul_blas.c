/* test_matmul_blas.c — mm_init_blas's re-exec really switches OpenBLAS's kernels.
 *
 * OpenBLAS picks its core when the library loads, so the only way to change it is a
 * new process. The parent checks the cases that must not re-exec (user's
 * OPENBLAS_CORETYPE, LLAVA_MECH_NO_CORETYPE), then asks for a core different from
 * the active one via LLAVA_MECH_CORETYPE with OPENBLAS_CORETYPE unset: mm_init_blas
 * must re-execute this test, and the child must be running that core, report it,
 * not re-exec again, and compute a correct sgemm with it.
 *
 * The default case (no LLAVA_MECH_CORETYPE) is run in a child started with
 * OPENBLAS_CORETYPE=Haswell, which makes OpenBLAS load its AVX2 kernels as it does on
 * CPUs its table does not know; the child then unsets the variable, as if the user had
 * never set it. On an AVX-512 CPU mm_init_blas must re-execute it onto a SkylakeX-class
 * core (SkylakeX, Cooperlake, SapphireRapids) without being asked; elsewhere it must
 * leave the Haswell kernels alone. */
#include <cblas.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cpu.h"

#include "core/matmul.h"
#include "testutil.h"

static int child(int argc, char **argv) {
    const char *want = getenv("LLAVA_MECH_CORETYPE");
    const char *got = mm_init_blas(argc, argv);
    CHECK(got != NULL && want != NULL && !strcasecmp(got, want));
    CHECK_MSG(want && !strcasecmp(openblas_get_corename(), want), "active core %s, asked for %s",
              openblas_get_corename(), want ? want : "?");
    /* a second call in the re-executed process leaves things alone (no loop) */
    CHECK(mm_init_blas(argc, argv) != NULL);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 1, 0, 1, 0}, c[4];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 2, 2, 3, 1.0f, a, 3, b, 3, 0.0f, c, 2);
    CHECK(c[0] == 4 && c[1] == 2 && c[2] == 10 && c[3] == 5);
    return test_result("test_matmul_blas (re-executed)");
}

static bool skylakex_class(const char *core) {
    return !strcasecmp(core, "SkylakeX") || !strcasecmp(core, "Cooperlake") || !strcasecmp(core, "SapphireRapids");
}

/* TEST_BLAS_DEFAULT=1: the default decision, see the header comment. */
static int default_child(int argc, char **argv) {
    if (getenv("LLAVA_MECH_BLAS_REEXEC")) {
        const char *got = mm_init_blas(argc, argv);
        CHECK(got != NULL && !strcasecmp(got, "SkylakeX"));
        CHECK_MSG(skylakex_class(openblas_get_corename()), "re-executed onto %s", openblas_get_corename());
        return test_result("test_matmul_blas (default, re-executed)");
    }
    CHECK_MSG(!strcasecmp(openblas_get_corename(), "Haswell"), "loaded %s with OPENBLAS_CORETYPE=Haswell",
              openblas_get_corename());
    unsetenv("OPENBLAS_CORETYPE");
    fflush(stdout);
    const char *got = mm_init_blas(argc, argv);
    /* returning at all means no re-exec: right only without AVX-512 */
    CHECK_MSG(cpu_level_hw() < CPU_AVX512, "an AVX-512 CPU left on %s (mm_init_blas returned %s)",
              openblas_get_corename(), got ? got : "NULL");
    CHECK(got == NULL && !strcasecmp(openblas_get_corename(), "Haswell"));
    return test_result("test_matmul_blas (default, no AVX-512)");
}

static void run_default_case(char **argv) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("TEST_BLAS_DEFAULT", "1", 1);
        setenv("OPENBLAS_CORETYPE", "Haswell", 1);
        unsetenv("LLAVA_MECH_CORETYPE");
        unsetenv("LLAVA_MECH_NO_CORETYPE");
        unsetenv("LLAVA_MECH_BLAS_REEXEC");
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "default-case child: status %d", st);
}

int main(int argc, char **argv) {
    if (getenv("TEST_BLAS_DEFAULT")) return default_child(argc, argv);
    if (getenv("LLAVA_MECH_BLAS_REEXEC")) return child(argc, argv);
    run_default_case(argv);

    const char *active = openblas_get_corename();
    printf("active core at load: %s\n", active);
    /* the user's OPENBLAS_CORETYPE wins: no re-exec, NULL */
    setenv("OPENBLAS_CORETYPE", active, 1);
    setenv("LLAVA_MECH_CORETYPE", "Prescott", 1);
    CHECK(mm_init_blas(argc, argv) == NULL);
    unsetenv("OPENBLAS_CORETYPE");
    /* disabled: no re-exec */
    setenv("LLAVA_MECH_NO_CORETYPE", "1", 1);
    CHECK(mm_init_blas(argc, argv) == NULL);
    unsetenv("LLAVA_MECH_NO_CORETYPE");
    /* already on the wanted core: nothing to do */
    setenv("LLAVA_MECH_CORETYPE", active, 1);
    CHECK(mm_init_blas(argc, argv) == NULL);
    /* library use without argv never re-executes */
    setenv("LLAVA_MECH_CORETYPE", strcasecmp(active, "Sandybridge") ? "Sandybridge" : "Haswell", 1);
    CHECK(mm_init_blas(0, NULL) == NULL);
    /* a different core: this call must not return (it execs this test again) */
    fflush(stdout);
    mm_init_blas(argc, argv);
    CHECK_MSG(0, "mm_init_blas returned instead of re-executing");
    return test_result("test_matmul_blas");
}
