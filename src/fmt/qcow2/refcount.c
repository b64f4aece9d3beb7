/* qcow2 refcounts: the two-level refcount structure (spec "Host cluster
 * management"), cluster allocation that reuses freed clusters, byte
 * allocation for compressed clusters, and the metadata overlap check.
 *
 * New refcount blocks describe themselves: the block for table index i is
 * placed at the first cluster of the range it covers, which is free by
 * definition when the block does not exist yet.  The refcount table grows
 * by building the larger table in memory, allocating its clusters (which
 * may create blocks recorded only in memory), writing it, then switching
 * the header to it and freeing the old one; a crash before the switch
 * leaves only leaked clusters. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

uint64_t qcow2_rb_get(const uint8_t *b, uint64_t idx, uint32_t order)
{
    switch (order) {
    case 0: case 1: case 2: {
        unsigned bits = 1u << order;
        uint64_t bit = idx * bits;
        return (b[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    case 3: return b[idx];
    case 4: return ld_be16(b + idx * 2);
    case 5: return ld_be32(b + idx * 4);
    default: return ld_be64(b + idx * 8);
    }
}

void qcow2_rb_set(uint8_t *b, uint64_t idx, uint32_t order, uint64_t v)
{
    switch (order) {
    case 0: case 1: case 2: {
        unsigned bits = 1u << order;
        uint64_t bit = idx * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        b[bit / 8] = (uint8_t)((b[bit / 8] & ~mask) |
                               ((v << (bit % 8)) & mask));
        break;
    }
    case 3: b[idx] = (uint8_t)v; break;
    case 4: st_be16(b + idx * 2, (uint16_t)v); break;
    case 5: st_be32(b + idx * 4, (uint32_t)v); break;
    default: st_be64(b + idx * 8, v); break;
    }
}

int qcow2_meta_write(struct bdev *bs, unsigned ignore, uint64_t off,
                     uint64_t len, const void *buf, struct err *err)
{
    int r = qcow2_check_overlap(bs, ignore, off, len, err);
    if (r < 0)
        return r;
    return bdev_pwrite(bs->file, off, len, buf, err);
}

/* Zero offsets mean "absent" for every table checked here. */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return b && alen && blen && a < b + blen && b < a + alen;
}

int qcow2_check_overlap(struct bdev *bs, unsigned ignore, uint64_t off,
                        uint64_t len, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    const char *what = NULL;

    if (s->releasing)
        return 0;
    if (s->corrupt)
        return err_set(err, -EIO, "Image is corrupt; writes are refused");
    if (!(ignore & QCOW2_OL_HEADER) && off < cs && len)
        what = "qcow2_header";
    else if (!(ignore & QCOW2_OL_L1) &&
             overlaps(off, len, s->l1_offset, (uint64_t)s->l1_size * 8))
        what = "active L1 table";
    else if (!(ignore & QCOW2_OL_RT) &&
             overlaps(off, len, s->rt_offset, s->rt_disk_size * 8))
        what = "refcount table";
    else if (!(ignore & QCOW2_OL_SNAP) && s->h.nb_snapshots &&
             overlaps(off, len, s->h.snapshots_offset, cs))
        what = "snapshot table";
    else if (!(ignore & QCOW2_OL_BITMAPS) && s->x.has_bitmaps &&
             overlaps(off, len, s->x.bitmap_dir_offset,
                      align_up(s->x.bitmap_dir_size, cs)))
        what = "bitmap directory";
    if (!what && !(ignore & QCOW2_OL_RB)) {
        for (uint64_t i = 0; i < s->rt_size && !what; i++)
            if (overlaps(off, len, s->rt[i] & QCOW2_OFFSET_MASK, cs))
                what = "refcount block";
    }
    if (!what && !(ignore & QCOW2_OL_L2) && !s->snapshot_loaded) {
        for (uint32_t i = 0; i < s->l1_size && !what; i++)
            if (overlaps(off, len, s->l1[i] & QCOW2_OFFSET_MASK, cs))
                what = "active L2 table";
    }
    if (!what && !(ignore & QCOW2_OL_SNAP)) {
        for (int i = 0; i < s->nb_snapshots && !what; i++)
            if (overlaps(off, len, s->snapshots[i].l1_table_offset,
                         (uint64_t)s->snapshots[i].l1_size * 8))
                what = "inactive L1 table";
    }
    if (!what)
        return 0;
    qcow2_mark_corrupt(bs, "Preventing invalid write on metadata "
                       "(overlaps with %s)", what);
    return err_set(err, -EIO, "Input/output error");
}

int qcow2_refcount_load(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t bytes = (uint64_t)s->h.refcount_table_clusters * s->cluster_size;
    s->rt_offset = s->h.refcount_table_offset;
    s->rt_size = s->rt_disk_size = bytes / 8;
    s->rt = calloc(s->rt_size ? s->rt_size : 1, 8);
    if (!s->rt)
        return err_set(err, -ENOMEM, "Could not allocate refcount table");
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!raw)
        return err_set(err, -ENOMEM, "Could not allocate refcount table");
    int r = bytes ? bdev_pread(bs->file, s->rt_offset, bytes, raw, err) : 0;
    for (uint64_t i = 0; r >= 0 && i < s->rt_size; i++)
        s->rt[i] = ld_be64(raw + i * 8);
    free(raw);
    return r;
}

/* The refcount block for table index `i`, or 0.  Validates the entry. */
static int rb_offset(struct bdev *bs, uint64_t i, uint64_t *off,
                     struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    *off = 0;
    if (i >= s->rt_size)
        return 0;
    uint64_t e = s->rt[i];
    if (e & QCOW2_RT_RESERVED)
        return err_set(err, -EIO, "Reftable entry %" PRIu64 " has reserved "
                       "bits set", i);
    e &= ~QCOW2_RT_RESERVED;
    if (e && (e % s->cluster_size)) {
        qcow2_mark_corrupt(bs, "Refblock offset %#" PRIx64 " unaligned "
                           "(reftable index: %#" PRIx64 ")", e, i);
        return err_set(err, -EIO, "Refblock offset %#" PRIx64 " unaligned "
                       "(reftable index: %#" PRIx64 ")", e, i);
    }
    *off = e;
    return 0;
}

int qcow2_get_refcount(struct bdev *bs, uint64_t cluster, uint64_t *rc,
                       struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t off;
    uint8_t *blk;
    int r = rb_offset(bs, cluster / s->rb_entries, &off, err);
    *rc = 0;
    if (r < 0 || !off)
        return r;
    r = qcow2_cache_get(bs, &s->rb_cache, off, &blk, err);
    if (r < 0)
        return r;
    *rc = qcow2_rb_get(blk, cluster % s->rb_entries, s->refcount_order);
    return 0;
}

static int set_rt_entry(struct bdev *bs, uint64_t i, uint64_t val,
                        struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    s->rt[i] = val;
    if (i >= s->rt_disk_size)
        return 0;   /* part of a table being built: written as a whole */
    uint8_t be[8];
    st_be64(be, val);
    return qcow2_meta_write(bs, QCOW2_OL_RT, s->rt_offset + i * 8, 8, be, err);
}

static int grow_table(struct bdev *bs, uint64_t need_idx, struct err *err);
static int grow_table(struct bdev *bs, uint64_t need_idx, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t old_size = s->rt_size, old_disk = s->rt_disk_size;
    uint64_t old_off = s->rt_offset;
    uint64_t new_size = max_u64(need_idx + 2, old_size + old_size / 2 + 1);
    int r;

    if (s->rt_disk_size != s->rt_size)
        return err_set(err, -EFBIG, "qcow2: refcount table growth failed");
    new_size = align_up(new_size, per_cluster);
    if (new_size * 8 > QCOW2_MAX_REFTABLE_BYTES)
        return err_set(err, -EFBIG, "qcow2: refcount table would exceed "
                       "its maximum size");
    uint64_t *nt = realloc(s->rt, new_size * 8);
    if (!nt)
        return err_set(err, -ENOMEM, "Out of memory");
    memset(nt + old_size, 0, (new_size - old_size) * 8);
    s->rt = nt;
    s->rt_size = new_size;

    uint64_t nclusters = new_size / per_cluster, toff;
    r = qcow2_alloc_clusters(bs, nclusters, &toff, err);
    if (r < 0)
        goto undo;
    uint8_t *raw = calloc(nclusters, s->cluster_size);
    if (!raw) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto undo;
    }
    for (uint64_t i = 0; i < new_size; i++)
        st_be64(raw + i * 8, s->rt[i]);
    r = qcow2_meta_write(bs, QCOW2_OL_RT, toff, nclusters * s->cluster_size,
                         raw, err);
    free(raw);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        goto undo;
    uint8_t hdr[12];
    st_be64(hdr, toff);
    st_be32(hdr + 8, (uint32_t)nclusters);
    r = qcow2_meta_write(bs, QCOW2_OL_HEADER, 48, 12, hdr, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        goto undo;
    s->h.refcount_table_offset = toff;
    s->h.refcount_table_clusters = (uint32_t)nclusters;
    s->rt_offset = toff;
    s->rt_disk_size = new_size;
    return qcow2_free_clusters(bs, old_off, old_disk * 8 / s->cluster_size,
                               err);
undo:
    /* Blocks recorded only in the new table stay leaked on disk. */
    s->rt_size = old_size;
    return r;
}

int qcow2_update_refcount(struct bdev *bs, uint64_t cluster, uint64_t n,
                          int64_t delta, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int r;
    if (!n)
        return 0;
    while (n) {
        uint64_t idx = cluster % s->rb_entries;
        uint64_t cnt = min_u64(n, s->rb_entries - idx), off;
        uint8_t *blk;
        r = rb_offset(bs, cluster / s->rb_entries, &off, err);
        if (r < 0)
            return r;
        if (!off)
            return err_set(err, -EIO, "qcow2: no refcount block for cluster "
                           "%#" PRIx64, cluster << s->cluster_bits);
        r = qcow2_cache_get(bs, &s->rb_cache, off, &blk, err);
        if (r < 0)
            return r;
        for (uint64_t k = 0; k < cnt; k++) {
            uint64_t v = qcow2_rb_get(blk, idx + k, s->refcount_order);
            if (delta < 0 && v < (uint64_t)-delta)
                return err_set(err, -EIO, "qcow2: refcount of cluster %#"
                               PRIx64 " would drop below zero",
                               (cluster + k) * s->cluster_size);
            if (delta > 0 && s->refcount_max - v < (uint64_t)delta)
                return err_set(err, -ERANGE, "qcow2: refcount overflow");
            v += (uint64_t)delta;
            qcow2_rb_set(blk, idx + k, s->refcount_order, v);
            if (!v) {
                uint64_t hoff = (cluster + k) * s->cluster_size;
                qcow2_cache_drop_range(&s->l2_cache, hoff, s->cluster_size);
                if (hoff != off)
                    qcow2_cache_drop(&s->rb_cache, hoff);
                if (cluster + k < s->free_hint)
                    s->free_hint = cluster + k;
                if (s->free_byte_offset &&
                    s->free_byte_offset / s->cluster_size == cluster + k)
                    s->free_byte_offset = 0;
            }
        }
        uint64_t bits = 1ull << s->refcount_order;
        uint64_t b0 = idx * bits / 8, b1 = div_round_up((idx + cnt) * bits, 8);
        r = qcow2_cache_write(bs, &s->rb_cache, off, b0, b1 - b0, err);
        if (r < 0)
            return r;
        cluster += cnt;
        n -= cnt;
    }
    return 0;
}

/* Table indices in [first, last] without a refcount block. */
static int count_missing(struct bdev *bs, uint64_t first, uint64_t last,
                         uint64_t *missing, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    *missing = 0;
    for (uint64_t i = first / s->rb_entries; i <= last / s->rb_entries; i++) {
        uint64_t off;
        int r = rb_offset(bs, i, &off, err);
        if (r < 0)
            return r;
        if (!off)
            (*missing)++;
    }
    return 0;
}

/* First run of `n` clusters with refcount 0, from the free hint. */
static int find_free(struct bdev *bs, uint64_t n, uint64_t *start,
                     struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t limit = QCOW2_OFFSET_MASK >> s->cluster_bits;
    uint64_t c = s->free_hint, run = 0, st = c;
    bool moved = false;
    while (run < n) {
        uint64_t rc;
        if (c >= limit)
            return err_set(err, -EFBIG, "qcow2: image file too large");
        /* Whole uncovered ranges are free: skip them in one step. */
        uint64_t idx = c / s->rb_entries;
        if (c % s->rb_entries == 0 && (idx >= s->rt_size || !s->rt[idx])) {
            run += s->rb_entries;
            c += s->rb_entries;
            moved = true;
            continue;
        }
        int r = qcow2_get_refcount(bs, c, &rc, err);
        if (r < 0)
            return r;
        if (rc) {
            run = 0;
            st = c + 1;
            if (!moved)
                s->free_hint = st;
        } else {
            moved = true;
            run++;
        }
        c++;
    }
    *start = st;
    return 0;
}

/* Create the refcount blocks missing for [x, x+span) at clusters
 * x+n, x+n+1, ... (inside the free run), each block counting every new
 * block that falls into its range. */
static int create_blocks(struct bdev *bs, uint64_t x, uint64_t n,
                         uint64_t span, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t first = x / s->rb_entries, last = (x + span - 1) / s->rb_entries;
    uint64_t idxs[64], locs[64], m = 0;
    uint8_t *blk = malloc(s->cluster_size);
    int r = 0;
    if (!blk)
        return err_set(err, -ENOMEM, "Out of memory");
    for (uint64_t i = first; i <= last && m < 64; i++) {
        uint64_t off;
        r = rb_offset(bs, i, &off, err);
        if (r < 0)
            goto out;
        if (!off) {
            idxs[m] = i;
            locs[m] = x + n + m;
            m++;
        }
    }
    for (uint64_t k = 0; k < m; k++) {
        memset(blk, 0, s->cluster_size);
        for (uint64_t j = 0; j < m; j++)
            if (locs[j] / s->rb_entries == idxs[k])
                qcow2_rb_set(blk, locs[j] % s->rb_entries, s->refcount_order, 1);
        r = qcow2_meta_write(bs, QCOW2_OL_RB, locs[k] << s->cluster_bits,
                             s->cluster_size, blk, err);
        if (r < 0)
            goto out;
    }
    r = qcow2_barrier(bs, err);
    for (uint64_t k = 0; r >= 0 && k < m; k++)
        r = set_rt_entry(bs, idxs[k], locs[k] << s->cluster_bits, err);
    /* New blocks that live in ranges with older blocks. */
    for (uint64_t j = 0; r >= 0 && j < m; j++) {
        bool self = false;
        for (uint64_t k = 0; k < m; k++)
            self |= locs[j] / s->rb_entries == idxs[k];
        if (!self)
            r = qcow2_update_refcount(bs, locs[j], 1, 1, err);
    }
out:
    free(blk);
    return r;
}

int qcow2_alloc_clusters(struct bdev *bs, uint64_t n, uint64_t *out,
                         struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t k = 0, x = 0, missing = 0;
    int r;
    if (n == 0 || n > s->rb_entries * 32)
        return err_set(err, -EINVAL, "qcow2: bad allocation size");
    for (int tries = 0; tries < 1000; tries++) {
        r = find_free(bs, n + k, &x, err);
        if (r < 0)
            return r;
        r = count_missing(bs, x, x + n + k - 1, &missing, err);
        if (r < 0)
            return r;
        if (missing > k) {
            k = missing;
            continue;
        }
        uint64_t last_idx = (x + n + k - 1) / s->rb_entries;
        if (last_idx >= s->rt_size) {
            r = grow_table(bs, last_idx, err);
            if (r < 0)
                return r;
            continue;
        }
        if (missing) {
            r = create_blocks(bs, x, n, n + k, err);
            if (r < 0)
                return r;
        }
        r = qcow2_update_refcount(bs, x, n, 1, err);
        if (r < 0)
            return r;
        if (x == s->free_hint)
            s->free_hint = x + n;
        *out = x << s->cluster_bits;
        return 0;
    }
    return err_set(err, -EIO, "qcow2: cluster allocation failed");
}

int qcow2_alloc_bytes(struct bdev *bs, uint64_t len, uint64_t *out,
                      struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size, off = s->free_byte_offset, rc = 0;
    int r;
    if (off) {
        r = qcow2_get_refcount(bs, off / cs, &rc, err);
        if (r < 0)
            return r;
        if (rc == 0 || rc == s->refcount_max)
            off = 0;
    }
    if (off && cs - off % cs >= len) {
        r = qcow2_update_refcount(bs, off / cs, 1, 1, err);
    } else {
        uint64_t nc;
        r = qcow2_alloc_clusters(bs, 1, &nc, err);
        if (r < 0)
            return r;
        if (off && nc == align_up(off, cs))
            r = qcow2_update_refcount(bs, off / cs, 1, 1, err);
        else
            off = nc;
    }
    if (r < 0)
        return r;
    *out = off;
    s->free_byte_offset = (off + len) % cs ? off + len : 0;
    return 0;
}

int qcow2_free_clusters(struct bdev *bs, uint64_t off, uint64_t n,
                        struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    return qcow2_update_refcount(bs, off >> s->cluster_bits, n, -1, err);
}

void qcow2_release_unused(struct bdev *bs, uint64_t off, uint64_t n)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct err e2 = ERR_INIT;
    /* Only the refcounts just raised are written back, so this may pass
     * the overlap check even on an image just marked corrupt. */
    s->releasing = true;
    qcow2_free_clusters(bs, off, n, &e2);
    s->releasing = false;
}

int qcow2_free_l2_entry(struct bdev *bs, uint64_t entry, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        uint64_t off = entry & s->coffset_mask & ~511ull;
        uint64_t size = (((entry >> s->csize_shift) & s->csize_mask) + 1) * 512;
        uint64_t first = off >> s->cluster_bits;
        uint64_t last = (off + size - 1) >> s->cluster_bits;
        return qcow2_update_refcount(bs, first, last - first + 1, -1, err);
    }
    uint64_t off = entry & QCOW2_OFFSET_MASK;
    if (!off || s->data_file)
        return 0;
    if (off % s->cluster_size) {
        /* Left allocated (a leak) rather than freeing a neighbour. */
        qcow2_note_corrupt(bs, "Cannot free unaligned cluster %#" PRIx64, off);
        return 0;
    }
    return qcow2_free_clusters(bs, off, 1, err);
}

int qcow2_detect_meta_prealloc(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int64_t alloc = bdev_allocated_size(bs->file);
    if (alloc < 0)
        return 0;
    uint64_t real = (uint64_t)alloc / s->cluster_size;
    uint64_t threshold = max_u64(real * 10 / 9, real + 2);
    uint64_t end = div_round_up(bs->file->size, s->cluster_size), used = 0;
    for (uint64_t c = 0; c < end && used < threshold; c++) {
        uint64_t rc;
        int r = qcow2_get_refcount(bs, c, &rc, err);
        if (r < 0)
            return r;
        used += rc != 0;
    }
    return used >= threshold;
}
