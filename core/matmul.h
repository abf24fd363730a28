/* matmul.h — the one matrix-multiply entry point: Y = X W^T (+ bias).
 *
 * X is n x k row-major f32, W a tensor with ne = {k, m} of any quant.h type
 * (row-major [m][k]), Y n x m row-major f32. For n >= 2 W is dequantized in tiles
 * into the context's reused scratch and multiplied with OpenBLAS sgemm; for n == 1
 * a fused dequantize-dot kernel reads each quantized row once. Results do not depend
 * on the number of threads.
 *
 * mm_init_blas() must run before the first BLAS call of the process (cli main does
 * it): when the CPU has AVX-512 and OPENBLAS_CORETYPE is unset it selects OpenBLAS's
 * SkylakeX kernels (Debian's 0.3.21 picks Haswell on Zen 4/5). */
#ifndef LLAVA_MECH_MATMUL_H
#define LLAVA_MECH_MATMUL_H

#include <stdint.h>

#include "err.h"
#include "tensor.h"
#include "threads.h"

typedef struct mm_ctx mm_ctx_t;

/* n_threads <= 0: all online CPUs. */
err_code mm_ctx_create(mm_ctx_t **out, int n_threads, err_t *err);
void mm_ctx_free(mm_ctx_t *c);
pool_t *mm_ctx_pool(mm_ctx_t *c);
int mm_ctx_threads(const mm_ctx_t *c);

/* Y[n][m] = X[n][k] * W^T + bias (bias may be NULL, length m, f32). Checks that
 * W->ne[0] == k; returns ERR_MISMATCH naming W otherwise. */
err_code mm_linear(mm_ctx_t *c, float *Y, const float *X, int64_t n, int64_t k, const tensor_t *W,
                   const float *bias, err_t *err);

/* Dequantizes rows [r0, r0+nr) of W (ne = {k, m}) into dst (nr x k f32). */
void mm_dequant_rows(const tensor_t *W, int64_t r0, int64_t nr, float *dst);

/* Applies the OPENBLAS_CORETYPE choice described above. Returns the core type it set
 * (static string) or NULL when it left the environment alone. Idempotent. */
const char *mm_init_blas(void);

#endif
