/* test_threads.c — the pool runs every share exactly once per pool_run, with the
 * right (ith, nth), survives many back-to-back runs, and pool_split tiles [0, n). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "testutil.h"

typedef struct {
    _Atomic int calls[16];
    _Atomic int bad_nth;
    int nth_expected;
    long sum[16];
    const long *data;
    long n;
} job;

static void count_fn(void *arg, int ith, int nth) {
    job *j = arg;
    if (nth != j->nth_expected || ith < 0 || ith >= nth) atomic_fetch_add(&j->bad_nth, 1);
    else atomic_fetch_add(&j->calls[ith], 1);
}

static void sum_fn(void *arg, int ith, int nth) {
    job *j = arg;
    long lo, hi, s = 0;
    pool_split(j->n, ith, nth, &lo, &hi);
    for (long i = lo; i < hi; i++) s += j->data[i];
    j->sum[ith] = s;
}

/* pool_for: every index once; index 0 is slow, so with 2+ threads the other
 * indices are claimed by whoever is free while it runs */
typedef struct {
    _Atomic int hits[1000];
} for_job;

static void for_fn(void *arg, long i) {
    for_job *j = arg;
    if (i == 0) {
        volatile double x = 0;
        for (int k = 0; k < 200000; k++) x = x + 1.0;
    }
    atomic_fetch_add(&j->hits[i], 1);
}

int main(void) {
    err_t err = {0};

    /* pool_split: contiguous, covering, balanced to within one */
    const long ns[] = {0, 1, 5, 7, 100, 101, 1000003};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (int nth = 1; nth <= 9; nth++) {
            long prev = 0, mn = ns[a], mx = 0;
            for (int i = 0; i < nth; i++) {
                long lo, hi;
                pool_split(ns[a], i, nth, &lo, &hi);
                CHECK(lo == prev);
                CHECK(hi >= lo);
                if (hi - lo < mn) mn = hi - lo;
                if (hi - lo > mx) mx = hi - lo;
                prev = hi;
            }
            CHECK(prev == ns[a]);
            CHECK(mx - mn <= 1);
        }

    /* NULL pool runs inline as (0, 1) */
    job j;
    memset(&j, 0, sizeof j);
    j.nth_expected = 1;
    pool_run(NULL, count_fn, &j);
    CHECK(atomic_load(&j.calls[0]) == 1 && atomic_load(&j.bad_nth) == 0);
    CHECK(pool_size(NULL) == 1);

    /* n <= 0: online CPUs (at least one) */
    pool_t *p = NULL;
    CHECK_OK(pool_create(&p, 0, &err), &err);
    CHECK(p && pool_size(p) >= 1);
    pool_free(p);

    const int sizes[] = {1, 2, 3};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int n = sizes[s];
        p = NULL;
        CHECK_OK(pool_create(&p, n, &err), &err);
        if (!p) continue;
        CHECK(pool_size(p) == n);
        memset(&j, 0, sizeof j);
        j.nth_expected = n;
        const int runs = 2000;
        for (int r = 0; r < runs; r++) pool_run(p, count_fn, &j);
        CHECK(atomic_load(&j.bad_nth) == 0);
        for (int i = 0; i < n; i++) CHECK_MSG(atomic_load(&j.calls[i]) == runs, "pool %d share %d ran %d times", n, i, atomic_load(&j.calls[i]));

        /* results written by workers are visible to the caller after pool_run */
        static long data[100003];
        long want = 0;
        for (long i = 0; i < 100003; i++) {
            data[i] = (i * 7919) % 1000;
            want += data[i];
        }
        j.data = data;
        j.n = 100003;
        for (int r = 0; r < 100; r++) {
            memset(j.sum, 0xff, sizeof j.sum);
            pool_run(p, sum_fn, &j);
            long got = 0;
            for (int i = 0; i < n; i++) got += j.sum[i];
            if (got != want) {
                CHECK_MSG(got == want, "pool %d run %d: sum %ld, want %ld", n, r, got, want);
                break;
            }
        }
        pool_free(p);
    }
    for (int n = 1; n <= 3; n++) {
        p = NULL;
        CHECK_OK(pool_create(&p, n, &err), &err);
        if (!p) continue;
        static for_job fj;
        const long counts[] = {1, 2, 7, 1000};
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
            for (int r = 0; r < 50; r++) {
                memset(&fj, 0, sizeof fj);
                pool_for(p, counts[ci], for_fn, &fj);
                int bad = 0;
                for (long i = 0; i < 1000; i++) bad += atomic_load(&fj.hits[i]) != (i < counts[ci]);
                if (bad) {
                    CHECK_MSG(!bad, "pool %d pool_for(%ld): %d indices not run exactly once", n, counts[ci], bad);
                    break;
                }
            }
        pool_for(p, 0, for_fn, &fj); /* nothing to do */
        pool_free(p);
    }
    /* free of NULL is a no-op */
    pool_free(NULL);
    return test_result("test_threads");
}
