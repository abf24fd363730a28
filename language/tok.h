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

/* Piece types, as GGUF tokenizer.ggml.token_type and SentencePiece's ModelProto. */
typedef enum {
    TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER_DEFINED = 4, TOK_UNUSED = 5, TOK_BYTE = 6
} tok_type;

/* Reads tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,eos_token_id,
 * unknown_token_id,padding_token_id,add_bos_token,add_eos_token,add_space_prefix}.
 * model must be "llama" (else ERR_UNSUPPORTED). Defaults as llama.cpp: scores 0, types
 * normal, bos 1, eos 2, unk 0, pad -1, add_bos true, add_eos false, add_space_prefix
 * true. The tok_t copies everything it needs: the gguf_t may be closed afterwards. */
err_code tok_load(tok_t **out, const gguf_t *g, err_t *err);
void tok_free(tok_t *t);

/* A vocabulary given piece by piece (SentencePiece .model files, tests). All arrays
 * have n entries and are copied; scores/types may be NULL (0 / TOK_NORMAL); special ids
 * may be -1 when absent (unk must exist for pieces outside the vocabulary unless byte
 * pieces cover them). `name` is used in error messages. */
typedef struct {
    int32_t n;
    const char *const *pieces;
    const size_t *lens;
    const float *scores;
    const int32_t *types;
    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
} tok_vocab_desc;
err_code tok_create(tok_t **out, const tok_vocab_desc *d, const char *name, err_t *err);

/* Writes the tokenizer.ggml.* keys above (model "llama") so that tok_load reads back an
 * identical tokenizer. The writer copies the strings. Used by convert-vocab, the
 * trainer and make-model. */
err_code tok_write_keys(const tok_t *t, gguf_writer_t *w, err_t *err);

int32_t tok_n_vocab(const tok_t *t);
int32_t tok_bos(const tok_t *t);
int32_t tok_eos(const tok_t *t);
int32_t tok_unk(const tok_t *t); /* -1 when absent */
int32_t tok_pad(const tok_t *t); /* -1 when absent */
bool tok_add_bos(const tok_t *t); /* tokenizer.ggml.add_bos_token (default true) */
bool tok_add_eos(const tok_t *t); /* tokenizer.ggml.add_eos_token (default false) */
bool tok_add_space_prefix(const tok_t *t); /* SentencePiece's add_dummy_prefix */
bool tok_byte_fallback(const tok_t *t); /* true when the vocabulary has <0xNN> pieces */
tok_type tok_type_of(const tok_t *t, int32_t id); /* 0 when id is out of range */
float tok_score(const tok_t *t, int32_t id);
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
/* The ids of one answer as the trainer and the VQA runner score it: the prompt ends in
 * "ASSISTANT:" and the answer text is " {word}" then end-of-sequence. Encoding the word
 * alone with the dummy prefix gives the same pieces SentencePiece gives for
 * "ASSISTANT: red" after the colon ("\u2581red"), so: one leading space of `word` is
 * dropped, the rest is tok_encode'd without BOS, and EOS is appended. */
err_code tok_encode_answer(const tok_t *t, const char *word, int32_t *ids, int64_t cap, int64_t *n_out,
                           err_t *err);
err_code tok_decode(const tok_t *t, const int32_t *ids, int64_t n, bool strip_leading, char *buf, size_t cap,
                    size_t *len_out, err_t *err);

/* UTF-8 (RFC 3629: no overlong forms, surrogates or code points above U+10FFFF).
 * tok_utf8_len: bytes of the code point at s, 0 when invalid or truncated.
 * tok_utf8_valid: false with *bad_offset at the first bad byte. */
size_t tok_utf8_len(const char *s, size_t len);
bool tok_utf8_valid(const char *s, size_t len, size_t *bad_offset);
/* Copies len bytes of s into out (3*len+1 bytes), replacing every byte that does not
 * start a valid sequence by U+FFFD, NUL-terminated; returns the bytes written. A
 * generated answer can stop inside a character, and JSON output must be UTF-8. */
size_t tok_utf8_sanitize(const char *s, size_t len, char *out);

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
