/* vqa.c — VQA regression runner: data set, matching, run loop, results, summary and
 * the --expect check (toy/vqa.h). Shard merging is in vqa_merge.c, SHA-256 in
 * vqa_sha256.c. */
#include "vqa.h"

#include "../language/tok.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ---- data set */

static void example_free(vqa_example *e) {
    free(e->id);
    free(e->image);
    free(e->question);
    free(e->answer);
    free(e->type);
    free(e->image_path);
    free(e->mask_path);
}

void vqa_dataset_free(vqa_dataset *d) {
    for (size_t i = 0; i < d->n; i++) example_free(&d->ex[i]);
    free(d->ex);
    free(d->path);
    memset(d, 0, sizeof *d);
}

/* Directory part of path including the trailing '/', or "" (for relative images). */
static size_t dir_len(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) + 1 : 0;
}

static const char *str_field(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool bbox_of(const cJSON *o, double b[4]) {
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(o, "bbox");
    if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4) return false;
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetArrayItem(bb, k);
        if (!cJSON_IsNumber(v)) return false;
        b[k] = v->valuedouble;
    }
    return b[0] < b[2] && b[1] < b[3];
}

/* "target" {bbox}, and the mask label: the index + 1 of the object with the same box. */
static void parse_target(vqa_example *e, const cJSON *j, const char *path, size_t dlen) {
    e->target_label = -1;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "target");
    if (!cJSON_IsObject(t) || !bbox_of(t, e->target_bbox)) return;
    e->has_target = true;
    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(j, "objects");
    int i = 0;
    for (const cJSON *o = cJSON_IsArray(objs) ? objs->child : NULL; o; o = o->next, i++) {
        double b[4];
        if (bbox_of(o, b) && !memcmp(b, e->target_bbox, sizeof b)) {
            e->target_label = i + 1;
            break;
        }
    }
    const char *mask = str_field(j, "mask");
    if (mask && e->target_label > 0) {
        size_t n = strlen(mask) + dlen + 1;
        e->mask_path = malloc(n);
        if (e->mask_path && mask[0] == '/') snprintf(e->mask_path, n, "%s", mask);
        else if (e->mask_path) snprintf(e->mask_path, n, "%.*s%s", (int)dlen, path, mask);
    }
}

static err_code parse_example(vqa_example *e, const char *line, const char *path, size_t lineno, size_t dlen,
                              err_t *err) {
    cJSON *j = cJSON_Parse(line);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return err_set(err, ERR_FORMAT, "%s:%zu: not a JSON object", path, lineno);
    }
    const char *need[3] = {"image", "question", "answer"};
    for (int k = 0; k < 3; k++)
        if (!str_field(j, need[k])) {
            cJSON_Delete(j);
            return err_set(err, ERR_FORMAT, "%s:%zu: missing string field \"%s\"", path, lineno, need[k]);
        }
    char idbuf[32];
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (cJSON_IsString(id))
        snprintf(idbuf, sizeof idbuf, "%s", id->valuestring);
    else if (cJSON_IsNumber(id))
        snprintf(idbuf, sizeof idbuf, "%.17g", id->valuedouble);
    else
        snprintf(idbuf, sizeof idbuf, "%zu", lineno);
    const char *image = str_field(j, "image"), *type = str_field(j, "type");
    e->id = dup_str(cJSON_IsString(id) ? id->valuestring : idbuf);
    e->image = dup_str(image);
    e->question = dup_str(str_field(j, "question"));
    e->answer = dup_str(str_field(j, "answer"));
    e->type = dup_str(type && *type ? type : "other");
    size_t n = strlen(image) + dlen + 1;
    e->image_path = malloc(n);
    if (e->image_path) {
        if (image[0] == '/')
            snprintf(e->image_path, n, "%s", image);
        else
            snprintf(e->image_path, n, "%.*s%s", (int)dlen, path, image);
    }
    parse_target(e, j, path, dlen);
    cJSON_Delete(j);
    if (!e->id || !e->image || !e->question || !e->answer || !e->type || !e->image_path)
        return err_set(err, ERR_NOMEM, "%s:%zu: out of memory", path, lineno);
    return ERR_OK;
}

err_code vqa_dataset_load(vqa_dataset *d, const char *path, err_t *err) {
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "r");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    d->path = dup_str(path);
    char *line = NULL;
    size_t cap = 0, lineno = 0, dcap = 0, dlen = dir_len(path);
    ssize_t got;
    err_code rc = d->path ? ERR_OK : err_set(err, ERR_NOMEM, "%s: out of memory", path);
    while (!rc && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        const char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p) continue;
        if (d->n == dcap) {
            size_t nc = dcap ? 2 * dcap : 256;
            vqa_example *ne = realloc(d->ex, nc * sizeof *ne);
            if (!ne) {
                rc = err_set(err, ERR_NOMEM, "%s: out of memory at line %zu", path, lineno);
                break;
            }
            d->ex = ne;
            dcap = nc;
        }
        memset(&d->ex[d->n], 0, sizeof d->ex[d->n]);
        rc = parse_example(&d->ex[d->n], p, path, lineno, dlen, err);
        d->n++; /* counted even on failure so vqa_dataset_free releases partial fields */
    }
    free(line);
    if (!rc && ferror(f)) rc = err_set(err, ERR_IO, "%s: read failed", path);
    fclose(f);
    if (!rc && d->n == 0) rc = err_set(err, ERR_FORMAT, "%s: no examples", path);
    if (rc) vqa_dataset_free(d);
    return rc;
}

/* ---- matching */

char *vqa_normalize(const char *text, char out[VQA_WORD_MAX]) {
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    /* Skip to the first word that has a letter or digit ("  -- Red!" -> "red"). */
    for (;;) {
        while (*p && isspace(*p)) p++;
        const unsigned char *q = p;
        while (*q && !isspace(*q) && !isalnum(*q)) q++;
        if (!*q || !isspace(*q)) break;
        p = q;
    }
    for (; *p && !isspace(*p) && n + 1 < VQA_WORD_MAX; p++)
        if (isalnum(*p)) out[n++] = (char)tolower(*p);
    out[n] = 0;
    return out;
}

bool vqa_match(const char *answer, const char *expected) {
    char a[VQA_WORD_MAX], b[VQA_WORD_MAX];
    vqa_normalize(answer, a);
    vqa_normalize(expected, b);
    return a[0] && !strcmp(a, b);
}

/* ---- results */

static void result_free(vqa_result *r) {
    free(r->id);
    free(r->image);
    free(r->question);
    free(r->expected);
    free(r->answer);
    free(r->type);
    cJSON_Delete(r->explain);
}

void vqa_results_free(vqa_results *rs) {
    for (size_t i = 0; i < rs->n; i++) result_free(&rs->r[i]);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

static vqa_result *results_push(vqa_results *rs) {
    if (rs->n == rs->cap) {
        size_t nc = rs->cap ? 2 * rs->cap : 256;
        vqa_result *nr = realloc(rs->r, nc * sizeof *nr);
        if (!nr) return NULL;
        rs->r = nr;
        rs->cap = nc;
    }
    vqa_result *r = &rs->r[rs->n++];
    memset(r, 0, sizeof *r);
    return r;
}

char *vqa_result_line(const vqa_result *r) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "index", (double)r->index);
    cJSON_AddStringToObject(j, "id", r->id ? r->id : "");
    cJSON_AddStringToObject(j, "image", r->image ? r->image : "");
    cJSON_AddStringToObject(j, "question", r->question ? r->question : "");
    cJSON_AddStringToObject(j, "expected", r->expected ? r->expected : "");
    cJSON_AddStringToObject(j, "answer", r->answer ? r->answer : "");
    cJSON_AddStringToObject(j, "match", r->match);
    cJSON_AddBoolToObject(j, "correct", r->correct);
    cJSON_AddStringToObject(j, "type", r->type ? r->type : "other");
    /* milliseconds rounded to microseconds: keeps lines short and diffable */
    cJSON_AddNumberToObject(j, "ms", (double)llround(r->ms * 1000.0) / 1000.0);
    if (r->explain) cJSON_AddItemToObject(j, "explain", cJSON_Duplicate(r->explain, true));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

err_code vqa_results_load(vqa_results *rs, const char *path, err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    err_code rc = ERR_OK;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        const char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p) continue;
        cJSON *j = cJSON_Parse(p);
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(j, "index");
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "correct");
        const char *keys[6] = {"id", "image", "question", "expected", "answer", "type"};
        bool good = cJSON_IsObject(j) && cJSON_IsNumber(idx) && idx->valuedouble >= 0 && cJSON_IsBool(ok);
        for (int k = 0; k < 6 && good; k++) good = str_field(j, keys[k]) != NULL;
        if (!good) {
            cJSON_Delete(j);
            rc = err_set(err, ERR_FORMAT, "%s:%zu: not a results line (needs index, correct, id, image, question, "
                                          "expected, answer, type)", path, lineno);
            break;
        }
        vqa_result *r = results_push(rs);
        if (!r) {
            cJSON_Delete(j);
            rc = err_set(err, ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        r->index = (size_t)idx->valuedouble;
        r->id = dup_str(str_field(j, "id"));
        r->image = dup_str(str_field(j, "image"));
        r->question = dup_str(str_field(j, "question"));
        r->expected = dup_str(str_field(j, "expected"));
        r->answer = dup_str(str_field(j, "answer"));
        r->type = dup_str(str_field(j, "type"));
        /* correctness is recomputed, so a merge never trusts a stale matcher */
        vqa_normalize(r->answer ? r->answer : "", r->match);
        r->correct = r->answer && r->expected && vqa_match(r->answer, r->expected);
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "ms");
        r->ms = cJSON_IsNumber(ms) ? ms->valuedouble : 0;
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "explain");
        if (cJSON_IsObject(ex)) r->explain = cJSON_Duplicate(ex, true);
        cJSON_Delete(j);
        if (!r->id || !r->image || !r->question || !r->expected || !r->answer || !r->type)
            rc = err_set(err, ERR_NOMEM, "%s: out of memory", path);
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- run */

err_code vqa_shard_range(size_t n, size_t limit, size_t shard, size_t n_shards, size_t *begin, size_t *end,
                         err_t *err) {
    if (n_shards == 0 || shard >= n_shards)
        return err_set(err, ERR_ARG, "shard %zu/%zu: need 0 <= I < N", shard, n_shards);
    size_t m = limit && limit < n ? limit : n;
    /* Contiguous blocks whose sizes differ by at most one. */
    *begin = m * shard / n_shards;
    *end = m * (shard + 1) / n_shards;
    return ERR_OK;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

err_code vqa_run(const vqa_dataset *d, vqa_answer_fn fn, void *fn_ctx, const vqa_run_opts *o, vqa_results *out,
                 err_t *err) {
    if (o->begin > o->end || o->end > d->n)
        return err_set(err, ERR_ARG, "%s: example range [%zu, %zu) outside the %zu examples", d->path, o->begin,
                       o->end, d->n);
    /* answer as the model gave it; clean with every invalid UTF-8 byte replaced by
     * U+FFFD, so results.jsonl stays valid JSON text whatever an untrained model emits */
    char answer[1024], clean[3 * sizeof answer + 1];
    size_t correct = 0;
    for (size_t i = o->begin; i < o->end; i++) {
        const vqa_example *e = &d->ex[i];
        answer[0] = 0;
        double t0 = now_ms();
        err_code rc = fn(fn_ctx, e->image_path, e->question, answer, sizeof answer, err);
        double ms = now_ms() - t0;
        if (rc) return err_prefix(err, "example %s (number %zu of %s)", e->id, i + 1, d->path);
        answer[sizeof answer - 1] = 0;
        tok_utf8_sanitize(answer, strlen(answer), clean);
        vqa_result *r = results_push(out);
        if (!r) return err_set(err, ERR_NOMEM, "out of memory after %zu results", out->n);
        r->index = i;
        r->id = dup_str(e->id);
        r->image = dup_str(e->image);
        r->question = dup_str(e->question);
        r->expected = dup_str(e->answer);
        r->answer = dup_str(clean);
        r->type = dup_str(e->type);
        vqa_normalize(clean, r->match);
        r->correct = vqa_match(clean, e->answer);
        r->ms = ms;
        if (!r->id || !r->image || !r->question || !r->expected || !r->answer || !r->type)
            return err_set(err, ERR_NOMEM, "out of memory after %zu results", out->n);
        correct += r->correct;
        if (o->explain && (rc = o->explain(o->explain_ctx, e, &r->explain, err)))
            return err_prefix(err, "example %s (number %zu of %s): explain", e->id, i + 1, d->path);
        if (o->results_out) {
            char *line = vqa_result_line(r);
            if (!line) return err_set(err, ERR_NOMEM, "out of memory writing a result");
            fputs(line, o->results_out);
            fputc('\n', o->results_out);
            cJSON_free(line);
            if (fflush(o->results_out) != 0) return err_set(err, ERR_IO, "results: write failed: %s", strerror(errno));
        }
        if (o->progress) o->progress(o->progress_ctx, i + 1 - o->begin, o->end - o->begin, correct);
    }
    return ERR_OK;
}

/* ---- summary */

static cJSON *obj_child(cJSON *parent, const char *key) {
    cJSON *c = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!c) c = cJSON_AddObjectToObject(parent, key);
    return c;
}

static void add_count(cJSON *obj, const char *key, double by) {
    cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (c)
        cJSON_SetNumberValue(c, c->valuedouble + by);
    else
        cJSON_AddNumberToObject(obj, key, by);
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* Adds one example's score of a method into {n, hits, mass_sum}. */
static void explain_add(cJSON *acc, const cJSON *score) {
    const cJSON *hit = cJSON_GetObjectItemCaseSensitive(score, "pointing");
    const cJSON *mass = cJSON_GetObjectItemCaseSensitive(score, "mass");
    if (!cJSON_IsBool(hit) || !cJSON_IsNumber(mass)) return;
    add_count(acc, "n", 1);
    add_count(acc, "hits", cJSON_IsTrue(hit));
    add_count(acc, "mass_sum", mass->valuedouble);
}

static void explain_finish(cJSON *acc) {
    cJSON *n = cJSON_GetObjectItemCaseSensitive(acc, "n");
    cJSON *hits = cJSON_DetachItemFromObjectCaseSensitive(acc, "hits");
    cJSON *mass = cJSON_DetachItemFromObjectCaseSensitive(acc, "mass_sum");
    double dn = cJSON_IsNumber(n) ? n->valuedouble : 0;
    cJSON_AddNumberToObject(acc, "pointing", ratio(hits ? hits->valuedouble : 0, dn));
    cJSON_AddNumberToObject(acc, "mass", ratio(mass ? mass->valuedouble : 0, dn));
    cJSON_Delete(hits);
    cJSON_Delete(mass);
}

static cJSON *explain_summary(const vqa_results *rs) {
    cJSON *out = NULL;
    for (size_t i = 0; i < rs->n; i++) {
        const vqa_result *r = &rs->r[i];
        for (const cJSON *m = r->explain ? r->explain->child : NULL; m; m = m->next) {
            if (!m->string) continue;
            if (!out) out = cJSON_CreateObject();
            cJSON *acc = obj_child(out, m->string);
            explain_add(acc, m);
            explain_add(obj_child(obj_child(acc, "per_type"), r->type), m);
        }
    }
    for (cJSON *m = out ? out->child : NULL; m; m = m->next) {
        explain_finish(m);
        for (cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "per_type")->child; t; t = t->next) explain_finish(t);
    }
    return out;
}

cJSON *vqa_summary(const vqa_results *rs, const cJSON *meta) {
    cJSON *s = cJSON_CreateObject();
    if (!s) return NULL;
    if (meta)
        for (const cJSON *m = meta->child; m; m = m->next)
            if (m->string) cJSON_AddItemToObject(s, m->string, cJSON_Duplicate(m, true));
    size_t correct = 0;
    double ms = 0;
    cJSON *per = cJSON_CreateObject(), *conf = cJSON_CreateObject();
    for (size_t i = 0; i < rs->n; i++) {
        const vqa_result *r = &rs->r[i];
        correct += r->correct;
        ms += r->ms;
        cJSON *t = obj_child(per, r->type);
        add_count(t, "n", 1);
        add_count(t, "correct", r->correct);
        char want[VQA_WORD_MAX];
        vqa_normalize(r->expected, want);
        add_count(obj_child(obj_child(conf, r->type), want[0] ? want : "(empty)"), r->match[0] ? r->match : "(empty)",
                  1);
    }
    for (cJSON *t = per->child; t; t = t->next) {
        double n = cJSON_GetObjectItemCaseSensitive(t, "n")->valuedouble;
        double c = cJSON_GetObjectItemCaseSensitive(t, "correct")->valuedouble;
        cJSON_AddNumberToObject(t, "accuracy", ratio(c, n));
    }
    cJSON_AddNumberToObject(s, "n", (double)rs->n);
    cJSON_AddNumberToObject(s, "correct", (double)correct);
    cJSON_AddNumberToObject(s, "accuracy", ratio((double)correct, (double)rs->n));
    cJSON_AddItemToObject(s, "per_type", per);
    cJSON_AddItemToObject(s, "confusion", conf);
    cJSON_AddNumberToObject(s, "mean_ms", ratio(ms, (double)rs->n));
    cJSON *ex = explain_summary(rs);
    if (ex) cJSON_AddItemToObject(s, "explain", ex);
    return s;
}

/* Appends one printf-style line to report (truncating at cap); returns 1 (one failure). */
static int report_line(char *report, size_t cap, size_t *used, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int report_line(char *report, size_t cap, size_t *used, const char *fmt, ...) {
    if (*used + 1 < cap) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(report + *used, cap - *used, fmt, ap);
        va_end(ap);
        if (k > 0) *used += (size_t)k < cap - *used ? (size_t)k : cap - *used - 1;
    }
    return 1;
}

int vqa_expect(const cJSON *summary, const cJSON *expected, double tol, char *report, size_t cap) {
    size_t used = 0;
    if (cap) report[0] = 0;
    const cJSON *ea = cJSON_GetObjectItemCaseSensitive(expected, "accuracy");
    if (!cJSON_IsNumber(ea)) return -1;
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(summary, "accuracy");
    double have = cJSON_IsNumber(sa) ? sa->valuedouble : 0;
    int fails = 0;
    /* The small epsilon keeps "exactly at the bound" from failing on rounding. */
    if (have < ea->valuedouble - tol - 1e-12)
        fails += report_line(report, cap, &used, "overall accuracy %.4f is below the expected %.4f by more than %.4f\n",
                             have, ea->valuedouble, tol);
    const cJSON *ept = cJSON_GetObjectItemCaseSensitive(expected, "per_type");
    const cJSON *spt = cJSON_GetObjectItemCaseSensitive(summary, "per_type");
    for (const cJSON *t = ept ? ept->child : NULL; t; t = t->next) {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(t, "accuracy");
        if (!cJSON_IsNumber(want) || !t->string) continue;
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(spt, t->string);
        const cJSON *got = cJSON_GetObjectItemCaseSensitive(st, "accuracy");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(st, "n");
        char what[96];
        snprintf(what, sizeof what, "type '%.60s'", t->string);
        if (!cJSON_IsNumber(got) || !cJSON_IsNumber(n) || n->valuedouble <= 0)
            fails += report_line(report, cap, &used, "%s: no examples (expected accuracy %.4f)\n", what,
                                 want->valuedouble);
        else if (got->valuedouble < want->valuedouble - tol - 1e-12)
            fails += report_line(report, cap, &used, "%s accuracy %.4f is below the expected %.4f by more than %.4f\n",
                                 what, got->valuedouble, want->valuedouble, tol);
    }
    return fails;
}

/* ---- JSON files */

err_code vqa_json_load(cJSON **out, const char *path, err_t *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    buf[n] = 0;
    *out = cJSON_Parse(buf);
    free(buf);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return err_set(err, ERR_FORMAT, "%s: not a JSON object", path);
    }
    return ERR_OK;
}

err_code vqa_json_write(const cJSON *j, const char *path, err_t *err) {
    char *s = cJSON_Print(j);
    if (!s) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    FILE *f = fopen(path, "w");
    if (!f) {
        cJSON_free(s);
        return err_set(err, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    bool bad = fputs(s, f) < 0 || fputc('\n', f) == EOF;
    cJSON_free(s);
    if (fclose(f) != 0 || bad) return err_set(err, ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return ERR_OK;
}
