/* random: see random.h. */
#include "util/random.h"

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

void random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(p + done, len - done, 0);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (done < len) {
        /* No random source: still differ between runs. */
        srand((unsigned)time(NULL) ^ (unsigned)(uintptr_t)buf);
        for (; done < len; done++)
            p[done] = (uint8_t)(rand() >> 7);
    }
}

uint32_t random_u32(void)
{
    uint32_t v;
    random_bytes(&v, sizeof(v));
    return v;
}
