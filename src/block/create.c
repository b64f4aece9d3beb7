/* create: image creation through the driver table, with qemu-img's option
 * validation (every -o key must be a create option of the format or of
 * the file protocol beneath it). */
#include "block/driver.h"
#include "block/registry.h"

#include <errno.h>
#include <string.h>

static bool desc_has(const struct opt_desc *d, const char *name)
{
    for (; d && d->name; d++)
        if (!strcmp(d->name, name))
            return true;
    return false;
}

int bdev_create(const char *fmt, const char *filename, struct kvlist *opts,
                struct err *err)
{
    const struct driver *drv = registry_find(fmt);
    const struct driver *proto = registry_find("file");
    if (!drv)
        return err_set(err, -EINVAL, "Unknown file format '%s'", fmt);
    if (!drv->create)
        return err_set(err, -ENOTSUP,
                       "Format driver '%s' does not support image creation",
                       drv->name);
    for (size_t i = 0; i < opts->n; i++) {
        const char *k = opts->items[i].key;
        if (!desc_has(drv->create_opts, k) && !desc_has(proto->create_opts, k))
            return err_set(err, -EINVAL, "Invalid parameter '%s'", k);
    }
    return drv->create(filename, opts, err);
}

int bdev_create_file_size(const char *filename, struct kvlist *opts,
                          uint64_t size, struct err *err)
{
    struct kvlist o = KVLIST_INIT;
    int r = kv_copy(&o, opts);
    if (r >= 0)
        r = kv_set_u64(&o, "size", size);
    if (r < 0)
        r = err_set(err, r, "Out of memory");
    else
        r = bdev_create_file(filename, &o, err);
    kv_free(&o);
    return r;
}

int bdev_create_file(const char *filename, struct kvlist *opts, struct err *err)
{
    const struct driver *proto = registry_find("file");
    struct kvlist o = KVLIST_INIT;
    int r = 0;
    /* Only the protocol's own options reach it. */
    for (const struct opt_desc *d = proto->create_opts; d->name && r == 0; d++) {
        const char *v = opts ? kv_peek(opts, d->name) : NULL;
        if (v)
            r = kv_set(&o, d->name, v);
    }
    if (r == 0)
        r = proto->create(filename, &o, err);
    else
        r = err_set(err, r, "Out of memory");
    kv_free(&o);
    return r;
}
