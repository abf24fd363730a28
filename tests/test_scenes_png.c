/* test_scenes_png.c — core/png writes what it was given: round trip through
 * libpng's independent simplified reader for RGB, RGBA and gray at odd sizes,
 * and errors that name the file. */
#include <png.h> /* libpng, for reading back */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/png.h"
#include "testutil.h"

/* Reads path as `format` into a malloc'd buffer; NULL on failure. */
static uint8_t *read_back(const char *path, png_uint_32 format, int *w, int *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = format;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        png_image_free(&img);
        free(buf);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

static void round_trip(int channels, int w, int h) {
    char path[64];
    snprintf(path, sizeof path, "test_png_%d_%d.png", channels, (int)getpid());
    size_t n = (size_t)w * h * channels;
    uint8_t *px = malloc(n);
    for (size_t i = 0; i < n; i++) px[i] = (uint8_t)(i * 2654435761u >> 13);
    err_t err = {0};
    png_uint_32 fmt;
    if (channels == 3) {
        CHECK_OK(png_write_rgb(path, w, h, px, &err), &err);
        fmt = PNG_FORMAT_RGB;
    } else if (channels == 4) {
        CHECK_OK(png_write_rgba(path, w, h, px, &err), &err);
        fmt = PNG_FORMAT_RGBA;
    } else {
        CHECK_OK(png_write_gray(path, w, h, px, &err), &err);
        fmt = PNG_FORMAT_GRAY;
    }
    int rw = 0, rh = 0;
    uint8_t *back = read_back(path, fmt, &rw, &rh);
    CHECK_MSG(back != NULL, "%s: libpng could not read it back", path);
    if (back) {
        CHECK(rw == w && rh == h);
        CHECK_MSG(!memcmp(back, px, n), "%d-channel %dx%d image changed in the round trip", channels, w, h);
    }
    free(back);
    free(px);
    remove(path);
}

int main(void) {
    round_trip(3, 37, 23);
    round_trip(4, 5, 64);
    round_trip(1, 224, 1);
    err_t err = {0};
    uint8_t px[12] = {0};
    CHECK(png_write_rgb("no-such-dir/x.png", 2, 2, px, &err) == ERR_IO);
    CHECK(strstr(err.msg, "no-such-dir/x.png") != NULL);
    CHECK(png_write_gray("x.png", 0, 2, px, &err) == ERR_ARG);
    CHECK(strstr(err.msg, "x.png") != NULL);
    CHECK(png_write_rgba("x.png", 2, -1, px, &err) == ERR_ARG);
    return test_result("test_scenes_png");
}
