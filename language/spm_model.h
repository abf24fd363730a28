/* spm_model.h — read a SentencePiece .model file (a serialized sentencepiece.ModelProto)
 * with a minimal, bounds-checked protobuf reader, and turn it into a tok_t.
 *
 * Fields read (sentencepiece_model.proto): ModelProto.pieces (1) {piece 1, score 2,
 * type 3}, trainer_spec (2) {model_type 3, treat_whitespace_as_suffix 24,
 * byte_fallback 35, unk_id 40, bos_id 41, eos_id 42, pad_id 43}, normalizer_spec (3)
 * {name 1, precompiled_charsmap 2, add_dummy_prefix 3, remove_extra_whitespaces 4,
 * escape_whitespaces 5}. Absent fields take the proto defaults. Every other field is
 * skipped by its wire type; groups and anything running past its enclosing message
 * are ERR_FORMAT with the byte offset. The model owns copies of all strings. */
#ifndef LLAVA_MECH_SPM_MODEL_H
#define LLAVA_MECH_SPM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "tok.h"

enum { SPM_UNIGRAM = 1, SPM_BPE = 2, SPM_WORD = 3, SPM_CHAR = 4 };

typedef struct {
    int32_t n;
    char *blob;    /* pieces back to back */
    size_t *off;   /* n + 1 offsets */
    float *scores;
    int32_t *types; /* tok_type values */
    int model_type;
    bool byte_fallback, treat_whitespace_as_suffix;
    int32_t unk_id, bos_id, eos_id, pad_id;
    char normalizer_name[64];
    size_t charsmap_len;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} spm_model_t;

err_code spm_model_load(spm_model_t **out, const char *path, err_t *err);
/* `name` is used in messages. */
err_code spm_model_parse(spm_model_t **out, const void *data, size_t size, const char *name, err_t *err);
void spm_model_free(spm_model_t *m);

/* The tokenizer tok.c implements is SentencePiece BPE with identity normalisation,
 * whitespace escaped to U+2581, not collapsed, as a prefix (LLaMA's settings; the
 * dummy prefix may be on or off). Anything else is ERR_UNSUPPORTED naming the setting,
 * so a vocabulary never silently tokenizes differently from sentencepiece. */
err_code spm_model_check(const spm_model_t *m, const char *name, err_t *err);
/* spm_model_check, then a tok_t with add_bos true, add_eos false. */
err_code spm_model_to_tok(const spm_model_t *m, tok_t **out, const char *name, err_t *err);

#endif
