#include "cli_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/npy.h"

int cli_fail(const char *cmd, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llava-mech %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

bool cli_parse_u64(const char *s, unsigned long long *out) {
    if (!s || !*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool cli_parse_int(const char *s, long lo, long hi, int *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

bool cli_parse_real(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* The occlusion baseline named by --baseline: zero, auto (<LM>.mean-embd.npy beside
 * the LM file when it exists, else zero) or an .npy of the LM width, or of one such
 * row per image position. */
err_code cli_load_baseline(const char *spec, const llava_t *l, float **out, int64_t *rows, const char **name,
                           err_t *err) {
    *out = NULL;
    *rows = 1;
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
    const int64_t D = l->lm->cfg.dim, P = l->n_image, ne = npy_nelements(&a);
    if (a.dtype != NPY_F32 || (ne != D && ne != P * D)) {
        npy_free(&a);
        return err_set(err, ERR_MISMATCH,
                       "%s: baseline must be %lld float32 values (the LM width) or %lld x %lld (one per image "
                       "position)", path, (long long)D, (long long)P, (long long)D);
    }
    *rows = ne / D;
    *out = a.data;
    a.data = NULL;
    npy_free(&a);
    if (strcmp(spec, "auto")) *name = *rows > 1 ? "file, one row per position" : "file";
    else *name = *rows > 1 ? "mean image embedding per position (shipped)" : "mean image embedding (shipped)";
    return ERR_OK;
}
