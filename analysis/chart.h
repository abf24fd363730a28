/* chart.h — line and bar charts for per-layer curves (knockout windows, layer and
 * head increases), with labelled axes, ticks and a legend. */
#ifndef LLAVA_MECH_CHART_H
#define LLAVA_MECH_CHART_H

#include "canvas.h"
#include "core/err.h"

typedef enum { CHART_LINE = 0, CHART_BAR = 1 } chart_kind;

typedef struct {
    const char *name; /* legend entry; may be NULL */
    const float *y;   /* n values; non-finite values are skipped */
} chart_series;

typedef struct {
    chart_kind kind;
    const char *title, *xlabel, *ylabel;
    int n;                     /* points per series */
    const char *const *xticks; /* n labels, or NULL for 0..n-1 */
    const font_t *font;
    int width, height;         /* 0: 640 x 400 */
} chart_spec;

/* Creates `out` (caller frees). Bars of several series stand side by side. */
err_code chart_render(canvas_t *out, const chart_spec *spec, const chart_series *series, int n_series, err_t *err);

#endif
