/* llava.h — LLaVA-1.5 on CPU: image -> vision tower + projector -> image tokens
 * spliced into the LLaMA prompt -> answer. The high-level API the CLI (`ask`), the VQA
 * runner and the analysis passes build on.
 *
 * Pieces, each usable on its own (analysis code runs its own forwards with hooks):
 *   llava_load           both files; checks projector output width == LM width
 *   llava_encode_image   image file (or img_t) -> llava_image_t: [n_image][dim] LM-input
 *                        rows (the projector outputs) + the preprocessing geometry
 *   llava_build_prompt   question -> llava_prompt_t: ids with -1 in the image slots and
 *                        the image span [image_start, image_start + n_image), computed
 *                        from the tokenized template (never hard-coded)
 *   llava_prefill        resets the LM state and runs the prompt with the image rows
 *                        (lm_run_opts: hooks, attention bias, snapshot recording)
 *   llava_generate       continues from the prefilled state: sample up to n_predict
 *                        tokens, stop at EOS; per-token log-probabilities
 *   llava_ask            all of the above for one image and question
 * After llava_prefill, l->st holds the KV cache of the prompt and lm_state_logits(l->st)
 * the next-token logits at the last prompt position.
 *
 * Default model: llava_load with lm_path/mmproj_path NULL uses the shipped toy model
 * assets/model/llava-mech-toy-lm.gguf and assets/model/llava-mech-toy-mmproj.gguf,
 * searched (1) under the source tree the library was built from (LM_SOURCE_DIR) and
 * (2) relative to the running executable: <dir of /proc/self/exe>/../assets/model/.
 * ERR_NOTFOUND naming the places tried when neither exists.
 *
 * Ownership: llava_t owns everything it loads; llava_image_t, llava_prompt_t and
 * llava_answer_t own their arrays and are freed with their _free function (safe on a
 * zeroed struct). Nothing prints. */
#ifndef LLAVA_MECH_LLAVA_H
#define LLAVA_MECH_LLAVA_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/matmul.h"
#include "../vision/image.h"
#include "../vision/preprocess.h"
#include "../vision/vit.h"
#include "llama.h"
#include "sample.h"
#include "tok.h"

#define LLAVA_DEFAULT_LM "assets/model/llava-mech-toy-lm.gguf"
#define LLAVA_DEFAULT_MMPROJ "assets/model/llava-mech-toy-mmproj.gguf"
#define LLAVA_PATH_MAX 4096

typedef struct {
    const char *lm_path;     /* NULL: the shipped default model */
    const char *mmproj_path; /* NULL: the shipped default model */
    int n_threads;           /* <= 0: all online CPUs */
    pp_pipeline pipeline;    /* PP_PAD (default), PP_CROP or PP_LLAMACPP (vision/preprocess.h) */
    tpl_kind tpl;            /* TPL_LLAVA default */
    int64_t n_ctx;           /* <= 0: the LM's context_length */
    int64_t n_batch;         /* <= 0: whole context up to 1024 rows per chunk */
    bool exact;              /* f32 activations in decode GEMVs of quantized weights
                                (mm_ctx_set_exact); default: 8-bit, as llama.cpp */
    bool repack;             /* lm_model_repack after loading: faster decoding, slower
                                loading (ask sets it; the analysis commands, which
                                are prefill-bound, do not) */
    int max_side;            /* images wider or taller are refused; <= 0: IMG_MAX_SIDE */
} llava_params_t;

llava_params_t llava_default_params(void);

typedef struct {
    char lm_path[LLAVA_PATH_MAX];
    char mmproj_path[LLAVA_PATH_MAX];
    llava_params_t params;  /* paths point at the arrays above */
    mm_ctx_t *mm;           /* shared thread pool + matmul scratch */
    lm_model_t *lm;
    lm_state_t *st;         /* KV cache + activations, n_ctx positions */
    tok_t *tok;
    vit_t *vit;             /* vision tower + projector */
    vit_state_t vst;        /* its activations */
    float *pixels;          /* [3][S][S] preprocessing output, reused */
    int64_t n_image;        /* image tokens per image (grid * grid) */
    int grid;               /* image grid side */
    int image_size;         /* S of the S x S model image */
} llava_t;

err_code llava_load(llava_t **out, const llava_params_t *p, err_t *err);
void llava_free(llava_t *l);
/* Resolves the default model files (see the header comment) into lm/mmproj
 * (LLAVA_PATH_MAX bytes each). */
err_code llava_default_paths(char *lm, char *mmproj, err_t *err);

typedef struct {
    float *embd;  /* [n][dim] LM-input rows (projector outputs), owned */
    int64_t n;    /* = grid * grid */
    int grid;
    pp_geom geom; /* original image <-> model image <-> grid geometry */
    double ms;    /* preprocess + vision + projector time */
} llava_image_t;

err_code llava_encode_image(llava_t *l, const char *path, llava_image_t *out, err_t *err);
/* Loads an image file under the params' size limit (max_side), as llava_encode_image does. */
err_code llava_load_image(const llava_t *l, const char *path, img_t *out, err_t *err);
err_code llava_encode_img(llava_t *l, const img_t *img, llava_image_t *out, err_t *err);
/* Same with vision hooks (vit.h hook points: v.blk.L.*, mm.hidden, mm.out). */
err_code llava_encode_img_hooks(llava_t *l, const img_t *img, const hook_set_t *vhooks, llava_image_t *out,
                                err_t *err);
void llava_image_free(llava_image_t *im);

typedef struct {
    int32_t *ids;        /* [n], -1 in the image slots, owned */
    int64_t n;
    int64_t image_start; /* image span [image_start, image_start + n_image) */
    int64_t n_image;
} llava_prompt_t;

/* ERR_RANGE "prompt is N tokens (with K image tokens), context is M" when the prompt
 * does not leave room for at least one generated token. */
err_code llava_build_prompt(llava_t *l, const char *question, llava_prompt_t *out, err_t *err);
void llava_prompt_free(llava_prompt_t *p);

/* Resets l->st and prefills prompt + image rows. opts may be NULL. */
err_code llava_prefill(llava_t *l, const llava_prompt_t *prompt, const llava_image_t *image, const lm_run_opts *opts,
                       err_t *err);

typedef struct {
    int n_predict;          /* max new tokens (default 32) */
    sample_params_t sample; /* greedy by default */
    const lm_run_opts *opts;/* hooks etc. for prefill and every decoded token; NULL: none */
} llava_gen_params_t;

llava_gen_params_t llava_default_gen(void);

typedef struct {
    char *text;       /* decoded answer (EOS excluded, leading space stripped), valid
                         UTF-8: invalid byte sequences become U+FFFD; owned */
    int32_t *ids;     /* [n] generated tokens, EOS excluded */
    float *logprobs;  /* [n] log p(token) under the model (temperature 1, unfiltered) */
    int64_t n;
    bool eos;         /* stopped at EOS (else at n_predict or the context end) */
    float *first_logits; /* [n_vocab] logits at the last prompt position */
    int n_vocab;
    int64_t n_prompt, image_start, n_image;
    double ms_encode, ms_prefill, ms_decode;
} llava_answer_t;

/* Generates from the state llava_prefill left (or any state whose logits are current). */
err_code llava_generate(llava_t *l, const llava_gen_params_t *g, llava_answer_t *out, err_t *err);
/* Encode + prompt + prefill + generate. */
err_code llava_ask(llava_t *l, const char *image_path, const char *question, const llava_gen_params_t *g,
                   llava_answer_t *out, err_t *err);
void llava_answer_free(llava_answer_t *a);

#endif
