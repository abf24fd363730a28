/* test_tok_toy.c — the toy model's vocabulary (toy/vocab/toy-vocab.gguf) fits the toy
 * world (docs/toy-world.md): every question of every type, in the llava template,
 * tokenizes without unknown or byte-fallback pieces (the template's newline is the one
 * byte piece: no line-trained vocabulary has "\n"), and every answer word is one piece
 * "▁word" followed by EOS. Prints the prompt lengths the trainer will see. */
#include <stdio.h>
#include <string.h>

#include "core/gguf.h"
#include "language/tok.h"
#include "testutil.h"

static const char *const kShapes[] = {"circle", "square", "triangle", "diamond"};
static const char *const kColors[] = {"red", "green", "blue", "yellow", "purple", "orange"};
static const char *const kAnswers[] = {"one", "two", "three", "four", "yes", "no", "left", "right"};

static int64_t min_len = 1 << 30, max_len = 0;
static int n_questions = 0;

static void check_question(const tok_t *t, const char *q) {
    int32_t ids[256];
    int64_t n, start;
    err_t err = {0};
    CHECK_OK(tpl_build(t, TPL_LLAVA, q, 1, ids, 256, &n, &start, &err), &err);
    int32_t nl = tok_find(t, "<0x0A>", 6);
    for (int64_t i = 0; i < n; i++) {
        if (i == start) continue;
        tok_type ty = tok_type_of(t, ids[i]);
        bool ok = ids[i] == tok_bos(t) || ids[i] == nl || ty == TOK_NORMAL;
        CHECK_MSG(ok, "'%s': token %lld (id %d) is of type %d", q, (long long)i, (int)ids[i], (int)ty);
    }
    n -= 1; /* text tokens only */
    if (n < min_len) min_len = n;
    if (n > max_len) max_len = n;
    n_questions++;
}

static void check_answer(const tok_t *t, const char *word) {
    int32_t ids[8];
    int64_t n;
    err_t err = {0};
    CHECK_OK(tok_encode_answer(t, word, ids, 8, &n, &err), &err);
    size_t pl;
    const char *p = tok_piece(t, ids[0], &pl);
    char want[32];
    snprintf(want, sizeof want, "\xE2\x96\x81%s", word);
    CHECK_MSG(n == 2 && ids[1] == tok_eos(t) && pl == strlen(want) && !memcmp(p, want, pl),
              "answer '%s' takes %lld tokens", word, (long long)n);
}

int main(void) {
    err_t err = {0};
    gguf_t *g = NULL;
    tok_t *t = NULL;
    CHECK_OK(gguf_open(&g, LM_SOURCE_DIR "/toy/vocab/toy-vocab.gguf", &err), &err);
    if (g) CHECK_OK(tok_load(&t, g, &err), &err);
    gguf_close(g);
    if (!t) return test_result("test_tok_toy");
    CHECK(tok_byte_fallback(t) && tok_add_bos(t) && tok_bos(t) == 1 && tok_eos(t) == 2 && tok_unk(t) == 0);
    char q[128];
    for (int s = 0; s < 4; s++) {
        snprintf(q, sizeof q, "What color is the %s?", kShapes[s]);
        check_question(t, q);
    }
    for (int c = 0; c < 6; c++) {
        snprintf(q, sizeof q, "What shape is the %s object?", kColors[c]);
        check_question(t, q);
    }
    check_question(t, "How many objects are there?");
    for (int c = 0; c < 6; c++)
        for (int s = 0; s < 4; s++) {
            snprintf(q, sizeof q, "Is there a %s %s?", kColors[c], kShapes[s]);
            check_question(t, q);
            snprintf(q, sizeof q, "Is the %s %s on the left or the right?", kColors[c], kShapes[s]);
            check_question(t, q);
        }
    for (int i = 0; i < 4; i++) check_answer(t, kShapes[i]);
    for (int i = 0; i < 6; i++) check_answer(t, kColors[i]);
    for (int i = 0; i < 8; i++) check_answer(t, kAnswers[i]);
    CHECK(n_questions == 59);
    printf("toy vocabulary: %d pieces; %d questions; llava prompt %lld..%lld text tokens (BOS included) + image "
           "tokens\n",
           (int)tok_n_vocab(t), n_questions, (long long)min_len, (long long)max_len);
    tok_free(t);
    return test_result("test_tok_toy");
}
