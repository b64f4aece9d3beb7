/* qcow2 persistent dirty bitmaps (spec "Bitmaps extension", bitmaps.rst):
 * add, remove, clear, enable, disable and merge, as `qemu-img bitmap`
 * applies them.
 *
 * Every bitmap is loaded into memory, the actions are applied in order
 * (stopping at the first failure, with the earlier ones kept, as qemu-img
 * does), and when anything changed the whole set is written anew: data
 * clusters and tables first, then the directory, then one header write
 * switching to the new directory; only after that are the old directory,
 * tables and data clusters freed.  A crash leaves the old or the new set,
 * plus leaked clusters at worst.  Bitmaps are only stored in v3 images;
 * a bitmap marked in use is refused. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"
#include "util/zero.h"

#define BME_IN_USE      1u
#define BME_AUTO        2u
#define BME_EXTRA_COMPAT 4u
#define BME_OFFSET_MASK 0x00fffffffffffe00ull
#define BM_MAX_NAME     1023
#define BM_MAX_COUNT    65535

struct bm {
    char *name;
    uint32_t flags;
    uint8_t gbits;
    uint8_t *bits;          /* one bit per granule, `bytes` long */
    uint64_t bytes;
    uint8_t *extra;
    uint32_t extra_size;
    uint64_t table_off;     /* on disk (loaded bitmaps), 0 for new ones */
    uint32_t table_size;
    bool keep;              /* stored again as it is on disk (not loaded) */
};

struct bmset {
    struct bm *v;
    int n;
};

static void bmset_free(struct bmset *b)
{
    for (int i = 0; i < b->n; i++) {
        free(b->v[i].name);
        free(b->v[i].bits);
        free(b->v[i].extra);
    }
    free(b->v);
    b->v = NULL;
    b->n = 0;
}

static uint64_t bits_bytes(uint64_t size, uint8_t gbits)
{
    uint64_t granules = div_round_up(size, 1ull << gbits);
    return div_round_up(granules, 8);
}

static int load_table_data(struct bdev *bs, struct bm *b, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    uint64_t need = div_round_up(b->bytes, cs);
    if (b->table_size < need || b->table_size > (64u << 20) / 8 ||
        b->table_off % cs ||
        !range_within(b->table_off, (uint64_t)b->table_size * 8,
                      bs->file->size))
        return err_set(err, -EINVAL, "Bitmap '%s' has an invalid bitmap "
                       "table", b->name);
    uint8_t *tab = malloc((size_t)b->table_size * 8);
    uint8_t *cl = malloc(cs);
    int r = 0;
    if (!tab || !cl) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    r = bdev_pread(bs->file, b->table_off, (uint64_t)b->table_size * 8, tab,
                   err);
    for (uint64_t i = 0; r >= 0 && i < need; i++) {
        uint64_t e = ld_be64(tab + i * 8), off = e & BME_OFFSET_MASK;
        uint64_t at = i * cs, n = min_u64(cs, b->bytes - at);
        if (!off) {
            memset(b->bits + at, (e & 1) ? 0xff : 0, n);
            continue;
        }
        if (off % cs || !range_within(off, cs, bs->file->size)) {
            r = err_set(err, -EINVAL, "Bitmap '%s' has an invalid bitmap "
                        "table entry", b->name);
            break;
        }
        r = bdev_pread(bs->file, off, cs, cl, err);
        if (r >= 0)
            memcpy(b->bits + at, cl, n);
    }
out:
    free(tab);
    free(cl);
    return r;
}

/* Load the directory and the bits of every bitmap.  With `live`, a
 * bitmap already in use (inconsistent) or disabled is not loaded but kept
 * as it is on disk; with `skip_in_use` (a merge source) one in use is
 * kept unloaded too; otherwise one in use is refused. */
static int load_set(struct bdev *bs, struct bmset *set, bool live,
                    bool skip_in_use, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    set->v = NULL;
    set->n = 0;
    if (!s->x.has_bitmaps || !s->x.nb_bitmaps)
        return 0;
    uint64_t dsize = s->x.bitmap_dir_size, doff = s->x.bitmap_dir_offset;
    if (s->x.nb_bitmaps > BM_MAX_COUNT || !dsize || dsize > (64u << 20) ||
        !range_within(doff, dsize, bs->file->size))
        return err_set(err, -EINVAL, "Invalid bitmap directory");
    uint8_t *dir = malloc(dsize);
    set->v = calloc(s->x.nb_bitmaps, sizeof(*set->v));
    if (!dir || !set->v) {
        free(dir);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    int r = bdev_pread(bs->file, doff, dsize, dir, err);
    uint64_t pos = 0;
    for (uint32_t i = 0; r >= 0 && i < s->x.nb_bitmaps; i++) {
        if (dsize - pos < 24) {
            r = err_set(err, -EINVAL, "Invalid bitmap directory");
            break;
        }
        const uint8_t *p = dir + pos;
        struct bm *b = &set->v[set->n++];
        b->table_off = ld_be64(p);
        b->table_size = ld_be32(p + 8);
        b->flags = ld_be32(p + 12);
        uint8_t type = p[16];
        b->gbits = p[17];
        uint16_t nlen = ld_be16(p + 18);
        b->extra_size = ld_be32(p + 20);
        uint64_t esize = align_up(24 + (uint64_t)b->extra_size + nlen, 8);
        if (type != 1 || b->gbits < 9 || b->gbits > 31 || !nlen ||
            b->extra_size > 1024 || esize > dsize - pos) {
            r = err_set(err, -EINVAL, "Invalid bitmap directory entry");
            break;
        }
        b->extra = malloc(b->extra_size + 1);
        b->name = malloc(nlen + 1u);
        if (!b->extra || !b->name) {
            r = err_set(err, -ENOMEM, "Out of memory");
            break;
        }
        memcpy(b->extra, p + 24, b->extra_size);
        memcpy(b->name, p + 24 + b->extra_size, nlen);
        b->name[nlen] = 0;
        pos += esize;
        if ((live && (b->flags & (BME_IN_USE | BME_AUTO)) != BME_AUTO) ||
            (skip_in_use && (b->flags & BME_IN_USE))) {
            b->keep = true;
            continue;
        }
        if (b->flags & BME_IN_USE) {
            r = err_set(err, -EBUSY, "Bitmap '%s' is inconsistent and cannot "
                        "be used", b->name);
            break;
        }
        b->bytes = bits_bytes(bs->size, b->gbits);
        b->bits = calloc(1, b->bytes ? b->bytes : 1);
        if (!b->bits) {
            r = err_set(err, -ENOMEM, "Out of memory");
            break;
        }
        r = load_table_data(bs, b, err);
    }
    free(dir);
    return r;
}

static int load_all(struct bdev *bs, struct bmset *set, struct err *err)
{
    return load_set(bs, set, false, false, err);
}

static struct bm *find(struct bmset *set, const char *name)
{
    for (int i = 0; i < set->n; i++)
        if (!strcmp(set->v[i].name, name))
            return &set->v[i];
    return NULL;
}

/* OR `src` into `dst` (granularities may differ). */
static void merge_bits(struct bm *dst, const struct bm *src, uint64_t size)
{
    uint64_t sg = 1ull << src->gbits, dg = 1ull << dst->gbits;
    uint64_t nsrc = div_round_up(size, sg);
    for (uint64_t i = 0; i < nsrc; i++) {
        if (!(src->bits[i / 8] & (1u << (i % 8))))
            continue;
        uint64_t a = i * sg, e = min_u64(a + sg, size);
        for (uint64_t j = a / dg; j * dg < e; j++)
            dst->bits[j / 8] |= (uint8_t)(1u << (j % 8));
    }
}

/* ---- storing ---- */

static int store_all(struct bdev *bs, struct bmset *set, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    uint64_t *toff = calloc((size_t)set->n + 1, sizeof(*toff));
    uint32_t *tsize = calloc((size_t)set->n + 1, sizeof(*tsize));
    uint8_t *cl = calloc(1, cs);
    uint8_t *dir = NULL;
    uint64_t dsize = 0, doff = 0;
    int r = 0;
    if (!toff || !tsize || !cl) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    for (int i = 0; i < set->n; i++) {
        struct bm *b = &set->v[i];
        if (b->keep) {
            toff[i] = b->table_off;
            tsize[i] = b->table_size;
            continue;
        }
        uint64_t n = div_round_up(b->bytes, cs);
        uint8_t *tab = calloc(1, align_up(n ? n * 8 : 8, cs));
        if (!tab) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto out;
        }
        for (uint64_t k = 0; k < n && r >= 0; k++) {
            uint64_t at = k * cs, len = min_u64(cs, b->bytes - at), off;
            if (buf_is_zero(b->bits + at, len))
                continue;
            memset(cl, 0, cs);
            memcpy(cl, b->bits + at, len);
            r = qcow2_alloc_clusters(bs, 1, &off, err);
            if (r >= 0)
                r = qcow2_meta_write(bs, 0, off, cs, cl, err);
            if (r >= 0)
                st_be64(tab + k * 8, off);
        }
        uint64_t tclusters = div_round_up(n ? n * 8 : 8, cs);
        if (r >= 0)
            r = qcow2_alloc_clusters(bs, tclusters, &toff[i], err);
        if (r >= 0)
            r = qcow2_meta_write(bs, 0, toff[i], tclusters * cs, tab, err);
        free(tab);
        tsize[i] = (uint32_t)n;
        if (r < 0)
            goto out;
    }
    for (int i = 0; i < set->n; i++)
        dsize += align_up(24 + (uint64_t)set->v[i].extra_size +
                          strlen(set->v[i].name), 8);
    if (set->n) {
        uint64_t dclusters = div_round_up(dsize, cs);
        dir = calloc(dclusters, cs);
        if (!dir) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto out;
        }
        uint64_t pos = 0;
        for (int i = 0; i < set->n; i++) {
            struct bm *b = &set->v[i];
            uint8_t *p = dir + pos;
            size_t nl = strlen(b->name);
            st_be64(p, toff[i]);
            st_be32(p + 8, tsize[i]);
            st_be32(p + 12, b->keep ? b->flags : b->flags & ~BME_IN_USE);
            p[16] = 1;
            p[17] = b->gbits;
            st_be16(p + 18, (uint16_t)nl);
            st_be32(p + 20, b->extra_size);
            memcpy(p + 24, b->extra, b->extra_size);
            memcpy(p + 24 + b->extra_size, b->name, nl);
            pos += align_up(24 + (uint64_t)b->extra_size + nl, 8);
        }
        r = qcow2_alloc_clusters(bs, dclusters, &doff, err);
        if (r >= 0)
            r = qcow2_meta_write(bs, 0, doff, dclusters * cs, dir, err);
        if (r < 0)
            goto out;
    }
    r = qcow2_barrier(bs, err);
    if (r < 0)
        goto out;

    /* Switch the header to the new directory. */
    struct qcow2_exts oldx = s->x;
    uint64_t old_autoclear = s->h.autoclear;
    s->x.has_bitmaps = set->n > 0;
    s->x.nb_bitmaps = (uint32_t)set->n;
    s->x.bitmap_dir_size = set->n ? dsize : 0;
    s->x.bitmap_dir_offset = doff;
    if (set->n)
        s->h.autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
    else
        s->h.autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
    r = qcow2_write_header(bs, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0) {
        s->x.has_bitmaps = oldx.has_bitmaps;
        s->x.nb_bitmaps = oldx.nb_bitmaps;
        s->x.bitmap_dir_size = oldx.bitmap_dir_size;
        s->x.bitmap_dir_offset = oldx.bitmap_dir_offset;
        s->h.autoclear = old_autoclear;
        goto out;
    }
out:
    free(toff);
    free(tsize);
    free(cl);
    free(dir);
    return r;
}

/* Free the clusters of the bitmap set as it was on disk. */
static int free_old(struct bdev *bs, const struct bmset *old, uint64_t doff,
                    uint64_t dsize, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    int r = 0;
    for (int i = 0; r >= 0 && i < old->n; i++) {
        const struct bm *b = &old->v[i];
        if (b->keep || !b->table_off || !b->table_size)
            continue;
        uint8_t *tab = malloc((size_t)b->table_size * 8);
        if (!tab)
            return err_set(err, -ENOMEM, "Out of memory");
        r = bdev_pread(bs->file, b->table_off, (uint64_t)b->table_size * 8,
                       tab, err);
        for (uint32_t k = 0; r >= 0 && k < b->table_size; k++) {
            uint64_t off = ld_be64(tab + (size_t)k * 8) & BME_OFFSET_MASK;
            if (off && off % cs == 0)
                r = qcow2_free_clusters(bs, off, 1, err);
        }
        free(tab);
        if (r >= 0)
            r = qcow2_free_clusters(bs, b->table_off,
                                    div_round_up((uint64_t)b->table_size * 8,
                                                 cs), err);
    }
    if (r >= 0 && dsize)
        r = qcow2_free_clusters(bs, doff, div_round_up(dsize, cs), err);
    return r;
}

int qcow2_bitmap_apply(struct bdev *bs, const struct bitmap_action *acts,
                       int n, int *failed, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct bmset set = { 0 }, old = { 0 };
    bool changed = false;
    int r;
    *failed = -1;
    if (s->h.version < 3) {
        *failed = 0;
        return err_set(err, -ENOTSUP, "Cannot store dirty bitmaps in qcow2 v2 "
                       "files");
    }
    if ((r = qcow2_bitmaps_live_store(bs, err)) < 0) {
        *failed = 0;
        return r;
    }
    uint64_t old_doff = s->x.has_bitmaps ? s->x.bitmap_dir_offset : 0;
    uint64_t old_dsize = s->x.has_bitmaps ? s->x.bitmap_dir_size : 0;
    if ((r = load_all(bs, &set, err)) < 0 || (r = load_all(bs, &old, err)) < 0) {
        *failed = 0;
        goto out;
    }
    for (int i = 0; i < n && r >= 0; i++) {
        const struct bitmap_action *a = &acts[i];
        struct bm *b = find(&set, a->name);
        if (a->op != BITMAP_ACT_ADD && !b) {
            r = err_set(err, -ENOENT, "Dirty bitmap '%s' not found", a->name);
        } else if (a->op == BITMAP_ACT_ADD) {
            uint64_t g = a->granularity ? a->granularity :
                         max_u64(s->cluster_size, 4096);
            if (b) {
                r = err_set(err, -EEXIST, "Bitmap already exists: %s", a->name);
            } else if (g < 512 || (g & (g - 1)) || g > (1ull << 31)) {
                r = err_set(err, -EINVAL, "Granularity must be power of 2 and "
                            "at least 512");
            } else if (strlen(a->name) > BM_MAX_NAME) {
                r = err_set(err, -EINVAL, "Bitmap name is too long");
            } else if (set.n >= BM_MAX_COUNT) {
                r = err_set(err, -EFBIG, "Too many bitmaps");
            } else {
                struct bm *nv = realloc(set.v, ((size_t)set.n + 1) * sizeof(*nv));
                if (!nv) {
                    r = err_set(err, -ENOMEM, "Out of memory");
                    break;
                }
                set.v = nv;
                struct bm *nb = &set.v[set.n];
                memset(nb, 0, sizeof(*nb));
                nb->name = strdup(a->name);
                nb->flags = BME_AUTO;
                while ((1ull << nb->gbits) < g)
                    nb->gbits++;
                nb->bytes = bits_bytes(bs->size, nb->gbits);
                nb->bits = calloc(1, nb->bytes ? nb->bytes : 1);
                nb->extra = malloc(1);
                set.n++;
                if (!nb->name || !nb->bits || !nb->extra)
                    r = err_set(err, -ENOMEM, "Out of memory");
                changed = true;
            }
        } else if (a->op == BITMAP_ACT_REMOVE) {
            int idx = (int)(b - set.v);
            free(b->name);
            free(b->bits);
            free(b->extra);
            memmove(&set.v[idx], &set.v[idx + 1],
                    (size_t)(set.n - idx - 1) * sizeof(*set.v));
            set.n--;
            changed = true;
        } else if (a->op == BITMAP_ACT_CLEAR) {
            memset(b->bits, 0, b->bytes);
            changed = true;
        } else if (a->op == BITMAP_ACT_ENABLE) {
            b->flags |= BME_AUTO;
            changed = true;
        } else if (a->op == BITMAP_ACT_DISABLE) {
            b->flags &= ~BME_AUTO;
            changed = true;
        } else if (a->op == BITMAP_ACT_MERGE) {
            struct bmset other = { 0 };
            struct bmset *from = &set;
            if (a->src && a->src != bs) {
                if (a->src->drv != bs->drv) {
                    r = err_set(err, -ENOENT, "Dirty bitmap '%s' not found",
                                a->src_name);
                    break;
                }
                r = load_set(a->src, &other, false, true, err);
                from = &other;
            }
            const struct bm *sb = r >= 0 ? find(from, a->src_name) : NULL;
            if (r >= 0 && !sb)
                r = err_set(err, -ENOENT, "Dirty bitmap '%s' not found",
                            a->src_name);
            else if (r >= 0 && sb->keep)
                r = err_set(err, -EBUSY, "Bitmap '%s' is inconsistent and "
                            "cannot be used", a->src_name);
            if (r >= 0) {
                merge_bits(b, sb, min_u64(bs->size, a->src ? a->src->size
                                                           : bs->size));
                changed = true;
            }
            bmset_free(&other);
        }
        if (r < 0)
            *failed = i;
    }
    if (changed) {
        struct err e2 = ERR_INIT;
        int w = store_all(bs, &set, &e2);
        if (w >= 0)
            w = free_old(bs, &old, old_doff, old_dsize, &e2);
        if (w < 0 && r >= 0) {
            r = w;
            *err = e2;
            *failed = n - 1;
        }
    }
out:
    bmset_free(&set);
    bmset_free(&old);
    return r;
}

/* ---- tracking guest writes ---- */

struct qcow2_bm_live {
    struct bmset set;
    uint64_t doff, dsize;   /* the directory the set was loaded from */
};

int qcow2_bitmaps_live_load(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_bm_live *l = calloc(1, sizeof(*l));
    if (!l)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = load_set(bs, &l->set, true, false, err);
    bool tracked = false;
    for (int i = 0; r >= 0 && i < l->set.n; i++)
        tracked |= !l->set.v[i].keep;
    if (r < 0 || !tracked) {
        bmset_free(&l->set);
        free(l);
        return r;
    }
    l->doff = s->x.bitmap_dir_offset;
    l->dsize = s->x.bitmap_dir_size;
    s->bm_live = l;
    return 0;
}

/* Set bits [a, b] of `bits`. */
static void set_bits(uint8_t *bits, uint64_t a, uint64_t b)
{
    while (a <= b && a % 8)
        bits[a / 8] |= (uint8_t)(1u << (a % 8)), a++;
    if (a + 8 <= b + 1) {
        uint64_t n = (b + 1 - a) / 8;
        memset(bits + a / 8, 0xff, n);
        a += n * 8;
    }
    while (a <= b)
        bits[a / 8] |= (uint8_t)(1u << (a % 8)), a++;
}

void qcow2_bitmaps_dirty(struct bdev *bs, uint64_t off, uint64_t len)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_bm_live *l = s->bm_live;
    if (!l || !len || off >= bs->size)
        return;
    uint64_t last = min_u64(off + len, bs->size) - 1;
    for (int i = 0; i < l->set.n; i++) {
        struct bm *b = &l->set.v[i];
        if (!b->keep)
            set_bits(b->bits, off >> b->gbits, last >> b->gbits);
    }
}

int qcow2_bitmaps_live_store(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_bm_live *l = s->bm_live;
    if (!l)
        return 0;
    s->bm_live = NULL;
    s->bitmaps_marked = false;
    int r = s->corrupt ? 0 : store_all(bs, &l->set, err);
    if (r >= 0 && !s->corrupt)
        r = free_old(bs, &l->set, l->doff, l->dsize, err);
    bmset_free(&l->set);
    free(l);
    return r;
}
