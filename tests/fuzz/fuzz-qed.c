/* fuzz-qed: probe/open/read/block-status/check of qed images (see
 * fuzz-image.h). */
#define FUZZ_FORMAT "qed"
#define FUZZ_WRITE
#include "fuzz-image.h"
