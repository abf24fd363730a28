#include "sample.h"

#include <math.h>
#include <stdlib.h>

err_code sampler_create(sampler_t *s, int n_vocab, sample_params_t p, err_t *err) {
    s->p = p;
    s->rng = p.seed;
    s->n_vocab = n_vocab;
    s->cand = NULL;
    if (!(p.temp >= 0.0f) || p.top_k < 0 || !(p.top_p > 0.0f && p.top_p <= 1.0f) || n_vocab <= 0)
        return err_set(err, ERR_ARG, "sampler: bad parameters (temp %g, top-k %d, top-p %g, vocabulary %d)",
                       (double)p.temp, p.top_k, (double)p.top_p, n_vocab);
    s->cand = malloc(sizeof(sample_cand_t) * (size_t)n_vocab);
    if (!s->cand) return err_set(err, ERR_NOMEM, "sampler: cannot allocate for %d tokens", n_vocab);
    return ERR_OK;
}

void sampler_free(sampler_t *s) {
    free(s->cand);
    s->cand = NULL;
}

int32_t sample_argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* splitmix64 (Steele, Lea, Flood 2014): one 64-bit state, full period. */
double sampler_uniform(sampler_t *s) {
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Descending logit, ascending id on ties: a total order, so the result does not
 * depend on qsort's (unstable) algorithm. */
static int cmp_desc(const void *a, const void *b) {
    const sample_cand_t *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int32_t sampler_next(sampler_t *s, const float *logits) {
    const int n = s->n_vocab;
    if (s->p.temp <= 0.0f) return sample_argmax(logits, n);
    sample_cand_t *c = s->cand;
    for (int i = 0; i < n; i++) {
        c[i].v = logits[i];
        c[i].id = i;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_desc);
    int m = (s->p.top_k > 0 && s->p.top_k < n) ? s->p.top_k : n;
    /* softmax(logit / T) over the kept candidates, max-subtracted for stability */
    const double inv_t = 1.0 / s->p.temp, mx = c[0].v;
    double sum = 0.0;
    for (int i = 0; i < m; i++) {
        double e = exp(((double)c[i].v - mx) * inv_t);
        c[i].v = (float)e;
        sum += e;
    }
    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += c[i].v / sum;
            if (cum >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        m = keep;
        sum = 0.0;
        for (int i = 0; i < m; i++) sum += c[i].v;
    }
    double r = sampler_uniform(s) * sum, acc = 0.0;
    for (int i = 0; i < m; i++) {
        acc += c[i].v;
        if (r < acc) return c[i].id;
    }
    return c[m - 1].id;
}
