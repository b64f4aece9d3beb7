/* vmdk streamOptimized writing, in the layout VMware's tools produce: the
 * header (grain directory "at end"), the descriptor, then every grain
 * zlib-compressed behind a grain marker, in ascending order; at the end a
 * grain table marker and table for each non-empty table, the grain
 * directory marker and directory, the footer marker and footer (a copy of
 * the header that locates the directory), and the end-of-stream marker.
 *
 * Writes must arrive in ascending grain order (as convert issues them); a
 * partly written grain is kept until the next grain starts, and a grain
 * cannot be written twice. */
#include "fmt/vmdk/vmdk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/align.h"
#include "util/endian.h"
#include "util/zero.h"

struct vmdk_stream {
    uint64_t pos;             /* append position */
    int64_t cur;              /* grain being assembled, -1 when none */
    uint8_t *buf;             /* its contents */
    uint32_t **gt;            /* per directory entry, NULL when empty */
    uint8_t header[VMDK_SECTOR];
    bool dirty;
};

void vmdk_stream_free(struct vmdk_extent *e)
{
    struct vmdk_stream *st = e->stream;
    if (!st)
        return;
    if (st->gt)
        for (uint32_t i = 0; i < e->gd_entries; i++)
            free(st->gt[i]);
    free(st->gt);
    free(st->buf);
    free(st);
    e->stream = NULL;
}

int vmdk_stream_begin(struct vmdk_extent *e, struct err *err)
{
    struct vmdk_stream *st = calloc(1, sizeof(*st));
    int r;
    if (!st)
        return err_set(err, -ENOMEM, "Out of memory");
    e->stream = st;
    st->cur = -1;
    st->buf = malloc(e->grain_bytes);
    st->gt = calloc(e->gd_entries ? e->gd_entries : 1, sizeof(*st->gt));
    if (!st->buf || !st->gt)
        return err_set(err, -ENOMEM, "Out of memory");
    r = bdev_pread(e->file, 0, VMDK_SECTOR, st->header, err);
    if (r < 0)
        return r;

    bool empty = true;
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        if (!e->gd[i])
            continue;
        st->gt[i] = malloc(e->gt_bytes);
        if (!st->gt[i])
            return err_set(err, -ENOMEM, "Out of memory");
        for (uint32_t j = 0; j < e->gtes_per_gt; j++) {
            uint64_t host;
            uint64_t off = ((uint64_t)i * e->gtes_per_gt + j) * e->grain_bytes;
            r = vmdk_sparse_lookup(e, off, &host, err);
            if (r < 0)
                return r;
            st->gt[i][j] = (uint32_t)(host / VMDK_SECTOR);
            if (host)
                empty = false;
        }
    }
    /* An image without grains is rewritten from its first data sector, so
     * a freshly created image gets a clean stream. */
    uint64_t overhead = ld_le64(st->header + 64) * VMDK_SECTOR;
    if (empty && overhead >= VMDK_SECTOR && overhead <= e->file->size)
        st->pos = overhead;
    else
        st->pos = align_up(e->file->size, VMDK_SECTOR);
    return 0;
}

static int put_marker(struct vmdk_extent *e, uint64_t off, uint64_t val,
                      uint32_t type, struct err *err)
{
    uint8_t m[VMDK_SECTOR];
    memset(m, 0, sizeof(m));
    st_le64(m, val);
    st_le32(m + 12, type);
    return bdev_pwrite(e->file, off, sizeof(m), m, err);
}

static int flush_grain(struct vmdk_extent *e, struct err *err)
{
    struct vmdk_stream *st = e->stream;
    int r = 0;
    if (st->cur < 0)
        return 0;
    uint64_t grain = (uint64_t)st->cur;
    st->cur = -1;
    if (buf_is_zero(st->buf, e->grain_bytes))
        return 0;
    uLongf clen = compressBound((uLong)e->grain_bytes);
    uint64_t total = align_up(12 + (uint64_t)clen, VMDK_SECTOR);
    uint8_t *out = calloc(1, total);
    if (!out)
        return err_set(err, -ENOMEM, "Out of memory");
    if (compress2(out + 12, &clen, st->buf, (uLong)e->grain_bytes,
                  Z_DEFAULT_COMPRESSION) != Z_OK) {
        free(out);
        return err_set(err, -EIO, "Could not compress grain");
    }
    st_le64(out, grain * (e->grain_bytes / VMDK_SECTOR));
    st_le32(out + 8, (uint32_t)clen);
    total = align_up(12 + (uint64_t)clen, VMDK_SECTOR);
    if ((st->pos + total) / VMDK_SECTOR > UINT32_MAX) {
        free(out);
        return err_set(err, -EFBIG, "VMDK extent too large");
    }
    r = bdev_pwrite(e->file, st->pos, total, out, err);
    free(out);
    if (r < 0)
        return r;
    uint32_t idx = (uint32_t)(grain / e->gtes_per_gt);
    if (!st->gt[idx]) {
        st->gt[idx] = calloc(e->gtes_per_gt, 4);
        if (!st->gt[idx])
            return err_set(err, -ENOMEM, "Out of memory");
    }
    st->gt[idx][grain % e->gtes_per_gt] = (uint32_t)(st->pos / VMDK_SECTOR);
    st->pos += total;
    return 0;
}

int vmdk_stream_write(struct vmdk_extent *e, uint64_t off, uint64_t len,
                      const uint8_t *buf, struct err *err)
{
    struct vmdk_stream *st = e->stream;
    while (len) {
        uint64_t grain = off / e->grain_bytes, in = off % e->grain_bytes;
        uint64_t n = min_u64(len, e->grain_bytes - in);
        int r;
        if ((int64_t)grain != st->cur) {
            uint32_t idx = (uint32_t)(grain / e->gtes_per_gt);
            if (st->gt[idx] && st->gt[idx][grain % e->gtes_per_gt])
                return err_set(err, -EINVAL, "Could not write to allocated "
                               "cluster for streamOptimized");
            if (st->cur >= 0 && (int64_t)grain < st->cur)
                return err_set(err, -EINVAL, "streamOptimized images must be "
                               "written in ascending order");
            r = flush_grain(e, err);
            if (r < 0)
                return r;
            st->cur = (int64_t)grain;
            memset(st->buf, 0, e->grain_bytes);
        }
        memcpy(st->buf + in, buf, n);
        st->dirty = true;
        buf += n;
        off += n;
        len -= n;
    }
    return 0;
}

int vmdk_stream_finish(struct vmdk_extent *e, bool force, struct err *err)
{
    struct vmdk_stream *st = e->stream;
    uint64_t gt_sectors = div_round_up(e->gt_bytes, VMDK_SECTOR);
    uint64_t gd_bytes = align_up((uint64_t)e->gd_entries * 4, VMDK_SECTOR);
    int r;
    if (!st || (!st->dirty && !force))
        return 0;
    r = flush_grain(e, err);
    if (r < 0)
        return r;
    uint8_t *gd = calloc(1, gd_bytes ? gd_bytes : 1);
    uint8_t *gt = calloc(1, gt_sectors * VMDK_SECTOR);
    if (!gd || !gt) {
        free(gd);
        free(gt);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    for (uint32_t i = 0; i < e->gd_entries && r >= 0; i++) {
        if (!st->gt[i])
            continue;
        r = put_marker(e, st->pos, gt_sectors, VMDK_MARKER_GT, err);
        for (uint32_t j = 0; j < e->gtes_per_gt; j++)
            st_le32(gt + 4 * (uint64_t)j, st->gt[i][j]);
        if (r >= 0)
            r = bdev_pwrite(e->file, st->pos + VMDK_SECTOR,
                            gt_sectors * VMDK_SECTOR, gt, err);
        st_le32(gd + 4 * (uint64_t)i, (uint32_t)(st->pos / VMDK_SECTOR + 1));
        st->pos += VMDK_SECTOR + gt_sectors * VMDK_SECTOR;
    }
    uint64_t gd_sector = st->pos / VMDK_SECTOR + 1;
    if (r >= 0)
        r = put_marker(e, st->pos, gd_bytes / VMDK_SECTOR, VMDK_MARKER_GD, err);
    if (r >= 0)
        r = bdev_pwrite(e->file, st->pos + VMDK_SECTOR, gd_bytes, gd, err);
    st->pos += VMDK_SECTOR + gd_bytes;
    free(gd);
    free(gt);

    uint8_t footer[VMDK_SECTOR];
    memcpy(footer, st->header, sizeof(footer));
    st_le64(footer + 56, gd_sector);
    if (r >= 0)
        r = put_marker(e, st->pos, 1, VMDK_MARKER_FOOTER, err);
    if (r >= 0)
        r = bdev_pwrite(e->file, st->pos + VMDK_SECTOR, VMDK_SECTOR, footer, err);
    st->pos += 2 * VMDK_SECTOR;
    if (r >= 0)
        r = put_marker(e, st->pos, 0, VMDK_MARKER_EOS, err);
    st->pos += VMDK_SECTOR;
    if (r >= 0 && e->file->size > st->pos)
        r = bdev_truncate(e->file, st->pos, true, PREALLOC_OFF, err);
    if (r >= 0)
        st->dirty = false;
    return r;
}
