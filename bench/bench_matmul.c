/* bench_matmul.c — `llava-mech bench matmul [--quick] [-t N] [--tile ROWS]`.
 *
 * Measures, in one run: the plain sgemm peak (2048^3, OpenBLAS with the same thread
 * count), the streaming read bandwidth, then mm_linear at the LLaVA-1.5-7B shapes
 * for F32/F16/Q8_0/Q4_K weights. Prefill shapes are reported as GFLOP/s and as a
 * fraction of the peak (goal >= 0.80); the decode GEMV (n = 1) as time against the
 * time a plain streaming read of the same weight bytes takes with the same threads
 * (goal <= 1.3x). GEMV weights rotate over enough copies to exceed the last-level
 * cache, so they really come from DRAM as in decoding; both sides take their best
 * pass, which filters out preemption by other processes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/matmul.h"
#include "core/quant.h"

typedef struct {
    int64_t n, m, k;
} shape_t;

static const shape_t shapes[] = {
    {577, 1024, 1024}, {577, 4096, 1024}, {600, 4096, 4096}, {600, 11008, 4096}, {1, 4096, 4096},
};
static const int types[] = {QT_F32, QT_F16, QT_Q8_0, QT_Q4_K};

typedef struct {
    unsigned char *w;
    int type;
    int64_t m, k;
    size_t row_bytes;
} fill_job;

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Random weights with sane scales: timing does not depend on the values, and
 * random bytes are much faster to make than running the reference quantizers. */
static void fill_worker(void *arg, int ith, int nth) {
    const fill_job *j = arg;
    const qt_traits *tr = qt_get(j->type);
    long lo, hi;
    pool_split((long)j->m, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        unsigned char *row = j->w + (size_t)r * j->row_bytes;
        uint64_t s = mix((uint64_t)r + 1);
        if (j->type == QT_F32 || j->type == QT_F16) {
            for (int64_t i = 0; i < j->k; i++) {
                s = mix(s + (uint64_t)i);
                const float v = (float)(s & 0xFFFF) / 65536.0f - 0.5f;
                if (j->type == QT_F32) memcpy(row + 4 * i, &v, 4);
                else {
                    const uint16_t h = qt_f32_to_f16(v);
                    memcpy(row + 2 * i, &h, 2);
                }
            }
            continue;
        }
        for (size_t i = 0; i < j->row_bytes; i += 8) {
            s = mix(s + i);
            memcpy(row + i, &s, j->row_bytes - i < 8 ? j->row_bytes - i : 8);
        }
        const uint16_t d = qt_f32_to_f16(0.01f);
        for (int64_t b = 0; b < j->k / tr->block_size; b++) {
            unsigned char *blk = row + (size_t)b * tr->type_size;
            memcpy(blk, &d, 2); /* Q8_0 d, Q4_K d */
            if (j->type == QT_Q4_K) memcpy(blk + 2, &d, 2);
        }
    }
}

static int usage(FILE *f, int code) {
    fprintf(f, "usage: llava-mech bench matmul [--quick] [-t N] [--tile ROWS]\n"
               "  --quick      fewer repetitions and a smaller bandwidth buffer\n"
               "  -t N         threads (default: all online CPUs)\n"
               "  --tile ROWS  override the prefill tile height (tuning)\n");
    return code;
}

int bench_matmul(int argc, char **argv) {
    int quick = 0, threads = 0;
    int64_t tile = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tile") && i + 1 < argc) tile = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout, 0);
        else {
            fprintf(stderr, "llava-mech bench matmul: unknown argument '%s'\n", argv[i]);
            return usage(stderr, 2);
        }
    }
    err_t err = {0};
    mm_ctx_t *ctx = NULL;
    if (mm_ctx_create(&ctx, threads, &err)) {
        fprintf(stderr, "llava-mech bench matmul: %s\n", err.msg);
        return 1;
    }
    const int nth = mm_ctx_threads(ctx);
    mm_ctx_set_tile_rows(ctx, tile);
    bench_print_header(nth);

    const int reps = quick ? 2 : 5;
    const double peak = bench_sgemm_peak(2048, 2 * reps); /* ~60 ms each: cheap, and the reference for every ratio */
    const size_t bw_bytes = (size_t)(quick ? 256 : 512) << 20;
    const double bw = bench_read_bandwidth(bw_bytes, nth, reps);
    printf("sgemm peak (2048^3): %.1f GFLOP/s | streaming read: %.1f GB/s (%zu MiB buffer)\n\n", peak,
           bw * 1e-9, bw_bytes >> 20);
    printf("%-18s %-5s %10s %10s %8s   %s\n", "n x m x k", "type", "ms", "GFLOP/s", "vs peak", "goal");

    int fails = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape_t sh = shapes[si];
        float *X = malloc((size_t)(sh.n * sh.k) * sizeof(float));
        float *Y = malloc((size_t)(sh.n * sh.m) * sizeof(float));
        if (!X || !Y) {
            fprintf(stderr, "llava-mech bench matmul: out of memory\n");
            free(X), free(Y);
            mm_ctx_free(ctx);
            return 1;
        }
        for (int64_t i = 0; i < sh.n * sh.k; i++) X[i] = (float)(i % 101) * 0.01f - 0.5f;
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
            const int t = types[ti];
            const size_t rb = qt_row_size(t, sh.k), wbytes = rb * (size_t)sh.m;
            /* GEMV: enough copies to spill the last-level cache (>= 256 MiB total) */
            const int copies = sh.n == 1 ? (int)((((size_t)256 << 20) + wbytes - 1) / wbytes) : 1;
            unsigned char *w = malloc(wbytes * (size_t)copies);
            if (!w) {
                fprintf(stderr, "llava-mech bench matmul: out of memory for %zu bytes\n", wbytes * (size_t)copies);
                continue;
            }
            for (int c = 0; c < copies; c++) {
                fill_job fj = {w + (size_t)c * wbytes, t, sh.m, sh.k, rb};
                pool_run(mm_ctx_pool(ctx), fill_worker, &fj);
            }
            tensor_t W = {.name = "bench", .type = t, .n_dims = 2, .ne = {sh.k, sh.m, 1, 1}, .nbytes = wbytes};
            /* best single call; GEMV calls rotate over the copies so each one reads
             * its weights from DRAM, like decoding a large model */
            double best = 1e30;
            int calls = sh.n == 1 ? copies * (quick ? 2 : 8) : reps;
            for (int c = -1; c < calls; c++) { /* c = -1 warms up */
                W.data = w + (size_t)((c + copies) % copies) * wbytes;
                const double t0 = bench_now();
                if (mm_linear(ctx, Y, X, sh.n, sh.k, &W, NULL, &err)) {
                    fprintf(stderr, "llava-mech bench matmul: %s\n", err.msg);
                    free(w), free(X), free(Y);
                    mm_ctx_free(ctx);
                    return 1;
                }
                const double dt = bench_now() - t0;
                if (c >= 0 && dt < best) best = dt;
                /* short calls: repeat for ~0.25 s (at most 50) so one quiet run is
                 * likely even when other processes compete */
                if (c == -1 && sh.n > 1 && dt * calls < (quick ? 0.1 : 0.25)) {
                    calls = (int)((quick ? 0.1 : 0.25) / (dt > 1e-6 ? dt : 1e-6)) + 1;
                    if (calls > 50) calls = 50;
                    if (calls < reps) calls = reps;
                }
            }
            /* the GEMV's memory-bound time: stream the same weight copies with the
             * same threads, best pass, measured right here under the same load */
            double stream_best = 1e30;
            if (sh.n == 1)
                for (int c = -1; c < calls; c++) {
                    const double dt = bench_read_time(mm_ctx_pool(ctx), w + (size_t)((c + copies) % copies) * wbytes, wbytes);
                    if (c >= 0 && dt < stream_best) stream_best = dt;
                }
            free(w);
            const double gflops = 2.0 * (double)sh.n * (double)sh.m * (double)sh.k / best * 1e-9;
            char name[48];
            snprintf(name, sizeof name, "%lldx%lldx%lld", (long long)sh.n, (long long)sh.m, (long long)sh.k);
            if (sh.n == 1) {
                const double stream = stream_best;
                const int ok = best <= 1.3 * stream;
                fails += !ok;
                printf("%-18s %-5s %10.3f %10.1f %8s   %.2fx the %.3f ms to stream its %.1f MB (%.1f GB/s) (goal <= 1.30x) %s\n",
                       name, qt_get(t)->name, best * 1e3, gflops, "-", best / stream, stream * 1e3, wbytes * 1e-6,
                       wbytes / stream * 1e-9, ok ? "ok" : "MISSED");
            } else {
                const int ok = gflops >= 0.8 * peak;
                fails += !ok;
                printf("%-18s %-5s %10.2f %10.1f %7.0f%%   >= 80%% %s\n", name, qt_get(t)->name, best * 1e3, gflops,
                       100.0 * gflops / peak, ok ? "ok" : "MISSED");
            }
            fflush(stdout);
        }
        free(X), free(Y);
    }
    printf("\n%d of %zu measurements missed their goal\n", fails, sizeof shapes / sizeof *shapes * (sizeof types / sizeof *types));
    mm_ctx_free(ctx);
    return 0;
}
