/* ops_attention.c — scaled dot-product attention (Vaswani et al. 2017) with grouped
 * query heads (Ainslie et al. 2023), causal masking with a query offset, an optional
 * additive bias shared by all heads, forward and backward. Contract in ops.h.
 *
 * Work is cut into units of (head, block of OPS_ATT_RB query rows); every unit is one
 * pair of sgemm calls whose shapes do not depend on the thread count, so results are
 * identical for any pool size. Under a causal mask a row block only multiplies the keys
 * its last row can see, which halves the work of a prefill. */
#include "ops.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "ops_row.h"

enum { OPS_ATT_RB = 64 };

typedef struct {
    float *out, *att;
    const float *q, *k, *v, *bias;
    int64_t Nq, Nk, q_pos0;
    int n_head, n_kv_head, hd;
    bool causal;
    int64_t n_blocks;
} att_fwd_args;

/* Number of keys row i may see: all Nk, or those at positions <= q_pos0 + i. */
static int64_t att_limit(int64_t i, int64_t Nk, int64_t q_pos0, bool causal) {
    if (!causal) return Nk;
    int64_t lim = q_pos0 + i + 1;
    if (lim < 0) return 0;
    return lim < Nk ? lim : Nk;
}

/* Softmax over s[0..lim) with max subtraction; s[lim..Nk) and rows whose every
 * score is -inf become zeros (contract: a fully masked row attends to nothing). */
static void att_softmax_row(float *s, const float *bias_row, int64_t lim, int64_t Nk) {
    float mx = ops_row_add_max(s, bias_row, lim);
    if (mx == -INFINITY) {
        memset(s, 0, (size_t)Nk * sizeof(float));
        return;
    }
    float sum = ops_row_exp_sum(s, lim, mx);
    ops_row_scale(s, lim, 1.0f / sum);
    if (lim < Nk) memset(s + lim, 0, (size_t)(Nk - lim) * sizeof(float));
}

/* Runs fn over the pool with OpenBLAS single-threaded: every unit's sgemm is then one
 * single-threaded call whose shape is fixed, which is what makes the result
 * independent of the pool size (OpenBLAS's own threading splits N and changes the
 * last bits), and it avoids oversubscribing the cores. */
static void att_run(pool_t *pool, pool_fn fn, void *arg) {
    if (!pool || pool_size(pool) <= 1) {
        fn(arg, 0, 1);
        return;
    }
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    pool_run(pool, fn, arg);
    openblas_set_num_threads(saved);
}

static void att_fwd_unit(const att_fwd_args *a, int64_t unit) {
    int h = (int)(unit / a->n_blocks);
    int64_t i0 = (unit % a->n_blocks) * OPS_ATT_RB;
    int64_t i1 = i0 + OPS_ATT_RB < a->Nq ? i0 + OPS_ATT_RB : a->Nq;
    int64_t rows = i1 - i0;
    int g = h / (a->n_head / a->n_kv_head);
    int hd = a->hd;
    int ldq = a->n_head * hd, ldkv = a->n_kv_head * hd;
    int64_t Nk = a->Nk;
    int64_t kmax = att_limit(i1 - 1, Nk, a->q_pos0, a->causal);
    float *S = a->att + ((int64_t)h * a->Nq + i0) * Nk;
    float *O = a->out + i0 * ldq + (int64_t)h * hd;

    const float *Q = a->q + i0 * ldq + (int64_t)h * hd, *K = a->k + (int64_t)g * hd, *V = a->v + (int64_t)g * hd;
    float scale = 1.0f / sqrtf((float)hd);
    if (kmax > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)kmax, hd, scale, Q, ldq, K, ldkv, 0.0f,
                    S, (int)Nk);
    for (int64_t i = i0; i < i1; i++) {
        float *s = S + (i - i0) * Nk;
        int64_t lim = att_limit(i, Nk, a->q_pos0, a->causal);
        att_softmax_row(s, a->bias ? a->bias + i * Nk : NULL, lim, Nk);
    }
    if (kmax > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, hd, (int)kmax, 1.0f, S, (int)Nk, V, ldkv,
                    0.0f, O, ldq);
    } else {
        for (int64_t i = 0; i < rows; i++) memset(O + i * ldq, 0, (size_t)hd * sizeof(float));
    }
}

/* One query row (decoding): a unit is a run of consecutive key/value heads with their
 * query heads, and ops_row_qk_heads / ops_row_pv_heads read each cache row's slice of
 * the run once, front to back (sgemm would pack all of K and V for the one row). A run
 * covers 1024 floats of a row where it can: eight LLaMA-7B heads, 4 KB, read at 28-30
 * GB/s on one Zen 5 core against 22-24 for one head's 512 bytes every 16 KB
 * (ops_row_avx512.c). It is cut shorter to leave at least four units to share out. The
 * run depends on the model's shape only, never on the thread count. */
static int att_dec_run(int n_kv_head, int hd) {
    int run = (1024 + hd - 1) / hd, cap = n_kv_head / 4;
    if (run > cap) run = cap;
    return run > 0 ? run : 1;
}

static void att_dec_unit(const att_fwd_args *a, int u) {
    const int G = a->n_head / a->n_kv_head, hd = a->hd, ldkv = a->n_kv_head * hd;
    const int run = att_dec_run(a->n_kv_head, hd), g0 = u * run;
    const int nh = (g0 + run < a->n_kv_head ? run : a->n_kv_head - g0) * G;
    const int64_t Nk = a->Nk, lim = att_limit(0, Nk, a->q_pos0, a->causal);
    float *S = a->att + (int64_t)g0 * G * Nk, *O = a->out + (int64_t)g0 * G * hd;
    if (lim <= 0) {
        memset(S, 0, sizeof(float) * (size_t)nh * (size_t)Nk);
        memset(O, 0, sizeof(float) * (size_t)nh * (size_t)hd);
        return;
    }
    const float *K = a->k + (int64_t)g0 * hd, *V = a->v + (int64_t)g0 * hd;
    ops_row_qk_heads(S, Nk, a->q + (int64_t)g0 * G * hd, nh, G, K, ldkv, lim, hd, 1.0f / sqrtf((float)hd));
    for (int h = 0; h < nh; h++) att_softmax_row(S + h * Nk, a->bias, lim, Nk);
    ops_row_pv_heads(O, S, Nk, nh, G, V, ldkv, lim, hd);
}

static void att_dec_worker(void *arg, int ith, int nth) {
    const att_fwd_args *a = arg;
    const int run = att_dec_run(a->n_kv_head, a->hd);
    long lo, hi;
    pool_split((a->n_kv_head + run - 1) / run, ith, nth, &lo, &hi);
    for (long u = lo; u < hi; u++) att_dec_unit(a, (int)u);
}

static void att_fwd_worker(void *arg, int ith, int nth) {
    const att_fwd_args *a = arg;
    long lo, hi;
    pool_split((long)(a->n_head * a->n_blocks), ith, nth, &lo, &hi);
    for (long u = lo; u < hi; u++) att_fwd_unit(a, u);
}

void ops_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v, int64_t Nq,
                       int64_t Nk, int n_head, int n_kv_head, int hd, int64_t q_pos0, bool causal,
                       const float *bias, pool_t *pool) {
    assert(n_kv_head > 0 && n_head % n_kv_head == 0);
    if (Nq <= 0) return;
    att_fwd_args a = {out, att, q, k, v, bias, Nq, Nk, q_pos0, n_head, n_kv_head, hd, causal,
                      (Nq + OPS_ATT_RB - 1) / OPS_ATT_RB};
    if (Nk <= 0) {
        memset(out, 0, (size_t)(Nq * n_head * hd) * sizeof(float));
        return;
    }
    if (Nq == 1) /* no BLAS call, so no OpenBLAS thread count to pin */
        pool_run(pool, att_dec_worker, &a);
    else
        att_run(pool, att_fwd_worker, &a);
}

/* ---- backward ----
 * With P = att (post-softmax), S the scaled scores, s = 1/sqrt(hd):
 *   dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ += s dS K,  dK += s dS^T Q,
 *   dV += P^T dO.
 * Masked entries have P = 0 and therefore dS = 0, so each block of query rows only
 * needs the keys up to the last non-zero of P in its rows (kmax; about half the keys
 * under a causal mask). Phase 1 (units of head x query block) finds kmax, writes s*dS
 * into scratch and updates the dq rows it owns; phase 2 (units of kv head x key block)
 * sums the query heads of each group into dk and dv in a fixed order, over the query
 * blocks whose kmax reaches the key block, so no two units write the same output. */

typedef struct {
    float *dq, *dk, *dv, *dS, *kmax;
    const float *dout, *att, *q, *k, *v;
    int64_t Nq, Nk;
    int n_head, n_kv_head, hd;
    int64_t n_qblocks, n_kblocks;
    bool have_kmax;
} att_bwd_args;

int64_t ops_attention_bwd_scratch(int64_t Nq, int64_t Nk, int n_head) {
    return (Nq * Nk + (Nq + OPS_ATT_RB - 1) / OPS_ATT_RB) * (int64_t)n_head;
}

static void att_bwd_unit1(const att_bwd_args *a, int64_t unit) {
    int h = (int)(unit / a->n_qblocks);
    int64_t b = unit % a->n_qblocks;
    int64_t i0 = b * OPS_ATT_RB;
    int64_t i1 = i0 + OPS_ATT_RB < a->Nq ? i0 + OPS_ATT_RB : a->Nq;
    int64_t rows = i1 - i0;
    int g = h / (a->n_head / a->n_kv_head);
    int hd = a->hd;
    int ldq = a->n_head * hd, ldkv = a->n_kv_head * hd;
    int64_t Nk = a->Nk;
    float scale = 1.0f / sqrtf((float)hd);
    const float *P = a->att + ((int64_t)h * a->Nq + i0) * Nk;
    float *dS = a->dS + ((int64_t)h * a->Nq + i0) * Nk;

    int64_t kb = 0;
    for (int64_t i = 0; i < rows; i++) {
        int64_t j = Nk;
        while (j > kb && P[i * Nk + j - 1] == 0.0f) j--;
        kb = j;
    }
    a->kmax[(int64_t)h * a->n_qblocks + b] = (float)kb; /* exact: kb < 2^24 */
    if (kb == 0) return;

    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)kb, hd, 1.0f,
                a->dout + i0 * ldq + (int64_t)h * hd, ldq, a->v + (int64_t)g * hd, ldkv, 0.0f, dS, (int)Nk);
    /* Phase 2 reads whole key blocks: zero the columns past kb up to the block end. */
    int64_t kend = (kb + OPS_ATT_RB - 1) / OPS_ATT_RB * OPS_ATT_RB;
    if (kend > Nk) kend = Nk;
    for (int64_t i = 0; i < rows; i++) {
        const float *p = P + i * Nk;
        float *d = dS + i * Nk;
        float dot = ops_row_dot(d, p, kb);
        ops_row_softmax_bwd(d, p, kb, dot, scale);
        if (kend > kb) memset(d + kb, 0, (size_t)(kend - kb) * sizeof(float));
    }
    if (a->dq)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, hd, (int)kb, 1.0f, dS, (int)Nk,
                    a->k + (int64_t)g * hd, ldkv, 1.0f, a->dq + i0 * ldq + (int64_t)h * hd, ldq);
}

static void att_bwd_unit2(const att_bwd_args *a, int64_t unit) {
    int g = (int)(unit / a->n_kblocks);
    int64_t j0 = (unit % a->n_kblocks) * OPS_ATT_RB;
    int64_t j1 = j0 + OPS_ATT_RB < a->Nk ? j0 + OPS_ATT_RB : a->Nk;
    int64_t cols = j1 - j0;
    int hd = a->hd;
    int ldq = a->n_head * hd, ldkv = a->n_kv_head * hd;
    int64_t Nq = a->Nq, Nk = a->Nk;
    int group = a->n_head / a->n_kv_head;
    for (int h = g * group; h < (g + 1) * group; h++) {
        const float *kmax = a->kmax + (int64_t)h * a->n_qblocks;
        /* Runs of consecutive query blocks that see this key block: one sgemm each. */
        for (int64_t b = 0; b < a->n_qblocks;) {
            if (a->have_kmax && kmax[b] <= (float)j0) {
                b++;
                continue;
            }
            int64_t e = b + 1;
            while (e < a->n_qblocks && (!a->have_kmax || kmax[e] > (float)j0)) e++;
            int64_t r0 = b * OPS_ATT_RB, r1 = e * OPS_ATT_RB < Nq ? e * OPS_ATT_RB : Nq;
            const float *Ph = a->att + ((int64_t)h * Nq + r0) * Nk + j0;
            if (a->dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cols, hd, (int)(r1 - r0), 1.0f,
                            a->dS + ((int64_t)h * Nq + r0) * Nk + j0, (int)Nk, a->q + r0 * ldq + (int64_t)h * hd,
                            ldq, 1.0f, a->dk + j0 * ldkv + (int64_t)g * hd, ldkv);
            if (a->dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cols, hd, (int)(r1 - r0), 1.0f, Ph,
                            (int)Nk, a->dout + r0 * ldq + (int64_t)h * hd, ldq, 1.0f,
                            a->dv + j0 * ldkv + (int64_t)g * hd, ldkv);
            b = e;
        }
    }
}

static void att_bwd_worker1(void *arg, int ith, int nth) {
    const att_bwd_args *a = arg;
    long lo, hi;
    pool_split((long)(a->n_head * a->n_qblocks), ith, nth, &lo, &hi);
    for (long u = lo; u < hi; u++) att_bwd_unit1(a, u);
}

static void att_bwd_worker2(void *arg, int ith, int nth) {
    const att_bwd_args *a = arg;
    long lo, hi;
    pool_split((long)(a->n_kv_head * a->n_kblocks), ith, nth, &lo, &hi);
    for (long u = lo; u < hi; u++) att_bwd_unit2(a, u);
}

void ops_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                       const float *k, const float *v, int64_t Nq, int64_t Nk, int n_head, int n_kv_head, int hd,
                       float *scratch, pool_t *pool) {
    assert(n_kv_head > 0 && n_head % n_kv_head == 0);
    if (Nq <= 0 || Nk <= 0) return;
    att_bwd_args a = {dq, dk, dv, scratch, scratch + Nq * Nk * (int64_t)n_head, dout, att, q, k, v, Nq, Nk,
                      n_head, n_kv_head, hd, (Nq + OPS_ATT_RB - 1) / OPS_ATT_RB, (Nk + OPS_ATT_RB - 1) / OPS_ATT_RB,
                      false};
    /* dS is needed by dq and dk; dv only needs P and dO (then every block is used). */
    if (dq || dk) {
        att_run(pool, att_bwd_worker1, &a);
        a.have_kmax = true;
    }
    if (dk || dv) att_run(pool, att_bwd_worker2, &a);
}

/* ---- per-head products of a pattern with V, one sgemm per head ----
 * apply:    out_h  = A_h V_g              (p = the pattern A, m = out)
 * bwd_att:  dA_h  += dO_h V_g^T           (p = dO, m = dA)                         */

typedef struct {
    float *m;
    const float *p, *v;
    int64_t Nq, Nk;
    int n_head, n_kv_head, hd;
} att_head_args;

static void att_apply_worker(void *arg, int ith, int nth) {
    const att_head_args *a = arg;
    long lo, hi;
    pool_split((long)a->n_head, ith, nth, &lo, &hi);
    int ldq = a->n_head * a->hd, ldkv = a->n_kv_head * a->hd;
    for (long h = lo; h < hi; h++) {
        int g = (int)h / (a->n_head / a->n_kv_head);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a->Nq, a->hd, (int)a->Nk, 1.0f,
                    a->p + (int64_t)h * a->Nq * a->Nk, (int)a->Nk, a->v + (int64_t)g * a->hd, ldkv, 0.0f,
                    a->m + h * a->hd, ldq);
    }
}

void ops_attention_apply(float *out, const float *att, const float *v, int64_t Nq, int64_t Nk, int n_head,
                         int n_kv_head, int hd, pool_t *pool) {
    if (Nq <= 0) return;
    if (Nk <= 0) {
        memset(out, 0, sizeof(float) * (size_t)Nq * (size_t)n_head * (size_t)hd);
        return;
    }
    att_head_args a = {out, att, v, Nq, Nk, n_head, n_kv_head, hd};
    att_run(pool, att_apply_worker, &a);
}

static void att_datt_worker(void *arg, int ith, int nth) {
    const att_head_args *a = arg;
    long lo, hi;
    pool_split((long)a->n_head, ith, nth, &lo, &hi);
    int ldq = a->n_head * a->hd, ldkv = a->n_kv_head * a->hd;
    for (long h = lo; h < hi; h++) {
        int g = (int)h / (a->n_head / a->n_kv_head);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)a->Nq, (int)a->Nk, a->hd, 1.0f,
                    a->p + h * a->hd, ldq, a->v + (int64_t)g * a->hd, ldkv, 1.0f,
                    a->m + (int64_t)h * a->Nq * a->Nk, (int)a->Nk);
    }
}

void ops_attention_bwd_att(float *datt, const float *dout, const float *v, int64_t Nq, int64_t Nk, int n_head,
                           int n_kv_head, int hd, pool_t *pool) {
    if (Nq <= 0 || Nk <= 0) return;
    att_head_args a = {datt, dout, v, Nq, Nk, n_head, n_kv_head, hd};
    att_run(pool, att_datt_worker, &a);
}
