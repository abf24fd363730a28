/* npy.c — NumPy .npy reader/writer (float32, int32), format per numpy/lib/format.py. */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static const char *dtype_descr(npy_dtype t) { return t == NPY_I32 ? "<i4" : "<f4"; }

int64_t npy_nelements(const npy_array_t *a) {
    int64_t n = 1;
    for (int i = 0; i < a->n_dims; i++) n *= a->shape[i];
    return n;
}

void npy_free(npy_array_t *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

err_code npy_write(const char *path, npy_dtype dtype, const void *data, int n_dims, const int64_t *shape,
                   err_t *err) {
    if (n_dims < 0 || n_dims > NPY_MAX_DIMS)
        return err_set(err, ERR_ARG, "%s: %d dimensions (at most %d)", path, n_dims, NPY_MAX_DIMS);
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", dtype_descr(dtype));
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (shape[i] < 0) return err_set(err, ERR_ARG, "%s: negative dimension %d", path, i);
        n *= shape[i];
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%lld%s", (long long)shape[i],
                        (n_dims == 1 || i + 1 < n_dims) ? "," : "");
        if (i + 1 < n_dims) len += snprintf(dict + len, sizeof dict - (size_t)len, " ");
    }
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    /* Version 1.0: 10 bytes of preamble; pad the dict with spaces and a final '\n'
     * so that the data starts on a 64-byte boundary (numpy >= 1.20 aligns to 64). */
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t pad = padded - total;
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    size_t hlen = (size_t)len + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);

    FILE *f = fopen(path, "wb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (n == 0 || fwrite(data, 4, (size_t)n, f) == (size_t)n);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return err_set(err, ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return ERR_OK;
}

/* Finds `'key':` in the header dict and returns a pointer just after the colon. */
static const char *dict_find(const char *h, size_t hlen, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 < hlen; i++) {
        if ((h[i] == '\'' || h[i] == '"') && !memcmp(h + i + 1, key, kl) && h[i + 1 + kl] == h[i]) {
            const char *p = h + i + kl + 2;
            while (p < h + hlen && *p == ' ') p++;
            if (p < h + hlen && *p == ':') return p + 1;
        }
    }
    return NULL;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    return p;
}

err_code npy_parse(const void *buf, size_t size, const char *name, npy_array_t *out, err_t *err) {
    const unsigned char *b = buf;
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(b, npy_magic, 6) != 0)
        return err_set(err, ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    size_t hoff, hlen;
    if (b[6] == 1) {
        hoff = 10;
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if (b[6] == 2 || b[6] == 3) {
        if (size < 12) return err_set(err, ERR_FORMAT, "%s: truncated header", name);
        hoff = 12;
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else {
        return err_set(err, ERR_UNSUPPORTED, "%s: .npy format version %d.%d", name, b[6], b[7]);
    }
    if (hlen > size - hoff) return err_set(err, ERR_FORMAT, "%s: header length %zu beyond end of file", name, hlen);
    const char *h = (const char *)b + hoff, *end = h + hlen;

    const char *p = dict_find(h, hlen, "descr");
    if (!p) return err_set(err, ERR_FORMAT, "%s: header has no 'descr'", name);
    p = skip_ws(p, end);
    if (end - p < 5 || (p[0] != '\'' && p[0] != '"'))
        return err_set(err, ERR_FORMAT, "%s: malformed 'descr'", name);
    if (!memcmp(p + 1, "<f4", 3) && p[4] == p[0]) out->dtype = NPY_F32;
    else if (!memcmp(p + 1, "<i4", 3) && p[4] == p[0]) out->dtype = NPY_I32;
    else return err_set(err, ERR_UNSUPPORTED, "%s: dtype %.6s (only '<f4' and '<i4')", name, p);

    p = dict_find(h, hlen, "fortran_order");
    if (!p) return err_set(err, ERR_FORMAT, "%s: header has no 'fortran_order'", name);
    p = skip_ws(p, end);
    if (end - p >= 4 && !memcmp(p, "True", 4))
        return err_set(err, ERR_UNSUPPORTED, "%s: Fortran-order arrays are not supported", name);
    if (end - p < 5 || memcmp(p, "False", 5) != 0) return err_set(err, ERR_FORMAT, "%s: malformed 'fortran_order'", name);

    p = dict_find(h, hlen, "shape");
    if (!p) return err_set(err, ERR_FORMAT, "%s: header has no 'shape'", name);
    p = skip_ws(p, end);
    if (p >= end || *p != '(') return err_set(err, ERR_FORMAT, "%s: malformed 'shape'", name);
    p++;
    int64_t n = 1;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end) return err_set(err, ERR_FORMAT, "%s: unterminated 'shape'", name);
        if (*p == ')') break;
        if (*p < '0' || *p > '9') return err_set(err, ERR_FORMAT, "%s: malformed 'shape'", name);
        int64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return err_set(err, ERR_FORMAT, "%s: dimension too large", name);
            v = v * 10 + (*p++ - '0');
        }
        if (out->n_dims == NPY_MAX_DIMS)
            return err_set(err, ERR_UNSUPPORTED, "%s: more than %d dimensions", name, NPY_MAX_DIMS);
        out->shape[out->n_dims++] = v;
        if (v != 0 && n > INT64_MAX / 4 / v) return err_set(err, ERR_FORMAT, "%s: array too large", name);
        n *= v;
        p = skip_ws(p, end);
        if (p < end && *p == ',') p++;
    }
    size_t data_off = hoff + hlen;
    size_t nbytes = (size_t)n * 4;
    if (size - data_off != nbytes)
        return err_set(err, ERR_FORMAT, "%s: %zu data bytes for shape needing %zu", name, size - data_off, nbytes);
    out->data = malloc(nbytes ? nbytes : 1);
    if (!out->data) return err_set(err, ERR_NOMEM, "%s: out of memory (%zu bytes)", name, nbytes);
    memcpy(out->data, b + data_off, nbytes);
    return ERR_OK;
}

err_code npy_read(const char *path, npy_array_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return err_set(err, ERR_IO, "%s: cannot seek", path);
    }
    long sz = ftell(f);
    rewind(f);
    if (sz < 0) {
        fclose(f);
        return err_set(err, ERR_IO, "%s: cannot size", path);
    }
    unsigned char *buf = malloc((size_t)sz + 1);
    if (!buf) {
        fclose(f);
        return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) {
        free(buf);
        return err_set(err, ERR_IO, "%s: short read", path);
    }
    err_code rc = npy_parse(buf, (size_t)sz, path, out, err);
    free(buf);
    return rc;
}
