/* test_llava.c — the LLaVA glue on the random-weight "tiny" preset (written here):
 * image span from the template, the step-wise API == llava_ask, log-probabilities,
 * hooks through generation, the width check and the context error.
 *
 * With the shipped toy model, an end-to-end golden (tests/golden/lm/toy.*) made by
 *   /usr/bin/python3 tests/reference/lm_llava_ref.py assets/model/llava-mech-toy-lm.gguf \
 *       assets/model/llava-mech-toy-mmproj.gguf assets/vqa/images/000000.png \
 *       tests/golden/lm/toy.ids.npy tests/golden/lm/toy --n-greedy 4 \
 *       --question "What color is the circle?" --bin build/llava-mech
 *   sha256sum assets/model/llava-mech-toy-{lm,mmproj}.gguf > tests/golden/lm/toy.sha256.txt
 * checks prompt ids, first-answer-token logits and the greedy answer against the
 * reference (HF CLIP + projector + LLaMA in float64). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/matmul.h"
#include "core/npy.h"
#include "core/png.h"
#include "core/presets.h"
#include "core/quant.h"
#include "language/llava.h"
#include "toy/vqa.h"
#include "tests/testutil.h"

#define LM "llava_test_tiny_lm.gguf"
#define MMPROJ "llava_test_tiny_mmproj.gguf"
#define LM_WIDE "llava_test_wide_lm.gguf"
#define IMG "llava_test_image.png"

/* Strict UTF-8 check (RFC 3629: no overlongs, surrogates or values past U+10FFFF). */
static bool valid_utf8(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned c = *u, cp, n;
        if (c < 0x80) {
            u++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
        else return false;
        for (unsigned k = 1; k <= n; k++) {
            if ((u[k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (u[k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        u += n + 1;
    }
    return true;
}

static void make_image(img_t *im, int w, int h, int variant) {
    err_t e = {0};
    CHECK_OK(img_create(im, w, h, &e), &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im->rgb + 3 * ((size_t)y * (size_t)w + (size_t)x);
            bool in = (x - w / 3) * (x - w / 3) + (y - h / 2) * (y - h / 2) < (h / 4) * (h / 4);
            p[0] = in ? (variant ? 40 : 220) : 200;
            p[1] = in ? (variant ? 80 : 40) : 200;
            p[2] = in ? (variant ? 220 : 40) : 200;
        }
}

typedef struct {
    int n_prefill, n_decode;
    int64_t last_pos0, last_nk;
    bool bad_shape;
} pat_seen_t;

static int on_pattern(void *user, const hook_info *info, float *data) {
    (void)data;
    pat_seen_t *s = user;
    if (info->shape[1] > 1)
        s->n_prefill++;
    else
        s->n_decode++;
    if (info->shape[2] != info->pos0 + info->shape[1]) s->bad_shape = true;
    s->last_pos0 = info->pos0;
    s->last_nk = info->shape[2];
    return 0;
}

#define TOY_LM LM_SOURCE_DIR "/" LLAVA_DEFAULT_LM
#define TOY_MMPROJ LM_SOURCE_DIR "/" LLAVA_DEFAULT_MMPROJ
#define TOY_GOLD LM_SOURCE_DIR "/tests/golden/lm/toy"

/* The model file's SHA-256 equals the one recorded with the goldens. */
static bool same_sha(const char *path, const char *want) {
    err_t e = {0};
    cJSON *info = vqa_file_info(path, &e);
    const cJSON *h = info ? cJSON_GetObjectItem(info, "sha256") : NULL;
    bool ok = cJSON_IsString(h) && !strcmp(h->valuestring, want);
    cJSON_Delete(info);
    return ok;
}

static void test_toy_golden(void) {
    err_t e = {0};
    npy_array_t ids = {0}, logits = {0}, greedy = {0};
    if (npy_read(TOY_GOLD ".ids.npy", &ids, &e)) {
        printf("toy golden: none committed yet (%s)\n", e.msg);
        return;
    }
    char sha_lm[80] = "", sha_mm[80] = "";
    FILE *f = fopen(TOY_GOLD ".sha256.txt", "r");
    CHECK(f && fscanf(f, "%64s %*s %64s", sha_lm, sha_mm) == 2);
    if (f) fclose(f);
    CHECK_MSG(same_sha(TOY_LM, sha_lm) && same_sha(TOY_MMPROJ, sha_mm),
              "the shipped model changed since tests/golden/lm/toy.* were made: regenerate them (see the header)");
    CHECK_OK(npy_read(TOY_GOLD ".first_logits.npy", &logits, &e), &e);
    CHECK_OK(npy_read(TOY_GOLD ".greedy.npy", &greedy, &e), &e);
    llava_params_t p = llava_default_params();
    p.n_threads = 2;
    p.exact = true;
    llava_t *l = NULL;
    CHECK_OK(llava_load(&l, &p, &e), &e); /* the default model */
    if (!l || !logits.data || !greedy.data) goto done;
    llava_prompt_t pr;
    CHECK_OK(llava_build_prompt(l, "What color is the circle?", &pr, &e), &e);
    CHECK(pr.n == ids.shape[0] && memcmp(pr.ids, ids.data, sizeof(int32_t) * (size_t)pr.n) == 0);
    llava_prompt_free(&pr);
    llava_gen_params_t g = llava_default_gen();
    g.n_predict = (int)greedy.shape[0] + 1;
    llava_answer_t a;
    CHECK_OK(llava_ask(l, LM_SOURCE_DIR "/assets/vqa/images/000000.png", "What color is the circle?", &g, &a, &e),
             &e);
    const int V = l->lm->cfg.n_vocab;
    if (a.first_logits && logits.shape[0] == V) {
        double d = 0.0;
        for (int i = 0; i < V; i++) d = fmax(d, fabs((double)a.first_logits[i] - ((const float *)logits.data)[i]));
        CHECK_MSG(d <= 2e-3, "toy model: first-token logits differ from the reference by %g", d);
        printf("toy golden: image -> answer logits max|d| %.2e vs float64 reference; answer \"%s\"\n", d,
               a.text ? a.text : "");
    }
    CHECK(a.n == greedy.shape[0] && memcmp(a.ids, greedy.data, sizeof(int32_t) * (size_t)a.n) == 0);
    llava_answer_free(&a);
done:
    llava_free(l);
    npy_free(&ids);
    npy_free(&logits);
    npy_free(&greedy);
}

int main(int argc, char **argv) {
    mm_init_blas(argc, argv);
    err_t e = {0};
    /* the fixtures below are written with relative names into a fresh folder */
    char dir[40];
    if (!test_tmpdir(dir) || chdir(dir) != 0) {
        fprintf(stderr, "test_llava: cannot make a temporary folder\n");
        return 1;
    }
    const preset_t *tiny = preset_find("tiny");
    CHECK(tiny != NULL);
    if (!tiny) return test_result("test_llava");
    preset_opts po = {QT_F32, QT_F16, 5, NULL, NULL};
    CHECK_OK(preset_write_lm(tiny, &po, LM, &e), &e);
    CHECK_OK(preset_write_mmproj(tiny, &po, MMPROJ, &e), &e);
    preset_t wide = *tiny;
    wide.n_embd = 128;
    CHECK_OK(preset_write_lm(&wide, &po, LM_WIDE, &e), &e);

    llava_params_t p = llava_default_params();
    p.lm_path = LM;
    p.mmproj_path = MMPROJ;
    p.n_threads = 2;
    llava_t *l = NULL;
    CHECK_OK(llava_load(&l, &p, &e), &e);
    if (!l) return test_result("test_llava");
    const int64_t grid = tiny->image_size / tiny->patch_size;
    CHECK(l->n_image == grid * grid && l->grid == grid);
    CHECK(l->st->n_ctx == tiny->ctx);

    /* the image span comes from the tokenized template */
    llava_prompt_t pr;
    CHECK_OK(llava_build_prompt(l, "What color is the circle?", &pr, &e), &e);
    CHECK(pr.n_image == l->n_image && pr.image_start > 0 && pr.image_start + pr.n_image < pr.n);
    int64_t n_slots = 0;
    for (int64_t i = 0; i < pr.n; i++) {
        bool in_span = i >= pr.image_start && i < pr.image_start + pr.n_image;
        CHECK(in_span == (pr.ids[i] == -1));
        n_slots += pr.ids[i] == -1;
    }
    CHECK(n_slots == l->n_image);
    CHECK(pr.ids[0] == tok_bos(l->tok));

    /* llava_ask == the step-wise pieces, on the same image written to a PNG */
    img_t im, im2;
    make_image(&im, 96, 64, 0);
    make_image(&im2, 96, 64, 1);
    CHECK_OK(png_write_rgb(IMG, im.w, im.h, im.rgb, &e), &e);
    llava_gen_params_t g = llava_default_gen();
    g.n_predict = 6;
    llava_answer_t a;
    CHECK_OK(llava_ask(l, IMG, "What color is the circle?", &g, &a, &e), &e);
    const int V = l->lm->cfg.n_vocab;
    CHECK(a.n_vocab == V && a.n_prompt == pr.n && a.image_start == pr.image_start && a.n_image == l->n_image);
    CHECK(a.eos ? a.n < 6 : a.n == 6);
    CHECK(a.text != NULL && valid_utf8(a.text));
    if (a.n > 0) {
        CHECK(a.ids[0] == sample_argmax(a.first_logits, V));
        double mx = -INFINITY, s = 0.0;
        for (int i = 0; i < V; i++) mx = fmax(mx, a.first_logits[i]);
        for (int i = 0; i < V; i++) s += exp(a.first_logits[i] - mx);
        CHECK_NEAR(a.logprobs[0], a.first_logits[a.ids[0]] - mx - log(s), 1e-5);
    }
    for (int64_t i = 0; i < a.n; i++) CHECK(a.logprobs[i] <= 0.0f && a.ids[i] != tok_eos(l->tok));
    CHECK(a.ms_prefill > 0.0 && a.ms_encode > 0.0);

    llava_image_t li, li2;
    CHECK_OK(llava_encode_img(l, &im, &li, &e), &e);
    CHECK(li.n == l->n_image && li.grid == grid);
    CHECK_OK(llava_prefill(l, &pr, &li, NULL, &e), &e);
    CHECK_MSG(memcmp(lm_state_logits(l->st), a.first_logits, sizeof(float) * (size_t)V) == 0,
              "step-wise prefill differs from llava_ask");
    CHECK(lm_state_pos(l->st) == pr.n);
    /* the image matters */
    CHECK_OK(llava_encode_img(l, &im2, &li2, &e), &e);
    CHECK_OK(llava_prefill(l, &pr, &li2, NULL, &e), &e);
    double d = 0.0;
    for (int i = 0; i < V; i++) d = fmax(d, fabs(lm_state_logits(l->st)[i] - a.first_logits[i]));
    CHECK_MSG(d > 0.0, "another image gave identical logits");
    /* an image of the wrong token count is refused */
    llava_image_t short_img = li;
    short_img.n = li.n - 1;
    CHECK(llava_prefill(l, &pr, &short_img, NULL, &e) == ERR_MISMATCH);

    /* hooks run in prefill and in every decoded step */
    hook_set_t hs;
    hook_set_init(&hs);
    pat_seen_t seen = {0};
    CHECK_OK(hook_add(&hs, "blk.0.attn.pattern", on_pattern, &seen, &e), &e);
    lm_run_opts o = {.hooks = &hs};
    llava_gen_params_t gh = g;
    gh.opts = &o;
    llava_answer_t b;
    CHECK_OK(llava_prefill(l, &pr, &li, &o, &e), &e);
    CHECK_OK(llava_generate(l, &gh, &b, &e), &e);
    CHECK(seen.n_prefill == 1 && !seen.bad_shape);
    CHECK(seen.n_decode == (int)(b.n > 0 ? b.n - 1 : 0));
    CHECK(b.n == a.n && (a.n == 0 || memcmp(a.ids, b.ids, sizeof(int32_t) * (size_t)a.n) == 0));
    if (b.n > 1) CHECK(seen.last_pos0 == pr.n + b.n - 2 && seen.last_nk == pr.n + b.n - 1);
    llava_answer_free(&b);

    llava_answer_free(&a);
    llava_image_free(&li);
    llava_image_free(&li2);
    llava_prompt_free(&pr);
    img_free(&im);
    img_free(&im2);
    llava_free(l);

    /* a context that cannot hold the prompt */
    p.n_ctx = 100;
    CHECK_OK(llava_load(&l, &p, &e), &e);
    if (l) {
        CHECK(llava_build_prompt(l, "What color is the circle?", &pr, &e) == ERR_RANGE);
        CHECK_MSG(strstr(e.msg, "image tokens") && strstr(e.msg, "context is 100"), "message: %s", e.msg);
        llava_free(l);
    }
    /* an LM whose width differs from the projector's output */
    p.n_ctx = 0;
    p.lm_path = LM_WIDE;
    CHECK(llava_load(&l, &p, &e) == ERR_MISMATCH && l == NULL);
    CHECK_MSG(strstr(e.msg, LM_WIDE) && strstr(e.msg, MMPROJ) && strstr(e.msg, "128") && strstr(e.msg, "64"),
              "message: %s", e.msg);
    /* missing file */
    p.lm_path = "no_such_lm.gguf";
    CHECK(llava_load(&l, &p, &e) != ERR_OK && l == NULL);
    CHECK(strstr(e.msg, "no_such_lm.gguf") != NULL);
    test_toy_golden();
    test_rmdir(dir);
    return test_result("test_llava");
}
