/* bench_main.c — `llava-mech bench KIND [ARGS]` dispatch and the helpers shared by
 * every benchmark kind (clock, sgemm peak, memory bandwidth, header line). */
#include <immintrin.h>
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "core/cpu.h"
#include "core/path.h"
#include "core/presets.h"
#include "core/quant.h"
#include "core/threads.h"

static const bench_kind kinds[] = {BENCH_KINDS{NULL, NULL, NULL}};

double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double bench_cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double bench_sgemm_peak(int n, int reps) {
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float));
    float *c = malloc((size_t)n * n * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0.0;
    }
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 17) * 0.01f;
        b[i] = (float)(i % 13) * 0.02f;
    }
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { /* +1: the first run warms up */
        const double t = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        const double dt = bench_now() - t;
        if (r > 0 && dt < best) best = dt;
    }
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint64_t *p, size_t words) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= words; i += 16) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 12)));
    }
    const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, x);
    uint64_t s = out[0] ^ out[1] ^ out[2] ^ out[3];
    for (; i < words; i++) s ^= p[i];
    return s;
}

typedef struct {
    const bench_range *r;
    int n;
    size_t total;
    uint64_t sink[64];
} ranges_job;

static uint64_t read_words(const uint64_t *p, size_t words) {
    if (cpu_level() >= CPU_AVX2) return read_avx2(p, words);
    uint64_t s = 0;
    for (size_t i = 0; i < words; i++) s ^= p[i];
    return s;
}

/* Share ith of the ranges' concatenated bytes (the last share takes the remainder);
 * each piece is read as whole 8-byte words from its first aligned byte. */
static void ranges_worker(void *arg, int ith, int nth) {
    ranges_job *j = arg;
    const size_t lo = j->total / (size_t)nth * (size_t)ith, hi = ith == nth - 1 ? j->total : lo + j->total / (size_t)nth;
    uint64_t s = 0;
    size_t base = 0;
    for (int i = 0; i < j->n && base < hi; base += j->r[i].n, i++) {
        const size_t a = lo > base ? lo - base : 0, b = hi - base < j->r[i].n ? hi - base : j->r[i].n;
        if (a >= b) continue;
        const unsigned char *p = (const unsigned char *)j->r[i].p + a;
        const size_t lead = (8 - ((uintptr_t)p & 7)) & 7;
        if (lead >= b - a) continue;
        s ^= read_words((const uint64_t *)(const void *)(p + lead), (b - a - lead) / 8);
    }
    j->sink[ith % 64] ^= s;
}

double bench_read_ranges(pool_t *pool, const bench_range *r, int n) {
    ranges_job j = {.r = r, .n = n};
    for (int i = 0; i < n; i++) j.total += r[i].n;
    const double t = bench_now();
    pool_run(pool, ranges_worker, &j);
    return bench_now() - t;
}

double bench_read_time(pool_t *pool, const void *buf, size_t bytes) {
    const bench_range r = {buf, bytes};
    return bench_read_ranges(pool, &r, 1);
}

double bench_read_bandwidth(size_t bytes, int threads, int reps) {
    /* The buffer is read in 32 MiB windows and the fastest window counts: a window
     * takes ~1 ms, short enough to often run without being preempted when other
     * processes compete, and the whole buffer (>> last-level cache) sits between two
     * visits of a window, so every window comes from DRAM. */
    const size_t window = (size_t)32 << 20;
    const size_t total_words = bytes / 64 * 8;
    uint64_t *buf = aligned_alloc(64, total_words * 8);
    if (!buf) return 0.0;
    for (size_t i = 0; i < total_words; i++) buf[i] = i * 0x9E3779B97F4A7C15ull;
    pool_t *pool = NULL;
    if (pool_create(&pool, threads, NULL)) {
        free(buf);
        return 0.0;
    }
    double best = 1e30;
    const size_t nwin = total_words * 8 / window;
    for (int r = 0; r < reps + 1; r++)
        for (size_t w = 0; w < nwin; w++) {
            const double dt = bench_read_time(pool, buf + w * (window / 8), window);
            if (r > 0 && dt < best) best = dt;
        }
    pool_free(pool);
    free(buf);
    return (double)window / best;
}

void bench_print_header(int threads) {
    char brand[64];
    cpu_brand(brand, sizeof brand);
    /* other processes make wall-clock numbers meaningless: show the load */
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1;
        fclose(f);
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("cpu: %s | simd: %s | openblas: %s (%s) | threads: %d\n", brand,
           cpu_level_name(cpu_level()), openblas_get_corename(),
           !ct ? "auto-detected"
               : getenv("LLAVA_MECH_BLAS_REEXEC") ? "set by llava-mech" : "OPENBLAS_CORETYPE from environment",
           threads);
    if (load >= 0)
        printf("load average: %.1f%s\n", load,
               load > 1.5 ? " (other processes are running: timings will be low and noisy)" : "");
}

static void usage(FILE *f) {
    fprintf(f, "usage: llava-mech bench KIND [ARGS]\n       llava-mech bench --env   (CPU, SIMD level, OpenBLAS core)\n\nkinds:\n");
    for (size_t i = 0; kinds[i].name; i++) fprintf(f, "  %-10s %s\n", kinds[i].name, kinds[i].summary);
    fprintf(f, "\n'llava-mech bench KIND --help' describes a kind's options.\n");
}

/* `bench --env`: the header line alone (which SIMD level and OpenBLAS core this
 * process runs with) — quick to check the OPENBLAS_CORETYPE handling. */
static int print_env(void) {
    bench_print_header(openblas_get_num_threads());
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--env")) return print_env();
    for (size_t i = 0; kinds[i].name; i++)
        if (!strcmp(argv[1], kinds[i].name)) return kinds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "llava-mech bench: unknown kind '%s' (try 'llava-mech bench --help')\n", argv[1]);
    return 2;
}

const char *bench_default_dir(void) {
    const char *d = getenv("LLAVA_MECH_BENCH_DIR");
    return d ? d : "/tmp/llava-mech-bench";
}

err_code bench_preset_file(const char *dir, const char *preset_name, bool mmproj, int type, char *path, size_t cap,
                           err_t *err) {
    const preset_t *p = preset_find(preset_name);
    if (!p) return err_set(err, ERR_ARG, "unknown preset (tiny, tinyllama-clip-b, llava-1.5-7b)");
    const qt_traits *tr = qt_get(type);
    if (!tr) return err_set(err, ERR_ARG, "unknown weight type %d", type);
    char lower[16];
    snprintf(lower, sizeof lower, "%s", tr->name);
    for (char *ch = lower; *ch; ch++)
        if (*ch >= 'A' && *ch <= 'Z') *ch = (char)(*ch + 32);
    err_code rc = path_mkdir_p(dir, err);
    if (rc) return rc;
    snprintf(path, cap, "%s/%s%s-%s.gguf", dir, mmproj ? "mmproj-" : "", p->name, lower);
    if (access(path, R_OK) == 0) return ERR_OK;
    printf("writing %s (once) ...\n", path);
    fflush(stdout);
    preset_opts o = {mmproj ? QT_F16 : type, mmproj ? type : QT_F16, 1, NULL, NULL};
    return mmproj ? preset_write_mmproj(p, &o, path, err) : preset_write_lm(p, &o, path, err);
}
