/* libqimg public API: open, read, write, create and inspect disk images in
 * the formats qemu-img understands.  See src/block/bdev.h for the
 * contracts; this header is what installed programs include. */
#ifndef QIMG_QIMG_H
#define QIMG_QIMG_H

#define QIMG_API_VERSION 1

#endif
