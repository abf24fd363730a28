/* ops_rope.c — rotary position embedding (Su et al. 2021, RoFormer) in the GGUF /
 * llama.cpp "normal" layout: adjacent pairs (2i, 2i+1) of each head rotate by
 * theta_i = pos * base^(-2i/n_rot). (HF checkpoints use the "neox" half-split layout;
 * llama.cpp's converter permutes the q/k weights so the adjacent-pair form applies.) */
#include "ops.h"

#include <math.h>

/* sign = +1 rotates by +theta (forward); -1 by -theta, which is the transpose of the
 * rotation and therefore the backward of this linear map. For each pair index i the
 * angle advances by the same step from row to row, so (cos, sin) follow the exact
 * rotation recurrence in double (error ~1e-16 per row) instead of a sincos per row. */
static void rope_rotate(float *x, int64_t N, int n_head, int head_dim, int n_rot, int64_t pos0, float base,
                        double sign) {
    int64_t C = (int64_t)n_head * head_dim;
    if (n_rot > head_dim) n_rot = head_dim;
    for (int i = 0; 2 * i + 1 < n_rot; i++) {
        double freq = sign * pow((double)base, -2.0 * i / (double)n_rot);
        double c = cos((double)pos0 * freq), s = sin((double)pos0 * freq);
        double cs = cos(freq), ss = sin(freq);
        for (int64_t r = 0; r < N; r++) {
            float fc = (float)c, fs = (float)s;
            float *p = x + r * C + 2 * i;
            for (int h = 0; h < n_head; h++, p += head_dim) {
                float x0 = p[0], x1 = p[1];
                p[0] = x0 * fc - x1 * fs;
                p[1] = x0 * fs + x1 * fc;
            }
            double cn = c * cs - s * ss;
            s = s * cs + c * ss;
            c = cn;
        }
    }
}

void ops_rope_fwd(float *x, int64_t N, int n_head, int head_dim, int n_rot, int64_t pos0, float base) {
    rope_rotate(x, N, n_head, head_dim, n_rot, pos0, base, 1.0);
}

void ops_rope_bwd(float *dx, int64_t N, int n_head, int head_dim, int n_rot, int64_t pos0, float base) {
    rope_rotate(dx, N, n_head, head_dim, n_rot, pos0, base, -1.0);
}
