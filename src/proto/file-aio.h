/* file-aio: the asynchronous I/O back ends of the file protocol
 * (aio=io_uring and aio=native); aio=threads is the plain pread/pwrite
 * loop in file.c.  See docs/IO.md. */
#ifndef QIMG_PROTO_FILE_AIO_H
#define QIMG_PROTO_FILE_AIO_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

enum file_aio { FILE_AIO_THREADS, FILE_AIO_NATIVE, FILE_AIO_IO_URING };

/* Returned by file_aio_rw when the calling thread cannot use the back
 * end (its ring or context could not be set up): use pread/pwrite. */
#define FILE_AIO_UNAVAILABLE 1

/* Set up the back end for the calling thread; 0, or a negative errno
 * with qemu's message ("failed to init linux io_uring ring: ..."). */
int file_aio_setup(enum file_aio mode, struct err *err);

/* Transfer exactly `len` bytes at `off` (reads past the end of the file
 * read zeros), split into requests that are all in flight at once.
 * `buf` is aligned as O_DIRECT needs when `direct`.  0, a negative errno,
 * or FILE_AIO_UNAVAILABLE. */
int file_aio_rw(enum file_aio mode, int fd, bool write, bool direct,
                uint8_t *buf, uint64_t len, uint64_t off);

#endif
