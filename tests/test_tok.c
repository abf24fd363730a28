/* test_tok.c — unit tests of the tokenizer: the BPE rules on hand-made vocabularies
 * (score order, leftmost ties, frozen user-defined pieces, unused pieces split back,
 * unknown runs, byte fallback), UTF-8 errors, decoding, the GGUF keys, the .model
 * reader's refusals, and the LLaVA templates' image span. The agreement with
 * sentencepiece on thousands of strings is test_tok_conformance.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gguf.h"
#include "language/spm_model.h"
#include "language/tok.h"
#include "testutil.h"

#define SP "\xE2\x96\x81" /* U+2581 */

/* A vocabulary from (piece, score, type) triples; ids are the array indices, with
 * <unk> 0, <s> 1, </s> 2. */
typedef struct {
    const char *piece;
    float score;
    int type;
} vp;

static tok_t *make_vocab(const vp *v, int n, bool prefix) {
    const char *pieces[64];
    size_t lens[64];
    float scores[64];
    int32_t types[64];
    for (int i = 0; i < n; i++) {
        pieces[i] = v[i].piece;
        lens[i] = strlen(v[i].piece);
        scores[i] = v[i].score;
        types[i] = v[i].type;
    }
    tok_vocab_desc d = {.n = n, .pieces = pieces, .lens = lens, .scores = scores, .types = types, .bos = 1, .eos = 2,
                        .unk = 0, .pad = -1, .add_bos = true, .add_eos = false, .add_space_prefix = prefix};
    err_t err = {0};
    tok_t *t = NULL;
    CHECK_OK(tok_create(&t, &d, "hand-made", &err), &err);
    return t;
}

/* Encodes text and compares with the expected ids (terminated by -99). */
static void expect_ids(const tok_t *t, const char *text, const int32_t *want, int line) {
    int32_t ids[256];
    int64_t n = 0;
    err_t err = {0};
    int rc = tok_encode(t, text, strlen(text), false, ids, 256, &n, &err);
    int64_t nw = 0;
    while (want[nw] != -99) nw++;
    bool same = rc == 0 && n == nw;
    for (int64_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        fprintf(stderr, "line %d: '%s' ->", line, text);
        for (int64_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, " (want");
        for (int64_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, ") rc %d %s\n", rc, err.msg);
    }
    CHECK(same);
}
#define EXPECT(t, text, ...) expect_ids(t, text, (const int32_t[]){__VA_ARGS__, -99}, __LINE__)

enum { N = 1, U = 2, C = 3, UD = 4, X = 5, B = 6 };

static void test_bpe_rules(void) {
    /* ids:               0             1           2            3           4          5 */
    const vp v[] = {{"<unk>", 0, U}, {"<s>", 0, C}, {"</s>", 0, C}, {"a", -5, N}, {"b", -5, N}, {"c", -5, N},
                    /* 6 */ {"ab", -1, N}, /* 7 */ {"bc", -1, N}, /* 8 */ {"aa", -2, N},
                    /* 9 */ {SP, -5, N}, /* 10 */ {SP "a", -0.5f, N}, /* 11 */ {"<img>", 0, UD},
                    /* 12 */ {"d", -5, N}, /* 13 */ {"e", -5, N}, /* 14 */ {"de", -1, X}, /* 15 */ {"dee", -1, N},
                    /* 16 */ {"<", -5, N}, /* 17 */ {"<i", -0.1f, N}};
    tok_t *t = make_vocab(v, 18, false);
    if (!t) return;
    EXPECT(t, "abc", 6, 5);          /* "ab" and "bc" tie at -1: the leftmost pair merges */
    EXPECT(t, "aaa", 8, 3);          /* same pair twice: leftmost first */
    EXPECT(t, "aab", 3, 6);          /* "ab" (-1) beats "aa" (-2) */
    EXPECT(t, " a", 10);             /* space -> U+2581, then "▁a" */
    EXPECT(t, "a<img>b", 3, 11, 4);  /* user-defined piece matched whole, never merged ("<i" exists) */
    EXPECT(t, "<i", 17);
    EXPECT(t, "de", 12, 13);         /* an unused piece is split back into what formed it */
    EXPECT(t, "dee", 15);            /* ... but may still be a step towards a used piece */
    EXPECT(t, "axyzb", 3, 0, 4);     /* no byte pieces: one unk for a run of unknown characters */
    EXPECT(t, "x", 0);
    tok_free(t);

    tok_t *p = make_vocab(v, 18, true); /* with the dummy prefix */
    if (!p) return;
    EXPECT(p, "a", 10);
    EXPECT(p, "b", 9, 4);
    int32_t ids[4];
    int64_t n = 7;
    err_t err = {0};
    CHECK_OK(tok_encode(p, "", 0, false, ids, 4, &n, &err), &err);
    CHECK(n == 0); /* empty text: no dummy prefix either */
    CHECK_OK(tok_encode(p, "", 0, true, ids, 4, &n, &err), &err);
    CHECK(n == 1 && ids[0] == 1);
    /* cap too small: ERR_RANGE, the full count, and nothing written past cap */
    int32_t small[3] = {-7, -7, -7};
    CHECK(tok_encode(p, "abcabc", 6, true, small, 2, &n, &err) == ERR_RANGE);
    CHECK(n == 5 && small[2] == -7); /* <s> ▁a bc ab c */
    tok_free(p);
}

static void test_utf8_errors(const tok_t *t) {
    static const struct {
        const char *s;
        size_t off;
    } bad[] = {{"ab\x80", 2}, {"\xC0\xAF", 0}, {"x\xE0\x80\x80", 1}, {"\xED\xA0\x80", 0}, {"ok\xF4\x90\x80\x80", 2},
               {"\xF8\x88\x80\x80\x80", 0}, {"abc\xE2\x82", 3}, {"\xFF", 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[32];
        int64_t n;
        err_t err = {0};
        CHECK(tok_encode(t, bad[i].s, strlen(bad[i].s), false, ids, 32, &n, &err) == ERR_FORMAT);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", bad[i].off);
        CHECK_MSG(strstr(err.msg, want) != NULL, "'%s' does not say '%s'", err.msg, want);
    }
    /* Valid edge cases: U+0080, U+07FF, U+FFFF (not a surrogate), U+10FFFF, and NUL. */
    const char ok[] = "\xC2\x80\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF";
    size_t off = 99;
    CHECK(tok_utf8_valid(ok, sizeof ok - 1, &off));
    CHECK(tok_utf8_valid("a\0b", 3, &off));
}

static void test_conformance_vocab(const tok_t *t) {
    err_t err = {0};
    int32_t ids[256];
    int64_t n;
    /* A newline is never in a vocabulary trained line by line: byte fallback, after a
     * lone dummy-prefix piece (as LLaMA's "\n" -> 29871 13). */
    int32_t nl = tok_find(t, "<0x0A>", 6), sp = tok_find(t, SP, 3);
    CHECK(nl >= 0 && sp >= 0 && tok_type_of(t, nl) == TOK_BYTE);
    CHECK_OK(tok_encode(t, "\n", 1, false, ids, 256, &n, &err), &err);
    CHECK(n == 2 && ids[0] == sp && ids[1] == nl);
    /* "a\nb": the newline splits the text; both sides tokenize as on their own. */
    int32_t a[16];
    int64_t na;
    CHECK_OK(tok_encode(t, "cat\nthe", 7, false, ids, 256, &n, &err), &err);
    CHECK_OK(tok_encode(t, "cat", 3, false, a, 16, &na, &err), &err);
    CHECK(n >= na + 2);
    bool same = true;
    for (int64_t i = 0; i < na; i++) same = same && ids[i] == a[i];
    CHECK(same && ids[na] == nl);
    /* "the" after a newline has no space before it: its pieces are those of "the"
     * without the dummy prefix. */
    {
        size_t pl;
        const char *p = tok_piece(t, ids[na + 1], &pl);
        CHECK(pl >= 1 && p[0] == 't');
    }
    /* Control pieces are never produced from text: "<s>" and "</s>" are plain characters. */
    CHECK_OK(tok_encode(t, "<s>x</s>", 8, false, ids, 256, &n, &err), &err);
    for (int64_t i = 0; i < n; i++) CHECK(ids[i] != tok_bos(t) && ids[i] != tok_eos(t) && ids[i] != tok_unk(t));
    /* Cyrillic is absent from the corpus: one byte piece per UTF-8 byte. */
    CHECK_OK(tok_encode(t, "Ж", 2, false, ids, 256, &n, &err), &err);
    CHECK(n == 3 && ids[0] == sp && ids[1] == tok_find(t, "<0xD0>", 6) && ids[2] == tok_find(t, "<0x96>", 6));
    /* Digits are split one per piece (--split_digits). */
    CHECK_OK(tok_encode(t, "2026", 4, false, ids, 256, &n, &err), &err);
    CHECK(n == 5 || n == 4); /* "▁2" may be a piece, or "▁" then "2" */
    for (int64_t i = 1; i < n; i++) {
        size_t pl;
        const char *p = tok_piece(t, ids[i], &pl);
        CHECK(pl == 1 && p[0] >= '0' && p[0] <= '9');
    }

    /* Decoding: byte pieces reassemble UTF-8, BOS/EOS vanish, the leading space is
     * dropped only when asked. */
    const char *text = "Grüße, мир 🌍! 42";
    CHECK_OK(tok_encode(t, text, strlen(text), true, ids, 256, &n, &err), &err);
    CHECK(ids[0] == tok_bos(t));
    ids[n++] = tok_eos(t);
    char buf[256];
    size_t len;
    CHECK_OK(tok_decode(t, ids, n, true, buf, sizeof buf, &len, &err), &err);
    CHECK_MSG(len == strlen(text) && !strcmp(buf, text), "decoded '%s'", buf);
    CHECK_OK(tok_decode(t, ids, n, false, buf, sizeof buf, &len, &err), &err);
    CHECK(buf[0] == ' ' && !strcmp(buf + 1, text));
    CHECK(tok_decode(t, ids, n, true, buf, 5, &len, &err) == ERR_RANGE);
    CHECK(len == strlen(text) && strlen(buf) == 4);
    int32_t badid = tok_n_vocab(t);
    CHECK(tok_decode(t, &badid, 1, true, buf, sizeof buf, &len, &err) == ERR_RANGE);
    int32_t unk = tok_unk(t);
    CHECK_OK(tok_decode(t, &unk, 1, false, buf, sizeof buf, &len, &err), &err);
    CHECK(!strcmp(buf, " \xE2\x81\x87 "));
}

static void test_templates(const tok_t *t) {
    err_t err = {0};
    int32_t ids[512], seg[256];
    int64_t n, start, ns;
    const char *q = "What color is the circle?";
    CHECK_OK(tpl_build(t, TPL_LLAVA, q, 7, ids, 512, &n, &start, &err), &err);
    /* BOS, then "USER: " on its own, then the slots, then "\n{q} ASSISTANT:" on its own */
    CHECK(ids[0] == tok_bos(t));
    CHECK_OK(tok_encode(t, "USER: ", 6, false, seg, 256, &ns, &err), &err);
    CHECK(start == 1 + ns);
    for (int64_t i = 0; i < ns; i++) CHECK(ids[1 + i] == seg[i]);
    for (int64_t i = 0; i < 7; i++) CHECK(ids[start + i] == -1);
    char tail[128];
    snprintf(tail, sizeof tail, "\n%s ASSISTANT:", q);
    CHECK_OK(tok_encode(t, tail, strlen(tail), false, seg, 256, &ns, &err), &err);
    CHECK(n == start + 7 + ns);
    for (int64_t i = 0; i < ns; i++) CHECK(ids[start + 7 + i] == seg[i]);
    /* The text after <image> starts with a lone dummy-prefix piece, as in HF's
     * [..., 32000, 29871, 13, ...]. */
    CHECK(ids[start + 7] == tok_find(t, SP, 3));
    CHECK(ids[start + 8] == tok_find(t, "<0x0A>", 6));
    CHECK(tpl_from_name("llava") == TPL_LLAVA && tpl_from_name("llava-sys") == TPL_LLAVA_SYS &&
          tpl_from_name("raw") == TPL_RAW && tpl_from_name("chatml") == -1);
    CHECK(!strcmp(tpl_name(TPL_LLAVA_SYS), "llava-sys"));

    int64_t n2, start2;
    CHECK_OK(tpl_build(t, TPL_LLAVA_SYS, q, 7, ids, 512, &n2, &start2, &err), &err);
    const char *sys = "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
                      "helpful, detailed, and polite answers to the human's questions. USER: ";
    CHECK_OK(tok_encode(t, sys, strlen(sys), true, seg, 256, &ns, &err), &err);
    CHECK(start2 == ns && n2 - start2 == n - start);

    CHECK_OK(tpl_build(t, TPL_RAW, q, 3, ids, 512, &n2, &start2, &err), &err);
    CHECK(start2 == 1 && ids[1] == -1 && ids[3] == -1 && ids[4] == tok_find(t, SP, 3));

    /* Too small a buffer: ERR_RANGE with the full count; bad UTF-8 in the question. */
    int32_t few[4];
    CHECK(tpl_build(t, TPL_LLAVA, q, 7, few, 4, &n2, &start2, &err) == ERR_RANGE);
    CHECK(n2 == n);
    CHECK(tpl_build(t, TPL_LLAVA, "bad \xC3(", 7, ids, 512, &n2, &start2, &err) == ERR_FORMAT);
    CHECK(strstr(err.msg, "offset 4") != NULL);

    /* The answer continuation: "▁red"-style pieces, then EOS; a leading space is the
     * separator, not part of the word. */
    int32_t ans[8], ans2[8];
    int64_t na, na2;
    CHECK_OK(tok_encode_answer(t, "red", ans, 8, &na, &err), &err);
    CHECK_OK(tok_encode_answer(t, " red", ans2, 8, &na2, &err), &err);
    CHECK(na >= 2 && na == na2 && ans[na - 1] == tok_eos(t));
    for (int64_t i = 0; i < na; i++) CHECK(ans[i] == ans2[i]);
    size_t pl;
    const char *p = tok_piece(t, ans[0], &pl);
    CHECK(pl >= 3 && !memcmp(p, SP, 3));
}

/* GGUF keys: round trip of every field, and refusal of other tokenizer models. */
static void test_gguf_keys(const tok_t *t) {
    err_t err = {0};
    char path[] = "/tmp/test_tok_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    gguf_writer_t *w = gguf_writer_create();
    CHECK_OK(gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"), &err);
    const char *pieces[] = {"a", "b"};
    size_t lens[] = {1, 1};
    CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, lens, 2), &err);
    CHECK_OK(gguf_writer_write(w, path, &err), &err);
    gguf_writer_free(w);
    gguf_t *g = NULL;
    tok_t *bad = NULL;
    CHECK_OK(gguf_open(&g, path, &err), &err);
    if (g) {
        CHECK(tok_load(&bad, g, &err) == ERR_UNSUPPORTED);
        CHECK(strstr(err.msg, "gpt2") && strstr(err.msg, path));
        gguf_close(g);
    }
    tok_free(bad);

    /* A vocabulary with no unk, pad and no add_bos: every field must come back. */
    const char *pv[] = {"<s>", "</s>", SP "x", "x"};
    size_t pl[] = {3, 4, 4, 1};
    float sc[] = {0, 0, -1.5f, -2};
    int32_t ty[] = {C, C, N, N};
    for (int variant = 0; variant < 2; variant++) {
        tok_vocab_desc d = {.n = 4, .pieces = pv, .lens = pl, .scores = sc, .types = ty, .bos = 0, .eos = 1,
                            .unk = variant ? 3 : -1, .pad = variant ? 1 : -1, .add_bos = variant,
                            .add_eos = !variant, .add_space_prefix = variant};
        tok_t *src = NULL, *back = NULL;
        if (variant == 0) {
            /* no unk and no byte pieces: text outside the vocabulary could not be encoded */
            CHECK(tok_create(&src, &d, "nounk", &err) == ERR_FORMAT);
            d.unk = 3;
        }
        CHECK_OK(tok_create(&src, &d, "v", &err), &err);
        if (!src) continue;
        w = gguf_writer_create();
        CHECK_OK(tok_write_keys(src, w, &err), &err);
        CHECK_OK(gguf_writer_write(w, path, &err), &err);
        gguf_writer_free(w);
        CHECK_OK(gguf_open(&g, path, &err), &err);
        if (g) {
            CHECK_OK(tok_load(&back, g, &err), &err);
            gguf_close(g);
        }
        if (back) {
            CHECK(tok_n_vocab(back) == 4 && tok_bos(back) == 0 && tok_eos(back) == 1 && tok_unk(back) == 3);
            CHECK(tok_pad(back) == (variant ? 1 : -1));
            CHECK(tok_add_bos(back) == (bool)variant && tok_add_eos(back) == !variant);
            CHECK(tok_add_space_prefix(back) == (bool)variant);
            CHECK(tok_score(back, 2) == -1.5f && tok_type_of(back, 0) == TOK_CONTROL);
            CHECK(tok_find(back, "</s>", 4) == 1 && tok_find(back, "zz", 2) == -1);
        }
        tok_free(src);
        tok_free(back);
    }
    (void)t;
    unlink(path);
}

/* Hand-written ModelProto bytes: the reader's defaults and refusals. */
static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static size_t put_piece(unsigned char *p, const char *s, int type) {
    unsigned char inner[64];
    size_t k = 0, len = strlen(s);
    inner[k++] = 0x0a;
    inner[k++] = (unsigned char)len;
    memcpy(inner + k, s, len), k += len;
    inner[k++] = 0x15; /* score, fixed32 */
    float f = -1.0f;
    memcpy(inner + k, &f, 4), k += 4;
    inner[k++] = 0x18;
    inner[k++] = (unsigned char)type;
    size_t n = 0;
    p[n++] = 0x0a;
    n += put_varint(p + n, k);
    memcpy(p + n, inner, k);
    return n + k;
}

static size_t make_proto(unsigned char *buf, int model_type, const char *norm, int remove_ws) {
    size_t n = 0;
    n += put_piece(buf + n, "<unk>", U);
    n += put_piece(buf + n, "<s>", C);
    n += put_piece(buf + n, "</s>", C);
    n += put_piece(buf + n, SP "a", N);
    unsigned char ts[32];
    size_t k = 0;
    ts[k++] = 0x18, ts[k++] = (unsigned char)model_type;
    ts[k++] = 0xc0, ts[k++] = 0x02; /* field 40 (unk_id), varint */
    ts[k++] = 0;
    ts[k++] = 0xd8, ts[k++] = 0x02; /* field 43 (pad_id) = -1, ten-byte varint */
    k += put_varint(ts + k, (uint64_t)(int64_t)-1);
    buf[n++] = 0x12, buf[n++] = (unsigned char)k;
    memcpy(buf + n, ts, k), n += k;
    unsigned char ns[32];
    k = 0;
    size_t nl = strlen(norm);
    ns[k++] = 0x0a, ns[k++] = (unsigned char)nl;
    memcpy(ns + k, norm, nl), k += nl;
    ns[k++] = 0x20, ns[k++] = (unsigned char)remove_ws;
    buf[n++] = 0x1a, buf[n++] = (unsigned char)k;
    memcpy(buf + n, ns, k), n += k;
    return n;
}

static void test_spm_reader(void) {
    unsigned char buf[256];
    err_t err = {0};
    spm_model_t *m = NULL;
    tok_t *t = NULL;
    size_t n = make_proto(buf, 2, "identity", 0);
    CHECK_OK(spm_model_parse(&m, buf, n, "ok.model", &err), &err);
    if (m) {
        CHECK(m->n == 4 && m->model_type == SPM_BPE && m->unk_id == 0 && m->bos_id == 1 && m->pad_id == -1);
        CHECK(m->add_dummy_prefix && !m->remove_extra_whitespaces && m->scores[3] == -1.0f && m->types[1] == C);
        CHECK_OK(spm_model_to_tok(m, &t, "ok.model", &err), &err);
        if (t) EXPECT(t, "aa", 3, 0); /* "▁a" then an unknown "a" (no byte pieces) */
        tok_free(t);
        spm_model_free(m);
    }
    /* every truncation of a valid file is an error or a smaller valid message, never a crash */
    for (size_t cut = 0; cut < n; cut++) {
        m = NULL;
        if (spm_model_parse(&m, buf, cut, "cut.model", &err) == ERR_OK) spm_model_free(m);
    }
    n = make_proto(buf, 2, "identity", 0);
    CHECK(spm_model_parse(&m, buf, n - 1, "cut.model", &err) == ERR_FORMAT);
    CHECK(strstr(err.msg, "cut.model: byte") != NULL);

    static const struct {
        int type;
        const char *norm;
        int rm;
        const char *says;
    } refuse[] = {{1, "identity", 0, "unigram"}, {2, "nmt_nfkc", 0, "nmt_nfkc"}, {2, "identity", 1, "remove_extra"}};
    for (size_t i = 0; i < 3; i++) {
        n = make_proto(buf, refuse[i].type, refuse[i].norm, refuse[i].rm);
        m = NULL;
        CHECK_OK(spm_model_parse(&m, buf, n, "x.model", &err), &err);
        if (!m) continue;
        t = NULL;
        CHECK(spm_model_to_tok(m, &t, "x.model", &err) == ERR_UNSUPPORTED);
        CHECK_MSG(strstr(err.msg, refuse[i].says) != NULL, "'%s'", err.msg);
        spm_model_free(m);
    }
    const unsigned char group[] = {0x0b, 0x0c};
    CHECK(spm_model_parse(&m, group, 2, "g.model", &err) == ERR_FORMAT);
    CHECK(spm_model_parse(&m, "", 0, "empty.model", &err) == ERR_FORMAT);
}

int main(void) {
    test_bpe_rules();
    test_spm_reader();
    err_t err = {0};
    spm_model_t *m = NULL;
    tok_t *t = NULL;
    CHECK_OK(spm_model_load(&m, LM_SOURCE_DIR "/tests/tok/conformance.model", &err), &err);
    if (m) CHECK_OK(spm_model_to_tok(m, &t, "conformance.model", &err), &err);
    if (t) {
        test_utf8_errors(t);
        test_conformance_vocab(t);
        test_templates(t);
        test_gguf_keys(t);
    }
    tok_free(t);
    spm_model_free(m);
    return test_result("test_tok");
}
