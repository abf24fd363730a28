/* err.h — error codes and a message buffer owned by the caller.
 *
 * Contract: every library function that can fail returns an err_code (ERR_OK == 0)
 * and, on failure, writes one sentence for the user into the err_t it was given
 * (e.g. "model.gguf: tensor blk.3.attn_q.weight: offset 9123 beyond end of file
 * (size 4096)"). An err_t belongs to one thread; there is no global error state.
 * Passing NULL for the err_t is allowed and drops the message. */
#ifndef LLAVA_MECH_ERR_H
#define LLAVA_MECH_ERR_H

typedef enum {
    ERR_OK = 0,
    ERR_IO,          /* open/read/write/mmap failed */
    ERR_FORMAT,      /* malformed input file or data */
    ERR_UNSUPPORTED, /* valid input we do not handle (type, architecture, ...) */
    ERR_RANGE,       /* a value outside its allowed range (context too long, ...) */
    ERR_NOMEM,
    ERR_ARG,         /* bad argument from the caller or the command line */
    ERR_MISMATCH,    /* two inputs that do not fit together (mmproj vs LM width, ...) */
    ERR_NOTFOUND,    /* a key, tensor or file that must exist does not */
    ERR_CALLBACK     /* a user callback (hook) asked to stop */
} err_code;

#define ERR_MSG_MAX 512

typedef struct {
    err_code code;
    char msg[ERR_MSG_MAX];
} err_t;

/* Records code and a printf-style message; returns code so callers can
 * `return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));`. */
err_code err_set(err_t *e, err_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes the existing message with "prefix: " (to add a file name or context
 * when an error crosses a module boundary). Returns e->code. */
err_code err_prefix(err_t *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void err_clear(err_t *e);
const char *err_code_name(err_code code);

#endif
