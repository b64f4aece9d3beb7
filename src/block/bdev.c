/* bdev: opening images (protocol node, format probing, format node,
 * backing chain with loop detection) and closing them. */
#include "block/driver.h"
#include "block/lock.h"
#include "block/registry.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/align.h"

#define PROBE_BYTES 2048
#define MAX_CHAIN_DEPTH 1000

struct chain_seen {
    char *paths[MAX_CHAIN_DEPTH];
    int n;
};

static struct bdev *node_new(const struct driver *drv, const char *filename,
                             struct err *err)
{
    struct bdev *bs = calloc(1, sizeof(*bs));
    if (!bs)
        goto oom;
    bs->drv = drv;
    bs->align = 1;
    bs->lock_fd = -1;
    {
        /* Writers first: a stream of parallel readers must not starve
         * a write to the same node. */
        pthread_rwlockattr_t a;
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_setkind_np(&a,
            PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&bs->lock, &a);
        pthread_rwlockattr_destroy(&a);
    }
    kv_init(&bs->opts);
    bs->filename = strdup(filename ? filename : "");
    if (!bs->filename)
        goto oom;
    if (drv->priv_size) {
        bs->priv = calloc(1, drv->priv_size);
        if (!bs->priv)
            goto oom;
    }
    return bs;
oom:
    if (bs) {
        free(bs->filename);
        free(bs);
    }
    err_set(err, -ENOMEM, "Out of memory");
    return NULL;
}

static void node_free(struct bdev *bs)
{
    if (!bs)
        return;
    free(bs->priv);
    free(bs->filename);
    free(bs->backing_file);
    free(bs->backing_fmt);
    free(bs->full_backing_filename);
    free(bs->aio);
    kv_free(&bs->opts);
    pthread_rwlock_destroy(&bs->lock);
    free(bs);
}

void bdev_close(struct bdev *bs)
{
    if (!bs)
        return;
    if (bs->drv->close)
        bs->drv->close(bs);
    bdev_close(bs->backing);
    bdev_close(bs->file);
    node_free(bs);
}

/* cache.direct and cache.no-flush in a node's options refine the cache
 * mode (-t) for that node and the nodes below it, as in qemu. */
static int take_cache_opts(struct kvlist *opts, enum cache_mode *cache,
                           struct err *err)
{
    bool direct = *cache == CACHE_NONE || *cache == CACHE_DIRECTSYNC;
    bool sync = *cache == CACHE_WRITETHROUGH || *cache == CACHE_DIRECTSYNC;
    bool no_flush = *cache == CACHE_UNSAFE;
    if (!opts)
        return 0;
    if (kv_get_bool(opts, "cache.direct", direct, &direct, err) < 0 ||
        kv_get_bool(opts, "cache.no-flush", no_flush, &no_flush, err) < 0)
        return -EINVAL;
    kv_del(opts, "cache.direct");
    kv_del(opts, "cache.no-flush");
    if (no_flush && !direct)
        *cache = CACHE_UNSAFE;
    else if (direct)
        *cache = sync && !no_flush ? CACHE_DIRECTSYNC : CACHE_NONE;
    else
        *cache = sync ? CACHE_WRITETHROUGH : CACHE_WRITEBACK;
    return 0;
}

/* Open a protocol node (file). */
static struct bdev *open_protocol(const char *drvname, const char *filename,
                                  struct kvlist *opts, int flags,
                                  enum cache_mode cache, const char *aio,
                                  struct err *err)
{
    const struct driver *drv = registry_find(drvname ? drvname : "file");
    if (!drv || drv->kind != DRV_PROTOCOL) {
        err_set(err, -EINVAL, "Unknown protocol '%s'", drvname);
        return NULL;
    }
    if (!filename) {
        err_set(err, -EINVAL, "The '%s' block driver requires a file name",
                drv->name);
        return NULL;
    }
    if (take_cache_opts(opts, &cache, err) < 0)
        return NULL;
    struct bdev *bs = node_new(drv, filename, err);
    if (!bs)
        return NULL;
    bs->flags = flags;
    bs->cache = cache;
    bs->read_only = !(flags & BDEV_O_RDWR);
    if (opts)
        kv_copy(&bs->opts, opts);
    /* The inherited aio mode, unless the node's options name one (as
     * qemu's open flags give file nodes the default of their option). */
    if (aio && !kv_peek(&bs->opts, "aio") &&
        kv_set(&bs->opts, "aio", aio) < 0) {
        node_free(bs);
        err_set(err, -ENOMEM, "Out of memory");
        return NULL;
    }
    int r = drv->open(bs, &bs->opts, err);
    if (r < 0) {
        node_free(bs);
        return NULL;
    }
    return bs;
}

struct bdev *bdev_open_file(const char *filename, int flags, struct err *err)
{
    return open_protocol("file", filename, NULL, flags, CACHE_WRITEBACK, NULL,
                         err);
}

struct bdev *bdev_open_child_file(struct bdev *parent, const char *filename,
                                  int flags, struct err *err)
{
    return open_protocol("file", filename, NULL, flags, parent->cache,
                         parent->aio, err);
}

int64_t bdev_file_length(struct bdev *file)
{
    return (int64_t)file->size;
}

char *bdev_resolve_backing(const struct bdev *bs, const char *name)
{
    char *out;
    if (!name)
        return NULL;
    if (name[0] == '/' || !strncmp(name, "json:", 5) || strstr(name, "://"))
        return strdup(name);
    const char *base = bs->file ? bs->file->filename : bs->filename;
    const char *slash = strrchr(base, '/');
    if (!slash)
        return strdup(name);
    if (asprintf(&out, "%.*s/%s", (int)(slash - base), base, name) < 0)
        return NULL;
    return out;
}

int bdev_choose_backing(struct bdev *bs, char **names, int n, const char *fmt,
                        struct err *err)
{
    int pick = 0;
    for (int i = 0; i < n; i++) {
        char *path = bdev_resolve_backing(bs, names[i]);
        bool found = path && access(path, F_OK) == 0;
        free(path);
        if (found) {
            pick = i;
            break;
        }
    }
    free(bs->backing_file);
    free(bs->backing_fmt);
    bs->backing_file = names[pick];
    names[pick] = NULL;
    bs->backing_fmt = strdup(fmt);
    return bs->backing_fmt ? 0 : err_set(err, -ENOMEM, "Out of memory");
}

static struct bdev *open_image(struct kvlist *opts, const char *fmt, int flags,
                               enum cache_mode cache, const char *aio,
                               struct chain_seen *seen, char **warning,
                               bool quiet_probe, const char *display,
                               struct err *err);

static int open_backing(struct bdev *bs, struct kvlist *bopts, int flags,
                        struct chain_seen *seen, struct err *err)
{
    struct kvlist o = KVLIST_INIT;
    int r = 0;
    char *path = bdev_resolve_backing(bs, bs->backing_file);
    if (!path)
        return err_set(err, -ENOMEM, "Out of memory");
    bs->full_backing_filename = strdup(path);
    if (!strncmp(path, "json:", 5)) {
        r = kv_parse_json(&o, path + 5, err);
    } else {
        r = kv_set(&o, "file.filename", path);
    }
    if (r >= 0)
        r = kv_copy(&o, bopts);
    if (r < 0)
        goto out;
    int bflags = (flags & ~(BDEV_O_RDWR | BDEV_O_CHECK));
    const char *fmt = kv_peek(&o, "driver") ? NULL : bs->backing_fmt;
    /* The backing image inherits the cache mode (cache.direct and
     * cache.no-flush) and the aio mode, as in qemu. */
    bs->backing = open_image(&o, fmt, bflags, bs->cache, bs->aio, seen, NULL,
                             true, path, err);
    if (!bs->backing) {
        r = err->code ? err->code : -EIO;
        err_prefix(err, "Could not open backing file: ");
    }
out:
    kv_free(&o);
    free(path);
    return r;
}

static bool chain_add(struct chain_seen *seen, const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return true;      /* not a plain file: cannot loop through it */
    for (int i = 0; i < seen->n; i++)
        if (!strcmp(seen->paths[i], real))
            return false;
    if (seen->n < MAX_CHAIN_DEPTH)
        seen->paths[seen->n++] = strdup(real);
    return true;
}

int bdev_probe_is_raw(const uint8_t *buf, size_t len)
{
    const struct driver *d = registry_probe(NULL, buf, len, "");
    return !d || !strcmp(d->name, "raw");
}

static const struct driver *probe_format(struct bdev *file, struct err *err)
{
    uint8_t buf[PROBE_BYTES];
    uint64_t n = min_u64(PROBE_BYTES, file->size);
    memset(buf, 0, sizeof(buf));
    if (n) {
        int r = bdev_pread(file, 0, n, buf, err);
        if (r < 0) {
            err_prefix(err, "Could not read image for determining its format: ");
            return NULL;
        }
    }
    const struct driver *d = registry_probe(file, buf, n, file->filename);
    if (!d)
        err_set(err, -EINVAL, "Could not determine image format");
    return d;
}

static struct bdev *open_image(struct kvlist *opts, const char *fmt, int flags,
                               enum cache_mode cache, const char *aio,
                               struct chain_seen *seen, char **warning,
                               bool quiet_probe, const char *display,
                               struct err *err)
{
    struct kvlist fopts = KVLIST_INIT, bopts = KVLIST_INIT;
    struct bdev *file = NULL, *bs = NULL;
    const struct driver *drv = NULL;
    char *fdrv = NULL, *ffn = NULL;
    const char *name = kv_get(opts, "driver");
    int r;

    if (take_cache_opts(opts, &cache, err) < 0)
        goto fail;
    if (!name)
        name = fmt;
    if (name) {
        drv = registry_find(name);
        if (!drv) {
            err_set(err, -EINVAL, "Unknown driver '%s'", name);
            goto fail;
        }
    }
    if (drv && drv->kind == DRV_PROTOCOL) {
        /* -f file names the protocol directly: the name may come as
         * "filename" (options) or "file.filename" (a plain name) */
        const char *fn = kv_get(opts, "filename");
        if (!fn)
            fn = kv_get(opts, "file.filename");
        char *fname = fn ? strdup(fn) : NULL;
        kv_del(opts, "driver");
        kv_del(opts, "filename");
        kv_del(opts, "file.filename");
        bs = open_protocol(drv->name, fname, opts, flags, cache, aio, err);
        free(fname);
        return bs;
    }

    kv_take_prefix(&fopts, opts, "file.");
    kv_take_prefix(&bopts, opts, "backing.");
    const char *fn = kv_get(opts, "filename");
    if (!fn)
        fn = kv_get(opts, "file");
    if (fn)
        kv_set(&fopts, "filename", fn);
    fdrv = kv_get(&fopts, "driver") ? strdup(kv_peek(&fopts, "driver")) : NULL;
    ffn = kv_get(&fopts, "filename") ? strdup(kv_peek(&fopts, "filename")) : NULL;
    if (!ffn && !name && !fopts.n) {
        err_set(err, -EINVAL, "Must specify either driver or file");
        goto fail;
    }
    if (!ffn) {
        err_set(err, -EINVAL, "A block device must be specified for \"file\"");
        goto fail;
    }
    if (seen && !chain_add(seen, ffn)) {
        err_set(err, -ELOOP, "Backing file '%s' forms a loop in the backing chain",
                ffn);
        goto fail;
    }
    kv_del(&fopts, "driver");
    kv_del(&fopts, "filename");
    file = open_protocol(fdrv, ffn, &fopts, flags | BDEV_O_LOCK_LATER, cache,
                         aio, err);
    free(fdrv);
    fdrv = NULL;
    free(ffn);
    ffn = NULL;
    if (!file)
        goto fail;

    if (!drv) {
        drv = probe_format(file, err);
        if (!drv)
            goto fail;
        if (!strcmp(drv->name, "raw")) {
            if (warning && !quiet_probe && (flags & BDEV_O_RDWR) &&
                asprintf(warning,
                         "WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
                         "         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n"
                         "         Specify the 'raw' format explicitly to remove the restrictions.",
                         display) < 0)
                *warning = NULL;
        }
    }
    if ((flags & BDEV_O_RDWR) && (drv->caps & DRV_READ_ONLY)) {
        /* qemu-img's wording for its read-only formats (bochs, cloop, dmg) */
        err_set(err, -EACCES, "Image is read-only");
        goto fail;
    }
    bs = node_new(drv, display, err);
    if (!bs)
        goto fail;
    bs->file = file;
    file = NULL;
    bs->flags = flags;
    bs->cache = cache;
    if (aio && !(bs->aio = strdup(aio))) {
        err_set(err, -ENOMEM, "Out of memory");
        bdev_close(bs->file);
        bs->file = NULL;
        node_free(bs);
        bs = NULL;
        goto fail;
    }
    bs->read_only = !(flags & BDEV_O_RDWR);
    bs->probed_raw = !name && !strcmp(drv->name, "raw");
    /* "driver" was consumed above; the node's options are the rest. */
    kv_del(opts, "driver");
    kv_copy(&bs->opts, opts);
    /* Lock the protocol node now that the format is known: a format with
     * metadata in its file needs that file unchanged by others (raw shares
     * everything), as QEMU does. */
    r = 0;
    if (bs->file->lock_fd >= 0)
        r = lock_apply(bs->file->lock_fd, bs->file->filename,
                       lock_set_node(flags & BDEV_O_RDWR, flags & BDEV_O_RESIZE,
                                     strcmp(drv->name, "raw") != 0,
                                     flags & BDEV_O_SHARE), err);
    if (r == 0)
        r = drv->open(bs, &bs->opts, err);
    if (r < 0) {
        if (!err->code)
            err_set(err, r, "Could not open image");
        bdev_close(bs->file);
        bs->file = NULL;
        node_free(bs);
        bs = NULL;
        goto fail;
    }
    const struct kv *unused = kv_first_unused(&bs->opts);
    if (unused) {
        err_set(err, -EINVAL, "Block format '%s' does not support the option '%s'",
                drv->name, unused->key);
        goto fail_open;
    }
    if (bs->backing_file && bs->backing_file[0] && !(flags & BDEV_O_NO_BACKING)) {
        r = open_backing(bs, &bopts, flags, seen, err);
        if (r < 0 && !(flags & BDEV_O_UNSAFE_BACKING))
            goto fail_open;
        err_clear(r < 0 ? err : NULL);
    } else if (bs->backing_file && bs->backing_file[0]) {
        bs->full_backing_filename = bdev_resolve_backing(bs, bs->backing_file);
    }
    kv_free(&fopts);
    kv_free(&bopts);
    return bs;

fail_open:
    bdev_close(bs);
    bs = NULL;
fail:
    free(fdrv);
    free(ffn);
    bdev_close(file);
    kv_free(&fopts);
    kv_free(&bopts);
    return NULL;
}

static void chain_free(struct chain_seen *seen)
{
    for (int i = 0; i < seen->n; i++)
        free(seen->paths[i]);
}

struct bdev *bdev_open_opts(struct kvlist *opts, const struct bdev_open_args *a,
                            char **warning, struct err *err)
{
    struct chain_seen seen = { .n = 0 };
    struct kvlist o = KVLIST_INIT;
    const char *display = kv_peek(opts, "file.filename");
    char *disp = NULL;
    if (!display)
        display = kv_peek(opts, "filename");
    if (!display) {
        disp = kv_to_string(opts);
        display = disp;
    }
    kv_copy(&o, opts);
    if (a->opts)
        kv_copy(&o, a->opts);
    if (warning)
        *warning = NULL;
    struct bdev *bs = open_image(&o, a->fmt, a->flags, a->cache, a->aio, &seen,
                                 warning, a->quiet_probe, display, err);
    chain_free(&seen);
    kv_free(&o);
    free(disp);
    return bs;
}

struct bdev *bdev_open(const char *filename, const struct bdev_open_args *a,
                       char **warning, struct err *err)
{
    struct kvlist o = KVLIST_INIT;
    struct bdev *bs = NULL;
    int r;
    if (!strncmp(filename, "json:", 5))
        r = kv_parse_json(&o, filename + 5, err);
    else
        r = kv_set(&o, "file.filename", filename);
    if (r >= 0) {
        struct chain_seen seen = { .n = 0 };
        if (a->opts)
            kv_copy(&o, a->opts);
        if (warning)
            *warning = NULL;
        bs = open_image(&o, a->fmt, a->flags, a->cache, a->aio, &seen,
                        warning, a->quiet_probe, filename, err);
        chain_free(&seen);
    }
    kv_free(&o);
    return bs;
}

const char *bdev_format_name(const struct bdev *bs)
{
    return bs->drv->name;
}

struct bdev *bdev_data_node(struct bdev *bs)
{
    return bs->file ? bs->file : bs;
}

int64_t bdev_allocated_size(struct bdev *bs)
{
    if (bs->drv->allocated_size)
        return bs->drv->allocated_size(bs);
    if (bs->file)
        return bdev_allocated_size(bs->file);
    return -ENOTSUP;
}

bool bdev_has_zero_init(struct bdev *bs)
{
    return (bs->drv->caps & DRV_ZERO_INIT) != 0;
}

const struct driver *bdev_find_format(const char *name)
{
    return registry_find(name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *bdev_list_formats(void)
{
    const char *names[128];
    int n = 0;
    size_t len = 1;
    for (int i = 0; registry_drivers[i] && n < 126; i++) {
        names[n++] = registry_drivers[i]->name;
        if (registry_drivers[i]->alias)
            names[n++] = registry_drivers[i]->alias;
    }
    qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
    for (int i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ' ';
        p = stpcpy(p, names[i]);
    }
    return s;
}

int bdev_change_backing_file(struct bdev *bs, const char *backing_file,
                             const char *backing_fmt, struct err *err)
{
    if (!bs->drv->change_backing_file)
        return err_set(err, -ENOTSUP,
                       "Operation not supported");
    int r = bs->drv->change_backing_file(bs, backing_file, backing_fmt, err);
    if (r < 0)
        return r;
    free(bs->backing_file);
    free(bs->backing_fmt);
    bs->backing_file = backing_file && *backing_file ? strdup(backing_file) : NULL;
    bs->backing_fmt = backing_fmt ? strdup(backing_fmt) : NULL;
    return 0;
}

void snapshot_info_free(struct snapshot_info *list, int count)
{
    if (!list)
        return;
    for (int i = 0; i < count; i++)
        free(list[i].name);
    free(list);
}

int cache_mode_parse(const char *s, enum cache_mode *out, struct err *err)
{
    static const struct { const char *name; enum cache_mode m; } modes[] = {
        { "writeback", CACHE_WRITEBACK }, { "none", CACHE_NONE },
        { "off", CACHE_NONE }, { "writethrough", CACHE_WRITETHROUGH },
        { "directsync", CACHE_DIRECTSYNC }, { "unsafe", CACHE_UNSAFE },
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (!strcmp(s, modes[i].name)) {
            *out = modes[i].m;
            return 0;
        }
    }
    return err_set(err, -EINVAL, "Invalid cache option: %s", s);
}

int prealloc_parse(const char *s, enum prealloc *out, struct err *err)
{
    static const char *names[] = { "off", "metadata", "falloc", "full" };
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, names[i])) {
            *out = (enum prealloc)i;
            return 0;
        }
    }
    return err_set(err, -EINVAL, "invalid parameter value: %s", s);
}

const struct opt_desc *bdev_driver_create_opts(const char *name)
{
    const struct driver *drv = registry_find(name);
    if (!drv || !drv->create)
        return NULL;
    return drv->create_opts;
}

int bdev_get_info(struct bdev *bs, struct bdev_info *info, struct err *err)
{
    memset(info, 0, sizeof(*info));
    if (!bs->drv->get_info)
        return -ENOTSUP;
    return bs->drv->get_info(bs, info, err);
}

int bdev_snapshot_list(struct bdev *bs, struct snapshot_info **list, int *count,
                       struct err *err)
{
    *list = NULL;
    *count = 0;
    if (!bs->drv->snapshot_list)
        return -ENOTSUP;
    return bs->drv->snapshot_list(bs, list, count, err);
}
