/* llava.c — LLaVA glue: vision tokens spliced into the LLaMA prompt. */
#include "llava.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

llava_params_t llava_default_params(void) {
    llava_params_t p = {0};
    p.pipeline = PP_PAD;
    p.tpl = TPL_LLAVA;
    return p;
}

llava_gen_params_t llava_default_gen(void) {
    llava_gen_params_t g = {.n_predict = 32, .sample = sample_defaults(), .opts = NULL};
    return g;
}

static bool readable(const char *path) { return access(path, R_OK) == 0; }

static bool join(char *out, const char *dir, const char *rel) {
    int n = snprintf(out, LLAVA_PATH_MAX, "%s/%s", dir, rel);
    return n > 0 && n < LLAVA_PATH_MAX;
}

err_code llava_default_paths(char *lm, char *mmproj, err_t *err) {
    /* (1) the source tree the library was built from */
#ifdef LM_SOURCE_DIR
    if (join(lm, LM_SOURCE_DIR, LLAVA_DEFAULT_LM) && join(mmproj, LM_SOURCE_DIR, LLAVA_DEFAULT_MMPROJ) &&
        readable(lm) && readable(mmproj))
        return ERR_OK;
#define LLAVA_SRC_DIR LM_SOURCE_DIR
#else
#define LLAVA_SRC_DIR "(no source dir)"
#endif
    /* (2) next to the executable: <exe dir>/../assets/model (a build dir inside the
     * tree, or an install prefix with bin/ and assets/) */
    char exe[LLAVA_PATH_MAX], dir[LLAVA_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        int k = snprintf(dir, sizeof dir, "%s/..", exe);
        if (k > 0 && k < (int)sizeof dir && join(lm, dir, LLAVA_DEFAULT_LM) && join(mmproj, dir, LLAVA_DEFAULT_MMPROJ) &&
            readable(lm) && readable(mmproj))
            return ERR_OK;
    } else {
        snprintf(dir, sizeof dir, "(unknown executable dir)");
    }
    return err_set(err, ERR_NOTFOUND,
                   "no default model: %s and %s not found under %s nor %s; pass -m LM.gguf --mmproj MMPROJ.gguf",
                   LLAVA_DEFAULT_LM, LLAVA_DEFAULT_MMPROJ, LLAVA_SRC_DIR, dir);
}

err_code llava_load(llava_t **out, const llava_params_t *p, err_t *err) {
    *out = NULL;
    llava_t *l = calloc(1, sizeof *l);
    if (!l) return err_set(err, ERR_NOMEM, "out of memory for the model");
    err_code rc = ERR_OK;
    l->params = *p;
    if (!p->lm_path || !p->mmproj_path) {
        char lm[LLAVA_PATH_MAX], mp[LLAVA_PATH_MAX];
        if ((rc = llava_default_paths(lm, mp, err))) goto fail;
        snprintf(l->lm_path, sizeof l->lm_path, "%s", p->lm_path ? p->lm_path : lm);
        snprintf(l->mmproj_path, sizeof l->mmproj_path, "%s", p->mmproj_path ? p->mmproj_path : mp);
    } else {
        snprintf(l->lm_path, sizeof l->lm_path, "%s", p->lm_path);
        snprintf(l->mmproj_path, sizeof l->mmproj_path, "%s", p->mmproj_path);
    }
    l->params.lm_path = l->lm_path;
    l->params.mmproj_path = l->mmproj_path;
    if ((rc = mm_ctx_create(&l->mm, p->n_threads, err))) goto fail;
    mm_ctx_set_exact(l->mm, p->exact ? 1 : 0);
    if ((rc = lm_model_load(&l->lm, l->lm_path, err))) goto fail;
    if (p->repack && (rc = lm_model_repack(l->lm, mm_ctx_pool(l->mm), err))) goto fail;
    if ((rc = tok_load(&l->tok, l->lm->gguf, err))) {
        err_prefix(err, "%s", l->lm_path);
        goto fail;
    }
    if (tok_n_vocab(l->tok) != l->lm->cfg.n_vocab) {
        rc = err_set(err, ERR_MISMATCH, "%s: vocabulary has %d tokens but token_embd.weight has %d rows", l->lm_path,
                     tok_n_vocab(l->tok), l->lm->cfg.n_vocab);
        goto fail;
    }
    if ((rc = vit_load(&l->vit, l->mmproj_path, err))) goto fail;
    const vit_config *vc = vit_get_config(l->vit);
    if (vc->d_out != l->lm->cfg.dim) {
        rc = err_set(err, ERR_MISMATCH,
                     "%s: projector outputs %d-wide image tokens but %s embeds tokens %d wide (not a pair)",
                     l->mmproj_path, vc->d_out, l->lm_path, l->lm->cfg.dim);
        goto fail;
    }
    l->n_image = vc->n_patches;
    l->grid = vc->grid;
    l->image_size = vc->image_size;
    int64_t n_ctx = p->n_ctx > 0 ? p->n_ctx : l->lm->cfg.n_ctx_train;
    int64_t n_batch = p->n_batch > 0 ? p->n_batch : (n_ctx < 1024 ? n_ctx : 1024);
    l->params.n_ctx = n_ctx;
    l->params.n_batch = n_batch;
    if ((rc = lm_state_create(&l->st, l->lm, l->mm, n_ctx, n_batch, err))) goto fail;
    if ((rc = vit_state_create(&l->vst, l->vit, err))) goto fail;
    l->pixels = malloc(sizeof(float) * 3 * (size_t)vc->image_size * (size_t)vc->image_size);
    if (!l->pixels) {
        rc = err_set(err, ERR_NOMEM, "out of memory for the image");
        goto fail;
    }
    *out = l;
    return ERR_OK;
fail:
    llava_free(l);
    return rc;
}

void llava_free(llava_t *l) {
    if (!l) return;
    free(l->pixels);
    if (l->vit) {
        vit_state_free(&l->vst);
        vit_free(l->vit);
    }
    lm_state_free(l->st);
    tok_free(l->tok);
    lm_model_free(l->lm);
    mm_ctx_free(l->mm);
    free(l);
}

/* ------------------------------------------------------------------ image */

err_code llava_encode_img_hooks(llava_t *l, const img_t *img, const hook_set_t *vhooks, llava_image_t *out,
                                err_t *err) {
    memset(out, 0, sizeof *out);
    double t0 = now_ms();
    const vit_config *vc = vit_get_config(l->vit);
    err_code rc = pp_run(img, l->params.pipeline, vc->image_size, vc->patch_size, vc->image_mean, vc->image_std,
                         l->pixels, &out->geom, err);
    if (rc) return rc;
    out->embd = malloc(sizeof(float) * (size_t)l->n_image * (size_t)l->lm->cfg.dim);
    if (!out->embd) return err_set(err, ERR_NOMEM, "out of memory for %lld image tokens", (long long)l->n_image);
    if ((rc = vit_forward(l->vit, &l->vst, l->mm, l->pixels, vhooks, out->embd, err))) {
        llava_image_free(out);
        return rc;
    }
    out->n = l->n_image;
    out->grid = l->grid;
    out->ms = now_ms() - t0;
    return ERR_OK;
}

err_code llava_encode_img(llava_t *l, const img_t *img, llava_image_t *out, err_t *err) {
    return llava_encode_img_hooks(l, img, NULL, out, err);
}

err_code llava_load_image(const llava_t *l, const char *path, img_t *out, err_t *err) {
    const img_opts io = {.max_w = l->params.max_side, .max_h = l->params.max_side};
    return img_load(out, path, &io, err);
}

err_code llava_encode_image(llava_t *l, const char *path, llava_image_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    img_t img = {0};
    double t0 = now_ms();
    err_code rc = llava_load_image(l, path, &img, err);
    if (rc) return rc;
    rc = llava_encode_img(l, &img, out, err);
    img_free(&img);
    if (rc) return err_prefix(err, "%s", path);
    out->ms = now_ms() - t0;
    return ERR_OK;
}

void llava_image_free(llava_image_t *im) {
    free(im->embd);
    im->embd = NULL;
    im->n = 0;
}

/* ----------------------------------------------------------------- prompt */

err_code llava_build_prompt(llava_t *l, const char *question, llava_prompt_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    /* SentencePiece emits at most one token per byte (byte fallback) plus the dummy
     * prefix; the templates add a bounded number of role/system tokens. */
    const int64_t cap = l->n_image + (int64_t)strlen(question) + 1024;
    out->ids = malloc(sizeof(int32_t) * (size_t)cap);
    if (!out->ids) return err_set(err, ERR_NOMEM, "out of memory for the prompt");
    err_code rc = tpl_build(l->tok, l->params.tpl, question, l->n_image, out->ids, cap, &out->n, &out->image_start,
                            err);
    if (rc) {
        llava_prompt_free(out);
        return rc;
    }
    out->n_image = l->n_image;
    const int64_t n_ctx = l->st->n_ctx;
    if (out->n + 1 > n_ctx) {
        int64_t n = out->n;
        llava_prompt_free(out);
        return err_set(err, ERR_RANGE,
                       "prompt is %lld tokens (with %lld image tokens), context is %lld: no room to answer",
                       (long long)n, (long long)l->n_image, (long long)n_ctx);
    }
    return ERR_OK;
}

void llava_prompt_free(llava_prompt_t *p) {
    free(p->ids);
    p->ids = NULL;
    p->n = 0;
}

err_code llava_prefill(llava_t *l, const llava_prompt_t *prompt, const llava_image_t *image, const lm_run_opts *opts,
                       err_t *err) {
    if (image && image->n != prompt->n_image)
        return err_set(err, ERR_MISMATCH, "prompt has %lld image slots but the image has %lld tokens",
                       (long long)prompt->n_image, (long long)image->n);
    lm_state_set_pos(l->st, 0);
    lm_input_t in = {.ids = prompt->ids, .n = prompt->n, .embd = image ? image->embd : NULL,
                     .n_embd = image ? image->n : 0};
    return lm_prefill(l->st, &in, opts, err);
}

/* ----------------------------------------------------------------- answer */

static float log_prob(const float *logits, int n, int32_t tok) {
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((double)(logits[i] - mx));
    return (float)((double)(logits[tok] - mx) - log(s));
}

err_code llava_generate(llava_t *l, const llava_gen_params_t *g, llava_answer_t *out, err_t *err) {
    const int V = l->lm->cfg.n_vocab;
    const int n_max = g->n_predict > 0 ? g->n_predict : 0;
    memset(out, 0, sizeof *out);
    out->n_vocab = V;
    out->ids = malloc(sizeof(int32_t) * (size_t)(n_max + 1));
    out->logprobs = malloc(sizeof(float) * (size_t)(n_max + 1));
    out->first_logits = malloc(sizeof(float) * (size_t)V);
    if (!out->ids || !out->logprobs || !out->first_logits) return err_set(err, ERR_NOMEM, "out of memory for the answer");
    memcpy(out->first_logits, lm_state_logits(l->st), sizeof(float) * (size_t)V);
    sampler_t smp;
    err_code rc = sampler_create(&smp, V, g->sample, err);
    if (rc) return rc;
    const int32_t eos = tok_eos(l->tok);
    double t0 = now_ms();
    for (int i = 0; i < n_max; i++) {
        const float *logits = lm_state_logits(l->st);
        int32_t t = sampler_next(&smp, logits);
        if (t == eos) {
            out->eos = true;
            break;
        }
        out->ids[out->n] = t;
        out->logprobs[out->n] = log_prob(logits, V, t);
        out->n++;
        if (i + 1 == n_max || lm_state_pos(l->st) >= l->st->n_ctx) break;
        if ((rc = lm_decode(l->st, t, g->opts, err))) break;
    }
    sampler_free(&smp);
    out->ms_decode = now_ms() - t0;
    if (rc) return rc;
    size_t cap = 64 + 32 * (size_t)out->n, len = 0;
    for (;;) {
        free(out->text);
        out->text = malloc(cap);
        if (!out->text) return err_set(err, ERR_NOMEM, "out of memory for the answer text");
        rc = tok_decode(l->tok, out->ids, out->n, true, out->text, cap, &len, err);
        if (rc != ERR_RANGE || cap > ((size_t)1 << 30)) break;
        cap *= 4;
    }
    if (rc) return rc;
    char *clean = malloc(3 * len + 1);
    if (!clean) return err_set(err, ERR_NOMEM, "out of memory for the answer text");
    tok_utf8_sanitize(out->text, len, clean);
    free(out->text);
    out->text = clean;
    return ERR_OK;
}

err_code llava_ask(llava_t *l, const char *image_path, const char *question, const llava_gen_params_t *g,
                   llava_answer_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    llava_image_t im;
    llava_prompt_t pr;
    err_code rc = llava_encode_image(l, image_path, &im, err);
    if (rc) return rc;
    if ((rc = llava_build_prompt(l, question, &pr, err))) {
        llava_image_free(&im);
        return rc;
    }
    double t0 = now_ms();
    rc = llava_prefill(l, &pr, &im, g->opts, err);
    double ms_prefill = now_ms() - t0;
    if (!rc) rc = llava_generate(l, g, out, err);
    out->ms_encode = im.ms;
    out->ms_prefill = ms_prefill;
    out->n_prompt = pr.n;
    out->image_start = pr.image_start;
    out->n_image = pr.n_image;
    llava_image_free(&im);
    llava_prompt_free(&pr);
    return rc;
}

void llava_answer_free(llava_answer_t *a) {
    free(a->text);
    free(a->ids);
    free(a->logprobs);
    free(a->first_logits);
    memset(a, 0, sizeof *a);
}
