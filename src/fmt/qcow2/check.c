/* qcow2 check and repair (spec "Host cluster management").
 *
 * The expected reference count of every host cluster is rebuilt in memory
 * from what the image references: the header cluster, the active L1/L2
 * tables and data clusters, every snapshot's L1/L2 tables, the snapshot
 * table, the refcount table and blocks, the encryption header and the
 * bitmap directory with its tables and data.  The result is compared with
 * the stored refcounts; the L1/L2 "copied" flags are then checked against
 * the stored refcounts.  Messages, counters and repair decisions follow
 * qemu-img 7.2 so that both tools report the same for the same image.
 *
 * Repairs: leaks (refcount too high) with CHECK_FIX_LEAKS, refcounts too
 * low, copied flags and misaligned preallocated entries with
 * CHECK_FIX_ERRORS, and, when the refcount structure itself is broken, a
 * rebuild: new refcount blocks and table are written into free clusters
 * and the header is switched to them in one write, so a crash leaves the
 * old structure in place. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define REFT_OFFSET_MASK 0xfffffffffffffe00ull
#define BME_OFFSET_MASK  0x00fffffffffffe00ull
#define BME_RESERVED     0xff000000000001feull
#define BME_ALL_ONES     1ull
#define L2_BITMAP_ALL_ALLOC 0xffffffffull
#define L2_BITMAP_ALL_ZERO  0xffffffff00000000ull

struct ck {
    struct bdev *bs;
    struct qcow2_state *s;
    struct check_result *res;
    uint64_t *rc;           /* expected refcount per host cluster */
    int64_t nb;             /* entries in rc */
    int64_t file_len;
    /* Refcount width changes report progress in three passes over the
     * old refcount table's entries, as qemu-img counts them. */
    progress_fn prog;
    void *prog_opaque;
    uint64_t prog_units;
};

static void ck_progress(struct ck *c, uint64_t pass, uint64_t done)
{
    if (c->prog)
        c->prog(c->prog_opaque, pass * c->prog_units + done,
                3 * c->prog_units);
}

static int imrt_grow(struct ck *c, int64_t n)
{
    if (n <= c->nb)
        return 0;
    int64_t nn = max_u64((uint64_t)n, (uint64_t)c->nb * 3 / 2 + 16);
    uint64_t *p = realloc(c->rc, (size_t)nn * sizeof(*p));
    if (!p)
        return -ENOMEM;
    memset(p + c->nb, 0, (size_t)(nn - c->nb) * sizeof(*p));
    c->rc = p;
    c->nb = nn;
    return 0;
}

/* Count one reference to every cluster touched by [off, off+size). */
static int inc_refs(struct ck *c, uint64_t off, uint64_t size)
{
    struct qcow2_state *s = c->s;
    if (!size)
        return 0;
    uint64_t end;
    if (add_overflow(off, size, &end) || end > (uint64_t)INT64_MAX ||
        (int64_t)end - c->file_len >= (int64_t)s->cluster_size) {
        fprintf(stderr, "ERROR: counting reference for region exceeding the "
                "end of the file by one cluster or more: offset 0x%" PRIx64
                " size 0x%" PRIx64 "\n", off, size);
        c->res->corruptions++;
        return 0;
    }
    for (uint64_t k = off >> s->cluster_bits; k <= (end - 1) >> s->cluster_bits;
         k++) {
        if ((int64_t)k >= c->nb && imrt_grow(c, (int64_t)k + 1) < 0) {
            c->res->check_errors++;
            return -ENOMEM;
        }
        if (c->rc[k] == s->refcount_max) {
            fprintf(stderr, "ERROR: overflow cluster offset=0x%" PRIx64 "\n",
                    k << s->cluster_bits);
            fprintf(stderr, "Use qemu-img amend to increase the refcount entry "
                    "width or qemu-img convert to create a clean copy if the "
                    "image cannot be opened for writing\n");
            c->res->corruptions++;
            continue;
        }
        c->rc[k]++;
    }
    return 0;
}

static uint64_t l2_get(const struct qcow2_state *s, const uint8_t *t, uint64_t i)
{
    return ld_be64(t + i * s->l2_entry_size);
}

static uint64_t l2_bitmap(const struct qcow2_state *s, const uint8_t *t,
                          uint64_t i)
{
    return s->ext_l2 ? ld_be64(t + i * 16 + 8) : 0;
}

/* Make entry i read as zeros without a host cluster, on disk. */
static int fix_by_zero(struct ck *c, uint64_t l2_off, uint8_t *t, uint64_t i,
                       bool active, bool *overlap)
{
    struct qcow2_state *s = c->s;
    struct err e = ERR_INIT;
    uint8_t *p = t + i * s->l2_entry_size;
    if (s->ext_l2) {
        uint64_t bm = ld_be64(p + 8);
        bm |= bm << 32;
        bm &= L2_BITMAP_ALL_ZERO;
        st_be64(p + 8, bm);
        st_be64(p, 0);
    } else {
        st_be64(p, QCOW2_OFLAG_ZERO);
    }
    uint64_t eoff = l2_off + i * s->l2_entry_size;
    int r = qcow2_check_overlap(c->bs, active ? QCOW2_OL_L2 : 0, eoff,
                                s->l2_entry_size, &e);
    *overlap = r < 0;
    if (r < 0) {
        fprintf(stderr, "ERROR: Overlap check failed\n");
        goto fail;
    }
    r = bdev_pwrite(c->bs->file, eoff, s->l2_entry_size, p, &e);
    if (r >= 0)
        r = bdev_flush(c->bs->file, &e);
    if (r < 0) {
        fprintf(stderr, "ERROR: Failed to overwrite L2 table entry: %s\n",
                strerror(-r));
        goto fail;
    }
    qcow2_cache_drop_range(&s->l2_cache, l2_off, s->cluster_size);
    c->res->corruptions--;
    c->res->corruptions_fixed++;
    return 0;
fail:
    c->res->check_errors++;
    return r;
}

static int check_l2(struct ck *c, uint64_t l2_off, bool frag, unsigned fix,
                    bool active)
{
    struct qcow2_state *s = c->s;
    struct err e = ERR_INIT;
    uint64_t next_contig = 0;
    uint8_t *t = malloc(s->cluster_size);
    if (!t) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    int r = bdev_pread(c->bs->file, l2_off, s->cluster_size, t, &e);
    if (r < 0) {
        fprintf(stderr, "ERROR: I/O error in check_refcounts_l2\n");
        c->res->check_errors++;
        goto out;
    }
    bool data_file = s->data_file != NULL ||
                     (s->h.incompat & QCOW2_INCOMPAT_DATA_FILE);
    for (uint64_t i = 0; i < s->l2_entries; i++) {
        uint64_t ent = l2_get(s, t, i), bm = l2_bitmap(s, t, i);
        enum qcow2_ctype type = qcow2_l2_classify(ent, s->ext_l2, data_file);

        if (type != QCOW2_C_COMPRESSED && (ent & QCOW2_L2_RESERVED)) {
            fprintf(stderr, "ERROR found l2 entry with reserved bits set: "
                    "%" PRIx64 "\n", ent);
            c->res->corruptions++;
        }
        switch (type) {
        case QCOW2_C_COMPRESSED: {
            if (ent & QCOW2_OFLAG_COPIED) {
                fprintf(stderr, "ERROR: coffset=0x%" PRIx64 ": copied flag "
                        "must never be set for compressed clusters\n",
                        ent & s->coffset_mask);
                ent &= ~QCOW2_OFLAG_COPIED;
                c->res->corruptions++;
            }
            if (data_file) {
                fprintf(stderr, "ERROR compressed cluster %d with data file, "
                        "entry=0x%" PRIx64 "\n", (int)i, ent);
                c->res->corruptions++;
                break;
            }
            if (bm) {
                fprintf(stderr, "ERROR compressed cluster %d with non-zero "
                        "subcluster allocation bitmap, entry=0x%" PRIx64 "\n",
                        (int)i, ent);
                c->res->corruptions++;
                break;
            }
            uint64_t coff = ent & s->coffset_mask;
            uint64_t nsec = ((ent >> s->csize_shift) & s->csize_mask) + 1;
            uint64_t csize = nsec * 512 - (coff & 511);
            r = inc_refs(c, coff, csize);
            if (r < 0)
                goto out;
            if (frag) {
                c->res->allocated_clusters++;
                c->res->compressed_clusters++;
                c->res->fragmented_clusters++;
            }
            break;
        }
        case QCOW2_C_ZERO_ALLOC:
        case QCOW2_C_NORMAL: {
            uint64_t off = ent & QCOW2_OFFSET_MASK;
            if ((bm >> 32) & bm) {
                c->res->corruptions++;
                fprintf(stderr, "ERROR offset=%" PRIx64 ": Allocated cluster "
                        "has corrupted subcluster allocation bitmap\n", off);
            }
            if (off % s->cluster_size) {
                bool has_data = s->ext_l2 ? (bm & L2_BITMAP_ALL_ALLOC) != 0
                                          : !(ent & QCOW2_OFLAG_ZERO);
                c->res->corruptions++;
                if (!has_data) {
                    fprintf(stderr, "%s offset=%" PRIx64 ": Preallocated "
                            "cluster is not properly aligned; L2 entry "
                            "corrupted.\n",
                            fix & CHECK_FIX_ERRORS ? "Repairing" : "ERROR",
                            off);
                    if (fix & CHECK_FIX_ERRORS) {
                        bool overlap = false;
                        int fr = fix_by_zero(c, l2_off, t, i, active, &overlap);
                        if (overlap) {
                            r = fr;
                            goto out;
                        }
                        if (fr == 0)
                            continue;
                    }
                } else {
                    fprintf(stderr, "ERROR offset=%" PRIx64 ": Data cluster "
                            "is not properly aligned; L2 entry corrupted.\n",
                            off);
                }
            }
            if (frag) {
                c->res->allocated_clusters++;
                if (next_contig && off != next_contig)
                    c->res->fragmented_clusters++;
                next_contig = off + s->cluster_size;
            }
            if (!data_file) {
                r = inc_refs(c, off, s->cluster_size);
                if (r < 0)
                    goto out;
            }
            break;
        }
        case QCOW2_C_ZERO_PLAIN:
            break;
        case QCOW2_C_UNALLOCATED:
            if (bm & L2_BITMAP_ALL_ALLOC) {
                c->res->corruptions++;
                fprintf(stderr, "ERROR: Unallocated cluster has non-zero "
                        "subcluster allocation map\n");
            }
            break;
        }
    }
    r = 0;
out:
    free(t);
    return r;
}

static int check_l1(struct ck *c, uint64_t l1_off, uint32_t l1_size,
                    bool frag, unsigned fix, bool active)
{
    struct qcow2_state *s = c->s;
    struct err e = ERR_INIT;
    if (!l1_size)
        return 0;
    uint64_t bytes = (uint64_t)l1_size * 8;
    int r = inc_refs(c, l1_off, bytes);
    if (r < 0)
        return r;
    uint8_t *raw = malloc(bytes);
    if (!raw) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    r = bdev_pread(c->bs->file, l1_off, bytes, raw, &e);
    if (r < 0) {
        fprintf(stderr, "ERROR: I/O error in check_refcounts_l1\n");
        c->res->check_errors++;
        goto out;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t ent = ld_be64(raw + (size_t)i * 8);
        if (!ent)
            continue;
        if (ent & QCOW2_L1_RESERVED) {
            fprintf(stderr, "ERROR found L1 entry with reserved bits set: "
                    "%" PRIx64 "\n", ent);
            c->res->corruptions++;
        }
        uint64_t l2 = ent & QCOW2_OFFSET_MASK;
        r = inc_refs(c, l2, s->cluster_size);
        if (r < 0)
            goto out;
        if (l2 % s->cluster_size) {
            fprintf(stderr, "ERROR l2_offset=%" PRIx64 ": Table is not "
                    "cluster aligned; L1 entry corrupted\n", l2);
            c->res->corruptions++;
        }
        r = check_l2(c, l2, frag, fix, active);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    free(raw);
    return r;
}

static int check_bitmaps(struct ck *c)
{
    struct qcow2_state *s = c->s;
    struct err e = ERR_INIT;
    if (!s->x.has_bitmaps || !s->x.nb_bitmaps)
        return 0;
    uint64_t doff = s->x.bitmap_dir_offset, dsize = s->x.bitmap_dir_size;
    int r = inc_refs(c, doff, dsize);
    if (r < 0)
        return r;
    if (!dsize || dsize > (64u << 20) || !range_within(doff, dsize,
                                                     (uint64_t)c->file_len)) {
        c->res->corruptions++;
        return -EINVAL;
    }
    uint8_t *dir = malloc(dsize);
    if (!dir) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    r = bdev_pread(c->bs->file, doff, dsize, dir, &e);
    if (r < 0) {
        c->res->corruptions++;
        free(dir);
        return -EINVAL;
    }
    uint64_t pos = 0;
    for (uint32_t n = 0; n < s->x.nb_bitmaps; n++) {
        if (dsize - pos < 24) {
            c->res->corruptions++;
            r = -EINVAL;
            break;
        }
        const uint8_t *p = dir + pos;
        uint64_t toff = ld_be64(p);
        uint32_t tsize = ld_be32(p + 8);
        uint16_t name_len = ld_be16(p + 14);
        uint32_t extra = ld_be32(p + 20);
        uint64_t esize = align_up(24 + (uint64_t)extra + name_len, 8);
        if (esize > dsize - pos) {
            c->res->corruptions++;
            r = -EINVAL;
            break;
        }
        pos += esize;
        r = inc_refs(c, toff, (uint64_t)tsize * 8);
        if (r < 0)
            break;
        if (toff % s->cluster_size || !tsize ||
            !range_within(toff, (uint64_t)tsize * 8, (uint64_t)c->file_len)) {
            c->res->corruptions++;
            r = 0;
            continue;
        }
        uint8_t *tab = malloc((size_t)tsize * 8);
        if (!tab) {
            c->res->check_errors++;
            r = -ENOMEM;
            break;
        }
        r = bdev_pread(c->bs->file, toff, (uint64_t)tsize * 8, tab, &e);
        if (r < 0) {
            c->res->corruptions++;
            free(tab);
            break;
        }
        for (uint32_t i = 0; i < tsize && r >= 0; i++) {
            uint64_t ent = ld_be64(tab + (size_t)i * 8);
            uint64_t off = ent & BME_OFFSET_MASK;
            if ((ent & BME_RESERVED) ||
                (off && ((ent & BME_ALL_ONES) || off % s->cluster_size))) {
                c->res->corruptions++;
                continue;
            }
            if (off)
                r = inc_refs(c, off, s->cluster_size);
        }
        free(tab);
        if (r < 0)
            break;
    }
    free(dir);
    return r;
}

static int check_refblocks(struct ck *c, unsigned fix, bool *rebuild)
{
    struct qcow2_state *s = c->s;
    for (uint64_t i = 0; i < s->rt_size; i++) {
        uint64_t off = s->rt[i] & REFT_OFFSET_MASK;
        uint64_t cl = off >> s->cluster_bits;
        if (s->rt[i] & QCOW2_RT_RESERVED) {
            fprintf(stderr, "ERROR refcount table entry %" PRId64 " has "
                    "reserved bits set\n", (int64_t)i);
            c->res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (off % s->cluster_size) {
            fprintf(stderr, "ERROR refcount block %" PRId64 " is not cluster "
                    "aligned; refcount table entry corrupted\n", (int64_t)i);
            c->res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (cl >= div_round_up((uint64_t)c->file_len, s->cluster_size) &&
            off) {
            c->res->corruptions++;
            fprintf(stderr, "%s refcount block %" PRId64 " is outside image\n",
                    fix & CHECK_FIX_ERRORS ? "Repairing" : "ERROR",
                    (int64_t)i);
            if (fix & CHECK_FIX_ERRORS) {
                struct err e = ERR_INIT;
                int r = -EINVAL;
                /* Growing the file to a block the refcount table could
                 * not even count would also make the in-memory counts
                 * huge: refused as a file system refuses a size beyond
                 * its limit. */
                if (s->rt_size && cl / s->rt_size >= s->rb_entries)
                    r = err_set_errno(&e, -EFBIG, "Could not resize file");
                else if (off <= (uint64_t)INT64_MAX - s->cluster_size)
                    r = bdev_truncate(c->bs->file, off + s->cluster_size,
                                      false, PREALLOC_OFF, &e);
                if (r >= 0) {
                    int64_t len = bdev_file_length(c->bs->file);
                    if (len < 0) {
                        r = (int)len;
                    } else {
                        c->file_len = len;
                        r = imrt_grow(c, (int64_t)div_round_up(len,
                                                       s->cluster_size));
                        if (r < 0) {
                            c->res->check_errors++;
                            return r;
                        }
                    }
                }
                if (r >= 0) {
                    c->res->corruptions--;
                    c->res->corruptions_fixed++;
                    r = inc_refs(c, off, s->cluster_size);
                    if (r < 0)
                        return r;
                    continue;
                }
                *rebuild = true;
                if (e.code)     /* the file's own error, as qemu-img prints */
                    fprintf(stderr, "%s: %s\n", program_invocation_short_name,
                            e.msg);
                fprintf(stderr, "ERROR could not resize image: %s\n",
                        strerror(-r));
            }
            continue;
        }
        if (off) {
            int r = inc_refs(c, off, s->cluster_size);
            if (r < 0)
                return r;
            if ((int64_t)cl < c->nb && c->rc[cl] != 1) {
                fprintf(stderr, "ERROR refcount block %" PRId64 " refcount=%"
                        PRIu64 "\n", (int64_t)i, c->rc[cl]);
                c->res->corruptions++;
                *rebuild = true;
            }
        }
    }
    return 0;
}

/* Bytes of the snapshot table as the entries describe it. */
static uint64_t snapshot_table_bytes(const struct qcow2_state *s)
{
    uint64_t n = 0;
    for (int i = 0; i < s->nb_snapshots; i++)
        n = align_up(n, 8) + 40 + (uint64_t)s->snapshots[i].extra_size +
            strlen(s->snapshots[i].id_str) + strlen(s->snapshots[i].name);
    return n;
}

static int calculate(struct ck *c, unsigned fix, bool *rebuild)
{
    struct qcow2_state *s = c->s;
    int r = inc_refs(c, 0, s->cluster_size);
    if (r < 0)
        return r;
    r = check_l1(c, s->h.l1_table_offset, s->h.l1_size, true, fix, true);
    if (r < 0)
        return r;
    if (s->data_file && s->nb_snapshots) {
        fprintf(stderr, "ERROR %d snapshots in image with data file\n",
                s->nb_snapshots);
        c->res->corruptions++;
    }
    for (int i = 0; i < s->nb_snapshots; i++) {
        struct qcow2_snapshot *sn = &s->snapshots[i];
        if (sn->l1_table_offset % s->cluster_size) {
            fprintf(stderr, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": "
                    "L1 table is not cluster aligned; snapshot table entry "
                    "corrupted\n", sn->id_str, sn->name, sn->l1_table_offset);
            c->res->corruptions++;
            continue;
        }
        if ((uint64_t)sn->l1_size > QCOW2_MAX_L1_BYTES / 8) {
            fprintf(stderr, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": "
                    "L1 table is too large; snapshot table entry corrupted\n",
                    sn->id_str, sn->name, sn->l1_size);
            c->res->corruptions++;
            continue;
        }
        r = check_l1(c, sn->l1_table_offset, sn->l1_size, false, fix, false);
        if (r < 0)
            return r;
    }
    if (s->nb_snapshots) {
        r = inc_refs(c, s->h.snapshots_offset, snapshot_table_bytes(s));
        if (r < 0)
            return r;
    }
    r = inc_refs(c, s->rt_offset, s->rt_size * 8);
    if (r < 0)
        return r;
    if (s->x.has_crypto && s->x.crypto_length) {
        r = inc_refs(c, s->x.crypto_offset, s->x.crypto_length);
        if (r < 0)
            return r;
    }
    r = check_bitmaps(c);
    if (r < 0)
        return r;
    return check_refblocks(c, fix, rebuild);
}

/* The stored refcount of cluster `cl`, reading the refcount block the way
 * the table names it (reserved bits ignored). */
static int disk_refcount(struct ck *c, uint64_t cl, uint64_t *rc)
{
    struct qcow2_state *s = c->s;
    struct err e = ERR_INIT;
    uint64_t idx = cl / s->rb_entries;
    *rc = 0;
    if (idx >= s->rt_size)
        return 0;
    uint64_t off = s->rt[idx] & REFT_OFFSET_MASK;
    if (!off)
        return 0;
    if (off % s->cluster_size) {
        /* Reported as qemu's refcount lookup does (read-only check). */
        if (c->bs->read_only || !(c->bs->flags & BDEV_O_RDWR))
            qcow2_note_corrupt(c->bs, "Refblock offset %#" PRIx64 " unaligned "
                               "(reftable index: %#" PRIx64 ")", off, idx);
        return -EIO;
    }
    uint8_t *blk;
    int r = qcow2_cache_get(c->bs, &s->rb_cache, off, &blk, &e);
    if (r < 0)
        return r;
    *rc = qcow2_rb_get(blk, cl % s->rb_entries, s->refcount_order);
    return 0;
}

static void compare(struct ck *c, unsigned fix, bool *rebuild,
                    int64_t *highest)
{
    struct qcow2_state *s = c->s;
    int64_t nb = (int64_t)div_round_up(c->file_len, s->cluster_size);
    *highest = 0;
    for (int64_t i = 0; i < nb; i++) {
        uint64_t r1, r2 = i < c->nb ? c->rc[i] : 0;
        int r = disk_refcount(c, (uint64_t)i, &r1);
        if (r < 0) {
            fprintf(stderr, "Can't get refcount for cluster %" PRId64 ": %s\n",
                    i, strerror(-r));
            c->res->check_errors++;
            continue;
        }
        if (r1 > 0 || r2 > 0)
            *highest = i;
        if (r1 == r2)
            continue;
        int *fixed = NULL;
        if (r1 == 0)
            *rebuild = true;
        else if (r1 > r2 && (fix & CHECK_FIX_LEAKS))
            fixed = &c->res->leaks_fixed;
        else if (r1 < r2 && (fix & CHECK_FIX_ERRORS))
            fixed = &c->res->corruptions_fixed;
        fprintf(stderr, "%s cluster %" PRId64 " refcount=%" PRIu64
                " reference=%" PRIu64 "\n",
                fixed ? "Repairing" : r1 < r2 ? "ERROR" : "Leaked",
                i, r1, r2);
        if (fixed) {
            struct err e = ERR_INIT;
            int64_t delta = r1 > r2 ? -(int64_t)(r1 - r2) : (int64_t)(r2 - r1);
            if (qcow2_update_refcount(c->bs, (uint64_t)i, 1, delta, &e) >= 0) {
                (*fixed)++;
                continue;
            }
        }
        if (r1 < r2)
            c->res->corruptions++;
        else
            c->res->leaks++;
    }
}

static int check_copied(struct ck *c, unsigned fix)
{
    struct qcow2_state *s = c->s;
    struct err e = ERR_INIT;
    bool repair = (fix & CHECK_FIX_ERRORS) ||
                  ((fix & CHECK_FIX_LEAKS) && !c->res->check_errors &&
                   !c->res->corruptions && !c->res->leaks);
    bool data_file = s->data_file != NULL;
    uint8_t *t = malloc(s->cluster_size);
    int r = 0;
    if (!t)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1[i], l2 = l1e & QCOW2_OFFSET_MASK, rc;
        int dirty = 0;
        if (!l2)
            continue;
        if (disk_refcount(c, l2 >> s->cluster_bits, &rc) < 0)
            continue;
        if ((rc == 1) != ((l1e & QCOW2_OFLAG_COPIED) != 0)) {
            c->res->corruptions++;
            fprintf(stderr, "%s OFLAG_COPIED L2 cluster: l1_index=%d "
                    "l1_entry=%" PRIx64 " refcount=%" PRIu64 "\n",
                    repair ? "Repairing" : "ERROR", (int)i, l1e, rc);
            if (repair) {
                s->l1[i] = rc == 1 ? l1e | QCOW2_OFLAG_COPIED
                                   : l1e & ~QCOW2_OFLAG_COPIED;
                r = qcow2_write_l1(c->bs, i, 1, &e);
                if (r < 0) {
                    c->res->check_errors++;
                    goto out;
                }
                c->res->corruptions--;
                c->res->corruptions_fixed++;
            }
        }
        r = bdev_pread(c->bs->file, l2, s->cluster_size, t, &e);
        if (r < 0) {
            fprintf(stderr, "ERROR: Could not read L2 table: %s\n",
                    strerror(-r));
            c->res->check_errors++;
            goto out;
        }
        for (uint64_t j = 0; j < s->l2_entries; j++) {
            uint64_t ent = l2_get(s, t, j);
            enum qcow2_ctype type = qcow2_l2_classify(ent, s->ext_l2,
                                                      data_file);
            if (type != QCOW2_C_NORMAL && type != QCOW2_C_ZERO_ALLOC)
                continue;
            if (data_file)
                rc = 1;
            else if (disk_refcount(c, (ent & QCOW2_OFFSET_MASK) >>
                                   s->cluster_bits, &rc) < 0)
                continue;
            if ((rc == 1) != ((ent & QCOW2_OFLAG_COPIED) != 0)) {
                c->res->corruptions++;
                fprintf(stderr, "%s OFLAG_COPIED data cluster: l2_entry=%"
                        PRIx64 " refcount=%" PRIu64 "\n",
                        repair ? "Repairing" : "ERROR", ent, rc);
                if (repair) {
                    st_be64(t + j * s->l2_entry_size,
                            rc == 1 ? ent | QCOW2_OFLAG_COPIED
                                    : ent & ~QCOW2_OFLAG_COPIED);
                    dirty++;
                }
            }
        }
        if (dirty) {
            r = qcow2_check_overlap(c->bs, QCOW2_OL_L2, l2, s->cluster_size,
                                    &e);
            if (r < 0) {
                fprintf(stderr, "ERROR: Could not write L2 table; metadata "
                        "overlap check failed: %s\n", strerror(-r));
                c->res->check_errors++;
                goto out;
            }
            r = bdev_pwrite(c->bs->file, l2, s->cluster_size, t, &e);
            if (r < 0) {
                fprintf(stderr, "ERROR: Could not write L2 table: %s\n",
                        strerror(-r));
                c->res->check_errors++;
                goto out;
            }
            qcow2_cache_drop_range(&s->l2_cache, l2, s->cluster_size);
            c->res->corruptions -= dirty;
            c->res->corruptions_fixed += dirty;
        }
    }
    r = 0;
out:
    free(t);
    return r;
}

/* First run of `n` clusters free in the in-memory counts, from *hint;
 * marks them used. */
static int64_t imrt_alloc(struct ck *c, int64_t n, int64_t *hint)
{
    int64_t cl = *hint, run = 0;
    bool first_gap = true;
    for (; cl < c->nb && run < n; cl++) {
        if (!c->rc[cl]) {
            if (first_gap) {
                *hint = cl;
                first_gap = false;
            }
            run++;
        } else {
            run = 0;
        }
    }
    if (run < n) {
        int64_t need = cl + (n - run);
        if (imrt_grow(c, need) < 0)
            return -ENOMEM;
        cl = need;
    }
    int64_t start = cl - n;
    for (int64_t k = start; k < cl; k++)
        c->rc[k] = 1;
    return start;
}

/* Write a whole new refcount structure from the in-memory counts and
 * switch the header to it. */
static int rebuild(struct ck *c, uint32_t order, struct err *err)
{
    struct qcow2_state *s = c->s;
    uint64_t cs = s->cluster_size, per = cs * 8 >> order;
    uint64_t maxv = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
    int64_t hint = 0;
    int64_t *blocks = NULL;         /* refblock cluster per table index */
    uint64_t nblocks = 0, rt_clusters = 0;
    int64_t rt_start = -1;
    uint8_t *buf = NULL;
    int r = 0;

    /* Allocate refcount blocks for every covered range with references,
     * then the table; repeat while the allocations need more blocks. */
    for (;;) {
        uint64_t need = div_round_up((uint64_t)c->nb, per);
        if (need > nblocks) {
            int64_t *nbk = realloc(blocks, need * sizeof(*nbk));
            if (!nbk) {
                r = -ENOMEM;
                goto out;
            }
            for (uint64_t i = nblocks; i < need; i++)
                nbk[i] = -1;
            blocks = nbk;
            nblocks = need;
        }
        bool changed = false;
        for (uint64_t i = 0; i < nblocks; i++) {
            if (blocks[i] >= 0)
                continue;
            bool used = false;
            for (uint64_t k = i * per; k < (i + 1) * per &&
                 (int64_t)k < c->nb; k++)
                if (c->rc[k]) {
                    used = true;
                    break;
                }
            if (!used)
                continue;
            int64_t b = imrt_alloc(c, 1, &hint);
            if (b < 0) {
                r = (int)b;
                goto out;
            }
            blocks[i] = b;
            changed = true;
        }
        if (changed)
            continue;
        uint64_t want = div_round_up(nblocks * 8, cs);
        if (want == 0)
            want = 1;
        if (rt_start >= 0 && want <= rt_clusters)
            break;
        if (rt_start >= 0)
            for (uint64_t k = 0; k < rt_clusters; k++)
                c->rc[rt_start + (int64_t)k] = 0;
        int64_t h2 = hint;
        rt_start = imrt_alloc(c, (int64_t)want, &h2);
        if (rt_start < 0) {
            r = (int)rt_start;
            goto out;
        }
        rt_clusters = want;
    }

    for (uint64_t k = 0; c->prog && k < c->prog_units; k++)
        ck_progress(c, 1, k);
    buf = malloc(cs);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    uint64_t tick = 0;
    for (uint64_t i = 0; i < nblocks; i++) {
        for (; c->prog && tick <= i * c->prog_units / nblocks; tick++)
            ck_progress(c, 2, tick);
        if (blocks[i] < 0)
            continue;
        memset(buf, 0, cs);
        for (uint64_t k = 0; k < per && (int64_t)(i * per + k) < c->nb; k++) {
            uint64_t v = c->rc[i * per + k];
            qcow2_rb_set(buf, k, order, min_u64(v, maxv));
        }
        r = bdev_pwrite(c->bs->file, (uint64_t)blocks[i] * cs, cs, buf, err);
        if (r < 0)
            goto out;
    }
    for (; c->prog && tick < c->prog_units; tick++)
        ck_progress(c, 2, tick);
    uint8_t *tab = calloc(rt_clusters, cs);
    if (!tab) {
        r = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < nblocks; i++)
        if (blocks[i] >= 0)
            st_be64(tab + i * 8, (uint64_t)blocks[i] * cs);
    r = bdev_pwrite(c->bs->file, (uint64_t)rt_start * cs, rt_clusters * cs,
                    tab, err);
    free(tab);
    if (r >= 0)
        r = bdev_flush(c->bs->file, err);
    if (r < 0)
        goto out;
    /* One write switches table (and width): bytes 48..99 of the header
     * lie in one sector. */
    uint8_t hdr[104];
    r = bdev_pread(c->bs->file, 0, sizeof(hdr), hdr, err);
    if (r < 0)
        goto out;
    st_be64(hdr + 48, (uint64_t)rt_start * cs);
    st_be32(hdr + 56, (uint32_t)rt_clusters);
    size_t hlen = 12;
    if (order != s->refcount_order) {
        st_be32(hdr + 96, order);
        hlen = 52;
    }
    r = bdev_pwrite(c->bs->file, 48, hlen, hdr + 48, err);
    if (r >= 0)
        r = bdev_flush(c->bs->file, err);
    if (r < 0)
        goto out;
    s->h.refcount_table_offset = (uint64_t)rt_start * cs;
    s->h.refcount_table_clusters = (uint32_t)rt_clusters;
    s->h.refcount_order = order;
    s->refcount_order = order;
    s->rb_entries = per;
    s->refcount_max = maxv;
    for (uint64_t i = 0; i < s->rt_size; i++) {
        uint64_t off = s->rt[i] & REFT_OFFSET_MASK;
        if (off)
            qcow2_cache_drop(&s->rb_cache, off);
    }
    free(s->rt);
    s->rt = NULL;
    r = qcow2_refcount_load(c->bs, err);
    s->free_hint = 0;
    s->free_byte_offset = 0;
    if (r >= 0) {
        int64_t len = bdev_file_length(c->bs->file);
        if (len > c->file_len)
            c->file_len = len;
    }
out:
    if (r < 0 && !err_isset(err))
        err_set(err, r, "Could not rebuild refcount structure: %s",
                strerror(-r));
    free(blocks);
    free(buf);
    return r;
}

static int check_refcounts(struct ck *c, unsigned fix, struct err *err)
{
    struct qcow2_state *s = c->s;
    int64_t flen = bdev_file_length(c->bs->file), highest = 0;
    bool need_rebuild = false;
    int r;
    if (flen < 0) {
        c->res->check_errors++;
        return (int)flen;
    }
    c->file_len = flen;
    int64_t nb = (int64_t)div_round_up((uint64_t)flen, s->cluster_size);
    if (nb > INT32_MAX) {
        c->res->check_errors++;
        return -EFBIG;
    }
    c->res->total_clusters = div_round_up(c->bs->size, s->cluster_size);
    c->res->has_bfi = true;
    if (imrt_grow(c, nb) < 0) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    r = calculate(c, fix, &need_rebuild);
    if (r < 0)
        return r;

    struct check_result pre = *c->res;
    compare(c, 0, &need_rebuild, &highest);

    if (need_rebuild && (fix & CHECK_FIX_ERRORS)) {
        struct check_result old = *c->res;
        int fresh_leaks = 0;
        fprintf(stderr, "Rebuilding refcount structure\n");
        r = rebuild(c, s->refcount_order, err);
        if (r < 0)
            return r;
        c->res->corruptions = 0;
        c->res->leaks = 0;
        need_rebuild = false;
        memset(c->rc, 0, (size_t)c->nb * sizeof(*c->rc));
        r = calculate(c, 0, &need_rebuild);
        if (r < 0)
            return r;
        if (fix & CHECK_FIX_LEAKS) {
            struct check_result saved = *c->res;
            memset(c->res, 0, sizeof(*c->res));
            compare(c, CHECK_FIX_LEAKS, &need_rebuild, &highest);
            if (need_rebuild)
                fprintf(stderr, "ERROR rebuilt refcount structure is still "
                        "broken\n");
            fresh_leaks = c->res->leaks;
            *c->res = saved;
        }
        if (c->res->corruptions < old.corruptions)
            c->res->corruptions_fixed += old.corruptions - c->res->corruptions;
        if (c->res->leaks < old.leaks)
            c->res->leaks_fixed += old.leaks - c->res->leaks;
        c->res->leaks += fresh_leaks;
    } else if (fix) {
        if (need_rebuild) {
            fprintf(stderr, "ERROR need to rebuild refcount structures\n");
            c->res->check_errors++;
            return -EIO;
        }
        if (c->res->leaks || c->res->corruptions) {
            *c->res = pre;
            compare(c, fix, &need_rebuild, &highest);
        }
    }
    r = check_copied(c, fix);
    if (r < 0)
        return r;
    c->res->image_end_offset = (highest + 1) * (int64_t)s->cluster_size;
    return 0;
}

/* Clear the dirty and corrupt bits after a successful repair. */
static int mark_clean(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t bits = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
    if (s->h.version < 3 || !(s->h.incompat & bits))
        return 0;
    int r = qcow2_barrier(bs, err);
    if (r < 0)
        return r;
    uint8_t be[8];
    st_be64(be, s->h.incompat & ~bits);
    r = bdev_pwrite(bs->file, 72, 8, be, err);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    if (r >= 0)
        s->h.incompat &= ~bits;
    return r;
}

/* Snapshot table entries qemu-img finds fault with before anything else:
 * v3 entries without the disk size.  Repairing rewrites the table (to new
 * clusters, before the refcounts are counted) with the image's size. */
static int check_snapshot_table(struct bdev *bs, struct check_result *res,
                                unsigned fix, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int bad = 0;
    if (s->snapshots_offset_bad)
        return err_set(err, -EINVAL, "ERROR snapshot table offset invalid");
    /* Faults that stop qemu-img from reading the table unless it may
     * drop what is wrong (-r all). */
    if (s->snapshots_overhang) {
        if (!(fix & CHECK_FIX_ERRORS))
            return err_set(err, -EFBIG, "ERROR snapshot table too large\n"
                           "You can force-remove all %" PRIu32 " overhanging "
                           "snapshots with qemu-img check -r all",
                           s->snapshots_overhang);
        fprintf(stderr, "Discarding %" PRIu32 " overhanging snapshots\n",
                s->snapshots_overhang);
        bad++;
    }
    for (int i = 0; i < s->nb_snapshots; i++) {
        if (!s->snapshots[i].extra_dropped)
            continue;
        if (!(fix & CHECK_FIX_ERRORS))
            return err_set(err, -EFBIG, "ERROR failed to read the snapshot "
                           "table: Too much extra metadata in snapshot table "
                           "entry %d\nYou can force-remove this extra "
                           "metadata with qemu-img check -r all", i);
        fprintf(stderr, "Discarding too much extra metadata in snapshot "
                "table entry %d (%" PRIu32 " > %u)\n", i,
                s->snapshots[i].extra_dropped, QCOW2_MAX_SNAPSHOT_EXTRA);
        bad++;
    }
    for (int i = 0; i < s->nb_snapshots; i++) {
        if (!s->snapshots[i].incomplete)
            continue;
        bad++;
        if (fix & CHECK_FIX_ERRORS) {
            fprintf(stderr, "Repairing snapshot table entry %d is "
                    "incomplete\n", i);
        } else {
            fprintf(stderr, "ERROR snapshot table entry %d is incomplete\n",
                    i);
            res->corruptions++;
        }
    }
    if (!bad || !(fix & CHECK_FIX_ERRORS))
        return 0;
    /* Incomplete entries (often read from zeros past the table) say
     * nothing about where the old table ends: free only what the leading
     * complete entries span (the rest, if any, shows up as leaks). */
    int trusted = 0;
    while (trusted < s->nb_snapshots && !s->snapshots[trusted].incomplete)
        trusted++;
    int r = qcow2_snapshot_table_rewrite(bs, trusted, err);
    if (r < 0) {
        res->check_errors++;
        return r;
    }
    for (int i = 0; i < s->nb_snapshots; i++) {
        s->snapshots[i].incomplete = false;
        s->snapshots[i].extra_dropped = 0;
    }
    s->snapshots_overhang = 0;
    res->corruptions_fixed += bad;
    return 0;
}

int qcow2_check(struct bdev *bs, struct check_result *res, unsigned fix,
                struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct ck c = { .bs = bs, .s = s, .res = res };
    bool was_corrupt = s->corrupt;
    memset(res, 0, sizeof(*res));
    if (fix)
        s->corrupt = false;     /* repairs write metadata on purpose */
    int r = check_snapshot_table(bs, res, fix, err);
    if (r >= 0)
        r = check_refcounts(&c, fix, err);
    free(c.rc);
    if (r >= 0 && fix && !res->check_errors && !res->corruptions)
        r = mark_clean(bs, err);
    else if (fix)
        s->corrupt = was_corrupt;
    if (r < 0 && !err_isset(err))
        err_set(err, r, "%s", strerror(-r));
    return r;
}

int qcow2_change_refcount_order(struct bdev *bs, uint32_t order,
                                progress_fn progress, void *opaque,
                                struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct check_result res = { 0 };
    struct ck c = { .bs = bs, .s = s, .res = &res, .prog = progress,
                    .prog_opaque = opaque,
                    .prog_units = s->rt_disk_size ? s->rt_disk_size : 1 };
    bool need_rebuild = false;
    int64_t flen = bdev_file_length(bs->file);
    int r;
    if (flen < 0)
        return err_set(err, (int)flen, "Could not get the file size");
    c.file_len = flen;
    if (imrt_grow(&c, (int64_t)div_round_up((uint64_t)flen,
                                            s->cluster_size)) < 0)
        return err_set(err, -ENOMEM, "Out of memory");
    ck_progress(&c, 0, 0);
    r = calculate(&c, 0, &need_rebuild);
    if (r >= 0 && (res.corruptions || res.check_errors))
        r = -EIO;
    if (r < 0) {
        free(c.rc);
        return err_set(err, r, "Cannot change the refcount width of an image "
                       "with refcount errors; run 'qemu-img check -r all' "
                       "first");
    }
    uint64_t maxv = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
    for (int64_t i = 0; i < c.nb; i++)
        if (c.rc[i] > maxv) {
            uint64_t v = c.rc[i];
            /* The first pass got as far as this cluster's refcount block. */
            for (uint64_t k = 1; k <= (uint64_t)i / s->rb_entries &&
                 k < c.prog_units; k++)
                ck_progress(&c, 0, k);
            free(c.rc);
            return err_set(err, -EINVAL, "Cannot decrease refcount entry "
                           "width to %u bits: Cluster at offset %#" PRIx64
                           " has a refcount of %" PRIu64, 1u << order,
                           (uint64_t)i * s->cluster_size, v);
        }
    for (uint64_t k = 1; progress && k < c.prog_units; k++)
        ck_progress(&c, 0, k);
    /* The old structure, freed once the new one is in place. */
    uint64_t old_rt = s->rt_offset, old_rt_clusters =
        s->rt_disk_size * 8 / s->cluster_size, nold = s->rt_size;
    uint64_t *old_blocks = malloc((nold ? nold : 1) * sizeof(uint64_t));
    if (!old_blocks) {
        free(c.rc);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    for (uint64_t i = 0; i < nold; i++)
        old_blocks[i] = s->rt[i] & REFT_OFFSET_MASK;
    r = rebuild(&c, order, err);
    free(c.rc);
    for (uint64_t i = 0; r >= 0 && i < nold; i++)
        if (old_blocks[i])
            r = qcow2_free_clusters(bs, old_blocks[i], 1, err);
    if (r >= 0)
        r = qcow2_free_clusters(bs, old_rt, old_rt_clusters, err);
    free(old_blocks);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r >= 0)
        ck_progress(&c, 3, 0);
    return r;
}
