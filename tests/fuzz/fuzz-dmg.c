/* fuzz-dmg: probe/open/read/block-status/check of dmg images (see
 * fuzz-image.h). */
#define FUZZ_FORMAT "dmg"
#include "fuzz-image.h"
