/* bench_explain.c — `llava-mech bench explain`: what each analysis method costs, as a
 * multiple of one plain forward pass (prefill of the same prompt and image tokens).
 * Default: the shipped toy model on assets/examples/shapes.png; -m/--mmproj or
 * --preset/--type take any model, e.g. the llava-1.5-7b preset files.
 *
 * Every method runs once on one shared capture (one explain job). Occlusion can then be
 * timed again per batch size and space. On a large model a full occlusion sweep takes
 * hours: --occ-sample K runs only K batches spread over the sweep, and the full cost is
 * extrapolated as measured seconds x (positions the full sweep recomputes) / (positions
 * the K batches recomputed) — each copy's cost is proportional to the rows it
 * recomputes. Such lines are marked as extrapolated, with both figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analysis/explain_job.h"
#include "bench.h"
#include "cli/cli_util.h"
#include "core/path.h"
#include "core/presets.h"
#include "core/quant.h"
#include "language/llava.h"

#define fail(msg) cli_fail("bench explain", 1, "%s", (msg))

#define MAX_BATCHES 16

static int usage(FILE *f, int code) {
    fprintf(f, "usage: llava-mech bench explain [-m LM.gguf --mmproj MMPROJ.gguf | --preset P --type T [--dir D]]\n"
               "                                [--image IMG] [-p QUESTION] [--methods LIST] [-t N] [--reps R]\n"
               "                                [--occ-batch B[,B...]] [--occ-space tokens|pixels|both]\n"
               "                                [--occ-sample K] [--layers N]\n"
               "  Times one plain forward (prefill of prompt + image tokens) and each method of\n"
               "  'explain' on the same input, and prints each method's cost as a multiple of it.\n"
               "  --occ-batch LIST  also time occlusion with each of these batch sizes\n"
               "  --occ-space S     the space(s) of those extra occlusion runs (default tokens)\n"
               "  --occ-sample K    occlusion runs only K batches spread over the sweep; the full\n"
               "                    sweep's cost is extrapolated by recomputed positions (large models)\n"
               "  --preset P --type T  llava-1.5-7b, tinyllama-clip-b or tiny preset files in D\n"
               "                    (default $LLAVA_MECH_BENCH_DIR or /tmp/llava-mech-bench), written once\n"
               "  --layers N        with --preset: an LM of the preset's widths with only N layers\n"
               "                    (D/P-Nlayers-T.gguf), when the full model is too slow to sweep\n");
    return code;
}

static double json_num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

typedef struct {
    double wall, cpu;
} cost_t;

static void print_cost(const char *label, cost_t c, cost_t fwd, const char *note) {
    printf("%-26s %9.4f %9.2f %9.4f %9.2f   %s\n", label, c.wall, c.wall / fwd.wall, c.cpu, c.cpu / fwd.cpu, note);
    fflush(stdout); /* long runs: show each line as it comes */
}

/* The preset's LM with only its first n_layer layers (same widths, vocabulary and
 * prompt), written once into dir: a stand-in where the full model is too slow to
 * sweep. Every per-layer cost shrinks alike; the head and the vision tower do not. */
static err_code variant_file(const char *dir, const char *name, int n_layer, const char *type_name, char *path,
                             size_t cap, err_t *err) {
    const preset_t *base = preset_find(name);
    const int type = qt_from_name(type_name);
    if (!base || type < 0) return err_set(err, ERR_ARG, "unknown preset or type");
    if (n_layer > base->n_layer)
        return err_set(err, ERR_ARG, "--layers %d: the preset has %d layers", n_layer, base->n_layer);
    preset_t p = *base;
    p.n_layer = n_layer;
    err_code rc = path_mkdir_p(dir, err);
    if (rc) return rc;
    snprintf(path, cap, "%s/%s-%dlayers-%s.gguf", dir, name, n_layer, type_name);
    if (access(path, R_OK) == 0) return ERR_OK;
    printf("writing %s (once) ...\n", path);
    fflush(stdout);
    preset_opts o = {type, QT_F16, 1, NULL, NULL};
    return preset_write_lm(&p, &o, path, err);
}

/* One occlusion line: measured cost, or the extrapolated full sweep when partial. */
static void print_occlusion(const char *label, const ex_result *r, cost_t c, cost_t fwd) {
    const double run = json_num(r->json, "rows_run"), full = json_num(r->json, "rows_full_sweep");
    const int nb = (int)json_num(r->json, "batches"), nr = (int)json_num(r->json, "batches_run");
    char note[256];
    if (nr >= nb || run <= 0) {
        snprintf(note, sizeof note, "(%d batches, %.0f positions recomputed)", nb, full);
        print_cost(label, c, fwd, note);
        return;
    }
    snprintf(note, sizeof note,
             "EXTRAPOLATED x %.2f from %.4f s wall / %.4f s cpu measured on %d of %d batches (%.0f of %.0f "
             "positions recomputed)",
             full / run, c.wall, c.cpu, nr, nb, run, full);
    print_cost(label, (cost_t){c.wall * full / run, c.cpu * full / run}, fwd, note);
}

int bench_explain(int argc, char **argv) {
    const char *lm = NULL, *mmproj = NULL, *image = LM_SOURCE_DIR "/assets/examples/shapes.png";
    const char *question = "What color is the circle?", *methods = "all", *space_arg = "tokens";
    const char *preset = NULL, *type_name = "q4_k", *dir = bench_default_dir();
    int threads = 0, reps = 3, sample = 0, n_batch = 0, batches[MAX_BATCHES], layers = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout, 0);
        if (i + 1 >= argc) return usage(stderr, 2);
        const char *v = argv[++i];
        unsigned long long u = 0;
        if (!strcmp(a, "-m")) lm = v;
        else if (!strcmp(a, "--mmproj")) mmproj = v;
        else if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--image")) image = v;
        else if (!strcmp(a, "-p")) question = v;
        else if (!strcmp(a, "--methods")) methods = v;
        else if (!strcmp(a, "--occ-space")) space_arg = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--reps") || !strcmp(a, "--occ-sample") || !strcmp(a, "--layers")) {
            if (!cli_parse_u64(v, &u) || u < 1 || u > 4096)
                return fail("-t, --reps, --occ-sample and --layers expect 1..4096"), 2;
            if (!strcmp(a, "-t")) threads = (int)u;
            else if (!strcmp(a, "--reps")) reps = (int)u;
            else if (!strcmp(a, "--layers")) layers = (int)u;
            else sample = (int)u;
        } else if (!strcmp(a, "--occ-batch")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                if (n_batch == MAX_BATCHES || !cli_parse_u64(t, &u) || u < 1 || u > 4096)
                    return fail("--occ-batch expects up to 16 comma-separated sizes in 1..4096"), 2;
                batches[n_batch++] = (int)u;
            }
        } else
            return usage(stderr, 2);
    }
    const bool space_tok = !strcmp(space_arg, "tokens") || !strcmp(space_arg, "both");
    const bool space_pix = !strcmp(space_arg, "pixels") || !strcmp(space_arg, "both");
    if (!space_tok && !space_pix) return fail("--occ-space must be tokens, pixels or both"), 2;
    err_t err = {0};
    char lm_path[4096], mp_path[4096];
    if (preset) {
        const int type = qt_from_name(type_name);
        if (type < 0 || preset_file_type(type) < 0) return fail("unknown --type (f32, f16, q8_0, q4_0, q4_k)");
        if ((layers ? variant_file(dir, preset, layers, type_name, lm_path, sizeof lm_path, &err)
                    : bench_preset_file(dir, preset, false, type, lm_path, sizeof lm_path, &err)) ||
            bench_preset_file(dir, preset, true, QT_F16, mp_path, sizeof mp_path, &err))
            return fail(err.msg);
        lm = lm_path;
        mmproj = mp_path;
    }
    unsigned mask = 0;
    if (ex_methods_parse(methods, &mask, &err)) return fail(err.msg);
    llava_params_t p = llava_default_params();
    p.lm_path = lm;
    p.mmproj_path = mmproj;
    p.n_threads = threads;
    llava_t *l = NULL;
    img_t img = {0};
    llava_image_t im = {0};
    llava_prompt_t pr = {0};
    ex_outcome oc = {0};
    int status = 1;
    if (llava_load(&l, &p, &err) || img_load(&img, image, NULL, &err) || llava_encode_img(l, &img, &im, &err) ||
        llava_build_prompt(l, question, &pr, &err))
        goto done;
    bench_print_header(mm_ctx_threads(l->mm));
    printf("model: %s\ninput: %lld positions (%lld image tokens)\n", l->lm_path, (long long)pr.n, (long long)pr.n_image);
    cost_t fwd = {1e30, 1e30};
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now(), c0 = bench_cpu_now();
        if (llava_prefill(l, &pr, &im, NULL, &err)) goto done;
        double t = bench_now() - t0, c = bench_cpu_now() - c0;
        if (t < fwd.wall) fwd.wall = t;
        if (c < fwd.cpu) fwd.cpu = c;
    }
    printf("plain forward (prefill): %.4f s wall, %.4f s cpu (best of %d)\n"
           "cpu = process CPU time of all threads (robust to other processes; with -t 1 it is the work done)\n\n"
           "%-26s %9s %9s %9s %9s\n",
           fwd.wall, fwd.cpu, reps, "method", "wall s", "x fwd", "cpu s", "x fwd");
    ex_options opt;
    ex_options_default(&opt);
    opt.occ_sample = sample;
    ex_job job = {.l = l, .img = &img, .question = question, .methods = mask, .opt = &opt, .target = -1,
                  .vit_side = true};
    double t0 = bench_now(), c0 = bench_cpu_now();
    if (ex_job_run(&job, &oc, &err)) goto done;
    cost_t capture = {bench_now() - t0, bench_cpu_now() - c0};
    for (int i = 0; i < oc.n_results; i++) capture.wall -= oc.seconds[i], capture.cpu -= oc.cpu_seconds[i];
    print_cost("capture", capture, fwd, "(encode + prompt + recorded prefill)");
    for (int i = 0; i < oc.n_results; i++) {
        const ex_result *r = &oc.results[i];
        const cost_t c = {oc.seconds[i], oc.cpu_seconds[i]};
        if (r->method == EX_OCCLUSION) {
            char label[64];
            snprintf(label, sizeof label, "occlusion (B=%d, tokens)", EX_OCC_BATCH_DEFAULT);
            print_occlusion(label, r, c, fwd);
        } else {
            print_cost(ex_method_name(r->method), c, fwd, "");
        }
    }
    /* occlusion again on the same capture, per batch size and space */
    ex_input in;
    ex_job_input(&job, &oc, &in);
    for (int sp = 0; sp < 2; sp++) {
        if (!(sp == 0 ? space_tok : space_pix)) continue;
        for (int k = 0; k < n_batch; k++) {
            ex_options o2 = opt;
            o2.occ_batch = batches[k];
            o2.occ_space = sp == 0 ? EX_OCC_TOKENS : EX_OCC_PIXELS;
            ex_result r;
            double t1 = bench_now(), c1 = bench_cpu_now();
            if (ex_run(EX_OCCLUSION, &in, &oc.cap, &o2, &r, &err)) goto done;
            const cost_t c = {bench_now() - t1, bench_cpu_now() - c1};
            char label[64];
            snprintf(label, sizeof label, "occlusion (B=%d, %s)", batches[k], ex_occ_space_name(o2.occ_space));
            print_occlusion(label, &r, c, fwd);
            ex_result_free(&r);
        }
    }
    status = 0;
done:
    if (status) fail(err.msg);
    ex_outcome_free(&oc);
    llava_prompt_free(&pr);
    llava_image_free(&im);
    img_free(&img);
    llava_free(l);
    return status;
}
