/* bench: the `bench` subcommand, a simple I/O benchmark.
 *
 * Sends `count` reads (or writes with -w) of `bufsize` bytes, `depth` of
 * them in flight, starting at `offset` and advancing by `step` modulo the
 * image size, optionally flushing every N requests (draining the queue
 * first unless --no-drain).  Requests run on a small pool of worker
 * threads through the ordinary bdev data path, each thread submitting
 * its own requests through the back end that -i/-n select (the file
 * protocol's aio option: threads, native or io_uring; docs/IO.md). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "util/size.h"

#define BENCH_MAX_THREADS 16

enum { OPT_FLUSH_INTERVAL = CLI_OPT_OWN, OPT_PATTERN, OPT_NO_DRAIN };

struct bench {
    struct bdev *bs;
    uint64_t image_size;
    bool write;
    uint64_t bufsize, step;
    int pattern;
    int flush_interval;
    bool drain;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int issued, completed, count;
    int batch_end;          /* requests may be issued below this index */
    int in_flight;
    uint64_t offset;        /* offset of the next request */
    bool failed;
    struct err err;
    const char *what;       /* "Failed request" / "Failed flush request" */
};

static void usage_error(const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, arg);
    cli_error("%s", msg);
    fprintf(stderr, "Try '%s --help' for more information\n", cli_prog);
}

/* qemu_strtoul-style: base auto-detected, whole string, "-" wraps. */
static int parse_ulong(const char *s, unsigned long max, int *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || v > max)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* qemu-img's size argument check: "Invalid NAME specified..." */
static int parse_sized(const char *name, const char *s, uint64_t max,
                       uint64_t *out)
{
    int r = parse_size(s, out);
    if (r < 0 && r != -ERANGE) {
        cli_error("Invalid %s specified. You may use k, M, G, T, P or E "
                  "suffixes for", name);
        cli_error("kilobytes, megabytes, gigabytes, terabytes, petabytes "
                  "and exabytes.");
        return -1;
    }
    if (r == -ERANGE || *out > max) {
        cli_error("Invalid %s specified. Must be between 0 and %" PRIu64 ".",
                  name, max);
        return -1;
    }
    return 0;
}

static void fail_locked(struct bench *b, const char *what, const struct err *e)
{
    if (!b->failed) {
        b->failed = true;
        b->what = what;
        b->err = *e;
    }
    pthread_cond_broadcast(&b->cv);
}

static int do_flush(struct bench *b, bool locked)
{
    struct err e = ERR_INIT;
    if (locked)
        pthread_mutex_unlock(&b->mu);
    int r = bdev_flush(b->bs, &e);
    if (locked)
        pthread_mutex_lock(&b->mu);
    if (r < 0) {
        if (!locked)
            pthread_mutex_lock(&b->mu);
        fail_locked(b, "Failed flush request", &e);
        if (!locked)
            pthread_mutex_unlock(&b->mu);
    }
    return r;
}

static void *worker(void *opaque)
{
    struct bench *b = opaque;
    uint8_t *buf = aligned_alloc(4096, b->bufsize ? (b->bufsize + 4095) / 4096 * 4096 : 4096);
    if (!buf) {
        pthread_mutex_lock(&b->mu);
        struct err e = ERR_INIT;
        err_set(&e, -ENOMEM, "Out of memory");
        fail_locked(b, "Failed request", &e);
        pthread_mutex_unlock(&b->mu);
        return NULL;
    }
    memset(buf, b->pattern, b->bufsize);

    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->failed && b->issued < b->count &&
               b->issued >= b->batch_end)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->failed || b->issued >= b->count)
            break;
        uint64_t off = b->offset;
        b->issued++;
        b->in_flight++;
        b->offset = (b->offset + b->step) % b->image_size;
        pthread_mutex_unlock(&b->mu);

        struct err e = ERR_INIT;
        int r = b->write ? bdev_pwrite(b->bs, off, b->bufsize, buf, &e)
                         : bdev_pread(b->bs, off, b->bufsize, buf, &e);

        pthread_mutex_lock(&b->mu);
        b->in_flight--;
        b->completed++;
        if (r < 0) {
            fail_locked(b, "Failed request", &e);
            break;
        }
        if (b->flush_interval && b->completed % b->flush_interval == 0) {
            if (b->drain) {
                /* The batch ends here: the last one to finish flushes and
                 * opens the next batch. */
                if (b->in_flight == 0 && b->issued == b->batch_end) {
                    if (do_flush(b, true) < 0)
                        break;
                    b->batch_end += b->flush_interval;
                    pthread_cond_broadcast(&b->cv);
                }
            } else {
                pthread_mutex_unlock(&b->mu);
                do_flush(b, false);
                pthread_mutex_lock(&b->mu);
            }
        }
        if (b->completed == b->count)
            pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    free(buf);
    return NULL;
}

static int run_bench(struct bench *b, int depth)
{
    int nthreads = depth < 1 ? 1 : depth;
    if (nthreads > BENCH_MAX_THREADS)
        nthreads = BENCH_MAX_THREADS;
    if (nthreads > b->count)
        nthreads = b->count;
    b->batch_end = (b->flush_interval && b->drain) ? b->flush_interval
                                                   : INT_MAX;
    pthread_t tids[BENCH_MAX_THREADS];
    int started = 0;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&tids[i], NULL, worker, b) != 0)
            break;
        started++;
    }
    if (started == 0 && b->count > 0) {
        /* No thread could start: run the loop here. */
        worker(b);
    }
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    return b->failed ? -1 : 0;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPT_HELP,
        { "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
        CLI_LONGOPT_IMAGE_OPTS,
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "no-drain", no_argument, NULL, OPT_NO_DRAIN },
        CLI_LONGOPT_FORCE_SHARE,
        { NULL, 0, NULL, 0 },
    };
    struct cli_open o = { .cache = CACHE_WRITEBACK };
    struct cli_common co = { 0 };
    struct bench b = { .pattern = 0, .drain = true };
    int count = 75000, depth = 64, pattern = 0, flush_interval = 0;
    uint64_t offset = 0, bufsize = 4096, step = 0;
    bool native = false, uring = false, threads = false;
    struct err err = ERR_INIT;
    int c, rc;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", longopts,
                            NULL)) != -1) {
        switch (c) {
        case ':':
            usage_error("missing argument for option '%s'", argv[optind - 1]);
            return 1;
        case '?':
            usage_error("unrecognized option '%s'", argv[optind - 1]);
            return 1;
        case 'h':
            usage_error("%s", "bench [-c count] [-d depth] [-f fmt] "
                        "[--flush-interval=flush_interval] [-i aio] [-n] "
                        "[--no-drain] [-o offset] [--pattern=pattern] [-q] "
                        "[-s buffer_size] [-S step_size] [-t cache] [-w] "
                        "[-U] filename");
            return 1;
        case 'c':
            if (parse_ulong(optarg, INT_MAX, &count) < 0) {
                cli_error("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            if (parse_ulong(optarg, INT_MAX, &depth) < 0) {
                cli_error("Invalid queue depth specified");
                return 1;
            }
            break;
        case 'n':
            native = true;
            break;
        case 'i':
            /* As in qemu-img, choices add up: native (from -n or -i)
             * wins over io_uring, which wins over threads. */
            if (!strcmp(optarg, "native")) {
                native = true;
            } else if (!strcmp(optarg, "io_uring")) {
                uring = true;
            } else if (!strcmp(optarg, "threads")) {
                threads = true;
            } else {
                cli_error("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 'o':
            if (parse_sized("offset", optarg, INT64_MAX, &offset) < 0)
                return 1;
            break;
        case 's':
            if (parse_sized("buffer size", optarg, INT_MAX, &bufsize) < 0)
                return 1;
            break;
        case 'S':
            if (parse_sized("step_size", optarg, INT_MAX, &step) < 0)
                return 1;
            break;
        case 't':
            if (cache_mode_parse(optarg, &o.cache, &err) < 0) {
                cli_error("Invalid cache mode");
                return 1;
            }
            break;
        case 'w':
            o.writable = true;
            b.write = true;
            break;
        case OPT_PATTERN:
            if (parse_ulong(optarg, 0xff, &pattern) < 0) {
                cli_error("Invalid pattern byte specified");
                return 1;
            }
            break;
        case OPT_FLUSH_INTERVAL:
            if (parse_ulong(optarg, INT_MAX, &flush_interval) < 0) {
                cli_error("Invalid flush interval specified");
                return 1;
            }
            break;
        case OPT_NO_DRAIN:
            b.drain = false;
            break;
        default:
            /* -f, -U, --image-opts; -q is accepted, but qemu-img bench
             * prints nothing less with it. */
            if (cli_common_option(c, optarg, &co, &rc) == CLI_OPT_EXIT)
                return rc;
            break;
        }
    }
    cli_open_common(&o, &co);
    if (optind != argc - 1) {
        usage_error("%s", "Expecting one image file name");
        return 1;
    }
    const char *filename = argv[argc - 1];

    if (!b.write && flush_interval) {
        cli_error("--flush-interval is only available in write tests");
        return 1;
    }
    if (flush_interval && flush_interval < depth) {
        cli_error("Flush interval can't be smaller than depth");
        return 1;
    }
    /* The file protocol checks the choice (native needs O_DIRECT). */
    o.aio = native ? "native" : uring ? "io_uring" : threads ? "threads"
                                                            : NULL;

    struct bdev *bs = cli_open_image(filename, &o);
    if (!bs)
        return 1;

    b.bs = bs;
    b.image_size = bs->size;
    b.bufsize = bufsize;
    b.step = step ? step : bufsize;
    b.pattern = pattern;
    b.count = count;
    b.offset = offset;
    b.flush_interval = flush_interval;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);

    printf("Sending %d %s requests, %d bytes each, %d in parallel "
           "(starting at offset %" PRIu64 ", step size %d)\n",
           count, b.write ? "write" : "read", (int)bufsize, depth, offset,
           (int)b.step);
    if (flush_interval)
        printf("Sending flush every %d requests\n", flush_interval);
    fflush(stdout);

    int ret = 0;
    if (b.image_size == 0 && count > 0) {
        cli_error("Failed request: %s", strerror(EIO));
        ret = 1;
        goto out;
    }

    struct timeval t1, t2;
    gettimeofday(&t1, NULL);
    if (run_bench(&b, depth) < 0) {
        cli_error("%s: %s", b.what, strerror(-b.err.code));
        ret = 1;
        goto out;
    }
    gettimeofday(&t2, NULL);
    printf("Run completed in %3.3f seconds.\n",
           (double)(t2.tv_sec - t1.tv_sec) +
           (double)(t2.tv_usec - t1.tv_usec) / 1000000);
out:
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    bdev_close(bs);
    return ret;
}
