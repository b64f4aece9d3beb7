/* fuzz-cloop: probe/open/read/block-status/check of cloop images (see
 * fuzz-image.h). */
#define FUZZ_FORMAT "cloop"
#include "fuzz-image.h"
