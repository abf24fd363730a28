/* Pointing game and mass-in-mask on hand-built maps and masks. */
#include <stdlib.h>
#include <string.h>

#include "analysis/evalmap.h"
#include "testutil.h"

int main(void) {
    /* identity geometry: 64x64 image, 4x4 grid of 16 px cells */
    pp_geom g = {.pipeline = PP_PAD, .src_w = 64, .src_h = 64, .image_size = 64, .patch_size = 16, .grid = 4,
                 .sx = 1, .sy = 1, .ox = 0, .oy = 0};
    uint8_t *mask = calloc(64 * 64, 1);
    for (int y = 20; y < 30; y++)
        for (int x = 36; x < 40; x++) mask[y * 64 + x] = 2; /* object 1 inside cell (1, 2) */
    mask[0] = 1;                                           /* another object's pixel */
    uint8_t cells[16];
    CHECK(em_object_cells(&g, mask, 64, 64, 2, NULL, cells) == 1);
    CHECK(cells[1 * 4 + 2] == 1 && cells[0] == 0);
    double box[4] = {30, 2, 40, 12}; /* touches cells (0,1),(0,2) */
    CHECK(em_object_cells(&g, NULL, 64, 64, 0, box, cells) == 2);
    CHECK(cells[1] && cells[2] && !cells[6]);

    em_object_cells(&g, mask, 64, 64, 2, NULL, cells);
    float map[16] = {0};
    map[1 * 4 + 2] = 1.0f; /* on the object */
    CHECK_NEAR(em_mass_in(map, cells, 16), 1.0, 1e-6);
    map[0] = 3.0f; /* more mass elsewhere, and the argmax moves off the object */
    map[5] = -10.0f; /* negative values do not count */
    CHECK_NEAR(em_mass_in(map, cells, 16), 0.25, 1e-6);
    uint8_t dil[16];
    memcpy(dil, cells, 16);
    em_dilate(dil, 4, 4, 1);
    int set = 0;
    for (int i = 0; i < 16; i++) set += dil[i];
    CHECK(set == 9); /* 3x3 around (1,2) */
    CHECK(!em_pointing(map, dil, 16)); /* argmax at (0,0), two cells away */
    map[0] = 0.5f;
    map[0 * 4 + 1] = 2.0f; /* (0,1) is diagonal-adjacent: inside the dilation */
    CHECK(em_pointing(map, dil, 16) && !em_pointing(map, cells, 16));
    CHECK(em_argmax(map, 16) == 1);
    float none[3] = {-1, -2, -3};
    uint8_t c3[3] = {1, 1, 1};
    CHECK(em_mass_in(none, c3, 3) == 0.0f);
    free(mask);
    return test_result("test_evalmap");
}
