/* lm_probs.c — our side of the llama.cpp comparison (tests/llamacpp/compat.sh): for each
 * TEXT, the tokenizer's ids (BOS first), the log-softmax of the logits after prefilling
 * them, the greedy next token, and the log-softmax after decoding that token. Printed as
 * one JSON object, so compat.mjs can set llama.cpp's numbers beside ours.
 *
 * --stepwise feeds the prompt one token at a time, so that every matmul takes the decode
 * path (8-bit activations for quantized weights, as llama.cpp's CPU backend uses for
 * every matmul); without it the prompt is one prefill (f32 activations, sgemm).
 *
 * usage: lm_probs LM.gguf [--repack] [--stepwise] [--exact] TEXT... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "core/matmul.h"
#include "language/llama.h"
#include "language/tok.h"

static void add_logprobs(cJSON *obj, const char *key, const float *logits, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)logits[i] - mx);
    double lse = mx + log(s);
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)logits[i] - lse));
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: lm_probs LM.gguf [--repack] [--stepwise] [--exact] TEXT...\n");
        return 2;
    }
    int first = 2;
    bool repack = false, stepwise = false, exact = false;
    for (; first < argc && argv[first][0] == '-' && argv[first][1] == '-'; first++) {
        if (!strcmp(argv[first], "--repack"))
            repack = true;
        else if (!strcmp(argv[first], "--stepwise"))
            stepwise = true;
        else if (!strcmp(argv[first], "--exact"))
            exact = true;
        else {
            fprintf(stderr, "lm_probs: unknown option %s\n", argv[first]);
            return 2;
        }
    }
    err_t e = {0};
    lm_model_t *m = NULL;
    tok_t *tok = NULL;
    mm_ctx_t *mm = NULL;
    lm_state_t *s = NULL;
    int rc = 1;
    if (lm_model_load(&m, argv[1], &e) || tok_load(&tok, m->gguf, &e) || mm_ctx_create(&mm, 2, &e)) goto out;
    if (repack && lm_model_repack(m, NULL, &e)) goto out;
    mm_ctx_set_exact(mm, exact);
    if (lm_state_create(&s, m, mm, 256, 64, &e)) goto out;
    const int nv = m->cfg.n_vocab;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "n_vocab", nv);
    cJSON *prompts = cJSON_AddArrayToObject(root, "prompts");
    for (int a = first; a < argc; a++) {
        int32_t ids[200];
        int64_t n = 0;
        if (tok_encode(tok, argv[a], strlen(argv[a]), true, ids, 199, &n, &e)) goto out_json;
        lm_state_set_pos(s, 0);
        for (int64_t i = 0; i < n; i += stepwise ? 1 : n) {
            lm_input_t in = {.ids = ids + i, .n = stepwise ? 1 : n};
            if (lm_prefill(s, &in, NULL, &e)) goto out_json;
        }
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToArray(prompts, p);
        cJSON_AddStringToObject(p, "text", argv[a]);
        cJSON_AddItemToObject(p, "ids", cJSON_CreateIntArray(ids, (int)n));
        add_logprobs(p, "prefill", lm_state_logits(s), nv);
        int next = argmax(lm_state_logits(s), nv);
        cJSON_AddNumberToObject(p, "next", next);
        if (lm_decode(s, next, NULL, &e)) goto out_json;
        add_logprobs(p, "decode", lm_state_logits(s), nv);
    }
    char *txt = cJSON_PrintUnformatted(root);
    if (txt) {
        puts(txt);
        free(txt);
        rc = 0;
    }
out_json:
    cJSON_Delete(root);
out:
    if (rc && e.msg[0]) fprintf(stderr, "lm_probs: %s\n", e.msg);
    lm_state_free(s);
    mm_ctx_free(mm);
    tok_free(tok);
    lm_model_free(m);
    return rc;
}
