/* test_vision.c — the CLIP ViT + projector against the PyTorch reference
 * (tests/reference/vision_ref.py, written from the HF equations), plus loading errors
 * and hooks.
 *
 * Fixtures: two random small mmproj files written with our GGUF writer by
 *   test_vision --write-fixtures DIR
 * (tiny_f32.gguf: F32, quick_gelu, all 3 stored blocks run; tiny_f16.gguf: F16
 * matrices, gelu, ffn_up/ffn_down names swapped, clip.vision.feature_layer = [2] of 3
 * stored blocks; tiny_odd_f32.gguf: F32, gelu, an unusual shape, see FX_ODD).
 * Regenerate everything with tests/golden/vision/regen.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/hook.h"
#include "core/matmul.h"
#include "core/npy.h"
#include "core/quant.h"
#include "testutil.h"
#include "vision/image.h"
#include "vision/preprocess.h"
#include "vision/vit.h"

#define GOLDEN LM_SOURCE_DIR "/tests/golden/vision/"

/* ---------------- fixture writer ---------------- */

enum { FX_S = 28, FX_P = 7, FX_D = 32, FX_H = 4, FX_FF = 64, FX_BLK = 3, FX_MMH = 48, FX_OUT = 40 };

typedef struct {
    int type;                /* QT_F32 or QT_F16 for matrices */
    bool use_gelu;
    bool swap_ffn_names;
    int feature_layer;       /* <= 0: key absent */
    const char *projector;   /* clip.projector_type */
    const char *omit;        /* tensor name to leave out (error tests) */
    int pos_rows;            /* 0: correct */
    /* shape; 0: the FX_ defaults */
    int s, p, d, h, ff, blk, mmh, out;
} fx_opts;

typedef struct {
    uint64_t s;
} fx_rng;

static double fx_uniform(fx_rng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return ((r->s >> 11) + 0.5) / 9007199254740992.0;
}

static float fx_normal(fx_rng *r) {
    double u1 = fx_uniform(r), u2 = fx_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct {
    void *bufs[128];
    int n;
} fx_mem;

/* Adds a tensor of n_dims dims (ne fastest first) with values mean + std*N(0,1). */
static int fx_add(gguf_writer_t *w, fx_mem *mem, fx_rng *r, const fx_opts *o, const char *name, int n_dims,
                  const int64_t *ne, float mean, float std_, int type) {
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) n *= ne[i];
    float *f = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = mean + std_ * fx_normal(r);
    if (o->omit && !strcmp(o->omit, name)) {
        free(f);
        return 0;
    }
    size_t nbytes = qt_row_size(type, ne[0]) * (size_t)(n / ne[0]);
    void *data = f;
    if (type != QT_F32) {
        data = malloc(nbytes);
        qt_get(type)->from_float(f, data, n);
        free(f);
    }
    mem->bufs[mem->n++] = data;
    err_t e = {0};
    if (gguf_writer_add_tensor(w, name, type, n_dims, ne, data, nbytes, &e)) {
        fprintf(stderr, "fixture: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static int fx_write(const char *path, const fx_opts *o, uint64_t seed) {
    const int FS = o->s ? o->s : FX_S, FP = o->p ? o->p : FX_P, FD = o->d ? o->d : FX_D, FH = o->h ? o->h : FX_H;
    const int FFF = o->ff ? o->ff : FX_FF, FBLK = o->blk ? o->blk : FX_BLK, FMMH = o->mmh ? o->mmh : FX_MMH;
    const int FOUT = o->out ? o->out : FX_OUT;
    gguf_writer_t *w = gguf_writer_create();
    fx_mem mem = {.n = 0};
    fx_rng r = {seed};
    int bad = 0;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    const float std_[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    gguf_writer_set_str(w, "general.architecture", "clip");
    gguf_writer_set_bool(w, "clip.has_vision_encoder", true);
    gguf_writer_set_bool(w, "clip.has_llava_projector", true);
    gguf_writer_set_str(w, "clip.projector_type", o->projector ? o->projector : "mlp");
    gguf_writer_set_bool(w, "clip.use_gelu", o->use_gelu);
    gguf_writer_set_u32(w, "clip.vision.image_size", FS);
    gguf_writer_set_u32(w, "clip.vision.patch_size", FP);
    gguf_writer_set_u32(w, "clip.vision.embedding_length", FD);
    gguf_writer_set_u32(w, "clip.vision.feed_forward_length", FFF);
    gguf_writer_set_u32(w, "clip.vision.projection_dim", FOUT);
    gguf_writer_set_u32(w, "clip.vision.block_count", FBLK);
    gguf_writer_set_u32(w, "clip.vision.attention.head_count", FH);
    gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
    gguf_writer_set_arr_f32(w, "clip.vision.image_mean", mean, 3);
    gguf_writer_set_arr_f32(w, "clip.vision.image_std", std_, 3);
    if (o->feature_layer > 0) {
        int32_t fl = o->feature_layer;
        gguf_writer_set_arr_i32(w, "clip.vision.feature_layer", &fl, 1);
    }
    int mt = o->type;
    int64_t n_pos = o->pos_rows ? o->pos_rows : (FS / FP) * (FS / FP) + 1;
    int64_t ne_patch[4] = {FP, FP, 3, FD}, ne_d[1] = {FD}, ne_pos[2] = {FD, n_pos};
    int64_t ne_dd[2] = {FD, FD}, ne_up[2] = {FD, FFF}, ne_down[2] = {FFF, FD}, ne_ff[1] = {FFF};
    int64_t ne_mm0[2] = {FD, FMMH}, ne_mm0b[1] = {FMMH}, ne_mm2[2] = {FMMH, FOUT}, ne_mm2b[1] = {FOUT};
    float sd = 1.0f / sqrtf(FD);
    bad |= fx_add(w, &mem, &r, o, "v.patch_embd.weight", 4, ne_patch, 0, 0.08f, mt);
    bad |= fx_add(w, &mem, &r, o, "v.class_embd", 1, ne_d, 0, 0.5f, QT_F32);
    bad |= fx_add(w, &mem, &r, o, "v.position_embd.weight", 2, ne_pos, 0, 0.5f, mt);
    bad |= fx_add(w, &mem, &r, o, "v.pre_ln.weight", 1, ne_d, 1, 0.1f, QT_F32);
    bad |= fx_add(w, &mem, &r, o, "v.pre_ln.bias", 1, ne_d, 0, 0.1f, QT_F32);
    for (int il = 0; il < FBLK; il++) {
        char nm[64];
#define ADD(suffix, nd, ne, mu, sg, ty)                                    \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", il, suffix);                    \
    bad |= fx_add(w, &mem, &r, o, nm, nd, ne, mu, sg, ty);
        ADD("attn_q.weight", 2, ne_dd, 0, 2.0f * sd, mt)
        ADD("attn_q.bias", 1, ne_d, 0, 0.1f, QT_F32)
        ADD("attn_k.weight", 2, ne_dd, 0, 2.0f * sd, mt)
        ADD("attn_k.bias", 1, ne_d, 0, 0.1f, QT_F32)
        ADD("attn_v.weight", 2, ne_dd, 0, sd, mt)
        ADD("attn_v.bias", 1, ne_d, 0, 0.1f, QT_F32)
        ADD("attn_out.weight", 2, ne_dd, 0, sd, mt)
        ADD("attn_out.bias", 1, ne_d, 0, 0.1f, QT_F32)
        ADD("ln1.weight", 1, ne_d, 1, 0.1f, QT_F32)
        ADD("ln1.bias", 1, ne_d, 0, 0.1f, QT_F32)
        ADD("ln2.weight", 1, ne_d, 1, 0.1f, QT_F32)
        ADD("ln2.bias", 1, ne_d, 0, 0.1f, QT_F32)
        const char *up = o->swap_ffn_names ? "ffn_down" : "ffn_up";
        const char *down = o->swap_ffn_names ? "ffn_up" : "ffn_down";
        char s1[32], s2[32], s3[32], s4[32];
        snprintf(s1, sizeof s1, "%s.weight", up);
        snprintf(s2, sizeof s2, "%s.bias", up);
        snprintf(s3, sizeof s3, "%s.weight", down);
        snprintf(s4, sizeof s4, "%s.bias", down);
        ADD(s1, 2, ne_up, 0, 1.5f * sd, mt)
        ADD(s2, 1, ne_ff, 0, 0.1f, QT_F32)
        ADD(s3, 2, ne_down, 0, 1.0f / sqrtf(FFF), mt)
        ADD(s4, 1, ne_d, 0, 0.1f, QT_F32)
#undef ADD
    }
    bad |= fx_add(w, &mem, &r, o, "mm.0.weight", 2, ne_mm0, 0, sd, mt);
    bad |= fx_add(w, &mem, &r, o, "mm.0.bias", 1, ne_mm0b, 0, 0.1f, QT_F32);
    bad |= fx_add(w, &mem, &r, o, "mm.2.weight", 2, ne_mm2, 0, 1.0f / sqrtf(FMMH), mt);
    bad |= fx_add(w, &mem, &r, o, "mm.2.bias", 1, ne_mm2b, 0, 0.1f, QT_F32);
    err_t e = {0};
    if (!bad && gguf_writer_write(w, path, &e)) {
        fprintf(stderr, "fixture: %s\n", e.msg);
        bad = 1;
    }
    gguf_writer_free(w);
    for (int i = 0; i < mem.n; i++) free(mem.bufs[i]);
    return bad;
}

static const fx_opts FX_F32 = {.type = QT_F32, .use_gelu = false};
static const fx_opts FX_F16 = {.type = QT_F16, .use_gelu = true, .swap_ffn_names = true, .feature_layer = 2};
/* An unusual shape: 30 px in 5 px patches (a 6 x 6 grid, 37 tokens), width 36 in 3
 * heads of 12, FFN 52, 4 blocks, projector 36 -> 20 -> 24; every size off the SIMD
 * widths, so the kernels' tails are exercised. */
static const fx_opts FX_ODD = {.type = QT_F32, .use_gelu = true, .s = 30, .p = 5, .d = 36, .h = 3, .ff = 52,
                               .blk = 4, .mmh = 20, .out = 24};

static int write_fixtures(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/tiny_f32.gguf", dir);
    if (fx_write(p, &FX_F32, 0x5eed1234abcdULL)) return 1;
    snprintf(p, sizeof p, "%s/tiny_f16.gguf", dir);
    if (fx_write(p, &FX_F16, 0x0f16f16f16ULL)) return 1;
    snprintf(p, sizeof p, "%s/tiny_odd_f32.gguf", dir);
    if (fx_write(p, &FX_ODD, 0x0dd5a9e0dd5ULL)) return 1;
    printf("wrote %s/tiny_f32.gguf, tiny_f16.gguf and tiny_odd_f32.gguf\n", dir);
    return 0;
}

/* ---------------- comparisons ---------------- */

static int load_npy(const char *name, npy_array_t *a) {
    char p[1024];
    snprintf(p, sizeof p, GOLDEN "%s", name);
    err_t e = {0};
    if (npy_read(p, a, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        test_failures_++;
        return 1;
    }
    return 0;
}

/* Hook that copies every resid_post / pre_ln into a [n_run+1][N][d] buffer. */
typedef struct {
    float *buf, *att;
    int64_t N, d, H;
    int calls, att_calls;
} capture_t;

static int capture_hidden(void *user, const hook_info *info, float *data) {
    capture_t *c = user;
    int layer = 0;
    if (strstr(info->name, ".attn.pattern") && sscanf(info->name, "v.blk.%d.", &layer) == 1) {
        int64_t n = c->H * c->N * c->N;
        memcpy(c->att + (size_t)layer * n, data, (size_t)n * sizeof(float));
        c->att_calls++;
        return 0;
    }
    if (strcmp(info->name, "v.pre_ln") != 0) {
        if (!strstr(info->name, ".resid_post") || sscanf(info->name, "v.blk.%d.", &layer) != 1) return 0;
        layer += 1;
    }
    memcpy(c->buf + (size_t)layer * c->N * c->d, data, (size_t)(c->N * c->d) * sizeof(float));
    c->calls++;
    return 0;
}

/* The golden comparison of one (model, pipeline) case. */
static void check_case(mm_ctx_t *mm, const char *model, const char *prefix, const char *image, pp_pipeline pipe) {
    err_t e = {0};
    char path[1024], name[256];
    snprintf(path, sizeof path, GOLDEN "%s", model);
    vit_t *v = NULL;
    CHECK_OK(vit_load(&v, path, &e), &e);
    if (!v) return;
    const vit_config *c = vit_get_config(v);
    int64_t S = c->image_size, N = c->n_tokens, d = c->d, P = c->n_patches;

    npy_array_t gpix, ghid, gtok, gcls, gfew, gatt;
    snprintf(name, sizeof name, "%s_pixels.npy", prefix);
    if (load_npy(name, &gpix)) goto out0;
    snprintf(name, sizeof name, "%s_hidden.npy", prefix);
    if (load_npy(name, &ghid)) goto out1;
    snprintf(name, sizeof name, "%s_tokens.npy", prefix);
    if (load_npy(name, &gtok)) goto out2;
    snprintf(name, sizeof name, "%s_tokens_clslast.npy", prefix);
    if (load_npy(name, &gcls)) goto out3;
    snprintf(name, sizeof name, "%s_tokens_fewer.npy", prefix);
    if (load_npy(name, &gfew)) goto out4;
    snprintf(name, sizeof name, "%s_att.npy", prefix);
    if (load_npy(name, &gatt)) goto out5;
    CHECK(npy_nelements(&gatt) == (int64_t)c->n_run * c->n_head * N * N);
    CHECK(npy_nelements(&gpix) == 3 * S * S);
    CHECK(npy_nelements(&ghid) == (c->n_run + 1) * N * d);
    CHECK(npy_nelements(&gtok) == P * c->d_out);

    /* 1. preprocessing: Pillow-exact resampling means identical u8 pixels, so the
     * normalised values agree to float rounding; 1/255 per channel would be the spec
     * limit, we hold ourselves to 1e-5. */
    img_t im;
    snprintf(path, sizeof path, GOLDEN "%s", image);
    CHECK_OK(img_load(&im, path, NULL, &e), &e);
    float *pix = malloc((size_t)(3 * S * S) * sizeof(float));
    pp_geom geom;
    CHECK_OK(pp_run(&im, pipe, (int)S, c->patch_size, c->image_mean, c->image_std, pix, &geom, &e), &e);
    double dp = test_max_diff(pix, gpix.data, 3 * S * S);
    CHECK_MSG(dp <= 1e-5, "%s %s: pixels differ from PIL by %.3g", model, prefix, dp);
    img_free(&im);

    /* 2. the tower on the golden pixels, hidden states captured through hooks */
    vit_state_t st;
    CHECK_OK(vit_state_create(&st, v, &e), &e);
    capture_t cap = {.buf = calloc((size_t)((c->n_run + 1) * N * d), sizeof(float)),
                     .att = calloc((size_t)c->n_run * c->n_head * N * N, sizeof(float)), .N = N, .d = d,
                     .H = c->n_head};
    hook_set_t hs;
    hook_set_init(&hs);
    CHECK_OK(hook_add(&hs, "v.pre_ln", capture_hidden, &cap, &e), &e);
    CHECK_OK(hook_add(&hs, "v.blk.*.resid_post", capture_hidden, &cap, &e), &e);
    CHECK_OK(hook_add(&hs, "v.blk.*.attn.pattern", capture_hidden, &cap, &e), &e);
    float *tok = malloc((size_t)(P * c->d_out) * sizeof(float));
    CHECK_OK(vit_forward(v, &st, mm, gpix.data, &hs, tok, &e), &e);
    CHECK(cap.calls == c->n_run + 1 && cap.att_calls == c->n_run);
    /* attention probabilities (what the attention/rollout analyses read): absolute
     * error, they live in [0, 1] */
    double aerr = test_max_diff(cap.att, gatt.data, (int64_t)c->n_run * c->n_head * N * N);
    CHECK_MSG(aerr <= 1e-5, "%s: attention patterns max err %.3g", prefix, aerr);
    const float *gh = ghid.data;
    for (int l = 0; l <= c->n_run; l++) {
        const float *a = cap.buf + (size_t)l * N * d, *b = gh + (size_t)l * N * d;
        double err = test_max_diff(a, b, N * d), scale = test_max_abs(b, N * d);
        CHECK_MSG(err <= 1e-4 * scale, "%s: hidden state %d: max err %.3g > 1e-4 * %.3g", prefix, l, err, scale);
    }
    double terr = test_max_diff(tok, gtok.data, P * c->d_out), tscale = test_max_abs(gtok.data, P * c->d_out);
    CHECK_MSG(terr <= 1e-4 * tscale, "%s: tokens: max err %.3g > 1e-4 * %.3g", prefix, terr, tscale);
    printf("%s (%s, %d/%d blocks): tokens max err %.3g (scale %.3g, rel %.2g), pixels %.2g\n", prefix, model,
           c->n_run, c->n_stored, terr, tscale, terr / tscale, dp);

    /* 3. the two llama.cpp-graph mistakes would be caught: their outputs are far from
     * the golden (>= 1000x the tolerance), so an implementation making either fails 2. */
    double dcls = test_max_diff(gcls.data, gtok.data, P * c->d_out);
    double dfew = test_max_diff(gfew.data, gtok.data, P * c->d_out);
    CHECK_MSG(dcls > 0.1 * tscale, "CLS-last variant too close (%.3g)", dcls);
    CHECK_MSG(dfew > 0.1 * tscale, "one-block-fewer variant too close (%.3g)", dfew);

    /* 4. the full path (our preprocessing) gives the same tokens, and st->tokens holds them */
    CHECK_OK(vit_forward(v, &st, mm, pix, NULL, NULL, &e), &e);
    double terr2 = test_max_diff(st.tokens, gtok.data, P * c->d_out);
    CHECK_MSG(terr2 <= 1e-4 * tscale, "%s: tokens from our pixels: max err %.3g", prefix, terr2);

    free(tok);
    free(cap.buf);
    free(cap.att);
    free(pix);
    vit_state_free(&st);
    npy_free(&gatt);
out5:
    npy_free(&gfew);
out4:
    npy_free(&gcls);
out3:
    npy_free(&gtok);
out2:
    npy_free(&ghid);
out1:
    npy_free(&gpix);
out0:
    vit_free(v);
}

/* The unusual shape's config is read from the file, not assumed. */
static void check_odd_shape(void) {
    err_t e = {0};
    vit_t *v = NULL;
    CHECK_OK(vit_load(&v, GOLDEN "tiny_odd_f32.gguf", &e), &e);
    if (!v) return;
    const vit_config *c = vit_get_config(v);
    CHECK(c->image_size == 30 && c->patch_size == 5 && c->grid == 6 && c->n_patches == 36 && c->n_tokens == 37);
    CHECK(c->d == 36 && c->n_head == 3 && c->head_dim == 12 && c->n_ff == 52);
    CHECK(c->n_stored == 4 && c->n_run == 4 && c->d_proj_hidden == 20 && c->d_out == 24 && c->use_gelu);
    vit_free(v);
}

/* ---------------- hooks ---------------- */

typedef struct {
    int calls, pattern_ok, stop_at;
    double add;
} hook_probe;

static int probe_pattern(void *user, const hook_info *info, float *data) {
    hook_probe *p = user;
    p->calls++;
    /* every attention row is a probability distribution over the N keys */
    int64_t H = info->shape[0], N = info->shape[1];
    int ok = info->n_dims == 3 && info->shape[2] == N;
    for (int64_t r = 0; ok && r < H * N; r++) {
        double s = 0;
        for (int64_t j = 0; j < N; j++) s += data[r * N + j];
        if (fabs(s - 1) > 1e-4) ok = 0;
    }
    p->pattern_ok += ok;
    return 0;
}

static int add_to_output(void *user, const hook_info *info, float *data) {
    hook_probe *p = user;
    int64_t n = info->shape[0] * info->shape[1];
    for (int64_t i = 0; i < n; i++) data[i] += (float)p->add;
    p->calls++;
    return 0;
}

static int stop_hook(void *user, const hook_info *info, float *data) {
    (void)info;
    (void)data;
    hook_probe *p = user;
    return ++p->calls >= p->stop_at;
}

static void check_hooks(mm_ctx_t *mm) {
    err_t e = {0};
    vit_t *v = NULL;
    CHECK_OK(vit_load(&v, GOLDEN "tiny_f32.gguf", &e), &e);
    if (!v) return;
    const vit_config *c = vit_get_config(v);
    vit_state_t st;
    CHECK_OK(vit_state_create(&st, v, &e), &e);
    npy_array_t gpix, gtok;
    if (load_npy("f32_pad_pixels.npy", &gpix)) return;
    if (load_npy("f32_pad_tokens.npy", &gtok)) return;
    int64_t n_out = (int64_t)c->n_patches * c->d_out;

    hook_set_t hs;
    hook_set_init(&hs);
    hook_probe pat = {0}, add = {.add = 0.25};
    CHECK_OK(hook_add(&hs, "v.blk.*.attn.pattern", probe_pattern, &pat, &e), &e);
    CHECK_OK(hook_add(&hs, "mm.out", add_to_output, &add, &e), &e);
    CHECK_OK(vit_forward(v, &st, mm, gpix.data, &hs, NULL, &e), &e);
    CHECK(pat.calls == c->n_run && pat.pattern_ok == c->n_run);
    CHECK(add.calls == 1);
    /* the modification is what the caller sees */
    double dmax = 0;
    for (int64_t i = 0; i < n_out; i++) dmax = fmax(dmax, fabs(st.tokens[i] - ((float *)gtok.data)[i] - 0.25));
    CHECK_MSG(dmax < 1e-3, "mm.out edit not visible (%.3g)", dmax);

    /* an intervention upstream changes the result: shift the residual after block 0 */
    hook_set_init(&hs);
    hook_probe one = {.add = 1.0};
    CHECK_OK(hook_add(&hs, "v.blk.0.resid_post", add_to_output, &one, &e), &e);
    CHECK_OK(vit_forward(v, &st, mm, gpix.data, &hs, NULL, &e), &e);
    CHECK(one.calls == 1);
    CHECK(test_max_diff(st.tokens, gtok.data, n_out) > 1e-2);

    /* every documented hook point fires once per block, in order */
    const char *names[] = {"v.embed", "v.pre_ln", "v.blk.1.ln1", "v.blk.1.attn.q", "v.blk.1.attn.k",
                           "v.blk.1.attn.v", "v.blk.1.attn.pattern", "v.blk.1.attn_out", "v.blk.1.resid_mid",
                           "v.blk.1.ln2", "v.blk.1.mlp.hidden", "v.blk.1.resid_post", "mm.hidden", "mm.out"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hook_set_init(&hs);
        hook_probe cnt = {.add = 0};
        CHECK_OK(hook_add(&hs, names[i], add_to_output, &cnt, &e), &e);
        CHECK_OK(vit_forward(v, &st, mm, gpix.data, &hs, NULL, &e), &e);
        CHECK_MSG(cnt.calls == 1, "hook %s called %d times", names[i], cnt.calls);
    }
    hook_set_init(&hs);
    hook_probe all = {.add = 0};
    CHECK_OK(hook_add(&hs, "*", add_to_output, &all, &e), &e);
    CHECK_OK(vit_forward(v, &st, mm, gpix.data, &hs, NULL, &e), &e);
    CHECK(all.calls == 2 + 10 * c->n_run + 2);

    /* a hook returning non-zero aborts with ERR_CALLBACK */
    hook_set_init(&hs);
    hook_probe stop = {.stop_at = 1};
    CHECK_OK(hook_add(&hs, "v.blk.1.attn.q", stop_hook, &stop, &e), &e);
    CHECK(vit_forward(v, &st, mm, gpix.data, &hs, NULL, &e) == ERR_CALLBACK);
    CHECK(strstr(e.msg, "v.blk.1.attn.q") != NULL);

    npy_free(&gpix);
    npy_free(&gtok);
    vit_state_free(&st);
    vit_free(v);
}

/* ---------------- loading errors ---------------- */

static void check_error(const fx_opts *o, err_code want, const char *needle) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/test_vision_bad_%d.gguf", (int)getpid());
    if (fx_write(path, o, 7)) {
        test_failures_++;
        return;
    }
    err_t e = {0};
    vit_t *v = NULL;
    err_code rc = vit_load(&v, path, &e);
    CHECK_MSG(rc == want, "expected %s, got %s (%s)", err_code_name(want), err_code_name(rc), e.msg);
    CHECK_MSG(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'", e.msg, needle);
    CHECK(strstr(e.msg, path) != NULL);
    vit_free(v);
    remove(path);
}

static void check_errors(void) {
    fx_opts o = FX_F32;
    o.projector = "ldp";
    check_error(&o, ERR_UNSUPPORTED, "ldp");
    o = FX_F32;
    o.omit = "v.blk.1.attn_k.weight";
    check_error(&o, ERR_NOTFOUND, "v.blk.1.attn_k.weight");
    o = FX_F32;
    o.omit = "mm.2.weight";
    check_error(&o, ERR_NOTFOUND, "mm.2.weight");
    o = FX_F32;
    o.pos_rows = 10;
    check_error(&o, ERR_MISMATCH, "position");
    o = FX_F32;
    o.feature_layer = 5;
    check_error(&o, ERR_RANGE, "feature_layer");
    err_t e = {0};
    vit_t *v = NULL;
    CHECK(vit_load(&v, "/nonexistent/mmproj.gguf", &e) != ERR_OK);
}

/* Results do not depend on the thread count (matmul, attention and the split
 * activations are all deterministic per element). */
static void check_threads(mm_ctx_t *mm2) {
    err_t e = {0};
    vit_t *v = NULL;
    mm_ctx_t *mm1 = NULL;
    CHECK_OK(vit_load(&v, GOLDEN "tiny_f16.gguf", &e), &e);
    CHECK_OK(mm_ctx_create(&mm1, 1, &e), &e);
    npy_array_t gpix;
    if (!v || !mm1 || load_npy("f16_crop_pixels.npy", &gpix)) return;
    const vit_config *c = vit_get_config(v);
    vit_state_t a, b;
    CHECK_OK(vit_state_create(&a, v, &e), &e);
    CHECK_OK(vit_state_create(&b, v, &e), &e);
    CHECK_OK(vit_forward(v, &a, mm1, gpix.data, NULL, NULL, &e), &e);
    CHECK_OK(vit_forward(v, &b, mm2, gpix.data, NULL, NULL, &e), &e);
    CHECK(!memcmp(a.tokens, b.tokens, sizeof(float) * (size_t)c->n_patches * c->d_out));
    vit_state_free(&a);
    vit_state_free(&b);
    npy_free(&gpix);
    mm_ctx_free(mm1);
    vit_free(v);
}

/* The shipped toy model (assets/model, from the trainer) against its goldens, pad and
 * crop, when both exist (regen.sh writes the goldens once the model is there). */
static void check_shipped(mm_ctx_t *mm, const char *prefix, pp_pipeline pipe) {
    const char *model = LM_SOURCE_DIR "/assets/model/llava-mech-toy-mmproj.gguf";
    char gtok_name[128], gpix_name[128];
    snprintf(gtok_name, sizeof gtok_name, "%s_tokens.npy", prefix);
    snprintf(gpix_name, sizeof gpix_name, "%s_pixels.npy", prefix);
    char gpath[1024];
    snprintf(gpath, sizeof gpath, GOLDEN "%s", gtok_name);
    FILE *f = fopen(model, "rb"), *g = fopen(gpath, "rb");
    if (f) fclose(f);
    if (g) fclose(g);
    if (!f || !g) {
        printf("shipped model golden %s: skipped (%s)\n", prefix, f ? "run tests/golden/vision/regen.sh" : "no model yet");
        return;
    }
    err_t e = {0};
    vit_t *v = NULL;
    CHECK_OK(vit_load(&v, model, &e), &e);
    npy_array_t gpix, gtok;
    if (!v || load_npy(gpix_name, &gpix)) return;
    if (load_npy(gtok_name, &gtok)) return;
    const vit_config *c = vit_get_config(v);
    vit_state_t st;
    CHECK_OK(vit_state_create(&st, v, &e), &e);
    int64_t n = (int64_t)c->n_patches * c->d_out;
    CHECK(npy_nelements(&gtok) == n && npy_nelements(&gpix) == 3LL * c->image_size * c->image_size);
    img_t im;
    CHECK_OK(img_load(&im, GOLDEN "photo_160x120.png", NULL, &e), &e);
    pp_geom geom;
    CHECK_OK(vit_encode(v, &st, mm, &im, pipe, NULL, &geom, &e), &e);
    CHECK(geom.pipeline == pipe);
    double dp = test_max_diff(st.pixels, gpix.data, 3LL * c->image_size * c->image_size);
    double err = test_max_diff(st.tokens, gtok.data, n), scale = test_max_abs(gtok.data, n);
    CHECK_MSG(dp <= 1e-5, "shipped %s: pixels differ by %.3g", prefix, dp);
    CHECK_MSG(err <= 1e-4 * scale, "shipped %s: tokens max err %.3g > 1e-4 * %.3g", prefix, err, scale);
    printf("shipped model, %s: tokens max err %.3g (scale %.3g, rel %.2g)\n", prefix, err, scale, err / scale);
    img_free(&im);
    vit_state_free(&st);
    npy_free(&gpix);
    npy_free(&gtok);
    vit_free(v);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-fixtures")) return write_fixtures(argv[2]);
    mm_init_blas(argc, argv);
    err_t e = {0};
    mm_ctx_t *mm = NULL;
    CHECK_OK(mm_ctx_create(&mm, 2, &e), &e);
    if (!mm) return test_result("test_vision");
    check_case(mm, "tiny_f32.gguf", "f32_pad", "small_45x31.png", PP_PAD);
    check_case(mm, "tiny_f32.gguf", "f32_crop", "small_45x31.png", PP_CROP);
    check_case(mm, "tiny_f16.gguf", "f16_pad", "portrait_30x41.png", PP_PAD);
    check_case(mm, "tiny_f16.gguf", "f16_crop", "portrait_30x41.png", PP_CROP);
    check_case(mm, "tiny_odd_f32.gguf", "odd_pad", "small_45x31.png", PP_PAD);
    check_case(mm, "tiny_odd_f32.gguf", "odd_crop", "photo_160x120.png", PP_CROP);
    check_odd_shape();
    check_hooks(mm);
    check_threads(mm);
    check_shipped(mm, "shipped_pad", PP_PAD);
    check_shipped(mm, "shipped_crop", PP_CROP);
    check_errors();
    mm_ctx_free(mm);
    return test_result("test_vision");
}
