/* fuzz_gguf.c — libFuzzer target for the GGUF reader.
 *
 * gguf_open_memory validates the input; when it accepts, every accessor is walked
 * (each key through every typed getter, every array element, nested arrays through
 * the gguf_val_t walker, every tensor's first and last byte) so an accessor that
 * trusts something the parser did not check reads out of bounds and ASan reports it. Seed corpus: tests/fuzz/corpus/gguf/ (written by
 * `test_gguf --write-corpus DIR`); run by scripts/fuzz.sh. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

/* Values at any depth through the gguf_val_t walker; bounded per level so a wide
 * nested array cannot make one input slow. */
static void walk_val(gguf_val_t v, int depth) {
    int64_t si;
    uint64_t ui;
    bool uns;
    size_t len;
    const char *s = gguf_val_str(v, &len);
    if (s && len) sink += (unsigned char)s[0] + (unsigned char)s[len - 1];
    if (gguf_val_int(v, &si, &ui, &uns)) sink += (unsigned)(si + (int64_t)ui);
    sink += (unsigned)isnan(gguf_val_num(v));
    if (v.type != GGUF_T_ARRAY) return;
    if (depth > 16) __builtin_trap(); /* the reader caps nesting at 8 */
    uint64_t n = gguf_val_arr_len(v);
    gguf_val_t e;
    for (uint64_t k = 0; k < n && k < 64; k++) {
        if (!gguf_val_elem(v, k, &e) || e.type != gguf_val_arr_type(v)) __builtin_trap();
        walk_val(e, depth + 1);
    }
    if (gguf_val_elem(v, n, &e)) __builtin_trap();
}

static void walk_key(const gguf_t *g, int64_t i) {
    const char *key = gguf_kv_key(g, i);
    char buf[256];
    err_t err;
    uint32_t u32;
    int64_t i64;
    float f;
    bool b;
    const char *s;
    size_t len;
    uint64_t n;
    gguf_kv_format(g, i, buf, sizeof buf);
    sink += (unsigned)strlen(buf);
    walk_val(gguf_kv_value(g, i), 0);
    if (gguf_find_key(g, key) != i) __builtin_trap(); /* lookup must find what enumeration lists */
    if (!gguf_get_u32(g, key, &u32, &err)) sink += u32;
    if (!gguf_get_i64(g, key, &i64, &err)) sink += (unsigned)i64;
    if (!gguf_get_f32(g, key, &f, &err)) sink += (unsigned)isnan(f);
    if (!gguf_get_bool(g, key, &b, &err)) sink += b;
    if (!gguf_get_str(g, key, buf, sizeof buf, &err)) sink += (unsigned)buf[0];
    if (!gguf_get_str_view(g, key, &s, &len, &err) && len) sink += (unsigned char)s[len - 1];
    gguf_type t = gguf_kv_type(g, i);
    if (t != GGUF_T_ARRAY) {
        sink += (unsigned)isnan(gguf_kv_num(g, i, 0));
        if ((s = gguf_kv_strv(g, i, 0, &len)) && len) sink += (unsigned char)s[len - 1];
        return;
    }
    gguf_type et = gguf_kv_arr_type(g, i);
    uint64_t m = gguf_kv_arr_len(g, i);
    if (gguf_get_arr_len(g, key, et, &n, &err) || n != m) __builtin_trap();
    /* Every element, bounded: inputs are small, so m is too. */
    for (uint64_t k = 0; k < m && k < 4096; k++) {
        sink += (unsigned)isnan(gguf_kv_num(g, i, k));
        if ((s = gguf_kv_strv(g, i, k, &len)) && len) sink += (unsigned char)s[0] + (unsigned char)s[len - 1];
        if (!gguf_get_arr_str(g, key, k, &s, &len, &err) && len) sink += (unsigned char)s[len - 1];
    }
    if (m <= 4096) {
        float fv[4096];
        int32_t iv[4096];
        if (!gguf_get_arr_f32(g, key, fv, m, &err) && m) sink += (unsigned)isnan(fv[m - 1]);
        if (!gguf_get_arr_i32(g, key, iv, m, &err) && m) sink += (unsigned)iv[m - 1];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_t *g;
    err_t err = {0};
    if (gguf_open_memory(&g, data, size, "fuzz.gguf", &err) != ERR_OK) {
        if (!err.msg[0]) __builtin_trap(); /* every failure explains itself */
        return 0;
    }
    for (int64_t i = 0; i < gguf_n_kv(g); i++) walk_key(g, i);
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const tensor_t *t = gguf_tensor(g, i);
        if (gguf_find_tensor(g, t->name) != t) __builtin_trap();
        const tensor_t *r;
        if (gguf_require_tensor(g, t->name, t->n_dims, t->ne, &r, &err) || r != t) __builtin_trap();
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) __builtin_trap();
        if (t->nbytes) sink += p[0] + p[t->nbytes - 1];
    }
    sink += (unsigned)(gguf_version(g) + gguf_alignment(g) + gguf_data_offset(g));
    gguf_close(g);
    return 0;
}
