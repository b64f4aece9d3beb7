/* bdev: the block layer's front door, and the only block header that cli/
 * and tool/ include.
 *
 * An image is a tree of nodes: a format node (qcow2, vmdk, raw, ...) over a
 * protocol node (file, ...), optionally with a backing image below it.  All
 * offsets and lengths are bytes.  Every call that can fail returns 0 or a
 * negative errno and fills `err`. */
#ifndef QIMG_BLOCK_BDEV_H
#define QIMG_BLOCK_BDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/err.h"
#include "util/kvopts.h"

struct driver;
struct json_object;

enum cache_mode {
    CACHE_WRITEBACK,
    CACHE_NONE,          /* O_DIRECT */
    CACHE_WRITETHROUGH,  /* flush after every write */
    CACHE_DIRECTSYNC,    /* O_DIRECT + flush after every write */
    CACHE_UNSAFE,        /* flushes are ignored */
};

/* Parse a -t/-T value; -EINVAL with "Invalid cache option: X" otherwise. */
int cache_mode_parse(const char *s, enum cache_mode *out, struct err *err);

/* Open flags. */
#define BDEV_O_RDWR        0x0001  /* open for writing (takes write locks) */
#define BDEV_O_NO_BACKING  0x0002  /* do not open the backing chain */
#define BDEV_O_SHARE       0x0004  /* -U: share everything, lock nothing */
#define BDEV_O_NO_LOCK     0x0008  /* never take locks (internal temp opens) */
#define BDEV_O_PROTOCOL    0x0010  /* open only a protocol node */
#define BDEV_O_NO_IO       0x0020  /* metadata only (info): skip data checks */
#define BDEV_O_CHECK       0x0040  /* opened for check: tolerate corruption */
#define BDEV_O_UNSAFE_BACKING 0x0080 /* tolerate a missing backing file */
#define BDEV_O_RESIZE      0x0100  /* the caller will resize (takes the lock) */
#define BDEV_O_LOCK_LATER  0x0200  /* internal: a protocol node under a format
                                      gets its locks once the format is known */

struct bdev {
    const struct driver *drv;
    void *priv;                 /* driver state, drv->priv_size bytes */

    char *filename;             /* what the user named (or the protocol path) */
    struct bdev *file;          /* protocol child of a format node */
    struct bdev *backing;       /* opened backing image, or NULL */

    /* Backing link as the image stores it (set by the format's open). */
    char *backing_file;         /* NULL when the image has none */
    char *backing_fmt;          /* NULL when unspecified */
    char *full_backing_filename;/* resolved by the core */

    uint64_t size;              /* virtual size */
    uint32_t align;             /* request alignment for read/write (>= 1) */
    int flags;                  /* BDEV_O_* */
    enum cache_mode cache;
    char *aio;                  /* aio mode (-i/-n) that the file nodes of
                                   this tree and its backing chain use
                                   unless their options name one; NULL */
    bool probed_raw;            /* raw was guessed: protect block 0 */
    bool read_only;

    int lock_fd;                /* protocol fd holding QEMU-style locks,
                                   or -1 */
    pthread_rwlock_t lock;      /* taken around calls into drivers that are
                                   not DRV_THREAD_SAFE: shared for reads
                                   and block status when the driver sets
                                   DRV_PARALLEL_READ, else exclusive */
    struct kvlist opts;         /* options still addressed to this node */
};

/* How to open an image.  Zero-initialise and fill what you need. */
struct bdev_open_args {
    const char *fmt;            /* format name, or NULL to probe */
    int flags;                  /* BDEV_O_* */
    enum cache_mode cache;
    struct kvlist *opts;        /* extra options: driver-level keys plus
                                   "file." and "backing." nested keys */
    const char *aio;            /* default aio mode of every file node,
                                   backing chain included (qemu-img's -i,
                                   -n): "threads", "native", "io_uring";
                                   a node's own "aio" option wins */
    bool quiet_probe;           /* do not warn when raw is guessed */
};

/* Open `filename` ("json:{...}" accepted).  Prints nothing; the raw-probing
 * warning is returned through *warning (caller frees) when non-NULL. */
struct bdev *bdev_open(const char *filename, const struct bdev_open_args *a,
                       char **warning, struct err *err);

/* Open from a complete option list (--image-opts): "driver", "file.*",
 * "backing.*", ... */
struct bdev *bdev_open_opts(struct kvlist *opts, const struct bdev_open_args *a,
                            char **warning, struct err *err);

/* Close an image and its backing chain; NULL is accepted. */
void bdev_close(struct bdev *bs);

/* Data path.  Ranges past the end of the image fail with -EIO except where
 * noted; unaligned requests are handled here. */
int bdev_pread(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
               struct err *err);
int bdev_pwrite(struct bdev *bs, uint64_t off, uint64_t len, const void *buf,
                struct err *err);

#define BDEV_ZERO_MAY_UNMAP   0x1   /* may deallocate instead of writing */
#define BDEV_ZERO_NO_FALLBACK 0x2   /* fail with -ENOTSUP rather than write
                                       explicit zeros */
int bdev_pwrite_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                       unsigned flags, struct err *err);
/* One whole cluster (or the tail of the image), compressed when the format
 * supports it; -ENOTSUP otherwise. */
int bdev_pwrite_compressed(struct bdev *bs, uint64_t off, uint64_t len,
                           const void *buf, struct err *err);
int bdev_discard(struct bdev *bs, uint64_t off, uint64_t len, struct err *err);
/* Copy offloading: copy [soff, soff+len) of `src` to `doff` in `dst`
 * inside the kernel (copy_file_range), where `dst` maps linearly onto a
 * file protocol node (the file protocol itself, or raw over it) and
 * `src` does too or stores the range as plain data (e.g. uncompressed,
 * unencrypted qcow2 clusters).  -ENOTSUP
 * where the nodes cannot offload, or the kernel's refusal (-EXDEV,
 * -EOPNOTSUPP, ...): the caller then copies the data itself. */
int bdev_copy_range(struct bdev *src, uint64_t soff, struct bdev *dst,
                    uint64_t doff, uint64_t len, struct err *err);
int bdev_flush(struct bdev *bs, struct err *err);

enum prealloc { PREALLOC_OFF, PREALLOC_METADATA, PREALLOC_FALLOC, PREALLOC_FULL };
int prealloc_parse(const char *s, enum prealloc *out, struct err *err);

/* Resize to `size`.  `shrink` allows making the image smaller. */
int bdev_truncate(struct bdev *bs, uint64_t size, bool shrink,
                  enum prealloc prealloc, struct err *err);

/* Block status of one node. */
#define BS_DATA         0x01  /* reads return data stored in this node's file */
#define BS_ZERO         0x02  /* reads return zeros */
#define BS_ALLOCATED    0x04  /* this layer decides the content (not backing) */
#define BS_OFFSET_VALID 0x08  /* host_off/file are meaningful */
#define BS_RECURSE      0x10  /* ask `file` at host_off for DATA/ZERO detail */
#define BS_EOF          0x20  /* range reaches the end of the image */

struct bstatus {
    uint64_t len;        /* length of the run with this status (> 0) */
    unsigned flags;      /* BS_* */
    uint64_t host_off;   /* offset in `file` when BS_OFFSET_VALID */
    struct bdev *file;   /* node holding the data when BS_OFFSET_VALID */
    int depth;           /* chain depth that answered (0 = this image) */
};

/* Status of [off, off+len) in `bs` alone (len > 0, off < size). */
int bdev_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                      struct bstatus *st, struct err *err);
/* Status through the backing chain down to (but excluding) `base` (NULL =
 * whole chain): unallocated ranges are resolved in lower layers; `depth`
 * tells which layer answered, BS_ALLOCATED means some layer above base
 * allocated it. */
int bdev_block_status_chain(struct bdev *bs, struct bdev *base, uint64_t off,
                            uint64_t len, struct bstatus *st, struct err *err);

/* Bytes the image occupies on the host (qemu-img info's "disk size"),
 * or a negative errno. */
int64_t bdev_allocated_size(struct bdev *bs);

/* The format name ("qcow2") and protocol name ("file") of a node. */
const char *bdev_format_name(const struct bdev *bs);

/* The node holding the data (format over file: the file node). */
struct bdev *bdev_data_node(struct bdev *bs);

/* Create an image.  `opts` holds the create options (-o), including
 * "size", "backing_file", "backing_fmt".  Unknown options fail with
 * qemu-img's message.  Prints nothing. */
int bdev_create(const char *fmt, const char *filename, struct kvlist *opts,
                struct err *err);

/* Rewrite the backing link stored in the image (rebase -u, amend). */
int bdev_change_backing_file(struct bdev *bs, const char *backing_file,
                             const char *backing_fmt, struct err *err);

/* Whether a freshly created image of this format reads as zeros. */
bool bdev_has_zero_init(struct bdev *bs);

/* Human name of a driver lookup failure is qemu-img's "Unknown file format
 * 'x'"; helpers for cli/. */
const struct driver *bdev_find_format(const char *name);
/* Space-separated sorted list of every registered driver name. */
char *bdev_list_formats(void);

/* Create options, format-specific information and snapshot lists, shared
 * by drivers (driver.h) and cli/. */
enum opt_type { OPT_STRING, OPT_BOOL, OPT_NUMBER, OPT_SIZE };

/* One create option.  The array order is the order qemu-img prints the
 * "Formatting ..." line in; `-o help` sorts by name. */
struct opt_desc {
    const char *name;
    enum opt_type type;
    const char *help;
    const char *def;        /* default printed in "Formatting", or NULL */
};

/* Format-level information for `info`. */
struct bdev_info {
    int64_t cluster_size;               /* 0: not shown */
    bool encrypted;
    bool dirty_flag;
    struct json_object *format_specific;/* the "data" object, or NULL */
};

struct snapshot_info {
    char id[128];
    char *name;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;
    bool has_icount;
};

/* The create options of driver `name` (format or protocol), NULL-name
 * terminated; NULL when the driver is unknown or cannot create images. */
const struct opt_desc *bdev_driver_create_opts(const char *name);

/* Format-level information (get_info); -ENOTSUP when the driver has none. */
int bdev_get_info(struct bdev *bs, struct bdev_info *info, struct err *err);

/* Internal snapshots; -ENOTSUP when the format has none.  Free the list
 * with snapshot_info_free(). */
int bdev_snapshot_list(struct bdev *bs, struct snapshot_info **list, int *count,
                       struct err *err);
void snapshot_info_free(struct snapshot_info *list, int count);

/* ---- Maintenance: check, snapshot changes (block/maint.c) ---- */

struct check_result {
    int corruptions, leaks, check_errors;
    int corruptions_fixed, leaks_fixed;
    int64_t image_end_offset;           /* 0 when unknown */
    uint64_t total_clusters, allocated_clusters;
    uint64_t fragmented_clusters, compressed_clusters;
    bool has_bfi;                       /* the cluster counters are set */
};
#define CHECK_FIX_LEAKS  0x1
#define CHECK_FIX_ERRORS 0x2

/* Check (and with CHECK_FIX_* repair) an image.  -ENOTSUP when the format
 * has no check.  Problems found are counted in `res` and described on
 * stderr by the format, as qemu-img prints them; a negative return means
 * the check itself could not complete. */
int bdev_check(struct bdev *bs, struct check_result *res, unsigned fix,
               struct err *err);

/* The stored backing name of `bs` resolved against its directory
 * (caller frees); NULL when it has none. */
char *bdev_backing_path(const struct bdev *bs);

/* Unallocate every cluster of `bs` so that it reads from its backing file
 * again; -ENOTSUP when the format cannot. */
int bdev_make_empty(struct bdev *bs, struct err *err);

/* Persistent dirty bitmap actions (qemu-img bitmap), applied in order. */
enum bitmap_act {
    BITMAP_ACT_ADD, BITMAP_ACT_REMOVE, BITMAP_ACT_CLEAR,
    BITMAP_ACT_ENABLE, BITMAP_ACT_DISABLE, BITMAP_ACT_MERGE,
};
struct bitmap_action {
    enum bitmap_act op;
    const char *name;           /* the bitmap acted on */
    uint64_t granularity;       /* add: bytes, 0 for the default */
    const char *src_name;       /* merge: source bitmap */
    struct bdev *src;           /* merge: image holding it (NULL: same) */
};
/* Apply `n` actions, stopping at the first failure (earlier ones are
 * kept); *failed is the index of the failing action.  -ENOTSUP when the
 * format has no persistent bitmaps. */
int bdev_bitmap_apply(struct bdev *bs, const struct bitmap_action *acts,
                      int n, int *failed, struct err *err);

/* Change options of an existing image (qemu-img amend); -ENOTSUP when the
 * format cannot. */
int bdev_amend(struct bdev *bs, struct kvlist *opts, bool force,
               void (*progress)(void *opaque, uint64_t done, uint64_t total),
               void *opaque, struct err *err);

/* Snapshot changes; -ENOTSUP when the format has no internal snapshots.
 * `sn` gives id (may be empty: the format picks one), name and times. */
int bdev_snapshot_create(struct bdev *bs, const struct snapshot_info *sn,
                         struct err *err);
int bdev_snapshot_apply(struct bdev *bs, const char *id_or_name,
                        struct err *err);
int bdev_snapshot_delete(struct bdev *bs, const char *id, const char *name,
                         struct err *err);

#endif
