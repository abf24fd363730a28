/* cmd_explain.c — `llava-mech explain METHODS --image IMG -p QUESTION -o OUTDIR`:
 * answers the question, then runs the analysis passes (analysis/explain.h) on the
 * answer's first token (or --target WORD) and writes overlays, charts, .npy arrays and
 * report.json (analysis/report.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analysis/explain.h"
#include "analysis/report.h"
#include "commands.h"
#include "core/npy.h"
#include "language/llava.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llava-mech explain METHODS --image IMG -p QUESTION -o OUTDIR [options]\n"
            "  METHODS   comma-separated: attention, rollout, knockout, occlusion, logit-lens, heads,\n"
            "            dla; or 'all'\n"
            "  -m LM.gguf --mmproj MMPROJ.gguf   model files (default: the shipped toy model)\n"
            "  --target WORD     explain this word's first token (default: the model's own answer)\n"
            "  --bbox X0,Y0,X1,Y1  the object's box in original pixels (knockout object edge sets)\n"
            "  --pipeline pad|crop  --template llava|llava-sys|raw  -t THREADS\n"
            "  --cmap viridis|jet|gray  --nearest (nearest-cell upsampling; default bilinear)\n"
            "  --fusion mean|max|min  --discard R      rollout head fusion and discard ratio\n"
            "  --window K                              knockout window width (default n_layer/4)\n"
            "  --occ-block K --occ-stride S            occlusion block and stride in patches\n"
            "  --baseline auto|zero|FILE.npy           occlusion baseline (auto: <LM>.mean-embd.npy if\n"
            "                                          present, else zero)\n"
            "  --lens-cached     logit lens with the final layer's RMS scale (TransformerLens)\n"
            "  --heads-true-norm heads scored with the true normaliser instead of Yu's frozen one\n"
            "  --top-k K --top-heads N\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char *msg) {
    fprintf(stderr, "llava-mech explain: %s\n", msg);
    return 1;
}

/* Patches whose cell centre (in original pixels) lies inside the box. */
static int bbox_patches(const pp_geom *g, const double box[4], int32_t *out) {
    int n = 0;
    for (int r = 0; r < g->grid; r++)
        for (int c = 0; c < g->grid; c++) {
            double b[4];
            if (!pp_cell_box(g, r, c, b)) continue;
            double cx = 0.5 * (b[0] + b[2]), cy = 0.5 * (b[1] + b[3]);
            if (cx >= box[0] && cx < box[2] && cy >= box[1] && cy < box[3]) out[n++] = r * g->grid + c;
        }
    return n;
}

static err_code load_baseline(const char *spec, const llava_t *l, float **out, const char **name, err_t *err) {
    *out = NULL;
    *name = "zero";
    char path[LLAVA_PATH_MAX + 32];
    if (!strcmp(spec, "zero")) return ERR_OK;
    if (!strcmp(spec, "auto")) {
        snprintf(path, sizeof path, "%s", l->lm_path);
        size_t n = strlen(path);
        if (n > 5 && !strcmp(path + n - 5, ".gguf")) path[n - 5] = '\0';
        strcat(path, ".mean-embd.npy");
        if (access(path, R_OK) != 0) return ERR_OK;
    } else {
        snprintf(path, sizeof path, "%s", spec);
    }
    npy_array_t a;
    err_code rc = npy_read(path, &a, err);
    if (rc) return rc;
    if (a.dtype != NPY_F32 || npy_nelements(&a) != l->lm->cfg.dim) {
        npy_free(&a);
        return err_set(err, ERR_MISMATCH, "%s: baseline must be %d float32 values (the LM width)", path,
                       l->lm->cfg.dim);
    }
    *out = a.data;
    a.data = NULL;
    npy_free(&a);
    *name = strcmp(spec, "auto") ? "file" : "mean image embedding (shipped)";
    return ERR_OK;
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
        } else if (!strcmp(a, "-t")) { NEED_VALUE(); lp.n_threads = atoi(v);
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
        } else if (!strcmp(a, "--discard")) { NEED_VALUE(); opt.discard_ratio = strtof(v, NULL);
        } else if (!strcmp(a, "--window")) { NEED_VALUE(); opt.window = atoi(v);
        } else if (!strcmp(a, "--occ-block")) { NEED_VALUE(); opt.occ_block = atoi(v);
        } else if (!strcmp(a, "--occ-stride")) { NEED_VALUE(); opt.occ_stride = atoi(v);
        } else if (!strcmp(a, "--top-k")) { NEED_VALUE(); opt.top_k = atoi(v);
        } else if (!strcmp(a, "--top-heads")) { NEED_VALUE(); opt.top_heads = atoi(v);
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
    llava_image_t im = {0};
    llava_prompt_t pr = {0};
    llava_answer_t ans = {0};
    ex_capture_t cap = {0};
    ex_result results[EX_N_ALL];
    double seconds[EX_N_ALL];
    ex_vit_capture_t vcap = {0};
    hook_set_t vhooks;
    hook_set_init(&vhooks);
    int n_results = 0;
    float *baseline = NULL;
    int32_t *obj = NULL;
    font_t *font = NULL;
    int status = 1;
    memset(results, 0, sizeof results);

    if (llava_load(&l, &lp, &err)) goto done;
    if (img_load(&orig, image, NULL, &err)) goto done;
    const vit_config *vc = vit_get_config(l->vit);
    const bool vit_side = mask & ((1u << EX_ATTENTION) | (1u << EX_ROLLOUT));
    if (vit_side && ex_vit_capture_init(&vcap, vc->n_run, vc->n_head, vc->grid, &vhooks, &err)) goto done;
    if (llava_encode_img_hooks(l, &orig, &vhooks, &im, &err)) goto done;
    pp_geom g2;
    if (pp_model_image(&orig, l->params.pipeline, vc->image_size, vc->patch_size, vc->image_mean, &model_img, &g2, &err))
        goto done;
    if (llava_build_prompt(l, question, &pr, &err)) goto done;
    if (llava_prefill(l, &pr, &im, NULL, &err)) goto done;
    llava_gen_params_t gp = llava_default_gen();
    gp.n_predict = 16;
    if (llava_generate(l, &gp, &ans, &err)) goto done;

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
    if (load_baseline(baseline_arg, l, &baseline, &opt.baseline_name, &err)) goto done;
    opt.baseline = baseline;

    ex_input in = {.lm = l->lm, .st = l->st, .ids = pr.ids, .n = pr.n, .img_embd = im.embd,
                   .img_start = pr.image_start, .n_image = pr.n_image, .grid_h = im.grid, .grid_w = im.grid,
                   .T = pr.n - 1, .target = target, .tok = l->tok};
    if (bbox_arg) {
        obj = malloc(sizeof(int32_t) * (size_t)pr.n_image);
        if (!obj) {
            err_set(&err, ERR_NOMEM, "out of memory");
            goto done;
        }
        in.object_patches = obj;
        in.n_object_patches = bbox_patches(&im.geom, box, obj);
    }
    if (tty) fprintf(stderr, "explain: shared forward ...\n");
    if (ex_capture(&cap, &in, &opt, &err)) goto done;
    for (int m = 0; m < EX_N_METHODS; m++) {
        if (!(mask & (1u << m))) continue;
        if (tty) fprintf(stderr, "explain: %s ...\n", ex_method_name((ex_method)m));
        double t0 = now_s();
        if (ex_run((ex_method)m, &in, &cap, &opt, &results[n_results], &err)) {
            err_prefix(&err, "%s", ex_method_name((ex_method)m));
            goto done;
        }
        seconds[n_results++] = now_s() - t0;
    }
    for (int i = 0, n_lm = n_results; vit_side && i < n_lm; i++) {
        ex_method m = results[i].method;
        if (m != EX_ATTENTION && m != EX_ROLLOUT) continue;
        double t0 = now_s();
        err_code rc = m == EX_ATTENTION ? ex_vit_attention(&vcap, &results[n_results], &err)
                                        : ex_vit_rollout(&vcap, results[i].map, &results[n_results], &err);
        if (rc) goto done;
        seconds[n_results++] = now_s() - t0;
    }

    /* the target's text: the user's word, or the decoded answer token */
    char word[128] = "", piece[128] = "";
    size_t plen = 0;
    const char *pc = tok_piece(l->tok, cap.target, &plen);
    if (pc && plen < sizeof piece) memcpy(piece, pc, plen), piece[plen] = '\0';
    if (target_word) snprintf(word, sizeof word, "%s", target_word);
    else if (tok_decode(l->tok, &cap.target, 1, true, word, sizeof word, NULL, &err)) goto done;

    if (font_load(&font, NULL, &err)) goto done;
    rp_context rc = {.outdir = outdir, .image_path = image, .original = &orig, .model_image = &model_img,
                     .geom = &im.geom, .lm_path = l->lm_path, .mmproj_path = l->mmproj_path,
                     .question = question, .answer = ans.text, .target_word = word, .target_source = source,
                     .target_piece = piece, .target_id = cap.target, .T = in.T, .p_target = cap.p_target,
                     .logp_target = cap.logp_target, .img_start = pr.image_start, .n_image = pr.n_image,
                     .grid_h = im.grid, .grid_w = im.grid, .font = font, .cmap = cmap, .nearest = nearest};
    char report[4096];
    if (report_write(&rc, results, n_results, seconds, report, sizeof report, &err)) goto done;

    printf("answer: %s\n", ans.text);
    printf("target: \"%s\" (id %d, p = %.4f)\n", word, cap.target, cap.p_target);
    for (int i = 0; i < n_results; i++)
        printf("%-13s %7.2f s  %s\n", ex_method_name(results[i].method), seconds[i], results[i].agg);
    printf("figures and arrays in %s/\nreport: %s\n", outdir, report);
    status = 0;
done:
    if (status) fprintf(stderr, "llava-mech explain: %s\n", err.msg);
    for (int i = 0; i < n_results; i++) ex_result_free(&results[i]);
    ex_capture_free(&cap);
    ex_vit_capture_free(&vcap);
    font_free(font);
    free(obj);
    free(baseline);
    llava_answer_free(&ans);
    llava_prompt_free(&pr);
    llava_image_free(&im);
    img_free(&model_img);
    img_free(&orig);
    llava_free(l);
    return status;
}
