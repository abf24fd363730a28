/* threads.h — a small fixed pool of worker threads.
 *
 * Contract: pool_create(n) starts n-1 workers (the caller is the n-th). pool_for(p, n,
 * fn, arg) calls fn(arg, i) once for every i in [0, n) and returns when all calls have
 * finished; the calls are claimed one at a time by whichever thread is free, the
 * caller included, so a worker that is asleep or preempted by another process does
 * not hold the others up (it just runs fewer calls). Which thread runs which i must
 * therefore not change the result: calls write disjoint outputs and must not wait for
 * one another. pool_run(p, fn, arg) is pool_for over the nth = pool_size(p) shares
 * fn(arg, ith, nth): every ith exactly once (so per-share scratch indexed by ith is
 * safe), though not necessarily on thread ith. Work is split by the callee from
 * (ith, nth) deterministically, so results never depend on scheduling. A NULL pool
 * runs everything inline. n <= 0 means "number of online CPUs". A pool serves one
 * calling thread at a time and fn must not call into the same pool (no nesting).
 * Idle workers spin for ~50 us after each run, then sleep on a condition variable. */
#ifndef LLAVA_MECH_THREADS_H
#define LLAVA_MECH_THREADS_H

#include "err.h"

typedef struct pool pool_t;
typedef void (*pool_fn)(void *arg, int ith, int nth);
typedef void (*pool_task_fn)(void *arg, long i);

err_code pool_create(pool_t **out, int n_threads, err_t *err);
void pool_free(pool_t *p);
int pool_size(const pool_t *p);
void pool_run(pool_t *p, pool_fn fn, void *arg);
void pool_for(pool_t *p, long n, pool_task_fn fn, void *arg);
/* Splits [0, n) into nth contiguous chunks; chunk ith is [*lo, *hi). */
void pool_split(long n, int ith, int nth, long *lo, long *hi);

#endif
