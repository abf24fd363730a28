/* cli_util.h — what every command shares: the one-line error "llava-mech CMD: message"
 * on stderr (commands.h's contract) and strict number parsing. Each command file binds
 * its name once:
 *   #define fail(...) cli_fail("ask", 1, __VA_ARGS__)                                  */
#ifndef LLAVA_MECH_CLI_UTIL_H
#define LLAVA_MECH_CLI_UTIL_H

#include <stdbool.h>

#include "language/llava.h"

/* Prints one line and returns code (the process exit status to use). */
int cli_fail(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Full-string decimal parse of a non-negative integer: false on empty input, a sign,
 * trailing garbage or overflow. */
bool cli_parse_u64(const char *s, unsigned long long *out);
/* Full-string decimal parse of an integer in [lo, hi] / a finite number in [lo, hi]. */
bool cli_parse_int(const char *s, long lo, long hi, int *out);
bool cli_parse_real(const char *s, double lo, double hi, double *out);
/* --max-side: the largest image side accepted (image.h's limit). */
#define CLI_MAX_SIDE_HI 65536

/* --baseline for occlusion: "zero", "auto" (<LM>.mean-embd.npy beside the LM file if it
 * exists, else zero) or an .npy of d_lm float32 values, or of n_image x d_lm (one row
 * per image position; *rows = n_image, else 1). *out is NULL for zero (free it with
 * free); *name says which was used. */
err_code cli_load_baseline(const char *spec, const llava_t *l, float **out, int64_t *rows, const char **name,
                           err_t *err);

#endif
