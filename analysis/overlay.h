/* overlay.h — attribution maps drawn over images, and grids of small maps.
 *
 * A map is gh x gw floats, row-major, row 0 at the top. Its placement on an image is
 * an affine transform from image pixels to continuous grid coordinates, cell (r, c)
 * spanning [c, c+1) x [r, r+1):  gx = x * sx + ox,  gy = y * sy + oy  (x, y: pixel
 * coordinates of the pixel's centre). The image as the model saw it uses
 * sx = sy = grid / image_size, ox = oy = 0; the original image uses the inverse of the
 * preprocessing (pad or crop), so pixels the model never saw stay untinted.
 * Upsampling is bilinear between cell centres (or nearest), as methods.md specifies,
 * and the figure records which in its title line's caller-provided text. */
#ifndef LLAVA_MECH_OVERLAY_H
#define LLAVA_MECH_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "canvas.h"
#include "colormap.h"
#include "core/err.h"

typedef struct {
    double sx, ox, sy, oy;
} overlay_affine;

typedef struct {
    cmap_kind cmap;
    float alpha;      /* weight of the colour over the image, 0..1 (default 0.55) */
    bool nearest;     /* nearest-cell instead of bilinear upsampling */
    bool fixed_range; /* use vmin/vmax instead of the map's own range */
    float vmin, vmax;
    const char *title;     /* one line; may be NULL */
    const char *subtitle;  /* a second, smaller line; may be NULL */
    const font_t *font;    /* NULL draws no text */
    int min_display;       /* images smaller than this (long side) are scaled up by an integer factor; 0 = 336 */
} overlay_style;

void overlay_style_default(overlay_style *st);
/* Finite min and max of a map (0, 0 when none are finite). */
void overlay_range(const float *map, int64_t n, float *vmin, float *vmax);
/* Samples the map at continuous grid coordinates; returns false outside the grid. */
bool overlay_sample(const float *map, int gh, int gw, double gx, double gy, bool nearest, float *out);

/* Draws title, the image with the map blended over it, and a colour bar with its
 * value range into a new canvas (out is created here; caller frees). */
err_code overlay_render(canvas_t *out, const uint8_t *rgb, int w, int h, const float *map, int gh, int gw,
                        const overlay_affine *geom, const overlay_style *st, err_t *err);

/* n maps (each gh x gw, stored one after another) as small heat maps in a grid with
 * `cols` columns, each labelled, one shared colour scale (unless st->fixed_range is
 * false and per_map_scale is true) and a colour bar. */
err_code overlay_grid(canvas_t *out, const float *maps, int n, int gh, int gw, const char *const *labels, int cols,
                      bool per_map_scale, const overlay_style *st, err_t *err);

#endif
