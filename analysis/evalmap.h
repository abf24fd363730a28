/* evalmap.h — scoring an attribution map against a known object (toy world, or any
 * data set with masks or boxes), per ../shared/docs/methods.md:
 *   pointing game: the map's top-1 patch lies in the object's cells dilated by one patch;
 *   mass in mask:  the fraction of the map's positive mass inside the object's cells.
 * An object's cells are the grid cells whose original-image box (pp_cell_box) holds at
 * least one of its mask pixels (or overlaps its box when no mask is given). */
#ifndef LLAVA_MECH_EVALMAP_H
#define LLAVA_MECH_EVALMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "vision/preprocess.h"

/* mask: w x h bytes of object labels (the toy world's masks: 0 background, i+1 object
 * i); label: the target's value. When mask is NULL, bbox [x0, y0, x1, y1) is used.
 * cells: grid*grid bytes set to 1 for the object's cells. Returns their count. */
int em_object_cells(const pp_geom *g, const uint8_t *mask, int w, int h, int label, const double *bbox,
                    uint8_t *cells);
/* In place: every cell within `radius` (Chebyshev distance) of a set cell is set. */
void em_dilate(uint8_t *cells, int gh, int gw, int radius);
/* Index of the largest finite value (the first on ties); -1 when none. */
int em_argmax(const float *map, int n);
bool em_pointing(const float *map, const uint8_t *dilated, int n);
/* sum of max(map, 0) over cells / sum of max(map, 0) overall; 0 when the map has no positive mass. */
float em_mass_in(const float *map, const uint8_t *cells, int n);

#endif
