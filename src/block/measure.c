/* measure: the front door to a format's size estimate (qemu-img measure),
 * for cli/, which cannot see the driver table. */
#include "block/copy.h"
#include "block/driver.h"
#include "block/registry.h"

#include <errno.h>
#include <string.h>

int bdev_measure(const char *fmt, struct kvlist *opts, struct bdev *in,
                 uint64_t size, struct bdev_measure *out, struct err *err)
{
    const struct driver *drv = registry_find(fmt);
    struct measure_info mi;
    memset(&mi, 0, sizeof(mi));
    memset(out, 0, sizeof(*out));
    if (!drv || drv->kind != DRV_FORMAT)
        return err_set(err, -EINVAL, "Unknown file format '%s'", fmt);
    if (!drv->measure)
        return err_set(err, -ENOTSUP, "Block driver '%s' does not support "
                       "size measurement", drv->name);
    int r = drv->measure(opts, in, size, &mi, err);
    if (r < 0)
        return r;
    out->required = mi.required;
    out->fully_allocated = mi.fully_allocated;
    out->bitmaps = mi.bitmaps;
    out->has_bitmaps = mi.has_bitmaps;
    return 0;
}

bool bdev_format_can_create(const char *fmt)
{
    const struct driver *drv = registry_find(fmt);
    return drv && drv->create && drv->create_opts;
}
