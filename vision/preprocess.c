/* preprocess.c — Pillow-compatible bicubic resize, pad/crop pipelines, normalisation
 * and the geometry back to the original image. */
#include "preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pillow Resample.c: 32 bits - 8 (pixel) - 2 (headroom). */
#define PP_PRECISION_BITS 22

int pp_pipeline_from_name(const char *name) {
    if (!strcmp(name, "pad")) return PP_PAD;
    if (!strcmp(name, "crop")) return PP_CROP;
    if (!strcmp(name, "llamacpp")) return PP_LLAMACPP;
    return -1;
}

const char *pp_pipeline_name(pp_pipeline p) {
    return p == PP_CROP ? "crop" : p == PP_LLAMACPP ? "llamacpp" : "pad";
}

/* Keys' cubic convolution kernel with a = -0.5 (Pillow's BICUBIC). */
static double bicubic_kernel(double x) {
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

typedef struct {
    int ksize;
    int o0;          /* first output index held (a window of the full output) */
    int *bounds;     /* [out - o0][2]: first input index, count */
    int32_t *coeffs; /* [out - o0][ksize] fixed point */
} pp_coeffs;

static void coeffs_free(pp_coeffs *c) {
    free(c->bounds);
    free(c->coeffs);
}

/* Pillow precompute_coeffs + normalize_coeffs_8bpc: output pixel xx has centre
 * (xx + 0.5) * scale in input coordinates; when downscaling the kernel is stretched
 * by scale (support 2*scale) so every input pixel contributes (antialiasing). */
static err_code coeffs_make(pp_coeffs *c, int in_size, int out_size, int o0, int n_out, err_t *err) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->o0 = o0;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)n_out);
    c->coeffs = calloc((size_t)n_out * (size_t)c->ksize, sizeof(int32_t));
    double *pre = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->coeffs || !pre) {
        free(pre);
        coeffs_free(c);
        return err_set(err, ERR_NOMEM, "resize %d -> %d: out of memory for filter weights", in_size, out_size);
    }
    for (int xx = o0; xx < o0 + n_out; xx++) {
        double center = (xx + 0.5) * scale;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        int cnt = xmax - xmin;
        if (cnt > c->ksize) cnt = c->ksize;
        double ww = 0;
        for (int x = 0; x < cnt; x++) {
            double w = bicubic_kernel((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int32_t *k = c->coeffs + (size_t)(xx - o0) * (size_t)c->ksize;
        for (int x = 0; x < cnt; x++) {
            double v = ww != 0.0 ? pre[x] / ww : pre[x];
            double f = v * (double)(1 << PP_PRECISION_BITS);
            k[x] = (int32_t)(v < 0 ? -0.5 + f : 0.5 + f);
        }
        c->bounds[2 * (xx - o0)] = xmin;
        c->bounds[2 * (xx - o0) + 1] = cnt;
    }
    free(pre);
    return ERR_OK;
}

static inline uint8_t clip8(int32_t acc) {
    int32_t v = acc >> PP_PRECISION_BITS; /* arithmetic shift, as Pillow */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One source row (sw pixels) -> output columns [x0, x0 + nx) of the horizontal pass. */
static void hpass_row(const uint8_t *row, uint8_t *out, int x0, int nx, const pp_coeffs *c) {
    for (int i = 0; i < nx; i++) {
        int xx = x0 + i - c->o0;
        int xmin = c->bounds[2 * xx], cnt = c->bounds[2 * xx + 1];
        const int32_t *k = c->coeffs + (size_t)xx * c->ksize;
        int32_t s0 = 1 << (PP_PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < cnt; x++) {
            const uint8_t *p = row + (size_t)(xmin + x) * 3;
            s0 += p[0] * k[x];
            s1 += p[1] * k[x];
            s2 += p[2] * k[x];
        }
        out[3 * i] = clip8(s0);
        out[3 * i + 1] = clip8(s1);
        out[3 * i + 2] = clip8(s2);
    }
}

/* Vertical pass: src holds rows [r0, ...) of width w; writes output rows
 * [y0, y0 + ny) into dst. */
static void vpass(const uint8_t *src, int r0, int w, uint8_t *dst, int y0, int ny, const pp_coeffs *c) {
    for (int j = 0; j < ny; j++) {
        int yy = y0 + j - c->o0;
        int ymin = c->bounds[2 * yy], cnt = c->bounds[2 * yy + 1];
        const int32_t *k = c->coeffs + (size_t)yy * c->ksize;
        uint8_t *out = dst + (size_t)j * w * 3;
        for (int x = 0; x < w; x++) {
            int32_t s0 = 1 << (PP_PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int y = 0; y < cnt; y++) {
                const uint8_t *p = src + ((size_t)(ymin - r0 + y) * w + x) * 3;
                s0 += p[0] * k[y];
                s1 += p[1] * k[y];
                s2 += p[2] * k[y];
            }
            out[3 * x] = clip8(s0);
            out[3 * x + 1] = clip8(s1);
            out[3 * x + 2] = clip8(s2);
        }
    }
}

/* Source rows on demand: either a plain image or the pad pipeline's square (the
 * image pasted on a constant colour), which is never materialised — a 16384 x 16
 * photo would otherwise need an 800 MB square. */
typedef struct {
    const uint8_t *img;
    int w, h;         /* the image */
    int L, px, py;    /* virtual square side and paste offset (L = 0: plain image) */
    uint8_t pad[3];
    uint8_t *rowbuf;  /* L*3 bytes for the padded row */
    int rowbuf_y;     /* image row currently in rowbuf, -1 none */
} row_src;

static bool row_is_const(const row_src *r, int y) { return r->L && (y < r->py || y >= r->py + r->h); }

static const uint8_t *row_get(row_src *r, int y) {
    if (!r->L) return r->img + (size_t)y * r->w * 3;
    int iy = y - r->py;
    if (iy < 0 || iy >= r->h) iy = -1;
    if (r->rowbuf_y == -2 || (r->rowbuf_y == -1) != (iy == -1)) { /* (re)fill the pad colour */
        for (int x = 0; x < r->L; x++) memcpy(r->rowbuf + 3 * x, r->pad, 3);
    }
    if (iy >= 0) memcpy(r->rowbuf + (size_t)r->px * 3, r->img + (size_t)iy * r->w * 3, (size_t)r->w * 3);
    r->rowbuf_y = iy;
    return r->rowbuf;
}

/* Output window [x0, x0+ow) x [y0, y0+oh) of Pillow's bicubic resize of the sw x sh
 * source to dw x dh: every output pixel is computed exactly as the full resize would
 * (horizontal pass first, rounded to uint8, then vertical), only the rows and
 * columns the window needs are computed. */
static err_code resize_window(row_src *src, int sw, int sh, int dw, int dh, int x0, int y0, int ow, int oh,
                              uint8_t *dst, err_t *err) {
    bool need_h = dw != sw, need_v = dh != sh;
    pp_coeffs ch = {0}, cv = {0};
    err_code rc;
    if (need_h && (rc = coeffs_make(&ch, sw, dw, x0, ow, err))) return rc;
    if (need_v && (rc = coeffs_make(&cv, sh, dh, y0, oh, err))) {
        coeffs_free(&ch);
        return rc;
    }
    int r0 = y0, r1 = y0 + oh; /* source rows the vertical pass reads */
    if (need_v) {
        r0 = cv.bounds[0];
        r1 = 0;
        for (int j = 0; j < oh; j++) {
            int end = cv.bounds[2 * j] + cv.bounds[2 * j + 1];
            if (end > r1) r1 = end;
        }
    }
    uint8_t *tmp = need_v ? malloc((size_t)ow * (size_t)(r1 - r0) * 3) : NULL;
    uint8_t *cst = need_h && src->L ? malloc((size_t)ow * 3) : NULL;
    if ((need_v && !tmp) || (need_h && src->L && !cst)) {
        free(tmp);
        free(cst);
        coeffs_free(&ch);
        coeffs_free(&cv);
        return err_set(err, ERR_NOMEM, "resize %dx%d -> %dx%d: out of memory", sw, sh, dw, dh);
    }
    bool cst_done = false;
    for (int y = r0; y < r1; y++) {
        uint8_t *out = need_v ? tmp + (size_t)(y - r0) * ow * 3 : dst + (size_t)(y - y0) * ow * 3;
        if (!need_h) {
            memcpy(out, row_get(src, y) + (size_t)x0 * 3, (size_t)ow * 3);
        } else if (row_is_const(src, y)) {
            if (!cst_done) hpass_row(row_get(src, y), cst, x0, ow, &ch);
            cst_done = true;
            memcpy(out, cst, (size_t)ow * 3);
        } else {
            hpass_row(row_get(src, y), out, x0, ow, &ch);
        }
    }
    if (need_v) vpass(tmp, r0, ow, dst, y0, oh, &cv);
    free(tmp);
    free(cst);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return ERR_OK;
}

err_code pp_resize_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, err_t *err) {
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
        return err_set(err, ERR_ARG, "resize %dx%d -> %dx%d: sizes must be positive", sw, sh, dw, dh);
    row_src rs = {.img = src, .w = sw, .h = sh};
    return resize_window(&rs, sw, sh, dw, dh, 0, 0, dw, dh, dst, err);
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* llama.cpp tools/mtmd/mtmd-image.cpp img_tool::resize_bicubic (RESIZE_ALGO_BICUBIC):
 * output (j, i) samples the source at (tx j, ty i), tx = nx / tw (no half-pixel
 * offset, no antialiasing), cubic convolution with a = -0.5 written as finite
 * differences of the 4x4 neighbourhood (edge pixels repeated). The float/double
 * mix of the original is kept so results match it. */
static void llamacpp_bicubic(const uint8_t *img, int nx, int ny, uint8_t *dst, int tw, int th) {
    const float tx = (float)nx / (float)tw, ty = (float)ny / (float)th;
    for (int i = 0; i < th; i++)
        for (int j = 0; j < tw; j++) {
            int x = (int)(tx * j), y = (int)(ty * i);
            float dx = tx * j - x, dy = ty * i - y;
            for (int k = 0; k < 3; k++) {
                float C[4];
                for (int jj = 0; jj < 4; jj++) {
                    const uint8_t *row = img + (size_t)clampi(y - 1 + jj, 0, ny - 1) * nx * 3;
                    float p0 = row[clampi(x - 1, 0, nx - 1) * 3 + k], p1 = row[clampi(x, 0, nx - 1) * 3 + k];
                    float p2 = row[clampi(x + 1, 0, nx - 1) * 3 + k], p3 = row[clampi(x + 2, 0, nx - 1) * 3 + k];
                    float d0 = p0 - p1, d2 = p2 - p1, d3 = p3 - p1, a0 = p1;
                    float a1 = (float)(-1.0 / 3 * d0 + d2 - 1.0 / 6 * d3);
                    float a2 = (float)(1.0 / 2 * d0 + 1.0 / 2 * d2);
                    float a3 = (float)(-1.0 / 6 * d0 - 1.0 / 2 * d2 + 1.0 / 6 * d3);
                    C[jj] = a0 + a1 * dx + a2 * dx * dx + a3 * dx * dx * dx;
                }
                float d0 = C[0] - C[1], d2 = C[2] - C[1], d3 = C[3] - C[1], a0 = C[1];
                float a1 = (float)(-1.0 / 3 * d0 + d2 - 1.0 / 6 * d3);
                float a2 = (float)(1.0 / 2 * d0 + 1.0 / 2 * d2);
                float a3 = (float)(-1.0 / 6 * d0 - 1.0 / 2 * d2 + 1.0 / 6 * d3);
                float Cc = a0 + a1 * dy + a2 * dy * dy + a3 * dy * dy * dy;
                float r = roundf(Cc);
                dst[((size_t)i * tw + j) * 3 + k] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            }
        }
}

static uint8_t mean_to_u8(float m) {
    /* LLaVA: tuple(int(x * 255) for x in image_mean) — truncation */
    double v = (double)m * 255.0;
    if (v < 0) v = 0;
    if (v > 255) v = 255;
    return (uint8_t)v;
}

err_code pp_model_image(const img_t *src, pp_pipeline pipe, int S, int patch_size, const float mean[3], img_t *out,
                        pp_geom *g, err_t *err) {
    memset(g, 0, sizeof *g);
    memset(out, 0, sizeof *out);
    if (S <= 0 || patch_size <= 0 || S % patch_size)
        return err_set(err, ERR_ARG, "image_size %d is not a positive multiple of patch_size %d", S, patch_size);
    if (!src->rgb || src->w <= 0 || src->h <= 0) return err_set(err, ERR_ARG, "empty input image");
    int w = src->w, h = src->h;
    g->pipeline = pipe;
    g->src_w = w;
    g->src_h = h;
    g->image_size = S;
    g->patch_size = patch_size;
    g->grid = S / patch_size;
    err_code rc = img_create(out, S, S, err);
    if (rc) return rc;

    if (pipe == PP_PAD) {
        for (int c = 0; c < 3; c++) g->pad_rgb[c] = mean_to_u8(mean[c]);
        int L = w > h ? w : h;
        int px = (L - w) / 2, py = (L - h) / 2;
        uint8_t *rowbuf = malloc((size_t)L * 3);
        if (!rowbuf) {
            img_free(out);
            return err_set(err, ERR_NOMEM, "out of memory padding a %dx%d image", w, h);
        }
        row_src rs = {.img = src->rgb, .w = w, .h = h, .L = L, .px = px, .py = py, .rowbuf = rowbuf, .rowbuf_y = -2};
        memcpy(rs.pad, g->pad_rgb, 3);
        rc = resize_window(&rs, L, L, S, S, 0, 0, S, S, out->rgb, err);
        free(rowbuf);
        g->sx = g->sy = (double)S / L;
        g->ox = px * g->sx;
        g->oy = py * g->sy;
    } else if (pipe == PP_LLAMACPP) {
        /* mtmd fixed_size preprocessor with image_resize_pad: fit inside S x S keeping
         * the aspect (ceil), its bicubic, centred on the pad colour (122,116,104 for
         * the mlp projector — the CLIP mean, as LLaVA's). */
        for (int c = 0; c < 3; c++) g->pad_rgb[c] = mean_to_u8(mean[c]);
        if (w == S && h == S) {
            memcpy(out->rgb, src->rgb, (size_t)S * S * 3);
            g->sx = g->sy = 1;
            g->ox = g->oy = 0;
            return ERR_OK;
        }
        float scale_w = (float)S / (float)w, scale_h = (float)S / (float)h;
        float scale = scale_w < scale_h ? scale_w : scale_h;
        int nw = (int)ceilf((float)w * scale), nh = (int)ceilf((float)h * scale);
        if (nw > S) nw = S;
        if (nh > S) nh = S;
        if (nw < 1) nw = 1;
        if (nh < 1) nh = 1;
        uint8_t *tmp = malloc((size_t)nw * nh * 3);
        if (!tmp) {
            img_free(out);
            return err_set(err, ERR_NOMEM, "out of memory resizing to %dx%d", nw, nh);
        }
        llamacpp_bicubic(src->rgb, w, h, tmp, nw, nh);
        for (size_t i = 0; i < (size_t)S * S; i++) memcpy(out->rgb + 3 * i, g->pad_rgb, 3);
        int offx = (S - nw) / 2, offy = (S - nh) / 2;
        for (int y = 0; y < nh; y++)
            memcpy(out->rgb + ((size_t)(y + offy) * S + offx) * 3, tmp + (size_t)y * nw * 3, (size_t)nw * 3);
        free(tmp);
        /* output pixel centre j + 1/2 samples source centre tx j + 1/2 */
        double tx = (float)w / (float)nw, ty = (float)h / (float)nh;
        g->sx = 1.0 / tx;
        g->sy = 1.0 / ty;
        g->ox = offx + 0.5 - 0.5 * g->sx;
        g->oy = offy + 0.5 - 0.5 * g->sy;
    } else {
        /* HF get_resize_output_image_size(default_to_square=False): the short side
         * becomes S, the long side int(S * long / short). */
        int nw, nh;
        if (w <= h) {
            nw = S;
            nh = (int)((double)S * h / w);
        } else {
            nh = S;
            nw = (int)((double)S * w / h);
        }
        /* only the centre S x S window of the resized image is computed */
        int left = (nw - S) / 2, top = (nh - S) / 2;
        row_src rs = {.img = src->rgb, .w = w, .h = h};
        rc = resize_window(&rs, w, h, nw, nh, left, top, S, S, out->rgb, err);
        g->sx = (double)nw / w;
        g->sy = (double)nh / h;
        g->ox = -left;
        g->oy = -top;
    }
    if (rc) img_free(out);
    return rc;
}

void pp_normalize(const img_t *m, const float mean[3], const float std_[3], float *out) {
    size_t n = (size_t)m->w * m->h;
    for (int c = 0; c < 3; c++) {
        float *dst = out + (size_t)c * n;
        float inv = 1.0f / std_[c];
        for (size_t i = 0; i < n; i++) dst[i] = ((float)m->rgb[3 * i + c] / 255.0f - mean[c]) * inv;
    }
}

err_code pp_run(const img_t *src, pp_pipeline pipe, int S, int patch_size, const float mean[3], const float std_[3],
                float *out, pp_geom *g, err_t *err) {
    img_t m;
    err_code rc = pp_model_image(src, pipe, S, patch_size, mean, &m, g, err);
    if (rc) return rc;
    pp_normalize(&m, mean, std_, out);
    img_free(&m);
    return ERR_OK;
}

bool pp_cell_box(const pp_geom *g, int r, int c, double box[4]) {
    double p = g->patch_size;
    double x0 = (c * p - g->ox) / g->sx, x1 = ((c + 1) * p - g->ox) / g->sx;
    double y0 = (r * p - g->oy) / g->sy, y1 = ((r + 1) * p - g->oy) / g->sy;
    box[0] = x0 < 0 ? 0 : x0 > g->src_w ? g->src_w : x0;
    box[2] = x1 < 0 ? 0 : x1 > g->src_w ? g->src_w : x1;
    box[1] = y0 < 0 ? 0 : y0 > g->src_h ? g->src_h : y0;
    box[3] = y1 < 0 ? 0 : y1 > g->src_h ? g->src_h : y1;
    return box[2] > box[0] && box[3] > box[1];
}

void pp_grid_affine(const pp_geom *g, double *gsx, double *gox, double *gsy, double *goy) {
    double p = g->patch_size;
    *gsx = g->sx / p;
    *gox = g->ox / p;
    *gsy = g->sy / p;
    *goy = g->oy / p;
}
