/* scenes.h — the synthetic VQA world of ../shared/docs/toy-world.md.
 *
 * Contract: everything is a pure function of the seed (a splitmix/xorshift PRNG held
 * in the caller's state, no globals), so a split is reproducible from (seed, index).
 * Rendering is antialiased (4x4 supersampling of coverage), objects never overlap
 * (bounding boxes >= 6 px apart, scaled with the canvas), and each object's pixel
 * mask is kept (pixels with coverage >= 0.5). */
#ifndef LLAVA_MECH_SCENES_H
#define LLAVA_MECH_SCENES_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/err.h"

enum { SC_CIRCLE, SC_SQUARE, SC_TRIANGLE, SC_DIAMOND, SC_N_SHAPES };
enum { SC_RED, SC_GREEN, SC_BLUE, SC_YELLOW, SC_PURPLE, SC_ORANGE, SC_N_COLORS };
enum { SC_Q_COLOR, SC_Q_SHAPE, SC_Q_COUNT, SC_Q_EXISTS, SC_Q_POSITION, SC_N_QTYPES };
#define SC_MAX_OBJECTS 4

extern const char *const sc_shape_names[SC_N_SHAPES];
extern const char *const sc_color_names[SC_N_COLORS];
extern const char *const sc_qtype_names[SC_N_QTYPES];
extern const uint8_t sc_color_rgb[SC_N_COLORS][3];

typedef struct {
    int shape, color;
    int bbox[4]; /* x0, y0, x1, y1 (exclusive) in pixels */
} sc_object;

typedef struct {
    int w, h;
    int n_objects;
    sc_object objects[SC_MAX_OBJECTS];
    uint8_t *rgb;  /* w*h*3, owned */
    uint8_t *mask; /* w*h: 0 background, i+1 for objects[i], owned */
} sc_scene;

typedef struct {
    int type;         /* SC_Q_* */
    char question[96];
    char answer[16];
    int target;       /* index into objects, or -1 */
    int target_shape, target_color; /* the asked shape/colour, -1 when none */
} sc_qa;

typedef struct { uint64_t s; } sc_rng;
void sc_rng_seed(sc_rng *r, uint64_t seed);
uint64_t sc_rng_next(sc_rng *r);
double sc_rng_uniform(sc_rng *r); /* [0, 1) */

/* Renders a random scene of w x h (noise: +-8 per-pixel background noise). */
err_code sc_scene_create(sc_scene *s, sc_rng *r, int w, int h, bool noise, err_t *err);
void sc_scene_free(sc_scene *s);
/* Draws one question of the given type for the scene; returns false when the scene
 * cannot host that type (e.g. no unique colour), so the caller re-draws the scene.
 * For SC_Q_EXISTS, want_yes chooses the answer so yes/no stay balanced. */
bool sc_make_question(const sc_scene *s, sc_rng *r, int type, bool want_yes, sc_qa *qa);
/* The idx-th example of a split: type = idx % SC_N_QTYPES (balanced), yes/no alternate,
 * scene and question drawn from a PRNG seeded by (seed, idx). */
err_code sc_example(sc_scene *s, sc_qa *qa, uint64_t seed, uint64_t idx, int w, int h, bool noise, err_t *err);

/* --- additions (scenes helper) --- */

/* Answer words of count questions: sc_count_words[n] for n = 1..4 ([0] is "zero"). */
extern const char *const sc_count_words[SC_MAX_OBJECTS + 1];

/* Canvas sides accepted by sc_scene_create / sc_example (ERR_ARG outside). */
#define SC_MIN_SIDE 32
#define SC_MAX_SIDE 4096

/* Same example as sc_example, but for render loops: s must be zero-initialised
 * ({0}) or hold a scene from an earlier call; its buffers are reused when w and h
 * are unchanged, so a training loop allocates once. Free with sc_scene_free. */
err_code sc_example_reuse(sc_scene *s, sc_qa *qa, uint64_t seed, uint64_t idx, int w, int h, bool noise,
                          err_t *err);

/* sc_example_reuse with options, e.g. a curriculum that starts with fewer objects.
 * With {1, SC_MAX_OBJECTS} the result is identical to sc_example_reuse (same PRNG
 * draws); a narrower range changes the scene and so the question's answer, but
 * keeps the type cycle (idx % 5) and the yes/no alternation. Note that count
 * answers then only cover min_objects..max_objects. */
typedef struct {
    int min_objects, max_objects; /* 1..SC_MAX_OBJECTS; 0 means the default bound */
    bool noise;
} sc_options;
err_code sc_example_opts(sc_scene *s, sc_qa *qa, uint64_t seed, uint64_t idx, int w, int h, const sc_options *o,
                         err_t *err);

/* Geometry used by the generator and its checks (all in pixels at canvas w x h):
 * scale = min(w, h) / 224; sides in [36, 64] * scale; bbox gap >= ceil(6 * scale).
 * A position question is asked only when the target's centre x (x0 + x1) / 2 is
 * < 0.4 w (left) or > 0.6 w (right). */
double sc_scale(int w, int h);
int sc_min_gap(int w, int h);
/* 0 left, 1 right, -1 inside the middle fifth. */
int sc_side_of(const sc_object *o, int w);

/* The "noise on a hashed half" rule of the trainer (toy/train.c): true for about
 * half of the indices, decorrelated from the type (idx % 5) and the yes/no
 * alternation by a multiplicative (Fibonacci) hash. `toy generate --noise-half`
 * uses it, so a generated split matches the training distribution. */
bool sc_noise_half(uint64_t idx);

#endif
