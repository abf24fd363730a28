/* cmd_toy.c — `llava-mech toy generate|train`: the toy world's data sets, and the
 * dispatch of `toy train` to the trainer (cli/cmd_toy_train.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "commands.h"
#include "core/png.h"
#include "toy/scenes.h"

#include "cli_util.h"
#include "core/path.h"
#define fail(...) cli_fail("toy generate", 1, __VA_ARGS__)

static void toy_usage(FILE *f) {
    fprintf(f,
            "usage: llava-mech toy generate --n N --seed S [--start I] [--size WxH] [--noise|--noise-half] -o DIR\n"
            "       llava-mech toy train [ARGS]   (see 'llava-mech toy train --help')\n"
            "\n"
            "generate: writes N examples of the toy world (../docs/toy-world.md):\n"
            "  DIR/images/NNNNNN.png   the scene (RGB, default 224x224)\n"
            "  DIR/masks/NNNNNN.png    object indices (gray: 0 background, i+1 object i)\n"
            "  DIR/examples.jsonl      one JSON per line: id, image, mask, question, answer, type,\n"
            "                          target {shape, color, bbox} or null, asked {shape, color},\n"
            "                          objects [{shape, color, bbox}], seed, index, width, height,\n"
            "                          noise\n"
            "  Example I of seed S is the same on every machine; question types cycle with I\n"
            "  (color, shape, count, exists, position) and exists alternates yes/no.\n"
            "  Standard splits: --seed 1 train, --seed 2 validation, --seed 3 test.\n"
            "  --start I   first example index (default 0; for generating a split in parts)\n"
            "  --size WxH  canvas size (default 224x224; %d..%d per side)\n"
            "  --noise     per-pixel background noise of +-8\n"
            "  --noise-half  noise on a hashed half of the indices, as 'toy train' does\n",
            SC_MIN_SIDE, SC_MAX_SIDE);
}

static cJSON *bbox_json(const int b[4]) { return cJSON_CreateIntArray(b, 4); }

static cJSON *object_json(const sc_object *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "shape", sc_shape_names[o->shape]);
    cJSON_AddStringToObject(j, "color", sc_color_names[o->color]);
    cJSON_AddItemToObject(j, "bbox", bbox_json(o->bbox));
    return j;
}

/* One examples.jsonl line (caller frees). */
static char *example_line(const sc_scene *s, const sc_qa *qa, const char *name, unsigned long long seed,
                          unsigned long long idx, bool noise) {
    char path[64];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", name);
    snprintf(path, sizeof path, "images/%s.png", name);
    cJSON_AddStringToObject(j, "image", path);
    snprintf(path, sizeof path, "masks/%s.png", name);
    cJSON_AddStringToObject(j, "mask", path);
    cJSON_AddStringToObject(j, "question", qa->question);
    cJSON_AddStringToObject(j, "answer", qa->answer);
    cJSON_AddStringToObject(j, "type", sc_qtype_names[qa->type]);
    if (qa->target >= 0)
        cJSON_AddItemToObject(j, "target", object_json(&s->objects[qa->target]));
    else
        cJSON_AddNullToObject(j, "target");
    cJSON *asked = cJSON_CreateObject();
    if (qa->target_shape >= 0)
        cJSON_AddStringToObject(asked, "shape", sc_shape_names[qa->target_shape]);
    else
        cJSON_AddNullToObject(asked, "shape");
    if (qa->target_color >= 0)
        cJSON_AddStringToObject(asked, "color", sc_color_names[qa->target_color]);
    else
        cJSON_AddNullToObject(asked, "color");
    cJSON_AddItemToObject(j, "asked", asked);
    cJSON *objs = cJSON_AddArrayToObject(j, "objects");
    for (int i = 0; i < s->n_objects; i++) cJSON_AddItemToArray(objs, object_json(&s->objects[i]));
    cJSON_AddNumberToObject(j, "seed", (double)seed);
    cJSON_AddNumberToObject(j, "index", (double)idx);
    cJSON_AddNumberToObject(j, "width", s->w);
    cJSON_AddNumberToObject(j, "height", s->h);
    cJSON_AddBoolToObject(j, "noise", noise);
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return line;
}

static int toy_generate(int argc, char **argv) {
    unsigned long long n = 0, seed = 0, start = 0;
    bool have_n = false, have_seed = false, noise = false, noise_half = false;
    int w = 224, h = 224;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            toy_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--noise")) {
            noise = true;
        } else if (!strcmp(a, "--noise-half")) {
            noise_half = true;
        } else if (!strcmp(a, "--n") && has_val) {
            if (!cli_parse_u64(argv[++i], &n) || n < 1 || n > 100000000ull)
                return fail("--n: '%s' is not a count in 1..100000000", argv[i]);
            have_n = true;
        } else if (!strcmp(a, "--seed") && has_val) {
            if (!cli_parse_u64(argv[++i], &seed)) return fail("--seed: '%s' is not a non-negative integer", argv[i]);
            have_seed = true;
        } else if (!strcmp(a, "--start") && has_val) {
            if (!cli_parse_u64(argv[++i], &start) || start > 1000000000000ull)
                return fail("--start: '%s' is not an index", argv[i]);
        } else if (!strcmp(a, "--size") && has_val) {
            char c;
            if (sscanf(argv[++i], "%dx%d%c", &w, &h, &c) != 2 || w < SC_MIN_SIDE || h < SC_MIN_SIDE ||
                w > SC_MAX_SIDE || h > SC_MAX_SIDE)
                return fail("--size: '%s' is not WxH with sides in 32..4096", argv[i]);
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && has_val) {
            out = argv[++i];
        } else if (!has_val && (!strcmp(a, "--n") || !strcmp(a, "--seed") || !strcmp(a, "--start") ||
                                !strcmp(a, "--size") || !strcmp(a, "-o") || !strcmp(a, "--out"))) {
            return fail("%s needs a value (see --help)", a);
        } else {
            return fail("unknown argument '%s' (see --help)", a);
        }
    }
    if (!have_n || !have_seed || !out) return fail("--n, --seed and -o are required (see --help)");
    if (noise && noise_half) return fail("--noise and --noise-half exclude each other");

    char path[4096];
    err_t perr = {0};
    snprintf(path, sizeof path, "%s/images", out);
    if (path_mkdir_p(path, &perr)) return fail("%s", perr.msg);
    snprintf(path, sizeof path, "%s/masks", out);
    if (path_mkdir_p(path, &perr)) return fail("%s", perr.msg);
    snprintf(path, sizeof path, "%s/examples.jsonl", out);
    FILE *jf = fopen(path, "w");
    if (!jf) return fail("%s: cannot create: %s", path, strerror(errno));

    bool progress = isatty(STDERR_FILENO);
    sc_scene s = {0};
    sc_qa qa;
    err_t err = {0};
    int rc = 0;
    for (unsigned long long k = 0; k < n && !rc; k++) {
        unsigned long long idx = start + k;
        char name[32];
        snprintf(name, sizeof name, "%06llu", idx);
        bool nz = noise || (noise_half && sc_noise_half(idx));
        if (sc_example_reuse(&s, &qa, seed, idx, w, h, nz, &err)) {
            rc = fail("%s", err.msg);
            break;
        }
        snprintf(path, sizeof path, "%s/images/%s.png", out, name);
        if (png_write_rgb(path, w, h, s.rgb, &err)) {
            rc = fail("%s", err.msg);
            break;
        }
        snprintf(path, sizeof path, "%s/masks/%s.png", out, name);
        if (png_write_gray(path, w, h, s.mask, &err)) {
            rc = fail("%s", err.msg);
            break;
        }
        char *line = example_line(&s, &qa, name, seed, idx, nz);
        if (!line) {
            rc = fail("out of memory writing example %s", name);
            break;
        }
        fputs(line, jf);
        fputc('\n', jf);
        cJSON_free(line);
        if (progress && ((k + 1) % 50 == 0 || k + 1 == n)) fprintf(stderr, "\rtoy generate: %llu/%llu", k + 1, n);
    }
    if (progress) fputc('\n', stderr);
    sc_scene_free(&s);
    if (ferror(jf) | fclose(jf)) {
        snprintf(path, sizeof path, "%s/examples.jsonl", out);
        if (!rc) rc = fail("%s: write failed: %s", path, strerror(errno));
    }
    return rc;
}

int cmd_toy(int argc, char **argv) {
    if (argc < 2) {
        toy_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        toy_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "generate")) return toy_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) {
        return cmd_toy_train(argc - 1, argv + 1);
    }
    fprintf(stderr, "llava-mech toy: unknown subcommand '%s' (generate, train)\n", argv[1]);
    return 2;
}
