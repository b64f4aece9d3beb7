/* fuzz-qcow2: open/read/block-status/info/check and a few writes of qcow2
 * images (see fuzz-image.h).  The seed corpus holds small images made by
 * qemu-img and qemu-io: both compat levels, snapshots, compressed and zero
 * clusters, extended L2 entries, refcount widths, and a bitmap. */
#define FUZZ_FORMAT "qcow2"
#define FUZZ_WRITE
#include "fuzz-image.h"
