/* qcow2 create and measure: the create options (in the order qemu-img
 * prints them in its "Formatting" line, with its help texts and
 * defaults), their validation with qemu-img's messages, the initial
 * layout (header, refcount table, one refcount block, L1 table), and
 * preallocation; `measure` computes qemu-img's sizes for qcow2 targets. */
#include "fmt/qcow2/qcow2.h"
#include "block/copy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

const struct opt_desc qcow2_create_opts[] = {
    { "encryption", OPT_BOOL, "Encrypt the image with format 'aes'. (Deprecated "
      "in favor of encrypt.format=aes)", NULL },
    { "encrypt.format", OPT_STRING, "Encrypt the image, format choices: 'aes', 'luks'", NULL },
    { "encrypt.key-secret", OPT_STRING, "ID of secret providing qcow AES key or LUKS passphrase", NULL },
    { "encrypt.cipher-alg", OPT_STRING, "Name of encryption cipher algorithm", NULL },
    { "encrypt.cipher-mode", OPT_STRING, "Name of encryption cipher mode", NULL },
    { "encrypt.ivgen-alg", OPT_STRING, "Name of IV generator algorithm", NULL },
    { "encrypt.ivgen-hash-alg", OPT_STRING, "Name of IV generator hash algorithm", NULL },
    { "encrypt.hash-alg", OPT_STRING, "Name of encryption hash algorithm", NULL },
    { "encrypt.iter-time", OPT_NUMBER, "Time to spend in PBKDF in milliseconds", NULL },
    { "cluster_size", OPT_SIZE, "qcow2 cluster size", "65536" },
    { "extended_l2", OPT_BOOL, "Extended L2 tables", "off" },
    { "preallocation", OPT_STRING, "Preallocation mode (allowed values: off, "
      "metadata, falloc, full)", NULL },
    { "compression_type", OPT_STRING, "Compression method used for image "
      "cluster compression", "zlib" },
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "compat", OPT_STRING, "Compatibility level (v2 [0.10] or v3 [1.1])", NULL },
    { "backing_file", OPT_STRING, "File name of a base image", NULL },
    { "backing_fmt", OPT_STRING, "Image format of the base image", NULL },
    { "data_file", OPT_STRING, "File name of an external data file", NULL },
    { "data_file_raw", OPT_BOOL, "The external data file must stay valid as a "
      "raw image", NULL },
    { "lazy_refcounts", OPT_BOOL, "Postpone refcount updates", "off" },
    { "refcount_bits", OPT_NUMBER, "Width of a reference count entry in bits", "16" },
    { NULL, 0, NULL, NULL },
};

#define V3_HINT "(use version=v3 or greater)"

struct create_params {
    uint64_t size, cluster_size;
    int version;
    bool ext_l2, lazy, data_raw;
    uint32_t refcount_order;
    int compression;
    enum prealloc prealloc;
    const char *backing_file, *backing_fmt, *data_file;
    const char *encrypt_format, *key_secret;
};

/* Parse and validate every option; the messages are qemu-img's. */
static int parse_params(struct kvlist *o, struct create_params *p, bool need_size,
                        struct err *err)
{
    bool enc = false, has_enc = kv_peek(o, "encryption") != NULL;
    uint64_t rb = 16, iter;
    int r;
    memset(p, 0, sizeof(*p));
    p->version = 3;
    r = kv_get_bool(o, "encryption", false, &enc, err);
    if (r < 0)
        return r;
    p->encrypt_format = kv_get(o, "encrypt.format");
    if (has_enc && p->encrypt_format)
        return err_set(err, -EINVAL, "'encrypt.format' and its alias "
                       "'encryption' can't be used at the same time");
    if (enc)
        p->encrypt_format = "aes";
    p->key_secret = kv_get(o, "encrypt.key-secret");
    kv_get(o, "encrypt.cipher-alg");
    kv_get(o, "encrypt.cipher-mode");
    kv_get(o, "encrypt.ivgen-alg");
    kv_get(o, "encrypt.ivgen-hash-alg");
    kv_get(o, "encrypt.hash-alg");
    if ((r = kv_get_u64(o, "encrypt.iter-time", 2000, &iter, err)) < 0)
        return r;
    if ((r = kv_get_size(o, "size", 0, &p->size, err)) < 0)
        return r;
    (void)need_size;
    p->size = align_up(p->size, 512);
    if ((r = kv_get_size(o, "cluster_size", 65536, &p->cluster_size, err)) < 0 ||
        (r = kv_get_bool(o, "extended_l2", false, &p->ext_l2, err)) < 0 ||
        (r = kv_get_bool(o, "lazy_refcounts", false, &p->lazy, err)) < 0 ||
        (r = kv_get_bool(o, "data_file_raw", false, &p->data_raw, err)) < 0 ||
        (r = kv_get_u64(o, "refcount_bits", 16, &rb, err)) < 0)
        return r;
    const char *compat = kv_get(o, "compat");
    if (compat) {
        if (!strcmp(compat, "0.10") || !strcmp(compat, "v2"))
            p->version = 2;
        else if (!strcmp(compat, "1.1") || !strcmp(compat, "v3"))
            p->version = 3;
        else
            return err_set(err, -EINVAL, "Parameter 'version' does not accept "
                           "value '%s'", compat);
    }
    const char *ct = kv_get(o, "compression_type");
    if (!ct || !strcmp(ct, "zlib"))
        p->compression = QCOW2_COMPRESS_ZLIB;
    else if (!strcmp(ct, "zstd"))
        p->compression = QCOW2_COMPRESS_ZSTD;
    else
        return err_set(err, -EINVAL, "Parameter 'compression-type' does not "
                       "accept value '%s'", ct);
    const char *pa = kv_get(o, "preallocation");
    if (pa && prealloc_parse(pa, &p->prealloc, NULL) < 0)
        return err_set(err, -EINVAL, "Parameter 'preallocation' does not "
                       "accept value '%s'", pa);
    if (p->encrypt_format && strcmp(p->encrypt_format, "aes") &&
        strcmp(p->encrypt_format, "luks"))
        return err_set(err, -EINVAL, "Parameter 'format' does not accept "
                       "value '%s'", p->encrypt_format);
    p->backing_file = kv_get(o, "backing_file");
    p->backing_fmt = kv_get(o, "backing_fmt");
    p->data_file = kv_get(o, "data_file");

    uint64_t cs = p->cluster_size;
    if (!is_pow2(cs) || cs < 512 || cs > (2u << 20))
        return err_set(err, -EINVAL, "Cluster size must be a power of two "
                       "between 512 and 2048k");
    if (p->ext_l2) {
        if (p->version < 3)
            return err_set(err, -EINVAL, "Extended L2 entries are only "
                           "supported with compatibility level 1.1 and above "
                           V3_HINT);
        if (cs < 16384)
            return err_set(err, -EINVAL, "Extended L2 entries are only "
                           "supported with cluster sizes of at least 16384 bytes");
    }
    if (p->encrypt_format && !p->key_secret)
        return err_set(err, -EINVAL, "Parameter 'encrypt.key-secret' is "
                       "required for cipher");
    uint32_t cb = (uint32_t)__builtin_ctzll(cs);
    uint64_t l2e = cs / (p->ext_l2 ? 16 : 8);
    uint64_t l1 = div_round_up(p->size, l2e * cs);
    if (l1 * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(err, -EINVAL, "The image size is too large for file "
                       "format 'qcow2' (try using a larger cluster size)");
    (void)cb;
    if (p->backing_file && p->prealloc != PREALLOC_OFF && !p->ext_l2)
        return err_set(err, -EINVAL, "Backing file and preallocation can only "
                       "be used at the same time if extended_l2 is on");
    if (p->backing_fmt && !p->backing_file)
        return err_set(err, -EINVAL, "Backing format cannot be used without "
                       "backing file");
    if (p->lazy && p->version < 3)
        return err_set(err, -EINVAL, "Lazy refcounts only supported with "
                       "compatibility level 1.1 and above " V3_HINT);
    if (rb > 64 || !is_pow2(rb))
        return err_set(err, -EINVAL, "Refcount width must be a power of two "
                       "and may not exceed 64 bits");
    if (p->version < 3 && rb != 16)
        return err_set(err, -EINVAL, "Different refcount widths than 16 bits "
                       "require compatibility level 1.1 or above " V3_HINT);
    p->refcount_order = (uint32_t)__builtin_ctzll(rb);
    if (p->data_file && p->version < 3)
        return err_set(err, -EINVAL, "External data files are only supported "
                       "with compatibility level 1.1 and above " V3_HINT);
    if (p->data_raw && !p->data_file)
        return err_set(err, -EINVAL, "data-file-raw requires data-file");
    if (p->data_raw && p->backing_file)
        return err_set(err, -EINVAL, "Backing file and data-file-raw cannot be "
                       "used at the same time");
    if (p->compression != QCOW2_COMPRESS_ZLIB && p->version < 3)
        return err_set(err, -EINVAL, "Non-zlib compression type is only "
                       "supported with compatibility level 1.1 and above "
                       V3_HINT);
    return 0;
}

/* Header cluster, refcount table and one refcount block counting the
 * first three clusters. */
static int write_initial(struct bdev *file, const struct create_params *p,
                         struct err *err)
{
    uint64_t cs = p->cluster_size;
    struct qcow2_header h = { 0 };
    struct qcow2_exts x = { 0 };
    uint8_t *buf = calloc(3, cs);
    int r;
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    h.version = (uint32_t)p->version;
    h.cluster_bits = (uint32_t)__builtin_ctzll(cs);
    h.size = 0;     /* set with the L1 table */
    h.refcount_table_offset = cs;
    h.refcount_table_clusters = 1;
    h.refcount_order = p->refcount_order;
    if (p->version >= 3) {
        h.header_length = 112;
        h.compression_type = (uint8_t)p->compression;
        if (p->compression != QCOW2_COMPRESS_ZLIB)
            h.incompat |= QCOW2_INCOMPAT_COMPRESSION;
        if (p->ext_l2)
            h.incompat |= QCOW2_INCOMPAT_EXTL2;
        if (p->data_file)
            h.incompat |= QCOW2_INCOMPAT_DATA_FILE;
        if (p->data_raw)
            h.autoclear |= QCOW2_AUTOCLEAR_DATA_RAW;
        if (p->lazy)
            h.compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        x.feature_table = (uint8_t *)qcow2_default_feature_table(&x.feature_table_len);
    }
    x.backing_fmt = (char *)p->backing_fmt;
    x.data_file = (char *)p->data_file;
    r = qcow2_header_encode(&h, &x, p->backing_file, buf, cs, err);
    if (r < 0)
        goto out;
    st_be64(buf + cs, 2 * cs);
    uint8_t *rb = buf + 2 * cs;
    for (int i = 0; i < 3; i++)
        qcow2_rb_set(rb, (uint64_t)i, p->refcount_order, 1);
    r = bdev_truncate(file, 3 * cs, false, PREALLOC_OFF, err);
    if (r >= 0)
        r = bdev_pwrite(file, 0, 3 * cs, buf, err);
out:
    free(buf);
    return r;
}

/* Allocate and write the L1 table, then point the header at it. */
static int create_l1(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t per_l1 = s->l2_entries * s->cluster_size;
    uint32_t n = (uint32_t)div_round_up(bs->size, per_l1);
    uint64_t off = 0;
    int r;
    if (!n)
        return qcow2_write_header(bs, err);
    uint64_t bytes = (uint64_t)n * 8;
    r = qcow2_alloc_clusters(bs, div_round_up(bytes, s->cluster_size), &off, err);
    if (r < 0)
        return r;
    uint64_t *l1 = calloc(n, 8);
    uint8_t *z = calloc(1, bytes);
    if (!l1 || !z) {
        free(l1);
        free(z);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    r = qcow2_ensure_size(bs->file, off + bytes, err);
    if (r >= 0)
        r = bdev_pwrite(bs->file, off, bytes, z, err);
    free(z);
    free(s->l1);
    s->l1 = l1;
    s->l1_size = n;
    s->l1_offset = off;
    s->h.l1_size = n;
    s->h.l1_table_offset = off;
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r >= 0)
        r = qcow2_write_header(bs, err);
    return r;
}

/* Make the preallocated data area real (falloc) or write it (full). */
int qcow2_prealloc_data(struct bdev *bs, uint64_t off, enum prealloc mode,
                        struct err *err)
{
    while (off < bs->size) {
        struct bstatus st;
        /* The driver's own status: callers may hold the node lock. */
        memset(&st, 0, sizeof(st));
        int r = qcow2_block_status(bs, off, bs->size - off, &st, err);
        if (r < 0)
            return r;
        if (st.flags & BS_OFFSET_VALID) {
            struct bdev *node = st.file;
            uint64_t len = align_up(st.len, 512);
            r = qcow2_ensure_size(node, st.host_off + len, err);
            if (r >= 0 && mode == PREALLOC_FULL) {
                uint8_t *z = calloc(1, 1 << 20);
                if (!z)
                    return err_set(err, -ENOMEM, "Out of memory");
                for (uint64_t p = 0; r >= 0 && p < len; p += 1 << 20)
                    r = bdev_pwrite(node, st.host_off + p,
                                    min_u64(1 << 20, len - p), z, err);
                free(z);
            } else if (r >= 0) {
                r = bdev_pwrite_zeroes(node, st.host_off, len, 0, err);
            }
            if (r < 0)
                return r;
        }
        off += st.len;
    }
    return 0;
}

int qcow2_create(const char *filename, struct kvlist *opts, struct err *err)
{
    struct create_params p;
    struct bdev *file = NULL, *bs = NULL, *df = NULL;
    int r = parse_params(opts, &p, true, err);
    if (r < 0)
        return r;
    if (p.encrypt_format)
        return err_set(err, -ENOTSUP, "qcow2: encrypted images are not "
                       "supported yet");
    /* The protocol gets only its own tuning options: size and
     * preallocation are handled here. */
    struct kvlist fopts = KVLIST_INIT;
    const char *v;
    if ((v = kv_peek(opts, "nocow")))
        kv_set(&fopts, "nocow", v);
    if ((v = kv_peek(opts, "extent_size_hint")))
        kv_set(&fopts, "extent_size_hint", v);
    r = bdev_create_file(filename, &fopts, err);
    kv_free(&fopts);
    if (r < 0)
        return r;
    file = bdev_open_file(filename, BDEV_O_RDWR, err);
    if (!file)
        return err->code ? err->code : -EIO;
    if (file->size) {
        r = bdev_truncate(file, 0, true, PREALLOC_OFF, err);
        if (r < 0)
            goto out;
    }
    if (p.data_file) {
        struct kvlist dopts = KVLIST_INIT;
        r = bdev_create_file(p.data_file, &dopts, err);
        kv_free(&dopts);
        if (r < 0)
            goto out;
        df = bdev_open_file(p.data_file, BDEV_O_RDWR, err);
        if (!df) {
            r = err->code ? err->code : -EIO;
            goto out;
        }
        r = bdev_truncate(df, p.size, true,
                          p.prealloc == PREALLOC_METADATA ? PREALLOC_OFF : p.prealloc,
                          err);
        bdev_close(df);
        if (r < 0)
            goto out;
    }
    r = write_initial(file, &p, err);
    bdev_close(file);
    file = NULL;
    if (r < 0)
        return r;

    struct bdev_open_args a = { .fmt = "qcow2",
                                .flags = BDEV_O_RDWR | BDEV_O_NO_BACKING | BDEV_O_NO_LOCK };
    bs = bdev_open(filename, &a, NULL, err);
    if (!bs)
        return err->code ? err->code : -EIO;
    bs->size = p.size;
    qcow2_st(bs)->h.size = p.size;
    r = create_l1(bs, err);
    if (r >= 0 && p.prealloc != PREALLOC_OFF) {
        r = qcow2_preallocate(bs, 0, bs->size, err);
        if (r >= 0 && p.prealloc != PREALLOC_METADATA && !p.data_file)
            r = qcow2_prealloc_data(bs, 0, p.prealloc, err);
    }
    if (r >= 0)
        r = bdev_flush(bs, err);
out:
    bdev_close(bs);
    bdev_close(file);
    return r < 0 ? r : 0;
}

uint64_t qcow2_refcount_metadata_size(uint64_t clusters, uint64_t cs,
                                      uint32_t order, bool generous)
{
    uint64_t per_table_cluster = cs / 8;
    uint64_t per_block = cs * 8 >> order;
    uint64_t table = 0, blocks = 0, n = 0, last;
    do {
        last = n;
        blocks = div_round_up(clusters + table + blocks, per_block);
        table = div_round_up(blocks, per_table_cluster);
        n = clusters + blocks + table;
        if (n == last && generous) {
            clusters += div_round_up(table, 2);
            n = 0;
            generous = false;
        }
    } while (n != last);
    return (blocks + table) * cs;
}

uint64_t qcow2_prealloc_size(uint64_t total, uint64_t cs, uint32_t order,
                             bool ext_l2)
{
    uint64_t aligned = align_up(total, cs), meta = cs;
    uint64_t esz = ext_l2 ? 16 : 8;
    uint64_t nl2e = align_up(aligned / cs, cs / esz);
    meta += nl2e * esz;
    uint64_t nl1e = align_up(nl2e * esz / cs, cs / 8);
    meta += nl1e * 8;
    meta += qcow2_refcount_metadata_size((meta + aligned) / cs, cs, order, false);
    return meta + aligned;
}

int qcow2_measure(struct kvlist *opts, struct bdev *in, uint64_t size,
                  struct measure_info *out, struct err *err)
{
    struct create_params p;
    int r = parse_params(opts, &p, false, err);
    if (r < 0)
        return r;
    uint64_t cs = p.cluster_size, required = 0, virt, bitmaps = 0;
    virt = align_up(in ? in->size : size, cs);
    if (in) {
        if (p.backing_file) {
            required = virt;
        } else {
            uint64_t off = 0, ssize = in->size;
            while (off < ssize) {
                struct bstatus st;
                /* completed as qemu-img's (holes in a flat file are zero) */
                r = bdev_status_above(in, off, ssize - off, &st, err);
                if (r < 0)
                    return r;
                uint64_t pnum = st.len;
                if (!(st.flags & BS_ZERO) &&
                    (st.flags & (BS_DATA | BS_ALLOCATED)) == (BS_DATA | BS_ALLOCATED)) {
                    pnum = align_up(off + pnum, cs) - off;
                    required += off % cs + pnum;
                }
                off += pnum;
            }
        }
        if (p.version >= 3 && in->drv && !strcmp(in->drv->name, "qcow2")) {
            struct qcow2_bitmap_info *bm = NULL;
            int n = 0;
            struct qcow2_state *is = qcow2_st(in);
            out->has_bitmaps = is->h.version >= 3;
            if (qcow2_bitmaps_read(in, &bm, &n, err) < 0)
                return err->code;
            uint64_t dir = 0;
            for (int i = 0; i < n; i++) {
                uint64_t gran = 1ull << bm[i].granularity_bits;
                uint64_t bits = div_round_up(in->size, gran);
                uint64_t bytes = div_round_up(bits, 8);
                uint64_t clusters = div_round_up(bytes, cs);
                bitmaps += clusters * cs + align_up(clusters * 8, cs);
                dir += align_up(strlen(bm[i].name) + 24, 8);
                free(bm[i].name);
            }
            free(bm);
            bitmaps += align_up(dir, cs);
        }
    }
    if (p.prealloc == PREALLOC_FULL || p.prealloc == PREALLOC_FALLOC)
        required = virt;
    out->fully_allocated = qcow2_prealloc_size(virt, cs, p.refcount_order, p.ext_l2);
    out->required = out->fully_allocated - virt + required;
    out->bitmaps = bitmaps;
    return 0;
}
