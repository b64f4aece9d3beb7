/* zero: see zero.h.  Checks 64 bytes per step with word ORs, which
 * compilers vectorise; the first and last words are tested first because
 * data rarely starts or ends with long zero runs. */
#include "util/zero.h"

#include <stdint.h>
#include <string.h>

bool buf_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t i = 0;

    if (len < 64) {
        for (; i < len; i++)
            if (p[i])
                return false;
        return true;
    }
    uint64_t head, tail;
    memcpy(&head, p, 8);
    memcpy(&tail, p + len - 8, 8);
    if (head | tail)
        return false;
    for (; i + 64 <= len; i += 64) {
        uint64_t w[8], acc = 0;
        memcpy(w, p + i, 64);
        for (int k = 0; k < 8; k++)
            acc |= w[k];
        if (acc)
            return false;
    }
    for (; i < len; i++)
        if (p[i])
            return false;
    return true;
}
