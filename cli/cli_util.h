/* cli_util.h — what every command shares: the one-line error "llava-mech CMD: message"
 * on stderr (commands.h's contract) and strict number parsing. Each command file binds
 * its name once:
 *   #define fail(...) cli_fail("ask", 1, __VA_ARGS__)                                  */
#ifndef LLAVA_MECH_CLI_UTIL_H
#define LLAVA_MECH_CLI_UTIL_H

#include <stdbool.h>

/* Prints one line and returns code (the process exit status to use). */
int cli_fail(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Full-string decimal parse of a non-negative integer: false on empty input, a sign,
 * trailing garbage or overflow. */
bool cli_parse_u64(const char *s, unsigned long long *out);

#endif
