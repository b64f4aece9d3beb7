/* Fast all-zero test for buffers (vectorised where the CPU allows). */
#ifndef QIMG_UTIL_ZERO_H
#define QIMG_UTIL_ZERO_H

#include <stdbool.h>
#include <stddef.h>

bool buf_is_zero(const void *buf, size_t len);

#endif
