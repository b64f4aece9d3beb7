/* size: see size.h. */
#include "util/size.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int suffix_shift(char c)
{
    switch (toupper((unsigned char)c)) {
    case 'B': return 0;
    case 'K': return 10;
    case 'M': return 20;
    case 'G': return 30;
    case 'T': return 40;
    case 'P': return 50;
    case 'E': return 60;
    default: return -1;
    }
}

/* The fraction digits at `f` (just after the '.') as a 0.64 fixed-point
 * value, through strtod as qemu does: a fraction that rounds to 1.0
 * contributes nothing.  Returns 1 for a nonzero fraction, 0 for zero. */
static int parse_fraction(const char *f, size_t ndigits, uint64_t *frac64)
{
    char *digits = malloc(ndigits + 2);
    if (!digits)
        return -ENOMEM;
    digits[0] = '.';
    memcpy(digits + 1, f, ndigits);
    digits[ndigits + 1] = 0;
    double frac = strtod(digits, NULL);
    free(digits);
    *frac64 = frac > 0 && frac < 1.0
              ? (uint64_t)(frac * 18446744073709551616.0) : 0;
    return frac != 0;
}

int parse_size_prefix_flags(const char *s, const char **end, uint64_t *out,
                            unsigned *flags)
{
    const char *p = s;
    uint64_t whole = 0, frac64 = 0;
    bool is_hex = false, have_frac = false;

    *end = s;
    if (flags)
        *flags = 0;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-')
        return -EINVAL;
    if (*p == '+')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        isxdigit((unsigned char)p[2])) {
        p += 2;
        is_hex = true;
        while (isxdigit((unsigned char)*p)) {
            unsigned d = isdigit((unsigned char)*p) ? (unsigned)(*p - '0')
                         : (unsigned)(toupper((unsigned char)*p) - 'A' + 10);
            if (whole > (UINT64_MAX - d) / 16)
                return -ERANGE;
            whole = whole * 16 + d;
            p++;
        }
        if (*p == '.')
            return -EINVAL;     /* no fractions of hex numbers */
    } else {
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            unsigned d = (unsigned)(*p - '0');
            if (whole > (UINT64_MAX - d) / 10)
                return -ERANGE;
            whole = whole * 10 + d;
            p++;
        }
        if (*p == '.') {
            const char *f = ++p;
            while (isdigit((unsigned char)*p))
                p++;
            if (p > f) {
                int r = parse_fraction(f, (size_t)(p - f), &frac64);
                if (r < 0)
                    return r;
                have_frac = r > 0;
            }
        }
    }

    int shift = 0;
    if (*p && suffix_shift(*p) >= 0) {
        shift = suffix_shift(*p);
        p++;
        if (is_hex && flags)
            *flags |= SIZE_HEX_WITH_SUFFIX;
    }
    if (have_frac && shift == 0)
        return -EINVAL;
    if (shift && whole > (UINT64_MAX >> shift))
        return -ERANGE;
    uint64_t val = whole << shift;
    if (have_frac) {
        /* frac64 * 2^shift / 2^64, rounded to nearest, as qemu-img does
         * ("1.9k" is 1946). */
        unsigned __int128 add = ((unsigned __int128)frac64 << shift) +
                                ((unsigned __int128)1 << 63);
        if (__builtin_add_overflow(val, (uint64_t)(add >> 64), &val))
            return -ERANGE;
    }
    *out = val;
    *end = p;
    return 0;
}

int parse_size_prefix(const char *s, const char **end, uint64_t *out)
{
    return parse_size_prefix_flags(s, end, out, NULL);
}

int parse_size_flags(const char *s, uint64_t *out, unsigned *flags)
{
    const char *end;
    uint64_t v;
    int r = parse_size_prefix_flags(s, &end, &v, flags);
    if (r < 0)
        return r;
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    return parse_size_flags(s, out, NULL);
}

char *format_size_human(uint64_t bytes, char *buf, unsigned long buflen)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    int i = 0;
    double v = (double)bytes;
    /* qemu picks the unit where the value is below 1000 (in units of 1024),
     * then prints three significant digits. */
    while (v >= 1000 * 1.0 && i < 6) {
        v /= 1024;
        i++;
    }
    snprintf(buf, buflen, "%0.3g %s", v, units[i]);
    return buf;
}
