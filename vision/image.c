/* image.c — stb_image decoding with header checks, gray expansion and alpha compositing. */
#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stb_decode.h"

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
    out->orientation = 1;
    return ERR_OK;
}

/* JPEG segments up to the first SOS: APP1 "Exif\0\0" holds a TIFF header (byte order,
 * 42, IFD0 offset); IFD0 entries are 12 bytes (tag, type, count, value). Every read
 * is bounds-checked; anything unexpected means "no orientation". */
static unsigned rd16(const unsigned char *p, bool le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const unsigned char *p, bool le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int exif_tiff_orientation(const unsigned char *t, size_t n) {
    if (n < 8) return 1;
    bool le;
    if (t[0] == 'I' && t[1] == 'I') le = true;
    else if (t[0] == 'M' && t[1] == 'M') le = false;
    else return 1;
    if (rd16(t + 2, le) != 42) return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned count = rd16(t + ifd, le);
    for (unsigned i = 0; i < count; i++) {
        size_t off = (size_t)ifd + 2 + (size_t)i * 12;
        if (off + 12 > n) return 1;
        if (rd16(t + off, le) == 0x0112) {
            unsigned type = rd16(t + off + 2, le);
            unsigned v = type == 3 ? rd16(t + off + 8, le) : type == 4 ? (unsigned)rd32(t + off + 8, le) : 0;
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
}

int img_exif_orientation(const void *buf, size_t size) {
    const unsigned char *b = buf;
    if (size < 4 || b[0] != 0xFF || b[1] != 0xD8) return 1;
    size_t p = 2;
    while (p + 4 <= size) {
        if (b[p] != 0xFF) return 1;
        unsigned marker = b[p + 1];
        if (marker == 0xFF) { /* fill byte */
            p++;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) return 1; /* start of scan / end of image */
        size_t len = (size_t)b[p + 2] << 8 | b[p + 3];
        if (len < 2 || p + 2 + len > size) return 1;
        const unsigned char *seg = b + p + 4;
        size_t seg_n = len - 2;
        if (marker == 0xE1 && seg_n >= 6 && !memcmp(seg, "Exif\0\0", 6))
            return exif_tiff_orientation(seg + 6, seg_n - 6);
        p += 2 + len;
    }
    return 1;
}

err_code img_orient(const img_t *src, int o, img_t *out, err_t *err) {
    bool swap = o >= 5 && o <= 8;
    int W = src->w, H = src->h;
    err_code rc = img_create(out, swap ? H : W, swap ? W : H, err);
    if (rc) return rc;
    out->orientation = o;
    for (int yo = 0; yo < out->h; yo++)
        for (int xo = 0; xo < out->w; xo++) {
            int x, y;
            switch (o) {
            case 2: x = W - 1 - xo, y = yo; break;
            case 3: x = W - 1 - xo, y = H - 1 - yo; break;
            case 4: x = xo, y = H - 1 - yo; break;
            case 5: x = yo, y = xo; break;                   /* transpose */
            case 6: x = yo, y = H - 1 - xo; break;           /* rotate 90 clockwise */
            case 7: x = W - 1 - yo, y = H - 1 - xo; break;   /* transverse */
            case 8: x = W - 1 - yo, y = xo; break;           /* rotate 90 anticlockwise */
            default: x = xo, y = yo; break;
            }
            memcpy(out->rgb + ((size_t)yo * out->w + xo) * 3, src->rgb + ((size_t)y * W + x) * 3, 3);
        }
    return ERR_OK;
}

/* The one size rule, wherever the size was read (a header, stb's info): both sides
 * non-zero and within the limit. */
static err_code check_size(const char *name, int64_t w, int64_t h, int max_w, int max_h, err_t *err) {
    if (w <= 0 || h <= 0) return err_set(err, ERR_FORMAT, "%s: image has size %lldx%lld", name, (long long)w, (long long)h);
    if (w > max_w || h > max_h)
        return err_set(err, ERR_RANGE, "%s: image is %lldx%lld, larger than the limit %dx%d", name, (long long)w,
                       (long long)h, max_w, max_h);
    return ERR_OK;
}

/* Binary PNM (P5/P6) header check. Debian's stb_image mishandles 16-bit rasters
 * (maxval > 255): it reads past the end of a truncated one, converts them with its
 * 8-bit routine, and keeps the low byte of each big-endian sample (all found by
 * fuzz_image). So 16-bit PNM is refused, and the raster size the header implies
 * is verified before stb sees the file. Returns ERR_OK for non-PNM. */
static err_code pnm_check(const unsigned char *b, size_t n, const char *name, int max_w, int max_h, err_t *err) {
    if (n < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return ERR_OK;
    size_t p = 2;
    uint64_t v[3];
    for (int i = 0; i < 3; i++) {
        for (;;) { /* whitespace and # comments, as stbi__pnm_skip_whitespace */
            while (p < n && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r' || b[p] == '\v' ||
                             b[p] == '\f'))
                p++;
            if (p < n && b[p] == '#') {
                while (p < n && b[p] != '\n' && b[p] != '\r') p++;
                continue;
            }
            break;
        }
        if (p >= n || b[p] < '0' || b[p] > '9') return err_set(err, ERR_FORMAT, "%s: malformed PNM header", name);
        v[i] = 0;
        while (p < n && b[p] >= '0' && b[p] <= '9') {
            v[i] = v[i] * 10 + (uint64_t)(b[p++] - '0');
            if (v[i] > (1u << 24)) return err_set(err, ERR_FORMAT, "%s: PNM header value too large", name);
        }
    }
    err_code rc = check_size(name, (int64_t)v[0], (int64_t)v[1], max_w, max_h, err);
    if (rc) return rc;
    if (v[2] == 0 || v[2] > 65535) return err_set(err, ERR_FORMAT, "%s: PNM maxval %llu", name, (unsigned long long)v[2]);
    if (v[2] > 255)
        return err_set(err, ERR_UNSUPPORTED, "%s: 16-bit PNM (maxval %llu) is not supported; convert it to 8 bits",
                       name, (unsigned long long)v[2]);
    p++; /* the single whitespace byte before the raster */
    uint64_t need = v[0] * v[1] * (b[1] == '6' ? 3u : 1u);
    if (p > n || n - p < need)
        return err_set(err, ERR_FORMAT, "%s: truncated PNM (%llu raster bytes expected, %zu present)", name,
                       (unsigned long long)need, p > n ? (size_t)0 : n - p);
    return ERR_OK;
}

/* JPEG Huffman tables (DHT, ITU T.81 B.2.4.2), checked before stb sees the file:
 * Debian's stb_image writes past its 257-entry tables when the 16 code counts of a
 * table sum to more than 256, and its decoder indexes out of bounds on code counts
 * that no canonical Huffman code has (both found by fuzz_image). The walk follows the
 * marker segments, skipping entropy-coded data (0xFF 0x00 stuffing, RSTn) so that
 * tables defined between the scans of a progressive file are checked too. Returns
 * ERR_OK for non-JPEG data and leaves every other malformation to stb. */
static err_code jpeg_check(const unsigned char *b, size_t n, const char *name, err_t *err) {
    if (n < 3 || b[0] != 0xFF || b[1] != 0xD8) return ERR_OK;
    size_t p = 2;
    while (p + 4 <= n) {
        if (b[p] != 0xFF) { /* entropy-coded data: find the next real marker */
            p++;
            continue;
        }
        unsigned m = b[p + 1];
        if (m == 0xFF) { /* fill byte */
            p++;
            continue;
        }
        if (m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { /* stuffing, RSTn, TEM */
            p += 2;
            continue;
        }
        if (m == 0xD9) break; /* EOI */
        size_t len = (size_t)b[p + 2] << 8 | b[p + 3];
        if (len < 2 || p + 2 + len > n) break; /* truncated: stb reports it */
        if (m == 0xC4) {
            size_t q = p + 4, end = p + 2 + len;
            while (q < end) {
                if (end - q < 17) return err_set(err, ERR_FORMAT, "%s: JPEG Huffman table header truncated", name);
                unsigned code = 0, total = 0;
                for (int j = 1; j <= 16; j++) {
                    unsigned c = b[q + (size_t)j];
                    total += c;
                    code += c;
                    if (code > (1u << j))
                        return err_set(err, ERR_FORMAT, "%s: JPEG Huffman table with impossible code lengths", name);
                    code <<= 1;
                }
                if (total > 256)
                    return err_set(err, ERR_FORMAT, "%s: JPEG Huffman table declares %u codes (at most 256)", name,
                                   total);
                q += 17 + total;
            }
        }
        p += 2 + len;
    }
    return ERR_OK;
}

/* The stored size from the header alone, for the formats with a fixed place for it
 * (PNG IHDR, GIF logical screen, BMP info header, JPEG SOFn, binary PNM); false when
 * the format is not recognised or the header is cut. stb's own header check refuses
 * sizes past its 2^30-byte limit with "unknown image type" (it tries every format and
 * keeps the last reason), and some 0-sized headers the same way: reading the size
 * here first turns both into the clear errors the contract promises. */
static bool header_size(const unsigned char *b, size_t n, uint64_t *w, uint64_t *h) {
    if (n >= 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4)) {
        *w = rd32(b + 16, false), *h = rd32(b + 20, false);
        return true;
    }
    if (n >= 10 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) {
        *w = rd16(b + 6, true), *h = rd16(b + 8, true);
        return true;
    }
    if (n >= 26 && b[0] == 'B' && b[1] == 'M') {
        uint32_t hsz = rd32(b + 14, true);
        if (hsz == 12) { /* OS/2 BITMAPCOREHEADER: 16-bit sizes */
            *w = rd16(b + 18, true), *h = rd16(b + 20, true);
        } else {
            int32_t sw = (int32_t)rd32(b + 18, true), sh = (int32_t)rd32(b + 22, true);
            *w = sw < 0 ? 0u - (uint64_t)(int64_t)sw : (uint64_t)sw;
            *h = sh < 0 ? 0u - (uint64_t)(int64_t)sh : (uint64_t)sh; /* negative: top-down rows */
        }
        return true;
    }
    if (n >= 4 && b[0] == 0xFF && b[1] == 0xD8) { /* markers up to the first SOFn (ITU T.81 B.2.2) */
        size_t p = 2;
        while (p + 4 <= n && b[p] == 0xFF) {
            unsigned m = b[p + 1];
            if (m == 0xFF) {
                p++;
                continue;
            }
            if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
                p += 2;
                continue;
            }
            if (m == 0xDA || m == 0xD9) return false;
            size_t len = (size_t)b[p + 2] << 8 | b[p + 3];
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                if (len < 7 || p + 9 > n) return false;
                *h = rd16(b + p + 5, false), *w = rd16(b + p + 7, false);
                return true;
            }
            if (len < 2) return false;
            p += 2 + len;
        }
    }
    return false;
}

err_code img_load_memory(img_t *out, const void *buf, size_t size, const char *name, const img_opts *opts,
                         err_t *err) {
    memset(out, 0, sizeof *out);
    int max_w = opts && opts->max_w > 0 ? opts->max_w : IMG_MAX_SIDE;
    int max_h = opts && opts->max_h > 0 ? opts->max_h : IMG_MAX_SIDE;
    if (size == 0) return err_set(err, ERR_FORMAT, "%s: empty file, not an image", name);
    if (size > (size_t)0x7fffffff) return err_set(err, ERR_RANGE, "%s: file of %zu bytes is too large", name, size);

    /* stb also decodes PSD, Radiance HDR and Softimage PIC; they are not in our
     * contract, so their (less exercised) decoders are never reached. */
    const unsigned char *b = buf;
    if ((size >= 4 && !memcmp(b, "8BPS", 4)) || (size >= 2 && !memcmp(b, "#?", 2)) ||
        (size >= 4 && b[0] == 0x53 && b[1] == 0x80 && b[2] == 0xF6 && b[3] == 0x34))
        return err_set(err, ERR_UNSUPPORTED, "%s: PSD/HDR/PIC images are not supported (PNG, JPEG, BMP, GIF, TGA, PNM)",
                       name);
    uint64_t hw = 0, hh = 0;
    err_code rc = header_size(b, size, &hw, &hh) ? check_size(name, (int64_t)hw, (int64_t)hh, max_w, max_h, err) : ERR_OK;
    if (!rc) rc = pnm_check(buf, size, name, max_w, max_h, err);
    if (!rc) rc = jpeg_check(buf, size, name, err);
    if (rc) return rc;
    int w = 0, h = 0, comp = 0;
    const char *why = NULL;
    if (!stbd_info(buf, (int)size, &w, &h, &comp, &why))
        return err_set(err, ERR_FORMAT, "%s: not a readable image (%s); supported: PNG, JPEG, BMP, GIF, TGA, PNM",
                       name, why);
    if ((rc = check_size(name, w, h, max_w, max_h, err))) return rc;

    /* Components are expanded here rather than by stb (req_comp = 0), so that stb's
     * conversion routines, which fuzzing found unsafe for 16-bit PNM, are never on
     * the path whatever the format. */
    int dw = 0, dh = 0, dc = 0;
    /* stb's largest legitimate buffers: a few w*h*4 frames (GIF keeps three, PNG its
     * filtered rows) and copies of the compressed data */
    const size_t max_alloc = (size_t)w * (size_t)h * 16u + 2 * size + ((size_t)16 << 20);
    unsigned char *px = stbd_load(buf, (int)size, max_alloc, &dw, &dh, &dc, &why);
    if (!px && why == stbd_too_large)
        return err_set(err, ERR_FORMAT, "%s: cannot decode image (it declares data far larger than a %dx%d image)",
                       name, w, h);
    if (!px) return err_set(err, ERR_FORMAT, "%s: cannot decode image (%s)", name, why);
    if (dw != w || dh != h || dc < 1 || dc > 4) {
        stbd_free(px);
        return err_set(err, ERR_FORMAT, "%s: header says %dx%d but decoded %dx%dx%d", name, w, h, dw, dh, dc);
    }
    rc = img_create(out, w, h, err);
    if (rc) {
        stbd_free(px);
        return err_prefix(err, "%s", name);
    }
    size_t n = (size_t)w * (size_t)h;
    int gray = dc <= 2, has_alpha = dc == 2 || dc == 4;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *s = px + i * (size_t)dc;
        unsigned a = has_alpha ? s[dc - 1] : 255u;
        for (int c = 0; c < 3; c++) {
            unsigned v = s[gray ? 0 : c];
            /* over white: c' = (a c + (255 - a) 255) / 255, rounded to nearest */
            out->rgb[3 * i + c] = has_alpha ? (uint8_t)((a * v + (255u - a) * 255u + 127u) / 255u) : (uint8_t)v;
        }
    }
    stbd_free(px);
    int o = opts && opts->ignore_exif ? 1 : img_exif_orientation(buf, size);
    if (o != 1) {
        img_t r;
        if ((rc = img_orient(out, o, &r, err))) {
            img_free(out);
            return err_prefix(err, "%s", name);
        }
        img_free(out);
        *out = r;
    }
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
