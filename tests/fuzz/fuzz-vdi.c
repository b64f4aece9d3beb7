/* fuzz-vdi: probe/open/read/block-status/check of vdi images (see
 * fuzz-image.h). */
#define FUZZ_FORMAT "vdi"
#define FUZZ_WRITE
#include "fuzz-image.h"
