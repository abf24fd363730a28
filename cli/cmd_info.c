/* cmd_info.c — `llava-mech info FILE.gguf [--json]`: what a GGUF file holds.
 *
 * Text: header, the architecture's key hyper-parameters, every metadata key with its
 * type and value (arrays abbreviated), a tensor table and totals. --json prints the
 * same content as one JSON object (arrays abbreviated to their first 8 elements). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "core/gguf.h"
#include "core/quant.h"

#define JSON_ARRAY_HEAD 8

typedef struct {
    const char *key; /* after "<arch>." */
    const char *label;
} hparam;

static const hparam llama_hp[] = {
    {"context_length", "context"},
    {"embedding_length", "embedding"},
    {"block_count", "blocks"},
    {"attention.head_count", "heads"},
    {"attention.head_count_kv", "kv heads"},
    {"feed_forward_length", "ffn"},
    {"rope.dimension_count", "rope dims"},
    {"rope.freq_base", "rope base"},
    {"attention.layer_norm_rms_epsilon", "rms eps"},
    {NULL, NULL},
};

static const hparam clip_hp[] = {
    {"vision.image_size", "image size"},
    {"vision.patch_size", "patch"},
    {"vision.embedding_length", "width"},
    {"vision.block_count", "blocks"},
    {"vision.attention.head_count", "heads"},
    {"vision.feed_forward_length", "ffn"},
    {"vision.projection_dim", "projection dim"},
    {"projector_type", "projector type"},
    {"use_gelu", "use gelu"},
    {"vision.feature_layer", "feature layer"},
    {NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f, "usage: llava-mech info FILE.gguf [--json]\n"
               "  Prints the architecture, key hyper-parameters, every metadata key, a tensor\n"
               "  table (name, type, shape, bytes) and totals; --json prints the same as JSON.\n");
}

static const char *tensor_type_name(int type) {
    const qt_traits *tr = qt_get(type);
    return tr ? tr->name : "?";
}

static void shape_text(const tensor_t *t, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (int d = 0; d < t->n_dims && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, d ? " x " : "", t->ne[d]);
}

/* A key or tensor name from the file for one text line: bytes below 0x20 and 0x7f
 * (a newline, a terminal escape) are shown as \xNN, so each entry stays on its line. */
static const char *printable(const char *s, char *buf, size_t cap) {
    size_t k = 0;
    for (; *s && k + 8 < cap; s++) { /* room for one escape and "..." */
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    snprintf(buf + k, cap - k, "%s", *s ? "..." : "");
    return buf;
}

static const char *arch_of(const gguf_t *g, char *buf, size_t cap) {
    if (gguf_get_str(g, "general.architecture", buf, cap, NULL) != ERR_OK) snprintf(buf, cap, "?");
    return buf;
}

/* llama.cpp names the LM keys of every architecture alike ("<arch>.block_count",
 * "<arch>.attention.head_count", ...), so any architecture but clip gets the LLaMA list. */
static const hparam *hparams_for(const char *arch) {
    if (!strcmp(arch, "?")) return NULL;
    if (!strcmp(arch, "clip")) return clip_hp;
    return llama_hp;
}

static void totals(const gguf_t *g, uint64_t *bytes, uint64_t *params) {
    *bytes = *params = 0;
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const tensor_t *t = gguf_tensor(g, i);
        *bytes += t->nbytes;
        *params += (uint64_t)tensor_nelements(t);
    }
}

static void print_text(const gguf_t *g) {
    char arch[64], line[1024], key[1024];
    arch_of(g, arch, sizeof arch);
    printf("file:          %s\n", gguf_path(g));
    printf("format:        GGUF v%u, %zu bytes, alignment %zu, data at byte %zu\n", gguf_version(g),
           gguf_file_size(g), gguf_alignment(g), gguf_data_offset(g));
    printf("architecture:  %s\n", printable(arch, key, sizeof key));
    int64_t ni = gguf_find_key(g, "general.name");
    if (ni >= 0) {
        gguf_kv_format(g, ni, line, sizeof line);
        printf("name:          %s\n", line);
    }
    const hparam *hp = hparams_for(arch);
    if (hp) {
        printf("\nhyper-parameters:\n");
        for (; hp->key; hp++) {
            snprintf(key, sizeof key, "%s.%s", arch, hp->key);
            int64_t i = gguf_find_key(g, key);
            if (i < 0) continue;
            gguf_kv_format(g, i, line, sizeof line);
            printf("  %-16s %s\n", hp->label, line);
        }
        int64_t tk = gguf_find_key(g, "tokenizer.ggml.tokens");
        if (tk >= 0) printf("  %-16s %" PRIu64 "\n", "vocab", gguf_kv_arr_len(g, tk));
    }
    printf("\nmetadata (%" PRId64 " keys):\n", gguf_n_kv(g));
    for (int64_t i = 0; i < gguf_n_kv(g); i++) {
        gguf_kv_format(g, i, line, sizeof line);
        printf("  %-44s %-6s %s\n", printable(gguf_kv_key(g, i), key, sizeof key), gguf_type_name(gguf_kv_type(g, i)),
               line);
    }
    printf("\ntensors (%" PRId64 "):\n", gguf_n_tensors(g));
    printf("  %-40s %-6s %-24s %14s\n", "name", "type", "shape", "bytes");
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const tensor_t *t = gguf_tensor(g, i);
        char shape[96];
        shape_text(t, shape, sizeof shape);
        printf("  %-40s %-6s %-24s %14zu\n", printable(t->name, key, sizeof key), tensor_type_name(t->type), shape,
               t->nbytes);
    }
    uint64_t bytes, params;
    totals(g, &bytes, &params);
    printf("\ntotal: %" PRId64 " tensors, %" PRIu64 " bytes (%.2f MiB), %" PRIu64 " parameters (%.3f M)\n",
           gguf_n_tensors(g), bytes, (double)bytes / (1024.0 * 1024.0), params, (double)params / 1e6);
}

/* cJSON strings are C strings: a piece with a NUL byte is cut there, which is fine
 * for a display format. */
static cJSON *json_string(const char *s, size_t len) {
    char *tmp = malloc(len + 1);
    if (!tmp) return NULL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    cJSON *j = cJSON_CreateString(tmp);
    free(tmp);
    return j;
}

/* A value as JSON: numbers, bools and strings as themselves; an array as
 * {elem_type, length, head} with the first JSON_ARRAY_HEAD elements, nested arrays
 * in the same form. */
static cJSON *json_value(gguf_val_t v) {
    if (v.type == GGUF_T_STRING) {
        size_t len;
        const char *s = gguf_val_str(v, &len);
        return json_string(s, len);
    }
    if (v.type != GGUF_T_ARRAY) {
        int64_t si;
        uint64_t ui;
        bool uns;
        if (gguf_val_int(v, &si, &ui, &uns)) { /* exact digits, even beyond 2^53 */
            char num[24];
            if (uns) snprintf(num, sizeof num, "%" PRIu64, ui);
            else snprintf(num, sizeof num, "%" PRId64, si);
            return cJSON_CreateRaw(num);
        }
        double x = gguf_val_num(v);
        if (v.type == GGUF_T_BOOL) return cJSON_CreateBool(x != 0.0);
        if (!isfinite(x)) return cJSON_CreateNull(); /* JSON has no inf/nan */
        return cJSON_CreateNumber(x);
    }
    cJSON *o = cJSON_CreateObject();
    uint64_t n = gguf_val_arr_len(v);
    cJSON_AddStringToObject(o, "elem_type", gguf_type_name(gguf_val_arr_type(v)));
    cJSON_AddNumberToObject(o, "length", (double)n);
    cJSON *head = cJSON_AddArrayToObject(o, "head");
    gguf_val_t e;
    for (uint64_t k = 0; k < JSON_ARRAY_HEAD && gguf_val_elem(v, k, &e); k++) cJSON_AddItemToArray(head, json_value(e));
    return o;
}

static int print_json(const gguf_t *g) {
    char arch[64], key[256];
    arch_of(g, arch, sizeof arch);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", gguf_path(g));
    cJSON_AddNumberToObject(root, "version", gguf_version(g));
    cJSON_AddNumberToObject(root, "file_size", (double)gguf_file_size(g));
    cJSON_AddNumberToObject(root, "alignment", (double)gguf_alignment(g));
    cJSON_AddNumberToObject(root, "data_offset", (double)gguf_data_offset(g));
    cJSON_AddStringToObject(root, "architecture", arch);
    cJSON *hps = cJSON_AddObjectToObject(root, "hyperparameters");
    const hparam *hp = hparams_for(arch);
    for (; hp && hp->key; hp++) {
        snprintf(key, sizeof key, "%s.%s", arch, hp->key);
        int64_t i = gguf_find_key(g, key);
        if (i >= 0) cJSON_AddItemToObject(hps, hp->key, json_value(gguf_kv_value(g, i)));
    }
    int64_t tk = gguf_find_key(g, "tokenizer.ggml.tokens");
    if (tk >= 0) cJSON_AddNumberToObject(hps, "vocab", (double)gguf_kv_arr_len(g, tk));
    cJSON *meta = cJSON_AddArrayToObject(root, "metadata");
    for (int64_t i = 0; i < gguf_n_kv(g); i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "key", gguf_kv_key(g, i));
        cJSON_AddStringToObject(m, "type", gguf_type_name(gguf_kv_type(g, i)));
        cJSON_AddItemToObject(m, "value", json_value(gguf_kv_value(g, i)));
        cJSON_AddItemToArray(meta, m);
    }
    cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const tensor_t *t = gguf_tensor(g, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "type", tensor_type_name(t->type));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t->n_dims; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->ne[d]));
        cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
        cJSON_AddItemToArray(ts, o);
    }
    uint64_t bytes, params;
    totals(g, &bytes, &params);
    cJSON *tot = cJSON_AddObjectToObject(root, "totals");
    cJSON_AddNumberToObject(tot, "tensors", (double)gguf_n_tensors(g));
    cJSON_AddNumberToObject(tot, "bytes", (double)bytes);
    cJSON_AddNumberToObject(tot, "params", (double)params);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) {
        fprintf(stderr, "llava-mech info: %s: out of memory formatting JSON\n", gguf_path(g));
        return 1;
    }
    puts(s);
    cJSON_free(s);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "llava-mech info: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        } else if (path) {
            fprintf(stderr, "llava-mech info: one file at a time ('%s' and '%s')\n", path, argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "llava-mech info: no file given (usage: llava-mech info FILE.gguf [--json])\n");
        return 2;
    }
    gguf_t *g;
    err_t err = {0};
    if (gguf_open(&g, path, &err) != ERR_OK) {
        fprintf(stderr, "llava-mech info: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (json) rc = print_json(g);
    else print_text(g);
    gguf_close(g);
    return rc;
}
