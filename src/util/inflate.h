/* Raw deflate decoding of one cluster, as qcow and qcow2 store them. */
#ifndef QIMG_UTIL_INFLATE_H
#define QIMG_UTIL_INFLATE_H

#include <stddef.h>
#include <stdint.h>

/* Decode raw deflate data with at most a 4 KiB window (what every QEMU
 * reader accepts) until `out` is full; bytes after that are ignored (the
 * compressed data may share its last sector with other data).  Returns 0,
 * -EIO when the data is invalid or too short, or -ENOMEM. */
int inflate_cluster(const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t out_len);

#endif
