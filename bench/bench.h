/* bench.h — `llava-mech bench KIND`: the table of benchmark kinds and shared helpers.
 *
 * Each kind lives in bench/bench_<kind>.c and is one function with the command's
 * (argc, argv) (argv[0] is the kind's name). To add a kind: declare it here and add
 * a line to BENCH_KINDS. Benchmarks print to stdout; they are CLI code, not library
 * code. */
#ifndef LLAVA_MECH_BENCH_H
#define LLAVA_MECH_BENCH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#include "core/threads.h"

typedef int (*bench_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    bench_fn fn;
    const char *summary;
} bench_kind;

int bench_encode(int argc, char **argv); /* bench_vision.c */
int bench_explain(int argc, char **argv); /* bench_explain.c */
int bench_lm(int argc, char **argv);     /* bench_lm.c */
int bench_matmul(int argc, char **argv); /* bench_matmul.c */

/* One line per kind, sorted: {"name", fn, "summary"}, */
#define BENCH_KINDS \
    {"encode", bench_encode, "image encode (ViT + projector) time and GFLOP/s vs sgemm peak, llava-1.5-7b mmproj"}, \
    {"explain", bench_explain, "each explain method's cost as a multiple of one plain forward (toy model or any)"}, \
    {"lm", bench_lm, "LLaMA prefill (600 tokens) and decode tokens/s vs sgemm peak and weight streaming; RSS"}, \
    {"matmul", bench_matmul, "GFLOP/s of mm_linear at LLaVA-1.5-7B shapes vs sgemm peak and memory bandwidth"},

/* Where generated preset model files are kept: $LLAVA_MECH_BENCH_DIR or /tmp/llava-mech-bench. */
const char *bench_default_dir(void);
/* Path (cap bytes) of the preset's LM file (mmproj false) or mmproj file of the given
 * weight type in dir: DIR/NAME-TYPE.gguf or DIR/mmproj-NAME-TYPE.gguf. The file is
 * written once (with a line on stdout) and reused by later runs. The caller checks
 * that the type suits the file. */
err_code bench_preset_file(const char *dir, const char *preset_name, bool mmproj, int type, char *path, size_t cap,
                           err_t *err);

/* Monotonic wall clock in seconds. */
double bench_now(void);
/* This process's CPU time in seconds (all threads): on a shared machine the wall clock
 * also counts other processes. */
double bench_cpu_now(void);
/* Best-of-`reps` GFLOP/s of a square n x n x n cblas_sgemm with OpenBLAS's current
 * thread count. */
double bench_sgemm_peak(int n, int reps);
/* Streaming read bandwidth in bytes/s: a `bytes` buffer (make it >> last-level
 * cache) read by `threads` threads in 32 MiB windows, best window over `reps`
 * passes (robust to preemption by other processes). */
double bench_read_bandwidth(size_t bytes, int threads, int reps);
/* Seconds to read `bytes` at buf once with the pool's threads (a streaming pass). */
double bench_read_time(pool_t *pool, const void *buf, size_t bytes);
/* The same over n byte ranges in one dispatch: the threads split the ranges' total
 * into contiguous shares. */
typedef struct {
    const void *p;
    size_t n;
} bench_range;
double bench_read_ranges(pool_t *pool, const bench_range *r, int n);
/* Prints "cpu: ... | simd: ... | openblas: CORE (how chosen) | threads: N" and the load average. */
void bench_print_header(int threads);

#endif
