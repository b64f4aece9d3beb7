/* maint: front doors for the maintenance operations (check, snapshot
 * changes), answering -ENOTSUP for formats without them. */
#include "block/driver.h"

#include <errno.h>
#include <string.h>

int bdev_check(struct bdev *bs, struct check_result *res, unsigned fix,
               struct err *err)
{
    memset(res, 0, sizeof(*res));
    if (!bs->drv->check)
        return -ENOTSUP;
    return bs->drv->check(bs, res, fix, err);
}

static int no_snapshots(struct bdev *bs, struct err *err)
{
    return err_set(err, -ENOTSUP, "Block format '%s' used by device '' does "
                   "not support internal snapshots", bs->drv->name);
}

int bdev_snapshot_create(struct bdev *bs, const struct snapshot_info *sn,
                         struct err *err)
{
    if (!bs->drv->snapshot_create)
        return no_snapshots(bs, err);
    return bs->drv->snapshot_create(bs, sn, err);
}

int bdev_snapshot_apply(struct bdev *bs, const char *id_or_name,
                        struct err *err)
{
    if (!bs->drv->snapshot_apply)
        return err_set(err, -ENOTSUP, "Block driver does not support "
                       "snapshots");
    return bs->drv->snapshot_apply(bs, id_or_name, err);
}

int bdev_snapshot_delete(struct bdev *bs, const char *id, const char *name,
                         struct err *err)
{
    if (!bs->drv->snapshot_delete)
        return no_snapshots(bs, err);
    return bs->drv->snapshot_delete(bs, id, name, err);
}

int bdev_make_empty(struct bdev *bs, struct err *err)
{
    if (!bs->drv->make_empty)
        return -ENOTSUP;
    if (bs->read_only || !(bs->flags & BDEV_O_RDWR))
        return err_set(err, -EACCES, "Image is read-only");
    return bs->drv->make_empty(bs, err);
}

char *bdev_backing_path(const struct bdev *bs)
{
    if (!bs->backing_file || !bs->backing_file[0])
        return NULL;
    return bdev_resolve_backing(bs, bs->backing_file);
}

int bdev_amend(struct bdev *bs, struct kvlist *opts, bool force,
               void (*progress)(void *opaque, uint64_t done, uint64_t total),
               void *opaque, struct err *err)
{
    if (!bs->drv->amend)
        return -ENOTSUP;
    return bs->drv->amend(bs, opts, force, progress, opaque, err);
}

int bdev_bitmap_apply(struct bdev *bs, const struct bitmap_action *acts,
                      int n, int *failed, struct err *err)
{
    *failed = 0;
    if (!bs->drv->bitmap_apply)
        return err_set(err, -ENOTSUP, "Can't store persistent bitmaps to "
                       "%s: Operation not supported", bs->filename);
    return bs->drv->bitmap_apply(bs, acts, n, failed, err);
}
