/* tok.c — SentencePiece BPE over a GGUF (or .model) vocabulary.
 *
 * The encoder reproduces sentencepiece's bpe_model.cc (v0.1.97) step for step so that
 * ids match spm_encode exactly (tests/tok/ checks thousands of strings):
 *   1. normalise: with the identity rule only ' ' -> U+2581, plus one U+2581 in front
 *      (add_dummy_prefix) unless the text is empty;
 *   2. split into symbols: the longest user-defined piece at this position (frozen, it
 *      never merges) or else one code point;
 *   3. agenda: every adjacent pair whose concatenation is a normal / user-defined /
 *      unused piece, keyed by that piece's score; pop the best (highest score, leftmost
 *      on ties), skip it if stale, merge, push the two new neighbour pairs;
 *   4. unused pieces left at the end are split back into the two symbols that formed
 *      them (recursively), as sentencepiece's resegment() does;
 *   5. a symbol that is no piece is unknown: with byte pieces it becomes one <0xNN> per
 *      UTF-8 byte, otherwise runs of unknown symbols collapse into one unk id (as
 *      SentencePieceProcessor::Encode merges them).
 * Cost: O(n log n) for n code points. Working memory (symbols, agenda heap, normalised
 * text) is one malloc per tok_encode call, sized from the input length up front; no
 * allocation happens per merge. A tok_t is immutable after creation, so one tokenizer
 * may be used from several threads. */
#include "tok.h"

#include <stdlib.h>
#include <string.h>

#define TOK_TYPE_BIT(x) (1u << (x))
/* sentencepiece's pieces_ map holds these types; merges only look there. */
#define TOK_MERGEABLE (TOK_TYPE_BIT(TOK_NORMAL) | TOK_TYPE_BIT(TOK_USER_DEFINED) | TOK_TYPE_BIT(TOK_UNUSED))
/* ... and reserved_id_map_ holds these; PieceToId looks there first. */
#define TOK_RESERVED (TOK_TYPE_BIT(TOK_CONTROL) | TOK_TYPE_BIT(TOK_UNKNOWN) | TOK_TYPE_BIT(TOK_BYTE))

static const char kSpaceMark[3] = {'\xE2', '\x96', '\x81'}; /* U+2581 LOWER ONE EIGHTH BLOCK */
static const char kUnkSurface[] = " \xE2\x81\x87 ";          /* sentencepiece's unk_surface */

struct tok {
    int32_t n;
    char *blob;      /* all pieces back to back */
    size_t *off;     /* n + 1 offsets into blob */
    float *scores;
    uint8_t *types;
    int32_t *slots;  /* open-addressing hash of piece bytes -> id, -1 empty */
    uint64_t mask;   /* slot count - 1 (power of two) */
    int32_t byte_id[256];
    bool byte_fallback;
    bool has_unused;
    int32_t n_user;
    size_t user_max_len;
    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
};

static uint64_t hash_bytes(const char *s, size_t len) {
    /* FNV-1a, 64 bit */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const char *piece_of(const tok_t *t, int32_t id, size_t *len) {
    *len = t->off[id + 1] - t->off[id];
    return t->blob + t->off[id];
}

/* Lowest id whose piece equals s and whose type is in type_mask, -1 when none. Equal
 * pieces are inserted in id order and linear probing never reorders a chain, so the
 * first hit is the lowest id. */
static int32_t lookup(const tok_t *t, const char *s, size_t len, unsigned type_mask) {
    for (uint64_t h = hash_bytes(s, len) & t->mask;; h = (h + 1) & t->mask) {
        int32_t id = t->slots[h];
        if (id < 0) return -1;
        size_t pl;
        const char *p = piece_of(t, id, &pl);
        if (pl == len && !memcmp(p, s, len) && (TOK_TYPE_BIT(t->types[id]) & type_mask)) return id;
    }
}

/* sentencepiece's ModelInterface::PieceToId: reserved pieces first, then normal ones,
 * else unk. */
static int32_t piece_to_id(const tok_t *t, const char *s, size_t len) {
    int32_t id = lookup(t, s, len, TOK_RESERVED);
    if (id < 0) id = lookup(t, s, len, TOK_MERGEABLE);
    return id < 0 ? t->unk : id;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Byte value of a "<0xNN>" piece, -1 otherwise. */
static int byte_piece_value(const char *p, size_t len) {
    if (len != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int hi = hexval(p[3]), lo = hexval(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

size_t tok_utf8_len(const char *s, size_t len) {
    /* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0) return 0;
    unsigned c = u[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (len < n) return 0;
    if (u[1] < lo || u[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xBF) return 0;
    return n;
}

bool tok_utf8_valid(const char *s, size_t len, size_t *bad_offset) {
    for (size_t i = 0; i < len;) {
        size_t n = tok_utf8_len(s + i, len - i);
        if (!n) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += n;
    }
    return true;
}

size_t tok_utf8_sanitize(const char *s, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = tok_utf8_len(s + i, len - i);
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

void tok_free(tok_t *t) {
    if (!t) return;
    free(t->blob);
    free(t->off);
    free(t->scores);
    free(t->types);
    free(t->slots);
    free(t);
}

err_code tok_create(tok_t **out, const tok_vocab_desc *d, const char *name, err_t *err) {
    *out = NULL;
    if (!name) name = "vocabulary";
    if (d->n <= 0) return err_set(err, ERR_FORMAT, "%s: empty vocabulary", name);
    int32_t n = d->n;
    int32_t specials[4] = {d->bos, d->eos, d->unk, d->pad};
    static const char *const special_names[4] = {"bos", "eos", "unknown", "padding"};
    for (int i = 0; i < 4; i++)
        if (specials[i] < -1 || specials[i] >= n)
            return err_set(err, ERR_FORMAT, "%s: %s token id %d outside the vocabulary (%d pieces)", name,
                           special_names[i], (int)specials[i], (int)n);
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (d->lens[i] > ((size_t)1 << 20))
            return err_set(err, ERR_FORMAT, "%s: piece %d is %zu bytes long", name, (int)i, d->lens[i]);
        total += d->lens[i];
    }
    tok_t *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, ERR_NOMEM, "%s: out of memory for the tokenizer", name);
    uint64_t nslots = 16;
    while (nslots < 2 * (uint64_t)n) nslots *= 2;
    t->n = n;
    t->blob = malloc(total ? total : 1);
    t->off = malloc(((size_t)n + 1) * sizeof *t->off);
    t->scores = malloc((size_t)n * sizeof *t->scores);
    t->types = malloc((size_t)n);
    t->slots = malloc(nslots * sizeof *t->slots);
    if (!t->blob || !t->off || !t->scores || !t->types || !t->slots) {
        tok_free(t);
        return err_set(err, ERR_NOMEM, "%s: out of memory for %d pieces", name, (int)n);
    }
    t->mask = nslots - 1;
    memset(t->slots, 0xff, nslots * sizeof *t->slots);
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    size_t pos = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t ty = d->types ? d->types[i] : TOK_NORMAL;
        if (ty == 0) ty = TOK_NORMAL; /* llama.cpp's "undefined" */
        if (ty < TOK_NORMAL || ty > TOK_BYTE) {
            tok_free(t);
            return err_set(err, ERR_FORMAT, "%s: piece %d has token type %d (expected 1..6)", name, (int)i, (int)ty);
        }
        t->types[i] = (uint8_t)ty;
        t->scores[i] = d->scores ? d->scores[i] : 0.0f;
        t->off[i] = pos;
        if (d->lens[i]) memcpy(t->blob + pos, d->pieces[i], d->lens[i]);
        pos += d->lens[i];
        uint64_t h = hash_bytes(d->pieces[i], d->lens[i]) & t->mask;
        while (t->slots[h] >= 0) h = (h + 1) & t->mask;
        t->slots[h] = i;
        if (ty == TOK_BYTE) t->byte_fallback = true;
        if (ty == TOK_UNUSED) t->has_unused = true;
        if (ty == TOK_USER_DEFINED && d->lens[i] > 0) {
            t->n_user++;
            if (d->lens[i] > t->user_max_len) t->user_max_len = d->lens[i];
        }
    }
    t->off[n] = pos;
    t->bos = d->bos;
    t->eos = d->eos;
    t->unk = d->unk;
    t->pad = d->pad;
    t->add_bos = d->add_bos;
    t->add_eos = d->add_eos;
    t->add_space_prefix = d->add_space_prefix;
    if (t->unk < 0 && !t->byte_fallback) {
        tok_free(t);
        return err_set(err, ERR_FORMAT, "%s: no unknown token and no byte pieces: text outside the vocabulary "
                                        "could not be encoded", name);
    }
    /* Byte fallback looks pieces up by their text "<0xNN>" (sentencepiece's
     * ByteToPiece + PieceToId), so a missing byte piece yields unk. */
    for (int b = 0; b < 256; b++) {
        char p[7];
        static const char hex[] = "0123456789ABCDEF";
        p[0] = '<', p[1] = '0', p[2] = 'x', p[3] = hex[b >> 4], p[4] = hex[b & 15], p[5] = '>';
        t->byte_id[b] = piece_to_id(t, p, 6);
        if (t->byte_id[b] < 0) {
            tok_free(t);
            return err_set(err, ERR_FORMAT, "%s: byte piece <0x%02X> is missing and there is no unknown token",
                           name, (unsigned)b);
        }
    }
    *out = t;
    return ERR_OK;
}

int32_t tok_n_vocab(const tok_t *t) { return t->n; }
int32_t tok_bos(const tok_t *t) { return t->bos; }
int32_t tok_eos(const tok_t *t) { return t->eos; }
int32_t tok_unk(const tok_t *t) { return t->unk; }
int32_t tok_pad(const tok_t *t) { return t->pad; }
bool tok_add_bos(const tok_t *t) { return t->add_bos; }
bool tok_add_eos(const tok_t *t) { return t->add_eos; }
bool tok_add_space_prefix(const tok_t *t) { return t->add_space_prefix; }
bool tok_byte_fallback(const tok_t *t) { return t->byte_fallback; }

tok_type tok_type_of(const tok_t *t, int32_t id) {
    return id >= 0 && id < t->n ? (tok_type)t->types[id] : (tok_type)0;
}

float tok_score(const tok_t *t, int32_t id) { return id >= 0 && id < t->n ? t->scores[id] : 0.0f; }

const char *tok_piece(const tok_t *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n) {
        if (len) *len = 0;
        return NULL;
    }
    size_t l;
    const char *p = piece_of(t, id, &l);
    if (len) *len = l;
    return p;
}

int32_t tok_find(const tok_t *t, const char *piece, size_t len) {
    return lookup(t, piece, len, 0xffffffffu);
}

/* ---- encoding ---------------------------------------------------------------- */

typedef struct {
    int32_t start, len; /* bytes of the normalised text; len 0 once merged away */
    int32_t prev, next;
    bool freeze;
} sym_t;

typedef struct {
    float score;
    int32_t left, right, size;
} pair_t;

/* sentencepiece's SymbolPairComparator: higher score first, then smaller left. */
static bool pair_before(const pair_t *a, const pair_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(pair_t *h, int64_t *n, pair_t p) {
    int64_t i = (*n)++;
    while (i > 0) {
        int64_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
}

static pair_t heap_pop(pair_t *h, int64_t *n) {
    pair_t top = h[0], last = h[--(*n)];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && pair_before(&h[c + 1], &h[c])) c++;
        if (!pair_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

typedef struct {
    const tok_t *t;
    const char *norm;
    sym_t *sym;
    pair_t *heap;
    int64_t n_heap;
    int32_t *rev_left; /* per id: byte length of the left part that formed an unused piece */
    int32_t *ids;
    int64_t cap, n;
    bool prev_unk;
} enc_t;

static void maybe_add_pair(enc_t *e, int32_t left, int32_t right) {
    if (left < 0 || right < 0 || e->sym[left].freeze || e->sym[right].freeze) return;
    int32_t size = e->sym[left].len + e->sym[right].len;
    int32_t id = lookup(e->t, e->norm + e->sym[left].start, (size_t)size, TOK_MERGEABLE);
    if (id < 0) return;
    pair_t p = {e->t->scores[id], left, right, size};
    heap_push(e->heap, &e->n_heap, p);
    if (e->rev_left && e->t->types[id] == TOK_UNUSED) e->rev_left[id] = e->sym[left].len;
}

static void emit(enc_t *e, int32_t id) {
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

static void emit_piece(enc_t *e, const char *s, int32_t len) {
    const tok_t *t = e->t;
    int32_t id = piece_to_id(t, s, (size_t)len);
    if (id >= 0 && t->types[id] == TOK_UNUSED && e->rev_left && e->rev_left[id] > 0 && e->rev_left[id] < len) {
        int32_t l = e->rev_left[id];
        emit_piece(e, s, l);
        emit_piece(e, s + l, len - l);
        return;
    }
    bool is_unk = id < 0 || (id == t->unk);
    if (is_unk && t->byte_fallback) {
        for (int32_t i = 0; i < len; i++) emit(e, t->byte_id[(unsigned char)s[i]]);
        e->prev_unk = false;
        return;
    }
    if (is_unk && e->prev_unk) return; /* one unk for a run of unknown symbols */
    e->prev_unk = is_unk;
    emit(e, id);
}

err_code tok_encode(const tok_t *t, const char *text, size_t len, bool add_bos, int32_t *ids, int64_t cap,
                    int64_t *n_out, err_t *err) {
    *n_out = 0;
    if (cap < 0) cap = 0;
    size_t n_cp = 0; /* code points: bounds the symbol count */
    for (size_t i = 0; i < len; n_cp++) {
        size_t l = tok_utf8_len(text + i, len - i);
        if (!l)
            return err_set(err, ERR_FORMAT, "invalid UTF-8 in text at byte offset %zu (byte 0x%02X)", i,
                           (unsigned)(unsigned char)text[i]);
        i += l;
    }
    if (len > (size_t)INT32_MAX / 8) return err_set(err, ERR_RANGE, "text of %zu bytes is too long to encode", len);
    enc_t e = {.t = t, .ids = ids, .cap = cap};
    if (add_bos) {
        if (t->bos < 0) return err_set(err, ERR_ARG, "the vocabulary has no BOS token");
        emit(&e, t->bos);
    }
    if (len > 0) {
        /* Worst case: every byte a space (3 bytes each) plus the dummy prefix; one
         * symbol per code point plus the prefix (user-defined matches only merge). */
        size_t norm_cap = 3 * len + 3, max_sym = n_cp + 1;
        size_t heap_cap = 3 * max_sym + 1; /* initial pairs + two per merge */
        size_t rev_n = t->has_unused ? (size_t)t->n : 0;
        size_t bytes = norm_cap + max_sym * sizeof(sym_t) + heap_cap * sizeof(pair_t) + rev_n * sizeof(int32_t) + 64;
        char *work = malloc(bytes);
        if (!work) return err_set(err, ERR_NOMEM, "out of memory encoding %zu bytes of text", len);
        pair_t *heap = (pair_t *)work;
        sym_t *sym = (sym_t *)(heap + heap_cap);
        int32_t *rev = (int32_t *)(sym + max_sym);
        char *norm = (char *)(rev + rev_n);
        if (rev_n) memset(rev, 0, rev_n * sizeof *rev);
        size_t nl = 0;
        if (t->add_space_prefix) memcpy(norm, kSpaceMark, 3), nl = 3;
        for (size_t i = 0; i < len; i++) {
            if (text[i] == ' ') memcpy(norm + nl, kSpaceMark, 3), nl += 3;
            else norm[nl++] = text[i];
        }
        e.norm = norm;
        e.sym = sym;
        e.heap = heap;
        e.rev_left = rev_n ? rev : NULL;
        int32_t ns = 0;
        for (size_t i = 0; i < nl;) {
            size_t mlen = 0;
            bool freeze = false;
            if (t->n_user) {
                size_t maxl = t->user_max_len < nl - i ? t->user_max_len : nl - i;
                for (size_t l = maxl; l > 0; l--)
                    if (lookup(t, norm + i, l, TOK_TYPE_BIT(TOK_USER_DEFINED)) >= 0) {
                        mlen = l, freeze = true;
                        break;
                    }
            }
            if (!mlen) mlen = tok_utf8_len(norm + i, nl - i); /* valid: checked above */
            sym[ns] = (sym_t){(int32_t)i, (int32_t)mlen, ns - 1, -1, freeze};
            if (ns > 0) sym[ns - 1].next = ns;
            ns++;
            i += mlen;
        }
        for (int32_t i = 1; i < ns; i++) maybe_add_pair(&e, i - 1, i);
        while (e.n_heap > 0) {
            pair_t top = heap_pop(heap, &e.n_heap);
            sym_t *l = &sym[top.left], *r = &sym[top.right];
            if (l->len == 0 || r->len == 0 || l->len + r->len != top.size) continue; /* stale */
            l->len += r->len;
            l->next = r->next;
            if (r->next >= 0) sym[r->next].prev = top.left;
            r->len = 0;
            maybe_add_pair(&e, l->prev, top.left);
            maybe_add_pair(&e, top.left, l->next);
        }
        for (int32_t i = 0; i >= 0 && ns > 0; i = sym[i].next) emit_piece(&e, norm + sym[i].start, sym[i].len);
        free(work);
    }
    *n_out = e.n;
    if (e.n > cap) return err_set(err, ERR_RANGE, "text needs %lld tokens, room for %lld", (long long)e.n, (long long)cap);
    return ERR_OK;
}

err_code tok_encode_answer(const tok_t *t, const char *word, int32_t *ids, int64_t cap, int64_t *n_out,
                           err_t *err) {
    *n_out = 0;
    if (t->eos < 0) return err_set(err, ERR_ARG, "the vocabulary has no EOS token");
    size_t len = strlen(word);
    if (len > 0 && word[0] == ' ') word++, len--;
    int64_t n = 0;
    err_code rc = tok_encode(t, word, len, false, ids, cap, &n, err);
    if (rc != ERR_OK && rc != ERR_RANGE) return rc;
    if (n < cap) ids[n] = t->eos;
    *n_out = n + 1;
    if (n + 1 > cap)
        return err_set(err, ERR_RANGE, "answer needs %lld tokens, room for %lld", (long long)(n + 1), (long long)cap);
    return ERR_OK;
}

/* ---- decoding ---------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap, n;
} out_t;

static void put(out_t *o, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (o->n + 1 < o->cap) o->buf[o->n] = s[i];
        o->n++;
    }
}

err_code tok_decode(const tok_t *t, const int32_t *ids, int64_t n, bool strip_leading, char *buf, size_t cap,
                    size_t *len_out, err_t *err) {
    out_t o = {buf, cap, 0};
    bool first = true;
    for (int64_t k = 0; k < n; k++) {
        int32_t id = ids[k];
        if (id < 0 || id >= t->n)
            return err_set(err, ERR_RANGE, "token id %d at position %lld outside the vocabulary (%d pieces)", (int)id,
                           (long long)k, (int)t->n);
        size_t pl;
        const char *p = piece_of(t, id, &pl);
        switch (t->types[id]) {
        case TOK_CONTROL:
            continue;
        case TOK_UNKNOWN:
            put(&o, kUnkSurface, sizeof kUnkSurface - 1);
            break;
        case TOK_BYTE: {
            int b = byte_piece_value(p, pl);
            if (b >= 0) {
                char c = (char)b;
                put(&o, &c, 1);
            } else
                put(&o, p, pl);
            break;
        }
        default: {
            size_t i = 0;
            /* sentencepiece drops the dummy-prefix space of the first piece only. */
            if (first && strip_leading && pl >= 3 && !memcmp(p, kSpaceMark, 3)) i = 3;
            while (i < pl) {
                if (i + 3 <= pl && !memcmp(p + i, kSpaceMark, 3)) put(&o, " ", 1), i += 3;
                else put(&o, p + i, 1), i++;
            }
        }
        }
        first = false;
    }
    if (len_out) *len_out = o.n;
    if (cap > 0) buf[o.n < cap ? o.n : cap - 1] = '\0';
    if (o.n + 1 > cap)
        return err_set(err, ERR_RANGE, "decoded text needs %zu bytes, buffer holds %zu", o.n + 1, cap);
    return ERR_OK;
}
