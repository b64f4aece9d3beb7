/* fuzz-parallels: probe/open/read/block-status/check of parallels images (see
 * fuzz-image.h). */
#define FUZZ_FORMAT "parallels"
#include "fuzz-image.h"
