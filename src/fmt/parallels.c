/* parallels: Parallels Desktop / Virtuozzo expandable images
 * (specs/parallels.txt), read-only.
 *
 * Both header magics are read: "WithoutFreeSpace" (BAT entries count
 * sectors, 32-bit disk size) and "WithouFreSpacExt" (BAT entries count
 * clusters).  The format extension cluster (dirty bitmaps) is ignored.
 * Every BAT entry is checked against the file size when used; clusters
 * cut short by the end of the file read as zeros past it. */
#include "block/driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define PRL_MAGIC      "WithoutFreeSpace"
#define PRL_MAGIC_EXT  "WithouFreSpacExt"
#define PRL_VERSION    2
#define PRL_HEADER     64

#define PRL_INUSE      0x746f6e59u     /* opened for writing, not closed */

struct parallels {
    bool unclean;           /* header still says "in use" */
    uint64_t cluster_size;
    uint64_t multiplier;    /* bytes per unit of a BAT entry */
    uint32_t bat_entries;
    uint32_t *bat;          /* host order */
};

static int parallels_probe(struct bdev *file, const uint8_t *buf, size_t len,
                           const char *filename)
{
    (void)file;
    (void)filename;
    if (len < PRL_HEADER)
        return 0;
    if ((!memcmp(buf, PRL_MAGIC, 16) || !memcmp(buf, PRL_MAGIC_EXT, 16)) &&
        ld_le32(buf + 16) == PRL_VERSION)
        return 100;
    return 0;
}

static int parallels_open(struct bdev *bs, struct kvlist *opts,
                          struct err *err)
{
    struct parallels *s = bs->priv;
    struct bdev *file = bs->file;
    uint8_t h[PRL_HEADER];
    int r;

    (void)opts;
    memset(h, 0, sizeof(h));
    if (file->size && (r = bdev_pread(file, 0, min_u64(sizeof(h), file->size),
                                      h, err)) < 0)
        return r;
    uint64_t sectors = ld_le64(h + 36);
    uint32_t tracks = ld_le32(h + 28);
    if (ld_le32(h + 16) != PRL_VERSION)
        return err_set(err, -EINVAL, "Image not in Parallels format");
    if (!memcmp(h, PRL_MAGIC, 16)) {
        s->multiplier = 512;
        sectors &= 0xffffffffu;
    } else if (!memcmp(h, PRL_MAGIC_EXT, 16)) {
        s->multiplier = (uint64_t)tracks * 512;
    } else {
        return err_set(err, -EINVAL, "Image not in Parallels format");
    }
    if (tracks == 0)
        return err_set(err, -EINVAL, "Invalid image: Zero sectors per track");
    if (tracks > INT32_MAX / 513)
        return err_set(err, -EFBIG, "Invalid image: Too big cluster");
    s->cluster_size = (uint64_t)tracks * 512;
    s->unclean = ld_le32(h + 44) == PRL_INUSE;
    s->bat_entries = ld_le32(h + 32);
    if (s->bat_entries > INT32_MAX / 4)
        return err_set(err, -EFBIG, "Catalog too large");
    if (!range_within(PRL_HEADER, (uint64_t)s->bat_entries * 4, file->size))
        return err_set(err, -EINVAL, "Invalid image: the BAT (%" PRIu32
                       " entries) lies beyond the end of the file",
                       s->bat_entries);
    if (sectors > (UINT64_MAX >> 9))
        return err_set(err, -EFBIG, "Invalid image: disk size too large");
    s->bat = malloc((uint64_t)s->bat_entries * 4 + 4);
    if (!s->bat)
        return err_set(err, -ENOMEM, "Out of memory");
    if (s->bat_entries) {
        r = bdev_pread(file, PRL_HEADER, (uint64_t)s->bat_entries * 4, s->bat,
                       err);
        if (r < 0) {
            free(s->bat);
            s->bat = NULL;
            return r;
        }
    }
    for (uint32_t i = 0; i < s->bat_entries; i++)
        s->bat[i] = ld_le32(&s->bat[i]);
    bs->size = sectors * 512;
    bs->align = 512;
    return 0;
}

static void parallels_close(struct bdev *bs)
{
    struct parallels *s = bs->priv;
    free(s->bat);
    s->bat = NULL;
}

/* Host offset of guest offset `off`, or 0 when unallocated; *run gets the
 * bytes (up to `len`) that stay in this cluster. */
static int map_offset(struct bdev *bs, uint64_t off, uint64_t len,
                      uint64_t *host, uint64_t *run, struct err *err)
{
    struct parallels *s = bs->priv;
    uint64_t idx = off / s->cluster_size;
    uint64_t in = off % s->cluster_size;
    *run = min_u64(len, s->cluster_size - in);
    *host = 0;
    if (idx >= s->bat_entries) {
        *run = len;     /* past the BAT: all unallocated */
        return 0;
    }
    if (!s->bat[idx])
        return 0;
    uint64_t h = (uint64_t)s->bat[idx] * s->multiplier + in;
    if (h >= bs->file->size)
        return err_set(err, -EIO, "Parallels cluster %" PRIu64 " points "
                       "beyond the end of the file", idx);
    *host = h;
    return 0;
}

static int parallels_read(struct bdev *bs, uint64_t off, uint64_t len,
                          void *buf, struct err *err)
{
    uint8_t *p = buf;
    while (len) {
        uint64_t host, n;
        int r = map_offset(bs, off, len, &host, &n, err);
        if (r < 0)
            return r;
        if (host) {
            uint64_t avail = min_u64(n, bs->file->size - host);
            r = bdev_pread(bs->file, host, avail, p, err);
            if (r < 0)
                return r;
            memset(p + avail, 0, n - avail);
        } else {
            memset(p, 0, n);
        }
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

/* Runs of clusters contiguous in the file are reported as one. */
static int parallels_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                                  struct bstatus *st, struct err *err)
{
    uint64_t host, n;
    int r = map_offset(bs, off, len, &host, &n, err);
    if (r < 0)
        return r;
    st->len = n;
    st->flags = 0;
    if (host) {
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID;
        st->host_off = host;
        st->file = bs->file;
    }
    while (st->len < len) {
        uint64_t h2, n2;
        struct err e2 = ERR_INIT;
        if (map_offset(bs, off + st->len, len - st->len, &h2, &n2, &e2) < 0)
            break;
        if (host ? h2 != host + st->len : h2 != 0)
            break;
        st->len += n2;
    }
    return 0;
}

/* The findings and messages of qemu-img check (repair needs write
 * support, which this driver does not have). */
static int parallels_check(struct bdev *bs, struct check_result *res,
                           unsigned fix, struct err *err)
{
    struct parallels *s = bs->priv;
    uint64_t size = bs->file->size, high = 0, prev = 0;
    if (fix)
        return err_set(err, -EACCES, "Image is read-only");
    if (s->unclean) {
        fprintf(stderr, "ERROR image was not closed correctly\n");
        res->corruptions++;
    }
    res->has_bfi = true;
    res->total_clusters = s->bat_entries;
    for (uint32_t i = 0; i < s->bat_entries; i++) {
        uint64_t off = (uint64_t)s->bat[i] * s->multiplier;
        if (off == 0) {
            prev = 0;
            continue;
        }
        if (off > size) {
            fprintf(stderr, "ERROR cluster %" PRIu32 " is outside image\n", i);
            res->corruptions++;
        }
        res->allocated_clusters++;
        if (off > high)
            high = off;
        if (prev && prev + s->cluster_size != off)
            res->fragmented_clusters++;
        prev = off;
    }
    res->image_end_offset = (int64_t)(high + s->cluster_size);
    if (size > high + s->cluster_size) {
        uint64_t extra = size - (high + s->cluster_size);
        fprintf(stderr, "ERROR space leaked at the end of the image %" PRIu64
                "\n", extra);
        res->leaks += (int)div_round_up(extra, s->cluster_size);
    }
    return 0;
}

const struct driver drv_parallels = {
    .name = "parallels",
    .kind = DRV_FORMAT,
    /* As in QEMU, the format takes backing files (none is named in the
     * image, so unallocated clusters read as zeros). */
    .caps = DRV_READ_ONLY | DRV_BACKING,
    .priv_size = sizeof(struct parallels),
    .probe = parallels_probe,
    .open = parallels_open,
    .close = parallels_close,
    .read = parallels_read,
    .block_status = parallels_block_status,
    .check = parallels_check,
};
