/* vhdx: private header shared by the VHDX driver's files ([MS-VHDX]).
 *
 *   vhdx.c     open (headers, region table, metadata, BAT), read, write,
 *              block status, info, resize, the driver
 *   log.c      finding and replaying the metadata log
 *   parent.c   differencing images: the parent locator and its check
 *   create.c   image creation (dynamic and fixed) */
#ifndef QIMG_FMT_VHDX_H
#define QIMG_FMT_VHDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/driver.h"
#include "util/endian.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define TiB (UINT64_C(1) << 40)

#define VHDX_HEADER1_OFF     (64 * KiB)
#define VHDX_HEADER2_OFF     (128 * KiB)
#define VHDX_RT1_OFF         (192 * KiB)
#define VHDX_RT2_OFF         (256 * KiB)
#define VHDX_HEADER_SIZE     (4 * KiB)
#define VHDX_RT_SIZE         (64 * KiB)
#define VHDX_META_TABLE_SIZE (64 * KiB)
#define VHDX_MAX_SIZE        (64 * TiB)
#define VHDX_BLOCK_MIN       MiB
#define VHDX_BLOCK_MAX       (256 * MiB)
#define VHDX_LOG_SECTOR      (4 * KiB)

/* BAT entry states. */
#define PAYLOAD_NOT_PRESENT       0
#define PAYLOAD_UNDEFINED         1
#define PAYLOAD_ZERO              2
#define PAYLOAD_UNMAPPED          3
#define PAYLOAD_FULLY_PRESENT     6
#define PAYLOAD_PARTIALLY_PRESENT 7
#define BAT_STATE_MASK            7u
#define BAT_OFFSET_MASK           (~(MiB - 1))

struct vhdx_header {
    uint64_t seq;
    uint8_t file_write_guid[16];
    uint8_t data_write_guid[16];
    uint8_t log_guid[16];
    uint16_t log_version, version;
    uint32_t log_length;
    uint64_t log_offset;
};

struct vhdx {
    struct vhdx_header hdr;
    int cur_header;            /* 0 or 1: which slot holds hdr */
    bool headers_updated;      /* file_write_guid renewed this session */
    bool log_replayed;         /* open replayed a dirty log */
    bool log_used;             /* this session wrote log entries */
    uint64_t log_head;         /* where the next log entry goes */
    uint64_t log_seq;          /* last log entry's sequence number */
    uint64_t bat_off, bat_len;
    uint64_t meta_off, meta_len;
    uint32_t block_size;
    uint32_t lss, pss;         /* logical and physical sector sizes */
    uint8_t disk_id[16];
    uint64_t chunk_ratio;
    uint64_t data_blocks;
    uint64_t bat_entries;
    uint64_t *bat;             /* native order */
    uint64_t alloc_end;        /* where the next block goes */
    bool diff;                 /* differencing (HasParent) */
    uint8_t *bm;               /* differencing: sector bits of block bm_block */
    uint64_t bm_block;
};

extern const uint8_t vhdx_guid_bat[16], vhdx_guid_meta[16],
    vhdx_guid_file_params[16], vhdx_guid_disk_size[16], vhdx_guid_disk_id[16],
    vhdx_guid_lss[16], vhdx_guid_pss[16], vhdx_guid_parent[16];

/* vhdx.c */
/* Headers, region tables and log entries carry a CRC-32C of themselves
 * at byte 4, computed with that field as zero. */
uint32_t vhdx_crc(const uint8_t *buf, size_t len);
static inline bool vhdx_crc_ok(const uint8_t *buf, size_t len)
{
    return vhdx_crc(buf, len) == ld_le32(buf + 4);
}
void vhdx_crc_set(uint8_t *buf, size_t len);
void vhdx_header_encode(const struct vhdx_header *h, uint8_t *buf);
/* Decode a 4 KiB header; false when its signature or CRC-32C is wrong. */
bool vhdx_header_decode(const uint8_t *buf, struct vhdx_header *h);
/* Write `h` with the next sequence number into the older slot, twice, so
 * both slots end up current. */
int vhdx_write_headers(struct bdev *file, struct vhdx *s, struct err *err);
void vhdx_random_guid(uint8_t *g);
uint64_t vhdx_bat_index(const struct vhdx *s, uint64_t block);

/* log.c */
/* Whether the log holds entries to replay (header log GUID set and a
 * valid sequence found). */
int vhdx_log_find(struct bdev *file, struct vhdx *s, bool *dirty,
                  struct err *err);
/* Replay the active log sequence and clear the log GUID. */
int vhdx_log_replay(struct bdev *file, struct vhdx *s, struct err *err);

/* Update the 4 KiB metadata sector at `target` through the log. */
int vhdx_log_write_sector(struct bdev *file, struct vhdx *s, uint64_t target,
                          const uint8_t *data, struct err *err);
/* After a session that used the log: clear the log GUID in the headers. */
int vhdx_log_close(struct bdev *file, struct vhdx *s, struct err *err);

/* parent.c */
/* Parse the Parent Locator metadata item (`len` bytes, already read):
 * sets bs->backing_file/backing_fmt and, unless the chain is not opened,
 * checks the parent's data write GUID against parent_linkage. */
int vhdx_parse_parent(struct bdev *bs, const uint8_t *item, uint32_t len,
                      struct err *err);

/* create.c */
int vhdx_create(const char *filename, struct kvlist *opts, struct err *err);

#endif
