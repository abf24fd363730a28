/* test_scenes_vqa.c — the VQA runner's logic with a scripted answerer in place of a
 * model: matching rules, data set parsing and errors, shard ranges, per-type
 * accuracy and confusion counts against hand-computed values, shard merge ==
 * unsplit run, the --expect check, and SHA-256 against FIPS 180-4 test vectors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "toy/vqa.h"

static void test_sha256(void) {
    char hex[65];
    vqa_sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    vqa_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: 2-block padding */
    vqa_sha256_hex(m, strlen(m), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    vqa_sha256_hex(a, n, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    /* The streaming file path (64 KiB chunks) gives the same digest. */
    FILE *f = fopen("vqa_sha_test.bin", "wb");
    CHECK(f && fwrite(a, 1, n, f) == n);
    if (f) fclose(f);
    err_t err = {0};
    cJSON *info = vqa_file_info("vqa_sha_test.bin", &err);
    CHECK(info != NULL);
    if (info) {
        CHECK(!strcmp(cJSON_GetObjectItem(info, "sha256")->valuestring, hex));
        CHECK(cJSON_GetObjectItem(info, "size")->valuedouble == (double)n);
    }
    cJSON_Delete(info);
    remove("vqa_sha_test.bin");
    CHECK(vqa_file_info("no/such/file.gguf", &err) == NULL && err.code == ERR_IO &&
          strstr(err.msg, "no/such/file.gguf"));
    free(a);
}

static void test_match(void) {
    char w[VQA_WORD_MAX];
    CHECK(!strcmp(vqa_normalize("Red.", w), "red"));
    CHECK(!strcmp(vqa_normalize(" Yes, it is", w), "yes"));
    CHECK(!strcmp(vqa_normalize("-- blue!", w), "blue"));
    CHECK(!strcmp(vqa_normalize("\"Left\"", w), "left"));
    CHECK(!strcmp(vqa_normalize("TWO objects", w), "two"));
    CHECK(!strcmp(vqa_normalize("  ... ", w), ""));
    CHECK(!strcmp(vqa_normalize(NULL, w), ""));
    CHECK(vqa_match("Red.", "red"));
    CHECK(vqa_match(" no", "No"));
    CHECK(!vqa_match("redish", "red"));
    CHECK(!vqa_match("blue red", "red")); /* only the first word counts */
    CHECK(!vqa_match("", ""));            /* an empty answer is never right */
}

static void test_shards(void) {
    err_t err = {0};
    size_t b, e, covered = 0;
    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(vqa_shard_range(10, 0, i, 3, &b, &e, &err), &err);
        CHECK(b == covered && e - b >= 3 && e - b <= 4);
        covered = e;
    }
    CHECK(covered == 10);
    CHECK_OK(vqa_shard_range(10, 4, 1, 2, &b, &e, &err), &err);
    CHECK(b == 2 && e == 4);
    CHECK(vqa_shard_range(10, 0, 2, 2, &b, &e, &err) == ERR_ARG);
    CHECK(vqa_shard_range(10, 0, 0, 0, &b, &e, &err) == ERR_ARG);
}

/* A data set of 10 questions, two per type, written to dir/data.jsonl. */
static const char *const DATA[] = {
    "{\"id\":\"a0\",\"image\":\"images/0.png\",\"question\":\"What color is the circle?\",\"answer\":\"red\",\"type\":\"color\"}",
    "{\"id\":\"a1\",\"image\":\"images/1.png\",\"question\":\"What shape is the red object?\",\"answer\":\"square\",\"type\":\"shape\"}",
    "{\"id\":\"a2\",\"image\":\"images/2.png\",\"question\":\"How many objects are there?\",\"answer\":\"two\",\"type\":\"count\"}",
    "",
    "{\"id\":\"a3\",\"image\":\"images/3.png\",\"question\":\"Is there a red circle?\",\"answer\":\"yes\",\"type\":\"exists\"}",
    "{\"id\":4,\"image\":\"/abs/4.png\",\"question\":\"Is the red circle on the left or the right?\",\"answer\":\"left\",\"type\":\"position\"}",
    "{\"id\":\"a5\",\"image\":\"images/5.png\",\"question\":\"What color is the square?\",\"answer\":\"blue\",\"type\":\"color\"}",
    "{\"id\":\"a6\",\"image\":\"images/6.png\",\"question\":\"What shape is the blue object?\",\"answer\":\"circle\",\"type\":\"shape\"}",
    "{\"id\":\"a7\",\"image\":\"images/7.png\",\"question\":\"How many objects are there?\",\"answer\":\"three\",\"type\":\"count\"}",
    "{\"id\":\"a8\",\"image\":\"images/8.png\",\"question\":\"Is there a blue square?\",\"answer\":\"no\",\"type\":\"exists\"}",
    "{\"image\":\"images/9.png\",\"question\":\"Is the blue square on the left or the right?\",\"answer\":\"right\",\"extra\":[1,2]}",
};

typedef struct {
    char dir[256];
    int calls;
    int bad_paths;
} fake_ctx;

/* Scripted model: right on everything except colour questions about squares
 * (answers "Red.") and count questions expecting three (answers "two"). */
static err_code fake_answer(void *vctx, const char *image_path, const char *question, char *answer, size_t cap,
                            err_t *err) {
    fake_ctx *c = vctx;
    c->calls++;
    (void)err;
    char want[300];
    const char *base = strrchr(image_path, '/') + 1;
    if (strncmp(image_path, "/abs/", 5)) {
        snprintf(want, sizeof want, "%s/images/%s", c->dir, base);
        c->bad_paths += strcmp(want, image_path) != 0;
    }
    const char *truth[10] = {"red", "square", "two", "yes", "left", "blue", "circle", "three", "no", "right"};
    int i = base[0] - '0';
    if (!strcmp(question, "What color is the square?"))
        snprintf(answer, cap, "Red.");
    else if (!strcmp(truth[i], "three"))
        snprintf(answer, cap, "two");
    else
        snprintf(answer, cap, " %c%s", truth[i][0] - 32, truth[i] + 1); /* " Red": case must not matter */
    return ERR_OK;
}

static err_code failing_answer(void *ctx, const char *image_path, const char *question, char *answer, size_t cap,
                               err_t *err) {
    (void)ctx, (void)question, (void)answer, (void)cap;
    return err_set(err, ERR_IO, "%s: cannot read", image_path);
}

static err_code garbage_answer(void *ctx, const char *image_path, const char *question, char *answer, size_t cap,
                               err_t *err) {
    (void)ctx, (void)image_path, (void)question, (void)err;
    snprintf(answer, cap, "\xff\xc3(ok \xe2\x82\xac \xed\xa0\x80");
    return ERR_OK;
}

static double num(const cJSON *j, const char *a, const char *b, const char *c) {
    if (a) j = cJSON_GetObjectItemCaseSensitive(j, a);
    if (b) j = cJSON_GetObjectItemCaseSensitive(j, b);
    if (c) j = cJSON_GetObjectItemCaseSensitive(j, c);
    return cJSON_IsNumber(j) ? j->valuedouble : -1;
}

/* Runs shard I/N into dir/outI like the CLI does (results.jsonl + summary.json). */
static cJSON *run_shard(const vqa_dataset *d, fake_ctx *fc, size_t i, size_t n, const char *out, const char *lm_sha) {
    err_t err = {0};
    char path[600];
    vqa_run_opts o = {0};
    CHECK_OK(vqa_shard_range(d->n, 0, i, n, &o.begin, &o.end, &err), &err);
    snprintf(path, sizeof path, "mkdir -p %s", out);
    CHECK(system(path) == 0);
    snprintf(path, sizeof path, "%s/results.jsonl", out);
    o.results_out = fopen(path, "w");
    vqa_results rs = {0};
    CHECK_OK(vqa_run(d, fake_answer, fc, &o, &rs, &err), &err);
    fclose(o.results_out);
    cJSON *meta = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(meta, "model");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(model, "lm"), "sha256", lm_sha);
    cJSON_AddStringToObject(meta, "pipeline", "pad");
    cJSON *sh = cJSON_AddObjectToObject(meta, "shard");
    cJSON_AddNumberToObject(sh, "index", (double)i);
    cJSON_AddNumberToObject(sh, "count", (double)n);
    cJSON *sum = vqa_summary(&rs, meta);
    snprintf(path, sizeof path, "%s/summary.json", out);
    CHECK_OK(vqa_json_write(sum, path, &err), &err);
    cJSON_Delete(meta);
    vqa_results_free(&rs);
    return sum;
}

static void test_run_merge_expect(void) {
    err_t err = {0};
    fake_ctx fc = {0};
    snprintf(fc.dir, sizeof fc.dir, "vqa_test_%d", (int)getpid());
    char path[600];
    snprintf(path, sizeof path, "rm -rf %s && mkdir -p %s", fc.dir, fc.dir);
    CHECK(system(path) == 0);
    snprintf(path, sizeof path, "%s/data.jsonl", fc.dir);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; i < sizeof DATA / sizeof DATA[0]; i++) fprintf(f, "%s\n", DATA[i]);
    fclose(f);

    vqa_dataset d;
    CHECK_OK(vqa_dataset_load(&d, path, &err), &err);
    CHECK(d.n == 10);
    CHECK(!strcmp(d.ex[4].id, "4") && !strcmp(d.ex[4].image_path, "/abs/4.png"));
    CHECK(!strcmp(d.ex[9].id, "11") && !strcmp(d.ex[9].type, "other")); /* line number; default type */

    /* Full run: 10 examples, wrong are a5 (color: "Red." vs blue) and a7 (count). */
    char out[400];
    snprintf(out, sizeof out, "%s/full", fc.dir);
    cJSON *full = run_shard(&d, &fc, 0, 1, out, "abc");
    CHECK(fc.calls == 10 && fc.bad_paths == 0);
    CHECK_NEAR(num(full, "accuracy", NULL, NULL), 0.8, 1e-12);
    CHECK(num(full, "n", NULL, NULL) == 10 && num(full, "correct", NULL, NULL) == 8);
    CHECK_NEAR(num(full, "per_type", "color", "accuracy"), 0.5, 1e-12);
    CHECK_NEAR(num(full, "per_type", "count", "accuracy"), 0.5, 1e-12);
    CHECK_NEAR(num(full, "per_type", "exists", "accuracy"), 1.0, 1e-12);
    CHECK(num(full, "per_type", "position", "n") == 1 && num(full, "per_type", "other", "n") == 1);
    CHECK(num(full, "confusion", "color", "blue") < 0); /* needs a third key */
    const cJSON *cc = cJSON_GetObjectItem(cJSON_GetObjectItem(full, "confusion"), "color");
    CHECK(num(cc, "blue", "red", NULL) == 1 && num(cc, "red", "red", NULL) == 1);
    CHECK(num(cJSON_GetObjectItem(cJSON_GetObjectItem(full, "confusion"), "count"), "three", "two", NULL) == 1);

    /* Three shards, merged, give the unsplit figures (in a shuffled argument order). */
    char o0[400], o1[400], o2[400], om[400];
    snprintf(o0, sizeof o0, "%s/s0", fc.dir);
    snprintf(o1, sizeof o1, "%s/s1", fc.dir);
    snprintf(o2, sizeof o2, "%s/s2", fc.dir);
    snprintf(om, sizeof om, "%s/merged", fc.dir);
    cJSON_Delete(run_shard(&d, &fc, 0, 3, o0, "abc"));
    cJSON_Delete(run_shard(&d, &fc, 1, 3, o1, "abc"));
    cJSON_Delete(run_shard(&d, &fc, 2, 3, o2, "abc"));
    const char *dirs[3] = {o2, o0, o1};
    CHECK_OK(vqa_merge(dirs, 3, om, false, &err), &err);
    cJSON *merged = NULL;
    snprintf(path, sizeof path, "%s/summary.json", om);
    CHECK_OK(vqa_json_load(&merged, path, &err), &err);
    if (merged) {
        const char *keys[] = {"n", "correct", "accuracy", "per_type", "confusion", "pipeline", "model"};
        for (int k = 0; k < 7; k++)
            CHECK_MSG(cJSON_Compare(cJSON_GetObjectItem(full, keys[k]), cJSON_GetObjectItem(merged, keys[k]), true),
                      "merged %s differs from the unsplit run", keys[k]);
        CHECK(num(merged, "merged", "shards", NULL) == 3);
    }
    /* Merged results are in data set order. */
    vqa_results rs = {0};
    snprintf(path, sizeof path, "%s/results.jsonl", om);
    CHECK_OK(vqa_results_load(&rs, path, &err), &err);
    CHECK(rs.n == 10);
    for (size_t i = 0; i < rs.n; i++) CHECK(rs.r[i].index == i);
    if (rs.n == 10) CHECK(!rs.r[5].correct && !strcmp(rs.r[5].match, "red") && !strcmp(rs.r[5].expected, "blue"));
    vqa_results_free(&rs);

    /* Merge errors: a missing shard, a shard twice, a different model. */
    const char *two[2] = {o0, o2};
    CHECK(vqa_merge(two, 2, om, false, &err) == ERR_NOTFOUND && strstr(err.msg, "(1)"));
    CHECK_OK(vqa_merge(two, 2, om, true, &err), &err);
    const char *dup[3] = {o0, o1, o0};
    CHECK(vqa_merge(dup, 3, om, false, &err) == ERR_FORMAT);
    cJSON_Delete(run_shard(&d, &fc, 1, 3, o1, "other-model"));
    CHECK(vqa_merge(dirs, 3, om, false, &err) == ERR_MISMATCH && strstr(err.msg, "model.lm.sha256"));

    /* --expect: a run meets its own figures; a worse one fails overall and per type. */
    char report[1024];
    CHECK(vqa_expect(full, full, 0.0, report, sizeof report) == 0 && report[0] == 0);
    cJSON *better = cJSON_Duplicate(full, true);
    cJSON_SetNumberValue(cJSON_GetObjectItem(better, "accuracy"), 0.805);
    cJSON_SetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(better, "per_type"), "color"),
                                             "accuracy"), 0.75);
    CHECK(vqa_expect(full, better, 0.01, report, sizeof report) == 1); /* overall within tol, colour not */
    CHECK(strstr(report, "type 'color' accuracy 0.5000 is below the expected 0.7500") != NULL);
    CHECK(vqa_expect(full, better, 0.0, report, sizeof report) == 2);
    CHECK(vqa_expect(full, better, 0.3, report, sizeof report) == 0);
    cJSON_AddItemToObject(cJSON_GetObjectItem(better, "per_type"), "zebra", cJSON_Parse("{\"accuracy\":0.5}"));
    CHECK(vqa_expect(full, better, 0.3, report, sizeof report) == 1 && strstr(report, "'zebra': no examples"));
    CHECK(vqa_expect(full, cJSON_GetObjectItem(full, "per_type"), 0, report, sizeof report) == -1);
    cJSON_Delete(better);

    /* A model error stops the run with the example named. */
    vqa_results r2 = {0};
    vqa_run_opts o = {.begin = 0, .end = d.n};
    CHECK(vqa_run(&d, failing_answer, NULL, &o, &r2, &err) == ERR_IO && strstr(err.msg, "example a0") &&
          strstr(err.msg, "images/0.png"));
    vqa_results_free(&r2);
    /* Bytes that are not UTF-8 become U+FFFD, so results.jsonl stays valid JSON text. */
    o.end = 1;
    CHECK_OK(vqa_run(&d, garbage_answer, NULL, &o, &r2, &err), &err);
    CHECK(r2.n == 1 && !strcmp(r2.r[0].answer, "\xef\xbf\xbd\xef\xbf\xbd(ok \xe2\x82\xac \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") && !strcmp(r2.r[0].match, "ok"));
    vqa_results_free(&r2);
    cJSON_Delete(merged);
    cJSON_Delete(full);
    vqa_dataset_free(&d);

    /* Data set errors name file and line. */
    snprintf(path, sizeof path, "%s/bad.jsonl", fc.dir);
    f = fopen(path, "w");
    fprintf(f, "%s\n{\"image\":\"x.png\",\"answer\":\"red\"}\n", DATA[0]);
    fclose(f);
    CHECK(vqa_dataset_load(&d, path, &err) == ERR_FORMAT && strstr(err.msg, "bad.jsonl:2") &&
          strstr(err.msg, "\"question\""));
    f = fopen(path, "w");
    fprintf(f, "{not json\n");
    fclose(f);
    CHECK(vqa_dataset_load(&d, path, &err) == ERR_FORMAT && strstr(err.msg, "bad.jsonl:1"));
    CHECK(vqa_dataset_load(&d, "no/such.jsonl", &err) == ERR_IO);

    snprintf(path, sizeof path, "rm -rf %s", fc.dir);
    CHECK(system(path) == 0);
}

int main(void) {
    test_sha256();
    test_match();
    test_shards();
    test_run_merge_expect();
    return test_result("test_scenes_vqa");
}
