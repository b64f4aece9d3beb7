/* vmdk sparse extents: the hosted sparse header (KDMV, versions 1-3,
 * including streamOptimized's footer) and VMware 3's COWD header; grain
 * directory and grain table lookup with a small table cache; compressed
 * grains (zlib, with or without grain markers); grain allocation at the
 * end of the extent file (data first, then the table entries). */
#include "fmt/vmdk/vmdk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/align.h"
#include "util/endian.h"

/* KDMV header offsets. */
#define H_MAGIC      0
#define H_VERSION    4
#define H_FLAGS      8
#define H_CAPACITY   12
#define H_GRAIN      20
#define H_DESC_OFF   28
#define H_DESC_SIZE  36
#define H_GTES       44
#define H_RGD_OFF    48
#define H_GD_OFF     56
#define H_OVERHEAD   64
#define H_UNCLEAN    72
#define H_NL_CHARS   73
#define H_COMPRESS   77

#define MAX_CAPACITY_SECTORS (UINT64_C(1) << 44)   /* 8 PiB */
#define MAX_GRAIN_SECTORS    (UINT64_C(1) << 17)   /* 64 MiB */

uint32_t vmdk_sparse_make_header(uint8_t *h, uint64_t capacity,
                                 uint64_t grain, uint64_t desc_off,
                                 uint64_t desc_sectors, uint64_t rgd_off,
                                 uint64_t gd_off, uint64_t overhead,
                                 uint32_t version, uint32_t flags,
                                 uint16_t compress)
{
    memset(h, 0, VMDK_SECTOR);
    st_le32(h + H_MAGIC, VMDK4_MAGIC);
    st_le32(h + H_VERSION, version);
    st_le32(h + H_FLAGS, flags);
    st_le64(h + H_CAPACITY, capacity);
    st_le64(h + H_GRAIN, grain);
    st_le64(h + H_DESC_OFF, desc_off);
    st_le64(h + H_DESC_SIZE, desc_sectors);
    st_le32(h + H_GTES, 512);
    st_le64(h + H_RGD_OFF, rgd_off);
    st_le64(h + H_GD_OFF, gd_off);
    st_le64(h + H_OVERHEAD, overhead);
    h[H_NL_CHARS] = '\n';
    h[H_NL_CHARS + 1] = ' ';
    h[H_NL_CHARS + 2] = '\r';
    h[H_NL_CHARS + 3] = '\n';
    st_le16(h + H_COMPRESS, compress);
    return 0;
}

static int load_dir(struct vmdk_extent *e, uint64_t off, uint32_t **out,
                    uint64_t flen, struct err *err)
{
    uint64_t bytes = (uint64_t)e->gd_entries * 4;
    if (!range_within(off, bytes, flen))
        return err_set(err, -EINVAL, "Grain directory at offset %llu beyond "
                       "end of file", (unsigned long long)off);
    uint8_t *raw = malloc(bytes ? bytes : 1);
    uint32_t *gd = malloc(bytes ? bytes : 1);
    if (!raw || !gd) {
        free(raw);
        free(gd);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    int r = bdev_pread(e->file, off, bytes, raw, err);
    if (r < 0) {
        free(raw);
        free(gd);
        return r;
    }
    for (uint32_t i = 0; i < e->gd_entries; i++)
        gd[i] = ld_le32(raw + 4 * (uint64_t)i);
    free(raw);
    *out = gd;
    return 0;
}

static int open_cowd(struct vmdk_extent *e, const uint8_t *h, uint64_t flen,
                     uint64_t *capacity, struct err *err)
{
    uint32_t sectors = ld_le32(h + 12);
    uint32_t grain = ld_le32(h + 16);
    uint32_t gd_off = ld_le32(h + 20);
    uint32_t gd_size = ld_le32(h + 24);
    if (!grain || grain > MAX_GRAIN_SECTORS || !is_pow2(grain))
        return err_set(err, -EINVAL, "Invalid granularity, image may be corrupt");
    e->type = EXT_COWD;
    e->grain_bytes = (uint64_t)grain * VMDK_SECTOR;
    e->gtes_per_gt = 4096;
    e->gt_bytes = 4096 * 4;
    tmap_cache_init(&e->gt_cache, e->gtes_per_gt, TMAP_LE32);
    uint64_t span = (uint64_t)e->gtes_per_gt * e->grain_bytes;
    uint64_t need = div_round_up((uint64_t)sectors * VMDK_SECTOR, span);
    if (gd_size < need)
        return err_set(err, -EINVAL, "L1 size too small for the disk capacity");
    e->gd_entries = (uint32_t)need;
    e->gd_off = (uint64_t)gd_off * VMDK_SECTOR;
    *capacity = (uint64_t)sectors * VMDK_SECTOR;
    int r = load_dir(e, e->gd_off, &e->gd, flen, err);
    if (r < 0)
        return r;
    e->alloc_end = align_up(flen, VMDK_SECTOR);
    return 0;
}

/* A streamOptimized image keeps its real header in a footer three sectors
 * before the end: footer marker, footer, end-of-stream marker. */
static int read_footer(struct vmdk_extent *e, uint8_t *h, uint64_t flen,
                       struct err *err)
{
    uint8_t buf[3 * VMDK_SECTOR];
    if (flen < 4 * VMDK_SECTOR)
        return err_set(err, -EINVAL, "Invalid footer");
    int r = bdev_pread(e->file, flen - sizeof(buf), sizeof(buf), buf, err);
    if (r < 0)
        return r;
    if (ld_le32(buf + 12) != VMDK_MARKER_FOOTER ||
        ld_le32(buf + VMDK_SECTOR) != VMDK4_MAGIC ||
        ld_le32(buf + 2 * VMDK_SECTOR + 12) != VMDK_MARKER_EOS)
        return err_set(err, -EINVAL, "Invalid footer");
    memcpy(h, buf + VMDK_SECTOR, VMDK_SECTOR);
    return 0;
}

int vmdk_sparse_open(struct vmdk_extent *e, bool is_image_file, struct vmdk *s,
                     uint64_t *capacity, struct err *err)
{
    uint8_t h[VMDK_SECTOR];
    uint64_t flen = e->file->size;
    int r;

    if (flen < VMDK_SECTOR)
        return err_set(err, -EINVAL, "File too small to hold a VMDK header");
    r = bdev_pread(e->file, 0, VMDK_SECTOR, h, err);
    if (r < 0)
        return r;
    if (ld_le32(h) == VMDK3_MAGIC)
        return open_cowd(e, h, flen, capacity, err);
    if (ld_le32(h) != VMDK4_MAGIC)
        return err_set(err, -EINVAL, "Not a valid VMDK sparse extent");

    /* The embedded descriptor belongs to the image file only. */
    uint64_t desc_off = ld_le64(h + H_DESC_OFF);
    uint64_t desc_sectors = ld_le64(h + H_DESC_SIZE);
    if (is_image_file && desc_off && desc_sectors) {
        if (desc_sectors > VMDK_DESC_MAX / VMDK_SECTOR ||
            desc_off > flen / VMDK_SECTOR)
            return err_set(err, -EINVAL, "Invalid descriptor offset or size");
        s->desc_off = desc_off * VMDK_SECTOR;
        s->desc_cap = desc_sectors * VMDK_SECTOR;
        s->desc_embedded = true;
    }

    if (ld_le64(h + H_GD_OFF) == VMDK_GD_AT_END) {
        r = read_footer(e, h, flen, err);
        if (r < 0)
            return r;
    }
    e->type = EXT_SPARSE;
    e->version = ld_le32(h + H_VERSION);
    e->flags = ld_le32(h + H_FLAGS);
    if (e->version > 3)
        return err_set(err, -ENOTSUP, "Unsupported VMDK version %u", e->version);
    if (ld_le16(h + H_COMPRESS) > 1)
        return err_set(err, -ENOTSUP, "Unsupported VMDK compression algorithm %u",
                       ld_le16(h + H_COMPRESS));
    e->compressed = (e->flags & VMDK_FLAG_COMPRESSED) && ld_le16(h + H_COMPRESS);
    e->markers = e->flags & VMDK_FLAG_MARKERS;
    e->zero_grain = e->version >= 2 && (e->flags & VMDK_FLAG_ZERO_GRAIN);

    uint64_t cap = ld_le64(h + H_CAPACITY);
    uint64_t grain = ld_le64(h + H_GRAIN);
    e->gtes_per_gt = ld_le32(h + H_GTES);
    if (cap > MAX_CAPACITY_SECTORS)
        return err_set(err, -EINVAL, "Invalid VMDK capacity %llu sectors",
                       (unsigned long long)cap);
    if (!grain || grain > MAX_GRAIN_SECTORS || !is_pow2(grain))
        return err_set(err, -EINVAL, "Invalid granularity, image may be corrupt");
    if (!e->gtes_per_gt || e->gtes_per_gt > 512)
        return err_set(err, -EINVAL, "L2 table size too big");
    e->grain_bytes = grain * VMDK_SECTOR;
    e->gt_bytes = (uint64_t)e->gtes_per_gt * 4;
    tmap_cache_init(&e->gt_cache, e->gtes_per_gt, TMAP_LE32);
    uint64_t span = (uint64_t)e->gtes_per_gt * e->grain_bytes;
    uint64_t entries = div_round_up(cap * VMDK_SECTOR, span);
    if (entries > 512 * 1024 * 1024 / 4)
        return err_set(err, -EINVAL, "L1 size too big");
    e->gd_entries = (uint32_t)entries;
    *capacity = cap * VMDK_SECTOR;

    uint64_t gd = ld_le64(h + H_GD_OFF), rgd = ld_le64(h + H_RGD_OFF);
    if (gd > flen / VMDK_SECTOR)
        return err_set(err, -EINVAL, "Grain directory offset beyond end of file");
    e->gd_off = gd * VMDK_SECTOR;
    r = load_dir(e, e->gd_off, &e->gd, flen, err);
    if (r < 0)
        return r;
    if ((e->flags & VMDK_FLAG_RGD) && rgd && !e->compressed) {
        if (rgd > flen / VMDK_SECTOR)
            return err_set(err, -EINVAL, "Redundant grain directory offset "
                           "beyond end of file");
        e->rgd_off = rgd * VMDK_SECTOR;
        r = load_dir(e, e->rgd_off, &e->rgd, flen, err);
        if (r < 0)
            return r;
    }
    e->alloc_end = align_up(flen, VMDK_SECTOR);
    return 0;
}

void vmdk_extent_free(struct vmdk_extent *e)
{
    vmdk_stream_free(e);
    tmap_cache_drop(&e->gt_cache);
    free(e->gd);
    free(e->gd64);
    free(e->rgd);
    free(e->type_name);
    free(e->path);
    if (e->own_file)
        bdev_close(e->file);
    memset(e, 0, sizeof(*e));
}

/* The grain table for directory entry `idx`, through the cache. */
static int get_gt(struct vmdk_extent *e, uint32_t idx, uint32_t **gt,
                  struct err *err)
{
    uint64_t off = (uint64_t)e->gd[idx] * VMDK_SECTOR;
    void *t = NULL;
    if (!range_within(off, e->gt_bytes, e->file->size))
        return err_set(err, -EINVAL, "Grain table %u at offset %llu beyond "
                       "end of file", idx, (unsigned long long)off);
    int r = tmap_cache_get(&e->gt_cache, e->file, off, &t, err);
    *gt = t;
    return r;
}

int vmdk_sparse_lookup(struct vmdk_extent *e, uint64_t off, uint64_t *host,
                       struct err *err)
{
    uint64_t grain = off / e->grain_bytes;
    uint64_t idx = grain / e->gtes_per_gt;
    uint32_t *gt = NULL;
    if (e->type == EXT_SESPARSE)
        return vmdk_sesparse_lookup(e, off, host, err);
    *host = 0;
    if (idx >= e->gd_entries || !e->gd[idx])
        return 0;
    int r = get_gt(e, (uint32_t)idx, &gt, err);
    if (r < 0)
        return r;
    uint32_t v = gt[grain % e->gtes_per_gt];
    if (v == 1 && e->zero_grain)
        *host = 1;
    else
        *host = (uint64_t)v * VMDK_SECTOR;
    return 0;
}

static int read_compressed(struct vmdk_extent *e, uint64_t host,
                           uint64_t in_off, uint64_t len, uint8_t *buf,
                           struct err *err)
{
    uint64_t flen = e->file->size, data_off = host, csize;
    int r;
    if (e->markers) {
        uint8_t m[12];
        if (!range_within(host, sizeof(m), flen))
            return err_set(err, -EINVAL, "Compressed grain at offset %llu beyond "
                           "end of file", (unsigned long long)host);
        r = bdev_pread(e->file, host, sizeof(m), m, err);
        if (r < 0)
            return r;
        csize = ld_le32(m + 8);
        data_off = host + 12;
    } else {
        csize = min_u64(2 * e->grain_bytes + 64, flen > host ? flen - host : 0);
    }
    if (!csize || csize > 2 * e->grain_bytes + 64 ||
        !range_within(data_off, csize, flen))
        return err_set(err, -EINVAL, "Invalid compressed grain at offset %llu",
                       (unsigned long long)host);
    uint8_t *cbuf = malloc(csize), *grain = malloc(e->grain_bytes);
    if (!cbuf || !grain) {
        free(cbuf);
        free(grain);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    r = bdev_pread(e->file, data_off, csize, cbuf, err);
    if (r >= 0) {
        uLongf out_len = (uLongf)e->grain_bytes;
        int zr = uncompress(grain, &out_len, cbuf, (uLong)csize);
        if ((zr != Z_OK && !(zr == Z_BUF_ERROR && !e->markers)) ||
            out_len != e->grain_bytes)
            r = err_set(err, -EIO, "Could not decompress grain at offset %llu",
                        (unsigned long long)host);
        else
            memcpy(buf, grain + in_off, len);
    }
    free(cbuf);
    free(grain);
    return r;
}

int vmdk_sparse_read_grain(struct vmdk_extent *e, uint64_t host,
                           uint64_t in_off, uint64_t len, uint8_t *buf,
                           struct err *err)
{
    if (e->compressed)
        return read_compressed(e, host, in_off, len, buf, err);
    if (host + in_off >= e->file->size) {
        memset(buf, 0, len);
        return 0;
    }
    return bdev_pread(e->file, host + in_off, len, buf, err);
}

static int write_entry(struct vmdk_extent *e, uint64_t off, uint32_t val,
                       struct err *err)
{
    uint8_t b[4];
    st_le32(b, val);
    return bdev_pwrite(e->file, off, 4, b, err);
}

/* Give directory entry `idx` a zeroed grain table (and its redundant copy)
 * at the end of the file. */
static int alloc_gt(struct vmdk_extent *e, uint32_t idx, struct err *err)
{
    uint64_t gt_sectors = div_round_up(e->gt_bytes, VMDK_SECTOR);
    uint8_t *z = calloc(1, gt_sectors * VMDK_SECTOR);
    int r;
    if (!z)
        return err_set(err, -ENOMEM, "Out of memory");
    for (int copy = 0; copy < (e->rgd ? 2 : 1); copy++) {
        uint64_t off = e->alloc_end;
        if (off / VMDK_SECTOR > UINT32_MAX) {
            free(z);
            return err_set(err, -EFBIG, "VMDK extent too large");
        }
        r = bdev_pwrite(e->file, off, gt_sectors * VMDK_SECTOR, z, err);
        if (r >= 0)
            r = bdev_flush(e->file, err);
        if (r >= 0)
            r = write_entry(e, (copy ? e->rgd_off : e->gd_off) + 4 * (uint64_t)idx,
                            (uint32_t)(off / VMDK_SECTOR), err);
        if (r < 0) {
            free(z);
            return r;
        }
        (copy ? e->rgd : e->gd)[idx] = (uint32_t)(off / VMDK_SECTOR);
        e->alloc_end += gt_sectors * VMDK_SECTOR;
    }
    free(z);
    return 0;
}

int vmdk_sparse_set_gte(struct vmdk_extent *e, uint64_t off, uint32_t val,
                        struct err *err)
{
    uint64_t grain = off / e->grain_bytes;
    uint32_t idx = (uint32_t)(grain / e->gtes_per_gt);
    uint32_t slot = (uint32_t)(grain % e->gtes_per_gt);
    uint32_t *gt = NULL;
    int r;
    if (idx >= e->gd_entries)
        return err_set(err, -EIO, "Grain beyond the grain directory");
    if (!e->gd[idx] || (e->rgd && !e->rgd[idx])) {
        r = alloc_gt(e, idx, err);
        if (r < 0)
            return r;
    }
    r = get_gt(e, idx, &gt, err);
    if (r < 0)
        return r;
    r = write_entry(e, (uint64_t)e->gd[idx] * VMDK_SECTOR + 4 * (uint64_t)slot,
                    val, err);
    if (r >= 0 && e->rgd)
        r = write_entry(e, (uint64_t)e->rgd[idx] * VMDK_SECTOR +
                        4 * (uint64_t)slot, val, err);
    if (r >= 0)
        gt[slot] = val;
    return r;
}

int vmdk_sparse_alloc(struct vmdk_extent *e, uint64_t off, const uint8_t *grain,
                      struct err *err)
{
    uint64_t host = e->alloc_end;
    if ((host + e->grain_bytes) / VMDK_SECTOR > UINT32_MAX)
        return err_set(err, -EFBIG, "VMDK extent too large");
    int r = bdev_pwrite(e->file, host, e->grain_bytes, grain, err);
    if (r < 0)
        return r;
    e->alloc_end = host + e->grain_bytes;
    /* The data must be durable before a table entry points at it. */
    r = bdev_flush(e->file, err);
    if (r < 0)
        return r;
    return vmdk_sparse_set_gte(e, off, (uint32_t)(host / VMDK_SECTOR), err);
}
