/* matmul.c — Y = X W^T (+ bias) for every quant.h type.
 *
 * n <= MM_GEMV_MAX (decoding): the rows of W are split across the pool and each row
 * is reduced against every row of X with a fused kernel, so the quantized bytes are
 * read once. For the quantized types the X rows are first quantized to 8 bits and
 * the dot is done in integers (ggml's vec_dot scheme, ~3x fewer instructions than
 * converting every weight to float, which is what keeps decoding memory-bound);
 * mm_ctx_set_exact(c, 1) selects the f32-activation kernels instead.
 *
 * n > MM_GEMV_MAX (prefill): W is cut into tiles of T rows, T a function of (m, k)
 * only. Each pool thread takes whole tiles, dequantizes a tile into its own slice of
 * the context's scratch (F32 weights are used in place) and calls single-threaded
 * cblas_sgemm for Y[:, tile]. OpenBLAS's result for a column depends on how the
 * N dimension is split across calls and threads (measured: 0.3.21 differs in the
 * last bits), so fixing the tiles and running each tile as one single-threaded call
 * is what makes the output independent of the thread count. It also overlaps one
 * thread's dequantization with the other's sgemm. */
#include "matmul.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "quant.h"
#include "quant_impl.h"

/* Largest n handled by the fused dot kernels: for n up to ~4 re-reading the
 * (cached) X rows per weight row is cheaper than dequantizing W to f32. */
#define MM_GEMV_MAX 4

/* Below this many multiply-adds waking the pool costs more than it saves; the
 * work split is the same either way, so the result does not change. */
#define MM_INLINE_MACS (1 << 17)

/* Target f32 bytes of one dequantized tile. Each tile is one sgemm call that packs
 * all of X again, so tiles must be tall: measured single-thread on Zen 5 with
 * OpenBLAS 0.3.21 (SkylakeX kernels), 600x4096x4096 reaches 88% of one plain sgemm
 * with 128-row tiles, 92% with 256, 96% with 512 and 98% with 1024 rows. 8 MiB
 * (512 rows at k = 4096) per thread still sits in L3. */
#define MM_TILE_BYTES (8u << 20)

struct mm_ctx {
    pool_t *pool;
    int nth;
    float *scratch; /* nth tiles of tile_cap floats */
    size_t tile_cap;
    int64_t tile_rows_override; /* 0 = automatic */
    int exact;                  /* 1: f32-activation dot kernels for n <= MM_GEMV_MAX */
    void *act;                  /* quantized X rows for the integer decode path */
    size_t act_cap;
};

err_code mm_ctx_create(mm_ctx_t **out, int n_threads, err_t *err) {
    *out = NULL;
    mm_ctx_t *c = calloc(1, sizeof *c);
    if (!c) return err_set(err, ERR_NOMEM, "matmul: out of memory");
    err_code rc = pool_create(&c->pool, n_threads, err);
    if (rc) {
        free(c);
        return rc;
    }
    c->nth = pool_size(c->pool);
    openblas_set_num_threads(c->nth);
    *out = c;
    return ERR_OK;
}

void mm_ctx_free(mm_ctx_t *c) {
    if (!c) return;
    pool_free(c->pool);
    free(c->scratch);
    free(c->act);
    free(c);
}

pool_t *mm_ctx_pool(mm_ctx_t *c) { return c->pool; }
int mm_ctx_threads(const mm_ctx_t *c) { return c->nth; }

void mm_ctx_set_exact(mm_ctx_t *c, int exact) { c->exact = exact != 0; }

void mm_ctx_set_tile_rows(mm_ctx_t *c, int64_t rows) { c->tile_rows_override = rows > 0 ? rows : 0; }

int64_t mm_tile_rows(int64_t m, int64_t k) {
    int64_t t = (int64_t)(MM_TILE_BYTES / sizeof(float)) / (k > 0 ? k : 1);
    if (t > 1024) t = 1024;
    /* at least 4 tiles when m allows, so 2 or 4 threads get equal shares */
    const int64_t quarter = (m + 3) / 4;
    if (t > quarter) t = quarter;
    t = (t + 15) / 16 * 16;
    if (t < 16) t = 16;
    return t < m ? t : m;
}

/* Bytes per row of W as stored (for a packed layout an average over a group). */
static size_t w_row_bytes(const tensor_t *W, int64_t k) {
    const qt_pack_traits *pt = qt_pack_get(W->layout);
    return pt ? qt_pack_group_bytes(pt, k) / 16 : qt_row_size(W->type, k);
}

/* Row stride of a dequantized prefill tile: 16 floats more than k. With k a multiple
 * of 1024 the rows would sit a multiple of 4 KB apart, all in the same L1 sets, and
 * the packed Q8_0 dequantization, which writes 16 rows at a time, ran 3x slower
 * (0.15 against 0.047 ns per weight). sgemm packs B itself, so the stride does not
 * change its results. */
static int64_t tile_ld(int64_t k) { return k + 16; }

/* mm_dequant_rows with row r at dst + (r - r0) ld. */
static void dequant_rows(const tensor_t *W, int64_t r0, int64_t nr, float *dst, int64_t ld) {
    const int64_t k = W->ne[0];
    const qt_pack_traits *pt = qt_pack_get(W->layout);
    if (pt) {
        const size_t group = qt_pack_group_bytes(pt, k);
        int64_t r = r0;
        for (; r % 16 == 0 && r + 16 <= r0 + nr; r += 16) /* whole groups: prefill's tiles */
            pt->group_to_float((const unsigned char *)W->data + (size_t)(r / 16) * group, dst + (r - r0) * ld, ld, k);
        for (; r < r0 + nr; r++)
            pt->row_to_float((const unsigned char *)W->data + (size_t)(r / 16) * group, (int)(r % 16),
                             dst + (r - r0) * ld, k);
        return;
    }
    const qt_traits *tr = qt_get(W->type);
    const size_t rs = qt_row_size(W->type, k);
    const unsigned char *src = (const unsigned char *)W->data + (size_t)r0 * rs;
    for (int64_t r = 0; r < nr; r++) tr->to_float(src + (size_t)r * rs, dst + r * ld, k);
}

void mm_dequant_rows(const tensor_t *W, int64_t r0, int64_t nr, float *dst) {
    dequant_rows(W, r0, nr, dst, W->ne[0]);
}

typedef struct {
    mm_ctx_t *c;
    float *Y;
    const float *X;
    int64_t n, k, m, tile;
    const tensor_t *W;
    const float *bias;
} mm_job;

/* One weight of a decode dispatch: its rows are cut into chunks of `rows`. */
typedef struct {
    float *Y;
    const unsigned char *w;
    const float *bias;
    int64_t m;
    size_t row_bytes;
    const qt_pack_traits *packed; /* a 16-row layout: rows go in groups of 16 */
    qt_dot_fn dot;                /* f32-activation kernel, when ik is NULL */
    const qt_int_kernel *ik;      /* integer kernel (for packed weights: non-NULL = integer path) */
    int64_t seg;                  /* inputs per prefetch step of the f32-activation path, */
    size_t seg_bytes;             /* and their bytes */
    const unsigned char *act;
    size_t act_bytes;
    int64_t rows;
    long chunk0; /* index of its first chunk in the dispatch */
} gemv_part;

typedef struct {
    gemv_part part[MM_MULTI_MAX];
    int count;
    const float *X;
    int64_t n, k;
} gemv_job;

/* Bytes ahead of the row being dotted that gemv_rows prefetches. The hardware
 * prefetchers alone left one Zen 5 core at 32-34 GB/s on Q8_0/Q4_K rows from DRAM
 * against ~42 GB/s for a plain read; fetching 8 KiB ahead gave 36-41 GB/s (1-16 KiB
 * measured, 4-16 KiB alike). */
#define MM_PREFETCH_BYTES 8192

/* The f32-activation path (F16/BF16/F32 weights, and --exact) dots each row in
 * segments of about MM_SEG_BYTES, each fetched MM_SEG_AHEAD bytes ahead just before
 * the segment before it is dotted. Fetching a whole row at its start (128 lines for
 * an F16 row of 4096) asks for more lines at once than a core keeps in flight: two
 * threads on a 0.6 GB F16 matrix ran at 0.73-0.81 of a plain read of it that way and
 * 0.95-1.02 in segments (F32: 0.78-0.89 -> 1.00-1.05; segments of 1-2 KB and 2-6 KB
 * ahead measured alike). A sum of segment dots is another summation order, fixed by
 * the shape, so results stay independent of the thread count. */
#define MM_SEG_BYTES 2048
#define MM_SEG_AHEAD 4096

/* Rows [lo, hi) of a packed weight, lo and hi multiples of 16. The packed
 * kernels prefetch for themselves. */
static void gemv_groups(const gemv_job *j, const gemv_part *p, int64_t lo, int64_t hi) {
    const qt_pack_traits *pt = p->packed;
    const size_t group = qt_pack_group_bytes(pt, j->k);
    void (*vdot)(const void *, const void *, int64_t, float *) = cpu_has_vnni() ? pt->vdot_vnni : pt->vdot_ref;
    float o[16];
    for (int64_t r0 = lo; r0 < hi; r0 += 16) {
        const unsigned char *g = p->w + (size_t)(r0 / 16) * group;
        for (int64_t i = 0; i < j->n; i++) {
            if (!p->ik) {
                for (int r = 0; r < 16; r++) o[r] = pt->row_dot(g, r, j->X + i * j->k, j->k);
            } else {
                vdot(g, p->act + (size_t)i * p->act_bytes, j->k, o);
            }
            float *y = p->Y + i * p->m + r0;
            for (int r = 0; r < 16; r++) y[r] = o[r] + (p->bias ? p->bias[r0 + r] : 0.0f);
        }
    }
}

static void gemv_rows(const gemv_job *j, const gemv_part *p, int64_t lo, int64_t hi) {
    if (p->packed) {
        gemv_groups(j, p, lo, hi);
        return;
    }
    const char *end = (const char *)p->w + (size_t)hi * p->row_bytes;
    for (int64_t r = lo; r < hi; r++) {
        const unsigned char *row = p->w + (size_t)r * p->row_bytes;
        const float b = p->bias ? p->bias[r] : 0.0f;
        if (p->ik) {
            const char *pf = (const char *)row + MM_PREFETCH_BYTES;
            const char *pf_end = pf + p->row_bytes < end ? pf + p->row_bytes : end;
            for (; pf < pf_end; pf += 64) __builtin_prefetch(pf, 0, 3);
            for (int64_t i = 0; i < j->n; i++)
                p->Y[i * p->m + r] = p->ik->vdot(row, p->act + (size_t)i * p->act_bytes, j->k) + b;
        } else {
            float acc[MM_GEMV_MAX] = {0};
            for (int64_t s0 = 0; s0 < j->k; s0 += p->seg) {
                const int64_t len = j->k - s0 < p->seg ? j->k - s0 : p->seg;
                const unsigned char *w = row + (size_t)(s0 / p->seg) * p->seg_bytes;
                const char *pf = (const char *)w + MM_SEG_AHEAD;
                const char *pf_end = pf + p->seg_bytes < end ? pf + p->seg_bytes : end;
                for (; pf < pf_end; pf += 64) __builtin_prefetch(pf, 0, 3);
                for (int64_t i = 0; i < j->n; i++) acc[i] += p->dot(w, j->X + i * j->k + s0, len);
            }
            for (int64_t i = 0; i < j->n; i++) p->Y[i * p->m + r] = acc[i] + b;
        }
    }
}

static void gemv_task(void *arg, long chunk) {
    const gemv_job *j = arg;
    int i = j->count - 1;
    while (i > 0 && chunk < j->part[i].chunk0) i--;
    const gemv_part *p = &j->part[i];
    const int64_t lo = (int64_t)(chunk - p->chunk0) * p->rows;
    gemv_rows(j, p, lo, lo + p->rows < p->m ? lo + p->rows : p->m);
}

static void gemm_worker(void *arg, int ith, int nth) {
    const mm_job *j = arg;
    const int64_t ntiles = (j->m + j->tile - 1) / j->tile;
    long t0, t1;
    pool_split((long)ntiles, ith, nth, &t0, &t1);
    float *scratch = j->c->scratch ? j->c->scratch + (size_t)ith * j->c->tile_cap : NULL;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t r0 = t * j->tile;
        const int64_t nr = j->m - r0 < j->tile ? j->m - r0 : j->tile;
        const float *B;
        int64_t ldb = j->k;
        if (j->W->type == QT_F32) {
            B = (const float *)j->W->data + r0 * j->k;
        } else {
            ldb = tile_ld(j->k);
            dequant_rows(j->W, r0, nr, scratch, ldb);
            B = scratch;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->n, (int)nr, (int)j->k, 1.0f,
                    j->X, (int)j->k, B, (int)ldb, 0.0f, j->Y + r0, (int)j->m);
        if (j->bias)
            for (int64_t i = 0; i < j->n; i++) {
                float *y = j->Y + i * j->m + r0;
                for (int64_t r = 0; r < nr; r++) y[r] += j->bias[r0 + r];
            }
    }
}

/* Checks W against k; *m_out = its row count. */
static err_code check_weight(const tensor_t *W, int64_t k, int64_t n, int64_t *m_out, err_t *err) {
    const char *name = W->name ? W->name : "(unnamed)";
    if (W->ne[0] != k)
        return err_set(err, ERR_MISMATCH, "matmul: tensor %s: has %lld inputs per row, input has %lld",
                       name, (long long)W->ne[0], (long long)k);
    const qt_traits *tr = qt_get(W->type);
    if (!tr) return err_set(err, ERR_UNSUPPORTED, "matmul: tensor %s: unsupported type %d", name, W->type);
    if (k <= 0 || k % tr->block_size || k > 0x7fffffff)
        return err_set(err, ERR_MISMATCH, "matmul: tensor %s: row length %lld is not a positive multiple of %s's block size %d",
                       name, (long long)k, tr->name, tr->block_size);
    const int64_t m = W->ne[1] * W->ne[2] * W->ne[3];
    const size_t rs = w_row_bytes(W, k);
    const qt_pack_traits *pt = qt_pack_get(W->layout);
    if (W->layout != TENSOR_ROWS && (!pt || W->type != pt->type || m % 16 || k % pt->k_block))
        return err_set(err, ERR_MISMATCH, "matmul: tensor %s: layout %d does not fit a %s weight of %lld x %lld",
                       name, W->layout, tr->name, (long long)m, (long long)k);
    if (m <= 0 || m > 0x7fffffff || n < 0 || n > 0x7fffffff)
        return err_set(err, ERR_RANGE, "matmul: tensor %s: shape %lld x %lld x %lld out of range", name,
                       (long long)n, (long long)m, (long long)k);
    if (W->nbytes && W->nbytes < (size_t)m * rs)
        return err_set(err, ERR_MISMATCH, "matmul: tensor %s: %zu bytes, its shape needs %zu", name,
                       W->nbytes, (size_t)m * rs);
    if (n > 0 && !W->data) return err_set(err, ERR_ARG, "matmul: tensor %s: no data", name);
    *m_out = m;
    return ERR_OK;
}

/* Weight bytes per claimed chunk of a decode dispatch: large enough that the
 * compare-and-swap of a claim (~100 ns when the line moves between cores) is
 * ~1% of the ~6 us the chunk takes to stream, small enough that the threads
 * finish within one chunk of each other and a 4096 x 4096 Q4_K matrix still
 * makes 36 chunks. */
#define MM_CHUNK_BYTES (256u << 10)

/* Decoding: all rows of out[0..count) in one dispatch, X quantized once per
 * activation kind (8-bit blocks of 32 or 256; see quant_impl.h). */
static err_code gemv_multi(mm_ctx_t *c, const float *X, int64_t n, int64_t k, const mm_out_t *out,
                           const int64_t *ms, int count, err_t *err) {
    gemv_job j;
    memset(&j, 0, sizeof j);
    j.count = count;
    j.X = X;
    j.n = n;
    j.k = k;
    /* one quantized copy of X per activation kind in use */
    size_t off[QT_ACT_COUNT] = {0}, need = 0;
    int used[QT_ACT_COUNT] = {0};
    qt_act_kind kinds[MM_MULTI_MAX];
    for (int i = 0; i < count; i++) {
        const qt_int_kernel *ik = c->exact ? NULL : qt_int_get(out[i].W->type);
        j.part[i].packed = qt_pack_get(out[i].W->layout);
        /* a packed layout's kernels take their own activations, whatever the CPU level */
        kinds[i] = !ik ? QT_ACT_NONE : j.part[i].packed ? j.part[i].packed->act : ik->act;
        if (ik && qt_act_row_size(kinds[i], k) == 0) ik = NULL; /* k not a multiple of the activation block */
        j.part[i].ik = ik;
        if (ik && !used[kinds[i]]) {
            used[kinds[i]] = 1;
            off[kinds[i]] = need;
            need += qt_act_row_size(kinds[i], k) * (size_t)n;
        }
    }
    if (need > c->act_cap) {
        void *a = malloc(need);
        if (!a) return err_set(err, ERR_NOMEM, "matmul: out of memory");
        free(c->act);
        c->act = a;
        c->act_cap = need;
    }
    for (int kind = 1; kind < QT_ACT_COUNT; kind++)
        if (used[kind]) {
            const size_t ab = qt_act_row_size((qt_act_kind)kind, k);
            for (int64_t i = 0; i < n; i++)
                qt_quantize_act((qt_act_kind)kind, X + i * k, (unsigned char *)c->act + off[kind] + (size_t)i * ab, k);
        }
    long chunks = 0;
    int64_t macs = 0;
    for (int i = 0; i < count; i++) {
        gemv_part *p = &j.part[i];
        p->Y = out[i].Y;
        p->w = out[i].W->data;
        p->bias = out[i].bias;
        p->m = ms[i];
        p->row_bytes = w_row_bytes(out[i].W, k);
        const qt_traits *tr = qt_get(out[i].W->type);
        p->dot = tr->dot;
        const size_t seg_blocks = MM_SEG_BYTES / tr->type_size > 0 ? MM_SEG_BYTES / tr->type_size : 1;
        p->seg = (int64_t)seg_blocks * tr->block_size;
        p->seg_bytes = seg_blocks * tr->type_size;
        if (p->ik) {
            p->act_bytes = qt_act_row_size(kinds[i], k);
            p->act = (const unsigned char *)c->act + off[kinds[i]];
        }
        p->rows = (int64_t)(MM_CHUNK_BYTES / p->row_bytes);
        if (p->packed) p->rows -= p->rows % 16;
        if (p->rows < (p->packed ? 16 : 1)) p->rows = p->packed ? 16 : 1;
        p->chunk0 = chunks;
        chunks += (long)((p->m + p->rows - 1) / p->rows);
        macs += n * p->m * k;
    }
    if (macs < MM_INLINE_MACS || c->nth == 1) {
        for (int i = 0; i < count; i++) gemv_rows(&j, &j.part[i], 0, j.part[i].m);
    } else {
        pool_for(c->pool, chunks, gemv_task, &j);
    }
    return ERR_OK;
}

static err_code gemm(mm_ctx_t *c, float *Y, const float *X, int64_t n, int64_t k, int64_t m, const tensor_t *W,
                     const float *bias, err_t *err) {
    mm_job j = {c, Y, X, n, k, m, 0, W, bias};
    j.tile = c->tile_rows_override ? c->tile_rows_override : mm_tile_rows(m, k);
    if (j.tile > m) j.tile = m;
    if (W->type != QT_F32) {
        const size_t need = (size_t)j.tile * (size_t)tile_ld(k);
        if (need > c->tile_cap) {
            /* grows only when a larger shape first appears, never in steady state */
            float *s = malloc((size_t)c->nth * need * sizeof(float));
            if (!s) return err_set(err, ERR_NOMEM, "matmul: out of memory for a %lld x %lld tile", (long long)j.tile, (long long)k);
            free(c->scratch);
            c->scratch = s;
            c->tile_cap = need;
        }
    }
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    if (n * m * k < MM_INLINE_MACS) gemm_worker(&j, 0, 1);
    else pool_run(c->pool, gemm_worker, &j);
    openblas_set_num_threads(saved);
    return ERR_OK;
}

err_code mm_linear(mm_ctx_t *c, float *Y, const float *X, int64_t n, int64_t k, const tensor_t *W,
                   const float *bias, err_t *err) {
    mm_out_t o = {Y, W, bias};
    return mm_linear_multi(c, X, n, k, &o, 1, err);
}

err_code mm_linear_multi(mm_ctx_t *c, const float *X, int64_t n, int64_t k, const mm_out_t *out, int count,
                         err_t *err) {
    if (count < 1 || count > MM_MULTI_MAX)
        return err_set(err, ERR_ARG, "matmul: %d weights in one call (1..%d)", count, MM_MULTI_MAX);
    int64_t ms[MM_MULTI_MAX];
    for (int i = 0; i < count; i++) {
        err_code rc = check_weight(out[i].W, k, n, &ms[i], err);
        if (rc) return rc;
    }
    if (n == 0) return ERR_OK;
    if (n <= MM_GEMV_MAX) return gemv_multi(c, X, n, k, out, ms, count, err);
    for (int i = 0; i < count; i++) {
        err_code rc = gemm(c, out[i].Y, X, n, k, ms[i], out[i].W, out[i].bias, err);
        if (rc) return rc;
    }
    return ERR_OK;
}

size_t mm_pack_size(const tensor_t *W) {
    const char *off = getenv("LLAVA_MECH_NO_REPACK");
    if (off && strcmp(off, "0") != 0) return 0;
    const qt_pack_traits *pt = qt_pack_for_type(W->type);
    const int64_t k = W->ne[0], m = W->ne[1] * W->ne[2] * W->ne[3];
    if (!pt || W->layout != TENSOR_ROWS || !W->data || k <= 0 || k % pt->k_block || m <= 0 || m % 16 ||
        !cpu_has_vnni())
        return 0;
    return (size_t)(m / 16) * qt_pack_group_bytes(pt, k);
}

typedef struct {
    const qt_pack_traits *pt;
    const unsigned char *src;
    unsigned char *dst;
    int64_t k;
    size_t rs, group;
} pack_job;

static void pack_task(void *arg, long g) {
    const pack_job *j = arg;
    j->pt->pack_group(j->src + (size_t)g * 16 * j->rs, j->rs, j->dst + (size_t)g * j->group, j->k);
}

void mm_pack(tensor_t *dst, const tensor_t *W, void *buf, pool_t *pool) {
    const qt_pack_traits *pt = qt_pack_for_type(W->type);
    const int64_t k = W->ne[0], m = W->ne[1] * W->ne[2] * W->ne[3];
    pack_job j = {pt, W->data, buf, k, qt_row_size(W->type, k), qt_pack_group_bytes(pt, k)};
    if (pool) pool_for(pool, (long)(m / 16), pack_task, &j);
    else
        for (long g = 0; g < m / 16; g++) pack_task(&j, g);
    *dst = *W;
    dst->data = buf;
    dst->nbytes = (size_t)(m / 16) * j.group;
    dst->layout = pt->layout;
}
