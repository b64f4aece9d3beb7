/* qcow2 driver: open (decode and validate the header, extensions and
 * tables), close, flush, header rewrites, the corrupt bit, and the driver
 * table.  See qcow2.h for what the driver supports. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define DEFAULT_L2_CACHE_MAX (32u << 20)
#define MIN_REFCOUNT_CACHE_CLUSTERS 4

int qcow2_barrier(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int r = bdev_flush(bs->file, err);
    if (r >= 0 && s->data_file)
        r = bdev_flush(s->data_file, err);
    return r;
}

static int qcow2_flush(struct bdev *bs, struct err *err)
{
    return qcow2_barrier(bs, err);
}

int qcow2_write_header(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *buf = malloc(s->cluster_size);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = qcow2_header_encode(&s->h, &s->x, s->backing_name, buf,
                                s->cluster_size, err);
    if (r >= 0)
        r = qcow2_meta_write(bs, QCOW2_OL_HEADER, 0, s->cluster_size, buf, err);
    free(buf);
    return r;
}

static int report_corrupt(struct bdev *bs, bool want_fatal, const char *fmt,
                          va_list ap)
{
    struct qcow2_state *s = qcow2_st(bs);
    bool fatal = want_fatal && !bs->read_only && (bs->flags & BDEV_O_RDWR);
    if (s->signaled && (!fatal || s->corrupt))
        return -EIO;
    fprintf(stderr, fatal ? "qcow2: Marking image as corrupt: " :
                            "qcow2: Image is corrupt: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "; further %scorruption events will be suppressed\n",
            fatal ? "" : "non-fatal ");
    s->signaled = true;
    if (!fatal || s->corrupt)
        return -EIO;
    s->corrupt = true;
    s->dead = true;
    if (s->h.version >= 3) {
        uint8_t be[8];
        struct err e2 = ERR_INIT;
        s->h.incompat |= QCOW2_INCOMPAT_CORRUPT;
        st_be64(be, s->h.incompat);
        /* Direct write: the overlap check refuses everything now. */
        if (bdev_pwrite(bs->file, 72, 8, be, &e2) >= 0)
            bdev_flush(bs->file, &e2);
    }
    return -EIO;
}

int qcow2_mark_corrupt(struct bdev *bs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = report_corrupt(bs, true, fmt, ap);
    va_end(ap);
    return r;
}

int qcow2_note_corrupt(struct bdev *bs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = report_corrupt(bs, false, fmt, ap);
    va_end(ap);
    return r;
}

static int qcow2_probe(struct bdev *file, const uint8_t *buf, size_t len,
                       const char *filename)
{
    (void)file;
    (void)filename;
    if (len >= 8 && ld_be32(buf) == QCOW2_MAGIC && ld_be32(buf + 4) >= 2)
        return 100;
    return 0;
}

static int read_cache_opts(struct bdev *bs, struct kvlist *opts,
                           uint64_t *l2_bytes, uint64_t *rc_bytes,
                           struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t l2 = 0, rc = 0, total = 0, entry = 0;
    bool has_l2 = kv_peek(opts, "l2-cache-size") != NULL;
    bool has_rc = kv_peek(opts, "refcount-cache-size") != NULL;
    bool has_total = kv_peek(opts, "cache-size") != NULL;
    bool has_entry = kv_peek(opts, "l2-cache-entry-size") != NULL;
    int r = kv_get_size(opts, "l2-cache-size", 0, &l2, err);
    if (r >= 0)
        r = kv_get_size(opts, "refcount-cache-size", 0, &rc, err);
    if (r >= 0)
        r = kv_get_size(opts, "cache-size", 0, &total, err);
    /* L2 tables are cached in slices of this size (whole by default). */
    if (r >= 0)
        r = kv_get_size(opts, "l2-cache-entry-size", s->cluster_size, &entry, err);
    if (r < 0)
        return r;
    uint64_t max_l2 = div_round_up(bs->size, s->l2_entries) * s->l2_entry_size;
    uint64_t min_rc = MIN_REFCOUNT_CACHE_CLUSTERS * s->cluster_size;
    max_l2 = align_up(max_l2 ? max_l2 : 1, s->cluster_size);
    if (has_total) {
        if (has_l2 && has_rc)
            return err_set(err, -EINVAL, "cache-size, l2-cache-size and "
                           "refcount-cache-size may not be set at the same time");
        if (has_l2 && l2 > total)
            return err_set(err, -EINVAL, "l2-cache-size may not exceed cache-size");
        if (has_rc && rc > total)
            return err_set(err, -EINVAL, "refcount-cache-size may not exceed "
                           "cache-size");
        if (has_l2)
            rc = total - l2;
        else if (has_rc)
            l2 = total - rc;
        else {
            l2 = total > min_rc ? min_u64(max_l2, total - min_rc) : 0;
            rc = total - l2;
        }
    } else {
        if (!has_l2)
            l2 = min_u64(max_l2, DEFAULT_L2_CACHE_MAX);
        if (!has_rc)
            rc = min_rc;
    }
    if (entry < 512 || entry > s->cluster_size || (entry & (entry - 1)))
        return err_set(err, -EINVAL, "L2 cache entry size must be a power of "
                       "two between 512 and the cluster size (%" PRIu64 ")",
                       s->cluster_size);
    /* A cache too small for every table of the disk defaults to small
     * slices, so that a miss reads and evicts less. */
    if (!has_entry && l2 < max_l2)
        entry = min_u64(s->cluster_size, 4096);
    s->l2_slice_size = entry;
    s->l2_slice_entries = entry / s->l2_entry_size;
    *l2_bytes = l2;
    *rc_bytes = rc;
    return 0;
}

/* Open options qemu accepts that change nothing here: their values are
 * still checked as qemu checks them. */
static int read_other_opts(struct bdev *bs, struct kvlist *opts,
                           struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    static const char *const bools[] = { "lazy-refcounts",
        "pass-discard-request", "pass-discard-snapshot", "pass-discard-other",
        "overlap-check.main-header", "overlap-check.active-l1",
        "overlap-check.active-l2", "overlap-check.refcount-table",
        "overlap-check.refcount-block", "overlap-check.snapshot-table",
        "overlap-check.inactive-l1", "overlap-check.inactive-l2",
        "overlap-check.bitmap-directory", NULL };
    uint64_t interval = 0;
    bool lazy = false, b;
    int r = 0;
    for (int i = 0; r >= 0 && bools[i]; i++)
        r = kv_get_bool(opts, bools[i], false, i ? &b : &lazy, err);
    /* qemu reads a negative number as its unsigned wrap-around. */
    const char *ci = kv_peek(opts, "cache-clean-interval");
    if (r >= 0 && ci && ci[0] == '-' && ci[1] >= '0' && ci[1] <= '9' &&
        strspn(ci + 1, "0123456789") == strlen(ci + 1)) {
        kv_get(opts, "cache-clean-interval");
        interval = strspn(ci + 1, "0") == strlen(ci + 1) ? 0 : UINT64_MAX;
    } else if (r >= 0) {
        r = kv_get_u64(opts, "cache-clean-interval", 0, &interval, err);
    }
    if (r < 0)
        return r;
    if (interval > UINT32_MAX)
        return err_set(err, -EINVAL, "Cache clean interval too big");
    if (lazy && s->h.version < 3)
        return err_set(err, -EINVAL, "Lazy refcounts require a qcow2 image "
                       "with at least qemu 1.1 compatibility level");
    static const char *const modes[] = { "none", "constant", "cached", "all" };
    const char *v1 = kv_get(opts, "overlap-check");
    const char *v2 = kv_get(opts, "overlap-check.template");
    if (v1 && v2 && strcmp(v1, v2))
        return err_set(err, -EINVAL, "Conflicting values for qcow2 options "
                       "'overlap-check' ('%s') and 'overlap-check.template' "
                       "('%s')", v1, v2);
    const char *v = v1 ? v1 : v2;
    bool ok = !v;
    for (int i = 0; v && i < 4; i++)
        ok |= strcmp(v, modes[i]) == 0;
    if (!ok)
        return err_set(err, -EINVAL, "Unsupported value '%s' for qcow2 option "
                       "'overlap-check'. Allowed are any of the following: "
                       "none, constant, cached, all", v);
    return 0;
}

static int load_l1(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t bytes = (uint64_t)s->l1_size * 8;
    s->l1 = calloc(s->l1_size ? s->l1_size : 1, 8);
    if (!s->l1)
        return err_set(err, -ENOMEM, "Could not allocate L1 table");
    if (!bytes)
        return 0;
    if (!range_within(s->l1_offset, bytes, bs->file->size))
        return err_set(err, -EINVAL, "Active L1 table offset invalid");
    uint8_t *raw = malloc(bytes);
    if (!raw)
        return err_set(err, -ENOMEM, "Could not allocate L1 table");
    int r = bdev_pread(bs->file, s->l1_offset, bytes, raw, err);
    for (uint32_t i = 0; r >= 0 && i < s->l1_size; i++)
        s->l1[i] = ld_be64(raw + (size_t)i * 8);
    free(raw);
    if (r < 0)
        err_prefix(err, "Could not read L1 table: ");
    return r;
}

/* Checks on the decoded header that need the cluster size. */
static int validate_header(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_header *h = &s->h;
    uint64_t cs = s->cluster_size;

    if (h->refcount_order > 6)
        return err_set(err, -EINVAL, "Reference count entry width too large; "
                       "may not exceed 64 bits");
    if (h->crypt_method > QCOW2_CRYPT_LUKS)
        return err_set(err, -EINVAL, "Unsupported encryption method %" PRIu32,
                       h->crypt_method);
    if (h->incompat & QCOW2_INCOMPAT_COMPRESSION) {
        if (h->compression_type == QCOW2_COMPRESS_ZLIB)
            return err_set(err, -EINVAL, "qcow2: Compression type incompatible "
                           "feature bit must not be set");
    } else if (h->compression_type != QCOW2_COMPRESS_ZLIB) {
        return err_set(err, -EINVAL, "qcow2: Compression type incompatible "
                       "feature bit must be set");
    }
    if (h->compression_type > QCOW2_COMPRESS_ZSTD)
        return err_set(err, -EINVAL, "qcow2: unknown compression type: %u",
                       h->compression_type);
    if (h->backing_file_offset) {
        if (h->backing_file_offset > cs ||
            h->backing_file_size > cs - h->backing_file_offset)
            return err_set(err, -EINVAL, "Invalid backing file offset");
        if (h->backing_file_size > QCOW2_MAX_BACKING_NAME)
            return err_set(err, -EINVAL, "Backing file name too long");
    }
    if (h->refcount_table_clusters == 0)
        return err_set(err, -EINVAL, "Image does not contain a reference count "
                       "table");
    if ((uint64_t)h->refcount_table_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
        return err_set(err, -EINVAL, "Reference count table too large");
    if (h->refcount_table_offset % cs || h->refcount_table_offset > INT64_MAX ||
        !range_within(h->refcount_table_offset,
                      (uint64_t)h->refcount_table_clusters * cs,
                      align_up(bs->file->size, cs)))
        return err_set(err, -EINVAL, "Reference count table offset invalid");
    if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(err, -EFBIG, "Active L1 table too large");
    if (h->l1_table_offset % cs || h->l1_table_offset > INT64_MAX)
        return err_set(err, -EINVAL, "Active L1 table offset invalid");
    uint64_t per_l1 = s->l2_entries * cs;
    if (div_round_up(h->size, per_l1) > INT32_MAX)
        return err_set(err, -EFBIG, "Image is too big");
    if (div_round_up(h->size, per_l1) > h->l1_size)
        return err_set(err, -EINVAL, "L1 table is too small");
    /* Opened for check, the excess is reported (and dropped by -r all). */
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS && !(bs->flags & BDEV_O_CHECK))
        return err_set(err, -EINVAL, "Snapshot table too large");
    return 0;
}

static int open_data_file(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    const char *opt = kv_get(opts, "data-file");
    if (!(s->h.incompat & QCOW2_INCOMPAT_DATA_FILE)) {
        if (s->h.autoclear & QCOW2_AUTOCLEAR_DATA_RAW)
            return err_set(err, -EINVAL, "data-file-raw requires a data file");
        if (opt)
            return err_set(err, -EINVAL, "'data-file' can only be set for "
                           "images with an external data file");
        return 0;
    }
    const char *name = opt ? opt : s->x.data_file;
    if (!name)
        return err_set(err, -EINVAL, "'data-file' is required for this image");
    char *path = bdev_resolve_backing(bs, name);
    if (!path)
        return err_set(err, -ENOMEM, "Out of memory");
    s->data_file = bdev_open_child_file(bs, path, bs->flags, err);
    free(path);
    if (!s->data_file && (bs->flags & BDEV_O_NO_IO)) {
        /* Metadata only (info): qemu-img shows the image without it. */
        err_clear(err);
        return 0;
    }
    if (!s->data_file)
        return err->code ? err->code : -EIO;
    s->data_raw = (s->h.autoclear & QCOW2_AUTOCLEAR_DATA_RAW) != 0;
    return 0;
}

static void qcow2_close(struct bdev *bs);

static int qcow2_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t first[QCOW2_V3_HEADER_LEN + 8] = { 0 };
    uint8_t *cl = NULL;
    bool rw = (bs->flags & BDEV_O_RDWR) && !bs->read_only;
    int r;

    uint64_t flen = bs->file->size;
    r = bdev_pread(bs->file, 0, min_u64(sizeof(first), flen), first, err);
    if (r < 0)
        goto fail;
    /* Like qemu, a short file reads as zero-padded. */
    r = qcow2_header_decode(first, flen >= 4 ? sizeof(first) : 0, &s->h, err);
    if (r < 0)
        goto fail;
    s->cluster_bits = s->h.cluster_bits;
    s->cluster_size = 1ull << s->cluster_bits;
    s->ext_l2 = (s->h.incompat & QCOW2_INCOMPAT_EXTL2) != 0;
    s->l2_entry_size = s->ext_l2 ? 16 : 8;
    s->l2_entries = s->cluster_size / s->l2_entry_size;
    s->l2_bits = s->cluster_bits - (s->ext_l2 ? 4 : 3);
    s->subcluster_size = s->ext_l2 ? s->cluster_size / 32 : s->cluster_size;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->coffset_mask = (1ull << s->csize_shift) - 1;
    s->refcount_order = s->h.refcount_order;

    /* The whole first cluster holds header, extensions and backing name. */
    cl = calloc(1, s->cluster_size);
    if (!cl) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto fail;
    }
    r = bdev_pread(bs->file, 0, min_u64(s->cluster_size, flen), cl, err);
    if (r < 0)
        goto fail;
    if (s->h.header_length > 104) {
        size_t extra = min_u64(s->h.header_length - 105, sizeof(s->h.extra_fields));
        memcpy(s->h.extra_fields, cl + 105, extra);
    }
    size_t ext_end = s->h.backing_file_offset && s->h.backing_file_offset < s->cluster_size ?
                     (size_t)s->h.backing_file_offset : (size_t)s->cluster_size;
    if (s->h.header_length < ext_end) {
        r = qcow2_exts_decode(cl, s->h.header_length, ext_end,
                              s->h.crypt_method, &s->x, err);
        if (r < 0)
            goto fail;
    }
    uint64_t unknown = s->h.incompat & ~QCOW2_INCOMPAT_KNOWN;
    if (unknown) {
        qcow2_report_unknown_incompat(&s->x, unknown, err);
        r = -ENOTSUP;
        goto fail;
    }
    if (s->ext_l2 && s->subcluster_size < 512) {
        r = err_set(err, -EINVAL, "Unsupported subcluster size: %" PRIu64,
                    s->subcluster_size);
        goto fail;
    }
    r = validate_header(bs, err);
    if (r < 0)
        goto fail;
    if ((s->h.incompat & QCOW2_INCOMPAT_CORRUPT) && rw &&
        !(bs->flags & BDEV_O_CHECK)) {
        r = err_set(err, -EACCES, "qcow2: Image is corrupt; cannot be opened "
                    "read/write");
        goto fail;
    }
    if (s->h.crypt_method && !(bs->flags & BDEV_O_NO_IO)) {
        r = err_set(err, -ENOTSUP, "Parameter 'encrypt.key-secret' is "
                    "required for cipher");
        goto fail;
    }
    if (s->h.crypt_method == QCOW2_CRYPT_LUKS) {
        /* The LUKS header is checked at open, as qemu does. */
        struct json_object *luks = NULL;
        r = qcow2_luks_info(bs, &luks, err);
        json_object_put(luks);
        if (r < 0)
            goto fail;
    }
    if (s->h.backing_file_offset) {
        s->backing_name = malloc(s->h.backing_file_size + 1);
        if (!s->backing_name) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto fail;
        }
        memcpy(s->backing_name, cl + s->h.backing_file_offset,
               s->h.backing_file_size);
        s->backing_name[s->h.backing_file_size] = 0;
    }
    s->rb_entries = s->cluster_size * 8 >> s->refcount_order;
    s->refcount_max = s->refcount_order == 6 ? UINT64_MAX :
                      (1ull << (1u << s->refcount_order)) - 1;
    s->l1_size = s->h.l1_size;
    s->l1_offset = s->h.l1_table_offset;
    bs->size = s->h.size;
    bs->align = 1;

    uint64_t l2c = 0, rcc = 0;
    r = read_cache_opts(bs, opts, &l2c, &rcc, err);
    if (r < 0)
        goto fail;
    r = read_other_opts(bs, opts, err);
    if (r < 0)
        goto fail;
    if (qcow2_cache_init(&s->l2_cache, (int)min_u64(l2c / s->l2_slice_size, 1 << 20),
                         s->l2_slice_size) < 0 ||
        qcow2_cache_init(&s->rb_cache, (int)min_u64(rcc / s->cluster_size, 1 << 20),
                         s->cluster_size) < 0) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto fail;
    }
    if ((r = load_l1(bs, err)) < 0 || (r = qcow2_refcount_load(bs, err)) < 0 ||
        (r = qcow2_snapshots_load(bs, err)) < 0 ||
        (r = open_data_file(bs, opts, err)) < 0)
        goto fail;
    if (s->backing_name && s->data_raw) {
        r = err_set(err, -EINVAL, "data-file-raw cannot be used with a "
                    "backing file");
        goto fail;
    }
    if (s->backing_name) {
        bs->backing_file = strdup(s->backing_name);
        if (s->x.backing_fmt)
            bs->backing_fmt = strdup(s->x.backing_fmt);
    }
    s->corrupt = (s->h.incompat & QCOW2_INCOMPAT_CORRUPT) != 0;
    if (rw && (s->h.autoclear & ~QCOW2_AUTOCLEAR_KNOWN)) {
        s->h.autoclear &= QCOW2_AUTOCLEAR_KNOWN;
        r = qcow2_write_header(bs, err);
        if (r < 0)
            goto fail;
    }
    /* Refcounts of a dirty image (lazy refcounts) may be stale: repair
     * them before any allocation relies on them, as qemu does. */
    if ((s->h.incompat & QCOW2_INCOMPAT_DIRTY) && rw &&
        !(bs->flags & BDEV_O_CHECK)) {
        struct check_result res;
        memset(&res, 0, sizeof(res));
        r = qcow2_check(bs, &res, CHECK_FIX_LEAKS | CHECK_FIX_ERRORS, err);
        if (r >= 0 && res.check_errors)
            r = -EIO;
        if (r < 0) {
            char msg[ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", err->msg);
            err_clear(err);
            r = err_set(err, r, "Could not repair dirty image: %s",
                        msg[0] ? msg : strerror(-r));
            goto fail;
        }
    }
    free(cl);
    return 0;
fail:
    free(cl);
    qcow2_close(bs);
    return r;
}

static void qcow2_close(struct bdev *bs)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (!s)
        return;
    if (s->bm_live) {
        struct err e = ERR_INIT;
        if (qcow2_bitmaps_live_store(bs, &e) < 0)
            fprintf(stderr, "%s: Failed to store dirty bitmaps: %s\n",
                    program_invocation_short_name, e.msg);
    }
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    qcow2_snapshots_free(s);
    qcow2_exts_free(&s->x);
    free(s->backing_name);
    free(s->l1);
    free(s->rt);
    free(s->cbuf);
    free(s->cin);
    bdev_close(s->data_file);
    memset(s, 0, sizeof(*s));
}

static int qcow2_change_backing(struct bdev *bs, const char *file,
                                const char *fmt, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (s->data_raw && file && *file)
        return err_set(err, -EINVAL, "Cannot use a backing file with "
                       "data-file-raw");
    char *nb = file && *file ? strdup(file) : NULL;
    char *nf = fmt && *fmt && nb ? strdup(fmt) : NULL;
    char *ob = s->backing_name, *of = s->x.backing_fmt;
    s->backing_name = nb;
    s->x.backing_fmt = nf;
    int r = qcow2_write_header(bs, err);
    if (r < 0) {
        s->backing_name = ob;
        s->x.backing_fmt = of;
        free(nb);
        free(nf);
        return r;
    }
    free(ob);
    free(of);
    return 0;
}

/* Guest-visible changes set the bits of the bitmaps that track writes
 * (whether or not the change succeeded, as qemu does). */
static int drv_write(struct bdev *bs, uint64_t off, uint64_t len,
                     const void *buf, struct err *err)
{
    int r = qcow2_write(bs, off, len, buf, err);
    qcow2_bitmaps_dirty(bs, off, len);
    return r;
}

static int drv_copy_range_to(struct bdev *bs, uint64_t off, struct bdev *src,
                             uint64_t soff, uint64_t len, struct err *err)
{
    int r = qcow2_copy_range_to(bs, off, src, soff, len, err);
    qcow2_bitmaps_dirty(bs, off, len);
    return r;
}

static int drv_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                            unsigned flags, struct err *err)
{
    int r = qcow2_write_zeroes(bs, off, len, flags, err);
    qcow2_bitmaps_dirty(bs, off, len);
    return r;
}

static int drv_write_compressed(struct bdev *bs, uint64_t off, uint64_t len,
                                const void *buf, struct err *err)
{
    int r = qcow2_write_compressed(bs, off, len, buf, err);
    qcow2_bitmaps_dirty(bs, off, len);
    return r;
}

static int drv_write_compressed_data(struct bdev *bs, uint64_t off,
                                     const void *cdata, uint64_t clen,
                                     struct err *err)
{
    int r = qcow2_write_compressed_data(bs, off, cdata, clen, err);
    qcow2_bitmaps_dirty(bs, off, qcow2_st(bs)->cluster_size);
    return r;
}

static int drv_discard(struct bdev *bs, uint64_t off, uint64_t len,
                       struct err *err)
{
    int r = qcow2_discard(bs, off, len, err);
    qcow2_bitmaps_dirty(bs, off, len);
    return r;
}

const struct driver drv_qcow2 = {
    .name = "qcow2",
    .kind = DRV_FORMAT,
    .caps = DRV_BACKING | DRV_ZERO_INIT | DRV_PARALLEL_READ,
    .priv_size = sizeof(struct qcow2_state),
    .create_opts = qcow2_create_opts,
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .create = qcow2_create,
    .read = qcow2_read,
    .write = drv_write,
    .write_zeroes = drv_write_zeroes,
    .write_compressed = drv_write_compressed,
    .compress_cluster = qcow2_compress_cluster,
    .write_compressed_data = drv_write_compressed_data,
    .discard = drv_discard,
    .copy_range_to = drv_copy_range_to,
    .flush = qcow2_flush,
    .block_status = qcow2_block_status,
    .get_info = qcow2_get_info,
    .change_backing_file = qcow2_change_backing,
    .truncate = qcow2_truncate,
    .measure = qcow2_measure,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_load = qcow2_snapshot_load,
    .check = qcow2_check,
    .bitmap_apply = qcow2_bitmap_apply,
    .amend = qcow2_amend,
    .make_empty = qcow2_make_empty,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_apply = qcow2_snapshot_apply,
    .snapshot_delete = qcow2_snapshot_delete,
};
