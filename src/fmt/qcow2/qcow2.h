/* qcow2: private header of the qcow2 format driver (src/fmt/qcow2/).
 *
 * Spec: docs "qcow2.txt" (QEMU image format, versions 2 and 3).  Supported:
 * every header field and extension, cluster sizes 512 B..2 MiB,
 * refcount_bits 1..64, extended L2 entries, zlib and zstd compression,
 * external data files (raw or not), internal snapshots (read), bitmaps
 * (directory kept intact, names shown by info).  Encryption is detected
 * and refused until the crypto layer exists.
 *
 * Sections below follow the files: header.c, cache.c, refcount.c,
 * cluster.c, compress.c, snapshot.c, create.c, info.c. */
#ifndef QIMG_FMT_QCOW2_H
#define QIMG_FMT_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/driver.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024
#define QCOW2_MAX_SNAPSHOT_TABLE_BYTES (64u << 20)
#define QCOW2_MAX_BACKING_NAME 1023

/* Header extension types. */
#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURES     0x6803f857u
#define QCOW2_EXT_BITMAPS      0x23852875u
#define QCOW2_EXT_CRYPTO       0x0537be77u
#define QCOW2_EXT_DATA_FILE    0x44415441u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN       0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS     (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW    (1ull << 1)
#define QCOW2_AUTOCLEAR_KNOWN       0x3ull

/* Table entry bits. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       1ull
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED      0x7f000000000001ffull
#define QCOW2_L2_RESERVED      0x3f000000000001feull
#define QCOW2_RT_RESERVED      0x1ffull

#define QCOW2_CRYPT_NONE 0
#define QCOW2_CRYPT_AES  1
#define QCOW2_CRYPT_LUKS 2

#define QCOW2_COMPRESS_ZLIB 0
#define QCOW2_COMPRESS_ZSTD 1

/* ---- header.c ---- */

struct qcow2_ext {            /* an extension kept verbatim */
    uint32_t type;
    uint32_t len;
    uint8_t *data;
};

struct qcow2_header {
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompat, compat, autoclear;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
    uint8_t extra_fields[256];    /* header bytes 105..header_length kept */
};

struct qcow2_bitmap_info {
    char *name;
    uint32_t flags;
    uint8_t granularity_bits;
};

/* Everything the extension area describes. */
struct qcow2_exts {
    char *backing_fmt;
    char *data_file;
    bool has_crypto;
    uint64_t crypto_offset, crypto_length;
    bool has_bitmaps;
    uint32_t nb_bitmaps;
    uint64_t bitmap_dir_size, bitmap_dir_offset;
    uint8_t *feature_table;       /* raw feature-name table */
    uint32_t feature_table_len;
    struct qcow2_ext *unknown;    /* preserved on rewrite */
    int nb_unknown;
};

/* Decode the fixed header from `buf` (at least 104 bytes, zero-padded past
 * the file end).  Validates the fields that need no file knowledge. */
int qcow2_header_decode(const uint8_t *buf, size_t len, struct qcow2_header *h,
                        struct err *err);
/* Parse the extension area of the first cluster.  `end` is where it must
 * stop (backing file name offset or cluster end). */
int qcow2_exts_decode(const uint8_t *cluster, size_t start, size_t end,
                      uint32_t crypt_method, struct qcow2_exts *x,
                      struct err *err);
void qcow2_exts_free(struct qcow2_exts *x);
/* Encode header + extensions + backing name into one zeroed cluster
 * buffer of `cluster_size` bytes; fills h->backing_file_offset/size. */
int qcow2_header_encode(struct qcow2_header *h, const struct qcow2_exts *x,
                        const char *backing_file, uint8_t *buf,
                        size_t cluster_size, struct err *err);
/* The feature name table qimg writes into new images. */
const uint8_t *qcow2_default_feature_table(uint32_t *len);
/* "Unsupported qcow2 feature(s): ..." from the image's own names. */
void qcow2_report_unknown_incompat(const struct qcow2_exts *x, uint64_t bits,
                                   struct err *err);

/* ---- cache.c ---- */

struct qcow2_cache_entry {
    uint64_t off;       /* 0: free slot */
    uint8_t *data;
    uint64_t lru;
    int next;           /* hash chain */
};

struct qcow2_cache {
    struct qcow2_cache_entry *e;
    int n, used;
    int *buckets;
    unsigned nb_buckets;
    uint64_t tick, clock;
    size_t table_size;
    /* Taken by the read path (reads and block status run in parallel);
     * the L2 cache's lock also guards the decompressed-cluster buffer. */
    pthread_mutex_t lock;
};

struct qcow2_state;

int qcow2_cache_init(struct qcow2_cache *c, int n, size_t table_size);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Table at `off` (read from the file if not cached).  The pointer stays
 * valid until the next cache call. */
int qcow2_cache_get(struct bdev *bs, struct qcow2_cache *c, uint64_t off,
                    uint8_t **table, struct err *err);
/* Slot for a new table at `off`, zero-filled, not read from disk. */
int qcow2_cache_get_empty(struct qcow2_cache *c, uint64_t off,
                          uint8_t **table, struct err *err);
/* Write bytes [start, start+len) of a cached table to disk. */
int qcow2_cache_write(struct bdev *bs, struct qcow2_cache *c, uint64_t off,
                      size_t start, size_t len, struct err *err);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off);
/* Drop every entry within [off, off+len) (all slices of an L2 table). */
void qcow2_cache_drop_range(struct qcow2_cache *c, uint64_t off, uint64_t len);

/* ---- driver state ---- */

struct qcow2_snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id_str, *name;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;
    bool has_disk_size;
    uint64_t icount;
    bool has_icount;
    uint32_t extra_size;
    uint8_t *extra;          /* unknown extra data beyond known fields */
    bool incomplete;         /* v3 entry without the disk size */
    uint32_t extra_dropped;  /* opened for check: extra size found (> 1024) */
};

struct qcow2_state {
    struct qcow2_header h;
    struct qcow2_exts x;
    char *backing_name;

    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint32_t l2_bits;           /* log2(entries per L2 table) */
    uint64_t l2_entries;
    bool ext_l2;
    uint32_t l2_entry_size;     /* 8 or 16 */
    uint64_t l2_slice_size;     /* bytes of an L2 cache entry (a slice) */
    uint64_t l2_slice_entries;  /* L2 entries per slice */
    uint64_t subcluster_size;
    uint32_t csize_shift;       /* compressed descriptor: sector count shift */
    uint64_t csize_mask;
    uint64_t coffset_mask;

    uint64_t *l1;               /* native-order active L1 */
    uint32_t l1_size;
    uint64_t l1_offset;

    uint64_t *rt;               /* refcount table (native order) */
    uint64_t rt_size;           /* entries in memory */
    uint64_t rt_disk_size;      /* entries in the on-disk table */
    uint64_t rt_offset;
    uint32_t refcount_order;
    uint64_t rb_entries;        /* refcounts per block */
    uint64_t refcount_max;

    struct qcow2_cache l2_cache, rb_cache;

    struct qcow2_snapshot *snapshots;
    uint32_t snapshots_overhang;    /* opened for check: entries past 65536 */
    bool snapshots_offset_bad;      /* opened for check: table not loaded */
    int nb_snapshots;

    struct bdev *data_file;     /* external data file, or NULL */
    bool data_raw;

    uint64_t free_hint;         /* first cluster index that may be free */
    uint64_t free_byte_offset;  /* compressed allocation cursor, 0: none */
    bool corrupt;               /* marked corrupt: refuse metadata writes */
    bool signaled;              /* a corruption message was printed */
    bool dead;                  /* marked corrupt here: requests fail */
    bool releasing;             /* qcow2_release_unused() at work */
    bool snapshot_loaded;       /* reads come from a snapshot's L1 */
    uint8_t *cbuf, *cin;        /* last decompressed cluster, its input */
    uint64_t cbuf_entry;
    bool cbuf_valid;
    bool bitmaps_marked;        /* auto bitmaps flagged in use */
    struct qcow2_bm_live *bm_live;  /* bitmaps tracking writes (bitmap.c) */
    int meta_prealloc;          /* 0: not yet known, 1: no, 2: yes */
};

static inline struct qcow2_state *qcow2_st(struct bdev *bs) { return bs->priv; }

/* The node holding guest data (data file or bs->file). */
static inline struct bdev *qcow2_data_node(struct bdev *bs)
{
    struct qcow2_state *s = bs->priv;
    return s->data_file ? s->data_file : bs->file;
}

/* Flush the protocol nodes where ordering matters. */
int qcow2_barrier(struct bdev *bs, struct err *err);
/* Rewrite the header cluster from s->h / s->x (overlap-checked). */
int qcow2_write_header(struct bdev *bs, struct err *err);
/* Report corruption on stderr as qemu does ("qcow2: Marking image as
 * corrupt: <what>; further corruption events will be suppressed", or for
 * an image not opened for writing "qcow2: Image is corrupt: ...; further
 * non-fatal corruption events will be suppressed", once); a writable
 * image gets the corrupt bit and fails every later request.  Returns
 * -EIO. */
int qcow2_mark_corrupt(struct bdev *bs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same report for damage that does not stop the request (the
 * "Image is corrupt: ..." form, no corrupt bit), as for a cluster that
 * cannot be freed. */
int qcow2_note_corrupt(struct bdev *bs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- refcount.c ---- */

/* Metadata kinds for the overlap check. */
#define QCOW2_OL_HEADER   0x01
#define QCOW2_OL_L1       0x02
#define QCOW2_OL_RT       0x04
#define QCOW2_OL_RB       0x08
#define QCOW2_OL_L2       0x10
#define QCOW2_OL_SNAP     0x20
#define QCOW2_OL_BITMAPS  0x40
#define QCOW2_OL_ALL      0x7f

/* Pure refcount-block entry access (refcount_order 0..6). */
uint64_t qcow2_rb_get(const uint8_t *block, uint64_t idx, uint32_t order);
void qcow2_rb_set(uint8_t *block, uint64_t idx, uint32_t order, uint64_t v);

int qcow2_refcount_load(struct bdev *bs, struct err *err);
int qcow2_get_refcount(struct bdev *bs, uint64_t cluster, uint64_t *rc,
                       struct err *err);
/* Add `delta` (+1/-1...) to the refcounts of `n` clusters from `cluster`. */
int qcow2_update_refcount(struct bdev *bs, uint64_t cluster, uint64_t n,
                          int64_t delta, struct err *err);
/* Allocate `n` contiguous host clusters (refcount 1); returns the offset. */
int qcow2_alloc_clusters(struct bdev *bs, uint64_t n, uint64_t *off,
                         struct err *err);
/* Allocate `len` bytes (<= cluster) for compressed data. */
int qcow2_alloc_bytes(struct bdev *bs, uint64_t len, uint64_t *off,
                      struct err *err);
/* Drop one reference on each of `n` clusters at host `off`. */
int qcow2_free_clusters(struct bdev *bs, uint64_t off, uint64_t n,
                        struct err *err);
/* Give back `n` clusters at `off` that an allocation took but a failed
 * write left unreferenced, so that a refused write leaks nothing (also on
 * an image the failure just marked corrupt).  Best effort. */
void qcow2_release_unused(struct bdev *bs, uint64_t off, uint64_t n);
/* Free what an L2 entry references (normal or compressed). */
int qcow2_free_l2_entry(struct bdev *bs, uint64_t entry, struct err *err);
/* Before writing metadata at [off, off+len): fail (and mark the image
 * corrupt) if it overlaps metadata of a kind not in `ignore`. */
int qcow2_check_overlap(struct bdev *bs, unsigned ignore, uint64_t off,
                        uint64_t len, struct err *err);
/* 1 when many more clusters are in use than the file really allocates
 * (preallocation=metadata): block status then asks the file layer where
 * the holes are, as qemu does.  0 otherwise, negative on error. */
int qcow2_detect_meta_prealloc(struct bdev *bs, struct err *err);
/* Write to the metadata area after the overlap check. */
int qcow2_meta_write(struct bdev *bs, unsigned ignore, uint64_t off,
                     uint64_t len, const void *buf, struct err *err);

/* ---- cluster.c ---- */

enum qcow2_ctype {
    QCOW2_C_UNALLOCATED,   /* goes to the backing file */
    QCOW2_C_ZERO_PLAIN,    /* reads as zeros, no host cluster */
    QCOW2_C_ZERO_ALLOC,    /* reads as zeros, host cluster preallocated */
    QCOW2_C_NORMAL,
    QCOW2_C_COMPRESSED,
};

/* Classify a (standard) L2 entry; pure. */
enum qcow2_ctype qcow2_l2_classify(uint64_t entry, bool ext_l2, bool data_file);

enum qcow2_sctype {
    QCOW2_SC_UNALLOCATED,
    QCOW2_SC_ZERO,
    QCOW2_SC_NORMAL,
    QCOW2_SC_COMPRESSED,
    QCOW2_SC_INVALID,
};
/* Classify subcluster `sc` of an (extended) entry; pure. */
enum qcow2_sctype qcow2_subcluster_classify(uint64_t entry, uint64_t bitmap,
                                            unsigned sc, bool ext_l2,
                                            bool data_file);

/* Mapping of the run starting at guest `off`: how many bytes (<= len)
 * share one status, and where the data lives. */
struct qcow2_map {
    enum qcow2_sctype type;
    uint64_t host_off;     /* for NORMAL: host offset of `off` */
    uint64_t l2_entry;     /* for COMPRESSED: the descriptor */
    bool has_host;         /* the entry names a host cluster */
    uint64_t len;
};
int qcow2_map(struct bdev *bs, const uint64_t *l1, uint32_t l1_size,
              uint64_t off, uint64_t len, struct qcow2_map *m,
              struct err *err);

int qcow2_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
               struct err *err);
int qcow2_write(struct bdev *bs, uint64_t off, uint64_t len, const void *buf,
                struct err *err);
/* The write path with the data copied from [soff, soff+len) of `src` by
 * bdev_copy_range() into the host clusters (convert -C): new clusters
 * get their data before the L2 entries point to them, and are released
 * again when the copy fails, so that the caller can retry through
 * memory. */
int qcow2_copy_range_to(struct bdev *bs, uint64_t off, struct bdev *src,
                        uint64_t soff, uint64_t len, struct err *err);
int qcow2_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                       unsigned flags, struct err *err);
int qcow2_discard(struct bdev *bs, uint64_t off, uint64_t len,
                  struct err *err);
/* Compressed writes in two steps: compress_cluster is thread-safe and
 * touches no metadata (the copy engine runs it in parallel, outside the
 * node lock); it returns the compressed length or -ENOSPC when the
 * cluster does not shrink.  write_compressed_data stores compressed bytes
 * for the cluster at `off`. */
long qcow2_compress_cluster(struct bdev *bs, const void *buf, uint64_t len,
                           void *out, size_t cap);
int qcow2_write_compressed_data(struct bdev *bs, uint64_t off,
                                const void *cdata, uint64_t clen,
                                struct err *err);
/* Deallocate whole clusters (entries become unallocated). */
int qcow2_discard_full(struct bdev *bs, uint64_t off, uint64_t len,
                       struct err *err);
int qcow2_write_compressed(struct bdev *bs, uint64_t off, uint64_t len,
                           const void *buf, struct err *err);
int qcow2_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                       struct bstatus *st, struct err *err);
/* Allocate every unallocated cluster of [start, size) (preallocation=
 * metadata and up). */
int qcow2_preallocate(struct bdev *bs, uint64_t start, uint64_t size,
                      struct err *err);
/* Grow a protocol node so that [0, end) can be written. */
int qcow2_ensure_size(struct bdev *node, uint64_t end, struct err *err);
/* Write L1 entries [first, first+n) to disk. */
int qcow2_write_l1(struct bdev *bs, uint32_t first, uint32_t n,
                   struct err *err);

/* ---- compress.c ---- */

/* Decompress exactly `out_len` bytes; trailing input is ignored. */
int qcow2_decompress(int type, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t out_len);
/* Compress; returns the compressed length, or -ENOSPC when the result
 * would not fit in `out_cap` bytes. */
long qcow2_compress(int type, const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t out_cap);

/* ---- snapshot.c ---- */

int qcow2_snapshots_load(struct bdev *bs, struct err *err);
void qcow2_snapshots_free(struct qcow2_state *s);
int qcow2_snapshot_list(struct bdev *bs, struct snapshot_info **list,
                        int *count, struct err *err);
int qcow2_snapshot_load(struct bdev *bs, const char *id, const char *name,
                        struct err *err);

/* ---- create.c ---- */

extern const struct opt_desc qcow2_create_opts[];
int qcow2_create(const char *filename, struct kvlist *opts, struct err *err);
int qcow2_measure(struct kvlist *opts, struct bdev *in, uint64_t size,
                  struct measure_info *out, struct err *err);
/* Size of the refcount metadata for `clusters` clusters; pure. */
uint64_t qcow2_refcount_metadata_size(uint64_t clusters, uint64_t cluster_size,
                                      uint32_t refcount_order, bool generous);
uint64_t qcow2_prealloc_size(uint64_t total, uint64_t cluster_size,
                             uint32_t refcount_order, bool ext_l2);

/* Allocate host space (falloc) or write zeros (full) for the clusters
 * mapped from guest offset `off` to the end. */
int qcow2_prealloc_data(struct bdev *bs, uint64_t off, enum prealloc mode,
                        struct err *err);

/* ---- resize.c ---- */

int qcow2_truncate(struct bdev *bs, uint64_t size, bool shrink,
                   enum prealloc prealloc, struct err *err);

/* ---- info.c ---- */

int qcow2_get_info(struct bdev *bs, struct bdev_info *info, struct err *err);
/* luks-info.c: the "encrypt" object of info for a LUKS-encrypted image,
 * from its LUKS header (qemu-img's keys and order). */
struct json_object;
int qcow2_luks_info(struct bdev *bs, struct json_object **out, struct err *err);
/* Before the first change to guest data: load the bitmaps that track
 * writes ("auto") and flag them in use on disk until they are stored
 * again on close (see bitmap.c). */
int qcow2_bitmaps_mark_in_use(struct bdev *bs, struct err *err);
/* Read the names/flags/granularity of the bitmap directory. */
int qcow2_bitmaps_read(struct bdev *bs, struct qcow2_bitmap_info **list,
                       int *count, struct err *err);

/* ---- snapshot-write.c ---- */

int qcow2_snapshot_create(struct bdev *bs, const struct snapshot_info *sn,
                          struct err *err);
int qcow2_snapshot_apply(struct bdev *bs, const char *id_or_name,
                         struct err *err);
int qcow2_snapshot_delete(struct bdev *bs, const char *id, const char *name,
                          struct err *err);
/* Write the snapshot table again (new clusters, 24 bytes of extra data,
 * disk sizes filled in), as an upgrade to compat=1.1 needs. */
/* `old_trusted`: how many leading entries of the loaded table are sound;
 * only the clusters they span are freed with the old table (-1: all). */
int qcow2_snapshot_table_rewrite(struct bdev *bs, int old_trusted,
                                 struct err *err);

/* ---- amend.c ---- */

int qcow2_amend(struct bdev *bs, struct kvlist *opts, bool force,
                progress_fn progress, void *opaque, struct err *err);

/* ---- bitmap.c ---- */

int qcow2_bitmap_apply(struct bdev *bs, const struct bitmap_action *acts,
                       int n, int *failed, struct err *err);
/* Enabled persistent bitmaps follow guest writes, as in qemu: before the
 * first write they are loaded (live_load, then flagged in use on disk),
 * every written, zero-written or discarded range sets their bits
 * (bitmaps_dirty), and on close live_store writes them anew (data,
 * tables, directory, one header switch, then the old clusters freed),
 * which clears the in-use flag.  Disabled and inconsistent bitmaps are
 * kept as they are. */
int qcow2_bitmaps_live_load(struct bdev *bs, struct err *err);
void qcow2_bitmaps_dirty(struct bdev *bs, uint64_t off, uint64_t len);
int qcow2_bitmaps_live_store(struct bdev *bs, struct err *err);

/* ---- make-empty.c ---- */

/* Unallocate every cluster of the active layer (reads go to the backing
 * file again); crash-safe order, leaks at worst. */
int qcow2_make_empty(struct bdev *bs, struct err *err);

/* ---- check.c ---- */

/* Consistency check and repair (qemu-img check semantics); messages go to
 * stderr as qemu-img prints them. */
int qcow2_check(struct bdev *bs, struct check_result *res, unsigned fix,
                struct err *err);
/* Rewrite the refcount structure with entries of 2^order bits (new blocks
 * and table, one header write switching table and width). */
/* A snapshot's L1 size and offset are usable (its table may still lie
 * past the end of the file). */
int qcow2_snapshot_validate_l1(struct bdev *bs, const struct qcow2_snapshot *sn,
                               struct err *err);
int qcow2_change_refcount_order(struct bdev *bs, uint32_t order,
                                progress_fn progress, void *opaque,
                                struct err *err);

#endif
