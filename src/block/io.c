/* io: the data-path front door.  Every invariant is checked here once
 * (range, writability, alignment), so drivers never re-check: unaligned
 * requests become read-modify-write through an aligned bounce buffer,
 * missing zero-write support becomes explicit zeros, and the cache mode's
 * flush rules are applied. */
#include "block/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"

#define ZERO_CHUNK (1u << 20)

static void node_lock(struct bdev *bs)
{
    if (!(bs->drv->caps & DRV_THREAD_SAFE))
        pthread_rwlock_wrlock(&bs->lock);
}

/* Around read and block_status: shared when the driver allows it. */
static void node_lock_read(struct bdev *bs)
{
    if (bs->drv->caps & DRV_THREAD_SAFE)
        return;
    if (bs->drv->caps & DRV_PARALLEL_READ)
        pthread_rwlock_rdlock(&bs->lock);
    else
        pthread_rwlock_wrlock(&bs->lock);
}

static void node_unlock(struct bdev *bs)
{
    if (!(bs->drv->caps & DRV_THREAD_SAFE))
        pthread_rwlock_unlock(&bs->lock);
}

static int check_range(struct bdev *bs, uint64_t off, uint64_t len,
                       struct err *err)
{
    /* Protocol nodes grow on write and read zeros past their end. */
    if (bs->drv->kind == DRV_PROTOCOL) {
        uint64_t end;
        if (add_overflow(off, len, &end) || end > (UINT64_C(1) << 62))
            return err_set(err, -EIO, "Request beyond the maximum file size");
        return 0;
    }
    if (!range_within(off, len, bs->size))
        return err_set(err, -EIO, "Request beyond end of image "
                       "(offset %llu, length %llu, size %llu)",
                       (unsigned long long)off, (unsigned long long)len,
                       (unsigned long long)bs->size);
    return 0;
}

static int check_writable(struct bdev *bs, struct err *err)
{
    if (bs->read_only || !(bs->flags & BDEV_O_RDWR))
        return err_set(err, -EACCES, "Image is read-only");
    return 0;
}

/* Aligned range covering [off, off+len), clipped to the image size rounded
 * up to the alignment. */
static void widen(struct bdev *bs, uint64_t off, uint64_t len,
                  uint64_t *aoff, uint64_t *alen)
{
    uint64_t a = bs->align;
    *aoff = align_down(off, a);
    *alen = align_up(off + len, a) - *aoff;
}

static int raw_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                    struct err *err)
{
    if (!bs->drv->read)
        return err_set(err, -ENOTSUP, "Driver '%s' cannot read",
                       bs->drv->name);
    return bs->drv->read(bs, off, len, buf, err);
}

int bdev_pread(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
               struct err *err)
{
    int r = check_range(bs, off, len, err);
    if (r < 0 || len == 0)
        return r;
    node_lock_read(bs);
    if (is_aligned(off, bs->align) && is_aligned(len, bs->align)) {
        r = raw_read(bs, off, len, buf, err);
    } else {
        uint64_t aoff, alen;
        widen(bs, off, len, &aoff, &alen);
        uint8_t *bounce = aligned_alloc(4096, align_up(alen, 4096));
        if (!bounce) {
            r = err_set(err, -ENOMEM, "Out of memory");
        } else {
            r = raw_read(bs, aoff, alen, bounce, err);
            if (r >= 0)
                memcpy(buf, bounce + (off - aoff), len);
            free(bounce);
        }
    }
    node_unlock(bs);
    return r < 0 ? r : 0;
}

/* Refuse writes to block 0 of a probed raw image that would make it probe
 * as another format (qemu's protection against format confusion). */
static int check_probed_raw(struct bdev *bs, uint64_t off, uint64_t len,
                            const void *buf, struct err *err);

/* A protocol node's size follows its writes (several threads may race). */
static void grow_size(struct bdev *bs, uint64_t end)
{
    uint64_t cur = __atomic_load_n(&bs->size, __ATOMIC_RELAXED);
    while (end > cur &&
           !__atomic_compare_exchange_n(&bs->size, &cur, end, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static int do_write(struct bdev *bs, uint64_t off, uint64_t len,
                    const void *buf, struct err *err)
{
    if (!bs->drv->write)
        return err_set(err, -ENOTSUP, "Driver '%s' does not support writes",
                       bs->drv->name);
    int r = bs->drv->write(bs, off, len, buf, err);
    if (r >= 0 && bs->drv->kind == DRV_PROTOCOL)
        grow_size(bs, off + len);
    if (r >= 0 && (bs->cache == CACHE_WRITETHROUGH ||
                   bs->cache == CACHE_DIRECTSYNC) && bs->drv->flush)
        r = bs->drv->flush(bs, err);
    return r;
}

int bdev_pwrite(struct bdev *bs, uint64_t off, uint64_t len, const void *buf,
                struct err *err)
{
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    r = check_range(bs, off, len, err);
    if (r < 0 || len == 0)
        return r;
    if (bs->probed_raw && off < 512) {
        r = check_probed_raw(bs, off, len, buf, err);
        if (r < 0)
            return r;
    }
    node_lock(bs);
    if (is_aligned(off, bs->align) && is_aligned(len, bs->align)) {
        r = do_write(bs, off, len, buf, err);
    } else {
        uint64_t aoff, alen;
        widen(bs, off, len, &aoff, &alen);
        uint8_t *bounce = aligned_alloc(4096, align_up(alen, 4096));
        if (!bounce) {
            r = err_set(err, -ENOMEM, "Out of memory");
        } else {
            r = raw_read(bs, aoff, alen, bounce, err);
            if (r >= 0) {
                memcpy(bounce + (off - aoff), buf, len);
                r = do_write(bs, aoff, alen, bounce, err);
            }
            free(bounce);
        }
    }
    node_unlock(bs);
    return r < 0 ? r : 0;
}

static int write_explicit_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                                 struct err *err)
{
    uint64_t chunk = min_u64(len, ZERO_CHUNK);
    uint8_t *zero = aligned_alloc(4096, align_up(chunk, 4096));
    int r = 0;
    if (!zero)
        return err_set(err, -ENOMEM, "Out of memory");
    memset(zero, 0, align_up(chunk, 4096));
    while (len && r >= 0) {
        uint64_t n = min_u64(len, ZERO_CHUNK);
        r = bdev_pwrite(bs, off, n, zero, err);
        off += n;
        len -= n;
    }
    free(zero);
    return r;
}

int bdev_pwrite_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                       unsigned flags, struct err *err)
{
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    r = check_range(bs, off, len, err);
    if (r < 0 || len == 0)
        return r;
    uint64_t a = bs->align;
    /* Unaligned head and tail go through the write path. */
    if (!is_aligned(off, a)) {
        uint64_t n = min_u64(len, align_up(off + 1, a) - off);
        r = write_explicit_zeroes(bs, off, n, err);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    uint64_t tail = len % a;
    if (tail && len > tail) {
        r = write_explicit_zeroes(bs, off + len - tail, tail, err);
        if (r < 0)
            return r;
        len -= tail;
    } else if (tail) {
        return write_explicit_zeroes(bs, off, len, err);
    }
    if (!len)
        return 0;
    r = -ENOTSUP;
    if (bs->drv->write_zeroes) {
        struct err e2 = ERR_INIT;
        node_lock(bs);
        r = bs->drv->write_zeroes(bs, off, len, flags, &e2);
        node_unlock(bs);
        if (r < 0 && r != -ENOTSUP) {
            err_set(err, r, "%s", e2.msg);
            return r;
        }
    }
    if (r == -ENOTSUP) {
        if (flags & BDEV_ZERO_NO_FALLBACK)
            return err_set(err, -ENOTSUP, "Zero writes are not supported");
        r = write_explicit_zeroes(bs, off, len, err);
    }
    return r < 0 ? r : 0;
}

int bdev_pwrite_compressed(struct bdev *bs, uint64_t off, uint64_t len,
                           const void *buf, struct err *err)
{
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    r = check_range(bs, off, len, err);
    if (r < 0)
        return r;
    if (!bs->drv->write_compressed)
        return err_set(err, -ENOTSUP,
                       "Compression not supported for this file format");
    node_lock(bs);
    r = bs->drv->write_compressed(bs, off, len, buf, err);
    node_unlock(bs);
    return r < 0 ? r : 0;
}

int bdev_discard(struct bdev *bs, uint64_t off, uint64_t len, struct err *err)
{
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    r = check_range(bs, off, len, err);
    if (r < 0 || len == 0 || !bs->drv->discard)
        return r;   /* discard is advisory: unsupported is success */
    node_lock(bs);
    r = bs->drv->discard(bs, off, len, err);
    node_unlock(bs);
    return r == -ENOTSUP ? 0 : (r < 0 ? r : 0);
}

/* The protocol node and offset that a prefix of [off, off+len) of `bs`
 * maps to, its length in *run, or NULL.  A protocol node maps to itself
 * and raw (with its offset option) linearly to its file.  With `any`, a
 * run of another format maps too where its block status says the data is
 * stored as it is at host_off (BS_OFFSET_VALID is set only for plain
 * clusters, never compressed or encrypted ones) and reads as that data
 * (not a zero cluster over preallocated space), or where it leaves the
 * run to a backing image that maps it. */
static struct bdev *map_run(struct bdev *bs, uint64_t off, uint64_t len,
                            bool any, uint64_t *host_off, uint64_t *run)
{
    *run = len;
    if (bs->drv->kind == DRV_PROTOCOL) {
        *host_off = off;
        return bs;
    }
    bool raw = !strcmp(bs->drv->name, "raw");
    if ((!raw && !any) || !range_within(off, len, bs->size))
        return NULL;
    struct bstatus st;
    struct err err = ERR_INIT;
    if (bdev_block_status(bs, off, len, &st, &err) < 0)
        return NULL;
    /* A source range this layer leaves to its backing image is that
     * image's data (what reading the source returns there). */
    if (any && !raw && !(st.flags & (BS_DATA | BS_ZERO | BS_ALLOCATED)) &&
        bs->backing && off < bs->backing->size)
        return map_run(bs->backing, off,
                       min_u64(st.len, bs->backing->size - off), any,
                       host_off, run);
    if (!(st.flags & BS_OFFSET_VALID) || !st.file ||
        st.file->drv->kind != DRV_PROTOCOL)
        return NULL;
    if (!raw) {
        if (!(st.flags & BS_DATA) || (st.flags & BS_ZERO))
            return NULL;
        *run = st.len;
    }
    *host_off = st.host_off;
    return st.file;
}

int bdev_copy_range(struct bdev *src, uint64_t soff, struct bdev *dst,
                    uint64_t doff, uint64_t len, struct err *err)
{
    int r = check_writable(dst, err);
    if (r == 0)
        r = check_range(src, soff, len, err);
    if (r == 0)
        r = check_range(dst, doff, len, err);
    if (r < 0 || len == 0)
        return r;
    if (dst->drv->copy_range_to) {
        /* A format that allocates: only when every byte of the source
         * range can be offloaded, so that a refusal that can be foreseen
         * costs no allocation. */
        uint64_t pos = soff, left = len;
        while (left) {
            uint64_t shost, n;
            struct bdev *sf = map_run(src, pos, left, true, &shost, &n);
            if (!sf || !sf->drv->copy_range || !n)
                return err_set(err, -ENOTSUP,
                               "Copy offloading is not supported");
            pos += n;
            left -= n;
        }
        node_lock(dst);
        r = dst->drv->copy_range_to(dst, doff, src, soff, len, err);
        node_unlock(dst);
        if (r >= 0 && (dst->cache == CACHE_WRITETHROUGH ||
                       dst->cache == CACHE_DIRECTSYNC) && dst->drv->flush)
            r = bdev_flush(dst, err);
        return r < 0 ? r : 0;
    }
    uint64_t dhost, drun;
    struct bdev *df = map_run(dst, doff, len, false, &dhost, &drun);
    if (!df || check_writable(df, err) < 0)
        return err_set(err, -ENOTSUP, "Copy offloading is not supported");
    while (len) {
        uint64_t shost, n;
        struct bdev *sf = map_run(src, soff, len, true, &shost, &n);
        if (!sf || sf->drv != df->drv || !sf->drv->copy_range || !n)
            return err_set(err, -ENOTSUP, "Copy offloading is not supported");
        r = sf->drv->copy_range(sf, shost, df, dhost, n, err);
        if (r < 0)
            return r;
        grow_size(df, dhost + n);
        soff += n;
        dhost += n;
        len -= n;
    }
    if (dst->cache == CACHE_WRITETHROUGH || dst->cache == CACHE_DIRECTSYNC)
        r = bdev_flush(df, err);
    return r < 0 ? r : 0;
}

int bdev_flush(struct bdev *bs, struct err *err)
{
    int r = 0;
    if (!bs || bs->cache == CACHE_UNSAFE || bs->read_only)
        return 0;
    if (bs->drv->flush) {
        node_lock(bs);
        r = bs->drv->flush(bs, err);
        node_unlock(bs);
    } else if (bs->file) {
        r = bdev_flush(bs->file, err);
    }
    return r < 0 ? r : 0;
}

int bdev_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                      struct bstatus *st, struct err *err)
{
    int r;
    memset(st, 0, sizeof(*st));
    if (off >= bs->size || len == 0)
        return err_set(err, -EINVAL, "Block status beyond end of image");
    len = min_u64(len, bs->size - off);
    if (!bs->drv->block_status) {
        /* Without block status everything is allocated data. */
        st->len = len;
        st->flags = BS_DATA | BS_ALLOCATED;
        return 0;
    }
    node_lock_read(bs);
    r = bs->drv->block_status(bs, off, len, st, err);
    node_unlock(bs);
    if (r < 0)
        return r;
    if (st->len == 0 || st->len > len)
        return err_set(err, -EIO, "Driver '%s' returned a bad block status",
                       bs->drv->name);
    if (off + st->len == bs->size)
        st->flags |= BS_EOF;
    return 0;
}

int bdev_truncate(struct bdev *bs, uint64_t size, bool shrink,
                  enum prealloc prealloc, struct err *err)
{
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    if (!bs->drv->truncate)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    node_lock(bs);
    r = bs->drv->truncate(bs, size, shrink, prealloc, err);
    node_unlock(bs);
    return r < 0 ? r : 0;
}

int bdev_read_backing(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                      struct err *err)
{
    uint64_t n = 0;
    if (bs->backing && off < bs->backing->size) {
        n = min_u64(len, bs->backing->size - off);
        int r = bdev_pread(bs->backing, off, n, buf, err);
        if (r < 0)
            return r;
    }
    if (n < len)
        memset((uint8_t *)buf + n, 0, len - n);
    return 0;
}

static int check_probed_raw(struct bdev *bs, uint64_t off, uint64_t len,
                            const void *buf, struct err *err)
{
    extern int bdev_probe_is_raw(const uint8_t *buf, size_t len);
    uint8_t block[512];
    uint64_t n = min_u64(len, 512 - off);
    int r = bdev_pread(bs, 0, min_u64(512, bs->size), block, err);
    if (r < 0)
        return r;
    memcpy(block + off, buf, n);
    if (!bdev_probe_is_raw(block, min_u64(512, bs->size)))
        return err_set(err, -EPERM, "Operation not permitted");
    return 0;
}
