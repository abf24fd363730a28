/* report.h — writes an explanation to a folder: report.json (every number behind
 * every picture, with the provenance methods.md lists), one overlay per method on the
 * image as the model saw it and on the original image, per-layer / per-head grids,
 * charts, and .npy files for large arrays.
 *
 * report.json (stable; "version": 1):
 *   question, answer, target {word, id, piece, source, position, p, logp},
 *   image {path, width, height}, model {lm, mmproj}, image_span [s, s+P),
 *   grid [rows, cols], preprocess {pipeline, image_size, patch_size, transform
 *   {sx, sy, ox, oy}: original pixel (x, y) -> model pixel (x*sx+ox, y*sy+oy),
 *   cell_boxes: rows*cols boxes [x0, y0, x1, y1] in original pixels (null: padding)},
 *   upsampling, colormap,
 *   methods {name: {map: rows*cols numbers row-major (larger = more important),
 *            aggregation, definition, ..., figures [files], arrays {name: file},
 *            seconds}}. */
#ifndef LLAVA_MECH_REPORT_H
#define LLAVA_MECH_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "analysis/canvas.h"
#include "analysis/colormap.h"
#include "analysis/explain.h"
#include "core/err.h"
#include "vision/image.h"
#include "vision/preprocess.h"

typedef struct {
    const char *outdir;
    const char *image_path;
    const img_t *original;
    const img_t *model_image;  /* S x S, as the model saw it */
    const pp_geom *geom;
    const char *lm_path, *mmproj_path;
    const char *question, *answer;
    const char *target_word, *target_source; /* source: "model answer" or "user" */
    const char *target_piece;
    int32_t target_id;
    int64_t T;
    float p_target, logp_target;
    int64_t img_start, n_image;
    int grid_h, grid_w;
    const font_t *font;
    cmap_kind cmap;
    bool nearest;
} rp_context;

/* Writes figures and arrays for every result, then report.json. seconds[i] is the
 * time method i took (may be NULL). The results' JSON objects are moved into the
 * report (r->json becomes NULL). On success *report_path (optional, caller's buffer of
 * `cap` bytes) receives the path of report.json. */
err_code report_write(const rp_context *ctx, ex_result *results, int n, const double *seconds, char *report_path,
                      size_t cap, err_t *err);

#endif
