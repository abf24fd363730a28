/* png.c — PNG writing through libpng (see core/png.h). */
#include "png.h" /* this module's header: same directory wins for quoted includes */

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h> /* libpng (angle brackets: the system include path, not core/) */

/* libpng reports errors by longjmp to the jmp_buf in png_ptr; the message is kept
 * here so that the caller gets libpng's reason along with the file name. */
typedef struct {
    char msg[200];
} pngw_errctx;

static void pngw_on_error(png_structp png, png_const_charp msg) {
    pngw_errctx *ctx = png_get_error_ptr(png);
    if (ctx) snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void pngw_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings do not stop the write, and library code never prints */
}

static err_code pngw_write(const char *path, int w, int h, const uint8_t *px, int channels,
                           int color_type, err_t *err) {
    if (!path || !px) return err_set(err, ERR_ARG, "png: %s: missing path or pixels", path ? path : "(null)");
    if (w <= 0 || h <= 0 || w > PNGW_MAX_SIDE || h > PNGW_MAX_SIDE)
        return err_set(err, ERR_ARG, "%s: bad PNG size %dx%d", path, w, h);
    FILE *f = fopen(path, "wb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot create: %s", path, strerror(errno));

    pngw_errctx ctx = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, pngw_on_error, pngw_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return err_set(err, ERR_NOMEM, "%s: libpng could not allocate its state", path);
    }
    /* Everything touched after setjmp and read after a longjmp is either
     * unchanged since setjmp (png, info, f) or lives in ctx, so no volatile is
     * needed (C11 7.13.2.1p3). */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return err_set(err, ERR_IO, "%s: PNG write failed: %s", path, ctx.msg[0] ? ctx.msg : "libpng error");
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)w * (size_t)channels;
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(px + (size_t)y * stride));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    /* fclose flushes: a full disk shows up here, not earlier. */
    if (fclose(f) != 0) return err_set(err, ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return ERR_OK;
}

err_code png_write_rgb(const char *path, int w, int h, const uint8_t *rgb, err_t *err) {
    return pngw_write(path, w, h, rgb, 3, PNG_COLOR_TYPE_RGB, err);
}

err_code png_write_rgba(const char *path, int w, int h, const uint8_t *rgba, err_t *err) {
    return pngw_write(path, w, h, rgba, 4, PNG_COLOR_TYPE_RGB_ALPHA, err);
}

err_code png_write_gray(const char *path, int w, int h, const uint8_t *gray, err_t *err) {
    return pngw_write(path, w, h, gray, 1, PNG_COLOR_TYPE_GRAY, err);
}
