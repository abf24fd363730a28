/* threads.h — a small fixed pool of worker threads.
 *
 * Contract: pool_create(n) starts n-1 workers (the caller is the n-th); pool_run
 * calls fn(arg, ith, nth) for ith = 0..nth-1, one per thread, and returns when all
 * have finished. Work is split by the callee from (ith, nth) deterministically, so
 * results never depend on scheduling. A NULL pool runs fn(arg, 0, 1) inline.
 * n <= 0 means "number of online CPUs". A pool serves one calling thread at a time
 * and fn must not call pool_run on the same pool (no nesting). Idle workers spin
 * for ~50 us after each run, then sleep on a condition variable. */
#ifndef LLAVA_MECH_THREADS_H
#define LLAVA_MECH_THREADS_H

#include "err.h"

typedef struct pool pool_t;
typedef void (*pool_fn)(void *arg, int ith, int nth);

err_code pool_create(pool_t **out, int n_threads, err_t *err);
void pool_free(pool_t *p);
int pool_size(const pool_t *p);
void pool_run(pool_t *p, pool_fn fn, void *arg);
/* Splits [0, n) into nth contiguous chunks; chunk ith is [*lo, *hi). */
void pool_split(long n, int ith, int nth, long *lo, long *hi);

#endif
