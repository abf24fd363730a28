/* cmd_ask.c — `llava-mech ask`: answer a question about an image (flags follow
 * llama.cpp's llava-cli / mtmd-cli where they overlap). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "commands.h"
#include "core/npy.h"
#include "language/llava.h"

#include "cli_util.h"
#define fail(...) cli_fail("ask", 1, __VA_ARGS__)

static void usage(FILE *f) {
    fprintf(f,
            "usage: llava-mech ask [-m LM.gguf --mmproj MMPROJ.gguf] --image IMG -p QUESTION [options]\n"
            "\n"
            "Answers QUESTION about IMG with a LLaVA-1.5 model (the shipped toy model when -m and\n"
            "--mmproj are omitted: " LLAVA_DEFAULT_LM ", " LLAVA_DEFAULT_MMPROJ ").\n"
            "  -m, --model F        language model GGUF (general.architecture llama)\n"
            "  --mmproj F           vision tower + projector GGUF (clip)\n"
            "  --image F            PNG/JPEG/BMP/GIF/TGA/PNM image\n"
            "  -p, --prompt TEXT    the question (placed in the template)\n"
            "  -n, --n-predict N    max tokens to generate (default 32; stops at end-of-sequence)\n"
            "  -t, --threads N      threads (default: all CPUs)\n"
            "  -c, --ctx-size N     context length (default: the model's)\n"
            "  --temp T             temperature; 0 = greedy (default 0)\n"
            "  --top-k K            keep the K most likely tokens (default 0 = off)\n"
            "  --top-p P            nucleus sampling mass (default 1 = off)\n"
            "  --seed S             sampling seed (default 0)\n"
            "  --template T         llava (default: USER: <image>\\n{q} ASSISTANT:), llava-sys, raw\n"
            "  --max-side N         refuse images wider or taller than N pixels (default 16384)\n"
            "  --pipeline P         pad (default: LLaVA-1.5's pad-to-square), crop (HF processor), or\n"
            "                       llamacpp (llama.cpp's resize-then-letterbox, to reproduce its tokens)\n"
            "  --exact              f32 activations when decoding with quantized weights (default:\n"
            "                       8-bit activations and integer dots, as llama.cpp)\n"
            "  --no-repack          keep Q4_K/Q8_0 weights in the file's layout (default: repack them\n"
            "                       16 rows at a time on AVX512-VNNI CPUs for 1.1-1.3x faster\n"
            "                       decoding, at the cost of copying them once when loading)\n"
            "  --json               print answer, token ids, log-probabilities, image span, timings\n"
            "  --logits-out F.npy   write the logits at the last prompt position (float32 [n_vocab])\n");
}

static bool parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* A new buffer holding s with invalid UTF-8 replaced by U+FFFD (JSON must be UTF-8). */
static char *utf8_clean(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    if (out) tok_utf8_sanitize(s, n, out);
    return out;
}

static int print_json(const llava_t *l, const llava_answer_t *a, double ms_load, const char *image) {
    cJSON *root = cJSON_CreateObject();
    char *answer = utf8_clean(a->text ? a->text : "");
    cJSON_AddStringToObject(root, "answer", answer ? answer : "");
    free(answer);
    cJSON *ids = cJSON_AddArrayToObject(root, "tokens");
    cJSON *lps = cJSON_AddArrayToObject(root, "logprobs");
    cJSON *pieces = cJSON_AddArrayToObject(root, "pieces");
    for (int64_t i = 0; i < a->n; i++) {
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(a->ids[i]));
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(a->logprobs[i]));
        size_t len = 0;
        const char *p = tok_piece(l->tok, a->ids[i], &len);
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 255 ? len : 255), p ? p : "");
        char *clean = utf8_clean(buf);
        cJSON_AddItemToArray(pieces, cJSON_CreateString(clean ? clean : ""));
        free(clean);
    }
    cJSON_AddBoolToObject(root, "eos", a->eos);
    cJSON *span = cJSON_AddArrayToObject(root, "image_span");
    cJSON_AddItemToArray(span, cJSON_CreateNumber((double)a->image_start));
    cJSON_AddItemToArray(span, cJSON_CreateNumber((double)(a->image_start + a->n_image)));
    cJSON_AddNumberToObject(root, "n_prompt", (double)a->n_prompt);
    cJSON_AddNumberToObject(root, "n_image", (double)a->n_image);
    cJSON_AddNumberToObject(root, "grid", l->grid);
    cJSON_AddStringToObject(root, "image", image);
    cJSON_AddStringToObject(root, "pipeline", pp_pipeline_name(l->params.pipeline));
    cJSON_AddStringToObject(root, "template", tpl_name(l->params.tpl));
    cJSON_AddBoolToObject(root, "exact", l->params.exact);
    cJSON_AddStringToObject(root, "lm", l->lm_path);
    cJSON_AddStringToObject(root, "mmproj", l->mmproj_path);
    cJSON_AddNumberToObject(root, "n_ctx", (double)l->st->n_ctx);
    cJSON *t = cJSON_AddObjectToObject(root, "timings_ms");
    cJSON_AddNumberToObject(t, "load", ms_load);
    cJSON_AddNumberToObject(t, "encode", a->ms_encode);
    cJSON_AddNumberToObject(t, "prefill", a->ms_prefill);
    cJSON_AddNumberToObject(t, "decode", a->ms_decode);
    cJSON_AddNumberToObject(root, "prefill_tokens_per_s", a->ms_prefill > 0 ? a->n_prompt * 1e3 / a->ms_prefill : 0);
    /* the first generated token comes from the prefill's logits */
    cJSON_AddNumberToObject(root, "decode_tokens_per_s",
                            a->ms_decode > 0 && a->n > 1 ? (double)(a->n - 1) * 1e3 / a->ms_decode : 0);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) return fail("out of memory writing JSON");
    puts(s);
    free(s);
    return 0;
}

int cmd_ask(int argc, char **argv) {
    llava_params_t p = llava_default_params();
    p.repack = true;
    llava_gen_params_t g = llava_default_gen();
    const char *image = NULL, *question = NULL, *logits_out = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!strcmp(a, "--exact")) {
            p.exact = true;
            continue;
        }
        if (!strcmp(a, "--no-repack")) {
            p.repack = false;
            continue;
        }
        if (i + 1 >= argc) return fail("%s needs a value (try --help)", a);
        const char *v = argv[++i];
        long n;
        double d;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            p.lm_path = v;
        else if (!strcmp(a, "--mmproj"))
            p.mmproj_path = v;
        else if (!strcmp(a, "--image"))
            image = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt"))
            question = v;
        else if (!strcmp(a, "--logits-out"))
            logits_out = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!parse_long(v, 0, 1 << 20, &n)) return fail("-n '%s': expected a count 0..1048576", v);
            g.n_predict = (int)n;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!parse_long(v, 1, 1024, &n)) return fail("-t '%s': expected 1..1024 threads", v);
            p.n_threads = (int)n;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!parse_long(v, 1, 1 << 20, &n)) return fail("-c '%s': expected a context length 1..1048576", v);
            p.n_ctx = n;
        } else if (!strcmp(a, "--max-side")) {
            if (!cli_parse_int(v, 1, CLI_MAX_SIDE_HI, &p.max_side))
                return fail("--max-side '%s': expected 1..%d pixels", v, CLI_MAX_SIDE_HI);
        } else if (!strcmp(a, "--temp")) {
            if (!parse_float(v, 0.0, 100.0, &d)) return fail("--temp '%s': expected 0..100", v);
            g.sample.temp = (float)d;
        } else if (!strcmp(a, "--top-k")) {
            if (!parse_long(v, 0, 1 << 24, &n)) return fail("--top-k '%s': expected a count >= 0", v);
            g.sample.top_k = (int)n;
        } else if (!strcmp(a, "--top-p")) {
            if (!parse_float(v, 1e-6, 1.0, &d)) return fail("--top-p '%s': expected a mass in (0, 1]", v);
            g.sample.top_p = (float)d;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') return fail("--seed '%s': expected an unsigned integer", v);
            g.sample.seed = (uint64_t)s;
        } else if (!strcmp(a, "--template")) {
            int t = tpl_from_name(v);
            if (t < 0) return fail("--template '%s': expected llava, llava-sys or raw", v);
            p.tpl = (tpl_kind)t;
        } else if (!strcmp(a, "--pipeline")) {
            int pp = pp_pipeline_from_name(v);
            if (pp < 0) return fail("--pipeline '%s': expected pad, crop or llamacpp", v);
            p.pipeline = (pp_pipeline)pp;
        } else
            return fail("unknown option '%s' (try --help)", a);
    }
    if (!image) return fail("--image is required (try --help)");
    if (!question) return fail("-p QUESTION is required (try --help)");
    if (!p.lm_path != !p.mmproj_path) return fail("give both -m and --mmproj, or neither (for the shipped model)");

    err_t e = {0};
    llava_t *l = NULL;
    double t0 = now_ms();
    if (llava_load(&l, &p, &e)) return fail("%s", e.msg);
    double ms_load = now_ms() - t0;
    llava_answer_t ans;
    int rc = 0;
    if (llava_ask(l, image, question, &g, &ans, &e)) {
        rc = fail("%s", e.msg);
    } else {
        if (logits_out) {
            int64_t shape[1] = {ans.n_vocab};
            if (npy_write_f32(logits_out, ans.first_logits, 1, shape, &e)) rc = fail("%s", e.msg);
        }
        if (!rc) {
            if (json)
                rc = print_json(l, &ans, ms_load, image);
            else
                printf("%s\n", ans.text);
        }
    }
    llava_answer_free(&ans);
    llava_free(l);
    return rc;
}
