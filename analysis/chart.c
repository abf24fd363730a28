#include "chart.h"

#include <math.h>
#include <stdio.h>

static const uint8_t WHITE[3] = {255, 255, 255};
static const uint8_t BLACK[3] = {0, 0, 0};
static const uint8_t GRID[3] = {225, 225, 225};
/* Tableau-like qualitative colours, distinguishable for the few series a chart has. */
static const uint8_t PALETTE[6][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                                      {214, 39, 40},  {148, 103, 189}, {140, 86, 75}};

#define PX_TITLE 15.0f
#define PX_LABEL 12.0f
#define PX_TICK 10.0f

/* A "nice" step (1, 2 or 5 times a power of ten) giving about `target` ticks. */
static double nice_step(double range, int target) {
    double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

err_code chart_render(canvas_t *out, const chart_spec *spec, const chart_series *series, int n_series, err_t *err) {
    if (spec->n <= 0 || n_series <= 0) return err_set(err, ERR_ARG, "chart '%s': no data", spec->title ? spec->title : "");
    int W = spec->width > 0 ? spec->width : 640, H = spec->height > 0 ? spec->height : 400;
    err_code rc = canvas_create(out, W, H, WHITE, err);
    if (rc) return rc;
    const font_t *f = spec->font;
    int left = 70, right = 20, top = 36, bottom = 56;
    if (n_series > 1) right = 150;
    int pw = W - left - right, ph = H - top - bottom;

    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < spec->n; i++) {
            double v = series[s].y[i];
            if (!isfinite(v)) continue;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    if (lo > hi) lo = 0, hi = 1;
    if (spec->kind == CHART_BAR) {
        if (lo > 0) lo = 0;
        if (hi < 0) hi = 0;
    }
    if (hi - lo < 1e-12) hi = lo + 1;
    double step = nice_step(hi - lo, 5);
    lo = floor(lo / step) * step;
    hi = ceil(hi / step) * step;

#define YPIX(v) (top + ph - (int)lround(((v)-lo) / (hi - lo) * ph))
    char buf[48];
    for (double t = lo; t <= hi + step * 0.5; t += step) {
        int y = YPIX(t);
        canvas_line(out, left, y, left + pw, y, GRID);
        snprintf(buf, sizeof buf, "%.4g", fabs(t) < step * 1e-6 ? 0.0 : t);
        int tw = font_text_width(f, PX_TICK, buf);
        canvas_text(out, f, left - 6 - tw, y - 6, PX_TICK, buf, BLACK);
    }
    canvas_line(out, left, top, left, top + ph, BLACK);
    canvas_line(out, left, top + ph, left + pw, top + ph, BLACK);

    double xs = (double)pw / spec->n;
    int label_every = 1;
    while (spec->n / label_every > 24) label_every++;
    for (int i = 0; i < spec->n; i += label_every) {
        int x = left + (int)((i + 0.5) * xs);
        canvas_line(out, x, top + ph, x, top + ph + 4, BLACK);
        const char *lab = spec->xticks ? spec->xticks[i] : NULL;
        if (!lab) {
            snprintf(buf, sizeof buf, "%d", i);
            lab = buf;
        }
        int tw = font_text_width(f, PX_TICK, lab);
        canvas_text(out, f, x - tw / 2, top + ph + 6, PX_TICK, lab, BLACK);
    }

    for (int s = 0; s < n_series; s++) {
        const uint8_t *col = PALETTE[s % 6];
        int px = -1, py = -1;
        for (int i = 0; i < spec->n; i++) {
            double v = series[s].y[i];
            if (!isfinite(v)) {
                px = -1;
                continue;
            }
            if (spec->kind == CHART_BAR) {
                double bw = xs * 0.8 / n_series;
                int x0 = left + (int)(i * xs + xs * 0.1 + s * bw), x1 = x0 + (int)fmax(1, bw - 1);
                int y0 = YPIX(v), yz = YPIX(0.0);
                canvas_fill_rect(out, x0, y0 < yz ? y0 : yz, x1, (y0 < yz ? yz : y0) + 1, col);
            } else {
                int x = left + (int)((i + 0.5) * xs), y = YPIX(v);
                canvas_fill_rect(out, x - 2, y - 2, x + 3, y + 3, col);
                if (px >= 0) canvas_line(out, px, py, x, y, col);
                px = x, py = y;
            }
        }
        if (n_series > 1 && series[s].name) {
            int ly = top + 4 + s * 16;
            canvas_fill_rect(out, left + pw + 12, ly + 3, left + pw + 24, ly + 11, col);
            canvas_text(out, f, left + pw + 28, ly, PX_TICK, series[s].name, BLACK);
        }
    }
#undef YPIX

    if (spec->title) canvas_text(out, f, left, 8, PX_TITLE, spec->title, BLACK);
    if (spec->xlabel) {
        int tw = font_text_width(f, PX_LABEL, spec->xlabel);
        canvas_text(out, f, left + pw / 2 - tw / 2, H - 22, PX_LABEL, spec->xlabel, BLACK);
    }
    if (spec->ylabel) {
        int tw = font_text_width(f, PX_LABEL, spec->ylabel);
        canvas_text_vertical(out, f, 10, top + ph / 2 + tw / 2, PX_LABEL, spec->ylabel, BLACK);
    }
    return ERR_OK;
}
