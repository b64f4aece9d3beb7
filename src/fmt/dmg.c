/* dmg: Apple disk images (UDIF), read-only.
 *
 * The 512-byte "koly" trailer near the end of the file locates the block
 * tables ("mish" blocks), found either in the resource fork or base64
 * encoded inside <data> elements of the XML property list.  Each mish
 * block lists chunks: zeros (UDZE, UDIG), raw data (UDRW), zlib (UDZO) or
 * bzip2 (UDBZ) compressed runs of sectors.  lzfse (ULFO) and ADC (UDCO)
 * chunks are recognised but reading them fails with a clear error: no
 * Debian library decodes them.  Every chunk is checked against the file
 * size and QEMU's limits (64 MiB per chunk) when the image is opened.
 * Like QEMU, no block status is offered. */
#include "block/driver.h"

#include <bzlib.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/align.h"
#include "util/endian.h"

#define KOLY_BYTES       512
#define MISH_MAGIC       0x6d697368u   /* "mish" */
#define MISH_MIN_BYTES   244
#define MISH_CHUNKS_OFF  204
#define MISH_CHUNK_BYTES 40
#define DMG_LENGTHS_MAX  (64u * 1024 * 1024)
#define DMG_SECTORS_MAX  (DMG_LENGTHS_MAX / 512)
#define DMG_XML_MAX      (16u * 1024 * 1024)
#define DMG_CHUNKS_MAX   (16u * 1024 * 1024)

enum {
    UDZE = 0, UDRW = 1, UDIG = 2,
    UDCO = (int)0x80000004u, UDZO = (int)0x80000005u,
    UDBZ = (int)0x80000006u, ULFO = (int)0x80000007u,
    UDCM = 0x7ffffffe, UDLE = (int)0xffffffffu,
};

struct chunk {
    uint32_t type;
    uint64_t sector, sectors;   /* guest run */
    uint64_t offset, length;    /* bytes in the file */
};

struct dmg {
    struct chunk *chunks;
    size_t n, cap;
    uint8_t *zbuf, *data;       /* compressed and decoded current chunk */
    size_t current;             /* chunk held in `data`, or n */
};

static int dmg_probe(struct bdev *file, const uint8_t *buf, size_t len,
                     const char *filename)
{
    (void)file;
    (void)buf;
    (void)len;
    size_t n = filename ? strlen(filename) : 0;
    return n > 4 && !strcmp(filename + n - 4, ".dmg") ? 2 : 0;
}

static void dmg_close(struct bdev *bs)
{
    struct dmg *s = bs->priv;
    free(s->chunks);
    free(s->zbuf);
    free(s->data);
    s->chunks = NULL;
    s->zbuf = s->data = NULL;
    s->n = s->cap = 0;
}

static int find_koly(struct bdev *bs, uint64_t *koly, struct err *err)
{
    uint64_t size = bs->file->size, off = 0;
    uint8_t buf[515];
    if (size < 512)
        return err_set(err, -EINVAL, "dmg file must be at least 512 bytes "
                       "long");
    /* The trailer starts in the last 511 bytes of the second-last sector
     * or at the last sector (odd file sizes are allowed). */
    if (size > 511 + 512)
        off = size - 511 - 512;
    uint64_t n = min_u64(size - off, sizeof(buf));
    int r = bdev_pread(bs->file, off, n, buf, err);
    if (r < 0)
        return r;
    for (uint64_t i = 0; i + 3 < n; i++) {
        if (!memcmp(buf + i, "koly", 4) && off + i + KOLY_BYTES <= size) {
            *koly = off + i;
            return 0;
        }
    }
    return err_set(err, -EINVAL, "Could not locate UDIF trailer in dmg file");
}

static bool type_is_data(uint32_t t)
{
    return t == (uint32_t)UDZE || t == (uint32_t)UDRW || t == (uint32_t)UDIG ||
           t == (uint32_t)UDZO || t == (uint32_t)UDBZ || t == (uint32_t)ULFO ||
           t == (uint32_t)UDCO;
}

static bool type_is_zero(uint32_t t)
{
    return t == (uint32_t)UDZE || t == (uint32_t)UDIG;
}

/* Add the chunks of one mish block; blocks with another magic or too
 * short are skipped, as QEMU does. */
static int parse_mish(struct bdev *bs, const uint8_t *b, uint64_t len,
                      uint64_t data_fork, struct err *err)
{
    struct dmg *s = bs->priv;
    if (len < MISH_MIN_BYTES || ld_be32(b) != MISH_MAGIC)
        return 0;
    uint64_t first = ld_be64(b + 8);
    uint64_t base = ld_be64(b + 0x18);
    uint64_t count = (len - MISH_CHUNKS_OFF) / MISH_CHUNK_BYTES;
    if (add_overflow(base, data_fork, &base))
        return err_set(err, -EINVAL, "dmg: invalid data offset in block "
                       "table");
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = b + MISH_CHUNKS_OFF + i * MISH_CHUNK_BYTES;
        struct chunk c = {
            .type = ld_be32(e), .sector = ld_be64(e + 8),
            .sectors = ld_be64(e + 16), .offset = ld_be64(e + 24),
            .length = ld_be64(e + 32),
        };
        if (!type_is_data(c.type))
            continue;           /* comments, terminators, unknown kinds */
        size_t idx = s->n;
        if (add_overflow(c.sector, first, &c.sector) ||
            c.sector > (UINT64_MAX >> 9) ||
            c.sectors > (UINT64_MAX >> 9) - c.sector)
            return err_set(err, -EINVAL, "sector range of chunk %zu is "
                           "invalid", idx);
        if (!type_is_zero(c.type) && c.sectors > DMG_SECTORS_MAX)
            return err_set(err, -EINVAL, "sector count %" PRIu64 " for chunk "
                           "%zu is larger than max (%u)", c.sectors, idx,
                           DMG_SECTORS_MAX);
        if (c.length > DMG_LENGTHS_MAX)
            return err_set(err, -EINVAL, "length %" PRIu64 " for chunk %zu is "
                           "larger than max (%u)", c.length, idx,
                           DMG_LENGTHS_MAX);
        if (add_overflow(c.offset, base, &c.offset) ||
            (!type_is_zero(c.type) &&
             !range_within(c.offset, c.length, bs->file->size)))
            return err_set(err, -EINVAL, "data of chunk %zu lies beyond the end "
                           "of the file", idx);
        if (c.sectors == 0)
            continue;
        if (s->n == s->cap) {
            if (s->cap >= DMG_CHUNKS_MAX)
                return err_set(err, -EFBIG, "dmg: too many chunks");
            size_t cap = s->cap ? s->cap * 2 : 64;
            struct chunk *nc = realloc(s->chunks, cap * sizeof(*nc));
            if (!nc)
                return err_set(err, -ENOMEM, "Out of memory");
            s->chunks = nc;
            s->cap = cap;
        }
        s->chunks[s->n++] = c;
    }
    return 0;
}

static int read_resource_fork(struct bdev *bs, uint64_t begin, uint64_t len,
                              uint64_t data_fork, struct err *err)
{
    uint8_t h[12];
    int r = bdev_pread(bs->file, begin, sizeof(h), h, err);
    if (r < 0)
        return r;
    uint64_t data_off = ld_be32(h), count = ld_be32(h + 8);
    if (data_off > len || count == 0 || data_off + count > len)
        return err_set(err, -EINVAL, "dmg: invalid resource fork");
    uint64_t off = begin + data_off, end = off + count;
    uint8_t *buf = NULL;
    while (off < end && r >= 0) {
        uint8_t sz[4];
        if (end - off < 4) {
            r = err_set(err, -EINVAL, "dmg: invalid resource fork");
            break;
        }
        r = bdev_pread(bs->file, off, 4, sz, err);
        if (r < 0)
            break;
        uint64_t n = ld_be32(sz);
        off += 4;
        if (n == 0 || n > end - off) {
            r = err_set(err, -EINVAL, "dmg: invalid resource fork");
            break;
        }
        uint8_t *nb = realloc(buf, n);
        if (!nb) {
            r = err_set(err, -ENOMEM, "Out of memory");
            break;
        }
        buf = nb;
        r = bdev_pread(bs->file, off, n, buf, err);
        if (r >= 0)
            r = parse_mish(bs, buf, n, data_fork, err);
        off += n;
    }
    free(buf);
    return r < 0 ? r : 0;
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode base64 in [p, end) into out (room for (end-p)*3/4 bytes),
 * skipping whitespace; stops at '=' or anything else. */
static uint64_t b64_decode(const char *p, const char *end, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    uint64_t n = 0;
    for (; p < end; p++) {
        int v = b64_value((unsigned char)*p);
        if (v < 0) {
            if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                continue;
            break;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

static int read_plist(struct bdev *bs, uint64_t begin, uint64_t len,
                      uint64_t data_fork, struct err *err)
{
    if (len == 0 || len > DMG_XML_MAX)
        return err_set(err, -EINVAL, "dmg: invalid XML property list size");
    char *xml = malloc(len + 1);
    uint8_t *bin = malloc(len);
    int r = 0;
    if (!xml || !bin) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    r = bdev_pread(bs->file, begin, len, xml, err);
    if (r < 0)
        goto out;
    xml[len] = 0;
    const char *p = xml;
    while (r >= 0 && (p = strstr(p, "<data>")) != NULL) {
        p += 6;
        const char *e = strstr(p, "</data>");
        if (!e) {
            r = err_set(err, -EINVAL, "dmg: malformed XML property list");
            break;
        }
        uint64_t n = b64_decode(p, e, bin);
        r = parse_mish(bs, bin, n, data_fork, err);
        p = e + 7;
    }
out:
    free(xml);
    free(bin);
    return r < 0 ? r : 0;
}

static int chunk_cmp(const void *a, const void *b)
{
    const struct chunk *x = a, *y = b;
    return x->sector < y->sector ? -1 : x->sector > y->sector;
}

static int dmg_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct dmg *s = bs->priv;
    uint8_t k[KOLY_BYTES];
    uint64_t koly = 0;
    int r;

    (void)opts;
    r = find_koly(bs, &koly, err);
    if (r < 0)
        return r;
    r = bdev_pread(bs->file, koly, sizeof(k), k, err);
    if (r < 0)
        return r;
    uint64_t data_fork = ld_be64(k + 0x18);
    uint64_t rsrc_off = ld_be64(k + 0x28), rsrc_len = ld_be64(k + 0x30);
    uint64_t xml_off = ld_be64(k + 0xd8), xml_len = ld_be64(k + 0xe0);
    uint64_t sectors = ld_be64(k + 0x1ec);
    if (data_fork > koly)
        return err_set(err, -EINVAL, "dmg: data fork offset is invalid");
    if (rsrc_off >= koly || rsrc_len > koly - rsrc_off)
        return err_set(err, -EINVAL, "dmg: resource fork offset is invalid");
    if (xml_off >= koly || xml_len > koly - xml_off)
        return err_set(err, -EINVAL, "dmg: XML property list offset is "
                       "invalid");
    if (sectors > (UINT64_MAX >> 10))
        return err_set(err, -EINVAL, "dmg: sector count is invalid");
    if (rsrc_len)
        r = read_resource_fork(bs, rsrc_off, rsrc_len, data_fork, err);
    else if (xml_len)
        r = read_plist(bs, xml_off, xml_len, data_fork, err);
    else
        r = err_set(err, -EINVAL, "dmg: image has no block tables");
    if (r < 0)
        goto fail;
    if (s->n)
        qsort(s->chunks, s->n, sizeof(*s->chunks), chunk_cmp);
    for (size_t i = 1; i < s->n; i++) {
        if (s->chunks[i - 1].sector + s->chunks[i - 1].sectors >
            s->chunks[i].sector) {
            r = err_set(err, -EINVAL, "dmg: chunks overlap at sector %" PRIu64,
                        s->chunks[i].sector);
            goto fail;
        }
    }
    s->current = s->n;
    bs->size = sectors * 512;
    bs->align = 512;
    return 0;
fail:
    dmg_close(bs);
    return r;
}

static struct chunk *find_chunk(struct dmg *s, uint64_t sector)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct chunk *c = &s->chunks[mid];
        if (sector < c->sector)
            hi = mid;
        else if (sector - c->sector >= c->sectors)
            lo = mid + 1;
        else
            return c;
    }
    return NULL;
}

static int decode_chunk(struct bdev *bs, struct chunk *c, struct err *err)
{
    struct dmg *s = bs->priv;
    size_t idx = (size_t)(c - s->chunks);
    uint64_t out_len = c->sectors * 512;
    int r;
    if (s->current == idx)
        return 0;
    s->current = s->n;
    if (c->type == (uint32_t)ULFO)
        return err_set(err, -ENOTSUP, "dmg: lzfse-compressed chunks are not "
                       "supported");
    if (c->type == (uint32_t)UDCO)
        return err_set(err, -ENOTSUP, "dmg: ADC-compressed chunks are not "
                       "supported");
    free(s->data);
    free(s->zbuf);
    s->zbuf = NULL;
    s->data = calloc(1, out_len);
    if (!s->data)
        return err_set(err, -ENOMEM, "Out of memory");
    if (c->type == (uint32_t)UDRW) {
        r = bdev_pread(bs->file, c->offset, min_u64(c->length, out_len),
                       s->data, err);
        if (r < 0)
            return r;
        s->current = idx;
        return 0;
    }
    s->zbuf = malloc(c->length ? c->length : 1);
    if (!s->zbuf)
        return err_set(err, -ENOMEM, "Out of memory");
    r = bdev_pread(bs->file, c->offset, c->length, s->zbuf, err);
    if (r < 0)
        return r;
    bool ok;
    if (c->type == (uint32_t)UDZO) {
        z_stream z;
        memset(&z, 0, sizeof(z));
        if (inflateInit(&z) != Z_OK)
            return err_set(err, -ENOMEM, "Could not initialise zlib");
        z.next_in = s->zbuf;
        z.avail_in = (uInt)c->length;
        z.next_out = s->data;
        z.avail_out = (uInt)out_len;
        ok = inflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out == out_len;
        inflateEnd(&z);
    } else {
        bz_stream z;
        memset(&z, 0, sizeof(z));
        if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK)
            return err_set(err, -ENOMEM, "Could not initialise bzip2");
        z.next_in = (char *)s->zbuf;
        z.avail_in = (unsigned)c->length;
        z.next_out = (char *)s->data;
        z.avail_out = (unsigned)out_len;
        int zr = BZ2_bzDecompress(&z);
        ok = zr == BZ_STREAM_END && z.avail_out == 0;
        BZ2_bzDecompressEnd(&z);
    }
    if (!ok)
        return err_set(err, -EIO, "dmg: could not decompress the chunk at "
                       "sector %" PRIu64, c->sector);
    s->current = idx;
    return 0;
}

static int dmg_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                    struct err *err)
{
    struct dmg *s = bs->priv;
    uint8_t *p = buf;
    while (len) {
        uint64_t sector = off / 512;
        struct chunk *c = find_chunk(s, sector);
        if (!c)
            return err_set(err, -EIO, "dmg: no chunk holds sector %" PRIu64,
                           sector);
        uint64_t in = off - c->sector * 512;
        uint64_t n = min_u64(len, c->sectors * 512 - in);
        if (type_is_zero(c->type)) {
            memset(p, 0, n);
        } else {
            int r = decode_chunk(bs, c, err);
            if (r < 0)
                return r;
            memcpy(p, s->data + in, n);
        }
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

const struct driver drv_dmg = {
    .name = "dmg",
    .kind = DRV_FORMAT,
    .caps = DRV_READ_ONLY,
    .priv_size = sizeof(struct dmg),
    .probe = dmg_probe,
    .open = dmg_open,
    .close = dmg_close,
    .read = dmg_read,
};
