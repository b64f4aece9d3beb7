/* vmdk seSparse extents (ESXi snapshot deltas, extent type SESPARSE),
 * read-only.  VMware has not published the layout; what is read here is
 * the layout ESXi writes and QEMU reads:
 *
 *   sector 0   const header: 26 little-endian 64-bit fields (magic
 *              0xcafebabe, version 2.1, capacity in sectors, grain size 8
 *              sectors, grain table size 64 sectors, flags, four reserved,
 *              then offset/size pairs in sectors for the volatile header,
 *              journal header, journal, grain directory, grain tables, free
 *              bitmap, backmap and grains), zero padding
 *   volatile   magic 0xcafecafe, free table number, transaction number,
 *   header     replay-journal flag (set: the image is dirty), zero padding
 *   directory  64-bit entries: 0 no table, 0x10000000_nnnnnnnn table n of
 *              the grain tables area (each table 64 sectors)
 *   tables     64-bit entries, the top nibble is the type: 0 unallocated
 *              (rest must be zero), 1 unmapped and 2 zero (both read as
 *              zeros), 3 allocated with grain number bits 0-11 in entry
 *              bits 48-59 and bits 12-59 in entry bits 0-47, counted in
 *              grains from the grains area
 *
 * The journal is never replayed: a dirty image is refused, as QEMU does.
 * Writing is refused at open. */
#include "fmt/vmdk/vmdk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"
#include "util/zero.h"

#define SE_CONST_MAGIC     UINT64_C(0xcafebabe)
#define SE_VOLATILE_MAGIC  UINT64_C(0xcafecafe)
#define SE_VERSION         UINT64_C(0x0000000200000001)
#define SE_GRAIN_SECTORS   8
#define SE_GT_SECTORS      64
#define SE_GTES_PER_GT     (SE_GT_SECTORS * VMDK_SECTOR / 8)
/* 64 TiB, the largest disk ESXi makes; keeps the directory under 32 MiB. */
#define SE_MAX_CAPACITY    (UINT64_C(64) << 40)

/* Const header field numbers (each 8 bytes). */
enum {
    F_MAGIC, F_VERSION, F_CAPACITY, F_GRAIN, F_GT_SIZE, F_FLAGS,
    F_RES1, F_RES2, F_RES3, F_RES4,
    F_VOL_OFF, F_VOL_SIZE, F_JH_OFF, F_JH_SIZE, F_J_OFF, F_J_SIZE,
    F_GD_OFF, F_GD_SIZE, F_GT_OFF, F_GT_SIZE_AREA, F_FB_OFF, F_FB_SIZE,
    F_BM_OFF, F_BM_SIZE, F_GRAINS_OFF, F_GRAINS_SIZE, F_COUNT
};

static int check_const(const uint8_t *h, struct err *err)
{
    uint64_t f[F_COUNT];
    for (int i = 0; i < F_COUNT; i++)
        f[i] = ld_le64(h + 8 * i);
    if (f[F_MAGIC] != SE_CONST_MAGIC)
        return err_set(err, -EINVAL, "Bad const header magic: 0x%016" PRIx64,
                       f[F_MAGIC]);
    if (f[F_VERSION] != SE_VERSION)
        return err_set(err, -ENOTSUP, "Unsupported version: 0x%016" PRIx64,
                       f[F_VERSION]);
    if (f[F_GRAIN] != SE_GRAIN_SECTORS)
        return err_set(err, -ENOTSUP, "Unsupported grain size: %" PRIu64,
                       f[F_GRAIN]);
    if (f[F_GT_SIZE] != SE_GT_SECTORS)
        return err_set(err, -ENOTSUP, "Unsupported grain table size: %" PRIu64,
                       f[F_GT_SIZE]);
    if (f[F_FLAGS])
        return err_set(err, -ENOTSUP, "Unsupported flags: 0x%016" PRIx64,
                       f[F_FLAGS]);
    if (f[F_RES1] || f[F_RES2] || f[F_RES3] || f[F_RES4])
        return err_set(err, -ENOTSUP, "Unsupported reserved bits: 0x%016"
                       PRIx64 " 0x%016" PRIx64 " 0x%016" PRIx64 " 0x%016"
                       PRIx64, f[F_RES1], f[F_RES2], f[F_RES3], f[F_RES4]);
    if (!buf_is_zero(h + 8 * F_COUNT, VMDK_SECTOR - 8 * F_COUNT))
        return err_set(err, -ENOTSUP, "Unsupported non-zero const header "
                       "padding");
    return 0;
}

/* Sector offset `sectors` as bytes, for a structure of `len` bytes that
 * must lie inside the file. */
static int area(uint64_t sectors, uint64_t len, uint64_t flen, uint64_t *out,
                const char *what, struct err *err)
{
    uint64_t off;
    if (mul_overflow(sectors, VMDK_SECTOR, &off) ||
        !range_within(off, len, flen))
        return err_set(err, -EINVAL, "seSparse %s at sector %" PRIu64
                       " beyond end of file", what, sectors);
    *out = off;
    return 0;
}

int vmdk_sesparse_open(struct vmdk_extent *e, uint64_t *capacity,
                       struct err *err)
{
    uint8_t h[VMDK_SECTOR] = { 0 }, v[VMDK_SECTOR] = { 0 };
    uint64_t flen = e->file->size, off;
    int r;

    /* A short file reads as zero-padded, so a truncated header fails the
     * checks below with the message of the field that is missing. */
    r = bdev_pread(e->file, 0, min_u64(flen, VMDK_SECTOR), h, err);
    if (r < 0)
        return r;
    r = check_const(h, err);
    if (r < 0)
        return r;
    uint64_t vol_off = ld_le64(h + 8 * F_VOL_OFF);
    if (vol_off < flen / VMDK_SECTOR) {
        uint64_t at = vol_off * VMDK_SECTOR;
        r = bdev_pread(e->file, at, min_u64(flen - at, VMDK_SECTOR), v, err);
        if (r < 0)
            return r;
    }
    if (ld_le64(v) != SE_VOLATILE_MAGIC)
        return err_set(err, -EINVAL, "Bad volatile header magic: 0x%016" PRIx64,
                       ld_le64(v));
    if (ld_le64(v + 24))
        return err_set(err, -ENOTSUP, "Image is dirty, Replaying journal not "
                       "supported");
    if (!buf_is_zero(v + 32, VMDK_SECTOR - 32))
        return err_set(err, -ENOTSUP, "Unsupported non-zero volatile header "
                       "padding");

    uint64_t cap = ld_le64(h + 8 * F_CAPACITY);
    if (cap > SE_MAX_CAPACITY / VMDK_SECTOR)
        return err_set(err, -EINVAL, "Invalid seSparse capacity %" PRIu64
                       " sectors", cap);
    e->type = EXT_SESPARSE;
    e->grain_bytes = SE_GRAIN_SECTORS * VMDK_SECTOR;
    e->gtes_per_gt = SE_GTES_PER_GT;
    e->gt_bytes = SE_GT_SECTORS * VMDK_SECTOR;
    tmap_cache_init(&e->gt_cache, e->gtes_per_gt, TMAP_LE64);
    uint64_t span = (uint64_t)e->gtes_per_gt * e->grain_bytes;
    uint64_t need = div_round_up(cap * VMDK_SECTOR, span);
    uint64_t gd_sectors = ld_le64(h + 8 * F_GD_SIZE);
    if (gd_sectors < div_round_up(need * 8, VMDK_SECTOR))
        return err_set(err, -EINVAL, "Invalid grain directory size: %" PRIu64
                       " sectors for %" PRIu64 " grain tables", gd_sectors,
                       need);
    e->gd_entries = (uint32_t)need;
    r = area(ld_le64(h + 8 * F_GD_OFF), need * 8, flen, &e->gd_off,
             "grain directory", err);
    if (r < 0)
        return r;
    /* The grain tables and grains areas are only checked where an entry
     * points into them. */
    if (mul_overflow(ld_le64(h + 8 * F_GT_OFF), VMDK_SECTOR, &e->se_gt_area) ||
        mul_overflow(ld_le64(h + 8 * F_GRAINS_OFF), VMDK_SECTOR, &e->se_grains))
        return err_set(err, -EINVAL, "Invalid seSparse area offsets");

    uint8_t *raw = malloc(need ? need * 8 : 1);
    e->gd64 = malloc(need ? need * 8 : 1);
    if (!raw || !e->gd64) {
        free(raw);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    r = bdev_pread(e->file, e->gd_off, need * 8, raw, err);
    for (uint64_t i = 0; r >= 0 && i < need; i++) {
        uint64_t d = ld_le64(raw + 8 * i);
        /* The top half is 0x10000000 for a table; 64 TiB at 16 MiB per
         * table never needs a table number above 32 bits. */
        if (d && (d >> 32) != 0x10000000)
            r = err_set(err, -EINVAL, "Invalid grain directory entry %" PRIu64
                        ": 0x%016" PRIx64, i, d);
        else if (d && (mul_overflow(d & 0xffffffffu, e->gt_bytes, &off) ||
                       add_overflow(off, e->se_gt_area, &off) ||
                       off < VMDK_SECTOR ||
                       !range_within(off, e->gt_bytes, flen)))
            r = err_set(err, -EINVAL, "Grain table %" PRIu64 " beyond end "
                        "of file", i);
        else
            e->gd64[i] = d ? off : 0;
    }
    free(raw);
    if (r < 0)
        return r;
    *capacity = cap * VMDK_SECTOR;
    return 0;
}

int vmdk_sesparse_lookup(struct vmdk_extent *e, uint64_t off, uint64_t *host,
                         struct err *err)
{
    uint64_t grain = off / e->grain_bytes;
    uint64_t idx = grain / e->gtes_per_gt;
    void *t = NULL;
    *host = 0;
    if (idx >= e->gd_entries || !e->gd64[idx])
        return 0;
    /* Where each table lies was checked when the directory was loaded. */
    int r = tmap_cache_get(&e->gt_cache, e->file, e->gd64[idx], &t, err);
    if (r < 0)
        return r;
    const uint64_t *gt = t;
    uint64_t v = gt[grain % e->gtes_per_gt], n, at;
    switch (v >> 60) {
    case 0:
        if (v)
            break;
        return 0;
    case 1:     /* unmapped */
    case 2:     /* zero */
        *host = 1;
        return 0;
    case 3:
        n = ((v >> 48) & 0xfff) | ((v & UINT64_C(0xffffffffffff)) << 12);
        if (mul_overflow(n, e->grain_bytes, &at) ||
            add_overflow(at, e->se_grains, &at) ||
            at < VMDK_SECTOR ||
            !range_within(at, e->grain_bytes, e->file->size))
            return err_set(err, -EIO, "Grain %" PRIu64 " beyond end of file",
                           grain);
        *host = at;
        return 0;
    }
    return err_set(err, -EIO, "Invalid grain table entry 0x%016" PRIx64
                   " for grain %" PRIu64, v, grain);
}
