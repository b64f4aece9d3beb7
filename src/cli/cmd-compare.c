/* compare: whether two images have the same content, as qemu-img compare
 * decides it: unallocated ranges read as zeros, a larger image is equal
 * when its tail is zero, -s (strict) also fails on size and allocation
 * differences.  Block status is consulted first; data is read only where
 * the status cannot settle the question.  Exit codes: 0 identical,
 * 1 different, 2 open error, 3 block status error, 4 read error. */
#include "cli/cli.h"
#include "cli/progress.h"

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
    uint8_t *buf;
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

static int read_side(struct side *s, uint64_t off, uint64_t len)
{
    struct err err = ERR_INIT;
    int r = bdev_pread(s->bs, off, len, s->buf, &err);
    if (r < 0) {
        cli_error("Error while reading offset %" PRIu64 " of %s: %s", off,
                  s->name, strerror(-r));
        return 4;
    }
    return 0;
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

static int check_empty(struct side *s, uint64_t off, uint64_t len)
{
    int r = read_side(s, off, len);
    if (r)
        return r;
    int64_t idx = find_nonzero(s->buf, len);
    if (idx >= 0) {
        say("Content mismatch at offset %" PRIu64 "!\n", off + (uint64_t)idx);
        return 1;
    }
    return 0;
}

struct read_job {
    struct side *s;
    uint64_t off, len;
    int ret;
};

static void *read_thread(void *opaque)
{
    struct read_job *j = opaque;
    j->ret = read_side(j->s, j->off, j->len);
    return NULL;
}

/* Read both sides at once (the second in a helper thread). */
static int read_both(struct side *a, struct side *b, uint64_t off,
                     uint64_t len)
{
    struct read_job jb = { b, off, len, 0 };
    pthread_t t;
    bool threaded = len >= (256u << 10) &&
                    pthread_create(&t, NULL, read_thread, &jb) == 0;
    int ra = read_side(a, off, len);
    if (threaded)
        pthread_join(t, NULL);
    else
        read_thread(&jb);
    if (ra)
        return ra;
    return jb.ret;
}

/* Offset within the chunk of the first differing sector, or -1. */
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

static int status(struct side *s, uint64_t off, uint64_t len,
                  struct bstatus *st)
{
    struct err err = ERR_INIT;
    if (bdev_status_above(s->bs, off, len, st, &err) < 0) {
        cli_error("Sector allocation test failed for %s", s->name);
        return 3;
    }
    return 0;
}

static int compare(struct side *s1, struct side *s2, bool strict)
{
    uint64_t size1 = s1->bs->size, size2 = s2->bs->size;
    uint64_t total = min_u64(size1, size2), base = max_u64(size1, size2);
    uint64_t off = 0;
    int r;

    progress_print(0, 100);
    if (strict && size1 != size2) {
        say("Strict mode: Image size mismatch!\n");
        return 1;
    }
    while (off < total) {
        struct bstatus st1, st2;
        if ((r = status(s1, off, size1 - off, &st1)) ||
            (r = status(s2, off, size2 - off, &st2)))
            return r;
        bool al1 = st1.flags & BS_ALLOCATED, al2 = st2.flags & BS_ALLOCATED;
        uint64_t chunk = min_u64(st1.len, st2.len);
        if (strict && (st1.flags & STRICT_BITS) != (st2.flags & STRICT_BITS)) {
            say("Strict mode: Offset %" PRIu64 " block status mismatch!\n",
                off);
            return 1;
        }
        if ((st1.flags & BS_ZERO) && (st2.flags & BS_ZERO)) {
            /* both read as zeros */
        } else if (al1 == al2) {
            if (al1) {
                chunk = min_u64(chunk, IO_BUF);
                if ((r = read_both(s1, s2, off, chunk)))
                    return r;
                int64_t d = first_diff(s1->buf, s2->buf, chunk);
                if (d >= 0) {
                    say("Content mismatch at offset %" PRIu64 "!\n",
                        off + (uint64_t)d);
                    return 1;
                }
            }
        } else {
            chunk = min_u64(chunk, IO_BUF);
            r = check_empty(al1 ? s1 : s2, off, chunk);
            if (r)
                return r;
        }
        off += chunk;
        progress_print((float)chunk / (float)base * 100, 100);
    }
    if (size1 != size2) {
        struct side *over = size1 > size2 ? s1 : s2;
        say("Warning: Image size mismatch!\n");
        while (off < base) {
            struct bstatus st;
            if ((r = status(over, off, base - off, &st)))
                return r;
            uint64_t chunk = st.len;
            if ((st.flags & BS_ALLOCATED) && !(st.flags & BS_ZERO)) {
                chunk = min_u64(chunk, IO_BUF);
                r = check_empty(over, off, chunk);
                if (r)
                    return r;
            }
            off += chunk;
            progress_print((float)chunk / (float)base * 100, 100);
        }
    }
    say("Images are identical.\n");
    return 0;
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
    struct side s1 = { NULL, name1, NULL }, s2 = { NULL, name2, NULL };
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
    s1.buf = aligned_alloc(4096, IO_BUF);
    s2.buf = aligned_alloc(4096, IO_BUF);
    if (!s1.buf || !s2.buf) {
        cli_error("Out of memory");
        goto out;
    }
    rc = compare(&s1, &s2, strict);
out:
    free(s1.buf);
    free(s2.buf);
    bdev_close(s2.bs);
    bdev_close(s1.bs);
    progress_end();
    return rc;
}
