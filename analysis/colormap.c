#include "colormap.h"

#include <math.h>
#include <string.h>

/* matplotlib's viridis at t = 0, 1/8, ..., 1 (its published stops); linear in between
 * is within a few levels of the full 256-entry table, which is enough for a heat map. */
static const uint8_t viridis_stops[9][3] = {
    {68, 1, 84},    {71, 45, 123},  {59, 82, 139},  {44, 114, 142}, {33, 145, 140},
    {40, 174, 128}, {94, 201, 98},  {173, 220, 48}, {253, 231, 37},
};

int cmap_from_name(const char *name) {
    if (!strcmp(name, "viridis")) return CMAP_VIRIDIS;
    if (!strcmp(name, "jet")) return CMAP_JET;
    if (!strcmp(name, "gray") || !strcmp(name, "grey")) return CMAP_GRAY;
    return -1;
}

const char *cmap_name(cmap_kind k) {
    switch (k) {
    case CMAP_JET: return "jet";
    case CMAP_GRAY: return "gray";
    default: return "viridis";
    }
}

static uint8_t to_byte(float v) {
    if (v <= 0) return 0;
    if (v >= 1) return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

void cmap_rgb(cmap_kind k, float t, uint8_t out[3]) {
    if (!(t >= 0)) t = 0; /* also NaN */
    if (t > 1) t = 1;
    if (k == CMAP_GRAY) {
        out[0] = out[1] = out[2] = to_byte(t);
    } else if (k == CMAP_JET) {
        /* MATLAB jet: each channel a trapezoid over t, peaks offset by 1/4. */
        float r = 1.5f - fabsf(4 * t - 3), g = 1.5f - fabsf(4 * t - 2), b = 1.5f - fabsf(4 * t - 1);
        out[0] = to_byte(r);
        out[1] = to_byte(g);
        out[2] = to_byte(b);
    } else {
        float x = t * 8;
        int i = (int)x;
        if (i >= 8) i = 7;
        float f = x - i;
        for (int c = 0; c < 3; c++)
            out[c] = (uint8_t)(viridis_stops[i][c] + f * (viridis_stops[i + 1][c] - viridis_stops[i][c]) + 0.5f);
    }
}
