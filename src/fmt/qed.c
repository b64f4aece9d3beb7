/* qed: QEMU Enhanced Disk (specs/qed_spec.txt).
 *
 * Supported: reading and writing with a two-level table (L1 -> L2 -> data
 * clusters), zero clusters, backing files (with the raw no-probe flag),
 * the need-check flag (set while allocating without a backing file,
 * cleared on a clean close; an image left with it set is checked and
 * repaired when opened for writing), check with repair, growing the
 * virtual size (shrinking is refused, as QEMU does), rewriting the backing
 * link.  Every table and cluster offset is validated against the file size
 * before use. */
#include "block/driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/table-map.h"
#include "util/align.h"
#include "util/endian.h"

#define QED_MAGIC            0x00444551u     /* "QED\0" little-endian */
#define QED_HEADER_BYTES     64
#define QED_F_BACKING_FILE   UINT64_C(0x01)
#define QED_F_NEED_CHECK     UINT64_C(0x02)
#define QED_F_BACKING_NO_PROBE UINT64_C(0x04)
#define QED_FEATURE_MASK     (QED_F_BACKING_FILE | QED_F_NEED_CHECK | \
                              QED_F_BACKING_NO_PROBE)
#define QED_MIN_CLUSTER      (1u << 12)
#define QED_MAX_CLUSTER      (1u << 26)
#define QED_DEFAULT_CLUSTER  (64u * 1024)
#define QED_MIN_TABLE        1u
#define QED_MAX_TABLE        16u
#define QED_DEFAULT_TABLE    4u
#define QED_ZERO_CLUSTER     1ull

struct qed_header {
    uint32_t cluster_size, table_size, header_size;
    uint64_t features, compat_features, autoclear_features;
    uint64_t l1_offset, image_size;
    uint32_t backing_off, backing_len;
};

struct qed {
    struct qed_header h;
    uint64_t file_size;     /* end of the last whole cluster */
    uint64_t entries;       /* offsets per table */
    uint64_t table_bytes;
    uint64_t *l1;           /* host order */
    struct tmap_cache l2_cache;
};

static uint64_t qed_max_image_size(uint32_t cluster, uint32_t table)
{
    uint64_t n = (uint64_t)table * cluster / 8;
    return n * n * cluster;
}

static bool cluster_size_valid(uint32_t c)
{
    return c >= QED_MIN_CLUSTER && c <= QED_MAX_CLUSTER && is_pow2(c);
}

static bool table_size_valid(uint32_t t)
{
    return t >= QED_MIN_TABLE && t <= QED_MAX_TABLE && is_pow2(t);
}

static bool image_size_valid(uint64_t size, uint32_t cluster, uint32_t table)
{
    return size % 512 == 0 && size <= qed_max_image_size(cluster, table);
}

/* A data cluster offset: aligned, past the header, inside the file. */
static bool cluster_offset_valid(const struct qed *s, uint64_t off)
{
    uint64_t header_end = (uint64_t)s->h.header_size * s->h.cluster_size;
    return !(off & (s->h.cluster_size - 1)) && off >= header_end &&
           off < s->file_size;
}

/* A table offset: its first and last clusters are valid cluster offsets.
 * As in QEMU, a table whose last cluster is its first (table_size 1) is
 * refused too, so such images open nowhere. */
static bool table_offset_valid(const struct qed *s, uint64_t off)
{
    uint64_t end;
    if (add_overflow(off, (uint64_t)(s->h.table_size - 1) * s->h.cluster_size,
                     &end) || end <= off)
        return false;
    return cluster_offset_valid(s, off) && cluster_offset_valid(s, end);
}

static int qed_probe(struct bdev *file, const uint8_t *buf, size_t len,
                     const char *filename)
{
    (void)file;
    (void)filename;
    if (len < QED_HEADER_BYTES)
        return 0;
    return ld_le32(buf) == QED_MAGIC ? 100 : 0;
}

static void header_decode(struct qed_header *h, const uint8_t *b)
{
    h->cluster_size = ld_le32(b + 4);
    h->table_size = ld_le32(b + 8);
    h->header_size = ld_le32(b + 12);
    h->features = ld_le64(b + 16);
    h->compat_features = ld_le64(b + 24);
    h->autoclear_features = ld_le64(b + 32);
    h->l1_offset = ld_le64(b + 40);
    h->image_size = ld_le64(b + 48);
    h->backing_off = ld_le32(b + 56);
    h->backing_len = ld_le32(b + 60);
}

static void header_encode(const struct qed_header *h, uint8_t *b)
{
    st_le32(b, QED_MAGIC);
    st_le32(b + 4, h->cluster_size);
    st_le32(b + 8, h->table_size);
    st_le32(b + 12, h->header_size);
    st_le64(b + 16, h->features);
    st_le64(b + 24, h->compat_features);
    st_le64(b + 32, h->autoclear_features);
    st_le64(b + 40, h->l1_offset);
    st_le64(b + 48, h->image_size);
    st_le32(b + 56, h->backing_off);
    st_le32(b + 60, h->backing_len);
}

static int write_header(struct bdev *bs, struct err *err)
{
    struct qed *s = bs->priv;
    uint8_t b[QED_HEADER_BYTES];
    header_encode(&s->h, b);
    return bdev_pwrite(bs->file, 0, sizeof(b), b, err);
}

static int read_table(struct bdev *bs, uint64_t off, uint64_t *t,
                      struct err *err)
{
    struct qed *s = bs->priv;
    int r = bdev_pread(bs->file, off, s->table_bytes, t, err);
    if (r < 0)
        return r;
    for (uint64_t i = 0; i < s->entries; i++)
        t[i] = ld_le64(&t[i]);
    return 0;
}

/* Write entries [first, first+n) of a table (host order) at `table_off`,
 * widened to whole 512-byte sectors. */
static int write_table_part(struct bdev *bs, uint64_t table_off,
                            const uint64_t *t, uint64_t first, uint64_t n,
                            struct err *err)
{
    struct qed *s = bs->priv;
    uint64_t start = align_down(first, 64);
    uint64_t end = min_u64(align_up(first + n, 64), s->entries);
    uint8_t *buf = malloc((end - start) * 8);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    for (uint64_t i = start; i < end; i++)
        st_le64(buf + (i - start) * 8, t[i]);
    int r = bdev_pwrite(bs->file, table_off + start * 8, (end - start) * 8,
                        buf, err);
    free(buf);
    return r;
}

/* The L2 table at `off` (validated by the caller), through the cache. */
static int get_l2(struct bdev *bs, uint64_t off, uint64_t **out,
                  struct err *err)
{
    struct qed *s = bs->priv;
    void *t = NULL;
    int r = tmap_cache_get(&s->l2_cache, bs->file, off, &t, err);
    *out = t;
    return r;
}

static int read_backing_name(struct bdev *bs, struct err *err)
{
    struct qed *s = bs->priv;
    uint64_t header_bytes = (uint64_t)s->h.cluster_size * s->h.header_size;
    if ((uint64_t)s->h.backing_off + s->h.backing_len > header_bytes ||
        !range_within(s->h.backing_off, s->h.backing_len, bs->file->size))
        return err_set(err, -EINVAL, "QED backing filename offset is invalid");
    if (s->h.backing_len > 4095)
        return err_set(err, -EINVAL, "Failed to read backing filename");
    char *name = calloc(1, s->h.backing_len + 1);
    if (!name)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = 0;
    if (s->h.backing_len)
        r = bdev_pread(bs->file, s->h.backing_off, s->h.backing_len, name, err);
    if (r < 0) {
        free(name);
        err_clear(err);
        return err_set(err, r, "Failed to read backing filename");
    }
    free(bs->backing_file);
    bs->backing_file = name;
    if (s->h.features & QED_F_BACKING_NO_PROBE) {
        free(bs->backing_fmt);
        bs->backing_fmt = strdup("raw");
    }
    return 0;
}

static int qed_do_check(struct bdev *bs, struct check_result *res, bool fix,
                        struct err *err);

static int qed_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct qed *s = bs->priv;
    struct bdev *file = bs->file;
    uint8_t b[QED_HEADER_BYTES];
    int r;

    (void)opts;
    memset(b, 0, sizeof(b));
    if (file->size && (r = bdev_pread(file, 0, min_u64(sizeof(b), file->size),
                                      b, err)) < 0) {
        err_clear(err);
        return err_set(err, r, "Failed to read QED header");
    }
    header_decode(&s->h, b);
    if (ld_le32(b) != QED_MAGIC)
        return err_set(err, -EINVAL, "Image not in QED format");
    if (s->h.features & ~QED_FEATURE_MASK)
        return err_set(err, -ENOTSUP, "Unsupported QED features: %" PRIx64,
                       s->h.features & ~QED_FEATURE_MASK);
    if (!cluster_size_valid(s->h.cluster_size))
        return err_set(err, -EINVAL, "QED cluster size is invalid");
    s->file_size = align_down(file->size, s->h.cluster_size);
    if (!table_size_valid(s->h.table_size))
        return err_set(err, -EINVAL, "QED table size is invalid");
    if (!image_size_valid(s->h.image_size, s->h.cluster_size, s->h.table_size))
        return err_set(err, -EINVAL, "QED image size is invalid");
    if (!table_offset_valid(s, s->h.l1_offset))
        return err_set(err, -EINVAL, "QED table offset is invalid");
    s->table_bytes = (uint64_t)s->h.cluster_size * s->h.table_size;
    s->entries = s->table_bytes / 8;
    tmap_cache_init(&s->l2_cache, s->entries, TMAP_LE64);
    if (s->h.header_size > UINT32_MAX / s->h.cluster_size)
        return err_set(err, -EINVAL, "QED header size is too large");
    if (s->h.features & QED_F_BACKING_FILE) {
        r = read_backing_name(bs, err);
        if (r < 0)
            return r;
    }
    if (s->h.autoclear_features && (bs->flags & BDEV_O_RDWR)) {
        s->h.autoclear_features = 0;
        r = write_header(bs, err);
        if (r >= 0)
            r = bdev_flush(file, err);
        if (r < 0) {
            err_clear(err);
            return err_set(err, r, "Failed to update header");
        }
    }
    s->l1 = malloc(s->table_bytes);
    if (!s->l1)
        return err_set(err, -ENOMEM, "Out of memory");
    r = read_table(bs, s->h.l1_offset, s->l1, err);
    if (r < 0) {
        err_clear(err);
        r = err_set(err, r, "Failed to read L1 table");
        goto fail;
    }
    bs->size = s->h.image_size;
    bs->align = 1;
    /* An image left dirty is repaired before it is written to again. */
    if (!(bs->flags & BDEV_O_CHECK) && (s->h.features & QED_F_NEED_CHECK) &&
        (bs->flags & BDEV_O_RDWR)) {
        struct check_result res;
        memset(&res, 0, sizeof(res));
        r = qed_do_check(bs, &res, true, err);
        if (r < 0 || res.corruptions || res.check_errors) {
            err_clear(err);
            r = err_set(err, r < 0 ? r : -EINVAL, "Image corrupted");
            goto fail;
        }
    }
    return 0;
fail:
    tmap_cache_drop(&s->l2_cache);
    free(s->l1);
    s->l1 = NULL;
    return r;
}

static void qed_close(struct bdev *bs)
{
    struct qed *s = bs->priv;
    struct err err = ERR_INIT;
    /* A clean close leaves no need-check flag behind. */
    if ((bs->flags & BDEV_O_RDWR) && s->l1 &&
        (s->h.features & QED_F_NEED_CHECK)) {
        if (bdev_flush(bs->file, &err) >= 0) {
            s->h.features &= ~QED_F_NEED_CHECK;
            write_header(bs, &err);
            bdev_flush(bs->file, &err);
        }
    }
    tmap_cache_drop(&s->l2_cache);
    free(s->l1);
    s->l1 = NULL;
}

/* Where guest offset `off` lives.  Returns the cluster entry (0
 * unallocated, 1 zero, else a validated data cluster offset) and in *run
 * how many bytes from `off` (capped at `len`) share that kind and are
 * contiguous in the file. */
static int lookup(struct bdev *bs, uint64_t off, uint64_t len,
                  uint64_t *entry, uint64_t *run, struct err *err)
{
    struct qed *s = bs->priv;
    uint32_t cbits = (uint32_t)__builtin_ctz(s->h.cluster_size);
    uint64_t l2_span = s->entries << cbits;
    uint64_t l1_idx = off / l2_span;
    uint64_t l2_idx = (off % l2_span) >> cbits;
    uint64_t in_cluster = off & (s->h.cluster_size - 1);
    uint64_t max = min_u64(len, l2_span - off % l2_span);
    uint64_t l2_off = s->l1[l1_idx];
    uint64_t *l2;
    int r;

    if (l2_off == 0) {
        *entry = 0;
        *run = max;
        return 0;
    }
    if (!table_offset_valid(s, l2_off))
        return err_set(err, -EINVAL, "QED L2 table offset 0x%" PRIx64
                       " is invalid", l2_off);
    r = get_l2(bs, l2_off, &l2, err);
    if (r < 0)
        return r;
    uint64_t e = l2[l2_idx];
    if (e > QED_ZERO_CLUSTER && !cluster_offset_valid(s, e))
        return err_set(err, -EINVAL, "QED cluster offset 0x%" PRIx64
                       " is invalid", e);
    uint64_t n = s->h.cluster_size - in_cluster;
    for (uint64_t i = l2_idx + 1; n < max && i < s->entries; i++) {
        uint64_t next = l2[i];
        if (e <= QED_ZERO_CLUSTER ? next != e
            : next != e + ((i - l2_idx) << cbits))
            break;
        if (next > QED_ZERO_CLUSTER && !cluster_offset_valid(s, next))
            break;
        n += s->h.cluster_size;
    }
    *entry = e;
    *run = min_u64(n, max);
    return 0;
}

static int qed_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                    struct err *err)
{
    struct qed *s = bs->priv;
    uint8_t *p = buf;
    while (len) {
        uint64_t e, n;
        int r = lookup(bs, off, len, &e, &n, err);
        if (r < 0)
            return r;
        if (e == 0) {
            r = bdev_read_backing(bs, off, n, p, err);
        } else if (e == QED_ZERO_CLUSTER) {
            memset(p, 0, n);
        } else {
            uint64_t host = e + (off & (s->h.cluster_size - 1));
            /* A valid cluster offset lies below the file's end, but its
             * last cluster may be cut short; the missing tail reads as
             * zeros. */
            uint64_t avail = host < bs->file->size ?
                             min_u64(n, bs->file->size - host) : 0;
            r = avail ? bdev_pread(bs->file, host, avail, p, err) : 0;
            if (avail < n)
                memset(p + avail, 0, n - avail);
        }
        if (r < 0)
            return r;
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

/* Set the need-check flag before the first allocation of a session when
 * there is no backing file (with one, a flush before each table update
 * keeps the image consistent instead). */
static int mark_dirty(struct bdev *bs, struct err *err)
{
    struct qed *s = bs->priv;
    if (bs->backing || (s->h.features & QED_F_NEED_CHECK))
        return 0;
    s->h.features |= QED_F_NEED_CHECK;
    int r = write_header(bs, err);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    return r;
}

static uint64_t alloc_clusters(struct qed *s, uint64_t n)
{
    uint64_t off = s->file_size;
    s->file_size += n * s->h.cluster_size;
    return off;
}

/* Point L2 entries [guest off, +n clusters) at `first` (a cluster offset,
 * advancing per cluster, or 0/1 repeated), allocating the L2 table when
 * needed.  `off` is cluster-aligned and the range stays in one table. */
static int set_l2_entries(struct bdev *bs, uint64_t off, uint64_t nclusters,
                          uint64_t first, struct err *err)
{
    struct qed *s = bs->priv;
    uint32_t cbits = (uint32_t)__builtin_ctz(s->h.cluster_size);
    uint64_t l2_span = s->entries << cbits;
    uint64_t l1_idx = off / l2_span;
    uint64_t l2_idx = (off % l2_span) >> cbits;
    uint64_t l2_off = s->l1[l1_idx];
    uint64_t *l2;
    int r;

    if (bs->backing) {
        r = bdev_flush(bs->file, err);  /* data before the table update */
        if (r < 0)
            return r;
    }
    if (l2_off == 0) {
        uint64_t *t = calloc(1, s->table_bytes);
        if (!t)
            return err_set(err, -ENOMEM, "Out of memory");
        for (uint64_t i = 0; i < nclusters; i++)
            t[l2_idx + i] = first > QED_ZERO_CLUSTER ?
                            first + (i << cbits) : first;
        l2_off = alloc_clusters(s, s->h.table_size);
        r = tmap_grow_file(bs->file, l2_off + s->table_bytes, err);
        if (r >= 0)
            r = write_table_part(bs, l2_off, t, 0, s->entries, err);
        free(t);
        if (r >= 0 && bs->backing)
            r = bdev_flush(bs->file, err);
        if (r < 0)
            return r;
        s->l1[l1_idx] = l2_off;
        return write_table_part(bs, s->h.l1_offset, s->l1, l1_idx, 1, err);
    }
    r = get_l2(bs, l2_off, &l2, err);
    if (r < 0)
        return r;
    for (uint64_t i = 0; i < nclusters; i++)
        l2[l2_idx + i] = first > QED_ZERO_CLUSTER ? first + (i << cbits)
                                                  : first;
    return write_table_part(bs, l2_off, l2, l2_idx, nclusters, err);
}

/* Allocate fresh clusters for [off, off+len) (inside one L2 table, all
 * unallocated or zero), filling the untouched head and tail of the first
 * and last clusters from the backing file (or zeros), then link them. */
static int write_alloc(struct bdev *bs, uint64_t off, uint64_t len,
                       const uint8_t *data, uint64_t old_entry,
                       struct err *err)
{
    struct qed *s = bs->priv;
    uint64_t cs = s->h.cluster_size;
    uint64_t start = align_down(off, cs);
    uint64_t end = align_up(off + len, cs);
    uint64_t n = (end - start) / cs;
    int r = mark_dirty(bs, err);
    if (r < 0)
        return r;
    uint8_t *buf = malloc(end - start);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    uint64_t head = off - start, tail = end - (off + len);
    if (old_entry == QED_ZERO_CLUSTER) {
        memset(buf, 0, head);
        memset(buf + head + len, 0, tail);
    } else {
        r = bdev_read_backing(bs, start, head, buf, err);
        if (r >= 0)
            r = bdev_read_backing(bs, off + len, tail, buf + head + len, err);
    }
    memcpy(buf + head, data, len);
    uint64_t host = alloc_clusters(s, n);
    if (r >= 0)
        r = tmap_grow_file(bs->file, host + (end - start), err);
    if (r >= 0)
        r = bdev_pwrite(bs->file, host, end - start, buf, err);
    free(buf);
    if (r < 0)
        return r;
    return set_l2_entries(bs, start, n, host, err);
}

static int qed_write(struct bdev *bs, uint64_t off, uint64_t len,
                     const void *buf, struct err *err)
{
    struct qed *s = bs->priv;
    const uint8_t *p = buf;
    while (len) {
        uint64_t e, n;
        int r = lookup(bs, off, len, &e, &n, err);
        if (r < 0)
            return r;
        if (e > QED_ZERO_CLUSTER) {
            uint64_t host = e + (off & (s->h.cluster_size - 1));
            r = tmap_grow_file(bs->file, host + n, err);
            if (r >= 0)
                r = bdev_pwrite(bs->file, host, n, p, err);
        } else {
            r = write_alloc(bs, off, n, p, e, err);
        }
        if (r < 0)
            return r;
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

/* Whole clusters become zero clusters (data clusters are zeroed in place so
 * none leaks); partial clusters get explicit zeros. */
static int qed_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                            unsigned flags, struct err *err)
{
    struct qed *s = bs->priv;
    uint64_t cs = s->h.cluster_size;
    uint8_t *zero = NULL;
    int r = 0;
    (void)flags;
    while (len && r >= 0) {
        uint64_t e, n;
        r = lookup(bs, off, len, &e, &n, err);
        if (r < 0)
            break;
        bool whole = is_aligned(off, cs) && n >= cs;
        if (whole)
            n = align_down(n, cs);
        else
            n = min_u64(n, align_up(off + 1, cs) - off);
        if (e == QED_ZERO_CLUSTER || (e == 0 && !bs->backing)) {
            /* already reads as zeros */
        } else if (whole && e == 0) {
            r = mark_dirty(bs, err);
            if (r >= 0)
                r = set_l2_entries(bs, off, n / cs, QED_ZERO_CLUSTER, err);
        } else {
            if (!zero && !(zero = calloc(1, cs))) {
                r = err_set(err, -ENOMEM, "Out of memory");
                break;
            }
            for (uint64_t d = 0; r >= 0 && d < n; d += cs)
                r = qed_write(bs, off + d, min_u64(cs, n - d), zero, err);
        }
        off += n;
        len -= n;
    }
    free(zero);
    return r;
}

static int qed_flush(struct bdev *bs, struct err *err)
{
    return bdev_flush(bs->file, err);
}

static int qed_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                            struct bstatus *st, struct err *err)
{
    struct qed *s = bs->priv;
    uint64_t e, n;
    int r = lookup(bs, off, len, &e, &n, err);
    if (r < 0)
        return r;
    st->len = n;
    if (e == 0) {
        st->flags = 0;
    } else if (e == QED_ZERO_CLUSTER) {
        st->flags = BS_ZERO | BS_ALLOCATED;
    } else {
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID;
        st->host_off = e + (off & (s->h.cluster_size - 1));
        st->file = bs->file;
    }
    return 0;
}

static int qed_get_info(struct bdev *bs, struct bdev_info *info,
                        struct err *err)
{
    struct qed *s = bs->priv;
    (void)err;
    info->cluster_size = s->h.cluster_size;
    /* qemu-img reports false even for an image left with need-check set:
     * QEMU drops the flag from its in-memory header when the open
     * finishes (its idle timer path), before info asks. */
    info->dirty_flag = false;
    return 0;
}

/* Check, as the spec's consistency rules say: every referenced cluster
 * lies inside the file and is used once, unreferenced clusters past the
 * header are leaks.  With `fix`, invalid entries are cleared (as QEMU
 * does) and a clean image loses its need-check flag. */
struct qed_check {
    struct check_result *res;
    uint8_t *used;          /* bitmap over file clusters */
    uint64_t nclusters;
    bool fix;
};

static bool mark_used(struct qed *s, struct qed_check *c, uint64_t off,
                      uint64_t n)
{
    uint64_t cl = off / s->h.cluster_size;
    unsigned dup = 0;
    for (uint64_t i = 0; i < n; i++, cl++) {
        if (cl >= c->nclusters)
            continue;
        if (c->used[cl / 8] & (1u << (cl % 8)))
            dup++;
        c->used[cl / 8] |= (uint8_t)(1u << (cl % 8));
    }
    c->res->corruptions += (int)dup;
    return dup == 0;
}

static unsigned check_l2(struct qed *s, struct qed_check *c, uint64_t *l2)
{
    unsigned invalid = 0;
    uint64_t last = 0;
    for (uint64_t i = 0; i < s->entries; i++) {
        uint64_t e = l2[i];
        if (e <= QED_ZERO_CLUSTER)
            continue;
        c->res->allocated_clusters++;
        if (last && last + s->h.cluster_size != e)
            c->res->fragmented_clusters++;
        last = e;
        if (!cluster_offset_valid(s, e)) {
            if (c->fix) {
                l2[i] = 0;
                c->res->corruptions_fixed++;
            } else {
                c->res->corruptions++;
            }
            invalid++;
            continue;
        }
        mark_used(s, c, e, 1);
    }
    return invalid;
}

static int qed_do_check(struct bdev *bs, struct check_result *res, bool fix,
                        struct err *err)
{
    struct qed *s = bs->priv;
    struct qed_check c = { .res = res, .fix = fix };
    unsigned invalid_l1 = 0;
    int r, last_error = 0;

    c.nclusters = s->file_size / s->h.cluster_size;
    c.used = calloc(1, c.nclusters / 8 + 1);
    if (!c.used)
        return err_set(err, -ENOMEM, "Out of memory");
    uint64_t *l2 = malloc(s->table_bytes);
    if (!l2) {
        free(c.used);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    res->has_bfi = true;
    res->total_clusters = div_round_up(s->h.image_size, s->h.cluster_size);
    mark_used(s, &c, s->h.l1_offset, s->h.table_size);
    for (uint64_t i = 0; i < s->entries; i++) {
        uint64_t off = s->l1[i];
        if (!off)
            continue;
        if (!table_offset_valid(s, off)) {
            if (fix) {
                s->l1[i] = 0;
                res->corruptions_fixed++;
            } else {
                res->corruptions++;
            }
            invalid_l1++;
            continue;
        }
        if (!mark_used(s, &c, off, s->h.table_size))
            continue;
        struct err e2 = ERR_INIT;
        r = read_table(bs, off, l2, &e2);
        if (r < 0) {
            res->check_errors++;
            last_error = r;
            continue;
        }
        if (check_l2(s, &c, l2) && fix) {
            r = write_table_part(bs, off, l2, 0, s->entries, &e2);
            if (r < 0) {
                res->check_errors++;
                last_error = r;
            }
        }
    }
    if (invalid_l1 && fix) {
        r = write_table_part(bs, s->h.l1_offset, s->l1, 0, s->entries, err);
        if (r < 0) {
            res->check_errors++;
            last_error = r;
        }
    }
    tmap_cache_drop(&s->l2_cache);
    if (!last_error) {
        for (uint64_t i = s->h.header_size; i < c.nclusters; i++)
            if (!(c.used[i / 8] & (1u << (i % 8))))
                res->leaks++;
        if (fix && !res->corruptions && !res->check_errors &&
            (s->h.features & QED_F_NEED_CHECK)) {
            struct err e2 = ERR_INIT;
            if (bdev_flush(bs->file, &e2) >= 0) {
                s->h.features &= ~QED_F_NEED_CHECK;
                write_header(bs, &e2);
            }
        }
    }
    free(l2);
    free(c.used);
    if (last_error)
        return err_set(err, last_error, "Could not read a QED L2 table");
    return 0;
}

static int qed_check(struct bdev *bs, struct check_result *res, unsigned fix,
                     struct err *err)
{
    return qed_do_check(bs, res, fix != 0, err);
}

static int qed_truncate(struct bdev *bs, uint64_t size, bool shrink,
                        enum prealloc prealloc, struct err *err)
{
    struct qed *s = bs->priv;
    static const char *names[] = { "off", "metadata", "falloc", "full" };
    (void)shrink;
    if (prealloc != PREALLOC_OFF)
        return err_set(err, -ENOTSUP, "Unsupported preallocation mode '%s'",
                       names[prealloc]);
    if (!image_size_valid(size, s->h.cluster_size, s->h.table_size))
        return err_set(err, -EINVAL, "Invalid image size specified");
    if (size < s->h.image_size)
        return err_set(err, -ENOTSUP,
                       "Shrinking images is currently not supported");
    uint64_t old = s->h.image_size;
    s->h.image_size = size;
    int r = write_header(bs, err);
    if (r < 0) {
        s->h.image_size = old;
        err_clear(err);
        return err_set_errno(err, r, "Failed to update the image size");
    }
    bs->size = size;
    return 0;
}

static int qed_change_backing_file(struct bdev *bs, const char *file,
                                   const char *fmt, struct err *err)
{
    struct qed *s = bs->priv;
    struct qed_header h = s->h;
    size_t len = file ? strlen(file) : 0;
    uint64_t header_bytes = (uint64_t)h.header_size * h.cluster_size;

    if (file && h.compat_features)
        return err_set(err, -ENOTSUP, "Operation not supported");
    h.features &= ~(QED_F_BACKING_FILE | QED_F_BACKING_NO_PROBE);
    if (file && !*file)
        file = NULL;
    len = file ? strlen(file) : 0;
    /* The name always follows the header, as QEMU writes it. */
    h.backing_off = QED_HEADER_BYTES;
    h.backing_len = (uint32_t)len;
    if (file) {
        h.features |= QED_F_BACKING_FILE;
        if (fmt && !strcmp(fmt, "raw"))
            h.features |= QED_F_BACKING_NO_PROBE;
    }
    if (QED_HEADER_BYTES + (uint64_t)len > header_bytes)
        return err_set(err, -ENOSPC, "No space left on device");
    uint8_t *buf = calloc(1, QED_HEADER_BYTES + len);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    header_encode(&h, buf);
    memcpy(buf + QED_HEADER_BYTES, file ? file : "", len);
    int r = bdev_pwrite(bs->file, 0, QED_HEADER_BYTES + len, buf, err);
    free(buf);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    if (r < 0)
        return r;
    s->h = h;
    return 0;
}

static int qed_create(const char *filename, struct kvlist *opts,
                      struct err *err)
{
    uint64_t size, cluster, table;
    int r;
    if ((r = kv_get_size(opts, "size", 0, &size, err)) < 0 ||
        (r = kv_get_size(opts, "cluster_size", QED_DEFAULT_CLUSTER, &cluster,
                         err)) < 0 ||
        (r = kv_get_size(opts, "table_size", QED_DEFAULT_TABLE, &table,
                         err)) < 0)
        return r;
    const char *backing = kv_get(opts, "backing_file");
    const char *backing_fmt = kv_get(opts, "backing_fmt");
    if (cluster > UINT32_MAX || !cluster_size_valid((uint32_t)cluster))
        return err_set(err, -EINVAL, "QED cluster size must be within range "
                       "[%u, %u] and power of 2", QED_MIN_CLUSTER,
                       QED_MAX_CLUSTER);
    if (table > UINT32_MAX || !table_size_valid((uint32_t)table))
        return err_set(err, -EINVAL, "QED table size must be within range "
                       "[%u, %u] and power of 2", QED_MIN_TABLE, QED_MAX_TABLE);
    if (!image_size_valid(size, (uint32_t)cluster, (uint32_t)table))
        return err_set(err, -EINVAL, "QED image size must be a non-zero "
                       "multiple of cluster size and less than %" PRIu64
                       " bytes", qed_max_image_size((uint32_t)cluster,
                                                    (uint32_t)table));
    size_t blen = backing ? strlen(backing) : 0;
    if (QED_HEADER_BYTES + blen > cluster)
        return err_set(err, -EINVAL, "Backing file name too long");

    struct qed_header h = {
        .cluster_size = (uint32_t)cluster, .table_size = (uint32_t)table,
        .header_size = 1, .l1_offset = cluster, .image_size = size,
    };
    if (backing) {
        h.features |= QED_F_BACKING_FILE;
        h.backing_off = QED_HEADER_BYTES;
        h.backing_len = (uint32_t)blen;
        if (backing_fmt && !strcmp(backing_fmt, "raw"))
            h.features |= QED_F_BACKING_NO_PROBE;
    }
    uint8_t *hdr = calloc(1, QED_HEADER_BYTES + blen);
    uint8_t *l1 = calloc(1, cluster * table);
    struct bdev *file = NULL;
    if (!hdr || !l1) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    header_encode(&h, hdr);
    memcpy(hdr + QED_HEADER_BYTES, backing ? backing : "", blen);
    r = tmap_create_empty_file(filename, opts, err);
    if (r < 0)
        goto out;
    file = bdev_open_file(filename, BDEV_O_RDWR | BDEV_O_NO_LOCK, err);
    if (!file) {
        r = err->code ? err->code : -EIO;
        goto out;
    }
    /* The file length tells what is allocated: start from empty. */
    r = bdev_truncate(file, 0, true, PREALLOC_OFF, err);
    if (r >= 0)
        r = bdev_truncate(file, cluster + cluster * table, false, PREALLOC_OFF,
                          err);
    if (r >= 0)
        r = bdev_pwrite(file, 0, QED_HEADER_BYTES + blen, hdr, err);
    if (r >= 0)
        r = bdev_pwrite(file, cluster, cluster * table, l1, err);
    if (r >= 0)
        r = bdev_flush(file, err);
out:
    bdev_close(file);
    free(hdr);
    free(l1);
    return r < 0 ? r : 0;
}

static const struct opt_desc qed_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "backing_file", OPT_STRING, "File name of a base image", NULL },
    { "backing_fmt", OPT_STRING, "Image format of the base image", NULL },
    { "cluster_size", OPT_SIZE, "Cluster size (in bytes)", "65536" },
    { "table_size", OPT_SIZE, "L1/L2 table size (in clusters)", NULL },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_qed = {
    .name = "qed",
    .kind = DRV_FORMAT,
    .caps = DRV_BACKING | DRV_ZERO_INIT,
    .priv_size = sizeof(struct qed),
    .create_opts = qed_create_opts,
    .probe = qed_probe,
    .open = qed_open,
    .close = qed_close,
    .create = qed_create,
    .read = qed_read,
    .write = qed_write,
    .write_zeroes = qed_write_zeroes,
    .flush = qed_flush,
    .block_status = qed_block_status,
    .truncate = qed_truncate,
    .get_info = qed_get_info,
    .change_backing_file = qed_change_backing_file,
    .check = qed_check,
};
