/* commit: the `commit` subcommand.  Copies what the image and the layers
 * between it and the base allocate into the base (its immediate backing
 * file, or -b anywhere down the chain), growing the base when it is
 * smaller, then empties the image unless -d (or -b) is given.
 *
 * The chain is opened by hand: the image read-write without its backing,
 * the intermediate layers read-only, the base read-write with its own
 * backing chain, then linked, so that each file is opened (and locked)
 * once with the access it needs.  The base receives data before the
 * image is emptied, so an interruption leaves both readable with the
 * committed content. */
#include "cli/cli.h"
#include "cli/progress.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMMIT_CHUNK (2u << 20)


static bool same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* Open the layer below `above` (its backing file). */
static struct bdev *open_below(struct bdev *above, bool rw, bool chain,
                               enum cache_mode cache, struct err *err)
{
    char *path = bdev_backing_path(above);
    if (!path) {
        err_set(err, -ENOMEM, "Out of memory");
        return NULL;
    }
    struct bdev_open_args a = {
        .fmt = above->backing_fmt,
        .flags = (rw ? BDEV_O_RDWR : 0) | (chain ? 0 : BDEV_O_NO_BACKING),
        .cache = cache,
        .quiet_probe = true,
    };
    struct bdev *bs = bdev_open(path, &a, NULL, err);
    if (!bs)
        err_prefix(err, "Could not open backing file: ");
    free(path);
    return bs;
}

static void throttle(uint64_t rate, uint64_t done, const struct timespec *t0)
{
    if (!rate)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (double)(now.tv_sec - t0->tv_sec) +
                     (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
    double want = (double)done / (double)rate;
    if (want > elapsed) {
        double d = want - elapsed;
        struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

/* Copy every range some layer above `base` allocates into `base`. */
static int copy_down(struct bdev *top, struct bdev *base, uint64_t rate,
                     struct err *err)
{
    uint64_t size = top->size, done = 0;
    struct timespec t0;
    int r = 0;
    uint8_t *buf = malloc(COMMIT_CHUNK);
    if (!buf)
        return err_set(err, -ENOMEM, "Out of memory");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t off = 0; off < size;) {
        struct bstatus st;
        uint64_t len = size - off < COMMIT_CHUNK ? size - off : COMMIT_CHUNK;
        r = bdev_block_status_chain(top, base, off, len, &st, err);
        if (r < 0)
            break;
        len = st.len < len ? st.len : len;
        if (st.flags & BS_ALLOCATED) {
            if ((st.flags & BS_ZERO) && !(st.flags & BS_DATA)) {
                r = bdev_pwrite_zeroes(base, off, len, BDEV_ZERO_MAY_UNMAP,
                                       err);
            } else {
                r = bdev_pread(top, off, len, buf, err);
                if (r >= 0)
                    r = bdev_pwrite(base, off, len, buf, err);
            }
            if (r < 0)
                break;
            done += len;
            throttle(rate, done, &t0);
        }
        off += len;
        progress_print((float)((double)off * 100.0 / (double)size), 0);
    }
    free(buf);
    if (r >= 0)
        r = bdev_flush(base, err);
    return r;
}

int cmd_commit(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPT_HELP,
        CLI_LONGOPT_OBJECT,
        CLI_LONGOPT_IMAGE_OPTS,
        { NULL, 0, NULL, 0 },
    };
    struct cli_open o = { .cache = CACHE_WRITEBACK, .writable = true,
                          .no_backing = true };
    const char *cache = "writeback", *base_name = NULL;
    struct cli_common co = { 0 };
    bool progress = false, drop = false;
    int64_t rate = 0;
    int c, rc;

    while ((c = cli_getopt_common(argc, argv, "f:ht:b:dpqr:", longopts, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            return rc;
        case 't':
            cache = optarg;
            break;
        case 'b':
            base_name = optarg;
            drop = true;
            break;
        case 'd':
            drop = true;
            break;
        case 'p':
            progress = true;
            break;
        case 'r':
            if (cli_cvtnum("rate limit", optarg, &rate) < 0)
                return 1;
            break;
        }
    }
    cli_open_common(&o, &co);
    bool quiet = co.quiet;
    if (quiet)
        progress = false;
    if (optind != argc - 1)
        return cli_error_exit("Expecting one image file name");
    const char *filename = argv[optind];
    struct err err = ERR_INIT;
    if (cache_mode_parse(cache, &o.cache, &err) < 0) {
        cli_error("Invalid cache option: %s", cache);
        return 1;
    }
    o.quiet = quiet;

    struct bdev *top = cli_open_image(filename, &o);
    if (!top)
        return 1;

    progress_init(progress, 1.f);
    progress_print(0.f, 100);

    /* Walk down to the base, opening each layer once. */
    struct bdev *cur = top, *base = NULL;
    int r = 0;
    if (!top->backing_file || !top->backing_file[0]) {
        if (base_name)
            r = err_set(&err, -ENOENT, "Did not find '%s' in the backing "
                        "chain of '%s'", base_name, filename);
        else
            r = err_set(&err, -ENOENT, "Image does not have a backing file");
    }
    while (r >= 0 && !base) {
        char *path = bdev_backing_path(cur);
        bool is_base = !base_name ||
                       !strcmp(cur->backing_file, base_name) ||
                       (path && same_file(path, base_name));
        free(path);
        struct bdev *below = open_below(cur, is_base, is_base, o.cache, &err);
        if (!below) {
            r = err.code ? err.code : -EIO;
            break;
        }
        cur->backing = below;
        if (is_base) {
            base = below;
            break;
        }
        if (!below->backing_file || !below->backing_file[0]) {
            r = err_set(&err, -ENOENT, "Did not find '%s' in the backing "
                        "chain of '%s'", base_name, filename);
            break;
        }
        cur = below;
    }

    if (r >= 0 && base->size < top->size)
        r = bdev_truncate(base, top->size, false, PREALLOC_OFF, &err);
    if (r >= 0)
        r = copy_down(top, base, (uint64_t)rate, &err);
    if (r >= 0 && !drop) {
        int m = bdev_make_empty(top, &err);
        if (m < 0 && m != -ENOTSUP)
            r = m;
        else
            err_clear(&err);
    }
    if (r >= 0)
        progress_print(100.f, 0);
    progress_end();
    bdev_close(top);
    if (r < 0) {
        cli_report(&err);
        return 1;
    }
    if (!quiet)
        printf("Image committed.\n");
    return 0;
}
