/* bench_vision.c — `llava-mech bench encode`: image-encode time of the vision tower +
 * projector and its FLOP rate against the same run's sgemm peak.
 *
 * Default model: the llava-1.5-7b preset's mmproj (CLIP ViT-L/14 at 336 px, 23 stored
 * blocks, F16 weights, 4096-wide projector), written once to --dir by the preset writer
 * when absent. FLOPs (vit_flops): 2 per multiply-add of the patch embedding, every
 * block's q/k/v/o and MLP matmuls, attention (QK^T and AV) and the projector. The
 * time is the best of --reps forwards after a warm-up forward that touches every
 * weight page; preprocessing (a 640x480 photo-like image, pad pipeline) is timed
 * separately. Goal: >= 0.70 of the sgemm peak.
 *
 * Hook cost: vit.h promises that capturing nothing costs nothing. The bench times, in
 * interleaved rounds, forwards with no hook set, with an empty set, with a set of two
 * patterns that match no vision point (the emit check then formats and matches every
 * point's name), and, for comparison, capturing every attention pattern; it prints
 * process-CPU and wall best-of times and their ratios to "no set".
 * `--hooks none|empty|nomatch|pattern` runs the warm-up and timed forwards with
 * that set, so an instruction count can compare them in separate processes:
 *   valgrind --tool=callgrind --toggle-collect=vit_forward \
 *       llava-mech bench encode --mmproj M -t 1 --reps 1 --no-extras --hooks none|empty|nomatch
 * counts the instructions of exactly two forwards (warm-up and timed) with that set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/matmul.h"
#include "core/presets.h"
#include "core/hook.h"
#include "core/quant.h"
#include "vision/image.h"
#include "vision/preprocess.h"
#include "vision/vit.h"

#include "cli/cli_util.h"
#define fail(msg) cli_fail("bench encode", 1, "%s", (msg))

static int usage(FILE *f, int code) {
    fprintf(f, "usage: llava-mech bench encode [--mmproj FILE] [--preset P] [--type f16|f32] [--dir DIR] [-t N]\n"
               "                               [--reps N] [--pipeline pad|crop|llamacpp]\n"
               "  --mmproj FILE  benchmark this mmproj instead of a preset's\n"
               "  --preset P     llava-1.5-7b (default: ViT-L/14 336 px), tinyllama-clip-b, tiny\n"
               "  --type T       mmproj weight type of the generated file (default f16)\n"
               "  --dir DIR      where generated files are kept (default $LLAVA_MECH_BENCH_DIR or\n"
               "                 /tmp/llava-mech-bench)\n"
               "  -t N           threads (default: all online CPUs); --reps N timed forwards (default 3)\n"
               "  --hooks H      none (default), empty, nomatch or pattern: the hook set of the timed\n"
               "                 forwards (the hook-cost line compares all four either way)\n"
               "  --no-extras    only the warm-up and timed forwards: no sgemm peak, hook-cost line or\n"
               "                 breakdown (for instruction counts, e.g. under callgrind)\n");
    return code;
}

/* Per-stage wall time from hook timestamps: the time between consecutive hook points
 * is charged to the stage that ends at the later one. */
enum { ST_EMBED, ST_LN, ST_QKV, ST_ATT, ST_OUT, ST_FC1, ST_FC2, ST_PROJ, ST_N };
static const char *const stage_names[ST_N] = {"patch embed + pos", "layernorms + residual", "q/k/v matmuls",
                                              "attention (QK^T, softmax, AV)", "out projection", "fc1 + activation",
                                              "fc2", "projector"};
typedef struct {
    double last, t[ST_N];
} stage_timer;

static int stage_hook(void *user, const hook_info *info, float *data) {
    (void)data;
    stage_timer *s = user;
    double now = bench_now();
    const char *n = info->name, *dot = strrchr(n, '.');
    int st = ST_LN;
    if (!strcmp(n, "v.embed")) st = ST_EMBED;
    else if (!strncmp(n, "mm.", 3)) st = ST_PROJ;
    else if (strstr(n, ".attn.q")) st = ST_QKV;
    else if (strstr(n, ".attn.k") || strstr(n, ".attn.v")) st = ST_QKV;
    else if (strstr(n, ".attn.pattern")) st = ST_ATT;
    else if (strstr(n, ".attn_out")) st = ST_OUT;
    else if (strstr(n, ".mlp.hidden")) st = ST_FC1;
    else if (dot && !strcmp(dot, ".resid_post")) st = ST_FC2;
    s->t[st] += now - s->last;
    s->last = bench_now();
    return 0;
}

static int dont_match(void *user, const hook_info *info, float *data) {
    (void)info, (void)data;
    (*(long *)user)++;
    return 0;
}

int bench_encode(int argc, char **argv) {
    const char *preset_name = "llava-1.5-7b", *type_name = "f16", *mmproj = NULL;
    const char *dir = bench_default_dir();
    int threads = 0, reps = 3, pipe = PP_PAD, hooks_kind = 0, extras = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout, 0);
        if (!strcmp(a, "--no-extras")) {
            extras = 0;
            continue;
        }
        if (i + 1 >= argc) return usage(stderr, 2);
        const char *v = argv[++i];
        char *end = NULL;
        if (!strcmp(a, "--mmproj")) mmproj = v;
        else if (!strcmp(a, "--preset")) preset_name = v;
        else if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--hooks")) {
            hooks_kind = !strcmp(v, "none")      ? 0
                         : !strcmp(v, "empty")   ? 1
                         : !strcmp(v, "nomatch") ? 2
                         : !strcmp(v, "pattern") ? 3
                                                 : -1;
            if (hooks_kind < 0) return fail("--hooks expects none, empty, nomatch or pattern");
        } else if (!strcmp(a, "--pipeline")) {
            pipe = pp_pipeline_from_name(v);
            if (pipe < 0) return fail("--pipeline expects pad, crop or llamacpp");
        } else if (!strcmp(a, "-t")) {
            threads = (int)strtol(v, &end, 10);
            if (*end || threads < 1) return fail("-t expects a positive thread count");
        } else if (!strcmp(a, "--reps")) {
            reps = (int)strtol(v, &end, 10);
            if (*end || reps < 1 || reps > 1000) return fail("--reps expects 1..1000");
        } else
            return usage(stderr, 2);
    }
    err_t e = {0};
    char path[4096];
    if (mmproj) {
        snprintf(path, sizeof path, "%s", mmproj);
    } else {
        int type = qt_from_name(type_name);
        if (type != QT_F16 && type != QT_F32) return fail("--type expects f16 or f32");
        if (bench_preset_file(dir, preset_name, true, type, path, sizeof path, &e)) return fail(e.msg);
    }

    mm_ctx_t *mm = NULL;
    vit_t *v = NULL;
    vit_state_t st = {0};
    img_t im = {0};
    int rc = 0;
    if (mm_ctx_create(&mm, threads, &e)) return fail(e.msg);
    const int nth = mm_ctx_threads(mm);
    bench_print_header(nth);
    /* --no-extras runs are for instruction counts (under valgrind the peak's 22 GFLOP
     * take many minutes): no peak, no ratio */
    const double peak = extras ? bench_sgemm_peak(1536, 3) * 1e9 : 0;
    if (extras) printf("sgemm peak %.1f GFLOP/s\n", peak * 1e-9);
    if (vit_load(&v, path, &e) || vit_state_create(&st, v, &e)) {
        rc = fail(e.msg);
        goto done;
    }
    const vit_config *c = vit_get_config(v);
    const gguf_t *g = vit_gguf(v);
    const tensor_t *wq = gguf_find_tensor(g, "v.blk.0.attn_q.weight");
    printf("mmproj %s: %dpx/%d, width %d, %d heads, ffn %d, %d/%d blocks run, projector %d -> %d, %s weights\n", path,
           c->image_size, c->patch_size, c->d, c->n_head, c->n_ff, c->n_run, c->n_stored, c->d_proj_hidden, c->d_out,
           wq && qt_get(wq->type) ? qt_get(wq->type)->name : "?");
    printf("activation arena %.1f MB\n", (double)st.arena.cap / 1e6);

    /* a smooth photo-like 640x480 image */
    if (img_create(&im, 640, 480, &e)) {
        rc = fail(e.msg);
        goto done;
    }
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++) {
            uint8_t *p = im.rgb + ((size_t)y * im.w + x) * 3;
            p[0] = (uint8_t)(128 + 100 * sin(x * 0.02) * cos(y * 0.015));
            p[1] = (uint8_t)(x * 255 / im.w);
            p[2] = (uint8_t)((x ^ y) & 0xff);
        }
    pp_geom geom;
    double t0 = bench_now();
    if (pp_run(&im, (pp_pipeline)pipe, c->image_size, c->patch_size, c->image_mean, c->image_std, st.pixels, &geom,
               &e)) {
        rc = fail(e.msg);
        goto done;
    }
    const double t_pre = bench_now() - t0;
    /* the hook sets of the hook-cost line; `hook_sets[hooks_kind]` for the timed runs. The
     * fourth captures every attention pattern with a callback that does nothing: what
     * reading patterns costs (the pattern is hashed before and after its callbacks, to
     * recompute the block from an edited one, vit.c) */
    hook_set_t empty_set, nomatch_set, pattern_set;
    hook_set_init(&empty_set);
    hook_set_init(&nomatch_set);
    hook_set_init(&pattern_set);
    long pattern_calls = 0;
    long nomatch_calls = 0;
    if (hook_add(&nomatch_set, "blk.*.attn.pattern", dont_match, &nomatch_calls, &e) ||
        hook_add(&nomatch_set, "v.blk.99999.*", dont_match, &nomatch_calls, &e) ||
        hook_add(&pattern_set, "v.blk.*.attn.pattern", dont_match, &pattern_calls, &e)) {
        rc = fail(e.msg);
        goto done;
    }
    enum { N_SETS = 4 };
    const hook_set_t *hook_sets[N_SETS] = {NULL, &empty_set, &nomatch_set, &pattern_set};
    static const char *const hook_names[N_SETS] = {"no hook set", "empty hook set", "2 non-matching patterns",
                                                   "capturing every attention pattern"};
    const hook_set_t *timed_hooks = hook_sets[hooks_kind];
    /* warm-up: reads every weight page of the mmap once */
    t0 = bench_now();
    if (vit_forward(v, &st, mm, st.pixels, timed_hooks, NULL, &e)) {
        rc = fail(e.msg);
        goto done;
    }
    const double t_warm = bench_now() - t0;
    double best = INFINITY, sum = 0;
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        if (vit_forward(v, &st, mm, st.pixels, timed_hooks, NULL, &e)) {
            rc = fail(e.msg);
            goto done;
        }
        double t = bench_now() - t0;
        sum += t;
        if (t < best) best = t;
    }
    const double flops = vit_flops(c);
    printf("preprocess 640x480 -> %d (%s): %.1f ms\n", c->image_size, pp_pipeline_name(geom.pipeline), t_pre * 1e3);
    printf("encode %d patches -> %d x %d tokens: best %.3f s, mean %.3f s (warm-up %.3f s), %.1f GFLOP\n",
           c->n_patches, c->n_patches, c->d_out, best, sum / reps, t_warm, flops * 1e-9);
    printf("encode rate %.1f GFLOP/s", flops / best * 1e-9);
    if (extras) printf(" = %.2f of sgemm peak (goal >= 0.70)", flops / best / peak);
    else printf(" (no sgemm peak measured with --no-extras)");
    printf("%s%s\n", hooks_kind ? ", timed with " : "", hooks_kind ? hook_names[hooks_kind] : "");

    if (!extras) goto done;
    /* hook cost: rounds of one forward per set, rotating which goes first */
    double cpu_best[N_SETS], wall_best[N_SETS];
    for (int h = 0; h < N_SETS; h++) cpu_best[h] = wall_best[h] = INFINITY;
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < N_SETS; k++) {
            const int h = (k + r) % N_SETS;
            const double c0 = bench_cpu_now(), w0 = bench_now();
            if (vit_forward(v, &st, mm, st.pixels, hook_sets[h], NULL, &e)) {
                rc = fail(e.msg);
                goto done;
            }
            const double dc = bench_cpu_now() - c0, dw = bench_now() - w0;
            if (dc < cpu_best[h]) cpu_best[h] = dc;
            if (dw < wall_best[h]) wall_best[h] = dw;
        }
    if (nomatch_calls != 0) {
        rc = fail("a non-matching hook was called");
        goto done;
    }
    printf("hook cost (best of %d, process CPU / wall, ms):", reps);
    for (int h = 0; h < N_SETS; h++)
        printf("%s %s %.3f / %.3f (x%.4f / x%.4f)", h ? ";" : "", hook_names[h], cpu_best[h] * 1e3, wall_best[h] * 1e3,
               cpu_best[h] / cpu_best[0], wall_best[h] / wall_best[0]);
    printf("\n");

    /* one more forward with timing hooks for the breakdown */
    hook_set_t hs;
    hook_set_init(&hs);
    stage_timer timer = {0};
    if (hook_add(&hs, "*", stage_hook, &timer, &e)) {
        rc = fail(e.msg);
        goto done;
    }
    timer.last = bench_now();
    t0 = timer.last;
    if (vit_forward(v, &st, mm, st.pixels, &hs, NULL, &e)) {
        rc = fail(e.msg);
        goto done;
    }
    const double t_hooked = bench_now() - t0;
    printf("breakdown of one forward (%.3f s):\n", t_hooked);
    for (int i = 0; i < ST_N; i++)
        printf("  %-30s %7.3f s  %5.1f%%\n", stage_names[i], timer.t[i], 100.0 * timer.t[i] / t_hooked);
done:
    img_free(&im);
    vit_state_free(&st);
    vit_free(v);
    mm_ctx_free(mm);
    return rc;
}
