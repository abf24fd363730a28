/* ops.c — forward and backward of the element-wise, normalisation, linear, embedding,
 * patch and loss operations (contract in ops.h). Attention lives in ops_attention.c,
 * RoPE in ops_rope.c, the vectorised row kernels in ops_row*.c / ops_norm_avx512.c.
 * Derivatives are written next to each backward so a reader can check them against
 * the math; reductions over a row accumulate in double. The portable loops here are
 * the reference; on AVX-512 machines the norms run the same math in ops_norm_avx512.c. */
#include "ops.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>

#include <cblas.h>

#include "cpu.h"
#include "ops_row.h"

/* ---- LayerNorm (Ba et al. 2016; CLIP uses it pre-attention and pre-MLP) ---- */

void ops_layernorm_fwd(float *out, float *mean, float *rstd, const float *in, const float *w, const float *b,
                       int64_t N, int64_t C, float eps) {
    if (cpu_level() == CPU_AVX512) {
        for (int64_t n = 0; n < N; n++) {
            float m, r;
            ops_ln_row_fwd_avx512(out + n * C, in + n * C, w, b, C, eps, &m, &r);
            if (mean) mean[n] = m;
            if (rstd) rstd[n] = r;
        }
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        const float *x = in + n * C;
        float *y = out + n * C;
        double s = 0.0;
        for (int64_t c = 0; c < C; c++) s += x[c];
        double m = s / (double)C;
        /* Two-pass variance: no cancellation when |mean| >> std. */
        double v = 0.0;
        for (int64_t c = 0; c < C; c++) {
            double d = x[c] - m;
            v += d * d;
        }
        v /= (double)C;
        double r = 1.0 / sqrt(v + (double)eps);
        for (int64_t c = 0; c < C; c++) {
            float nrm = (float)((x[c] - m) * r);
            y[c] = nrm * w[c] + (b ? b[c] : 0.0f);
        }
        if (mean) mean[n] = (float)m;
        if (rstd) rstd[n] = (float)r;
    }
}

/* With xh = (x - mean) rstd and g = dout * w:
 *   dx = rstd * (g - mean(g) - xh * mean(g * xh)),  dw += dout * xh,  db += dout. */
void ops_layernorm_bwd(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                       const float *mean, const float *rstd, int64_t N, int64_t C) {
    if (cpu_level() == CPU_AVX512) {
        for (int64_t n = 0; n < N; n++)
            ops_ln_row_bwd_avx512(din ? din + n * C : NULL, dw, db, dout + n * C, in + n * C, w, mean[n], rstd[n], C);
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        const float *x = in + n * C;
        const float *dy = dout + n * C;
        double m = mean[n], r = rstd[n];
        if (din) {
            double sg = 0.0, sgx = 0.0;
            for (int64_t c = 0; c < C; c++) {
                double g = (double)dy[c] * w[c];
                sg += g;
                sgx += g * ((x[c] - m) * r);
            }
            sg /= (double)C;
            sgx /= (double)C;
            float *dx = din + n * C;
            for (int64_t c = 0; c < C; c++) {
                double xh = (x[c] - m) * r;
                double g = (double)dy[c] * w[c];
                dx[c] += (float)(r * (g - sg - xh * sgx));
            }
        }
        if (dw)
            for (int64_t c = 0; c < C; c++) dw[c] += (float)((double)dy[c] * ((x[c] - m) * r));
        if (db)
            for (int64_t c = 0; c < C; c++) db[c] += dy[c];
    }
}

/* ---- RMSNorm (Zhang & Sennrich 2019; LLaMA) ---- */

void ops_rmsnorm_fwd(float *out, float *rstd, const float *in, const float *w, int64_t N, int64_t C, float eps) {
    if (cpu_level() == CPU_AVX512) {
        for (int64_t n = 0; n < N; n++) {
            float r;
            ops_rms_row_fwd_avx512(out + n * C, in + n * C, w, C, eps, &r);
            if (rstd) rstd[n] = r;
        }
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        const float *x = in + n * C;
        float *y = out + n * C;
        double ss = 0.0;
        for (int64_t c = 0; c < C; c++) ss += (double)x[c] * x[c];
        double r = 1.0 / sqrt(ss / (double)C + (double)eps);
        for (int64_t c = 0; c < C; c++) y[c] = (float)(x[c] * r) * w[c];
        if (rstd) rstd[n] = (float)r;
    }
}

/* y_c = x_c r w_c with r = (mean(x^2) + eps)^(-1/2), dr/dx_c = -r^3 x_c / C, so
 *   dx_c = r w_c dy_c - x_c r^3 / C * sum_j dy_j w_j x_j,  dw_c += dy_c x_c r. */
void ops_rmsnorm_bwd(float *din, float *dw, const float *dout, const float *in, const float *w,
                     const float *rstd, int64_t N, int64_t C) {
    if (cpu_level() == CPU_AVX512) {
        for (int64_t n = 0; n < N; n++)
            ops_rms_row_bwd_avx512(din ? din + n * C : NULL, dw, dout + n * C, in + n * C, w, rstd[n], C);
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        const float *x = in + n * C;
        const float *dy = dout + n * C;
        double r = rstd[n];
        if (din) {
            double s = 0.0;
            for (int64_t c = 0; c < C; c++) s += (double)dy[c] * w[c] * x[c];
            double k = s * r * r * r / (double)C;
            float *dx = din + n * C;
            for (int64_t c = 0; c < C; c++) dx[c] += (float)(r * w[c] * dy[c] - x[c] * k);
        }
        if (dw)
            for (int64_t c = 0; c < C; c++) dw[c] += (float)((double)dy[c] * x[c] * r);
    }
}

/* ---- Linear ---- */

void ops_linear_fwd(float *out, const float *in, const float *w, const float *b, int64_t N, int64_t IN,
                    int64_t OUT) {
    if (N <= 0 || OUT <= 0) return;
    float beta = 0.0f;
    if (b) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OUT; o++) out[n * OUT + o] = b[o];
        beta = 1.0f;
    }
    if (IN <= 0) {
        if (!b)
            for (int64_t i = 0; i < N * OUT; i++) out[i] = 0.0f;
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OUT, (int)IN, 1.0f, in, (int)IN, w,
                (int)IN, beta, out, (int)OUT);
}

/* din += dout w, dw += dout^T in, db += column sums of dout. */
void ops_linear_bwd(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                    int64_t N, int64_t IN, int64_t OUT) {
    if (N <= 0 || OUT <= 0) return;
    if (din && IN > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)IN, (int)OUT, 1.0f, dout, (int)OUT,
                    w, (int)IN, 1.0f, din, (int)IN);
    if (dw && IN > 0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OUT, (int)IN, (int)N, 1.0f, dout, (int)OUT,
                    in, (int)IN, 1.0f, dw, (int)IN);
    if (db) {
        /* Column sums in double, a chunk of columns at a time so rows are read contiguously. */
        enum { CHUNK = 64 };
        for (int64_t o0 = 0; o0 < OUT; o0 += CHUNK) {
            int64_t m = OUT - o0 < CHUNK ? OUT - o0 : CHUNK;
            double acc[CHUNK] = {0};
            for (int64_t n = 0; n < N; n++) {
                const float *row = dout + n * OUT + o0;
                for (int64_t o = 0; o < m; o++) acc[o] += row[o];
            }
            for (int64_t o = 0; o < m; o++) db[o0 + o] += (float)acc[o];
        }
    }
}

/* ---- Activations ---- */

/* The sigmoid-based activations work on chunks: the sigmoid of a chunk in one
 * vectorised, overflow-free call (ops_row_sigmoid), then the element-wise rest. */
enum { ACT_CHUNK = 256 };

static void sigmoid_chunk(float *sg, const float *x, float k, int64_t m) { ops_row_sigmoid(sg, x, k, m); }

#define OPS_INV_SQRT2 0.70710678118654752440f
#define OPS_INV_SQRT_2PI 0.39894228040143267794f

void ops_gelu_fwd(float *out, const float *in, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + erff(x * OPS_INV_SQRT2));
    }
}

/* d/dx [x Phi(x)] = Phi(x) + x phi(x), Phi the normal CDF, phi its density. */
void ops_gelu_bwd(float *din, const float *dout, const float *in, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = in[i];
        float cdf = 0.5f * (1.0f + erff(x * OPS_INV_SQRT2));
        float pdf = OPS_INV_SQRT_2PI * expf(-0.5f * x * x);
        din[i] += dout[i] * (cdf + x * pdf);
    }
}

/* CLIP's approximation (OpenAI CLIP model.py QuickGELU). */
#define OPS_QUICK_GELU_K 1.702f

void ops_quick_gelu_fwd(float *out, const float *in, int64_t n) {
    float sg[ACT_CHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += ACT_CHUNK) {
        int64_t m = n - i0 < ACT_CHUNK ? n - i0 : ACT_CHUNK;
        sigmoid_chunk(sg, in + i0, OPS_QUICK_GELU_K, m);
        for (int64_t j = 0; j < m; j++) out[i0 + j] = in[i0 + j] * sg[j];
    }
}

/* d/dx [x s(kx)] = s + k x s (1 - s). */
void ops_quick_gelu_bwd(float *din, const float *dout, const float *in, int64_t n) {
    float sg[ACT_CHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += ACT_CHUNK) {
        int64_t m = n - i0 < ACT_CHUNK ? n - i0 : ACT_CHUNK;
        sigmoid_chunk(sg, in + i0, OPS_QUICK_GELU_K, m);
        for (int64_t j = 0; j < m; j++) {
            float x = in[i0 + j], s = sg[j];
            din[i0 + j] += dout[i0 + j] * (s + OPS_QUICK_GELU_K * x * s * (1.0f - s));
        }
    }
}

void ops_swiglu_fwd(float *out, const float *gate, const float *up, int64_t n) {
    float sg[ACT_CHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += ACT_CHUNK) {
        int64_t m = n - i0 < ACT_CHUNK ? n - i0 : ACT_CHUNK;
        sigmoid_chunk(sg, gate + i0, 1.0f, m);
        for (int64_t j = 0; j < m; j++) out[i0 + j] = gate[i0 + j] * sg[j] * up[i0 + j];
    }
}

/* silu(g) = g s(g), silu'(g) = s + g s (1 - s). */
void ops_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    float sg[ACT_CHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += ACT_CHUNK) {
        int64_t m = n - i0 < ACT_CHUNK ? n - i0 : ACT_CHUNK;
        sigmoid_chunk(sg, gate + i0, 1.0f, m);
        for (int64_t j = 0; j < m; j++) {
            float g = gate[i0 + j], s = sg[j], d = dout[i0 + j];
            if (dgate) dgate[i0 + j] += d * up[i0 + j] * (s + g * s * (1.0f - s));
            if (dup) dup[i0 + j] += d * g * s;
        }
    }
}

/* ---- Embedding ---- */

void ops_embed_fwd(float *out, const float *table, const int32_t *ids, int64_t N, int64_t C) {
    for (int64_t n = 0; n < N; n++) {
        assert(ids[n] >= 0);
        const float *row = table + (int64_t)ids[n] * C;
        for (int64_t c = 0; c < C; c++) out[n * C + c] = row[c];
    }
}

/* Repeated ids add up, which is the gradient of a gather. */
void ops_embed_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t C) {
    for (int64_t n = 0; n < N; n++) {
        assert(ids[n] >= 0);
        float *row = dtable + (int64_t)ids[n] * C;
        for (int64_t c = 0; c < C; c++) row[c] += dout[n * C + c];
    }
}

/* ---- Patch unfold ---- */

/* Pixels right of / below the last whole patch are dropped, as in a stride = kernel
 * conv without padding; their gradient stays untouched (zero contribution). */
void ops_patchify_fwd(float *out, const float *img, int H, int W, int ps) {
    int gh = H / ps, gw = W / ps;
    int64_t K = 3 * (int64_t)ps * ps;
    for (int py = 0; py < gh; py++)
        for (int px = 0; px < gw; px++) {
            float *o = out + ((int64_t)py * gw + px) * K;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < ps; y++) {
                    const float *src = img + ((int64_t)c * H + (int64_t)py * ps + y) * W + (int64_t)px * ps;
                    for (int x = 0; x < ps; x++) *o++ = src[x];
                }
        }
}

void ops_patchify_bwd(float *dimg, const float *dout, int H, int W, int ps) {
    int gh = H / ps, gw = W / ps;
    int64_t K = 3 * (int64_t)ps * ps;
    for (int py = 0; py < gh; py++)
        for (int px = 0; px < gw; px++) {
            const float *g = dout + ((int64_t)py * gw + px) * K;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < ps; y++) {
                    float *dst = dimg + ((int64_t)c * H + (int64_t)py * ps + y) * W + (int64_t)px * ps;
                    for (int x = 0; x < ps; x++) dst[x] += *g++;
                }
        }
}

/* ---- Softmax cross-entropy ---- */

/* Returns max and writes log(sum exp(x - max)) into *lse: the log-sum-exp trick keeps
 * every exponent <= 0. */
static float row_max_lse(const float *x, int64_t V, double *lse) {
    float mx = -INFINITY;
    for (int64_t v = 0; v < V; v++)
        if (x[v] > mx) mx = x[v];
    double s = 0.0;
    for (int64_t v = 0; v < V; v++) s += exp((double)x[v] - mx);
    *lse = log(s);
    return mx;
}

double ops_xent_fwd(float *loss, float *probs, const float *logits, const int32_t *target, int64_t N, int64_t V) {
    double total = 0.0;
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        double lse;
        float mx = row_max_lse(x, V, &lse);
        if (probs)
            for (int64_t v = 0; v < V; v++) probs[n * V + v] = (float)exp((double)x[v] - mx - lse);
        double l = 0.0;
        if (target[n] >= 0) {
            assert(target[n] < V);
            l = -((double)x[target[n]] - mx - lse);
            total += l;
        }
        if (loss) loss[n] = (float)l;
    }
    return total;
}

void ops_xent_bwd(float *dlogits, const float *probs, const int32_t *target, int64_t N, int64_t V, float scale) {
    for (int64_t n = 0; n < N; n++) {
        if (target[n] < 0) continue;
        const float *p = probs + n * V;
        float *d = dlogits + n * V;
        for (int64_t v = 0; v < V; v++) d[v] += scale * p[v];
        d[target[n]] -= scale;
    }
}

void ops_log_softmax(float *out, const float *in, int64_t N, int64_t V) {
    for (int64_t n = 0; n < N; n++) {
        double lse;
        float mx = row_max_lse(in + n * V, V, &lse);
        for (int64_t v = 0; v < V; v++) out[n * V + v] = (float)((double)in[n * V + v] - mx - lse);
    }
}
