/* canvas.h — an RGB raster to draw figures on: rectangles, lines, text, images.
 *
 * Contract: canvas_create allocates w*h*3 bytes filled with a colour; drawing clips
 * to the canvas, so no call can write outside it. Text uses a TrueType font loaded
 * once (font_load; DejaVu Sans from fonts-dejavu-core by default) and rendered with
 * stb_truetype; a canvas without a font draws no text but still draws everything
 * else (callers treat a missing font as an error only when text was requested). */
#ifndef LLAVA_MECH_CANVAS_H
#define LLAVA_MECH_CANVAS_H

#include <stdint.h>

#include "core/err.h"

typedef struct {
    int w, h;
    uint8_t *rgb; /* w*h*3, owned */
} canvas_t;

typedef struct font font_t;

#define FONT_DEFAULT_PATH "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

err_code canvas_create(canvas_t *c, int w, int h, const uint8_t bg[3], err_t *err);
void canvas_free(canvas_t *c);
void canvas_fill_rect(canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t col[3]);
void canvas_rect_outline(canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t col[3]);
/* Anti-aliasing is not needed for axes; lines are 1 px (Bresenham). */
void canvas_line(canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t col[3]);
/* Copies an RGB image at (x, y). */
void canvas_blit(canvas_t *c, int x, int y, const uint8_t *rgb, int w, int h);
err_code canvas_write_png(const canvas_t *c, const char *path, err_t *err);

/* path NULL: FONT_DEFAULT_PATH. */
err_code font_load(font_t **out, const char *path, err_t *err);
void font_free(font_t *f);
/* Draws UTF-8 text with its top-left corner at (x, y), pixel height px. Returns the
 * advance width in pixels. f may be NULL (draws nothing, returns 0). */
int canvas_text(canvas_t *c, const font_t *f, int x, int y, float px, const char *text, const uint8_t col[3]);
int font_text_width(const font_t *f, float px, const char *text);
/* Text rotated 90 degrees counter-clockwise (y-axis labels), reading bottom-up
 * starting at (x, y) = its bottom-left corner. */
void canvas_text_vertical(canvas_t *c, const font_t *f, int x, int y, float px, const char *text,
                          const uint8_t col[3]);

#endif
