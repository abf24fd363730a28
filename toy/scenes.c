/* scenes.c — the synthetic VQA world (toy/scenes.h, ../shared/docs/toy-world.md).
 *
 * A scene is drawn in three steps from one PRNG stream: layout (object count,
 * shapes, colours, sizes, positions), question (sc_make_question), rendering
 * (background noise, then 4x4-supersampled coverage per object). sc_example lays
 * out and asks before it renders, so scenes rejected for a question type cost no
 * pixels. */
#include "scenes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sc_shape_names[SC_N_SHAPES] = {"circle", "square", "triangle", "diamond"};
const char *const sc_color_names[SC_N_COLORS] = {"red", "green", "blue", "yellow", "purple", "orange"};
const char *const sc_qtype_names[SC_N_QTYPES] = {"color", "shape", "count", "exists", "position"};
const char *const sc_count_words[SC_MAX_OBJECTS + 1] = {"zero", "one", "two", "three", "four"};
/* Exact RGB of toy-world.md ("Colours"). */
const uint8_t sc_color_rgb[SC_N_COLORS][3] = {
    {220, 40, 40}, {40, 170, 60}, {40, 80, 220}, {230, 210, 40}, {150, 60, 190}, {240, 140, 30},
};

enum { SC_BG = 200, SC_NOISE = 8 };
/* Subsamples per pixel side; coverage is count / (SS*SS), mask when >= half. */
enum { SS = 4 };

/* ---- PRNG: splitmix64 (Steele, Lea, Flood 2014), a full-period 64-bit state. */

void sc_rng_seed(sc_rng *r, uint64_t seed) { r->s = seed; }

uint64_t sc_rng_next(sc_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double sc_rng_uniform(sc_rng *r) { return (double)(sc_rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n); the modulo bias is below 2^-50 for the small n used. */
static int rng_below(sc_rng *r, int n) { return (int)(sc_rng_next(r) % (uint64_t)n); }

/* ---- geometry */

double sc_scale(int w, int h) { return (double)(w < h ? w : h) / 224.0; }

int sc_min_gap(int w, int h) {
    int g = (int)ceil(6.0 * sc_scale(w, h) - 1e-9);
    return g < 1 ? 1 : g;
}

int sc_side_of(const sc_object *o, int w) {
    /* centre < 0.4 w  <=>  10 * centre < 4 w, kept in integers so the rule is exact. */
    long c2x10 = 5L * (o->bbox[0] + o->bbox[2]); /* 10 * centre */
    if (c2x10 < 4L * w) return 0;
    if (c2x10 > 6L * w) return 1;
    return -1;
}

bool sc_noise_half(uint64_t idx) { return ((idx * 0x9E3779B97F4A7C15ull) >> 63) != 0; }

static bool boxes_apart(const int a[4], const int b[4], int gap) {
    return a[2] + gap <= b[0] || b[2] + gap <= a[0] || a[3] + gap <= b[1] || b[3] + gap <= a[1];
}

/* Layout only: fills n_objects and objects. Triangles are equilateral, so their box
 * is side x round(side * sqrt(3) / 2); the other shapes have square boxes. */
static bool layout(sc_scene *s, sc_rng *r, int n_min, int n_max) {
    double k = sc_scale(s->w, s->h);
    int smin = (int)lround(36.0 * k), smax = (int)lround(64.0 * k);
    if (smin < 4) smin = 4;
    if (smax < smin) smax = smin;
    int gap = sc_min_gap(s->w, s->h);
    int n = n_min + rng_below(r, n_max - n_min + 1);
    for (int attempt = 0; attempt < 64; attempt++) {
        s->n_objects = 0;
        for (int i = 0; i < n; i++) {
            sc_object *o = &s->objects[i];
            o->shape = rng_below(r, SC_N_SHAPES);
            o->color = rng_below(r, SC_N_COLORS);
            int side = smin + rng_below(r, smax - smin + 1);
            int bw = side, bh = o->shape == SC_TRIANGLE ? (int)lround(side * 0.86602540378443865) : side;
            bool placed = false;
            for (int t = 0; t < 200 && !placed; t++) {
                o->bbox[0] = rng_below(r, s->w - bw + 1);
                o->bbox[1] = rng_below(r, s->h - bh + 1);
                o->bbox[2] = o->bbox[0] + bw;
                o->bbox[3] = o->bbox[1] + bh;
                placed = true;
                for (int j = 0; j < i && placed; j++) placed = boxes_apart(o->bbox, s->objects[j].bbox, gap);
            }
            if (!placed) break;
            s->n_objects = i + 1;
        }
        if (s->n_objects == n) return true;
    }
    s->n_objects = 0;
    return false;
}

/* Number of the SS x SS subsamples of pixel (x, y) inside the object. Subsample
 * centres at x + (i + 0.5) / SS; the shape is defined in continuous coordinates on
 * its box [x0, x1] x [y0, y1]. */
static int coverage(const sc_object *o, int x, int y) {
    double x0 = o->bbox[0], y0 = o->bbox[1], x1 = o->bbox[2], y1 = o->bbox[3];
    double cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1), hw = 0.5 * (x1 - x0), hh = 0.5 * (y1 - y0);
    if (o->shape == SC_SQUARE) return SS * SS;
    int n = 0;
    for (int j = 0; j < SS; j++) {
        double py = y + (j + 0.5) / SS;
        for (int i = 0; i < SS; i++) {
            double px = x + (i + 0.5) / SS, dx = px - cx, dy = py - cy;
            bool in;
            switch (o->shape) {
            case SC_CIRCLE: in = dx * dx + dy * dy <= hw * hw; break;
            case SC_DIAMOND: in = fabs(dx) / hw + fabs(dy) / hh <= 1.0; break;
            default: /* SC_TRIANGLE: apex (cx, y0), base y = y1; half-width grows linearly */
                in = fabs(dx) <= hw * (py - y0) / (y1 - y0);
                break;
            }
            n += in;
        }
    }
    return n;
}

static void render(sc_scene *s, sc_rng *r, bool noise) {
    size_t npx = (size_t)s->w * (size_t)s->h;
    if (noise) {
        /* Four 16-bit draws per PRNG call; (v * 17) >> 16 maps them onto 0..16. */
        uint64_t bits = 0;
        int left = 0;
        for (size_t i = 0; i < 3 * npx; i++) {
            if (!left) {
                bits = sc_rng_next(r);
                left = 4;
            }
            int d = (int)(((bits & 0xFFFF) * (2 * SC_NOISE + 1)) >> 16) - SC_NOISE;
            bits >>= 16;
            left--;
            s->rgb[i] = (uint8_t)(SC_BG + d);
        }
    } else {
        memset(s->rgb, SC_BG, 3 * npx);
    }
    memset(s->mask, 0, npx);
    for (int k = 0; k < s->n_objects; k++) {
        const sc_object *o = &s->objects[k];
        const uint8_t *col = sc_color_rgb[o->color];
        for (int y = o->bbox[1]; y < o->bbox[3]; y++) {
            for (int x = o->bbox[0]; x < o->bbox[2]; x++) {
                int c = coverage(o, x, y);
                if (!c) continue;
                size_t p = (size_t)y * (size_t)s->w + (size_t)x;
                uint8_t *px = s->rgb + 3 * p;
                /* Linear blend by coverage, rounded: bg * (1 - a) + col * a. */
                for (int ch = 0; ch < 3; ch++)
                    px[ch] = (uint8_t)((px[ch] * (SS * SS - c) + col[ch] * c + SS * SS / 2) / (SS * SS));
                if (2 * c >= SS * SS) s->mask[p] = (uint8_t)(k + 1);
            }
        }
    }
}

static err_code check_size(int w, int h, err_t *err) {
    if (w < SC_MIN_SIDE || h < SC_MIN_SIDE || w > SC_MAX_SIDE || h > SC_MAX_SIDE)
        return err_set(err, ERR_ARG, "scene size %dx%d outside %d..%d per side", w, h, SC_MIN_SIDE, SC_MAX_SIDE);
    return ERR_OK;
}

/* (Re)allocates the pixel buffers unless they already have the size. */
static err_code ensure_buffers(sc_scene *s, int w, int h, err_t *err) {
    if (s->rgb && s->mask && s->w == w && s->h == h) return ERR_OK;
    sc_scene_free(s);
    size_t npx = (size_t)w * (size_t)h;
    s->rgb = malloc(3 * npx);
    s->mask = malloc(npx);
    if (!s->rgb || !s->mask) {
        sc_scene_free(s);
        return err_set(err, ERR_NOMEM, "scene %dx%d: out of memory", w, h);
    }
    s->w = w;
    s->h = h;
    return ERR_OK;
}

err_code sc_scene_create(sc_scene *s, sc_rng *r, int w, int h, bool noise, err_t *err) {
    memset(s, 0, sizeof *s);
    err_code rc = check_size(w, h, err);
    if (rc) return rc;
    s->w = w;
    s->h = h;
    if (!layout(s, r, 1, SC_MAX_OBJECTS)) return err_set(err, ERR_RANGE, "scene %dx%d: could not place the objects", w, h);
    if ((rc = ensure_buffers(s, w, h, err))) return rc;
    render(s, r, noise);
    return ERR_OK;
}

void sc_scene_free(sc_scene *s) {
    free(s->rgb);
    free(s->mask);
    s->rgb = NULL;
    s->mask = NULL;
}

/* ---- questions */

static bool combo_unique(const sc_scene *s, int k) {
    for (int j = 0; j < s->n_objects; j++)
        if (j != k && s->objects[j].shape == s->objects[k].shape && s->objects[j].color == s->objects[k].color)
            return false;
    return true;
}

static bool combo_present(const sc_scene *s, int shape, int color) {
    for (int j = 0; j < s->n_objects; j++)
        if (s->objects[j].shape == shape && s->objects[j].color == color) return true;
    return false;
}

/* Picks uniformly among the objects k with ok(s, k); -1 when none. */
static int pick_object(const sc_scene *s, sc_rng *r, bool (*ok)(const sc_scene *, int)) {
    int cand[SC_MAX_OBJECTS], n = 0;
    for (int k = 0; k < s->n_objects; k++)
        if (ok(s, k)) cand[n++] = k;
    return n ? cand[rng_below(r, n)] : -1;
}

static bool shape_unique(const sc_scene *s, int k) {
    for (int j = 0; j < s->n_objects; j++)
        if (j != k && s->objects[j].shape == s->objects[k].shape) return false;
    return true;
}

static bool color_unique(const sc_scene *s, int k) {
    for (int j = 0; j < s->n_objects; j++)
        if (j != k && s->objects[j].color == s->objects[k].color) return false;
    return true;
}

static bool positionable(const sc_scene *s, int k) { return combo_unique(s, k) && sc_side_of(&s->objects[k], s->w) >= 0; }

/* A "no" for exists: keep one attribute of a real object and swap the other for
 * one that makes an absent combination, so the question is never answerable from
 * a single attribute (toy-world.md: plausible absent combination). */
static bool absent_combo(const sc_scene *s, sc_rng *r, int *shape, int *color) {
    int k = rng_below(r, s->n_objects);
    const sc_object *o = &s->objects[k];
    int first = rng_below(r, 2);
    for (int b = 0; b < 2; b++) {
        int cand[SC_N_COLORS + SC_N_SHAPES], n = 0;
        if ((first + b) % 2 == 0) { /* same shape, other colour */
            for (int c = 0; c < SC_N_COLORS; c++)
                if (!combo_present(s, o->shape, c)) cand[n++] = c;
            if (n) {
                *shape = o->shape;
                *color = cand[rng_below(r, n)];
                return true;
            }
        } else { /* same colour, other shape */
            for (int sh = 0; sh < SC_N_SHAPES; sh++)
                if (!combo_present(s, sh, o->color)) cand[n++] = sh;
            if (n) {
                *shape = cand[rng_below(r, n)];
                *color = o->color;
                return true;
            }
        }
    }
    return false;
}

bool sc_make_question(const sc_scene *s, sc_rng *r, int type, bool want_yes, sc_qa *qa) {
    memset(qa, 0, sizeof *qa);
    qa->type = type;
    qa->target = -1;
    qa->target_shape = qa->target_color = -1;
    if (s->n_objects < 1) return false;
    int k;
    switch (type) {
    case SC_Q_COLOR:
        if ((k = pick_object(s, r, shape_unique)) < 0) return false;
        qa->target = k;
        qa->target_shape = s->objects[k].shape;
        snprintf(qa->question, sizeof qa->question, "What color is the %s?", sc_shape_names[qa->target_shape]);
        snprintf(qa->answer, sizeof qa->answer, "%s", sc_color_names[s->objects[k].color]);
        return true;
    case SC_Q_SHAPE:
        if ((k = pick_object(s, r, color_unique)) < 0) return false;
        qa->target = k;
        qa->target_color = s->objects[k].color;
        snprintf(qa->question, sizeof qa->question, "What shape is the %s object?", sc_color_names[qa->target_color]);
        snprintf(qa->answer, sizeof qa->answer, "%s", sc_shape_names[s->objects[k].shape]);
        return true;
    case SC_Q_COUNT:
        snprintf(qa->question, sizeof qa->question, "How many objects are there?");
        snprintf(qa->answer, sizeof qa->answer, "%s", sc_count_words[s->n_objects]);
        return true;
    case SC_Q_EXISTS:
        if (want_yes) {
            /* The target must be the one object the question names. */
            if ((k = pick_object(s, r, combo_unique)) < 0) return false;
            qa->target = k;
            qa->target_shape = s->objects[k].shape;
            qa->target_color = s->objects[k].color;
        } else if (!absent_combo(s, r, &qa->target_shape, &qa->target_color)) {
            return false;
        }
        snprintf(qa->question, sizeof qa->question, "Is there a %s %s?", sc_color_names[qa->target_color],
                 sc_shape_names[qa->target_shape]);
        snprintf(qa->answer, sizeof qa->answer, "%s", want_yes ? "yes" : "no");
        return true;
    case SC_Q_POSITION:
        if ((k = pick_object(s, r, positionable)) < 0) return false;
        qa->target = k;
        qa->target_shape = s->objects[k].shape;
        qa->target_color = s->objects[k].color;
        snprintf(qa->question, sizeof qa->question, "Is the %s %s on the left or the right?",
                 sc_color_names[qa->target_color], sc_shape_names[qa->target_shape]);
        snprintf(qa->answer, sizeof qa->answer, "%s", sc_side_of(&s->objects[k], s->w) ? "right" : "left");
        return true;
    default: return false;
    }
}

/* ---- examples of a split */

/* The stream of example idx: the split seed is hashed once, then combined with the
 * index through a second odd constant, so neighbouring (seed, idx) pairs do not
 * share PRNG states. */
static void example_rng(sc_rng *r, uint64_t seed, uint64_t idx) {
    sc_rng_seed(r, seed);
    uint64_t h = sc_rng_next(r);
    sc_rng_seed(r, h ^ (idx * 0xD1B54A32D192ED03ull));
    (void)sc_rng_next(r);
}

err_code sc_example_opts(sc_scene *s, sc_qa *qa, uint64_t seed, uint64_t idx, int w, int h, const sc_options *o,
                         err_t *err) {
    err_code rc = check_size(w, h, err);
    if (rc) return rc;
    int n_min = o->min_objects > 0 ? o->min_objects : 1, n_max = o->max_objects > 0 ? o->max_objects : SC_MAX_OBJECTS;
    if (n_min > n_max || n_max > SC_MAX_OBJECTS)
        return err_set(err, ERR_ARG, "objects per scene %d..%d outside 1..%d", n_min, n_max, SC_MAX_OBJECTS);
    if ((rc = ensure_buffers(s, w, h, err))) return rc;
    sc_rng r;
    example_rng(&r, seed, idx);
    int type = (int)(idx % SC_N_QTYPES);
    bool want_yes = (idx / SC_N_QTYPES) % 2 == 0;
    /* Every type is hostable by most scenes (a 1-object scene hosts all but, at
     * worst, position), so a few draws suffice; the bound only guards tiny canvases. */
    for (int tries = 0; tries < 10000; tries++) {
        if (!layout(s, &r, n_min, n_max)) break;
        if (sc_make_question(s, &r, type, want_yes, qa)) {
            render(s, &r, o->noise);
            return ERR_OK;
        }
    }
    return err_set(err, ERR_RANGE, "example %llu of seed %llu: no %dx%d scene hosts a %s question",
                   (unsigned long long)idx, (unsigned long long)seed, w, h, sc_qtype_names[type]);
}

err_code sc_example_reuse(sc_scene *s, sc_qa *qa, uint64_t seed, uint64_t idx, int w, int h, bool noise,
                          err_t *err) {
    sc_options o = {.min_objects = 1, .max_objects = SC_MAX_OBJECTS, .noise = noise};
    return sc_example_opts(s, qa, seed, idx, w, h, &o, err);
}

err_code sc_example(sc_scene *s, sc_qa *qa, uint64_t seed, uint64_t idx, int w, int h, bool noise, err_t *err) {
    memset(s, 0, sizeof *s);
    err_code rc = sc_example_reuse(s, qa, seed, idx, w, h, noise, err);
    if (rc) sc_scene_free(s);
    return rc;
}
