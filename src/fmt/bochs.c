/* bochs: Bochs "growing" redolog disk images (as bximage makes), read-only.
 *
 * A 512-byte little-endian header (magic "Bochs Virtual HD Image", type
 * "Redolog", subtype "Growing", version 1 or 2), then a catalog of 32-bit
 * extent numbers (0xffffffff: not allocated), then the extents, each a
 * sector bitmap followed by the data sectors.  Sectors whose bitmap bit is
 * clear read as zeros.  Like QEMU, no block status is offered: everything
 * reads as data. */
#include "block/driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define BOCHS_MAGIC      "Bochs Virtual HD Image"
#define BOCHS_REDOLOG    "Redolog"
#define BOCHS_GROWING    "Growing"
#define BOCHS_V1         0x00010000u
#define BOCHS_V2         0x00020000u
#define BOCHS_HEADER     512
#define BOCHS_FREE       0xffffffffu
#define BOCHS_MAX_CATALOG 0x100000u

struct bochs {
    uint32_t *catalog;
    uint32_t entries;
    uint64_t data_offset;
    uint64_t bitmap_bytes;  /* whole sectors */
    uint64_t extent_bytes;  /* whole sectors */
    uint32_t extent_size;
};

/* The header's strings are NUL-terminated inside fixed fields. */
static bool field_is(const uint8_t *field, size_t size, const char *s)
{
    size_t n = strlen(s);
    return n < size && !memcmp(field, s, n) && field[n] == 0;
}

static bool header_matches(const uint8_t *h)
{
    uint32_t v = ld_le32(h + 64);
    return field_is(h, 32, BOCHS_MAGIC) && field_is(h + 32, 16, BOCHS_REDOLOG)
           && field_is(h + 48, 16, BOCHS_GROWING) &&
           (v == BOCHS_V1 || v == BOCHS_V2);
}

static int bochs_probe(struct bdev *file, const uint8_t *buf, size_t len,
                       const char *filename)
{
    (void)file;
    (void)filename;
    return len >= BOCHS_HEADER && header_matches(buf) ? 100 : 0;
}

static int bochs_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct bochs *s = bs->priv;
    struct bdev *file = bs->file;
    uint8_t h[BOCHS_HEADER];
    int r;

    (void)opts;
    memset(h, 0, sizeof(h));
    if (file->size && (r = bdev_pread(file, 0, min_u64(sizeof(h), file->size),
                                      h, err)) < 0)
        return r;
    if (!header_matches(h))
        return err_set(err, -EINVAL, "Image not in Bochs format");
    uint32_t header_size = ld_le32(h + 68);
    s->entries = ld_le32(h + 72);
    uint32_t bitmap = ld_le32(h + 76);
    s->extent_size = ld_le32(h + 80);
    uint64_t disk = ld_le32(h + 64) == BOCHS_V1 ? ld_le64(h + 84)
                                                : ld_le64(h + 88);
    uint64_t sectors = disk / 512;
    if (s->entries > BOCHS_MAX_CATALOG)
        return err_set(err, -EFBIG, "Catalog size is too large");
    if (s->extent_size < 512)
        return err_set(err, -EINVAL, "Extent size must be at least 512");
    if (!is_pow2(s->extent_size))
        return err_set(err, -EINVAL, "Extent size %" PRIu32 " is not a power "
                       "of two", s->extent_size);
    if (s->extent_size > 0x800000)
        return err_set(err, -EINVAL, "Extent size %" PRIu32 " is too large",
                       s->extent_size);
    if (s->entries < div_round_up(sectors, s->extent_size / 512))
        return err_set(err, -EINVAL, "Catalog size is too small for this disk "
                       "size");
    if (bitmap == 0)
        return err_set(err, -EINVAL, "Bitmap size must not be zero");
    if (!range_within(header_size, (uint64_t)s->entries * 4, file->size))
        return err_set(err, -EINVAL, "Catalog lies beyond the end of the "
                       "file");
    s->catalog = malloc((uint64_t)s->entries * 4 + 4);
    if (!s->catalog)
        return err_set(err, -ENOMEM, "Could not allocate memory for catalog");
    if (s->entries &&
        (r = bdev_pread(file, header_size, (uint64_t)s->entries * 4,
                        s->catalog, err)) < 0) {
        free(s->catalog);
        s->catalog = NULL;
        return r;
    }
    for (uint32_t i = 0; i < s->entries; i++)
        s->catalog[i] = ld_le32(&s->catalog[i]);
    s->data_offset = header_size + (uint64_t)s->entries * 4;
    s->bitmap_bytes = (1 + ((uint64_t)bitmap - 1) / 512) * 512;
    s->extent_bytes = (1 + ((uint64_t)s->extent_size - 1) / 512) * 512;
    bs->size = sectors * 512;
    bs->align = 512;
    return 0;
}

static void bochs_close(struct bdev *bs)
{
    struct bochs *s = bs->priv;
    free(s->catalog);
    s->catalog = NULL;
}

/* Read one sector at guest offset `off` (sector-aligned). */
static int read_sector(struct bdev *bs, uint64_t off, uint8_t *p,
                       struct err *err)
{
    struct bochs *s = bs->priv;
    uint64_t idx = off / s->extent_size;
    uint64_t sec = (off % s->extent_size) / 512;
    memset(p, 0, 512);
    if (idx >= s->entries || s->catalog[idx] == BOCHS_FREE)
        return 0;
    uint64_t bitmap_off = s->data_offset + (uint64_t)s->catalog[idx] *
                          (s->bitmap_bytes + s->extent_bytes);
    uint8_t bit;
    if (bitmap_off + sec / 8 >= bs->file->size)
        return err_set(err, -EIO, "Bochs extent %" PRIu64 " lies beyond the "
                       "end of the file", idx);
    int r = bdev_pread(bs->file, bitmap_off + sec / 8, 1, &bit, err);
    if (r < 0)
        return r;
    if (!((bit >> (sec % 8)) & 1))
        return 0;
    uint64_t data = bitmap_off + s->bitmap_bytes + sec * 512;
    if (data >= bs->file->size)
        return err_set(err, -EIO, "Bochs extent %" PRIu64 " lies beyond the "
                       "end of the file", idx);
    return bdev_pread(bs->file, data, min_u64(512, bs->file->size - data), p,
                      err);
}

static int bochs_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                      struct err *err)
{
    uint8_t *p = buf;
    for (uint64_t done = 0; done < len; done += 512) {
        int r = read_sector(bs, off + done, p + done, err);
        if (r < 0)
            return r;
    }
    return 0;
}

const struct driver drv_bochs = {
    .name = "bochs",
    .kind = DRV_FORMAT,
    .caps = DRV_READ_ONLY,
    .priv_size = sizeof(struct bochs),
    .probe = bochs_probe,
    .open = bochs_open,
    .close = bochs_close,
    .read = bochs_read,
};
