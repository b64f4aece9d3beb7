/* raw: the format that is no format.  Reads and writes pass through to the
 * protocol node, shifted by the `offset` option and limited by `size`
 * (both from --image-opts).  Probed last: it matches anything. */
#include "block/driver.h"

#include <errno.h>
#include <string.h>

#include "util/align.h"

struct raw_state {
    uint64_t offset;
    bool has_size;
};

static int raw_probe(struct bdev *file, const uint8_t *buf, size_t len,
                     const char *filename)
{
    (void)file; (void)buf; (void)len; (void)filename;
    return 1;
}

static int raw_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct raw_state *s = bs->priv;
    uint64_t size, fsize = bs->file->size;
    int r = kv_get_size(opts, "offset", 0, &s->offset, err);
    if (r < 0)
        return r;
    s->has_size = kv_has(opts, "size");
    r = kv_get_size(opts, "size", 0, &size, err);
    if (r < 0)
        return r;
    if (s->offset > fsize)
        return err_set(err, -EINVAL, "Offset (%llu) cannot be greater than "
                       "size of the containing file (%llu)",
                       (unsigned long long)s->offset,
                       (unsigned long long)fsize);
    if (s->has_size) {
        if (!range_within(s->offset, size, fsize))
            return err_set(err, -EINVAL, "The sum of offset (%llu) and size "
                           "(%llu) has to be smaller or equal to the  actual "
                           "size of the containing file (%llu)",
                           (unsigned long long)s->offset,
                           (unsigned long long)size,
                           (unsigned long long)fsize);
        bs->size = size;
    } else {
        bs->size = fsize - s->offset;
    }
    bs->align = bs->file->align;
    return 0;
}

static int raw_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                    struct err *err)
{
    struct raw_state *s = bs->priv;
    struct bdev *f = bs->file;
    off += s->offset;
    /* A file shorter than the image reads as zeros past its end. */
    if (off >= f->size) {
        memset(buf, 0, len);
        return 0;
    }
    uint64_t n = min_u64(len, f->size - off);
    int r = bdev_pread(f, off, n, buf, err);
    if (r == 0 && n < len)
        memset((uint8_t *)buf + n, 0, len - n);
    return r;
}

/* Writes may extend the file (a raw image is sized by its file). */
static int raw_write(struct bdev *bs, uint64_t off, uint64_t len,
                     const void *buf, struct err *err)
{
    struct raw_state *s = bs->priv;
    struct bdev *f = bs->file;
    off += s->offset;
    if (off + len > f->size) {
        int r = bdev_truncate(f, off + len, false, PREALLOC_OFF, err);
        if (r < 0)
            return r;
    }
    return bdev_pwrite(f, off, len, buf, err);
}

static int raw_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                            unsigned flags, struct err *err)
{
    struct raw_state *s = bs->priv;
    struct bdev *f = bs->file;
    off += s->offset;
    if (off >= f->size)
        return 0;
    len = min_u64(len, f->size - off);
    return bdev_pwrite_zeroes(f, off, len, flags, err);
}

static int raw_discard(struct bdev *bs, uint64_t off, uint64_t len,
                       struct err *err)
{
    struct raw_state *s = bs->priv;
    struct bdev *f = bs->file;
    off += s->offset;
    if (off >= f->size)
        return 0;
    return bdev_discard(f, off, min_u64(len, f->size - off), err);
}

static int raw_flush(struct bdev *bs, struct err *err)
{
    return bdev_flush(bs->file, err);
}

static int raw_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                            struct bstatus *st, struct err *err)
{
    struct raw_state *s = bs->priv;
    struct bdev *f = bs->file;
    uint64_t hoff = off + s->offset;
    if (hoff >= f->size) {
        st->len = len;
        st->flags = BS_ZERO | BS_ALLOCATED | BS_OFFSET_VALID;
        st->host_off = hoff;
        st->file = f;
        return 0;
    }
    int r = bdev_block_status(f, hoff, min_u64(len, f->size - hoff), st, err);
    if (r < 0)
        return r;
    st->flags = (st->flags & (BS_DATA | BS_ZERO)) | BS_ALLOCATED |
                BS_OFFSET_VALID | BS_RECURSE;
    st->flags &= ~(unsigned)BS_EOF;
    st->host_off = hoff;
    st->file = f;
    return 0;
}

static int raw_truncate(struct bdev *bs, uint64_t size, bool shrink,
                        enum prealloc prealloc, struct err *err)
{
    struct raw_state *s = bs->priv;
    if (s->has_size)
        return err_set(err, -ENOTSUP, "Cannot resize fixed-size raw disks");
    /* With an offset, the file grows to offset + size. */
    if (size > (uint64_t)INT64_MAX || (uint64_t)INT64_MAX - size < s->offset)
        return err_set(err, -EINVAL, "Disk size too large for the chosen offset");
    int r = bdev_truncate(bs->file, s->offset + size, shrink, prealloc, err);
    if (r == 0)
        bs->size = size;
    return r;
}

static int raw_create(const char *filename, struct kvlist *opts,
                      struct err *err)
{
    return bdev_create_file(filename, opts, err);
}

static int raw_measure(struct kvlist *opts, struct bdev *in, uint64_t size,
                       struct measure_info *out, struct err *err)
{
    /* Preallocation does not change a raw image's size; qemu-img does
     * not validate it here either. */
    (void)opts; (void)in; (void)err;
    out->required = size;
    out->fully_allocated = size;
    return 0;
}

static const struct opt_desc raw_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_raw = {
    .name = "raw",
    .kind = DRV_FORMAT,
    .caps = DRV_THREAD_SAFE | DRV_ZERO_INIT,
    .priv_size = sizeof(struct raw_state),
    .create_opts = raw_create_opts,
    .probe = raw_probe,
    .open = raw_open,
    .create = raw_create,
    .read = raw_read,
    .write = raw_write,
    .write_zeroes = raw_write_zeroes,
    .discard = raw_discard,
    .flush = raw_flush,
    .block_status = raw_block_status,
    .truncate = raw_truncate,
    .measure = raw_measure,
};
