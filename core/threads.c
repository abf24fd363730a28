/* threads.c — persistent pthread pool with claim-as-you-go dispatch.
 *
 * pool_for publishes (fn, arg, n) and a fresh generation in one 64-bit word,
 * work = gen << 32 | next, wakes the workers, and then claims calls itself like a
 * worker: every thread takes the next index with a compare-and-swap on that word,
 * so a claim made with a stale generation fails and a late worker can never run a
 * call of a finished job. The caller returns once `done` reaches n. Because nothing
 * waits for a particular thread, a worker that is still waking up or has been
 * preempted by another process (the common case on a loaded 2-core machine) costs
 * at most the one call it holds, instead of stalling every dispatch until the
 * scheduler runs it again, as a fixed split does.
 *
 * Workers and the waiting caller spin for a short, bounded time before sleeping
 * on a condition variable: back-to-back calls in a forward pass (one matmul after
 * another) are closer than that and skip the futex wake-up, which costs tens of
 * microseconds in a VM, while idle pool threads never compete with OpenBLAS's own
 * threads for longer than the spin. Sleepers are counted so that a dispatch takes
 * the mutex only when someone sleeps (the store of `work` and the load of
 * `sleepers` are sequentially consistent, as are the sleeper's increment and its
 * re-check of `work`, so one side always sees the other). */
#include "threads.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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
};

struct pool {
    int n;
    pthread_t *threads;
    struct worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    _Atomic uint64_t work; /* generation << 32 | next unclaimed index */
    _Atomic long done;     /* calls of the current generation finished */
    _Atomic(pool_task_fn) fn;
    _Atomic(void *) arg;
    _Atomic long count;
    _Atomic int sleepers;   /* workers blocked (or about to block) on cv_start */
    _Atomic int waiting;    /* the caller is blocked on cv_done */
    _Atomic int stop;
};

static inline uint32_t gen_of(uint64_t w) { return (uint32_t)(w >> 32); }

/* Claims and runs calls of generation g until none is left. The acquire load of
 * `work` comes first so the fields read next are at least g's. */
static void run_claims(struct pool *p, uint32_t g) {
    uint64_t w = atomic_load_explicit(&p->work, memory_order_acquire);
    if (gen_of(w) != g) return;
    const pool_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
    void *arg = atomic_load_explicit(&p->arg, memory_order_relaxed);
    const long n = atomic_load_explicit(&p->count, memory_order_relaxed);
    for (;;) {
        if (gen_of(w) != g || (long)(uint32_t)w >= n) return;
        if (!atomic_compare_exchange_weak_explicit(&p->work, &w, w + 1, memory_order_acquire, memory_order_acquire))
            continue; /* w now holds the current word */
        /* the claim succeeded in generation g, so fn/arg/n read above are g's: the
         * caller rewrites them only after all of g's calls are done */
        fn(arg, (long)(uint32_t)w);
        w = w + 1;
        if (atomic_fetch_add(&p->done, 1) + 1 == n && atomic_load(&p->waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *worker_main(void *arg) {
    struct pool *p = ((struct worker *)arg)->pool;
    uint32_t seen = gen_of(atomic_load(&p->work));
    for (;;) {
        for (int k = 0; k < POOL_SPIN && gen_of(atomic_load_explicit(&p->work, memory_order_acquire)) == seen &&
                        !atomic_load_explicit(&p->stop, memory_order_relaxed);
             k++)
            CPU_RELAX();
        if (gen_of(atomic_load(&p->work)) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (gen_of(atomic_load(&p->work)) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->cv_start, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = gen_of(atomic_load_explicit(&p->work, memory_order_acquire));
        run_claims(p, seen);
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
    atomic_init(&p->work, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->arg, NULL);
    atomic_init(&p->count, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->waiting, 0);
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
            p->workers[i] = (struct worker){p};
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

void pool_for(pool_t *p, long n, pool_task_fn fn, void *arg) {
    assert(n < (1L << 31));
    if (n <= 0) return;
    if (!p || p->n == 1 || n == 1) {
        for (long i = 0; i < n; i++) fn(arg, i);
        return;
    }
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&p->count, n, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    const uint32_t g = gen_of(atomic_load_explicit(&p->work, memory_order_relaxed)) + 1;
    atomic_store(&p->work, (uint64_t)g << 32); /* seq_cst: publishes the fields above */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
    }
    run_claims(p, g);
    for (int k = 0; k < POOL_SPIN && atomic_load_explicit(&p->done, memory_order_acquire) < n; k++) CPU_RELAX();
    if (atomic_load_explicit(&p->done, memory_order_acquire) < n) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->waiting, 1);
        while (atomic_load(&p->done) < n) pthread_cond_wait(&p->cv_done, &p->mu);
        atomic_store(&p->waiting, 0);
        pthread_mutex_unlock(&p->mu);
    }
}

typedef struct {
    pool_fn fn;
    void *arg;
    int nth;
} share_job;

static void run_share(void *arg, long i) {
    const share_job *j = arg;
    j->fn(j->arg, (int)i, j->nth);
}

void pool_run(pool_t *p, pool_fn fn, void *arg) {
    share_job j = {fn, arg, pool_size(p)};
    pool_for(p, j.nth, run_share, &j);
}

void pool_split(long n, int ith, int nth, long *lo, long *hi) {
    if (nth < 1) nth = 1;
    /* floor(n * i / nth) boundaries: chunk sizes differ by at most one */
    const long q = n / nth, r = n % nth;
    *lo = q * ith + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}
