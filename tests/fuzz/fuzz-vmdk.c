/* fuzz-vmdk: open/read/block-status/check/write of vmdk images: hosted
 * sparse and streamOptimized files, COWD, and descriptor text (whose
 * extents cannot be opened from a memfd, which exercises the error paths)
 * (see fuzz-image.h). */
#define FUZZ_FORMAT "vmdk"
#define FUZZ_WRITE
#include "fuzz-image.h"
