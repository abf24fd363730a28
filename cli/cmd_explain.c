/* cmd_explain.c — `llava-mech explain METHODS --image IMG -p QUESTION -o OUTDIR`:
 * answers the question, then runs the analysis passes (analysis/explain.h) on the
 * answer's first token (or --target WORD) and writes overlays, charts, .npy arrays and
 * report.json (analysis/report.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/explain.h"
#include "analysis/explain_job.h"
#include "analysis/report.h"
#include "commands.h"
#include "core/npy.h"
#include "language/llava.h"

#include "cli_util.h"
#define fail(msg) cli_fail("explain", 1, "%s", (msg))

static void usage(FILE *f) {
    fprintf(f,
            "usage: llava-mech explain METHODS --image IMG -p QUESTION -o OUTDIR [options]\n"
            "  METHODS   comma-separated: attention, rollout, knockout, occlusion, logit-lens, heads,\n"
            "            dla; or 'all'\n"
            "  -m LM.gguf --mmproj MMPROJ.gguf   model files (default: the shipped toy model)\n"
            "  --target WORD     explain this word's first token (default: the model's own answer)\n"
            "  --bbox X0,Y0,X1,Y1  the object's box in original pixels (knockout object edge sets)\n"
            "  --pipeline pad|crop  --template llava|llava-sys|raw  -t THREADS\n"
            "  --max-side N      refuse images wider or taller than N pixels (default 16384)\n"
            "  --cmap viridis|jet|gray  --nearest (nearest-cell upsampling; default bilinear)\n"
            "  --fusion mean|max|min  --discard R      rollout head fusion and discard ratio\n"
            "  --window K                              knockout window width (default n_layer/4)\n"
            "  --occ-block K --occ-stride S            occlusion block and stride in patches\n"
            "  --occ-space tokens|pixels               occlude LM-input embeddings (default) or paint the\n"
            "                                          block's pixels with the mean colour and re-encode\n"
            "  --occ-batch B                           occluded copies per batched forward (default 8)\n"
            "  --baseline auto|zero|FILE.npy           occlusion baseline (auto: <LM>.mean-embd.npy if\n"
            "                                          present, else zero); FILE holds d_lm floats, or\n"
            "                                          n_image x d_lm (one row per grid position)\n"
            "  --lens-cached     logit lens with the final layer's RMS scale (TransformerLens)\n"
            "  --heads-true-norm heads scored with the true normaliser instead of Yu's frozen one\n"
            "  --top-k K --top-heads N\n");
}

static void progress(void *ctx, const char *stage) {
    (void)ctx;
    fprintf(stderr, "explain: %s ...\n", stage);
}

int cmd_explain(int argc, char **argv) {
    const char *methods_arg = NULL, *image = NULL, *question = NULL, *outdir = NULL, *target_word = NULL;
    const char *bbox_arg = NULL, *baseline_arg = "auto";
    llava_params_t lp = llava_default_params();
    ex_options opt;
    ex_options_default(&opt);
    cmap_kind cmap = CMAP_VIRIDIS;
    bool nearest = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                                  \
    do {                                                                                              \
        if (!v) {                                                                                     \
            fprintf(stderr, "llava-mech explain: %s needs a value\n", a);                             \
            return 2;                                                                                 \
        }                                                                                             \
        i++;                                                                                          \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m")) { NEED_VALUE(); lp.lm_path = v;
        } else if (!strcmp(a, "--mmproj")) { NEED_VALUE(); lp.mmproj_path = v;
        } else if (!strcmp(a, "--image")) { NEED_VALUE(); image = v;
        } else if (!strcmp(a, "-p")) { NEED_VALUE(); question = v;
        } else if (!strcmp(a, "-o")) { NEED_VALUE(); outdir = v;
        } else if (!strcmp(a, "--target")) { NEED_VALUE(); target_word = v;
        } else if (!strcmp(a, "--bbox")) { NEED_VALUE(); bbox_arg = v;
        } else if (!strcmp(a, "--baseline")) { NEED_VALUE(); baseline_arg = v;
        } else if (!strcmp(a, "-t")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 1, 1024, &lp.n_threads)) return cli_fail("explain", 2, "-t '%s': expected 1..1024 threads", v);
        } else if (!strcmp(a, "--max-side")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 1, CLI_MAX_SIDE_HI, &lp.max_side))
                return cli_fail("explain", 2, "--max-side '%s': expected 1..%d pixels", v, CLI_MAX_SIDE_HI);
        } else if (!strcmp(a, "--pipeline")) {
            NEED_VALUE();
            int p = pp_pipeline_from_name(v);
            if (p < 0) return fail("--pipeline must be pad or crop"), 2;
            lp.pipeline = (pp_pipeline)p;
        } else if (!strcmp(a, "--template")) {
            NEED_VALUE();
            int t = tpl_from_name(v);
            if (t < 0) return fail("--template must be llava, llava-sys or raw"), 2;
            lp.tpl = (tpl_kind)t;
        } else if (!strcmp(a, "--cmap")) {
            NEED_VALUE();
            int c = cmap_from_name(v);
            if (c < 0) return fail("--cmap must be viridis, jet or gray"), 2;
            cmap = (cmap_kind)c;
        } else if (!strcmp(a, "--nearest")) { nearest = true;
        } else if (!strcmp(a, "--fusion")) {
            NEED_VALUE();
            if (!strcmp(v, "mean")) opt.fusion = EX_FUSE_MEAN;
            else if (!strcmp(v, "max")) opt.fusion = EX_FUSE_MAX;
            else if (!strcmp(v, "min")) opt.fusion = EX_FUSE_MIN;
            else return fail("--fusion must be mean, max or min"), 2;
        } else if (!strcmp(a, "--discard")) {
            NEED_VALUE();
            double d;
            if (!cli_parse_real(v, 0.0, 0.99, &d)) return cli_fail("explain", 2, "--discard '%s': expected a ratio in [0, 0.99]", v);
            opt.discard_ratio = (float)d;
        } else if (!strcmp(a, "--window")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 1, 4096, &opt.window)) return cli_fail("explain", 2, "--window '%s': expected 1..4096 layers", v);
        } else if (!strcmp(a, "--occ-block") || !strcmp(a, "--occ-stride")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 1, 64, !strcmp(a, "--occ-block") ? &opt.occ_block : &opt.occ_stride))
                return cli_fail("explain", 2, "%s '%s': expected a number of patches in 1..64", a, v);
        } else if (!strcmp(a, "--occ-space")) {
            NEED_VALUE();
            int sp = ex_occ_space_from_name(v);
            if (sp < 0) return fail("--occ-space must be tokens or pixels"), 2;
            opt.occ_space = (ex_occ_space)sp;
        } else if (!strcmp(a, "--occ-batch")) {
            NEED_VALUE();
            unsigned long long u;
            if (!cli_parse_u64(v, &u) || u < 1 || u > 4096) return fail("--occ-batch must be an integer in [1, 4096]"), 2;
            opt.occ_batch = (int)u;
        } else if (!strcmp(a, "--top-k") || !strcmp(a, "--top-heads")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 1, 1 << 20, !strcmp(a, "--top-k") ? &opt.top_k : &opt.top_heads))
                return cli_fail("explain", 2, "%s '%s': expected a count in 1..1048576", a, v);
        } else if (!strcmp(a, "--lens-cached")) { opt.lens_cached_scale = true;
        } else if (!strcmp(a, "--heads-true-norm")) { opt.heads_true_norm = true;
        } else if (a[0] == '-') {
            fprintf(stderr, "llava-mech explain: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (!methods_arg) {
            methods_arg = a;
        } else {
            fprintf(stderr, "llava-mech explain: unexpected argument '%s'\n", a);
            return 2;
        }
#undef NEED_VALUE
    }
    if (!methods_arg || !image || !question || !outdir) {
        usage(stderr);
        return 2;
    }
    if (opt.discard_ratio < 0 || opt.discard_ratio >= 1) return fail("--discard must be in [0, 1)"), 2;
    double box[4];
    if (bbox_arg && sscanf(bbox_arg, "%lf,%lf,%lf,%lf", &box[0], &box[1], &box[2], &box[3]) != 4)
        return fail("--bbox must be X0,Y0,X1,Y1"), 2;

    err_t err = {0};
    unsigned mask = 0;
    if (ex_methods_parse(methods_arg, &mask, &err)) return fail(err.msg), 2;
    const bool tty = isatty(2);

    llava_t *l = NULL;
    img_t orig = {0}, model_img = {0};
    llava_answer_t ans = {0};
    ex_outcome oc = {0};
    float *baseline = NULL;
    font_t *font = NULL;
    int status = 1;

    if (llava_load(&l, &lp, &err)) goto done;
    if (llava_load_image(l, image, &orig, &err)) goto done;
    const vit_config *vc = vit_get_config(l->vit);
    pp_geom g2;
    if (pp_model_image(&orig, l->params.pipeline, vc->image_size, vc->patch_size, vc->image_mean, &model_img, &g2, &err))
        goto done;

    int32_t target = -1;
    const char *source = "model answer";
    if (target_word) {
        int32_t ids[64];
        int64_t n_ids = 0;
        if (tok_encode(l->tok, target_word, strlen(target_word), false, ids, 64, &n_ids, &err)) goto done;
        if (n_ids < 1) {
            err_set(&err, ERR_ARG, "--target '%s' has no tokens", target_word);
            goto done;
        }
        target = ids[0];
        source = "user";
    }
    if (cli_load_baseline(baseline_arg, l, &baseline, &opt.baseline_rows, &opt.baseline_name, &err)) goto done;
    opt.baseline = baseline;

    ex_job job = {.l = l, .img = &orig, .question = question, .methods = mask, .opt = &opt, .target = target,
                  .bbox = bbox_arg ? box : NULL, .vit_side = true, .progress = tty ? progress : NULL};
    if (ex_job_run(&job, &oc, &err)) goto done;
    /* the answer, from the same image tokens and prompt */
    if (llava_prefill(l, &oc.pr, &oc.im, NULL, &err)) goto done;
    llava_gen_params_t gp = llava_default_gen();
    gp.n_predict = 16;
    if (llava_generate(l, &gp, &ans, &err)) goto done;
    const ex_capture_t *capp = &oc.cap;

    /* the target's text: the user's word, or the decoded answer token */
    char word[3 * 128 + 1] = "", raw[128] = "", piece[3 * 128 + 1] = "";
    size_t plen = 0;
    const char *pc = tok_piece(l->tok, capp->target, &plen);
    if (pc && plen < sizeof raw) tok_utf8_sanitize(pc, plen, piece);
    if (target_word) snprintf(word, sizeof word, "%s", target_word);
    else if (tok_decode(l->tok, &capp->target, 1, true, raw, sizeof raw, NULL, &err)) goto done;
    /* one byte-fallback token can be part of a character: keep the report valid UTF-8 */
    if (!target_word) tok_utf8_sanitize(raw, strlen(raw), word);

    if (font_load(&font, NULL, &err)) goto done;
    rp_context rc = {.outdir = outdir, .image_path = image, .original = &orig, .model_image = &model_img,
                     .geom = &oc.im.geom, .lm_path = l->lm_path, .mmproj_path = l->mmproj_path,
                     .question = question, .answer = ans.text, .target_word = word, .target_source = source,
                     .target_piece = piece, .target_id = capp->target, .T = oc.pr.n - 1,
                     .p_target = capp->p_target, .logp_target = capp->logp_target, .img_start = oc.pr.image_start,
                     .n_image = oc.pr.n_image, .grid_h = oc.im.grid, .grid_w = oc.im.grid, .font = font, .cmap = cmap,
                     .nearest = nearest};
    char report[4096];
    if (report_write(&rc, oc.results, oc.n_results, oc.seconds, report, sizeof report, &err)) goto done;

    printf("answer: %s\n", ans.text);
    printf("target: \"%s\" (id %d, p = %.4f)\n", word, capp->target, capp->p_target);
    for (int i = 0; i < oc.n_results; i++)
        printf("%-13s %7.2f s  %s\n", ex_method_name(oc.results[i].method), oc.seconds[i], oc.results[i].agg);
    printf("figures and arrays in %s/\nreport: %s\n", outdir, report);
    status = 0;
done:
    if (status) fprintf(stderr, "llava-mech explain: %s\n", err.msg);
    ex_outcome_free(&oc);
    font_free(font);
    free(baseline);
    llava_answer_free(&ans);
    img_free(&model_img);
    img_free(&orig);
    llava_free(l);
    return status;
}
