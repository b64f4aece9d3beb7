/* qcow2 cache: a bounded, least-recently-used cache of metadata tables:
 * refcount blocks, and slices of L2 tables (l2-cache-entry-size bytes,
 * a whole table by default), each keyed by its host offset.  It is write-through:
 * callers modify a cached table and then write the changed bytes with
 * qcow2_cache_write(), so the on-disk order of metadata updates is exactly
 * the order of the calls, which keeps the crash-safety rules simple. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int qcow2_cache_init(struct qcow2_cache *c, int n, size_t table_size)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    if (n < 2)
        n = 2;
    c->e = calloc((size_t)n, sizeof(*c->e));
    if (!c->e)
        return -ENOMEM;
    c->n = n;
    c->nb_buckets = (unsigned)n * 2;
    c->buckets = malloc(c->nb_buckets * sizeof(int));
    if (!c->buckets) {
        free(c->e);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < c->nb_buckets; i++)
        c->buckets[i] = -1;
    c->table_size = table_size;

    return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    for (int i = 0; c->e && i < c->n; i++)
        free(c->e[i].data);
    free(c->e);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    memset(c, 0, sizeof(*c));
}

static unsigned bucket(const struct qcow2_cache *c, uint64_t off)
{
    return (unsigned)((off >> 9) * 0x9e3779b97f4a7c15ull >> 40) % c->nb_buckets;
}

static void unlink_entry(struct qcow2_cache *c, int i)
{
    if (!c->e[i].off)
        return;
    int *p = &c->buckets[bucket(c, c->e[i].off)];
    while (*p >= 0 && *p != i)
        p = &c->e[*p].next;
    if (*p == i)
        *p = c->e[i].next;
    c->e[i].off = 0;
}

static void link_entry(struct qcow2_cache *c, int i, uint64_t off)
{
    unsigned b = bucket(c, off);
    c->e[i].off = off;
    c->e[i].next = c->buckets[b];
    c->buckets[b] = i;
}

static struct qcow2_cache_entry *lookup(struct qcow2_cache *c, uint64_t off)
{
    for (int i = c->buckets[bucket(c, off)]; i >= 0; i = c->e[i].next)
        if (c->e[i].off == off) {
            c->e[i].lru = ++c->tick;
            return &c->e[i];
        }
    return NULL;
}

/* A free slot while there is one, else the least recently used of a few
 * sampled slots (exact LRU would cost a scan of every entry per miss). */
static struct qcow2_cache_entry *victim(struct qcow2_cache *c, uint64_t off,
                                        struct err *err)
{
    int vi = -1;
    if (c->used < c->n) {
        vi = c->used++;
    } else {
        int best = -1;
        for (int k = 0; k < 8; k++) {
            int i = (int)(c->clock++ % (uint64_t)c->n);
            if (best < 0 || c->e[i].lru < c->e[best].lru)
                best = i;
        }
        vi = best;
        unlink_entry(c, vi);
    }
    struct qcow2_cache_entry *v = &c->e[vi];
    if (!v->data) {
        v->data = malloc(c->table_size);
        if (!v->data) {
            err_set(err, -ENOMEM, "Out of memory");
            return NULL;
        }
    }
    link_entry(c, vi, off);
    v->lru = ++c->tick;
    return v;
}

int qcow2_cache_get(struct bdev *bs, struct qcow2_cache *c, uint64_t off,
                    uint8_t **table, struct err *err)
{
    struct qcow2_cache_entry *e = lookup(c, off);
    if (!e) {
        e = victim(c, off, err);
        if (!e)
            return -ENOMEM;
        int r = bdev_pread(bs->file, off, c->table_size, e->data, err);
        if (r < 0) {
            unlink_entry(c, (int)(e - c->e));
            return r;
        }
    }
    *table = e->data;
    return 0;
}

int qcow2_cache_get_empty(struct qcow2_cache *c, uint64_t off,
                          uint8_t **table, struct err *err)
{
    struct qcow2_cache_entry *e = lookup(c, off);
    if (!e) {
        e = victim(c, off, err);
        if (!e)
            return -ENOMEM;
    }
    memset(e->data, 0, c->table_size);
    *table = e->data;
    return 0;
}

int qcow2_cache_write(struct bdev *bs, struct qcow2_cache *c, uint64_t off,
                      size_t start, size_t len, struct err *err)
{
    struct qcow2_cache_entry *e = lookup(c, off);
    if (!e)
        return err_set(err, -EIO, "qcow2: metadata table not cached");
    unsigned kind = c == &qcow2_st(bs)->l2_cache ? QCOW2_OL_L2 : QCOW2_OL_RB;
    return qcow2_meta_write(bs, kind, off + start, len, e->data + start, err);
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off)
{
    struct qcow2_cache_entry *e = lookup(c, off);
    if (e)
        unlink_entry(c, (int)(e - c->e));
}

void qcow2_cache_drop_range(struct qcow2_cache *c, uint64_t off, uint64_t len)
{
    for (uint64_t o = off; o - off < len; o += c->table_size)
        qcow2_cache_drop(c, o);
}
