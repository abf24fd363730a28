/* png.h — writing 8-bit PNG files (RGB, RGBA, gray) with libpng.
 *
 * Contract: each function writes the whole image to `path` (created or truncated)
 * from a tightly packed, row-major buffer (rows top to bottom, no padding) and
 * returns ERR_OK, or an error whose message names the file (ERR_ARG for bad
 * dimensions, ERR_IO when the file cannot be opened or libpng fails). No global
 * state: libpng's error longjmp is caught per call. Not to be confused with
 * libpng's own <png.h>, which only core/png.c includes. */
#ifndef LLAVA_MECH_PNG_H
#define LLAVA_MECH_PNG_H

#include <stdint.h>

#include "err.h"

/* Largest side accepted; libpng's default user limit is 1,000,000 too. */
#define PNGW_MAX_SIDE 1000000

err_code png_write_rgb(const char *path, int w, int h, const uint8_t *rgb, err_t *err);
err_code png_write_rgba(const char *path, int w, int h, const uint8_t *rgba, err_t *err);
err_code png_write_gray(const char *path, int w, int h, const uint8_t *gray, err_t *err);

#endif
