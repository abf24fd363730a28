/* image.h — decode an image file into 8-bit RGB (stb_image).
 *
 * Contract: img_load reads PNG (8/16-bit, palette, gray, alpha), JPEG (baseline and
 * progressive), BMP, GIF (first frame only), TGA and binary PNM (P5/P6) and returns
 * w*h*3 bytes of RGB, rows top to bottom.
 *   - The header is inspected first (stbi_info): 0-sized images and images wider or
 *     taller than the limits (default IMG_MAX_SIDE = 16384, configurable) are rejected
 *     before any pixel is decoded, so a hostile header cannot make us allocate.
 *   - Grayscale is expanded to R = G = B.
 *   - Alpha is composited over WHITE: out = a*c + (1-a)*255 (rounded), because
 *     transparent PNGs are usually drawn for a white page. (PIL's convert("RGB"), as
 *     used by HF, drops alpha instead; the reference script composites like we do.)
 *   - EXIF orientation is IGNORED (pixels are used as stored), as stb_image, PIL's
 *     Image.open and llama.cpp do; rotate such JPEGs before use.
 * Errors name the file and give stb's reason ("not an image", "truncated", ...).
 * stb keeps its failure reason in a process-wide variable: decode from one thread
 * at a time if you need the exact reason. */
#ifndef LLAVA_MECH_IMAGE_H
#define LLAVA_MECH_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define IMG_MAX_SIDE 16384
#define IMG_MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct {
    int w, h;
    uint8_t *rgb; /* w*h*3, owned (img_free) */
} img_t;

typedef struct {
    int max_w, max_h; /* <= 0: IMG_MAX_SIDE */
} img_opts;

err_code img_load(img_t *out, const char *path, const img_opts *opts, err_t *err);
/* Same from a caller's buffer (fuzzing, tests); `name` is used in messages. */
err_code img_load_memory(img_t *out, const void *buf, size_t size, const char *name, const img_opts *opts,
                         err_t *err);
/* A w x h image filled with zeros. */
err_code img_create(img_t *out, int w, int h, err_t *err);
void img_free(img_t *im);

#endif
