/* tok.h — SentencePiece-BPE tokenizer from a GGUF vocabulary (tokenizer.ggml.model =
 * "llama"), and the LLaVA prompt templates.
 *
 * Encoding follows SentencePiece BPE: spaces become U+2581, a dummy prefix U+2581 is
 * prepended to the text, pieces merge by score (highest first, leftmost on ties),
 * and any byte that no piece covers falls back to its <0xNN> piece. Special/control
 * tokens are never produced from text; the template places them. Decoding
 * reassembles byte pieces into UTF-8 and strips the leading space of the first piece.
 * Invalid UTF-8 input is ERR_FORMAT. */
#ifndef LLAVA_MECH_TOK_H
#define LLAVA_MECH_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/gguf.h"

typedef struct tok tok_t;

err_code tok_load(tok_t **out, const gguf_t *g, err_t *err);
void tok_free(tok_t *t);

int32_t tok_n_vocab(const tok_t *t);
int32_t tok_bos(const tok_t *t);
int32_t tok_eos(const tok_t *t);
bool tok_add_bos(const tok_t *t); /* tokenizer.ggml.add_bos_token (default true) */
/* The piece's bytes as stored in the vocabulary (with U+2581 for space). */
const char *tok_piece(const tok_t *t, int32_t id, size_t *len);
/* Exact piece lookup (e.g. "<image>", "</s>"); -1 when absent. */
int32_t tok_find(const tok_t *t, const char *piece, size_t len);

/* Encodes len bytes of text. Writes at most cap ids; *n_out is the full count (an
 * ERR_RANGE when it exceeds cap). BOS first when add_bos. */
err_code tok_encode(const tok_t *t, const char *text, size_t len, bool add_bos, int32_t *ids, int64_t cap,
                    int64_t *n_out, err_t *err);
/* Decodes ids into buf (NUL-terminated; ERR_RANGE when cap is too small). Special
 * tokens (BOS/EOS/control) decode to nothing. strip_leading: drop the first piece's
 * leading space as SentencePiece does for a whole text. */
err_code tok_decode(const tok_t *t, const int32_t *ids, int64_t n, bool strip_leading, char *buf, size_t cap,
                    size_t *len_out, err_t *err);

/* LLaVA prompt templates:
 *   TPL_LLAVA     "USER: <image>\n{question} ASSISTANT:"          (HF llava-hf)
 *   TPL_LLAVA_SYS the original repo's system sentence, then TPL_LLAVA
 *   TPL_RAW       "<image>\n{question}" with no role words
 * tpl_build writes the prompt's token ids with n_image placeholder slots (id -1) where
 * <image> stands, BOS first when the vocabulary asks for it. *image_start is the index
 * of the first slot: the image span is computed, never hard-coded. */
typedef enum { TPL_LLAVA = 0, TPL_LLAVA_SYS = 1, TPL_RAW = 2 } tpl_kind;

int tpl_from_name(const char *name); /* -1 when unknown */
const char *tpl_name(tpl_kind k);
err_code tpl_build(const tok_t *t, tpl_kind kind, const char *question, int64_t n_image, int32_t *ids,
                   int64_t cap, int64_t *n_out, int64_t *image_start, err_t *err);

#endif
