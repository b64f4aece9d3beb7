/* vmdk: VMware virtual disks (VMware "Virtual Disk Format 1.1").
 *
 * Supported: monolithic sparse files (KDMV, embedded descriptor),
 * streamOptimized (compressed grains with markers; written in VMware's
 * complete layout with footer and end-of-stream marker), descriptor files
 * naming several extents of type FLAT, VMFS, SPARSE, VMFSSPARSE (VMware 3
 * COWD), SESPARSE (read-only, see sesparse.c) and ZERO; zeroed-grain
 * entries; backing images through parentFileNameHint; growing
 * monolithicSparse and monolithicFlat images.
 * Not supported: raw device mappings (VMFSRDM, VMFSRAW). */
#include "fmt/vmdk/vmdk.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"
#include "util/random.h"
#include "util/zero.h"

static int vmdk_probe(struct bdev *file, const uint8_t *buf, size_t len,
                      const char *filename)
{
    (void)file;
    (void)filename;
    if (len >= 4 && (ld_le32(buf) == VMDK4_MAGIC || ld_le32(buf) == VMDK3_MAGIC))
        return 100;
    if (vmdk_desc_probe(buf, len))
        return 100;
    return 0;
}

static int read_text(struct bdev *file, uint64_t off, uint64_t cap,
                     char **out, struct err *err)
{
    char *t = malloc(cap + 1);
    if (!t)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = bdev_pread(file, off, cap, t, err);
    if (r < 0) {
        free(t);
        return r;
    }
    t[cap] = 0;
    /* The text ends at the first NUL (embedded descriptors are padded). */
    t[strlen(t)] = 0;
    *out = t;
    return 0;
}

static int add_extent(struct vmdk *s, struct vmdk_extent **out, struct err *err)
{
    struct vmdk_extent *n = realloc(s->ext, sizeof(*n) * (size_t)(s->n_ext + 1));
    if (!n)
        return err_set(err, -ENOMEM, "Out of memory");
    s->ext = n;
    *out = &s->ext[s->n_ext++];
    memset(*out, 0, sizeof(**out));
    return 0;
}

static int open_desc_extent(struct bdev *bs, struct vmdk *s,
                            const struct vmdk_desc_extent *x, uint64_t start,
                            struct err *err)
{
    struct vmdk_extent *e = NULL;
    int r = add_extent(s, &e, err);
    if (r < 0)
        return r;
    e->start = start;
    if (x->sectors > (UINT64_C(1) << 53) / VMDK_SECTOR)
        return err_set(err, -EINVAL, "Invalid extent size");
    e->length = x->sectors * VMDK_SECTOR;
    e->type_name = strdup(x->type);
    e->read_only = strcmp(x->access, "RW") != 0;
    if (!e->type_name)
        return err_set(err, -ENOMEM, "Out of memory");
    if (!strcmp(x->type, "ZERO")) {
        e->type = EXT_ZERO;
        e->read_only = true;
        return 0;
    }
    bool flat = !strcmp(x->type, "FLAT") || !strcmp(x->type, "VMFS");
    bool sparse = !strcmp(x->type, "SPARSE") || !strcmp(x->type, "VMFSSPARSE");
    bool sesparse = !strcmp(x->type, "SESPARSE");
    if (!flat && !sparse && !sesparse)
        return err_set(err, -ENOTSUP, "Unsupported extent type '%s'", x->type);
    if (!x->file || !x->file[0])
        return err_set(err, -EINVAL, "Invalid extent line: missing file name");
    if (sesparse && (bs->flags & BDEV_O_RDWR))
        return err_set(err, -EACCES, "No write support for seSparse images "
                       "available");
    e->path = bdev_resolve_backing(bs, x->file);
    if (!e->path)
        return err_set(err, -ENOMEM, "Out of memory");
    int flags = bs->flags & (BDEV_O_SHARE | BDEV_O_NO_LOCK);
    if ((bs->flags & BDEV_O_RDWR) && !e->read_only)
        flags |= BDEV_O_RDWR;
    e->file = bdev_open_child_file(bs, e->path, flags, err);
    if (!e->file)       /* the file's own message, as in qemu-img */
        return err->code ? err->code : -EIO;
    e->own_file = true;
    if (flat) {
        e->type = EXT_FLAT;
        if (x->offset_sectors > (UINT64_C(1) << 53) / VMDK_SECTOR)
            return err_set(err, -EINVAL, "Invalid extent offset");
        e->flat_off = x->offset_sectors * VMDK_SECTOR;
        return 0;
    }
    uint64_t cap;
    if (sesparse) {
        /* The extent is as large as its header says, whatever the
         * descriptor's sector count (QEMU does the same). */
        r = vmdk_sesparse_open(e, &cap, err);
        if (r >= 0)
            e->length = cap;
        return r;
    }
    r = vmdk_sparse_open(e, false, s, &cap, err);
    if (r < 0)
        err_prefix(err, "Could not open extent '%s': ", e->path);
    if (r >= 0 && !strcmp(x->type, "VMFSSPARSE") != (e->type == EXT_COWD))
        return err_set(err, -EINVAL, "Extent '%s' does not match its type %s",
                       e->path, x->type);
    return r;
}

static int open_descriptor_file(struct bdev *bs, struct vmdk *s,
                                struct err *err)
{
    uint64_t flen = bs->file->size;
    int r;
    if (flen > VMDK_DESC_MAX)
        return err_set(err, -EFBIG, "File too large");
    r = read_text(bs->file, 0, flen, &s->desc_text, err);
    if (r < 0)
        return r;
    if (!vmdk_desc_probe((const uint8_t *)s->desc_text, strlen(s->desc_text)))
        return err_set(err, -EINVAL, "invalid VMDK image descriptor");
    r = vmdk_desc_parse(s->desc_text, &s->desc, err);
    if (r < 0)
        return r;
    if (!s->desc.create_type)
        return err_set(err, -EINVAL, "invalid VMDK image descriptor");
    if (!s->desc.n_ext)
        return err_set(err, -EINVAL, "Invalid VMDK image descriptor: no extents");
    uint64_t start = 0;
    for (int i = 0; i < s->desc.n_ext; i++) {
        r = open_desc_extent(bs, s, &s->desc.ext[i], start, err);
        if (r < 0)
            return r;
        if (add_overflow(start, s->ext[s->n_ext - 1].length, &start) ||
            start > (UINT64_C(1) << 62))
            return err_set(err, -EFBIG, "Disk size too large");
    }
    bs->size = start;
    return 0;
}

static int open_sparse_file(struct bdev *bs, struct vmdk *s, struct err *err)
{
    struct vmdk_extent *e = NULL;
    uint64_t cap;
    int r = add_extent(s, &e, err);
    if (r < 0)
        return r;
    e->file = bs->file;
    e->path = strdup(bs->file->filename);
    if (!e->path)
        return err_set(err, -ENOMEM, "Out of memory");
    s->embedded_sparse = true;
    r = vmdk_sparse_open(e, true, s, &cap, err);
    if (r < 0)
        return r;
    e->length = cap;
    bs->size = cap;
    if (s->desc_embedded) {
        r = read_text(bs->file, s->desc_off, s->desc_cap, &s->desc_text, err);
        if (r < 0)
            return r;
        r = vmdk_desc_parse(s->desc_text, &s->desc, err);
        if (r < 0)
            return r;
    } else if (e->type == EXT_COWD && bs->file->size > VMDK_SECTOR) {
        /* VMware 3 images keep their content IDs as text in the second
         * sector; read them, but never write there (tables may follow). */
        char *t = NULL;
        r = read_text(bs->file, VMDK_SECTOR,
                      min_u64(20 * VMDK_SECTOR, bs->file->size - VMDK_SECTOR),
                      &t, err);
        if (r < 0)
            return r;
        r = vmdk_desc_parse(t, &s->desc, err);
        free(t);
        if (r < 0)
            return r;
    }
    return 0;
}

static void vmdk_close(struct bdev *bs);

static int vmdk_open(struct bdev *bs, struct kvlist *opts, struct err *err)
{
    struct vmdk *s = bs->priv;
    uint8_t magic[4] = { 0 };
    int r;
    (void)opts;

    if (bs->file->size >= 4) {
        r = bdev_pread(bs->file, 0, 4, magic, err);
        if (r < 0)
            return r;
    }
    if (ld_le32(magic) == VMDK4_MAGIC || ld_le32(magic) == VMDK3_MAGIC)
        r = open_sparse_file(bs, s, err);
    else
        r = open_descriptor_file(bs, s, err);
    if (r < 0)
        goto fail;
    if (s->desc.parent_hint && s->desc.parent_hint[0]) {
        bs->backing_file = strdup(s->desc.parent_hint);
        bs->backing_fmt = strdup("vmdk");
        if (!bs->backing_file || !bs->backing_fmt) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto fail;
        }
    }
    bs->align = VMDK_SECTOR;
    if (bs->flags & BDEV_O_RDWR) {
        for (int i = 0; i < s->n_ext; i++) {
            struct vmdk_extent *e = &s->ext[i];
            if (e->type == EXT_SPARSE && e->compressed && e->markers) {
                r = vmdk_stream_begin(e, err);
                if (r < 0)
                    goto fail;
            }
        }
    }
    return 0;
fail:
    vmdk_close(bs);
    return r;
}

static void vmdk_close(struct bdev *bs)
{
    struct vmdk *s = bs->priv;
    for (int i = 0; i < s->n_ext; i++) {
        struct err e = ERR_INIT;
        if (s->ext[i].stream)
            vmdk_stream_finish(&s->ext[i], false, &e);
        vmdk_extent_free(&s->ext[i]);
    }
    free(s->ext);
    vmdk_desc_free(&s->desc);
    free(s->desc_text);
    memset(s, 0, sizeof(*s));
}

static struct vmdk_extent *find_extent(struct vmdk *s, uint64_t off)
{
    int lo = 0, hi = s->n_ext - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        struct vmdk_extent *e = &s->ext[mid];
        if (off < e->start)
            hi = mid - 1;
        else if (off - e->start >= e->length)
            lo = mid + 1;
        else
            return e;
    }
    return NULL;
}

extern const struct driver drv_vmdk;

/* Data from a vmdk parent is only used while the parent still has the CID
 * this image recorded as parentCID: a parent changed since (a new CID)
 * would show data the snapshot was not taken from.  qemu-img fails such
 * reads with EINVAL, and so does qimg.  Parents of other formats have no
 * CID to compare. */
static int check_parent_cid(struct bdev *bs, struct vmdk *s, struct err *err)
{
    if (s->parent_cid_checked || !bs->backing || bs->backing->drv != &drv_vmdk)
        return 0;
    const struct vmdk *p = bs->backing->priv;
    uint32_t cid = p->desc.has_cid ? p->desc.cid : 0xffffffffu;
    if (cid != s->desc.parent_cid)
        return err_set(err, -EINVAL, "The parent's CID %08x is not this "
                       "image's parentCID %08x", cid, s->desc.parent_cid);
    s->parent_cid_checked = true;
    return 0;
}

static int vmdk_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
                     struct err *err)
{
    struct vmdk *s = bs->priv;
    uint8_t *p = buf;
    while (len) {
        struct vmdk_extent *e = find_extent(s, off);
        if (!e)
            return err_set(err, -EIO, "Read beyond the last extent");
        uint64_t in = off - e->start;
        uint64_t n = min_u64(len, e->length - in);
        int r = 0;
        if (e->type == EXT_ZERO) {
            memset(p, 0, n);
        } else if (e->type == EXT_FLAT) {
            r = bdev_pread(e->file, e->flat_off + in, n, p, err);
        } else {
            uint64_t host, gin = in % e->grain_bytes;
            n = min_u64(n, e->grain_bytes - gin);
            r = vmdk_sparse_lookup(e, in, &host, err);
            if (r < 0)
                return r;
            if (host == 0 && bs->backing)
                r = check_parent_cid(bs, s, err);
            if (r < 0)
                return r;
            if (host == 0)
                r = bdev_read_backing(bs, off, n, p, err);
            else if (host == 1)
                memset(p, 0, n);
            else
                r = vmdk_sparse_read_grain(e, host, gin, n, p, err);
        }
        if (r < 0)
            return r;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* The first write to an image gives it a new CID, so images made from it
 * (parentCID) can tell it changed. */
static int vmdk_update_cid(struct bdev *bs, struct vmdk *s, struct err *err)
{
    int r;
    if (s->cid_updated || !s->desc_text)
        return 0;
    s->cid_updated = true;
    uint32_t cid = random_u32();
    char *t = vmdk_desc_set_cid(s->desc_text, cid);
    if (!t)
        return err_set(err, -ENOMEM, "Out of memory");
    size_t len = strlen(t);
    if (s->desc_embedded) {
        if (len > s->desc_cap) {
            free(t);
            return 0;
        }
        char *pad = calloc(1, s->desc_cap);
        if (!pad) {
            free(t);
            return err_set(err, -ENOMEM, "Out of memory");
        }
        memcpy(pad, t, len);
        r = bdev_pwrite(bs->file, s->desc_off, s->desc_cap, pad, err);
        free(pad);
    } else if (!s->embedded_sparse) {
        r = bdev_pwrite(bs->file, 0, len, t, err);
        if (r >= 0 && bs->file->size > len)
            r = bdev_truncate(bs->file, len, true, PREALLOC_OFF, err);
    } else {
        r = 0;
    }
    if (r < 0) {
        free(t);
        return r;
    }
    free(s->desc_text);
    s->desc_text = t;
    s->desc.cid = cid;
    return 0;
}

static int write_sparse(struct bdev *bs, struct vmdk_extent *e, uint64_t off,
                        uint64_t in, uint64_t n, const uint8_t *p,
                        struct err *err)
{
    uint64_t host, gin = in % e->grain_bytes;
    int r = vmdk_sparse_lookup(e, in, &host, err);
    if (r < 0)
        return r;
    if (host > 1) {
        if (e->compressed)
            return err_set(err, -ENOTSUP, "Could not write to allocated "
                           "cluster for streamOptimized");
        return bdev_pwrite(e->file, host + gin, n, p, err);
    }
    if (host == 0 && !bs->backing && buf_is_zero(p, n))
        return 0;   /* reads as zeros already */
    if (host == 1 && buf_is_zero(p, n))
        return 0;
    uint8_t *grain = malloc(e->grain_bytes);
    if (!grain)
        return err_set(err, -ENOMEM, "Out of memory");
    if (n != e->grain_bytes) {
        /* Fill the rest of the grain from what it reads as now. */
        uint64_t gstart = off - gin;
        uint64_t glen = min_u64(e->grain_bytes, bs->size - gstart);
        memset(grain, 0, e->grain_bytes);
        if (host == 0)
            r = bdev_read_backing(bs, gstart, glen, grain, err);
    }
    memcpy(grain + gin, p, n);
    if (r >= 0)
        r = vmdk_sparse_alloc(e, in - gin, grain, err);
    free(grain);
    return r;
}

static int vmdk_write(struct bdev *bs, uint64_t off, uint64_t len,
                      const void *buf, struct err *err)
{
    struct vmdk *s = bs->priv;
    const uint8_t *p = buf;
    int r = vmdk_update_cid(bs, s, err);
    if (r < 0)
        return r;
    while (len) {
        struct vmdk_extent *e = find_extent(s, off);
        if (!e)
            return err_set(err, -EIO, "Write beyond the last extent");
        uint64_t in = off - e->start;
        uint64_t n = min_u64(len, e->length - in);
        if (e->read_only)
            return err_set(err, -EACCES, "Could not write to a read-only extent");
        if (e->type == EXT_FLAT) {
            r = bdev_pwrite(e->file, e->flat_off + in, n, p, err);
        } else if (e->stream) {
            r = vmdk_stream_write(e, in, n, p, err);
        } else {
            n = min_u64(n, e->grain_bytes - in % e->grain_bytes);
            r = write_sparse(bs, e, off, in, n, p, err);
        }
        if (r < 0)
            return r;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* convert -c: qemu-img accepts it for every vmdk with grains and writes
 * the data as it would without -c (streamOptimized grains are always
 * compressed, hosted sparse ones never); flat images have no cluster size
 * and are refused before any write.  The zero-length write that ends a
 * compressed copy has nothing to do. */
static int vmdk_write_compressed(struct bdev *bs, uint64_t off, uint64_t len,
                                 const void *buf, struct err *err)
{
    if (len == 0)
        return 0;
    return vmdk_write(bs, off, len, buf, err);
}

static int vmdk_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                             unsigned flags, struct err *err)
{
    struct vmdk *s = bs->priv;
    (void)flags;
    /* Whole grains become zeroed-grain entries where the extent has them,
     * or stay unallocated where there is nothing below; everything else is
     * written as data by the core. */
    for (uint64_t o = off, l = len; l;) {
        struct vmdk_extent *e = find_extent(s, o);
        if (!e || e->stream || (e->type != EXT_SPARSE && e->type != EXT_COWD))
            return -ENOTSUP;
        uint64_t in = o - e->start;
        uint64_t n = min_u64(l, e->grain_bytes - in % e->grain_bytes);
        uint64_t host;
        int r = vmdk_sparse_lookup(e, in, &host, err);
        if (r < 0)
            return r;
        bool whole = n == e->grain_bytes;
        if (!(host == 1 || (host == 0 && !bs->backing) ||
              (whole && e->zero_grain)))
            return -ENOTSUP;
        o += n;
        l -= n;
    }
    int r = vmdk_update_cid(bs, s, err);
    while (r >= 0 && len) {
        struct vmdk_extent *e = find_extent(s, off);
        uint64_t in = off - e->start;
        uint64_t n = min_u64(len, e->grain_bytes - in % e->grain_bytes);
        uint64_t host;
        r = vmdk_sparse_lookup(e, in, &host, err);
        if (r >= 0 && host != 1 && !(host == 0 && !bs->backing))
            r = vmdk_sparse_set_gte(e, in, 1, err);
        off += n;
        len -= n;
    }
    return r;
}

static int vmdk_flush(struct bdev *bs, struct err *err)
{
    struct vmdk *s = bs->priv;
    int r = 0;
    for (int i = 0; i < s->n_ext && r >= 0; i++)
        if (s->ext[i].own_file && !s->ext[i].read_only)
            r = bdev_flush(s->ext[i].file, err);
    if (r >= 0)
        r = bdev_flush(bs->file, err);
    return r;
}

static int vmdk_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                             struct bstatus *st, struct err *err)
{
    struct vmdk *s = bs->priv;
    struct vmdk_extent *e = find_extent(s, off);
    if (!e)
        return err_set(err, -EIO, "Block status beyond the last extent");
    uint64_t in = off - e->start;
    len = min_u64(len, e->length - in);
    if (e->type == EXT_ZERO) {
        st->len = len;
        st->flags = BS_ZERO | BS_ALLOCATED;
        return 0;
    }
    if (e->type == EXT_FLAT) {
        st->len = len;
        st->flags = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID | BS_RECURSE;
        st->host_off = e->flat_off + in;
        st->file = e->file;
        return 0;
    }
    uint64_t done = 0, first = 0;
    unsigned flags = 0;
    /* One grain table's span at most, so a walk over the image is linear. */
    len = min_u64(len, (uint64_t)e->gtes_per_gt * e->grain_bytes -
                  in % ((uint64_t)e->gtes_per_gt * e->grain_bytes));
    while (done < len) {
        uint64_t host, gin = (in + done) % e->grain_bytes;
        uint64_t n = min_u64(len - done, e->grain_bytes - gin);
        int r = vmdk_sparse_lookup(e, in + done, &host, err);
        if (r < 0)
            return r;
        unsigned f;
        if (host == 0)
            f = 0;   /* the core resolves it through the backing chain */
        else if (host == 1)
            f = BS_ZERO | BS_ALLOCATED;
        else if (e->compressed)
            f = BS_DATA | BS_ALLOCATED;
        else
            f = BS_DATA | BS_ALLOCATED | BS_OFFSET_VALID;
        if (done == 0) {
            flags = f;
            first = host + gin;
        } else if (f != flags ||
                   ((f & BS_OFFSET_VALID) && host + gin != first + done)) {
            break;
        }
        done += n;
    }
    st->len = done;
    st->flags = flags;
    if (flags & BS_OFFSET_VALID) {
        st->host_off = first;
        st->file = e->file;
    }
    return 0;
}

static int vmdk_get_info(struct bdev *bs, struct bdev_info *info,
                         struct err *err)
{
    struct vmdk *s = bs->priv;
    struct json_object *o = json_object_new_object(), *arr;
    if (!o)
        return err_set(err, -ENOMEM, "Out of memory");
    json_object_object_add(o, "cid", json_object_new_int64(s->desc.cid));
    json_object_object_add(o, "parent-cid",
                           json_object_new_int64(s->desc.parent_cid));
    json_object_object_add(o, "create-type", json_object_new_string(
                           s->desc.create_type ? s->desc.create_type : ""));
    arr = json_object_new_array();
    for (int i = 0; i < s->n_ext; i++) {
        struct vmdk_extent *e = &s->ext[i];
        struct json_object *x = json_object_new_object();
        bool sparse = e->type == EXT_SPARSE || e->type == EXT_COWD ||
                      e->type == EXT_SESPARSE;
        if (e->compressed)
            json_object_object_add(x, "compressed", json_object_new_boolean(1));
        json_object_object_add(x, "virtual-size",
                               json_object_new_int64((int64_t)e->length));
        json_object_object_add(x, "filename",
                               json_object_new_string(e->path ? e->path : ""));
        if (sparse)
            json_object_object_add(x, "cluster-size",
                                   json_object_new_int64((int64_t)e->grain_bytes));
        json_object_object_add(x, "format", json_object_new_string(
                               e->type_name ? e->type_name : ""));
        json_object_array_add(arr, x);
    }
    json_object_object_add(o, "extents", arr);
    info->format_specific = o;
    /* Extents of different kinds have no common cluster size: like
     * qemu-img, answer "not supported" (info then shows no dirty flag)
     * while still describing the extents. */
    for (int i = 1; i < s->n_ext; i++) {
        const struct vmdk_extent *a = &s->ext[0], *b = &s->ext[i];
        bool fa = a->type == EXT_FLAT || a->type == EXT_ZERO;
        bool fb = b->type == EXT_FLAT || b->type == EXT_ZERO;
        if (fa != fb || a->compressed != b->compressed ||
            (!fa && a->grain_bytes != b->grain_bytes))
            return -ENOTSUP;
    }
    if (s->n_ext && (s->ext[0].type == EXT_SPARSE || s->ext[0].type == EXT_COWD ||
                     s->ext[0].type == EXT_SESPARSE))
        info->cluster_size = (int64_t)s->ext[0].grain_bytes;
    return 0;
}

/* The descriptor file and every extent file it names. */
static int64_t vmdk_allocated_size(struct bdev *bs)
{
    struct vmdk *s = bs->priv;
    int64_t total = bdev_allocated_size(bs->file);
    for (int i = 0; i < s->n_ext && total >= 0; i++) {
        if (!s->ext[i].own_file)
            continue;
        int64_t n = bdev_allocated_size(s->ext[i].file);
        if (n < 0)
            return n;
        total += n;
    }
    return total;
}

/* Every grain table and grain must lie inside its extent file. */
static int vmdk_check(struct bdev *bs, struct check_result *res, unsigned fix,
                      struct err *err)
{
    struct vmdk *s = bs->priv;
    /* No repair: qemu-img then says the format has no checks at all. */
    if (fix)
        return err_set(err, -ENOTSUP,
                       "This image format does not support checks");
    for (int i = 0; i < s->n_ext; i++) {
        struct vmdk_extent *e = &s->ext[i];
        if (e->type != EXT_SPARSE && e->type != EXT_COWD &&
            e->type != EXT_SESPARSE)
            continue;
        uint64_t flen = e->file->size;
        for (uint64_t off = 0; off < e->length; off += e->grain_bytes) {
            uint64_t host;
            struct err e2 = ERR_INIT;
            uint64_t idx = off / e->grain_bytes / e->gtes_per_gt;
            if (e->type != EXT_SESPARSE && idx < e->gd_entries && e->gd[idx] &&
                !range_within((uint64_t)e->gd[idx] * VMDK_SECTOR, e->gt_bytes, flen)) {
                res->corruptions++;
                off = (idx + 1) * e->gtes_per_gt * e->grain_bytes - e->grain_bytes;
                continue;
            }
            int r = vmdk_sparse_lookup(e, off, &host, &e2);
            if (r < 0) {
                res->check_errors++;
                continue;
            }
            if (host > 1 && (e->compressed ? host >= flen
                             : !range_within(host, e->grain_bytes, flen)))
                res->corruptions++;
        }
    }
    (void)err;
    return 0;
}

/* Growing: the last extent of a monolithic image gets longer.  A sparse
 * extent needs room in its grain directory; a flat one grows its file. */
static int vmdk_truncate(struct bdev *bs, uint64_t size, bool shrink,
                         enum prealloc prealloc, struct err *err)
{
    struct vmdk *s = bs->priv;
    (void)shrink;
    if (prealloc != PREALLOC_OFF)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    /* What qimg cannot resize gets qemu-img's refusal, which covers every
     * vmdk resize. */
    if (size < bs->size)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    if (size % VMDK_SECTOR)
        return err_set(err, -EINVAL, "Size must be a multiple of 512");
    if (s->n_ext != 1)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    struct vmdk_extent *e = &s->ext[0];
    if (e->stream || e->compressed || e->type == EXT_COWD || e->type == EXT_ZERO)
        return err_set(err, -ENOTSUP, "Image format driver does not support resize");
    int r;
    if (e->type == EXT_SPARSE) {
        uint64_t span = (uint64_t)e->gtes_per_gt * e->grain_bytes;
        uint64_t need = div_round_up(size, span);
        uint64_t gd_room = align_up((uint64_t)e->gd_entries * 4, VMDK_SECTOR) / 4;
        if (need > gd_room)
            return err_set(err, -ENOTSUP, "Cannot grow the grain directory of "
                           "this image");
        uint8_t h[VMDK_SECTOR];
        r = bdev_pread(e->file, 0, VMDK_SECTOR, h, err);
        if (r < 0)
            return r;
        /* New directory entries are already zero (the padding of the
         * directory's last sector). */
        if (need > e->gd_entries) {
            uint32_t *gd = realloc(e->gd, need * 4);
            if (!gd)
                return err_set(err, -ENOMEM, "Out of memory");
            e->gd = gd;
            if (e->rgd) {
                uint32_t *rgd = realloc(e->rgd, need * 4);
                if (!rgd)
                    return err_set(err, -ENOMEM, "Out of memory");
                e->rgd = rgd;
            }
            for (uint64_t i = e->gd_entries; i < need; i++) {
                uint8_t v[4];
                e->gd[i] = 0;
                if (e->rgd)
                    e->rgd[i] = 0;
                r = bdev_pread(e->file, e->gd_off + 4 * i, 4, v, err);
                if (r < 0)
                    return r;
                if (ld_le32(v))
                    return err_set(err, -EINVAL, "Grain directory padding "
                                   "is not zero");
            }
            e->gd_entries = (uint32_t)need;
        }
        st_le64(h + 12, size / VMDK_SECTOR);
        r = bdev_pwrite(e->file, 0, VMDK_SECTOR, h, err);
        if (r < 0)
            return r;
    } else {
        uint64_t end = e->flat_off + size;
        if (e->file->size < end) {
            r = bdev_truncate(e->file, end, false, PREALLOC_OFF, err);
            if (r < 0)
                return r;
        }
    }
    e->length = size;
    bs->size = size;
    if (s->desc.n_ext == 1 && s->desc_text) {
        /* Rewrite the extent line's sector count in the descriptor. */
        char old[32], neu[32];
        snprintf(old, sizeof(old), " %llu ",
                 (unsigned long long)s->desc.ext[0].sectors);
        snprintf(neu, sizeof(neu), " %llu ",
                 (unsigned long long)(size / VMDK_SECTOR));
        char *line = strstr(s->desc_text, "RW");
        char *hit = line ? strstr(line, old) : NULL;
        if (hit) {
            size_t pre = (size_t)(hit - s->desc_text);
            size_t tl = strlen(s->desc_text) - pre - strlen(old);
            char *t = malloc(pre + strlen(neu) + tl + 1);
            if (!t)
                return err_set(err, -ENOMEM, "Out of memory");
            memcpy(t, s->desc_text, pre);
            strcpy(t + pre, neu);
            strcat(t, hit + strlen(old));
            size_t len = strlen(t);
            if (s->desc_embedded) {
                if (len <= s->desc_cap) {
                    char *pad = calloc(1, s->desc_cap);
                    if (!pad) {
                        free(t);
                        return err_set(err, -ENOMEM, "Out of memory");
                    }
                    memcpy(pad, t, len);
                    r = bdev_pwrite(bs->file, s->desc_off, s->desc_cap, pad, err);
                    free(pad);
                }
            } else {
                r = bdev_pwrite(bs->file, 0, len, t, err);
                if (r >= 0 && bs->file->size > len)
                    r = bdev_truncate(bs->file, len, true, PREALLOC_OFF, err);
            }
            free(s->desc_text);
            s->desc_text = t;
            s->desc.ext[0].sectors = size / VMDK_SECTOR;
            if (r < 0)
                return r;
        }
    }
    return vmdk_flush(bs, err);
}

static const struct opt_desc vmdk_create_opts[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "adapter_type", OPT_STRING, "Virtual adapter type, can be one of ide "
      "(default), lsilogic, buslogic or legacyESX", NULL },
    { "backing_file", OPT_STRING, "File name of a base image", NULL },
    { "backing_fmt", OPT_STRING, "Must be 'vmdk' if present", NULL },
    { "compat6", OPT_BOOL, "VMDK version 6 image", "off" },
    { "hwversion", OPT_STRING, "VMDK hardware version", "undefined" },
    { "toolsversion", OPT_STRING, "VMware guest tools version", NULL },
    { "subformat", OPT_STRING, "VMDK flat extent format, can be one of "
      "{monolithicSparse (default) | monolithicFlat | twoGbMaxExtentSparse | "
      "twoGbMaxExtentFlat | streamOptimized} ", NULL },
    { "zeroed_grain", OPT_BOOL, "Enable efficient zero writes using the "
      "zeroed-grain GTE feature", NULL },
    { NULL, 0, NULL, NULL },
};

const struct driver drv_vmdk = {
    .name = "vmdk",
    .kind = DRV_FORMAT,
    .caps = DRV_BACKING | DRV_ZERO_INIT,
    .priv_size = sizeof(struct vmdk),
    .create_opts = vmdk_create_opts,
    .probe = vmdk_probe,
    .open = vmdk_open,
    .close = vmdk_close,
    .create = vmdk_create,
    .read = vmdk_read,
    .write = vmdk_write,
    .write_zeroes = vmdk_write_zeroes,
    .write_compressed = vmdk_write_compressed,
    .flush = vmdk_flush,
    .block_status = vmdk_block_status,
    .truncate = vmdk_truncate,
    .get_info = vmdk_get_info,
    .check = vmdk_check,
    .allocated_size = vmdk_allocated_size,
};
