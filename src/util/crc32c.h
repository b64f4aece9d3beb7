/* CRC-32C (Castagnoli), as VHDX and other formats checksum their
 * metadata. */
#ifndef QIMG_UTIL_CRC32C_H
#define QIMG_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC over `len` bytes; start with crc = 0. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
