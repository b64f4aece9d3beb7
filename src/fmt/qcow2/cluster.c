/* qcow2 clusters: guest-to-host mapping through L1/L2 tables (spec
 * "Cluster mapping" and "Extended L2 Entries"), and the data path: reads,
 * allocating writes with copy-on-write from the backing chain, zero
 * writes, discards, compressed writes, block status, preallocation.
 *
 * Writes work one L2 table at a time on a private copy of the table, in
 * crash-safe order: allocate (refcounts written), flush, write data,
 * flush, write the L2 table, flush, write the L1 entry, then free what
 * the old entries referenced.  Newly allocated clusters of one request
 * are contiguous on the host, so a sequential request becomes one large
 * write per contiguous host run. */
#include "fmt/qcow2/qcow2.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

enum qcow2_ctype qcow2_l2_classify(uint64_t entry, bool ext_l2, bool data_file)
{
    if (entry & QCOW2_OFLAG_COMPRESSED)
        return QCOW2_C_COMPRESSED;
    uint64_t off = entry & QCOW2_OFFSET_MASK;
    if ((entry & QCOW2_OFLAG_ZERO) && !ext_l2)
        return off ? QCOW2_C_ZERO_ALLOC : QCOW2_C_ZERO_PLAIN;
    if (off || (data_file && (entry & QCOW2_OFLAG_COPIED)))
        return QCOW2_C_NORMAL;
    return QCOW2_C_UNALLOCATED;
}

enum qcow2_sctype qcow2_subcluster_classify(uint64_t entry, uint64_t bitmap,
                                            unsigned sc, bool ext_l2,
                                            bool data_file)
{
    enum qcow2_ctype t = qcow2_l2_classify(entry, ext_l2, data_file);
    if (!ext_l2) {
        switch (t) {
        case QCOW2_C_UNALLOCATED: return QCOW2_SC_UNALLOCATED;
        case QCOW2_C_ZERO_PLAIN:
        case QCOW2_C_ZERO_ALLOC: return QCOW2_SC_ZERO;
        case QCOW2_C_NORMAL: return QCOW2_SC_NORMAL;
        default: return QCOW2_SC_COMPRESSED;
        }
    }
    uint32_t alloc = (uint32_t)bitmap, zero = (uint32_t)(bitmap >> 32);
    if (t == QCOW2_C_COMPRESSED)
        return bitmap ? QCOW2_SC_INVALID : QCOW2_SC_COMPRESSED;
    if (alloc & zero)
        return QCOW2_SC_INVALID;
    if (t == QCOW2_C_NORMAL) {
        if (alloc & (1u << sc))
            return QCOW2_SC_NORMAL;
        return (zero & (1u << sc)) ? QCOW2_SC_ZERO : QCOW2_SC_UNALLOCATED;
    }
    if (alloc)
        return QCOW2_SC_INVALID;
    return (zero & (1u << sc)) ? QCOW2_SC_ZERO : QCOW2_SC_UNALLOCATED;
}

static inline uint64_t l2_get(const struct qcow2_state *s, const uint8_t *t,
                              uint64_t i)
{
    return ld_be64(t + i * s->l2_entry_size);
}

static inline uint64_t l2_bitmap(const struct qcow2_state *s, const uint8_t *t,
                                 uint64_t i)
{
    return s->ext_l2 ? ld_be64(t + i * 16 + 8) : 0;
}

static inline void l2_set(const struct qcow2_state *s, uint8_t *t, uint64_t i,
                          uint64_t e, uint64_t bm)
{
    st_be64(t + i * s->l2_entry_size, e);
    if (s->ext_l2)
        st_be64(t + i * 16 + 8, bm);
}

/* Grow a protocol node so that [0, end) can be written. */
int qcow2_ensure_size(struct bdev *node, uint64_t end, struct err *err)
{
    if (end <= node->size)
        return 0;
    return bdev_truncate(node, end, false, PREALLOC_OFF, err);
}

/* Read host data, zero-filling what lies past the end of the node. */
static int read_host(struct bdev *node, uint64_t off, uint64_t len,
                     uint8_t *buf, struct err *err)
{
    uint64_t n = 0;
    if (off < node->size)
        n = min_u64(len, node->size - off);
    if (n) {
        int r = bdev_pread(node, off, n, buf, err);
        if (r < 0)
            return r;
    }
    memset(buf + n, 0, len - n);
    return 0;
}

/* The cached slice of the L2 table at `l1e` that holds entry `i` of the
 * table; entry i is then at index i % s->l2_slice_entries of *t. */
static int load_l2(struct bdev *bs, uint64_t l1e, uint32_t l1_idx,
                   uint64_t i, uint8_t **t, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t off = l1e & QCOW2_OFFSET_MASK;
    if (off % s->cluster_size) {
        qcow2_mark_corrupt(bs, "L2 table offset %#" PRIx64 " unaligned "
                           "(L1 index: %#" PRIx32 ")", off, l1_idx);
        return err_set(err, -EIO, "qcow2: L2 table offset %#" PRIx64
                       " unaligned (L1 index: %#" PRIx32 ")", off, l1_idx);
    }
    if (off + s->cluster_size > bs->file->size)
        return err_set(err, -EIO, "qcow2: L2 table offset %#" PRIx64
                       " beyond the end of the image file", off);
    uint64_t sl = i / s->l2_slice_entries * s->l2_slice_size;
    return qcow2_cache_get(bs, &s->l2_cache, off + sl, t, err);
}

int qcow2_map(struct bdev *bs, const uint64_t *l1, uint32_t l1_size,
              uint64_t off, uint64_t len, struct qcow2_map *m,
              struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size, per_l1 = s->l2_entries * cs;
    uint64_t per_slice = s->l2_slice_entries * cs;
    uint64_t l1_idx = off / per_l1;
    uint64_t rest = per_slice - off % per_slice;
    uint8_t *t;
    memset(m, 0, sizeof(*m));
    len = min_u64(len, rest);
    if (l1_idx >= l1_size || !(l1[l1_idx] & QCOW2_OFFSET_MASK)) {
        m->type = QCOW2_SC_UNALLOCATED;
        m->len = len;
        return 0;
    }
    uint64_t i = (off / cs) % s->l2_entries;
    int r = load_l2(bs, l1[l1_idx], (uint32_t)l1_idx, i, &t, err);
    if (r < 0)
        return r;
    uint64_t si = i % s->l2_slice_entries;
    uint64_t in_cl = off % cs;
    unsigned sc = (unsigned)(in_cl / s->subcluster_size);
    uint64_t e = l2_get(s, t, si), bm = l2_bitmap(s, t, si);
    bool df = s->data_file != NULL;
    m->type = qcow2_subcluster_classify(e, bm, sc, s->ext_l2, df);
    m->l2_entry = e;
    if (m->type == QCOW2_SC_INVALID) {
        qcow2_mark_corrupt(bs, "Invalid cluster entry found  (L2 offset: %#"
                           PRIx64 ", L2 index: %#" PRIx64 ")",
                           (uint64_t)(l1[l1_idx] & QCOW2_OFFSET_MASK), i);
        return err_set(err, -EIO, "Input/output error");
    }
    if (m->type == QCOW2_SC_COMPRESSED) {
        m->len = min_u64(len, cs - in_cl);
        return 0;
    }
    uint64_t host = e & QCOW2_OFFSET_MASK;
    if (host % cs && m->type != QCOW2_SC_UNALLOCATED) {
        qcow2_mark_corrupt(bs, "Cluster allocation offset %#" PRIx64
                           " unaligned (L2 offset: %#" PRIx64 ", L2 index: %#"
                           PRIx64 ")", host, (uint64_t)(l1[l1_idx] & QCOW2_OFFSET_MASK), i);
        return err_set(err, -EIO, "qcow2: Cluster allocation offset %#" PRIx64
                       " unaligned", host);
    }
    m->has_host = host != 0 || (df && (e & QCOW2_OFLAG_COPIED));
    m->host_off = host + in_cl;
    /* Extend over following subclusters and clusters of the same kind. */
    uint64_t got = min_u64(len, s->subcluster_size - in_cl % s->subcluster_size);
    uint64_t next_host = host + in_cl + got;
    uint64_t pos = off + got;
    while (got < len) {
        uint64_t ci = (pos / cs) % s->l2_slice_entries;
        unsigned psc = (unsigned)((pos % cs) / s->subcluster_size);
        uint64_t pe = l2_get(s, t, ci), pbm = l2_bitmap(s, t, ci);
        enum qcow2_sctype pt = qcow2_subcluster_classify(pe, pbm, psc,
                                                          s->ext_l2, df);
        if (pt != m->type)
            break;
        uint64_t ph = pe & QCOW2_OFFSET_MASK;
        bool phh = ph != 0 || (df && (pe & QCOW2_OFLAG_COPIED));
        if (phh != m->has_host)
            break;
        if (m->type == QCOW2_SC_NORMAL && ph + pos % cs != next_host)
            break;
        if (m->type == QCOW2_SC_NORMAL && ph % cs)
            break;
        uint64_t step = min_u64(len - got, s->subcluster_size);
        got += step;
        pos += step;
        next_host += step;
    }
    m->len = got;
    return 0;
}

/* Read and decompress one compressed cluster into s->cbuf.  Called with
 * the L2 cache lock held (s->cbuf is shared by concurrent readers). */
static int load_compressed(struct bdev *bs, uint64_t entry, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (s->cbuf_entry == entry && s->cbuf_valid)
        return 0;
    uint64_t off = entry & s->coffset_mask;
    uint64_t nsec = ((entry >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t clen = nsec * 512 - (off & 511);
    if (!s->cbuf) {
        s->cbuf = malloc(s->cluster_size);
        s->cin = malloc(s->cluster_size * 2 + 512);
        if (!s->cbuf || !s->cin)
            return err_set(err, -ENOMEM, "Out of memory");
    }
    if (clen > s->cluster_size * 2 + 512)
        clen = s->cluster_size * 2 + 512;
    s->cbuf_valid = false;
    int r = read_host(bs->file, off, clen, s->cin, err);
    if (r < 0)
        return r;
    if (qcow2_decompress(s->h.compression_type, s->cin, clen, s->cbuf,
                         s->cluster_size) < 0)
        return err_set(err, -EIO, "qcow2: could not decompress the cluster "
                       "at host offset %#" PRIx64, off);
    s->cbuf_entry = entry;
    s->cbuf_valid = true;
    return 0;
}

/* Decompress a whole cluster straight into the caller's buffer, with the
 * compressed bytes in `*cin` (allocated on first use, freed by the caller):
 * no shared state, so concurrent readers decompress in parallel. */
static int read_compressed_whole(struct bdev *bs, uint64_t entry,
                                 uint8_t **cin, uint8_t *out, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t off = entry & s->coffset_mask;
    uint64_t nsec = ((entry >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t clen = nsec * 512 - (off & 511);
    uint64_t cap = s->cluster_size * 2 + 512;
    if (!*cin && !(*cin = malloc(cap)))
        return err_set(err, -ENOMEM, "Out of memory");
    if (clen > cap)
        clen = cap;
    int r = read_host(bs->file, off, clen, *cin, err);
    if (r < 0)
        return r;
    if (qcow2_decompress(s->h.compression_type, *cin, clen, out,
                         s->cluster_size) < 0)
        return err_set(err, -EIO, "qcow2: could not decompress the cluster "
                       "at host offset %#" PRIx64, off);
    return 0;
}

/* Mapping for the read path: readers may run in parallel (the driver sets
 * DRV_PARALLEL_READ), so the L2 cache, which a lookup updates, is used
 * under its lock.  Writers hold the node exclusively, so the mapping
 * stays true after the lock is dropped. */
static int map_locked(struct bdev *bs, const uint64_t *l1, uint32_t l1_size,
                      uint64_t off, uint64_t len, struct qcow2_map *m,
                      struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    pthread_mutex_lock(&s->l2_cache.lock);
    int r = qcow2_map(bs, l1, l1_size, off, len, m, err);
    pthread_mutex_unlock(&s->l2_cache.lock);
    return r;
}

static int read_with_l1(struct bdev *bs, const uint64_t *l1, uint32_t l1_size,
                        uint64_t off, uint64_t len, uint8_t *buf,
                        struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *cin = NULL;
    int r = 0;
    while (len) {
        struct qcow2_map m;
        r = map_locked(bs, l1, l1_size, off, len, &m, err);
        if (r < 0)
            break;
        switch (m.type) {
        case QCOW2_SC_UNALLOCATED:
            if (s->data_raw && m.has_host)
                r = read_host(s->data_file, m.host_off, m.len, buf, err);
            else
                r = bdev_read_backing(bs, off, m.len, buf, err);
            break;
        case QCOW2_SC_ZERO:
            memset(buf, 0, m.len);
            break;
        case QCOW2_SC_NORMAL:
            r = read_host(qcow2_data_node(bs), m.host_off, m.len, buf, err);
            break;
        case QCOW2_SC_COMPRESSED:
            if (s->data_file) {
                r = err_set(err, -EIO, "qcow2: compressed cluster in an "
                            "image with an external data file");
                break;
            }
            if (off % s->cluster_size == 0 && m.len == s->cluster_size) {
                r = read_compressed_whole(bs, m.l2_entry, &cin, buf, err);
                break;
            }
            pthread_mutex_lock(&s->l2_cache.lock);
            r = load_compressed(bs, m.l2_entry, err);
            if (r >= 0)
                memcpy(buf, s->cbuf + off % s->cluster_size, m.len);
            pthread_mutex_unlock(&s->l2_cache.lock);
            break;
        default:
            r = err_set(err, -EIO, "qcow2: invalid cluster");
            break;
        }
        if (r < 0)
            break;
        off += m.len;
        len -= m.len;
        buf += m.len;
    }
    free(cin);
    return r < 0 ? r : 0;
}

int qcow2_read(struct bdev *bs, uint64_t off, uint64_t len, void *buf,
               struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (s->dead)
        return err_set(err, -ENOMEDIUM, "No medium found");
    return read_with_l1(bs, s->l1, s->l1_size, off, len, buf, err);
}

int qcow2_write_l1(struct bdev *bs, uint32_t first, uint32_t n,
                   struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *raw = malloc((size_t)n * 8);
    if (!raw)
        return err_set(err, -ENOMEM, "Out of memory");
    for (uint32_t i = 0; i < n; i++)
        st_be64(raw + (size_t)i * 8, s->l1[first + i]);
    int r = qcow2_meta_write(bs, QCOW2_OL_L1, s->l1_offset + (uint64_t)first * 8,
                             (uint64_t)n * 8, raw, err);
    free(raw);
    return r;
}

/* ---- writing one L2 table's range ---- */

struct slice {
    uint32_t l1_idx;
    uint8_t *t;             /* private copy of the table */
    uint64_t old_l2;        /* table being replaced (COW), or 0 */
    uint64_t l2_off;        /* table written to */
    bool new_table;
    uint64_t lo, hi;        /* changed entries [lo, hi) */
    uint64_t v0, v1;        /* entries the caller uses: their slices are
                             * read from the cache and put back into it */
};

/* Copy the cached slices holding entries [e0, e1) into sl->t. */
static int slice_load(struct bdev *bs, struct slice *sl, uint64_t l1e,
                      uint64_t e0, uint64_t e1, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t n = s->l2_slice_entries;
    for (uint64_t i = e0 - e0 % n; i < e1; i += n) {
        uint8_t *cached;
        int r = load_l2(bs, l1e, sl->l1_idx, i, &cached, err);
        if (r < 0)
            return r;
        memcpy(sl->t + i * s->l2_entry_size, cached, s->l2_slice_size);
    }
    return 0;
}

/* Begin an update of entries [e0, e1) of the table of `l1_idx`: only
 * their slices are read, unless the table must be copied whole. */
static int slice_begin(struct bdev *bs, uint32_t l1_idx, bool allocate,
                       uint64_t e0, uint64_t e1, struct slice *sl,
                       struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t l1e = s->l1[l1_idx];
    int r;
    memset(sl, 0, sizeof(*sl));
    sl->l1_idx = l1_idx;
    sl->lo = UINT64_MAX;
    sl->v0 = e0;
    sl->v1 = e1;
    sl->t = calloc(1, s->cluster_size);
    if (!sl->t)
        return err_set(err, -ENOMEM, "Out of memory");
    if (l1e & QCOW2_OFFSET_MASK) {
        bool copied = l1e & QCOW2_OFLAG_COPIED;
        r = copied || !allocate ? slice_load(bs, sl, l1e, e0, e1, err)
                                : slice_load(bs, sl, l1e, 0, s->l2_entries, err);
        if (r < 0)
            return r;
        sl->l2_off = l1e & QCOW2_OFFSET_MASK;
        if (copied)
            return 0;
        sl->old_l2 = sl->l2_off;
    }
    if (!allocate) {
        sl->l2_off = 0;
        return 0;
    }
    r = qcow2_alloc_clusters(bs, 1, &sl->l2_off, err);
    if (r < 0)
        return r;
    sl->new_table = true;
    return 0;
}

static void slice_touch(struct slice *sl, uint64_t i)
{
    assert(i >= sl->v0 && i < sl->v1);
    if (i < sl->lo)
        sl->lo = i;
    if (i + 1 > sl->hi)
        sl->hi = i + 1;
}

/* Write the changed table (after data), then the L1 entry, then release
 * the old table. */
static int slice_commit(struct bdev *bs, struct slice *sl, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    int r = 0;
    uint8_t *c;
    if (sl->hi == 0 && !sl->new_table)
        return 0;
    if (!sl->l2_off)
        return 0;
    uint64_t b0 = sl->new_table ? 0 : sl->lo * s->l2_entry_size;
    uint64_t b1 = sl->new_table ? s->cluster_size : sl->hi * s->l2_entry_size;
    r = qcow2_ensure_size(bs->file, sl->l2_off + b1, err);
    if (r >= 0)
        r = qcow2_meta_write(bs, QCOW2_OL_L2, sl->l2_off + b0, b1 - b0,
                             sl->t + b0, err);
    if (r < 0)
        return r;
    uint64_t n = s->l2_slice_entries;
    for (uint64_t i = sl->v0 - sl->v0 % n; i < sl->v1; i += n) {
        uint64_t b = i * s->l2_entry_size;
        if (qcow2_cache_get_empty(&s->l2_cache, sl->l2_off + b, &c, err) < 0)
            break;
        memcpy(c, sl->t + b, s->l2_slice_size);
    }
    if (!sl->new_table)
        return 0;
    r = qcow2_barrier(bs, err);
    if (r < 0)
        return r;
    s->l1[sl->l1_idx] = sl->l2_off | QCOW2_OFLAG_COPIED;
    r = qcow2_write_l1(bs, sl->l1_idx, 1, err);
    if (r < 0)
        return r;
    if (sl->old_l2) {
        r = qcow2_barrier(bs, err);
        if (r >= 0)
            r = qcow2_free_clusters(bs, sl->old_l2, 1, err);
    }
    return r;
}

static void slice_end(struct slice *sl)
{
    free(sl->t);
    sl->t = NULL;
}

/* Where the bytes of a write come from: a buffer, or (convert -C) a
 * range of another node that the kernel copies into the host clusters
 * with bdev_copy_range(). */
struct wsrc {
    const uint8_t *buf;     /* the request's bytes, or NULL */
    struct bdev *node;      /* otherwise: the source node ... */
    uint64_t off;           /* ... and its offset of the request's start */
};

/* Store the request bytes [g, g+len) at host offset `host` of `node`. */
static int wsrc_store(const struct wsrc *w, uint64_t req_off, uint64_t g,
                      uint64_t len, struct bdev *node, uint64_t host,
                      struct err *err)
{
    if (w->buf)
        return bdev_pwrite(node, host, len, w->buf + (g - req_off), err);
    return bdev_copy_range(w->node, w->off + (g - req_off), node, host, len,
                           err);
}

/* Plan for one cluster of a write. */
struct cplan {
    uint64_t guest;         /* guest cluster offset */
    uint64_t a, b;          /* bytes of the request in this cluster */
    uint64_t ra, rb;        /* region written to the host (guest offsets) */
    uint64_t host;          /* host cluster offset */
    bool alloc;             /* needs a new host cluster */
    bool free_old;          /* release the old entry after the update */
    uint64_t old_entry, new_entry, new_bitmap;
    uint8_t *fill;          /* cluster buffer when [ra,rb) != [a,b) */
};

static uint32_t sc_mask(const struct qcow2_state *s, uint64_t a, uint64_t b)
{
    /* Subclusters of the cluster touched by [a, b) (offsets in cluster). */
    unsigned first = (unsigned)(a / s->subcluster_size);
    unsigned last = (unsigned)((b - 1) / s->subcluster_size);
    uint64_t m = ((2ull << last) - 1) & ~((1ull << first) - 1);
    return (uint32_t)m;
}

/* A cluster written in place (allocated, COPIED) must start on a cluster
 * boundary; `guest` is where the write enters it. */
static int check_inplace(struct bdev *bs, uint64_t e, uint64_t guest,
                         struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    enum qcow2_ctype t = qcow2_l2_classify(e, s->ext_l2, s->data_file != NULL);
    uint64_t off = e & QCOW2_OFFSET_MASK;
    if ((t != QCOW2_C_NORMAL && t != QCOW2_C_ZERO_ALLOC) ||
        !(e & QCOW2_OFLAG_COPIED) || off % s->cluster_size == 0)
        return 0;
    qcow2_mark_corrupt(bs, "Data cluster offset %#" PRIx64 " unaligned "
                       "(guest offset: %#" PRIx64 ")", off, guest);
    return err_set(err, -EIO, "Input/output error");
}

static int plan_cluster(struct bdev *bs, struct slice *sl, uint64_t i,
                        struct cplan *p, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    uint64_t e = l2_get(s, sl->t, i), bm = l2_bitmap(s, sl->t, i);
    enum qcow2_ctype t = qcow2_l2_classify(e, s->ext_l2, s->data_file != NULL);
    uint64_t off = e & QCOW2_OFFSET_MASK;
    uint64_t ca = p->a - p->guest, cb = p->b - p->guest;
    int r = check_inplace(bs, e, p->a, err);
    if (r < 0)
        return r;
    if (s->ext_l2 &&
        qcow2_subcluster_classify(e, bm, (unsigned)(ca / s->subcluster_size), true,
                                  s->data_file != NULL) == QCOW2_SC_INVALID) {
        qcow2_mark_corrupt(bs, "Invalid cluster entry found (L2 offset: %#" PRIx64
                           ", L2 index: %#" PRIx64 ")",
                           (uint64_t)(s->l1[sl->l1_idx] & QCOW2_OFFSET_MASK), i);
        return err_set(err, -EIO, "Input/output error");
    }

    p->old_entry = e;
    p->ra = p->a;
    p->rb = p->b;
    if (s->data_file) {
        p->host = p->guest;
        p->new_entry = p->guest | QCOW2_OFLAG_COPIED;
        if (t == QCOW2_C_COMPRESSED)
            return err_set(err, -EIO, "qcow2: compressed cluster in an image "
                           "with an external data file");
        if (t == QCOW2_C_NORMAL)
            p->host = off;
        p->new_entry = p->host | QCOW2_OFLAG_COPIED;
    } else if (t == QCOW2_C_NORMAL && (e & QCOW2_OFLAG_COPIED)) {
        p->host = off;
        p->new_entry = e;
    } else if (t == QCOW2_C_ZERO_ALLOC && (e & QCOW2_OFLAG_COPIED)) {
        p->host = off;
        p->new_entry = off | QCOW2_OFLAG_COPIED;
        p->ra = p->guest;
        p->rb = p->guest + cs;
    } else {
        p->alloc = true;
        p->free_old = t == QCOW2_C_COMPRESSED || t == QCOW2_C_NORMAL ||
                      t == QCOW2_C_ZERO_ALLOC;
    }
    if (!s->ext_l2) {
        if (p->alloc || (s->data_file && t != QCOW2_C_NORMAL)) {
            p->ra = p->guest;
            p->rb = p->guest + cs;
        }
        p->new_bitmap = 0;
        return 0;
    }
    /* Extended L2: whole-cluster copy when the old cluster has data we
     * must carry over; otherwise only the touched subclusters. */
    uint32_t alloc = (uint32_t)bm, zero = (uint32_t)(bm >> 32);
    uint32_t touched = sc_mask(s, ca, cb);
    if (p->alloc && (t == QCOW2_C_COMPRESSED ||
                     (t == QCOW2_C_NORMAL && alloc))) {
        p->ra = p->guest;
        p->rb = p->guest + cs;
        alloc = t == QCOW2_C_COMPRESSED ? 0xffffffffu : (alloc | touched);
        zero = t == QCOW2_C_COMPRESSED ? 0 : (zero & ~touched);
        p->new_bitmap = (uint64_t)zero << 32 | alloc;
        return 0;
    }
    uint64_t sz = s->subcluster_size;
    unsigned hsc = (unsigned)(ca / sz), tsc = (unsigned)((cb - 1) / sz);
    bool head_alloc = !p->alloc && (alloc & (1u << hsc));
    bool tail_alloc = !p->alloc && (alloc & (1u << tsc));
    if (!head_alloc)
        p->ra = p->guest + align_down(ca, sz);
    if (!tail_alloc)
        p->rb = p->guest + align_up(cb, sz);
    alloc |= touched;
    zero &= ~touched;
    p->new_bitmap = (uint64_t)zero << 32 | alloc;
    return 0;
}

/* Fill p->fill with the current content of the region around the
 * request bytes, then copy the request bytes in (a copied source's are
 * copied to the host directly: write_data). */
static int prepare_fill(struct bdev *bs, struct cplan *p,
                        const struct wsrc *w, uint64_t req_off,
                        struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (p->ra == p->a && p->rb == p->b)
        return 0;
    p->fill = malloc(s->cluster_size);
    if (!p->fill)
        return err_set(err, -ENOMEM, "Out of memory");
    uint8_t *f = p->fill + (p->ra - p->guest);
    uint64_t e = p->old_entry;
    enum qcow2_ctype t = qcow2_l2_classify(e, s->ext_l2, s->data_file != NULL);
    int r = 0;
    if (t == QCOW2_C_ZERO_ALLOC || t == QCOW2_C_ZERO_PLAIN) {
        memset(f, 0, p->rb - p->ra);
    } else {
        uint64_t end = min_u64(p->rb, align_up(bs->size, 512));
        if (p->ra < p->a)
            r = qcow2_read(bs, p->ra, min_u64(p->a, end) - p->ra, f, err);
        if (r >= 0 && p->b < end)
            r = qcow2_read(bs, p->b, end - p->b, p->fill + (p->b - p->guest),
                           err);
        if (end < p->rb)
            memset(p->fill + (end - p->guest), 0, p->rb - end);
    }
    if (r >= 0 && w->buf)
        memcpy(p->fill + (p->a - p->guest), w->buf + (p->a - req_off),
               p->b - p->a);
    return r;
}

/* Write the data of clusters [first, last) as few host writes as
 * possible.  A copied source is copied in runs of whole clusters; in a
 * cluster that must be filled around the request, the request bytes are
 * copied and the rest written from memory, as qemu does. */
static int write_data(struct bdev *bs, struct cplan *pl, int n,
                      const struct wsrc *w, uint64_t req_off, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct bdev *node = qcow2_data_node(bs);
    uint64_t cs = s->cluster_size;
    int r = 0;
    for (int i = 0; i < n && r >= 0;) {
        int j = i + 1;
        bool need_bounce = pl[i].fill != NULL;
        while (j < n && pl[j].host == pl[j - 1].host + cs &&
               pl[j - 1].rb == pl[j - 1].guest + cs &&
               pl[j].ra == pl[j].guest &&
               (w->buf || (!pl[i].fill && !pl[j].fill))) {
            need_bounce |= pl[j].fill != NULL;
            j++;
        }
        uint64_t hstart = pl[i].host + (pl[i].ra - pl[i].guest);
        uint64_t total = pl[j - 1].rb - pl[i].ra;
        r = s->data_file ? 0 : qcow2_check_overlap(bs, 0, hstart, total, err);
        if (r < 0)
            break;
        /* The write itself extends the file to hstart + total. */
        if (!need_bounce) {
            r = wsrc_store(w, req_off, pl[i].ra, total, node, hstart, err);
        } else if (!w->buf) {
            /* one cluster (see the loop above) */
            const struct cplan *p = &pl[i];
            uint64_t h = p->host - p->guest;    /* host = guest + h */
            if (p->ra < p->a)
                r = bdev_pwrite(node, h + p->ra, p->a - p->ra,
                                p->fill + (p->ra - p->guest), err);
            if (r >= 0)
                r = wsrc_store(w, req_off, p->a, p->b - p->a, node,
                               h + p->a, err);
            if (r >= 0 && p->b < p->rb)
                r = bdev_pwrite(node, h + p->b, p->rb - p->b,
                                p->fill + (p->b - p->guest), err);
        } else {
            uint8_t *b = malloc(total);
            if (!b)
                return err_set(err, -ENOMEM, "Out of memory");
            for (int k = i; k < j; k++) {
                uint64_t len = pl[k].rb - pl[k].ra;
                const uint8_t *src = pl[k].fill ?
                    pl[k].fill + (pl[k].ra - pl[k].guest) :
                    w->buf + (pl[k].ra - req_off);
                memcpy(b + (pl[k].ra - pl[i].ra), src, len);
            }
            r = bdev_pwrite(node, hstart, total, b, err);
            free(b);
        }
        i = j;
    }
    return r;
}

static int write_slice(struct bdev *bs, uint64_t off, uint64_t len,
                       const struct wsrc *w, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    uint32_t l1_idx = (uint32_t)(off / (s->l2_entries * cs));
    struct slice sl;
    uint64_t first = off / cs, last = (off + len - 1) / cs;
    int n = (int)(last - first + 1), nalloc = 0, r;
    uint64_t data0 = 0;
    struct cplan *pl = calloc((size_t)n, sizeof(*pl));
    if (!pl)
        return err_set(err, -ENOMEM, "Out of memory");
    /* The table needs replacing only if some cluster changes mapping; a
     * plain overwrite of allocated clusters is common: check cheaply. */
    r = slice_begin(bs, l1_idx, true, first % s->l2_entries,
                    first % s->l2_entries + (uint64_t)n, &sl, err);
    if (r < 0)
        goto out;
    for (int k = 0; k < n; k++) {
        struct cplan *p = &pl[k];
        p->guest = (first + (uint64_t)k) * cs;
        p->a = max_u64(off, p->guest);
        p->b = min_u64(off + len, p->guest + cs);
        r = plan_cluster(bs, &sl, (first + (uint64_t)k) % s->l2_entries, p, err);
        if (r < 0)
            goto out;
        nalloc += p->alloc;
        r = prepare_fill(bs, p, w, off, err);
        if (r < 0)
            goto out;
    }
    if (nalloc) {
        uint64_t host;
        r = qcow2_alloc_clusters(bs, (uint64_t)nalloc, &host, err);
        if (r < 0)
            goto out;
        data0 = host;
        for (int k = 0; k < n; k++)
            if (pl[k].alloc) {
                pl[k].host = host;
                pl[k].new_entry = host | QCOW2_OFLAG_COPIED;
                host += cs;
            }
    }
    /* New clusters are unreferenced until the L2 update below, so their
     * data and refcounts share the one flush that precedes it. */
    r = write_data(bs, pl, n, w, off, err);
    if (r < 0) {
        /* Nothing references the new clusters yet: give them back (a
         * refused copy is then retried through memory by the caller). */
        if (data0)
            qcow2_release_unused(bs, data0, (uint64_t)nalloc);
        if (sl.new_table)
            qcow2_release_unused(bs, sl.l2_off, 1);
        goto out;
    }
    bool changed = false;
    for (int k = 0; k < n; k++) {
        uint64_t i = (first + (uint64_t)k) % s->l2_entries;
        if (l2_get(s, sl.t, i) != pl[k].new_entry ||
            l2_bitmap(s, sl.t, i) != pl[k].new_bitmap) {
            l2_set(s, sl.t, i, pl[k].new_entry, pl[k].new_bitmap);
            slice_touch(&sl, i);
            changed = true;
        }
    }
    if (changed || sl.new_table) {
        bool frees = false;
        /* A new table is referenced only by the L1 write, which
         * slice_commit precedes with its own flush. */
        if (!sl.new_table)
            r = qcow2_barrier(bs, err);
        if (r >= 0)
            r = slice_commit(bs, &sl, err);
        for (int k = 0; k < n; k++)
            frees |= pl[k].free_old;
        if (r >= 0 && frees)
            r = qcow2_barrier(bs, err);
        for (int k = 0; r >= 0 && k < n; k++)
            if (pl[k].free_old)
                r = qcow2_free_l2_entry(bs, pl[k].old_entry, err);
    }
out:
    for (int k = 0; k < n; k++)
        free(pl[k].fill);
    free(pl);
    slice_end(&sl);
    return r;
}

/* check_inplace() for the cluster holding guest offset `pos`, as seen
 * before a write decides how to reach it. */
static int check_entry_at(struct bdev *bs, uint64_t pos, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size, per_l1 = s->l2_entries * cs;
    uint64_t l1_idx = pos / per_l1;
    uint8_t *t;
    if (l1_idx >= s->l1_size || !(s->l1[l1_idx] & QCOW2_OFFSET_MASK))
        return 0;
    uint64_t i = (pos / cs) % s->l2_entries;
    int r = load_l2(bs, s->l1[l1_idx], (uint32_t)l1_idx, i, &t, err);
    if (r < 0)
        return r;
    return check_inplace(bs, l2_get(s, t, i % s->l2_slice_entries), pos, err);
}

/* The writable L2 table is only needed when a mapping changes; for plain
 * overwrites of allocated clusters skip the table copy entirely. */
static int try_overwrite(struct bdev *bs, uint64_t off, uint64_t len,
                         const struct wsrc *w, bool *done, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t pos = off;
    *done = false;
    if (s->ext_l2)
        return 0;
    while (pos < off + len) {
        struct qcow2_map m;
        int r = check_entry_at(bs, pos, err);
        if (r >= 0)
            r = qcow2_map(bs, s->l1, s->l1_size, pos, off + len - pos, &m, err);
        if (r < 0)
            return r;
        if (m.type != QCOW2_SC_NORMAL)
            return 0;
        if (!s->data_file) {
            /* COPIED flag of every cluster in the run. */
            uint64_t cs = s->cluster_size, per_l1 = s->l2_entries * cs;
            uint64_t l1e = s->l1[pos / per_l1];
            uint8_t *t;
            if (!(l1e & QCOW2_OFLAG_COPIED))
                return 0;
            /* qcow2_map() stops at the end of the slice. */
            r = load_l2(bs, l1e, (uint32_t)(pos / per_l1),
                        (pos / cs) % s->l2_entries, &t, err);
            if (r < 0)
                return r;
            for (uint64_t c = pos / cs; c <= (pos + m.len - 1) / cs; c++)
                if (!(l2_get(s, t, c % s->l2_slice_entries) & QCOW2_OFLAG_COPIED))
                    return 0;
        }
        pos += m.len;
    }
    pos = off;
    while (pos < off + len) {
        struct qcow2_map m;
        int r = qcow2_map(bs, s->l1, s->l1_size, pos, off + len - pos, &m, err);
        if (r >= 0 && !s->data_file)
            r = qcow2_check_overlap(bs, 0, m.host_off, m.len, err);
        if (r >= 0)
            r = wsrc_store(w, off, pos, m.len, qcow2_data_node(bs),
                           m.host_off, err);
        if (r < 0)
            return r;
        pos += m.len;
    }
    *done = true;
    return 0;
}

static int check_writable(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    if (s->dead)
        return err_set(err, -ENOMEDIUM, "No medium found");
    if (s->snapshot_loaded)
        return err_set(err, -EACCES, "Image is read-only");
    if (s->corrupt)
        return err_set(err, -EIO, "Input/output error");
    return qcow2_bitmaps_mark_in_use(bs, err);
}

static int write_from(struct bdev *bs, uint64_t off, uint64_t len,
                      struct wsrc *w, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t per_l1 = s->l2_entries * s->cluster_size;
    bool done;
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    if (s->h.crypt_method)
        return err_set(err, -ENOTSUP, "qcow2: encrypted images are not "
                       "supported yet");
    s->cbuf_valid = false;
    r = try_overwrite(bs, off, len, w, &done, err);
    if (r < 0 || done)
        return r;
    while (len) {
        uint64_t n = min_u64(len, per_l1 - off % per_l1);
        r = write_slice(bs, off, n, w, err);
        if (r < 0)
            return r;
        off += n;
        len -= n;
        if (w->buf)
            w->buf += n;
        else
            w->off += n;
    }
    return 0;
}

int qcow2_write(struct bdev *bs, uint64_t off, uint64_t len, const void *buf,
                struct err *err)
{
    struct wsrc w = { .buf = buf };
    return write_from(bs, off, len, &w, err);
}

int qcow2_copy_range_to(struct bdev *bs, uint64_t off, struct bdev *src,
                        uint64_t soff, uint64_t len, struct err *err)
{
    struct wsrc w = { .node = src, .off = soff };
    return write_from(bs, off, len, &w, err);
}

/* ---- zero writes and discards ---- */

enum zmode { Z_ZERO, Z_ZERO_UNMAP, Z_DISCARD, Z_DEALLOC };

/* Apply a zero/discard to whole clusters [off, off+len) of one table. */
static int zero_slice(struct bdev *bs, uint64_t off, uint64_t len,
                      enum zmode mode, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    uint32_t l1_idx = (uint32_t)(off / (s->l2_entries * cs));
    bool v3 = s->h.version >= 3;
    struct slice sl;
    uint64_t l1e = s->l1[l1_idx];
    int r;
    /* Nothing to do where no table exists and nothing shows through. */
    if (!(l1e & QCOW2_OFFSET_MASK) &&
        (mode == Z_DEALLOC || ((mode == Z_DISCARD) && !bs->backing)))
        return 0;
    uint64_t n = len / cs, i0 = (off / cs) % s->l2_entries;
    r = slice_begin(bs, l1_idx, true, i0, i0 + n, &sl, err);
    if (r < 0)
        goto out;
    uint64_t *freed = calloc(n ? n : 1, 8);
    uint64_t nfreed = 0;
    if (!freed) {
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    for (uint64_t k = 0; k < n; k++) {
        uint64_t i = i0 + k;
        uint64_t e = l2_get(s, sl.t, i), bm = l2_bitmap(s, sl.t, i);
        enum qcow2_ctype t = qcow2_l2_classify(e, s->ext_l2, s->data_file != NULL);
        bool allocated = t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC ||
                         t == QCOW2_C_COMPRESSED;
        uint64_t ne, nbm = 0;
        bool unmap;
        if (mode == Z_ZERO || mode == Z_ZERO_UNMAP) {
            unmap = t == QCOW2_C_COMPRESSED ||
                    (mode == Z_ZERO_UNMAP && allocated && !s->data_raw);
            ne = unmap ? 0 : e;
            if (s->ext_l2)
                nbm = 0xffffffffull << 32;
            else
                ne |= QCOW2_OFLAG_ZERO;
        } else {
            unmap = allocated;
            if (mode == Z_DISCARD && (bs->backing || allocated) && v3) {
                ne = s->ext_l2 ? 0 : QCOW2_OFLAG_ZERO;
                nbm = s->ext_l2 ? 0xffffffffull << 32 : 0;
            } else {
                ne = 0;
            }
            if (s->data_file && !s->data_raw && mode == Z_DISCARD)
                unmap = allocated;
        }
        if (ne == e && nbm == bm)
            continue;
        if (s->data_file && mode == Z_DISCARD && allocated) {
            /* Keep a raw data file equal to what the guest reads. */
            uint64_t h = t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC ?
                         (e & QCOW2_OFFSET_MASK) : (off / cs + k) * cs;
            r = qcow2_ensure_size(s->data_file, h + cs, err);
            if (r >= 0)
                r = s->data_raw ?
                    bdev_pwrite_zeroes(s->data_file, h, cs, BDEV_ZERO_MAY_UNMAP, err) :
                    bdev_discard(s->data_file, h, cs, err);
            if (r < 0)
                goto free_out;
        }
        l2_set(s, sl.t, i, ne, nbm);
        slice_touch(&sl, i);
        if (unmap && !s->data_file)
            freed[nfreed++] = e;
    }
    r = slice_commit(bs, &sl, err);
    if (r >= 0 && nfreed)
        r = qcow2_barrier(bs, err);
    for (uint64_t k = 0; r >= 0 && k < nfreed; k++)
        r = qcow2_free_l2_entry(bs, freed[k], err);
free_out:
    free(freed);
out:
    slice_end(&sl);
    return r;
}

static int zero_clusters(struct bdev *bs, uint64_t off, uint64_t len,
                         enum zmode mode, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t per_l1 = s->l2_entries * s->cluster_size;
    s->cbuf_valid = false;
    while (len) {
        uint64_t n = min_u64(len, per_l1 - off % per_l1);
        int r = zero_slice(bs, off, n, mode, err);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

/* Whether guest range [off, off+len) reads as zeros right now. */
static int reads_zero(struct bdev *bs, uint64_t off, uint64_t len, bool *z,
                      struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    *z = true;
    while (len) {
        struct qcow2_map m;
        int r = qcow2_map(bs, s->l1, s->l1_size, off, len, &m, err);
        if (r < 0)
            return r;
        if (m.type == QCOW2_SC_NORMAL || m.type == QCOW2_SC_COMPRESSED ||
            (m.type == QCOW2_SC_UNALLOCATED &&
             bs->backing && off < bs->backing->size)) {
            *z = false;
            return 0;
        }
        off += m.len;
        len -= m.len;
    }
    return 0;
}

static int write_zero_bytes(struct bdev *bs, uint64_t off, uint64_t len,
                            struct err *err)
{
    uint8_t *z = calloc(1, len);
    if (!z)
        return err_set(err, -ENOMEM, "Out of memory");
    int r = qcow2_write(bs, off, len, z, err);
    free(z);
    return r;
}

/* Zero-flag the part of one cluster's subclusters fully inside the range
 * (extended L2), writing explicit zeros for partial subclusters. */
static int zero_partial(struct bdev *bs, uint64_t off, uint64_t len,
                        struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size, g = align_down(off, cs);
    bool z;
    int r = reads_zero(bs, g, min_u64(cs, align_up(bs->size, 512) - g), &z, err);
    if (r < 0 && s->dead) {
        /* The lookup found the image corrupt: the zeros would go through
         * an ordinary write, which a dead image refuses. */
        err_clear(err);
        return err_set(err, -ENOMEDIUM, "No medium found");
    }
    if (r < 0)
        return r;
    if (z && s->h.version >= 3 && !s->data_raw)
        return zero_clusters(bs, g, cs, Z_ZERO, err);
    if (!s->ext_l2 || s->data_raw)
        return write_zero_bytes(bs, off, len, err);
    uint64_t sz = s->subcluster_size;
    uint64_t a = align_up(off, sz), b = align_down(off + len, sz);
    if (a >= b)
        return write_zero_bytes(bs, off, len, err);
    if (a > off && (r = write_zero_bytes(bs, off, a - off, err)) < 0)
        return r;
    if (off + len > b && (r = write_zero_bytes(bs, b, off + len - b, err)) < 0)
        return r;
    /* Mark subclusters [a, b) zero. */
    struct slice sl;
    uint32_t l1_idx = (uint32_t)(g / (s->l2_entries * cs));
    uint64_t i = (g / cs) % s->l2_entries;
    r = slice_begin(bs, l1_idx, true, i, i + 1, &sl, err);
    if (r >= 0) {
        uint64_t e = l2_get(s, sl.t, i), bm = l2_bitmap(s, sl.t, i);
        enum qcow2_ctype t = qcow2_l2_classify(e, true, s->data_file != NULL);
        if (t == QCOW2_C_COMPRESSED) {
            slice_end(&sl);
            return write_zero_bytes(bs, a, b - a, err);
        }
        uint32_t m = sc_mask(s, a - g, b - g);
        uint64_t nbm = (bm & ~(uint64_t)m) | ((uint64_t)m << 32);
        if (nbm != bm) {
            l2_set(s, sl.t, i, e, nbm);
            slice_touch(&sl, i);
            if (sl.new_table)
                r = qcow2_barrier(bs, err);
            if (r >= 0)
                r = slice_commit(bs, &sl, err);
        }
    }
    slice_end(&sl);
    return r;
}

int qcow2_write_zeroes(struct bdev *bs, uint64_t off, uint64_t len,
                       unsigned flags, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    uint64_t end = off + len;
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    if (s->h.crypt_method)
        return -ENOTSUP;
    if (s->data_raw) {
        r = qcow2_ensure_size(s->data_file, end, err);
        if (r >= 0)
            r = bdev_pwrite_zeroes(s->data_file, off, len, 0, err);
        if (r < 0)
            return r;
    }
    /* A request reaching the image end covers the tail cluster. */
    uint64_t aend = end == bs->size ? align_up(end, cs) : end;
    if (s->h.version < 3) {
        if (bs->backing || !(flags & BDEV_ZERO_MAY_UNMAP) ||
            off % cs || aend % cs)
            return -ENOTSUP;
        return zero_clusters(bs, off, aend - off, Z_DEALLOC, err);
    }
    enum zmode mode = (flags & BDEV_ZERO_MAY_UNMAP) ? Z_ZERO_UNMAP : Z_ZERO;
    uint64_t a = align_up(off, cs), b = align_down(aend, cs);
    if (a >= b) {
        /* Within one cluster, or straddling two without a full one. */
        uint64_t mid = min_u64(a, end);
        r = zero_partial(bs, off, mid - off, err);
        if (r >= 0 && end > mid)
            r = zero_partial(bs, mid, end - mid, err);
        return r;
    }
    if (off < a && (r = zero_partial(bs, off, a - off, err)) < 0)
        return r;
    if ((r = zero_clusters(bs, a, b - a, mode, err)) < 0)
        return r;
    if (aend > b && end > b)
        r = zero_partial(bs, b, end - b, err);
    return r;
}

int qcow2_discard_full(struct bdev *bs, uint64_t off, uint64_t len,
                       struct err *err)
{
    return zero_clusters(bs, off, len, Z_DEALLOC, err);
}

int qcow2_discard(struct bdev *bs, uint64_t off, uint64_t len,
                  struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    /* A v2 image has no zero flag: deallocating would show the backing
     * file's data, so the (advisory) discard does nothing, as in qemu. */
    if (s->h.version < 3 && bs->backing)
        return 0;
    uint64_t end = off + len;
    uint64_t a = align_up(off, cs);
    uint64_t b = end == bs->size ? align_up(end, cs) : align_down(end, cs);
    if (a >= b)
        return 0;
    return zero_clusters(bs, a, b - a, Z_DISCARD, err);
}

/* ---- compressed writes ---- */

long qcow2_compress_cluster(struct bdev *bs, const void *buf, uint64_t len,
                           void *out, size_t cap)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    const uint8_t *in = buf;
    uint8_t *pad = NULL;
    if (len > cs)
        return -EINVAL;
    if (len < cs) {     /* the image's last cluster: zero-padded */
        pad = calloc(1, cs);
        if (!pad)
            return -ENOMEM;
        memcpy(pad, buf, len);
        in = pad;
    }
    long clen = qcow2_compress(s->h.compression_type, in, cs, out,
                               (size_t)min_u64(cap, cs - 1));
    free(pad);
    return clen;
}

int qcow2_write_compressed_data(struct bdev *bs, uint64_t off,
                                const void *cdata, uint64_t clen,
                                struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    if (s->data_file)
        return err_set(err, -ENOTSUP, "Compression not supported with "
                       "external data files");
    if (s->h.crypt_method)
        return err_set(err, -ENOTSUP, "qcow2: encrypted images are not "
                       "supported yet");
    if (off % cs || clen == 0 || clen >= cs)
        return err_set(err, -EINVAL, "Invalid argument");
    struct slice sl = { 0 };
    s->cbuf_valid = false;
    uint32_t l1_idx = (uint32_t)(off / (s->l2_entries * cs));
    uint64_t i = (off / cs) % s->l2_entries;
    r = slice_begin(bs, l1_idx, true, i, i + 1, &sl, err);
    if (r < 0)
        goto out;
    uint64_t e = l2_get(s, sl.t, i);
    if (e & (QCOW2_OFFSET_MASK | QCOW2_OFLAG_COMPRESSED)) {
        r = err_set(err, -EIO, "Input/output error");
        goto out;
    }
    uint64_t host;
    r = qcow2_alloc_bytes(bs, clen, &host, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r >= 0)
        r = qcow2_ensure_size(bs->file, host + clen, err);
    if (r >= 0)
        r = bdev_pwrite(bs->file, host, clen, cdata, err);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    if (r < 0)
        goto out;
    uint64_t nsec = ((host + clen - 1) >> 9) - (host >> 9);
    l2_set(s, sl.t, i, host | QCOW2_OFLAG_COMPRESSED | (nsec << s->csize_shift), 0);
    slice_touch(&sl, i);
    r = slice_commit(bs, &sl, err);
out:
    slice_end(&sl);
    return r;
}

static int write_compressed_cluster(struct bdev *bs, uint64_t off,
                                    uint64_t len, const void *buf,
                                    struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    int r = check_writable(bs, err);
    if (r < 0)
        return r;
    if (s->data_file)
        return err_set(err, -ENOTSUP, "Compression not supported with "
                       "external data files");
    if (s->h.crypt_method)
        return err_set(err, -ENOTSUP, "qcow2: encrypted images are not "
                       "supported yet");
    uint8_t *out = malloc(cs);
    if (!out)
        return err_set(err, -ENOMEM, "Out of memory");
    long clen = qcow2_compress_cluster(bs, buf, len, out, cs - 1);
    if (clen == -ENOSPC)
        r = qcow2_write(bs, off, len, buf, err);
    else if (clen < 0)
        r = err_set(err, -EIO, "Could not compress data");
    else
        r = qcow2_write_compressed_data(bs, off, out, (uint64_t)clen, err);
    free(out);
    return r;
}

/* Whole clusters (the last one may end at the image end), each
 * compressed on its own. */
int qcow2_write_compressed(struct bdev *bs, uint64_t off, uint64_t len,
                           const void *buf, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size;
    const uint8_t *p = buf;
    /* An empty write ends a compressed copy: the file is padded to whole
     * sectors, as QEMU leaves it. */
    if (len == 0) {
        uint64_t fsize = bs->file->size;
        if (fsize % 512 == 0)
            return 0;
        return bdev_truncate(bs->file, align_up(fsize, 512), false,
                             PREALLOC_OFF, err);
    }
    if (off % cs || (len % cs && off + len != bs->size))
        return err_set(err, -EINVAL, "Invalid argument");
    while (len) {
        uint64_t n = min_u64(len, cs);
        int r = write_compressed_cluster(bs, off, n, p, err);
        if (r < 0)
            return r;
        off += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* ---- block status ---- */

int qcow2_block_status(struct bdev *bs, uint64_t off, uint64_t len,
                       struct bstatus *st, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    struct qcow2_map m;
    if (s->dead)
        return err_set(err, -ENOMEDIUM, "No medium found");
    /* Probed on the first query whatever it asks, as qemu does (a damaged
     * refcount structure is reported here, before any mapping). */
    if (!s->meta_prealloc) {
        struct err e2 = ERR_INIT;
        s->meta_prealloc = qcow2_detect_meta_prealloc(bs, &e2) == 1 ? 2 : 1;
    }
    int r = map_locked(bs, s->l1, s->l1_size, off, len, &m, err);
    if (r < 0)
        return r;
    st->len = m.len;
    st->flags = 0;
    if (m.has_host && m.type != QCOW2_SC_COMPRESSED && !s->h.crypt_method) {
        st->flags |= BS_OFFSET_VALID;
        st->host_off = m.host_off;
        st->file = qcow2_data_node(bs);
    }
    switch (m.type) {
    case QCOW2_SC_ZERO:
        st->flags |= BS_ZERO | BS_ALLOCATED;
        break;
    case QCOW2_SC_NORMAL:
    case QCOW2_SC_COMPRESSED:
        st->flags |= BS_DATA | BS_ALLOCATED;
        break;
    default:
        if (s->data_raw && m.has_host)
            st->flags |= BS_DATA | BS_ALLOCATED;
        break;
    }
    if ((st->flags & BS_DATA) && (st->flags & BS_OFFSET_VALID) &&
        s->meta_prealloc == 2)
        st->flags |= BS_RECURSE;
    return 0;
}

/* ---- preallocation ---- */

int qcow2_preallocate(struct bdev *bs, uint64_t start, uint64_t size,
                      struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint64_t cs = s->cluster_size, per_l1 = s->l2_entries * cs;
    uint64_t nclusters = div_round_up(size, cs);
    int r = 0;
    for (uint64_t off = align_down(start, cs); off < nclusters * cs && r >= 0;) {
        uint64_t n = min_u64(nclusters * cs - off, per_l1 - off % per_l1);
        uint32_t l1_idx = (uint32_t)(off / per_l1);
        struct slice sl;
        uint64_t i0 = (off / cs) % s->l2_entries, cnt = n / cs, need = 0;
        r = slice_begin(bs, l1_idx, true, i0, i0 + cnt, &sl, err);
        for (uint64_t k = 0; r >= 0 && k < cnt; k++)
            need += qcow2_l2_classify(l2_get(s, sl.t, i0 + k), s->ext_l2,
                                      s->data_file != NULL) == QCOW2_C_UNALLOCATED;
        uint64_t host = 0;
        if (r >= 0 && need && !s->data_file)
            r = qcow2_alloc_clusters(bs, need, &host, err);
        for (uint64_t k = 0; r >= 0 && k < cnt; k++) {
            uint64_t i = i0 + k;
            if (qcow2_l2_classify(l2_get(s, sl.t, i), s->ext_l2,
                                  s->data_file != NULL) != QCOW2_C_UNALLOCATED)
                continue;
            uint64_t h = s->data_file ? off + k * cs : host;
            host += s->data_file ? 0 : cs;
            l2_set(s, sl.t, i, h | QCOW2_OFLAG_COPIED,
                   s->ext_l2 ? 0xffffffffull : 0);
            slice_touch(&sl, i);
        }
        if (r >= 0 && need && !s->data_file)
            r = qcow2_ensure_size(bs->file, host, err);
        if (r >= 0)
            r = qcow2_barrier(bs, err);
        if (r >= 0)
            r = slice_commit(bs, &sl, err);
        slice_end(&sl);
        off += n;
    }
    return r;
}
