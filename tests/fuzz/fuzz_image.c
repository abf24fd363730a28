/* fuzz_image.c — libFuzzer target for the image loader and every preprocessing
 * pipeline: any byte string must decode or fail with a message, never crash, leak or
 * read out of bounds; the EXIF orientation parser sees every input. Sizes are capped
 * at 1024 px a side so a claimed-huge header is rejected before decoding (the path the
 * cap protects). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vision/image.h"
#include "vision/preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int orient = img_exif_orientation(data, size); /* the EXIF parser on every input */
    if (orient < 1 || orient > 8) __builtin_trap();
    err_t e = {0};
    img_t im;
    img_opts o = {.max_w = 1024, .max_h = 1024};
    if (img_load_memory(&im, data, size, "fuzz", &o, &e) != ERR_OK) {
        if (e.msg[0] == '\0') __builtin_trap(); /* every failure must say why */
        return 0;
    }
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std_[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    float px[3 * 28 * 28];
    for (int p = 0; p < 3; p++) { /* pad, crop, llamacpp */
        pp_geom g;
        if (pp_run(&im, (pp_pipeline)p, 28, 7, mean, std_, px, &g, &e) == ERR_OK) {
            double box[4];
            for (int r = 0; r < g.grid; r++)
                for (int c = 0; c < g.grid; c++) (void)pp_cell_box(&g, r, c, box);
        }
    }
    img_free(&im);
    return 0;
}
