/* cmd_vqa.c — `llava-mech vqa`: the VQA regression runner (toy/vqa.h) driving a
 * LLaVA through language/llava.h, and `llava-mech vqa merge` for shard outputs.
 * Exit codes: 0 ok, 1 error, 2 usage, 3 accuracy below --expect. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis/explain_job.h"
#include "commands.h"
#include "language/llava.h"
#include "toy/vqa.h"

#include "cli_util.h"
#include "core/path.h"
#define fail(code, ...) cli_fail("vqa", code, __VA_ARGS__)

enum { EXIT_USAGE = 2, EXIT_REGRESSION = 3 };

static void vqa_usage(FILE *f) {
    fprintf(f,
            "usage: llava-mech vqa DATASET.jsonl -o OUTDIR [-m LM.gguf --mmproj MMPROJ.gguf]\n"
            "                      [--expect SUMMARY.json] [--tolerance X] [--shard I/N] [--limit K]\n"
            "                      [--threads T] [--pipeline pad|crop] [--n-predict K]\n"
            "                      [--explain METHODS [--occ-block K --occ-stride S]]\n"
            "       llava-mech vqa merge SHARD_OUTDIR... -o OUTDIR [--allow-partial]\n"
            "                      [--expect SUMMARY.json] [--tolerance X]\n"
            "\n"
            "Answers every question of DATASET.jsonl (one JSON per line with image, question,\n"
            "answer, optional id and type; the format 'toy generate' writes) greedily and\n"
            "compares the first word of the answer with the expected one, ignoring case and\n"
            "punctuation. Writes OUTDIR/results.jsonl (one line per example) and\n"
            "OUTDIR/summary.json (accuracy overall and per type, confusion of answers per type,\n"
            "model files with sizes and SHA-256, pipeline, data set, shard).\n"
            "  -m, --mmproj    model files (default: the shipped toy model)\n"
            "  --expect FILE   a summary.json to hold the run to: exit 3 when the overall or any\n"
            "                  type's accuracy is below the recorded one by more than --tolerance\n"
            "  --tolerance X   allowed accuracy drop (default 0.01)\n"
            "  --shard I/N     run only the I-th of N contiguous blocks (0 <= I < N), e.g. one per\n"
            "                  machine; combine the outputs with 'vqa merge'\n"
            "  --limit K       only the first K examples (applied before sharding)\n"
            "  -t, --threads T CPU threads (default: all)\n"
            "  --pipeline P    image preprocessing: pad (default, llama.cpp) or crop (HF)\n"
            "  --max-side N    refuse images wider or taller than N pixels (default 16384)\n"
            "  --n-predict K   max generated tokens per answer (default 8)\n"
            "  --occ-block K, --occ-stride S  occlusion block and stride in patches (default 1)\n"
            "  --baseline B    occlusion baseline: auto (default: <LM>.mean-embd.npy if present,\n"
            "                  else zero), zero or FILE.npy, as in 'explain'\n"
            "  --explain M     also explain every answer whose example names a target object\n"
            "                  (methods as in 'explain', e.g. occlusion,knockout or all) and score\n"
            "                  each map: pointing game (top patch inside the object's mask dilated by\n"
            "                  one patch) and mass in mask; per example in results.jsonl, per method\n"
            "                  and type in summary.json (\"explain\")\n"
            "merge: concatenates shard outputs (same data set, model and pipeline; every shard\n"
            "0..N-1 present unless --allow-partial) and recomputes the summary.\n"
            "Exit status: 0 ok, 1 error, 2 bad arguments, 3 accuracy below --expect.\n");
}

static bool parse_size(const char *s, size_t *out) {
    unsigned long long v;
    if (!cli_parse_u64(s, &v) || v > SIZE_MAX) return false;
    *out = (size_t)v;
    return true;
}

/* Prints the summary table on stdout. */
static void print_summary(const cJSON *s) {
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(s, "per_type");
    printf("%-10s %6s %8s %9s\n", "type", "n", "correct", "accuracy");
    for (const cJSON *t = per ? per->child : NULL; t; t = t->next)
        printf("%-10s %6.0f %8.0f %9.4f\n", t->string, cJSON_GetObjectItemCaseSensitive(t, "n")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(t, "correct")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(t, "accuracy")->valuedouble);
    printf("%-10s %6.0f %8.0f %9.4f\n", "overall", cJSON_GetObjectItemCaseSensitive(s, "n")->valuedouble,
           cJSON_GetObjectItemCaseSensitive(s, "correct")->valuedouble,
           cJSON_GetObjectItemCaseSensitive(s, "accuracy")->valuedouble);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(s, "explain");
    if (!ex) return;
    printf("\n%-14s %6s %9s %14s\n", "explain", "n", "pointing", "mass in mask");
    for (const cJSON *m = ex->child; m; m = m->next)
        printf("%-14s %6.0f %9.4f %14.4f\n", m->string, cJSON_GetObjectItemCaseSensitive(m, "n")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(m, "pointing")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(m, "mass")->valuedouble);
    const cJSON *types = ex->child ? cJSON_GetObjectItemCaseSensitive(ex->child, "per_type") : NULL;
    if (!types || !types->child) return;
    printf("\n%-14s", "pointing by type");
    for (const cJSON *t = types->child; t; t = t->next) printf(" %9s", t->string);
    putchar('\n');
    for (const cJSON *m = ex->child; m; m = m->next) {
        const cJSON *per_m = cJSON_GetObjectItemCaseSensitive(m, "per_type");
        printf("%-14s", m->string);
        for (const cJSON *t = types->child; t; t = t->next) {
            const cJSON *v = per_m ? cJSON_GetObjectItemCaseSensitive(per_m, t->string) : NULL;
            const cJSON *pt = v ? cJSON_GetObjectItemCaseSensitive(v, "pointing") : NULL;
            if (cJSON_IsNumber(pt)) printf(" %9.4f", pt->valuedouble);
            else printf(" %9s", "-");
        }
        putchar('\n');
    }
}

/* --expect: 0 when met, EXIT_REGRESSION (after one stderr line per failure), 1 on a
 * bad expectation file. */
static int check_expect(const cJSON *summary, const char *expect_path, double tol) {
    if (!expect_path) return 0;
    err_t err = {0};
    cJSON *want = NULL;
    if (vqa_json_load(&want, expect_path, &err)) return fail(1, "--expect: %s", err.msg);
    char report[4096];
    int n = vqa_expect(summary, want, tol, report, sizeof report);
    cJSON_Delete(want);
    if (n < 0) return fail(1, "--expect: %s has no \"accuracy\" (not a vqa summary.json)", expect_path);
    if (n == 0) {
        printf("expectation met: %s (tolerance %.4f)\n", expect_path, tol);
        return 0;
    }
    for (char *line = strtok(report, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(stderr, "llava-mech vqa: regression: %s (expected from %s)\n", line, expect_path);
    return EXIT_REGRESSION;
}

static bool parse_tolerance(const char *s, double *tol) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= 0 && v <= 1)) return false;
    *tol = v;
    return true;
}

static int vqa_merge_cmd(int argc, char **argv) {
    const char *out = NULL, *expect = NULL;
    double tol = 0.01;
    bool partial = false;
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    int n_dirs = 0;
    if (!dirs) return fail(1, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            free(dirs);
            vqa_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && has_val) {
            out = argv[++i];
        } else if (!strcmp(a, "--expect") && has_val) {
            expect = argv[++i];
        } else if (!strcmp(a, "--tolerance") && has_val) {
            if (!parse_tolerance(argv[++i], &tol)) {
                free(dirs);
                return fail(EXIT_USAGE, "--tolerance: '%s' is not a number in [0, 1]", argv[i]);
            }
        } else if (!strcmp(a, "--allow-partial")) {
            partial = true;
        } else if (a[0] == '-') {
            free(dirs);
            return fail(EXIT_USAGE, "merge: unknown or incomplete option '%s' (see --help)", a);
        } else {
            dirs[n_dirs++] = a;
        }
    }
    if (!out || !n_dirs) {
        free(dirs);
        return fail(EXIT_USAGE, "merge: needs shard folders and -o OUTDIR (see --help)");
    }
    err_t err = {0};
    err_code rc = vqa_merge(dirs, n_dirs, out, partial, &err);
    free(dirs);
    if (rc) return fail(1, "merge: %s", err.msg);
    char path[4200];
    snprintf(path, sizeof path, "%s/summary.json", out);
    cJSON *s = NULL;
    if (vqa_json_load(&s, path, &err)) return fail(1, "%s", err.msg);
    print_summary(s);
    int code = check_expect(s, expect, tol);
    cJSON_Delete(s);
    return code;
}

typedef struct {
    llava_t *l;
    llava_gen_params_t g;
} model_ctx;

static err_code ask_model(void *vctx, const char *image_path, const char *question, char *answer, size_t cap,
                          err_t *err) {
    model_ctx *c = vctx;
    llava_answer_t a;
    err_code rc = llava_ask(c->l, image_path, question, &c->g, &a, err);
    if (!rc) snprintf(answer, cap, "%s", a.text ? a.text : "");
    llava_answer_free(&a);
    return rc;
}

typedef struct {
    llava_t *l;
    unsigned methods;
    ex_options opt;
} explain_ctx;

/* Explains the example's answer and scores each map against the target's mask (or box). */
static err_code explain_example(void *vctx, const vqa_example *e, cJSON **out, err_t *err) {
    explain_ctx *c = vctx;
    *out = NULL;
    if (!e->has_target) return ERR_OK;
    img_t img = {0}, mask = {0};
    err_code rc = llava_load_image(c->l, e->image_path, &img, err);
    if (!rc && e->mask_path) rc = img_load(&mask, e->mask_path, NULL, err);
    ex_outcome oc;
    ex_job job = {.l = c->l, .img = &img, .question = e->question, .methods = c->methods, .opt = &c->opt,
                  .target = -1, .bbox = e->target_bbox, .vit_side = true};
    if (!rc) rc = ex_job_run(&job, &oc, err);
    if (!rc) {
        uint8_t *labels = NULL;
        if (mask.rgb && mask.w == img.w && mask.h == img.h) {
            labels = malloc((size_t)mask.w * mask.h);
            for (size_t i = 0; labels && i < (size_t)mask.w * mask.h; i++) labels[i] = mask.rgb[3 * i];
        }
        *out = ex_outcome_scores(&oc, labels, img.w, img.h, e->target_label, e->target_bbox);
        free(labels);
        ex_outcome_free(&oc);
    }
    img_free(&mask);
    img_free(&img);
    return rc;
}

static void progress(void *ctx, size_t done, size_t total, size_t correct) {
    (void)ctx;
    if (done % 10 == 0 || done == total)
        fprintf(stderr, "\rvqa: %zu/%zu  accuracy %.4f", done, total, (double)correct / (double)done);
    if (done == total) fputc('\n', stderr);
}

int cmd_vqa(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "merge")) return vqa_merge_cmd(argc - 1, argv + 1);
    const char *data = NULL, *out = NULL, *lm = NULL, *mmproj = NULL, *expect = NULL, *explain = NULL;
    int occ_block = 0, occ_stride = 0;
    const char *baseline_arg = "auto";
    double tol = 0.01;
    size_t shard = 0, n_shards = 1, limit = 0, threads = 0, n_predict = 8;
    llava_params_t p = llava_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            vqa_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && has_val) {
            out = argv[++i];
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            lm = argv[++i];
        } else if (!strcmp(a, "--mmproj") && has_val) {
            mmproj = argv[++i];
        } else if (!strcmp(a, "--expect") && has_val) {
            expect = argv[++i];
        } else if (!strcmp(a, "--tolerance") && has_val) {
            if (!parse_tolerance(argv[++i], &tol))
                return fail(EXIT_USAGE, "--tolerance: '%s' is not a number in [0, 1]", argv[i]);
        } else if (!strcmp(a, "--shard") && has_val) {
            unsigned long long si, sn;
            char c;
            if (sscanf(argv[++i], "%llu/%llu%c", &si, &sn, &c) != 2 || sn < 1 || si >= sn || argv[i][0] == '-')
                return fail(EXIT_USAGE, "--shard: '%s' is not I/N with 0 <= I < N", argv[i]);
            shard = (size_t)si;
            n_shards = (size_t)sn;
        } else if (!strcmp(a, "--limit") && has_val) {
            if (!parse_size(argv[++i], &limit) || limit == 0)
                return fail(EXIT_USAGE, "--limit: '%s' is not a positive count", argv[i]);
        } else if ((!strcmp(a, "--threads") || !strcmp(a, "-t")) && has_val) {
            if (!parse_size(argv[++i], &threads) || threads > 1024)
                return fail(EXIT_USAGE, "--threads: '%s' is not a thread count", argv[i]);
        } else if (!strcmp(a, "--n-predict") && has_val) {
            if (!parse_size(argv[++i], &n_predict) || n_predict < 1 || n_predict > 4096)
                return fail(EXIT_USAGE, "--n-predict: '%s' is not in 1..4096", argv[i]);
        } else if (!strcmp(a, "--explain") && has_val) {
            explain = argv[++i];
        } else if (!strcmp(a, "--baseline") && has_val) {
            baseline_arg = argv[++i];
        } else if ((!strcmp(a, "--occ-block") || !strcmp(a, "--occ-stride")) && has_val) {
            unsigned long long v = 0;
            if (!cli_parse_u64(argv[++i], &v) || v < 1 || v > 64)
                return fail(EXIT_USAGE, "%s: '%s' is not a number of patches in 1..64", a, argv[i]);
            *(!strcmp(a, "--occ-block") ? &occ_block : &occ_stride) = (int)v;
        } else if (!strcmp(a, "--max-side") && has_val) {
            if (!cli_parse_int(argv[++i], 1, CLI_MAX_SIDE_HI, &p.max_side))
                return fail(EXIT_USAGE, "--max-side: '%s' is not in 1..%d pixels", argv[i], CLI_MAX_SIDE_HI);
        } else if (!strcmp(a, "--pipeline") && has_val) {
            int pp = pp_pipeline_from_name(argv[++i]);
            if (pp < 0) return fail(EXIT_USAGE, "--pipeline: '%s' is not pad or crop", argv[i]);
            p.pipeline = (pp_pipeline)pp;
        } else if (a[0] == '-' && a[1]) {
            return fail(EXIT_USAGE, "unknown or incomplete option '%s' (see --help)", a);
        } else if (!data) {
            data = a;
        } else {
            return fail(EXIT_USAGE, "one data set only ('%s' and '%s')", data, a);
        }
    }
    if (!data || !out) return fail(EXIT_USAGE, "needs DATASET.jsonl and -o OUTDIR (see --help)");
    if (!lm != !mmproj) return fail(EXIT_USAGE, "-m and --mmproj go together (or neither: the shipped model)");

    err_t err = {0};
    explain_ctx xc = {0};
    float *baseline = NULL;
    ex_options_default(&xc.opt);
    if (occ_block) xc.opt.occ_block = occ_block;
    if (occ_stride) xc.opt.occ_stride = occ_stride;
    if (explain && ex_methods_parse(explain, &xc.methods, &err)) return fail(EXIT_USAGE, "--explain: %s", err.msg);
    vqa_dataset d;
    if (vqa_dataset_load(&d, data, &err)) return fail(1, "%s", err.msg);
    vqa_run_opts o = {0};
    if (vqa_shard_range(d.n, limit, shard, n_shards, &o.begin, &o.end, &err)) {
        vqa_dataset_free(&d);
        return fail(EXIT_USAGE, "%s", err.msg);
    }
    /* The expectation file is read before the (long) run so a typo fails fast. */
    if (expect && access(expect, R_OK) != 0) {
        vqa_dataset_free(&d);
        return fail(1, "--expect: %s: %s", expect, strerror(errno));
    }

    p.lm_path = lm;
    p.mmproj_path = mmproj;
    p.n_threads = (int)threads;
    llava_t *l = NULL;
    if (llava_load(&l, &p, &err)) {
        vqa_dataset_free(&d);
        return fail(1, "%s", err.msg);
    }
    cJSON *meta = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(meta, "model");
    cJSON *lm_info = vqa_file_info(l->lm_path, &err);
    cJSON *mp_info = lm_info ? vqa_file_info(l->mmproj_path, &err) : NULL;
    cJSON *ds_info = mp_info ? vqa_file_info(data, &err) : NULL;
    int code = 0;
    if (!ds_info) {
        cJSON_Delete(lm_info);
        cJSON_Delete(mp_info);
        code = fail(1, "%s", err.msg);
        goto done;
    }
    cJSON_AddItemToObject(model, "lm", lm_info);
    cJSON_AddItemToObject(model, "mmproj", mp_info);
    cJSON_AddStringToObject(meta, "pipeline", pp_pipeline_name(l->params.pipeline));
    cJSON_AddStringToObject(meta, "template", tpl_name(l->params.tpl));
    cJSON_AddNumberToObject(meta, "n_predict", (double)n_predict);
    if (explain) cJSON_AddStringToObject(meta, "explain_methods", explain);
    cJSON_AddNumberToObject(ds_info, "n", (double)d.n);
    cJSON_AddItemToObject(meta, "dataset", ds_info);
    cJSON *sh = cJSON_AddObjectToObject(meta, "shard");
    cJSON_AddNumberToObject(sh, "index", (double)shard);
    cJSON_AddNumberToObject(sh, "count", (double)n_shards);
    cJSON_AddNumberToObject(sh, "begin", (double)o.begin);
    cJSON_AddNumberToObject(sh, "end", (double)o.end);
    cJSON_AddNumberToObject(sh, "limit", (double)limit);

    char path[4200];
    if (path_mkdir_p(out, &err)) {
        code = fail(1, "%s", err.msg);
        goto done;
    }
    snprintf(path, sizeof path, "%s/results.jsonl", out);
    o.results_out = fopen(path, "w");
    if (!o.results_out) {
        code = fail(1, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    if (isatty(STDERR_FILENO)) o.progress = progress;
    if (explain) {
        xc.l = l;
        o.explain = explain_example;
        o.explain_ctx = &xc;
        if (cli_load_baseline(baseline_arg, l, &baseline, &xc.opt.baseline_rows, &xc.opt.baseline_name, &err)) {
            code = fail(1, "--baseline: %s", err.msg);
            goto done;
        }
        xc.opt.baseline = baseline;
    }
    model_ctx mc = {l, llava_default_gen()};
    mc.g.n_predict = (int)n_predict;
    vqa_results rs = {0};
    err_code rc = vqa_run(&d, ask_model, &mc, &o, &rs, &err);
    if (fclose(o.results_out) != 0 && !rc) rc = err_set(&err, ERR_IO, "%s: write failed", path);
    if (rc) {
        vqa_results_free(&rs);
        code = fail(1, "%s", err.msg);
        goto done;
    }
    cJSON *sum = vqa_summary(&rs, meta);
    vqa_results_free(&rs);
    snprintf(path, sizeof path, "%s/summary.json", out);
    if (vqa_json_write(sum, path, &err)) {
        cJSON_Delete(sum);
        code = fail(1, "%s", err.msg);
        goto done;
    }
    print_summary(sum);
    code = check_expect(sum, expect, tol);
    cJSON_Delete(sum);
done:
    free(baseline);
    cJSON_Delete(meta);
    llava_free(l);
    vqa_dataset_free(&d);
    return code;
}
