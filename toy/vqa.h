/* vqa.h — the VQA regression runner: a data set of image/question/answer triples,
 * a model behind a function pointer, per-example results, a summary, a regression
 * check against a recorded summary, and merging of shards run on several machines.
 *
 * Data set (JSON Lines, the format `toy generate` writes; toy-world.md "Data files"):
 * one object per line with "image" (path relative to the .jsonl's directory, or
 * absolute), "question", "answer" (strings, required), "id" (string or number;
 * default: the line number), "type" (default "other"); other fields are ignored.
 * Blank lines are skipped.
 *
 * Matching (vqa_match): both the model's answer and the expected answer are reduced
 * to their first word, lower-cased, with every character that is not a letter or a
 * digit removed ("Red." == "red", " Yes, it is" == "yes"); correct when equal and
 * non-empty.
 *
 * Files of a run (OUTDIR): results.jsonl, one line per example in data set order
 * {"index", "id", "image", "question", "expected", "answer", "match", "correct",
 * "type", "ms"}, and summary.json {"n", "correct", "accuracy", "per_type": {type:
 * {"n", "correct", "accuracy"}}, "confusion": {type: {expected: {answer: count}}},
 * "mean_ms", plus the caller's metadata (model files with sizes and SHA-256, pipeline,
 * data set, shard)}. A shard I/N (0 <= I < N) runs the I-th of N contiguous blocks of
 * the (limited) data set; vqa_merge concatenates shard results and recomputes the
 * summary, so merged figures never depend on how the work was split.
 *
 * Ownership: every struct owns its strings and arrays; *_free is safe on a zeroed
 * struct. Nothing prints; cJSON results belong to the caller (cJSON_Delete). */
#ifndef LLAVA_MECH_VQA_H
#define LLAVA_MECH_VQA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "../core/err.h"

#define VQA_WORD_MAX 64

typedef struct {
    char *id, *image, *question, *answer, *type;
    char *image_path; /* image resolved against the data set's directory */
    /* Optional ground truth for explanation checks (toy-world data sets): the target
     * object's box [x0, y0, x1, y1) and, when the line has "mask" and the target is one
     * of "objects", the mask file and the target's label in it (index + 1). */
    bool has_target;
    double target_bbox[4];
    char *mask_path;  /* NULL when absent */
    int target_label; /* -1 when unknown */
} vqa_example;

typedef struct {
    vqa_example *ex;
    size_t n;
    char *path; /* the .jsonl it came from */
} vqa_dataset;

err_code vqa_dataset_load(vqa_dataset *d, const char *jsonl_path, err_t *err);
void vqa_dataset_free(vqa_dataset *d);

/* First word, lower case, letters and digits only (see the header comment); out has
 * VQA_WORD_MAX bytes. Returns out. */
char *vqa_normalize(const char *text, char out[VQA_WORD_MAX]);
bool vqa_match(const char *answer, const char *expected);

/* The model: answers one question about one image into answer (cap bytes, NUL
 * terminated). A non-zero return stops the run with that error. */
typedef err_code (*vqa_answer_fn)(void *ctx, const char *image_path, const char *question, char *answer, size_t cap,
                                  err_t *err);

typedef struct {
    size_t index; /* position in the data set */
    char *id, *image, *question, *expected, *answer, *type;
    char match[VQA_WORD_MAX]; /* normalised answer */
    bool correct;
    double ms;
    cJSON *explain; /* optional per-method scores {method: {"pointing": bool, "mass": number}}, owned */
} vqa_result;

typedef struct {
    vqa_result *r;
    size_t n, cap;
} vqa_results;

void vqa_results_free(vqa_results *rs);

/* Examples [begin, end) of shard I of N over the first `limit` examples (0: all). */
err_code vqa_shard_range(size_t n, size_t limit, size_t shard, size_t n_shards, size_t *begin, size_t *end,
                         err_t *err);

/* Scores explanations of one answered example (vqa --explain); *out receives an
 * owned JSON object or NULL when the example has nothing to score. */
typedef err_code (*vqa_explain_fn)(void *ctx, const vqa_example *e, cJSON **out, err_t *err);

typedef struct {
    size_t begin, end;  /* example range (vqa_shard_range) */
    vqa_explain_fn explain; /* optional */
    void *explain_ctx;
    FILE *results_out;  /* optional: each result line is written and flushed as it comes */
    /* optional progress callback after every example */
    void (*progress)(void *ctx, size_t done, size_t total, size_t correct);
    void *progress_ctx;
} vqa_run_opts;

err_code vqa_run(const vqa_dataset *d, vqa_answer_fn fn, void *fn_ctx, const vqa_run_opts *o, vqa_results *out,
                 err_t *err);

/* One results.jsonl line (no newline); caller frees with cJSON_free. */
char *vqa_result_line(const vqa_result *r);
/* Appends the results of a results.jsonl file. */
err_code vqa_results_load(vqa_results *rs, const char *path, err_t *err);

/* Summary of the results; the items of meta (may be NULL) are copied in first. When
 * results carry explanation scores, "explain" holds per method {n, pointing, mass,
 * per_type {type: {n, pointing, mass}}}: the pointing-game accuracy and the mean
 * mass-in-mask, recomputed from the per-example scores (so merged shards agree). */
cJSON *vqa_summary(const vqa_results *rs, const cJSON *meta);

/* Regression check: every accuracy in expected (overall and per type) must be met by
 * summary within tol (summary >= expected - tol); a type in expected with no
 * examples in summary fails. Writes one line per failure (and, when none, nothing)
 * into report (cap bytes). Returns the number of failures, or -1 when expected has
 * no "accuracy" (not a summary). */
int vqa_expect(const cJSON *summary, const cJSON *expected, double tol, char *report, size_t cap);

/* Reads / writes a JSON file. */
err_code vqa_json_load(cJSON **out, const char *path, err_t *err);
err_code vqa_json_write(const cJSON *j, const char *path, err_t *err);

/* {"path", "size", "sha256"} of a file (model provenance in summaries). */
cJSON *vqa_file_info(const char *path, err_t *err);
/* SHA-256 (FIPS 180-4) of a buffer, as 64 hex digits + NUL. */
void vqa_sha256_hex(const void *data, size_t n, char hex[65]);

/* Merges shard output folders (each with results.jsonl and summary.json) into outdir:
 * the shards must agree on data set, model and pipeline (ERR_MISMATCH), must not
 * overlap (ERR_FORMAT), and must cover every shard 0..N-1 unless allow_partial. */
err_code vqa_merge(const char *const *dirs, int n_dirs, const char *outdir, bool allow_partial, err_t *err);

#endif
