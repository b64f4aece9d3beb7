/* qcow2 header: decoding and encoding of the fixed header, the header
 * extensions and the backing file name (spec sections "Header" and
 * "Header extensions").  Unknown extensions are kept and written back. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

int qcow2_header_decode(const uint8_t *buf, size_t len, struct qcow2_header *h,
                        struct err *err)
{
    memset(h, 0, sizeof(*h));
    if (len < QCOW2_V3_HEADER_LEN || ld_be32(buf) != QCOW2_MAGIC)
        return err_set(err, -EINVAL, "Image is not in qcow2 format");
    h->version = ld_be32(buf + 4);
    if (h->version < 2 || h->version > 3)
        return err_set(err, -ENOTSUP, "Unsupported qcow2 version %" PRIu32,
                       h->version);
    h->backing_file_offset = ld_be64(buf + 8);
    h->backing_file_size = ld_be32(buf + 16);
    h->cluster_bits = ld_be32(buf + 20);
    h->size = ld_be64(buf + 24);
    h->crypt_method = ld_be32(buf + 32);
    h->l1_size = ld_be32(buf + 36);
    h->l1_table_offset = ld_be64(buf + 40);
    h->refcount_table_offset = ld_be64(buf + 48);
    h->refcount_table_clusters = ld_be32(buf + 56);
    h->nb_snapshots = ld_be32(buf + 60);
    h->snapshots_offset = ld_be64(buf + 64);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return err_set(err, -EINVAL, "Unsupported cluster size: 2^%" PRIu32,
                       h->cluster_bits);
    uint64_t cs = 1ull << h->cluster_bits;
    if (h->version == 2) {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LEN;
        return 0;
    }
    h->incompat = ld_be64(buf + 72);
    h->compat = ld_be64(buf + 80);
    h->autoclear = ld_be64(buf + 88);
    h->refcount_order = ld_be32(buf + 96);
    h->header_length = ld_be32(buf + 100);
    if (h->header_length < QCOW2_V3_HEADER_LEN)
        return err_set(err, -EINVAL, "qcow2 header too short");
    if (h->header_length > cs)
        return err_set(err, -EINVAL, "qcow2 header exceeds cluster size");
    if (h->header_length > 104) {
        if (len < 105)
            return err_set(err, -EINVAL, "qcow2 header too short");
        h->compression_type = buf[104];
        size_t extra = min_u64(h->header_length, len) - 105;
        if (extra > sizeof(h->extra_fields))
            extra = sizeof(h->extra_fields);
        memcpy(h->extra_fields, buf + 105, extra);
    }
    return 0;
}

static char *dup_str(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static int add_unknown(struct qcow2_exts *x, uint32_t type, const uint8_t *p,
                       uint32_t len)
{
    struct qcow2_ext *u = realloc(x->unknown,
                                  (size_t)(x->nb_unknown + 1) * sizeof(*u));
    if (!u)
        return -ENOMEM;
    x->unknown = u;
    u[x->nb_unknown].type = type;
    u[x->nb_unknown].len = len;
    u[x->nb_unknown].data = malloc(len ? len : 1);
    if (!u[x->nb_unknown].data)
        return -ENOMEM;
    memcpy(u[x->nb_unknown].data, p, len);
    x->nb_unknown++;
    return 0;
}

int qcow2_exts_decode(const uint8_t *cl, size_t start, size_t end,
                      uint32_t crypt_method, struct qcow2_exts *x,
                      struct err *err)
{
    size_t pos = start;
    while (pos < end) {
        if (end - pos < 8)
            return err_set(err, -EINVAL, "Invalid header extension area");
        uint32_t type = ld_be32(cl + pos), len = ld_be32(cl + pos + 4);
        pos += 8;
        if (type == QCOW2_EXT_END)
            break;
        if (len > end - pos)
            return err_set(err, -EINVAL, "Header extension too large");
        const uint8_t *p = cl + pos;
        switch (type) {
        case QCOW2_EXT_BACKING_FMT:
            if (len >= 16)
                return err_set(err, -EINVAL, "ERROR: ext_backing_format: len=%"
                               PRIu32 " too large (>=%d)", len, 16);
            free(x->backing_fmt);
            x->backing_fmt = dup_str(p, len);
            if (!x->backing_fmt)
                return err_set(err, -ENOMEM, "Out of memory");
            break;
        case QCOW2_EXT_DATA_FILE:
            free(x->data_file);
            x->data_file = dup_str(p, len);
            if (!x->data_file)
                return err_set(err, -ENOMEM, "Out of memory");
            break;
        case QCOW2_EXT_FEATURES:
            free(x->feature_table);
            x->feature_table = malloc(len ? len : 1);
            if (!x->feature_table)
                return err_set(err, -ENOMEM, "Out of memory");
            memcpy(x->feature_table, p, len);
            x->feature_table_len = len;
            break;
        case QCOW2_EXT_CRYPTO:
            if (crypt_method != QCOW2_CRYPT_LUKS)
                return err_set(err, -EINVAL, "CRYPTO header extension only "
                               "expected with LUKS encryption method");
            if (len != 16)
                return err_set(err, -EINVAL, "CRYPTO header extension size %"
                               PRIu32 ", but expected size 16", len);
            x->has_crypto = true;
            x->crypto_offset = ld_be64(p);
            x->crypto_length = ld_be64(p + 8);
            break;
        case QCOW2_EXT_BITMAPS:
            if (len != 24)
                return err_set(err, -EINVAL, "bitmaps_ext: Invalid extension length");
            x->has_bitmaps = true;
            x->nb_bitmaps = ld_be32(p);
            x->bitmap_dir_size = ld_be64(p + 8);
            x->bitmap_dir_offset = ld_be64(p + 16);
            if (ld_be32(p + 4))
                return err_set(err, -EINVAL, "bitmaps_ext: Reserved field is not zero");
            break;
        default:
            if (add_unknown(x, type, p, len) < 0)
                return err_set(err, -ENOMEM, "Out of memory");
            break;
        }
        uint64_t padded = align_up(len, 8);
        if (padded > end - pos)
            break;
        pos += padded;
    }
    return 0;
}

void qcow2_exts_free(struct qcow2_exts *x)
{
    free(x->backing_fmt);
    free(x->data_file);
    free(x->feature_table);
    for (int i = 0; i < x->nb_unknown; i++)
        free(x->unknown[i].data);
    free(x->unknown);
    memset(x, 0, sizeof(*x));
}

struct feature_name { uint8_t type, bit; const char *name; };
static const struct feature_name default_features[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};
#define NB_DEFAULT_FEATURES (sizeof(default_features) / sizeof(default_features[0]))

const uint8_t *qcow2_default_feature_table(uint32_t *len)
{
    static uint8_t table[NB_DEFAULT_FEATURES * 48];
    memset(table, 0, sizeof(table));
    for (size_t i = 0; i < NB_DEFAULT_FEATURES; i++) {
        table[i * 48] = default_features[i].type;
        table[i * 48 + 1] = default_features[i].bit;
        memcpy(table + i * 48 + 2, default_features[i].name,
               strlen(default_features[i].name));
    }
    *len = sizeof(table);
    return table;
}

void qcow2_report_unknown_incompat(const struct qcow2_exts *x, uint64_t bits,
                                   struct err *err)
{
    char msg[ERR_MSG_MAX] = "";
    size_t n = 0;
    for (uint32_t i = 0; x->feature_table && i + 48 <= x->feature_table_len;
         i += 48) {
        const uint8_t *e = x->feature_table + i;
        if (e[0] != 0 || e[1] > 63 || !(bits & (1ull << e[1])))
            continue;
        bits &= ~(1ull << e[1]);
        n += (size_t)snprintf(msg + n, sizeof(msg) - min_u64(n, sizeof(msg)),
                              "%s%.46s", n ? ", " : "", (const char *)e + 2);
        if (n >= sizeof(msg))
            n = sizeof(msg) - 1;
    }
    if (bits)
        snprintf(msg + n, sizeof(msg) - n,
                 "%sUnknown incompatible feature: %" PRIx64, n ? ", " : "", bits);
    err_set(err, -ENOTSUP, "Unsupported qcow2 feature(s): %s", msg);
}

static size_t put_ext(uint8_t *buf, size_t pos, uint32_t type,
                      const void *data, uint32_t len)
{
    st_be32(buf + pos, type);
    st_be32(buf + pos + 4, len);
    memcpy(buf + pos + 8, data, len);
    return pos + 8 + align_up(len, 8);
}

int qcow2_header_encode(struct qcow2_header *h, const struct qcow2_exts *x,
                        const char *backing_file, uint8_t *buf,
                        size_t cs, struct err *err)
{
    size_t need = h->version >= 3 ? h->header_length : QCOW2_V2_HEADER_LEN;
    size_t blen = backing_file ? strlen(backing_file) : 0;
    /* The feature name table written is always the current one, and only
     * with clusters over 4 KiB (as qemu does: small clusters keep their
     * room for the backing file name); the table read from the image is
     * used only to name unknown bits. */
    uint32_t ft_len = 0;
    const uint8_t *ft = h->version >= 3 && cs > 4096 ?
                        qcow2_default_feature_table(&ft_len) : NULL;
    /* Size check before writing anything. */
    need += 8;  /* end marker */
    if (x->backing_fmt)
        need += 8 + align_up(strlen(x->backing_fmt), 8);
    if (x->data_file)
        need += 8 + align_up(strlen(x->data_file), 8);
    if (x->has_crypto)
        need += 8 + 16;
    if (x->has_bitmaps)
        need += 8 + 24;
    if (ft)
        need += 8 + align_up(ft_len, 8);
    for (int i = 0; i < x->nb_unknown; i++)
        need += 8 + align_up(x->unknown[i].len, 8);
    if (blen > QCOW2_MAX_BACKING_NAME)
        return err_set(err, -EINVAL, "Backing file name too long");
    if (need + blen > cs)
        return err_set(err, -ENOSPC, "Cannot fit the header and its "
                       "extensions in one cluster");

    memset(buf, 0, cs);
    st_be32(buf, QCOW2_MAGIC);
    st_be32(buf + 4, h->version);
    st_be32(buf + 20, h->cluster_bits);
    st_be64(buf + 24, h->size);
    st_be32(buf + 32, h->crypt_method);
    st_be32(buf + 36, h->l1_size);
    st_be64(buf + 40, h->l1_table_offset);
    st_be64(buf + 48, h->refcount_table_offset);
    st_be32(buf + 56, h->refcount_table_clusters);
    st_be32(buf + 60, h->nb_snapshots);
    st_be64(buf + 64, h->snapshots_offset);
    size_t pos = QCOW2_V2_HEADER_LEN;
    if (h->version >= 3) {
        st_be64(buf + 72, h->incompat);
        st_be64(buf + 80, h->compat);
        st_be64(buf + 88, h->autoclear);
        st_be32(buf + 96, h->refcount_order);
        st_be32(buf + 100, h->header_length);
        if (h->header_length > 104) {
            buf[104] = h->compression_type;
            size_t extra = min_u64(h->header_length - 105, sizeof(h->extra_fields));
            memcpy(buf + 105, h->extra_fields, extra);
        }
        pos = h->header_length;
    }
    if (x->backing_fmt)
        pos = put_ext(buf, pos, QCOW2_EXT_BACKING_FMT, x->backing_fmt,
                      (uint32_t)strlen(x->backing_fmt));
    if (x->data_file)
        pos = put_ext(buf, pos, QCOW2_EXT_DATA_FILE, x->data_file,
                      (uint32_t)strlen(x->data_file));
    if (x->has_crypto) {
        uint8_t c[16];
        st_be64(c, x->crypto_offset);
        st_be64(c + 8, x->crypto_length);
        pos = put_ext(buf, pos, QCOW2_EXT_CRYPTO, c, 16);
    }
    if (ft)
        pos = put_ext(buf, pos, QCOW2_EXT_FEATURES, ft, ft_len);
    if (x->has_bitmaps) {
        uint8_t b[24] = { 0 };
        st_be32(b, x->nb_bitmaps);
        st_be64(b + 8, x->bitmap_dir_size);
        st_be64(b + 16, x->bitmap_dir_offset);
        pos = put_ext(buf, pos, QCOW2_EXT_BITMAPS, b, 24);
    }
    /* Last read first, as qemu writes them back (each rewrite reverses
     * their order in the file). */
    for (int i = x->nb_unknown - 1; i >= 0; i--)
        pos = put_ext(buf, pos, x->unknown[i].type, x->unknown[i].data,
                      x->unknown[i].len);
    pos += 8;  /* end marker: already zero */
    if (blen) {
        memcpy(buf + pos, backing_file, blen);
        h->backing_file_offset = pos;
        h->backing_file_size = (uint32_t)blen;
    } else {
        h->backing_file_offset = 0;
        h->backing_file_size = 0;
    }
    st_be64(buf + 8, h->backing_file_offset);
    st_be32(buf + 16, h->backing_file_size);
    return 0;
}
