/* file: the POSIX protocol driver for regular files and block devices.
 * Reads and writes go through io_uring, Linux native AIO or pread/pwrite
 * loops (the aio option, file-aio.c; docs/IO.md), O_DIRECT for cache=none/directsync (with aligned
 * bounce buffers when callers' buffers are not aligned), SEEK_DATA/SEEK_HOLE
 * block status, fallocate zeroing and hole punching, preallocation, nocow
 * and extent size hints at create time, and QEMU-compatible locking. */
#include "block/driver.h"
#include "block/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/file-aio.h"
#include "util/align.h"

#define DIRECT_ALIGN 4096

struct file_state {
    int fd;
    bool is_blockdev;
    bool direct;
    bool has_seek_data;
    enum file_aio aio;
    bool aio_auto;      /* no aio option: chosen here, not by the user */
};

/* The aio option: explicit modes must work (as in qemu); without it,
 * io_uring is used when it can be set up and pread/pwrite otherwise,
 * except for buffered writes (see file_write). */
static int parse_aio(struct bdev *bs, struct file_state *s, const char *aio,
                     struct err *err)
{
    if (!aio) {
        struct err ignored = ERR_INIT;
        s->aio = file_aio_setup(FILE_AIO_IO_URING, &ignored) == 0
                 ? FILE_AIO_IO_URING : FILE_AIO_THREADS;
        s->aio_auto = true;
        return 0;
    }
    if (!strcmp(aio, "threads")) {
        s->aio = FILE_AIO_THREADS;
        return 0;
    }
    if (!strcmp(aio, "native")) {
        if (!s->direct)
            return err_set(err, -EINVAL, "aio=native was specified, but it "
                           "requires cache.direct=on, which was not "
                           "specified.");
        s->aio = FILE_AIO_NATIVE;
    } else if (!strcmp(aio, "io_uring")) {
        s->aio = FILE_AIO_IO_URING;
    } else {
        return err_set(err, -EINVAL, "invalid parameter value: %s", aio);
    }
    struct err e = ERR_INIT;
    int r = file_aio_setup(s->aio, &e);
    if (r < 0) {
        if (r == -ENOTSUP)      /* not built in: qemu's message as it is */
            return err_set(err, r, "%s", e.msg);
        return err_set(err, r, "Unable to use %s: %s",
                       s->aio == FILE_AIO_NATIVE ? "native AIO" : "io_uring",
                       e.msg);
    }
    (void)bs;
    return 0;
}

static int file_get_size(struct file_state *s, uint64_t *size)
{
    struct stat st;
    if (fstat(s->fd, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode)) {
        uint64_t n;
        if (ioctl(s->fd, BLKGETSIZE64, &n) < 0)
            return -errno;
        *size = n;
    } else {
        *size = (uint64_t)st.st_size;
    }
    return 0;
}

static int file_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct file_state *s = bs->priv;
    bool write = bs->flags & BDEV_O_RDWR;
    int oflags = (write ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    struct stat st;
    int r;

    const char *locking = kv_get(opts, "locking");
    const char *aio = kv_get(opts, "aio");
    s->direct = bs->cache == CACHE_NONE || bs->cache == CACHE_DIRECTSYNC;
    r = parse_aio(bs, s, aio, err);
    if (r < 0) {
        s->fd = -1;
        return r;
    }
    if (s->direct)
        oflags |= O_DIRECT;
    s->fd = open(bs->filename, oflags);
    if (s->fd < 0 && s->direct && errno == EINVAL)
        return err_set(err, -EINVAL, "Could not open '%s': filesystem does "
                       "not support O_DIRECT", bs->filename);
    if (s->fd < 0)
        return err_set_errno(err, -errno, "Could not open '%s'", bs->filename);
    if (fstat(s->fd, &st) < 0) {
        r = err_set_errno(err, -errno, "Could not stat '%s'", bs->filename);
        goto fail;
    }
    s->is_blockdev = S_ISBLK(st.st_mode);
    s->has_seek_data = true;
    r = file_get_size(s, &bs->size);
    if (r < 0) {
        err_set_errno(err, r, "Could not get size of '%s'", bs->filename);
        goto fail;
    }
    bs->align = s->direct ? 512 : 1;
    if (!(bs->flags & BDEV_O_NO_LOCK) && !(locking && !strcmp(locking, "off"))) {
        /* Under a format, bdev.c locks once the format is known, as QEMU
         * settles permissions after probing. */
        struct lock_set ls = lock_set_node(write, bs->flags & BDEV_O_RESIZE,
                                           false, bs->flags & BDEV_O_SHARE);
        r = (bs->flags & BDEV_O_LOCK_LATER) ? 0
            : lock_apply(s->fd, bs->filename, ls, err);
        if (r == 0)
            bs->lock_fd = s->fd;
        if (r < 0)
            goto fail;
    }
    return 0;
fail:
    close(s->fd);
    s->fd = -1;
    return r;
}

static void file_close(struct bdev *bs)
{
    struct file_state *s = bs->priv;
    if (s->fd >= 0)
        close(s->fd);
}

static bool needs_bounce(struct file_state *s, const void *buf)
{
    return s->direct && ((uintptr_t)buf % DIRECT_ALIGN) != 0;
}

static int file_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                     struct err *err)
{
    struct file_state *s = bs->priv;
    uint8_t *p = buf, *bounce = NULL;
    if (needs_bounce(s, buf)) {
        bounce = aligned_alloc(DIRECT_ALIGN, align_up(len, DIRECT_ALIGN));
        if (!bounce)
            return err_set(err, -ENOMEM, "Out of memory");
        p = bounce;
    }
    uint64_t done = 0;
    int r = FILE_AIO_UNAVAILABLE;
    if (s->aio != FILE_AIO_THREADS) {
        r = file_aio_rw(s->aio, s->fd, false, s->direct, p, len, off);
        if (r < 0)
            err_set_errno(err, r, "Could not read from '%s'", bs->filename);
        else if (r == 0)
            done = len;
    }
    if (r == FILE_AIO_UNAVAILABLE)
        r = 0;
    while (done < len && r == 0) {
        ssize_t n = pread(s->fd, p + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = err_set_errno(err, -errno, "Could not read from '%s'",
                              bs->filename);
            break;
        }
        if (n == 0) {   /* past EOF: the rest reads as zeros */
            memset(p + done, 0, len - done);
            break;
        }
        done += (uint64_t)n;
    }
    if (bounce) {
        if (r == 0)
            memcpy(buf, bounce, len);
        free(bounce);
    }
    return r;
}

/* Allocating the blocks of a large buffered write in one fallocate call
 * before copying the data in is cheaper than letting the filesystem
 * reserve them page by page (on ext4, 1 GiB of 2 MiB writes into a new
 * file took about two thirds of the system time).  The file ends up the
 * same: only bytes about to be written are allocated, and where
 * fallocate is refused the write goes on as it would have. */
#define PREALLOC_MIN_WRITE (256 << 10)

static void preallocate_for_write(struct file_state *s, uint64_t off,
                                  uint64_t len)
{
    if (s->direct || s->is_blockdev || len < PREALLOC_MIN_WRITE)
        return;
    (void)fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

static int file_write(struct bdev *bs, uint64_t off, uint64_t len,
                      const void *buf, struct err *err)
{
    struct file_state *s = bs->priv;
    const uint8_t *p = buf;
    uint8_t *bounce = NULL;
    if (needs_bounce(s, buf)) {
        bounce = aligned_alloc(DIRECT_ALIGN, align_up(len, DIRECT_ALIGN));
        if (!bounce)
            return err_set(err, -ENOMEM, "Out of memory");
        memcpy(bounce, buf, len);
        p = bounce;
    }
    uint64_t done = 0;
    int r = FILE_AIO_UNAVAILABLE;
    /* Filesystems such as ext4 cannot complete a buffered write inside
     * io_uring_enter: the kernel hands every piece to its own worker
     * threads, which copy the data on another core and queue on the inode
     * lock.  Unless asked for io_uring, buffered writes use pwrite (a
     * raw -> qcow2 conversion took about a third less CPU time). */
    bool aio = s->aio != FILE_AIO_THREADS && (s->direct || !s->aio_auto);
    if (aio) {
        r = file_aio_rw(s->aio, s->fd, true, s->direct, (uint8_t *)p, len,
                        off);
        if (r < 0)
            err_set_errno(err, r, "Could not write to '%s'", bs->filename);
        else if (r == 0)
            done = len;
    }
    if (r == FILE_AIO_UNAVAILABLE) {
        r = 0;
        preallocate_for_write(s, off, len);
    }
    while (done < len && r == 0) {
        ssize_t n = pwrite(s->fd, p + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = err_set_errno(err, n < 0 ? -errno : -EIO,
                              "Could not write to '%s'", bs->filename);
            break;
        }
        done += (uint64_t)n;
    }
    free(bounce);
    return r;
}

static int file_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                             unsigned flags, struct err *err)
{
    struct file_state *s = bs->priv;
    (void)err;
    if (s->is_blockdev) {
        uint64_t range[2] = { off, len };
        if (ioctl(s->fd, BLKZEROOUT, range) == 0)
            return 0;
        return -ENOTSUP;
    }
    if ((flags & BDEV_ZERO_MAY_UNMAP) &&
        fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) == 0)
        return 0;
    if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
        return 0;
    return -ENOTSUP;
}

static int file_discard(struct bdev *bs, uint64_t off, uint64_t len,
                        struct err *err)
{
    struct file_state *s = bs->priv;
    (void)err;
    if (s->is_blockdev) {
        uint64_t range[2] = { off, len };
        if (ioctl(s->fd, BLKDISCARD, range) < 0)
            return -ENOTSUP;
        return 0;
    }
    if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) < 0)
        return -ENOTSUP;
    return 0;
}

/* copy_file_range(2); QIMG_TEST_COPY_RANGE_FAIL=EXDEV (or another errno
 * name: EOPNOTSUPP, ENOSYS) makes it fail as a kernel refusing would,
 * for tests of the fallback. */
static int file_copy_range(struct bdev *src, uint64_t soff, struct bdev *dst,
                           uint64_t doff, uint64_t len, struct err *err)
{
    struct file_state *ss = src->priv, *ds = dst->priv;
    const char *force = getenv("QIMG_TEST_COPY_RANGE_FAIL");
    if (force && *force)
        return err_set(err, !strcmp(force, "ENOSYS") ? -ENOSYS
                       : !strcmp(force, "EOPNOTSUPP") ? -EOPNOTSUPP : -EXDEV,
                       "copy_file_range refused");
    loff_t si = (loff_t)soff, di = (loff_t)doff;
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = copy_file_range(ss->fd, &si, ds->fd, &di,
                                    (size_t)min_u64(len - done, 1u << 30), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set_errno(err, -errno, "Could not copy to '%s'",
                                 dst->filename);
        if (n == 0)     /* past the end of the source: no progress */
            return err_set(err, -ENOSPC, "Could not copy to '%s'",
                           dst->filename);
        done += (uint64_t)n;
    }
    return 0;
}

static int file_flush(struct bdev *bs, struct err *err)
{
    struct file_state *s = bs->priv;
    if (fdatasync(s->fd) < 0)
        return err_set_errno(err, -errno, "Could not flush '%s'", bs->filename);
    return 0;
}

static int file_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                             struct bstatus *st, struct err *err)
{
    struct file_state *s = bs->priv;
    (void)err;
    st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID;
    st->len = len;
    st->host_off = off;
    st->file = bs;
    if (s->is_blockdev || !s->has_seek_data)
        return 0;
    off_t data = lseek(s->fd, (off_t)off, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {       /* only a hole up to EOF */
            st->flags = BS_ZERO | BS_ALLOCATED | BS_OFFSET_VALID;
            return 0;
        }
        s->has_seek_data = false;
        return 0;
    }
    if ((uint64_t)data > off) {
        st->flags = BS_ZERO | BS_ALLOCATED | BS_OFFSET_VALID;
        st->len = min_u64(len, (uint64_t)data - off);
        return 0;
    }
    off_t hole = lseek(s->fd, (off_t)off, SEEK_HOLE);
    if (hole < 0 || (uint64_t)hole <= off)
        return 0;
    st->len = min_u64(len, (uint64_t)hole - off);
    return 0;
}

static int do_prealloc(int fd, uint64_t from, uint64_t to, enum prealloc p,
                       struct err *err)
{
    if (to <= from)
        return 0;
    if (p == PREALLOC_FALLOC) {
        int r = posix_fallocate(fd, (off_t)from, (off_t)(to - from));
        if (r)
            return err_set_errno(err, -r, "Could not preallocate data for the new file");
    } else if (p == PREALLOC_FULL) {
        size_t chunk = 1 << 20;
        uint8_t *zero = calloc(1, chunk);
        if (!zero)
            return err_set(err, -ENOMEM, "Out of memory");
        for (uint64_t o = from; o < to;) {
            size_t n = (size_t)min_u64(chunk, to - o);
            ssize_t w = pwrite(fd, zero, n, (off_t)o);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                free(zero);
                return err_set_errno(err, w < 0 ? -errno : -EIO,
                                     "Could not write zeros for preallocation");
            }
            o += (uint64_t)w;
        }
        free(zero);
    }
    return 0;
}

static int file_truncate(struct bdev *bs, uint64_t size, bool shrink,
                         enum prealloc prealloc, struct err *err)
{
    struct file_state *s = bs->priv;
    uint64_t old = bs->size;
    (void)shrink;
    if (s->is_blockdev) {
        if (size > old)
            return err_set(err, -EINVAL, "Cannot grow device files");
        return 0;
    }
    if (prealloc == PREALLOC_METADATA)
        return err_set(err, -ENOTSUP, "Unsupported preallocation mode: metadata");
    if (size > old && prealloc != PREALLOC_OFF) {
        int r = do_prealloc(s->fd, old, size, prealloc, err);
        if (r < 0)
            return r;
    }
    if (ftruncate(s->fd, (off_t)size) < 0)
        return err_set_errno(err, -errno, "Failed to resize file");
    bs->size = size;
    return 0;
}

static int64_t file_allocated_size(struct bdev *bs)
{
    struct file_state *s = bs->priv;
    struct stat st;
    if (fstat(s->fd, &st) < 0)
        return -errno;
    return (int64_t)st.st_blocks * 512;
}

static int file_create(const char *filename, struct kvlist *opts,
                       struct err *err)
{
    uint64_t size, hint;
    bool nocow;
    enum prealloc p = PREALLOC_OFF;
    const char *pa;
    int r = kv_get_size(opts, "size", 0, &size, err);
    if (r == 0)
        r = kv_get_bool(opts, "nocow", false, &nocow, err);
    if (r == 0)
        r = kv_get_size(opts, "extent_size_hint", 1 << 20, &hint, err);
    if (r < 0)
        return r;
    size = align_up(size, 512);     /* qemu creates whole sectors */
    pa = kv_get(opts, "preallocation");
    if (pa && prealloc_parse(pa, &p, err) < 0)
        return -EINVAL;
    if (p == PREALLOC_METADATA)
        return err_set(err, -EINVAL, "Unsupported preallocation mode: metadata");
    int fd = open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set_errno(err, -errno, "Could not create '%s'", filename);
    if (nocow) {
        int attr;
        if (ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
            attr |= FS_NOCOW_FL;
            ioctl(fd, FS_IOC_SETFLAGS, &attr);
        }
    }
    if (hint) {
        struct fsxattr fa;
        if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) == 0) {
            fa.fsx_xflags |= FS_XFLAG_EXTSIZE;
            fa.fsx_extsize = (uint32_t)min_u64(hint, UINT32_MAX);
            ioctl(fd, FS_IOC_FSSETXATTR, &fa);
        }
    }
    r = do_prealloc(fd, 0, size, p, err);
    if (r == 0 && ftruncate(fd, (off_t)size) < 0)
        r = err_set_errno(err, -errno, "Could not resize file");
    /* Like QEMU, allocate the first block with zeros so that the image's
     * allocation (and O_DIRECT alignment probing) matches qemu-img's. */
    if (r == 0 && size && p == PREALLOC_OFF) {
        static const uint8_t zero[4096];
        if (pwrite(fd, zero, (size_t)min_u64(size, sizeof(zero)), 0) < 0)
            r = err_set_errno(err, -errno, "Could not write to '%s'", filename);
    }
    close(fd);
    return r;
}

static const struct opt_desc file_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "preallocation", OPT_STRING,
      "Preallocation mode (allowed values: off, falloc, full)", NULL },
    { "nocow", OPT_BOOL, "Turn off copy-on-write (valid only on btrfs)", NULL },
    { "extent_size_hint", OPT_SIZE,
      "Extent size hint for the image file, 0 to disable", NULL },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_file = {
    .name = "file",
    .kind = DRV_PROTOCOL,
    .caps = DRV_THREAD_SAFE | DRV_ZERO_INIT,
    .priv_size = sizeof(struct file_state),
    .create_opts = file_create_opts,
    .open = file_open,
    .close = file_close,
    .create = file_create,
    .read = file_read,
    .write = file_write,
    .write_zeroes = file_write_zeroes,
    .discard = file_discard,
    .flush = file_flush,
    .copy_range = file_copy_range,
    .block_status = file_block_status,
    .truncate = file_truncate,
    .allocated_size = file_allocated_size,
};
