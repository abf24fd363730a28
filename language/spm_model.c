/* spm_model.c — minimal protobuf (proto2 wire format) reader for SentencePiece's
 * ModelProto. Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32; 3/4
 * (groups) are not used by the schema and are rejected. Every read is checked against
 * the end of its enclosing message. */
#include "spm_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *base, *p, *end;
    const char *name;
    err_t *err;
} pb_t;

typedef struct {
    uint32_t field, wire;
    uint64_t v;         /* varint / fixed value */
    const uint8_t *buf; /* length-delimited payload */
    size_t len;
    size_t at;          /* byte offset of the tag, for messages */
} pb_field_t;

static err_code pb_fail(pb_t *r, const uint8_t *at, const char *what) {
    return err_set(r->err, ERR_FORMAT, "%s: byte %zu: %s", r->name, (size_t)(at - r->base), what);
}

static err_code pb_varint(pb_t *r, uint64_t *out) {
    const uint8_t *start = r->p;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return pb_fail(r, start, "truncated varint");
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return ERR_OK;
        }
    }
    return pb_fail(r, start, "varint longer than 10 bytes");
}

/* Reads the next field; returns ERR_OK with f->field 0 at the end of the message. */
static err_code pb_next(pb_t *r, pb_field_t *f) {
    memset(f, 0, sizeof *f);
    if (r->p >= r->end) return ERR_OK;
    f->at = (size_t)(r->p - r->base);
    const uint8_t *tag_at = r->p;
    uint64_t tag;
    err_code rc = pb_varint(r, &tag);
    if (rc) return rc;
    f->wire = (uint32_t)(tag & 7);
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return pb_fail(r, tag_at, "invalid field number 0");
    f->field = (uint32_t)(tag >> 3);
    switch (f->wire) {
    case 0:
        return pb_varint(r, &f->v);
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) return pb_fail(r, r->p, "truncated fixed-size value");
        f->v = 0;
        for (size_t i = 0; i < n; i++) f->v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return ERR_OK;
    }
    case 2: {
        const uint8_t *len_at = r->p;
        uint64_t len;
        if ((rc = pb_varint(r, &len))) return rc;
        if (len > (uint64_t)(r->end - r->p)) return pb_fail(r, len_at, "length-delimited field runs past its message");
        f->buf = r->p;
        f->len = (size_t)len;
        r->p += len;
        return ERR_OK;
    }
    default:
        return pb_fail(r, tag_at, "unsupported protobuf wire type (group or reserved)");
    }
}

static pb_t pb_sub(const pb_t *r, const pb_field_t *f) {
    pb_t s = {r->base, f->buf, f->buf + f->len, r->name, r->err};
    return s;
}

static err_code want_wire(pb_t *r, const pb_field_t *f, uint32_t wire, const char *what) {
    if (f->wire == wire) return ERR_OK;
    return err_set(r->err, ERR_FORMAT, "%s: byte %zu: %s has wire type %u, expected %u", r->name, f->at, what,
                   (unsigned)f->wire, (unsigned)wire);
}

static float f32_from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static err_code parse_piece(pb_t *r, spm_model_t *m, int32_t i, size_t *blob_pos) {
    pb_field_t f;
    err_code rc;
    bool have_piece = false;
    m->scores[i] = 0.0f;
    m->types[i] = TOK_NORMAL;
    m->off[i] = *blob_pos;
    while (!(rc = pb_next(r, &f)) && f.field) {
        if (f.field == 1) {
            if ((rc = want_wire(r, &f, 2, "SentencePiece.piece"))) return rc;
            memcpy(m->blob + *blob_pos, f.buf, f.len); /* blob sized by the payload total */
            m->off[i] = *blob_pos;
            *blob_pos += f.len;
            have_piece = true;
        } else if (f.field == 2) {
            if ((rc = want_wire(r, &f, 5, "SentencePiece.score"))) return rc;
            m->scores[i] = f32_from_bits((uint32_t)f.v);
        } else if (f.field == 3) {
            if ((rc = want_wire(r, &f, 0, "SentencePiece.type"))) return rc;
            if (f.v < TOK_NORMAL || f.v > TOK_BYTE)
                return err_set(r->err, ERR_FORMAT, "%s: piece %d: type %llu (expected 1..6)", r->name, (int)i,
                               (unsigned long long)f.v);
            m->types[i] = (int32_t)f.v;
        }
    }
    if (rc) return rc;
    if (!have_piece || *blob_pos == m->off[i])
        return err_set(r->err, ERR_FORMAT, "%s: piece %d is empty", r->name, (int)i);
    return ERR_OK;
}

static err_code to_i32(pb_t *r, const pb_field_t *f, const char *what, int32_t *out) {
    err_code rc = want_wire(r, f, 0, what);
    if (rc) return rc;
    int64_t v = (int64_t)f->v; /* negative int32 values are sign-extended to 64 bits */
    if (v < INT32_MIN || v > INT32_MAX) return pb_fail(r, r->base + f->at, "int32 field out of range");
    *out = (int32_t)v;
    return ERR_OK;
}

static err_code parse_trainer(pb_t *r, spm_model_t *m) {
    pb_field_t f;
    err_code rc;
    while (!(rc = pb_next(r, &f)) && f.field) {
        int32_t v = 0;
        switch (f.field) {
        case 3:
            if ((rc = to_i32(r, &f, "TrainerSpec.model_type", &v))) return rc;
            m->model_type = v;
            break;
        case 24:
            if ((rc = want_wire(r, &f, 0, "TrainerSpec.treat_whitespace_as_suffix"))) return rc;
            m->treat_whitespace_as_suffix = f.v != 0;
            break;
        case 35:
            if ((rc = want_wire(r, &f, 0, "TrainerSpec.byte_fallback"))) return rc;
            m->byte_fallback = f.v != 0;
            break;
        case 40:
            if ((rc = to_i32(r, &f, "TrainerSpec.unk_id", &m->unk_id))) return rc;
            break;
        case 41:
            if ((rc = to_i32(r, &f, "TrainerSpec.bos_id", &m->bos_id))) return rc;
            break;
        case 42:
            if ((rc = to_i32(r, &f, "TrainerSpec.eos_id", &m->eos_id))) return rc;
            break;
        case 43:
            if ((rc = to_i32(r, &f, "TrainerSpec.pad_id", &m->pad_id))) return rc;
            break;
        default:
            break;
        }
    }
    return rc;
}

static err_code parse_normalizer(pb_t *r, spm_model_t *m) {
    pb_field_t f;
    err_code rc;
    while (!(rc = pb_next(r, &f)) && f.field) {
        switch (f.field) {
        case 1: {
            if ((rc = want_wire(r, &f, 2, "NormalizerSpec.name"))) return rc;
            size_t n = f.len < sizeof m->normalizer_name - 1 ? f.len : sizeof m->normalizer_name - 1;
            memcpy(m->normalizer_name, f.buf, n);
            m->normalizer_name[n] = '\0';
            break;
        }
        case 2:
            if ((rc = want_wire(r, &f, 2, "NormalizerSpec.precompiled_charsmap"))) return rc;
            m->charsmap_len = f.len;
            break;
        case 3:
        case 4:
        case 5: {
            if ((rc = want_wire(r, &f, 0, "NormalizerSpec flag"))) return rc;
            bool v = f.v != 0;
            if (f.field == 3) m->add_dummy_prefix = v;
            else if (f.field == 4) m->remove_extra_whitespaces = v;
            else m->escape_whitespaces = v;
            break;
        }
        default:
            break;
        }
    }
    return rc;
}

void spm_model_free(spm_model_t *m) {
    if (!m) return;
    free(m->blob);
    free(m->off);
    free(m->scores);
    free(m->types);
    free(m);
}

err_code spm_model_parse(spm_model_t **out, const void *data, size_t size, const char *name, err_t *err) {
    *out = NULL;
    if (!name) name = "model";
    pb_t r = {data, data, (const uint8_t *)data + size, name, err};
    pb_field_t f;
    err_code rc;
    /* Pass 1: count pieces and their payload bytes (an upper bound on the text). */
    size_t n = 0, payload = 0;
    bool have_norm = false;
    while (!(rc = pb_next(&r, &f)) && f.field) {
        if (f.field == 1) {
            if ((rc = want_wire(&r, &f, 2, "ModelProto.pieces"))) return rc;
            n++;
            payload += f.len;
        }
    }
    if (rc) return rc;
    if (n == 0) return err_set(err, ERR_FORMAT, "%s: no pieces (not a SentencePiece model?)", name);
    if (n > INT32_MAX) return err_set(err, ERR_FORMAT, "%s: %zu pieces", name, n);
    spm_model_t *m = calloc(1, sizeof *m);
    if (!m) return err_set(err, ERR_NOMEM, "%s: out of memory", name);
    m->n = (int32_t)n;
    m->blob = malloc(payload + 1);
    m->off = malloc((n + 1) * sizeof *m->off);
    m->scores = malloc(n * sizeof *m->scores);
    m->types = malloc(n * sizeof *m->types);
    if (!m->blob || !m->off || !m->scores || !m->types) {
        spm_model_free(m);
        return err_set(err, ERR_NOMEM, "%s: out of memory for %zu pieces", name, n);
    }
    /* proto2 defaults (sentencepiece_model.proto) */
    m->model_type = SPM_UNIGRAM;
    m->unk_id = 0, m->bos_id = 1, m->eos_id = 2, m->pad_id = -1;
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = true;
    r.p = r.base;
    size_t pos = 0;
    int32_t i = 0;
    while (!(rc = pb_next(&r, &f)) && f.field) {
        pb_t sub = pb_sub(&r, &f);
        if (f.field == 1) rc = parse_piece(&sub, m, i++, &pos);
        else if (f.field == 2 && (rc = want_wire(&r, &f, 2, "ModelProto.trainer_spec")) == ERR_OK)
            rc = parse_trainer(&sub, m);
        else if (f.field == 3 && (rc = want_wire(&r, &f, 2, "ModelProto.normalizer_spec")) == ERR_OK) {
            rc = parse_normalizer(&sub, m);
            have_norm = true;
        }
        if (rc) break;
    }
    if (rc) {
        spm_model_free(m);
        return rc;
    }
    m->off[n] = pos;
    if (!have_norm) m->normalizer_name[0] = '\0';
    *out = m;
    return ERR_OK;
}

err_code spm_model_load(spm_model_t **out, const char *path, err_t *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    err_code rc = ERR_OK;
    unsigned char *buf = NULL;
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        rc = err_set(err, ERR_IO, "%s: cannot determine the file size", path);
    } else if (size > (1L << 30)) {
        rc = err_set(err, ERR_FORMAT, "%s: %ld bytes is too large for a SentencePiece model", path, size);
    } else if (!(buf = malloc((size_t)size + 1))) {
        rc = err_set(err, ERR_NOMEM, "%s: out of memory", path);
    } else if (fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        rc = err_set(err, ERR_IO, "%s: read failed", path);
    } else {
        rc = spm_model_parse(out, buf, (size_t)size, path, err);
    }
    free(buf);
    fclose(fp);
    return rc;
}

err_code spm_model_check(const spm_model_t *m, const char *name, err_t *err) {
    static const char *const types[] = {"?", "unigram", "bpe", "word", "char"};
    if (m->model_type != SPM_BPE)
        return err_set(err, ERR_UNSUPPORTED, "%s: model type is %s; only BPE is supported", name,
                       m->model_type >= 1 && m->model_type <= 4 ? types[m->model_type] : "unknown");
    if (strcmp(m->normalizer_name, "identity") || m->charsmap_len)
        return err_set(err, ERR_UNSUPPORTED,
                       "%s: normalization rule '%s'%s; only 'identity' is supported (train with "
                       "--normalization_rule_name=identity)",
                       name, m->normalizer_name, m->charsmap_len ? " with a character map" : "");
    if (m->remove_extra_whitespaces)
        return err_set(err, ERR_UNSUPPORTED,
                       "%s: remove_extra_whitespaces is on; only models that keep whitespace as is are supported "
                       "(train with --remove_extra_whitespaces=false)",
                       name);
    if (!m->escape_whitespaces)
        return err_set(err, ERR_UNSUPPORTED, "%s: escape_whitespaces is off; spaces must become U+2581", name);
    if (m->treat_whitespace_as_suffix)
        return err_set(err, ERR_UNSUPPORTED, "%s: treat_whitespace_as_suffix is on; only prefix whitespace is supported",
                       name);
    return ERR_OK;
}

err_code spm_model_to_tok(const spm_model_t *m, tok_t **out, const char *name, err_t *err) {
    *out = NULL;
    err_code rc = spm_model_check(m, name, err);
    if (rc) return rc;
    const char **pieces = malloc((size_t)m->n * sizeof *pieces);
    size_t *lens = malloc((size_t)m->n * sizeof *lens);
    if (!pieces || !lens) {
        free(pieces);
        free(lens);
        return err_set(err, ERR_NOMEM, "%s: out of memory", name);
    }
    for (int32_t i = 0; i < m->n; i++) {
        pieces[i] = m->blob + m->off[i];
        lens[i] = m->off[i + 1] - m->off[i];
    }
    tok_vocab_desc d = {.n = m->n, .pieces = pieces, .lens = lens, .scores = m->scores, .types = m->types,
                        .bos = m->bos_id, .eos = m->eos_id, .unk = m->unk_id, .pad = m->pad_id,
                        .add_bos = true, .add_eos = false, .add_space_prefix = m->add_dummy_prefix};
    rc = tok_create(out, &d, name, err);
    free(pieces);
    free(lens);
    return rc;
}
