/* test_vision_hooks.c — every vision hook point can be captured AND modified.
 *
 * For each documented point (v.embed, v.pre_ln, v.blk.L.{ln1, attn.q, attn.k, attn.v,
 * attn.pattern, attn_out, resid_mid, ln2, mlp.hidden, resid_post}, mm.hidden, mm.out)
 * a run registers an editing hook on that point, then a capturing hook on "*" (hooks
 * run in registration order, so the capture sees the edited values). Every captured
 * activation is then recomputed in double precision, with plain loops written from the
 * HF CLIP / LLaVA equations, from the captured activations it depends on and the
 * file's F32 weights. So the test checks, for every point and every block:
 *   - what each name holds (ln1 is the normalised input, mlp.hidden is after the
 *     activation, attn_out is before the residual add, ...),
 *   - that an edit at any point is what the rest of the forward consumes,
 *   - and that it changes the image tokens.
 * Fixtures: tests/golden/vision/tiny_f32.gguf (3 blocks, 4 heads of 8, quick_gelu) and
 * tiny_odd_f32.gguf (4 blocks, 3 heads of 12, gelu, 6 x 6 grid of 5 px patches). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/hook.h"
#include "core/matmul.h"
#include "core/npy.h"
#include "core/quant.h"
#include "testutil.h"
#include "vision/vit.h"

#define GOLDEN LM_SOURCE_DIR "/tests/golden/vision/"

/* ---------------- capture store ---------------- */

enum { MAX_CAP = 64 };
typedef struct {
    char name[MAX_CAP][HOOK_NAME_MAX];
    float *data[MAX_CAP];
    int64_t n[MAX_CAP], shape[MAX_CAP][3];
    int count;
} store_t;

static int64_t info_n(const hook_info *info) {
    int64_t n = 1;
    for (int i = 0; i < info->n_dims; i++) n *= info->shape[i];
    return n;
}

static int capture_all(void *user, const hook_info *info, float *data) {
    store_t *s = user;
    if (s->count >= MAX_CAP) return 1;
    int i = s->count++;
    snprintf(s->name[i], HOOK_NAME_MAX, "%s", info->name);
    s->n[i] = info_n(info);
    for (int k = 0; k < 3; k++) s->shape[i][k] = k < info->n_dims ? info->shape[k] : 1;
    s->data[i] = malloc((size_t)s->n[i] * sizeof(float));
    memcpy(s->data[i], data, (size_t)s->n[i] * sizeof(float));
    return 0;
}

static const float *get(const store_t *s, const char *name, int64_t n) {
    for (int i = 0; i < s->count; i++)
        if (!strcmp(s->name[i], name)) {
            if (s->n[i] != n) {
                fprintf(stderr, "%s: %lld values, expected %lld\n", name, (long long)s->n[i], (long long)n);
                test_failures_++;
                return NULL;
            }
            return s->data[i];
        }
    fprintf(stderr, "hook point %s was never called\n", name);
    test_failures_++;
    return NULL;
}

static void store_free(store_t *s) {
    for (int i = 0; i < s->count; i++) free(s->data[i]);
    s->count = 0;
}

/* ---------------- edits ---------------- */

typedef struct {
    int calls;
} edit_ctx;

/* Attention rows become uniform over the keys for head 0 and one-hot on the query's
 * own position for the others (still distributions, far from the computed ones);
 * everything else gets a smooth offset of about the activations' size. */
static int edit_hook(void *user, const hook_info *info, float *data) {
    edit_ctx *e = user;
    e->calls++;
    if (strstr(info->name, ".attn.pattern")) {
        int64_t H = info->shape[0], N = info->shape[1];
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = 0; j < N; j++)
                    data[(h * N + i) * N + j] = h == 0 ? 1.0f / (float)N : (float)(i == j);
        return 0;
    }
    int64_t n = info_n(info);
    for (int64_t i = 0; i < n; i++) data[i] += 0.5f * sinf(0.37f * (float)i + 1.0f);
    return 0;
}

/* ---------------- double-precision reference, plain loops ---------------- */

typedef struct {
    const gguf_t *g;
    const vit_config *c;
} model_t;

static const float *w(const model_t *m, const char *fmt, int layer) {
    char name[96];
    snprintf(name, sizeof name, fmt, layer);
    const tensor_t *t = gguf_find_tensor(m->g, name);
    if (!t || t->type != QT_F32) {
        fprintf(stderr, "tensor %s missing or not F32\n", name);
        test_failures_++;
        return NULL;
    }
    return t->data;
}

/* y[r][o] = sum_i x[r][i] W[o][i] + b[o]   (W row-major [n_out][n_in]) */
static void linear(double *y, const float *x, int64_t rows, int64_t n_in, int64_t n_out, const float *W,
                   const float *b) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double s = b ? b[o] : 0;
            for (int64_t i = 0; i < n_in; i++) s += (double)x[r * n_in + i] * W[o * n_in + i];
            y[r * n_out + o] = s;
        }
}

static void layernorm(double *y, const float *x, int64_t rows, int64_t d, const float *g, const float *b, double eps) {
    for (int64_t r = 0; r < rows; r++) {
        double mu = 0, var = 0;
        for (int64_t i = 0; i < d; i++) mu += x[r * d + i];
        mu /= (double)d;
        for (int64_t i = 0; i < d; i++) var += (x[r * d + i] - mu) * (x[r * d + i] - mu);
        var /= (double)d;
        for (int64_t i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mu) / sqrt(var + eps) * g[i] + b[i];
    }
}

/* |got - want| <= 1e-4 * max|want| (and both finite). The edited point itself is
 * skipped: it holds the edit, which the points after it must have consumed. */
static void expect(const char *what, const char *point, const float *got, const double *want, int64_t n) {
    if (!got || !strcmp(what, point)) return;
    double err = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= err)) err = d; /* NaN propagates */
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    }
    CHECK_MSG(err <= 1e-4 * scale + 1e-7, "edit at %s: captured %s differs from its recomputation by %.3g (scale %.3g)",
              point, what, err, scale);
}

/* Recomputes every captured point from its captured inputs. */
static void verify_chain(const model_t *m, const store_t *s, const float *pixels, const char *point) {
    const vit_config *c = m->c;
    const int64_t N = c->n_tokens, P = c->n_patches, d = c->d, ff = c->n_ff, H = c->n_head, hd = c->head_dim;
    const int64_t k = 3LL * c->patch_size * c->patch_size, S = c->image_size, ps = c->patch_size;
    double *ref = malloc(sizeof(double) * (size_t)(H * N * N + N * ff + P * c->d_proj_hidden + N * d));
    float *patch = malloc(sizeof(float) * (size_t)(P * k));
    char nm[HOOK_NAME_MAX];

    /* v.embed: [class; conv(pixels)] + pos, CLS at position 0 */
    for (int64_t p = 0; p < P; p++) {
        int64_t gy = p / c->grid, gx = p % c->grid;
        for (int64_t ch = 0; ch < 3; ch++)
            for (int64_t y = 0; y < ps; y++)
                for (int64_t x = 0; x < ps; x++)
                    patch[p * k + (ch * ps + y) * ps + x] = pixels[(ch * S + gy * ps + y) * S + gx * ps + x];
    }
    const float *pw = w(m, "v.patch_embd.weight", 0), *cls = w(m, "v.class_embd", 0);
    const float *pos = w(m, "v.position_embd.weight", 0);
    if (!pw || !cls || !pos) goto out;
    linear(ref + d, patch, P, k, d, pw, NULL);
    for (int64_t i = 0; i < d; i++) ref[i] = cls[i];
    for (int64_t i = 0; i < N * d; i++) ref[i] += pos[i];
    expect("v.embed", point, get(s, "v.embed", N * d), ref, N * d);

    const float *emb = get(s, "v.embed", N * d);
    if (!emb) goto out;
    layernorm(ref, emb, N, d, w(m, "v.pre_ln.weight", 0), w(m, "v.pre_ln.bias", 0), c->eps);
    expect("v.pre_ln", point, get(s, "v.pre_ln", N * d), ref, N * d);

    const float *x = get(s, "v.pre_ln", N * d);
    for (int l = 0; l < c->n_run && x; l++) {
#define CAP(var, suffix, n)                                      \
    snprintf(nm, sizeof nm, "v.blk.%d." suffix, l);              \
    const float *var = get(s, nm, n);                            \
    if (!var) goto out;
        layernorm(ref, x, N, d, w(m, "v.blk.%d.ln1.weight", l), w(m, "v.blk.%d.ln1.bias", l), c->eps);
        snprintf(nm, sizeof nm, "v.blk.%d.ln1", l);
        expect(nm, point, get(s, nm, N * d), ref, N * d);
        CAP(h1, "ln1", N * d)
        const char *qkv[3] = {"q", "k", "v"};
        for (int t = 0; t < 3; t++) {
            char wn[48], bn[48];
            snprintf(wn, sizeof wn, "v.blk.%%d.attn_%s.weight", qkv[t]);
            snprintf(bn, sizeof bn, "v.blk.%%d.attn_%s.bias", qkv[t]);
            linear(ref, h1, N, d, d, w(m, wn, l), w(m, bn, l));
            snprintf(nm, sizeof nm, "v.blk.%d.attn.%s", l, qkv[t]);
            expect(nm, point, get(s, nm, N * d), ref, N * d);
        }
        CAP(q, "attn.q", N * d)
        CAP(kk, "attn.k", N * d)
        CAP(v, "attn.v", N * d)
        /* softmax(q_h k_h^T / sqrt(hd)), bidirectional */
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < N; i++) {
                double *row = ref + (h * N + i) * N, mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < N; j++) {
                    double sc = 0;
                    for (int64_t e = 0; e < hd; e++) sc += (double)q[i * d + h * hd + e] * kk[j * d + h * hd + e];
                    row[j] = sc / sqrt((double)hd);
                    if (row[j] > mx) mx = row[j];
                }
                for (int64_t j = 0; j < N; j++) sum += row[j] = exp(row[j] - mx);
                for (int64_t j = 0; j < N; j++) row[j] /= sum;
            }
        snprintf(nm, sizeof nm, "v.blk.%d.attn.pattern", l);
        expect(nm, point, get(s, nm, H * N * N), ref, H * N * N);
        CAP(att, "attn.pattern", H * N * N)
        /* heads concatenated = pattern v, then W_o */
        float *a = malloc(sizeof(float) * (size_t)(N * d));
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < N; i++)
                for (int64_t e = 0; e < hd; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < N; j++) acc += (double)att[(h * N + i) * N + j] * v[j * d + h * hd + e];
                    a[i * d + h * hd + e] = (float)acc;
                }
        linear(ref, a, N, d, d, w(m, "v.blk.%d.attn_out.weight", l), w(m, "v.blk.%d.attn_out.bias", l));
        free(a);
        snprintf(nm, sizeof nm, "v.blk.%d.attn_out", l);
        expect(nm, point, get(s, nm, N * d), ref, N * d);
        CAP(o, "attn_out", N * d)
        for (int64_t i = 0; i < N * d; i++) ref[i] = (double)x[i] + o[i];
        snprintf(nm, sizeof nm, "v.blk.%d.resid_mid", l);
        expect(nm, point, get(s, nm, N * d), ref, N * d);
        CAP(mid, "resid_mid", N * d)
        layernorm(ref, mid, N, d, w(m, "v.blk.%d.ln2.weight", l), w(m, "v.blk.%d.ln2.bias", l), c->eps);
        snprintf(nm, sizeof nm, "v.blk.%d.ln2", l);
        expect(nm, point, get(s, nm, N * d), ref, N * d);
        CAP(h2, "ln2", N * d)
        /* fc1 is the [ff][d] matrix; older files swap the names, so go by shape */
        char up[48];
        snprintf(up, sizeof up, "v.blk.%d.ffn_up.weight", l);
        const tensor_t *tu = gguf_find_tensor(m->g, up);
        bool swapped = tu && tu->ne[0] == ff;
        const char *fc1 = swapped ? "v.blk.%d.ffn_down" : "v.blk.%d.ffn_up";
        const char *fc2 = swapped ? "v.blk.%d.ffn_up" : "v.blk.%d.ffn_down";
        char f1w[48], f1b[48], f2w[48], f2b[48];
        snprintf(f1w, sizeof f1w, "%s.weight", fc1);
        snprintf(f1b, sizeof f1b, "%s.bias", fc1);
        snprintf(f2w, sizeof f2w, "%s.weight", fc2);
        snprintf(f2b, sizeof f2b, "%s.bias", fc2);
        linear(ref, h2, N, d, ff, w(m, f1w, l), w(m, f1b, l));
        for (int64_t i = 0; i < N * ff; i++) {
            double z = ref[i];
            ref[i] = c->use_gelu ? 0.5 * z * (1 + erf(z / sqrt(2.0))) : z / (1 + exp(-1.702 * z));
        }
        snprintf(nm, sizeof nm, "v.blk.%d.mlp.hidden", l);
        expect(nm, point, get(s, nm, N * ff), ref, N * ff);
        CAP(hid, "mlp.hidden", N * ff)
        linear(ref, hid, N, ff, d, w(m, f2w, l), w(m, f2b, l));
        for (int64_t i = 0; i < N * d; i++) ref[i] += mid[i];
        snprintf(nm, sizeof nm, "v.blk.%d.resid_post", l);
        expect(nm, point, get(s, nm, N * d), ref, N * d);
        CAP(post, "resid_post", N * d)
        x = post;
#undef CAP
    }
    if (!x) goto out;
    /* projector on the patch rows (CLS dropped): Linear, GELU(erf), Linear */
    const int64_t dh = c->d_proj_hidden;
    linear(ref, x + d, P, d, dh, w(m, "mm.0.weight", 0), w(m, "mm.0.bias", 0));
    for (int64_t i = 0; i < P * dh; i++) ref[i] = 0.5 * ref[i] * (1 + erf(ref[i] / sqrt(2.0)));
    expect("mm.hidden", point, get(s, "mm.hidden", P * dh), ref, P * dh);
    const float *mh = get(s, "mm.hidden", P * dh);
    if (!mh) goto out;
    linear(ref, mh, P, dh, c->d_out, w(m, "mm.2.weight", 0), w(m, "mm.2.bias", 0));
    expect("mm.out", point, get(s, "mm.out", P * c->d_out), ref, P * c->d_out);
out:
    free(ref);
    free(patch);
}

static void check_model(mm_ctx_t *mm, const char *model, const char *pixels) {
    err_t e = {0};
    vit_t *v = NULL;
    CHECK_OK(vit_load(&v, model, &e), &e);
    npy_array_t pix;
    CHECK_OK(npy_read(pixels, &pix, &e), &e);
    if (!v || test_failures_) return;
    const vit_config *c = vit_get_config(v);
    model_t m = {vit_gguf(v), c};
    vit_state_t st;
    CHECK_OK(vit_state_create(&st, v, &e), &e);
    const int64_t n_out = (int64_t)c->n_patches * c->d_out;
    float *base = malloc(sizeof(float) * (size_t)n_out);
    CHECK_OK(vit_forward(v, &st, mm, pix.data, NULL, base, &e), &e);
    const double scale = test_max_abs(base, n_out);

    /* every point of every block, plus the tower's and projector's own */
    char points[64][HOOK_NAME_MAX];
    int n_points = 0;
    snprintf(points[n_points++], HOOK_NAME_MAX, "%s", ""); /* no edit: capture only */
    snprintf(points[n_points++], HOOK_NAME_MAX, "%s", "v.embed");
    snprintf(points[n_points++], HOOK_NAME_MAX, "%s", "v.pre_ln");
    static const char *const blk[] = {"ln1", "attn.q", "attn.k", "attn.v", "attn.pattern", "attn_out",
                                      "resid_mid", "ln2", "mlp.hidden", "resid_post"};
    for (int l = 0; l < c->n_run; l++)
        for (int i = 0; i < 10; i++) snprintf(points[n_points++], HOOK_NAME_MAX, "v.blk.%d.%s", l, blk[i]);
    snprintf(points[n_points++], HOOK_NAME_MAX, "%s", "mm.hidden");
    snprintf(points[n_points++], HOOK_NAME_MAX, "%s", "mm.out");
    CHECK(n_points == 3 + 10 * c->n_run + 2);

    float *tok = malloc(sizeof(float) * (size_t)n_out);
    for (int p = 0; p < n_points; p++) {
        const char *pt = points[p];
        hook_set_t hs;
        hook_set_init(&hs);
        edit_ctx ed = {0};
        store_t *s = calloc(1, sizeof *s);
        if (pt[0]) CHECK_OK(hook_add(&hs, pt, edit_hook, &ed, &e), &e);
        CHECK_OK(hook_add(&hs, "*", capture_all, s, &e), &e);
        CHECK_OK(vit_forward(v, &st, mm, pix.data, &hs, tok, &e), &e);
        CHECK_MSG(s->count == n_points - 1, "%s: %d hook calls, expected %d", pt, s->count, n_points - 1);
        CHECK(ed.calls == (pt[0] ? 1 : 0));
        /* capture order is the forward's order */
        for (int i = 1; i < n_points && i - 1 < s->count; i++)
            CHECK_MSG(!strcmp(s->name[i - 1], points[i]), "call %d is %s, expected %s", i - 1, s->name[i - 1],
                      points[i]);
        verify_chain(&m, s, pix.data, pt[0] ? pt : "(none)");
        /* the result is the captured mm.out, and any edit moves it */
        const float *mo = get(s, "mm.out", n_out);
        if (mo) CHECK(!memcmp(mo, tok, sizeof(float) * (size_t)n_out));
        double dchg = test_max_diff(tok, base, n_out);
        if (pt[0])
            CHECK_MSG(dchg > 1e-3 * scale, "edit at %s changed the image tokens by only %.3g (scale %.3g)", pt, dchg,
                      scale);
        else
            CHECK_MSG(dchg == 0, "capturing changed the tokens by %.3g", dchg);
        store_free(s);
        free(s);
    }

    free(tok);
    free(base);
    npy_free(&pix);
    printf("%s: %d hook points captured, edited and recomputed (%d blocks, %d heads of %d, %s)\n", model, n_points - 1,
           c->n_run, c->n_head, c->head_dim, c->use_gelu ? "gelu" : "quick_gelu");
    vit_state_free(&st);
    vit_free(v);
}

int main(int argc, char **argv) {
    mm_init_blas(argc, argv);
    err_t e = {0};
    mm_ctx_t *mm = NULL;
    CHECK_OK(mm_ctx_create(&mm, 2, &e), &e);
    if (!mm) return test_result("test_vision_hooks");
    check_model(mm, GOLDEN "tiny_f32.gguf", GOLDEN "f32_pad_pixels.npy");
    check_model(mm, GOLDEN "tiny_odd_f32.gguf", GOLDEN "odd_crop_pixels.npy");
    mm_ctx_free(mm);
    return test_result("test_vision_hooks");
}
