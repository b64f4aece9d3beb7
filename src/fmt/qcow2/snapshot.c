/* qcow2 snapshots: reading the snapshot table (spec "Snapshots") with
 * every field and the extra data, listing, and loading a snapshot as a
 * read-only view.  Creating, applying and deleting snapshots, which
 * rewrite the table and adjust refcounts, live in snapshot-write.c. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

void qcow2_snapshots_free(struct qcow2_state *s)
{
    for (int i = 0; i < s->nb_snapshots; i++) {
        free(s->snapshots[i].id_str);
        free(s->snapshots[i].name);
        free(s->snapshots[i].extra);
    }
    free(s->snapshots);
    s->snapshots = NULL;
    s->nb_snapshots = 0;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* Decode one entry at buf[*pos] (buf holds `len` bytes). */
static int decode_entry(struct qcow2_state *s, const uint8_t *buf, size_t len,
                        size_t *pos, uint32_t idx, bool lenient,
                        struct qcow2_snapshot *sn, struct err *err)
{
    size_t p = *pos;
    if (len - p < 40)
        return err_set(err, -EINVAL, "Snapshot table is truncated");
    sn->l1_table_offset = ld_be64(buf + p);
    sn->l1_size = ld_be32(buf + p + 8);
    uint16_t id_len = ld_be16(buf + p + 12), name_len = ld_be16(buf + p + 14);
    sn->date_sec = ld_be32(buf + p + 16);
    sn->date_nsec = ld_be32(buf + p + 20);
    sn->vm_clock_nsec = ld_be64(buf + p + 24);
    sn->vm_state_size = ld_be32(buf + p + 32);
    uint32_t extra = ld_be32(buf + p + 36);
    p += 40;
    uint32_t skip = 0;
    if (extra > QCOW2_MAX_SNAPSHOT_EXTRA) {
        if (!lenient)
            return err_set(err, -EFBIG, "Too much extra metadata in snapshot "
                           "table entry %" PRIu32 "\nYou can force-remove "
                           "this extra metadata with qemu-img check -r all",
                           idx);
        /* For check: keep the first 1024 bytes, names follow the rest. */
        sn->extra_dropped = extra;
        skip = extra - QCOW2_MAX_SNAPSHOT_EXTRA;
        extra = QCOW2_MAX_SNAPSHOT_EXTRA;
    }
    if (len - p < (size_t)extra + skip + id_len + name_len)
        return err_set(err, -EINVAL, "Snapshot table is truncated");
    const uint8_t *x = buf + p;
    if (extra >= 8)
        sn->vm_state_size = ld_be64(x);
    if (extra >= 16) {
        sn->disk_size = ld_be64(x + 8);
        sn->has_disk_size = true;
    }
    if (extra >= 24) {
        sn->icount = ld_be64(x + 16);
        sn->has_icount = sn->icount != UINT64_MAX;
    }
    /* A v3 entry must carry the disk size; one that does not still
     * loads (check reports and repairs it). */
    sn->incomplete = s->h.version >= 3 && extra < 16;
    sn->extra_size = extra;
    sn->extra = malloc(extra ? extra : 1);
    if (!sn->extra)
        return err_set(err, -ENOMEM, "Out of memory");
    memcpy(sn->extra, x, extra);
    p += extra + skip;
    sn->id_str = dup_bytes(buf + p, id_len);
    p += id_len;
    sn->name = dup_bytes(buf + p, name_len);
    p += name_len;
    if (!sn->id_str || !sn->name)
        return err_set(err, -ENOMEM, "Out of memory");
    /* The L1 fields are validated where a snapshot is used (load, apply,
     * delete, amend) so that the image still opens and check can report
     * the entry, as qemu-img does. */
    *pos = align_up(p, 8);
    if (*pos > len)
        *pos = len;
    return 0;
}

int qcow2_snapshots_load(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint32_t n = s->h.nb_snapshots;
    if (!n)
        return 0;
    bool lenient = (bs->flags & BDEV_O_CHECK) != 0;
    if (n > QCOW2_MAX_SNAPSHOTS) {
        if (!lenient)
            return err_set(err, -EFBIG, "Snapshot table too large");
        s->snapshots_overhang = n - QCOW2_MAX_SNAPSHOTS;
        n = QCOW2_MAX_SNAPSHOTS;
    }
    uint64_t off = s->h.snapshots_offset;
    if (off % s->cluster_size || off > INT64_MAX) {
        if (lenient) {
            s->snapshots_offset_bad = true;     /* check reports it */
            return 0;
        }
        return err_set(err, -EINVAL, "Snapshot table offset invalid");
    }
    int64_t flen = bdev_file_length(bs->file);
    if (flen < 0)
        return err_set(err, (int)flen, "Could not get the file size");
    /* What lies past the end of the file reads as zeros (entries there
     * decode as empty, incomplete ones).  The buffer holds the part in
     * the file plus room for such entries, within the 64 MiB limit. */
    uint64_t in_file = off < (uint64_t)flen ? (uint64_t)flen - off : 0;
    uint64_t avail = min_u64(in_file + (uint64_t)n * 40 + 65536,
                             QCOW2_MAX_SNAPSHOT_TABLE_BYTES);
    in_file = min_u64(in_file, avail);
    uint8_t *buf = calloc(1, avail);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = in_file ? bdev_pread(bs->file, off, in_file, buf, err) : 0;
    if (r < 0)
        goto out;
    s->snapshots = calloc(n, sizeof(*s->snapshots));
    if (!s->snapshots) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    size_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        s->nb_snapshots++;
        r = decode_entry(s, buf, avail, &pos, i, lenient, &s->snapshots[i],
                         err);
        if (r < 0)
            goto out;
    }
out:
    free(buf);
    return r;
}

int qcow2_snapshot_list(struct bdev *bs, struct snapshot_info **list,
                        int *count, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    *list = NULL;
    *count = 0;
    if (!s->nb_snapshots)
        return 0;
    struct snapshot_info *l = calloc((size_t)s->nb_snapshots, sizeof(*l));
    if (!l)
        return err_set(err, -ENOMEM, "Out of memory");
    for (int i = 0; i < s->nb_snapshots; i++) {
        const struct qcow2_snapshot *sn = &s->snapshots[i];
        snprintf(l[i].id, sizeof(l[i].id), "%s", sn->id_str);
        l[i].name = strdup(sn->name);
        l[i].vm_state_size = sn->vm_state_size;
        l[i].date_sec = sn->date_sec;
        l[i].date_nsec = sn->date_nsec;
        l[i].vm_clock_nsec = sn->vm_clock_nsec;
        l[i].icount = sn->icount;
        l[i].has_icount = sn->has_icount;
        if (!l[i].name) {
            snapshot_info_free(l, i);
            return err_set(err, -ENOMEM, "Out of memory");
        }
    }
    *list = l;
    *count = s->nb_snapshots;
    return 0;
}

int qcow2_snapshot_validate_l1(struct bdev *bs, const struct qcow2_snapshot *sn,
                               struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(err, -EFBIG, "Snapshot L1 table too large");
    if (sn->l1_table_offset % s->cluster_size ||
        sn->l1_table_offset > INT64_MAX - (uint64_t)sn->l1_size * 8)
        return err_set(err, -EINVAL, "Snapshot L1 table offset invalid");
    return 0;
}

int qcow2_snapshot_load(struct bdev *bs, const char *id, const char *name,
                        struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_snapshot *sn = NULL;
    for (int i = 0; i < s->nb_snapshots && !sn; i++) {
        struct qcow2_snapshot *c = &s->snapshots[i];
        if (id && name) {
            if (!strcmp(c->id_str, id) && !strcmp(c->name, name))
                sn = c;
        } else if (id) {
            if (!strcmp(c->id_str, id))
                sn = c;
        } else if (name && !strcmp(c->name, name)) {
            sn = c;
        }
    }
    if (!sn)
        return err_set(err, -ENOENT, "Can't find snapshot");
    int r = qcow2_snapshot_validate_l1(bs, sn, err);
    if (r < 0)
        return r;
    uint64_t bytes = (uint64_t)sn->l1_size * 8;
    if (!range_within(sn->l1_table_offset, bytes, bs->file->size))
        return err_set(err, -EINVAL, "Snapshot L1 table offset invalid");
    uint64_t *l1 = calloc(sn->l1_size ? sn->l1_size : 1, 8);
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!l1 || !raw) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto fail;
    }
    if (bytes && (r = bdev_pread(bs->file, sn->l1_table_offset, bytes, raw, err)) < 0)
        goto fail;
    for (uint32_t i = 0; i < sn->l1_size; i++)
        l1[i] = ld_be64(raw + (size_t)i * 8);
    free(raw);
    free(s->l1);
    s->l1 = l1;
    s->l1_size = sn->l1_size;
    s->snapshot_loaded = true;
    s->cbuf_valid = false;
    if (sn->has_disk_size)
        bs->size = sn->disk_size;
    bs->read_only = true;
    return 0;
fail:
    free(l1);
    free(raw);
    return r;
}
