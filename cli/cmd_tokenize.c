/* cmd_tokenize.c — `llava-mech tokenize`: show how the vocabulary of a GGUF (or a
 * SentencePiece .model) splits a text or a LLaVA prompt. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "core/gguf.h"
#include "language/spm_model.h"
#include "language/tok.h"

#include "cli_util.h"
#define fail(...) cli_fail("tokenize", 1, __VA_ARGS__)

#define DEFAULT_VOCAB LM_SOURCE_DIR "/toy/vocab/toy-vocab.gguf"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llava-mech tokenize [-m MODEL.gguf | --spm SPM.model] [--ids] [--bos] [--decode]\n"
            "                           [--template llava|llava-sys|raw [--image-tokens N]] TEXT\n"
            "       llava-mech tokenize [-m MODEL.gguf | --spm SPM.model] --file FILE\n"
            "\n"
            "Encodes TEXT with the SentencePiece-BPE vocabulary of MODEL.gguf (tokenizer.ggml.*\n"
            "keys; default: the toy vocabulary %s).\n"
            "  default         one token per line: ID <tab> PIECE (U+2581 marks a space; bytes\n"
            "                  that would not print are shown as \\n, \\t, \\xNN)\n"
            "  --ids           only the ids, space-separated, on one line\n"
            "  --bos           put BOS first (off by default, also when the vocabulary asks for it)\n"
            "  --decode        also print the decoded text (\"text: ...\")\n"
            "  --template T    tokenize the LLaVA prompt T with TEXT as the question; image slots\n"
            "                  print as id -1 <image>; --image-tokens N slots (default 1)\n"
            "  --file FILE     encode each line of FILE (without its newline) and print its ids on\n"
            "                  one line (the format of spm_encode --output_format=id)\n"
            "  --spm F         read the vocabulary from a SentencePiece .model file instead\n",
            DEFAULT_VOCAB);
}

static void print_piece(FILE *f, const char *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02X", c);
        else fputc(c, f);
    }
}

/* Opens the vocabulary of a GGUF or a .model file. */
static err_code open_vocab(const char *gguf_path, const char *spm_path, tok_t **t, err_t *err) {
    if (spm_path) {
        spm_model_t *m;
        err_code rc = spm_model_load(&m, spm_path, err);
        if (rc) return rc;
        rc = spm_model_to_tok(m, t, spm_path, err);
        spm_model_free(m);
        return rc;
    }
    gguf_t *g;
    err_code rc = gguf_open(&g, gguf_path, err);
    if (rc) return rc;
    rc = tok_load(t, g, err);
    gguf_close(g);
    return rc;
}

static int encode_file(const tok_t *t, const char *path, bool bos) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail("%s: cannot open", path);
    char *line = NULL;
    size_t lcap = 0, ncap = 0;
    int32_t *ids = NULL;
    ssize_t len;
    long lineno = 0;
    int status = 0;
    err_t err = {0};
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n') len--;
        size_t need = 4 * (size_t)len + 8; /* at most one id per byte, plus BOS */
        if (need > ncap) {
            int32_t *p = realloc(ids, need * sizeof *ids);
            if (!p) {
                status = fail("out of memory");
                break;
            }
            ids = p, ncap = need;
        }
        int64_t n;
        if (tok_encode(t, line, (size_t)len, bos, ids, (int64_t)ncap, &n, &err)) {
            status = fail("%s:%ld: %s", path, lineno, err.msg);
            break;
        }
        for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
    }
    free(line);
    free(ids);
    fclose(f);
    return status;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *spm = NULL, *file = NULL, *text = NULL, *tpl = NULL;
    bool only_ids = false, bos = false, decode = false;
    long n_image = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--ids")) only_ids = true;
        else if (!strcmp(a, "--bos")) bos = true;
        else if (!strcmp(a, "--decode")) decode = true;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) model = argv[++i];
        else if (!strcmp(a, "--spm") && has_val) spm = argv[++i];
        else if (!strcmp(a, "--file") && has_val) file = argv[++i];
        else if (!strcmp(a, "--template") && has_val) tpl = argv[++i];
        else if (!strcmp(a, "--image-tokens") && has_val) {
            char *end;
            n_image = strtol(argv[++i], &end, 10);
            if (*end || n_image < 0 || n_image > 100000) return fail("--image-tokens: '%s' is not a count", argv[i]);
        } else if (a[0] == '-' && a[1] && !text) {
            usage(stderr);
            return fail("unknown option or missing value: %s", a);
        } else if (!text) text = a;
        else return fail("more than one TEXT argument ('%s'); quote the text", a);
    }
    if (model && spm) return fail("give either -m or --spm, not both");
    if (!model && !spm) model = DEFAULT_VOCAB;
    if (!file && !text) {
        usage(stderr);
        return fail("no TEXT given");
    }
    int k = -1;
    if (tpl && (k = tpl_from_name(tpl)) < 0) return fail("unknown template '%s' (llava, llava-sys, raw)", tpl);
    err_t err = {0};
    tok_t *t;
    if (open_vocab(model, spm, &t, &err)) return fail("%s", err.msg);
    if (file) {
        int rc = encode_file(t, file, bos);
        tok_free(t);
        return rc;
    }
    size_t len = strlen(text);
    int64_t cap = 4 * (int64_t)len + 512 + n_image, n = 0, image_start = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int status = 0;
    if (!ids) status = fail("out of memory");
    else if (k >= 0 && tpl_build(t, (tpl_kind)k, text, n_image, ids, cap, &n, &image_start, &err))
        status = fail("%s", err.msg);
    else if (k < 0 && tok_encode(t, text, len, bos, ids, cap, &n, &err))
        status = fail("%s", err.msg);
    if (!status) {
        if (only_ids) {
            for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
            putchar('\n');
        } else {
            for (int64_t i = 0; i < n; i++) {
                printf("%d\t", (int)ids[i]);
                if (ids[i] < 0) fputs("<image>", stdout);
                else {
                    size_t pl;
                    const char *p = tok_piece(t, ids[i], &pl);
                    print_piece(stdout, p, pl);
                }
                putchar('\n');
            }
        }
        if (k >= 0) printf("image span: [%lld, %lld)\n", (long long)image_start, (long long)(image_start + n_image));
        if (decode) {
            size_t cap_txt = 8 * (size_t)n + 16, got;
            char *buf = malloc(cap_txt);
            /* image slots (-1) are not tokens: decode the runs around them */
            int64_t a = 0;
            if (!buf) status = fail("out of memory");
            fputs("text: ", stdout);
            while (!status && a < n) {
                int64_t b = a;
                while (b < n && ids[b] >= 0) b++;
                if (tok_decode(t, ids + a, b - a, a == 0 || (k >= 0 && a > 0), buf, cap_txt, &got, &err)) {
                    status = fail("%s", err.msg);
                    break;
                }
                fputs(buf, stdout);
                if (b < n) fputs("<image>", stdout);
                while (b < n && ids[b] < 0) b++;
                a = b;
            }
            putchar('\n');
            free(buf);
        }
    }
    free(ids);
    tok_free(t);
    return status;
}
