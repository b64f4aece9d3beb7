/* Alignment and overflow-checked arithmetic helpers. */
#ifndef QIMG_UTIL_ALIGN_H
#define QIMG_UTIL_ALIGN_H

#include <stdbool.h>
#include <stdint.h>

/* `a` must be a power of two for the *_pow2 forms. */
static inline uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }
static inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline bool is_aligned(uint64_t v, uint64_t a) { return v % a == 0; }
static inline bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }
static inline uint64_t div_round_up(uint64_t n, uint64_t d) { return n / d + (n % d != 0); }
static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Return true on overflow; *res is only meaningful otherwise. */
#define add_overflow(a, b, res) __builtin_add_overflow(a, b, res)
#define mul_overflow(a, b, res) __builtin_mul_overflow(a, b, res)

/* True when [off, off+len) lies inside [0, limit). */
static inline bool range_within(uint64_t off, uint64_t len, uint64_t limit)
{
    return off <= limit && len <= limit - off;
}

#endif
