/* cmd_encode.c — `llava-mech encode`: an image through the mmproj's vision tower and
 * projector, written as the LM's image tokens (P x d_lm float32 .npy) plus a JSON
 * sidecar recording the preprocessing (pipeline, geometry) and the model; optionally
 * any intermediate activation (hook points) as .npy files. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "core/hook.h"
#include "core/matmul.h"
#include "core/npy.h"
#include "vision/image.h"
#include "vision/preprocess.h"
#include "vision/vit.h"

#include "cli_util.h"
#define fail(msg) cli_fail("encode", 1, "%s", (msg))

static void usage(FILE *f) {
    fprintf(f,
            "usage: llava-mech encode --mmproj MMPROJ.gguf --image IMG -o OUT.npy [options]\n"
            "  Runs the CLIP vision tower + LLaVA projector of MMPROJ on IMG and writes the image\n"
            "  tokens (n_patches x d_lm float32, row-major over the grid) to OUT.npy, and the\n"
            "  preprocessing record (pipeline, sizes, patch -> original-image geometry) to\n"
            "  OUT.json (beside OUT.npy, .npy replaced).\n"
            "options:\n"
            "  --pipeline P         pad (default): original LLaVA-1.5, mean-colour square then Pillow\n"
            "                       bicubic resize; crop: HF llava-hf, shortest edge then centre crop;\n"
            "                       llamacpp: llama.cpp mtmd's letterbox (its own bicubic, then pad)\n"
            "  -t, --threads N      threads (default: all CPUs)\n"
            "  --max-side N         reject images wider or taller than N pixels (default 16384)\n"
            "  --pixels FILE.npy    also write the normalised input [3][S][S]\n"
            "  --dump PATTERN DIR   write every hook point matching PATTERN (e.g. 'v.blk.22.*',\n"
            "                       'v.blk.*.attn.pattern', 'mm.hidden', '*') as DIR/<name>.npy\n"
            "  --no-json            do not write the JSON sidecar\n");
}

typedef struct {
    const char *dir;
    err_t *err;
    int n_written;
} dump_ctx;

/* Hook: writes the activation as DIR/<hook name>.npy with its shape. */
static int dump_hook(void *user, const hook_info *info, float *data) {
    dump_ctx *d = user;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", d->dir, info->name);
    if (npy_write_f32(path, data, info->n_dims, info->shape, d->err)) return 1;
    d->n_written++;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static err_code write_sidecar(const char *path, const char *mmproj, const char *image, const vit_config *c,
                              const pp_geom *g, double t_pre, double t_vit, err_t *err) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mmproj", mmproj);
    cJSON_AddStringToObject(j, "image", image);
    cJSON_AddNumberToObject(j, "image_width", g->src_w);
    cJSON_AddNumberToObject(j, "image_height", g->src_h);
    cJSON_AddStringToObject(j, "pipeline", pp_pipeline_name(g->pipeline));
    cJSON_AddStringToObject(j, "resample", g->pipeline == PP_LLAMACPP ? "llama.cpp-bicubic" : "pillow-bicubic");
    cJSON_AddNumberToObject(j, "image_size", g->image_size);
    cJSON_AddNumberToObject(j, "patch_size", g->patch_size);
    cJSON_AddNumberToObject(j, "grid", g->grid);
    cJSON *geo = cJSON_AddObjectToObject(j, "to_model");
    cJSON_AddNumberToObject(geo, "sx", g->sx);
    cJSON_AddNumberToObject(geo, "sy", g->sy);
    cJSON_AddNumberToObject(geo, "ox", g->ox);
    cJSON_AddNumberToObject(geo, "oy", g->oy);
    if (g->pipeline != PP_CROP) {
        int rgb[3] = {g->pad_rgb[0], g->pad_rgb[1], g->pad_rgb[2]};
        cJSON_AddItemToObject(j, "pad_rgb", cJSON_CreateIntArray(rgb, 3));
    }
    cJSON_AddNumberToObject(j, "n_tokens", c->n_patches);
    cJSON_AddNumberToObject(j, "d_out", c->d_out);
    cJSON_AddNumberToObject(j, "blocks_run", c->n_run);
    cJSON_AddNumberToObject(j, "blocks_stored", c->n_stored);
    cJSON_AddNumberToObject(j, "preprocess_ms", t_pre * 1e3);
    cJSON_AddNumberToObject(j, "vision_ms", t_vit * 1e3);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    FILE *f = fopen(path, "w");
    err_code rc = ERR_OK;
    if (!f || fputs(s, f) == EOF || fputc('\n', f) == EOF) rc = err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && !rc) rc = err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    free(s);
    return rc;
}

int cmd_encode(int argc, char **argv) {
    const char *mmproj = NULL, *image = NULL, *out = NULL, *pixels_out = NULL, *dump_pat = NULL, *dump_dir = NULL;
    int threads = 0, max_side = 0, pipe = PP_PAD;
    int json = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--mmproj") && has) {
            mmproj = argv[++i];
        } else if (!strcmp(a, "--image") && has) {
            image = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && has) {
            out = argv[++i];
        } else if (!strcmp(a, "--pixels") && has) {
            pixels_out = argv[++i];
        } else if (!strcmp(a, "--pipeline") && has) {
            pipe = pp_pipeline_from_name(argv[++i]);
            if (pipe < 0) {
                fprintf(stderr, "llava-mech encode: unknown pipeline '%s' (pad, crop or llamacpp)\n", argv[i]);
                return 2;
            }
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has) {
            threads = atoi(argv[++i]);
            if (threads < 1 || threads > 1024) {
                fprintf(stderr, "llava-mech encode: bad thread count '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--max-side") && has) {
            max_side = atoi(argv[++i]);
            if (max_side < 1) {
                fprintf(stderr, "llava-mech encode: bad --max-side '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--dump") && i + 2 < argc) {
            dump_pat = argv[++i];
            dump_dir = argv[++i];
        } else if (!strcmp(a, "--no-json")) {
            json = 0;
        } else {
            fprintf(stderr, "llava-mech encode: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!mmproj || !image || !out) {
        fprintf(stderr, "llava-mech encode: --mmproj, --image and -o are required\n");
        usage(stderr);
        return 2;
    }

    err_t e = {0};
    vit_t *v = NULL;
    mm_ctx_t *mm = NULL;
    vit_state_t st = {0};
    img_t im = {0};
    int rc = 1;
    if (vit_load(&v, mmproj, &e)) goto done;
    const vit_config *c = vit_get_config(v);
    img_opts io = {.max_w = max_side, .max_h = max_side};
    if (img_load(&im, image, &io, &e)) goto done;
    if (mm_ctx_create(&mm, threads, &e)) goto done;
    if (vit_state_create(&st, v, &e)) goto done;

    double t0 = now_s();
    pp_geom g;
    if (pp_run(&im, (pp_pipeline)pipe, c->image_size, c->patch_size, c->image_mean, c->image_std, st.pixels, &g,
               &e))
        goto done;
    double t1 = now_s();
    hook_set_t hs;
    hook_set_init(&hs);
    err_t dump_err = {0};
    dump_ctx dc = {dump_dir, &dump_err, 0};
    if (dump_pat && hook_add(&hs, dump_pat, dump_hook, &dc, &e)) goto done;
    if (vit_forward(v, &st, mm, st.pixels, dump_pat ? &hs : NULL, NULL, &e)) {
        if (dump_err.code) e = dump_err;
        goto done;
    }
    double t2 = now_s();

    int64_t shape[2] = {c->n_patches, c->d_out};
    if (npy_write_f32(out, st.tokens, 2, shape, &e)) goto done;
    if (pixels_out) {
        int64_t ps[3] = {3, c->image_size, c->image_size};
        if (npy_write_f32(pixels_out, st.pixels, 3, ps, &e)) goto done;
    }
    char json_path[4096] = "";
    if (json) {
        size_t n = strlen(out);
        if (n > 4 && !strcmp(out + n - 4, ".npy")) n -= 4;
        if (n + 6 > sizeof json_path) {
            err_set(&e, ERR_ARG, "%s: output path too long", out);
            goto done;
        }
        memcpy(json_path, out, n);
        memcpy(json_path + n, ".json", 6);
        if (write_sidecar(json_path, mmproj, image, c, &g, t1 - t0, t2 - t1, &e)) goto done;
    }
    double gflop = vit_flops(c) * 1e-9;
    if (dump_pat) printf("dumped   %d activation(s) matching '%s' to %s/\n", dc.n_written, dump_pat, dump_dir);
    printf("image    %s: %dx%d, pipeline %s -> %dx%d, grid %dx%d (patch %d)\n", image, im.w, im.h,
           pp_pipeline_name(g.pipeline), c->image_size, c->image_size, c->grid, c->grid, c->patch_size);
    printf("model    %s: width %d, %d heads, %d/%d blocks run, projector -> %d\n", mmproj, c->d, c->n_head, c->n_run,
           c->n_stored, c->d_out);
    printf("tokens   %d x %d float32 -> %s%s%s\n", c->n_patches, c->d_out, out, json ? ", " : "", json_path);
    printf("time     preprocess %.1f ms, vision %.1f ms (%.2f GFLOP, %.1f GFLOP/s, %d threads)\n", (t1 - t0) * 1e3,
           (t2 - t1) * 1e3, gflop, gflop / (t2 - t1), mm_ctx_threads(mm));
    rc = 0;
done:
    if (rc) fail(e.msg);
    vit_state_free(&st);
    img_free(&im);
    mm_ctx_free(mm);
    vit_free(v);
    return rc;
}
