/* test_image.c — image loading (every format, gray, alpha, errors, limits) and the
 * preprocessing pipelines against Pillow (goldens from tests/reference/vision_ref.py
 * --resample), identity at the model size, and the geometry back to the original. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vision/image.h"
#include "vision/preprocess.h"

#define GOLDEN LM_SOURCE_DIR "/tests/golden/vision/"

static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static int load(const char *name, img_t *im) {
    err_t e = {0};
    char p[1024];
    snprintf(p, sizeof p, GOLDEN "%s", name);
    if (img_load(im, p, NULL, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        test_failures_++;
        return 1;
    }
    return 0;
}

/* max and mean |a-b| over all channels; -1 when sizes differ */
static int img_cmp(const img_t *a, const img_t *b, double *mean) {
    if (a->w != b->w || a->h != b->h) return -1;
    int mx = 0;
    double s = 0;
    size_t n = (size_t)a->w * a->h * 3;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a->rgb[i] - (int)b->rgb[i]);
        if (d > mx) mx = d;
        s += d;
    }
    if (mean) *mean = s / (double)n;
    return mx;
}

static void check_formats(void) {
    img_t ref, gray, im;
    if (load("small_45x31.png", &ref) || load("formats/small_gray.png", &gray)) return;
    CHECK(ref.w == 45 && ref.h == 31);
    /* lossless formats decode to exactly the PNG's pixels */
    const char *exact[] = {"formats/small.bmp", "formats/small.tga", "formats/small.ppm"};
    for (int i = 0; i < 3; i++) {
        if (load(exact[i], &im)) continue;
        int d = img_cmp(&im, &ref, NULL);
        CHECK_MSG(d == 0, "%s differs from the PNG by %d", exact[i], d);
        img_free(&im);
    }
    /* grayscale expands to R = G = B; 16-bit reduces to 8 bits */
    const char *grays[] = {"formats/small_gray.png", "formats/small_gray.pgm", "formats/small_gray16.png"};
    for (int i = 0; i < 3; i++) {
        if (load(grays[i], &im)) continue;
        int d = img_cmp(&im, &gray, NULL);
        CHECK_MSG(d == 0, "%s differs from the gray PNG by %d", grays[i], d);
        int rgb_equal = 1;
        for (int k = 0; k < im.w * im.h; k++)
            if (im.rgb[3 * k] != im.rgb[3 * k + 1] || im.rgb[3 * k] != im.rgb[3 * k + 2]) rgb_equal = 0;
        CHECK(rgb_equal);
        img_free(&im);
    }
    /* GIF: first frame, palette expanded exactly as PIL decodes it */
    img_t gif_ref;
    if (!load("formats/small_gif_decoded.png", &gif_ref) && !load("formats/small.gif", &im)) {
        CHECK(img_cmp(&im, &gif_ref, NULL) == 0);
        img_free(&im);
        img_free(&gif_ref);
    }
    /* JPEG (baseline and progressive of the same picture): decoders may differ in
     * IDCT and chroma upsampling rounding, so compare with libjpeg's decode (via PIL)
     * loosely; the source itself is further away (4:2:0 chroma on a noisy image). */
    img_t jref;
    const char *jpegs[] = {"formats/small.jpg", "formats/small_prog.jpg"};
    if (!load("formats/small_jpg_decoded.png", &jref)) {
        for (int i = 0; i < 2; i++) {
            if (load(jpegs[i], &im)) continue;
            double mean;
            int d = img_cmp(&im, &jref, &mean);
            printf("%s vs libjpeg: max %d, mean %.3f\n", jpegs[i], d, mean);
            CHECK_MSG(d >= 0 && mean < 1.5 && d <= 24, "%s: mean abs diff %.2f (max %d)", jpegs[i], mean, d);
            img_free(&im);
        }
        img_free(&jref);
    }
    /* alpha composited over white: out = (a c + (255 - a) 255) / 255 rounded */
    img_t a, white;
    if (!load("alpha_20x12.png", &a) && !load("alpha_20x12_white.png", &white)) {
        CHECK(img_cmp(&a, &white, NULL) == 0);
        CHECK(a.rgb[0] == 255 && a.rgb[1] == 255 && a.rgb[2] == 255); /* alpha 0 column */
        img_free(&a);
        img_free(&white);
    }
    /* gray + alpha and a palette's transparent entry: composited over white the same way */
    const char *alphas[][2] = {{"alpha_la_20x12.png", "alpha_la_20x12_white.png"},
                               {"alpha_pal_20x12.png", "alpha_pal_20x12_white.png"}};
    for (int i = 0; i < 2; i++) {
        if (load(alphas[i][0], &a) || load(alphas[i][1], &white)) continue;
        int d = img_cmp(&a, &white, NULL);
        CHECK_MSG(d == 0, "%s differs from its white composite by %d", alphas[i][0], d);
        img_free(&a);
        img_free(&white);
    }
    /* an animated GIF gives its first frame exactly (PIL's frame 0), not a later one */
    img_t f0, f1;
    if (!load("formats/anim3.gif", &im) && !load("formats/anim3_frame0.png", &f0) &&
        !load("formats/anim3_frame1.png", &f1)) {
        int d0 = img_cmp(&im, &f0, NULL);
        double m1 = 0;
        int d1 = img_cmp(&im, &f1, &m1);
        CHECK_MSG(d0 == 0, "animated GIF: differs from frame 0 by %d", d0);
        CHECK_MSG(d1 > 0 && m1 > 10, "animated GIF: frame 1 is not different enough (%d, %.1f)", d1, m1);
        img_free(&im);
        img_free(&f0);
        img_free(&f1);
    }
    img_free(&ref);
    img_free(&gray);
}

/* EXIF orientation 1..8 on the same JPEG data: our upright image must match PIL's
 * ImageOps.exif_transpose of libjpeg's decode (decoder rounding differs by a few
 * levels; a wrong rotation or mirror is off by tens of levels on average), and
 * ignore_exif keeps the stored orientation. */
static void check_exif(void) {
    err_t e = {0};
    for (int o = 1; o <= 8; o++) {
        char jp[128], up[128];
        snprintf(jp, sizeof jp, "formats/exif_%d.jpg", o);
        snprintf(up, sizeof up, "formats/exif_%d_upright.png", o);
        img_t im, want;
        if (load(jp, &im) || load(up, &want)) continue;
        double mean = 0;
        int d = img_cmp(&im, &want, &mean);
        CHECK_MSG(d >= 0 && mean < 1.5 && d <= 24, "EXIF %d: %dx%d vs %dx%d, mean diff %.2f (max %d)", o, im.w, im.h,
                  want.w, want.h, mean, d);
        CHECK(im.orientation == o);
        CHECK((o >= 5) == (im.w == 16 && im.h == 24));
        img_free(&im);
        img_free(&want);
        char path[1024];
        snprintf(path, sizeof path, GOLDEN "%s", jp);
        img_opts ig = {.ignore_exif = true};
        CHECK_OK(img_load(&im, path, &ig, &e), &e);
        CHECK(im.w == 24 && im.h == 16 && im.orientation == 1);
        img_free(&im);
    }
    /* malformed EXIF never crashes and means "no orientation" */
    unsigned char bad[64] = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x30, 'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 0xF0, 0xFF, 0xFF, 0x7F};
    CHECK(img_exif_orientation(bad, sizeof bad) == 1);
    CHECK(img_exif_orientation(bad, 5) == 1);
}

static void check_errors(void) {
    err_t e = {0};
    img_t im;
    /* not an image */
    const char text[] = "hello, this is not an image at all\n";
    CHECK(img_load_memory(&im, text, sizeof text, "notes.txt", NULL, &e) == ERR_FORMAT);
    CHECK(strstr(e.msg, "notes.txt") != NULL);
    CHECK(img_load_memory(&im, text, 0, "empty.png", NULL, &e) == ERR_FORMAT);
    CHECK(img_load(&im, "/nonexistent/x.png", NULL, &e) == ERR_IO);
    CHECK(strstr(e.msg, "/nonexistent/x.png") != NULL);

    /* truncated PNG: header fine, data cut */
    FILE *f = fopen(GOLDEN "photo_160x120.png", "rb");
    unsigned char buf[200000];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 1000);
    err_code rc = img_load_memory(&im, buf, n / 2, "cut.png", NULL, &e);
    CHECK_MSG(rc == ERR_FORMAT, "truncated PNG: %s", e.msg);
    CHECK(strstr(e.msg, "cut.png") != NULL);
    if (rc == ERR_OK) img_free(&im);

    /* a PNG header claiming 16385 x 2000 (over the default side limit): rejected from
     * the header alone (33 bytes, no pixel data), before any decoding */
    unsigned char big[64];
    memcpy(big, buf, 33 < n ? 33 : n);
    big[16] = 0, big[17] = 0, big[18] = 0x40, big[19] = 0x01; /* width 16385 */
    big[20] = 0, big[21] = 0, big[22] = 0x07, big[23] = 0xd0; /* height 2000 */
    CHECK(img_load_memory(&im, big, 33, "huge.png", NULL, &e) == ERR_RANGE);
    CHECK_MSG(strstr(e.msg, "16385x2000") != NULL, "%s", e.msg);

    /* a zero-width PNG header */
    memcpy(big, buf, 33);
    big[16] = big[17] = big[18] = big[19] = 0;
    CHECK(img_load_memory(&im, big, 33, "zero.png", NULL, &e) != ERR_OK);
    CHECK(strstr(e.msg, "zero.png") != NULL);

    /* regression (fuzz_image): a truncated 8-bit binary PNM; the header's implied
     * raster size is checked before stb sees the file */
    static const unsigned char pnmcut[] = "P5\n597\n597\n255\nM\0" "14\nM";
    CHECK(img_load_memory(&im, pnmcut, sizeof pnmcut - 1, "cut.pgm", NULL, &e) == ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "truncated PNM") != NULL, "%s", e.msg);
    static const unsigned char pnm8[] = "P6 # comment\n2 1\n255\n\x01\x02\x03\x04\x05\x06";
    CHECK_OK(img_load_memory(&im, pnm8, sizeof pnm8 - 1, "ok.ppm", NULL, &e), &e);
    CHECK(im.w == 2 && im.h == 1 && im.rgb && im.rgb[5] == 6);
    img_free(&im);
    CHECK(img_load_memory(&im, pnm8, sizeof pnm8 - 2, "short.ppm", NULL, &e) == ERR_FORMAT);
    /* regression (fuzz_image): Debian's stb reads past its buffer on a complete
     * 16-bit gray PNM and decodes wrong values, so 16-bit PNM is refused, by name */
    static const unsigned char pgm16[] = "P5\n2 1\n65535\n\x12\x34\xab\xcd";
    CHECK(img_load_memory(&im, pgm16, sizeof pgm16 - 1, "deep.pgm", NULL, &e) == ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "deep.pgm: 16-bit PNM") != NULL, "%s", e.msg);
    /* gray expansion after stb with req_comp = 0: R = G = B = the gray value */
    static const unsigned char pgm8[] = "P5\n2 1\n255\n\x12\xab";
    CHECK_OK(img_load_memory(&im, pgm8, sizeof pgm8 - 1, "gray.pgm", NULL, &e), &e);
    CHECK(im.w == 2 && im.h == 1 && im.rgb[0] == 0x12 && im.rgb[2] == 0x12 && im.rgb[3] == 0xab && im.rgb[5] == 0xab);
    img_free(&im);

    /* regression (fuzz_image): JPEGs whose Huffman data tripped an assertion inside
     * Debian's libstb.so (which aborted the process) or read past its tables; stb is
     * compiled in now, with assertions as errors and zeroed allocations
     * (vision/stb_decode.c), and DHT segments are checked first (image.c) */
    {
        size_t jn = 0;
        static const char *const bad[] = {"jpeg_huff_assert.jpg", "jpeg_huff_oob.jpg"};
        for (int i = 0; i < 2; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/tests/fuzz/corpus/image/%s", LM_SOURCE_DIR, bad[i]);
            unsigned char *jb = test_slurp(path, &jn);
            CHECK(jb != NULL);
            if (!jb) continue;
            CHECK(img_load_memory(&im, jb, jn, "huff.jpg", NULL, &e) == ERR_FORMAT);
            CHECK_MSG(strstr(e.msg, "huff.jpg: ") == e.msg, "%s", e.msg);
            free(jb);
        }
    }
    /* a 9x7 PNG whose IDAT claims about a gigabyte made stb allocate 2 GiB (fuzz_image):
     * stb's allocations are capped by what the image's size can need */
    {
        size_t pn = 0;
        unsigned char *pb = test_slurp(LM_SOURCE_DIR "/tests/fuzz/corpus/image/png_huge_chunk.png", &pn);
        CHECK(pb != NULL);
        if (pb) {
            CHECK(img_load_memory(&im, pb, pn, "chunk.png", NULL, &e) == ERR_FORMAT);
            CHECK_MSG(strstr(e.msg, "chunk.png: cannot decode image (it declares data far larger than a 9x7") == e.msg,
                      "%s", e.msg);
            free(pb);
        }
    }
    /* a DHT whose 16 counts sum past 256 made stb write past its tables (fuzz_image):
     * refused before stb sees it */
    {
        unsigned char j[64] = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
        for (int i = 0; i < 16; i++) j[7 + i] = i < 8 ? 0 : 40; /* 320 codes of 9..16 bits */
        j[23] = 0xFF, j[24] = 0xD9;
        CHECK(img_load_memory(&im, j, 25, "dht.jpg", NULL, &e) == ERR_FORMAT);
        CHECK_MSG(strstr(e.msg, "dht.jpg: JPEG Huffman table declares 320 codes") != NULL, "%s", e.msg);
    }
    CHECK(img_load_memory(&im, "#?RADIANCE\n", 11, "x.hdr", NULL, &e) == ERR_UNSUPPORTED);
    CHECK(img_load_memory(&im, "8BPS\0\1", 6, "x.psd", NULL, &e) == ERR_UNSUPPORTED);

    /* the limit is configurable */
    img_opts o = {.max_w = 100, .max_h = 100};
    CHECK(img_load_memory(&im, buf, n, "photo.png", &o, &e) == ERR_RANGE);
    o.max_w = o.max_h = 160;
    CHECK_OK(img_load_memory(&im, buf, n, "photo.png", &o, &e), &e);
    img_free(&im);
}

/* Our Pillow-bicubic pipelines against PIL itself (and llamacpp against a NumPy
 * transcription of llama.cpp's resize): identical u8 pixels expected; the spec
 * allows 1/255 per channel. */
static void check_resample(void) {
    struct {
        const char *src, *golden;
        pp_pipeline pipe;
    } cases[] = {{"photo_160x120.png", "photo_pad224.png", PP_PAD},
                 {"photo_160x120.png", "photo_crop224.png", PP_CROP},
                 {"small_45x31.png", "small_pad224.png", PP_PAD},
                 {"small_45x31.png", "small_crop224.png", PP_CROP},
                 {"strip_600x9.png", "strip_600x9_pad224.png", PP_PAD},
                 {"strip_600x9.png", "strip_600x9_crop224.png", PP_CROP},
                 {"strip_7x300.png", "strip_7x300_pad224.png", PP_PAD},
                 {"strip_7x300.png", "strip_7x300_crop224.png", PP_CROP},
                 /* llama.cpp's pipeline against a NumPy transcription of its source */
                 {"photo_160x120.png", "photo_llamacpp224.png", PP_LLAMACPP},
                 {"small_45x31.png", "small_llamacpp224.png", PP_LLAMACPP},
                 {"strip_600x9.png", "strip_600x9_llamacpp224.png", PP_LLAMACPP},
                 {"strip_7x300.png", "strip_7x300_llamacpp224.png", PP_LLAMACPP}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        img_t src, want, got;
        if (load(cases[i].src, &src)) continue;
        if (load(cases[i].golden, &want)) continue;
        err_t e = {0};
        pp_geom g;
        CHECK_OK(pp_model_image(&src, cases[i].pipe, 224, 14, CLIP_MEAN, &got, &g, &e), &e);
        double mean = 0;
        int d = img_cmp(&got, &want, &mean);
        CHECK_MSG(d >= 0 && d <= 1, "%s -> %s: max diff %d", cases[i].src, cases[i].golden, d);
        printf("%s %s 224: max |ours - reference| = %d, mean %.4f\n", cases[i].src, pp_pipeline_name(cases[i].pipe), d,
               mean);
        img_free(&src);
        img_free(&want);
        img_free(&got);
    }
}

static void check_identity_and_norm(void) {
    err_t e = {0};
    img_t src, out;
    CHECK_OK(img_create(&src, 224, 224, &e), &e);
    for (int i = 0; i < 224 * 224 * 3; i++) src.rgb[i] = (uint8_t)((i * 7919) >> 3);
    for (int p = 0; p < 3; p++) {
        pp_geom g;
        CHECK_OK(pp_model_image(&src, (pp_pipeline)p, 224, 14, CLIP_MEAN, &out, &g, &e), &e);
        CHECK_MSG(!memcmp(out.rgb, src.rgb, 224 * 224 * 3), "pipeline %d changed a 224x224 image", p);
        CHECK(g.sx == 1 && g.sy == 1 && g.ox == 0 && g.oy == 0 && g.grid == 16);
        img_free(&out);
    }
    /* normalisation: CHW, (v/255 - mean)/std */
    float *x = malloc(sizeof(float) * 3 * 224 * 224);
    pp_geom g;
    CHECK_OK(pp_run(&src, PP_PAD, 224, 14, CLIP_MEAN, CLIP_STD, x, &g, &e), &e);
    int idx = 37 * 224 + 101;
    for (int c = 0; c < 3; c++)
        CHECK_NEAR(x[c * 224 * 224 + idx], (src.rgb[3 * idx + c] / 255.0 - CLIP_MEAN[c]) / CLIP_STD[c], 1e-6);
    free(x);
    img_free(&src);
    CHECK(pp_pipeline_from_name("pad") == PP_PAD && pp_pipeline_from_name("crop") == PP_CROP);
    CHECK(pp_pipeline_from_name("llamacpp") == PP_LLAMACPP);
    CHECK(pp_pipeline_from_name("squash") == -1);
}

/* A bright square in the original lands where the geometry says, in both pipelines. */
static void check_geometry(void) {
    err_t e = {0};
    img_t src;
    int W = 300, H = 180;
    CHECK_OK(img_create(&src, W, H, &e), &e);
    int x0 = 200, y0 = 40, x1 = 240, y1 = 100; /* [x0, x1) x [y0, y1) white */
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) memset(src.rgb + ((size_t)y * W + x) * 3, 255, 3);
    for (int p = 0; p < 3; p++) {
        img_t m;
        pp_geom g;
        CHECK_OK(pp_model_image(&src, (pp_pipeline)p, 224, 14, CLIP_MEAN, &m, &g, &e), &e);
        /* centroid of bright pixels in the model image vs the mapped centre */
        double sx = 0, sy = 0, sw = 0;
        for (int y = 0; y < 224; y++)
            for (int x = 0; x < 224; x++) {
                double v = m.rgb[(y * 224 + x) * 3 + 1] / 255.0;
                if (v > 0.6) sx += x + 0.5, sy += y + 0.5, sw += 1;
            }
        double cx = ((x0 + x1) / 2.0) * g.sx + g.ox, cy = ((y0 + y1) / 2.0) * g.sy + g.oy;
        CHECK(sw > 0);
        CHECK_MSG(fabs(sx / sw - cx) < 0.75 && fabs(sy / sw - cy) < 0.75, "%s: centroid (%.2f,%.2f) vs mapped (%.2f,%.2f)",
                  pp_pipeline_name(g.pipeline), sx / sw, sy / sw, cx, cy);
        /* the cell containing the square's centre has a box containing the centre */
        int c = (int)(cx / 14), r = (int)(cy / 14);
        double box[4];
        CHECK(pp_cell_box(&g, r, c, box));
        double ox = (x0 + x1) / 2.0, oy = (y0 + y1) / 2.0;
        CHECK(box[0] <= ox && ox < box[2] && box[1] <= oy && oy < box[3]);
        /* cells tile the visible part of the image without gaps */
        double area = 0;
        for (int rr = 0; rr < g.grid; rr++)
            for (int cc = 0; cc < g.grid; cc++)
                if (pp_cell_box(&g, rr, cc, box)) area += (box[2] - box[0]) * (box[3] - box[1]);
        double visible = p == PP_CROP ? (224 / g.sx) * (224 / g.sy) : (double)W * H;
        /* llama.cpp samples at (w/nw) j without the half-pixel offset, so the last
         * fraction of a source pixel on the right and bottom is never seen */
        CHECK_NEAR(area, visible, (p == PP_LLAMACPP ? 1e-2 : 1e-6) * visible);
        img_free(&m);
    }
    /* pad: 300x180 -> square 300, vertical offset 60, scale 224/300; first grid row
     * shows only padding */
    pp_geom g;
    img_t m;
    CHECK_OK(pp_model_image(&src, PP_PAD, 224, 14, CLIP_MEAN, &m, &g, &e), &e);
    double box[4];
    CHECK(!pp_cell_box(&g, 0, 0, box));
    CHECK(m.rgb[0] == 122 && m.rgb[1] == 116 && m.rgb[2] == 104); /* LLaVA's mean colour */
    CHECK(pp_cell_box(&g, 8, 8, box));
    CHECK_NEAR(box[0], 112 * 300.0 / 224, 1e-9);
    CHECK_NEAR(box[1], 112 * 300.0 / 224 - 60, 1e-9);
    double a, b, c2, d2;
    pp_grid_affine(&g, &a, &b, &c2, &d2);
    CHECK_NEAR(a, 224.0 / 300 / 14, 1e-12);
    CHECK_NEAR(d2, 60 * 224.0 / 300 / 14, 1e-12);
    img_free(&m);
    /* crop: 300x180 -> 373x224 (int(224*300/180)), left offset (373-224)/2 = 74 */
    CHECK_OK(pp_model_image(&src, PP_CROP, 224, 14, CLIP_MEAN, &m, &g, &e), &e);
    CHECK_NEAR(g.sx, 373.0 / 300, 1e-12);
    CHECK_NEAR(g.ox, -74, 1e-12);
    img_free(&m);
    img_free(&src);
}

/* Files cut short fail in every format. Read from memory, stb pads a short file with
 * zeros, so before stb_decode read through callbacks a cut BMP, TGA or GIF came back
 * "decoded" with a black tail. Cuts keep the header and lose part of the pixel data
 * (a TGA's 26-byte footer and a GIF's 1-byte trailer are not pixel data: cuts go past
 * them). */
static void check_truncated(void) {
    static const char *const files[] = {"formats/small.bmp", "formats/small.tga", "formats/small.gif",
                                        "formats/small.ppm", "formats/small_gray.pgm", "formats/small.jpg",
                                        "formats/small_prog.jpg", "formats/small_gray16.png", "photo_160x120.png",
                                        "alpha_20x12.png", "formats/exif_6.jpg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, GOLDEN "%s", files[i]);
        size_t n = 0;
        unsigned char *b = test_slurp(path, &n);
        CHECK(b != NULL && n > 100);
        if (!b) continue;
        err_t e = {0};
        img_t im;
        CHECK_OK(img_load_memory(&im, b, n, files[i], NULL, &e), &e);
        img_free(&im);
        const size_t cuts[] = {n - 40, n - 200 > 60 ? n - 200 : 60, n / 2, 60};
        for (int k = 0; k < 4; k++) {
            err_code rc = img_load_memory(&im, b, cuts[k], files[i], NULL, &e);
            CHECK_MSG(rc == ERR_FORMAT, "%s cut to %zu of %zu bytes: %s", files[i], cuts[k], n,
                      rc ? err_code_name(rc) : "decoded");
            if (rc == ERR_OK) img_free(&im);
            else CHECK_MSG(strstr(e.msg, files[i]) == e.msg, "%s", e.msg);
        }
        free(b);
    }
    /* the message says what happened for the formats stb pads silently */
    size_t n = 0;
    unsigned char *b = test_slurp(GOLDEN "formats/small.bmp", &n);
    err_t e = {0};
    img_t im;
    if (b) {
        CHECK(img_load_memory(&im, b, n - 1, "cut.bmp", NULL, &e) == ERR_FORMAT);
        CHECK_MSG(strstr(e.msg, "cut.bmp: cannot decode image (truncated") == e.msg, "%s", e.msg);
        free(b);
    }
}

/* Sizes come from the header before stb: 0-sized and over-limit images get their own
 * message even where stb's header check fails first (a PNG over stb's 2^30-byte limit,
 * a 0x0 GIF or BMP: "unknown image type"). */
static void check_header_sizes(void) {
    err_t e = {0};
    img_t im;
    /* PNG: signature, IHDR length 13, "IHDR", width, height (big-endian) */
    unsigned char png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    const uint32_t sizes[][2] = {{20000, 20000}, {16385, 1}, {1, 100000}};
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 4; k++) {
            png[16 + k] = (unsigned char)(sizes[i][0] >> (24 - 8 * k));
            png[20 + k] = (unsigned char)(sizes[i][1] >> (24 - 8 * k));
        }
        CHECK(img_load_memory(&im, png, sizeof png, "big.png", NULL, &e) == ERR_RANGE);
        char want[96];
        snprintf(want, sizeof want, "big.png: image is %ux%u, larger than the limit 16384x16384", sizes[i][0],
                 sizes[i][1]);
        CHECK_MSG(strstr(e.msg, want) == e.msg, "%s", e.msg);
    }
    memset(png + 16, 0, 8);
    CHECK(img_load_memory(&im, png, sizeof png, "zero.png", NULL, &e) == ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "zero.png: image has size 0x0") == e.msg, "%s", e.msg);
    /* GIF logical screen 0x0 and 40000x3 */
    unsigned char gif[13] = {'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0, 0, 0, 0};
    CHECK(img_load_memory(&im, gif, sizeof gif, "zero.gif", NULL, &e) == ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "zero.gif: image has size 0x0") == e.msg, "%s", e.msg);
    gif[6] = 0x40, gif[7] = 0x9c, gif[8] = 3; /* 40000 x 3 */
    CHECK(img_load_memory(&im, gif, sizeof gif, "wide.gif", NULL, &e) == ERR_RANGE);
    CHECK_MSG(strstr(e.msg, "wide.gif: image is 40000x3") == e.msg, "%s", e.msg);
    /* BMP with a top-down (negative) height over the limit, and 0 wide */
    unsigned char bmp[54] = {'B', 'M', 54, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0};
    bmp[18] = 10, bmp[22] = 0xe0, bmp[23] = 0xb1, bmp[24] = 0xff, bmp[25] = 0xff; /* height -20000 */
    CHECK(img_load_memory(&im, bmp, sizeof bmp, "tall.bmp", NULL, &e) == ERR_RANGE);
    CHECK_MSG(strstr(e.msg, "tall.bmp: image is 10x20000") == e.msg, "%s", e.msg);
    bmp[18] = 0;
    CHECK(img_load_memory(&im, bmp, sizeof bmp, "zero.bmp", NULL, &e) == ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "zero.bmp: image has size 0x20000") == e.msg, "%s", e.msg);
    /* JPEG SOF0 after an APP0: height 3, width 17000 */
    const unsigned char jpg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0, 3, 0x42, 0x68, 1, 1, 0x11, 0};
    CHECK(img_load_memory(&im, jpg, sizeof jpg, "wide.jpg", NULL, &e) == ERR_RANGE);
    CHECK_MSG(strstr(e.msg, "wide.jpg: image is 17000x3") == e.msg, "%s", e.msg);
    img_opts o = {.max_w = 16000, .max_h = 2};
    CHECK(img_load_memory(&im, jpg, sizeof jpg, "wide.jpg", &o, &e) == ERR_RANGE);
    CHECK_MSG(strstr(e.msg, "limit 16000x2") != NULL, "%s", e.msg);
    /* PNM: 0 wide, and over the limit */
    CHECK(img_load_memory(&im, "P6\n0 5\n255\n", 11, "zero.ppm", NULL, &e) == ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "zero.ppm: image has size 0x5") == e.msg, "%s", e.msg);
    CHECK(img_load_memory(&im, "P5\n3 20000\n255\n", 15, "tall.pgm", NULL, &e) == ERR_RANGE);
    CHECK_MSG(strstr(e.msg, "tall.pgm: image is 3x20000") == e.msg, "%s", e.msg);
}

/* The mapping original <-> model image, measured through the resampling itself, and
 * every cell's box against the pipelines' definitions, for a landscape and a portrait
 * image in both pipelines. The original holds ramps, red = x and green = y (sides up
 * to 255); bicubic interpolation reproduces a linear function, so
 * the model image's red at model x is x_orig(x) - 1/2 up to the output's rounding. A
 * line fitted over the interior (away from the image's and the padding's edges, where
 * the kernel clamps) gives the mapping the resampling really applied, which must agree
 * with pp_geom's to a tenth of an original pixel everywhere in that range. */
static void fit_line(const double *x, const double *y, int n, double *a, double *b) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
    *a = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    *b = (sy - *a * sx) / n;
}

static void check_geometry_exact(void) {
    const int S = 224, p = 14, G = S / p;
    double worst = 0;
    const int sizes[][2] = {{120, 72}, {72, 120}, {97, 160}, {250, 61}};
    for (int si = 0; si < 4; si++) {
        const int W = sizes[si][0], H = sizes[si][1];
        err_t e = {0};
        img_t src;
        CHECK_OK(img_create(&src, W, H, &e), &e);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *q = src.rgb + ((size_t)y * W + x) * 3;
                q[0] = (uint8_t)x; /* exact: x_orig = value + 1/2 at pixel centres */
                q[1] = (uint8_t)y;
            }
        for (int pi = 0; pi < 2; pi++) {
            const pp_pipeline pipe = pi ? PP_CROP : PP_PAD;
            img_t m;
            pp_geom g;
            CHECK_OK(pp_model_image(&src, pipe, S, p, CLIP_MEAN, &m, &g, &e), &e);
            if (!m.rgb) continue;
            /* the definitions, written out: pad = paste at ((L-W)//2, (L-H)//2) on an L x L
             * square, L = max(W, H), then scale S/L; crop = short side to S, long side
             * int(S long / short), then the centre S x S at ((nw-S)//2, (nh-S)//2) */
            double sx, sy, ox, oy;
            if (pipe == PP_PAD) {
                int L = W > H ? W : H;
                sx = sy = (double)S / L;
                ox = (L - W) / 2 * sx;
                oy = (L - H) / 2 * sy;
            } else {
                int nw = W <= H ? S : (int)((double)S * W / H), nh = W <= H ? (int)((double)S * H / W) : S;
                sx = (double)nw / W, sy = (double)nh / H;
                ox = -((nw - S) / 2), oy = -((nh - S) / 2);
            }
            CHECK_MSG(fabs(g.sx - sx) < 1e-12 && fabs(g.sy - sy) < 1e-12 && fabs(g.ox - ox) < 1e-12 &&
                          fabs(g.oy - oy) < 1e-12,
                      "%dx%d %s: geometry (%g %g %g %g) vs definition (%g %g %g %g)", W, H, pp_pipeline_name(pipe),
                      g.sx, g.sy, g.ox, g.oy, sx, sy, ox, oy);
            /* measured: model coordinate (pixel centre) -> ramp value -> original coordinate */
            double *mx = malloc(sizeof(double) * S * S), *vx = malloc(sizeof(double) * S * S);
            for (int axis = 0; axis < 2; axis++) {
                const double s_ = axis ? g.sy : g.sx, o_ = axis ? g.oy : g.ox;
                const int len = axis ? H : W;
                int n = 0;
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        double mc = (axis ? y : x) + 0.5, other = (axis ? x : y) + 0.5;
                        double oc = (mc - o_) / s_;                                   /* original coordinate */
                        double oo = (other - (axis ? g.ox : g.oy)) / (axis ? g.sx : g.sy); /* and the other axis */
                        int olen = axis ? W : H;
                        if (oc < 4 || oc > len - 4 || oo < 4 || oo > olen - 4) continue;
                        mx[n] = mc;
                        vx[n] = m.rgb[((size_t)y * S + x) * 3 + axis] + 0.5;
                        n++;
                    }
                double a, b, lo = INFINITY, hi = -INFINITY, dev = 0;
                fit_line(mx, vx, n, &a, &b);
                for (int i = 0; i < n; i++) lo = fmin(lo, mx[i]), hi = fmax(hi, mx[i]);
                for (int k = 0; k < 2; k++) { /* both lines are straight: the ends bound it */
                    double mc = k ? hi : lo;
                    dev = fmax(dev, fabs(a * mc + b - (mc - o_) / s_));
                }
                CHECK_MSG(n > 1000 && dev < 0.1,
                          "%dx%d %s axis %d: resampling and geometry disagree by %.3f original px (fit %.5f x + %.3f, "
                          "geometry (x - %.3f) / %.5f, %d px)",
                          W, H, pp_pipeline_name(pipe), axis, dev, a, b, o_, s_, n);
                if (dev > worst) worst = dev;
            }
            free(mx);
            free(vx);
            /* every cell's box: the model cell [c p, (c+1) p) mapped back, clipped to the image */
            int n_cells = 0;
            double area = 0;
            for (int r = 0; r < G; r++)
                for (int c = 0; c < G; c++) {
                    double box[4];
                    bool vis = pp_cell_box(&g, r, c, box);
                    double x0 = fmax(0, (c * p - ox) / sx), x1 = fmin(W, ((c + 1) * p - ox) / sx);
                    double y0 = fmax(0, (r * p - oy) / sy), y1 = fmin(H, ((r + 1) * p - oy) / sy);
                    bool want = x1 > x0 && y1 > y0;
                    CHECK_MSG(vis == want, "%dx%d %s cell (%d,%d): visible %d, expected %d", W, H,
                              pp_pipeline_name(pipe), r, c, vis, want);
                    if (vis && want) {
                        CHECK_MSG(fabs(box[0] - x0) < 1e-9 && fabs(box[1] - y0) < 1e-9 && fabs(box[2] - x1) < 1e-9 &&
                                      fabs(box[3] - y1) < 1e-9,
                                  "%dx%d %s cell (%d,%d): box %g,%g,%g,%g vs %g,%g,%g,%g", W, H, pp_pipeline_name(pipe),
                                  r, c, box[0], box[1], box[2], box[3], x0, y0, x1, y1);
                        area += (box[2] - box[0]) * (box[3] - box[1]);
                        n_cells++;
                    }
                }
            /* pad: the cells cover the whole image; crop: exactly the centre window */
            double visible = pipe == PP_PAD ? (double)W * H : (S / sx) * (S / sy);
            CHECK_MSG(fabs(area - visible) < 1e-6 * visible, "%dx%d %s: cells cover %.3f px^2 of %.3f", W, H,
                      pp_pipeline_name(pipe), area, visible);
            if (pipe == PP_CROP) CHECK(n_cells == G * G);
            else CHECK(n_cells < G * G); /* non-square: some cells are padding only */
            img_free(&m);
        }
        img_free(&src);
    }
    printf("geometry: resampling vs pp_geom within %.4f original px (pad and crop, 4 aspect ratios)\n", worst);
}

int main(void) {
    check_geometry_exact();
    check_truncated();
    check_header_sizes();
    check_formats();
    check_exif();
    check_errors();
    check_resample();
    check_identity_and_norm();
    check_geometry();
    return test_result("test_image");
}
