#include "canvas.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_truetype.h>

#include "core/png.h"

struct font {
    unsigned char *data;
    stbtt_fontinfo info;
};

/* Glyphs are rasterised into a fixed buffer; titles and labels stay far below it. */
#define GLYPH_MAX 160

err_code canvas_create(canvas_t *c, int w, int h, const uint8_t bg[3], err_t *err) {
    c->w = c->h = 0;
    c->rgb = NULL;
    if (w <= 0 || h <= 0 || w > 32768 || h > 32768)
        return err_set(err, ERR_ARG, "canvas size %dx%d out of range", w, h);
    c->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!c->rgb) return err_set(err, ERR_NOMEM, "cannot allocate a %dx%d canvas", w, h);
    c->w = w;
    c->h = h;
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) memcpy(c->rgb + 3 * i, bg, 3);
    return ERR_OK;
}

void canvas_free(canvas_t *c) {
    free(c->rgb);
    c->rgb = NULL;
    c->w = c->h = 0;
}

static void put(canvas_t *c, int x, int y, const uint8_t col[3]) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    memcpy(c->rgb + 3 * ((size_t)y * c->w + x), col, 3);
}

/* Alpha-blends col over the pixel with coverage a in [0, 255]. */
static void blend(canvas_t *c, int x, int y, const uint8_t col[3], int a) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || a <= 0) return;
    uint8_t *p = c->rgb + 3 * ((size_t)y * c->w + x);
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)((p[k] * (255 - a) + col[k] * a + 127) / 255);
}

void canvas_fill_rect(canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t col[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->w) x1 = c->w;
    if (y1 > c->h) y1 = c->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) memcpy(c->rgb + 3 * ((size_t)y * c->w + x), col, 3);
}

void canvas_rect_outline(canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t col[3]) {
    canvas_line(c, x0, y0, x1 - 1, y0, col);
    canvas_line(c, x0, y1 - 1, x1 - 1, y1 - 1, col);
    canvas_line(c, x0, y0, x0, y1 - 1, col);
    canvas_line(c, x1 - 1, y0, x1 - 1, y1 - 1, col);
}

void canvas_line(canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t col[3]) {
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        put(c, x0, y0, col);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

void canvas_blit(canvas_t *c, int x, int y, const uint8_t *rgb, int w, int h) {
    for (int j = 0; j < h; j++) {
        int yy = y + j;
        if (yy < 0 || yy >= c->h) continue;
        for (int i = 0; i < w; i++) {
            int xx = x + i;
            if (xx < 0 || xx >= c->w) continue;
            memcpy(c->rgb + 3 * ((size_t)yy * c->w + xx), rgb + 3 * ((size_t)j * w + i), 3);
        }
    }
}

err_code canvas_write_png(const canvas_t *c, const char *path, err_t *err) {
    return png_write_rgb(path, c->w, c->h, c->rgb, err);
}

err_code font_load(font_t **out, const char *path, err_t *err) {
    *out = NULL;
    if (!path) path = FONT_DEFAULT_PATH;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, ERR_IO, "%s: cannot open font: %s (install fonts-dejavu-core)", path, strerror(errno));
    font_t *ft = calloc(1, sizeof *ft);
    long size = -1;
    if (ft && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (!ft || size <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        free(ft);
        return err_set(err, ERR_IO, "%s: cannot read font", path);
    }
    ft->data = malloc((size_t)size);
    size_t got = ft->data ? fread(ft->data, 1, (size_t)size, f) : 0;
    fclose(f);
    if (got != (size_t)size || !stbtt_InitFont(&ft->info, ft->data, stbtt_GetFontOffsetForIndex(ft->data, 0))) {
        free(ft->data);
        free(ft);
        return err_set(err, ERR_FORMAT, "%s: not a TrueType font stb_truetype can read", path);
    }
    *out = ft;
    return ERR_OK;
}

void font_free(font_t *f) {
    if (!f) return;
    free(f->data);
    free(f);
}

/* Decodes one UTF-8 code point; malformed bytes come back as U+FFFD, one byte each. */
static int next_codepoint(const char **s) {
    const unsigned char *p = (const unsigned char *)*s;
    int cp = p[0], n = 0;
    if (cp < 0x80) n = 0;
    else if ((cp & 0xE0) == 0xC0) cp &= 0x1F, n = 1;
    else if ((cp & 0xF0) == 0xE0) cp &= 0x0F, n = 2;
    else if ((cp & 0xF8) == 0xF0) cp &= 0x07, n = 3;
    else {
        *s += 1;
        return 0xFFFD;
    }
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *s += 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    *s += n + 1;
    return cp;
}

int font_text_width(const font_t *f, float px, const char *text) {
    if (!f) return 0;
    float scale = stbtt_ScaleForPixelHeight(&f->info, px);
    float x = 0;
    const char *s = text;
    int prev = 0;
    while (*s) {
        int cp = next_codepoint(&s);
        int adv, lsb;
        if (prev) x += scale * stbtt_GetCodepointKernAdvance(&f->info, prev, cp);
        stbtt_GetCodepointHMetrics(&f->info, cp, &adv, &lsb);
        x += scale * adv;
        prev = cp;
    }
    return (int)(x + 0.5f);
}

/* Renders text into a coverage callback so horizontal and vertical text share one path. */
typedef void (*cover_fn)(canvas_t *c, int gx, int gy, int ox, int oy, const uint8_t col[3], int a);

static void cover_h(canvas_t *c, int gx, int gy, int ox, int oy, const uint8_t col[3], int a) {
    blend(c, ox + gx, oy + gy, col, a);
}

/* Rotated 90 degrees counter-clockwise about the origin (ox, oy): (gx, gy) -> (gy, -gx). */
static void cover_v(canvas_t *c, int gx, int gy, int ox, int oy, const uint8_t col[3], int a) {
    blend(c, ox + gy, oy - gx, col, a);
}

static int draw_text(canvas_t *c, const font_t *f, int x, int y, float px, const char *text, const uint8_t col[3],
                     cover_fn cover) {
    if (!f) return 0;
    float scale = stbtt_ScaleForPixelHeight(&f->info, px);
    int ascent, descent, gap;
    stbtt_GetFontVMetrics(&f->info, &ascent, &descent, &gap);
    int baseline = (int)(ascent * scale + 0.5f);
    unsigned char glyph[GLYPH_MAX * GLYPH_MAX];
    float pen = 0;
    int prev = 0;
    const char *s = text;
    while (*s) {
        int cp = next_codepoint(&s);
        if (prev) pen += scale * stbtt_GetCodepointKernAdvance(&f->info, prev, cp);
        int adv, lsb, x0, y0, x1, y1;
        stbtt_GetCodepointHMetrics(&f->info, cp, &adv, &lsb);
        stbtt_GetCodepointBitmapBox(&f->info, cp, scale, scale, &x0, &y0, &x1, &y1);
        int gw = x1 - x0, gh = y1 - y0;
        if (gw > 0 && gh > 0 && gw <= GLYPH_MAX && gh <= GLYPH_MAX) {
            stbtt_MakeCodepointBitmap(&f->info, glyph, gw, gh, gw, scale, scale, cp);
            int bx = (int)(pen + 0.5f) + x0, by = baseline + y0;
            for (int j = 0; j < gh; j++)
                for (int i = 0; i < gw; i++) cover(c, bx + i, by + j, x, y, col, glyph[j * gw + i]);
        }
        pen += scale * adv;
        prev = cp;
    }
    return (int)(pen + 0.5f);
}

int canvas_text(canvas_t *c, const font_t *f, int x, int y, float px, const char *text, const uint8_t col[3]) {
    return draw_text(c, f, x, y, px, text, col, cover_h);
}

void canvas_text_vertical(canvas_t *c, const font_t *f, int x, int y, float px, const char *text,
                          const uint8_t col[3]) {
    draw_text(c, f, x, y, px, text, col, cover_v);
}
