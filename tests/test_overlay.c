/* Overlay, colour map and chart rendering: the pixels must say what the numbers say. */
#include <stdlib.h>
#include <string.h>

#include "analysis/chart.h"
#include "analysis/colormap.h"
#include "analysis/overlay.h"
#include "testutil.h"

static void test_colormap(void) {
    uint8_t c[3];
    cmap_rgb(CMAP_VIRIDIS, 0.0f, c);
    CHECK(c[0] == 68 && c[1] == 1 && c[2] == 84);
    cmap_rgb(CMAP_VIRIDIS, 1.0f, c);
    CHECK(c[0] == 253 && c[1] == 231 && c[2] == 37);
    cmap_rgb(CMAP_VIRIDIS, 2.0f, c); /* clamped */
    CHECK(c[0] == 253);
    cmap_rgb(CMAP_GRAY, 0.5f, c);
    CHECK(c[0] == 128 && c[1] == 128 && c[2] == 128);
    cmap_rgb(CMAP_JET, 0.0f, c);
    CHECK(c[2] == 128 && c[0] == 0); /* dark blue */
    cmap_rgb(CMAP_JET, 1.0f, c);
    CHECK(c[0] == 128 && c[2] == 0); /* dark red */
    /* viridis is monotone in lightness: green channel rises over the whole range */
    uint8_t prev[3];
    cmap_rgb(CMAP_VIRIDIS, 0.0f, prev);
    for (int i = 1; i <= 100; i++) {
        cmap_rgb(CMAP_VIRIDIS, i / 100.0f, c);
        CHECK(c[1] >= prev[1]);
        memcpy(prev, c, 3);
    }
    CHECK(cmap_from_name("jet") == CMAP_JET && cmap_from_name("nope") == -1);
}

static void test_sample(void) {
    const float map[4] = {0, 1, 2, 3}; /* 2x2 */
    float v;
    CHECK(overlay_sample(map, 2, 2, 0.5, 0.5, false, &v) && v == 0.0f);
    CHECK(overlay_sample(map, 2, 2, 1.5, 1.5, false, &v) && v == 3.0f);
    CHECK(overlay_sample(map, 2, 2, 1.0, 0.5, false, &v));
    CHECK_NEAR(v, 0.5, 1e-6); /* halfway between cell centres */
    CHECK(overlay_sample(map, 2, 2, 1.0, 1.0, false, &v));
    CHECK_NEAR(v, 1.5, 1e-6);
    CHECK(overlay_sample(map, 2, 2, 0.1, 1.9, true, &v) && v == 2.0f);
    CHECK(!overlay_sample(map, 2, 2, -0.1, 0.5, false, &v));
    CHECK(!overlay_sample(map, 2, 2, 0.5, 2.0, false, &v));
}

static void test_render(void) {
    err_t err = {0};
    /* A 400x200 grey image; the 2x2 map covers only the left 200x200 square (like a
     * crop); the right half must stay untinted. */
    int w = 400, h = 200;
    uint8_t *img = malloc((size_t)w * h * 3);
    memset(img, 100, (size_t)w * h * 3);
    const float map[4] = {0, 0, 0, 10};
    overlay_affine geom = {.sx = 2.0 / 200, .ox = 0, .sy = 2.0 / 200, .oy = 0};
    overlay_style st;
    overlay_style_default(&st);
    st.nearest = true;
    st.alpha = 1.0f;
    canvas_t c;
    CHECK_OK(overlay_render(&c, img, w, h, map, 2, 2, &geom, &st, &err), &err);
    if (c.rgb) {
        int top = 8, left = 8; /* no font: header is the margin only */
        uint8_t hot[3], cold[3];
        cmap_rgb(CMAP_VIRIDIS, 1.0f, hot);
        cmap_rgb(CMAP_VIRIDIS, 0.0f, cold);
        const uint8_t *p = c.rgb + 3 * ((size_t)(top + 150) * c.w + left + 150);
        CHECK_MSG(p[0] == hot[0] && p[1] == hot[1] && p[2] == hot[2], "bottom-right cell is not the hot colour");
        p = c.rgb + 3 * ((size_t)(top + 50) * c.w + left + 50);
        CHECK_MSG(p[0] == cold[0] && p[1] == cold[1] && p[2] == cold[2], "top-left cell is not the cold colour");
        p = c.rgb + 3 * ((size_t)(top + 100) * c.w + left + 300);
        CHECK_MSG(p[0] == 100 && p[1] == 100 && p[2] == 100, "pixel outside the grid was tinted");
        /* colour bar right of the image: hot at its top, cold at its bottom */
        const uint8_t *bt = c.rgb + 3 * ((size_t)(top + 1) * c.w + left + w + 10 + 7);
        const uint8_t *bb = c.rgb + 3 * ((size_t)(top + h - 2) * c.w + left + w + 10 + 7);
        CHECK_MSG(abs(bt[0] - hot[0]) <= 3 && abs(bb[0] - cold[0]) <= 3, "colour bar ends %d %d", bt[0], bb[0]);
        canvas_free(&c);
    }
    /* Small images are scaled up for display. */
    st.min_display = 336;
    CHECK_OK(overlay_render(&c, img, 100, 50, map, 2, 2, &geom, &st, &err), &err);
    CHECK(c.w >= 4 * 100);
    canvas_free(&c);
    free(img);
}

static void test_text_and_chart(void) {
    err_t err = {0};
    font_t *f = NULL;
    CHECK_OK(font_load(&f, NULL, &err), &err);
    if (!f) return;
    CHECK(font_text_width(f, 16, "knockout") > 30);
    CHECK(font_text_width(f, 16, "ab") < font_text_width(f, 16, "abab"));
    const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
    canvas_t c;
    CHECK_OK(canvas_create(&c, 200, 40, white, &err), &err);
    canvas_text(&c, f, 2, 2, 20, "Hello é", black);
    int dark = 0;
    for (int i = 0; i < c.w * c.h; i++) dark += c.rgb[3 * i] < 128;
    CHECK_MSG(dark > 40, "text drew only %d dark pixels", dark);
    canvas_free(&c);
    /* vertical text is taller than wide and ends above its starting point */
    CHECK_OK(canvas_create(&c, 100, 200, white, &err), &err);
    canvas_text_vertical(&c, f, 10, 190, 14, "delta log p", black);
    int x0 = c.w, x1 = -1, y0 = c.h, y1 = -1;
    for (int y = 0; y < c.h; y++)
        for (int x = 0; x < c.w; x++)
            if (c.rgb[3 * ((size_t)y * c.w + x)] < 128) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    CHECK_MSG(y1 - y0 > 3 * (x1 - x0) && y1 <= 190 && x0 >= 10, "vertical text box x %d..%d y %d..%d", x0, x1, y0, y1);
    canvas_free(&c);

    const float a[4] = {1, 2, 3, 4}, b[4] = {-1, 0.5f, NAN, 2};
    chart_series s[2] = {{"p before", a}, {"p after", b}};
    chart_spec spec = {.kind = CHART_BAR, .title = "knockout", .xlabel = "window", .ylabel = "log p", .n = 4, .font = f};
    CHECK_OK(chart_render(&c, &spec, s, 2, &err), &err);
    CHECK(c.w == 640 && c.h == 400);
    /* the tallest bar (series 0, value 4) reaches near the top of the plot area */
    int blue_top = c.h;
    for (int y = 0; y < c.h; y++)
        for (int x = 0; x < c.w - 150; x++) {
            const uint8_t *p = c.rgb + 3 * ((size_t)y * c.w + x);
            if (p[0] == 31 && p[1] == 119 && p[2] == 180 && y < blue_top) blue_top = y;
        }
    CHECK_MSG(blue_top < 60, "tallest bar top at y=%d", blue_top);
    canvas_free(&c);
    spec.kind = CHART_LINE;
    CHECK_OK(chart_render(&c, &spec, s, 1, &err), &err);
    canvas_free(&c);
    CHECK(chart_render(&c, &spec, s, 0, &err) == ERR_ARG);
    font_free(f);
    CHECK(font_load(&f, "/nonexistent/font.ttf", &err) == ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/font.ttf") != NULL);
}

int main(void) {
    test_colormap();
    test_sample();
    test_render();
    test_text_and_chart();
    return test_result("test_overlay");
}
