/* test_gguf_err.c — the error module every GGUF message goes through (core/err.h):
 * err_set returns its code and formats one sentence, cut to ERR_MSG_MAX - 1 bytes and
 * always terminated; err_prefix puts "context: " in front (the writer names the file and
 * tensor that way) and stays terminated however long either part is; a NULL err_t is
 * allowed everywhere; every code has a name. */
#include <string.h>

#include "core/err.h"
#include "testutil.h"

int main(void) {
    err_t e;
    memset(&e, 0x55, sizeof e);
    CHECK(err_set(&e, ERR_FORMAT, "%s: byte %d: expected %s", "m.gguf", 16, "metadata count") == ERR_FORMAT);
    CHECK(e.code == ERR_FORMAT && !strcmp(e.msg, "m.gguf: byte 16: expected metadata count"));
    CHECK(err_prefix(&e, "loading %s", "lm") == ERR_FORMAT);
    CHECK_MSG(!strcmp(e.msg, "loading lm: m.gguf: byte 16: expected metadata count"), "%s", e.msg);

    /* a message longer than the buffer is cut, terminated */
    char big[2 * ERR_MSG_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(err_set(&e, ERR_IO, "%s", big) == ERR_IO);
    CHECK(strlen(e.msg) == ERR_MSG_MAX - 1 && e.msg[0] == 'x');
    /* prefixing a full message keeps the prefix and the start of the old text */
    CHECK(err_prefix(&e, "ctx") == ERR_IO);
    CHECK(strlen(e.msg) == ERR_MSG_MAX - 1 && !strncmp(e.msg, "ctx: xxx", 8));
    /* a prefix longer than the buffer */
    err_set(&e, ERR_RANGE, "old");
    CHECK(err_prefix(&e, "%s", big) == ERR_RANGE);
    CHECK(strlen(e.msg) == ERR_MSG_MAX - 1 && !strncmp(e.msg + ERR_MSG_MAX - 3, ": ", 2));
    /* an empty old message */
    err_clear(&e);
    CHECK(e.code == ERR_OK && e.msg[0] == '\0');
    err_prefix(&e, "p");
    CHECK(!strcmp(e.msg, "p: "));

    /* NULL is allowed and changes nothing */
    CHECK(err_set(NULL, ERR_NOMEM, "x %d", 1) == ERR_NOMEM);
    CHECK(err_prefix(NULL, "x") == ERR_OK);
    err_clear(NULL);

    static const char *const names[] = {"ok", "io", "format", "unsupported", "range", "nomem", "arg", "mismatch",
                                        "notfound", "callback"};
    for (int c = ERR_OK; c <= ERR_CALLBACK; c++) CHECK(!strcmp(err_code_name((err_code)c), names[c]));
    CHECK(!strcmp(err_code_name((err_code)99), "unknown") && !strcmp(err_code_name((err_code)-1), "unknown"));
    return test_result("test_gguf_err");
}
