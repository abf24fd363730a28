/* vqa_merge.c — merging VQA shard outputs (toy/vqa.h, vqa_merge). The merged
 * summary is recomputed from the merged per-example results, never averaged from
 * shard summaries, so it equals the summary of one unsplit run. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vqa.h"
#include "../core/path.h"

/* Keys vqa_summary computes; everything else in a summary is run metadata. */
static const char *const computed_keys[] = {"n", "correct", "accuracy", "per_type", "confusion", "mean_ms", "shard",
                                            "merged"};

/* Run facts that must agree between shards (paths may differ between machines,
 * contents may not). */
static const char *const same_keys[][3] = {
    {"dataset", "sha256", NULL}, {"dataset", "n", NULL},    {"model", "lm", "sha256"},
    {"model", "mmproj", "sha256"}, {"pipeline", NULL, NULL}, {"template", NULL, NULL},
    {"n_predict", NULL, NULL},
};

static const cJSON *get_path(const cJSON *j, const char *const keys[3]) {
    for (int i = 0; i < 3 && keys[i] && j; i++) j = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
    return j;
}

static int cmp_index(const void *a, const void *b) {
    size_t x = ((const vqa_result *)a)->index, y = ((const vqa_result *)b)->index;
    return (x > y) - (x < y);
}

static err_code shard_of(const cJSON *summary, const char *path, size_t *idx, size_t *count, err_t *err) {
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(summary, "shard");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(sh, "index");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(sh, "count");
    if (!cJSON_IsNumber(i) || !cJSON_IsNumber(n) || n->valuedouble < 1 || i->valuedouble < 0 ||
        i->valuedouble >= n->valuedouble)
        return err_set(err, ERR_FORMAT, "%s: no valid \"shard\": {\"index\", \"count\"} (not a vqa output?)", path);
    *idx = (size_t)i->valuedouble;
    *count = (size_t)n->valuedouble;
    return ERR_OK;
}

err_code vqa_merge(const char *const *dirs, int n_dirs, const char *outdir, bool allow_partial, err_t *err) {
    if (n_dirs < 1) return err_set(err, ERR_ARG, "merge: no shard folders given");
    char path[4200];
    cJSON *first = NULL, *from = cJSON_CreateArray();
    vqa_results rs = {0};
    bool *seen = NULL;
    size_t n_shards = 0;
    err_code rc = ERR_OK;
    for (int d = 0; d < n_dirs && !rc; d++) {
        cJSON *s = NULL;
        snprintf(path, sizeof path, "%s/summary.json", dirs[d]);
        if ((rc = vqa_json_load(&s, path, err))) break;
        size_t idx = 0, count = 0;
        if ((rc = shard_of(s, path, &idx, &count, err))) {
            cJSON_Delete(s);
            break;
        }
        if (!first) {
            first = s;
            n_shards = count;
            seen = calloc(count, 1);
            if (!seen) rc = err_set(err, ERR_NOMEM, "merge: out of memory");
        } else {
            if (count != n_shards)
                rc = err_set(err, ERR_MISMATCH, "%s: shard of %zu, but %s/summary.json is a shard of %zu", path, count,
                             dirs[0], n_shards);
            for (size_t k = 0; !rc && k < sizeof same_keys / sizeof same_keys[0]; k++) {
                const cJSON *a = get_path(first, same_keys[k]), *b = get_path(s, same_keys[k]);
                if ((a || b) && !(a && b && cJSON_Compare(a, b, true)))
                    rc = err_set(err, ERR_MISMATCH, "%s: %s%s%s%s%s differs from %s/summary.json", path,
                                 same_keys[k][0], same_keys[k][1] ? "." : "", same_keys[k][1] ? same_keys[k][1] : "",
                                 same_keys[k][2] ? "." : "", same_keys[k][2] ? same_keys[k][2] : "", dirs[0]);
            }
            cJSON_Delete(s);
        }
        if (rc) break;
        if (seen[idx]) {
            rc = err_set(err, ERR_FORMAT, "%s: shard %zu/%zu given twice", path, idx, n_shards);
            break;
        }
        seen[idx] = true;
        cJSON_AddItemToArray(from, cJSON_CreateString(dirs[d]));
        snprintf(path, sizeof path, "%s/results.jsonl", dirs[d]);
        rc = vqa_results_load(&rs, path, err);
    }
    if (!rc && !allow_partial) {
        char missing[256] = "";
        size_t used = 0, n_missing = 0;
        for (size_t i = 0; i < n_shards; i++)
            if (!seen[i]) {
                n_missing++;
                if (used + 24 < sizeof missing)
                    used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%zu", used ? ", " : "", i);
            }
        if (n_missing)
            rc = err_set(err, ERR_NOTFOUND, "merge: %zu of %zu shards missing (%s); pass the missing outputs or "
                         "allow a partial merge", n_missing, n_shards, missing);
    }
    if (!rc) {
        qsort(rs.r, rs.n, sizeof *rs.r, cmp_index);
        for (size_t i = 1; i < rs.n && !rc; i++)
            if (rs.r[i].index == rs.r[i - 1].index)
                rc = err_set(err, ERR_FORMAT, "merge: example %zu (id %s) appears in two shards", rs.r[i].index,
                             rs.r[i].id);
    }
    if (!rc) rc = path_mkdir_p(outdir, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/results.jsonl", outdir);
        FILE *f = fopen(path, "w");
        if (!f) rc = err_set(err, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        for (size_t i = 0; f && !rc && i < rs.n; i++) {
            char *line = vqa_result_line(&rs.r[i]);
            if (!line) {
                rc = err_set(err, ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            fputs(line, f);
            fputc('\n', f);
            cJSON_free(line);
        }
        if (f && (ferror(f) | fclose(f)) && !rc) rc = err_set(err, ERR_IO, "%s: write failed", path);
    }
    if (!rc) {
        for (size_t k = 0; k < sizeof computed_keys / sizeof computed_keys[0]; k++)
            cJSON_DeleteItemFromObjectCaseSensitive(first, computed_keys[k]);
        cJSON *sum = vqa_summary(&rs, first);
        cJSON *m = cJSON_AddObjectToObject(sum, "merged");
        cJSON_AddNumberToObject(m, "shards", (double)n_shards);
        cJSON_AddItemToObject(m, "from", from);
        from = NULL;
        snprintf(path, sizeof path, "%s/summary.json", outdir);
        rc = vqa_json_write(sum, path, err);
        cJSON_Delete(sum);
    }
    cJSON_Delete(from);
    cJSON_Delete(first);
    free(seen);
    vqa_results_free(&rs);
    return rc;
}
