/* cmd_convert_vocab.c — `llava-mech convert-vocab SPM.model -o VOCAB.gguf`: a GGUF
 * holding only the tokenizer keys of a SentencePiece BPE model.
 *
 * A vocabulary alone is not a model, so the file carries no general.architecture
 * (no "llama": a loader looking for llama.* hyperparameters would otherwise accept it
 * and fail later). It is marked general.type = "vocab" (gguf-py's general.type names
 * what a file holds), general.name is the model file's base name, and the tokenizer.*
 * keys are exactly those tok_load reads and a llama.cpp LM file carries. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "core/gguf.h"
#include "language/spm_model.h"
#include "language/tok.h"

#include "cli_util.h"
#define fail(...) cli_fail("convert-vocab", 1, __VA_ARGS__)


static void usage(FILE *f) {
    fprintf(f, "usage: llava-mech convert-vocab SPM.model -o VOCAB.gguf\n"
               "\n"
               "Writes the vocabulary of a SentencePiece BPE model (trained with LLaMA's settings:\n"
               "identity normalisation, whitespace kept, dummy prefix; byte fallback recommended)\n"
               "as GGUF tokenizer.ggml.* keys (model \"llama\"), usable with 'tokenize -m'. Other\n"
               "model types or normalisation rules are refused.\n");
}

int cmd_convert_vocab(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] == '-') {
            usage(stderr);
            return fail("unknown option or missing value: %s", argv[i]);
        } else if (!in) in = argv[i];
        else return fail("more than one input file ('%s')", argv[i]);
    }
    if (!in || !out) {
        usage(stderr);
        return fail("need SPM.model and -o VOCAB.gguf");
    }
    err_t err = {0};
    spm_model_t *m = NULL;
    tok_t *t = NULL;
    gguf_writer_t *w = NULL;
    int status = 0;
    if (spm_model_load(&m, in, &err) || spm_model_to_tok(m, &t, in, &err)) {
        status = fail("%s", err.msg);
        goto done;
    }
    if (!(w = gguf_writer_create())) {
        status = fail("out of memory");
        goto done;
    }
    const char *base = strrchr(in, '/');
    base = base ? base + 1 : in;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(strcspn(base, ".") ? strcspn(base, ".") : strlen(base)), base);
    if (gguf_writer_set_str(w, "general.type", "vocab") || gguf_writer_set_str(w, "general.name", name)) {
        status = fail("cannot add the general.* keys");
        goto done;
    }
    if (tok_write_keys(t, w, &err) || gguf_writer_write(w, out, &err)) {
        status = fail("%s", err.msg);
        goto done;
    }
    printf("%s: %d pieces (%s byte fallback), bos %d, eos %d, unk %d -> %s\n", in, (int)tok_n_vocab(t),
           tok_byte_fallback(t) ? "with" : "no", (int)tok_bos(t), (int)tok_eos(t), (int)tok_unk(t), out);
done:
    gguf_writer_free(w);
    tok_free(t);
    spm_model_free(m);
    return status;
}
