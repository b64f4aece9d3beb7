/* extent: block status through a backing chain.  A range that a layer does
 * not allocate is asked of the layer below, until some layer allocates it
 * or the chain (or `base`) ends, where it reads as zeros. */
#include "block/driver.h"

#include <string.h>

#include "util/align.h"

int bdev_block_status_chain(struct bdev *bs, struct bdev *base, uint64_t off,
                            uint64_t len, struct bstatus *st, struct err *err)
{
    struct bdev *cur = bs;
    int depth = 0;
    len = min_u64(len, bs->size - off);
    for (;;) {
        int r = bdev_block_status(cur, off, len, st, err);
        if (r < 0)
            return r;
        len = st->len;
        st->depth = depth;
        if (st->flags & BS_ALLOCATED)
            return 0;
        struct bdev *below = cur->backing;
        if (!below || below == base)
            return 0;
        if (off >= below->size) {
            /* Past the end of the backing file: zeros, owned by nobody. */
            st->flags = BS_ZERO;
            return 0;
        }
        len = min_u64(len, below->size - off);
        cur = below;
        depth++;
    }
}
