/* winpath: UTF-16 decoding and Windows path conversion for the parent
 * locators of differencing VHD/VHDX images (see winpath.h). */
#include "util/winpath.h"

#include <stdlib.h>
#include <string.h>

static unsigned unit_at(const uint8_t *p, bool be)
{
    return be ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

char *utf16_to_utf8(const uint8_t *p, size_t len, bool big_endian)
{
    if (len % 2)
        return NULL;
    /* Each code unit becomes at most 3 bytes (a surrogate pair, two
     * units, becomes 4). */
    char *out = malloc(len / 2 * 3 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint32_t c = unit_at(p + i, big_endian);
        if (c == 0)
            break;
        if (c >= 0xdc00 && c <= 0xdfff)
            goto bad;
        if (c >= 0xd800 && c <= 0xdbff) {
            if (i + 3 >= len)
                goto bad;
            uint32_t lo = unit_at(p + i + 2, big_endian);
            if (lo < 0xdc00 || lo > 0xdfff)
                goto bad;
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            goto bad;
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | c >> 18);
            out[o++] = (char)(0x80 | (c >> 12 & 0x3f));
            out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

char *winpath_to_posix(const char *win, bool absolute)
{
    char *s = strdup(win);
    if (!s)
        return NULL;
    for (char *q = s; *q; q++)
        if (*q == '\\')
            *q = '/';
    const char *start = s;
    if (absolute) {
        const char *slash = strrchr(s, '/');
        if (slash)
            start = slash + 1;
        else if (s[0] && s[1] == ':')
            start = s + 2;      /* "C:name", relative to a drive */
    } else {
        while (start[0] == '.' && start[1] == '/')
            start += 2;
    }
    memmove(s, start, strlen(start) + 1);
    return s;
}
