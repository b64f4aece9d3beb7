/* lock: image locking compatible with QEMU's.  QEMU takes OFD byte-range
 * locks on the image file: byte 100+i while it holds permission i, byte
 * 200+i while it refuses to share permission i.  Taking the same locks
 * makes qimg and a running QEMU (or qemu-nbd, qemu-img) see each other. */
#ifndef QIMG_BLOCK_LOCK_H
#define QIMG_BLOCK_LOCK_H

#include <stdbool.h>

#include "util/err.h"

enum lock_perm {
    LOCK_PERM_CONSISTENT_READ = 0,
    LOCK_PERM_WRITE = 1,
    LOCK_PERM_WRITE_UNCHANGED = 2,
    LOCK_PERM_RESIZE = 3,
    LOCK_PERM_COUNT = 4,
};

/* Bit masks of (1 << enum lock_perm). */
struct lock_set {
    unsigned perms;      /* permissions we use */
    unsigned unshared;   /* permissions we do not let others use */
};

/* The lock set qimg uses for a read-only or read-write open; `share` (-U)
 * shares everything. */
struct lock_set lock_set_for(bool write, bool share);

/* The set QEMU uses on a protocol node.  Every open takes "consistent
 * read"; writing adds "write", and "resize" when the caller resizes
 * (BDEV_O_RESIZE) or a format other than raw sits on top.  A format other
 * than raw also refuses to share "write" and "resize" (even read-only),
 * unless `share` (-U).  Raw and direct protocol opens share everything. */
struct lock_set lock_set_node(bool write, bool resize, bool format_meta,
                              bool share);

/* Check for conflicts with other processes, then take the locks on `fd`.
 * Locks already held on `fd` are kept, so a node's set can be widened
 * once its format is known.  Conflicts are checked as QEMU does: every
 * wanted permission first ("Failed to get \"write\" lock"), then every
 * unshared one ("Failed to get shared \"write\" lock").
 * On conflict: -EAGAIN with qemu-img's message naming `filename`. */
int lock_apply(int fd, const char *filename, struct lock_set set,
               struct err *err);

#endif
