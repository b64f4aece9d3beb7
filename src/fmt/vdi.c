/* vdi: VirtualBox Disk Image, version 1.1 (the layout VirtualBox documents
 * and writes: a 512-byte little-endian header, a block map of 32-bit
 * entries, then the data blocks, 1 MiB by default).
 *
 * Supported: dynamic and static images, reading, writing (blocks appended
 * at the end of the file), block status, check (read-only, as qemu-img:
 * repair is not offered), growing the virtual size.  Not supported:
 * differencing images (non-null link/parent UUIDs), shrinking.  Images with
 * other power-of-two block sizes (VirtualBox's AllocationBlockSize) are
 * read and written; qimg creates 1 MiB blocks as qemu-img does. */
#include "block/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmt/table-map.h"
#include "util/align.h"
#include "util/endian.h"

#define VDI_SIGNATURE     0xbeda107fu
#define VDI_VERSION_1_1   0x00010001u
#define VDI_TYPE_DYNAMIC  1
#define VDI_TYPE_STATIC   2
#define VDI_HEADER_BYTES  512
#define VDI_SECTOR        512u
#define VDI_BLOCK_SIZE    (1u << 20)    /* what qimg and VirtualBox create */
#define VDI_BLOCK_SIZE_MAX (1u << 28)
#define VDI_UNALLOCATED   0xffffffffu
#define VDI_DISCARDED     0xfffffffeu
#define VDI_TEXT          "<<< QEMU VM Virtual Disk Image >>>\n"
/* The block map must stay below 2 GiB once rounded up to a sector. */
#define VDI_BLOCKS_MAX    ((0x80000000u - VDI_SECTOR) / 4)
#define VDI_DISK_SIZE_MAX ((uint64_t)VDI_BLOCKS_MAX * VDI_BLOCK_SIZE)

/* Header field offsets. */
enum {
    H_SIGNATURE = 0x40, H_VERSION = 0x44, H_HEADER_SIZE = 0x48,
    H_TYPE = 0x4c, H_FLAGS = 0x50, H_DESCRIPTION = 0x54,
    H_OFFSET_BMAP = 0x154, H_OFFSET_DATA = 0x158, H_CYLINDERS = 0x15c,
    H_HEADS = 0x160, H_SECTORS = 0x164, H_SECTOR_SIZE = 0x168,
    H_DISK_SIZE = 0x170, H_BLOCK_SIZE = 0x178, H_BLOCK_EXTRA = 0x17c,
    H_BLOCKS = 0x180, H_BLOCKS_ALLOCATED = 0x184, H_UUID_IMAGE = 0x188,
    H_UUID_SNAP = 0x198, H_UUID_LINK = 0x1a8, H_UUID_PARENT = 0x1b8,
};

struct vdi {
    uint8_t header[VDI_HEADER_BYTES];   /* as on disk, rewritten on update */
    uint32_t type;
    uint32_t offset_bmap, offset_data;
    uint32_t block_size;
    uint32_t blocks;                    /* entries in the block map */
    uint32_t blocks_allocated;
    uint64_t disk_size;
    uint32_t *bmap;                     /* host order */
    uint64_t used_end;                  /* 1 + highest block in the map */
};

static bool uuid_is_null(const uint8_t *u)
{
    for (int i = 0; i < 16; i++)
        if (u[i])
            return false;
    return true;
}

static bool entry_allocated(uint32_t e)
{
    return e < VDI_DISCARDED;
}

static void update_used_end(struct vdi *s)
{
    s->used_end = 0;
    for (uint32_t i = 0; i < s->blocks; i++)
        if (entry_allocated(s->bmap[i]) && s->bmap[i] >= s->used_end)
            s->used_end = (uint64_t)s->bmap[i] + 1;
}

static int vdi_probe(struct bdev *file, const uint8_t *buf, size_t len,
                     const char *filename)
{
    (void)file;
    (void)filename;
    if (len < VDI_HEADER_BYTES)
        return 0;
    return ld_le32(buf + H_SIGNATURE) == VDI_SIGNATURE ? 100 : 0;
}

static int validate_header(struct vdi *s, struct err *err)
{
    const uint8_t *h = s->header;
    uint32_t sig = ld_le32(h + H_SIGNATURE);
    uint32_t version = ld_le32(h + H_VERSION);
    uint32_t sector_size = ld_le32(h + H_SECTOR_SIZE);

    s->disk_size = ld_le64(h + H_DISK_SIZE);
    s->offset_bmap = ld_le32(h + H_OFFSET_BMAP);
    s->offset_data = ld_le32(h + H_OFFSET_DATA);
    s->block_size = ld_le32(h + H_BLOCK_SIZE);
    s->blocks = ld_le32(h + H_BLOCKS);
    s->blocks_allocated = ld_le32(h + H_BLOCKS_ALLOCATED);
    s->type = ld_le32(h + H_TYPE);

    if (s->disk_size > VDI_DISK_SIZE_MAX)
        return err_set(err, -ENOTSUP, "Unsupported VDI image size (size is "
                       "0x%" PRIx64 ", max supported is 0x%" PRIx64 ")",
                       s->disk_size, VDI_DISK_SIZE_MAX);
    /* Odd sizes (as VBoxManage convertfromraw makes) round up. */
    s->disk_size = align_up(s->disk_size, VDI_SECTOR);
    if (sig != VDI_SIGNATURE)
        return err_set(err, -EINVAL, "Image not in VDI format (bad signature "
                       "%08" PRIx32 ")", sig);
    if (version != VDI_VERSION_1_1)
        return err_set(err, -ENOTSUP, "unsupported VDI image (version %" PRIu32
                       ".%" PRIu32 ")", version >> 16, version & 0xffff);
    if (s->offset_bmap % VDI_SECTOR)
        return err_set(err, -ENOTSUP, "unsupported VDI image (unaligned block "
                       "map offset 0x%" PRIx32 ")", s->offset_bmap);
    if (s->offset_data % VDI_SECTOR)
        return err_set(err, -ENOTSUP, "unsupported VDI image (unaligned data "
                       "offset 0x%" PRIx32 ")", s->offset_data);
    if (sector_size != VDI_SECTOR)
        return err_set(err, -ENOTSUP, "unsupported VDI image (sector size %"
                       PRIu32 " is not %u)", sector_size, VDI_SECTOR);
    /* VirtualBox creates 1 MiB blocks unless told another power of two
     * (its AllocationBlockSize property); qemu-img 7.2 refuses those, qimg
     * reads and writes them.  The bounds keep a block sector-aligned and
     * its allocation buffer reasonable. */
    if (s->block_size < VDI_SECTOR || s->block_size > VDI_BLOCK_SIZE_MAX ||
        !is_pow2(s->block_size))
        return err_set(err, -ENOTSUP, "unsupported VDI image (block size %"
                       PRIu32 " is not a power of two from %u to %u)",
                       s->block_size, VDI_SECTOR, VDI_BLOCK_SIZE_MAX);
    if (s->disk_size > (uint64_t)s->blocks * s->block_size)
        return err_set(err, -ENOTSUP, "unsupported VDI image (disk size %"
                       PRIu64 ", image bitmap has room for %" PRIu64 ")",
                       s->disk_size, (uint64_t)s->blocks * s->block_size);
    if (!uuid_is_null(h + H_UUID_LINK))
        return err_set(err, -ENOTSUP,
                       "unsupported VDI image (non-NULL link UUID)");
    if (!uuid_is_null(h + H_UUID_PARENT))
        return err_set(err, -ENOTSUP,
                       "unsupported VDI image (non-NULL parent UUID)");
    if (s->blocks > VDI_BLOCKS_MAX)
        return err_set(err, -ENOTSUP, "unsupported VDI image (too many blocks "
                       "%u, max is %u)", s->blocks, VDI_BLOCKS_MAX);
    if (s->offset_bmap < VDI_HEADER_BYTES)
        return err_set(err, -EINVAL, "unsupported VDI image (block map offset "
                       "0x%" PRIx32 " overlaps the header)", s->offset_bmap);
    return 0;
}

static int vdi_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct vdi *s = bs->priv;
    struct bdev *file = bs->file;
    uint64_t n = min_u64(file->size, VDI_HEADER_BYTES);
    int r;

    (void)opts;
    memset(s->header, 0, sizeof(s->header));
    if (n && (r = bdev_pread(file, 0, n, s->header, err)) < 0)
        return r;
    r = validate_header(s, err);
    if (r < 0)
        return r;

    uint64_t bmap_bytes = align_up((uint64_t)s->blocks * 4, VDI_SECTOR);
    if (!range_within(s->offset_bmap, bmap_bytes, file->size))
        return err_set(err, -EINVAL, "VDI block map (offset 0x%" PRIx32
                       ", %" PRIu64 " bytes) lies beyond the end of the file",
                       s->offset_bmap, bmap_bytes);
    if (bs->flags & BDEV_O_RDWR && s->offset_data < s->offset_bmap +
        (uint64_t)s->blocks * 4)
        return err_set(err, -EINVAL, "VDI data offset 0x%" PRIx32
                       " overlaps the block map", s->offset_data);
    s->bmap = malloc(bmap_bytes ? bmap_bytes : 1);
    if (!s->bmap)
        return err_set(err, -ENOMEM, "Could not allocate the VDI block map");
    if (bmap_bytes) {
        r = bdev_pread(file, s->offset_bmap, bmap_bytes, s->bmap, err);
        if (r < 0) {
            free(s->bmap);
            s->bmap = NULL;
            return r;
        }
    }
    for (uint32_t i = 0; i < s->blocks; i++)
        s->bmap[i] = ld_le32(&s->bmap[i]);
    update_used_end(s);
    bs->size = s->disk_size;
    bs->align = VDI_SECTOR;
    return 0;
}

static void vdi_close(struct bdev *bs)
{
    struct vdi *s = bs->priv;
    free(s->bmap);
    s->bmap = NULL;
}

static uint64_t block_host_offset(const struct vdi *s, uint32_t entry)
{
    return s->offset_data + (uint64_t)entry * s->block_size;
}

/* Read part of an allocated block; bytes past the end of the file (a
 * truncated last block) read as zeros, a block wholly outside is an
 * error. */
static int read_block(struct bdev *bs, uint32_t entry, uint32_t in_block,
                      uint64_t len, uint8_t *buf, struct err *err)
{
    struct vdi *s = bs->priv;
    struct bdev *file = bs->file;
    uint64_t host = block_host_offset(s, entry) + in_block;
    if (host >= file->size)
        return err_set(err, -EIO, "VDI block %" PRIu32 " lies beyond the end "
                       "of the file", entry);
    uint64_t n = min_u64(len, file->size - host);
    int r = bdev_pread(file, host, n, buf, err);
    if (r < 0)
        return r;
    if (n < len)
        memset(buf + n, 0, len - n);
    return 0;
}

static int vdi_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                    struct err *err)
{
    struct vdi *s = bs->priv;
    uint8_t *p = buf;
    while (len) {
        uint64_t idx = off / s->block_size;
        uint32_t in_block = (uint32_t)(off % s->block_size);
        uint64_t n = min_u64(len, s->block_size - in_block);
        uint32_t e = s->bmap[idx];
        if (entry_allocated(e)) {
            int r = read_block(bs, e, in_block, n, p, err);
            if (r < 0)
                return r;
        } else {
            memset(p, 0, n);
        }
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

static int write_header(struct bdev *bs, struct err *err)
{
    struct vdi *s = bs->priv;
    st_le32(s->header + H_BLOCKS_ALLOCATED, s->blocks_allocated);
    st_le32(s->header + H_BLOCKS, s->blocks);
    st_le64(s->header + H_DISK_SIZE, s->disk_size);
    return bdev_pwrite(bs->file, 0, VDI_HEADER_BYTES, s->header, err);
}

/* Write the sector of the block map holding entry `idx`. */
static int write_bmap_sector(struct bdev *bs, uint64_t idx, struct err *err)
{
    struct vdi *s = bs->priv;
    uint8_t sec[VDI_SECTOR];
    uint64_t first = align_down(idx, VDI_SECTOR / 4);
    memset(sec, 0, sizeof(sec));     /* padding past the last entry */
    for (uint64_t i = first; i < s->blocks && i < first + VDI_SECTOR / 4; i++)
        st_le32(sec + (i - first) * 4, s->bmap[i]);
    return bdev_pwrite(bs->file, s->offset_bmap + first * 4, VDI_SECTOR, sec,
                       err);
}

/* Write a whole new data block at `host`: `data` at [in_block, +len) and
 * zeros around it, through a buffer of at most 1 MiB (blocks may be up to
 * 256 MiB). */
#define VDI_FILL_CHUNK (1u << 20)

static int write_new_block(struct bdev *bs, uint64_t host, uint32_t in_block,
                           uint64_t len, const uint8_t *data, struct err *err)
{
    struct vdi *s = bs->priv;
    uint32_t chunk = s->block_size < VDI_FILL_CHUNK ? s->block_size
                                                    : VDI_FILL_CHUNK;
    uint8_t *buf = malloc(chunk);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = tmap_grow_file(bs->file, host + s->block_size, err);
    for (uint64_t o = 0; r >= 0 && o < s->block_size; o += chunk) {
        memset(buf, 0, chunk);
        uint64_t from = o > in_block ? o : in_block;
        uint64_t to = min_u64(o + chunk, (uint64_t)in_block + len);
        if (from < to)
            memcpy(buf + (from - o), data + (from - in_block), to - from);
        r = bdev_pwrite(bs->file, host + o, chunk, buf, err);
    }
    free(buf);
    return r;
}

/* Give block `idx` a data block holding zeros around [in_block, +len) of
 * `data`: data first, then the map entry, then the allocation count. */
static int allocate_block(struct bdev *bs, uint64_t idx, uint32_t in_block,
                          uint64_t len, const uint8_t *data, struct err *err)
{
    struct vdi *s = bs->priv;
    uint32_t e = s->blocks_allocated;
    int r;
    if (e >= s->blocks || e >= VDI_DISCARDED)
        return err_set(err, -EIO, "VDI image has no free block left "
                       "(allocation count %" PRIu32 " is corrupt)", e);
    /* A count below the blocks in use would overwrite data. */
    if (e < s->used_end)
        return err_set(err, -EIO, "VDI allocation count %" PRIu32 " is below "
                       "the blocks in use; the image needs repair", e);
    uint64_t host = block_host_offset(s, e);
    r = write_new_block(bs, host, in_block, len, data, err);
    if (r < 0)
        return r;
    s->bmap[idx] = e;
    s->blocks_allocated++;
    s->used_end = (uint64_t)e + 1;
    r = write_bmap_sector(bs, idx, err);
    if (r >= 0)
        r = write_header(bs, err);
    return r;
}

static int vdi_write(struct bdev *bs, uint64_t off, uint64_t len,
                     const void *buf, struct err *err)
{
    struct vdi *s = bs->priv;
    const uint8_t *p = buf;
    while (len) {
        uint64_t idx = off / s->block_size;
        uint32_t in_block = (uint32_t)(off % s->block_size);
        uint64_t n = min_u64(len, s->block_size - in_block);
        uint32_t e = s->bmap[idx];
        int r;
        if (entry_allocated(e)) {
            uint64_t host = block_host_offset(s, e) + in_block;
            r = tmap_grow_file(bs->file, host + n, err);
            if (r >= 0)
                r = bdev_pwrite(bs->file, host, n, p, err);
        } else {
            r = allocate_block(bs, idx, in_block, n, p, err);
        }
        if (r < 0)
            return r;
        off += n;
        len -= n;
        p += n;
    }
    return 0;
}

/* Unallocated blocks already read as zeros; allocated ones get zeros
 * written in place. */
static int vdi_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                            unsigned flags, struct err *err)
{
    struct vdi *s = bs->priv;
    static const uint8_t zero[65536];
    (void)flags;
    while (len) {
        uint64_t idx = off / s->block_size;
        uint32_t in_block = (uint32_t)(off % s->block_size);
        uint64_t n = min_u64(len, s->block_size - in_block);
        uint32_t e = s->bmap[idx];
        if (entry_allocated(e)) {
            uint64_t host = block_host_offset(s, e) + in_block;
            int r = tmap_grow_file(bs->file, host + n, err);
            for (uint64_t done = 0; r >= 0 && done < n; done += sizeof(zero))
                r = bdev_pwrite(bs->file, host + done,
                                min_u64(sizeof(zero), n - done), zero, err);
            if (r < 0)
                return r;
        }
        off += n;
        len -= n;
    }
    return 0;
}

static int vdi_flush(struct bdev *bs, struct err *err)
{
    return bdev_flush(bs->file, err);
}

static int vdi_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                            struct bstatus *st, struct err *err)
{
    struct vdi *s = bs->priv;
    uint64_t idx = off / s->block_size;
    uint32_t in_block = (uint32_t)(off % s->block_size);
    uint32_t e = s->bmap[idx];
    (void)err;
    st->len = min_u64(len, s->block_size - in_block);
    /* Following blocks of the same kind (unallocated, or stored right
     * after this one) extend the run. */
    for (uint64_t i = idx + 1; st->len < len && i < s->blocks; i++) {
        uint32_t next = s->bmap[i];
        if (entry_allocated(e) ? next != e + (i - idx) : entry_allocated(next))
            break;
        st->len += min_u64(len - st->len, s->block_size);
    }
    if (!entry_allocated(e)) {
        st->flags = BS_ZERO | BS_ALLOCATED;
        return 0;
    }
    st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID;
    if (s->type == VDI_TYPE_STATIC)
        st->flags |= BS_RECURSE;
    st->host_off = block_host_offset(s, e) + in_block;
    st->file = bs->file;
    return 0;
}

static int vdi_get_info(struct bdev *bs, struct bdev_info *info,
                        struct err *err)
{
    struct vdi *s = bs->priv;
    (void)err;
    info->cluster_size = s->block_size;
    return 0;
}

/* Same findings and messages as qemu-img: each map entry must name a
 * block inside the image, used once, and the count must agree. */
static int vdi_check(struct bdev *bs, struct check_result *res, unsigned fix,
                     struct err *err)
{
    struct vdi *s = bs->priv;
    uint32_t used = 0;
    if (fix)
        return err_set(err, -ENOTSUP,
                       "This image format does not support checks");
    uint32_t *owner = malloc(((size_t)s->blocks + 1) * sizeof(*owner));
    if (!owner) {
        res->check_errors++;
        return err_set(err, -ENOMEM, "Out of memory");
    }
    memset(owner, 0xff, ((size_t)s->blocks + 1) * sizeof(*owner));
    for (uint32_t i = 0; i < s->blocks; i++) {
        uint32_t e = s->bmap[i];
        if (!entry_allocated(e))
            continue;
        if (e >= s->blocks) {
            fprintf(stderr, "ERROR: block index %" PRIu32 " too large, is %"
                    PRIu32 "\n", i, e);
            res->corruptions++;
            continue;
        }
        used++;
        if (!entry_allocated(owner[e])) {
            owner[e] = e;
        } else {
            fprintf(stderr, "ERROR: block index %" PRIu32 " also used by %"
                    PRIu32 "\n", owner[e], e);
            res->corruptions++;
        }
    }
    if (used != s->blocks_allocated) {
        fprintf(stderr, "ERROR: allocated blocks mismatch, is %" PRIu32
                ", should be %" PRIu32 "\n", used, s->blocks_allocated);
        res->corruptions++;
    }
    free(owner);
    return 0;
}

/* Growing: the new map entries must fit between the map and the data.
 * When they do not, the first data blocks move to the end of the file to
 * make room, and the data offset moves past them (blocks are numbered
 * from the data offset, so the others only get renumbered). */
static int make_bmap_room(struct bdev *bs, uint32_t blocks, struct err *err)
{
    struct vdi *s = bs->priv;
    uint64_t need = align_up((uint64_t)blocks * 4, VDI_SECTOR);
    uint64_t new_data = align_up(s->offset_bmap + need, s->block_size);
    if (s->offset_bmap + need <= s->offset_data)
        return 0;
    if (new_data > UINT32_MAX)
        return err_set(err, -EFBIG, "Image size is too large for VDI");
    uint64_t shift = div_round_up(new_data - s->offset_data, s->block_size);
    uint32_t chunk = s->block_size < VDI_FILL_CHUNK ? s->block_size
                                                    : VDI_FILL_CHUNK;
    uint8_t *block = malloc(chunk);
    int r = 0;
    if (!block)
        return err_set(err, -ENOMEM, "Out of memory");
    /* Data blocks with an index below `shift` move to the end; the others
     * keep their bytes and are renumbered. */
    uint32_t *newmap = malloc((size_t)blocks * 4);
    if (!newmap) {
        free(block);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    uint32_t next = s->blocks_allocated - (uint32_t)min_u64(shift,
                                                    s->blocks_allocated);
    for (uint32_t i = 0; i < blocks; i++)
        newmap[i] = i < s->blocks ? s->bmap[i] : VDI_UNALLOCATED;
    for (uint32_t i = 0; i < s->blocks && r >= 0; i++) {
        uint32_t e = s->bmap[i];
        if (!entry_allocated(e))
            continue;
        if (e >= shift) {
            newmap[i] = e - (uint32_t)shift;
            continue;
        }
        uint64_t host = s->offset_data + (shift + next) * s->block_size;
        /* The new place lies past every block, so growing the file after
         * the first chunk is read changes nothing the rest reads. */
        for (uint32_t o = 0; r >= 0 && o < s->block_size; o += chunk) {
            r = read_block(bs, e, o, chunk, block, err);
            if (r >= 0 && o == 0)
                r = tmap_grow_file(bs->file, host + s->block_size, err);
            if (r >= 0)
                r = bdev_pwrite(bs->file, host + o, chunk, block, err);
        }
        newmap[i] = next++;
    }
    free(block);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    if (r < 0) {
        free(newmap);
        return r;
    }
    free(s->bmap);
    s->bmap = newmap;
    s->offset_data = (uint32_t)(s->offset_data + shift * s->block_size);
    st_le32(s->header + H_OFFSET_DATA, s->offset_data);
    return 0;
}

static int vdi_truncate(struct bdev *bs, uint64_t size, bool shrink,
                        enum prealloc prealloc, struct err *err)
{
    struct vdi *s = bs->priv;
    (void)shrink;
    if (prealloc != PREALLOC_OFF)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    /* qemu-img's refusal of every vdi resize, for the part qimg refuses */
    if (size < s->disk_size)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    if (size % VDI_SECTOR)
        return err_set(err, -EINVAL, "Image size must be a multiple of 512 "
                       "bytes");
    if (size > VDI_DISK_SIZE_MAX)
        return err_set(err, -ENOTSUP, "Unsupported VDI image size (size is "
                       "0x%" PRIx64 ", max supported is 0x%" PRIx64 ")",
                       size, VDI_DISK_SIZE_MAX);
    if (div_round_up(size, s->block_size) > VDI_BLOCKS_MAX)
        return err_set(err, -ENOTSUP, "Unsupported VDI image size (%" PRIu64
                       " blocks of %" PRIu32 " bytes, max is %u blocks)",
                       div_round_up(size, s->block_size), s->block_size,
                       VDI_BLOCKS_MAX);
    uint32_t blocks = (uint32_t)div_round_up(size, s->block_size);
    int r;
    if (blocks > s->blocks) {
        uint32_t old_data = s->offset_data;
        r = make_bmap_room(bs, blocks, err);
        if (r < 0)
            return r;
        uint32_t *m = realloc(s->bmap, (size_t)blocks * 4);
        if (!m)
            return err_set(err, -ENOMEM, "Out of memory");
        s->bmap = m;
        uint32_t old = s->blocks;
        s->blocks = blocks;
        /* A static image stays fully allocated: new blocks are appended
         * (as a sparse extension of the file) before the map names them. */
        for (uint32_t i = old; i < blocks; i++)
            m[i] = s->type == VDI_TYPE_STATIC ? s->blocks_allocated++
                                              : VDI_UNALLOCATED;
        if (s->type == VDI_TYPE_STATIC) {
            r = tmap_grow_file(bs->file, block_host_offset(s, s->blocks_allocated),
                          err);
            if (r < 0)
                return r;
        }
        if (s->offset_data != old_data)
            old = 0;    /* entries were renumbered: rewrite the whole map */
        for (uint64_t i = align_down(old, VDI_SECTOR / 4); i < blocks;
             i += VDI_SECTOR / 4) {
            r = write_bmap_sector(bs, i, err);
            if (r < 0)
                return r;
        }
        r = bdev_flush(bs->file, err);
        if (r < 0)
            return r;
    }
    update_used_end(s);
    s->disk_size = size;
    r = write_header(bs, err);
    if (r < 0)
        return r;
    bs->size = size;
    return 0;
}

static void make_uuid(uint8_t *u)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, u, 16) != 16) {
        for (int i = 0; i < 16; i++)
            u[i] = (uint8_t)rand();
    }
    if (fd >= 0)
        close(fd);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);    /* version 4 */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);    /* RFC 4122 variant */
}

static int vdi_create(const char *filename, struct kvlist *opts,
                      struct err *err)
{
    uint64_t size;
    bool is_static;
    int r;

    if ((r = kv_get_size(opts, "size", 0, &size, err)) < 0 ||
        (r = kv_get_bool(opts, "static", false, &is_static, err)) < 0)
        return r;
    if (size > VDI_DISK_SIZE_MAX)
        return err_set(err, -ENOTSUP, "Unsupported VDI image size (size is "
                       "0x%" PRIx64 ", max supported is 0x%" PRIx64 ")",
                       size, VDI_DISK_SIZE_MAX);

    uint32_t blocks = (uint32_t)div_round_up(size, VDI_BLOCK_SIZE);
    uint64_t bmap_bytes = align_up((uint64_t)blocks * 4, VDI_SECTOR);
    uint8_t *buf = calloc(1, VDI_HEADER_BYTES + bmap_bytes);
    if (!buf)
        return err_set(err, -ENOMEM, "Could not allocate bmap");
    memcpy(buf, VDI_TEXT, strlen(VDI_TEXT));
    st_le32(buf + H_SIGNATURE, VDI_SIGNATURE);
    st_le32(buf + H_VERSION, VDI_VERSION_1_1);
    st_le32(buf + H_HEADER_SIZE, 0x180);
    st_le32(buf + H_TYPE, is_static ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC);
    st_le32(buf + H_OFFSET_BMAP, VDI_HEADER_BYTES);
    st_le32(buf + H_OFFSET_DATA, (uint32_t)(VDI_HEADER_BYTES + bmap_bytes));
    st_le32(buf + H_SECTOR_SIZE, VDI_SECTOR);
    st_le64(buf + H_DISK_SIZE, size);
    st_le32(buf + H_BLOCK_SIZE, VDI_BLOCK_SIZE);
    st_le32(buf + H_BLOCKS, blocks);
    st_le32(buf + H_BLOCKS_ALLOCATED, is_static ? blocks : 0);
    make_uuid(buf + H_UUID_IMAGE);
    make_uuid(buf + H_UUID_SNAP);
    for (uint32_t i = 0; i < blocks; i++)
        st_le32(buf + VDI_HEADER_BYTES + (uint64_t)i * 4,
                is_static ? i : VDI_UNALLOCATED);
    uint64_t file_len = VDI_HEADER_BYTES + bmap_bytes;
    if (is_static)
        file_len += (uint64_t)blocks * VDI_BLOCK_SIZE;

    struct bdev *file = NULL;
    r = tmap_create_empty_file(filename, opts, err);
    if (r >= 0) {
        file = bdev_open_file(filename, BDEV_O_RDWR | BDEV_O_NO_LOCK, err);
        if (!file)
            r = err->code ? err->code : -EIO;
    }
    if (r >= 0)
        r = bdev_truncate(file, file_len, true, PREALLOC_OFF, err);
    if (r >= 0)
        r = bdev_pwrite(file, 0, VDI_HEADER_BYTES + bmap_bytes, buf, err);
    if (r >= 0)
        r = bdev_flush(file, err);
    bdev_close(file);
    free(buf);
    return r < 0 ? r : 0;
}

static const struct opt_desc vdi_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "static", OPT_BOOL, "VDI static (pre-allocated) image", "off" },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_vdi = {
    .name = "vdi",
    .kind = DRV_FORMAT,
    .caps = DRV_ZERO_INIT,
    .priv_size = sizeof(struct vdi),
    .create_opts = vdi_create_opts,
    .probe = vdi_probe,
    .open = vdi_open,
    .close = vdi_close,
    .create = vdi_create,
    .read = vdi_read,
    .write = vdi_write,
    .write_zeroes = vdi_write_zeroes,
    .flush = vdi_flush,
    .block_status = vdi_block_status,
    .truncate = vdi_truncate,
    .get_info = vdi_get_info,
    .check = vdi_check,
};
