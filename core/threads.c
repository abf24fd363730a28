/* threads.c — persistent pthread pool with generation-counted dispatch.
 *
 * pool_run publishes (fn, arg), bumps a generation counter and wakes the workers;
 * the caller runs share 0 itself and then waits until the pending count drops to
 * zero. Workers and the waiting caller spin for a short, bounded time before
 * sleeping on a condition variable: back-to-back calls in a forward pass (one
 * matmul after another) are closer than that and skip the futex wake-up, which
 * costs tens of microseconds in a VM, while idle pool threads never compete with
 * OpenBLAS's own threads for longer than the spin. */
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* pause instructions before sleeping: measured 55 us on Zen 5 (27 ns per pause);
 * Intel parts with a 140-cycle pause spin about as long */
#define POOL_SPIN 2048

struct worker {
    struct pool *pool;
    int ith;
};

struct pool {
    int n;
    pthread_t *threads;
    struct worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    _Atomic unsigned gen;
    _Atomic int pending;
    _Atomic int stop;
    pool_fn fn;
    void *arg;
};

static void *worker_main(void *p) {
    struct worker *w = p;
    struct pool *pl = w->pool;
    unsigned seen = 0;
    for (;;) {
        for (int k = 0; k < POOL_SPIN && atomic_load(&pl->gen) == seen && !atomic_load(&pl->stop); k++)
            CPU_RELAX();
        if (atomic_load(&pl->gen) == seen && !atomic_load(&pl->stop)) {
            pthread_mutex_lock(&pl->mu);
            while (atomic_load(&pl->gen) == seen && !atomic_load(&pl->stop))
                pthread_cond_wait(&pl->cv_start, &pl->mu);
            pthread_mutex_unlock(&pl->mu);
        }
        if (atomic_load(&pl->stop)) break;
        seen = atomic_load(&pl->gen);
        pl->fn(pl->arg, w->ith, pl->n);
        if (atomic_fetch_sub(&pl->pending, 1) == 1) {
            pthread_mutex_lock(&pl->mu);
            pthread_cond_signal(&pl->cv_done);
            pthread_mutex_unlock(&pl->mu);
        }
    }
    return NULL;
}

err_code pool_create(pool_t **out, int n_threads, err_t *err) {
    *out = NULL;
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 1024) return err_set(err, ERR_ARG, "threads: %d threads is too many", n_threads);
    struct pool *p = calloc(1, sizeof *p);
    if (!p) return err_set(err, ERR_NOMEM, "threads: out of memory");
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads, sizeof *p->threads);
        p->workers = calloc((size_t)n_threads, sizeof *p->workers);
        if (!p->threads || !p->workers) {
            p->n = 1;
            pool_free(p);
            return err_set(err, ERR_NOMEM, "threads: out of memory");
        }
        for (int i = 1; i < n_threads; i++) {
            p->workers[i] = (struct worker){p, i};
            int rc = pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]);
            if (rc) {
                p->n = i; /* join the ones already started */
                pool_free(p);
                return err_set(err, ERR_NOMEM, "threads: cannot start thread %d of %d: %s", i,
                               n_threads, strerror(rc));
            }
        }
    }
    *out = p;
    return ERR_OK;
}

void pool_free(pool_t *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->workers);
    free(p);
}

int pool_size(const pool_t *p) { return p ? p->n : 1; }

void pool_run(pool_t *p, pool_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    for (int k = 0; k < POOL_SPIN && atomic_load(&p->pending) > 0; k++) CPU_RELAX();
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void pool_split(long n, int ith, int nth, long *lo, long *hi) {
    if (nth < 1) nth = 1;
    /* floor(n * i / nth) boundaries: chunk sizes differ by at most one */
    const long q = n / nth, r = n % nth;
    *lo = q * ith + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}
