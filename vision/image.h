/* image.h — decode an image file into 8-bit RGB (stb_image).
 *
 * Contract: img_load reads PNG (8/16-bit, palette, gray, alpha), JPEG (baseline and
 * progressive), BMP, GIF (first frame only), TGA and binary PNM (P5/P6) and returns
 * w*h*3 bytes of RGB, rows top to bottom.
 *   - PSD, HDR and PIC (which stb could also decode) are refused (ERR_UNSUPPORTED);
 *     a binary PNM's raster size is checked against the file before decoding.
 *   - The header is inspected first (our own read of the PNG, GIF, BMP, JPEG and PNM
 *     size fields, then stbi_info): 0-sized images and images wider or taller than
 *     the limits (default IMG_MAX_SIDE = 16384, configurable) are rejected before any
 *     pixel is decoded, so a hostile header cannot make us allocate, and each gets its
 *     own message ("image has size 0x0", "image is WxH, larger than the limit ...").
 *   - A file that ends before the decoder has all its data is an error in every
 *     format ("truncated"): stb reads through callbacks that see a read past the end
 *     (from memory, stb pads a short file with zeros without telling).
 *   - Grayscale is expanded to R = G = B.
 *   - Alpha is composited over WHITE: out = a*c + (1-a)*255 (rounded), because
 *     transparent PNGs are usually drawn for a white page. (PIL's convert("RGB"), as
 *     used by HF, drops alpha instead; the reference script composites like we do.)
 *   - EXIF orientation (JPEG APP1 "Exif", IFD0 tag 0x0112, values 2..8) is APPLIED,
 *     so the picture is upright as a viewer shows it — as HF's load_image does
 *     (PIL.ImageOps.exif_transpose). stb_image and llama.cpp ignore it; set
 *     img_opts.ignore_exif to get the stored pixels. img_t.orientation records the
 *     tag found (1 when absent or ignored).
 * Errors name the file and give stb's reason ("not an image", "truncated", ...).
 * stb keeps its failure reason in a process-wide variable: decode from one thread
 * at a time if you need the exact reason. */
#ifndef LLAVA_MECH_IMAGE_H
#define LLAVA_MECH_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define IMG_MAX_SIDE 16384
#define IMG_MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct {
    int w, h;
    uint8_t *rgb; /* w*h*3, owned (img_free) */
    int orientation; /* EXIF orientation that was applied (1..8; 1 = none) */
} img_t;

typedef struct {
    int max_w, max_h; /* <= 0: IMG_MAX_SIDE (checked on the stored size) */
    bool ignore_exif; /* true: keep the stored pixel order */
} img_opts;

err_code img_load(img_t *out, const char *path, const img_opts *opts, err_t *err);
/* Same from a caller's buffer (fuzzing, tests); `name` is used in messages. */
err_code img_load_memory(img_t *out, const void *buf, size_t size, const char *name, const img_opts *opts,
                         err_t *err);
/* A w x h image filled with zeros. */
err_code img_create(img_t *out, int w, int h, err_t *err);
void img_free(img_t *im);
/* EXIF orientation of a JPEG in memory (1..8), 1 when absent or malformed. */
int img_exif_orientation(const void *buf, size_t size);
/* Returns in *out the image transformed for EXIF orientation o (2..8), as
 * PIL.ImageOps.exif_transpose does (6 = rotate 90 clockwise, 8 = 90 anticlockwise,
 * 5/7 transpose/transverse, 2/4 mirror, 3 rotate 180). */
err_code img_orient(const img_t *src, int o, img_t *out, err_t *err);

#endif
