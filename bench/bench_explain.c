/* bench_explain.c — `llava-mech bench explain`: what each analysis method costs, as a
 * multiple of one plain forward pass (prefill of the same prompt and image tokens).
 * Default: the shipped toy model on assets/examples/shapes.png; -m/--mmproj take any
 * model, e.g. the llava-1.5-7b preset files written by make-model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/explain_job.h"
#include "bench.h"
#include "cli/cli_util.h"
#include "language/llava.h"

#define fail(msg) cli_fail("bench explain", 1, "%s", (msg))

static int usage(FILE *f, int code) {
    fprintf(f, "usage: llava-mech bench explain [-m LM.gguf --mmproj MMPROJ.gguf] [--image IMG] [-p QUESTION]\n"
               "                                [--methods LIST] [-t N] [--reps R]\n"
               "  Times one plain forward (prefill of prompt + image tokens) and each method of\n"
               "  'explain' on the same input, and prints each method's cost as a multiple of it.\n");
    return code;
}

int bench_explain(int argc, char **argv) {
    const char *lm = NULL, *mmproj = NULL, *image = LM_SOURCE_DIR "/assets/examples/shapes.png";
    const char *question = "What color is the circle?", *methods = "all";
    int threads = 0, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout, 0);
        if (i + 1 >= argc) return usage(stderr, 2);
        const char *v = argv[++i];
        if (!strcmp(a, "-m")) lm = v;
        else if (!strcmp(a, "--mmproj")) mmproj = v;
        else if (!strcmp(a, "--image")) image = v;
        else if (!strcmp(a, "-p")) question = v;
        else if (!strcmp(a, "--methods")) methods = v;
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v) > 0 ? atoi(v) : 1;
        else return usage(stderr, 2);
    }
    err_t err = {0};
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
    int status = 1;
    if (llava_load(&l, &p, &err) || img_load(&img, image, NULL, &err) || llava_encode_img(l, &img, &im, &err) ||
        llava_build_prompt(l, question, &pr, &err))
        goto done;
    bench_print_header(mm_ctx_threads(l->mm));
    printf("model: %s\ninput: %lld positions (%lld image tokens)\n", l->lm_path, (long long)pr.n, (long long)pr.n_image);
    double fwd = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if (llava_prefill(l, &pr, &im, NULL, &err)) goto done;
        double t = bench_now() - t0;
        if (t < fwd) fwd = t;
    }
    printf("plain forward (prefill): %.4f s\n\n%-14s %10s %10s\n", fwd, "method", "seconds", "x forward");
    ex_options opt;
    ex_options_default(&opt);
    /* the shared forward, timed on its own */
    {
        ex_job job = {.l = l, .img = &img, .question = question, .methods = 0, .opt = &opt, .target = -1};
        ex_outcome oc;
        double t0 = bench_now();
        if (ex_job_run(&job, &oc, &err)) goto done;
        double t = bench_now() - t0;
        ex_outcome_free(&oc);
        printf("%-14s %10.4f %10.2f   (encode + recorded prefill)\n", "capture", t, t / fwd);
    }
    for (int m = 0; m < EX_N_METHODS; m++) {
        if (!(mask & (1u << m))) continue;
        ex_job job = {.l = l, .img = &img, .question = question, .methods = 1u << m, .opt = &opt, .target = -1,
                      .vit_side = true};
        ex_outcome oc;
        if (ex_job_run(&job, &oc, &err)) goto done;
        for (int i = 0; i < oc.n_results; i++)
            printf("%-14s %10.4f %10.2f\n", ex_method_name(oc.results[i].method), oc.seconds[i], oc.seconds[i] / fwd);
        ex_outcome_free(&oc);
    }
    status = 0;
done:
    if (status) fail(err.msg);
    llava_prompt_free(&pr);
    llava_image_free(&im);
    img_free(&img);
    llava_free(l);
    return status;
}
