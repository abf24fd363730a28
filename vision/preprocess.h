/* preprocess.h — from an RGB image to the ViT's normalised CHW input, and back.
 *
 * Two pipelines, both ending in x = (u8/255 - mean[c]) / std[c], CHW float32:
 *   PP_PAD  (original LLaVA-1.5, llava/mm_utils.py expand2square): paste the image
 *           centred on a square of side max(w, h) filled with the mean colour
 *           (int(mean[c]*255) per channel: (122,116,104) for CLIP), offset
 *           ((L-w)/2, (L-h)/2) floored as PIL's paste, then resize to S x S.
 *   PP_CROP (HF CLIPImageProcessor, llava-hf): resize the shortest edge to S (the
 *           other to floor(S*long/short)), then centre crop S x S at
 *           ((W-S)/2, (H-S)/2) floored.
 * Resizing is Pillow's bicubic (Image.resize(..., BICUBIC), libImaging/Resample.c):
 * a = -0.5 kernel whose support widens by the downscale factor (antialiasing),
 * separable, horizontal pass first, 22-bit fixed-point weights, each pass rounded and
 * clamped to uint8 — bit-identical to PIL on the same input. A pass whose size does
 * not change is skipped, so an S x S input comes out exactly unchanged.
 *   PP_LLAMACPP (llama.cpp tools/mtmd, mtmd_image_preprocessor_fixed_size for the
 *           mlp projector without grid pinpoints): fit inside S x S keeping the aspect
 *           (sides ceil(side * min(S/w, S/h))), resize with llama.cpp's own bicubic
 *           (img_tool::resize_bicubic: samples at (w/nw) j with no half-pixel offset,
 *           no antialiasing), paste centred on the pad colour (122,116,104). For
 *           reproducing llama.cpp's image tokens; not the training-time pipeline.
 * PP_PAD is the default: it is what LLaVA-1.5 was trained with, and llama.cpp's
 * choice for this projector is also pad-to-square with the mean colour (its resize
 * differs: PP_LLAMACPP). The padded square is never materialised.
 *
 * Geometry: a point (x, y) of the original image (continuous pixel coordinates, pixel
 * i spanning [i, i+1)) lands at (x*sx + ox, y*sy + oy) in the S x S model image;
 * grid cell (r, c) covers model pixels [c*p, (c+1)*p) x [r*p, (r+1)*p). */
#ifndef LLAVA_MECH_PREPROCESS_H
#define LLAVA_MECH_PREPROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/err.h"
#include "image.h"

typedef enum { PP_PAD = 0, PP_CROP = 1, PP_LLAMACPP = 2 } pp_pipeline;

typedef struct {
    pp_pipeline pipeline;
    int src_w, src_h;    /* original image */
    int image_size;      /* S */
    int patch_size;      /* p; grid = S / p */
    int grid;
    double sx, sy, ox, oy; /* original -> model image, see above */
    uint8_t pad_rgb[3];  /* PP_PAD / PP_LLAMACPP fill colour */
} pp_geom;

int pp_pipeline_from_name(const char *name); /* -1 when unknown */
const char *pp_pipeline_name(pp_pipeline p);

/* Resize RGB src (sw x sh) to dst (dw x dh) with Pillow's bicubic (allocates the
 * weight tables and the intermediate image once per call). */
err_code pp_resize_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, err_t *err);

/* The S x S RGB image the model sees (out is created here; caller img_frees) and
 * the geometry. mean: the file's image_mean (for the pad colour). */
err_code pp_model_image(const img_t *src, pp_pipeline pipe, int image_size, int patch_size, const float mean[3],
                        img_t *out, pp_geom *geom, err_t *err);
/* u8 RGB (S x S, HWC) -> CHW float: (v/255 - mean)/std. out holds 3*S*S floats. */
void pp_normalize(const img_t *model_img, const float mean[3], const float std_[3], float *out);
/* Both steps: out holds 3*S*S floats. */
err_code pp_run(const img_t *src, pp_pipeline pipe, int image_size, int patch_size, const float mean[3],
                const float std_[3], float *out, pp_geom *geom, err_t *err);

/* Box [x0, y0, x1, y1) in ORIGINAL image pixels seen by grid cell (r, c), clipped to
 * the image. Returns false when the cell shows only padding (empty box). */
bool pp_cell_box(const pp_geom *g, int r, int c, double box[4]);
/* Affine from original-image pixel coordinates to continuous grid coordinates
 * (gx = x*gsx + gox), the overlay_affine convention of analysis/overlay.h. */
void pp_grid_affine(const pp_geom *g, double *gsx, double *gox, double *gsy, double *goy);

#endif
