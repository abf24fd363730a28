/* test_scenes.c — the scene generator against toy-world.md, checked independently:
 * answers are recomputed by parsing the question text and reading the object list,
 * geometry from the spec's numbers, pixels from the exact colour table. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "toy/scenes.h"

static const uint8_t RGB[6][3] = {{220, 40, 40}, {40, 170, 60}, {40, 80, 220},
                                  {230, 210, 40}, {150, 60, 190}, {240, 140, 30}};
static const char *SHAPES[4] = {"circle", "square", "triangle", "diamond"};
static const char *COLORS[6] = {"red", "green", "blue", "yellow", "purple", "orange"};

static int find_name(const char *const *names, int n, const char *w) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], w)) return i;
    return -1;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Geometry: inside the canvas, sizes per spec (scaled), triangle boxes equilateral,
 * pairwise gap >= ceil(6 * scale). */
static void check_geometry(const sc_scene *s) {
    double k = (s->w < s->h ? s->w : s->h) / 224.0;
    int gap = (int)ceil(6 * k - 1e-9);
    CHECK(s->n_objects >= 1 && s->n_objects <= 4);
    for (int i = 0; i < s->n_objects; i++) {
        const sc_object *o = &s->objects[i];
        const int *b = o->bbox;
        CHECK_MSG(b[0] >= 0 && b[1] >= 0 && b[2] <= s->w && b[3] <= s->h, "object %d box %d,%d,%d,%d outside %dx%d",
                  i, b[0], b[1], b[2], b[3], s->w, s->h);
        int bw = b[2] - b[0], bh = b[3] - b[1];
        CHECK_MSG(bw >= lround(36 * k) && bw <= lround(64 * k), "side %d at scale %.3f", bw, k);
        if (o->shape == SC_TRIANGLE)
            CHECK_MSG(abs(bh - (int)lround(bw * sqrt(3) / 2)) <= 0, "triangle %dx%d not equilateral", bw, bh);
        else
            CHECK(bh == bw);
        CHECK(o->shape >= 0 && o->shape < 4 && o->color >= 0 && o->color < 6);
        for (int j = 0; j < i; j++) {
            const int *c = s->objects[j].bbox;
            int dx = b[0] >= c[2] ? b[0] - c[2] : c[0] >= b[2] ? c[0] - b[2] : -1;
            int dy = b[1] >= c[3] ? b[1] - c[3] : c[1] >= b[3] ? c[1] - b[3] : -1;
            CHECK_MSG(dx >= gap || dy >= gap, "objects %d and %d only %d/%d px apart (need %d)", i, j, dx, dy, gap);
        }
    }
}

/* Pixels: mask values inside their object's box, mask pixels carry at least half
 * the object's colour, pixels outside every box are background (200 +- noise),
 * mask areas match the analytic area within the antialiased rim. */
static void check_pixels(const sc_scene *s, int noise) {
    long area[4] = {0};
    int bad_inside = 0, bad_colour = 0, bad_bg = 0;
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            size_t p = (size_t)y * s->w + x;
            const uint8_t *px = s->rgb + 3 * p;
            int m = s->mask[p];
            if (m > s->n_objects) {
                bad_inside++;
                continue;
            }
            if (m) {
                const sc_object *o = &s->objects[m - 1];
                area[m - 1]++;
                if (x < o->bbox[0] || x >= o->bbox[2] || y < o->bbox[1] || y >= o->bbox[3]) bad_inside++;
                for (int ch = 0; ch < 3; ch++) {
                    int col = RGB[o->color][ch];
                    /* coverage >= 1/2: the blend is at least halfway from bg to colour */
                    if (abs(px[ch] - col) > (abs(200 - col) + noise) / 2 + 1) bad_colour++;
                }
            }
            int in_box = 0;
            for (int i = 0; i < s->n_objects; i++) {
                const int *b = s->objects[i].bbox;
                in_box |= x >= b[0] && x < b[2] && y >= b[1] && y < b[3];
            }
            if (!in_box)
                for (int ch = 0; ch < 3; ch++) bad_bg += abs(px[ch] - 200) > noise;
        }
    CHECK_MSG(bad_inside == 0, "%d mask pixels outside their box", bad_inside);
    CHECK_MSG(bad_colour == 0, "%d mask pixel channels not the object's colour", bad_colour);
    CHECK_MSG(bad_bg == 0, "%d background channels off 200 +- %d", bad_bg, noise);
    for (int i = 0; i < s->n_objects; i++) {
        const sc_object *o = &s->objects[i];
        double w = o->bbox[2] - o->bbox[0], h = o->bbox[3] - o->bbox[1];
        double want = o->shape == SC_CIRCLE ? M_PI * w * w / 4 : o->shape == SC_SQUARE ? w * h : w * h / 2;
        /* rounding the edge to whole pixels moves at most ~half the rim */
        double tol = 0.5 * 2 * (w + h) + 4;
        CHECK_MSG(fabs(area[i] - want) <= tol, "object %d (%s) mask area %ld, analytic %.1f", i, SHAPES[o->shape],
                  area[i], want);
        /* Interior pixel (box centre) has exactly the colour. */
        int cx = (o->bbox[0] + o->bbox[2]) / 2;
        int cy = o->shape == SC_TRIANGLE ? o->bbox[1] + 2 * (o->bbox[3] - o->bbox[1]) / 3 : (o->bbox[1] + o->bbox[3]) / 2;
        const uint8_t *px = s->rgb + 3 * ((size_t)cy * s->w + cx);
        CHECK(px[0] == RGB[o->color][0] && px[1] == RGB[o->color][1] && px[2] == RGB[o->color][2]);
    }
}

/* Recomputes the answer from the question text and the object list. */
static void check_answer(const sc_scene *s, const sc_qa *qa, int *lr) {
    char a[32], b[32];
    int n = s->n_objects, sh = -1, co = -1, cnt = 0, k = -1;
    switch (qa->type) {
    case SC_Q_COLOR:
        CHECK(sscanf(qa->question, "What color is the %31[a-z]?", a) == 1);
        sh = find_name(SHAPES, 4, a);
        CHECK(sh >= 0);
        for (int i = 0; i < n; i++)
            if (s->objects[i].shape == sh) cnt++, k = i;
        CHECK_MSG(cnt == 1, "color question about a shape present %d times", cnt);
        if (k >= 0) CHECK(!strcmp(qa->answer, COLORS[s->objects[k].color]));
        CHECK(qa->target == k);
        break;
    case SC_Q_SHAPE:
        CHECK(sscanf(qa->question, "What shape is the %31[a-z] object?", a) == 1);
        co = find_name(COLORS, 6, a);
        CHECK(co >= 0);
        for (int i = 0; i < n; i++)
            if (s->objects[i].color == co) cnt++, k = i;
        CHECK_MSG(cnt == 1, "shape question about a colour present %d times", cnt);
        if (k >= 0) CHECK(!strcmp(qa->answer, SHAPES[s->objects[k].shape]));
        CHECK(qa->target == k);
        break;
    case SC_Q_COUNT: {
        static const char *words[5] = {"zero", "one", "two", "three", "four"};
        CHECK(!strcmp(qa->question, "How many objects are there?"));
        CHECK(!strcmp(qa->answer, words[n]));
        CHECK(qa->target == -1);
        break;
    }
    case SC_Q_EXISTS: {
        CHECK(sscanf(qa->question, "Is there a %31[a-z] %31[a-z]?", a, b) == 2);
        co = find_name(COLORS, 6, a);
        sh = find_name(SHAPES, 4, b);
        CHECK(co >= 0 && sh >= 0);
        int same_shape = 0, same_color = 0;
        for (int i = 0; i < n; i++) {
            if (s->objects[i].color == co && s->objects[i].shape == sh) cnt++, k = i;
            same_shape += s->objects[i].shape == sh;
            same_color += s->objects[i].color == co;
        }
        CHECK(!strcmp(qa->answer, cnt ? "yes" : "no"));
        if (cnt) {
            CHECK_MSG(cnt == 1, "exists-yes names %d objects", cnt);
            CHECK(qa->target == k);
        } else {
            CHECK(qa->target == -1);
            CHECK_MSG(same_shape || same_color, "exists-no combination shares nothing with the scene");
        }
        break;
    }
    case SC_Q_POSITION: {
        CHECK(sscanf(qa->question, "Is the %31[a-z] %31[a-z] on the left or the right?", a, b) == 2);
        co = find_name(COLORS, 6, a);
        sh = find_name(SHAPES, 4, b);
        for (int i = 0; i < n; i++)
            if (s->objects[i].color == co && s->objects[i].shape == sh) cnt++, k = i;
        CHECK_MSG(cnt == 1, "position question names %d objects", cnt);
        if (k < 0) break;
        CHECK(qa->target == k);
        double cx = 0.5 * (s->objects[k].bbox[0] + s->objects[k].bbox[2]);
        CHECK_MSG(cx < 0.4 * s->w || cx > 0.6 * s->w, "centre %.1f inside the middle fifth of %d", cx, s->w);
        CHECK(!strcmp(qa->answer, cx < 0.5 * s->w ? "left" : "right"));
        lr[cx > 0.5 * s->w]++;
        break;
    }
    default: CHECK(0);
    }
}

static void test_determinism(void) {
    err_t err = {0};
    sc_scene a, b;
    sc_qa qa, qb;
    CHECK_OK(sc_example(&a, &qa, 7, 123, 224, 224, true, &err), &err);
    CHECK_OK(sc_example(&b, &qb, 7, 123, 224, 224, true, &err), &err);
    CHECK(!memcmp(a.rgb, b.rgb, 224 * 224 * 3) && !memcmp(a.mask, b.mask, 224 * 224));
    CHECK(!strcmp(qa.question, qb.question) && !strcmp(qa.answer, qb.answer) && qa.target == qb.target);
    CHECK(a.n_objects == b.n_objects && !memcmp(a.objects, b.objects, sizeof a.objects));
    sc_scene_free(&b);
    /* Another index or seed gives another image. */
    CHECK_OK(sc_example(&b, &qb, 7, 124, 224, 224, true, &err), &err);
    CHECK(memcmp(a.rgb, b.rgb, 224 * 224 * 3) != 0);
    sc_scene_free(&b);
    CHECK_OK(sc_example(&b, &qb, 8, 123, 224, 224, true, &err), &err);
    CHECK(memcmp(a.rgb, b.rgb, 224 * 224 * 3) != 0);
    sc_scene_free(&b);
    /* The buffer-reusing variant gives the same bytes. */
    sc_scene r = {0};
    CHECK_OK(sc_example_reuse(&r, &qb, 1, 5, 224, 224, true, &err), &err);
    CHECK_OK(sc_example_reuse(&r, &qb, 7, 123, 224, 224, true, &err), &err);
    CHECK(!memcmp(a.rgb, r.rgb, 224 * 224 * 3) && !strcmp(qa.question, qb.question));
    sc_scene_free(&r);
    sc_scene_free(&a);
    /* The PRNG is splitmix64: first output of state 0 (Vigna's reference value). */
    sc_rng g;
    sc_rng_seed(&g, 0);
    CHECK(sc_rng_next(&g) == 0xE220A8397B1DCDAFull);
    double u = sc_rng_uniform(&g);
    CHECK(u >= 0 && u < 1);
}

static void test_split(int w, int h, int noise, int n) {
    err_t err = {0};
    int types[SC_N_QTYPES] = {0}, yes = 0, no = 0, counts[5] = {0}, lr[2] = {0};
    int colors[6] = {0}, shapes[4] = {0};
    sc_scene s = {0};
    sc_qa qa;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        CHECK_OK(sc_example_reuse(&s, &qa, 1, (uint64_t)i, w, h, noise, &err), &err);
        CHECK(qa.type == i % SC_N_QTYPES);
        if (qa.type >= 0 && qa.type < SC_N_QTYPES) types[qa.type]++;
        check_geometry(&s);
        if (i < n / 4) check_pixels(&s, noise ? 8 : 0);
        check_answer(&s, &qa, lr);
        if (qa.type == SC_Q_EXISTS) {
            yes += !strcmp(qa.answer, "yes");
            no += !strcmp(qa.answer, "no");
        }
        if (qa.type == SC_Q_COUNT) counts[s.n_objects]++;
        int ci = find_name(COLORS, 6, qa.answer), si = find_name(SHAPES, 4, qa.answer);
        if (qa.type == SC_Q_COLOR && ci >= 0) colors[ci]++;
        if (qa.type == SC_Q_SHAPE && si >= 0) shapes[si]++;
    }
    double dt = now_s() - t0;
    sc_scene_free(&s);
    printf("  %dx%d noise=%d: %d examples, %.2f ms each (incl. checks)\n", w, h, noise, n, 1e3 * dt / n);
    int per = n / SC_N_QTYPES;
    for (int t = 0; t < SC_N_QTYPES; t++) CHECK(types[t] == per);
    /* Exists alternates yes/no exactly. */
    CHECK_MSG(abs(yes - no) <= 1 && yes + no == per, "yes %d no %d", yes, no);
    /* Binomial bounds at ~4 sigma: count answers uniform over 1..4, left/right 1/2,
     * colours 1/6, shapes 1/4 (n = per draws each). */
    for (int c = 1; c <= 4; c++) {
        double p = per / 4.0, sd = sqrt(per * 0.25 * 0.75);
        CHECK_MSG(fabs(counts[c] - p) <= 4 * sd, "count answer %d: %d of %d", c, counts[c], per);
    }
    {
        double p = per / 2.0, sd = sqrt(per * 0.25);
        CHECK_MSG(fabs(lr[0] - p) <= 4 * sd, "left %d right %d", lr[0], lr[1]);
    }
    for (int c = 0; c < 6; c++) {
        double p = per / 6.0, sd = sqrt(per / 6.0 * 5 / 6);
        CHECK_MSG(fabs(colors[c] - p) <= 4 * sd, "colour %s answered %d of %d", COLORS[c], colors[c], per);
    }
    for (int c = 0; c < 4; c++) {
        double p = per / 4.0, sd = sqrt(per * 0.25 * 0.75);
        CHECK_MSG(fabs(shapes[c] - p) <= 4 * sd, "shape %s answered %d of %d", SHAPES[c], shapes[c], per);
    }
}

static void test_speed(void) {
    err_t err = {0};
    sc_scene s = {0};
    sc_qa qa;
    int n = 300;
    double t0 = now_s();
    for (int i = 0; i < n; i++) CHECK_OK(sc_example_reuse(&s, &qa, 2, (uint64_t)i, 224, 224, true, &err), &err);
    double ms = 1e3 * (now_s() - t0) / n;
    sc_scene_free(&s);
    printf("  sc_example 224x224 with noise: %.3f ms per example\n", ms);
    /* "A scene in a few ms": generous so that sanitizer builds pass too. */
    CHECK_MSG(ms < 25, "%.2f ms per example", ms);
}

/* The trainer's noise rule: about half of all indices and of each question type. */
static void test_noise_half(void) {
    int on = 0, per_type[SC_N_QTYPES] = {0};
    for (uint64_t i = 0; i < 2000; i++)
        if (sc_noise_half(i)) on++, per_type[i % SC_N_QTYPES]++;
    CHECK_MSG(abs(on - 1000) <= 90, "%d of 2000 noisy", on); /* 4 sigma = 89 */
    for (int t = 0; t < SC_N_QTYPES; t++) CHECK_MSG(abs(per_type[t] - 200) <= 40, "type %d: %d of 400", t, per_type[t]);
    CHECK(sc_noise_half(1) == (((1ull * 0x9E3779B97F4A7C15ull) >> 63) != 0));
}

/* sc_example_opts: the default range reproduces sc_example_reuse; a 1..1 range
 * gives single-object scenes; a bad range is refused. */
static void test_options(void) {
    err_t err = {0};
    sc_scene a = {0}, b = {0};
    sc_qa qa, qb;
    sc_options o = {.min_objects = 1, .max_objects = 4, .noise = true};
    for (uint64_t i = 0; i < 20; i++) {
        CHECK_OK(sc_example_reuse(&a, &qa, 5, i, 224, 224, true, &err), &err);
        CHECK_OK(sc_example_opts(&b, &qb, 5, i, 224, 224, &o, &err), &err);
        CHECK(!memcmp(a.rgb, b.rgb, 224 * 224 * 3) && !strcmp(qa.question, qb.question));
    }
    o.max_objects = 1;
    int lr[2] = {0};
    for (uint64_t i = 0; i < 50; i++) {
        CHECK_OK(sc_example_opts(&b, &qb, 5, i, 224, 224, &o, &err), &err);
        CHECK(b.n_objects == 1 && qb.type == (int)(i % 5));
        check_answer(&b, &qb, lr);
    }
    o.min_objects = 3;
    CHECK(sc_example_opts(&b, &qb, 5, 0, 224, 224, &o, &err) == ERR_ARG);
    sc_scene_free(&a);
    sc_scene_free(&b);
}

static void test_errors(void) {
    err_t err = {0};
    sc_scene s;
    sc_qa qa;
    CHECK(sc_example(&s, &qa, 1, 0, 8, 224, false, &err) == ERR_ARG);
    CHECK(strstr(err.msg, "8x224") != NULL);
    CHECK(sc_example(&s, &qa, 1, 0, 224, 100000, false, &err) == ERR_ARG);
    sc_rng r;
    sc_rng_seed(&r, 3);
    CHECK(sc_scene_create(&s, &r, 0, 0, false, &err) == ERR_ARG);
    CHECK_OK(sc_scene_create(&s, &r, 224, 224, false, &err), &err);
    check_geometry(&s);
    check_pixels(&s, 0);
    /* A type that the scene cannot host is refused, not invented. */
    sc_scene one = s;
    one.n_objects = 2;
    one.objects[1] = one.objects[0];
    one.objects[1].bbox[0] += 100; /* geometry is irrelevant to the question rules */
    CHECK(!sc_make_question(&one, &r, SC_Q_COLOR, true, &qa));
    CHECK(!sc_make_question(&one, &r, SC_Q_SHAPE, true, &qa));
    CHECK(!sc_make_question(&one, &r, SC_Q_EXISTS, true, &qa));
    CHECK(sc_make_question(&one, &r, SC_Q_EXISTS, false, &qa) && !strcmp(qa.answer, "no"));
    CHECK(!sc_make_question(&one, &r, SC_Q_POSITION, true, &qa));
    CHECK(sc_make_question(&one, &r, SC_Q_COUNT, true, &qa) && !strcmp(qa.answer, "two"));
    CHECK(!sc_make_question(&one, &r, 99, true, &qa));
    sc_scene_free(&s);
}

int main(void) {
    test_determinism();
    test_split(224, 224, 1, 1000);
    test_split(224, 224, 0, 500);
    test_split(320, 240, 1, 250);
    test_split(64, 48, 0, 250);
    test_speed();
    test_noise_half();
    test_options();
    test_errors();
    return test_result("test_scenes");
}
