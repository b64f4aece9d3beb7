/* copy: see copy.h.
 *
 * A planner, run under the engine lock by whichever worker needs work,
 * walks the block status of the sources and hands out the next request
 * (position, length, kind).  The worker then reads, scans for zeros,
 * compresses and writes that request itself.  In-order mode makes a
 * worker wait before writing until every earlier request is written, so
 * reads and zero scanning still overlap.  Offsets are bytes; every request
 * is a multiple of 512 bytes because sources are concatenated at 512-byte
 * boundaries, as qemu-img does. */
#include "block/copy.h"
#include "block/driver.h"
#include "block/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "util/align.h"
#include "util/zero.h"

#define SECTOR 512u
#define BUF_BYTES (2u << 20)            /* one request's data */
#define COMPRESS_BUF_BYTES (256u << 10) /* the same with -c */
#define PIECE_BYTES (512u << 10)        /* read-then-write unit in a request */
#define MAX_REQUEST (UINT64_C(1) << 30) /* one block status query */

enum kind { K_DATA, K_ZERO, K_BACKING };

struct engine {
    const struct copy_params *p;
    uint64_t total;
    uint64_t *src_base;         /* start of each source in the target */
    uint64_t *src_len;          /* rounded-up size of each source */
    uint64_t *src_align;        /* status runs are trimmed to this */
    uint64_t src_off;           /* the window's start in src[0] */
    uint64_t cluster;           /* target cluster size (compression) */
    uint64_t buf_bytes;         /* largest request with data */
    uint64_t zero_align;        /* alignment of zero/data splits */
    uint64_t piece;             /* data requests are read and written in
                                 * pieces of this size (0: whole) */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Planner state (under lock). */
    uint64_t pos;
    uint64_t status_end;
    enum kind status;
    /* Progress accounting. */
    uint64_t data_total, data_done;
    /* In-order writes: everything before wr_pos is written. */
    bool ordered;
    uint64_t wr_pos;
    /* Rate limiting. */
    struct timespec start;
    uint64_t rate_done;
    /* Copy offloading is on until the first refusal, as in qemu-img,
     * after which requests are read and written (under lock). */
    bool offload;
    /* First failure. */
    int ret;
    struct err err;
};

uint64_t copy_total_size(struct bdev **src, int nsrc)
{
    uint64_t t = 0;
    for (int i = 0; i < nsrc; i++)
        t += align_up(src[i]->size, SECTOR);
    return t;
}

uint64_t bdev_cluster_size(struct bdev *bs)
{
    struct bdev_info info;
    struct err err = ERR_INIT;
    memset(&info, 0, sizeof(info));
    if (!bs->drv->get_info)
        return 0;
    int r = bs->drv->get_info(bs, &info, &err);
    if (info.format_specific)
        json_object_put(info.format_specific);
    if (r < 0)
        return 0;
    return info.cluster_size > 0 ? (uint64_t)info.cluster_size : 0;
}

bool bdev_can_compress(struct bdev *bs)
{
    return bs->drv->write_compressed != NULL;
}

static void fail(struct engine *e, int r, struct err *src_err, const char *fmt,
                 unsigned long long at)
{
    (void)src_err;
    if (e->ret == 0) {
        e->ret = r;
        err_set(&e->err, r, fmt, at, strerror(-r));
    }
    pthread_cond_broadcast(&e->cond);
}

static int select_source(const struct engine *e, uint64_t pos)
{
    int i = 0;
    while (i + 1 < e->p->nsrc && pos >= e->src_base[i + 1])
        i++;
    return i;
}

/* Status of the run starting at `soff` in source `si`, limited to `n`
 * bytes: sets *count and returns BS_* flags or a negative errno. */
static int source_status(struct engine *e, int si, uint64_t soff, uint64_t n,
                         uint64_t *count, struct err *err)
{
    struct bdev *bs = e->p->src[si];
    struct bstatus st;
    if (soff >= bs->size) {             /* the 512-byte rounding tail */
        *count = n;
        return BS_ZERO;
    }
    n = min_u64(n, bs->size - soff);
    struct bdev *base = e->p->dst_has_backing ? bs->backing : NULL;
    int r = bdev_block_status_chain(bs, base, soff, n, &st, err);
    if (r < 0)
        return r;
    *count = st.len;
    unsigned f = st.flags;
    /* A range no layer allocates reads as zeros when the chain ends. */
    if (!(f & (BS_DATA | BS_ZERO)) && !(f & BS_ALLOCATED) &&
        (!base || bs->backing == NULL))
        f |= BS_ZERO;
    return (int)f;
}

static void warn(struct engine *e, const char *fmt, unsigned long long off,
                 int r)
{
    char msg[256];
    if (!e->p->warn)
        return;
    snprintf(msg, sizeof(msg), fmt, off, strerror(-r));
    e->p->warn(e->p->opaque, msg);
}

/* The next request at e->pos: its length, and e->status its kind.  Under
 * the lock. */
static int plan(struct engine *e, uint64_t *len)
{
    const struct copy_params *p = e->p;
    uint64_t pos = e->pos;
    int si = select_source(e, pos);
    uint64_t woff = pos - e->src_base[si];     /* in the source's window */
    uint64_t soff = woff + e->src_off;         /* in the source */
    uint64_t n = min_u64(e->total - pos, MAX_REQUEST);
    bool post_backing_zero = false;

    if (p->dst_has_backing && p->dst_backing_size != UINT64_MAX) {
        if (pos >= p->dst_backing_size)
            post_backing_zero = true;
        else if (pos + n > p->dst_backing_size)
            n = p->dst_backing_size - pos;
    }

    if (e->status_end <= pos) {
        uint64_t count = 0;
        int f;
        uint64_t q = min_u64(n, e->src_len[si] - woff);
        for (;;) {
            struct err err = ERR_INIT;
            if (e->src_off % SECTOR) {
                /* Block status speaks in sectors: a window starting off a
                 * sector boundary is simply read. */
                f = BS_DATA;
                count = q;
                break;
            }
            f = source_status(e, si, soff, q, &count, &err);
            if (f >= 0)
                break;
            if (!p->salvage) {
                fail(e, f, NULL, "error while reading block status at "
                     "offset %llu: %s", (unsigned long long)soff);
                return f;
            }
            if (q <= SECTOR) {
                warn(e, "error while reading block status at offset %llu: %s",
                     (unsigned long long)soff, f);
                f = BS_DATA;
                count = SECTOR;
                break;
            }
            q = align_up(div_round_up(q, 4), SECTOR);
        }
        /* (A window may end off a sector boundary.) */
        n = min_u64(align_up(count, SECTOR), e->total - pos);
        uint64_t tail = (soff + n) % e->src_align[si];
        if (n > tail)
            n -= tail;
        if (f & BS_ZERO)
            e->status = post_backing_zero ? K_BACKING : K_ZERO;
        else if (f & BS_DATA)
            e->status = K_DATA;
        else
            e->status = p->dst_has_backing ? K_BACKING : K_DATA;
        e->status_end = pos + n;
    }

    n = min_u64(n, e->status_end - pos);
    if (e->status == K_DATA)
        n = min_u64(n, e->buf_bytes);
    /* Compressed clusters are written whole: a short run makes its whole
     * cluster data. */
    if (p->compress) {
        if (n < e->cluster) {
            n = min_u64(e->cluster, e->total - pos);
            e->status = K_DATA;
        } else {
            n = align_down(n, e->cluster);
        }
    }
    *len = n;
    return 0;
}

/* Read [pos, pos+len) of the concatenated sources. */
static int read_span(struct engine *e, uint64_t pos, uint64_t len,
                     uint8_t *buf)
{
    uint64_t single_until = 0;
    while (len) {
        int si = select_source(e, pos);
        struct bdev *bs = e->p->src[si];
        uint64_t woff = pos - e->src_base[si];
        uint64_t soff = woff + e->src_off;
        uint64_t n = min_u64(len, e->src_len[si] - woff);
        if (single_until > pos)
            n = min_u64(n, SECTOR);
        uint64_t valid = soff < bs->size ? min_u64(n, bs->size - soff) : 0;
        int r = 0;
        if (valid) {
            struct err err = ERR_INIT;
            r = bdev_pread(bs, soff, valid, buf, &err);
        }
        if (r < 0) {
            if (!e->p->salvage)
                return r;
            if (n > SECTOR) {
                single_until = pos + n;
                continue;
            }
            warn(e, "error while reading offset %llu: %s",
                 (unsigned long long)soff, r);
            memset(buf, 0, n);
        } else if (valid < n) {
            memset(buf + valid, 0, n - valid);
        }
        pos += n;
        len -= n;
        buf += n;
    }
    return 0;
}

/* Length of the leading run of buf that is all zero or all data, in whole
 * sectors, with its end moved to `align` when the run is followed by more
 * (to avoid read-modify-write of partial target blocks).  Returns true for
 * data. */
static bool sector_run(const uint8_t *buf, uint64_t n, uint64_t *run,
                       uint64_t pos, uint64_t align)
{
    if (buf_is_zero(buf, n)) {
        *run = n;
        return false;
    }
    bool zero = buf_is_zero(buf, SECTOR);
    uint64_t i = SECTOR;
    for (; i < n; i += SECTOR)
        if (zero != buf_is_zero(buf + i, SECTOR))
            break;
    if (i >= n) {
        *run = n;
        return !zero;
    }
    uint64_t tail = (pos + i) % align;
    if (tail) {
        if (zero && i <= tail)
            zero = false;
        if (!zero)
            i = min_u64(i + align - tail, n);
        else
            i -= tail;
    }
    *run = i;
    return !zero;
}

/* Like sector_run, but a data run absorbs following zero runs shorter than
 * `min` bytes, so small holes do not break up writes. */
static bool data_run(const uint8_t *buf, uint64_t n, uint64_t *run,
                     uint64_t min, uint64_t pos, uint64_t align)
{
    uint64_t r;
    if (n < min)
        min = n;
    if (!sector_run(buf, n, &r, pos, align)) {
        *run = r;
        return false;
    }
    uint64_t used = r, checked = r;
    while (checked < n) {
        bool d = sector_run(buf + checked, n - checked, &r, pos + checked,
                            align);
        checked += r;
        if (d)
            used = checked;
        else if (r >= min)
            break;
    }
    *run = used;
    return true;
}

static void throttle(struct engine *e, uint64_t bytes)
{
    uint64_t rate = e->p->rate_bytes;
    if (!rate)
        return;
    pthread_mutex_lock(&e->lock);
    uint64_t done = e->rate_done;
    e->rate_done += bytes;
    pthread_mutex_unlock(&e->lock);
    /* The request may start once the bytes before it fit the budget. */
    double due = (double)done / (double)rate;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double el = (double)(now.tv_sec - e->start.tv_sec) +
                (double)(now.tv_nsec - e->start.tv_nsec) / 1e9;
    if (due > el) {
        double w = due - el;
        struct timespec ts = { (time_t)w, (long)((w - (double)(time_t)w) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

static int write_zeroes(struct engine *e, uint64_t pos, uint64_t n)
{
    struct err err = ERR_INIT;
    if (e->p->dst_is_zero)
        return 0;
    return bdev_pwrite_zeroes(e->p->dst, pos, n, BDEV_ZERO_MAY_UNMAP, &err);
}

/* Per-cluster outcome of the compression step. */
#define CL_ZERO   (-100000L)    /* all zeros: nothing or zeros to write */
#define CL_LEGACY (-100001L)    /* driver compresses when writing */

struct wbuf {
    uint8_t *buf;               /* the request's data */
    uint8_t *cbuf;              /* compressed clusters, at their offsets */
    long *clen;                 /* per cluster: length, CL_*, or -errno */
};

/* Compress every cluster of a request (no lock held: workers do this in
 * parallel, before waiting for their turn to write). */
static int compress_request(struct engine *e, uint64_t n, struct wbuf *w)
{
    struct bdev *dst = e->p->dst;
    uint64_t cs = e->cluster;
    for (uint64_t o = 0, j = 0; o < n; o += cs, j++) {
        uint64_t m = min_u64(cs, n - o);
        if (e->p->sparse_bytes && buf_is_zero(w->buf + o, m))
            w->clen[j] = CL_ZERO;
        else if (dst->drv->compress_cluster && dst->drv->write_compressed_data)
            w->clen[j] = dst->drv->compress_cluster(dst, w->buf + o, m,
                                                    w->cbuf + o, cs - 1);
        else
            w->clen[j] = CL_LEGACY;
        if (w->clen[j] < 0 && w->clen[j] != -ENOSPC && w->clen[j] != CL_ZERO &&
            w->clen[j] != CL_LEGACY)
            return (int)w->clen[j];
    }
    return 0;
}

static int write_compressed_data(struct bdev *bs, uint64_t off,
                                 const void *cdata, uint64_t clen,
                                 struct err *err)
{
    bool locked = !(bs->drv->caps & DRV_THREAD_SAFE);
    if (locked)
        pthread_rwlock_wrlock(&bs->lock);
    int r = bs->drv->write_compressed_data(bs, off, cdata, clen, err);
    if (locked)
        pthread_rwlock_unlock(&bs->lock);
    return r;
}

static int write_compressed(struct engine *e, uint64_t pos, uint64_t n,
                            const struct wbuf *w)
{
    uint64_t cs = e->cluster;
    for (uint64_t o = 0, j = 0; o < n; o += cs, j++) {
        uint64_t m = min_u64(cs, n - o);
        struct err err = ERR_INIT;
        long c = w->clen[j];
        int r;
        if (c == CL_ZERO) {
            r = write_zeroes(e, pos + o, m);
        } else {
            throttle(e, m);
            if (c == CL_LEGACY)
                r = bdev_pwrite_compressed(e->p->dst, pos + o, m, w->buf + o,
                                           &err);
            else if (c == -ENOSPC)      /* does not shrink: store it plain */
                r = bdev_pwrite(e->p->dst, pos + o, m, w->buf + o, &err);
            else
                r = write_compressed_data(e->p->dst, pos + o, w->cbuf + o,
                                          (uint64_t)c, &err);
        }
        if (r < 0)
            return r;
    }
    return 0;
}

/* Write a request's data as its zero and data runs.  The first `skip`
 * bytes are already written: they are all data, so the first run is data
 * and covers them (data runs only grow past their data sectors). */
static int write_runs(struct engine *e, uint64_t pos, uint64_t n,
                      const uint8_t *buf, uint64_t skip)
{
    const struct copy_params *p = e->p;
    while (n) {
        uint64_t m = n;
        bool data = !p->sparse_bytes ||
                    data_run(buf, n, &m, p->sparse_bytes, pos, e->zero_align);
        uint64_t s = min_u64(skip, m);
        int r = 0;
        if (data) {
            struct err err = ERR_INIT;
            if (m > s) {
                throttle(e, m - s);
                r = bdev_pwrite(p->dst, pos + s, m - s, buf + s, &err);
            }
        } else {
            r = write_zeroes(e, pos, m);
        }
        if (r < 0)
            return r;
        skip = 0;
        pos += m;
        n -= m;
        buf += m;
    }
    return 0;
}

static int write_request(struct engine *e, uint64_t pos, uint64_t n,
                         const struct wbuf *w, enum kind k)
{
    const struct copy_params *p = e->p;
    const uint8_t *buf = w->buf;
    if (k == K_BACKING)
        return 0;
    if (k == K_ZERO)
        return write_zeroes(e, pos, n);
    if (p->compress)
        return write_compressed(e, pos, n, w);
    return write_runs(e, pos, n, buf, 0);
}

/* Offload [pos, pos+len) of the concatenated sources to the target
 * (bdev_copy_range), source by source. */
static int offload_request(struct engine *e, uint64_t pos, uint64_t len)
{
    while (len) {
        int si = select_source(e, pos);
        uint64_t soff = pos - e->src_base[si];
        uint64_t n = min_u64(len, e->src_len[si] - soff);
        struct err err = ERR_INIT;
        throttle(e, n);
        int r = bdev_copy_range(e->p->src[si], soff, e->p->dst, pos, n, &err);
        if (r < 0)
            return r;
        pos += n;
        len -= n;
    }
    return 0;
}

/* Wait for this request's turn to write (in-order mode); false once the
 * copy has failed. */
static bool take_turn(struct engine *e, uint64_t pos)
{
    pthread_mutex_lock(&e->lock);
    if (e->ordered)
        while (e->wr_pos != pos && !e->ret)
            pthread_cond_wait(&e->cond, &e->lock);
    bool go = !e->ret;
    pthread_mutex_unlock(&e->lock);
    return go;
}

/* Whether the request at pos may be written now (without waiting). */
static bool is_turn(struct engine *e, uint64_t pos)
{
    pthread_mutex_lock(&e->lock);
    bool now = !e->ordered || e->wr_pos == pos || e->ret;
    pthread_mutex_unlock(&e->lock);
    return now;
}

static bool all_data(const uint8_t *buf, uint64_t n)
{
    for (uint64_t i = 0; i < n; i += SECTOR)
        if (buf_is_zero(buf + i, min_u64(SECTOR, n - i)))
            return false;
    return true;
}

/* Copy a data request piece by piece.  Pieces are read, and scanned for
 * zero sectors while still in the CPU cache, until the turn to write
 * comes (so reading and scanning one request overlaps writing another).
 * Then the pieces known to hold data in every sector are written at once
 * (the request's first data run covers them whatever follows), and the
 * rest goes on a piece at a time the same way.  From the first piece with
 * a zero sector on, the rest is read and the runs are decided over the
 * whole request as for any other, so what is written and where holes
 * are left does not change. */
struct pieces {
    uint64_t done;      /* bytes read */
    uint64_t clean;     /* bytes known to hold data in every sector */
    bool zero_seen;     /* a piece had a zero sector */
};

static int read_piece(struct engine *e, uint64_t pos, uint64_t n,
                      uint8_t *buf, struct pieces *pc)
{
    uint64_t m = min_u64(e->piece, n - pc->done);
    int r = read_span(e, pos + pc->done, m, buf + pc->done);
    if (r < 0)
        return r;
    if (!pc->zero_seen &&
        (!e->p->sparse_bytes || all_data(buf + pc->done, m)))
        pc->clean = pc->done + m;
    else
        pc->zero_seen = true;
    pc->done += m;
    return 0;
}

static void copy_in_pieces(struct engine *e, uint64_t pos, uint64_t n,
                           uint8_t *buf)
{
    const struct copy_params *p = e->p;
    struct pieces pc = { 0 };
    uint64_t written = 0;
    bool writing = false;
    int r = read_piece(e, pos, n, buf, &pc);
    while (r == 0 && pc.done < n && !is_turn(e, pos))
        r = read_piece(e, pos, n, buf, &pc);
    if (r < 0)
        goto failed;
    if (!take_turn(e, pos))
        return;
    for (;;) {
        if (pc.clean > written) {
            struct err err = ERR_INIT;
            writing = true;
            throttle(e, pc.clean - written);
            r = bdev_pwrite(p->dst, pos + written, pc.clean - written,
                            buf + written, &err);
            if (r < 0)
                goto failed;
            written = pc.clean;
        }
        if (written == n)
            return;
        if (pc.zero_seen)
            break;
        writing = false;
        r = read_piece(e, pos, n, buf, &pc);
        if (r < 0)
            goto failed;
    }
    writing = false;
    if (pc.done < n) {
        r = read_span(e, pos + pc.done, n - pc.done, buf + pc.done);
        if (r < 0)
            goto failed;
    }
    writing = true;
    r = write_runs(e, pos, n, buf, written);
    if (r < 0)
        goto failed;
    return;
failed:
    pthread_mutex_lock(&e->lock);
    fail(e, r, NULL, writing ? "error while writing at byte %llu: %s"
                             : "error while reading at byte %llu: %s",
         (unsigned long long)pos);
    pthread_mutex_unlock(&e->lock);
}

static void *worker(void *opaque)
{
    struct engine *e = opaque;
    const struct copy_params *p = e->p;
    struct wbuf w = { 0 };
    w.buf = aligned_alloc(4096, e->buf_bytes);
    if (p->compress) {
        w.cbuf = malloc(e->buf_bytes + e->cluster);
        w.clen = calloc(e->buf_bytes / SECTOR, sizeof(long));
    }
    uint8_t *buf = w.buf;
    if (!buf || (p->compress && (!w.cbuf || !w.clen))) {
        free(w.buf);
        free(w.cbuf);
        free(w.clen);
        pthread_mutex_lock(&e->lock);
        fail(e, -ENOMEM, NULL, "error while reading at byte %llu: %s",
             (unsigned long long)e->pos);
        pthread_mutex_unlock(&e->lock);
        return NULL;
    }
    for (;;) {
        uint64_t pos, n;
        enum kind k;
        pthread_mutex_lock(&e->lock);
        if (e->ret || e->pos >= e->total) {
            pthread_mutex_unlock(&e->lock);
            break;
        }
        if (plan(e, &n) < 0) {
            pthread_mutex_unlock(&e->lock);
            break;
        }
        pos = e->pos;
        k = e->status;
        bool offload = k == K_DATA && e->offload;
        if (!p->sparse_bytes && k == K_ZERO)
            n = min_u64(n, e->buf_bytes);
        e->pos += n;
        if (k == K_DATA || (!p->sparse_bytes && k == K_ZERO)) {
            e->data_done += n;
            if (p->progress && e->data_total)
                p->progress(p->opaque, 100.0 * (double)e->data_done /
                                       (double)e->data_total);
        }
        pthread_mutex_unlock(&e->lock);

        int r = 0;
        if (k == K_DATA && !offload && e->piece && n > e->piece) {
            copy_in_pieces(e, pos, n, buf);
            if (e->ordered) {
                pthread_mutex_lock(&e->lock);
                e->wr_pos = pos + n;
                pthread_cond_broadcast(&e->cond);
                pthread_mutex_unlock(&e->lock);
            }
            continue;
        }
        if (k == K_DATA && !offload) {
            r = read_span(e, pos, n, buf);
            if (r < 0) {
                pthread_mutex_lock(&e->lock);
                fail(e, r, NULL, "error while reading at byte %llu: %s",
                     (unsigned long long)pos);
                pthread_mutex_unlock(&e->lock);
            }
        } else if (!p->sparse_bytes && k == K_ZERO) {
            memset(buf, 0, n);
            k = K_DATA;
        }
        if (r == 0 && k == K_DATA && p->compress) {
            r = compress_request(e, n, &w);
            if (r < 0) {
                pthread_mutex_lock(&e->lock);
                fail(e, r, NULL, "error while writing at byte %llu: %s",
                     (unsigned long long)pos);
                pthread_mutex_unlock(&e->lock);
            }
        }

        bool go = take_turn(e, pos);

        if (go && offload) {
            /* A refusal turns offloading off for good and this request
             * is copied through memory instead. */
            if (offload_request(e, pos, n) == 0) {
                go = false;
            } else {
                pthread_mutex_lock(&e->lock);
                e->offload = false;
                pthread_mutex_unlock(&e->lock);
                r = read_span(e, pos, n, buf);
                if (r < 0) {
                    pthread_mutex_lock(&e->lock);
                    fail(e, r, NULL, "error while reading at byte %llu: %s",
                         (unsigned long long)pos);
                    pthread_mutex_unlock(&e->lock);
                    go = false;
                }
            }
        }
        if (go) {
            r = write_request(e, pos, n, &w, k);
            if (r < 0) {
                pthread_mutex_lock(&e->lock);
                fail(e, r, NULL, "error while writing at byte %llu: %s",
                     (unsigned long long)pos);
                pthread_mutex_unlock(&e->lock);
            }
        }
        if (e->ordered) {
            pthread_mutex_lock(&e->lock);
            e->wr_pos = pos + n;
            pthread_cond_broadcast(&e->cond);
            pthread_mutex_unlock(&e->lock);
        }
    }
    free(w.buf);
    free(w.cbuf);
    free(w.clen);
    return NULL;
}

/* Walk the plan once to know how much data the copy moves (progress is
 * measured in it). */
static int count_data(struct engine *e)
{
    uint64_t n;
    while (e->pos < e->total) {
        if (plan(e, &n) < 0)
            return e->ret;
        if (e->status == K_DATA ||
            (!e->p->sparse_bytes && e->status == K_ZERO))
            e->data_total += n;
        e->pos += n;
    }
    e->pos = 0;
    e->status_end = 0;
    return 0;
}

static int engine_init(struct engine *e, const struct copy_params *p,
                       struct err *err)
{
    memset(e, 0, sizeof(*e));
    e->p = p;
    e->buf_bytes = BUF_BYTES;
    /* Overlapping writes to raw targets (where order cannot show)
     * measured no faster through the page cache and made the kernel's
     * reclaim stalls more frequent, so writes stay in order unless -W. */
    e->ordered = !p->out_of_order;
    e->offload = p->copy_offload;
    int n = p->nsrc;
    if (p->length && n != 1)
        return err_set(err, -EINVAL, "A source window needs a single source");
    e->src_off = p->length ? p->src_offset : 0;
    e->src_base = calloc((size_t)n, sizeof(uint64_t));
    e->src_len = calloc((size_t)n, sizeof(uint64_t));
    e->src_align = calloc((size_t)n, sizeof(uint64_t));
    if (!e->src_base || !e->src_len || !e->src_align)
        return err_set(err, -ENOMEM, "Out of memory");
    for (int i = 0; i < n; i++) {
        struct bdev *bs = p->src[i];
        e->src_base[i] = e->total;
        e->src_len[i] = p->length ? p->length : align_up(bs->size, SECTOR);
        e->total += e->src_len[i];
        uint64_t a = align_up(max_u64(bs->align, 1), SECTOR);
        uint64_t c = bdev_cluster_size(bs);
        e->src_align[i] = max_u64(a, c);
    }
    if (p->compress) {
        e->cluster = bdev_cluster_size(p->dst);
        if (!e->cluster || e->cluster > BUF_BYTES)
            return err_set(err, -EINVAL, "invalid cluster size");
        /* Compression is CPU-bound: small requests keep every worker busy
         * and the memory of eight workers (data, compressed copy, zlib
         * state) below qemu-img's. */
        e->buf_bytes = max_u64(e->cluster, COMPRESS_BUF_BYTES);
    }
    uint64_t zs = p->sparse_bytes ? p->sparse_bytes : SECTOR;
    uint64_t pow2 = SECTOR;
    while (pow2 * 2 <= zs)
        pow2 *= 2;
    e->zero_align = max_u64(pow2, align_up(max_u64(p->dst->align, 1), SECTOR));
    /* Writing each piece right after reading it finds the data still in
     * the CPU cache.  Only for targets without clusters: where writes
     * allocate, more and smaller writes would move metadata allocations
     * into the middle of requests (a different file layout), and cost
     * more than the cache saves. */
    e->piece = PIECE_BYTES;
    if (p->compress || p->copy_offload || bdev_cluster_size(p->dst) ||
        e->piece >= e->buf_bytes || e->piece % e->zero_align)
        e->piece = 0;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    return 0;
}

static void engine_free(struct engine *e)
{
    free(e->src_base);
    free(e->src_len);
    free(e->src_align);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
}

int copy_run(const struct copy_params *p, struct err *err)
{
    struct engine e;
    int r = engine_init(&e, p, err);
    if (r < 0) {
        engine_free(&e);
        return r;
    }
    r = count_data(&e);
    if (r < 0)
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &e.start);

    int nw = p->workers < 1 ? 1 : p->workers;
    if (nw > COPY_MAX_WORKERS)
        nw = COPY_MAX_WORKERS;
    /* Writes in order leave extra workers waiting for their turn with a
     * filled buffer; more of them than CPUs only cost memory, cache and
     * context switches (each request's reads already have many pieces in
     * flight).  On 2 CPUs, 2 workers took half the CPU time of 8. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (e.ordered && ncpu > 0 && nw > (ncpu < 2 ? 2 : ncpu))
        nw = ncpu < 2 ? 2 : (int)ncpu;
    pthread_t tid[COPY_MAX_WORKERS];
    int started = 0;
    for (int i = 1; i < nw; i++) {
        if (pthread_create(&tid[started], NULL, worker, &e) != 0)
            break;
        started++;
    }
    worker(&e);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    r = e.ret;
    /* The end of a compressed copy (formats pad their file). */
    if (r == 0 && p->compress) {
        struct err werr = ERR_INIT;
        r = bdev_pwrite_compressed(p->dst, 0, 0, NULL, &werr);
        if (r < 0)
            err_set(&e.err, r, "%s", werr.msg);
    }
out:
    if (r < 0)
        err_set(err, r, "%s", e.err.msg);
    engine_free(&e);
    return r;
}

int bdev_snapshot_load(struct bdev *bs, const char *id, const char *name,
                       struct err *err)
{
    if (!id && !name)
        return err_set(err, -EINVAL, "snapshot_id and name are both NULL");
    if (!bs->read_only && (bs->flags & BDEV_O_RDWR))
        return err_set(err, -EINVAL, "Device is not readonly");
    if (!bs->drv->snapshot_load)
        return err_set(err, -ENOTSUP, "Block format '%s' used by device '' "
                       "does not support temporarily loading internal "
                       "snapshots", bs->drv->name);
    return bs->drv->snapshot_load(bs, id, name, err);
}

int bdev_snapshot_load_id_or_name(struct bdev *bs, const char *id_or_name,
                                  struct err *err)
{
    struct err e1 = ERR_INIT;
    int r = bdev_snapshot_load(bs, id_or_name, NULL, &e1);
    if (r == -ENOENT || r == -EINVAL)
        return bdev_snapshot_load(bs, NULL, id_or_name, err);
    if (r < 0)
        err_set(err, r, "%s", e1.msg);
    return r;
}

static bool desc_has(const struct opt_desc *d, const char *name)
{
    for (; d && d->name; d++)
        if (!strcmp(d->name, name))
            return true;
    return false;
}

bool bdev_format_has_create_opt(const char *fmt, const char *opt)
{
    const struct driver *drv = registry_find(fmt);
    return drv && desc_has(drv->create_opts, opt);
}

int bdev_check_create_opts(const char *fmt, const struct kvlist *opts,
                           struct err *err)
{
    const struct driver *drv = registry_find(fmt);
    const struct driver *proto = registry_find("file");
    for (size_t i = 0; i < opts->n; i++) {
        const char *k = opts->items[i].key;
        if (!desc_has(drv ? drv->create_opts : NULL, k) &&
            !desc_has(proto ? proto->create_opts : NULL, k))
            return err_set(err, -EINVAL, "Invalid parameter '%s'", k);
    }
    return 0;
}

bool bdev_format_can_compress(const char *fmt)
{
    const struct driver *drv = registry_find(fmt);
    return drv && drv->write_compressed != NULL;
}

int bdev_bitmap_count(struct bdev *bs)
{
    struct bdev_info info;
    struct err err = ERR_INIT;
    struct json_object *data, *list;
    int n = 0;
    memset(&info, 0, sizeof(info));
    if (!bs->drv->get_info)
        return 0;
    if (bs->drv->get_info(bs, &info, &err) < 0) {
        /* A failing get_info may still have built the object. */
        if (info.format_specific)
            json_object_put(info.format_specific);
        return 0;
    }
    if (info.format_specific &&
        json_object_object_get_ex(info.format_specific, "bitmaps", &list) &&
        json_object_is_type(list, json_type_array))
        n = (int)json_object_array_length(list);
    else if (info.format_specific &&
             json_object_object_get_ex(info.format_specific, "data", &data) &&
             json_object_object_get_ex(data, "bitmaps", &list) &&
             json_object_is_type(list, json_type_array))
        n = (int)json_object_array_length(list);
    if (info.format_specific)
        json_object_put(info.format_specific);
    return n;
}

bool bdev_supports_bitmaps(struct bdev *bs)
{
    /* qcow2 keeps persistent bitmaps from version 3 (compat 1.1) on. */
    struct bdev_info info;
    struct err err = ERR_INIT;
    struct json_object *compat;
    bool ok = true;
    if (strcmp(bs->drv->name, "qcow2") || !bs->drv->get_info)
        return false;
    memset(&info, 0, sizeof(info));
    if (bs->drv->get_info(bs, &info, &err) >= 0 && info.format_specific &&
        json_object_object_get_ex(info.format_specific, "compat", &compat))
        ok = strcmp(json_object_get_string(compat), "0.10") != 0;
    if (info.format_specific)
        json_object_put(info.format_specific);
    return ok;
}
