/* test_gguf_presets.c — the random models make-model writes (core/presets.h):
 * tensor counts and shapes follow the preset; one seed gives the same underlying
 * weights in every type (so a q8_0 file dequantizes to the f32 file within Q8_0's
 * error), a different seed gives different weights; weights have std 0.02 and are
 * finite, norms are 1 and LayerNorm biases 0; a thread pool writes the same bytes as
 * one thread. Every preset's vocabulary is checked in test_gguf_presets_big. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/presets.h"
#include "core/quant.h"
#include "core/threads.h"
#include "testutil.h"

static float *dequant(const tensor_t *t) {
    int64_t n = tensor_nelements(t);
    float *out = malloc((size_t)n * sizeof *out);
    int64_t rows = n / t->ne[0];
    size_t rb = qt_row_size(t->type, t->ne[0]);
    for (int64_t r = 0; r < rows; r++)
        qt_get(t->type)->to_float((const unsigned char *)t->data + (size_t)r * rb, out + r * t->ne[0], t->ne[0]);
    return out;
}

static void stats(const float *x, int64_t n, double *mean, double *sd, int *finite) {
    double s = 0, s2 = 0;
    *finite = 1;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) *finite = 0;
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
}

/* Relative RMS difference of tensor `name` between two files. */
static double rel_diff(const gguf_t *a, const gguf_t *b, const char *name) {
    const tensor_t *ta = gguf_find_tensor(a, name), *tb = gguf_find_tensor(b, name);
    if (!ta || !tb || tensor_nelements(ta) != tensor_nelements(tb)) return INFINITY;
    float *xa = dequant(ta), *xb = dequant(tb);
    double d = 0, r = 0;
    for (int64_t i = 0; i < tensor_nelements(ta); i++) {
        d += ((double)xa[i] - xb[i]) * ((double)xa[i] - xb[i]);
        r += (double)xa[i] * xa[i];
    }
    free(xa);
    free(xb);
    return sqrt(d / r);
}

static gguf_t *write_and_open(const preset_t *p, int type, uint64_t seed, const char *path, bool mmproj) {
    err_t err = {0};
    preset_opts o = {type, QT_F16, seed, NULL, NULL};
    if (mmproj) o.mmproj_type = type;
    err_code rc = mmproj ? preset_write_mmproj(p, &o, path, &err) : preset_write_lm(p, &o, path, &err);
    CHECK_OK(rc, &err);
    gguf_t *g = NULL;
    if (!rc) CHECK_OK(gguf_open(&g, path, &err), &err);
    return g;
}

static void check_lm(const preset_t *p, const gguf_t *g) {
    err_t err = {0};
    CHECK(gguf_n_tensors(g) == preset_lm_n_tensors(p));
    int64_t E = p->n_embd, kv = E / p->n_head * p->n_head_kv;
    CHECK_OK(gguf_require_tensor(g, "token_embd.weight", 2, (int64_t[]){E, p->n_vocab}, NULL, &err), &err);
    CHECK_OK(gguf_require_tensor(g, "blk.1.attn_k.weight", 2, (int64_t[]){E, kv}, NULL, &err), &err);
    CHECK_OK(gguf_require_tensor(g, "blk.1.ffn_down.weight", 2, (int64_t[]){p->n_ff, E}, NULL, &err), &err);
    CHECK_OK(gguf_require_tensor(g, "output.weight", 2, (int64_t[]){E, p->n_vocab}, NULL, &err), &err);
    uint32_t u;
    CHECK_OK(gguf_get_u32(g, "llama.rope.dimension_count", &u, &err), &err);
    CHECK(u == (uint32_t)(E / p->n_head));
    const tensor_t *t = gguf_find_tensor(g, "blk.0.ffn_norm.weight");
    CHECK(t && t->type == QT_F32 && ((const float *)t->data)[0] == 1.0f && ((const float *)t->data)[E - 1] == 1.0f);
}

int main(void) {
    const preset_t *p = preset_find("tiny");
    CHECK(p && !strcmp(p->name, "tiny") && preset_find("nope") == NULL);
    int n_presets = 0;
    while (preset_at(n_presets)) n_presets++;
    CHECK(n_presets == 4 && preset_find("small") && preset_find("tinyllama-clip-b") && preset_find("llava-1.5-7b"));
    /* Shapes of the real models (tensor counts as in llama.cpp's released files). */
    const preset_t *l7 = preset_find("llava-1.5-7b");
    CHECK(preset_lm_n_tensors(l7) == 291 && preset_mmproj_n_tensors(l7) == 377);
    CHECK(preset_lm_n_tensors(preset_find("tinyllama-clip-b")) == 201);

    /* Type fallbacks by row length. */
    CHECK(preset_weight_type(QT_Q4_K, 4096) == QT_Q4_K);
    CHECK(preset_weight_type(QT_Q4_K, 64) == QT_Q4_0);
    CHECK(preset_weight_type(QT_Q4_K, 48) == QT_F16);
    CHECK(preset_weight_type(QT_Q8_0, 192) == QT_Q8_0);
    CHECK(preset_weight_type(QT_Q8_0, 40) == QT_F16);
    CHECK(preset_weight_type(QT_F32, 7) == QT_F32);
    CHECK(preset_file_type(QT_Q8_0) == 7 && preset_file_type(QT_Q4_K) == 14 && preset_file_type(QT_Q5_1) == -1);

    char f32p[64], q8p[64], q4p[64], s2p[64], mmp[64];
    int pid = (int)getpid();
    snprintf(f32p, sizeof f32p, "presets_%d_f32.gguf", pid);
    snprintf(q8p, sizeof q8p, "presets_%d_q8.gguf", pid);
    snprintf(q4p, sizeof q4p, "presets_%d_q4.gguf", pid);
    snprintf(s2p, sizeof s2p, "presets_%d_s2.gguf", pid);
    snprintf(mmp, sizeof mmp, "presets_%d_mm.gguf", pid);
    gguf_t *gf = write_and_open(p, QT_F32, 5, f32p, false);
    gguf_t *g8 = write_and_open(p, QT_Q8_0, 5, q8p, false);
    gguf_t *g4 = write_and_open(p, QT_Q4_K, 5, q4p, false);
    gguf_t *gs = write_and_open(p, QT_F32, 6, s2p, false);
    gguf_t *gm = write_and_open(p, QT_F32, 5, mmp, true);
    if (gf && g8 && g4 && gs && gm) {
        check_lm(p, gf);
        check_lm(p, g8);
        const tensor_t *t = gguf_find_tensor(g8, "blk.0.attn_q.weight");
        CHECK(t && t->type == QT_Q8_0);
        t = gguf_find_tensor(g4, "blk.0.ffn_up.weight");
        CHECK(t && t->type == QT_Q4_0); /* 64-wide rows cannot hold Q4_K's 256 blocks */
        /* Same seed: same weights up to quantization error; other seed: unrelated. */
        double d8 = rel_diff(gf, g8, "blk.1.ffn_gate.weight"), d4 = rel_diff(gf, g4, "blk.1.ffn_gate.weight");
        double ds = rel_diff(gf, gs, "blk.1.ffn_gate.weight");
        printf("relative RMS difference to the f32 file: q8_0 %.4f, q4 %.4f, other seed %.4f\n", d8, d4, ds);
        CHECK_MSG(d8 < 0.01, "q8_0 vs f32: %g", d8);
        CHECK_MSG(d4 > d8 && d4 < 0.15, "q4 vs f32: %g", d4);
        CHECK_MSG(ds > 1.3, "seed 5 vs 6: %g (independent weights give sqrt(2))", ds);
        CHECK(rel_diff(gf, g8, "blk.0.attn_norm.weight") == 0.0);
        /* Initial scale: N(0, 0.02), bounded by Irwin-Hall's +-2*sqrt(3) sigma. */
        t = gguf_find_tensor(gf, "token_embd.weight");
        double mean, sd;
        int fin;
        stats(t->data, tensor_nelements(t), &mean, &sd, &fin);
        printf("token_embd: mean %.2e, sd %.5f\n", mean, sd);
        CHECK(fin && fabs(mean) < 1e-3 && fabs(sd - 0.02) < 5e-4);
        float mx = 0;
        for (int64_t i = 0; i < tensor_nelements(t); i++) mx = fmaxf(mx, fabsf(((const float *)t->data)[i]));
        CHECK(mx <= 0.02f * 3.4641f && mx > 0.02f * 2.5f);

        /* mmproj: counts, position rows = patches + 1, LayerNorm w = 1, b = 0. */
        err_t err = {0};
        CHECK(gguf_n_tensors(gm) == preset_mmproj_n_tensors(p));
        int64_t np = (int64_t)(p->image_size / p->patch_size) * (p->image_size / p->patch_size) + 1;
        CHECK_OK(gguf_require_tensor(gm, "v.position_embd.weight", 2, (int64_t[]){p->v_width, np}, NULL, &err), &err);
        CHECK_OK(gguf_require_tensor(gm, "v.patch_embd.weight", 4,
                                     (int64_t[]){p->patch_size, p->patch_size, 3, p->v_width}, NULL, &err),
                 &err);
        CHECK_OK(gguf_require_tensor(gm, "mm.2.weight", 2, (int64_t[]){p->n_embd, p->n_embd}, NULL, &err), &err);
        t = gguf_find_tensor(gm, "v.patch_embd.weight");
        CHECK(t && t->type == QT_F16);
        t = gguf_find_tensor(gm, "v.blk.1.ln2.bias");
        CHECK(t && ((const float *)t->data)[3] == 0.0f);
        t = gguf_find_tensor(gm, "v.pre_ln.weight");
        CHECK(t && ((const float *)t->data)[0] == 1.0f);
        uint32_t bc = 0;
        CHECK_OK(gguf_get_u32(gm, "clip.vision.block_count", &bc, &err), &err);
        CHECK(bc == (uint32_t)p->v_blocks);
    }
    /* Threads change nothing: a 3-thread pool writes the same bytes. */
    pool_t *pool = NULL;
    err_t perr = {0};
    CHECK_OK(pool_create(&pool, 3, &perr), &perr);
    char thp[64];
    snprintf(thp, sizeof thp, "presets_%d_threads.gguf", pid);
    preset_opts o = {QT_Q8_0, QT_F16, 5, NULL, NULL};
    CHECK_OK(preset_write_lm_pool(p, &o, pool, thp, &perr), &perr);
    pool_free(pool);
    size_t na = 0, nb = 0;
    unsigned char *a = test_slurp(q8p, &na), *b = test_slurp(thp, &nb);
    CHECK(a && b && na == nb && na > 0 && !memcmp(a, b, na));
    free(a);
    free(b);
    unlink(thp);

    gguf_close(gf);
    gguf_close(g8);
    gguf_close(g4);
    gguf_close(gs);
    gguf_close(gm);
    unlink(f32p);
    unlink(q8p);
    unlink(q4p);
    unlink(s2p);
    unlink(mmp);
    return test_result("test_gguf_presets");
}
