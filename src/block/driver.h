/* driver: the interface every format (src/fmt/) and protocol (src/proto/)
 * implements.  Each driver is one `const struct driver` at the end of its
 * file, listed in registry.c.  NULL callbacks mean "unsupported"; the core
 * answers with qemu-img's error for that case.
 *
 * The core (io.c) has already checked, before a callback runs: the range is
 * inside the image, it is aligned to bs->align, the image is writable for
 * writes, and (unless the driver sets DRV_THREAD_SAFE) bs->lock is held:
 * exclusively, except around read and block_status of a driver that sets
 * DRV_PARALLEL_READ, which then run concurrently with each other (but never
 * with any other callback). */
#ifndef QIMG_BLOCK_DRIVER_H
#define QIMG_BLOCK_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "block/bdev.h"
#include "util/err.h"
#include "util/kvopts.h"

enum driver_kind { DRV_FORMAT, DRV_PROTOCOL };

/* Capability bits. */
#define DRV_THREAD_SAFE   0x01  /* callbacks may run concurrently */
#define DRV_BACKING       0x02  /* format supports backing files */
#define DRV_ZERO_INIT     0x04  /* a new image reads as zeros */
#define DRV_READ_ONLY     0x08  /* cannot be opened for writing */
#define DRV_NO_PROBE_WARN 0x10  /* (raw) probing it prints the warning */
#define DRV_PARALLEL_READ 0x20  /* read and block_status may run
                                   concurrently with each other */

/* enum opt_type, struct opt_desc, struct bdev_info and struct
 * snapshot_info are in bdev.h (cli/ reads them too). */

struct measure_info {
    uint64_t required, fully_allocated, bitmaps;
    bool has_bitmaps;
};

typedef void (*progress_fn)(void *opaque, uint64_t done, uint64_t total);

struct driver {
    const char *name;
    const char *alias;          /* also accepted for -f/-O, e.g. "vhd" */
    enum driver_kind kind;
    unsigned caps;              /* DRV_* */
    unsigned priv_size;         /* bytes of bs->priv, zero-initialised */
    const struct opt_desc *create_opts;   /* NULL-name terminated */

    /* Score 0..100 that `buf` (the first `len` bytes, len <= 2048) holds
     * this format; `file` may be read for trailers.  Formats only. */
    int (*probe)(struct bdev *file, const uint8_t *buf, size_t len,
                 const char *filename);

    /* Open: protocols open bs->filename; formats decode bs->file, set
     * bs->size, bs->align, and bs->backing_file/backing_fmt.  `opts` are
     * the node's own options; read what you use with kv_get. */
    int (*open)(struct bdev *bs, struct kvlist *opts, struct err *err);
    void (*close)(struct bdev *bs);

    /* Create a new image; `opts` holds every create option including
     * "size".  Formats create their protocol file through
     * bdev_create_file() and then open it with bdev_open_file(). */
    int (*create)(const char *filename, struct kvlist *opts, struct err *err);

    int (*read)(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                struct err *err);
    int (*write)(struct bdev *bs, uint64_t off, uint64_t len,
                 const void *buf, struct err *err);
    int (*write_zeroes)(struct bdev *bs, uint64_t off, uint64_t len,
                        unsigned flags, struct err *err);
    int (*write_compressed)(struct bdev *bs, uint64_t off, uint64_t len,
                            const void *buf, struct err *err);
    /* Optional split of write_compressed, so that compression runs in
     * parallel outside the node lock: compress_cluster encodes the
     * cluster at the start of `buf` (`len` bytes, less only for the
     * image's last cluster) into `out` without touching any state (it
     * is called without the lock, from several threads) and returns the
     * compressed length, -ENOSPC when it does not shrink, or another
     * negative errno; write_compressed_data then stores those bytes for
     * the cluster at `off` (called with the lock). */
    long (*compress_cluster)(struct bdev *bs, const void *buf, uint64_t len,
                             void *out, size_t cap);
    int (*write_compressed_data)(struct bdev *bs, uint64_t off,
                                 const void *cdata, uint64_t clen,
                                 struct err *err);
    int (*discard)(struct bdev *bs, uint64_t off, uint64_t len,
                   struct err *err);
    int (*flush)(struct bdev *bs, struct err *err);
    /* Protocols: copy a range from `src` to `dst`, both nodes of this
     * driver, without the data passing through the caller (io.c has
     * checked ranges and writability).  Any error makes the caller fall
     * back to reading and writing. */
    int (*copy_range)(struct bdev *src, uint64_t soff, struct bdev *dst,
                      uint64_t doff, uint64_t len, struct err *err);
    /* Formats: write [doff, doff+len) of this node with [soff, soff+len)
     * of `src`, copied by bdev_copy_range() into the host ranges the
     * write maps to (io.c has checked ranges and writability, and that
     * the source maps onto file nodes).  On failure nothing new stays
     * allocated, and the caller falls back to reading and writing. */
    int (*copy_range_to)(struct bdev *dst, uint64_t doff, struct bdev *src,
                         uint64_t soff, uint64_t len, struct err *err);

    /* Status of a prefix of [off, off+len) in this node only. */
    int (*block_status)(struct bdev *bs, uint64_t off, uint64_t len,
                        struct bstatus *st, struct err *err);

    int (*truncate)(struct bdev *bs, uint64_t size, bool shrink,
                    enum prealloc prealloc, struct err *err);
    int64_t (*allocated_size)(struct bdev *bs);
    /* May fail with -ENOTSUP after setting format_specific (vmdk with
     * mixed extents: no cluster size, but extents to describe); callers
     * release format_specific whenever it is set. */
    int (*get_info)(struct bdev *bs, struct bdev_info *info, struct err *err);
    int (*change_backing_file)(struct bdev *bs, const char *file,
                               const char *fmt, struct err *err);

    int (*check)(struct bdev *bs, struct check_result *res, unsigned fix,
                 struct err *err);
    /* Persistent dirty bitmaps (see bdev_bitmap_apply). */
    int (*bitmap_apply)(struct bdev *bs, const struct bitmap_action *acts,
                        int n, int *failed, struct err *err);
    /* Unallocate everything so reads go to the backing file (commit). */
    int (*make_empty)(struct bdev *bs, struct err *err);
    /* `in` may be NULL (measure --size); `size` is the virtual size. */
    int (*measure)(struct kvlist *opts, struct bdev *in, uint64_t size,
                   struct measure_info *out, struct err *err);
    int (*amend)(struct bdev *bs, struct kvlist *opts, bool force,
                 progress_fn progress, void *opaque, struct err *err);

    int (*snapshot_list)(struct bdev *bs, struct snapshot_info **list,
                         int *count, struct err *err);
    int (*snapshot_create)(struct bdev *bs, const struct snapshot_info *sn,
                           struct err *err);
    int (*snapshot_apply)(struct bdev *bs, const char *id_or_name,
                          struct err *err);
    int (*snapshot_delete)(struct bdev *bs, const char *id, const char *name,
                           struct err *err);
    /* Make reads see a snapshot (read-only), for -l. */
    int (*snapshot_load)(struct bdev *bs, const char *id, const char *name,
                         struct err *err);
};

/* For drivers. */

/* Create the protocol-level file for a new image (honours the protocol
 * create options "preallocation", "nocow", "extent_size_hint" found in
 * `opts`; size 0 unless the format wants otherwise). */
int bdev_create_file(const char *filename, struct kvlist *opts, struct err *err);
/* The same with the file's size given apart from `opts` (whose "size" is
 * the image's virtual size). */
int bdev_create_file_size(const char *filename, struct kvlist *opts,
                          uint64_t size, struct err *err);

/* Open a protocol node on `filename` for a driver's own use (a freshly
 * created image, a vmdk extent, a qcow2 data_file).  `flags` BDEV_O_*. */
struct bdev *bdev_open_file(const char *filename, int flags, struct err *err);
/* The same for a file that belongs to the open image `parent` (a vmdk
 * extent, a qcow2 data_file): it inherits the parent's cache mode
 * (O_DIRECT with -t/-T none) and aio mode, as qemu's child nodes do. */
struct bdev *bdev_open_child_file(struct bdev *parent, const char *filename,
                                  int flags, struct err *err);

/* Read from the backing chain, zero-filling where there is no backing
 * image or it is shorter than the range. */
int bdev_read_backing(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                      struct err *err);

/* Resolve a backing name stored in `bs` relative to its directory;
 * caller frees. */
char *bdev_resolve_backing(const struct bdev *bs, const char *name);

/* For images that name their parent several ways (VHD/VHDX parent
 * locators): set bs->backing_file to the first of `names` (n >= 1) that
 * exists once resolved, else to names[0] so that the error names it; the
 * chosen string moves into `bs` (its slot becomes NULL).  backing_fmt is
 * set to `fmt`. */
int bdev_choose_backing(struct bdev *bs, char **names, int n, const char *fmt,
                        struct err *err);

/* Protocol node size (file length), or negative errno. */
int64_t bdev_file_length(struct bdev *file);

void snapshot_info_free(struct snapshot_info *list, int count);

#endif
