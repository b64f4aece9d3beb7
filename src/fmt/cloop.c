/* cloop: Linux compressed loop images (V2.0), read-only.
 *
 * A 128-byte shell preamble, then big-endian block size and block count,
 * then count+1 64-bit file offsets; block i is the zlib stream between
 * offsets i and i+1 and inflates to exactly one block.  Offsets must be
 * monotonic and inside the file.  Like QEMU, no block status is offered. */
#include "block/driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/align.h"
#include "util/endian.h"

#define CLOOP_MAX_BLOCK  (64u * 1024 * 1024)
#define CLOOP_TABLE_OFF  136

static const char cloop_magic[] =
    "#!/bin/sh\n"
    "#V2.0 Format\n"
    "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

struct cloop {
    uint32_t block_size, blocks;
    uint64_t *offsets;      /* blocks + 1, host order */
    uint8_t *zbuf, *block;
    uint64_t zbuf_size;
    uint32_t current;       /* block held in `block`, or `blocks` */
};

static int cloop_probe(struct bdev *file, const uint8_t *buf, size_t len,
                       const char *filename)
{
    (void)file;
    (void)filename;
    size_t n = strlen(cloop_magic);
    if (n > len)
        n = len;
    return n && !memcmp(buf, cloop_magic, n) ? 2 : 0;
}

static void cloop_close(struct bdev *bs)
{
    struct cloop *s = bs->priv;
    free(s->offsets);
    free(s->zbuf);
    free(s->block);
    s->offsets = NULL;
    s->zbuf = s->block = NULL;
}

static int cloop_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct cloop *s = bs->priv;
    struct bdev *file = bs->file;
    uint8_t h[8];
    int r;

    (void)opts;
    if (file->size < CLOOP_TABLE_OFF)
        return err_set(err, -EINVAL, "Image not in cloop format (file too "
                       "short)");
    r = bdev_pread(file, 128, 8, h, err);
    if (r < 0)
        return r;
    s->block_size = ld_be32(h);
    s->blocks = ld_be32(h + 4);
    if (s->block_size % 512)
        return err_set(err, -EINVAL, "block_size %" PRIu32 " must be a "
                       "multiple of 512", s->block_size);
    if (s->block_size == 0)
        return err_set(err, -EINVAL, "block_size cannot be zero");
    if (s->block_size > CLOOP_MAX_BLOCK)
        return err_set(err, -EINVAL, "block_size %" PRIu32 " must be %u MB or "
                       "less", s->block_size, CLOOP_MAX_BLOCK / (1024 * 1024));
    if (s->blocks > (UINT32_MAX - 1) / 8)
        return err_set(err, -EINVAL, "n_blocks %" PRIu32 " must be %u or less",
                       s->blocks, (UINT32_MAX - 1) / 8);
    uint64_t table = ((uint64_t)s->blocks + 1) * 8;
    if (table > 512u * 1024 * 1024)
        return err_set(err, -EINVAL, "image requires too many offsets, try "
                       "increasing block size");
    if (!range_within(CLOOP_TABLE_OFF, table, file->size))
        return err_set(err, -EINVAL, "cloop offset table lies beyond the end "
                       "of the file");
    s->offsets = malloc(table);
    if (!s->offsets)
        return err_set(err, -ENOMEM, "Could not allocate offsets table");
    r = bdev_pread(file, CLOOP_TABLE_OFF, table, s->offsets, err);
    if (r < 0)
        goto fail;
    uint64_t max = 1;
    for (uint64_t i = 0; i <= s->blocks; i++) {
        s->offsets[i] = ld_be64(&s->offsets[i]);
        if (i == 0)
            continue;
        if (s->offsets[i] < s->offsets[i - 1]) {
            r = err_set(err, -EINVAL, "offsets not monotonically increasing "
                        "at index %" PRIu64 ", image file is corrupt", i);
            goto fail;
        }
        uint64_t size = s->offsets[i] - s->offsets[i - 1];
        if (size > 2 * (uint64_t)CLOOP_MAX_BLOCK) {
            r = err_set(err, -EINVAL, "invalid compressed block size at index "
                        "%" PRIu64 ", image file is corrupt", i);
            goto fail;
        }
        if (size > max)
            max = size;
    }
    if (s->offsets[s->blocks] > file->size) {
        r = err_set(err, -EINVAL, "cloop block data lies beyond the end of "
                    "the file");
        goto fail;
    }
    s->zbuf_size = max;
    s->zbuf = malloc(max);
    s->block = malloc(s->block_size);
    if (!s->zbuf || !s->block) {
        r = err_set(err, -ENOMEM, "Could not allocate compressed_block");
        goto fail;
    }
    s->current = s->blocks;
    bs->size = (uint64_t)s->blocks * s->block_size;
    bs->align = 512;
    return 0;
fail:
    cloop_close(bs);
    return r;
}

static int load_block(struct bdev *bs, uint32_t idx, struct err *err)
{
    struct cloop *s = bs->priv;
    if (s->current == idx)
        return 0;
    uint64_t len = s->offsets[idx + 1] - s->offsets[idx];
    int r = bdev_pread(bs->file, s->offsets[idx], len, s->zbuf, err);
    if (r < 0)
        return r;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit(&z) != Z_OK)
        return err_set(err, -ENOMEM, "Could not initialise zlib");
    z.next_in = s->zbuf;
    z.avail_in = (uInt)len;
    z.next_out = s->block;
    z.avail_out = s->block_size;
    int zr = inflate(&z, Z_FINISH);
    uint64_t out = z.total_out;
    inflateEnd(&z);
    s->current = s->blocks;
    if (zr != Z_STREAM_END || out != s->block_size)
        return err_set(err, -EIO, "Could not decompress cloop block %" PRIu32,
                       idx);
    s->current = idx;
    return 0;
}

static int cloop_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                      struct err *err)
{
    struct cloop *s = bs->priv;
    uint8_t *p = buf;
    while (len) {
        uint32_t idx = (uint32_t)(off / s->block_size);
        uint64_t in = off % s->block_size;
        uint64_t n = min_u64(len, s->block_size - in);
        int r = load_block(bs, idx, err);
        if (r < 0)
            return r;
        memcpy(p, s->block + in, n);
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

const struct driver drv_cloop = {
    .name = "cloop",
    .kind = DRV_FORMAT,
    .caps = DRV_READ_ONLY,
    .priv_size = sizeof(struct cloop),
    .probe = cloop_probe,
    .open = cloop_open,
    .close = cloop_close,
    .read = cloop_read,
};
