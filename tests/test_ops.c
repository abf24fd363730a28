/* test_ops.c — every op of ops.h (forward and backward) against PyTorch float64
 * autograd goldens written by tests/reference/ops_grad.py into tests/golden/ops/.
 *
 * For each output or gradient tensor: max|c - ref| <= OPS_RTOL * max|ref| + OPS_ATOL.
 * The C code runs in f32 from the same f32 inputs torch used, so the only differences
 * are f32 rounding: measured <= 4.4e-7 * max|ref| on every tensor (AVX-512, AVX2 and
 * generic paths). 2e-5 leaves a 45x margin for other BLAS builds and summation orders
 * and still catches any wrong term (a sign or factor error shows up as O(max|ref|)). Gradient
 * buffers are pre-filled with 1.0 and the 1.0 subtracted afterwards, so a backward that
 * overwrites instead of accumulating fails too. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/npy.h"
#include "core/ops.h"
#include "core/threads.h"
#include "tests/testutil.h"

#define OPS_RTOL 2e-5
#define OPS_ATOL 1e-6
#define PRE 1.0f

static const char *golden_dir(void) { return LM_SOURCE_DIR "/tests/golden/ops"; }

/* Loads NAME.npy; on failure reports and returns NULL (the caller's checks then skip). */
static void *load(const char *name, int64_t *n_out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", golden_dir(), name);
    npy_array_t a;
    err_t err = {0};
    if (npy_read(path, &a, &err) != ERR_OK) {
        fprintf(stderr, "cannot load golden: %s\n", err.msg);
        test_failures_++;
        return NULL;
    }
    if (n_out) *n_out = npy_nelements(&a);
    return a.data; /* the npy_array_t owns nothing else; freed with free() */
}

static float *loadf(const char *name, int64_t *n) { return load(name, n); }

static void compare(const char *what, const float *got, const float *ref, int64_t n) {
    if (!got || !ref) return;
    double mref = 0.0, merr = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > mref) mref = fabs(ref[i]);
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= merr)) { /* also catches NaN */
            merr = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    CHECK_MSG(merr <= OPS_RTOL * mref + OPS_ATOL,
              "%s: max |c - torch| = %.3g at %lld (c %.7g, torch %.7g), max|torch| %.3g", what, merr, (long long)at,
              got[at], ref[at], mref);
}

static float *prefilled(int64_t n) {
    float *g = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) g[i] = PRE;
    return g;
}

static void unpre(float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] -= PRE;
}

static void test_layernorm(void) {
    int64_t nx, C;
    float *x = loadf("layernorm.x", &nx), *w = loadf("layernorm.w", &C), *b = loadf("layernorm.b", NULL);
    float *dout = loadf("layernorm.dout", NULL), *rout = loadf("layernorm.out", NULL);
    float *rdx = loadf("layernorm.dx", NULL), *rdw = loadf("layernorm.dw", NULL), *rdb = loadf("layernorm.db", NULL);
    if (!x || !w || !b || !dout || !rout || !rdx || !rdw || !rdb) return;
    int64_t N = nx / C;
    float *out = malloc((size_t)nx * sizeof(float)), *mean = malloc((size_t)N * sizeof(float));
    float *rstd = malloc((size_t)N * sizeof(float));
    ops_layernorm_fwd(out, mean, rstd, x, w, b, N, C, 1e-5f);
    compare("layernorm out", out, rout, nx);
    float *dx = prefilled(nx), *dw = prefilled(C), *db = prefilled(C);
    ops_layernorm_bwd(dx, dw, db, dout, x, w, mean, rstd, N, C);
    unpre(dx, nx), unpre(dw, C), unpre(db, C);
    compare("layernorm dx", dx, rdx, nx);
    compare("layernorm dw", dw, rdw, C);
    compare("layernorm db", db, rdb, C);
    free(x), free(w), free(b), free(dout), free(rout), free(rdx), free(rdw), free(rdb);
    free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
}

static void test_rmsnorm(void) {
    int64_t nx, C;
    float *x = loadf("rmsnorm.x", &nx), *w = loadf("rmsnorm.w", &C), *dout = loadf("rmsnorm.dout", NULL);
    float *rout = loadf("rmsnorm.out", NULL), *rdx = loadf("rmsnorm.dx", NULL), *rdw = loadf("rmsnorm.dw", NULL);
    if (!x || !w || !dout || !rout || !rdx || !rdw) return;
    int64_t N = nx / C;
    float *out = malloc((size_t)nx * sizeof(float)), *rstd = malloc((size_t)N * sizeof(float));
    ops_rmsnorm_fwd(out, rstd, x, w, N, C, 1e-6f);
    compare("rmsnorm out", out, rout, nx);
    float *dx = prefilled(nx), *dw = prefilled(C);
    ops_rmsnorm_bwd(dx, dw, dout, x, w, rstd, N, C);
    unpre(dx, nx), unpre(dw, C);
    compare("rmsnorm dx", dx, rdx, nx);
    compare("rmsnorm dw", dw, rdw, C);
    free(x), free(w), free(dout), free(rout), free(rdx), free(rdw), free(out), free(rstd), free(dx), free(dw);
}

static void test_linear(void) {
    int64_t nx, nw, OUT;
    float *x = loadf("linear.x", &nx), *w = loadf("linear.w", &nw), *b = loadf("linear.b", &OUT);
    float *dout = loadf("linear.dout", NULL), *rout = loadf("linear.out", NULL), *rdx = loadf("linear.dx", NULL);
    float *rdw = loadf("linear.dw", NULL), *rdb = loadf("linear.db", NULL);
    if (!x || !w || !b || !dout || !rout || !rdx || !rdw || !rdb) return;
    int64_t IN = nw / OUT, N = nx / IN;
    float *out = malloc((size_t)(N * OUT) * sizeof(float));
    ops_linear_fwd(out, x, w, b, N, IN, OUT);
    compare("linear out", out, rout, N * OUT);
    float *dx = prefilled(nx), *dw = prefilled(nw), *db = prefilled(OUT);
    ops_linear_bwd(dx, dw, db, dout, x, w, N, IN, OUT);
    unpre(dx, nx), unpre(dw, nw), unpre(db, OUT);
    compare("linear dx", dx, rdx, nx);
    compare("linear dw", dw, rdw, nw);
    compare("linear db", db, rdb, OUT);
    free(x), free(w), free(b), free(dout), free(rout), free(rdx), free(rdw), free(rdb), free(out), free(dx), free(dw),
        free(db);
}

static void test_unary(const char *name, void (*fwd)(float *, const float *, int64_t),
                       void (*bwd)(float *, const float *, const float *, int64_t)) {
    char k[64];
    int64_t n;
    snprintf(k, sizeof k, "%s.x", name);
    float *x = loadf(k, &n);
    snprintf(k, sizeof k, "%s.dout", name);
    float *dout = loadf(k, NULL);
    snprintf(k, sizeof k, "%s.out", name);
    float *rout = loadf(k, NULL);
    snprintf(k, sizeof k, "%s.dx", name);
    float *rdx = loadf(k, NULL);
    if (!x || !dout || !rout || !rdx) return;
    float *out = malloc((size_t)n * sizeof(float)), *dx = prefilled(n);
    fwd(out, x, n);
    bwd(dx, dout, x, n);
    unpre(dx, n);
    snprintf(k, sizeof k, "%s out", name);
    compare(k, out, rout, n);
    snprintf(k, sizeof k, "%s dx", name);
    compare(k, dx, rdx, n);
    free(x), free(dout), free(rout), free(rdx), free(out), free(dx);
}

static void test_swiglu(void) {
    int64_t n;
    float *gate = loadf("swiglu.gate", &n), *up = loadf("swiglu.up", NULL), *dout = loadf("swiglu.dout", NULL);
    float *rout = loadf("swiglu.out", NULL), *rdg = loadf("swiglu.dgate", NULL), *rdu = loadf("swiglu.dup", NULL);
    if (!gate || !up || !dout || !rout || !rdg || !rdu) return;
    float *out = malloc((size_t)n * sizeof(float)), *dg = prefilled(n), *du = prefilled(n);
    ops_swiglu_fwd(out, gate, up, n);
    ops_swiglu_bwd(dg, du, dout, gate, up, n);
    unpre(dg, n), unpre(du, n);
    compare("swiglu out", out, rout, n);
    compare("swiglu dgate", dg, rdg, n);
    compare("swiglu dup", du, rdu, n);
    free(gate), free(up), free(dout), free(rout), free(rdg), free(rdu), free(out), free(dg), free(du);
}

static void test_rope(void) {
    int64_t n;
    int32_t *cfg = load("rope.cfg", NULL);
    float *base = loadf("rope.base", NULL), *x = loadf("rope.x", &n), *dout = loadf("rope.dout", NULL);
    float *rout = loadf("rope.out", NULL), *rdx = loadf("rope.dx", NULL);
    if (!cfg || !base || !x || !dout || !rout || !rdx) return;
    int64_t N = cfg[0], pos0 = cfg[4];
    int H = cfg[1], D = cfg[2], R = cfg[3];
    ops_rope_fwd(x, N, H, D, R, pos0, base[0]);
    compare("rope out", x, rout, n);
    ops_rope_bwd(dout, N, H, D, R, pos0, base[0]); /* in place: dout becomes dx */
    compare("rope dx", dout, rdx, n);
    free(cfg), free(base), free(x), free(dout), free(rout), free(rdx);
}

static void test_attention(const char *name, pool_t *pool) {
    char k[64];
#define LD(var, key, np)                            \
    snprintf(k, sizeof k, "%s.%s", name, key);     \
    var = load(k, np)
    int32_t *cfg;
    float *q, *kk, *v, *dout, *rout, *ratt, *rdq, *rdk, *rdv, *bias = NULL;
    LD(cfg, "cfg", NULL);
    LD(q, "q", NULL);
    LD(kk, "k", NULL);
    LD(v, "v", NULL);
    LD(dout, "dout", NULL);
    LD(rout, "out", NULL);
    LD(ratt, "att", NULL);
    LD(rdq, "dq", NULL);
    LD(rdk, "dk", NULL);
    LD(rdv, "dv", NULL);
    if (!cfg || !q || !kk || !v || !dout || !rout || !ratt || !rdq || !rdk || !rdv) return;
    if (cfg[7]) {
        LD(bias, "bias", NULL);
    }
#undef LD
    int64_t Nq = cfg[0], Nk = cfg[1], pos0 = cfg[5];
    int H = cfg[2], KVH = cfg[3], hd = cfg[4];
    bool causal = cfg[6] != 0;
    int64_t nq = Nq * H * hd, nkv = Nk * KVH * hd, natt = (int64_t)H * Nq * Nk;
    float *out = malloc((size_t)nq * sizeof(float)), *att = malloc((size_t)natt * sizeof(float));
    memset(att, 0x7f, (size_t)natt * sizeof(float)); /* att must be written everywhere */
    ops_attention_fwd(out, att, q, kk, v, Nq, Nk, H, KVH, hd, pos0, causal, bias, pool);
    char what[96];
    snprintf(what, sizeof what, "%s out", name);
    compare(what, out, rout, nq);
    snprintf(what, sizeof what, "%s att", name);
    compare(what, att, ratt, natt);
    float *dq = prefilled(nq), *dk = prefilled(nkv), *dv = prefilled(nkv);
    float *scratch = malloc((size_t)ops_attention_bwd_scratch(Nq, Nk, H) * sizeof(float));
    ops_attention_bwd(dq, dk, dv, dout, att, q, kk, v, Nq, Nk, H, KVH, hd, scratch, pool);
    unpre(dq, nq), unpre(dk, nkv), unpre(dv, nkv);
    snprintf(what, sizeof what, "%s dq", name);
    compare(what, dq, rdq, nq);
    snprintf(what, sizeof what, "%s dk", name);
    compare(what, dk, rdk, nkv);
    snprintf(what, sizeof what, "%s dv", name);
    compare(what, dv, rdv, nkv);
    /* the pattern's own product (what a model recomputes after a hook edits it) gives
     * the reference output from the reference pattern */
    float *out2 = malloc((size_t)nq * sizeof(float));
    memset(out2, 0x7f, (size_t)nq * sizeof(float));
    ops_attention_apply(out2, ratt, v, Nq, Nk, H, KVH, hd, pool);
    snprintf(what, sizeof what, "%s apply", name);
    compare(what, out2, rout, nq);
    free(out2);
    float *rdatt = NULL, *datt = prefilled(natt);
    snprintf(k, sizeof k, "%s.datt", name);
    rdatt = load(k, NULL);
    ops_attention_bwd_att(datt, dout, v, Nq, Nk, H, KVH, hd, pool);
    unpre(datt, natt);
    snprintf(what, sizeof what, "%s datt", name);
    compare(what, datt, rdatt, natt);
    free(rdatt), free(datt);
    free(cfg), free(q), free(kk), free(v), free(dout), free(rout), free(ratt), free(rdq), free(rdk), free(rdv);
    free(bias), free(out), free(att), free(dq), free(dk), free(dv), free(scratch);
}

/* Decoding (one query row) takes its own path: a unit per run of key/value heads,
 * the cache rows outer (ops_row_qk_heads / ops_row_pv_heads). Each row decoded alone
 * must match that row of the batched call (1e-5) and be the same bits on pools of 1, 2
 * and 3 threads, for GQA groups of 3 (head by head) and 8 (the four-head 64-wide
 * kernels), runs of single heads (16/16 of 64: four units of four heads; 12/12 of 40:
 * four of three, widths off the 16-float vector), pairs (16/8 of 32), a causal offset
 * and a -inf bias. A row with every key masked (all -inf bias, or a causal limit
 * before the first key) attends to nothing: zeros in the pattern and the output. */
static void test_attention_decode_rows(void) {
    enum { NQ = 5, NK = 77, POS0 = 72 };
    const int shapes[5][3] = {{9, 3, 64}, {8, 1, 64}, {16, 16, 64}, {12, 12, 40}, {16, 8, 32}};
    for (int gi = 0; gi < 5; gi++) {
        const int H = shapes[gi][0], KVH = shapes[gi][1], HD = shapes[gi][2];
        const int64_t nq = (int64_t)NQ * H * HD, nkv = (int64_t)NK * KVH * HD, na = (int64_t)H * NQ * NK;
        float *q = malloc((size_t)nq * sizeof(float)), *k = malloc((size_t)nkv * sizeof(float));
        float *v = malloc((size_t)nkv * sizeof(float)), *bias = malloc((size_t)NQ * NK * sizeof(float));
        float *out = malloc((size_t)nq * sizeof(float)), *att = malloc((size_t)na * sizeof(float));
        float *o1[3], *a1[3];
        for (int64_t i = 0; i < nq; i++) q[i] = sinf(0.37f * (float)i);
        for (int64_t i = 0; i < nkv; i++) k[i] = cosf(0.53f * (float)i), v[i] = sinf(0.29f * (float)i + 1.0f);
        for (int64_t i = 0; i < NQ * NK; i++) bias[i] = (i % 17 == 5) ? -INFINITY : 0.1f * sinf((float)i);
        ops_attention_fwd(out, att, q, k, v, NQ, NK, H, KVH, HD, POS0, true, bias, NULL);
        for (int r = 0; r < 3; r++) {
            pool_t *pool = NULL;
            err_t err = {0};
            if (r > 0) CHECK_OK(pool_create(&pool, r + 1, &err), &err);
            o1[r] = malloc(sizeof(float) * (size_t)(NQ * H * HD));
            a1[r] = malloc(sizeof(float) * (size_t)(NQ * H * NK));
            for (int i = 0; i < NQ; i++)
                ops_attention_fwd(o1[r] + (int64_t)i * H * HD, a1[r] + (int64_t)i * H * NK, q + (int64_t)i * H * HD, k,
                                  v, 1, NK, H, KVH, HD, POS0 + i, true, bias + i * NK, pool);
            pool_free(pool);
        }
        double worst = 0;
        for (int i = 0; i < NQ; i++)
            for (int h = 0; h < H; h++) {
                for (int d = 0; d < HD; d++) {
                    const float x = o1[0][((int64_t)i * H + h) * HD + d], y = out[((int64_t)i * H + h) * HD + d];
                    worst = fmax(worst, fabs((double)x - y));
                }
                for (int j = 0; j < NK; j++) {
                    const float x = a1[0][((int64_t)i * H + h) * NK + j], y = att[((int64_t)h * NQ + i) * NK + j];
                    worst = fmax(worst, fabs((double)x - y));
                }
            }
        CHECK_MSG(worst <= 1e-5, "decode rows vs batched attention, %d/%d heads of %d: max difference %.3g", H, KVH, HD,
                  worst);
        for (int r = 1; r < 3; r++) {
            CHECK_MSG(memcmp(o1[0], o1[r], sizeof(float) * (size_t)(NQ * H * HD)) == 0,
                      "decode output, %d/%d heads of %d: pool of %d differs from serial", H, KVH, HD, r + 1);
            CHECK_MSG(memcmp(a1[0], a1[r], sizeof(float) * (size_t)(NQ * H * NK)) == 0,
                      "decode pattern, %d/%d heads of %d: pool of %d differs from serial", H, KVH, HD, r + 1);
        }
        for (int64_t j = 0; j < NK; j++) bias[j] = -INFINITY;
        for (int m = 0; m < 2; m++) { /* all keys knocked out; causal limit before key 0 */
            memset(o1[0], 0x7f, sizeof(float) * (size_t)(H * HD));
            memset(a1[0], 0x7f, sizeof(float) * (size_t)(H * NK));
            ops_attention_fwd(o1[0], a1[0], q, k, v, 1, NK, H, KVH, HD, m ? -1 : POS0, true, m ? NULL : bias, NULL);
            int nonzero = 0;
            for (int64_t i = 0; i < H * HD; i++) nonzero += o1[0][i] != 0.0f;
            for (int64_t i = 0; i < (int64_t)H * NK; i++) nonzero += a1[0][i] != 0.0f;
            CHECK_MSG(nonzero == 0, "fully masked decode row, %d/%d heads of %d (%s): %d non-zeros", H, KVH, HD,
                      m ? "causal" : "bias", nonzero);
        }
        for (int r = 0; r < 3; r++) free(o1[r]), free(a1[r]);
        free(q), free(k), free(v), free(bias), free(out), free(att);
    }
}

/* Results must not depend on the pool size: the same attention forward and backward
 * (several 64-row blocks, GQA, causal with offset, -inf bias) run serially and on
 * pools of 2 and 3 threads must agree bit for bit. */
static void test_attention_threads(void) {
    enum { NQ = 130, NK = 141, H = 4, KVH = 2, HD = 32, POS0 = 11 };
    const int64_t nq = (int64_t)NQ * H * HD, nkv = (int64_t)NK * KVH * HD, na = (int64_t)H * NQ * NK;
    float *buf[3][6];
    float *q = malloc((size_t)nq * sizeof(float)), *k = malloc((size_t)nkv * sizeof(float));
    float *v = malloc((size_t)nkv * sizeof(float)), *dout = malloc((size_t)nq * sizeof(float));
    float *bias = malloc((size_t)NQ * NK * sizeof(float));
    float *scratch = malloc((size_t)ops_attention_bwd_scratch(NQ, NK, H) * sizeof(float));
    for (int64_t i = 0; i < nq; i++) q[i] = sinf(0.37f * (float)i), dout[i] = cosf(0.11f * (float)i);
    for (int64_t i = 0; i < nkv; i++) k[i] = cosf(0.53f * (float)i), v[i] = sinf(0.29f * (float)i + 1.0f);
    for (int64_t i = 0; i < NQ * NK; i++) bias[i] = (i % 17 == 5) ? -INFINITY : 0.1f * sinf((float)i);
    openblas_set_num_threads(1); /* the serial run is then single-threaded too */
    for (int r = 0; r < 3; r++) {
        pool_t *pool = NULL;
        err_t err = {0};
        if (r > 0) CHECK_OK(pool_create(&pool, r + 1, &err), &err);
        float *out = malloc((size_t)nq * sizeof(float)), *att = malloc((size_t)na * sizeof(float));
        float *dq = calloc((size_t)nq, sizeof(float)), *dk = calloc((size_t)nkv, sizeof(float));
        float *dv = calloc((size_t)nkv, sizeof(float));
        ops_attention_fwd(out, att, q, k, v, NQ, NK, H, KVH, HD, POS0, true, bias, pool);
        ops_attention_bwd(dq, dk, dv, dout, att, q, k, v, NQ, NK, H, KVH, HD, scratch, pool);
        pool_free(pool);
        buf[r][0] = out, buf[r][1] = att, buf[r][2] = dq, buf[r][3] = dk, buf[r][4] = dv, buf[r][5] = NULL;
    }
    const int64_t sizes[5] = {nq, na, nq, nkv, nkv};
    static const char *names[5] = {"out", "att", "dq", "dk", "dv"};
    for (int r = 1; r < 3; r++)
        for (int t = 0; t < 5; t++)
            CHECK_MSG(memcmp(buf[0][t], buf[r][t], (size_t)sizes[t] * sizeof(float)) == 0,
                      "attention %s differs between the serial run and a pool of %d", names[t], r + 1);
    /* Sanity: the gradients are not trivially zero. */
    double s = 0;
    for (int64_t i = 0; i < nkv; i++) s += fabs(buf[0][3][i]);
    CHECK(s > 1.0);
    for (int r = 0; r < 3; r++)
        for (int t = 0; t < 5; t++) free(buf[r][t]);
    free(q), free(k), free(v), free(dout), free(bias), free(scratch);
}

static void test_embed(void) {
    int64_t nt, N, no;
    float *table = loadf("embed.table", &nt), *dout = loadf("embed.dout", &no), *rout = loadf("embed.out", NULL);
    float *rdt = loadf("embed.dtable", NULL);
    int32_t *ids = load("embed.ids", &N);
    if (!table || !dout || !rout || !rdt || !ids) return;
    int64_t C = no / N;
    float *out = malloc((size_t)no * sizeof(float)), *dt = prefilled(nt);
    ops_embed_fwd(out, table, ids, N, C);
    ops_embed_bwd(dt, dout, ids, N, C);
    unpre(dt, nt);
    compare("embed out", out, rout, no);
    compare("embed dtable", dt, rdt, nt);
    free(table), free(dout), free(rout), free(rdt), free(ids), free(out), free(dt);
}

/* Patchify + linear must equal torch's conv2d with stride = kernel (the ViT patch
 * embedding), and the chained backwards its gradients. */
static void test_patchify(void) {
    int64_t nimg, nw;
    int32_t *cfg = load("patchify.cfg", NULL);
    float *img = loadf("patchify.img", &nimg), *w = loadf("patchify.weight", &nw), *dout = loadf("patchify.dout", NULL);
    float *rpatch = loadf("patchify.patches", NULL), *rout = loadf("patchify.out", NULL);
    float *rdimg = loadf("patchify.dimg", NULL), *rdw = loadf("patchify.dweight", NULL);
    if (!cfg || !img || !w || !dout || !rpatch || !rout || !rdimg || !rdw) return;
    int H = cfg[0], W = cfg[1], ps = cfg[2], d = cfg[3];
    int64_t P = (int64_t)(H / ps) * (W / ps), K = 3 * (int64_t)ps * ps;
    float *patches = malloc((size_t)(P * K) * sizeof(float)), *out = malloc((size_t)(P * d) * sizeof(float));
    ops_patchify_fwd(patches, img, H, W, ps);
    compare("patchify patches", patches, rpatch, P * K);
    ops_linear_fwd(out, patches, w, NULL, P, K, d);
    compare("patchify conv out", out, rout, P * d);
    float *dpatch = calloc((size_t)(P * K), sizeof(float)), *dw = prefilled(nw), *dimg = prefilled(nimg);
    ops_linear_bwd(dpatch, dw, NULL, dout, patches, w, P, K, d);
    ops_patchify_bwd(dimg, dpatch, H, W, ps);
    unpre(dw, nw), unpre(dimg, nimg);
    compare("patchify dimg", dimg, rdimg, nimg);
    compare("patchify dweight", dw, rdw, nw);
    free(cfg), free(img), free(w), free(dout), free(rpatch), free(rout), free(rdimg), free(rdw);
    free(patches), free(out), free(dpatch), free(dw), free(dimg);
}

static void test_xent(void) {
    int64_t n, N;
    float *logits = loadf("xent.logits", &n), *scale = loadf("xent.scale", NULL), *rloss = loadf("xent.loss", NULL);
    float *rprobs = loadf("xent.probs", NULL), *rls = loadf("xent.logsoftmax", NULL);
    float *rtotal = loadf("xent.total", NULL), *rdl = loadf("xent.dlogits", NULL);
    int32_t *target = load("xent.target", &N);
    if (!logits || !scale || !rloss || !rprobs || !rls || !rtotal || !rdl || !target) return;
    int64_t V = n / N;
    float *loss = malloc((size_t)N * sizeof(float)), *probs = malloc((size_t)n * sizeof(float));
    float *ls = malloc((size_t)n * sizeof(float)), *dl = prefilled(n);
    double total = ops_xent_fwd(loss, probs, logits, target, N, V);
    CHECK_NEAR(total, rtotal[0], OPS_RTOL * fabs(rtotal[0]));
    compare("xent loss", loss, rloss, N);
    compare("xent probs", probs, rprobs, n);
    ops_log_softmax(ls, logits, N, V);
    compare("log_softmax", ls, rls, n);
    ops_xent_bwd(dl, probs, target, N, V, scale[0]);
    unpre(dl, n);
    compare("xent dlogits", dl, rdl, n);
    free(logits), free(scale), free(rloss), free(rprobs), free(rls), free(rtotal), free(rdl), free(target);
    free(loss), free(probs), free(ls), free(dl);
}

int main(void) {
    test_layernorm();
    test_rmsnorm();
    test_linear();
    test_unary("gelu", ops_gelu_fwd, ops_gelu_bwd);
    test_unary("quick_gelu", ops_quick_gelu_fwd, ops_quick_gelu_bwd);
    test_swiglu();
    test_rope();
    static const char *att_cases[] = {"attn_gqa", "attn_mha", "attn_big"};
    for (int i = 0; i < 3; i++) test_attention(att_cases[i], NULL);
    /* Threaded: same goldens through the pool (3 threads: uneven splits). */
    pool_t *pool = NULL;
    err_t err = {0};
    CHECK_OK(pool_create(&pool, 3, &err), &err);
    if (pool)
        for (int i = 0; i < 3; i++) test_attention(att_cases[i], pool);
    pool_free(pool);
    test_attention_threads();
    test_attention_decode_rows();
    test_embed();
    test_patchify();
    test_xent();
    return test_result("test_ops");
}
