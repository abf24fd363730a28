/* test_tok_conformance.c — our SentencePiece-BPE encoder against sentencepiece itself.
 *
 * tests/tok/conformance.model was trained by spm_train with LLaMA's settings
 * (tests/tok/train.sh); tests/tok/expected_ids.txt holds spm_encode's ids for every
 * line of tests/tok/strings.txt (regenerate both with tests/tok/regen.sh). The
 * vocabulary goes the way users' files go: .model -> tok_t -> GGUF tokenizer keys
 * (tok_write_keys) -> file -> tok_load, and every line must give exactly the same ids.
 * Then decoding must give the line back (the vocabulary has byte fallback, so
 * encoding is lossless; a literal U+2581 comes back as a space, as in sentencepiece). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gguf.h"
#include "language/spm_model.h"
#include "language/tok.h"
#include "testutil.h"

#define TOKDIR LM_SOURCE_DIR "/tests/tok/"

/* Splits buf in place at '\n'; returns the line count (a trailing newline ends the
 * last line, it does not start a new one). */
static size_t split_lines(char *buf, size_t len, char **lines, size_t *lens, size_t max) {
    size_t n = 0, start = 0;
    for (size_t i = 0; i < len && n < max; i++)
        if (buf[i] == '\n') {
            lines[n] = buf + start, lens[n] = i - start, n++;
            start = i + 1;
        }
    if (start < len && n < max) lines[n] = buf + start, lens[n] = len - start, n++;
    return n;
}

static int check_all(const tok_t *t, char **str, size_t *slen, char **exp, size_t nlines, const char *label) {
    int32_t ids[16384];
    char dec[65536];
    int bad = 0, bad_dec = 0;
    long total_tokens = 0;
    err_t err = {0};
    for (size_t i = 0; i < nlines; i++) {
        int64_t n;
        if (tok_encode(t, str[i], slen[i], false, ids, 16384, &n, &err)) {
            CHECK_MSG(0, "%s line %zu: %s", label, i + 1, err.msg);
            bad++;
            continue;
        }
        total_tokens += n;
        char got[1 << 17];
        size_t gl = 0;
        for (int64_t k = 0; k < n && gl + 16 < sizeof got; k++) gl += (size_t)sprintf(got + gl, k ? " %d" : "%d", ids[k]);
        got[gl] = '\0';
        if (strcmp(got, exp[i])) {
            if (bad < 5)
                fprintf(stderr, "%s line %zu: text '%.*s'\n  spm:  %s\n  ours: %s\n", label, i + 1, (int)slen[i], str[i],
                        exp[i], got);
            bad++;
        }
        /* A literal U+2581 in the text is a space to sentencepiece, so it decodes as one. */
        char want[65536];
        size_t wl = 0;
        for (size_t k = 0; k < slen[i] && wl < sizeof want; k++) {
            if (k + 3 <= slen[i] && !memcmp(str[i] + k, "\xE2\x96\x81", 3)) want[wl++] = ' ', k += 2;
            else want[wl++] = str[i][k];
        }
        size_t dl;
        if (tok_decode(t, ids, n, true, dec, sizeof dec, &dl, &err) || dl != wl || memcmp(dec, want, dl)) {
            if (bad_dec < 5) fprintf(stderr, "%s line %zu: decode gave '%s' for '%.*s'\n", label, i + 1, dec, (int)slen[i], str[i]);
            bad_dec++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu lines differ from spm_encode", label, bad, nlines);
    CHECK_MSG(bad_dec == 0, "%s: %d of %zu lines do not decode back", label, bad_dec, nlines);
    printf("%s: %zu lines, %ld tokens, %d mismatches, %d decode failures\n", label, nlines, total_tokens, bad, bad_dec);
    return bad;
}

int main(void) {
    size_t slen_all, elen_all;
    char *sbuf = test_slurp(TOKDIR "strings.txt", &slen_all), *ebuf = test_slurp(TOKDIR "expected_ids.txt", &elen_all);
    CHECK(sbuf && ebuf);
    if (!sbuf || !ebuf) return test_result("test_tok_conformance");
    enum { MAXL = 20000 };
    static char *str[MAXL], *exp[MAXL];
    static size_t slen[MAXL], elen[MAXL];
    size_t ns = split_lines(sbuf, slen_all, str, slen, MAXL);
    size_t ne = split_lines(ebuf, elen_all, exp, elen, MAXL);
    for (size_t i = 0; i < ne; i++) exp[i][elen[i]] = '\0';
    CHECK_MSG(ns == ne && ns > 3000, "%zu strings, %zu expected lines", ns, ne);
    if (ns != ne) return test_result("test_tok_conformance");

    err_t err = {0};
    spm_model_t *m = NULL;
    tok_t *direct = NULL, *loaded = NULL;
    CHECK_OK(spm_model_load(&m, TOKDIR "conformance.model", &err), &err);
    if (m) CHECK_OK(spm_model_to_tok(m, &direct, "conformance.model", &err), &err);
    if (direct) {
        CHECK(tok_n_vocab(direct) == 3000);
        CHECK(tok_byte_fallback(direct));
        CHECK(tok_unk(direct) == 0 && tok_bos(direct) == 1 && tok_eos(direct) == 2 && tok_pad(direct) == -1);
        check_all(direct, str, slen, exp, ns, "spm .model");

        char path[] = "/tmp/test_tok_conformance_XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        close(fd);
        gguf_writer_t *w = gguf_writer_create();
        CHECK_OK(tok_write_keys(direct, w, &err), &err);
        CHECK_OK(gguf_writer_write(w, path, &err), &err);
        gguf_writer_free(w);
        gguf_t *g = NULL;
        CHECK_OK(gguf_open(&g, path, &err), &err);
        if (g) {
            CHECK_OK(tok_load(&loaded, g, &err), &err);
            gguf_close(g); /* the tokenizer must not point into the mapping */
        }
        unlink(path);
        if (loaded) {
            CHECK(tok_n_vocab(loaded) == tok_n_vocab(direct));
            for (int32_t i = 0; i < tok_n_vocab(loaded); i++) {
                size_t a, b;
                const char *pa = tok_piece(direct, i, &a), *pb = tok_piece(loaded, i, &b);
                if (a != b || memcmp(pa, pb, a) || tok_score(direct, i) != tok_score(loaded, i) ||
                    tok_type_of(direct, i) != tok_type_of(loaded, i)) {
                    CHECK_MSG(0, "piece %d differs after the GGUF round trip", (int)i);
                    break;
                }
            }
            check_all(loaded, str, slen, exp, ns, "GGUF round trip");
        }
    }
    tok_free(direct);
    tok_free(loaded);
    spm_model_free(m);
    free(sbuf);
    free(ebuf);
    return test_result("test_tok_conformance");
}
