/* file-aio: io_uring (liburing) and Linux native AIO (io_submit through
 * raw system calls) back ends for the file protocol.
 *
 * Every thread that does I/O owns one io_uring ring and one AIO context,
 * set up on first use and torn down when the thread exits, so the copy
 * engine's and bench's worker threads submit and reap their own requests
 * without handing them to another thread or sharing a lock.  A request
 * is split into CHUNK-sized pieces that are queued together (up to DEPTH
 * in flight) and submitted with one system call; short transfers are
 * requeued for their rest.  When a thread's ring or context cannot be set
 * up (seccomp, an old kernel, resource limits) the caller falls back to
 * pread/pwrite.  QIMG_TEST_AIO_FAIL (docs/DEVELOPING.md) makes set-up
 * fail on purpose so that the fallback can be tested. */
#include "proto/file-aio.h"

#include "config.h"

#include <errno.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if HAVE_IO_URING
#include <liburing.h>
#endif

#define CHUNK (256u << 10)
#define DEPTH 32
#define SECTOR 512u

/* ---- one transfer, split into pieces ---- */

struct piece {
    uint64_t at;        /* offset of the piece within the transfer */
    uint64_t len;
    uint64_t done;      /* bytes of it already transferred */
    bool busy;
};

struct xfer {
    uint8_t *buf;
    uint64_t len, off;
    bool write, direct;
    uint64_t next;      /* first byte not yet given to a piece */
    int inflight;       /* pieces queued or in the kernel */
    int ret;            /* first error */
    struct piece p[DEPTH];
};

/* Start the next piece; its index, or -1 when none is due. */
static int xfer_take(struct xfer *x)
{
    if (x->ret || x->next >= x->len || x->inflight == DEPTH)
        return -1;
    for (int i = 0; i < DEPTH; i++) {
        if (x->p[i].busy)
            continue;
        uint64_t n = x->len - x->next;
        x->p[i] = (struct piece){ x->next, n < CHUNK ? n : CHUNK, 0, true };
        x->next += x->p[i].len;
        x->inflight++;
        return i;
    }
    return -1;
}

static uint8_t *piece_buf(const struct xfer *x, int i)
{
    return x->buf + x->p[i].at + x->p[i].done;
}

static uint64_t piece_off(const struct xfer *x, int i)
{
    return x->off + x->p[i].at + x->p[i].done;
}

static uint64_t piece_left(const struct xfer *x, int i)
{
    return x->p[i].len - x->p[i].done;
}

/* Account the result `res` of piece i; true when its rest must be queued
 * again. */
static bool xfer_done(struct xfer *x, int i, long res)
{
    struct piece *p = &x->p[i];
    if ((res == -EINTR || res == -EAGAIN) && !x->ret)
        return true;
    if (res < 0) {
        if (!x->ret)
            x->ret = (int)res;
    } else if (res == 0 && x->write) {
        if (!x->ret)
            x->ret = -EIO;
    } else {
        p->done += (uint64_t)res;
        uint64_t left = p->len - p->done;
        /* A read that stops short ends at the end of the file; with
         * O_DIRECT an unaligned stop cannot be resumed, and means the
         * same.  Past the end reads as zeros. */
        if (left && !x->write &&
            (res == 0 || (x->direct && piece_off(x, i) % SECTOR))) {
            memset(piece_buf(x, i), 0, left);
            left = 0;
        }
        if (left && !x->ret)
            return true;
    }
    p->busy = false;
    x->inflight--;
    return false;
}

/* ---- per-thread state ---- */

struct aio_tls {
    bool registered;
#if HAVE_IO_URING
    bool ur_tried;
    int ur_err;
    struct io_uring ring;
#endif
    bool la_tried;
    int la_err;
    aio_context_t ctx;
};

static __thread struct aio_tls tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_destroy(void *opaque)
{
    struct aio_tls *t = opaque;
#if HAVE_IO_URING
    if (t->ur_tried && !t->ur_err)
        io_uring_queue_exit(&t->ring);
    t->ur_tried = false;
#endif
    if (t->la_tried && !t->la_err)
        syscall(SYS_io_destroy, t->ctx);
    t->la_tried = false;
    t->registered = false;
}

static void tls_key_init(void)
{
    if (pthread_key_create(&tls_key, tls_destroy) != 0)
        tls_key = (pthread_key_t)-1;
}

static void tls_register(void)
{
    if (tls.registered)
        return;
    pthread_once(&tls_once, tls_key_init);
    if (tls_key != (pthread_key_t)-1 && pthread_setspecific(tls_key, &tls) == 0)
        tls.registered = true;
}

/* Test hook: QIMG_TEST_AIO_FAIL=io_uring,native fails those set-ups. */
static bool forced_failure(const char *name)
{
    const char *v = getenv("QIMG_TEST_AIO_FAIL");
    if (!v)
        return false;
    size_t n = strlen(name);
    for (const char *s = v; (s = strstr(s, name)) != NULL; s += n)
        if ((s == v || s[-1] == ',') && (s[n] == '\0' || s[n] == ','))
            return true;
    return false;
}

/* ---- io_uring ---- */

#if HAVE_IO_URING
static int uring_get(struct io_uring **ring)
{
    if (!tls.ur_tried) {
        tls.ur_tried = true;
        tls.ur_err = forced_failure("io_uring") ? -ENOSYS
                     : io_uring_queue_init(DEPTH, &tls.ring, 0);
        if (!tls.ur_err)
            tls_register();
    }
    *ring = &tls.ring;
    return tls.ur_err;
}

static void uring_queue(struct io_uring *ring, int fd, struct xfer *x, int i)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        /* Cannot happen with at most DEPTH pieces, but stay correct. */
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    if (!sqe) {
        xfer_done(x, i, -EAGAIN);
        if (!x->ret)
            x->ret = -EAGAIN;
        return;
    }
    unsigned n = (unsigned)piece_left(x, i);
    if (x->write)
        io_uring_prep_write(sqe, fd, piece_buf(x, i), n, piece_off(x, i));
    else
        io_uring_prep_read(sqe, fd, piece_buf(x, i), n, piece_off(x, i));
    sqe->user_data = (uint64_t)i;
}

static int uring_rw(struct io_uring *ring, int fd, struct xfer *x)
{
    int i;
    for (;;) {
        while ((i = xfer_take(x)) >= 0)
            uring_queue(ring, fd, x, i);
        if (!x->inflight)
            break;
        int r = io_uring_submit_and_wait(ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            /* The ring is unusable: collect what the kernel took, then
             * never use this ring again. */
            if (!x->ret)
                x->ret = r;
            tls.ur_err = r;
            struct __kernel_timespec ts = { 0, 100 * 1000 * 1000 };
            struct io_uring_cqe *cqe;
            while (x->inflight && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
                xfer_done(x, (int)cqe->user_data, cqe->res);
                io_uring_cqe_seen(ring, cqe);
            }
            break;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe) {
            int k = (int)cqe->user_data;
            seen++;
            if (k >= 0 && k < DEPTH && xfer_done(x, k, cqe->res))
                uring_queue(ring, fd, x, k);
        }
        io_uring_cq_advance(ring, seen);
    }
    return x->ret;
}
#endif

/* ---- Linux native AIO ---- */

static int laio_get(aio_context_t *ctx)
{
    if (!tls.la_tried) {
        tls.la_tried = true;
        tls.ctx = 0;
        if (forced_failure("native"))
            tls.la_err = -ENOSYS;
        else
            tls.la_err = syscall(SYS_io_setup, DEPTH, &tls.ctx) < 0 ? -errno : 0;
        if (!tls.la_err)
            tls_register();
    }
    *ctx = tls.ctx;
    return tls.la_err;
}

static struct iocb *laio_prep(struct iocb *cb, int fd, const struct xfer *x,
                              int i)
{
    memset(cb, 0, sizeof(*cb));
    cb->aio_fildes = (uint32_t)fd;
    cb->aio_lio_opcode = x->write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
    cb->aio_buf = (uint64_t)(uintptr_t)piece_buf(x, i);
    cb->aio_nbytes = piece_left(x, i);
    cb->aio_offset = (int64_t)piece_off(x, i);
    cb->aio_data = (uint64_t)i;
    return cb;
}

static int laio_rw(aio_context_t ctx, int fd, struct xfer *x)
{
    struct iocb cb[DEPTH];
    struct iocb *pend[DEPTH];
    struct io_event ev[DEPTH];
    int npend = 0, in_kernel = 0, i;
    for (;;) {
        while ((i = xfer_take(x)) >= 0)
            pend[npend++] = laio_prep(&cb[i], fd, x, i);
        while (npend) {
            long r = syscall(SYS_io_submit, ctx, (long)npend, pend);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && errno == EAGAIN && in_kernel)
                break;              /* reap first */
            if (r <= 0) {
                int e = r < 0 ? -errno : -EIO;
                if (!x->ret)
                    x->ret = e;
                for (int k = 0; k < npend; k++)
                    xfer_done(x, (int)pend[k]->aio_data, e);
                npend = 0;
                break;
            }
            in_kernel += (int)r;
            npend -= (int)r;
            memmove(pend, pend + r, (size_t)npend * sizeof(pend[0]));
        }
        if (!in_kernel)
            break;
        long got = syscall(SYS_io_getevents, ctx, 1L, (long)DEPTH, ev, NULL);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            /* Cannot reap: the context is unusable from here on.  Wait
             * a little for what is in flight, then give up on it. */
            if (!x->ret)
                x->ret = -errno;
            tls.la_err = x->ret;
            struct timespec ts = { 1, 0 };
            syscall(SYS_io_getevents, ctx, (long)in_kernel, (long)DEPTH, ev, &ts);
            break;
        }
        for (long k = 0; k < got; k++) {
            int idx = (int)ev[k].data;
            in_kernel--;
            if (idx >= 0 && idx < DEPTH && xfer_done(x, idx, (long)ev[k].res))
                pend[npend++] = laio_prep(&cb[idx], fd, x, idx);
        }
    }
    return x->ret;
}

/* ---- entry points ---- */

int file_aio_setup(enum file_aio mode, struct err *err)
{
    int r;
    switch (mode) {
    case FILE_AIO_IO_URING:
#if HAVE_IO_URING
        {
            struct io_uring *ring;
            r = uring_get(&ring);
            if (r < 0)
                return err_set_errno(err, r, "failed to init linux io_uring ring");
            return 0;
        }
#else
        return err_set(err, -ENOTSUP, "aio=io_uring was specified, but is "
                       "not supported in this build.");
#endif
    case FILE_AIO_NATIVE: {
        aio_context_t ctx;
        r = laio_get(&ctx);
        if (r < 0)
            return err_set_errno(err, r, "failed to create linux AIO context");
        return 0;
    }
    default:
        return 0;
    }
}

int file_aio_rw(enum file_aio mode, int fd, bool write, bool direct,
                uint8_t *buf, uint64_t len, uint64_t off)
{
    struct xfer x;
    memset(&x, 0, sizeof(x));
    x.buf = buf;
    x.len = len;
    x.off = off;
    x.write = write;
    x.direct = direct;
    if (mode == FILE_AIO_NATIVE) {
        aio_context_t ctx;
        if (laio_get(&ctx) < 0)
            return FILE_AIO_UNAVAILABLE;
        return laio_rw(ctx, fd, &x);
    }
#if HAVE_IO_URING
    if (mode == FILE_AIO_IO_URING) {
        struct io_uring *ring;
        if (uring_get(&ring) < 0)
            return FILE_AIO_UNAVAILABLE;
        return uring_rw(ring, fd, &x);
    }
#endif
    return FILE_AIO_UNAVAILABLE;
}
