/* vhdx image creation in qemu-img's layout: file identifier, two headers,
 * two region tables, the log at 1 MiB, the BAT, then the metadata region;
 * fixed images get every payload block allocated from 5 MiB past the BAT. */
#include "fmt/vhdx/vhdx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define CREATOR "qimg 7.2"

static uint64_t auto_block_size(uint64_t size)
{
    if (size > 32 * TiB)
        return 64 * MiB;
    if (size > 100 * (UINT64_C(1) << 30))
        return 32 * MiB;
    if (size > (UINT64_C(1) << 30))
        return 16 * MiB;
    return 8 * MiB;
}

static void put_region(uint8_t *rt, int i, const uint8_t *guid, uint64_t off,
                       uint64_t len)
{
    uint8_t *e = rt + 16 + 32 * i;
    memcpy(e, guid, 16);
    st_le64(e + 16, off);
    st_le32(e + 24, (uint32_t)len);
    st_le32(e + 28, 1);
}

static void put_meta(uint8_t *t, int i, const uint8_t *guid, uint32_t off,
                     uint32_t len, uint32_t flags)
{
    uint8_t *e = t + 32 + 32 * i;
    memcpy(e, guid, 16);
    st_le32(e + 16, off);
    st_le32(e + 20, len);
    st_le32(e + 24, flags);
}

static int write_layout(struct bdev *f, uint64_t size, uint64_t block_size,
                        uint64_t log_size, bool fixed, bool zero_state,
                        struct err *err)
{
    struct vhdx s;
    int r;
    memset(&s, 0, sizeof(s));
    s.block_size = (uint32_t)block_size;
    s.lss = 512;
    s.chunk_ratio = (UINT64_C(1) << 23) * s.lss / block_size;
    s.data_blocks = div_round_up(size, block_size);
    /* qemu-img counts (blocks - 1) / chunk_ratio sector bitmap entries in
     * 32 bits, so an empty disk gets a BAT of 0xffffffff / chunk_ratio
     * entries, and qemu-img refuses to open one whose BAT is shorter. */
    s.bat_entries = s.data_blocks ? s.data_blocks + (s.data_blocks - 1) / s.chunk_ratio
                                  : UINT32_MAX / s.chunk_ratio;
    uint64_t log_off = MiB;
    uint64_t bat_off = log_off + log_size;
    uint64_t bat_len = align_up(s.bat_entries * 8, MiB);
    uint64_t meta_off = bat_off + bat_len;
    uint64_t meta_len = MiB;
    /* Payload starts 5 MiB past the BAT, where qemu-img puts it (room for
     * the metadata region to grow): empty images have qemu-img's size. */
    uint64_t data_off = bat_off + bat_len + 5 * MiB;

    /* File type identifier. */
    uint8_t *buf = calloc(1, 64 * KiB);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    memcpy(buf, "vhdxfile", 8);
    for (size_t i = 0; i < strlen(CREATOR); i++)
        buf[8 + 2 * i] = (uint8_t)CREATOR[i];
    r = bdev_pwrite(f, 0, 64 * KiB, buf, err);

    /* Region tables. */
    memset(buf, 0, 64 * KiB);
    st_le32(buf, 0x69676572u);
    st_le32(buf + 8, 2);
    put_region(buf, 0, vhdx_guid_bat, bat_off, bat_len);
    put_region(buf, 1, vhdx_guid_meta, meta_off, meta_len);
    vhdx_crc_set(buf, VHDX_RT_SIZE);
    if (r >= 0)
        r = bdev_pwrite(f, VHDX_RT1_OFF, VHDX_RT_SIZE, buf, err);
    if (r >= 0)
        r = bdev_pwrite(f, VHDX_RT2_OFF, VHDX_RT_SIZE, buf, err);

    /* Metadata table and items. */
    memset(buf, 0, 64 * KiB);
    memcpy(buf, "metadata", 8);
    st_le16(buf + 10, 5);
    put_meta(buf, 0, vhdx_guid_file_params, 64 * KiB, 8, 4);
    put_meta(buf, 1, vhdx_guid_disk_size, 64 * KiB + 8, 8, 6);
    put_meta(buf, 2, vhdx_guid_disk_id, 64 * KiB + 16, 16, 6);
    put_meta(buf, 3, vhdx_guid_lss, 64 * KiB + 32, 4, 6);
    put_meta(buf, 4, vhdx_guid_pss, 64 * KiB + 36, 4, 6);
    if (r >= 0)
        r = bdev_pwrite(f, meta_off, VHDX_META_TABLE_SIZE, buf, err);
    uint8_t items[40];
    memset(items, 0, sizeof(items));
    st_le32(items, (uint32_t)block_size);
    st_le32(items + 4, fixed ? 1 : 0);   /* leave blocks allocated */
    st_le64(items + 8, size);
    vhdx_random_guid(items + 16);
    st_le32(items + 32, 512);
    st_le32(items + 36, 512);
    if (r >= 0)
        r = bdev_pwrite(f, meta_off + 64 * KiB, sizeof(items), items, err);
    free(buf);
    if (r < 0)
        return r;

    /* BAT. */
    uint8_t *bat = calloc(1, bat_len);
    if (!bat)
        return err_set(err, -ENOMEM, "Out of memory");
    for (uint64_t b = 0; b < s.data_blocks; b++) {
        uint64_t v = fixed ? ((data_off + b * block_size) | PAYLOAD_FULLY_PRESENT)
                           : (zero_state ? PAYLOAD_ZERO : PAYLOAD_NOT_PRESENT);
        st_le64(bat + 8 * vhdx_bat_index(&s, b), v);
    }
    r = bdev_pwrite(f, bat_off, bat_len, bat, err);
    free(bat);
    if (r >= 0)
        r = bdev_truncate(f, fixed ? data_off + s.data_blocks * block_size
                                   : data_off, false, PREALLOC_OFF, err);
    if (r >= 0)
        r = bdev_flush(f, err);
    if (r < 0)
        return r;

    /* Headers last: the image is valid only once they are written. */
    s.hdr.version = 1;
    s.hdr.log_length = (uint32_t)log_size;
    s.hdr.log_offset = log_off;
    vhdx_random_guid(s.hdr.file_write_guid);
    vhdx_random_guid(s.hdr.data_write_guid);
    s.cur_header = 1;
    return vhdx_write_headers(f, &s, err);
}

int vhdx_create(const char *filename, struct kvlist *opts, struct err *err)
{
    uint64_t size, block_size, log_size;
    bool zero_state;
    int r = kv_get_size(opts, "size", 0, &size, err);
    if (r >= 0)
        r = kv_get_size(opts, "block_size", 0, &block_size, err);
    if (r >= 0)
        r = kv_get_size(opts, "log_size", MiB, &log_size, err);
    if (r >= 0)
        r = kv_get_bool(opts, "block_state_zero", true, &zero_state, err);
    if (r < 0)
        return r;
    const char *sub = kv_get(opts, "subformat");
    bool fixed = false;
    if (sub && !strcmp(sub, "fixed"))
        fixed = true;
    else if (sub && strcmp(sub, "dynamic"))
        return err_set(err, -EINVAL, "Parameter 'subformat' does not accept "
                       "value '%s'", sub);
    if (size > VHDX_MAX_SIZE)
        return err_set(err, -EINVAL, "Image size too large; max of 64TB");
    size = align_up(size, 512);
    if (!log_size)
        log_size = MiB;
    log_size = align_up(log_size, MiB);
    if (log_size > UINT32_MAX - MiB + 1)
        return err_set(err, -EINVAL, "Log size must be smaller than 4 GB");
    if (!block_size)
        block_size = auto_block_size(size);
    block_size = align_up(block_size, MiB);
    if (block_size > VHDX_BLOCK_MAX)
        block_size = VHDX_BLOCK_MAX;
    if (!is_pow2(block_size))
        return err_set(err, -EINVAL, "Block size must be a power of two");

    r = bdev_create_file_size(filename, opts, 0, err);
    if (r < 0)
        return r;
    struct bdev *f = bdev_open_file(filename, BDEV_O_RDWR, err);
    if (!f)
        return err->code ? err->code : -EIO;
    r = write_layout(f, size, block_size, log_size, fixed, zero_state, err);
    bdev_close(f);
    return r;
}
