/* fuzz-bochs: probe/open/read/block-status/check of bochs images (see
 * fuzz-image.h). */
#define FUZZ_FORMAT "bochs"
#include "fuzz-image.h"
