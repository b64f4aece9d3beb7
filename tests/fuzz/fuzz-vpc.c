/* fuzz-vpc: probe/open/read/block-status/write of VHD images, fixed and
 * dynamic (see fuzz-image.h). */
#define FUZZ_FORMAT "vpc"
#define FUZZ_WRITE
#include "fuzz-image.h"
