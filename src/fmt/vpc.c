/* vpc: Microsoft Virtual Hard Disk (VHD) images, "Virtual Hard Disk Image
 * Format Specification" (Virtual PC / Hyper-V).
 *
 * Supported: fixed and dynamic disks, read and write, create (with CHS
 * geometry sizing as qemu-img does it, or force_size), growing resize, block
 * status.  No measure callback: qemu-img 7.2 refuses `measure -O vpc`.
 * The footer is found at offset 0 (the copy dynamic disks keep
 * there) or at the end of the file (fixed disks).
 *
 * Differencing disks (type 4, written by Hyper-V and Virtual PC) are read
 * and written through the backing chain: the parent is named by the
 * dynamic header's parent locators (W2ru relative and W2ku absolute UTF-16LE
 * Windows paths, MacX file URLs, the deprecated Wi2r/Wi2k ones; Mac alias
 * records are opaque and skipped), its footer's unique ID must match the
 * one the child records, and each block's sector bitmap says which sectors
 * the child holds (bit set) and which come from the parent.  qemu-img 7.2
 * reads such images as plain dynamic disks, parent ignored.
 *
 * Dynamic disks' sector bitmaps are ignored on read (an allocated block is
 * read whole, as qemu-img does); their new blocks get a bitmap with every
 * sector marked present since the block's unwritten sectors read as zeros
 * from the file. */
#include "block/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/align.h"
#include "util/endian.h"
#include "util/random.h"
#include "util/winpath.h"
#include "util/zero.h"

#define VHD_FOOTER_SIZE   512
#define VHD_DYN_SIZE      1024
#define VHD_TYPE_FIXED    2
#define VHD_TYPE_DYNAMIC  3
#define VHD_TYPE_DIFF     4
#define VHD_BAT_FREE      0xFFFFFFFFu
#define VHD_BLOCK_SIZE    (2u * 1024 * 1024)
/* Largest CHS geometry; images using it store their size in current_size. */
#define VHD_CHS_MAX_C     65535ull
#define VHD_CHS_MAX_H     16ull
#define VHD_CHS_MAX_S     255ull
#define VHD_MAX_GEOMETRY  (VHD_CHS_MAX_C * VHD_CHS_MAX_H * VHD_CHS_MAX_S)
#define VHD_MAX_SECTORS   0xff000000ull   /* 2040 GiB */
/* Seconds between the Unix epoch and 2000-01-01, the VHD epoch. */
#define VHD_EPOCH_OFFSET  946684800ull

/* Footer field offsets. */
#define F_COOKIE      0
#define F_FEATURES    8
#define F_VERSION     12
#define F_DATA_OFF    16
#define F_TIMESTAMP   24
#define F_CREATOR_APP 28
#define F_CREATOR_VER 32
#define F_CREATOR_OS  36
#define F_ORIG_SIZE   40
#define F_CUR_SIZE    48
#define F_CYLS        56
#define F_HEADS       58
#define F_SECS        59
#define F_TYPE        60
#define F_CHECKSUM    64
#define F_UUID        68

/* Dynamic header field offsets. */
#define D_COOKIE      0
#define D_DATA_OFF    8
#define D_TABLE_OFF   16
#define D_VERSION     24
#define D_MAX_ENTRIES 28
#define D_BLOCK_SIZE  32
#define D_CHECKSUM    36
#define D_PARENT_UUID 40
#define D_PARENT_NAME 64      /* 512 bytes of UTF-16BE */
#define D_LOCATORS    576     /* 8 entries of 24 bytes */
#define VHD_LOCATORS  8
/* Longest parent locator accepted (a Windows path is at most 32767 UTF-16
 * code units). */
#define VHD_LOCATOR_MAX 65536u

struct vpc {
    uint8_t footer[VHD_FOOTER_SIZE];
    bool dynamic;             /* also true for differencing disks */
    bool diff;                /* differencing: bitmaps choose child/parent */
    uint64_t footer_off;      /* where the trailing footer lives */
    /* dynamic disks */
    uint64_t bat_off;
    uint32_t bat_entries;
    uint32_t block_size;
    uint32_t bitmap_size;     /* bytes, multiple of 512 */
    uint32_t *bat;            /* native order, in sectors */
    uint64_t free_off;        /* first byte after the last block */
    /* differencing disks: the sector bitmap of block bm_idx */
    uint8_t *bm;
    uint64_t bm_idx;
};

static uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t skip_at)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        if (i < skip_at || i >= skip_at + 4)
            sum += buf[i];
    return ~sum;
}

static void vhd_set_checksum(uint8_t *buf, size_t len, size_t at)
{
    st_be32(buf + at, vhd_checksum(buf, len, at));
}

/* A footer with its cookie and a correct checksum. */
static bool vhd_footer_ok(const uint8_t *f)
{
    return !memcmp(f + F_COOKIE, "conectix", 8) &&
           ld_be32(f + F_CHECKSUM) == vhd_checksum(f, VHD_FOOTER_SIZE, F_CHECKSUM);
}

/* CHS geometry for a sector count, per the specification's algorithm.
 * Returns -EFBIG when the count needs more than the largest geometry. */
static int vhd_geometry(uint64_t total, uint16_t *cyls, uint8_t *heads,
                        uint8_t *secs)
{
    uint64_t cth, h, s;
    if (total > VHD_MAX_GEOMETRY)
        return -EFBIG;
    if (total >= 65535ull * 16 * 63) {
        s = 255;
        h = 16;
        cth = total / s;
    } else {
        s = 17;
        cth = total / s;
        h = (cth + 1023) / 1024;
        if (h < 4)
            h = 4;
        if (cth >= h * 1024 || h > 16) {
            s = 31;
            h = 16;
            cth = total / s;
        }
        if (cth >= h * 1024) {
            s = 63;
            h = 16;
            cth = total / s;
        }
    }
    *cyls = (uint16_t)(cth / h);
    *heads = (uint8_t)h;
    *secs = (uint8_t)s;
    return 0;
}

/* Virtual size the image will have for a requested size, as qemu-img
 * computes it: CHS rounding up unless force_size or the geometry saturates. */
static int vhd_rounded_size(uint64_t size, bool force, uint16_t *cyls,
                            uint8_t *heads, uint8_t *secs, uint64_t *out,
                            struct err *err)
{
    uint64_t total = size / 512;
    uint16_t c = 0;
    uint8_t h = 0, s = 0;
    if (force) {
        c = VHD_CHS_MAX_C;
        h = VHD_CHS_MAX_H;
        s = VHD_CHS_MAX_S;
    } else {
        /* Beyond the largest geometry the geometry saturates and the
         * footer's size counts (up to 2040 GiB, checked below). */
        uint64_t want = min_u64(total, VHD_MAX_GEOMETRY);
        for (uint64_t i = 0; want > (uint64_t)c * h * s; i++) {
            if (vhd_geometry(want + i, &c, &h, &s) < 0)
                return err_set(err, -EFBIG, "The image size is too large for "
                               "file format 'vpc'");
        }
    }
    if ((uint64_t)c * h * s == VHD_MAX_GEOMETRY) {
        if (total > VHD_MAX_SECTORS)
            return err_set(err, -EFBIG,
                           "Disk size is too large, max size is 2040 GiB");
        *out = total * 512;
    } else {
        *out = (uint64_t)c * h * s * 512;
    }
    *cyls = c;
    *heads = h;
    *secs = s;
    return 0;
}

/* Creators whose images are sized by their CHS geometry; every other
 * creator (Hyper-V "win ", disk2vhd, XenServer, qemu's force_size "qem2")
 * stores the exact size in current_size. */
static bool vhd_sized_by_chs(const uint8_t *footer)
{
    return !memcmp(footer + F_CREATOR_APP, "vpc ", 4) ||
           !memcmp(footer + F_CREATOR_APP, "qemu", 4);
}

static int vpc_probe(struct bdev *file, const uint8_t *buf, size_t len,
                     const char *filename)
{
    (void)filename;
    if (len >= 8 && !memcmp(buf, "conectix", 8))
        return 100;
    /* A fixed disk has its footer only at the end of the file. */
    if (file && file->size >= 2 * VHD_FOOTER_SIZE && file->size % 512 == 0) {
        uint8_t f[VHD_FOOTER_SIZE];
        struct err e = ERR_INIT;
        if (bdev_pread(file, file->size - VHD_FOOTER_SIZE, sizeof(f), f, &e) == 0 &&
            vhd_footer_ok(f) && ld_be32(f + F_TYPE) == VHD_TYPE_FIXED)
            return 100;
    }
    return 0;
}

/* One parent locator as a POSIX name (new string), NULL when the locator
 * is of a kind that cannot name a file here; -errno in *rc on failure. */
static char *vpc_locator_name(uint32_t code, const uint8_t *data, uint32_t len,
                              int *rc)
{
    char *text = NULL, *name = NULL;
    bool absolute;
    *rc = 0;
    switch (code) {
    case 0x57327275:    /* "W2ru": relative, UTF-16LE */
    case 0x57326b75:    /* "W2ku": absolute, UTF-16LE */
        text = utf16_to_utf8(data, len & ~1u, false);
        absolute = code == 0x57326b75;
        break;
    case 0x57693272:    /* "Wi2r", "Wi2k": deprecated, single-byte text */
    case 0x5769326b:
        text = strndup((const char *)data, len);
        absolute = code == 0x5769326b;
        break;
    case 0x4d616358: {  /* "MacX": a file URL, UTF-8, percent-encoded */
        char *url = strndup((const char *)data, len);
        if (!url)
            break;
        const char *path = url;
        if (!strncmp(path, "file://localhost/", 17))
            path += 16;
        else if (!strncmp(path, "file:///", 8))
            path += 7;
        text = malloc(strlen(path) + 1);
        if (text) {
            size_t o = 0;
            for (const char *q = path; *q; q++) {
                unsigned v;
                if (*q == '%' && sscanf(q + 1, "%2x", &v) == 1 && v) {
                    text[o++] = (char)v;
                    q += 2;
                } else {
                    text[o++] = *q;
                }
            }
            text[o] = '\0';
        }
        free(url);
        return text ? text : (*rc = -ENOMEM, NULL);
    }
    default:            /* none, or a Mac OS alias record */
        return NULL;
    }
    if (!text) {
        *rc = code == 0x57327275 || code == 0x57326b75 ? -EINVAL : -ENOMEM;
        return NULL;
    }
    if (text[0])
        name = winpath_to_posix(text, absolute);
    free(text);
    if (!name && !*rc)
        *rc = -ENOMEM;
    if (name && !name[0]) {
        free(name);
        name = NULL;
        *rc = 0;
    }
    return name;
}

/* The footer: the copy at offset 0 that dynamic disks keep, else the one
 * at the end of the file (fixed disks).  The caller checks it. */
static int vpc_read_footer(struct bdev *file, uint64_t flen, uint8_t *f,
                           struct err *err)
{
    int r = bdev_pread(file, 0, VHD_FOOTER_SIZE, f, err);
    if (r == 0 && memcmp(f + F_COOKIE, "conectix", 8))
        r = bdev_pread(file, flen - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE, f, err);
    return r;
}

/* The unique ID in the footer of the VHD file at `path`; false when it is
 * not a readable VHD. */
static bool vpc_file_uuid(const char *path, uint8_t uuid[16])
{
    struct err e = ERR_INIT;
    uint8_t f[VHD_FOOTER_SIZE];
    struct bdev *file = bdev_open_file(path, BDEV_O_NO_LOCK, &e);
    bool ok = false;
    if (!file)
        return false;
    if (file->size >= VHD_FOOTER_SIZE &&
        vpc_read_footer(file, file->size, f, &e) == 0 && vhd_footer_ok(f)) {
        memcpy(uuid, f + F_UUID, 16);
        ok = true;
    }
    bdev_close(file);
    err_clear(&e);
    return ok;
}

/* Differencing disk: choose the parent among the locators (relative names
 * first, then file URLs, then absolute paths, then the bare parent name the
 * header records), the first that exists beside or at its name, else the
 * first one, so that the error names it; then check the parent is the
 * image this child was made from. */
static int vpc_read_parent(struct bdev *bs, const uint8_t *dyn, uint64_t flen,
                           struct err *err)
{
    static const uint32_t order[] = { 0x57327275, 0x57693272, 0x4d616358,
                                      0x57326b75, 0x5769326b };
    char *names[VHD_LOCATORS + 1] = { NULL };
    int n = 0, r = 0;

    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        for (int i = 0; i < VHD_LOCATORS; i++) {
            const uint8_t *e = dyn + D_LOCATORS + 24 * i;
            uint32_t code = ld_be32(e), len = ld_be32(e + 8);
            uint64_t off = ld_be64(e + 16);
            if (code != order[k])
                continue;
            if (len == 0)
                continue;
            if (len > VHD_LOCATOR_MAX || !range_within(off, len, flen)) {
                r = err_set(err, -EINVAL, "Invalid VPC image: parent locator "
                            "%d beyond end of file", i);
                goto out;
            }
            uint8_t *data = malloc(len);
            if (!data) {
                r = err_set(err, -ENOMEM, "Out of memory");
                goto out;
            }
            r = bdev_pread(bs->file, off, len, data, err);
            if (r == 0)
                names[n] = vpc_locator_name(code, data, len, &r);
            free(data);
            if (r < 0) {
                if (r == -ENOMEM)
                    err_set(err, r, "Out of memory");
                else if (!err->code)
                    err_set(err, r, "Invalid VPC image: parent locator %d "
                            "is not valid UTF-16", i);
                goto out;
            }
            if (names[n])
                n++;
        }
    }
    char *pname = utf16_to_utf8(dyn + D_PARENT_NAME, 512, true);
    if (pname && pname[0] && !strchr(pname, '/'))
        names[n++] = pname;
    else
        free(pname);
    if (n == 0) {
        r = err_set(err, -EINVAL, "Invalid VPC image: differencing image "
                    "without a parent locator");
        goto out;
    }
    r = bdev_choose_backing(bs, names, n, "vpc", err);
    if (r < 0)
        goto out;
    if (!(bs->flags & BDEV_O_NO_BACKING)) {
        uint8_t uuid[16];
        char *path = bdev_resolve_backing(bs, bs->backing_file);
        if (path && vpc_file_uuid(path, uuid) &&
            memcmp(uuid, dyn + D_PARENT_UUID, 16))
            r = err_set(err, -EINVAL, "Could not open backing file: '%s' is "
                        "not the parent of this differencing image (unique ID "
                        "mismatch)", path);
        free(path);
    }
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    return r;
}

static int vpc_read_bat(struct bdev *bs, struct vpc *s, uint64_t flen,
                        struct err *err)
{
    uint8_t dyn[VHD_DYN_SIZE];
    uint64_t dyn_off = ld_be64(s->footer + F_DATA_OFF);
    int r;

    if (!range_within(dyn_off, VHD_DYN_SIZE, flen))
        return err_set(err, -EINVAL, "Invalid VPC image: dynamic header offset "
                       "%llu beyond end of file", (unsigned long long)dyn_off);
    r = bdev_pread(bs->file, dyn_off, VHD_DYN_SIZE, dyn, err);
    if (r < 0)
        return r;
    if (memcmp(dyn + D_COOKIE, "cxsparse", 8))
        return err_set(err, -EINVAL, "Invalid VPC image: bad dynamic header cookie");
    if (ld_be32(dyn + D_CHECKSUM) != vhd_checksum(dyn, VHD_DYN_SIZE, D_CHECKSUM))
        return err_set(err, -EINVAL, "Invalid VPC image: dynamic header checksum mismatch");

    if (s->diff) {
        r = vpc_read_parent(bs, dyn, flen, err);
        if (r < 0)
            return r;
    }
    s->block_size = ld_be32(dyn + D_BLOCK_SIZE);
    if (s->block_size < 512 || !is_pow2(s->block_size) ||
        s->block_size > 256u * 1024 * 1024)
        return err_set(err, -EINVAL, "Invalid block size %u", s->block_size);
    s->bitmap_size = (uint32_t)align_up(s->block_size / 512 / 8, 512);
    s->bat_entries = ld_be32(dyn + D_MAX_ENTRIES);
    if (s->bat_entries > (VHD_MAX_SECTORS * 512) / 512 ||
        (uint64_t)s->bat_entries * 4 > flen)
        return err_set(err, -EINVAL, "Max Table Entries too large (%u)",
                       s->bat_entries);
    if ((uint64_t)s->bat_entries * s->block_size < bs->size)
        return err_set(err, -EINVAL, "Page table too small");
    s->bat_off = ld_be64(dyn + D_TABLE_OFF);
    uint64_t bat_bytes = (uint64_t)s->bat_entries * 4;
    if (!range_within(s->bat_off, bat_bytes, flen))
        return err_set(err, -EINVAL, "Invalid VPC image: block allocation table "
                       "beyond end of file");

    s->bat = malloc(bat_bytes ? bat_bytes : 1);
    uint8_t *raw = malloc(bat_bytes ? bat_bytes : 1);
    if (!s->bat || !raw) {
        free(raw);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    r = bdev_pread(bs->file, s->bat_off, bat_bytes, raw, err);
    if (r < 0) {
        free(raw);
        return r;
    }
    s->free_off = align_up(s->bat_off + bat_bytes, 512);
    s->free_off = max_u64(s->free_off, dyn_off + VHD_DYN_SIZE);
    for (uint32_t i = 0; i < s->bat_entries; i++) {
        s->bat[i] = ld_be32(raw + 4 * (uint64_t)i);
        if (s->bat[i] == VHD_BAT_FREE)
            continue;
        uint64_t boff = (uint64_t)s->bat[i] * 512;
        if (!range_within(boff, s->bitmap_size, flen)) {
            free(raw);
            return err_set(err, -EINVAL, "Invalid VPC image: block %u at offset "
                           "%llu beyond end of file", i, (unsigned long long)boff);
        }
        s->free_off = max_u64(s->free_off, boff + s->bitmap_size + s->block_size);
    }
    free(raw);
    return 0;
}

static int vpc_open_image(struct bdev *bs, struct err *err);

static int vpc_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct vpc *s = bs->priv;
    (void)opts;
    int r = vpc_open_image(bs, err);
    if (r < 0) {
        free(s->bat);
        s->bat = NULL;
        free(s->bm);
        s->bm = NULL;
    }
    return r;
}

static int vpc_open_image(struct bdev *bs, struct err *err)
{
    struct vpc *s = bs->priv;
    int64_t flen = bdev_file_length(bs->file);
    int r;

    if (flen < 0)
        return err_set(err, (int)flen, "Could not get file size");
    if (flen < VHD_FOOTER_SIZE)
        return err_set(err, -EINVAL, "Invalid VPC image: file too short");
    r = vpc_read_footer(bs->file, (uint64_t)flen, s->footer, err);
    if (r < 0)
        return r;
    if (memcmp(s->footer + F_COOKIE, "conectix", 8))
        return err_set(err, -EINVAL, "invalid VPC image");
    if (!vhd_footer_ok(s->footer))
        return err_set(err, -EINVAL, "Invalid VPC image: footer checksum mismatch");

    uint32_t type = ld_be32(s->footer + F_TYPE);
    if (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC &&
        type != VHD_TYPE_DIFF)
        return err_set(err, -EINVAL, "Invalid VPC image: unknown disk type %u", type);
    s->dynamic = type != VHD_TYPE_FIXED;
    s->diff = type == VHD_TYPE_DIFF;

    uint64_t chs = (uint64_t)ld_be16(s->footer + F_CYLS) *
                   s->footer[F_HEADS] * s->footer[F_SECS];
    uint64_t sectors = chs;
    if (chs >= VHD_MAX_GEOMETRY || !vhd_sized_by_chs(s->footer))
        sectors = ld_be64(s->footer + F_CUR_SIZE) / 512;
    if (sectors > VHD_MAX_SECTORS)
        return err_set(err, -EFBIG, "Image too large");
    bs->size = sectors * 512;
    bs->align = 512;

    if (s->dynamic) {
        s->footer_off = (uint64_t)flen - VHD_FOOTER_SIZE;
        r = vpc_read_bat(bs, s, (uint64_t)flen, err);
        if (r < 0)
            return r;
        if (s->diff) {
            s->bm = malloc(s->bitmap_size);
            if (!s->bm)
                return err_set(err, -ENOMEM, "Out of memory");
            s->bm_idx = UINT64_MAX;
        }
    } else {
        if (bs->size > (uint64_t)flen - VHD_FOOTER_SIZE)
            return err_set(err, -EINVAL, "Invalid VPC image: fixed image data "
                           "(%llu bytes) larger than the file",
                           (unsigned long long)bs->size);
        s->footer_off = (uint64_t)flen - VHD_FOOTER_SIZE;
    }
    return 0;
}

static void vpc_close(struct bdev *bs)
{
    struct vpc *s = bs->priv;
    free(s->bat);
    free(s->bm);
}

/* Host offset of a virtual offset in a dynamic disk, 0 when unallocated;
 * *run is how far the answer holds (up to the block end). */
static uint64_t vpc_host_off(struct vpc *s, uint64_t off, uint64_t *run)
{
    uint64_t idx = off / s->block_size, in = off % s->block_size;
    *run = s->block_size - in;
    if (idx >= s->bat_entries || s->bat[idx] == VHD_BAT_FREE)
        return 0;
    return (uint64_t)s->bat[idx] * 512 + s->bitmap_size + in;
}

/* Read from the file, zero-filling past its end (a block may be cut short
 * by a truncated file). */
static int read_clipped(struct bdev *file, uint64_t off, uint64_t len,
                        uint8_t *buf, struct err *err)
{
    uint64_t flen = file->size, n = 0;
    if (off < flen)
        n = min_u64(len, flen - off);
    if (n) {
        int r = bdev_pread(file, off, n, buf, err);
        if (r < 0)
            return r;
    }
    memset(buf + n, 0, len - n);
    return 0;
}

/* Differencing disks: make s->bm the sector bitmap of block `idx`. */
static int vpc_load_bitmap(struct bdev *bs, struct vpc *s, uint64_t idx,
                           struct err *err)
{
    if (s->bm_idx == idx)
        return 0;
    s->bm_idx = UINT64_MAX;
    int r = read_clipped(bs->file, (uint64_t)s->bat[idx] * 512, s->bitmap_size,
                         s->bm, err);
    if (r == 0)
        s->bm_idx = idx;
    return r;
}

static bool vpc_sector_present(const struct vpc *s, uint64_t sector)
{
    return s->bm[sector / 8] & (0x80 >> (sector % 8));
}

/* Differencing disks: how many bytes from `off` (inside an allocated
 * block, whose bitmap is loaded) share the presence of the first sector,
 * up to `len`; *present tells which. */
static uint64_t vpc_bitmap_run(const struct vpc *s, uint64_t off, uint64_t len,
                               bool *present)
{
    uint64_t sec = (off % s->block_size) / 512;
    uint64_t end = min_u64(sec + div_round_up(len, 512),
                           s->block_size / 512);
    *present = vpc_sector_present(s, sec);
    uint64_t e = sec + 1;
    while (e < end && vpc_sector_present(s, e) == *present)
        e++;
    return min_u64(len, (e - sec) * 512);
}

static int vpc_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                    struct err *err)
{
    struct vpc *s = bs->priv;
    uint8_t *p = buf;
    if (!s->dynamic)
        return bdev_pread(bs->file, off, len, buf, err);
    while (len) {
        uint64_t run, host = vpc_host_off(s, off, &run);
        uint64_t n = min_u64(run, len);
        if (!host && s->diff) {
            int r = bdev_read_backing(bs, off, n, p, err);
            if (r < 0)
                return r;
        } else if (!host) {
            memset(p, 0, n);
        } else if (s->diff) {
            bool present;
            int r = vpc_load_bitmap(bs, s, off / s->block_size, err);
            if (r < 0)
                return r;
            n = vpc_bitmap_run(s, off, n, &present);
            if (present)
                r = read_clipped(bs->file, host, n, p, err);
            else
                r = bdev_read_backing(bs, off, n, p, err);
            if (r < 0)
                return r;
        } else {
            int r = read_clipped(bs->file, host, n, p, err);
            if (r < 0)
                return r;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* Allocate block `idx` at the end of the file: bitmap, (sparse) data, moved
 * footer, then the BAT entry once the rest is durable. */
static int vpc_alloc_block(struct bdev *bs, struct vpc *s, uint64_t idx,
                           struct err *err)
{
    uint64_t boff = s->free_off;
    uint64_t new_end = boff + s->bitmap_size + s->block_size;
    uint8_t ent[4];
    int r;

    if (boff / 512 >= VHD_BAT_FREE)
        return err_set(err, -EFBIG, "VHD file is too large");
    uint8_t *bitmap = malloc(s->bitmap_size);
    if (!bitmap)
        return err_set(err, -ENOMEM, "Out of memory");
    /* A differencing disk's new block holds nothing yet: every sector
     * still comes from the parent until written. */
    memset(bitmap, s->diff ? 0 : 0xff, s->bitmap_size);
    r = bdev_pwrite(bs->file, boff, s->bitmap_size, bitmap, err);
    free(bitmap);
    if (r < 0)
        return r;
    r = bdev_pwrite(bs->file, new_end, VHD_FOOTER_SIZE, s->footer, err);
    if (r < 0)
        return r;
    r = bdev_flush(bs->file, err);
    if (r < 0)
        return r;
    st_be32(ent, (uint32_t)(boff / 512));
    r = bdev_pwrite(bs->file, s->bat_off + 4 * idx, 4, ent, err);
    if (r < 0)
        return r;
    s->bat[idx] = (uint32_t)(boff / 512);
    s->free_off = new_end;
    s->footer_off = new_end;
    if (s->diff) {
        memset(s->bm, 0, s->bitmap_size);
        s->bm_idx = idx;
    }
    return 0;
}

/* Differencing disks: after data reached [off, off+len) of an allocated
 * block, mark its sectors present (data first, so a crash leaves at worst
 * the parent's sectors visible). */
static int vpc_mark_present(struct bdev *bs, struct vpc *s, uint64_t off,
                            uint64_t len, struct err *err)
{
    uint64_t idx = off / s->block_size;
    uint64_t first = (off % s->block_size) / 512;
    uint64_t last = first + div_round_up(len, 512) - 1;
    int r = vpc_load_bitmap(bs, s, idx, err);
    if (r < 0)
        return r;
    bool change = false;
    for (uint64_t i = first; i <= last; i++) {
        if (!vpc_sector_present(s, i)) {
            s->bm[i / 8] |= (uint8_t)(0x80 >> (i % 8));
            change = true;
        }
    }
    if (!change)
        return 0;
    /* Rewrite the 512-byte bitmap sectors that changed. */
    uint64_t from = align_down(first / 8, 512), to = align_up(last / 8 + 1, 512);
    r = bdev_pwrite(bs->file, (uint64_t)s->bat[idx] * 512 + from, to - from,
                    s->bm + from, err);
    if (r < 0)
        s->bm_idx = UINT64_MAX;
    return r;
}

static int vpc_write(struct bdev *bs, uint64_t off, uint64_t len,
                     const void *buf, struct err *err)
{
    struct vpc *s = bs->priv;
    const uint8_t *p = buf;
    if (!s->dynamic)
        return bdev_pwrite(bs->file, off, len, buf, err);
    while (len) {
        uint64_t run, host = vpc_host_off(s, off, &run);
        uint64_t n = min_u64(run, len);
        int r;
        if (!host) {
            if (!s->diff && buf_is_zero(p, n)) {
                /* Unallocated blocks already read as zeros. */
                goto next;
            }
            r = vpc_alloc_block(bs, s, off / s->block_size, err);
            if (r < 0)
                return r;
            host = vpc_host_off(s, off, &run);
        }
        r = bdev_pwrite(bs->file, host, n, p, err);
        if (r < 0)
            return r;
        if (s->diff) {
            r = vpc_mark_present(bs, s, off, n, err);
            if (r < 0)
                return r;
        }
next:
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vpc_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                            unsigned flags, struct err *err)
{
    struct vpc *s = bs->priv;
    (void)flags;
    (void)err;
    if (!s->dynamic || s->diff)
        return -ENOTSUP;
    /* Only ranges that are entirely unallocated need nothing. */
    while (len) {
        uint64_t run;
        if (vpc_host_off(s, off, &run))
            return -ENOTSUP;
        uint64_t n = min_u64(len, run);
        off += n;
        len -= n;
    }
    return 0;
}

static int vpc_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                            struct bstatus *st, struct err *err)
{
    struct vpc *s = bs->priv;
    if (!s->dynamic) {
        st->len = len;
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID | BS_RECURSE;
        st->host_off = off;
        st->file = bs->file;
        return 0;
    }
    uint64_t run, host = vpc_host_off(s, off, &run);
    bool alloc = host != 0;
    uint64_t done = min_u64(run, len);
    if (s->diff && alloc) {
        bool present;
        int r = vpc_load_bitmap(bs, s, off / s->block_size, err);
        if (r < 0)
            return r;
        st->len = vpc_bitmap_run(s, off, done, &present);
        st->flags = present ? BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID : 0;
        st->host_off = host;
        st->file = bs->file;
        return 0;
    }
    /* Merge following blocks of the same kind (contiguous when allocated),
     * a bounded number of them so a walk over the image stays linear. */
    len = min_u64(len, done + 255 * (uint64_t)s->block_size);
    while (done < len) {
        uint64_t r2, h2 = vpc_host_off(s, off + done, &r2);
        if ((h2 != 0) != alloc || (alloc && h2 != host + done))
            break;
        done += min_u64(r2, len - done);
    }
    st->len = done;
    if (alloc) {
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID;
        st->host_off = host;
        st->file = bs->file;
    } else {
        /* Unallocated: zeros, or the parent's sectors. */
        st->flags = s->diff ? 0 : BS_ZERO;
    }
    return 0;
}

static int vpc_get_info(struct bdev *bs, struct bdev_info *info,
                        struct err *err)
{
    struct vpc *s = bs->priv;
    (void)err;
    if (s->dynamic)
        info->cluster_size = s->block_size;
    return 0;
}

/* Build a footer for a new image. */
static void vpc_make_footer(uint8_t *f, bool dynamic, uint64_t size,
                            uint16_t cyls, uint8_t heads, uint8_t secs,
                            bool force)
{
    memset(f, 0, VHD_FOOTER_SIZE);
    memcpy(f + F_COOKIE, "conectix", 8);
    st_be32(f + F_FEATURES, 2);
    st_be32(f + F_VERSION, 0x00010000);
    st_be64(f + F_DATA_OFF, dynamic ? VHD_FOOTER_SIZE : UINT64_MAX);
    time_t now = time(NULL);
    st_be32(f + F_TIMESTAMP, (uint32_t)((uint64_t)now - VHD_EPOCH_OFFSET));
    memcpy(f + F_CREATOR_APP, force ? "qem2" : "qemu", 4);
    st_be32(f + F_CREATOR_VER, 0x00050003);
    memcpy(f + F_CREATOR_OS, "Wi2k", 4);
    st_be64(f + F_ORIG_SIZE, size);
    st_be64(f + F_CUR_SIZE, size);
    st_be16(f + F_CYLS, cyls);
    f[F_HEADS] = heads;
    f[F_SECS] = secs;
    st_be32(f + F_TYPE, dynamic ? VHD_TYPE_DYNAMIC : VHD_TYPE_FIXED);
    random_bytes(f + F_UUID, 16);
    f[F_UUID + 6] = (f[F_UUID + 6] & 0x0f) | 0x40;
    f[F_UUID + 8] = (f[F_UUID + 8] & 0x3f) | 0x80;
    vhd_set_checksum(f, VHD_FOOTER_SIZE, F_CHECKSUM);
}

static int vpc_write_dynamic_layout(struct bdev *file, const uint8_t *footer,
                                    uint64_t size, struct err *err)
{
    uint64_t entries = div_round_up(size, VHD_BLOCK_SIZE);
    uint64_t bat_off = VHD_FOOTER_SIZE + VHD_DYN_SIZE;
    uint64_t bat_bytes = align_up(entries * 4, 512);
    uint8_t dyn[VHD_DYN_SIZE];
    int r;

    memset(dyn, 0, sizeof(dyn));
    memcpy(dyn + D_COOKIE, "cxsparse", 8);
    st_be64(dyn + D_DATA_OFF, UINT64_MAX);
    st_be64(dyn + D_TABLE_OFF, bat_off);
    st_be32(dyn + D_VERSION, 0x00010000);
    st_be32(dyn + D_MAX_ENTRIES, (uint32_t)entries);
    st_be32(dyn + D_BLOCK_SIZE, VHD_BLOCK_SIZE);
    vhd_set_checksum(dyn, sizeof(dyn), D_CHECKSUM);

    uint8_t *bat = malloc(bat_bytes);
    if (!bat)
        return err_set(err, -ENOMEM, "Out of memory");
    memset(bat, 0xff, bat_bytes);
    r = bdev_pwrite(file, bat_off, bat_bytes, bat, err);
    free(bat);
    if (r >= 0)
        r = bdev_pwrite(file, VHD_FOOTER_SIZE, VHD_DYN_SIZE, dyn, err);
    if (r >= 0)
        r = bdev_pwrite(file, bat_off + bat_bytes, VHD_FOOTER_SIZE, footer, err);
    if (r >= 0)
        r = bdev_pwrite(file, 0, VHD_FOOTER_SIZE, footer, err);
    return r;
}

static int vpc_create(const char *filename, struct kvlist *opts, struct err *err)
{
    uint64_t size, vsize;
    bool force;
    uint16_t cyls;
    uint8_t heads, secs, footer[VHD_FOOTER_SIZE];
    struct bdev *file = NULL;
    int r;

    r = kv_get_size(opts, "size", 0, &size, err);
    if (r < 0)
        return r;
    r = kv_get_bool(opts, "force_size", false, &force, err);
    if (r < 0)
        return r;
    const char *sub = kv_get(opts, "subformat");
    bool dynamic = true;
    if (sub && !strcmp(sub, "fixed"))
        dynamic = false;
    else if (sub && strcmp(sub, "dynamic"))
        return err_set(err, -EINVAL, "Parameter 'subformat' does not accept "
                       "value '%s'", sub);
    r = vhd_rounded_size(size, force, &cyls, &heads, &secs, &vsize, err);
    if (r < 0)
        return r;
    vpc_make_footer(footer, dynamic, vsize, cyls, heads, secs, force);

    r = bdev_create_file_size(filename, opts, dynamic ? 0 : vsize, err);
    if (r < 0)
        return r;
    file = bdev_open_file(filename, BDEV_O_RDWR, err);
    if (!file)
        return err->code ? err->code : -EIO;
    if (dynamic) {
        r = vpc_write_dynamic_layout(file, footer, vsize, err);
    } else {
        r = bdev_pwrite(file, vsize, VHD_FOOTER_SIZE, footer, err);
    }
    if (r >= 0)
        r = bdev_flush(file, err);
    bdev_close(file);
    return r;
}

static int vpc_truncate(struct bdev *bs, uint64_t size, bool shrink,
                        enum prealloc prealloc, struct err *err)
{
    struct vpc *s = bs->priv;
    uint16_t cyls;
    uint8_t heads, secs;
    uint64_t vsize;
    int r;
    (void)shrink;

    if (prealloc != PREALLOC_OFF)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    /* qemu-img's refusal of every vpc resize, for the part qimg refuses */
    if (size < bs->size)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    bool force = !vhd_sized_by_chs(s->footer);
    r = vhd_rounded_size(size, force, &cyls, &heads, &secs, &vsize, err);
    if (r < 0)
        return r;
    if (force && vsize % 512)
        return err_set(err, -EINVAL, "Size must be a multiple of 512");
    uint8_t f[VHD_FOOTER_SIZE];
    memcpy(f, s->footer, sizeof(f));
    st_be64(f + F_CUR_SIZE, vsize);
    st_be16(f + F_CYLS, cyls);
    f[F_HEADS] = heads;
    f[F_SECS] = secs;
    vhd_set_checksum(f, VHD_FOOTER_SIZE, F_CHECKSUM);

    if (s->dynamic) {
        uint64_t need = div_round_up(vsize, s->block_size);
        if (need > s->bat_entries) {
            /* The BAT can grow in place only up to the first data block. */
            uint64_t limit = s->free_off;
            for (uint32_t i = 0; i < s->bat_entries; i++)
                if (s->bat[i] != VHD_BAT_FREE)
                    limit = min_u64(limit, (uint64_t)s->bat[i] * 512);
            if (s->bat_off + need * 4 > limit)
                return err_set(err, -ENOTSUP, "Cannot grow the block allocation "
                               "table of this image");
            uint32_t *nb = realloc(s->bat, need * 4);
            if (!nb)
                return err_set(err, -ENOMEM, "Out of memory");
            s->bat = nb;
            uint64_t new_bytes = align_up(need * 4, 512);
            uint8_t *ff = malloc(new_bytes);
            if (!ff)
                return err_set(err, -ENOMEM, "Out of memory");
            memset(ff, 0xff, new_bytes);
            /* Fill the new entries (the old tail past entries was padding). */
            uint64_t from = (uint64_t)s->bat_entries * 4;
            r = bdev_pwrite(bs->file, s->bat_off + from, new_bytes - from, ff, err);
            free(ff);
            if (r < 0)
                return r;
            for (uint64_t i = s->bat_entries; i < need; i++)
                s->bat[i] = VHD_BAT_FREE;
            if (s->free_off < s->bat_off + new_bytes)
                s->free_off = s->bat_off + new_bytes;
            uint8_t dyn[VHD_DYN_SIZE];
            uint64_t dyn_off = ld_be64(s->footer + F_DATA_OFF);
            r = bdev_pread(bs->file, dyn_off, VHD_DYN_SIZE, dyn, err);
            if (r < 0)
                return r;
            st_be32(dyn + D_MAX_ENTRIES, (uint32_t)need);
            vhd_set_checksum(dyn, sizeof(dyn), D_CHECKSUM);
            r = bdev_pwrite(bs->file, dyn_off, VHD_DYN_SIZE, dyn, err);
            if (r < 0)
                return r;
            s->bat_entries = (uint32_t)need;
        }
        memcpy(s->footer, f, sizeof(f));
        r = bdev_pwrite(bs->file, s->free_off, VHD_FOOTER_SIZE, f, err);
        if (r >= 0 && s->free_off != s->footer_off)
            r = bdev_truncate(bs->file, s->free_off + VHD_FOOTER_SIZE, true,
                              PREALLOC_OFF, err);
        s->footer_off = s->free_off;
        if (r >= 0)
            r = bdev_pwrite(bs->file, 0, VHD_FOOTER_SIZE, f, err);
    } else {
        memcpy(s->footer, f, sizeof(f));
        /* Zero the old footer's place, then write the new one at the end. */
        uint8_t z[VHD_FOOTER_SIZE];
        memset(z, 0, sizeof(z));
        r = bdev_truncate(bs->file, vsize + VHD_FOOTER_SIZE, false,
                          PREALLOC_OFF, err);
        if (r >= 0)
            r = bdev_pwrite(bs->file, s->footer_off, VHD_FOOTER_SIZE, z, err);
        if (r >= 0)
            r = bdev_pwrite(bs->file, vsize, VHD_FOOTER_SIZE, f, err);
        s->footer_off = vsize;
    }
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    if (r >= 0)
        bs->size = vsize;
    return r;
}

static const struct opt_desc vpc_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "subformat", OPT_STRING, "Type of virtual hard disk format. Supported "
      "formats are {dynamic (default) | fixed} ", NULL },
    { "force_size", OPT_BOOL, "Force disk size calculation to use the actual "
      "size specified, rather than using the nearest CHS-based calculation",
      NULL },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_vpc = {
    .name = "vpc",
    .alias = "vhd",
    .kind = DRV_FORMAT,
    .caps = DRV_ZERO_INIT | DRV_BACKING,
    .priv_size = sizeof(struct vpc),
    .create_opts = vpc_create_opts,
    .probe = vpc_probe,
    .open = vpc_open,
    .close = vpc_close,
    .create = vpc_create,
    .read = vpc_read,
    .write = vpc_write,
    .write_zeroes = vpc_write_zeroes,
    .block_status = vpc_block_status,
    .truncate = vpc_truncate,
    .get_info = vpc_get_info,
};
