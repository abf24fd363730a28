/* image.c — stb_image decoding with header checks, gray expansion and alpha compositing. */
#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The implementation comes from -lstb (libstb-dev); only the declarations here. */
#include <stb_image.h>

void img_free(img_t *im) {
    if (!im) return;
    free(im->rgb);
    im->rgb = NULL;
    im->w = im->h = 0;
}

err_code img_create(img_t *out, int w, int h, err_t *err) {
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0) return err_set(err, ERR_ARG, "image size %dx%d must be positive", w, h);
    out->rgb = calloc((size_t)w * (size_t)h, 3);
    if (!out->rgb) return err_set(err, ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    out->w = w;
    out->h = h;
    return ERR_OK;
}

err_code img_load_memory(img_t *out, const void *buf, size_t size, const char *name, const img_opts *opts,
                         err_t *err) {
    memset(out, 0, sizeof *out);
    int max_w = opts && opts->max_w > 0 ? opts->max_w : IMG_MAX_SIDE;
    int max_h = opts && opts->max_h > 0 ? opts->max_h : IMG_MAX_SIDE;
    if (size == 0) return err_set(err, ERR_FORMAT, "%s: empty file, not an image", name);
    if (size > (size_t)0x7fffffff) return err_set(err, ERR_RANGE, "%s: file of %zu bytes is too large", name, size);

    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(buf, (int)size, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        return err_set(err, ERR_FORMAT, "%s: not a readable image (%s); supported: PNG, JPEG, BMP, GIF, TGA, PNM",
                       name, why ? why : "unknown format");
    }
    if (w <= 0 || h <= 0) return err_set(err, ERR_FORMAT, "%s: image has size %dx%d", name, w, h);
    if (w > max_w || h > max_h)
        return err_set(err, ERR_RANGE, "%s: image is %dx%d, larger than the limit %dx%d", name, w, h, max_w, max_h);

    int has_alpha = comp == 2 || comp == 4;
    int want = has_alpha ? 4 : 3;
    int dw = 0, dh = 0, dc = 0;
    unsigned char *px = stbi_load_from_memory(buf, (int)size, &dw, &dh, &dc, want);
    if (!px) {
        const char *why = stbi_failure_reason();
        return err_set(err, ERR_FORMAT, "%s: cannot decode image (%s)", name, why ? why : "unknown reason");
    }
    if (dw != w || dh != h) {
        stbi_image_free(px);
        return err_set(err, ERR_FORMAT, "%s: header says %dx%d but decoded %dx%d", name, w, h, dw, dh);
    }
    err_code rc = img_create(out, w, h, err);
    if (rc) {
        stbi_image_free(px);
        return err_prefix(err, "%s", name);
    }
    size_t n = (size_t)w * (size_t)h;
    if (!has_alpha) {
        memcpy(out->rgb, px, n * 3);
    } else {
        /* over white: c' = (a c + (255 - a) 255) / 255, rounded to nearest */
        for (size_t i = 0; i < n; i++) {
            unsigned a = px[4 * i + 3];
            for (int c = 0; c < 3; c++) {
                unsigned v = a * px[4 * i + c] + (255u - a) * 255u;
                out->rgb[3 * i + c] = (uint8_t)((v + 127u) / 255u);
            }
        }
    }
    stbi_image_free(px);
    return ERR_OK;
}

err_code img_load(img_t *out, const char *path, const img_opts *opts, err_t *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return err_set(err, ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return err_set(err, ERR_IO, "%s: cannot determine size (not a regular file?)", path);
    }
    if ((size_t)sz > IMG_MAX_FILE_BYTES) {
        fclose(f);
        return err_set(err, ERR_RANGE, "%s: file of %ld bytes exceeds the %zu-byte limit", path, sz,
                       IMG_MAX_FILE_BYTES);
    }
    unsigned char *buf = malloc(sz > 0 ? (size_t)sz : 1);
    if (!buf) {
        fclose(f);
        return err_set(err, ERR_NOMEM, "%s: out of memory reading %ld bytes", path, sz);
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || got != (size_t)sz) {
        free(buf);
        return err_set(err, ERR_IO, "%s: read failed", path);
    }
    err_code rc = img_load_memory(out, buf, (size_t)sz, path, opts, err);
    free(buf);
    return rc;
}
