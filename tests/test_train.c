/* test_train.c — the toy model and trainer on a micro config:
 *  - whole-model backward vs central finite differences, for the largest-gradient
 *    coordinate and a random coordinate of EVERY parameter tensor;
 *  - a few steps on a handful of examples lower the loss;
 *  - checkpoint + resume reproduces an uninterrupted run bit for bit;
 *  - the written GGUFs reopen with the expected keys, shapes and values. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/quant.h"
#include "language/llava.h"
#include "toy/train_impl.h"
#include "testutil.h"
#include "toy/model.h"
#include "toy/train.h"

static uint64_t rng_s = 42;
static double urand(void) {
    rng_s = rng_s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_s >> 11) * 0x1.0p-53;
}
static double nrand(void) {
    double u1 = urand() + 1e-12, u2 = urand();
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Larger-than-init random parameters so every path carries a measurable gradient. */
static void randomise(tm_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_param *p = &m->table[i];
        float *x = m->params + p->offset;
        bool bias = strstr(p->name, ".bias") != NULL;
        bool norm = p->n_dims == 1 && !bias && strcmp(p->name, "v.class_embd") != 0;
        double sd = p->n_dims >= 2 ? 1.0 / sqrt((double)p->ne[0]) : 0.3;
        for (size_t j = 0; j < p->n; j++) x[j] = (float)((norm ? 1.0 : 0.0) + sd * nrand());
    }
}

/* The objective tm_backward differentiates: answer loss plus the weighted lens loss. */
static double loss_of(const tm_model *m, tm_state *st, const tm_example *ex) {
    double l = 0;
    err_t e = {0};
    CHECK_OK(tm_forward(m, st, ex, &l, &e), &e);
    return l + (ex->aux_targets ? ex->aux_weight * tm_state_aux_loss(st) : 0.0);
}

/* aids: also the trainer's attention bias (every third image key hidden from every
 * query) and the layer-0 lens targets, so their backward is checked too;
 * lens_only: the lens loss alone (the LM is not run). */
static void test_finite_differences(int image_size, bool aids, bool lens_only) {
    tm_config c;
    tm_config_micro(&c, 37);
    /* Also at the real 224 px / 196-patch geometry: sequences longer than the ops'
     * 64-row attention blocks. */
    c.image_size = image_size;
    if (image_size > 32) c.patch_size = 16, c.max_seq = tm_n_patches(&c) + 16;
    tm_model m;
    err_t e = {0};
    CHECK_OK(tm_create(&m, &c, &e), &e);
    randomise(&m);
    tm_state *st = NULL;
    CHECK_OK(tm_state_create(&st, &c, &e), &e);
    const int P = tm_n_patches(&c), n = P + 12, image_start = 4, nt = 3;
    float *img = malloc(sizeof(float) * 3 * c.image_size * c.image_size);
    for (int i = 0; i < 3 * c.image_size * c.image_size; i++) img[i] = (float)nrand();
    int32_t ids[512], targets[8];
    for (int i = 0; i < n; i++) ids[i] = (i >= image_start && i < image_start + P) ? -1 : (int32_t)(urand() * 37);
    for (int j = 0; j < nt; j++) targets[j] = (int32_t)(urand() * 37);
    tm_example ex = {.img = img, .ids = ids, .n = n, .image_start = image_start, .targets = targets,
                     .t0 = n - nt, .n_targets = nt};
    float *bias = calloc((size_t)n * n, sizeof(float));
    int32_t *aux = malloc(sizeof(int32_t) * TM_N_AUX * P);
    if (aids) {
        for (int q = 0; q < n; q++)
            for (int k = image_start; k < image_start + P; k += 3) bias[q * n + k] = -INFINITY;
        for (int i = 0; i < TM_N_AUX * P; i++) aux[i] = urand() < 0.3 ? -1 : (int32_t)(urand() * 37);
        ex.lm_bias = bias, ex.aux_targets = aux, ex.aux_weight = 0.7f, ex.lens_only = lens_only;
    }
    float *grad = calloc(m.n_params, sizeof(float));
    tm_weights g;
    tm_views(&m, grad, &g);
    loss_of(&m, st, &ex);
    tm_backward(&m, st, &ex, &g, 1.0f);
    int bad = 0, checked = 0;
    double worst = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const tm_param *p = &m.table[i];
        size_t jmax = 0;
        for (size_t j = 0; j < p->n; j++)
            if (fabsf(grad[p->offset + j]) > fabsf(grad[p->offset + jmax])) jmax = j;
        size_t coords[2] = {jmax, (size_t)(urand() * (double)p->n)};
        for (int k = 0; k < 2; k++) {
            size_t o = p->offset + coords[k];
            float keep = m.params[o];
            const float h = 2e-3f;
            m.params[o] = keep + h;
            double lp = loss_of(&m, st, &ex);
            m.params[o] = keep - h;
            double lm = loss_of(&m, st, &ex);
            m.params[o] = keep;
            double fd = (lp - lm) / (2.0 * h), an = grad[o];
            double err = fabs(fd - an), tol = 3e-2 * fabs(an) + 3e-3;
            checked++;
            if (fabs(an) > 1e-2 && err / fabs(an) > worst) worst = err / fabs(an);
            if (!(err <= tol)) {
                bad++;
                fprintf(stderr, "fd mismatch %s[%zu]: analytic %.6g, finite difference %.6g\n", p->name, coords[k],
                        an, fd);
            }
        }
        /* The max coordinate must carry signal, else the check above is vacuous. The key
         * bias is the exception: it adds q.b_k to every score of a row, which softmax
         * ignores, so its true gradient is zero. */
        bool reached = !lens_only || p->file == TM_FILE_MMPROJ || !strcmp(p->name, "output.weight") ||
                       !strcmp(p->name, "output_norm.weight");
        if (lens_only && !reached) CHECK_MSG(fabsf(grad[p->offset + jmax]) == 0.0f, "%s moved in lens-only", p->name);
        else if (!strstr(p->name, "attn_k.bias"))
            CHECK_MSG(fabsf(grad[p->offset + jmax]) > 1e-4f, "%s has no gradient", p->name);
    }
    printf("finite differences (%d px%s): %d coordinates over %d tensors, worst relative error %.3g (|g| > 0.01)\n",
           image_size, lens_only ? ", lens only" : aids ? ", bias + lens" : "", checked, m.n_tensors, worst);
    CHECK(bad == 0);
    if (aids) CHECK(tm_state_aux_loss(st) > 0.1); /* the lens term was part of what was checked */
    free(bias);
    free(aux);
    free(grad);
    free(img);
    tm_state_free(st);
    tm_free(&m);
}

static tok_t *load_vocab(void) {
    gguf_t *g = NULL;
    tok_t *t = NULL;
    err_t e = {0};
    const char *path = LM_SOURCE_DIR "/toy/vocab/toy-vocab.gguf";
    CHECK_OK(gguf_open(&g, path, &e), &e);
    if (!g) return NULL;
    CHECK_OK(tok_load(&t, g, &e), &e);
    gguf_close(g);
    return t;
}

static void micro_options(tr_options *o, int threads) {
    tr_options_default(o);
    o->steps = 40, o->batch = 4, o->warmup = 4, o->lr = 1e-2f, o->lr_min = 1e-3f;
    o->data_n = 8, o->threads = threads, o->seed = 7;
}

static void test_loss_decreases(const tok_t *tok) {
    tm_config c;
    tm_config_micro(&c, tok_n_vocab(tok));
    tr_options o;
    micro_options(&o, 2);
    tr_trainer *t = NULL;
    err_t e = {0};
    CHECK_OK(tr_create(&t, &c, &o, tok, &e), &e);
    if (!t) return;
    double first = 0, last = 0;
    for (int s = 0; s < o.steps; s++) {
        tr_step_stats st;
        CHECK_OK(tr_step(t, &st, &e), &e);
        if (s < 2) first += st.loss / 2;  /* two batches cover the 8 examples */
        if (s >= o.steps - 2) last += st.loss / 2;
    }
    printf("loss: first %.4f, last %.4f\n", first, last);
    CHECK(first > 1.0);
    CHECK_MSG(last < 0.5 * first, "loss went from %.4f to %.4f", first, last);
    tr_free(t);
}

static void test_resume_bit_exact(const tok_t *tok) {
    tm_config c;
    tm_config_micro(&c, tok_n_vocab(tok));
    tr_options o;
    micro_options(&o, 2);
    o.steps = 6, o.data_n = 0;
    err_t e = {0};
    tr_trainer *a = NULL, *b = NULL, *b2 = NULL;
    CHECK_OK(tr_create(&a, &c, &o, tok, &e), &e);
    CHECK_OK(tr_create(&b, &c, &o, tok, &e), &e);
    CHECK_OK(tr_create(&b2, &c, &o, tok, &e), &e);
    if (!a || !b || !b2) return;
    char path[] = "test_train_ckpt.bin";
    for (int s = 0; s < 6; s++) CHECK_OK(tr_step(a, NULL, &e), &e);
    for (int s = 0; s < 3; s++) CHECK_OK(tr_step(b, NULL, &e), &e);
    CHECK_OK(tr_checkpoint_save(b, path, &e), &e);
    CHECK_OK(tr_checkpoint_load(b2, path, &e), &e);
    CHECK(tr_steps_done(b2) == 3);
    for (int s = 0; s < 3; s++) CHECK_OK(tr_step(b2, NULL, &e), &e);
    const tm_model *ma = tr_model(a), *mb = tr_model(b2);
    CHECK(memcmp(ma->params, mb->params, ma->n_params * sizeof(float)) == 0);
    /* And the run really moved: b (stopped at 3) differs from a. */
    CHECK(memcmp(ma->params, tr_model(b)->params, ma->n_params * sizeof(float)) != 0);
    /* A corrupted checkpoint is refused. */
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, 300, SEEK_SET);
        int ch = fgetc(f);
        fseek(f, 300, SEEK_SET);
        fputc(ch ^ 0x55, f);
        fclose(f);
    }
    CHECK(tr_checkpoint_load(b2, path, &e) == ERR_FORMAT);
    remove(path);
    tr_free(a);
    tr_free(b);
    tr_free(b2);
}

static void test_gguf_export(const tok_t *tok) {
    tm_config c;
    tm_config_micro(&c, tok_n_vocab(tok));
    tm_model m;
    err_t e = {0};
    CHECK_OK(tm_create(&m, &c, &e), &e);
    tm_init_params(&m, 3);
    const int types[2] = {QT_F32, QT_F16};
    for (int ti = 0; ti < 2; ti++) {
        const char *lm = "test_train_lm.gguf", *mp = "test_train_mmproj.gguf";
        CHECK_OK(tr_write_gguf(&m, tok, types[ti], lm, mp, &e), &e);
        gguf_t *g = NULL, *v = NULL;
        CHECK_OK(gguf_open(&g, lm, &e), &e);
        CHECK_OK(gguf_open(&v, mp, &e), &e);
        if (!g || !v) break;
        char s[64];
        CHECK_OK(gguf_get_str(g, "general.architecture", s, sizeof s, &e), &e);
        CHECK(strcmp(s, "llama") == 0);
        CHECK_OK(gguf_get_str(v, "general.architecture", s, sizeof s, &e), &e);
        CHECK(strcmp(s, "clip") == 0);
        CHECK_OK(gguf_get_str(v, "clip.projector_type", s, sizeof s, &e), &e);
        CHECK(strcmp(s, "mlp") == 0);
        uint32_t u = 0;
        CHECK_OK(gguf_get_u32(g, "llama.attention.head_count_kv", &u, &e), &e);
        CHECK(u == (uint32_t)c.n_kv_head);
        CHECK_OK(gguf_get_u32(v, "clip.vision.block_count", &u, &e), &e);
        CHECK(u == (uint32_t)c.v_blocks);
        CHECK(gguf_find_key(v, "clip.vision.feature_layer") < 0);
        float mean[3] = {0};
        CHECK_OK(gguf_get_arr_f32(v, "clip.vision.image_mean", mean, 3, &e), &e);
        CHECK_NEAR(mean[0], tr_image_mean[0], 0.0);
        tok_t *t2 = NULL;
        CHECK_OK(tok_load(&t2, g, &e), &e);
        CHECK(t2 && tok_n_vocab(t2) == tok_n_vocab(tok));
        tok_free(t2);
        int64_t n_lm = 0, n_mm = 0;
        for (int i = 0; i < m.n_tensors; i++) {
            const tm_param *p = &m.table[i];
            const tensor_t *tt = gguf_find_tensor(p->file == TM_FILE_LM ? g : v, p->name);
            CHECK_MSG(tt != NULL, "%s missing", p->name);
            if (!tt) continue;
            if (p->file == TM_FILE_LM)
                n_lm++;
            else
                n_mm++;
            CHECK(tt->n_dims == p->n_dims);
            for (int d = 0; d < p->n_dims; d++) CHECK(tt->ne[d] == p->ne[d]);
            int want = (types[ti] == QT_F16 && p->n_dims >= 2) ? QT_F16 : QT_F32;
            CHECK_MSG(tt->type == want, "%s type %d", p->name, tt->type);
            const float *x = m.params + p->offset;
            size_t j = p->n / 2;
            float got = tt->type == QT_F32 ? ((const float *)tt->data)[j]
                                           : qt_f16_to_f32(((const uint16_t *)tt->data)[j]);
            CHECK_NEAR(got, x[j], tt->type == QT_F32 ? 0.0 : 1e-3 * fabs(x[j]) + 1e-6);
        }
        CHECK(n_lm == gguf_n_tensors(g) && n_mm == gguf_n_tensors(v));
        const tensor_t *pe = gguf_find_tensor(v, "v.patch_embd.weight");
        CHECK(pe && pe->n_dims == 4 && pe->ne[0] == c.patch_size && pe->ne[2] == 3 && pe->ne[3] == c.v_width);
        gguf_close(g);
        gguf_close(v);
        remove(lm);
        remove(mp);
    }
    tm_free(&m);
}

/* The trainer's forward and the inference path (vision/vit + language/llava) on the
 * exported files must agree: same CLS order, block count, projector, RoPE convention,
 * GQA mapping and normalisation. Random (not init) weights so a mismatch shows. */
static void test_matches_inference(const tok_t *tok) {
    tm_config c;
    tm_config_micro(&c, tok_n_vocab(tok));
    tm_model m;
    err_t e = {0};
    CHECK_OK(tm_create(&m, &c, &e), &e);
    randomise(&m);
    const char *lm = "test_train_x_lm.gguf", *mp = "test_train_x_mmproj.gguf";
    CHECK_OK(tr_write_gguf(&m, tok, QT_F32, lm, mp, &e), &e);
    tr_worker wk;
    memset(&wk, 0, sizeof wk);
    CHECK_OK(tm_state_create(&wk.st, &c, &e), &e);
    wk.img = malloc(sizeof(float) * 3 * c.image_size * c.image_size);
    wk.ids = malloc(sizeof(int32_t) * c.max_seq);
    llava_params_t lp = llava_default_params();
    lp.lm_path = lm, lp.mmproj_path = mp, lp.n_threads = 1;
    llava_t *l = NULL;
    CHECK_OK(llava_load(&l, &lp, &e), &e);
    double worst = 0;
    for (uint64_t idx = 0; l && idx < 5; idx++) {
        CHECK_OK(tr_prepare_example(&wk, &c, tok, TR_SEED_VAL, idx, &e), &e);
        CHECK_OK(tm_forward(&m, wk.st, &wk.ex, NULL, &e), &e);
        const float *mine = tm_state_logits(wk.st);
        img_t im = {.w = wk.scene.w, .h = wk.scene.h, .rgb = wk.scene.rgb};
        llava_image_t li = {0};
        llava_prompt_t pr = {0};
        CHECK_OK(llava_encode_img(l, &im, &li, &e), &e);
        CHECK_OK(llava_build_prompt(l, wk.qa.question, &pr, &e), &e);
        CHECK(pr.n == wk.ex.t0 + 1 && pr.image_start == wk.ex.image_start);
        CHECK_OK(llava_prefill(l, &pr, &li, NULL, &e), &e);
        const float *ref = lm_state_logits(l->st);
        double scale = 0, diff = 0;
        for (int v = 0; v < c.n_vocab; v++) {
            scale = fmax(scale, fabs(ref[v]));
            diff = fmax(diff, fabs(ref[v] - mine[v]));
        }
        worst = fmax(worst, diff / scale);
        CHECK_MSG(diff <= 1e-3 * scale, "example %llu: logits differ by %.3g (scale %.3g)", (unsigned long long)idx,
                  diff, scale);
        llava_image_free(&li);
        llava_prompt_free(&pr);
    }
    printf("trainer vs inference logits: worst relative difference %.3g\n", worst);
    llava_free(l);
    tm_state_free(wk.st);
    free(wk.img);
    free(wk.ids);
    sc_scene_free(&wk.scene);
    remove(lm);
    remove(mp);
    tm_free(&m);
}

int main(void) {
    openblas_set_num_threads(1);
    test_finite_differences(32, false, false);
    test_finite_differences(32, true, false);
    test_finite_differences(32, true, true);
    test_finite_differences(224, false, false);
    tok_t *tok = load_vocab();
    if (tok) {
        test_loss_decreases(tok);
        test_resume_bit_exact(tok);
        test_gguf_export(tok);
        test_matches_inference(tok);
        tok_free(tok);
    }
    return test_result("test_train");
}
