/* test_gguf.c — GGUF writer/reader round trip: every metadata type, tensors of
 * several types and shapes (direct and streamed), byte layout of header and data
 * offsets as llama.cpp's gguf.cpp expects them, v2 files, other alignments, getter
 * type/range errors. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/quant.h"
#include "testutil.h"

/* Streamed tensor: element (r, c) = r * 1000 + c, F32. */
static err_code fill_rows(void *user, int64_t row0, int64_t n_rows, void *dst, err_t *err) {
    (void)err;
    int64_t ncol = *(const int64_t *)user;
    float *d = dst;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t c = 0; c < ncol; c++) d[r * ncol + c] = (float)((row0 + r) * 1000 + c);
    return ERR_OK;
}

static err_code fill_fail(void *user, int64_t row0, int64_t n_rows, void *dst, err_t *err) {
    (void)user, (void)row0, (void)n_rows, (void)dst;
    return err_set(err, ERR_CALLBACK, "generator stopped");
}

typedef struct {
    uint64_t last, total;
    int calls;
} progress_t;

static void on_progress(void *user, uint64_t done, uint64_t total) {
    progress_t *p = user;
    p->last = done;
    p->total = total;
    p->calls++;
}

#define N_F32A 7
#define F16_NE0 64
#define F16_NE1 3
#define Q8_ROWS 2
#define STREAM_COLS 16
#define STREAM_ROWS 70000 /* 4.48 MB: more than one 4 MiB chunk */

static float f32a[N_F32A] = {1.5f, -2.25f, 0.0f, 3e-8f, -1e30f, 7.0f, 42.0f};
static uint16_t f16b[F16_NE1 * F16_NE0];
static unsigned char q8[Q8_ROWS * 34 * 2]; /* ne = [64, 2]: 2 blocks of 34 bytes per row */
static float f4d[2 * 3 * 4 * 5];

static void make_data(void) {
    for (int i = 0; i < F16_NE0 * F16_NE1; i++) f16b[i] = qt_f32_to_f16((float)i * 0.25f - 7.0f);
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (unsigned char)(i * 37 + 11);
    for (int i = 0; i < 120; i++) f4d[i] = (float)i / 8.0f;
}

/* Nested value: an array of 2 arrays of i32 {1,2,3} and {-4}, in GGUF layout. */
static size_t nested_bytes(unsigned char *b) {
    size_t k = 0;
    uint32_t t;
    uint64_t n;
    int32_t v;
#define PUT(x) (memcpy(b + k, &(x), sizeof(x)), k += sizeof(x))
    t = GGUF_T_ARRAY, n = 2;
    PUT(t), PUT(n);
    t = GGUF_T_I32, n = 3;
    PUT(t), PUT(n);
    v = 1, PUT(v), v = 2, PUT(v), v = 3, PUT(v);
    t = GGUF_T_I32, n = 1;
    PUT(t), PUT(n);
    v = -4, PUT(v);
#undef PUT
    return k;
}

/* Nested strings, three levels: [[["a", "bc"], []], [["\xe2\x96\x81x"]]] — an array of 2
 * arrays of arrays of strings (the middle level has 2 and 1 elements). */
static size_t nested_str_bytes(unsigned char *b) {
    size_t k = 0;
    uint32_t t;
    uint64_t n;
#define PUT(x) (memcpy(b + k, &(x), sizeof(x)), k += sizeof(x))
#define PUTS(str) (n = strlen(str), PUT(n), memcpy(b + k, str, n), k += n)
    t = GGUF_T_ARRAY, n = 2;
    PUT(t), PUT(n);
    t = GGUF_T_ARRAY, n = 2; /* outer[0] */
    PUT(t), PUT(n);
    t = GGUF_T_STRING, n = 2; /* outer[0][0] */
    PUT(t), PUT(n);
    PUTS("a"), PUTS("bc");
    t = GGUF_T_STRING, n = 0; /* outer[0][1] */
    PUT(t), PUT(n);
    t = GGUF_T_ARRAY, n = 1; /* outer[1] */
    PUT(t), PUT(n);
    t = GGUF_T_STRING, n = 1; /* outer[1][0] */
    PUT(t), PUT(n);
    PUTS("\xe2\x96\x81x");
#undef PUTS
#undef PUT
    return k;
}

static int64_t stream_cols = STREAM_COLS;

static gguf_writer_t *make_writer(uint32_t alignment, err_t *err) {
    gguf_writer_t *w = gguf_writer_create();
    if (alignment) gguf_writer_set_alignment(w, alignment);
    CHECK(gguf_writer_set_u8(w, "t.u8", 250) == ERR_OK);
    CHECK(gguf_writer_set_i8(w, "t.i8", -100) == ERR_OK);
    CHECK(gguf_writer_set_u16(w, "t.u16", 65000) == ERR_OK);
    CHECK(gguf_writer_set_i16(w, "t.i16", -30000) == ERR_OK);
    CHECK(gguf_writer_set_u32(w, "t.u32", 4000000000u) == ERR_OK);
    CHECK(gguf_writer_set_i32(w, "t.i32", -2000000000) == ERR_OK);
    CHECK(gguf_writer_set_f32(w, "t.f32", 1e-5f) == ERR_OK);
    CHECK(gguf_writer_set_bool(w, "t.bool", true) == ERR_OK);
    CHECK(gguf_writer_set_str(w, "general.architecture", "llama") == ERR_OK);
    CHECK(gguf_writer_set_u64(w, "t.u64", 0xFEDCBA9876543210ull) == ERR_OK);
    CHECK(gguf_writer_set_i64(w, "t.i64", -1234567890123ll) == ERR_OK);
    CHECK(gguf_writer_set_f64(w, "t.f64", 3.141592653589793) == ERR_OK);
    float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    CHECK(gguf_writer_set_arr_f32(w, "t.arr_f32", mean, 3) == ERR_OK);
    int32_t types[5] = {2, 3, 3, 6, 1};
    CHECK(gguf_writer_set_arr_i32(w, "t.arr_i32", types, 5) == ERR_OK);
    uint16_t u16s[4] = {1, 2, 65535, 0};
    CHECK(gguf_writer_set_arr(w, "t.arr_u16", GGUF_T_U16, u16s, 4) == ERR_OK);
    uint8_t bools[3] = {1, 0, 1};
    CHECK(gguf_writer_set_arr(w, "t.arr_bool", GGUF_T_BOOL, bools, 3) == ERR_OK);
    double f64s[2] = {0.5, -0.25};
    CHECK(gguf_writer_set_arr(w, "t.arr_f64", GGUF_T_F64, f64s, 2) == ERR_OK);
    CHECK(gguf_writer_set_arr(w, "t.arr_empty", GGUF_T_I64, NULL, 0) == ERR_OK);
    const char *pieces[5] = {"<unk>", "<s>", "", "a\0b", "\xe2\x96\x81the"};
    size_t lens[5] = {5, 3, 0, 3, 6};
    CHECK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, lens, 5) == ERR_OK);
    unsigned char nb[64];
    size_t nn = nested_bytes(nb);
    CHECK(gguf_writer_set_raw(w, "t.nested", GGUF_T_ARRAY, nb, nn) == ERR_OK);
    unsigned char nsb[160];
    size_t nsn = nested_str_bytes(nsb);
    CHECK(gguf_writer_set_raw(w, "t.nested_str", GGUF_T_ARRAY, nsb, nsn) == ERR_OK);
    /* Duplicates and empty keys are refused, and do not change the file. */
    CHECK(gguf_writer_set_u32(w, "t.u32", 1) == ERR_ARG);
    CHECK(gguf_writer_set_str(w, "", "x") == ERR_ARG);

    CHECK_OK(gguf_writer_add_tensor(w, "a.f32", QT_F32, 1, (int64_t[]){N_F32A}, f32a, sizeof f32a, err), err);
    CHECK_OK(gguf_writer_add_tensor(w, "b.f16", QT_F16, 2, (int64_t[]){F16_NE0, F16_NE1}, f16b, sizeof f16b, err),
             err);
    CHECK_OK(gguf_writer_add_tensor(w, "c.q8_0", QT_Q8_0, 2, (int64_t[]){64, Q8_ROWS}, q8, sizeof q8, err), err);
    CHECK_OK(gguf_writer_add_tensor(w, "d.f32_4d", QT_F32, 4, (int64_t[]){2, 3, 4, 5}, f4d, sizeof f4d, err), err);
    CHECK_OK(gguf_writer_add_tensor_fn(w, "e.stream", QT_F32, 2, (int64_t[]){STREAM_COLS, STREAM_ROWS}, fill_rows,
                                       &stream_cols, err),
             err);
    /* Writer-side validation. */
    err_t e2 = {0};
    CHECK(gguf_writer_add_tensor(w, "a.f32", QT_F32, 1, (int64_t[]){N_F32A}, f32a, sizeof f32a, &e2) == ERR_ARG);
    CHECK(strstr(e2.msg, "duplicate") != NULL);
    CHECK(gguf_writer_add_tensor(w, "x", QT_F32, 1, (int64_t[]){N_F32A}, f32a, 4, &e2) == ERR_ARG);
    CHECK(gguf_writer_add_tensor(w, "x", QT_Q8_0, 1, (int64_t[]){33}, q8, 34, &e2) == ERR_ARG);
    CHECK(gguf_writer_add_tensor(w, "x", QT_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, f32a, 4, &e2) == ERR_ARG);
    CHECK(gguf_writer_add_tensor(w, "x", 4, 1, (int64_t[]){32}, q8, 18, &e2) == ERR_UNSUPPORTED);
    CHECK(gguf_writer_add_tensor(w, "a_name_that_is_far_too_long_for_ggml_which_allows_63_bytes_only_", QT_F32, 1,
                                 (int64_t[]){1}, f32a, 4, &e2) == ERR_ARG);
    CHECK(gguf_writer_n_tensors(w) == 5);
    return w;
}

static void check_kvs(const gguf_t *g) {
    err_t err = {0};
    uint32_t u32;
    int64_t i64;
    float f;
    bool b;
    char buf[64];
    const char *s;
    size_t len;
    CHECK_OK(gguf_get_u32(g, "t.u8", &u32, &err), &err);
    CHECK(u32 == 250);
    CHECK_OK(gguf_get_i64(g, "t.i8", &i64, &err), &err);
    CHECK(i64 == -100);
    CHECK_OK(gguf_get_u32(g, "t.u16", &u32, &err), &err);
    CHECK(u32 == 65000);
    CHECK_OK(gguf_get_i64(g, "t.i16", &i64, &err), &err);
    CHECK(i64 == -30000);
    CHECK_OK(gguf_get_u32(g, "t.u32", &u32, &err), &err);
    CHECK(u32 == 4000000000u);
    CHECK_OK(gguf_get_i64(g, "t.i32", &i64, &err), &err);
    CHECK(i64 == -2000000000);
    CHECK_OK(gguf_get_f32(g, "t.f32", &f, &err), &err);
    CHECK(f == 1e-5f);
    CHECK_OK(gguf_get_bool(g, "t.bool", &b, &err), &err);
    CHECK(b);
    CHECK_OK(gguf_get_str(g, "general.architecture", buf, sizeof buf, &err), &err);
    CHECK(!strcmp(buf, "llama"));
    CHECK_OK(gguf_get_i64(g, "t.i64", &i64, &err), &err);
    CHECK(i64 == -1234567890123ll);
    CHECK_OK(gguf_get_f32(g, "t.f64", &f, &err), &err);
    CHECK(f == (float)3.141592653589793);
    int64_t k = gguf_find_key(g, "t.u64");
    CHECK(k >= 0 && gguf_kv_type(g, k) == GGUF_T_U64);
    gguf_kv_format(g, k, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "18364758544493064720"), "%s", buf);
    /* u64 beyond int64 and u32 ranges: range errors, not silent wrap-around. */
    CHECK(gguf_get_i64(g, "t.u64", &i64, &err) == ERR_RANGE);
    CHECK(gguf_get_u32(g, "t.i32", &u32, &err) == ERR_RANGE);
    CHECK(strstr(err.msg, "t.i32") != NULL);
    /* Type errors name the key and both types. */
    CHECK(gguf_get_u32(g, "general.architecture", &u32, &err) == ERR_FORMAT);
    CHECK(strstr(err.msg, "general.architecture") && strstr(err.msg, "string"));
    CHECK(gguf_get_f32(g, "t.u32", &f, &err) == ERR_FORMAT);
    CHECK(gguf_get_bool(g, "t.u8", &b, &err) == ERR_FORMAT);
    CHECK(gguf_get_str(g, "t.bool", buf, sizeof buf, &err) == ERR_FORMAT);
    CHECK(gguf_get_str(g, "general.architecture", buf, 5, &err) == ERR_RANGE);
    CHECK(gguf_get_u32(g, "no.such.key", &u32, &err) == ERR_NOTFOUND);
    CHECK(strstr(err.msg, "no.such.key") != NULL);
    CHECK(gguf_find_key(g, "no.such.key") == -1);

    float mean[3];
    uint64_t n;
    CHECK_OK(gguf_get_arr_len(g, "t.arr_f32", GGUF_T_F32, &n, &err), &err);
    CHECK(n == 3);
    CHECK_OK(gguf_get_arr_f32(g, "t.arr_f32", mean, 3, &err), &err);
    CHECK(mean[0] == 0.48145466f && mean[1] == 0.4578275f && mean[2] == 0.40821073f);
    CHECK(gguf_get_arr_f32(g, "t.arr_f32", mean, 2, &err) == ERR_MISMATCH);
    CHECK(gguf_get_arr_len(g, "t.arr_f32", GGUF_T_I32, &n, &err) == ERR_FORMAT);
    CHECK(gguf_get_arr_f32(g, "t.u32", mean, 3, &err) == ERR_FORMAT);
    int32_t ty[5];
    CHECK_OK(gguf_get_arr_i32(g, "t.arr_i32", ty, 5, &err), &err);
    CHECK(ty[0] == 2 && ty[1] == 3 && ty[2] == 3 && ty[3] == 6 && ty[4] == 1);
    int32_t u16s[4];
    CHECK_OK(gguf_get_arr_i32(g, "t.arr_u16", u16s, 4, &err), &err);
    CHECK(u16s[2] == 65535 && u16s[3] == 0);
    CHECK(gguf_get_arr_i32(g, "t.arr_f32", ty, 3, &err) == ERR_FORMAT);
    float f64s[2];
    CHECK_OK(gguf_get_arr_f32(g, "t.arr_f64", f64s, 2, &err), &err);
    CHECK(f64s[0] == 0.5f && f64s[1] == -0.25f);
    k = gguf_find_key(g, "t.arr_bool");
    CHECK(k >= 0 && gguf_kv_arr_type(g, k) == GGUF_T_BOOL && gguf_kv_arr_len(g, k) == 3);
    gguf_kv_format(g, k, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "[bool x 3] true, false, true"), "%s", buf);
    /* Index-based access used by info and the fuzzer. */
    k = gguf_find_key(g, "t.f32");
    gguf_kv_format(g, k, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "1e-05"), "%s", buf);
    CHECK(gguf_kv_num(g, k, 0) == (double)1e-5f && isnan(gguf_kv_num(g, k, 1)));
    k = gguf_find_key(g, "t.arr_u16");
    CHECK(gguf_kv_num(g, k, 2) == 65535.0 && isnan(gguf_kv_num(g, k, 4)));
    CHECK(gguf_kv_strv(g, k, 0, &len) == NULL);
    k = gguf_find_key(g, "t.i64");
    CHECK(gguf_kv_num(g, k, 0) == -1234567890123.0);
    k = gguf_find_key(g, "general.architecture");
    CHECK(isnan(gguf_kv_num(g, k, 0)));
    const char *sv = gguf_kv_strv(g, k, 0, &len);
    CHECK(sv && len == 5 && !memcmp(sv, "llama", 5));
    k = gguf_find_key(g, "t.arr_empty");
    CHECK(k >= 0 && gguf_kv_arr_type(g, k) == GGUF_T_I64 && gguf_kv_arr_len(g, k) == 0);

    CHECK_OK(gguf_get_arr_len(g, "tokenizer.ggml.tokens", GGUF_T_STRING, &n, &err), &err);
    CHECK(n == 5);
    const char *want[5] = {"<unk>", "<s>", "", "a\0b", "\xe2\x96\x81the"};
    size_t wlen[5] = {5, 3, 0, 3, 6};
    for (uint64_t i = 0; i < 5; i++) {
        CHECK_OK(gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s, &len, &err), &err);
        CHECK(len == wlen[i] && !memcmp(s, want[i], len));
    }
    CHECK(gguf_get_arr_str(g, "tokenizer.ggml.tokens", 5, &s, &len, &err) == ERR_RANGE);
    k = gguf_find_key(g, "tokenizer.ggml.tokens");
    char line[256];
    gguf_kv_format(g, k, line, sizeof line);
    CHECK_MSG(!strcmp(line, "[string x 5] \"<unk>\", \"<s>\", \"\", \"a\\x00b\", ..."), "%s", line);

    k = gguf_find_key(g, "t.nested");
    CHECK(k >= 0 && gguf_kv_type(g, k) == GGUF_T_ARRAY && gguf_kv_arr_type(g, k) == GGUF_T_ARRAY &&
          gguf_kv_arr_len(g, k) == 2);
    gguf_kv_format(g, k, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "[array x 2] ([i32 x 3] 1, 2, 3), ([i32 x 1] -4)"), "%s", buf);
    /* Walking nested values: element by element, numbers and strings at any depth. */
    gguf_val_t v = gguf_kv_value(g, k), e, e2;
    CHECK(v.type == GGUF_T_ARRAY && gguf_val_arr_type(v) == GGUF_T_ARRAY && gguf_val_arr_len(v) == 2);
    CHECK(gguf_val_elem(v, 1, &e) && e.type == GGUF_T_ARRAY && gguf_val_arr_type(e) == GGUF_T_I32 &&
          gguf_val_arr_len(e) == 1);
    CHECK(gguf_val_elem(e, 0, &e2) && e2.type == GGUF_T_I32 && gguf_val_num(e2) == -4.0);
    CHECK(!gguf_val_elem(e, 1, &e2) && !gguf_val_elem(v, 2, &e) && !gguf_val_elem(e2, 0, &e));
    CHECK(gguf_val_elem(v, 0, &e) && gguf_val_elem(e, 2, &e2) && gguf_val_num(e2) == 3.0);
    CHECK(isnan(gguf_val_num(e)) && gguf_val_str(e2, NULL) == NULL);
    k = gguf_find_key(g, "t.nested_str");
    CHECK(k >= 0 && gguf_kv_arr_type(g, k) == GGUF_T_ARRAY && gguf_kv_arr_len(g, k) == 2);
    gguf_kv_format(g, k, line, sizeof line);
    CHECK_MSG(!strcmp(line, "[array x 2] ([array x 2] ([string x 2] \"a\", \"bc\"), ([string x 0])), "
                            "([array x 1] ([string x 1] \"\xe2\x96\x81x\"))"),
              "%s", line);
    v = gguf_kv_value(g, k);
    gguf_val_t e3;
    /* outer[1][0][0] is found by stepping over outer[0] and its strings */
    CHECK(gguf_val_elem(v, 1, &e) && gguf_val_elem(e, 0, &e2) && gguf_val_arr_type(e2) == GGUF_T_STRING);
    CHECK(gguf_val_elem(e2, 0, &e3) && (s = gguf_val_str(e3, &len)) && len == 4 && !memcmp(s, "\xe2\x96\x81x", 4));
    CHECK(gguf_val_elem(v, 0, &e) && gguf_val_elem(e, 0, &e2) && gguf_val_elem(e2, 1, &e3));
    CHECK((s = gguf_val_str(e3, &len)) && len == 2 && !memcmp(s, "bc", 2) && isnan(gguf_val_num(e3)));
    CHECK(gguf_val_elem(e, 1, &e2) && gguf_val_arr_len(e2) == 0 && !gguf_val_elem(e2, 0, &e3));
    /* Top-level values through the same walker. */
    v = gguf_kv_value(g, gguf_find_key(g, "tokenizer.ggml.tokens"));
    CHECK(gguf_val_elem(v, 4, &e) && (s = gguf_val_str(e, &len)) && len == 6 && !memcmp(s, "\xe2\x96\x81the", 6));
    v = gguf_kv_value(g, gguf_find_key(g, "t.u16"));
    CHECK(v.type == GGUF_T_U16 && gguf_val_num(v) == 65000.0 && gguf_val_arr_len(v) == 0 && !gguf_val_elem(v, 0, &e));
    int64_t si;
    uint64_t ui;
    bool uns;
    v = gguf_kv_value(g, gguf_find_key(g, "t.u64"));
    CHECK(gguf_val_int(v, &si, &ui, &uns) && uns && ui == 0xFEDCBA9876543210ull);
    v = gguf_kv_value(g, gguf_find_key(g, "t.i64"));
    CHECK(gguf_val_int(v, &si, &ui, &uns) && !uns && si == -1234567890123ll);
    CHECK(!gguf_val_int(gguf_kv_value(g, gguf_find_key(g, "t.f64")), &si, &ui, &uns));
    CHECK(!gguf_val_int(gguf_kv_value(g, gguf_find_key(g, "t.arr_i32")), &si, &ui, &uns));
    /* A small buffer truncates but stays terminated. */
    gguf_kv_format(g, gguf_find_key(g, "tokenizer.ggml.tokens"), buf, 8);
    CHECK(strlen(buf) == 7);
}

static void check_tensors(const gguf_t *g, size_t align) {
    err_t err = {0};
    CHECK(gguf_n_tensors(g) == 5);
    const tensor_t *t = gguf_find_tensor(g, "a.f32");
    CHECK(t && t->type == QT_F32 && t->n_dims == 1 && t->ne[0] == N_F32A && t->ne[1] == 1 && t->ne[3] == 1);
    CHECK(t && t->nbytes == sizeof f32a && !memcmp(t->data, f32a, sizeof f32a));
    t = gguf_find_tensor(g, "b.f16");
    CHECK(t && t->type == QT_F16 && t->n_dims == 2 && t->ne[0] == F16_NE0 && t->ne[1] == F16_NE1);
    CHECK(t && t->nbytes == sizeof f16b && !memcmp(t->data, f16b, sizeof f16b));
    t = gguf_find_tensor(g, "c.q8_0");
    CHECK(t && t->type == QT_Q8_0 && t->nbytes == sizeof q8 && !memcmp(t->data, q8, sizeof q8));
    t = gguf_find_tensor(g, "d.f32_4d");
    CHECK(t && t->n_dims == 4 && t->ne[0] == 2 && t->ne[1] == 3 && t->ne[2] == 4 && t->ne[3] == 5);
    CHECK(t && tensor_nelements(t) == 120 && !memcmp(t->data, f4d, sizeof f4d));
    t = gguf_find_tensor(g, "e.stream");
    CHECK(t && t->ne[0] == STREAM_COLS && t->ne[1] == STREAM_ROWS);
    if (t) {
        const float *d = t->data;
        int bad = 0;
        for (int64_t r = 0; r < STREAM_ROWS; r++)
            for (int64_t c = 0; c < STREAM_COLS; c++) bad += d[r * STREAM_COLS + c] != (float)(r * 1000 + c);
        CHECK(bad == 0);
    }
    CHECK(gguf_find_tensor(g, "nope") == NULL);
    /* Offsets as gguf.cpp demands: each tensor starts at the previous one plus its
     * padded size, from an aligned data section. */
    const unsigned char *data0 = gguf_tensor(g, 0)->data;
    CHECK(gguf_data_offset(g) % align == 0);
    size_t expect = 0;
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const tensor_t *ti = gguf_tensor(g, i);
        CHECK((size_t)((const unsigned char *)ti->data - data0) == expect);
        expect += (ti->nbytes + align - 1) / align * align;
    }
    CHECK(gguf_data_offset(g) + expect == gguf_file_size(g));
    CHECK(gguf_tensor(g, 5) == NULL && gguf_tensor(g, -1) == NULL);

    const tensor_t *out;
    CHECK_OK(gguf_require_tensor(g, "b.f16", 2, (int64_t[]){F16_NE0, F16_NE1}, &out, &err), &err);
    CHECK(gguf_require_tensor(g, "b.f16", 2, (int64_t[]){F16_NE0, 4}, &out, &err) == ERR_MISMATCH);
    CHECK_MSG(strstr(err.msg, "[64 x 3]") && strstr(err.msg, "[64 x 4]"), "%s", err.msg);
    CHECK(gguf_require_tensor(g, "b.f16", 1, (int64_t[]){F16_NE0}, &out, &err) == ERR_MISMATCH);
    CHECK(gguf_require_tensor(g, "zz", 1, (int64_t[]){1}, &out, &err) == ERR_NOTFOUND);
}

/* `test_gguf --write-corpus DIR`: the fuzzer's seed corpus (tests/fuzz/corpus/gguf/),
 * small valid files from this writer covering every metadata type, nested arrays
 * (of numbers, and of arrays of strings),
 * several tensor types, alignment 64 and version 2. */
static int write_corpus(const char *dir) {
    err_t err = {0};
    char p[512];
    int bad = 0;
    gguf_writer_t *w = gguf_writer_create();
    snprintf(p, sizeof p, "%s/empty.gguf", dir);
    bad |= gguf_writer_write(w, p, &err);
    gguf_writer_free(w);

    w = gguf_writer_create();
    gguf_writer_set_u8(w, "a.u8", 1);
    gguf_writer_set_i8(w, "a.i8", -1);
    gguf_writer_set_u16(w, "a.u16", 2);
    gguf_writer_set_i16(w, "a.i16", -2);
    gguf_writer_set_u32(w, "a.u32", 3);
    gguf_writer_set_i32(w, "a.i32", -3);
    gguf_writer_set_f32(w, "a.f32", 0.5f);
    gguf_writer_set_bool(w, "a.bool", true);
    gguf_writer_set_str(w, "a.str", "text");
    gguf_writer_set_u64(w, "a.u64", 4);
    gguf_writer_set_i64(w, "a.i64", -4);
    gguf_writer_set_f64(w, "a.f64", 0.25);
    const char *pieces[4] = {"<unk>", "<s>", "</s>", ("\xe2\x96\x81" "a")};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, NULL, 4);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", (float[]){0, 0, 0, -1}, 4);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", (int32_t[]){2, 3, 3, 1}, 4);
    unsigned char nb[64];
    gguf_writer_set_raw(w, "a.nested", GGUF_T_ARRAY, nb, nested_bytes(nb));
    unsigned char nsb[160];
    gguf_writer_set_raw(w, "a.nested_str", GGUF_T_ARRAY, nsb, nested_str_bytes(nsb));
    snprintf(p, sizeof p, "%s/all_types.gguf", dir);
    bad |= gguf_writer_write(w, p, &err);
    gguf_writer_free(w);

    /* One tensor per writable type, one block each. */
    static unsigned char blocks[5][144];
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 144; k++) blocks[i][k] = (unsigned char)(i * 31 + k);
    for (int v = 2; v <= 3; v++) {
        w = gguf_writer_create();
        gguf_writer_set_str(w, "general.architecture", "llama");
        gguf_writer_set_u32(w, "llama.block_count", 1);
        bad |= gguf_writer_add_tensor(w, "t.f32", QT_F32, 2, (int64_t[]){4, 2}, blocks[0], 32, &err);
        bad |= gguf_writer_add_tensor(w, "t.f16", QT_F16, 1, (int64_t[]){8}, blocks[1], 16, &err);
        bad |= gguf_writer_add_tensor(w, "t.q8_0", QT_Q8_0, 1, (int64_t[]){32}, blocks[2], 34, &err);
        bad |= gguf_writer_add_tensor(w, "t.q4_0", QT_Q4_0, 1, (int64_t[]){32}, blocks[3], 18, &err);
        bad |= gguf_writer_add_tensor(w, "t.q4_K", QT_Q4_K, 1, (int64_t[]){256}, blocks[4], 144, &err);
        snprintf(p, sizeof p, "%s/tensors_v%d.gguf", dir, v);
        bad |= gguf_writer_write(w, p, &err);
        gguf_writer_free(w);
        if (v == 2) { /* the writer writes v3; relabel the copy as v2 */
            FILE *f = fopen(p, "r+b");
            if (!f) return 1;
            fseek(f, 4, SEEK_SET);
            fputc(2, f);
            fclose(f);
        }
    }

    w = gguf_writer_create();
    gguf_writer_set_alignment(w, 64);
    gguf_writer_set_str(w, "general.architecture", "clip");
    gguf_writer_set_arr_f32(w, "clip.vision.image_mean", (float[]){0.5f, 0.5f, 0.5f}, 3);
    bad |= gguf_writer_add_tensor(w, "v.class_embd", QT_F32, 1, (int64_t[]){5}, blocks[0], 20, &err);
    bad |= gguf_writer_add_tensor(w, "v.patch_embd.weight", QT_F16, 4, (int64_t[]){2, 2, 3, 2}, blocks[1], 48, &err);
    snprintf(p, sizeof p, "%s/align64.gguf", dir);
    bad |= gguf_writer_write(w, p, &err);
    gguf_writer_free(w);
    if (bad) fprintf(stderr, "write-corpus: %s\n", err.msg);
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-corpus")) return write_corpus(argv[2]);
    make_data();
    err_t err = {0};
    char path[64], path2[64];
    snprintf(path, sizeof path, "test_gguf_%d.gguf", (int)getpid());
    snprintf(path2, sizeof path2, "test_gguf_%d_a64.gguf", (int)getpid());

    /* Default alignment. */
    gguf_writer_t *w = make_writer(0, &err);
    progress_t pr = {0};
    gguf_writer_set_progress(w, on_progress, &pr);
    CHECK_OK(gguf_writer_write(w, path, &err), &err);
    CHECK(pr.calls >= 6 && pr.last == pr.total && pr.total == sizeof f32a + sizeof f16b + sizeof q8 + sizeof f4d +
                                                                   (uint64_t)STREAM_COLS * STREAM_ROWS * 4);
    gguf_writer_free(w);

    size_t n = 0;
    unsigned char *bytes = test_slurp(path, &n);
    CHECK(bytes && n > 24);
    /* Header bytes: magic, version 3, tensor count, kv count (no alignment key at 32). */
    uint32_t ver;
    uint64_t nt, nkv;
    memcpy(&ver, bytes + 4, 4);
    memcpy(&nt, bytes + 8, 8);
    memcpy(&nkv, bytes + 16, 8);
    CHECK(!memcmp(bytes, "GGUF", 4) && ver == 3 && nt == 5 && nkv == 21);

    gguf_t *g = NULL;
    CHECK_OK(gguf_open(&g, path, &err), &err);
    if (g) {
        CHECK(gguf_version(g) == 3 && gguf_alignment(g) == 32 && gguf_n_kv(g) == 21);
        CHECK(gguf_file_size(g) == n);
        CHECK(!strcmp(gguf_kv_key(g, 0), "t.u8") && gguf_kv_type(g, 0) == GGUF_T_U8);
        CHECK(gguf_kv_key(g, 21) == NULL);
        check_kvs(g);
        check_tensors(g, 32);
        /* Padding bytes between tensors are zero. */
        const tensor_t *a = gguf_tensor(g, 0);
        const unsigned char *pad = (const unsigned char *)a->data + a->nbytes;
        int nz = 0;
        for (size_t i = 0; i < 32 - a->nbytes % 32; i++) nz += pad[i] != 0;
        CHECK(nz == 0);
        gguf_close(g);
    }

    /* The same bytes labelled version 2 read identically (v2 and v3 differ only in
     * v3's optional big-endian variant). */
    if (bytes) {
        bytes[4] = 2;
        CHECK_OK(gguf_open_memory(&g, bytes, n, "v2.gguf", &err), &err);
        if (g) {
            CHECK(gguf_version(g) == 2 && !strcmp(gguf_path(g), "v2.gguf"));
            check_kvs(g);
            check_tensors(g, 32);
            gguf_close(g);
        }
        bytes[4] = 1;
        CHECK(gguf_open_memory(&g, bytes, n, "v1.gguf", &err) == ERR_UNSUPPORTED && g == NULL);
        CHECK(strstr(err.msg, "v1.gguf: byte 4:") != NULL);
        /* A truncated copy fails with the file name and a byte offset. */
        bytes[4] = 3;
        CHECK(gguf_open_memory(&g, bytes, n - 1, "cut.gguf", &err) == ERR_FORMAT);
        CHECK_MSG(strstr(err.msg, "cut.gguf") && strstr(err.msg, "beyond the end"), "%s", err.msg);
        CHECK(gguf_open_memory(&g, bytes, 20, "cut.gguf", &err) == ERR_FORMAT);
        CHECK_MSG(strstr(err.msg, "cut.gguf: byte 16: expected metadata count"), "%s", err.msg);
    }
    free(bytes);

    /* Alignment 64: the key is written (u32) and every offset honours it. */
    w = make_writer(64, &err);
    CHECK_OK(gguf_writer_write(w, path2, &err), &err);
    gguf_writer_free(w);
    CHECK_OK(gguf_open(&g, path2, &err), &err);
    if (g) {
        uint32_t a = 0;
        CHECK_OK(gguf_get_u32(g, "general.alignment", &a, &err), &err);
        CHECK(a == 64 && gguf_alignment(g) == 64 && gguf_n_kv(g) == 22);
        check_kvs(g);
        check_tensors(g, 64);
        gguf_close(g);
    }

    /* Bad alignment and a failing generator: errors, no file left behind. */
    w = make_writer(48, &err);
    CHECK(gguf_writer_write(w, path2, &err) == ERR_ARG);
    gguf_writer_free(w);
    unlink(path2);
    w = gguf_writer_create();
    CHECK_OK(gguf_writer_add_tensor_fn(w, "f", QT_F32, 1, (int64_t[]){8}, fill_fail, NULL, &err), &err);
    CHECK(gguf_writer_write(w, path2, &err) == ERR_CALLBACK);
    CHECK_MSG(strstr(err.msg, "tensor f") && strstr(err.msg, "generator stopped"), "%s", err.msg);
    CHECK(access(path2, F_OK) != 0);
    gguf_writer_free(w);

    /* An empty file: header only, no tensors, no padding needed. */
    w = gguf_writer_create();
    CHECK_OK(gguf_writer_write(w, path2, &err), &err);
    gguf_writer_free(w);
    CHECK_OK(gguf_open(&g, path2, &err), &err);
    if (g) {
        CHECK(gguf_n_kv(g) == 0 && gguf_n_tensors(g) == 0 && gguf_file_size(g) == 24);
        gguf_close(g);
    }
    CHECK(gguf_open(&g, "does/not/exist.gguf", &err) == ERR_NOTFOUND);
    CHECK(strstr(err.msg, "does/not/exist.gguf") != NULL);
    /* A directory and an empty file: one sentence each, no handle. */
    g = (gguf_t *)1;
    CHECK(gguf_open(&g, ".", &err) == ERR_IO && g == NULL);
    CHECK_MSG(!strcmp(err.msg, ".: is a directory (expected a GGUF file)"), "%s", err.msg);
    /* A FIFO with no writer is refused at once instead of blocking the open. */
    unlink(path2);
    CHECK(mkfifo(path2, 0600) == 0);
    alarm(20); /* a regression hangs here: fail by SIGALRM rather than forever */
    CHECK(gguf_open(&g, path2, &err) == ERR_IO && g == NULL);
    alarm(0);
    CHECK_MSG(strstr(err.msg, ": not a regular file (expected a GGUF file)"), "%s", err.msg);
    unlink(path2);
    FILE *ef = fopen(path2, "wb");
    CHECK(ef != NULL);
    if (ef) fclose(ef);
    CHECK(gguf_open(&g, path2, &err) == ERR_FORMAT && g == NULL);
    CHECK_MSG(strstr(err.msg, ": byte 0: expected magic \"GGUF\" (4 bytes), found end of file (size 0)"), "%s",
              err.msg);
    unlink(path);
    unlink(path2);
    return test_result("test_gguf");
}
