/* vhdx log ([MS-VHDX] 2.3): finding the active sequence of log entries in
 * the circular log and replaying it.  A log entry is a 4 KiB header sector
 * with zero and data descriptors, followed by one 4 KiB data sector per
 * data descriptor; every sector carries the entry's sequence number and the
 * whole entry is covered by a CRC-32C.  The active sequence is the valid
 * chain of consecutive sequence numbers with the highest head, replayed
 * from the head's tail entry to the head.
 *
 * Writing: each metadata sector update is one self-contained entry (its
 * tail is itself), made durable before the sector is written in place and
 * flushed; the log GUID is set in the headers before the first entry and
 * cleared when the image is closed cleanly. */
#include "fmt/vhdx/vhdx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/crc32c.h"
#include "util/endian.h"

#define LOG_ENTRY_HDR   64
#define LOG_DESC_SIZE   32
#define SIG_LOGE        0x65676f6cu
#define SIG_ZERO        0x6f72657au
#define SIG_DESC        0x63736564u
#define SIG_DATA        0x61746164u
/* Nothing the log may write lies past this (the largest image plus its
 * metadata). */
#define LOG_WRITE_LIMIT (2 * VHDX_MAX_SIZE)

struct log_entry {
    uint64_t off;               /* in the log */
    uint64_t seq;
    uint32_t len;
    uint32_t tail;
    uint32_t ndesc;
    uint64_t last_file_off;
};

static int read_log_sector(struct bdev *file, const struct vhdx *s,
                           uint64_t off, uint8_t *buf, struct err *err)
{
    off %= s->hdr.log_length;
    return bdev_pread(file, s->hdr.log_offset + off, VHDX_LOG_SECTOR, buf, err);
}

/* Validate the entry at `off`; *ok false when it is not a valid entry of
 * this log.  Only I/O errors are returned as errors. */
static int check_entry(struct bdev *file, const struct vhdx *s, uint64_t off,
                       struct log_entry *e, bool *ok, struct err *err)
{
    uint8_t sec[VHDX_LOG_SECTOR];
    uint8_t first[VHDX_LOG_SECTOR];
    int r;
    *ok = false;
    r = read_log_sector(file, s, off, first, err);
    if (r < 0)
        return r;
    if (ld_le32(first) != SIG_LOGE)
        return 0;
    e->off = off;
    e->len = ld_le32(first + 8);
    e->tail = ld_le32(first + 12);
    e->seq = ld_le64(first + 16);
    e->ndesc = ld_le32(first + 24);
    e->last_file_off = ld_le64(first + 56);
    if (!e->len || e->len % VHDX_LOG_SECTOR || e->len > s->hdr.log_length ||
        e->tail % VHDX_LOG_SECTOR || e->tail >= s->hdr.log_length ||
        memcmp(first + 32, s->hdr.log_guid, 16) || !e->seq)
        return 0;
    uint64_t desc_sectors = div_round_up(LOG_ENTRY_HDR +
                                         (uint64_t)e->ndesc * LOG_DESC_SIZE,
                                         VHDX_LOG_SECTOR);
    uint64_t sectors = e->len / VHDX_LOG_SECTOR;
    if (desc_sectors > sectors)
        return 0;

    /* Walk the descriptors, counting data descriptors, and the CRC. */
    uint64_t ndata = 0;
    uint32_t stored = ld_le32(first + 4);
    st_le32(first + 4, 0);
    uint32_t crc = 0;
    for (uint64_t i = 0; i < sectors; i++) {
        uint8_t *p = i == 0 ? first : sec;
        if (i) {
            r = read_log_sector(file, s, off + i * VHDX_LOG_SECTOR, sec, err);
            if (r < 0)
                return r;
        }
        if (i < desc_sectors) {
            uint64_t d0 = i == 0 ? 0 : (i * VHDX_LOG_SECTOR - LOG_ENTRY_HDR) / LOG_DESC_SIZE;
            for (uint64_t d = d0; d < e->ndesc; d++) {
                uint64_t pos = LOG_ENTRY_HDR + d * LOG_DESC_SIZE - i * VHDX_LOG_SECTOR;
                if (pos + LOG_DESC_SIZE > VHDX_LOG_SECTOR)
                    break;
                uint32_t sig = ld_le32(p + pos);
                if ((sig != SIG_ZERO && sig != SIG_DESC) ||
                    ld_le64(p + pos + 24) != e->seq)
                    return 0;
                if (sig == SIG_DESC)
                    ndata++;
            }
        } else {
            uint64_t sq = (uint64_t)ld_le32(p + 4) << 32 | ld_le32(p + 4092);
            if (ld_le32(p) != SIG_DATA || sq != e->seq)
                return 0;
        }
        crc = crc32c(crc, p, VHDX_LOG_SECTOR);
    }
    if (crc != stored || desc_sectors + ndata != sectors)
        return 0;
    *ok = true;
    return 0;
}

struct log_seq {
    bool valid;
    uint64_t start_off;         /* first entry to replay (the tail) */
    uint64_t head_seq;
    uint64_t count;             /* entries from tail to head */
    uint64_t last_file_off;
};

static int find_sequence(struct bdev *file, const struct vhdx *s,
                         struct log_seq *best, struct err *err)
{
    uint64_t nsec = s->hdr.log_length / VHDX_LOG_SECTOR;
    uint8_t *seen = calloc(1, nsec ? nsec : 1);
    int r = 0;
    memset(best, 0, sizeof(*best));
    if (!seen)
        return err_set(err, -ENOMEM, "Out of memory");
    for (uint64_t i = 0; i < nsec && r >= 0; i++) {
        struct log_entry e, head;
        bool ok;
        if (seen[i])
            continue;
        r = check_entry(file, s, i * VHDX_LOG_SECTOR, &e, &ok, err);
        if (r < 0 || !ok)
            continue;
        uint64_t first_off = e.off, n = 1;
        head = e;
        seen[i] = 1;
        for (;;) {
            struct log_entry nx;
            uint64_t noff = (head.off + head.len) % s->hdr.log_length;
            if (noff == first_off || n >= nsec)
                break;
            r = check_entry(file, s, noff, &nx, &ok, err);
            if (r < 0 || !ok || nx.seq != head.seq + 1)
                break;
            seen[noff / VHDX_LOG_SECTOR] = 1;
            head = nx;
            n++;
        }
        if (r < 0)
            break;
        if (best->valid && head.seq <= best->head_seq)
            continue;
        /* The head's tail must be one of this chain's entries. */
        uint64_t off = first_off, k = 0;
        struct log_entry cur = e;
        while (k < n && off != head.tail) {
            off = (off + cur.len) % s->hdr.log_length;
            k++;
            if (k < n) {
                r = check_entry(file, s, off, &cur, &ok, err);
                if (r < 0 || !ok)
                    break;
            }
        }
        if (r < 0)
            break;
        if (k < n && off == head.tail) {
            best->valid = true;
            best->start_off = head.tail;
            best->head_seq = head.seq;
            best->count = n - k;
            best->last_file_off = head.last_file_off;
        }
    }
    free(seen);
    return r;
}

int vhdx_log_find(struct bdev *file, struct vhdx *s, bool *dirty,
                  struct err *err)
{
    static const uint8_t zero[16];
    struct log_seq seq;
    *dirty = false;
    if (!memcmp(s->hdr.log_guid, zero, 16))
        return 0;
    int r = find_sequence(file, s, &seq, err);
    if (r < 0)
        return r;
    *dirty = seq.valid;
    return 0;
}

static int apply_entry(struct bdev *file, struct vhdx *s, uint64_t off,
                       struct err *err)
{
    uint8_t hdr[VHDX_LOG_SECTOR], sec[VHDX_LOG_SECTOR], data[VHDX_LOG_SECTOR];
    int r = read_log_sector(file, s, off, hdr, err);
    if (r < 0)
        return r;
    uint32_t ndesc = ld_le32(hdr + 24);
    uint64_t desc_sectors = div_round_up(LOG_ENTRY_HDR + (uint64_t)ndesc * LOG_DESC_SIZE,
                                         VHDX_LOG_SECTOR);
    uint64_t data_sector = desc_sectors;
    for (uint64_t d = 0; d < ndesc; d++) {
        uint64_t pos = LOG_ENTRY_HDR + d * LOG_DESC_SIZE;
        uint64_t si = pos / VHDX_LOG_SECTOR;
        const uint8_t *p = hdr;
        if (si) {
            r = read_log_sector(file, s, off + si * VHDX_LOG_SECTOR, sec, err);
            if (r < 0)
                return r;
            p = sec;
        }
        p += pos % VHDX_LOG_SECTOR;
        uint64_t target = ld_le64(p + 16);
        if (ld_le32(p) == SIG_ZERO) {
            uint64_t len = ld_le64(p + 8);
            if (target % VHDX_LOG_SECTOR || len % VHDX_LOG_SECTOR ||
                target < MiB || !range_within(target, len, LOG_WRITE_LIMIT))
                return err_set(err, -EINVAL, "Invalid VHDX log zero descriptor");
            r = bdev_pwrite_zeroes(file, target, len, 0, err);
        } else {
            if (target % VHDX_LOG_SECTOR || target < MiB ||
                !range_within(target, VHDX_LOG_SECTOR, LOG_WRITE_LIMIT))
                return err_set(err, -EINVAL, "Invalid VHDX log data descriptor");
            r = read_log_sector(file, s, off + data_sector * VHDX_LOG_SECTOR,
                                sec, err);
            if (r < 0)
                return r;
            data_sector++;
            /* The sector's first 8 and last 4 bytes live in the descriptor. */
            memcpy(data, p + 8, 8);
            memcpy(data + 8, sec + 8, VHDX_LOG_SECTOR - 12);
            memcpy(data + VHDX_LOG_SECTOR - 4, p + 4, 4);
            r = bdev_pwrite(file, target, VHDX_LOG_SECTOR, data, err);
        }
        if (r < 0)
            return r;
    }
    return 0;
}

int vhdx_log_replay(struct bdev *file, struct vhdx *s, struct err *err)
{
    struct log_seq seq;
    int r = find_sequence(file, s, &seq, err);
    if (r < 0 || !seq.valid)
        return r;
    uint64_t off = seq.start_off;
    for (uint64_t i = 0; i < seq.count; i++) {
        struct log_entry e;
        bool ok;
        r = check_entry(file, s, off, &e, &ok, err);
        if (r < 0)
            return r;
        if (!ok)
            return err_set(err, -EINVAL, "VHDX log changed during replay");
        r = apply_entry(file, s, off, err);
        if (r < 0)
            return r;
        off = (off + e.len) % s->hdr.log_length;
    }
    if (seq.last_file_off > file->size && seq.last_file_off <= LOG_WRITE_LIMIT) {
        r = bdev_truncate(file, seq.last_file_off, false, PREALLOC_OFF, err);
        if (r < 0)
            return r;
    }
    r = bdev_flush(file, err);
    if (r < 0)
        return r;
    memset(s->hdr.log_guid, 0, 16);
    return vhdx_write_headers(file, s, err);
}

int vhdx_log_write_sector(struct bdev *file, struct vhdx *s, uint64_t target,
                          const uint8_t *data, struct err *err)
{
    static const uint8_t zero[16];
    uint8_t *e;
    int r;
    s->log_used = true;
    if (!memcmp(s->hdr.log_guid, zero, 16)) {
        vhdx_random_guid(s->hdr.log_guid);
        r = vhdx_write_headers(file, s, err);
        if (r < 0)
            return r;
    }
    uint64_t len = 2 * VHDX_LOG_SECTOR;
    if (s->log_head + len > s->hdr.log_length)
        s->log_head = 0;
    e = calloc(1, len);
    if (!e)
        return err_set(err, -ENOMEM, "Out of memory");
    uint64_t seq = ++s->log_seq;
    st_le32(e, SIG_LOGE);
    st_le32(e + 8, (uint32_t)len);
    st_le32(e + 12, (uint32_t)s->log_head);
    st_le64(e + 16, seq);
    st_le32(e + 24, 1);
    memcpy(e + 32, s->hdr.log_guid, 16);
    st_le64(e + 48, file->size);
    st_le64(e + 56, file->size);
    uint8_t *d = e + LOG_ENTRY_HDR;
    st_le32(d, SIG_DESC);
    memcpy(d + 4, data + VHDX_LOG_SECTOR - 4, 4);
    memcpy(d + 8, data, 8);
    st_le64(d + 16, target);
    st_le64(d + 24, seq);
    uint8_t *ds = e + VHDX_LOG_SECTOR;
    st_le32(ds, SIG_DATA);
    st_le32(ds + 4, (uint32_t)(seq >> 32));
    memcpy(ds + 8, data + 8, VHDX_LOG_SECTOR - 12);
    st_le32(ds + VHDX_LOG_SECTOR - 4, (uint32_t)seq);
    vhdx_crc_set(e, len);
    r = bdev_pwrite(file, s->hdr.log_offset + s->log_head, len, e, err);
    free(e);
    if (r >= 0)
        r = bdev_flush(file, err);
    if (r >= 0)
        r = bdev_pwrite(file, target, VHDX_LOG_SECTOR, data, err);
    if (r >= 0)
        r = bdev_flush(file, err);
    if (r >= 0)
        s->log_head += len;
    return r;
}

int vhdx_log_close(struct bdev *file, struct vhdx *s, struct err *err)
{
    if (!s->log_used)
        return 0;
    int r = bdev_flush(file, err);
    if (r < 0)
        return r;
    memset(s->hdr.log_guid, 0, 16);
    s->log_used = false;
    return vhdx_write_headers(file, s, err);
}
