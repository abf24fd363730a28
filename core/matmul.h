/* matmul.h — the one matrix-multiply entry point: Y = X W^T (+ bias).
 *
 * X is n x k row-major f32, W a tensor with ne = {k, m} of any quant.h type
 * (row-major [m][k]), Y n x m row-major f32. For n > 4 W is dequantized in tiles
 * into the context's reused scratch and multiplied with OpenBLAS sgemm; for n <= 4
 * a fused kernel reads each quantized row once (see mm_ctx_set_exact), with the rows
 * handed out in chunks to whichever pool thread is free. Results do not depend on the
 * number of threads (bit-identical). A context (its pool and scratch) serves
 * one calling thread at a time. mm_ctx_create sets OpenBLAS's thread count to the
 * context's; mm_linear runs OpenBLAS single-threaded inside its pool and restores
 * the previous count afterwards.
 *
 * mm_init_blas(argc, argv) must run first in main (cli main does it): see below. */
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

/* Y[n][m] = X[n][k] * W^T + bias (bias may be NULL, length m, f32). Y must not
 * overlap X. W's rows are ne[1]*ne[2]*ne[3]. Checks that W->ne[0] == k (and, when
 * W->nbytes != 0, that it holds m rows); returns ERR_MISMATCH naming W otherwise. */
err_code mm_linear(mm_ctx_t *c, float *Y, const float *X, int64_t n, int64_t k, const tensor_t *W,
                   const float *bias, err_t *err);

/* Several weights that read the same input (Q/K/V, gate/up): out[i].Y[n][m_i] =
 * X W_i^T + bias_i, each W_i with k inputs per row. For decoding sizes (n <= 4) X is
 * quantized once per activation kind and the rows of all the weights go out in one
 * pool dispatch; otherwise it is mm_linear on each in turn. Every Y_i is bit-identical
 * to what mm_linear gives for W_i alone. count <= MM_MULTI_MAX. */
#define MM_MULTI_MAX 4
typedef struct {
    float *Y;
    const tensor_t *W;
    const float *bias; /* may be NULL */
} mm_out_t;
err_code mm_linear_multi(mm_ctx_t *c, const float *X, int64_t n, int64_t k, const mm_out_t *out, int count,
                         err_t *err);

/* Prefill tiling (see matmul.c): rows of W per dequantized tile for an m x k weight,
 * a function of the shape only so results do not depend on the thread count.
 * mm_ctx_set_tile_rows overrides it (0 = automatic; for benchmarks/tuning). */
int64_t mm_tile_rows(int64_t m, int64_t k);
void mm_ctx_set_tile_rows(mm_ctx_t *c, int64_t rows);
/* Decoding (n <= 4) with quantized weights (every Q type) quantizes the X rows to 8 bits
 * per 32/256-block and dots in integers, like llama.cpp (per-element activation
 * error <= block amax/254). exact = 1 uses f32 activations instead (slower, same
 * numbers as dequantize-then-dot up to summation order). Default 0. */
void mm_ctx_set_exact(mm_ctx_t *c, int exact);

/* Dequantizes rows [r0, r0+nr) of W (ne = {k, m}) into dst (nr x k f32). */
void mm_dequant_rows(const tensor_t *W, int64_t r0, int64_t nr, float *dst);

/* Decode layouts (tensor.h TENSOR_Q4K_X16, TENSOR_Q8_0_X16). With AVX512-VNNI,
 * decoding Q4_K or Q8_0 rows one at a time is bound by instructions (~37 and ~45 GB/s
 * per core from cache), not memory; interleaving 16 rows removes the horizontal sums
 * and scale shuffles (~2x). mm_pack_size(W) is the bytes of W's repacked copy, 0 when
 * W is not repacked: not Q4_K or Q8_0, rows not a multiple of 16, inputs not a
 * multiple of 256 (Q4_K) or 64 (Q8_0), already packed, no VNNI, or
 * LLAVA_MECH_NO_REPACK set to anything but "0" in the environment. mm_pack(dst, W, buf, pool) writes the
 * copy into buf (mm_pack_size(W) bytes, ideally 64-byte aligned; pool may be NULL)
 * and sets *dst to W with data = buf, nbytes and layout updated. mm_linear on *dst: prefill and
 * mm_dequant_rows give the same bits as on W; decode differs from W's only in
 * float summation order. */
size_t mm_pack_size(const tensor_t *W);
void mm_pack(tensor_t *dst, const tensor_t *W, void *buf, pool_t *pool);

/* Call first thing in main with main's argc/argv, before any BLAS call. When the
 * CPU has AVX-512, OPENBLAS_CORETYPE is unset and OpenBLAS's load-time choice is not
 * SkylakeX-class, it re-executes the program once (/proc/self/exe, same argv) with
 * OPENBLAS_CORETYPE=SkylakeX — OpenBLAS reads the variable only when the library
 * loads, before main. Returns the core type it arranged (static string) in the
 * process that runs with it, NULL when it left things alone. Overrides:
 * OPENBLAS_CORETYPE set by the user wins; LLAVA_MECH_NO_CORETYPE=1 disables;
 * LLAVA_MECH_CORETYPE=NAME asks for another core. Library users without argv may
 * pass (0, NULL): then it never re-executes. */
const char *mm_init_blas(int argc, char **argv);

#endif
