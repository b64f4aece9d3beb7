/* qcow2 amend: change options of an existing image, in qemu-img's order:
 * upgrade to compat=1.1 first, then the refcount width, header-only
 * changes, lazy refcounts, the virtual size, and the downgrade to
 * compat=0.10 last (so features that v2 cannot express are dropped
 * before).  The backing link cannot be changed here (qemu-img points to
 * rebase), nor can creation-only options.
 *
 * Crash safety: zero clusters are expanded by writing zeroed data
 * clusters before the L2 entries name them; a new refcount structure is
 * complete on disk before one header write switches to it (together with
 * the new width); the version changes with a single header write. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

struct amend_req {
    int version;
    bool has_size;
    uint64_t size;
    const char *backing_file, *backing_fmt, *data_file;
    bool has_backing_file, has_backing_fmt, has_data_file;
    bool lazy, has_lazy;
    bool data_raw, has_data_raw;
    uint64_t refcount_bits;
    bool has_refcount_bits;
};

static int parse_req(struct bdev *bs, struct kvlist *opts,
                     struct amend_req *q, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    const char *v;
    int r;
    q->version = (int)s->h.version;
    if ((v = kv_get(opts, "compat"))) {
        if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
            q->version = 2;
        else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
            q->version = 3;
        else
            return err_set(err, -EINVAL, "Unknown compatibility level %s", v);
    }
    if (kv_peek(opts, "size")) {
        q->has_size = true;
        r = kv_get_size(opts, "size", 0, &q->size, err);
        if (r < 0)
            return r;
    }
    if ((q->has_backing_file = kv_has(opts, "backing_file")))
        q->backing_file = kv_get(opts, "backing_file");
    if ((q->has_backing_fmt = kv_has(opts, "backing_fmt")))
        q->backing_fmt = kv_get(opts, "backing_fmt");
    for (size_t i = 0; i < opts->n; i++)
        if (!strncmp(opts->items[i].key, "encrypt.", 8))
            return err_set(err, -EINVAL, "Can't amend encryption options - "
                           "encryption not present");
    q->lazy = (s->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    if (kv_peek(opts, "lazy_refcounts")) {
        q->has_lazy = true;
        r = kv_get_bool(opts, "lazy_refcounts", q->lazy, &q->lazy, err);
        if (r < 0)
            return r;
    }
    q->refcount_bits = 1ull << s->refcount_order;
    if (kv_peek(opts, "refcount_bits")) {
        q->has_refcount_bits = true;
        r = kv_get_u64(opts, "refcount_bits", q->refcount_bits,
                       &q->refcount_bits, err);
        if (r < 0 || !q->refcount_bits || q->refcount_bits > 64 ||
            (q->refcount_bits & (q->refcount_bits - 1))) {
            err_clear(err);
            return err_set(err, -EINVAL, "Refcount width must be a power of "
                           "two and may not exceed 64 bits");
        }
    }
    if ((q->has_data_file = kv_has(opts, "data_file"))) {
        q->data_file = kv_get(opts, "data_file");
        if (q->data_file && !(s->h.incompat & QCOW2_INCOMPAT_DATA_FILE))
            return err_set(err, -EINVAL, "data-file can only be set for images "
                           "that use an external data file");
    }
    q->data_raw = s->data_raw;
    if (kv_peek(opts, "data_file_raw")) {
        q->has_data_raw = true;
        r = kv_get_bool(opts, "data_file_raw", q->data_raw, &q->data_raw, err);
        if (r < 0)
            return r;
        if (q->data_raw && !s->data_raw)
            return err_set(err, -EINVAL, "data-file-raw cannot be set on "
                           "existing images");
    }
    return 0;
}

static bool str_differs(const char *a, const char *b)
{
    if (!a || !b)
        return a != b;
    return strcmp(a, b) != 0;
}

/* ---- progress ----
 * qemu-img reports amend progress over the operations that do real work
 * (version change, refcount width change), each with its own work size.
 * The whole is estimated from the operations seen so far: the work done
 * by finished operations plus the current one's size, scaled up for the
 * operations still to come.  The estimate can move backwards when an
 * operation turns out larger than guessed; qemu-img's output does too. */
struct amend_prog {
    progress_fn fn;
    void *opaque;
    int total_ops, ops_done, cur_op, last_op;
    uint64_t done_work, last_size;
};

static void amend_step(void *opaque, uint64_t off, uint64_t size)
{
    struct amend_prog *p = opaque;
    if (!p->fn || p->total_ops <= 0)
        return;
    if (p->cur_op != p->last_op) {
        if (p->last_op) {
            p->done_work += p->last_size;
            p->ops_done++;
        }
        p->last_op = p->cur_op;
    }
    if (p->ops_done >= p->total_ops)
        return;
    p->last_size = size;
    uint64_t cur = p->done_work + size;
    uint64_t rest = cur * (uint64_t)(p->total_ops - p->ops_done - 1) /
                    (uint64_t)(p->ops_done + 1);
    p->fn(p->opaque, p->done_work + off, cur + rest);
}

/* ---- version changes ---- */

static int upgrade(struct bdev *bs, struct amend_prog *p, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    /* v3 snapshot entries carry the disk size: rewrite the table first. */
    amend_step(p, 0, 2);
    int r = qcow2_snapshot_table_rewrite(bs, -1, err);
    amend_step(p, 1, 2);
    if (r < 0)
        return err_set(err, r, "Failed to update the snapshot table: %s",
                       strerror(-r));
    struct qcow2_header old = s->h;
    s->h.version = 3;
    s->h.header_length = 112;
    s->h.compression_type = QCOW2_COMPRESS_ZLIB;
    memset(s->h.extra_fields, 0, sizeof(s->h.extra_fields));
    if (!s->x.feature_table) {
        uint32_t len;
        const uint8_t *ft = qcow2_default_feature_table(&len);
        s->x.feature_table = malloc(len);
        if (s->x.feature_table) {
            memcpy(s->x.feature_table, ft, len);
            s->x.feature_table_len = len;
        }
    }
    r = qcow2_write_header(bs, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0) {
        s->h = old;
        return err_set(err, r, "Failed to update the image header: %s",
                       strerror(-r));
    }
    amend_step(p, 2, 2);
    return 0;
}

/* Turn zero clusters of one L1 table into data clusters (or unallocated
 * ones where nothing shows through). */
static int expand_l1(struct bdev *bs, uint64_t l1_off, uint32_t l1_size,
                     const uint64_t *mem_l1, uint8_t *zeros,
                     struct amend_prog *p, uint64_t *visited, uint64_t total,
                     struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *t = malloc(s->cluster_size);
    uint8_t *raw = malloc((size_t)l1_size * 8 + 8);
    uint64_t *frees = malloc(s->l2_entries * sizeof(*frees));
    int r = 0;
    if (!t || !raw || !frees) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    if (!mem_l1) {
        r = bdev_pread(bs->file, l1_off, (uint64_t)l1_size * 8, raw, err);
        if (r < 0)
            goto out;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l1e = mem_l1 ? mem_l1[i] : ld_be64(raw + (size_t)i * 8);
        uint64_t l2 = l1e & QCOW2_OFFSET_MASK;
        bool dirty = false;
        if (!l2) {
            amend_step(p, ++*visited, total);
            continue;
        }
        if (l2 % s->cluster_size) {
            r = err_set(err, -EIO, "L2 table offset unaligned");
            goto out;
        }
        /* A table shared with snapshots (refcount n) stands for n
         * references to each cluster it names. */
        uint64_t l2rc, nfree = 0;
        r = qcow2_get_refcount(bs, l2 / s->cluster_size, &l2rc, err);
        if (r >= 0 && !l2rc)
            r = err_set(err, -EIO, "L2 table at %#" PRIx64 " has no "
                        "references", l2);
        if (r >= 0)
            r = bdev_pread(bs->file, l2, s->cluster_size, t, err);
        if (r < 0)
            goto out;
        uint64_t copied = l2rc == 1 ? QCOW2_OFLAG_COPIED : 0;
        for (uint64_t j = 0; j < s->l2_entries; j++) {
            uint64_t e = ld_be64(t + j * 8), host = e & QCOW2_OFFSET_MASK;
            enum qcow2_ctype ty = qcow2_l2_classify(e, false, false);
            if (ty == QCOW2_C_ZERO_ALLOC) {
                uint64_t hrc;
                r = qcow2_get_refcount(bs, host / s->cluster_size, &hrc, err);
                if (r < 0)
                    goto out;
                if (hrc <= 1) {
                    /* Ours alone: zero it where it is. */
                    r = bdev_pwrite(bs->file, host, s->cluster_size, zeros,
                                    err);
                    if (r < 0)
                        goto out;
                    st_be64(t + j * 8, e & ~QCOW2_OFLAG_ZERO);
                    dirty = true;
                    continue;
                }
                /* Shared: a snapshot may read data from it, so it is
                 * left alone and dereferenced once the table is written. */
                frees[nfree++] = host;
            }
            if (ty != QCOW2_C_ZERO_ALLOC && ty != QCOW2_C_ZERO_PLAIN)
                continue;
            if (!bs->backing_file) {
                st_be64(t + j * 8, 0);
            } else {
                uint64_t nh;
                r = qcow2_alloc_clusters(bs, 1, &nh, err);
                if (r >= 0 && l2rc > 1)
                    r = qcow2_update_refcount(bs, nh / s->cluster_size, 1,
                                              (int64_t)l2rc - 1, err);
                if (r >= 0)
                    r = bdev_pwrite(bs->file, nh, s->cluster_size, zeros, err);
                if (r < 0)
                    goto out;
                st_be64(t + j * 8, nh | copied);
            }
            dirty = true;
        }
        if (dirty) {
            r = qcow2_barrier(bs, err);
            if (r >= 0)
                r = qcow2_meta_write(bs, QCOW2_OL_L2, l2, s->cluster_size, t,
                                     err);
            qcow2_cache_drop_range(&s->l2_cache, l2, s->cluster_size);
            if (r >= 0 && nfree)
                r = qcow2_barrier(bs, err);
            for (uint64_t k = 0; r >= 0 && k < nfree; k++)
                r = qcow2_update_refcount(bs, frees[k] / s->cluster_size, 1,
                                          -(int64_t)l2rc, err);
            if (r < 0)
                goto out;
        }
        amend_step(p, ++*visited, total);
    }
out:
    free(t);
    free(raw);
    free(frees);
    return r;
}

static int expand_zero_clusters(struct bdev *bs, struct amend_prog *p,
                                struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *zeros = calloc(1, s->cluster_size);
    if (!zeros)
        return err_set(err, -ENOMEM, "Out of memory");
    /* Progress counts L1 entries of the active table and every snapshot. */
    uint64_t total = s->l1_size, visited = 0;
    for (int i = 0; i < s->nb_snapshots; i++)
        total += s->snapshots[i].l1_size;
    int r = expand_l1(bs, s->l1_offset, s->l1_size, s->l1, zeros, p,
                      &visited, total, err);
    for (int i = 0; r >= 0 && i < s->nb_snapshots; i++) {
        r = qcow2_snapshot_validate_l1(bs, &s->snapshots[i], err);
        if (r < 0)
            break;
        r = expand_l1(bs, s->snapshots[i].l1_table_offset,
                      s->snapshots[i].l1_size, NULL, zeros, p, &visited,
                      total, err);
    }
    free(zeros);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    return r;
}

static int has_compressed(struct bdev *bs, bool *found, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    *found = false;
    for (uint64_t off = 0; off < bs->size && !*found;) {
        struct qcow2_map m;
        int r = qcow2_map(bs, s->l1, s->l1_size, off, bs->size - off, &m, err);
        if (r < 0)
            return r;
        if (m.type == QCOW2_SC_COMPRESSED)
            *found = true;
        off += m.len ? m.len : s->cluster_size;
    }
    return 0;
}

static int downgrade(struct bdev *bs, struct amend_prog *p, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int r;
    if (s->refcount_order != 4)
        return err_set(err, -ENOTSUP, "compat=0.10 requires refcount_bits=16");
    if (s->h.incompat & QCOW2_INCOMPAT_DATA_FILE)
        return err_set(err, -ENOTSUP, "Cannot downgrade an image with a data "
                       "file");
    for (int i = 0; i < s->nb_snapshots; i++)
        if (s->snapshots[i].vm_state_size > UINT32_MAX ||
            (s->snapshots[i].has_disk_size &&
             s->snapshots[i].disk_size != bs->size))
            return err_set(err, -ENOTSUP, "Internal snapshots prevent "
                           "downgrade of image");
    uint64_t bad = s->h.incompat & ~(QCOW2_INCOMPAT_COMPRESSION |
                                     QCOW2_INCOMPAT_DIRTY);
    if (bad)
        return err_set(err, -ENOTSUP, "Cannot downgrade an image with "
                       "incompatible features 0x%" PRIx64 " set", bad);
    r = expand_zero_clusters(bs, p, err);
    if (r < 0)
        return err_set(err, r, "Failed to turn zero into data clusters: %s",
                       strerror(-r));
    if (s->h.incompat & QCOW2_INCOMPAT_COMPRESSION) {
        bool found;
        r = has_compressed(bs, &found, err);
        if (r < 0) {
            err_clear(err);
            return err_set(err, -EINVAL, "Failed to check block status");
        }
        if (found)
            return err_set(err, -ENOTSUP, "Cannot downgrade an image with zstd "
                           "compression type and existing compressed "
                           "clusters");
    }
    struct qcow2_header old = s->h;
    bool had_bitmaps = s->x.has_bitmaps;
    s->h.version = 2;
    s->h.incompat = 0;
    s->h.compat = 0;
    s->h.autoclear = 0;
    s->h.compression_type = QCOW2_COMPRESS_ZLIB;
    s->x.has_bitmaps = false;
    r = qcow2_write_header(bs, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0) {
        s->h = old;
        s->x.has_bitmaps = had_bitmaps;
        return err_set(err, r, "Failed to update the image header: %s",
                       strerror(-r));
    }
    return 0;
}

/* ---- flags in the header ---- */

static int write_header_or_undo(struct bdev *bs, const struct qcow2_header *old,
                                struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int r = qcow2_write_header(bs, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0) {
        s->h = *old;
        return err_set(err, r, "Failed to update the image header: %s",
                       strerror(-r));
    }
    return 0;
}

int qcow2_amend(struct bdev *bs, struct kvlist *opts, bool force,
                progress_fn progress, void *opaque, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct amend_req q = { 0 };
    struct amend_prog p = { .fn = progress, .opaque = opaque };
    int r;
    (void)force;

    if (s->corrupt)
        return err_set(err, -EACCES, "Image is corrupt; cannot be amended");
    r = parse_req(bs, opts, &q, err);
    if (r < 0)
        return r;
    int old_version = (int)s->h.version;
    enum { OP_UPGRADE = 1, OP_REFCOUNT, OP_DOWNGRADE };
    p.total_ops = (q.version != old_version) +
                  (q.refcount_bits != (1ull << s->refcount_order));

    if (q.version > old_version) {
        p.cur_op = OP_UPGRADE;
        r = upgrade(bs, &p, err);
        if (r < 0)
            return r;
    }
    if (q.refcount_bits != (1ull << s->refcount_order)) {
        if (q.version < 3 && q.refcount_bits != 16)
            return err_set(err, -EINVAL, "Refcount widths other than 16 bits "
                           "require compatibility level 1.1 or above (use "
                           "compat=1.1 or greater)");
        uint32_t order = 0;
        while ((1ull << order) < q.refcount_bits)
            order++;
        p.cur_op = OP_REFCOUNT;
        r = qcow2_change_refcount_order(bs, order, amend_step, &p, err);
        if (r < 0)
            return r;
    }
    struct qcow2_header old = s->h;
    if (q.has_data_raw && !q.data_raw && s->data_raw) {
        s->h.autoclear &= ~QCOW2_AUTOCLEAR_DATA_RAW;
        s->data_raw = false;
    }
    if (q.has_data_file && q.data_file) {
        char *d = *q.data_file ? strdup(q.data_file) : NULL;
        free(s->x.data_file);
        s->x.data_file = d;
    }
    r = write_header_or_undo(bs, &old, err);
    if (r < 0)
        return r;
    if (q.has_backing_file || q.has_backing_fmt) {
        if (str_differs(q.backing_file, s->backing_name) ||
            str_differs(q.backing_fmt, s->x.backing_fmt))
            return err_set(err, -EINVAL, "Cannot amend the backing file\n"
                           "You can use 'qemu-img rebase' instead.");
    }
    bool lazy = (s->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    if (q.lazy != lazy) {
        old = s->h;
        if (q.lazy) {
            if (q.version < 3)
                return err_set(err, -EINVAL, "Lazy refcounts only supported "
                               "with compatibility level 1.1 and above (use "
                               "compat=1.1 or greater)");
            s->h.compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        } else {
            s->h.compat &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
            s->h.incompat &= ~QCOW2_INCOMPAT_DIRTY;
        }
        r = write_header_or_undo(bs, &old, err);
        if (r < 0)
            return r;
    }
    if (q.has_size && q.size) {
        r = bdev_truncate(bs, q.size, true, PREALLOC_OFF, err);
        if (r < 0)
            return r;
    }
    if (q.version < old_version) {
        p.cur_op = OP_DOWNGRADE;
        r = downgrade(bs, &p, err);
        if (r < 0)
            return r;
    }
    return 0;
}
