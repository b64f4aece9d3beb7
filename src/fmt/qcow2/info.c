/* qcow2 info: the format-specific part of `qemu-img info` (keys and order
 * as qemu-img 7.2 prints them) and the bitmap directory reader that
 * supplies bitmap names, flags and granularities. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define BME_FLAG_IN_USE 1u
#define BME_FLAG_AUTO   2u
#define MAX_BITMAPS 65535
#define MAX_BITMAP_DIR (1024u * MAX_BITMAPS)

int qcow2_bitmaps_read(struct bdev *bs, struct qcow2_bitmap_info **list,
                       int *count, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    *list = NULL;
    *count = 0;
    if (!s->x.has_bitmaps || !(s->h.autoclear & QCOW2_AUTOCLEAR_BITMAPS))
        return 0;
    uint32_t n = s->x.nb_bitmaps;
    uint64_t size = s->x.bitmap_dir_size, off = s->x.bitmap_dir_offset;
    if (n == 0 || n > MAX_BITMAPS)
        return err_set(err, -EINVAL, "bitmaps_ext: Image has %u bitmaps, "
                       "exceeding the QEMU supported maximum of %d", n, MAX_BITMAPS);
    if (size > MAX_BITMAP_DIR || size < (uint64_t)n * 24)
        return err_set(err, -EINVAL, "bitmaps_ext: bitmap directory size "
                       "(%llu) exceeds the maximum supported size (%u)",
                       (unsigned long long)size, MAX_BITMAP_DIR);
    if (off % s->cluster_size || !range_within(off, size, bs->file->size))
        return err_set(err, -EINVAL, "bitmaps_ext: invalid bitmap directory "
                       "offset");
    uint8_t *d = malloc(size);
    struct qcow2_bitmap_info *l = calloc(n, sizeof(*l));
    int r = 0;
    if (!d || !l) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    r = bdev_pread(bs->file, off, size, d, err);
    size_t pos = 0;
    for (uint32_t i = 0; r >= 0 && i < n; i++) {
        if (size - pos < 24) {
            r = err_set(err, -EINVAL, "Bitmap directory is truncated");
            break;
        }
        uint32_t flags = ld_be32(d + pos + 12);
        uint8_t gbits = d[pos + 17];
        uint16_t name_len = ld_be16(d + pos + 18);
        uint32_t extra = ld_be32(d + pos + 20);
        uint64_t ent = 24 + (uint64_t)extra + name_len;
        if (ent > size - pos || name_len == 0 || gbits > 63) {
            r = err_set(err, -EINVAL, "Bitmap directory entry is invalid");
            break;
        }
        l[i].name = malloc(name_len + 1u);
        if (!l[i].name) {
            r = err_set(err, -ENOMEM, "Out of memory");
            break;
        }
        memcpy(l[i].name, d + pos + 24 + extra, name_len);
        l[i].name[name_len] = 0;
        l[i].flags = flags;
        l[i].granularity_bits = gbits;
        (*count)++;
        pos += align_up(ent, 8);
        if (pos > size)
            pos = size;
    }
out:
    free(d);
    if (r < 0 && l) {
        for (int i = 0; i < *count; i++)
            free(l[i].name);
        free(l);
        l = NULL;
        *count = 0;
    }
    *list = l;
    return r;
}

static struct json_object *bitmaps_json(struct qcow2_bitmap_info *l, int n)
{
    struct json_object *arr = json_object_new_array();
    for (int i = 0; i < n; i++) {
        struct json_object *o = json_object_new_object();
        struct json_object *flags = json_object_new_array();
        if (l[i].flags & BME_FLAG_IN_USE)
            json_object_array_add(flags, json_object_new_string("in-use"));
        if (l[i].flags & BME_FLAG_AUTO)
            json_object_array_add(flags, json_object_new_string("auto"));
        json_object_object_add(o, "flags", flags);
        json_object_object_add(o, "name", json_object_new_string(l[i].name));
        json_object_object_add(o, "granularity",
                               json_object_new_int64((int64_t)(1ull << l[i].granularity_bits)));
        json_object_array_add(arr, o);
    }
    return arr;
}

int qcow2_get_info(struct bdev *bs, struct bdev_info *info, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_bitmap_info *bm = NULL;
    int nbm = 0;
    bool v3 = s->h.version >= 3;
    info->cluster_size = (int64_t)s->cluster_size;
    info->encrypted = s->h.crypt_method != 0;
    info->dirty_flag = (s->h.incompat & QCOW2_INCOMPAT_DIRTY) != 0;
    if (v3) {
        int r = qcow2_bitmaps_read(bs, &bm, &nbm, err);
        if (r < 0)
            return r;
    }
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "compat", json_object_new_string(v3 ? "1.1" : "0.10"));
    json_object_object_add(o, "compression-type", json_object_new_string(
        s->h.compression_type == QCOW2_COMPRESS_ZSTD ? "zstd" : "zlib"));
    if (v3)
        json_object_object_add(o, "lazy-refcounts", json_object_new_boolean(
            (s->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0));
    if (bm)
        json_object_object_add(o, "bitmaps", bitmaps_json(bm, nbm));
    json_object_object_add(o, "refcount-bits",
                           json_object_new_int64(1ll << s->refcount_order));
    if (s->h.crypt_method == QCOW2_CRYPT_LUKS) {
        struct json_object *e = NULL;
        int r = qcow2_luks_info(bs, &e, err);
        if (r < 0) {
            json_object_put(o);
            for (int i = 0; i < nbm; i++)
                free(bm[i].name);
            free(bm);
            return r;
        }
        json_object_object_add(o, "encrypt", e);
    } else if (s->h.crypt_method) {
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "format", json_object_new_string("aes"));
        json_object_object_add(o, "encrypt", e);
    }
    if (s->h.incompat & QCOW2_INCOMPAT_DATA_FILE) {
        if (s->x.data_file)
            json_object_object_add(o, "data-file",
                                   json_object_new_string(s->x.data_file));
        json_object_object_add(o, "data-file-raw", json_object_new_boolean(
            (s->h.autoclear & QCOW2_AUTOCLEAR_DATA_RAW) != 0));
    }
    if (v3) {
        json_object_object_add(o, "corrupt", json_object_new_boolean(
            (s->h.incompat & QCOW2_INCOMPAT_CORRUPT) != 0));
        json_object_object_add(o, "extended-l2", json_object_new_boolean(s->ext_l2));
    }
    for (int i = 0; i < nbm; i++)
        free(bm[i].name);
    free(bm);
    info->format_specific = o;
    return 0;
}

int qcow2_bitmaps_mark_in_use(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (s->bitmaps_marked || !s->x.has_bitmaps ||
        !(s->h.autoclear & QCOW2_AUTOCLEAR_BITMAPS))
        return 0;
    uint64_t size = s->x.bitmap_dir_size, off = s->x.bitmap_dir_offset;
    uint32_t n = s->x.nb_bitmaps;
    if (n == 0 || n > MAX_BITMAPS || size > MAX_BITMAP_DIR ||
        size < (uint64_t)n * 24 || off % s->cluster_size ||
        !range_within(off, size, bs->file->size))
        return err_set(err, -EINVAL, "qcow2: invalid bitmap directory");
    int r = qcow2_bitmaps_live_load(bs, err);
    if (r < 0)
        return r;
    s->bitmaps_marked = true;
    if (!s->bm_live)
        return 0;
    uint8_t *d = malloc(size);
    if (!d)
        return err_set(err, -ENOMEM, "Out of memory");
    r = bdev_pread(bs->file, off, size, d, err);
    bool changed = false;
    size_t pos = 0;
    for (uint32_t i = 0; r >= 0 && i < n; i++) {
        if (size - pos < 24)
            break;
        uint32_t flags = ld_be32(d + pos + 12);
        uint64_t ent = 24 + (uint64_t)ld_be32(d + pos + 20) + ld_be16(d + pos + 18);
        if ((flags & BME_FLAG_AUTO) && !(flags & BME_FLAG_IN_USE)) {
            st_be32(d + pos + 12, flags | BME_FLAG_IN_USE);
            changed = true;
        }
        if (ent > size - pos)
            break;
        pos += align_up(ent, 8);
    }
    if (r >= 0 && changed) {
        r = qcow2_meta_write(bs, QCOW2_OL_BITMAPS, off, size, d, err);
        if (r >= 0)
            r = qcow2_barrier(bs, err);
    }
    free(d);
    return r;
}
