/* tok_gguf.c — the tokenizer's GGUF keys, read (tok_load) and written
 * (tok_write_keys), named as llama.cpp's gguf-py constants.py names them. */
#include <stdlib.h>
#include <string.h>

#include "tok.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_BOS "tokenizer.ggml.bos_token_id"
#define KEY_EOS "tokenizer.ggml.eos_token_id"
#define KEY_UNK "tokenizer.ggml.unknown_token_id"
#define KEY_PAD "tokenizer.ggml.padding_token_id"
#define KEY_ADD_BOS "tokenizer.ggml.add_bos_token"
#define KEY_ADD_EOS "tokenizer.ggml.add_eos_token"
#define KEY_ADD_SPACE "tokenizer.ggml.add_space_prefix"

static err_code opt_id(const gguf_t *g, const char *key, int32_t def, int32_t *out, err_t *err) {
    *out = def;
    if (gguf_find_key(g, key) < 0) return ERR_OK;
    int64_t v;
    err_code rc = gguf_get_i64(g, key, &v, err);
    if (rc) return rc;
    /* -1 is how some converters write "none" (u32 max as well). */
    if (v == -1 || v == (int64_t)UINT32_MAX) v = -1;
    if (v < -1 || v > INT32_MAX) return err_set(err, ERR_FORMAT, "%s = %lld is not a token id", key, (long long)v);
    *out = (int32_t)v;
    return ERR_OK;
}

static err_code opt_bool(const gguf_t *g, const char *key, bool def, bool *out, err_t *err) {
    *out = def;
    if (gguf_find_key(g, key) < 0) return ERR_OK;
    return gguf_get_bool(g, key, out, err);
}

err_code tok_load(tok_t **out, const gguf_t *g, err_t *err) {
    *out = NULL;
    const char *path = gguf_path(g);
    const char *model;
    size_t model_len;
    err_code rc = gguf_get_str_view(g, KEY_MODEL, &model, &model_len, err);
    if (rc) return err_prefix(err, "%s: no tokenizer", path);
    if (model_len != 5 || memcmp(model, "llama", 5))
        return err_set(err, ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.model is '%.*s'; only 'llama' (SentencePiece BPE) is supported", path,
                       (int)(model_len > 64 ? 64 : model_len), model);
    uint64_t n;
    if ((rc = gguf_get_arr_len(g, KEY_TOKENS, GGUF_T_STRING, &n, err))) return err_prefix(err, "%s", path);
    if (n == 0 || n > INT32_MAX) return err_set(err, ERR_FORMAT, "%s: %s has %llu entries", path, KEY_TOKENS,
                                                (unsigned long long)n);
    tok_vocab_desc d = {.n = (int32_t)n};
    const char **pieces = malloc(n * sizeof *pieces);
    size_t *lens = malloc(n * sizeof *lens);
    float *scores = calloc(n, sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    if (!pieces || !lens || !scores || !types) {
        rc = err_set(err, ERR_NOMEM, "%s: out of memory for %llu pieces", path, (unsigned long long)n);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = gguf_get_arr_str(g, KEY_TOKENS, i, &pieces[i], &lens[i], err))) goto fail;
        types[i] = TOK_NORMAL;
    }
    if (gguf_find_key(g, KEY_SCORES) >= 0) {
        uint64_t m;
        if ((rc = gguf_get_arr_len(g, KEY_SCORES, GGUF_T_F32, &m, err))) goto fail;
        if (m != n) {
            rc = err_set(err, ERR_FORMAT, "%s: %s has %llu entries, %s has %llu", path, KEY_SCORES,
                         (unsigned long long)m, KEY_TOKENS, (unsigned long long)n);
            goto done;
        }
        if ((rc = gguf_get_arr_f32(g, KEY_SCORES, scores, n, err))) goto fail;
    }
    if (gguf_find_key(g, KEY_TYPES) >= 0) {
        uint64_t m;
        if ((rc = gguf_get_arr_len(g, KEY_TYPES, GGUF_T_I32, &m, err))) goto fail;
        if (m != n) {
            rc = err_set(err, ERR_FORMAT, "%s: %s has %llu entries, %s has %llu", path, KEY_TYPES,
                         (unsigned long long)m, KEY_TOKENS, (unsigned long long)n);
            goto done;
        }
        if ((rc = gguf_get_arr_i32(g, KEY_TYPES, types, n, err))) goto fail;
    }
    d.pieces = pieces;
    d.lens = lens;
    d.scores = scores;
    d.types = types;
    if ((rc = opt_id(g, KEY_BOS, 1, &d.bos, err)) || (rc = opt_id(g, KEY_EOS, 2, &d.eos, err)) ||
        (rc = opt_id(g, KEY_UNK, 0, &d.unk, err)) || (rc = opt_id(g, KEY_PAD, -1, &d.pad, err)) ||
        (rc = opt_bool(g, KEY_ADD_BOS, true, &d.add_bos, err)) ||
        (rc = opt_bool(g, KEY_ADD_EOS, false, &d.add_eos, err)) ||
        (rc = opt_bool(g, KEY_ADD_SPACE, true, &d.add_space_prefix, err)))
        goto fail;
    rc = tok_create(out, &d, path, err);
    goto done;
fail:
    err_prefix(err, "%s", path);
done:
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

err_code tok_write_keys(const tok_t *t, gguf_writer_t *w, err_t *err) {
    int32_t n = tok_n_vocab(t);
    const char **pieces = malloc((size_t)n * sizeof *pieces);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    err_code rc = ERR_OK;
    if (!pieces || !lens || !scores || !types) {
        rc = err_set(err, ERR_NOMEM, "out of memory writing %d tokenizer pieces", (int)n);
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        pieces[i] = tok_piece(t, i, &lens[i]);
        scores[i] = tok_score(t, i);
        types[i] = (int32_t)tok_type_of(t, i);
    }
    /* llama.cpp reads the id keys as u32: an absent bos/eos/unk is written as
     * UINT32_MAX (read back as -1, since their defaults are real ids); an absent pad
     * is left out (its default is none). */
    if ((rc = gguf_writer_set_str(w, KEY_MODEL, "llama")) ||
        (rc = gguf_writer_set_arr_str(w, KEY_TOKENS, pieces, lens, (uint64_t)n)) ||
        (rc = gguf_writer_set_arr_f32(w, KEY_SCORES, scores, (uint64_t)n)) ||
        (rc = gguf_writer_set_arr_i32(w, KEY_TYPES, types, (uint64_t)n)) ||
        (rc = gguf_writer_set_u32(w, KEY_BOS, tok_bos(t) >= 0 ? (uint32_t)tok_bos(t) : UINT32_MAX)) ||
        (rc = gguf_writer_set_u32(w, KEY_EOS, tok_eos(t) >= 0 ? (uint32_t)tok_eos(t) : UINT32_MAX)) ||
        (rc = gguf_writer_set_u32(w, KEY_UNK, tok_unk(t) >= 0 ? (uint32_t)tok_unk(t) : UINT32_MAX)) ||
        (tok_pad(t) >= 0 && (rc = gguf_writer_set_u32(w, KEY_PAD, (uint32_t)tok_pad(t)))) ||
        (rc = gguf_writer_set_bool(w, KEY_ADD_BOS, tok_add_bos(t))) ||
        (rc = gguf_writer_set_bool(w, KEY_ADD_EOS, tok_add_eos(t))) ||
        (rc = gguf_writer_set_bool(w, KEY_ADD_SPACE, tok_add_space_prefix(t))))
        rc = err_set(err, rc, "cannot add the tokenizer keys to the GGUF writer (%s)", err_code_name(rc));
done:
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return rc;
}
