/* copy: the engine that convert, dd and (later) commit and rebase share.
 *
 * It copies the concatenation of one or more source images into a target
 * image.  The block status of each source is walked once: ranges that read
 * as zeros are never read (and only zeroed in the target when the target
 * does not already read as zeros), data is read in large requests by a few
 * worker threads.  Each worker does one request from start to end (read,
 * zero scan, optional compression, write) without handing it to another
 * thread; writes reach the target in order unless `out_of_order` is set.
 *
 * cli/ includes this header (it includes only bdev.h). */
#ifndef QIMG_BLOCK_COPY_H
#define QIMG_BLOCK_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "block/bdev.h"

#define COPY_MAX_WORKERS 16

struct copy_params {
    struct bdev **src;          /* sources, concatenated in this order */
    int nsrc;
    struct bdev *dst;           /* opened read-write, at least total size */

    /* Zero detection granularity in bytes (a multiple of 512); 0 writes
     * every byte, leaving the target fully allocated. */
    uint64_t sparse_bytes;
    bool compress;              /* write whole clusters compressed */
    bool dst_is_zero;           /* the target already reads as zeros */
    /* The target has a backing file holding the sources' backing data:
     * ranges that the top source image does not allocate are left alone. */
    bool dst_has_backing;
    /* With dst_has_backing: size of the target's backing image (beyond it
     * zeros need no writing); UINT64_MAX when unknown. */
    uint64_t dst_backing_size;
    bool out_of_order;          /* -W */
    int workers;                /* 1..COPY_MAX_WORKERS in-flight requests */
    uint64_t rate_bytes;        /* bytes per second, 0 = unlimited */
    bool salvage;               /* read errors become zeros, with warnings */
    /* Copy offloading (-C): data ranges are copied by the kernel
     * (bdev_copy_range) as they are, without zero detection; after the
     * first refusal, through memory as usual (as qemu-img does). */
    bool copy_offload;
    /* A window of a single source (dd's skip= and count=): when
     * `length` is non-zero, copy `length` bytes of src[0] from byte
     * `src_offset` (any alignment) to offset 0 of the target; bytes past
     * the end of the source read as zeros. */
    uint64_t src_offset, length;

    /* Progress in percent (0..100) of the data to copy; called with the
     * engine's lock held, from any thread.  May be NULL. */
    void (*progress)(void *opaque, double percent);
    /* Warnings (salvage mode), already formatted; may be NULL. */
    void (*warn)(void *opaque, const char *msg);
    void *opaque;
};

/* Run the copy.  On failure the first error is returned with qemu-img's
 * wording ("error while reading at byte N: ...", "error while writing at
 * byte N: ...", "error while reading block status at offset N: ..."). */
int copy_run(const struct copy_params *p, struct err *err);

/* Total size of the concatenated sources as the target sees it (each
 * source rounded up to 512 bytes). */
uint64_t copy_total_size(struct bdev **src, int nsrc);

/* Cluster size of a format node (0 when the format has none). */
uint64_t bdev_cluster_size(struct bdev *bs);

/* Whether the node's format can write compressed clusters. */
bool bdev_can_compress(struct bdev *bs);
bool bdev_format_can_compress(const char *fmt);

/* Block status of one layer as QEMU's generic layer completes it: DATA or
 * ZERO imply BS_ALLOCATED; a format with backing support reads zeros
 * where it has no backing data; RECURSE is resolved against the protocol
 * node; BS_EOF when the run reaches the end of the image. */
int bdev_status_layer(struct bdev *bs, uint64_t off, uint64_t len,
                      struct bstatus *st, struct err *err);
/* Status through the whole backing chain (qemu's block_status_above with
 * no base): BS_ALLOCATED when some layer allocates the range; zeros past
 * the end of a shorter backing image count as allocated by it. */
int bdev_status_above(struct bdev *bs, uint64_t off, uint64_t len,
                      struct bstatus *st, struct err *err);
/* One `qemu-img map` entry: walks down the chain until a layer reports
 * DATA or ZERO; st->depth is that layer (or the last one, with flags 0,
 * when none does). */
int bdev_map_status(struct bdev *bs, uint64_t off, uint64_t len,
                    struct bstatus *st, struct err *err);

/* Persistent dirty bitmaps: whether the format stores them, and how many
 * the image holds. */
bool bdev_supports_bitmaps(struct bdev *bs);
int bdev_bitmap_count(struct bdev *bs);

/* qemu-img measure: the size an image of format `fmt` with create options
 * `opts` needs to hold `in` (or, when `in` is NULL, an empty image of
 * `size` bytes).  "Block driver 'x' does not support size measurement"
 * when the format cannot tell. */
struct bdev_measure {
    uint64_t required, fully_allocated, bitmaps;
    bool has_bitmaps;
};
int bdev_measure(const char *fmt, struct kvlist *opts, struct bdev *in,
                 uint64_t size, struct bdev_measure *out, struct err *err);
/* Whether format `fmt` can create images. */
bool bdev_format_can_create(const char *fmt);

/* Make `bs` (opened read-only) read the internal snapshot given by id
 * and/or name (-l); with only `id_or_name`, try it as an id, then as a
 * name.  qemu-img's errors ("Can't find snapshot", "Block format 'raw'
 * used by device '' does not support temporarily loading internal
 * snapshots"). */
int bdev_snapshot_load(struct bdev *bs, const char *id, const char *name,
                       struct err *err);
int bdev_snapshot_load_id_or_name(struct bdev *bs, const char *id_or_name,
                                  struct err *err);

/* Whether format `fmt` has the create option `opt`; every key of `opts`
 * is valid for `fmt` (or its protocol) else qemu-img's "Invalid parameter
 * 'x'" error. */
bool bdev_format_has_create_opt(const char *fmt, const char *opt);
int bdev_check_create_opts(const char *fmt, const struct kvlist *opts,
                           struct err *err);

#endif
