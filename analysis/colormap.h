/* colormap.h — maps a value in [0, 1] to RGB: viridis (default), jet, gray. */
#ifndef LLAVA_MECH_COLORMAP_H
#define LLAVA_MECH_COLORMAP_H

#include <stdint.h>

typedef enum { CMAP_VIRIDIS = 0, CMAP_JET = 1, CMAP_GRAY = 2 } cmap_kind;

int cmap_from_name(const char *name); /* -1 when unknown */
const char *cmap_name(cmap_kind k);
/* t outside [0, 1] is clamped; NaN maps to 0. */
void cmap_rgb(cmap_kind k, float t, uint8_t out[3]);

#endif
