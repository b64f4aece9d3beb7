/* fuzz-qcow: probe/open/read/block-status/check of qcow images (see
 * fuzz-image.h). */
#define FUZZ_FORMAT "qcow"
#define FUZZ_WRITE
#include "fuzz-image.h"
