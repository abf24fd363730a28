#include "overlay.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const uint8_t WHITE[3] = {255, 255, 255};
static const uint8_t BLACK[3] = {0, 0, 0};
static const uint8_t DARK[3] = {40, 40, 40};

#define TITLE_PX 16.0f
#define SUB_PX 12.0f
#define LABEL_PX 11.0f
#define BAR_W 14
#define BAR_GAP 10
#define BAR_LABEL_W 70
#define MARGIN 8

void overlay_style_default(overlay_style *st) {
    memset(st, 0, sizeof *st);
    st->cmap = CMAP_VIRIDIS;
    st->alpha = 0.55f;
}

void overlay_range(const float *map, int64_t n, float *vmin, float *vmax) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(map[i])) continue;
        if (map[i] < lo) lo = map[i];
        if (map[i] > hi) hi = map[i];
    }
    if (lo > hi) lo = hi = 0;
    *vmin = lo;
    *vmax = hi;
}

bool overlay_sample(const float *map, int gh, int gw, double gx, double gy, bool nearest, float *out) {
    if (!(gx >= 0 && gy >= 0 && gx < gw && gy < gh)) return false;
    if (nearest) {
        *out = map[(int)gy * gw + (int)gx];
        return true;
    }
    /* Bilinear between cell centres (c + 0.5); beyond the outer centres the edge value holds. */
    double fx = gx - 0.5, fy = gy - 0.5;
    int x0 = (int)floor(fx), y0 = (int)floor(fy);
    double ax = fx - x0, ay = fy - y0;
    int x1 = x0 + 1, y1 = y0 + 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > gw - 1) x1 = gw - 1;
    if (y1 > gh - 1) y1 = gh - 1;
    double v = (1 - ay) * ((1 - ax) * map[y0 * gw + x0] + ax * map[y0 * gw + x1]) +
               ay * ((1 - ax) * map[y1 * gw + x0] + ax * map[y1 * gw + x1]);
    *out = (float)v;
    return true;
}

static float normalise(float v, float lo, float hi) { return hi > lo ? (v - lo) / (hi - lo) : 0.5f; }

static void format_value(char *buf, size_t cap, float v) {
    float a = fabsf(v);
    if (a != 0 && (a < 1e-3f || a >= 1e4f)) snprintf(buf, cap, "%.2e", v);
    else snprintf(buf, cap, "%.4g", v);
}

/* Vertical colour bar at (x, y) of height h with the range written beside it. */
static void draw_colour_bar(canvas_t *c, int x, int y, int h, float lo, float hi, const overlay_style *st) {
    for (int j = 0; j < h; j++) {
        uint8_t col[3];
        cmap_rgb(st->cmap, 1.0f - (float)j / (float)(h > 1 ? h - 1 : 1), col);
        canvas_fill_rect(c, x, y + j, x + BAR_W, y + j + 1, col);
    }
    canvas_rect_outline(c, x, y, x + BAR_W, y + h, DARK);
    char buf[32];
    format_value(buf, sizeof buf, hi);
    canvas_text(c, st->font, x + BAR_W + 4, y - 2, LABEL_PX, buf, BLACK);
    format_value(buf, sizeof buf, 0.5f * (lo + hi));
    canvas_text(c, st->font, x + BAR_W + 4, y + h / 2 - 6, LABEL_PX, buf, BLACK);
    format_value(buf, sizeof buf, lo);
    canvas_text(c, st->font, x + BAR_W + 4, y + h - 12, LABEL_PX, buf, BLACK);
}

static int header_height(const overlay_style *st) {
    int h = MARGIN;
    if (st->font && st->title) h += (int)TITLE_PX + 6;
    if (st->font && st->subtitle) h += (int)SUB_PX + 4;
    return h;
}

static void draw_header(canvas_t *c, const overlay_style *st) {
    int y = MARGIN / 2;
    if (st->font && st->title) {
        canvas_text(c, st->font, MARGIN, y, TITLE_PX, st->title, BLACK);
        y += (int)TITLE_PX + 6;
    }
    if (st->font && st->subtitle) canvas_text(c, st->font, MARGIN, y, SUB_PX, st->subtitle, DARK);
}

err_code overlay_render(canvas_t *out, const uint8_t *rgb, int w, int h, const float *map, int gh, int gw,
                        const overlay_affine *geom, const overlay_style *st, err_t *err) {
    if (w <= 0 || h <= 0 || gh <= 0 || gw <= 0) return err_set(err, ERR_ARG, "overlay: empty image or map");
    int min_display = st->min_display > 0 ? st->min_display : 336;
    int longest = w > h ? w : h;
    int scale = longest >= min_display ? 1 : (min_display + longest - 1) / longest;
    int dw = w * scale, dh = h * scale;
    int top = header_height(st);
    int cw = MARGIN + dw + BAR_GAP + BAR_W + BAR_LABEL_W, ch = top + dh + MARGIN;
    int title_w = st->font && st->title ? font_text_width(st->font, TITLE_PX, st->title) + 2 * MARGIN : 0;
    int sub_w = st->font && st->subtitle ? font_text_width(st->font, SUB_PX, st->subtitle) + 2 * MARGIN : 0;
    if (title_w > cw) cw = title_w;
    if (sub_w > cw) cw = sub_w;
    err_code rc = canvas_create(out, cw, ch, WHITE, err);
    if (rc) return rc;

    float lo = st->vmin, hi = st->vmax;
    if (!st->fixed_range) overlay_range(map, (int64_t)gh * gw, &lo, &hi);
    float alpha = st->alpha > 0 ? st->alpha : 0.55f;
    for (int Y = 0; Y < dh; Y++) {
        int y = Y / scale;
        double py = (Y + 0.5) / scale;
        for (int X = 0; X < dw; X++) {
            int x = X / scale;
            double px = (X + 0.5) / scale;
            const uint8_t *src = rgb + 3 * ((size_t)y * w + x);
            uint8_t *dst = out->rgb + 3 * ((size_t)(top + Y) * cw + MARGIN + X);
            float v;
            if (overlay_sample(map, gh, gw, px * geom->sx + geom->ox, py * geom->sy + geom->oy, st->nearest, &v) &&
                isfinite(v)) {
                uint8_t col[3];
                cmap_rgb(st->cmap, normalise(v, lo, hi), col);
                for (int k = 0; k < 3; k++) dst[k] = (uint8_t)(src[k] * (1 - alpha) + col[k] * alpha + 0.5f);
            } else {
                memcpy(dst, src, 3);
            }
        }
    }
    draw_header(out, st);
    draw_colour_bar(out, MARGIN + dw + BAR_GAP, top, dh, lo, hi, st);
    return ERR_OK;
}

err_code overlay_grid(canvas_t *out, const float *maps, int n, int gh, int gw, const char *const *labels, int cols,
                      bool per_map_scale, const overlay_style *st, err_t *err) {
    if (n <= 0 || gh <= 0 || gw <= 0) return err_set(err, ERR_ARG, "overlay grid: no maps");
    if (cols <= 0) cols = (int)ceil(sqrt((double)n));
    int rows = (n + cols - 1) / cols;
    /* A lone map (a layer x head matrix) gets a readable size; many maps share a page. */
    int side = n == 1 ? 320 : 112;
    int cell = side / (gw > gh ? gw : gh);
    if (cell < 2) cell = 2;
    if (n == 1 && cell > 40) cell = 40;
    int tw = gw * cell, th = gh * cell;
    int label_h = st->font ? (int)LABEL_PX + 4 : 0;
    int pad = 6;
    int top = header_height(st);
    int cw = MARGIN + cols * (tw + pad) + BAR_GAP + BAR_W + BAR_LABEL_W;
    int ch = top + rows * (th + label_h + pad) + MARGIN;
    int title_w = st->font && st->title ? font_text_width(st->font, TITLE_PX, st->title) + 2 * MARGIN : 0;
    if (title_w > cw) cw = title_w;
    err_code rc = canvas_create(out, cw, ch, WHITE, err);
    if (rc) return rc;

    float glo = st->vmin, ghi = st->vmax;
    if (!st->fixed_range) overlay_range(maps, (int64_t)n * gh * gw, &glo, &ghi);
    for (int m = 0; m < n; m++) {
        const float *map = maps + (size_t)m * gh * gw;
        float lo = glo, hi = ghi;
        if (per_map_scale && !st->fixed_range) overlay_range(map, (int64_t)gh * gw, &lo, &hi);
        int x0 = MARGIN + (m % cols) * (tw + pad);
        int y0 = top + (m / cols) * (th + label_h + pad);
        if (labels && labels[m]) canvas_text(out, st->font, x0, y0, LABEL_PX, labels[m], BLACK);
        for (int r = 0; r < gh; r++)
            for (int c = 0; c < gw; c++) {
                uint8_t col[3];
                float v = map[r * gw + c];
                if (isfinite(v)) cmap_rgb(st->cmap, normalise(v, lo, hi), col);
                else memcpy(col, WHITE, 3);
                canvas_fill_rect(out, x0 + c * cell, y0 + label_h + r * cell, x0 + (c + 1) * cell,
                                 y0 + label_h + (r + 1) * cell, col);
            }
    }
    draw_header(out, st);
    if (!per_map_scale || st->fixed_range)
        draw_colour_bar(out, MARGIN + cols * (tw + pad) + BAR_GAP, top + label_h, rows * (th + label_h + pad) - label_h - pad,
                        glo, ghi, st);
    return ERR_OK;
}
