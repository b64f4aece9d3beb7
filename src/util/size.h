/* Size strings as qemu-img reads them: "512", "64k", "1.5G", "10M".
 * Suffixes B/K/M/G/T/P/E (either case) multiply by powers of 1024; "b" and
 * "B" mean bytes.  A fraction needs a suffix other than bytes (a zero
 * fraction, "1.0", is allowed), and digits before the point; hex numbers
 * ("0x1f") take no fraction; leading blanks and '+' are accepted, '-' is
 * not. */
#ifndef QIMG_UTIL_SIZE_H
#define QIMG_UTIL_SIZE_H

#include <stdint.h>

/* Parse a prefix of `s`; *end points past what was read.  Returns 0,
 * -EINVAL (malformed) or -ERANGE (does not fit in 64 bits). */
int parse_size_prefix(const char *s, const char **end, uint64_t *out);

/* Parse all of `s`; trailing characters are -EINVAL. */
int parse_size(const char *s, uint64_t *out);

/* As above, also reporting SIZE_* flags (may be NULL): qemu-img accepts a
 * hex number with a unit suffix ("0x1k") but warns that it is deprecated. */
#define SIZE_HEX_WITH_SUFFIX 0x1
int parse_size_prefix_flags(const char *s, const char **end, uint64_t *out,
                            unsigned *flags);
int parse_size_flags(const char *s, uint64_t *out, unsigned *flags);

/* qemu's human size form: "1 GiB", "196 KiB", "1.5 MiB", "512 B"
 * (three significant digits).  Writes into buf and returns it. */
char *format_size_human(uint64_t bytes, char *buf, unsigned long buflen);

#endif
