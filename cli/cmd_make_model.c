/* cmd_make_model.c — `llava-mech make-model --preset NAME --type TYPE -o DIR`:
 * random-weight LM + mmproj GGUF files with real shapes (core/presets.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "core/presets.h"
#include "core/quant.h"
#include "core/threads.h"

static const struct {
    const char *name;
    int type;
} type_names[] = {
    {"f32", QT_F32}, {"f16", QT_F16}, {"q8_0", QT_Q8_0}, {"q4_0", QT_Q4_0}, {"q4_k", QT_Q4_K},
};

static int parse_type(const char *s) {
    char low[16];
    size_t n = strlen(s);
    if (n >= sizeof low) return -1;
    for (size_t i = 0; i <= n; i++) low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (!strcmp(low, type_names[i].name)) return type_names[i].type;
    return -1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: llava-mech make-model --preset NAME --type TYPE [--mmproj-type f16|f32] [--seed S]\n"
               "                            [--threads N] -o DIR\n"
               "  Writes DIR/NAME-TYPE.gguf (LLaMA LM) and DIR/mmproj-NAME-MTYPE.gguf (CLIP + MLP projector)\n"
               "  with seeded random weights in llama.cpp's LLaVA layout.\n"
               "  TYPE: f32, f16, q8_0, q4_0, q4_k (LM 2-D weights; norms stay f32). Default seed 1;\n"
               "  threads: all CPUs (the files do not depend on it).\n"
               "  presets:\n");
    for (int i = 0; preset_at(i); i++) fprintf(f, "    %-18s %s\n", preset_at(i)->name, preset_at(i)->summary);
}

typedef struct {
    const char *what;
    double t0;
    int last_pct;
} progress_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_progress(void *user, uint64_t done, uint64_t total) {
    progress_t *p = user;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (pct == p->last_pct) return;
    p->last_pct = pct;
    double dt = now_s() - p->t0;
    fprintf(stderr, "\r%s: %3d%% %8.1f MiB %6.1f s", p->what, pct, (double)done / (1024.0 * 1024.0), dt);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

int cmd_make_model(int argc, char **argv) {
    const char *preset_name = NULL, *type_name = NULL, *mtype_name = "f16", *dir = NULL;
    uint64_t seed = 1;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            fprintf(stderr, "llava-mech make-model: unexpected argument '%s' (the output directory goes after -o)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "llava-mech make-model: %s needs a value (try --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--preset")) preset_name = v;
        else if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "--mmproj-type")) mtype_name = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) dir = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 0);
            if (errno || !*v || *end || v[0] == '-') {
                fprintf(stderr, "llava-mech make-model: --seed '%s' is not a non-negative integer\n", v);
                return 2;
            }
            seed = s;
        } else if (!strcmp(a, "--threads")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 256) {
                fprintf(stderr, "llava-mech make-model: --threads '%s' is not in 1..256\n", v);
                return 2;
            }
            threads = (int)n;
        } else {
            fprintf(stderr, "llava-mech make-model: unknown option '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (!preset_name || !type_name || !dir) {
        fprintf(stderr, "llava-mech make-model: --preset, --type and -o are required (try --help)\n");
        return 2;
    }
    const preset_t *p = preset_find(preset_name);
    if (!p) {
        fprintf(stderr, "llava-mech make-model: unknown preset '%s' (presets:", preset_name);
        for (int i = 0; preset_at(i); i++) fprintf(stderr, " %s", preset_at(i)->name);
        fprintf(stderr, ")\n");
        return 2;
    }
    int type = parse_type(type_name);
    if (type < 0) {
        fprintf(stderr, "llava-mech make-model: unknown type '%s' (f32, f16, q8_0, q4_0, q4_k)\n", type_name);
        return 2;
    }
    int mtype = parse_type(mtype_name);
    if (mtype != QT_F16 && mtype != QT_F32) {
        fprintf(stderr, "llava-mech make-model: --mmproj-type must be f16 or f32, not '%s'\n", mtype_name);
        return 2;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "llava-mech make-model: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "llava-mech make-model: %s: exists and is not a directory (expected the output directory)\n",
                dir);
        return 1;
    }
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "llava-mech make-model: %s: directory not writable: %s\n", dir, strerror(errno));
        return 1;
    }
    char lm_path[4096], mm_path[4096];
    char lower[16];
    snprintf(lower, sizeof lower, "%s", qt_get(type)->name);
    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
    snprintf(lm_path, sizeof lm_path, "%s/%s-%s.gguf", dir, p->name, lower);
    snprintf(mm_path, sizeof mm_path, "%s/mmproj-%s-%s.gguf", dir, p->name, mtype == QT_F16 ? "f16" : "f32");

    bool tty = isatty(STDERR_FILENO);
    progress_t pr_mm = {"mmproj", now_s(), -1}, pr_lm = {"LM", 0, -1};
    err_t err = {0};
    pool_t *pool = NULL;
    if (pool_create(&pool, threads, &err) != ERR_OK) {
        fprintf(stderr, "llava-mech make-model: %s\n", err.msg);
        return 1;
    }
    preset_opts o = {type, mtype, seed, tty ? on_progress : NULL, &pr_mm};
    int rc = 0;
    if (preset_write_mmproj_pool(p, &o, pool, mm_path, &err) != ERR_OK) {
        rc = 1;
    } else {
        pr_lm.t0 = now_s();
        o.progress_user = &pr_lm;
        if (preset_write_lm_pool(p, &o, pool, lm_path, &err) != ERR_OK) {
            rc = 1;
            unlink(mm_path); /* no half-made pair is left behind */
        }
    }
    pool_free(pool);
    if (rc) {
        fprintf(stderr, "llava-mech make-model: %s\n", err.msg);
        return rc;
    }
    printf("%s\n%s\n", lm_path, mm_path);
    return 0;
}
