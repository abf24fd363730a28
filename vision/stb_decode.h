/* stb_decode.h — stb_image, compiled into the library from Debian's libstb-dev header,
 * behind a guard that turns its internal assertions into errors.
 *
 * Contract:
 * - Why not libstb.so: Debian builds it with assert() on, and a malformed JPEG
 *   (found by fuzz_image) trips an assertion in its Huffman decoder, which aborts the
 *   process; compiled here, STBI_ASSERT leaves the decoder by longjmp instead, every
 *   block stb allocated during the call is freed, and the call reports an error. It
 *   is also instrumented by the sanitizer and fuzzing builds like our own code.
 * - Only the formats of the image contract are compiled (no PSD, HDR, PIC).
 * - Components come back as stored (req_comp 0); the caller expands them.
 * - Allocations are zeroed and capped (stbd_info: 2x the input + 16 MiB).
 * - Thread-safe: the escape context is per thread. */
#ifndef LLAVA_MECH_STB_DECODE_H
#define LLAVA_MECH_STB_DECODE_H

#include <stddef.h>

/* Header only: 1 and the size and component count, or 0 with *why set. */
int stbd_info(const unsigned char *buf, int len, int *w, int *h, int *comp, const char **why);
/* Decoded 8-bit pixels (free with stbd_free), or NULL with *why set (a static string).
 * Any single allocation stb asks for above max_alloc bytes fails: a chunk length that
 * a malformed file claims cannot make it allocate gigabytes (found by fuzz_image). */
unsigned char *stbd_load(const unsigned char *buf, int len, size_t max_alloc, int *w, int *h, int *comp,
                         const char **why);
void stbd_free(unsigned char *pixels);
/* The *why of a call whose allocation went over its cap (compare the pointer). */
extern const char stbd_too_large[];
/* The *why of a file that ends before the decoder has what it needs. stb reads
 * through callbacks here and the read past the end is the error, whatever the format
 * (read from memory, stb substitutes zeros: a cut BMP, TGA or GIF came back "decoded"
 * with a black or garbage tail). */
extern const char stbd_truncated[];

#endif
