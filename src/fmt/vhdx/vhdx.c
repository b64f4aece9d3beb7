/* vhdx: Microsoft VHDX images ([MS-VHDX] v1).
 *
 * Supported: dynamic and fixed images, 512 and 4096 byte logical sectors,
 * read, write, create, growing resize, block status; headers, region
 * tables and log entries are verified with their CRC-32C; a dirty log is
 * replayed when the image is opened for writing (opening it read-only
 * fails, as the specification requires).  BAT updates go through the log
 * (log.c), after the data they point to is durable.
 *
 * Differencing images (HasParent, parent.c) are read through the backing
 * chain: PARTIALLY_PRESENT blocks take each logical sector from this file
 * when its bit in the chunk's sector bitmap block is set, else from the
 * parent; NOT_PRESENT, UNDEFINED and UNMAPPED blocks come from the parent,
 * ZERO blocks read as zeros.  Writing to them is not supported (qemu-img
 * 7.2 cannot open them at all). */
#include "fmt/vhdx/vhdx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/random.h"
#include "util/zero.h"

const uint8_t vhdx_guid_bat[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
    0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
const uint8_t vhdx_guid_meta[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
    0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
const uint8_t vhdx_guid_file_params[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa,
    0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
const uint8_t vhdx_guid_disk_size[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd,
    0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
const uint8_t vhdx_guid_disk_id[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2,
    0x23, 0x45, 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
const uint8_t vhdx_guid_lss[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
    0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
const uint8_t vhdx_guid_pss[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
    0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
const uint8_t vhdx_guid_parent[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
    0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };

#define SIG_HEAD 0x64616568u
#define SIG_REGI 0x69676572u
#define META_SIG "metadata"
#define META_FLAG_REQUIRED 4u
#define FILE_PARAM_HAS_PARENT 2u

void vhdx_random_guid(uint8_t *g)
{
    random_bytes(g, 16);
    g[7] = (uint8_t)((g[7] & 0x0f) | 0x40);
    g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
}

uint64_t vhdx_bat_index(const struct vhdx *s, uint64_t block)
{
    return block + block / s->chunk_ratio;
}

static int vhdx_probe(struct bdev *file, const uint8_t *buf, size_t len,
                      const char *filename)
{
    (void)file;
    (void)filename;
    return len >= 8 && !memcmp(buf, "vhdxfile", 8) ? 100 : 0;
}

uint32_t vhdx_crc(const uint8_t *buf, size_t len)
{
    static const uint8_t zero[4];
    uint32_t crc = crc32c(0, buf, 4);
    crc = crc32c(crc, zero, 4);
    return crc32c(crc, buf + 8, len - 8);
}

void vhdx_crc_set(uint8_t *buf, size_t len)
{
    st_le32(buf + 4, vhdx_crc(buf, len));
}

void vhdx_header_encode(const struct vhdx_header *h, uint8_t *buf)
{
    memset(buf, 0, VHDX_HEADER_SIZE);
    st_le32(buf, SIG_HEAD);
    st_le64(buf + 8, h->seq);
    memcpy(buf + 16, h->file_write_guid, 16);
    memcpy(buf + 32, h->data_write_guid, 16);
    memcpy(buf + 48, h->log_guid, 16);
    st_le16(buf + 64, h->log_version);
    st_le16(buf + 66, h->version);
    st_le32(buf + 68, h->log_length);
    st_le64(buf + 72, h->log_offset);
    vhdx_crc_set(buf, VHDX_HEADER_SIZE);
}

int vhdx_write_headers(struct bdev *file, struct vhdx *s, struct err *err)
{
    uint8_t buf[VHDX_HEADER_SIZE];
    for (int i = 0; i < 2; i++) {
        int slot = !s->cur_header;
        s->hdr.seq++;
        vhdx_header_encode(&s->hdr, buf);
        int r = bdev_pwrite(file, slot ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF,
                            sizeof(buf), buf, err);
        if (r >= 0)
            r = bdev_flush(file, err);
        if (r < 0)
            return r;
        s->cur_header = slot;
    }
    return 0;
}

bool vhdx_header_decode(const uint8_t *b, struct vhdx_header *h)
{
    if (ld_le32(b) != SIG_HEAD || !vhdx_crc_ok(b, VHDX_HEADER_SIZE))
        return false;
    h->seq = ld_le64(b + 8);
    memcpy(h->file_write_guid, b + 16, 16);
    memcpy(h->data_write_guid, b + 32, 16);
    memcpy(h->log_guid, b + 48, 16);
    h->log_version = ld_le16(b + 64);
    h->version = ld_le16(b + 66);
    h->log_length = ld_le32(b + 68);
    h->log_offset = ld_le64(b + 72);
    return true;
}

static int read_headers(struct bdev *bs, struct vhdx *s, uint64_t flen,
                        struct err *err)
{
    uint8_t b[VHDX_HEADER_SIZE];
    struct vhdx_header h[2];
    bool ok[2];
    for (int i = 0; i < 2; i++) {
        int r = bdev_pread(bs->file, i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF,
                           sizeof(b), b, err);
        if (r < 0)
            return r;
        ok[i] = vhdx_header_decode(b, &h[i]);
    }
    if (!ok[0] && !ok[1])
        return err_set(err, -EINVAL, "No valid VHDX header found");
    int cur = ok[0] && ok[1] ? (h[1].seq > h[0].seq) : ok[1];
    if (ok[0] && ok[1] && h[0].seq == h[1].seq &&
        memcmp(&h[0], &h[1], sizeof(h[0])))
        return err_set(err, -EINVAL, "VHDX headers have the same sequence "
                       "number but differ");
    s->hdr = h[cur];
    s->cur_header = cur;
    if (s->hdr.version != 1)
        return err_set(err, -ENOTSUP, "Unsupported VHDX version %u", s->hdr.version);
    if (s->hdr.log_version != 0)
        return err_set(err, -ENOTSUP, "Unsupported VHDX log version %u",
                       s->hdr.log_version);
    if (s->hdr.log_length % MiB || s->hdr.log_offset % MiB ||
        s->hdr.log_offset < MiB || !s->hdr.log_length ||
        !range_within(s->hdr.log_offset, s->hdr.log_length, flen))
        return err_set(err, -EINVAL, "Invalid VHDX log location (offset %llu, "
                       "length %u)", (unsigned long long)s->hdr.log_offset,
                       s->hdr.log_length);
    return 0;
}

static int read_region_table(struct bdev *bs, struct vhdx *s, uint64_t flen,
                             struct err *err)
{
    uint8_t *rt = malloc(VHDX_RT_SIZE);
    int r = -EINVAL;
    bool bat = false, meta = false;
    if (!rt)
        return err_set(err, -ENOMEM, "Out of memory");
    for (int copy = 0; copy < 2; copy++) {
        r = bdev_pread(bs->file, copy ? VHDX_RT2_OFF : VHDX_RT1_OFF,
                       VHDX_RT_SIZE, rt, err);
        if (r < 0)
            goto out;
        if (ld_le32(rt) == SIG_REGI && vhdx_crc_ok(rt, VHDX_RT_SIZE))
            break;
        if (copy) {
            r = err_set(err, -EINVAL, "Invalid VHDX region table (bad signature "
                        "or checksum)");
            goto out;
        }
    }
    uint32_t n = ld_le32(rt + 8);
    if (n > (VHDX_RT_SIZE - 16) / 32) {
        r = err_set(err, -EINVAL, "Too many VHDX region table entries (%u)", n);
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = rt + 16 + 32 * (uint64_t)i;
        uint64_t off = ld_le64(e + 16);
        uint32_t len = ld_le32(e + 24);
        bool required = ld_le32(e + 28) & 1;
        bool is_bat = !memcmp(e, vhdx_guid_bat, 16);
        bool is_meta = !memcmp(e, vhdx_guid_meta, 16);
        if (!is_bat && !is_meta) {
            if (required) {
                r = err_set(err, -ENOTSUP, "Unsupported required VHDX region");
                goto out;
            }
            continue;
        }
        if (off % MiB || len % MiB || !len || off < MiB ||
            !range_within(off, len, flen) || (is_bat && bat) || (is_meta && meta)) {
            r = err_set(err, -EINVAL, "Invalid VHDX region (offset %llu, "
                        "length %u)", (unsigned long long)off, len);
            goto out;
        }
        if (is_bat) {
            s->bat_off = off;
            s->bat_len = len;
            bat = true;
        } else {
            s->meta_off = off;
            s->meta_len = len;
            meta = true;
        }
    }
    if (!bat || !meta) {
        r = err_set(err, -EINVAL, "VHDX region table lacks the %s region",
                    bat ? "metadata" : "BAT");
        goto out;
    }
    /* Regions must not overlap each other or the log. */
    if ((s->bat_off < s->meta_off + s->meta_len && s->meta_off < s->bat_off + s->bat_len) ||
        (s->bat_off < s->hdr.log_offset + s->hdr.log_length &&
         s->hdr.log_offset < s->bat_off + s->bat_len) ||
        (s->meta_off < s->hdr.log_offset + s->hdr.log_length &&
         s->hdr.log_offset < s->meta_off + s->meta_len)) {
        r = err_set(err, -EINVAL, "VHDX regions overlap");
        goto out;
    }
    r = 0;
out:
    free(rt);
    return r;
}

static int read_metadata(struct bdev *bs, struct vhdx *s, uint64_t *size,
                         struct err *err)
{
    uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
    int r = -EINVAL;
    unsigned found = 0;
    uint32_t file_flags = 0;
    uint8_t *loc = NULL;
    uint32_t loc_len = 0;
    if (!t)
        return err_set(err, -ENOMEM, "Out of memory");
    r = bdev_pread(bs->file, s->meta_off, VHDX_META_TABLE_SIZE, t, err);
    if (r < 0)
        goto out;
    if (memcmp(t, META_SIG, 8)) {
        r = err_set(err, -EINVAL, "Invalid VHDX metadata table signature");
        goto out;
    }
    uint16_t n = ld_le16(t + 10);
    if (n > (VHDX_META_TABLE_SIZE - 32) / 32) {
        r = err_set(err, -EINVAL, "Too many VHDX metadata entries (%u)", n);
        goto out;
    }
    for (uint16_t i = 0; i < n; i++) {
        const uint8_t *e = t + 32 + 32 * (uint64_t)i;
        uint32_t off = ld_le32(e + 16), len = ld_le32(e + 20);
        uint32_t flags = ld_le32(e + 24);
        uint8_t v[16];
        int which = -1;
        static const uint8_t *const ids[] = { vhdx_guid_file_params,
            vhdx_guid_disk_size, vhdx_guid_disk_id, vhdx_guid_lss,
            vhdx_guid_pss, vhdx_guid_parent };
        static const uint32_t lens[] = { 8, 8, 16, 4, 4, 0 };
        for (int k = 0; k < 6; k++)
            if (!memcmp(e, ids[k], 16))
                which = k;
        if (which < 0) {
            if (flags & META_FLAG_REQUIRED) {
                r = err_set(err, -ENOTSUP, "Unsupported required VHDX metadata item");
                goto out;
            }
            continue;
        }
        if (found & (1u << which)) {
            r = err_set(err, -EINVAL, "Duplicate VHDX metadata item");
            goto out;
        }
        if ((which == 5 ? len == 0 : len != lens[which]) ||
            off < VHDX_META_TABLE_SIZE || !range_within(off, len, s->meta_len)) {
            r = err_set(err, -EINVAL, "Invalid VHDX metadata item (offset %u, "
                        "length %u)", off, len);
            goto out;
        }
        if (which == 5) {
            /* Bounded by the metadata region, itself inside the file. */
            loc = malloc(len);
            if (!loc) {
                r = err_set(err, -ENOMEM, "Out of memory");
                goto out;
            }
            loc_len = len;
            r = bdev_pread(bs->file, s->meta_off + off, len, loc, err);
            if (r < 0)
                goto out;
            found |= 1u << which;
            continue;
        }
        r = bdev_pread(bs->file, s->meta_off + off, len, v, err);
        if (r < 0)
            goto out;
        found |= 1u << which;
        switch (which) {
        case 0:
            s->block_size = ld_le32(v);
            file_flags = ld_le32(v + 4);
            break;
        case 1:
            *size = ld_le64(v);
            break;
        case 2:
            memcpy(s->disk_id, v, 16);
            break;
        case 3:
            s->lss = ld_le32(v);
            break;
        case 4:
            s->pss = ld_le32(v);
            break;
        }
    }
    if ((found & 0x1f) != 0x1f) {
        r = err_set(err, -EINVAL, "VHDX metadata lacks required items");
        goto out;
    }
    s->diff = file_flags & FILE_PARAM_HAS_PARENT;
    if (s->block_size < VHDX_BLOCK_MIN || s->block_size > VHDX_BLOCK_MAX ||
        !is_pow2(s->block_size)) {
        r = err_set(err, -EINVAL, "Invalid VHDX block size %u", s->block_size);
        goto out;
    }
    if (s->lss != 512 && s->lss != 4096) {
        r = err_set(err, -EINVAL, "Invalid VHDX logical sector size %u", s->lss);
        goto out;
    }
    if (s->pss != 512 && s->pss != 4096) {
        r = err_set(err, -EINVAL, "Invalid VHDX physical sector size %u", s->pss);
        goto out;
    }
    if (*size > VHDX_MAX_SIZE || *size % s->lss) {
        r = err_set(err, -EINVAL, "Invalid VHDX virtual disk size %llu",
                    (unsigned long long)*size);
        goto out;
    }
    r = 0;
    if (s->diff && !loc)
        r = err_set(err, -EINVAL, "VHDX differencing image lacks a parent "
                    "locator");
    else if (s->diff)
        r = vhdx_parse_parent(bs, loc, loc_len, err);
out:
    free(loc);
    free(t);
    return r;
}

static int read_bat(struct bdev *bs, struct vhdx *s, uint64_t flen,
                    struct err *err)
{
    s->chunk_ratio = (UINT64_C(1) << 23) * s->lss / s->block_size;
    /* A differencing image's last chunk has its sector bitmap entry too. */
    if (s->diff)
        s->bat_entries = div_round_up(s->data_blocks, s->chunk_ratio) *
                         (s->chunk_ratio + 1);
    else
        s->bat_entries = s->data_blocks ? s->data_blocks + (s->data_blocks - 1) / s->chunk_ratio : 0;
    uint64_t bytes = s->bat_entries * 8;
    if (bytes > s->bat_len)
        return err_set(err, -EINVAL, "VHDX BAT region too small (%llu bytes for "
                       "%llu entries)", (unsigned long long)s->bat_len,
                       (unsigned long long)s->bat_entries);
    uint8_t *raw = malloc(bytes ? bytes : 1);
    s->bat = malloc(bytes ? bytes : 8);
    if (!raw || !s->bat) {
        free(raw);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    int r = bdev_pread(bs->file, s->bat_off, bytes, raw, err);
    if (r < 0) {
        free(raw);
        return r;
    }
    s->alloc_end = align_up(flen, MiB);
    for (uint64_t i = 0; i < s->bat_entries; i++) {
        uint64_t v = ld_le64(raw + 8 * i);
        s->bat[i] = v;
        unsigned st = v & BAT_STATE_MASK;
        bool bitmap = (i + 1) % (s->chunk_ratio + 1) == 0;
        uint64_t off = v & BAT_OFFSET_MASK;
        if (bitmap) {
            if (st != PAYLOAD_NOT_PRESENT && st != PAYLOAD_FULLY_PRESENT) {
                r = err_set(err, -EINVAL, "Invalid VHDX sector bitmap entry %llu",
                            (unsigned long long)i);
                break;
            }
            if (st == PAYLOAD_FULLY_PRESENT &&
                (off < MiB || !range_within(off, MiB, flen))) {
                r = err_set(err, -EINVAL, "VHDX sector bitmap entry %llu offset "
                            "%llu beyond end of file", (unsigned long long)i,
                            (unsigned long long)off);
                break;
            }
            continue;
        }
        if (st == PAYLOAD_PARTIALLY_PRESENT) {
            /* Its chunk's bitmap entry follows the chunk's payload entries. */
            uint64_t bi = (i / (s->chunk_ratio + 1) + 1) * (s->chunk_ratio + 1) - 1;
            if (!s->diff || bi >= s->bat_entries ||
                (ld_le64(raw + 8 * bi) & BAT_STATE_MASK) != PAYLOAD_FULLY_PRESENT) {
                r = err_set(err, -EINVAL, "VHDX BAT entry %llu is partially "
                            "present without a sector bitmap",
                            (unsigned long long)i);
                break;
            }
        }
        if (st == PAYLOAD_FULLY_PRESENT || st == PAYLOAD_PARTIALLY_PRESENT) {
            if (off < MiB || !range_within(off, s->block_size, flen)) {
                r = err_set(err, -EINVAL, "VHDX BAT entry %llu offset %llu points "
                            "after end of file (%llu). Image has probably been "
                            "truncated.", (unsigned long long)i,
                            (unsigned long long)off, (unsigned long long)flen);
                break;
            }
        } else if (st != PAYLOAD_NOT_PRESENT && st != PAYLOAD_UNDEFINED &&
                   st != PAYLOAD_ZERO && st != PAYLOAD_UNMAPPED) {
            r = err_set(err, -EINVAL, "Invalid VHDX BAT entry state %u", st);
            break;
        }
    }
    free(raw);
    return r;
}

static int vhdx_open_image(struct bdev *bs, struct err *err);

static int vhdx_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct vhdx *s = bs->priv;
    (void)opts;
    int r = vhdx_open_image(bs, err);
    if (r >= 0 && s->diff) {
        s->bm = malloc(s->block_size / s->lss / 8);
        s->bm_block = UINT64_MAX;
        if (!s->bm)
            r = err_set(err, -ENOMEM, "Out of memory");
    }
    if (r < 0) {
        free(s->bat);
        s->bat = NULL;
        free(s->bm);
        s->bm = NULL;
    }
    return r;
}

static int vhdx_open_image(struct bdev *bs, struct err *err)
{
    struct vhdx *s = bs->priv;
    uint8_t sig[8];
    uint64_t size = 0;
    int r;

    int64_t flen = bdev_file_length(bs->file);
    if (flen < 0)
        return err_set(err, (int)flen, "Could not get file size");
    if ((uint64_t)flen < MiB)
        return err_set(err, -EINVAL, "VHDX image too small");
    r = bdev_pread(bs->file, 0, 8, sig, err);
    if (r < 0)
        return r;
    if (memcmp(sig, "vhdxfile", 8))
        return err_set(err, -EINVAL, "Invalid VHDX file identifier");
    r = read_headers(bs, s, (uint64_t)flen, err);
    if (r < 0)
        return r;

    bool dirty;
    r = vhdx_log_find(bs->file, s, &dirty, err);
    if (r < 0)
        return r;
    if (dirty) {
        if (!(bs->flags & BDEV_O_RDWR))
            return err_set(err, -EPERM, "VHDX image file '%s' opened read-only, "
                           "but contains a log that needs to be replayed\n"
                           "To replay the log, run:\n"
                           "qemu-img check -r all '%s'",
                           bs->filename, bs->filename);
        r = vhdx_log_replay(bs->file, s, err);
        if (r < 0) {
            err_prefix(err, "Could not replay the VHDX log: ");
            return r;
        }
        s->log_replayed = true;
        flen = bdev_file_length(bs->file);
    }

    r = read_region_table(bs, s, (uint64_t)flen, err);
    if (r >= 0)
        r = read_metadata(bs, s, &size, err);
    if (r < 0)
        return r;
    s->data_blocks = div_round_up(size, s->block_size);
    r = read_bat(bs, s, (uint64_t)flen, err);
    if (r < 0)
        return r;
    bs->size = size;
    bs->align = s->lss;
    return 0;
}

static void vhdx_close(struct bdev *bs)
{
    struct vhdx *s = bs->priv;
    struct err err = ERR_INIT;
    vhdx_log_close(bs->file, s, &err);
    free(s->bat);
    free(s->bm);
}

static uint64_t entry_of(struct vhdx *s, uint64_t off, uint64_t *run)
{
    uint64_t block = off / s->block_size;
    *run = s->block_size - off % s->block_size;
    return s->bat[vhdx_bat_index(s, block)];
}

/* Differencing: make s->bm the sector bits of `block` (from its chunk's
 * sector bitmap block: bit n of the chunk is byte n / 8, bit n % 8). */
static int load_bitmap(struct bdev *bs, struct vhdx *s, uint64_t block,
                       struct err *err)
{
    if (s->bm_block == block)
        return 0;
    uint64_t chunk = block / s->chunk_ratio;
    uint64_t e = s->bat[(chunk + 1) * (s->chunk_ratio + 1) - 1];
    uint64_t per = s->block_size / s->lss;   /* bits per block, >= 256 */
    uint64_t at = (e & BAT_OFFSET_MASK) + (block % s->chunk_ratio) * per / 8;
    s->bm_block = UINT64_MAX;
    int r = bdev_pread(bs->file, at, per / 8, s->bm, err);
    if (r == 0)
        s->bm_block = block;
    return r;
}

/* Differencing: bytes from `off` (in a partially present block whose bits
 * are loaded) up to `len` whose sectors share the first one's presence. */
static uint64_t bitmap_run(const struct vhdx *s, uint64_t off, uint64_t len,
                           bool *present)
{
    uint64_t sec = (off % s->block_size) / s->lss;
    uint64_t end = min_u64(sec + div_round_up(len, s->lss),
                           s->block_size / s->lss);
#define BIT(n) ((s->bm[(n) / 8] >> ((n) % 8)) & 1)
    *present = BIT(sec);
    uint64_t e = sec + 1;
    while (e < end && BIT(e) == *present)
        e++;
#undef BIT
    return min_u64(len, (e - sec) * s->lss);
}

static int vhdx_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                     struct err *err)
{
    struct vhdx *s = bs->priv;
    uint8_t *p = buf;
    while (len) {
        uint64_t run, e = entry_of(s, off, &run);
        uint64_t n = min_u64(run, len);
        int r = 0;
        switch (e & BAT_STATE_MASK) {
        case PAYLOAD_FULLY_PRESENT:
            r = bdev_pread(bs->file, (e & BAT_OFFSET_MASK) + off % s->block_size,
                           n, p, err);
            break;
        case PAYLOAD_PARTIALLY_PRESENT: {
            bool present;
            r = load_bitmap(bs, s, off / s->block_size, err);
            if (r < 0)
                return r;
            n = bitmap_run(s, off, n, &present);
            if (present)
                r = bdev_pread(bs->file, (e & BAT_OFFSET_MASK) +
                               off % s->block_size, n, p, err);
            else
                r = bdev_read_backing(bs, off, n, p, err);
            break;
        }
        case PAYLOAD_ZERO:
            memset(p, 0, n);
            break;
        default:
            if (s->diff)
                r = bdev_read_backing(bs, off, n, p, err);
            else
                memset(p, 0, n);
        }
        if (r < 0)
            return r;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* Before the first change, a new file write GUID (and data write GUID)
 * tells other readers the file changed. */
static int vhdx_user_visible_write(struct bdev *bs, struct vhdx *s,
                                   struct err *err)
{
    if (s->headers_updated)
        return 0;
    vhdx_random_guid(s->hdr.file_write_guid);
    vhdx_random_guid(s->hdr.data_write_guid);
    int r = vhdx_write_headers(bs->file, s, err);
    if (r >= 0)
        s->headers_updated = true;
    return r;
}

static int set_bat(struct bdev *bs, struct vhdx *s, uint64_t block,
                   uint64_t val, struct err *err)
{
    uint8_t sec[VHDX_LOG_SECTOR];
    uint64_t idx = vhdx_bat_index(s, block);
    uint64_t at = s->bat_off + align_down(8 * idx, VHDX_LOG_SECTOR);
    /* The BAT region is whole MiB, so its 4 KiB sectors are inside it. */
    int r = bdev_pread(bs->file, at, sizeof(sec), sec, err);
    if (r < 0)
        return r;
    st_le64(sec + (8 * idx) % VHDX_LOG_SECTOR, val);
    r = vhdx_log_write_sector(bs->file, s, at, sec, err);
    if (r >= 0)
        s->bat[idx] = val;
    return r;
}

static int alloc_block(struct bdev *bs, struct vhdx *s, uint64_t block,
                       uint64_t *host, struct err *err)
{
    uint64_t off = align_up(max_u64(s->alloc_end, bs->file->size), MiB);
    int r = bdev_truncate(bs->file, off + s->block_size, false, PREALLOC_OFF, err);
    if (r < 0)
        return r;
    s->alloc_end = off + s->block_size;
    *host = off;
    (void)block;
    return 0;
}

static int vhdx_write(struct bdev *bs, uint64_t off, uint64_t len,
                      const void *buf, struct err *err)
{
    struct vhdx *s = bs->priv;
    const uint8_t *p = buf;
    if (s->diff)
        return err_set(err, -ENOTSUP, "Writing to differencing VHDX images "
                       "is not supported");
    int r = vhdx_user_visible_write(bs, s, err);
    if (r < 0)
        return r;
    while (len) {
        uint64_t run, e = entry_of(s, off, &run);
        uint64_t n = min_u64(run, len), block = off / s->block_size;
        unsigned st = e & BAT_STATE_MASK;
        uint64_t host = e & BAT_OFFSET_MASK;
        bool fresh = false;
        if (st == PAYLOAD_PARTIALLY_PRESENT)
            return err_set(err, -ENOTSUP, "Partially present VHDX blocks are "
                           "only valid in differencing images");
        if (st != PAYLOAD_FULLY_PRESENT) {
            if (buf_is_zero(p, n))
                goto next;     /* the block reads as zeros already */
            r = alloc_block(bs, s, block, &host, err);
            if (r < 0)
                return r;
            fresh = true;
        }
        r = bdev_pwrite(bs->file, host + off % s->block_size, n, p, err);
        if (r < 0)
            return r;
        if (fresh) {
            /* The data is durable before the BAT points at it. */
            r = bdev_flush(bs->file, err);
            if (r >= 0)
                r = set_bat(bs, s, block, host | PAYLOAD_FULLY_PRESENT, err);
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

static int vhdx_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                             unsigned flags, struct err *err)
{
    struct vhdx *s = bs->priv;
    (void)flags;
    (void)err;
    if (s->diff)
        return -ENOTSUP;
    /* Ranges in blocks that are not allocated read as zeros already. */
    while (len) {
        uint64_t run, e = entry_of(s, off, &run);
        uint64_t n = min_u64(run, len);
        if ((e & BAT_STATE_MASK) == PAYLOAD_FULLY_PRESENT ||
            (e & BAT_STATE_MASK) == PAYLOAD_PARTIALLY_PRESENT)
            return -ENOTSUP;
        off += n;
        len -= n;
    }
    return 0;
}

/* Differencing: one block (or less) at a time. */
static int diff_block_status(struct bdev *bs, struct vhdx *s, uint64_t off,
                             uint64_t len, uint64_t e, struct bstatus *st,
                             struct err *err)
{
    unsigned state = e & BAT_STATE_MASK;
    bool present = state == PAYLOAD_FULLY_PRESENT;
    st->len = len;
    if (state == PAYLOAD_PARTIALLY_PRESENT) {
        int r = load_bitmap(bs, s, off / s->block_size, err);
        if (r < 0)
            return r;
        st->len = bitmap_run(s, off, len, &present);
    }
    if (present) {
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID | BS_RECURSE;
        st->host_off = (e & BAT_OFFSET_MASK) + off % s->block_size;
        st->file = bs->file;
    } else {
        st->flags = state == PAYLOAD_ZERO ? BS_ZERO | BS_ALLOCATED : 0;
    }
    return 0;
}

static int vhdx_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                             struct bstatus *st, struct err *err)
{
    struct vhdx *s = bs->priv;
    /* qemu-img 7.2 has no block status for vhdx: every image it opens
     * (512-byte sectors, no parent) is allocated data throughout, which
     * is what its map prints.  Images only qimg opens show their blocks. */
    if (!s->diff && s->lss == 512) {
        st->len = len;
        st->flags = BS_DATA | BS_ALLOCATED;
        return 0;
    }
    uint64_t run, e = entry_of(s, off, &run);
    if (s->diff)
        return diff_block_status(bs, s, off, min_u64(run, len), e, st, err);
    bool present = (e & BAT_STATE_MASK) == PAYLOAD_FULLY_PRESENT;
    uint64_t host = (e & BAT_OFFSET_MASK) + off % s->block_size;
    uint64_t done = min_u64(run, len);
    /* A bounded number of blocks, so a walk over the image stays linear. */
    len = min_u64(len, done + 255 * (uint64_t)s->block_size);
    while (done < len) {
        uint64_t r2, e2 = entry_of(s, off + done, &r2);
        bool p2 = (e2 & BAT_STATE_MASK) == PAYLOAD_FULLY_PRESENT;
        if (p2 != present || (present && (e2 & BAT_OFFSET_MASK) != host + done))
            break;
        done += min_u64(r2, len - done);
    }
    st->len = done;
    if (present) {
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID | BS_RECURSE;
        st->host_off = host;
        st->file = bs->file;
    } else {
        st->flags = BS_ZERO;
    }
    return 0;
}

static int vhdx_get_info(struct bdev *bs, struct bdev_info *info,
                         struct err *err)
{
    struct vhdx *s = bs->priv;
    (void)err;
    info->cluster_size = s->block_size;
    return 0;
}

/* Opening already validated every table; what check adds is reporting a
 * log replay as a repaired corruption, as qemu-img does. */
static int vhdx_check(struct bdev *bs, struct check_result *res, unsigned fix,
                      struct err *err)
{
    struct vhdx *s = bs->priv;
    (void)fix;
    (void)err;
    if (s->log_replayed)
        res->corruptions_fixed++;
    return 0;
}

static int vhdx_flush(struct bdev *bs, struct err *err)
{
    return bdev_flush(bs->file, err);
}

/* Growing: new blocks need BAT entries; the BAT region has room for them
 * when its length (a multiple of 1 MiB) allows, which covers the common
 * case.  The size is changed in the metadata region last. */
static int vhdx_truncate(struct bdev *bs, uint64_t size, bool shrink,
                         enum prealloc prealloc, struct err *err)
{
    struct vhdx *s = bs->priv;
    (void)shrink;
    if (prealloc != PREALLOC_OFF)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    if (s->diff)
        return err_set(err, -ENOTSUP, "Resizing differencing VHDX images is "
                       "not supported");
    if (size < bs->size)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize"); /* as qemu-img */
    if (size > VHDX_MAX_SIZE)
        return err_set(err, -EINVAL, "Image size too large; max of 64TB");
    if (size % s->lss)
        return err_set(err, -EINVAL, "Size must be a multiple of %u", s->lss);
    uint64_t blocks = div_round_up(size, s->block_size);
    uint64_t entries = blocks ? blocks + (blocks - 1) / s->chunk_ratio : 0;
    if (entries * 8 > s->bat_len)
        return err_set(err, -ENOTSUP, "Cannot grow the BAT region of this image");
    int r = vhdx_user_visible_write(bs, s, err);
    if (r < 0)
        return r;
    uint64_t *nb = realloc(s->bat, entries * 8);
    if (!nb)
        return err_set(err, -ENOMEM, "Out of memory");
    s->bat = nb;
    /* Entries past the old end are whatever the region held: reset them. */
    uint8_t z[8] = { 0 };
    for (uint64_t i = s->bat_entries; i < entries; i++) {
        s->bat[i] = 0;
        r = bdev_pwrite(bs->file, s->bat_off + 8 * i, 8, z, err);
        if (r < 0)
            return r;
    }
    /* The old last block may have been partial: its tail beyond the old
     * size must read as zeros, which a present block does not promise. */
    if (bs->size % s->block_size) {
        uint64_t run, e = entry_of(s, bs->size, &run);
        if ((e & BAT_STATE_MASK) == PAYLOAD_FULLY_PRESENT) {
            uint64_t tail = min_u64(run, size - bs->size);
            r = bdev_pwrite_zeroes(bs->file, (e & BAT_OFFSET_MASK) +
                                   bs->size % s->block_size, tail, 0, err);
            if (r < 0)
                return r;
        }
    }
    r = bdev_flush(bs->file, err);
    if (r < 0)
        return r;
    /* Find the disk size item and rewrite it. */
    uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
    if (!t)
        return err_set(err, -ENOMEM, "Out of memory");
    r = bdev_pread(bs->file, s->meta_off, VHDX_META_TABLE_SIZE, t, err);
    uint16_t n = r < 0 ? 0 : ld_le16(t + 10);
    uint64_t item = 0;
    for (uint16_t i = 0; i < n && i < (VHDX_META_TABLE_SIZE - 32) / 32; i++)
        if (!memcmp(t + 32 + 32 * i, vhdx_guid_disk_size, 16))
            item = s->meta_off + ld_le32(t + 32 + 32 * i + 16);
    free(t);
    if (r < 0)
        return r;
    if (!item)
        return err_set(err, -EINVAL, "VHDX metadata lacks the disk size");
    uint8_t v[8];
    st_le64(v, size);
    r = bdev_pwrite(bs->file, item, 8, v, err);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    if (r < 0)
        return r;
    s->data_blocks = blocks;
    s->bat_entries = entries;
    bs->size = size;
    return 0;
}

static const struct opt_desc vhdx_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size; max of 64TB.", NULL },
    { "log_size", OPT_SIZE, "Log size; min 1MB.", "1048576" },
    { "block_size", OPT_SIZE, "Block Size; min 1MB, max 256MB. 0 means "
      "auto-calculate based on image size.", "0" },
    { "subformat", OPT_STRING, "VHDX format type, can be either 'dynamic' or "
      "'fixed'. Default is 'dynamic'.", NULL },
    { "block_state_zero", OPT_BOOL, "Force use of payload blocks of type "
      "'ZERO'. Non-standard, but default.  Do not set to 'off' when using "
      "'qemu-img convert' with subformat=dynamic.", NULL },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_vhdx = {
    .name = "vhdx",
    .kind = DRV_FORMAT,
    .caps = DRV_ZERO_INIT | DRV_BACKING,
    .priv_size = sizeof(struct vhdx),
    .create_opts = vhdx_create_opts,
    .probe = vhdx_probe,
    .open = vhdx_open,
    .close = vhdx_close,
    .create = vhdx_create,
    .read = vhdx_read,
    .write = vhdx_write,
    .write_zeroes = vhdx_write_zeroes,
    .flush = vhdx_flush,
    .block_status = vhdx_block_status,
    .truncate = vhdx_truncate,
    .get_info = vhdx_get_info,
    .check = vhdx_check,
};
