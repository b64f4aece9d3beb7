/* zero: see zero.h.  The portable scan checks 64 bytes per step with word
 * ORs, which compilers vectorise; on x86-64 CPUs with AVX2 (detected at
 * run time) 128 bytes per step are ORed in 256-bit registers.  The first
 * and last words are tested first because data rarely starts or ends with
 * long zero runs. */
#include "util/zero.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

static bool small_is_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static bool is_zero_portable(const unsigned char *p, size_t len)
{
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
        uint64_t w[8], acc = 0;
        memcpy(w, p + i, 64);
        for (int k = 0; k < 8; k++)
            acc |= w[k];
        if (acc)
            return false;
    }
    return small_is_zero(p + i, len - i);
}

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2")))
static bool is_zero_avx2(const unsigned char *p, size_t len)
{
    size_t i = 0;
    for (; i + 128 <= len; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(p + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(p + i + 96));
        __m256i x = _mm256_or_si256(_mm256_or_si256(a, b),
                                    _mm256_or_si256(c, d));
        if (!_mm256_testz_si256(x, x)) {
            _mm256_zeroupper();
            return false;
        }
    }
    _mm256_zeroupper();
    return is_zero_portable(p + i, len - i);
}
#endif

typedef bool (*scan_fn)(const unsigned char *p, size_t len);

static scan_fn pick(void)
{
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        return is_zero_avx2;
#endif
    return is_zero_portable;
}

bool buf_is_zero(const void *buf, size_t len)
{
    static scan_fn scan;    /* chosen once; a race only repeats the pick */
    const unsigned char *p = buf;

    if (len < 64)
        return small_is_zero(p, len);
    uint64_t head, tail;
    memcpy(&head, p, 8);
    memcpy(&tail, p + len - 8, 8);
    if (head | tail)
        return false;
    scan_fn f = __atomic_load_n(&scan, __ATOMIC_RELAXED);
    if (!f) {
        f = pick();
        __atomic_store_n(&scan, f, __ATOMIC_RELAXED);
    }
    return f(p, len);
}
