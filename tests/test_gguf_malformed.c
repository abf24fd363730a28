/* test_gguf_malformed.c — every hand-made broken file in tests/fuzz/malformed/
 * (written by tests/fuzz/make_malformed.py) must be refused: the right error code,
 * a message "FILE: byte N: ..." naming the problem, no crash (the ASan build runs
 * this too). Also: every strict prefix of a valid file fails cleanly, the valid
 * base file the cases are derived from opens, and so do the fuzzer's seed files,
 * whose every prefix and 3000 deterministic mutants each must fail cleanly too. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "testutil.h"

#define DIR_MALFORMED LM_SOURCE_DIR "/tests/fuzz/malformed"

typedef struct {
    const char *file;
    err_code code;
    const char *says; /* a phrase the message must contain */
} mcase;

static const mcase cases[] = {
    {"trunc_magic.gguf", ERR_FORMAT, "byte 0: expected magic \"GGUF\""},
    {"trunc_header.gguf", ERR_FORMAT, "byte 8: expected tensor count"},
    {"bad_magic.gguf", ERR_FORMAT, "not a GGUF file"},
    {"bad_version.gguf", ERR_FORMAT, "byte 4: version 7 (expected 2 or 3)"},
    {"version1.gguf", ERR_UNSUPPORTED, "version 1 is not supported"},
    {"big_endian.gguf", ERR_UNSUPPORTED, "big-endian"},
    {"huge_kv_count.gguf", ERR_FORMAT, "metadata count 4611686018427387904 cannot fit"},
    {"huge_tensor_count.gguf", ERR_FORMAT, "tensor count 4611686018427387904 cannot fit"},
    {"trunc_in_key.gguf", ERR_FORMAT, "metadata key has length 17 but only 5 bytes remain"},
    {"trunc_in_value.gguf", ERR_FORMAT, "expected u32 value (4 bytes), found end of file"},
    {"trunc_in_array.gguf", ERR_FORMAT, "key tokenizer.ggml.tokens: string value has length 4 but only 2"},
    {"huge_key_len.gguf", ERR_FORMAT, "byte 24: metadata key has length 4611686018427387904"},
    {"unterminated_string.gguf", ERR_FORMAT, "key k: string value has length 100 but only 10"},
    {"overlong_string.gguf", ERR_FORMAT, "string value has length 18446744073709551615"},
    {"unknown_kv_type.gguf", ERR_FORMAT, "key x: unknown value type 13"},
    {"unknown_array_type.gguf", ERR_FORMAT, "key x: unknown array element type 99"},
    {"huge_array.gguf", ERR_FORMAT, "key x: array of 2305843009213693952 u32"},
    {"huge_string_array.gguf", ERR_FORMAT, "array of 1099511627776 string"},
    {"nested_array_bomb.gguf", ERR_FORMAT, "arrays nested deeper than"},
    {"nested_array_huge.gguf", ERR_FORMAT, "array of 1099511627776 array"},
    {"bad_bool.gguf", ERR_FORMAT, "key b: bool value 2"},
    {"duplicate_key.gguf", ERR_FORMAT, "duplicate key name 'n'"},
    {"nul_in_key.gguf", ERR_FORMAT, "metadata key contains a NUL byte"},
    {"bad_alignment.gguf", ERR_FORMAT, "general.alignment is 48 (expected a power of two)"},
    {"alignment_type.gguf", ERR_FORMAT, "general.alignment has type u64 (expected u32)"},
    {"trunc_in_tensor_info.gguf", ERR_FORMAT, "expected tensor dimension (8 bytes), found end of file"},
    {"zero_dims.gguf", ERR_FORMAT, "tensor t: 0 dimensions"},
    {"five_dims.gguf", ERR_FORMAT, "tensor t: 5 dimensions"},
    {"zero_dim.gguf", ERR_FORMAT, "tensor t: dimension 1 is 0"},
    {"negative_dim.gguf", ERR_FORMAT, "tensor t: dimension 0 is 9223372036854775808"},
    {"dims_overflow.gguf", ERR_FORMAT, "element count overflows"},
    {"bytes_overflow.gguf", ERR_FORMAT, "byte size overflows"},
    {"unknown_tensor_type.gguf", ERR_UNSUPPORTED, "tensor t: unsupported tensor type 4 (expected one of f32, f16, q4_0"},
    {"huge_tensor_type.gguf", ERR_UNSUPPORTED, "unsupported tensor type 4294967295"},
    {"block_mismatch.gguf", ERR_FORMAT, "ne[0] = 33 is not a multiple of q8_0's block size 32"},
    {"offset_beyond_end.gguf", ERR_FORMAT, "tensor t: data [1048576, +32)"},
    {"offset_wraps.gguf", ERR_FORMAT, "beyond the end of the file"},
    {"misaligned_offset.gguf", ERR_FORMAT, "data offset 8 is not a multiple of the alignment 32"},
    {"data_truncated.gguf", ERR_FORMAT, "beyond the end of the file (size 188)"},
    {"duplicate_tensor.gguf", ERR_FORMAT, "duplicate tensor name 't'"},
    {"nul_in_tensor_name.gguf", ERR_FORMAT, "tensor name contains a NUL byte"},
    {"nested_unterminated_string.gguf", ERR_FORMAT, "byte 140: key x: string value has length 1000 but only 5"},
    {"nested_unknown_type.gguf", ERR_FORMAT, "byte 116: key x: unknown array element type 14"},
    {"bad_bool_in_array.gguf", ERR_FORMAT, "byte 100: key flags: bool value 3 (expected 0 or 1)"},
    {"huge_tensor_name_len.gguf", ERR_FORMAT, "byte 24: tensor name has length 18446744073709551614"},
    {"no_data_section.gguf", ERR_FORMAT, "data section at 160 lies beyond the end of the file (size 135)"},
    {"huge_alignment.gguf", ERR_FORMAT, "data section at 2147483648 lies beyond the end"},
    {"zero_alignment.gguf", ERR_FORMAT, "general.alignment is 0 (expected a power of two)"},
    {"q4_k_block_mismatch.gguf", ERR_FORMAT, "ne[0] = 128 is not a multiple of q4_K's block size 256"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

#define DIR_CORPUS LM_SOURCE_DIR "/tests/fuzz/corpus/gguf"
static const char *const corpus[] = {"all_types.gguf", "tensors_v2.gguf", "tensors_v3.gguf", "align64.gguf"};
#define N_CORPUS (sizeof corpus / sizeof corpus[0])

/* A deterministic mutation sweep, so that every ctest run (and the ASan one) checks
 * what the fuzzer checks for a bounded time: each mutant either opens (and then every
 * tensor lies inside the buffer) or fails with a message "mutant.gguf: byte N: ...".
 * Mutations: a random byte; a random 8-byte field set to a huge or boundary value
 * (counts, lengths, dims and offsets are all u64 fields); a random 4-byte field set
 * to a boundary value (types, n_dims, alignment). */
static void mutate(const char *what, const unsigned char *orig, size_t n) {
    static const uint64_t vals64[] = {0, 1, 31, 32, 33, 255, 1u << 20, (uint64_t)1 << 32, (uint64_t)1 << 62,
                                      (uint64_t)1 << 63, UINT64_MAX - 31, UINT64_MAX};
    static const uint32_t vals32[] = {0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 14, 30, 31, 64, 0x80000000u, UINT32_MAX};
    uint64_t st = 0x243F6A8885A308D3ull ^ n;
    unsigned char *m = malloc(n);
    int bad = 0, opened = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(m, orig, n);
        const int kind = it % 3;
        const size_t at = test_rnd(&st) % n;
        if (kind == 0) {
            m[at] = (unsigned char)test_rnd(&st);
        } else if (kind == 1 && n >= 8) {
            const uint64_t v = vals64[test_rnd(&st) % (sizeof vals64 / sizeof *vals64)];
            memcpy(m + (at > n - 8 ? n - 8 : at), &v, 8);
        } else if (n >= 4) {
            const uint32_t v = vals32[test_rnd(&st) % (sizeof vals32 / sizeof *vals32)];
            memcpy(m + (at > n - 4 ? n - 4 : at), &v, 4);
        }
        gguf_t *g = NULL;
        err_t err = {0};
        err_code rc = gguf_open_memory(&g, m, n, "mutant.gguf", &err);
        if (rc == ERR_OK) {
            opened++;
            for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
                const tensor_t *t = gguf_tensor(g, i);
                const unsigned char *p = t->data;
                if (p < m || t->nbytes > n || (size_t)(p - m) > n - t->nbytes) bad++;
            }
            char line[256];
            for (int64_t i = 0; i < gguf_n_kv(g); i++) gguf_kv_format(g, i, line, sizeof line);
            gguf_close(g);
        } else if (rc == ERR_NOMEM || strncmp(err.msg, "mutant.gguf: byte ", 18)) {
            if (bad++ < 3) fprintf(stderr, "%s mutant %d: %s: %s\n", what, it, err_code_name(rc), err.msg);
        }
    }
    free(m);
    printf("%s: 3000 mutants, %d opened, the rest refused\n", what, opened);
    CHECK_MSG(bad == 0, "%s: %d mutants not handled cleanly", what, bad);
}

int main(void) {
    char path[1024], head[1100];
    err_t err;
    gguf_t *g;
    for (size_t i = 0; i < N_CASES; i++) {
        snprintf(path, sizeof path, "%s/%s", DIR_MALFORMED, cases[i].file);
        err_clear(&err);
        g = (gguf_t *)1;
        err_code rc = gguf_open(&g, path, &err);
        CHECK_MSG(rc == cases[i].code, "%s: code %s, expected %s (%s)", cases[i].file, err_code_name(rc),
                  err_code_name(cases[i].code), err.msg);
        CHECK_MSG(g == NULL, "%s: handle not NULL on failure", cases[i].file);
        snprintf(head, sizeof head, "%s: byte ", path);
        CHECK_MSG(!strncmp(err.msg, head, strlen(head)), "%s: message lacks 'FILE: byte N:': %s", cases[i].file,
                  err.msg);
        CHECK_MSG(strstr(err.msg, cases[i].says) != NULL, "%s: message '%s' lacks '%s'", cases[i].file, err.msg,
                  cases[i].says);
        if (rc == ERR_OK) gguf_close(g);
    }
    /* Every file in the directory has a row in the table (a new case needs its check). */
    DIR *d = opendir(DIR_MALFORMED);
    CHECK(d != NULL);
    size_t n_files = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf")) continue;
        n_files++;
        int found = 0;
        for (size_t i = 0; i < N_CASES; i++) found |= !strcmp(cases[i].file, e->d_name);
        CHECK_MSG(found, "%s has no expected error in the table", e->d_name);
    }
    if (d) closedir(d);
    CHECK_MSG(n_files == N_CASES, "%zu files, %zu cases", n_files, N_CASES);

    /* The base the cases are cut from is valid, and every strict prefix of it fails
     * with a FORMAT error — never a crash, never success. */
    size_t n = 0;
    unsigned char *valid = test_slurp(LM_SOURCE_DIR "/tests/fuzz/valid_base.gguf", &n);
    CHECK(valid && n > 100);
    CHECK_OK(gguf_open_memory(&g, valid, n, "valid_base.gguf", &err), &err);
    if (g) {
        CHECK(gguf_n_tensors(g) == 1 && gguf_n_kv(g) == 2);
        gguf_close(g);
    }
    for (size_t k = 0; valid && k < n; k++) {
        unsigned char *copy = malloc(k ? k : 1); /* exact size so ASan sees any over-read */
        memcpy(copy, valid, k);
        err_code rc = gguf_open_memory(&g, copy, k, "prefix.gguf", &err);
        CHECK_MSG(rc == ERR_FORMAT, "prefix of %zu bytes: %s", k, err_code_name(rc));
        CHECK(!strncmp(err.msg, "prefix.gguf: byte ", 18));
        if (rc == ERR_OK) gguf_close(g);
        free(copy);
    }
    free(valid);

    /* The same for the fuzzer's seed corpus (v2 and v3, every metadata type, nested
     * arrays of strings, several tensor types, alignment 64): each file opens, each
     * strict prefix fails with a FORMAT error naming a byte. */
    for (size_t c = 0; c < N_CORPUS; c++) {
        snprintf(path, sizeof path, "%s/%s", DIR_CORPUS, corpus[c]);
        unsigned char *buf = test_slurp(path, &n);
        CHECK_MSG(buf && n >= 24, "%s", path);
        if (!buf) continue;
        CHECK_OK(gguf_open_memory(&g, buf, n, corpus[c], &err), &err);
        if (!g) {
            free(buf);
            continue;
        }
        /* Everything up to the end of the last tensor's bytes is required; the padding
         * after it is not (llama.cpp's mmap loader does not need it either). */
        size_t need = gguf_n_tensors(g) ? 0 : n;
        for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
            const tensor_t *t = gguf_tensor(g, i);
            size_t end = (size_t)((const unsigned char *)t->data - buf) + t->nbytes;
            if (end > need) need = end;
        }
        gguf_close(g);
        int bad = 0;
        for (size_t k = 0; k < n; k++) {
            unsigned char *copy = malloc(k ? k : 1);
            memcpy(copy, buf, k);
            err_code rc = gguf_open_memory(&g, copy, k, "prefix.gguf", &err);
            if (k >= need) {
                if (rc != ERR_OK && bad++ < 3) fprintf(stderr, "%s: prefix of %zu bytes: %s\n", corpus[c], k, err.msg);
                if (rc == ERR_OK) gguf_close(g);
            } else if (rc != ERR_FORMAT || strncmp(err.msg, "prefix.gguf: byte ", 18)) {
                if (bad++ < 3) fprintf(stderr, "%s: prefix of %zu bytes: %s: %s\n", corpus[c], k, err_code_name(rc), err.msg);
                if (rc == ERR_OK) gguf_close(g);
            }
            free(copy);
        }
        CHECK_MSG(bad == 0, "%s: %d prefixes not refused cleanly", corpus[c], bad);
        mutate(corpus[c], buf, n);
        free(buf);
    }
    return test_result("test_gguf_malformed");
}
