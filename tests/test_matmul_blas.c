/* test_matmul_blas.c — mm_init_blas's re-exec really switches OpenBLAS's kernels.
 *
 * OpenBLAS picks its core when the library loads, so the only way to change it is a
 * new process. The parent checks the cases that must not re-exec (user's
 * OPENBLAS_CORETYPE, LLAVA_MECH_NO_CORETYPE), then asks for a core different from
 * the active one via LLAVA_MECH_CORETYPE with OPENBLAS_CORETYPE unset: mm_init_blas
 * must re-execute this test, and the child must be running that core, report it,
 * not re-exec again, and compute a correct sgemm with it. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

int main(int argc, char **argv) {
    if (getenv("LLAVA_MECH_BLAS_REEXEC")) return child(argc, argv);

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
