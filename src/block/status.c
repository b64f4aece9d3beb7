/* status: block status as qemu-img's map and compare report it.
 *
 * bdev_block_status gives a node's own answer.  Here it is completed the
 * way QEMU's generic layer does before commands see it: DATA or ZERO
 * means the layer allocates the range; a format with backing support
 * that has no backing image (or is past its end) reads zeros; a driver's
 * RECURSE asks the protocol node whether the host range is a hole. */
#include "block/copy.h"
#include "block/driver.h"

#include <errno.h>
#include <string.h>

#include "util/align.h"

int bdev_status_layer(struct bdev *bs, uint64_t off, uint64_t len,
                      struct bstatus *st, struct err *err)
{
    int r = bdev_block_status(bs, off, len, st, err);
    if (r < 0)
        return r;
    unsigned f = st->flags;
    if (f & (BS_DATA | BS_ZERO)) {
        f |= BS_ALLOCATED;
    } else if (!(f & BS_ALLOCATED) && (bs->drv->caps & DRV_BACKING)) {
        if (!bs->backing || off >= bs->backing->size)
            f |= BS_ZERO;
    }
    if ((f & BS_RECURSE) && st->file && st->file != bs &&
        (f & BS_DATA) && !(f & BS_ZERO) && (f & BS_OFFSET_VALID)) {
        struct bdev *file = st->file;
        if (st->host_off >= file->size) {
            f |= BS_ZERO;
        } else {
            struct bstatus fs;
            uint64_t n = min_u64(st->len, file->size - st->host_off);
            r = bdev_block_status(file, st->host_off, n, &fs, err);
            if (r < 0)
                return r;
            if ((fs.flags & BS_EOF) && (fs.flags & BS_ZERO)) {
                f |= BS_ZERO;
            } else {
                st->len = fs.len;
                f |= fs.flags & BS_ZERO;
            }
        }
    }
    f &= ~(unsigned)BS_RECURSE;
    if (off + st->len == bs->size)
        f |= BS_EOF;
    else
        f &= ~(unsigned)BS_EOF;
    st->flags = f;
    return 0;
}

int bdev_status_above(struct bdev *bs, uint64_t off, uint64_t len,
                      struct bstatus *st, struct err *err)
{
    int r = bdev_status_layer(bs, off, len, st, err);
    if (r < 0)
        return r;
    st->depth = 0;
    if ((st->flags & BS_ALLOCATED) || !bs->backing)
        return 0;
    uint64_t eof = (st->flags & BS_EOF) ? off + st->len : UINT64_MAX;
    uint64_t bytes = st->len;
    int depth = 0;
    for (struct bdev *p = bs->backing; p; p = p->backing) {
        depth++;
        if (off >= p->size) {
            /* Zeros past a shorter backing image belong to it. */
            memset(st, 0, sizeof(*st));
            st->len = bytes;
            st->flags = BS_ZERO | BS_ALLOCATED;
            st->depth = depth;
            break;
        }
        r = bdev_status_layer(p, off, min_u64(bytes, p->size - off), st, err);
        if (r < 0)
            return r;
        st->depth = depth;
        if (st->flags & BS_ALLOCATED) {
            st->flags &= ~(unsigned)BS_EOF;
            break;
        }
        bytes = st->len;
    }
    if (off + st->len == eof)
        st->flags |= BS_EOF;
    return 0;
}

int bdev_map_status(struct bdev *bs, uint64_t off, uint64_t len,
                    struct bstatus *st, struct err *err)
{
    int depth = 0;
    for (;;) {
        int r = bdev_status_layer(bs, off, len, st, err);
        if (r < 0)
            return r;
        len = st->len;
        if (st->flags & (BS_ZERO | BS_DATA))
            break;
        if (!bs->backing) {
            st->flags = 0;
            break;
        }
        if (off >= bs->backing->size) {
            /* Cannot happen for formats with backing support (they report
             * zeros there); stop like the end of the chain. */
            st->flags = 0;
            break;
        }
        bs = bs->backing;
        len = min_u64(len, bs->size - off);
        depth++;
    }
    st->depth = depth;
    return 0;
}
