/* Size strings as qemu-img reads them: "512", "64k", "1.5G", "10M".
 * Suffixes B/K/M/G/T/P/E (either case) multiply by powers of 1024; "b" and
 * "B" mean bytes.  A fraction needs a suffix other than bytes. */
#ifndef QIMG_UTIL_SIZE_H
#define QIMG_UTIL_SIZE_H

#include <stdint.h>

/* Parse a prefix of `s`; *end points past what was read.  Returns 0,
 * -EINVAL (malformed) or -ERANGE (does not fit in 64 bits). */
int parse_size_prefix(const char *s, const char **end, uint64_t *out);

/* Parse all of `s`; trailing characters are -EINVAL. */
int parse_size(const char *s, uint64_t *out);

/* qemu's human size form: "1 GiB", "196 KiB", "1.5 MiB", "512 B"
 * (three significant digits).  Writes into buf and returns it. */
char *format_size_human(uint64_t bytes, char *buf, unsigned long buflen);

#endif
