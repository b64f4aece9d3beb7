/* vmdk image creation: monolithicSparse, monolithicFlat,
 * twoGbMaxExtentSparse, twoGbMaxExtentFlat and streamOptimized, with the
 * same layout, descriptor text and option checks as qemu-img. */
#include "fmt/vmdk/vmdk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/align.h"
#include "util/endian.h"
#include "util/random.h"

#define GRAIN_SECTORS   128
#define DESC_SECTORS    20
#define TWO_GB          (UINT64_C(2) << 30)

extern const struct driver drv_vmdk;

struct create_args {
    uint64_t size;
    const char *adapter;
    const char *backing;
    const char *hw;
    const char *tools;
    const char *sub;
    bool zeroed_grain;
    bool flat, split, stream;
    uint32_t parent_cid;
};

static int create_file(const char *filename, struct kvlist *opts,
                       uint64_t size, struct err *err)
{
    struct kvlist o = KVLIST_INIT;
    int r = kv_copy(&o, opts);
    if (r >= 0)
        r = kv_set_u64(&o, "size", size);
    if (r < 0)
        r = err_set(err, r, "Out of memory");
    else
        r = bdev_create_file(filename, &o, err);
    kv_free(&o);
    return r;
}

/* Write a hosted sparse extent of `capacity` bytes to `file`, with room for
 * an embedded descriptor (`desc` may be NULL). */
static int write_sparse_extent(struct bdev *file, uint64_t capacity,
                               const struct create_args *a, const char *desc,
                               struct err *err)
{
    uint64_t cap = capacity / VMDK_SECTOR;
    uint64_t num_gt = div_round_up(cap, 512 * GRAIN_SECTORS);
    uint64_t gd_sectors = div_round_up(num_gt * 4, VMDK_SECTOR);
    uint64_t gt_sectors = 4;
    uint8_t hdr[VMDK_SECTOR];
    int r;

    if (a->stream) {
        vmdk_sparse_make_header(hdr, cap, GRAIN_SECTORS, 1, DESC_SECTORS, 0,
                                VMDK_GD_AT_END, GRAIN_SECTORS, 3,
                                VMDK_FLAG_NL_TEST | VMDK_FLAG_COMPRESSED |
                                VMDK_FLAG_MARKERS, 1);
    } else {
        uint64_t rgd = 1 + DESC_SECTORS;
        uint64_t rgt = rgd + gd_sectors;
        uint64_t gd = rgt + num_gt * gt_sectors;
        uint64_t gt = gd + gd_sectors;
        uint64_t overhead = align_up(gt + num_gt * gt_sectors, GRAIN_SECTORS);
        uint32_t flags = VMDK_FLAG_NL_TEST | VMDK_FLAG_RGD;
        if (a->zeroed_grain)
            flags |= VMDK_FLAG_ZERO_GRAIN;
        vmdk_sparse_make_header(hdr, cap, GRAIN_SECTORS, 1, DESC_SECTORS, rgd,
                                gd, overhead, a->zeroed_grain ? 2 : 1, flags, 0);
        /* Both directories with their (empty) tables. */
        uint64_t dir_bytes = gd_sectors * VMDK_SECTOR;
        uint8_t *dir = calloc(1, dir_bytes ? dir_bytes : 1);
        if (!dir)
            return err_set(err, -ENOMEM, "Out of memory");
        for (int copy = 0; copy < 2; copy++) {
            uint64_t tables = copy ? gt : rgt;
            for (uint64_t i = 0; i < num_gt; i++)
                st_le32(dir + 4 * i, (uint32_t)(tables + i * gt_sectors));
            r = bdev_pwrite(file, (copy ? gd : rgd) * VMDK_SECTOR, dir_bytes,
                            dir, err);
            if (r < 0) {
                free(dir);
                return r;
            }
        }
        free(dir);
        r = bdev_truncate(file, overhead * VMDK_SECTOR, false, PREALLOC_OFF, err);
        if (r < 0)
            return r;
    }
    r = bdev_pwrite(file, 0, VMDK_SECTOR, hdr, err);
    if (r >= 0 && desc) {
        char *pad = calloc(1, DESC_SECTORS * VMDK_SECTOR);
        if (!pad)
            return err_set(err, -ENOMEM, "Out of memory");
        memcpy(pad, desc, min_u64(strlen(desc), DESC_SECTORS * VMDK_SECTOR));
        r = bdev_pwrite(file, VMDK_SECTOR, DESC_SECTORS * VMDK_SECTOR, pad, err);
        free(pad);
    }
    if (r >= 0 && a->stream) {
        /* An empty stream still ends in directory, footer and EOS. */
        struct vmdk_extent e;
        memset(&e, 0, sizeof(e));
        e.file = file;
        e.grain_bytes = GRAIN_SECTORS * VMDK_SECTOR;
        e.gtes_per_gt = 512;
        e.gt_bytes = 2048;
        e.gd_entries = (uint32_t)num_gt;
        e.gd = calloc(num_gt ? num_gt : 1, 4);
        if (!e.gd)
            return err_set(err, -ENOMEM, "Out of memory");
        r = bdev_truncate(file, GRAIN_SECTORS * VMDK_SECTOR, false,
                          PREALLOC_OFF, err);
        if (r >= 0)
            r = vmdk_stream_begin(&e, err);
        if (r >= 0)
            r = vmdk_stream_finish(&e, true, err);
        vmdk_stream_free(&e);
        free(e.gd);
    }
    return r;
}

static char *extent_name(const char *base, const char *fmt_suffix, int idx)
{
    /* "dir/name.vmdk" -> "name-s001.vmdk" (the descriptor names extents
     * relative to its own directory). */
    const char *slash = strrchr(base, '/');
    const char *name = slash ? slash + 1 : base;
    const char *dot = strrchr(name, '.');
    size_t stem = dot ? (size_t)(dot - name) : strlen(name);
    char *out;
    int n;
    if (idx > 0)
        n = asprintf(&out, "%.*s-%s%03d%s", (int)stem, name, fmt_suffix, idx,
                     dot ? dot : "");
    else
        n = asprintf(&out, "%.*s-%s%s", (int)stem, name, fmt_suffix,
                     dot ? dot : "");
    return n < 0 ? NULL : out;
}

static char *sibling_path(const char *base, const char *name)
{
    const char *slash = strrchr(base, '/');
    char *out;
    if (!slash)
        return strdup(name);
    if (asprintf(&out, "%.*s/%s", (int)(slash - base), base, name) < 0)
        return NULL;
    return out;
}

static int make_extent_file(const char *path, struct kvlist *opts,
                            uint64_t bytes, const struct create_args *a,
                            const char *desc, struct err *err)
{
    int r = create_file(path, opts, a->flat ? bytes : 0, err);
    if (r < 0)
        return r;
    if (a->flat)
        return 0;
    struct bdev *f = bdev_open_file(path, BDEV_O_RDWR, err);
    if (!f)
        return err->code ? err->code : -EIO;
    r = write_sparse_extent(f, bytes, a, desc, err);
    if (r >= 0)
        r = bdev_flush(f, err);
    bdev_close(f);
    return r;
}

static int parse_args(struct kvlist *opts, struct create_args *a,
                      struct err *err)
{
    bool compat6;
    int r = kv_get_size(opts, "size", 0, &a->size, err);
    if (r < 0)
        return r;
    r = kv_get_bool(opts, "compat6", false, &compat6, err);
    if (r >= 0)
        r = kv_get_bool(opts, "zeroed_grain", false, &a->zeroed_grain, err);
    if (r < 0)
        return r;
    a->adapter = kv_get(opts, "adapter_type");
    a->backing = kv_get(opts, "backing_file");
    a->hw = kv_get(opts, "hwversion");
    a->tools = kv_get(opts, "toolsversion");
    a->sub = kv_get(opts, "subformat");
    const char *bfmt = kv_get(opts, "backing_fmt");
    if (!a->adapter)
        a->adapter = "ide";
    if (strcmp(a->adapter, "ide") && strcmp(a->adapter, "lsilogic") &&
        strcmp(a->adapter, "buslogic") && strcmp(a->adapter, "legacyESX"))
        return err_set(err, -EINVAL, "invalid parameter value: %s", a->adapter);
    if (a->hw && !strcmp(a->hw, "undefined"))
        a->hw = NULL;
    if (compat6 && a->hw)
        return err_set(err, -EINVAL, "compat6 cannot be enabled with hwversion set");
    if (!a->hw)
        a->hw = compat6 ? "6" : "4";
    if (!a->tools)
        a->tools = "2147483647";
    if (!a->sub)
        a->sub = "monolithicSparse";
    if (!strcmp(a->sub, "monolithicFlat")) {
        a->flat = true;
    } else if (!strcmp(a->sub, "twoGbMaxExtentSparse")) {
        a->split = true;
    } else if (!strcmp(a->sub, "twoGbMaxExtentFlat")) {
        a->split = a->flat = true;
    } else if (!strcmp(a->sub, "streamOptimized")) {
        a->stream = true;
    } else if (strcmp(a->sub, "monolithicSparse")) {
        return err_set(err, -EINVAL, "invalid parameter value: %s", a->sub);
    }
    /* checked even without a backing file, as qemu-img does */
    if (bfmt && strcmp(bfmt, "vmdk"))
        return err_set(err, -EINVAL, "backing_file must be a vmdk image");
    if (a->backing && a->flat)
        return err_set(err, -ENOTSUP, "Flat image can't have backing file");
    if (a->size % VMDK_SECTOR)
        a->size = align_up(a->size, VMDK_SECTOR);
    return 0;
}

/* The parent's CID goes into parentCID, so later changes to it show. */
static int read_parent(const char *filename, struct create_args *a,
                       struct err *err)
{
    struct bdev_open_args oa;
    char *path;
    a->parent_cid = UINT32_MAX;
    if (!a->backing)
        return 0;
    if (a->backing[0] == '/' || !strrchr(filename, '/'))
        path = strdup(a->backing);
    else
        path = sibling_path(filename, a->backing);
    if (!path)
        return err_set(err, -ENOMEM, "Out of memory");
    memset(&oa, 0, sizeof(oa));
    oa.flags = BDEV_O_NO_BACKING | BDEV_O_SHARE;
    oa.quiet_probe = true;
    struct bdev *b = bdev_open(path, &oa, NULL, err);
    free(path);
    if (!b)
        return err->code ? err->code : -EIO;
    if (b->drv != &drv_vmdk) {
        bdev_close(b);
        return err_set(err, -EINVAL, "backing_file must be a vmdk image");
    }
    struct vmdk *ps = b->priv;
    a->parent_cid = ps->desc.cid;
    if (!a->size)
        a->size = b->size;
    bdev_close(b);
    return 0;
}

int vmdk_create(const char *filename, struct kvlist *opts, struct err *err)
{
    struct create_args a;
    char *lines = NULL, *desc = NULL;
    size_t lines_len = 0;
    FILE *lf = NULL;
    int r;

    memset(&a, 0, sizeof(a));
    r = parse_args(opts, &a, err);
    if (r >= 0)
        r = read_parent(filename, &a, err);
    if (r < 0)
        return r;

    uint32_t cid = random_u32();
    unsigned heads = strcmp(a.adapter, "ide") ? 255 : 16;
    uint64_t extent_max = a.split ? TWO_GB : a.size;
    int n_ext = a.size ? (int)div_round_up(a.size, extent_max ? extent_max : 1) : 1;
    bool monolithic_sparse = !a.flat && !a.split;

    lf = open_memstream(&lines, &lines_len);
    if (!lf)
        return err_set(err, -ENOMEM, "Out of memory");
    for (int i = 0; i < n_ext; i++) {
        uint64_t bytes = a.split ? min_u64(TWO_GB, a.size - (uint64_t)i * TWO_GB)
                                 : a.size;
        char *name;
        if (monolithic_sparse) {
            const char *slash = strrchr(filename, '/');
            name = strdup(slash ? slash + 1 : filename);
        } else {
            name = extent_name(filename, a.flat ? "f" : "s", a.split ? i + 1 : 0);
            if (name && !a.split && a.flat) {
                free(name);
                name = extent_name(filename, "flat", 0);
            }
        }
        if (!name) {
            r = err_set(err, -ENOMEM, "Out of memory");
            break;
        }
        fprintf(lf, "RW %" PRIu64 " %s \"%s\"%s\n", bytes / VMDK_SECTOR,
                a.flat ? "FLAT" : "SPARSE", name, a.flat ? " 0" : "");
        if (!monolithic_sparse) {
            char *path = sibling_path(filename, name);
            r = path ? make_extent_file(path, opts, bytes, &a, NULL, err)
                     : err_set(err, -ENOMEM, "Out of memory");
            free(path);
        }
        free(name);
        if (r < 0)
            break;
    }
    fclose(lf);
    if (r < 0)
        goto out;

    struct vmdk_desc_gen g = {
        .cid = cid,
        .parent_cid = a.parent_cid,
        .create_type = a.sub,
        .parent_hint = a.backing,
        .extent_lines = lines,
        .hw_version = a.hw,
        .cylinders = a.size / (63ull * heads * VMDK_SECTOR),
        .heads = heads,
        .adapter_type = a.adapter,
        .tools_version = a.tools,
    };
    desc = vmdk_desc_generate(&g);
    if (!desc) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    if (monolithic_sparse) {
        if (strlen(desc) > DESC_SECTORS * VMDK_SECTOR) {
            r = err_set(err, -EINVAL, "Descriptor too long");
            goto out;
        }
        struct create_args sa = a;
        sa.flat = false;
        r = make_extent_file(filename, opts, a.size, &sa, desc, err);
    } else {
        r = create_file(filename, opts, 0, err);
        if (r >= 0) {
            struct bdev *f = bdev_open_file(filename, BDEV_O_RDWR, err);
            if (!f) {
                r = err->code ? err->code : -EIO;
            } else {
                r = bdev_pwrite(f, 0, strlen(desc), desc, err);
                if (r >= 0)
                    r = bdev_flush(f, err);
                bdev_close(f);
            }
        }
    }
out:
    free(lines);
    free(desc);
    return r;
}
