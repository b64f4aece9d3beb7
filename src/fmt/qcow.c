/* qcow: the original QEMU copy-on-write format (version 1).
 *
 * Layout: a 48-byte big-endian header, an optional backing file name, an
 * L1 table of 64-bit offsets to L2 tables, whose entries are data cluster
 * offsets; bit 63 marks a cluster stored deflate-compressed (raw deflate,
 * 4 KiB window) with its compressed length in the bits below it.
 *
 * Supported: reading, writing (clusters appended at the end of the file,
 * partial clusters filled from the backing file), compressed clusters
 * (read and write_compressed), backing files, block status.  AES-encrypted
 * images can be inspected (info) but not read or written: that needs the
 * legacy AES support, which qimg does not have yet.  Every offset is
 * validated against the file size before use. */
#include "block/driver.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fmt/table-map.h"
#include "util/align.h"
#include "util/endian.h"
#include "util/inflate.h"

#define QCOW_MAGIC          0x514649fbu     /* "QFI\xfb" */
#define QCOW_VERSION        1
#define QCOW_HEADER_BYTES   48
#define QCOW_CRYPT_NONE     0
#define QCOW_CRYPT_AES      1
#define QCOW_COMPRESSED     (UINT64_C(1) << 63)

struct qcow {
    uint32_t cluster_bits, l2_bits;
    uint64_t cluster_size, l2_entries;
    uint64_t l1_offset;
    uint64_t l1_entries;
    uint64_t *l1;           /* host order */
    uint64_t offset_mask;   /* low bits of a compressed entry */
    uint32_t crypt_method;
    struct tmap_cache l2_cache;
    uint8_t *zbuf;          /* compressed bytes of one cluster */
    uint8_t *cluster;       /* last decompressed cluster */
    uint64_t cluster_entry; /* its L2 entry, 0 when none */
};

static int qcow_probe(struct bdev *file, const uint8_t *buf, size_t len,
                      const char *filename)
{
    (void)file;
    (void)filename;
    if (len < QCOW_HEADER_BYTES)
        return 0;
    return ld_be32(buf) == QCOW_MAGIC && ld_be32(buf + 4) == QCOW_VERSION ?
           100 : 0;
}

static void qcow_close(struct bdev *bs)
{
    struct qcow *s = bs->priv;
    tmap_cache_drop(&s->l2_cache);
    free(s->l1);
    free(s->zbuf);
    free(s->cluster);
    s->l1 = NULL;
    s->zbuf = s->cluster = NULL;
}

static int read_backing_name(struct bdev *bs, uint64_t off, uint32_t len,
                             struct err *err)
{
    if (len > 1023)
        return err_set(err, -EINVAL, "Backing file name too long");
    if (!range_within(off, len, bs->file->size))
        return err_set(err, -EINVAL, "Backing file name lies beyond the end "
                       "of the file");
    char *name = calloc(1, len + 1);
    if (!name)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = len ? bdev_pread(bs->file, off, len, name, err) : 0;
    if (r < 0) {
        free(name);
        return r;
    }
    free(bs->backing_file);
    bs->backing_file = name;
    return 0;
}

static int check_encryption(struct bdev *bs, struct kvlist *opts,
                            struct err *err)
{
    struct qcow *s = bs->priv;
    const char *fmt = kv_get(opts, "encrypt.format");
    const char *secret = kv_get(opts, "encrypt.key-secret");
    if (s->crypt_method == QCOW_CRYPT_NONE) {
        if (fmt)
            return err_set(err, -EINVAL, "No encryption in image header, but "
                           "options specified format '%s'", fmt);
        return 0;
    }
    if (s->crypt_method != QCOW_CRYPT_AES)
        return err_set(err, -EINVAL, "invalid encryption method in qcow "
                       "header");
    if (fmt && strcmp(fmt, "aes"))
        return err_set(err, -EINVAL, "Header reported 'aes' encryption format "
                       "but options specify '%s'", fmt);
    if (bs->flags & BDEV_O_NO_IO)
        return 0;
    if (!secret)
        return err_set(err, -EINVAL, "Parameter 'encrypt.key-secret' is "
                       "required for cipher");
    return err_set(err, -ENOTSUP, "AES-encrypted qcow images are not "
                   "supported by qimg yet");
}

static int qcow_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct qcow *s = bs->priv;
    struct bdev *file = bs->file;
    uint8_t h[QCOW_HEADER_BYTES];
    int r;

    memset(h, 0, sizeof(h));
    if (file->size && (r = bdev_pread(file, 0, min_u64(sizeof(h), file->size),
                                      h, err)) < 0)
        return r;
    uint32_t version = ld_be32(h + 4);
    uint64_t backing_off = ld_be64(h + 8);
    uint32_t backing_len = ld_be32(h + 16);
    uint64_t size = ld_be64(h + 24);
    s->cluster_bits = h[32];
    s->l2_bits = h[33];
    s->crypt_method = ld_be32(h + 36);
    s->l1_offset = ld_be64(h + 40);

    if (ld_be32(h) != QCOW_MAGIC)
        return err_set(err, -EINVAL, "Image not in qcow format");
    if (version != QCOW_VERSION)
        return err_set(err, -ENOTSUP, "qcow (v%d) does not support qcow "
                       "version %" PRIu32, QCOW_VERSION, version);
    if (size <= 1)
        return err_set(err, -EINVAL, "Image size is too small (must be at "
                       "least 2 bytes)");
    if (s->cluster_bits < 9 || s->cluster_bits > 16)
        return err_set(err, -EINVAL, "Cluster size must be between 512 and "
                       "64k");
    if (s->l2_bits < 9 - 3 || s->l2_bits > 16 - 3)
        return err_set(err, -EINVAL, "L2 table size must be between 512 and "
                       "64k");
    r = check_encryption(bs, opts, err);
    if (r < 0)
        return r;
    s->cluster_size = UINT64_C(1) << s->cluster_bits;
    s->l2_entries = UINT64_C(1) << s->l2_bits;
    tmap_cache_init(&s->l2_cache, s->l2_entries, TMAP_BE64);
    s->offset_mask = (UINT64_C(1) << (63 - s->cluster_bits)) - 1;
    uint32_t shift = s->cluster_bits + s->l2_bits;
    if (size > UINT64_MAX - (UINT64_C(1) << shift))
        return err_set(err, -EINVAL, "Image too large");
    s->l1_entries = (size + (UINT64_C(1) << shift) - 1) >> shift;
    if (s->l1_entries > INT_MAX / 8)
        return err_set(err, -EINVAL, "Image too large");
    if (!range_within(s->l1_offset, s->l1_entries * 8, file->size))
        return err_set(err, -EINVAL, "L1 table (offset 0x%" PRIx64 ", %"
                       PRIu64 " entries) lies beyond the end of the file",
                       s->l1_offset, s->l1_entries);
    s->l1 = malloc(s->l1_entries * 8 + 8);
    s->zbuf = malloc(s->cluster_size);
    s->cluster = malloc(s->cluster_size);
    if (!s->l1 || !s->zbuf || !s->cluster) {
        r = err_set(err, -ENOMEM, "Could not allocate memory for L1 table");
        goto fail;
    }
    if (s->l1_entries) {
        r = bdev_pread(file, s->l1_offset, s->l1_entries * 8, s->l1, err);
        if (r < 0)
            goto fail;
    }
    for (uint64_t i = 0; i < s->l1_entries; i++)
        s->l1[i] = ld_be64(&s->l1[i]);
    if (backing_off) {
        r = read_backing_name(bs, backing_off, backing_len, err);
        if (r < 0)
            goto fail;
    }
    bs->size = align_down(size, 512);
    bs->align = 1;
    return 0;
fail:
    qcow_close(bs);
    return r;
}

/* The L2 table at `off`, through the cache. */
static int get_l2(struct bdev *bs, uint64_t off, uint64_t **out,
                  struct err *err)
{
    struct qcow *s = bs->priv;
    if (!range_within(off, s->l2_entries * 8, bs->file->size))
        return err_set(err, -EIO, "qcow L2 table at 0x%" PRIx64 " lies beyond "
                       "the end of the file", off);
    void *t = NULL;
    int r = tmap_cache_get(&s->l2_cache, bs->file, off, &t, err);
    *out = t;
    return r;
}

/* The L2 entry for guest offset `off` (0 when unallocated), checked
 * against the file size. */
static int get_entry(struct bdev *bs, uint64_t off, uint64_t *entry,
                     struct err *err)
{
    struct qcow *s = bs->priv;
    uint64_t l1_idx = off >> (s->l2_bits + s->cluster_bits);
    uint64_t l2_idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
    uint64_t *l2 = NULL;
    *entry = 0;
    if (l1_idx >= s->l1_entries || !s->l1[l1_idx])
        return 0;
    int r = get_l2(bs, s->l1[l1_idx], &l2, err);
    if (r < 0)
        return r;
    uint64_t e = l2[l2_idx];
    if (e & QCOW_COMPRESSED) {
        uint64_t coff = e & s->offset_mask;
        uint64_t csize = (e >> (63 - s->cluster_bits)) & (s->cluster_size - 1);
        if (!range_within(coff, csize, bs->file->size))
            return err_set(err, -EIO, "qcow compressed cluster at 0x%" PRIx64
                           " lies beyond the end of the file", coff);
    } else if (e) {
        if (e & 511)
            return err_set(err, -EIO, "qcow cluster offset 0x%" PRIx64
                           " is not sector aligned", e);
        if (e >= bs->file->size)
            return err_set(err, -EIO, "qcow cluster offset 0x%" PRIx64
                           " lies beyond the end of the file", e);
    }
    *entry = e;
    return 0;
}

static int decompress_cluster(struct bdev *bs, uint64_t e, struct err *err)
{
    struct qcow *s = bs->priv;
    if (s->cluster_entry == e)
        return 0;
    uint64_t coff = e & s->offset_mask;
    uint64_t csize = (e >> (63 - s->cluster_bits)) & (s->cluster_size - 1);
    int r = bdev_pread(bs->file, coff, csize, s->zbuf, err);
    if (r < 0)
        return r;
    s->cluster_entry = 0;
    r = inflate_cluster(s->zbuf, csize, s->cluster, s->cluster_size);
    if (r == -ENOMEM)
        return err_set(err, r, "Could not initialise zlib");
    if (r < 0)
        return err_set(err, -EIO, "Could not decompress the qcow cluster at "
                       "0x%" PRIx64, coff);
    s->cluster_entry = e;
    return 0;
}

static int qcow_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                     struct err *err)
{
    struct qcow *s = bs->priv;
    uint8_t *p = buf;
    while (len) {
        uint64_t in = off & (s->cluster_size - 1);
        uint64_t n = min_u64(len, s->cluster_size - in), e;
        int r = get_entry(bs, off, &e, err);
        if (r < 0)
            return r;
        if (!e) {
            r = bdev_read_backing(bs, off, n, p, err);
        } else if (e & QCOW_COMPRESSED) {
            r = decompress_cluster(bs, e, err);
            if (r >= 0)
                memcpy(p, s->cluster + in, n);
        } else {
            /* Clusters that follow each other in the file too are read
             * with one request. */
            while (n < len) {
                uint64_t next;
                struct err e2 = ERR_INIT;
                if (get_entry(bs, off + n, &next, &e2) < 0 ||
                    next != e + in + n)
                    break;
                n += min_u64(len - n, s->cluster_size);
            }
            r = bdev_pread(bs->file, e + in, n, p, err);
        }
        if (r < 0)
            return r;
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

/* Make sure guest offset `off` has an L2 table: a new one goes, zeroed, at
 * the next cluster boundary of the file, before the data it will name (the
 * layout QEMU produces), and the L1 entry is written once it is on disk. */
static int ensure_l2(struct bdev *bs, uint64_t off, struct err *err)
{
    struct qcow *s = bs->priv;
    uint64_t l1_idx = off >> (s->l2_bits + s->cluster_bits);
    uint64_t bytes = s->l2_entries * 8;
    uint8_t be[8];
    if (s->l1[l1_idx])
        return 0;
    uint64_t l2_off = align_up(bs->file->size, s->cluster_size);
    uint8_t *zero = calloc(1, bytes);
    if (!zero)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = bdev_pwrite(bs->file, l2_off, bytes, zero, err);
    free(zero);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    if (r < 0)
        return r;
    st_be64(be, l2_off);
    r = bdev_pwrite(bs->file, s->l1_offset + l1_idx * 8, 8, be, err);
    if (r < 0)
        return r;
    s->l1[l1_idx] = l2_off;
    return 0;
}

/* Point the L2 entry of guest offset `off` (whose table exists) at
 * `value`; the data it names is already written. */
static int set_entry(struct bdev *bs, uint64_t off, uint64_t value,
                     struct err *err)
{
    struct qcow *s = bs->priv;
    uint64_t l1_idx = off >> (s->l2_bits + s->cluster_bits);
    uint64_t l2_idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
    uint64_t *l2 = NULL;
    uint8_t be[8];
    int r = get_l2(bs, s->l1[l1_idx], &l2, err);
    if (r < 0)
        return r;
    st_be64(be, value);
    r = bdev_pwrite(bs->file, s->l1[l1_idx] + l2_idx * 8, 8, be, err);
    if (r < 0)
        return r;
    l2[l2_idx] = value;
    return 0;
}

/* Write into one cluster: in place when allocated, else into a new
 * cluster at the end of the file whose untouched parts come from the old
 * compressed contents or the backing file. */
static int write_cluster(struct bdev *bs, uint64_t off, uint64_t n,
                         const uint8_t *data, struct err *err)
{
    struct qcow *s = bs->priv;
    uint64_t in = off & (s->cluster_size - 1), e;
    int r = get_entry(bs, off, &e, err);
    if (r < 0)
        return r;
    if (e && !(e & QCOW_COMPRESSED))
        return bdev_pwrite(bs->file, e + in, n, data, err);

    uint8_t *buf = malloc(s->cluster_size);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    uint64_t start = off - in;
    uint64_t valid = min_u64(s->cluster_size, bs->size - start);
    r = 0;
    if (n < s->cluster_size) {
        if (e) {
            r = decompress_cluster(bs, e, err);
            if (r >= 0)
                memcpy(buf, s->cluster, s->cluster_size);
        } else {
            memset(buf, 0, s->cluster_size);
            r = bdev_read_backing(bs, start, valid, buf, err);
        }
    }
    memcpy(buf + in, data, n);
    if (r >= 0)
        r = ensure_l2(bs, off, err);
    uint64_t host = align_up(bs->file->size, s->cluster_size);
    if (r >= 0)
        r = bdev_pwrite(bs->file, host, s->cluster_size, buf, err);
    free(buf);
    s->cluster_entry = 0;
    if (r >= 0 && bs->backing)
        r = bdev_flush(bs->file, err);
    if (r >= 0)
        r = set_entry(bs, off, host, err);
    return r;
}

static int qcow_write(struct bdev *bs, uint64_t off, uint64_t len,
                      const void *buf, struct err *err)
{
    struct qcow *s = bs->priv;
    const uint8_t *p = buf;
    s->cluster_entry = 0;
    while (len) {
        uint64_t n = min_u64(len, s->cluster_size -
                                  (off & (s->cluster_size - 1)));
        int r = write_cluster(bs, off, n, p, err);
        if (r < 0)
            return r;
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

/* One whole cluster (the last may be short), deflated; stored plainly
 * when that does not save space or the cluster is already allocated. */
static int qcow_write_compressed(struct bdev *bs, uint64_t off, uint64_t len,
                                 const void *data, struct err *err)
{
    struct qcow *s = bs->priv;
    uint64_t e;
    /* An empty write ends a compressed copy; QEMU leaves a qcow file as
     * it is then. */
    if (len == 0)
        return 0;
    if ((off & (s->cluster_size - 1)) || len > s->cluster_size ||
        (len < s->cluster_size && off + len != bs->size))
        return err_set(err, -EINVAL, "Compressed writes must cover one whole "
                       "cluster");
    int r = get_entry(bs, off, &e, err);
    if (r < 0)
        return r;
    if (e)
        return qcow_write(bs, off, len, data, err);
    uint8_t *in = calloc(1, s->cluster_size);
    if (!in)
        return err_set(err, -ENOMEM, "Out of memory");
    memcpy(in, data, len);
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(in);
        return err_set(err, -ENOMEM, "Could not initialise zlib");
    }
    z.next_in = in;
    z.avail_in = (uInt)s->cluster_size;
    z.next_out = s->zbuf;
    z.avail_out = (uInt)s->cluster_size;
    int zr = deflate(&z, Z_FINISH);
    uint64_t out = s->cluster_size - z.avail_out;
    deflateEnd(&z);
    free(in);
    if (zr != Z_STREAM_END || out >= s->cluster_size)
        return qcow_write(bs, off, len, data, err);
    r = ensure_l2(bs, off, err);
    if (r < 0)
        return r;
    /* QEMU sees file lengths in whole sectors: compressed data starts at
     * the next sector boundary. */
    uint64_t host = align_up(bs->file->size, 512);
    r = bdev_pwrite(bs->file, host, out, s->zbuf, err);
    if (r >= 0 && bs->backing)
        r = bdev_flush(bs->file, err);
    if (r >= 0)
        r = set_entry(bs, off, QCOW_COMPRESSED |
                      out << (63 - s->cluster_bits) | host, err);
    s->cluster_entry = 0;
    return r;
}

static int qcow_flush(struct bdev *bs, struct err *err)
{
    return bdev_flush(bs->file, err);
}

static int qcow_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                             struct bstatus *st, struct err *err)
{
    struct qcow *s = bs->priv;
    uint64_t in = off & (s->cluster_size - 1), e;
    int r = get_entry(bs, off, &e, err);
    if (r < 0)
        return r;
    st->len = min_u64(len, s->cluster_size - in);
    /* Extend over following clusters of the same kind: unallocated, or
     * plain clusters contiguous in the file (compressed ones stand alone). */
    uint32_t l2_shift = s->cluster_bits + s->l2_bits;
    while (st->len < len && !(e & QCOW_COMPRESSED)) {
        uint64_t pos = off + st->len, next;
        uint64_t l1_idx = pos >> l2_shift;
        struct err e2 = ERR_INIT;
        if (!e && (l1_idx >= s->l1_entries || !s->l1[l1_idx])) {
            /* a whole unallocated L2 range at once */
            uint64_t span_end = (l1_idx + 1) << l2_shift;
            st->len += min_u64(len - st->len, span_end - pos);
            continue;
        }
        if (get_entry(bs, pos, &next, &e2) < 0)
            break;
        if (e ? next != e + in + st->len : next != 0)
            break;
        st->len += min_u64(len - st->len, s->cluster_size);
    }
    if (!e) {
        st->flags = 0;
    } else if (e & QCOW_COMPRESSED) {
        st->flags = BS_DATA | BS_ALLOCATED;
    } else {
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID;
        st->host_off = e + in;
        st->file = bs->file;
    }
    return 0;
}

static int qcow_get_info(struct bdev *bs, struct bdev_info *info,
                         struct err *err)
{
    struct qcow *s = bs->priv;
    (void)err;
    info->cluster_size = (int64_t)s->cluster_size;
    info->encrypted = s->crypt_method != QCOW_CRYPT_NONE;
    return 0;
}

static int encryption_requested(struct kvlist *opts, bool *on,
                                struct err *err)
{
    const char *fmt = kv_get(opts, "encrypt.format");
    bool legacy;
    int r = kv_get_bool(opts, "encryption", false, &legacy, err);
    if (r < 0)
        return r;
    if (fmt && strcmp(fmt, "aes"))
        return err_set(err, -EINVAL, "Unsupported encryption format");
    *on = legacy || fmt;
    return 0;
}

static int qcow_create(const char *filename, struct kvlist *opts,
                       struct err *err)
{
    uint64_t size;
    bool encrypt;
    int r = kv_get_size(opts, "size", 0, &size, err);
    if (r < 0)
        return r;
    const char *backing = kv_get(opts, "backing_file");
    const char *backing_fmt = kv_get(opts, "backing_fmt");
    if (backing_fmt && !bdev_find_format(backing_fmt))
        return err_set(err, -EINVAL, "unrecognized backing format '%s'",
                       backing_fmt);
    size = align_up(size, 512);
    if (size == 0)
        return err_set(err, -EINVAL, "Image size is too small, cannot be zero "
                       "length");
    r = encryption_requested(opts, &encrypt, err);
    if (r < 0)
        return r;
    if (encrypt) {
        if (!kv_get(opts, "encrypt.key-secret"))
            return err_set(err, -EINVAL, "Parameter 'encrypt.key-secret' is "
                           "required for cipher");
        return err_set(err, -ENOTSUP, "Creating AES-encrypted qcow images is "
                       "not supported by qimg yet");
    }

    size_t blen = backing ? strlen(backing) : 0;
    if (blen > 1023)
        return err_set(err, -EINVAL, "Backing file name too long");
    uint32_t cluster_bits = backing ? 9 : 12;
    uint32_t l2_bits = backing ? 12 : 9;
    uint32_t shift = cluster_bits + l2_bits;
    uint64_t header_bytes = align_up(QCOW_HEADER_BYTES + blen, 8);
    uint64_t l1_entries = (size + (UINT64_C(1) << shift) - 1) >> shift;
    if (l1_entries > INT_MAX / 8)
        return err_set(err, -EINVAL, "Image too large");
    uint64_t l1_bytes = align_up(l1_entries * 8, 512);
    uint8_t *buf = calloc(1, header_bytes + l1_bytes);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    st_be32(buf, QCOW_MAGIC);
    st_be32(buf + 4, QCOW_VERSION);
    if (backing) {
        st_be64(buf + 8, QCOW_HEADER_BYTES);
        st_be32(buf + 16, (uint32_t)blen);
        memcpy(buf + QCOW_HEADER_BYTES, backing, blen);
    }
    st_be64(buf + 24, size);
    buf[32] = (uint8_t)cluster_bits;
    buf[33] = (uint8_t)l2_bits;
    st_be64(buf + 40, header_bytes);

    struct bdev *file = NULL;
    r = tmap_create_empty_file(filename, opts, err);
    if (r >= 0) {
        file = bdev_open_file(filename, BDEV_O_RDWR | BDEV_O_NO_LOCK, err);
        if (!file)
            r = err->code ? err->code : -EIO;
    }
    if (r >= 0)
        r = bdev_truncate(file, 0, true, PREALLOC_OFF, err);
    if (r >= 0)
        r = bdev_pwrite(file, 0, header_bytes + l1_bytes, buf, err);
    if (r >= 0)
        r = bdev_flush(file, err);
    bdev_close(file);
    free(buf);
    return r < 0 ? r : 0;
}

static const struct opt_desc qcow_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "backing_file", OPT_STRING, "File name of a base image", NULL },
    { "backing_fmt", OPT_STRING, "Format of the backing image", NULL },
    { "encryption", OPT_BOOL, "Encrypt the image with format 'aes'. "
      "(Deprecated in favor of encrypt.format=aes)", NULL },
    { "encrypt.format", OPT_STRING,
      "Encrypt the image, format choices: 'aes'", NULL },
    { "encrypt.key-secret", OPT_STRING,
      "ID of the secret that provides the AES encryption key", NULL },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_qcow = {
    .name = "qcow",
    .kind = DRV_FORMAT,
    .caps = DRV_BACKING | DRV_ZERO_INIT,
    .priv_size = sizeof(struct qcow),
    .create_opts = qcow_create_opts,
    .probe = qcow_probe,
    .open = qcow_open,
    .close = qcow_close,
    .create = qcow_create,
    .read = qcow_read,
    .write = qcow_write,
    .write_compressed = qcow_write_compressed,
    .flush = qcow_flush,
    .block_status = qcow_block_status,
    .get_info = qcow_get_info,
};
