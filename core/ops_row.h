/* ops_row.h — internal to the ops module: the row kernels of the attention softmax
 * and its backward, with AVX-512 / AVX2 versions chosen at run time (cpu.h) and a
 * portable fallback. All versions compute exp with the same Cephes-style polynomial
 * (range reduction to |r| <= ln2/2, degree-7 polynomial, ~1 ulp on [-87.3, 0];
 * exp(x) for x < -87.33 is flushed to 0), so they differ only in summation order.
 * Results never depend on the thread count. */
#ifndef LLAVA_MECH_OPS_ROW_H
#define LLAVA_MECH_OPS_ROW_H

#include <stdint.h>

/* Adds bias (may be NULL) into s[0..n) and returns max(s) (-INFINITY when n == 0). */
float ops_row_add_max(float *s, const float *bias, int64_t n);
/* s[j] = exp(s[j] - mx) for j < n; returns the sum of the new values. */
float ops_row_exp_sum(float *s, int64_t n, float mx);
void ops_row_scale(float *s, int64_t n, float c);
float ops_row_dot(const float *a, const float *b, int64_t n);
/* Softmax backward in place: d[j] = c * p[j] * (d[j] - dot). */
void ops_row_softmax_bwd(float *d, const float *p, int64_t n, float dot, float c);
/* y[j] = exp(x[j]) (y may alias x); used by the sigmoid-based activations. */
void ops_row_exp(float *y, const float *x, int64_t n);
/* s[j] = sigmoid(k x[j]) = 1/(1+exp(-k x)), as (k x >= 0 ? 1 : e)/(1 + e) with
 * e = exp(-|k x|), which never overflows (s may alias x). */
void ops_row_sigmoid(float *s, const float *x, float k, int64_t n);
/* The portable scalar exp all versions agree with (up to fma rounding). */
float ops_row_exp1(float x);

/* One query row against a slice of a key/value cache (decoding). The slice holds
 * nh / G key/value heads of hd floats at the start of each cache row, rows ld floats
 * apart; query head h (q + h hd) reads key/value head h / G, so G consecutive query
 * heads share one (grouped-query attention; G = 1 is plain multi-head). Each cache row
 * is read once for all the heads.
 * ops_row_qk_heads: s[h ss + j] = c * dot(q + h hd, k + j ld + (h / G) hd) for j < n.
 * ops_row_pv_heads: o[h hd .. h hd + hd) = sum over j < n of p[h ss + j] * (v + j ld +
 * (h / G) hd)[0..hd). nh must be a multiple of G. */
void ops_row_qk_heads(float *s, int64_t ss, const float *q, int nh, int G, const float *k, int64_t ld, int64_t n,
                      int hd, float c);
void ops_row_pv_heads(float *o, const float *p, int64_t ss, int nh, int G, const float *v, int64_t ld, int64_t n,
                      int hd);

/* The per-ISA implementations behind the dispatch (same contracts). */
void ops_row_qk_heads_avx512(float *s, int64_t ss, const float *q, int nh, int G, const float *k, int64_t ld,
                             int64_t n, int hd, float c);
void ops_row_pv_heads_avx512(float *o, const float *p, int64_t ss, int nh, int G, const float *v, int64_t ld,
                             int64_t n, int hd);
float ops_row_add_max_avx512(float *s, const float *bias, int64_t n);
float ops_row_exp_sum_avx512(float *s, int64_t n, float mx);
void ops_row_scale_avx512(float *s, int64_t n, float c);
float ops_row_dot_avx512(const float *a, const float *b, int64_t n);
void ops_row_softmax_bwd_avx512(float *d, const float *p, int64_t n, float dot, float c);
void ops_row_exp_avx512(float *y, const float *x, int64_t n);
void ops_row_sigmoid_avx512(float *s, const float *x, float k, int64_t n);
float ops_row_add_max_avx2(float *s, const float *bias, int64_t n);
float ops_row_exp_sum_avx2(float *s, int64_t n, float mx);
void ops_row_scale_avx2(float *s, int64_t n, float c);
float ops_row_dot_avx2(const float *a, const float *b, int64_t n);
void ops_row_softmax_bwd_avx2(float *d, const float *p, int64_t n, float dot, float c);
void ops_row_exp_avx2(float *y, const float *x, int64_t n);
void ops_row_sigmoid_avx2(float *s, const float *x, float k, int64_t n);

/* One row of LayerNorm / RMSNorm (same math as the portable loops in ops.c; only
 * AVX-512 has its own version, other levels use the portable code). */
void ops_ln_row_fwd_avx512(float *y, const float *x, const float *w, const float *b, int64_t C, float eps,
                           float *mean, float *rstd);
void ops_ln_row_bwd_avx512(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                           float mean, float rstd, int64_t C);
void ops_rms_row_fwd_avx512(float *y, const float *x, const float *w, int64_t C, float eps, float *rstd);
void ops_rms_row_bwd_avx512(float *dx, float *dw, const float *dy, const float *x, const float *w, float rstd,
                            int64_t C);

/* Portable exp-and-sum, used by the AVX2 kernels for their last n % 8 elements. */
float ops_row_exp_tail(float *s, int64_t n, float mx);

/* Cephes expf constants (S. Moshier, Cephes Math Library, expf.c). */
#define OPS_EXP_LO (-87.33654f) /* ln(2^-126): below, the result would be denormal */
#define OPS_EXP_HI 88.3762626647949f
#define OPS_LOG2E 1.44269504088896341f
#define OPS_EXP_C1 0.693359375f
#define OPS_EXP_C2 (-2.12194440e-4f)
#define OPS_EXP_P0 1.9875691500E-4f
#define OPS_EXP_P1 1.3981999507E-3f
#define OPS_EXP_P2 8.3334519073E-3f
#define OPS_EXP_P3 4.1665795894E-2f
#define OPS_EXP_P4 1.6666665459E-1f
#define OPS_EXP_P5 5.0000001201E-1f

#endif
