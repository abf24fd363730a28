#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

err_code err_set(err_t *e, err_code code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

err_code err_prefix(err_t *e, const char *fmt, ...) {
    if (!e) return ERR_OK;
    char head[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    /* Truncation is acceptable: the message is for a person and stays NUL-terminated. */
    char old[ERR_MSG_MAX];
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(head);
    if (n > ERR_MSG_MAX - 3) n = ERR_MSG_MAX - 3;
    memcpy(e->msg, head, n);
    memcpy(e->msg + n, ": ", 2);
    size_t rest = ERR_MSG_MAX - 1 - (n + 2), m = strlen(old);
    if (m > rest) m = rest;
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = '\0';
    return e->code;
}

void err_clear(err_t *e) {
    if (!e) return;
    e->code = ERR_OK;
    e->msg[0] = '\0';
}

const char *err_code_name(err_code code) {
    static const char *const names[] = {
        "ok", "io", "format", "unsupported", "range", "nomem", "arg", "mismatch", "notfound", "callback",
    };
    if ((unsigned)code < sizeof names / sizeof names[0]) return names[code];
    return "unknown";
}
