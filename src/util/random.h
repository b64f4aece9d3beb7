/* Random bytes for identifiers stored in images (UUIDs, content IDs). */
#ifndef QIMG_UTIL_RANDOM_H
#define QIMG_UTIL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fill `buf` from the system's random source (getrandom). */
void random_bytes(void *buf, size_t len);
uint32_t random_u32(void);

#endif
