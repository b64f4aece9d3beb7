/* qcow2 snapshot changes (spec "Snapshots"): create, apply (revert the
 * active layer to a snapshot) and delete internal snapshots.
 *
 * Ordering, so that a crash leaves at worst leaked clusters:
 *  - create: copy the active L1 into new clusters, raise the refcounts of
 *    everything it references (clearing "copied" flags), then write the
 *    new snapshot table elsewhere and switch the header to it in one
 *    write;
 *  - apply: raise the refcounts of the snapshot's tables, overwrite the
 *    active L1 with the snapshot's, then drop the old active references;
 *  - delete: write the table without the entry and switch the header,
 *    then drop the snapshot's references and free its L1.
 * The snapshot table is always rewritten into newly allocated clusters;
 * the old one is freed only after the header points at the new one. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define SN_EXTRA_KNOWN 24       /* vm_state_size_large, disk_size, icount */

/* ---- table encoding ---- */

static uint64_t entry_extra(const struct qcow2_snapshot *sn)
{
    return sn->extra_size > SN_EXTRA_KNOWN ? sn->extra_size : SN_EXTRA_KNOWN;
}

static uint64_t table_bytes(const struct qcow2_snapshot *list, int n)
{
    uint64_t off = 0;
    for (int i = 0; i < n; i++)
        off = align_up(off, 8) + 40 + entry_extra(&list[i]) +
              strlen(list[i].id_str) + strlen(list[i].name);
    return off;
}

static void encode_table(const struct qcow2_snapshot *list, int n,
                         uint8_t *buf)
{
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct qcow2_snapshot *sn = &list[i];
        size_t idl = strlen(sn->id_str), nl = strlen(sn->name);
        uint64_t extra = entry_extra(sn);
        uint8_t *p;
        off = align_up(off, 8);
        p = buf + off;
        st_be64(p, sn->l1_table_offset);
        st_be32(p + 8, sn->l1_size);
        st_be16(p + 12, (uint16_t)idl);
        st_be16(p + 14, (uint16_t)nl);
        st_be32(p + 16, sn->date_sec);
        st_be32(p + 20, sn->date_nsec);
        st_be64(p + 24, sn->vm_clock_nsec);
        st_be32(p + 32, (uint32_t)sn->vm_state_size);
        st_be32(p + 36, (uint32_t)extra);
        p += 40;
        if (sn->extra_size > SN_EXTRA_KNOWN)
            memcpy(p, sn->extra, sn->extra_size);
        st_be64(p, sn->vm_state_size);
        st_be64(p + 8, sn->disk_size);
        st_be64(p + 16, sn->has_icount ? sn->icount : UINT64_MAX);
        p += extra;
        memcpy(p, sn->id_str, idl);
        memcpy(p + idl, sn->name, nl);
        off += 40 + extra + idl + nl;
    }
}

/* Write `list` as the new snapshot table and switch the header to it;
 * on success the state owns `list` and the old table is freed. */
static int s_nb(struct bdev *bs)
{
    return qcow2_st(bs)->nb_snapshots;
}

static int write_table_freeing(struct bdev *bs, struct qcow2_snapshot *list,
                               int n, int old_trusted, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t bytes = table_bytes(list, n), off = 0;
    uint64_t old_off = s->h.snapshots_offset;
    uint64_t old_bytes = table_bytes(s->snapshots, old_trusted);
    int r;

    if (bytes > QCOW2_MAX_SNAPSHOT_TABLE_BYTES)
        return err_set(err, -EFBIG, "Snapshot table too large");
    if (n) {
        uint64_t clusters = div_round_up(bytes, s->cluster_size);
        r = qcow2_alloc_clusters(bs, clusters, &off, err);
        if (r < 0)
            return r;
        uint8_t *buf = calloc(clusters, s->cluster_size);
        if (!buf)
            return err_set(err, -ENOMEM, "Out of memory");
        encode_table(list, n, buf);
        r = qcow2_meta_write(bs, 0, off, bytes, buf, err);
        free(buf);
        if (r >= 0)
            r = qcow2_barrier(bs, err);
        if (r < 0)
            return r;
    }
    uint8_t hdr[12];
    st_be32(hdr, (uint32_t)n);
    st_be64(hdr + 4, off);
    r = bdev_pwrite(bs->file, 60, 12, hdr, err);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    if (r < 0)
        return r;
    s->h.nb_snapshots = (uint32_t)n;
    s->h.snapshots_offset = off;
    /* Entries went out with at least the known extra fields; sizes
     * computed later (check) must see the table as written. */
    for (int i = 0; i < n; i++)
        if (list[i].extra_size < SN_EXTRA_KNOWN)
            list[i].extra_size = SN_EXTRA_KNOWN;
    /* The caller frees the old entries' strings it no longer uses. */
    free(s->snapshots);
    s->snapshots = list;
    s->nb_snapshots = n;
    if (old_off && old_bytes)
        r = qcow2_free_clusters(bs, old_off,
                                div_round_up(old_bytes, s->cluster_size), err);
    return r;
}

static int write_table(struct bdev *bs, struct qcow2_snapshot *list, int n,
                       struct err *err)
{
    return write_table_freeing(bs, list, n, s_nb(bs), err);
}

/* ---- refcounts of everything an L1 table references ---- */

/* Host clusters referenced by one L2 table, collected so that refcount
 * changes go out as few contiguous writes, right before the L2 table's
 * flags are rewritten: the stretch where stored refcounts and "copied"
 * flags disagree stays a few system calls long. */
struct clist {
    uint64_t *v;
    size_t n, cap;
};

static int clist_add(struct clist *l, uint64_t c)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        uint64_t *p = realloc(l->v, nc * sizeof(*p));
        if (!p)
            return -ENOMEM;
        l->v = p;
        l->cap = nc;
    }
    l->v[l->n++] = c;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Collect the host clusters entry `ent` references. */
static int collect_entry(struct qcow2_state *s, uint64_t ent, struct clist *l)
{
    if (ent & QCOW2_OFLAG_COMPRESSED) {
        uint64_t coff = ent & s->coffset_mask;
        uint64_t nsec = ((ent >> s->csize_shift) & s->csize_mask) + 1;
        uint64_t end = (coff & ~511ull) + nsec * 512;
        for (uint64_t c = coff >> s->cluster_bits;
             c <= (end - 1) >> s->cluster_bits; c++)
            if (clist_add(l, c) < 0)
                return -ENOMEM;
        return 0;
    }
    uint64_t off = ent & QCOW2_OFFSET_MASK;
    if (!off || s->data_file)
        return 0;
    return clist_add(l, off >> s->cluster_bits) < 0 ? -ENOMEM : 0;
}

/* Apply `addend` once per listed cluster (duplicates add up), in runs. */
static int clist_apply(struct bdev *bs, struct clist *l, int addend,
                       struct err *err)
{
    qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
    size_t i = 0;
    while (i < l->n) {
        size_t j = i + 1;
        while (j < l->n && l->v[j] == l->v[i])
            j++;
        int r;
        if (j - i > 1) {
            r = qcow2_update_refcount(bs, l->v[i], 1,
                                      (int64_t)addend * (int64_t)(j - i), err);
            i = j;
        } else {
            /* A run of distinct consecutive clusters, each once. */
            size_t k = i + 1;
            while (k < l->n && l->v[k] == l->v[k - 1] + 1 &&
                   (k + 1 >= l->n || l->v[k + 1] != l->v[k]))
                k++;
            r = qcow2_update_refcount(bs, l->v[i], k - i, addend, err);
            i = k;
        }
        if (r < 0)
            return r;
    }
    l->n = 0;
    return 0;
}

/* Rewrite the "copied" flags of the L2 table `t` at `l2` from the stored
 * refcounts (writing it only when something changed). */
static int fix_l2_flags(struct bdev *bs, uint64_t l2, uint8_t *t,
                        struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    bool dirty = false;
    for (uint64_t j = 0; j < s->l2_entries; j++) {
        uint8_t *p = t + j * s->l2_entry_size;
        uint64_t ent = ld_be64(p), rc;
        enum qcow2_ctype type = qcow2_l2_classify(ent, s->ext_l2,
                                                  s->data_file != NULL);
        if (type != QCOW2_C_NORMAL && type != QCOW2_C_ZERO_ALLOC)
            continue;
        if (s->data_file) {
            rc = 1;
        } else {
            int r = qcow2_get_refcount(bs, (ent & QCOW2_OFFSET_MASK) >>
                                       s->cluster_bits, &rc, err);
            if (r < 0)
                return r;
        }
        uint64_t ne = rc == 1 ? ent | QCOW2_OFLAG_COPIED
                              : ent & ~QCOW2_OFLAG_COPIED;
        if (ne != ent) {
            st_be64(p, ne);
            dirty = true;
        }
    }
    if (!dirty)
        return 0;
    /* An L2 table may be shared by the active layer and snapshots: flags
     * follow the refcounts for all of them. */
    int r = qcow2_meta_write(bs, QCOW2_OL_L2, l2, s->cluster_size, t, err);
    qcow2_cache_drop_range(&s->l2_cache, l2, s->cluster_size);
    return r;
}

static int check_l2_offset(struct qcow2_state *s, uint64_t l2, uint32_t i,
                           struct err *err)
{
    if (l2 % s->cluster_size)
        return err_set(err, -EIO, "qcow2: L2 table offset %#" PRIx64
                       " unaligned (L1 index: %#" PRIx32 ")", l2, i);
    return 0;
}

/* Add `addend` (+1, -1 or 0) to the refcounts of the L2 tables and data
 * clusters of an L1 table (the active one when `active`, else `mem_l1`
 * or the table at `l1_off`), then set every "copied" flag from the
 * resulting refcounts. */
static int update_refs(struct bdev *bs, uint64_t *mem_l1, uint64_t l1_off,
                       uint32_t l1_size, int addend, bool active,
                       struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t *l1 = NULL;
    uint8_t *t = NULL;
    struct clist cl = { 0 };
    bool l1_dirty = false;
    int r = 0;

    if (!l1_size)
        return 0;
    if (active) {
        l1 = s->l1;
    } else if (mem_l1) {
        l1 = mem_l1;
    } else {
        uint8_t *raw = malloc((size_t)l1_size * 8);
        l1 = calloc(l1_size, 8);
        if (!raw || !l1) {
            free(raw);
            free(l1);
            return err_set(err, -ENOMEM, "Out of memory");
        }
        r = bdev_pread(bs->file, l1_off, (uint64_t)l1_size * 8, raw, err);
        for (uint32_t i = 0; r >= 0 && i < l1_size; i++)
            l1[i] = ld_be64(raw + (size_t)i * 8);
        free(raw);
        if (r < 0)
            goto out;
    }
    t = malloc(s->cluster_size);
    if (!t) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK, rc;
        if (!l2)
            continue;
        if ((r = check_l2_offset(s, l2, i, err)) < 0)
            goto out;
        r = bdev_pread(bs->file, l2, s->cluster_size, t, err);
        if (r < 0)
            goto out;
        if (addend) {
            for (uint64_t j = 0; j < s->l2_entries; j++) {
                uint64_t ent = ld_be64(t + j * s->l2_entry_size);
                enum qcow2_ctype type = qcow2_l2_classify(ent, s->ext_l2,
                                                          s->data_file != NULL);
                if (type == QCOW2_C_COMPRESSED || type == QCOW2_C_NORMAL ||
                    type == QCOW2_C_ZERO_ALLOC) {
                    if (collect_entry(s, ent, &cl) < 0) {
                        r = err_set(err, -ENOMEM, "Out of memory");
                        goto out;
                    }
                }
            }
            r = clist_apply(bs, &cl, addend, err);
            if (r < 0)
                goto out;
        }
        r = fix_l2_flags(bs, l2, t, err);
        if (r < 0)
            goto out;
        if (addend) {
            r = qcow2_update_refcount(bs, l2 >> s->cluster_bits, 1, addend,
                                      err);
            if (r < 0)
                goto out;
        }
        r = qcow2_get_refcount(bs, l2 >> s->cluster_bits, &rc, err);
        if (r < 0)
            goto out;
        uint64_t ne = rc == 1 ? l1[i] | QCOW2_OFLAG_COPIED
                              : l1[i] & ~QCOW2_OFLAG_COPIED;
        if (ne != l1[i]) {
            l1[i] = ne;
            l1_dirty = true;
            if (active) {
                r = qcow2_write_l1(bs, i, 1, err);
                if (r < 0)
                    goto out;
            }
        }
    }
    if (l1_dirty && !active && addend >= 0 && !mem_l1) {
        uint8_t *raw = malloc((size_t)l1_size * 8);
        if (!raw) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < l1_size; i++)
            st_be64(raw + (size_t)i * 8, l1[i]);
        r = qcow2_meta_write(bs, QCOW2_OL_SNAP, l1_off,
                             (uint64_t)l1_size * 8, raw, err);
        free(raw);
    }
out:
    if (!active && !mem_l1)
        free(l1);
    free(cl.v);
    free(t);
    return r;
}

/* Flags of the active tables at L1 index i, from the stored refcounts. */
static int fix_active_index(struct bdev *bs, uint32_t i, uint8_t *t,
                            struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK, rc;
    if (!l2)
        return 0;
    int r = check_l2_offset(s, l2, i, err);
    if (r >= 0)
        r = bdev_pread(bs->file, l2, s->cluster_size, t, err);
    if (r >= 0)
        r = fix_l2_flags(bs, l2, t, err);
    if (r >= 0)
        r = qcow2_get_refcount(bs, l2 >> s->cluster_bits, &rc, err);
    if (r < 0)
        return r;
    uint64_t ne = rc == 1 ? s->l1[i] | QCOW2_OFLAG_COPIED
                          : s->l1[i] & ~QCOW2_OFLAG_COPIED;
    if (ne == s->l1[i])
        return 0;
    s->l1[i] = ne;
    return qcow2_write_l1(bs, i, 1, err);
}

/* Drop the references of a deleted snapshot's L1 table, one L1 index at
 * a time, each followed at once by the active layer's flags for that
 * index (shared clusters stay at the same guest offsets). */
static int drop_snapshot_refs(struct bdev *bs, uint64_t l1_off,
                              uint32_t l1_size, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *raw = malloc((size_t)l1_size * 8 + 8);
    uint8_t *t = malloc(s->cluster_size), *ta = malloc(s->cluster_size);
    struct clist cl = { 0 };
    int r = 0;
    if (!raw || !t || !ta) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    r = bdev_pread(bs->file, l1_off, (uint64_t)l1_size * 8, raw, err);
    for (uint32_t i = 0; r >= 0 && i < l1_size; i++) {
        uint64_t l2 = ld_be64(raw + (size_t)i * 8) & QCOW2_OFFSET_MASK;
        if (!l2)
            continue;
        if ((r = check_l2_offset(s, l2, i, err)) < 0)
            break;
        /* Each L1 reference to a table counts once more for every data
         * cluster the table names (a shared table is walked once per L1),
         * so the data references go whether or not the table stays. */
        {
            r = bdev_pread(bs->file, l2, s->cluster_size, t, err);
            for (uint64_t j = 0; r >= 0 && j < s->l2_entries; j++) {
                uint64_t ent = ld_be64(t + j * s->l2_entry_size);
                enum qcow2_ctype type = qcow2_l2_classify(ent, s->ext_l2,
                                                          s->data_file != NULL);
                if ((type == QCOW2_C_COMPRESSED || type == QCOW2_C_NORMAL ||
                     type == QCOW2_C_ZERO_ALLOC) && collect_entry(s, ent, &cl) < 0)
                    r = err_set(err, -ENOMEM, "Out of memory");
            }
            if (r >= 0)
                r = clist_apply(bs, &cl, -1, err);
        }
        if (r >= 0)
            r = qcow2_update_refcount(bs, l2 >> s->cluster_bits, 1, -1, err);
        if (r >= 0 && i < s->l1_size)
            r = fix_active_index(bs, i, ta, err);
    }
out:
    free(cl.v);
    free(raw);
    free(t);
    free(ta);
    return r;
}

static int update_l1_refcounts(struct bdev *bs, uint64_t l1_off,
                               uint32_t l1_size, int addend, bool active,
                               struct err *err)
{
    return update_refs(bs, NULL, l1_off, l1_size, addend, active, err);
}

/* ---- lookups ---- */

static int find_by_id_and_name(struct qcow2_state *s, const char *id,
                               const char *name)
{
    for (int i = 0; i < s->nb_snapshots; i++) {
        if (id && strcmp(s->snapshots[i].id_str, id))
            continue;
        if (name && strcmp(s->snapshots[i].name, name))
            continue;
        if (id || name)
            return i;
    }
    return -1;
}

static int find_by_id_or_name(struct qcow2_state *s, const char *what)
{
    int i = find_by_id_and_name(s, what, NULL);
    return i >= 0 ? i : find_by_id_and_name(s, NULL, what);
}

static int check_writable_state(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (s->data_file)
        return err_set(err, -ENOTSUP, "Operation not supported");
    if (s->snapshot_loaded)
        return err_set(err, -EACCES, "Image is read-only");
    return 0;
}

static int validate_sn_l1(struct bdev *bs, const struct qcow2_snapshot *sn,
                          struct err *err)
{
    return qcow2_snapshot_validate_l1(bs, sn, err);
}

/* ---- create ---- */

int qcow2_snapshot_create(struct bdev *bs, const struct snapshot_info *info,
                          struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_snapshot sn = { 0 };
    uint64_t l1_off = 0;
    int r = check_writable_state(bs, err);
    if (r < 0)
        return r;
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
        return err_set(err, -EFBIG, "File too large");

    unsigned long max_id = 0;
    for (int i = 0; i < s->nb_snapshots; i++) {
        unsigned long id = strtoul(s->snapshots[i].id_str, NULL, 10);
        if (id > max_id)
            max_id = id;
    }
    char idbuf[32];
    snprintf(idbuf, sizeof(idbuf), "%lu", max_id + 1);
    sn.id_str = strdup(info->id[0] ? info->id : idbuf);
    sn.name = strdup(info->name ? info->name : "");
    sn.extra = NULL;
    sn.extra_size = SN_EXTRA_KNOWN;
    sn.disk_size = bs->size;
    sn.has_disk_size = true;
    sn.vm_state_size = info->vm_state_size;
    sn.date_sec = info->date_sec;
    sn.date_nsec = info->date_nsec;
    sn.vm_clock_nsec = info->vm_clock_nsec;
    sn.icount = info->icount;
    sn.has_icount = info->has_icount;
    sn.l1_size = s->l1_size;
    if (!sn.id_str || !sn.name) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto fail;
    }

    /* Copy of the active L1 in new clusters. */
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
    if (l1_bytes) {
        r = qcow2_alloc_clusters(bs, div_round_up(l1_bytes, s->cluster_size),
                                 &l1_off, err);
        if (r < 0)
            goto fail;
        uint8_t *raw = malloc(l1_bytes);
        if (!raw) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto fail;
        }
        for (uint32_t i = 0; i < s->l1_size; i++)
            st_be64(raw + (size_t)i * 8, s->l1[i]);
        r = qcow2_meta_write(bs, 0, l1_off, l1_bytes, raw, err);
        free(raw);
        if (r >= 0)
            r = qcow2_barrier(bs, err);
        if (r < 0)
            goto fail;
    }
    sn.l1_table_offset = l1_off;

    r = update_l1_refcounts(bs, s->l1_offset, s->l1_size, 1, true, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        goto fail;

    struct qcow2_snapshot *list = calloc((size_t)s->nb_snapshots + 1,
                                         sizeof(*list));
    if (!list) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto fail;
    }
    if (s->nb_snapshots)    /* the first snapshot has no list to copy */
        memcpy(list, s->snapshots, (size_t)s->nb_snapshots * sizeof(*list));
    list[s->nb_snapshots] = sn;
    r = write_table(bs, list, s->nb_snapshots + 1, err);
    if (r < 0 && s->snapshots != list) {
        free(list);
        goto fail;
    }
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    return r;
fail:
    free(sn.id_str);
    free(sn.name);
    return r;
}

/* ---- apply ---- */

/* Apply a snapshot whose disk size (or L1 table) differs from the active
 * layer's: the image takes the snapshot's size back, as qemu-img does.
 * The active L1 cannot be rewritten in place before the size changes (a
 * crash between the two would pair one layer's table with the other's
 * size), so the new active table goes to new clusters and one header
 * write (bytes 24..47: size, L1 size and offset, all in one sector)
 * switches size and table together. */
static int apply_resized(struct bdev *bs, struct qcow2_snapshot *sn,
                         struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t size = sn->has_disk_size ? sn->disk_size : bs->size;
    uint64_t per_l1 = s->l2_entries * s->cluster_size;
    if (size % 512 || size > (uint64_t)INT64_MAX - per_l1)
        return err_set(err, -EINVAL, "Snapshot has an invalid disk size");
    uint64_t need = div_round_up(size, per_l1);
    uint64_t n = s->l1_size;
    if (sn->l1_size > n)
        n = sn->l1_size;
    if (need > n)
        n = need;
    if (n * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(err, -EFBIG, "Snapshot L1 table too large");
    uint64_t bytes = n * 8, clusters = div_round_up(bytes, s->cluster_size);
    uint64_t old_off = s->l1_offset, old_size = s->l1_size;
    uint64_t old_clusters = div_round_up(old_size * 8, s->cluster_size);
    uint8_t *raw = calloc(1, clusters * s->cluster_size);
    uint64_t *l1 = calloc(n ? n : 1, 8);
    uint64_t *old = s->l1;
    uint64_t off = 0;
    int r = 0;
    if (!raw || !l1) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    if (sn->l1_size) {
        r = bdev_pread(bs->file, sn->l1_table_offset,
                       (uint64_t)sn->l1_size * 8, raw, err);
        if (r < 0)
            goto out;
    }
    /* Shared with the snapshot from now on: no "copied" flags. */
    for (uint64_t i = 0; i < n; i++) {
        l1[i] = ld_be64(raw + i * 8) & ~QCOW2_OFLAG_COPIED;
        st_be64(raw + i * 8, l1[i]);
    }
    r = update_l1_refcounts(bs, sn->l1_table_offset, sn->l1_size, 1, false,
                            err);
    if (r >= 0 && n)
        r = qcow2_alloc_clusters(bs, clusters, &off, err);
    if (r >= 0 && n)
        r = qcow2_ensure_size(bs->file, off + clusters * s->cluster_size, err);
    if (r >= 0 && n)
        r = qcow2_meta_write(bs, QCOW2_OL_L1, off, clusters * s->cluster_size,
                             raw, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        goto out;
    uint8_t hdr[24];
    r = bdev_pread(bs->file, 24, sizeof(hdr), hdr, err);
    if (r < 0)
        goto out;
    st_be64(hdr, size);
    st_be32(hdr + 12, (uint32_t)n);
    st_be64(hdr + 16, off);
    r = qcow2_meta_write(bs, QCOW2_OL_HEADER, 24, sizeof(hdr), hdr, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        goto out;
    s->l1 = l1;
    l1 = NULL;
    s->l1_size = (uint32_t)n;
    s->l1_offset = off;
    s->h.l1_size = (uint32_t)n;
    s->h.l1_table_offset = off;
    s->h.size = size;
    bs->size = size;
    for (uint64_t i = 0; i < n; i++)
        if (s->l1[i] & QCOW2_OFFSET_MASK)
            qcow2_cache_drop_range(&s->l2_cache, s->l1[i] & QCOW2_OFFSET_MASK,
                                   s->cluster_size);
    s->cbuf_valid = false;
    /* Drop what the old active table referenced, then the table. */
    r = update_refs(bs, old, 0, (uint32_t)old_size, -1, false, err);
    for (uint64_t i = 0; i < old_size; i++)
        if (old[i] & QCOW2_OFFSET_MASK)
            qcow2_cache_drop_range(&s->l2_cache, old[i] & QCOW2_OFFSET_MASK,
                                   s->cluster_size);
    free(old);
    old = NULL;
    if (r >= 0 && old_off && old_clusters)
        r = qcow2_free_clusters(bs, old_off, old_clusters, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r >= 0)
        r = update_l1_refcounts(bs, s->l1_offset, s->l1_size, 0, true, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
out:
    free(raw);
    free(l1);
    return r;
}

int qcow2_snapshot_apply(struct bdev *bs, const char *id_or_name,
                         struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int r = check_writable_state(bs, err);
    if (r < 0)
        return r;
    int idx = find_by_id_or_name(s, id_or_name);
    if (idx < 0)
        return err_set(err, -ENOENT, "Failed to load snapshot: %s",
                       strerror(ENOENT));
    struct qcow2_snapshot *sn = &s->snapshots[idx];
    r = validate_sn_l1(bs, sn, err);
    if (r < 0)
        return r;
    if ((sn->has_disk_size && sn->disk_size != bs->size) ||
        sn->l1_size > s->l1_size)
        return apply_resized(bs, sn, err);

    uint64_t cur_bytes = (uint64_t)s->l1_size * 8;
    uint8_t *raw = calloc(1, cur_bytes ? cur_bytes : 1);
    if (!raw)
        return err_set(err, -ENOMEM, "Out of memory");
    /* The snapshot's clusters gain the reference the active L1 will make. */
    r = update_l1_refcounts(bs, sn->l1_table_offset, sn->l1_size, 1, false,
                            err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        goto out;
    /* Every table it names is now shared with the snapshot: the copy
     * becomes the active L1 without "copied" flags, which stays true once
     * the old active references are dropped. */
    if (sn->l1_size) {
        r = bdev_pread(bs->file, sn->l1_table_offset,
                       (uint64_t)sn->l1_size * 8, raw, err);
        if (r < 0)
            goto out;
        for (uint32_t i = 0; i < sn->l1_size; i++)
            st_be64(raw + (size_t)i * 8,
                    ld_be64(raw + (size_t)i * 8) & ~QCOW2_OFLAG_COPIED);
    }
    /* Keep the old active L1 in memory to drop its references. */
    uint64_t *old = malloc(cur_bytes ? cur_bytes : 1);
    if (!old) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    memcpy(old, s->l1, cur_bytes);
    r = qcow2_meta_write(bs, QCOW2_OL_L1, s->l1_offset, cur_bytes, raw, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0) {
        free(old);
        goto out;
    }
    /* The active L1 now is the snapshot's; drop the references the old
     * one (kept in memory) made. */
    for (uint32_t i = 0; i < s->l1_size; i++)
        s->l1[i] = ld_be64(raw + (size_t)i * 8);
    r = update_refs(bs, old, 0, s->l1_size, -1, false, err);
    free(old);
    for (uint32_t i = 0; i < s->l1_size; i++)
        if (s->l1[i] & QCOW2_OFFSET_MASK)
            qcow2_cache_drop_range(&s->l2_cache, s->l1[i] & QCOW2_OFFSET_MASK,
                                   s->cluster_size);
    s->cbuf_valid = false;
    if (r < 0)
        goto out;
    r = qcow2_barrier(bs, err);
    if (r >= 0)
        r = update_l1_refcounts(bs, s->l1_offset, s->l1_size, 0, true, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
out:
    free(raw);
    return r;
}

/* ---- delete ---- */

int qcow2_snapshot_delete(struct bdev *bs, const char *id, const char *name,
                          struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int r = check_writable_state(bs, err);
    if (r < 0)
        return r;
    int idx = find_by_id_and_name(s, id, name);
    if (idx < 0)
        return err_set(err, -ENOENT, "Can't find the snapshot");
    struct qcow2_snapshot sn = s->snapshots[idx];
    r = validate_sn_l1(bs, &sn, err);
    if (r < 0)
        return r;

    struct qcow2_snapshot *list = calloc((size_t)s->nb_snapshots, sizeof(*list));
    if (!list)
        return err_set(err, -ENOMEM, "Out of memory");
    int n = 0;
    for (int i = 0; i < s->nb_snapshots; i++)
        if (i != idx)
            list[n++] = s->snapshots[i];
    r = write_table(bs, list, n, err);
    if (r < 0 && s->snapshots != list) {
        free(list);
        return err_set(err, r, "Failed to remove snapshot from snapshot list: "
                       "%s", strerror(-r));
    }
    free(sn.id_str);
    free(sn.name);
    free(sn.extra);
    if (r < 0)
        return r;
    r = qcow2_barrier(bs, err);
    if (r >= 0)
        r = drop_snapshot_refs(bs, sn.l1_table_offset, sn.l1_size, err);
    if (r >= 0 && sn.l1_size)
        r = qcow2_free_clusters(bs, sn.l1_table_offset,
                                div_round_up((uint64_t)sn.l1_size * 8,
                                             s->cluster_size), err);
    if (r < 0)
        return err_set(err, r, "Failed to free the cluster and L1 table: %s",
                       strerror(-r));
    r = qcow2_barrier(bs, err);
    if (r >= 0)
        r = update_l1_refcounts(bs, s->l1_offset, s->l1_size, 0, true, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        return err_set(err, r, "Failed to update snapshot status in disk: %s",
                       strerror(-r));
    return 0;
}

int qcow2_snapshot_table_rewrite(struct bdev *bs, int old_trusted,
                                 struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (!s->nb_snapshots)
        return 0;
    struct qcow2_snapshot *list = calloc((size_t)s->nb_snapshots,
                                         sizeof(*list));
    if (!list)
        return err_set(err, -ENOMEM, "Out of memory");
    memcpy(list, s->snapshots, (size_t)s->nb_snapshots * sizeof(*list));
    for (int i = 0; i < s->nb_snapshots; i++)
        if (!list[i].has_disk_size) {
            list[i].disk_size = bs->size;
            list[i].has_disk_size = true;
        }
    if (old_trusted < 0 || old_trusted > s->nb_snapshots)
        old_trusted = s->nb_snapshots;
    int r = write_table_freeing(bs, list, s->nb_snapshots, old_trusted, err);
    if (r < 0 && s->snapshots != list)
        free(list);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    return r;
}
