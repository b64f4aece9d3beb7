/* qcow2 resize: growing (a larger L1 table when needed, optional
 * preallocation of the new area) and shrinking (clusters past the new end
 * released, L2 tables past it freed, the file cut after the last used
 * cluster).  Images with bitmaps are refused until bitmaps can be resized
 * with them. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

/* Move the L1 table to a new place with `n` entries. */
static int grow_l1(struct bdev *bs, uint32_t n, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t bytes = (uint64_t)n * 8, off;
    uint64_t old_off = s->l1_offset;
    uint64_t old_clusters = div_round_up((uint64_t)s->l1_size * 8, s->cluster_size);
    int r = qcow2_alloc_clusters(bs, div_round_up(bytes, s->cluster_size), &off, err);
    if (r < 0)
        return r;
    uint64_t *l1 = calloc(n, 8);
    uint8_t *raw = calloc(1, bytes);
    if (!l1 || !raw) {
        free(l1);
        free(raw);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    memcpy(l1, s->l1, (size_t)s->l1_size * 8);
    for (uint32_t i = 0; i < n; i++)
        st_be64(raw + (size_t)i * 8, l1[i]);
    r = qcow2_ensure_size(bs->file, off + bytes, err);
    if (r >= 0)
        r = qcow2_meta_write(bs, QCOW2_OL_L1, off, bytes, raw, err);
    free(raw);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0) {
        free(l1);
        return r;
    }
    uint8_t hdr[12];
    st_be32(hdr, n);
    st_be64(hdr + 4, off);
    r = qcow2_meta_write(bs, QCOW2_OL_HEADER, 36, 12, hdr, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0) {
        free(l1);
        return r;
    }
    free(s->l1);
    s->l1 = l1;
    s->l1_size = n;
    s->l1_offset = off;
    s->h.l1_size = n;
    s->h.l1_table_offset = off;
    if (old_off && old_clusters)
        r = qcow2_free_clusters(bs, old_off, old_clusters, err);
    return r;
}

static int write_size(struct bdev *bs, uint64_t size, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t be[8];
    st_be64(be, size);
    int r = qcow2_meta_write(bs, QCOW2_OL_HEADER, 24, 8, be, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r >= 0) {
        s->h.size = size;
        bs->size = size;
    }
    return r;
}

/* Release L2 tables wholly past the end and cut the file after the last
 * cluster still in use. */
static int shrink_tables(struct bdev *bs, uint64_t size, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t per_l1 = s->l2_entries * s->cluster_size;
    uint32_t keep = (uint32_t)div_round_up(size, per_l1);
    int r = 0;
    for (uint32_t i = keep; i < s->l1_size && r >= 0; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
        if (!l2)
            continue;
        s->l1[i] = 0;
        r = qcow2_write_l1(bs, i, 1, err);
        if (r >= 0)
            r = qcow2_barrier(bs, err);
        if (r >= 0)
            r = qcow2_free_clusters(bs, l2, 1, err);
    }
    if (r < 0)
        return r;
    uint64_t last = bs->file->size / s->cluster_size;
    while (last > 0) {
        uint64_t rc;
        r = qcow2_get_refcount(bs, last - 1, &rc, err);
        if (r < 0)
            return r;
        if (rc)
            break;
        last--;
    }
    if (last * s->cluster_size < bs->file->size) {
        r = qcow2_barrier(bs, err);
        if (r >= 0)
            r = bdev_truncate(bs->file, last * s->cluster_size, true,
                              PREALLOC_OFF, err);
    }
    return r;
}

static int zero_grown(struct bdev *bs, uint64_t old, uint64_t size,
                      struct err *err);

int qcow2_truncate(struct bdev *bs, uint64_t size, bool shrink,
                   enum prealloc prealloc, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t old = bs->size, cs = s->cluster_size;
    uint64_t per_l1 = s->l2_entries * cs;
    int r;
    if (s->snapshot_loaded)
        return err_set(err, -EACCES, "Image is read-only");
    if (size % 512)
        return err_set(err, -EINVAL, "The new size must be a multiple of 512");
    if (s->x.has_bitmaps)
        return err_set(err, -ENOTSUP, "Cannot resize a qcow2 image with "
                       "bitmaps yet");
    if (s->h.crypt_method)
        return err_set(err, -ENOTSUP, "qcow2: encrypted images are not "
                       "supported yet");
    if (size == old)
        return 0;
    if (size < old) {
        if (!shrink)
            return err_set(err, -EINVAL, "Use the --shrink option to perform "
                           "a shrink operation.");
        if (prealloc != PREALLOC_OFF)
            return err_set(err, -ENOTSUP, "Preallocation can't be used for "
                           "shrinking an image");
        uint64_t a = align_up(size, cs), b = align_up(old, cs);
        if (a < b) {
            /* Full deallocation: nothing past the end may show through. */
            uint64_t save = bs->size;
            bs->size = b;
            r = qcow2_discard_full(bs, a, b - a, err);
            bs->size = save;
            if (r < 0)
                return r;
        }
        r = write_size(bs, size, err);
        if (r >= 0)
            r = shrink_tables(bs, size, err);
        if (r >= 0 && s->data_file)
            r = bdev_truncate(s->data_file, size, true, PREALLOC_OFF, err);
        return r;
    }
    uint64_t need = div_round_up(size, per_l1);
    if (need * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(err, -EFBIG, "Failed to grow the L1 table: File too large");
    if (need > s->l1_size) {
        r = grow_l1(bs, (uint32_t)need, err);
        if (r < 0)
            return r;
    }
    if (s->data_file) {
        r = qcow2_ensure_size(s->data_file, size, err);
        if (r < 0)
            return r;
    }
    /* Preallocation and zeroing see the new size; the header gets it
     * last. */
    bs->size = size;
    r = 0;
    if (prealloc != PREALLOC_OFF) {
        r = qcow2_preallocate(bs, align_up(old, cs), size, err);
        if (r >= 0 && prealloc != PREALLOC_METADATA)
            r = qcow2_prealloc_data(bs, align_up(old, cs), prealloc, err);
    }
    if (r >= 0)
        r = zero_grown(bs, old, size, err);
    bs->size = old;
    if (r >= 0)
        r = write_size(bs, size, err);
    return r;
}

/* Growing: where a backing file longer than the old size would show
 * through, the new area is zeroed (zero flags from the next subcluster
 * boundary, explicit zeros before it), as qemu does; otherwise the new
 * area is left alone, so bytes a shrink left in the old tail cluster read
 * back as they were, as in qemu-img 7.2.  The size is written only after
 * the zeroing succeeded. */
static int zero_grown(struct bdev *bs, uint64_t old, uint64_t size,
                      struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (!bs->backing || bs->backing->size <= old)
        return 0;
    uint64_t start = align_up(old, s->subcluster_size);
    int r = 0;
    if (size > start) {
        r = qcow2_write_zeroes(bs, start, size - start, 0, err);
        if (r < 0) {
            if (!err->code)
                err_set(err, r, "%s", strerror(-r));
            err_prefix(err, "Failed to zero out new clusters: ");
        }
    }
    if (r >= 0 && start > old) {
        uint64_t len = min_u64(start, size) - old;
        uint8_t *z = calloc(1, len);
        r = z ? qcow2_write(bs, old, len, z, err) :
                err_set(err, -ENOMEM, "Out of memory");
        free(z);
        if (r < 0)
            err_prefix(err, "Failed to zero out the new area: ");
    }
    return r;
}
