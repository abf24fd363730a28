/* test_ops_fd.c — every backward of ops.h against central finite differences computed
 * in C, independent of the PyTorch goldens.
 *
 * For each op the scalar L = sum(out * R) (R fixed random, summed in double) is
 * differentiated: the backward gets dout = R and its gradient g must satisfy
 *   sum(g * r) ~= (L(x + h r) - L(x - h r)) / 2h
 * for random directions r and for single coordinates, with h = 1e-2 on f32 inputs of
 * magnitude ~1 (truncation ~h^2, roundoff ~1e-6/h: both far below the tolerance, while
 * a wrong sign or a missing term is off by O(1)). Gradient buffers start non-zero to
 * check that backwards accumulate (+=). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "tests/testutil.h"

#define FD_H 1e-2f
#define FD_RTOL 2e-3
#define FD_ATOL 2e-3

static uint64_t rng_next(uint64_t *s) {
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_uniform(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static void fill(float *x, int64_t n, uint64_t *s, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * rng_uniform(s);
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* g must already be the pure gradient (pre-fill subtracted). x is perturbed in place
 * and restored. */
static void check_grad(const char *what, float *x, const float *g, int64_t n, loss_fn f, void *ctx, uint64_t *s) {
    float *x0 = malloc((size_t)n * sizeof(float));
    float *r = malloc((size_t)n * sizeof(float));
    memcpy(x0, x, (size_t)n * sizeof(float));
    int n_dir = 3, n_coord = n < 4 ? (int)n : 4;
    for (int t = 0; t < n_dir + n_coord; t++) {
        if (t < n_dir) {
            fill(r, n, s, 1.0f);
        } else {
            memset(r, 0, (size_t)n * sizeof(float));
            r[rng_next(s) % (uint64_t)n] = 1.0f;
        }
        double an = dot(g, r, n);
        for (int64_t i = 0; i < n; i++) x[i] = x0[i] + FD_H * r[i];
        double lp = f(ctx);
        for (int64_t i = 0; i < n; i++) x[i] = x0[i] - FD_H * r[i];
        double lm = f(ctx);
        memcpy(x, x0, (size_t)n * sizeof(float));
        double fd = (lp - lm) / (2.0 * FD_H);
        double tol = FD_RTOL * fmax(fabs(an), fabs(fd)) + FD_ATOL;
        CHECK_MSG(fabs(an - fd) <= tol, "%s (%s %d): analytic %.7g vs finite difference %.7g", what,
                  t < n_dir ? "direction" : "coordinate", t, an, fd);
    }
    free(x0);
    free(r);
}

/* Gradient buffer pre-filled with `pre`; after the backward, g = buf - pre. */
static void sub_pre(float *g, const float *pre, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] -= pre[i];
}

/* ---------------- LayerNorm ---------------- */
enum { LN_N = 3, LN_C = 37 }; /* two 16-lane vectors and a tail */
typedef struct {
    float x[LN_N * LN_C], w[LN_C], b[LN_C], out[LN_N * LN_C], R[LN_N * LN_C], mean[LN_N], rstd[LN_N];
} ln_ctx;
static double ln_loss(void *p) {
    ln_ctx *c = p;
    ops_layernorm_fwd(c->out, c->mean, c->rstd, c->x, c->w, c->b, LN_N, LN_C, 1e-5f);
    return dot(c->out, c->R, LN_N * LN_C);
}
static void test_layernorm(uint64_t *s) {
    ln_ctx c;
    fill(c.x, LN_N * LN_C, s, 2.0f);
    for (int i = 0; i < LN_C; i++) c.x[i] += 5.0f; /* a large mean: the variance must not cancel */
    fill(c.w, LN_C, s, 1.0f);
    fill(c.b, LN_C, s, 1.0f);
    fill(c.R, LN_N * LN_C, s, 1.0f);
    ln_loss(&c);
    /* Forward: each row of (out - b)/w has mean 0 and variance 1 - eps/var ~ 1. */
    for (int n = 0; n < LN_N; n++) {
        double m = 0, v = 0;
        for (int i = 0; i < LN_C; i++) m += (c.out[n * LN_C + i] - c.b[i]) / c.w[i];
        m /= LN_C;
        for (int i = 0; i < LN_C; i++) {
            double d = (c.out[n * LN_C + i] - c.b[i]) / c.w[i] - m;
            v += d * d;
        }
        CHECK_NEAR(m, 0.0, 1e-4);
        CHECK_NEAR(v / LN_C, 1.0, 1e-3);
    }
    float pre_x[LN_N * LN_C], pre_w[LN_C], pre_b[LN_C], gx[LN_N * LN_C], gw[LN_C], gb[LN_C];
    fill(pre_x, LN_N * LN_C, s, 1.0f);
    fill(pre_w, LN_C, s, 1.0f);
    fill(pre_b, LN_C, s, 1.0f);
    memcpy(gx, pre_x, sizeof gx);
    memcpy(gw, pre_w, sizeof gw);
    memcpy(gb, pre_b, sizeof gb);
    ops_layernorm_bwd(gx, gw, gb, c.R, c.x, c.w, c.mean, c.rstd, LN_N, LN_C);
    ops_layernorm_bwd(NULL, NULL, NULL, c.R, c.x, c.w, c.mean, c.rstd, LN_N, LN_C);
    sub_pre(gx, pre_x, LN_N * LN_C);
    sub_pre(gw, pre_w, LN_C);
    sub_pre(gb, pre_b, LN_C);
    check_grad("layernorm dx", c.x, gx, LN_N * LN_C, ln_loss, &c, s);
    check_grad("layernorm dw", c.w, gw, LN_C, ln_loss, &c, s);
    check_grad("layernorm db", c.b, gb, LN_C, ln_loss, &c, s);
}

/* ---------------- RMSNorm ---------------- */
typedef struct {
    float x[LN_N * LN_C], w[LN_C], out[LN_N * LN_C], R[LN_N * LN_C], rstd[LN_N];
} rms_ctx;
static double rms_loss(void *p) {
    rms_ctx *c = p;
    ops_rmsnorm_fwd(c->out, c->rstd, c->x, c->w, LN_N, LN_C, 1e-6f);
    return dot(c->out, c->R, LN_N * LN_C);
}
static void test_rmsnorm(uint64_t *s) {
    rms_ctx c;
    fill(c.x, LN_N * LN_C, s, 2.0f);
    fill(c.w, LN_C, s, 1.0f);
    fill(c.R, LN_N * LN_C, s, 1.0f);
    rms_loss(&c);
    for (int n = 0; n < LN_N; n++) {
        double ms = 0;
        for (int i = 0; i < LN_C; i++) {
            double y = c.out[n * LN_C + i] / c.w[i];
            ms += y * y;
        }
        CHECK_NEAR(ms / LN_C, 1.0, 1e-4);
    }
    float pre_x[LN_N * LN_C], pre_w[LN_C], gx[LN_N * LN_C], gw[LN_C];
    fill(pre_x, LN_N * LN_C, s, 1.0f);
    fill(pre_w, LN_C, s, 1.0f);
    memcpy(gx, pre_x, sizeof gx);
    memcpy(gw, pre_w, sizeof gw);
    ops_rmsnorm_bwd(gx, gw, c.R, c.x, c.w, c.rstd, LN_N, LN_C);
    ops_rmsnorm_bwd(NULL, NULL, c.R, c.x, c.w, c.rstd, LN_N, LN_C);
    sub_pre(gx, pre_x, LN_N * LN_C);
    sub_pre(gw, pre_w, LN_C);
    check_grad("rmsnorm dx", c.x, gx, LN_N * LN_C, rms_loss, &c, s);
    check_grad("rmsnorm dw", c.w, gw, LN_C, rms_loss, &c, s);
}

/* Wide rows (vector bodies plus a tail) with a mean far from zero: forwards against
 * the definition in double; rstd/mean outputs included. */
static void test_norm_wide(uint64_t *s) {
    enum { N = 3, C = 133 };
    static float x[N * C], w[C], b[C], y[N * C], mean[N], rstd[N];
    fill(x, N * C, s, 1.0f);
    for (int i = 0; i < N * C; i++) x[i] += 100.0f;
    fill(w, C, s, 1.0f);
    fill(b, C, s, 1.0f);
    ops_layernorm_fwd(y, mean, rstd, x, w, b, N, C, 1e-5f);
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
        double r = 1.0 / sqrt(v / C + 1e-5);
        CHECK_NEAR(mean[n], m, 1e-5 * fabs(m));
        CHECK_NEAR(rstd[n], r, 1e-6 * r);
        for (int c = 0; c < C; c++) CHECK_NEAR(y[n * C + c], (x[n * C + c] - m) * r * w[c] + b[c], 2e-4);
    }
    ops_rmsnorm_fwd(y, rstd, x, w, N, C, 1e-6f);
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[n * C + c] * x[n * C + c];
        double r = 1.0 / sqrt(ss / C + 1e-6);
        CHECK_NEAR(rstd[n], r, 1e-6 * r);
        for (int c = 0; c < C; c++) CHECK_NEAR(y[n * C + c], x[n * C + c] * r * w[c], 1e-5);
    }
}

/* ---------------- Linear ---------------- */
enum { LI_N = 4, LI_IN = 7, LI_OUT = 5 };
typedef struct {
    float x[LI_N * LI_IN], w[LI_OUT * LI_IN], b[LI_OUT], out[LI_N * LI_OUT], R[LI_N * LI_OUT];
} lin_ctx;
static double lin_loss(void *p) {
    lin_ctx *c = p;
    ops_linear_fwd(c->out, c->x, c->w, c->b, LI_N, LI_IN, LI_OUT);
    return dot(c->out, c->R, LI_N * LI_OUT);
}
static void test_linear(uint64_t *s) {
    lin_ctx c;
    fill(c.x, LI_N * LI_IN, s, 1.0f);
    fill(c.w, LI_OUT * LI_IN, s, 1.0f);
    fill(c.b, LI_OUT, s, 1.0f);
    fill(c.R, LI_N * LI_OUT, s, 1.0f);
    lin_loss(&c);
    /* Forward against the definition, with and without bias. */
    float nob[LI_N * LI_OUT];
    ops_linear_fwd(nob, c.x, c.w, NULL, LI_N, LI_IN, LI_OUT);
    for (int n = 0; n < LI_N; n++)
        for (int o = 0; o < LI_OUT; o++) {
            double ref = dot(c.x + n * LI_IN, c.w + o * LI_IN, LI_IN);
            CHECK_NEAR(nob[n * LI_OUT + o], ref, 1e-5);
            CHECK_NEAR(c.out[n * LI_OUT + o], ref + c.b[o], 1e-5);
        }
    float pre_x[LI_N * LI_IN], pre_w[LI_OUT * LI_IN], pre_b[LI_OUT];
    float gx[LI_N * LI_IN], gw[LI_OUT * LI_IN], gb[LI_OUT];
    fill(pre_x, LI_N * LI_IN, s, 1.0f);
    fill(pre_w, LI_OUT * LI_IN, s, 1.0f);
    fill(pre_b, LI_OUT, s, 1.0f);
    memcpy(gx, pre_x, sizeof gx);
    memcpy(gw, pre_w, sizeof gw);
    memcpy(gb, pre_b, sizeof gb);
    ops_linear_bwd(gx, gw, gb, c.R, c.x, c.w, LI_N, LI_IN, LI_OUT);
    ops_linear_bwd(NULL, NULL, NULL, c.R, c.x, c.w, LI_N, LI_IN, LI_OUT);
    sub_pre(gx, pre_x, LI_N * LI_IN);
    sub_pre(gw, pre_w, LI_OUT * LI_IN);
    sub_pre(gb, pre_b, LI_OUT);
    check_grad("linear dx", c.x, gx, LI_N * LI_IN, lin_loss, &c, s);
    check_grad("linear dw", c.w, gw, LI_OUT * LI_IN, lin_loss, &c, s);
    check_grad("linear db", c.b, gb, LI_OUT, lin_loss, &c, s);
}

/* ---------------- Activations ---------------- */
enum { AC_N = 40 };
typedef struct {
    int kind; /* 0 gelu, 1 quick_gelu, 2 swiglu */
    float x[AC_N], up[AC_N], out[AC_N], R[AC_N];
} act_ctx;
static double act_loss(void *p) {
    act_ctx *c = p;
    if (c->kind == 0) ops_gelu_fwd(c->out, c->x, AC_N);
    if (c->kind == 1) ops_quick_gelu_fwd(c->out, c->x, AC_N);
    if (c->kind == 2) ops_swiglu_fwd(c->out, c->x, c->up, AC_N);
    return dot(c->out, c->R, AC_N);
}
static void test_activations(uint64_t *s) {
    static const char *names[3] = {"gelu dx", "quick_gelu dx", "swiglu dgate"};
    for (int kind = 0; kind < 3; kind++) {
        act_ctx c;
        c.kind = kind;
        fill(c.x, AC_N, s, 4.0f);
        c.x[0] = 60.0f; /* large |x|: the sigmoid must not produce inf/inf */
        c.x[1] = -60.0f;
        fill(c.up, AC_N, s, 1.0f);
        fill(c.R, AC_N, s, 1.0f);
        act_loss(&c);
        for (int i = 0; i < AC_N; i++) {
            double x = c.x[i], ref;
            if (kind == 0) ref = 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
            else if (kind == 1) ref = x / (1.0 + exp(-1.702 * x));
            else ref = x / (1.0 + exp(-x)) * c.up[i];
            CHECK_NEAR(c.out[i], ref, 1e-5 * (1.0 + fabs(ref)));
        }
        float pre[AC_N], g[AC_N], pre_up[AC_N], gup[AC_N];
        fill(pre, AC_N, s, 1.0f);
        fill(pre_up, AC_N, s, 1.0f);
        memcpy(g, pre, sizeof g);
        memcpy(gup, pre_up, sizeof gup);
        if (kind == 0) ops_gelu_bwd(g, c.R, c.x, AC_N);
        if (kind == 1) ops_quick_gelu_bwd(g, c.R, c.x, AC_N);
        if (kind == 2) {
            ops_swiglu_bwd(g, gup, c.R, c.x, c.up, AC_N);
            ops_swiglu_bwd(NULL, NULL, c.R, c.x, c.up, AC_N);
        }
        for (int i = 0; i < AC_N; i++) CHECK(isfinite(g[i]) && isfinite(c.out[i]));
        sub_pre(g, pre, AC_N);
        check_grad(names[kind], c.x, g, AC_N, act_loss, &c, s);
        if (kind == 2) {
            sub_pre(gup, pre_up, AC_N);
            check_grad("swiglu dup", c.up, gup, AC_N, act_loss, &c, s);
        }
    }
}

/* ---------------- RoPE ---------------- */
enum { RO_N = 5, RO_H = 2, RO_D = 8, RO_ROT = 6 };
#define RO_POS0 3
#define RO_BASE 10000.0f
typedef struct {
    float x[RO_N * RO_H * RO_D], y[RO_N * RO_H * RO_D], R[RO_N * RO_H * RO_D];
} rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    memcpy(c->y, c->x, sizeof c->y);
    ops_rope_fwd(c->y, RO_N, RO_H, RO_D, RO_ROT, RO_POS0, RO_BASE);
    return dot(c->y, c->R, RO_N * RO_H * RO_D);
}
static void test_rope(uint64_t *s) {
    enum { n = RO_N * RO_H * RO_D };
    rope_ctx c;
    fill(c.x, n, s, 1.0f);
    fill(c.R, n, s, 1.0f);
    rope_loss(&c);
    /* Forward against the definition: adjacent pairs, theta = pos * base^(-2i/n_rot). */
    for (int r = 0; r < RO_N; r++)
        for (int h = 0; h < RO_H; h++)
            for (int d = 0; d < RO_D; d += 2) {
                int o = (r * RO_H + h) * RO_D + d;
                double x0 = c.x[o], x1 = c.x[o + 1], y0 = x0, y1 = x1;
                if (d < RO_ROT) {
                    double th = (RO_POS0 + r) * pow(RO_BASE, -(double)d / RO_ROT);
                    y0 = x0 * cos(th) - x1 * sin(th);
                    y1 = x0 * sin(th) + x1 * cos(th);
                }
                CHECK_NEAR(c.y[o], y0, 1e-5);
                CHECK_NEAR(c.y[o + 1], y1, 1e-5);
            }
    float g[n];
    memcpy(g, c.R, sizeof g);
    ops_rope_bwd(g, RO_N, RO_H, RO_D, RO_ROT, RO_POS0, RO_BASE);
    check_grad("rope dx", c.x, g, n, rope_loss, &c, s);
    /* A rotation is orthogonal: backward(forward(x)) == x. */
    rope_loss(&c);
    ops_rope_bwd(c.y, RO_N, RO_H, RO_D, RO_ROT, RO_POS0, RO_BASE);
    for (int i = 0; i < n; i++) CHECK_NEAR(c.y[i], c.x[i], 1e-6);
}

/* Long sequences at large positions (the angle recurrence must not drift): every
 * element against the definition evaluated in double. */
static void test_rope_long(uint64_t *s) {
    enum { N = 700, H = 2, D = 16, ROT = 16 };
    const int64_t pos0 = 30000;
    static float x[N * H * D], y[N * H * D];
    fill(x, N * H * D, s, 1.0f);
    memcpy(y, x, sizeof y);
    ops_rope_fwd(y, N, H, D, ROT, pos0, 10000.0f);
    double worst = 0;
    for (int r = 0; r < N; r++)
        for (int h = 0; h < H; h++)
            for (int d = 0; d < ROT; d += 2) {
                int o = (r * H + h) * D + d;
                double th = (double)(pos0 + r) * pow(10000.0, -(double)d / ROT);
                double y0 = x[o] * cos(th) - x[o + 1] * sin(th), y1 = x[o] * sin(th) + x[o + 1] * cos(th);
                worst = fmax(worst, fmax(fabs(y[o] - y0), fabs(y[o + 1] - y1)));
            }
    CHECK_MSG(worst <= 2e-6, "rope at positions %lld..%lld: max error %.3g", (long long)pos0, (long long)pos0 + N - 1,
              worst);
}

/* ---------------- Attention ---------------- */
enum { AT_NQ = 5, AT_NK = 7, AT_H = 4, AT_KVH = 2, AT_D = 8 };
#define AT_POS0 2
typedef struct {
    bool causal, use_bias;
    float q[AT_NQ * AT_H * AT_D], k[AT_NK * AT_KVH * AT_D], v[AT_NK * AT_KVH * AT_D];
    float bias[AT_NQ * AT_NK], out[AT_NQ * AT_H * AT_D], att[AT_H * AT_NQ * AT_NK], R[AT_NQ * AT_H * AT_D];
} att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    ops_attention_fwd(c->out, c->att, c->q, c->k, c->v, AT_NQ, AT_NK, AT_H, AT_KVH, AT_D, AT_POS0, c->causal,
                      c->use_bias ? c->bias : NULL, NULL);
    return dot(c->out, c->R, AT_NQ * AT_H * AT_D);
}

/* Reference forward in double, straight from the definition. */
static void att_reference(const att_ctx *c, double *out, double *att) {
    int grp = AT_H / AT_KVH;
    for (int h = 0; h < AT_H; h++)
        for (int i = 0; i < AT_NQ; i++) {
            double sc[AT_NK], mx = -INFINITY, sum = 0;
            for (int j = 0; j < AT_NK; j++) {
                double d = 0;
                for (int e = 0; e < AT_D; e++)
                    d += (double)c->q[(i * AT_H + h) * AT_D + e] * c->k[(j * AT_KVH + h / grp) * AT_D + e];
                sc[j] = d / sqrt((double)AT_D) + (c->use_bias ? c->bias[i * AT_NK + j] : 0.0);
                if (c->causal && j > AT_POS0 + i) sc[j] = -INFINITY;
                if (sc[j] > mx) mx = sc[j];
            }
            for (int j = 0; j < AT_NK; j++) {
                sc[j] = mx == -INFINITY ? 0.0 : exp(sc[j] - mx);
                sum += sc[j];
            }
            for (int e = 0; e < AT_D; e++) out[(i * AT_H + h) * AT_D + e] = 0;
            for (int j = 0; j < AT_NK; j++) {
                double pj = sum > 0 ? sc[j] / sum : 0.0;
                att[(h * AT_NQ + i) * AT_NK + j] = pj;
                for (int e = 0; e < AT_D; e++)
                    out[(i * AT_H + h) * AT_D + e] += pj * c->v[(j * AT_KVH + h / grp) * AT_D + e];
            }
        }
}

static void test_attention(uint64_t *s) {
    enum { nq = AT_NQ * AT_H * AT_D, nkv = AT_NK * AT_KVH * AT_D };
    for (int variant = 0; variant < 3; variant++) {
        att_ctx c;
        c.causal = variant != 1;
        c.use_bias = variant != 2;
        fill(c.q, nq, s, 1.5f);
        fill(c.k, nkv, s, 1.5f);
        fill(c.v, nkv, s, 1.0f);
        fill(c.bias, AT_NQ * AT_NK, s, 0.5f);
        fill(c.R, nq, s, 1.0f);
        c.bias[1 * AT_NK + 0] = -INFINITY;
        c.bias[3 * AT_NK + 4] = -INFINITY;
        /* Row 0 sees keys 0..2 when causal; knock them all out -> fully masked row. */
        for (int j = 0; j < AT_NK; j++)
            if (j <= AT_POS0 || !c.causal) c.bias[0 * AT_NK + j] = -INFINITY;
        memset(c.att, 0x7f, sizeof c.att); /* att must be written everywhere */
        att_loss(&c);
        static double ro[AT_NQ * AT_H * AT_D], ra[AT_H * AT_NQ * AT_NK];
        att_reference(&c, ro, ra);
        for (int i = 0; i < nq; i++) CHECK_NEAR(c.out[i], ro[i], 1e-5);
        for (int i = 0; i < AT_H * AT_NQ * AT_NK; i++) CHECK_NEAR(c.att[i], ra[i], 1e-6);
        if (c.use_bias)
            for (int h = 0; h < AT_H; h++)
                for (int e = 0; e < AT_D; e++) CHECK(c.out[(0 * AT_H + h) * AT_D + e] == 0.0f);

        float pq[nq], pk[nkv], pv[nkv], gq[nq], gk[nkv], gv[nkv];
        fill(pq, nq, s, 1.0f);
        fill(pk, nkv, s, 1.0f);
        fill(pv, nkv, s, 1.0f);
        memcpy(gq, pq, sizeof gq);
        memcpy(gk, pk, sizeof gk);
        memcpy(gv, pv, sizeof gv);
        float *scratch = malloc((size_t)ops_attention_bwd_scratch(AT_NQ, AT_NK, AT_H) * sizeof(float));
        ops_attention_bwd(gq, gk, gv, c.R, c.att, c.q, c.k, c.v, AT_NQ, AT_NK, AT_H, AT_KVH, AT_D, scratch, NULL);
        ops_attention_bwd(NULL, NULL, NULL, c.R, c.att, c.q, c.k, c.v, AT_NQ, AT_NK, AT_H, AT_KVH, AT_D, scratch,
                          NULL);
        free(scratch);
        sub_pre(gq, pq, nq);
        sub_pre(gk, pk, nkv);
        sub_pre(gv, pv, nkv);
        check_grad("attention dq", c.q, gq, nq, att_loss, &c, s);
        check_grad("attention dk", c.k, gk, nkv, att_loss, &c, s);
        check_grad("attention dv", c.v, gv, nkv, att_loss, &c, s);
    }
}

/* Decoding runs one query row at a time (a matrix-vector path inside the op): each
 * row must match the same row of the batched call (causal, offset, bias, GQA). */
static void test_attention_decode(uint64_t *s) {
    enum { nq = AT_NQ * AT_H * AT_D, nkv = AT_NK * AT_KVH * AT_D, C = AT_H * AT_D };
    att_ctx c;
    c.causal = true;
    c.use_bias = true;
    fill(c.q, nq, s, 1.5f);
    fill(c.k, nkv, s, 1.5f);
    fill(c.v, nkv, s, 1.0f);
    fill(c.bias, AT_NQ * AT_NK, s, 0.5f);
    c.bias[2 * AT_NK + 1] = -INFINITY;
    att_loss(&c);
    for (int i = 0; i < AT_NQ; i++) {
        float out1[C], att1[AT_H * AT_NK];
        ops_attention_fwd(out1, att1, c.q + i * C, c.k, c.v, 1, AT_NK, AT_H, AT_KVH, AT_D, AT_POS0 + i, true,
                          c.bias + i * AT_NK, NULL);
        for (int e = 0; e < C; e++) CHECK_NEAR(out1[e], c.out[i * C + e], 1e-6);
        for (int h = 0; h < AT_H; h++)
            for (int j = 0; j < AT_NK; j++) CHECK_NEAR(att1[h * AT_NK + j], c.att[(h * AT_NQ + i) * AT_NK + j], 1e-6);
    }
}

/* ---------------- Embedding ---------------- */
enum { EM_V = 6, EM_C = 5, EM_N = 7 };
typedef struct {
    float table[EM_V * EM_C], out[EM_N * EM_C], R[EM_N * EM_C];
    int32_t ids[EM_N];
} emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    ops_embed_fwd(c->out, c->table, c->ids, EM_N, EM_C);
    return dot(c->out, c->R, EM_N * EM_C);
}
static void test_embed(uint64_t *s) {
    emb_ctx c;
    static const int32_t ids[EM_N] = {3, 0, 3, 5, 1, 3, 0};
    memcpy(c.ids, ids, sizeof ids);
    fill(c.table, EM_V * EM_C, s, 1.0f);
    fill(c.R, EM_N * EM_C, s, 1.0f);
    emb_loss(&c);
    for (int n = 0; n < EM_N; n++)
        for (int i = 0; i < EM_C; i++) CHECK(c.out[n * EM_C + i] == c.table[ids[n] * EM_C + i]);
    float pre[EM_V * EM_C], g[EM_V * EM_C];
    fill(pre, EM_V * EM_C, s, 1.0f);
    memcpy(g, pre, sizeof g);
    ops_embed_bwd(g, c.R, c.ids, EM_N, EM_C);
    sub_pre(g, pre, EM_V * EM_C);
    for (int i = 0; i < EM_C; i++) CHECK(g[2 * EM_C + i] == 0.0f && g[4 * EM_C + i] == 0.0f); /* unused ids */
    check_grad("embed dtable", c.table, g, EM_V * EM_C, emb_loss, &c, s);
}

/* ---------------- Patchify ---------------- */
enum { PA_H = 7, PA_W = 11, PA_PS = 3, PA_P = (PA_H / PA_PS) * (PA_W / PA_PS), PA_K = 3 * PA_PS * PA_PS };
typedef struct {
    float img[3 * PA_H * PA_W], out[PA_P * PA_K], R[PA_P * PA_K];
} pat_ctx;
static double pat_loss(void *p) {
    pat_ctx *c = p;
    ops_patchify_fwd(c->out, c->img, PA_H, PA_W, PA_PS);
    return dot(c->out, c->R, PA_P * PA_K);
}
static void test_patchify(uint64_t *s) {
    pat_ctx c;
    fill(c.img, 3 * PA_H * PA_W, s, 1.0f);
    fill(c.R, PA_P * PA_K, s, 1.0f);
    pat_loss(&c);
    int gw = PA_W / PA_PS;
    for (int p = 0; p < PA_P; p++)
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < PA_PS; y++)
                for (int x = 0; x < PA_PS; x++) {
                    int iy = (p / gw) * PA_PS + y, ix = (p % gw) * PA_PS + x;
                    CHECK(c.out[p * PA_K + (ch * PA_PS + y) * PA_PS + x] == c.img[(ch * PA_H + iy) * PA_W + ix]);
                }
    float pre[3 * PA_H * PA_W], g[3 * PA_H * PA_W];
    fill(pre, 3 * PA_H * PA_W, s, 1.0f);
    memcpy(g, pre, sizeof g);
    ops_patchify_bwd(g, c.R, PA_H, PA_W, PA_PS);
    sub_pre(g, pre, 3 * PA_H * PA_W);
    /* Pixels outside the whole-patch area (row 6, columns 9..10) get no gradient. */
    for (int ch = 0; ch < 3; ch++) {
        for (int x = 0; x < PA_W; x++) CHECK(g[(ch * PA_H + PA_H - 1) * PA_W + x] == 0.0f);
        for (int y = 0; y < PA_H; y++) CHECK(g[(ch * PA_H + y) * PA_W + PA_W - 1] == 0.0f);
    }
    check_grad("patchify dimg", c.img, g, 3 * PA_H * PA_W, pat_loss, &c, s);
}

/* ---------------- Cross-entropy and log-softmax ---------------- */
enum { XE_N = 5, XE_V = 13 };
#define XE_SCALE 0.7f
typedef struct {
    float logits[XE_N * XE_V], probs[XE_N * XE_V], loss[XE_N];
    int32_t target[XE_N];
} xe_ctx;
static double xe_loss(void *p) {
    xe_ctx *c = p;
    return XE_SCALE * ops_xent_fwd(c->loss, c->probs, c->logits, c->target, XE_N, XE_V);
}
static void test_xent(uint64_t *s) {
    xe_ctx c;
    static const int32_t tg[XE_N] = {4, -1, 0, 12, -100};
    memcpy(c.target, tg, sizeof tg);
    fill(c.logits, XE_N * XE_V, s, 3.0f);
    c.logits[2 * XE_V + 5] = 90.0f; /* large logit: exp would overflow without max subtraction */
    double total = xe_loss(&c) / XE_SCALE;
    float ls[XE_N * XE_V];
    ops_log_softmax(ls, c.logits, XE_N, XE_V);
    double sum = 0;
    for (int n = 0; n < XE_N; n++) {
        double psum = 0;
        for (int v = 0; v < XE_V; v++) {
            psum += c.probs[n * XE_V + v];
            if (ls[n * XE_V + v] > -80.0f) /* below that probs are f32 denormals */
                CHECK_NEAR(log(c.probs[n * XE_V + v]), ls[n * XE_V + v], 1e-4 * (1 + fabs(ls[n * XE_V + v])));
        }
        CHECK_NEAR(psum, 1.0, 1e-5);
        if (tg[n] < 0) {
            CHECK(c.loss[n] == 0.0f);
        } else {
            CHECK_NEAR(c.loss[n], -ls[n * XE_V + tg[n]], 1e-4);
            sum += c.loss[n];
        }
    }
    CHECK_NEAR(total, sum, 1e-4);
    CHECK(isfinite(total));
    CHECK(ops_xent_fwd(NULL, NULL, c.logits, c.target, XE_N, XE_V) == total); /* sum only */
    /* log_softmax in place gives the same result. */
    float inpl[XE_N * XE_V];
    memcpy(inpl, c.logits, sizeof inpl);
    ops_log_softmax(inpl, inpl, XE_N, XE_V);
    CHECK(memcmp(inpl, ls, sizeof ls) == 0);

    float pre[XE_N * XE_V], g[XE_N * XE_V];
    fill(pre, XE_N * XE_V, s, 1.0f);
    memcpy(g, pre, sizeof g);
    ops_xent_bwd(g, c.probs, c.target, XE_N, XE_V, XE_SCALE);
    sub_pre(g, pre, XE_N * XE_V);
    for (int v = 0; v < XE_V; v++) CHECK(g[1 * XE_V + v] == 0.0f && g[4 * XE_V + v] == 0.0f);
    check_grad("xent dlogits", c.logits, g, XE_N * XE_V, xe_loss, &c, s);
}

int main(void) {
    uint64_t s = 20240501;
    test_layernorm(&s);
    test_rmsnorm(&s);
    test_norm_wide(&s);
    test_linear(&s);
    test_activations(&s);
    test_rope(&s);
    test_rope_long(&s);
    test_attention(&s);
    test_attention_decode(&s);
    test_embed(&s);
    test_patchify(&s);
    test_xent(&s);
    return test_result("test_ops_fd");
}
