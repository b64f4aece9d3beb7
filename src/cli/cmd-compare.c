/* compare: whether two images have the same content, as qemu-img compare
 * decides it: unallocated ranges read as zeros, a larger image is equal
 * when its tail is zero, -s (strict) also fails on size and allocation
 * differences.  Block status is consulted first; data is read only where
 * the status cannot settle the question.  Exit codes: 0 identical,
 * 1 different, 2 open error, 3 block status error, 4 read error. */
#include "cli/cli.h"
#include "cli/progress.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "block/copy.h"
#include "util/align.h"
#include "util/zero.h"

#define IO_BUF (2u << 20)
#define SECTOR 512u

/* The status bits strict mode compares (what QEMU's status carries). */
#define STRICT_BITS (BS_DATA | BS_ZERO | BS_ALLOCATED | BS_OFFSET_VALID | BS_EOF)

struct side {
    struct bdev *bs;
    const char *name;
};

static bool quiet;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/* ---- the reading pipeline ----
 *
 * The main thread walks the block status in qemu-img's order and queues
 * one task per chunk (the same chunks qemu-img compares one by one);
 * worker threads read and scan tasks in parallel, in pieces of PIECE
 * bytes; the main thread retires finished tasks strictly in queue order,
 * so the first failure reported (read error, mismatch) and the progress
 * steps are exactly those of a sequential comparison. */

#define WORKERS 4
#define PIECE (512u << 10)
#define RING 32

enum tkind { T_NONE, T_BOTH, T_EMPTY };

struct task {
    uint64_t off, len;
    enum tkind kind;
    struct side *s;             /* T_EMPTY: the side that must be zero */
    bool done;
    int err;                    /* read error (negative errno), or 0 */
    struct side *err_side;
    int64_t diff;               /* absolute offset of the mismatch, or -1 */
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    struct task ring[RING];
    uint64_t head, next, tail;  /* queued, handed out, retired */
    bool stop;
    struct side *s1, *s2;
    uint64_t base;              /* size progress is measured against */
    pthread_t tid[WORKERS];
    int nthreads;
};

static int read_piece(struct side *s, uint64_t off, uint64_t len, uint8_t *buf)
{
    struct err err = ERR_INIT;
    return bdev_pread(s->bs, off, len, buf, &err);
}

/* Offset of the first sector holding a non-zero byte, or -1. */
static int64_t find_nonzero(const uint8_t *buf, uint64_t n)
{
    if (buf_is_zero(buf, n))
        return -1;
    uint64_t end = align_down(n, SECTOR), i;
    for (i = 0; i < end; i += SECTOR)
        if (!buf_is_zero(buf + i, SECTOR))
            return (int64_t)i;
    return (int64_t)i;
}

/* Offset of the first differing sector, or -1. */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t len)
{
    if (!memcmp(a, b, len))
        return -1;
    for (uint64_t i = 0; i < len; i += SECTOR) {
        uint64_t n = min_u64(SECTOR, len - i);
        if (memcmp(a + i, b + i, n))
            return (int64_t)i;
    }
    return -1;
}

/* Run one task.  A sequential comparison reads the whole chunk of the
 * first image, then of the second, then compares: so a read error
 * anywhere in the chunk wins over a mismatch, and one in the first image
 * over one in the second; pieces after a mismatch are still read to find
 * such errors. */
static void run_task(struct pool *p, struct task *t, uint8_t *b1, uint8_t *b2)
{
    int e1 = 0, e2 = 0;
    for (uint64_t o = 0; o < t->len; o += PIECE) {
        uint64_t n = min_u64(PIECE, t->len - o);
        int r;
        if (t->kind == T_EMPTY) {
            r = read_piece(t->s, t->off + o, n, b1);
            if (r < 0) {
                e1 = r;
                break;
            }
            if (t->diff < 0) {
                int64_t d = find_nonzero(b1, n);
                if (d >= 0)
                    t->diff = (int64_t)(t->off + o) + d;
            }
            continue;
        }
        if (!e1 && (r = read_piece(p->s1, t->off + o, n, b1)) < 0)
            e1 = r;
        if (e1) {
            if (e2)
                break;
            continue;           /* the first image's error decides */
        }
        if (!e2 && (r = read_piece(p->s2, t->off + o, n, b2)) < 0)
            e2 = r;
        if (!e2 && t->diff < 0) {
            int64_t d = first_diff(b1, b2, n);
            if (d >= 0)
                t->diff = (int64_t)(t->off + o) + d;
        }
    }
    if (e1) {
        t->err = e1;
        t->err_side = t->kind == T_EMPTY ? t->s : p->s1;
    } else if (e2) {
        t->err = e2;
        t->err_side = p->s2;
    }
}

static void *worker(void *opaque)
{
    struct pool *p = opaque;
    uint8_t *b1 = aligned_alloc(4096, PIECE), *b2 = aligned_alloc(4096, PIECE);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        for (;;) {
            /* Tasks with nothing to read are done when queued. */
            while (p->next < p->head &&
                   p->ring[p->next % RING].kind == T_NONE)
                p->next++;
            if (p->next < p->head || p->stop)
                break;
            pthread_cond_wait(&p->work, &p->lock);
        }
        if (p->stop)
            break;
        struct task *t = &p->ring[p->next++ % RING];
        pthread_mutex_unlock(&p->lock);
        if (b1 && b2)
            run_task(p, t, b1, b2);
        else
            t->err = -ENOMEM, t->err_side = t->s ? t->s : p->s1;
        pthread_mutex_lock(&p->lock);
        t->done = true;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    free(b1);
    free(b2);
    return NULL;
}

static int pool_start(struct pool *p, struct side *s1, struct side *s2,
                      uint64_t base)
{
    memset(p, 0, sizeof(*p));
    p->s1 = s1;
    p->s2 = s2;
    p->base = base;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < WORKERS; i++) {
        if (pthread_create(&p->tid[p->nthreads], NULL, worker, p) != 0)
            break;
        p->nthreads++;
    }
    if (!p->nthreads) {
        cli_error("Could not start threads");
        return 4;
    }
    return 0;
}

/* Stop the workers (abandoning queued tasks). */
static void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->tid[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
}

/* Retire the oldest task once it is done (waiting for it when `wait`):
 * report its outcome as a sequential comparison would.  Returns 0 to go
 * on, -1 when nothing was retired, or the exit code.  Under the lock. */
static int retire_one(struct pool *p, bool wait)
{
    if (p->tail == p->head)
        return -1;
    struct task *t = &p->ring[p->tail % RING];
    while (!t->done) {
        if (!wait)
            return -1;
        pthread_cond_wait(&p->done, &p->lock);
    }
    p->tail++;
    if (p->next < p->tail)      /* skipped tasks with nothing to read */
        p->next = p->tail;
    if (t->err) {
        cli_error("Error while reading offset %" PRIu64 " of %s: %s", t->off,
                  t->err_side->name, strerror(-t->err));
        return 4;
    }
    if (t->diff >= 0) {
        say("Content mismatch at offset %" PRIu64 "!\n", (uint64_t)t->diff);
        return 1;
    }
    progress_print((float)t->len / (float)p->base * 100, 100);
    return 0;
}

/* Queue a chunk; first retire what is finished (and wait for room). */
static int pool_push(struct pool *p, uint64_t off, uint64_t len,
                     enum tkind kind, struct side *s)
{
    int r;
    pthread_mutex_lock(&p->lock);
    while ((r = retire_one(p, p->head - p->tail == RING)) == 0)
        ;
    if (r > 0) {
        pthread_mutex_unlock(&p->lock);
        return r;
    }
    struct task *t = &p->ring[p->head % RING];
    *t = (struct task){ .off = off, .len = len, .kind = kind, .s = s,
                        .done = kind == T_NONE, .diff = -1 };
    p->head++;
    if (kind != T_NONE)
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* Retire every queued task; the first failure's exit code, or 0. */
static int pool_drain(struct pool *p)
{
    int r;
    pthread_mutex_lock(&p->lock);
    while ((r = retire_one(p, true)) == 0)
        ;
    pthread_mutex_unlock(&p->lock);
    return r > 0 ? r : 0;
}

static int status(struct side *s, uint64_t off, uint64_t len,
                  struct bstatus *st)
{
    struct err err = ERR_INIT;
    return bdev_status_above(s->bs, off, len, st, &err) < 0 ? -1 : 0;
}

static int status_failed(struct pool *p, struct side *s)
{
    int r = pool_drain(p);
    if (r)
        return r;
    cli_error("Sector allocation test failed for %s", s->name);
    return 3;
}

static int compare_tail(struct pool *p, struct side *over, uint64_t off,
                        uint64_t base)
{
    int r;
    while (off < base) {
        struct bstatus st;
        if (status(over, off, base - off, &st) < 0)
            return status_failed(p, over);
        uint64_t chunk = st.len;
        enum tkind k = T_NONE;
        if ((st.flags & BS_ALLOCATED) && !(st.flags & BS_ZERO)) {
            chunk = min_u64(chunk, IO_BUF);
            k = T_EMPTY;
        }
        if ((r = pool_push(p, off, chunk, k, over)))
            return r;
        off += chunk;
    }
    return pool_drain(p);
}

static int compare_common(struct pool *p, struct side *s1, struct side *s2,
                          bool strict)
{
    uint64_t size1 = s1->bs->size, size2 = s2->bs->size;
    uint64_t total = min_u64(size1, size2);
    uint64_t off = 0;
    int r;

    while (off < total) {
        struct bstatus st1, st2;
        if (status(s1, off, size1 - off, &st1) < 0)
            return status_failed(p, s1);
        if (status(s2, off, size2 - off, &st2) < 0)
            return status_failed(p, s2);
        bool al1 = st1.flags & BS_ALLOCATED, al2 = st2.flags & BS_ALLOCATED;
        uint64_t chunk = min_u64(st1.len, st2.len);
        if (strict && (st1.flags & STRICT_BITS) != (st2.flags & STRICT_BITS)) {
            if ((r = pool_drain(p)))
                return r;
            say("Strict mode: Offset %" PRIu64 " block status mismatch!\n",
                off);
            return 1;
        }
        enum tkind k = T_NONE;
        struct side *s = NULL;
        if ((st1.flags & BS_ZERO) && (st2.flags & BS_ZERO)) {
            /* both read as zeros */
        } else if (al1 == al2) {
            if (al1) {
                chunk = min_u64(chunk, IO_BUF);
                k = T_BOTH;
            }
        } else {
            chunk = min_u64(chunk, IO_BUF);
            k = T_EMPTY;
            s = al1 ? s1 : s2;
        }
        if ((r = pool_push(p, off, chunk, k, s)))
            return r;
        off += chunk;
    }
    return pool_drain(p);
}

static int compare(struct side *s1, struct side *s2, bool strict)
{
    uint64_t size1 = s1->bs->size, size2 = s2->bs->size;
    uint64_t base = max_u64(size1, size2);
    struct pool p;
    int r;

    progress_print(0, 100);
    if (strict && size1 != size2) {
        say("Strict mode: Image size mismatch!\n");
        return 1;
    }
    if ((r = pool_start(&p, s1, s2, base)))
        return r;
    r = compare_common(&p, s1, s2, strict);
    if (!r && size1 != size2) {
        struct side *over = size1 > size2 ? s1 : s2;
        say("Warning: Image size mismatch!\n");
        r = compare_tail(&p, over, min_u64(size1, size2), base);
    }
    pool_stop(&p);
    if (!r)
        say("Images are identical.\n");
    return r;
}

int cmd_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS_SHARED,
        { 0, 0, 0, 0 },
    };
    struct cli_common co = { 0 };
    const char *fmt2 = NULL;
    bool progress = false, strict = false;
    int c, rc = 1;

    optind = 0;
    while ((c = cli_getopt(argc, argv, "hf:F:T:pqsU", longopts, &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT: return rc;
        case 'F': fmt2 = optarg; break;
        case 'p': progress = true; break;
        case 's': strict = true; break;
        default:
            /* compare exits 2 on a bad object, as qemu-img does. */
            if (cli_common_option(c, optarg, &co, &rc) == CLI_OPT_EXIT)
                return rc ? 2 : 0;
            break;
        }
    }
    quiet = co.quiet;
    const char *cache = co.src_cache;
    if (quiet)
        progress = false;
    if (optind != argc - 2)
        return cli_error_exit("Expecting two image file names");
    const char *name1 = argv[optind], *name2 = argv[optind + 1];

    progress_init(progress, 2.0f);
    struct err err = ERR_INIT;
    enum cache_mode cm = CACHE_WRITEBACK;
    struct side s1 = { NULL, name1 }, s2 = { NULL, name2 };
    rc = 2;
    if (cache && cache_mode_parse(cache, &cm, &err) < 0) {
        cli_error("Invalid source cache option: %s", cache);
        goto out;
    }
    struct cli_open o = { .quiet = true, .cache = cm };
    cli_open_common(&o, &co);
    s1.bs = cli_open_image(name1, &o);
    if (!s1.bs)
        goto out;
    o.fmt = fmt2;
    s2.bs = cli_open_image(name2, &o);
    if (!s2.bs)
        goto out;
    rc = compare(&s1, &s2, strict);
out:
    bdev_close(s2.bs);
    bdev_close(s1.bs);
    progress_end();
    return rc;
}
