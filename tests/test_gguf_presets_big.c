/* test_gguf_presets_big.c — the big make-model presets (tinyllama-clip-b, 2.4 GB in
 * f16; llava-1.5-7b, 14 GB) checked without writing them: a child process writes each
 * file into a FIFO, this process reads only the first few MB (header, every metadata
 * key, every tensor info) and closes the pipe, which ends the child's write with an
 * error. From that prefix:
 *   - the metadata opens with our reader (the header's tensor count set to 0 so the
 *     absent tensor data is not asked for), and holds the preset's hyper-parameters;
 *   - the vocabulary has the preset's size, starts with <unk>, <s>, </s> and the 256
 *     byte pieces <0x00>..<0xFF> with llama.cpp's token types, has unique pieces, and
 *     the tokenizer built from it encodes any UTF-8 text without <unk> and decodes it
 *     back;
 *   - the tensor infos, read here by a separate little cursor, list the tensors of
 *     llama.cpp's LLaVA layout with the real shapes and types, at offsets that follow
 *     gguf.cpp's rule (each the previous plus its size padded to the alignment).
 * The vocabulary checks run on every preset (tiny and small arrive whole). Also: a
 * writer whose output is a pipe that closes early fails with ERR_IO and leaves the
 * pipe in place (a failed write removes only a regular file it made). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/presets.h"
#include "core/quant.h"
#include "language/tok.h"
#include "testutil.h"

#define PREFIX_MAX ((size_t)3 << 20)

/* Runs fn(arg) in a child whose output path is a FIFO; returns the first bytes the
 * child wrote (up to PREFIX_MAX) and the child's exit status. */
typedef err_code (*write_fn)(const preset_t *p, const preset_opts *o, const char *path, err_t *err);

static unsigned char *read_prefix(const char *fifo, write_fn fn, const preset_t *p, const preset_opts *o,
                                  size_t *n_out, int *status) {
    *n_out = 0;
    *status = -1;
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0) {
        CHECK_MSG(0, "mkfifo %s: %s", fifo, strerror(errno));
        return NULL;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN); /* a closed reader becomes EPIPE: the writer's error path */
        err_t err = {0};
        err_code rc = fn(p, o, fifo, &err);
        _exit(rc == ERR_OK ? 0 : rc == ERR_IO ? 3 : 4);
    }
    CHECK(pid > 0);
    if (pid <= 0) return NULL;
    unsigned char *buf = malloc(PREFIX_MAX);
    int fd = open(fifo, O_RDONLY);
    CHECK(fd >= 0 && buf);
    size_t n = 0;
    while (fd >= 0 && buf && n < PREFIX_MAX) {
        ssize_t r = read(fd, buf + n, PREFIX_MAX - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    if (fd >= 0) close(fd);
    waitpid(pid, status, 0);
    unlink(fifo);
    *n_out = n;
    return buf;
}

/* ---- a small independent cursor over the header, to reach the tensor infos ---- */
typedef struct {
    const unsigned char *p;
    size_t n, pos;
    int ok;
} cur_t;

static uint64_t cu64(cur_t *c) {
    uint64_t v = 0;
    if (c->pos + 8 > c->n) c->ok = 0;
    else memcpy(&v, c->p + c->pos, 8);
    c->pos += 8;
    return v;
}
static uint32_t cu32(cur_t *c) {
    uint32_t v = 0;
    if (c->pos + 4 > c->n) c->ok = 0;
    else memcpy(&v, c->p + c->pos, 4);
    c->pos += 4;
    return v;
}
static void cskip(cur_t *c, uint64_t k) {
    if (k > c->n - (c->pos < c->n ? c->pos : c->n)) c->ok = 0;
    c->pos += (size_t)k;
}
static void cvalue(cur_t *c, uint32_t t) {
    static const int sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (!c->ok || t > 12) {
        c->ok = 0;
        return;
    }
    if (t == 8) {
        cskip(c, cu64(c));
    } else if (t == 9) {
        uint32_t et = cu32(c);
        uint64_t m = cu64(c);
        for (uint64_t i = 0; i < m && c->ok; i++) cvalue(c, et);
    } else {
        cskip(c, (uint64_t)sz[t]);
    }
}

typedef struct {
    char name[64];
    uint32_t n_dims, type;
    int64_t ne[4];
    uint64_t off;
} tinfo_t;

/* Reads header, skips the metadata, returns the tensor infos (malloc'd). */
static tinfo_t *tensor_infos(const unsigned char *b, size_t n, uint64_t *n_t, uint32_t *align) {
    cur_t c = {b, n, 4, 1};
    CHECK(n >= 24 && !memcmp(b, "GGUF", 4) && cu32(&c) == 3);
    *n_t = cu64(&c);
    uint64_t n_kv = cu64(&c);
    *align = 32;
    for (uint64_t i = 0; i < n_kv && c.ok; i++) {
        uint64_t kl = cu64(&c);
        int is_align = c.ok && kl == 17 && c.pos + 17 <= n && !memcmp(b + c.pos, "general.alignment", 17);
        cskip(&c, kl);
        uint32_t t = cu32(&c);
        if (is_align && t == GGUF_T_U32 && c.pos + 4 <= n) memcpy(align, b + c.pos, 4);
        cvalue(&c, t);
    }
    tinfo_t *ti = calloc(*n_t ? *n_t : 1, sizeof *ti);
    for (uint64_t i = 0; i < *n_t && c.ok; i++) {
        uint64_t l = cu64(&c);
        if (l >= sizeof ti[i].name || c.pos + l > n) {
            c.ok = 0;
            break;
        }
        memcpy(ti[i].name, b + c.pos, l);
        c.pos += l;
        ti[i].n_dims = cu32(&c);
        for (int d = 0; d < 4; d++) ti[i].ne[d] = 1;
        for (uint32_t d = 0; d < ti[i].n_dims && d < 4; d++) ti[i].ne[d] = (int64_t)cu64(&c);
        ti[i].type = cu32(&c);
        ti[i].off = cu64(&c);
    }
    CHECK_MSG(c.ok, "header or tensor infos beyond the %zu bytes read", n);
    return ti;
}

static const tinfo_t *find(const tinfo_t *ti, uint64_t n, const char *name) {
    for (uint64_t i = 0; i < n; i++)
        if (!strcmp(ti[i].name, name)) return &ti[i];
    return NULL;
}

static void check_shape(const tinfo_t *ti, uint64_t n, const char *name, int type, int n_dims, const int64_t *ne) {
    const tinfo_t *t = find(ti, n, name);
    CHECK_MSG(t != NULL, "tensor %s missing", name);
    if (!t) return;
    int ok = t->type == (uint32_t)type && t->n_dims == (uint32_t)n_dims;
    for (int d = 0; d < n_dims; d++) ok &= t->ne[d] == ne[d];
    CHECK_MSG(ok, "tensor %s: type %u, %u dims [%lld %lld %lld %lld]", name, t->type, t->n_dims, (long long)t->ne[0],
              (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
}

/* Offsets as gguf.cpp requires, names unique and shorter than GGML_MAX_NAME. */
static void check_offsets(const tinfo_t *ti, uint64_t n, uint32_t align) {
    uint64_t expect = 0;
    int bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        const qt_traits *tr = qt_get((int)ti[i].type);
        if (!tr || ti[i].off != expect || strlen(ti[i].name) >= 64) {
            bad++;
            continue;
        }
        size_t bytes = qt_row_size((int)ti[i].type, ti[i].ne[0]) * (size_t)(ti[i].ne[1] * ti[i].ne[2] * ti[i].ne[3]);
        expect += (bytes + align - 1) / align * align;
        for (uint64_t j = 0; j < i; j++) bad += !strcmp(ti[i].name, ti[j].name);
    }
    CHECK_MSG(bad == 0, "%d tensor infos break gguf.cpp's rules", bad);
}

/* Opens the metadata of a prefix (tensor count patched to 0). */
static gguf_t *open_meta(unsigned char *b, size_t n, const char *name) {
    err_t err = {0};
    uint64_t zero = 0;
    memcpy(b + 8, &zero, 8);
    gguf_t *g = NULL;
    CHECK_OK(gguf_open_memory(&g, b, n, name, &err), &err);
    return g;
}

static void check_vocab(const preset_t *p, const gguf_t *g) {
    err_t err = {0};
    uint64_t n = 0;
    CHECK_OK(gguf_get_arr_len(g, "tokenizer.ggml.tokens", GGUF_T_STRING, &n, &err), &err);
    CHECK_MSG(n == (uint64_t)p->n_vocab, "%s: vocabulary of %llu", p->name, (unsigned long long)n);
    int32_t *types = malloc(n * sizeof *types);
    CHECK_OK(gguf_get_arr_i32(g, "tokenizer.ggml.token_type", types, n, &err), &err);
    const char *sp[3] = {"<unk>", "<s>", "</s>"};
    const int st[3] = {TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL};
    for (int i = 0; i < 3; i++) {
        const char *s;
        size_t len;
        CHECK_OK(gguf_get_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)i, &s, &len, &err), &err);
        CHECK_MSG(len == strlen(sp[i]) && !memcmp(s, sp[i], len) && types[i] == st[i], "%s: piece %d", p->name, i);
    }
    int bytes_ok = 1, normal_after = 1;
    for (int b = 0; b < 256; b++) {
        const char *s;
        size_t len;
        char want[8];
        snprintf(want, sizeof want, "<0x%02X>", b);
        gguf_get_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)(3 + b), &s, &len, &err);
        bytes_ok &= types[3 + b] == TOK_BYTE && len == 6 && !memcmp(s, want, 6);
    }
    for (uint64_t i = 259; i < n; i++) normal_after &= types[i] == TOK_NORMAL;
    CHECK_MSG(bytes_ok, "%s: the 256 byte pieces", p->name);
    CHECK_MSG(normal_after, "%s: pieces after the bytes are normal", p->name);
    free(types);
    uint32_t u = 99;
    CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, &err), &err);
    CHECK(u == 1);
    CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, &err), &err);
    CHECK(u == 2);
    CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u, &err), &err);
    CHECK(u == 0);

    tok_t *tk = NULL;
    CHECK_OK(tok_load(&tk, g, &err), &err);
    if (!tk) return;
    CHECK(tok_n_vocab(tk) == p->n_vocab && tok_byte_fallback(tk));
    int unique = 1;
    for (int32_t i = 0; i < tok_n_vocab(tk); i++) {
        size_t len;
        const char *s = tok_piece(tk, i, &len);
        unique &= tok_find(tk, s, len) == i;
    }
    CHECK_MSG(unique, "%s: pieces not unique", p->name);
    const char *text = "What is in the image? \xe2\x80\x9cZ\xc3\xbcrich\xe2\x80\x9d, 42 \xf0\x9f\x90\x88 \xe4\xb8\xad \x01\x7f~";
    int32_t ids[256];
    int64_t n_ids = 0;
    CHECK_OK(tok_encode(tk, text, strlen(text), true, ids, 256, &n_ids, &err), &err);
    int unk = 0;
    for (int64_t i = 0; i < n_ids; i++) unk += ids[i] == tok_unk(tk);
    CHECK_MSG(n_ids > 1 && ids[0] == 1 && unk == 0, "%s: %lld ids, %d <unk>", p->name, (long long)n_ids, unk);
    char back[512];
    size_t blen = 0;
    CHECK_OK(tok_decode(tk, ids + 1, n_ids - 1, true, back, sizeof back, &blen, &err), &err);
    CHECK_MSG(blen == strlen(text) && !memcmp(back, text, blen), "%s: decoded '%.*s'", p->name, (int)blen, back);
    tok_free(tk);
}

static void check_lm(const preset_t *p, int want_layers, int64_t E, int64_t F, int64_t kv, const char *fifo) {
    preset_opts o = {QT_Q4_K, QT_F16, 3, NULL, NULL};
    size_t n = 0;
    int status;
    unsigned char *b = read_prefix(fifo, preset_write_lm, p, &o, &n, &status);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 3, "%s LM writer: status %d (expected an I/O error)",
              p->name, status);
    CHECK_MSG(b && n == PREFIX_MAX, "%s: read %zu bytes", p->name, n);
    if (!b || n < PREFIX_MAX) {
        free(b);
        return;
    }
    uint64_t n_t = 0;
    uint32_t align = 0;
    tinfo_t *ti = tensor_infos(b, n, &n_t, &align);
    CHECK(n_t == (uint64_t)preset_lm_n_tensors(p) && n_t == 3 + 9 * (uint64_t)want_layers);
    const int64_t V = 32000;
    check_shape(ti, n_t, "token_embd.weight", QT_Q4_K, 2, (int64_t[]){E, V});
    check_shape(ti, n_t, "output.weight", QT_Q4_K, 2, (int64_t[]){E, V});
    check_shape(ti, n_t, "output_norm.weight", QT_F32, 1, (int64_t[]){E});
    char name[64];
    int l = want_layers - 1;
    snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
    check_shape(ti, n_t, name, QT_Q4_K, 2, (int64_t[]){E, E});
    snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
    check_shape(ti, n_t, name, QT_Q4_K, 2, (int64_t[]){E, kv});
    snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
    check_shape(ti, n_t, name, QT_Q4_K, 2, (int64_t[]){E, kv});
    snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
    check_shape(ti, n_t, name, QT_Q4_K, 2, (int64_t[]){E, F});
    snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
    check_shape(ti, n_t, name, QT_Q4_K, 2, (int64_t[]){F, E});
    snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
    check_shape(ti, n_t, name, QT_F32, 1, (int64_t[]){E});
    snprintf(name, sizeof name, "blk.%d.attn_q.weight", want_layers);
    CHECK(find(ti, n_t, name) == NULL);
    check_offsets(ti, n_t, align);
    free(ti);

    gguf_t *g = open_meta(b, n, p->name);
    if (g) {
        err_t err = {0};
        uint32_t u = 0;
        CHECK_OK(gguf_get_u32(g, "llama.block_count", &u, &err), &err);
        CHECK(u == (uint32_t)want_layers);
        CHECK_OK(gguf_get_u32(g, "llama.embedding_length", &u, &err), &err);
        CHECK(u == (uint32_t)E);
        CHECK_OK(gguf_get_u32(g, "llama.feed_forward_length", &u, &err), &err);
        CHECK(u == (uint32_t)F);
        CHECK_OK(gguf_get_u32(g, "llama.attention.head_count", &u, &err), &err);
        CHECK(u == 32);
        CHECK_OK(gguf_get_u32(g, "llama.attention.head_count_kv", &u, &err), &err);
        CHECK(u == (uint32_t)(kv / (E / 32)));
        CHECK_OK(gguf_get_u32(g, "llama.rope.dimension_count", &u, &err), &err);
        CHECK(u == (uint32_t)(E / 32));
        CHECK_OK(gguf_get_u32(g, "general.file_type", &u, &err), &err);
        CHECK(u == 14); /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
        check_vocab(p, g);
        gguf_close(g);
    }
    free(b);
}

static void check_mmproj(const preset_t *p, int64_t size, int64_t patch, int64_t W, int64_t F, int blocks, int64_t E,
                         const char *fifo) {
    preset_opts o = {QT_F16, QT_F16, 3, NULL, NULL};
    size_t n = 0;
    int status;
    unsigned char *b = read_prefix(fifo, preset_write_mmproj, p, &o, &n, &status);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 3, "%s mmproj writer: status %d", p->name, status);
    CHECK_MSG(b && n == PREFIX_MAX, "%s mmproj: read %zu bytes", p->name, n);
    if (!b || n < PREFIX_MAX) {
        free(b);
        return;
    }
    uint64_t n_t = 0;
    uint32_t align = 0;
    tinfo_t *ti = tensor_infos(b, n, &n_t, &align);
    CHECK(n_t == (uint64_t)preset_mmproj_n_tensors(p) && n_t == 9 + 16 * (uint64_t)blocks);
    const int64_t n_pos = (size / patch) * (size / patch) + 1;
    check_shape(ti, n_t, "v.patch_embd.weight", QT_F16, 4, (int64_t[]){patch, patch, 3, W});
    check_shape(ti, n_t, "v.position_embd.weight", QT_F16, 2, (int64_t[]){W, n_pos});
    check_shape(ti, n_t, "v.class_embd", QT_F32, 1, (int64_t[]){W});
    check_shape(ti, n_t, "mm.0.weight", QT_F16, 2, (int64_t[]){W, E});
    check_shape(ti, n_t, "mm.2.weight", QT_F16, 2, (int64_t[]){E, E});
    char name[64];
    snprintf(name, sizeof name, "v.blk.%d.ffn_down.weight", blocks - 1); /* legacy name of fc1 */
    check_shape(ti, n_t, name, QT_F16, 2, (int64_t[]){W, F});
    snprintf(name, sizeof name, "v.blk.%d.attn_q.weight", blocks - 1);
    check_shape(ti, n_t, name, QT_F16, 2, (int64_t[]){W, W});
    snprintf(name, sizeof name, "v.blk.%d.attn_q.weight", blocks);
    CHECK(find(ti, n_t, name) == NULL);
    CHECK(find(ti, n_t, "v.post_ln.weight") == NULL);
    check_offsets(ti, n_t, align);
    free(ti);
    gguf_t *g = open_meta(b, n, p->name);
    if (g) {
        err_t err = {0};
        uint32_t u = 0;
        CHECK_OK(gguf_get_u32(g, "clip.vision.image_size", &u, &err), &err);
        CHECK(u == (uint32_t)size);
        CHECK_OK(gguf_get_u32(g, "clip.vision.patch_size", &u, &err), &err);
        CHECK(u == (uint32_t)patch);
        CHECK_OK(gguf_get_u32(g, "clip.vision.block_count", &u, &err), &err);
        CHECK(u == (uint32_t)blocks);
        CHECK_OK(gguf_get_u32(g, "clip.vision.embedding_length", &u, &err), &err);
        CHECK(u == (uint32_t)W);
        gguf_close(g);
    }
    free(b);
}

/* A writer to a pipe whose reader has gone: ERR_IO, and the pipe is not removed. */
static err_code write_small(const preset_t *p, const preset_opts *o, const char *path, err_t *err) {
    (void)p, (void)o;
    static float data[1 << 18];
    gguf_writer_t *w = gguf_writer_create();
    err_code rc = gguf_writer_add_tensor(w, "x", QT_F32, 1, (int64_t[]){1 << 18}, data, sizeof data, err);
    if (!rc) rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    if (rc == ERR_IO && access(path, F_OK) != 0) return ERR_NOTFOUND; /* the pipe was unlinked */
    return rc;
}

static void check_pipe_kept(const char *fifo) {
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        err_t err = {0};
        err_code rc = write_small(NULL, NULL, fifo, &err);
        _exit(rc == ERR_IO ? 3 : rc == ERR_NOTFOUND ? 5 : 4);
    }
    int fd = open(fifo, O_RDONLY);
    char tmp[100];
    CHECK(fd >= 0 && read(fd, tmp, sizeof tmp) > 0);
    close(fd);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 3, "pipe writer: status %d (5: the pipe was removed)",
              status);
    unlink(fifo);
}

/* Every preset, whatever its size (the small ones arrive whole): the vocabulary. */
static void check_all_vocabs(const char *fifo) {
    int n_presets = 0;
    for (const preset_t *p; (p = preset_at(n_presets)); n_presets++) {
        preset_opts o = {QT_F16, QT_F16, 1, NULL, NULL};
        size_t n = 0;
        int status;
        unsigned char *b = read_prefix(fifo, preset_write_lm, p, &o, &n, &status);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == (n < PREFIX_MAX ? 0 : 3), "%s: writer status %d",
                  p->name, status);
        gguf_t *g = b && n >= 24 ? open_meta(b, n, p->name) : NULL;
        CHECK_MSG(g != NULL, "%s: metadata not readable", p->name);
        if (g) {
            printf("%s: %zu bytes read, vocabulary of %d checked\n", p->name, n, p->n_vocab);
            check_vocab(p, g);
            gguf_close(g);
        }
        free(b);
    }
    CHECK(n_presets >= 3);
}

int main(void) {
    char fifo[64];
    snprintf(fifo, sizeof fifo, "presets_big_%d.fifo", (int)getpid());
    check_pipe_kept(fifo);
    check_all_vocabs(fifo);
    const preset_t *tl = preset_find("tinyllama-clip-b"), *l7 = preset_find("llava-1.5-7b");
    CHECK(tl && l7);
    if (!tl || !l7) return test_result("test_gguf_presets_big");
    /* TinyLlama-1.1B: 22 layers, 2048 wide, FFN 5632, 32 heads of 64, 4 KV heads. */
    check_lm(tl, 22, 2048, 5632, 4 * 64, fifo);
    /* CLIP ViT-B/16 at 224 px: width 768, FFN 3072, 12 blocks of which 11 are stored. */
    check_mmproj(tl, 224, 16, 768, 3072, 11, 2048, fifo);
    /* LLaMA-7B: 32 layers, 4096 wide, FFN 11008, 32 heads (no GQA). */
    check_lm(l7, 32, 4096, 11008, 4096, fifo);
    /* CLIP ViT-L/14 at 336 px: width 1024, FFN 4096, 24 blocks of which 23 are stored. */
    check_mmproj(l7, 336, 14, 1024, 4096, 23, 4096, fifo);
    return test_result("test_gguf_presets_big");
}
