#include "evalmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int em_object_cells(const pp_geom *g, const uint8_t *mask, int w, int h, int label, const double *bbox,
                    uint8_t *cells) {
    int count = 0;
    for (int r = 0; r < g->grid; r++)
        for (int c = 0; c < g->grid; c++) {
            uint8_t *cell = &cells[r * g->grid + c];
            *cell = 0;
            double b[4];
            if (!pp_cell_box(g, r, c, b)) continue;
            if (!mask) {
                *cell = bbox && b[0] < bbox[2] && bbox[0] < b[2] && b[1] < bbox[3] && bbox[1] < b[3];
            } else {
                int x0 = (int)floor(b[0]), y0 = (int)floor(b[1]), x1 = (int)ceil(b[2]), y1 = (int)ceil(b[3]);
                if (x0 < 0) x0 = 0;
                if (y0 < 0) y0 = 0;
                if (x1 > w) x1 = w;
                if (y1 > h) y1 = h;
                for (int y = y0; y < y1 && !*cell; y++)
                    for (int x = x0; x < x1; x++)
                        if (mask[(size_t)y * w + x] == label) {
                            *cell = 1;
                            break;
                        }
            }
            count += *cell;
        }
    return count;
}

void em_dilate(uint8_t *cells, int gh, int gw, int radius) {
    uint8_t *src = malloc((size_t)gh * gw);
    if (!src) return;
    memcpy(src, cells, (size_t)gh * gw);
    for (int r = 0; r < gh; r++)
        for (int c = 0; c < gw; c++) {
            if (!src[r * gw + c]) continue;
            for (int dr = -radius; dr <= radius; dr++)
                for (int dc = -radius; dc <= radius; dc++) {
                    int rr = r + dr, cc = c + dc;
                    if (rr >= 0 && rr < gh && cc >= 0 && cc < gw) cells[rr * gw + cc] = 1;
                }
        }
    free(src);
}

int em_argmax(const float *map, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (isfinite(map[i]) && (best < 0 || map[i] > map[best])) best = i;
    return best;
}

bool em_pointing(const float *map, const uint8_t *dilated, int n) {
    int i = em_argmax(map, n);
    return i >= 0 && dilated[i];
}

float em_mass_in(const float *map, const uint8_t *cells, int n) {
    double in = 0, all = 0;
    for (int i = 0; i < n; i++) {
        if (!(map[i] > 0)) continue;
        all += map[i];
        if (cells[i]) in += map[i];
    }
    return all > 0 ? (float)(in / all) : 0.0f;
}
