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

int parse_size_prefix(const char *s, const char **end, uint64_t *out)
{
    const char *p = s;
    uint64_t whole = 0;
    double frac = 0;
    bool have_frac = false, any_digit = false;

    *end = s;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-')
        return -EINVAL;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        char *e;
        errno = 0;
        unsigned long long v = strtoull(p, &e, 16);
        if (e == p + 2)
            return -EINVAL;
        if (errno == ERANGE)
            return -ERANGE;
        whole = v;
        p = e;
        any_digit = true;
        if (*p == '.')
            return -EINVAL;     /* no fractions of hex numbers */
    } else {
        while (isdigit((unsigned char)*p)) {
            unsigned d = (unsigned)(*p - '0');
            if (whole > (UINT64_MAX - d) / 10)
                return -ERANGE;
            whole = whole * 10 + d;
            p++;
            any_digit = true;
        }
        if (*p == '.') {
            const char *f = p + 1;
            double scale = 0.1;
            p++;
            while (isdigit((unsigned char)*p)) {
                frac += (*p - '0') * scale;
                scale /= 10;
                p++;
            }
            have_frac = p > f && frac > 0;
            if (p == f && !any_digit)
                return -EINVAL;
            any_digit = true;
        }
    }
    if (!any_digit)
        return -EINVAL;

    int shift = 0;
    if (*p && suffix_shift(*p) >= 0) {
        shift = suffix_shift(*p);
        p++;
    }
    if (have_frac && shift == 0)
        return -EINVAL;
    if (shift && whole > (UINT64_MAX >> shift))
        return -ERANGE;
    uint64_t val = whole << shift;
    if (have_frac) {
        double add = frac * (double)(UINT64_C(1) << shift);
        if ((double)val + add >= 18446744073709551616.0)
            return -ERANGE;
        val += (uint64_t)add;
    }
    *out = val;
    *end = p;
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v;
    int r = parse_size_prefix(s, &end, &v);
    if (r < 0)
        return r;
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
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
