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

/* ---- version changes ---- */

static int upgrade(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    /* v3 snapshot entries carry the disk size: rewrite the table first. */
    int r = qcow2_snapshot_table_rewrite(bs, err);
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
    return 0;
}

/* Turn zero clusters of one L1 table into data clusters (or unallocated
 * ones where nothing shows through). */
static int expand_l1(struct bdev *bs, uint64_t l1_off, uint32_t l1_size,
                     const uint64_t *mem_l1, uint8_t *zeros, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *t = malloc(s->cluster_size);
    uint8_t *raw = malloc((size_t)l1_size * 8 + 8);
    int r = 0;
    if (!t || !raw) {
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
        if (!l2)
            continue;
        if (l2 % s->cluster_size) {
            r = err_set(err, -EIO, "L2 table offset unaligned");
            goto out;
        }
        r = bdev_pread(bs->file, l2, s->cluster_size, t, err);
        if (r < 0)
            goto out;
        for (uint64_t j = 0; j < s->l2_entries; j++) {
            uint64_t e = ld_be64(t + j * 8);
            enum qcow2_ctype ty = qcow2_l2_classify(e, false, false);
            if (ty == QCOW2_C_ZERO_ALLOC) {
                uint64_t host = e & QCOW2_OFFSET_MASK;
                r = bdev_pwrite(bs->file, host, s->cluster_size, zeros, err);
                if (r < 0)
                    goto out;
                st_be64(t + j * 8, e & ~QCOW2_OFLAG_ZERO);
                dirty = true;
            } else if (ty == QCOW2_C_ZERO_PLAIN) {
                if (!bs->backing_file) {
                    st_be64(t + j * 8, 0);
                } else {
                    uint64_t host;
                    r = qcow2_alloc_clusters(bs, 1, &host, err);
                    if (r >= 0)
                        r = bdev_pwrite(bs->file, host, s->cluster_size,
                                        zeros, err);
                    if (r < 0)
                        goto out;
                    st_be64(t + j * 8, host | QCOW2_OFLAG_COPIED);
                }
                dirty = true;
            }
        }
        if (dirty) {
            r = qcow2_barrier(bs, err);
            if (r >= 0)
                r = qcow2_meta_write(bs, QCOW2_OL_L2, l2, s->cluster_size, t,
                                     err);
            qcow2_cache_drop(&s->l2_cache, l2);
            if (r < 0)
                goto out;
        }
    }
out:
    free(t);
    free(raw);
    return r;
}

static int expand_zero_clusters(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *zeros = calloc(1, s->cluster_size);
    if (!zeros)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = expand_l1(bs, s->l1_offset, s->l1_size, s->l1, zeros, err);
    for (int i = 0; r >= 0 && i < s->nb_snapshots; i++)
        r = expand_l1(bs, s->snapshots[i].l1_table_offset,
                      s->snapshots[i].l1_size, NULL, zeros, err);
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

static int downgrade(struct bdev *bs, struct err *err)
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
    r = expand_zero_clusters(bs, err);
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
    int r;
    (void)force;
    (void)progress;
    (void)opaque;

    if (s->corrupt)
        return err_set(err, -EACCES, "Image is corrupt; cannot be amended");
    r = parse_req(bs, opts, &q, err);
    if (r < 0)
        return r;
    int old_version = (int)s->h.version;

    if (q.version > old_version) {
        r = upgrade(bs, err);
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
        r = qcow2_change_refcount_order(bs, order, err);
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
        r = downgrade(bs, err);
        if (r < 0)
            return r;
    }
    return 0;
}
