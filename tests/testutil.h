/* testutil.h — minimal checks for the C unit tests. Each failed check prints file,
 * line and values and marks the test failed; main returns test_result(). */
#ifndef LLAVA_MECH_TESTUTIL_H
#define LLAVA_MECH_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_;

/* xorshift64: reproducible random numbers for the tests, each test with its own state
 * (and seed). test_rnd: 32 bits; test_rndf: uniform in [-1, 1) with 24 bits. */
static inline uint32_t test_rnd(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)(*state >> 16);
}
static inline float test_rndf(uint64_t *state) {
    return (float)(test_rnd(state) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            test_failures_++;                                                         \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            test_failures_++;                                                         \
        }                                                                             \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                         \
    do {                                                                              \
        double a_ = (a), b_ = (b), t_ = (tol);                                        \
        if (!(fabs(a_ - b_) <= t_)) {                                                 \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g, tol %.3g\n", \
                    __FILE__, __LINE__, #a, a_, #b, b_, t_);                          \
            test_failures_++;                                                         \
        }                                                                             \
    } while (0)

#define CHECK_OK(expr, errp)                                                          \
    do {                                                                              \
        int rc_ = (expr);                                                             \
        if (rc_ != 0) {                                                               \
            fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #expr,  \
                    rc_, (errp)->msg);                                                \
            test_failures_++;                                                         \
        }                                                                             \
    } while (0)

/* Largest |a[i] - b[i]| and largest |a[i]|; a NaN makes the result NaN, so a
 * tolerance check on it fails instead of passing. */
static inline double test_max_diff(const float *a, const float *b, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static inline double test_max_abs(const float *a, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* The whole file, NUL-terminated (the terminator is not counted in *n); NULL when it
 * cannot be opened or fully read. Caller frees. */
static inline void *test_slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    char *p = sz >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)sz + 1) : NULL;
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (!p) return NULL;
    p[sz] = '\0';
    *n = (size_t)sz;
    return p;
}

/* A fresh folder under /tmp for files a test writes (so runs from any directory leave
 * nothing behind); buf holds at least 40 bytes. Returns buf, or NULL on failure. */
static inline char *test_tmpdir(char *buf) {
    snprintf(buf, 40, "/tmp/llava-mech-test-XXXXXX");
    return mkdtemp(buf);
}

/* Removes a folder made by test_tmpdir and everything in it. */
static inline void test_rmdir(const char *dir) {
    char cmd[96];
    if (!dir || strncmp(dir, "/tmp/llava-mech-test-", 21) != 0) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

static inline int test_result(const char *name) {
    if (test_failures_) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures_);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
