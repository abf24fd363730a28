/* template.c — LLaVA prompts as token ids with an image span.
 *
 * The rule matches HF's llava-hf processor (LlamaTokenizer/Fast with legacy
 * behaviour): the prompt is split at the <image> placeholder and each text segment is
 * encoded on its own by SentencePiece, so each segment gets its own dummy-prefix
 * U+2581. For "USER: <image>\nWhat's the content of the image? ASSISTANT:" on the
 * LLaMA vocabulary this gives
 *   1 | 3148 1001 29901 29871 | <image> | 29871 13 5618 ...
 *   <s> | "▁US" "ER" ":" "▁"  |         | "▁" <0x0A> "What" ...
 * which is the id sequence published for llava-1.5 (vLLM's LLaVA docs, mllm's tokenizer
 * test): the space before <image> is a lone "▁" and the text after it starts with
 * another lone "▁" before the newline byte. The image slots are written as -1; the
 * caller replaces them with projector outputs. */
#include <stdlib.h>
#include <string.h>

#include "tok.h"

/* LLaVA's conv_vicuna_v1 / conv_llava_v1 system sentence; the template joins system,
 * "USER: ..." and "ASSISTANT:" with single spaces (sep_style TWO, sep " "). */
static const char kSystem[] = "A chat between a curious human and an artificial intelligence assistant. "
                              "The assistant gives helpful, detailed, and polite answers to the human's questions.";

static const char *const kNames[] = {"llava", "llava-sys", "raw"};

int tpl_from_name(const char *name) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, kNames[i])) return i;
    return -1;
}

const char *tpl_name(tpl_kind k) { return (unsigned)k < 3 ? kNames[k] : "?"; }

typedef struct {
    const tok_t *t;
    int32_t *ids;
    int64_t cap, n;
    err_t *err;
} build_t;

static err_code put_text(build_t *b, const char *a, size_t alen, const char *q, size_t qlen, const char *z,
                         size_t zlen, char *scratch) {
    /* One segment = a + q + z, encoded as a whole (scratch holds the concatenation). */
    memcpy(scratch, a, alen);
    memcpy(scratch + alen, q, qlen);
    memcpy(scratch + alen + qlen, z, zlen);
    int64_t room = b->cap > b->n ? b->cap - b->n : 0, got = 0;
    err_code rc = tok_encode(b->t, scratch, alen + qlen + zlen, false, room ? b->ids + b->n : NULL, room, &got, b->err);
    if (rc && rc != ERR_RANGE) return rc;
    b->n += got;
    return ERR_OK;
}

err_code tpl_build(const tok_t *t, tpl_kind kind, const char *question, int64_t n_image, int32_t *ids,
                   int64_t cap, int64_t *n_out, int64_t *image_start, err_t *err) {
    *n_out = 0;
    *image_start = 0;
    if ((unsigned)kind > TPL_RAW) return err_set(err, ERR_ARG, "unknown prompt template %d", (int)kind);
    if (n_image < 0) return err_set(err, ERR_ARG, "negative image token count %lld", (long long)n_image);
    size_t qlen = strlen(question), bad;
    if (!tok_utf8_valid(question, qlen, &bad))
        return err_set(err, ERR_FORMAT, "question: invalid UTF-8 at byte offset %zu (byte 0x%02X)", bad,
                       (unsigned)(unsigned char)question[bad]);
    static const char kUser[] = "USER: ", kAssistant[] = " ASSISTANT:";
    char head[sizeof kSystem + sizeof kUser];
    size_t hlen = 0;
    if (kind == TPL_LLAVA_SYS) {
        memcpy(head, kSystem, sizeof kSystem - 1);
        hlen = sizeof kSystem - 1;
        head[hlen++] = ' ';
    }
    if (kind != TPL_RAW) memcpy(head + hlen, kUser, sizeof kUser - 1), hlen += sizeof kUser - 1;
    const char *tail = kind == TPL_RAW ? "" : kAssistant;
    size_t tlen = strlen(tail);
    char *scratch = malloc(hlen + qlen + tlen + 2);
    if (!scratch) return err_set(err, ERR_NOMEM, "out of memory building the prompt");
    build_t b = {t, ids, cap < 0 ? 0 : cap, 0, err};
    err_code rc = ERR_OK;
    if (tok_add_bos(t)) {
        if (tok_bos(t) < 0) {
            rc = err_set(err, ERR_ARG, "the vocabulary asks for BOS but has no BOS token");
            goto done;
        }
        if (b.n < b.cap) ids[b.n] = tok_bos(t);
        b.n++;
    }
    if (hlen && (rc = put_text(&b, head, hlen, "", 0, "", 0, scratch))) goto done;
    *image_start = b.n;
    for (int64_t i = 0; i < n_image; i++, b.n++)
        if (b.n < b.cap) ids[b.n] = -1;
    if ((rc = put_text(&b, "\n", 1, question, qlen, tail, tlen, scratch))) goto done;
    *n_out = b.n;
    if (b.n > b.cap)
        rc = err_set(err, ERR_RANGE, "prompt needs %lld tokens, room for %lld", (long long)b.n, (long long)b.cap);
done:
    free(scratch);
    return rc;
}
