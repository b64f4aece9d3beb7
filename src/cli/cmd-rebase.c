/* rebase: the `rebase` subcommand.  Safe mode copies into the image every
 * range it does not allocate where the old and the new backing file read
 * differently, then rewrites the backing link; -u only rewrites the link
 * (the old backing file may be missing); -b "" removes the backing file.
 *
 * The image reads the same at every moment of the copy (it only gains
 * clusters holding what it already showed), so an interruption before
 * the header rewrite leaves the old backing link and the old content. */
#include "cli/cli.h"
#include "cli/progress.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/zero.h"

#define IO_BUF_SIZE (2u << 20)
#define SECTOR 512u


/* Length of the leading run of [0, n) whose sectors all differ (true) or
 * all match (false) between a and b. */
static bool first_run_differs(const uint8_t *a, const uint8_t *b, uint64_t n,
                              uint64_t *run)
{
    uint64_t first = n < SECTOR ? n : SECTOR;
    bool differs = memcmp(a, b, first) != 0;
    uint64_t i = first;
    while (i < n) {
        uint64_t len = n - i < SECTOR ? n - i : SECTOR;
        if ((memcmp(a + i, b + i, len) != 0) != differs)
            break;
        i += len;
    }
    *run = i;
    return differs;
}

/* Resolve a new backing name against the image's directory. */
static char *resolve_against(const char *image, const char *name)
{
    char *out = NULL;
    if (name[0] == '/' || strstr(name, "://") || !strncmp(name, "json:", 5))
        return strdup(name);
    const char *slash = strrchr(image, '/');
    if (!slash)
        return strdup(name);
    if (asprintf(&out, "%.*s/%s", (int)(slash - image), image, name) < 0)
        return NULL;
    return out;
}

static bool same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* The node of `bs`'s backing chain that is the file `path`, or NULL. */
static struct bdev *find_in_chain(struct bdev *bs, const char *path)
{
    for (struct bdev *b = bs->backing; b; b = b->backing) {
        const char *fn = b->file ? b->file->filename : b->filename;
        if (same_file(fn, path))
            return b;
    }
    return NULL;
}

struct rebase {
    struct bdev *bs, *old_b, *new_b, *prefix;
    uint8_t *buf_old, *buf_new;
};

static int copy_differences(struct rebase *rb, struct err *err)
{
    struct bdev *bs = rb->bs;
    uint64_t size = bs->size;
    uint64_t old_size = rb->old_b ? rb->old_b->size : 0;
    uint64_t new_size = rb->new_b ? rb->new_b->size : 0;
    float step = size ? 100.f / (float)(size / (size < IO_BUF_SIZE ? size : IO_BUF_SIZE)) : 0;
    int r;

    for (uint64_t off = 0; off < size;) {
        uint64_t n = size - off < IO_BUF_SIZE ? size - off : IO_BUF_SIZE;
        struct bstatus st;
        r = bdev_block_status(bs, off, n, &st, err);
        if (r < 0) {
            err_prefix(err, "error while reading image metadata: ");
            return r;
        }
        n = st.len < n ? st.len : n;
        if (st.flags & BS_ALLOCATED) {
            off += n;
            continue;
        }
        if (rb->prefix && rb->old_b) {
            r = bdev_block_status_chain(rb->old_b, rb->prefix, off, n, &st,
                                        err);
            if (r < 0) {
                err_prefix(err, "error while reading image metadata: ");
                return r;
            }
            n = st.len < n ? st.len : n;
            if (!(st.flags & BS_ALLOCATED)) {
                off += n;
                continue;
            }
        }
        bool old_zero = false;
        if (off >= old_size) {
            memset(rb->buf_old, 0, n);
            old_zero = true;
        } else {
            if (off + n > old_size)
                n = old_size - off;
            r = bdev_pread(rb->old_b, off, n, rb->buf_old, err);
            if (r < 0)
                return err_set(err, r, "error while reading from old backing "
                               "file");
        }
        if (!rb->new_b || off >= new_size) {
            memset(rb->buf_new, 0, n);
        } else {
            if (off + n > new_size)
                n = new_size - off;
            r = bdev_pread(rb->new_b, off, n, rb->buf_new, err);
            if (r < 0)
                return err_set(err, r, "error while reading from new backing "
                               "file");
        }
        for (uint64_t done = 0; done < n;) {
            uint64_t run;
            if (first_run_differs(rb->buf_old + done, rb->buf_new + done,
                                  n - done, &run)) {
                struct err e = ERR_INIT;
                r = old_zero ? bdev_pwrite_zeroes(bs, off + done, run, 0, &e)
                             : bdev_pwrite(bs, off + done, run,
                                           rb->buf_old + done, &e);
                if (r < 0)
                    return err_set(err, r, "Error while writing to COW image: "
                                   "%s", strerror(-r));
            }
            done += run;
        }
        off += n;
        progress_print(step, 100);
    }
    return bdev_flush(bs, err);
}

int cmd_rebase(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS_SHARED,
        { NULL, 0, NULL, 0 },
    };
    struct cli_open o = { .cache = CACHE_WRITEBACK, .writable = true };
    struct cli_common co = { 0 };
    const char *cache = "writeback";
    const char *out_base = NULL, *out_fmt = NULL;
    bool progress = false, unsafe = false;
    int c, rc;

    while ((c = cli_getopt_common(argc, argv, "hf:F:b:upt:T:qU", longopts, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            return rc;
        case 'F':
            out_fmt = optarg;
            break;
        case 'b':
            out_base = optarg;
            break;
        case 'u':
            unsafe = true;
            break;
        case 'p':
            progress = true;
            break;
        case 't':
            cache = optarg;
            break;
        }
    }
    cli_open_common(&o, &co);
    const char *src_cache = co.src_cache ? co.src_cache : "writeback";
    bool quiet = co.quiet;
    if (quiet)
        progress = false;
    if (optind != argc - 1)
        return cli_error_exit("Expecting one image file name");
    if (!unsafe && !out_base)
        return cli_error_exit("Must specify backing file (-b) or use unsafe "
                              "mode (-u)");
    const char *filename = argv[optind];

    progress_init(progress, 2.f);
    progress_print(0, 100);

    struct err err = ERR_INIT;
    enum cache_mode scache;
    struct rebase rb = { 0 };
    int ret = 1;
    if (cache_mode_parse(cache, &o.cache, &err) < 0) {
        cli_error("Invalid cache option: %s", cache);
        goto out;
    }
    if (cache_mode_parse(src_cache, &scache, &err) < 0) {
        cli_error("Invalid source cache option: %s", src_cache);
        goto out;
    }
    o.no_backing = unsafe;
    o.quiet = quiet;
    rb.bs = cli_open_image(filename, &o);
    if (!rb.bs)
        goto out;
    if (out_fmt && !bdev_find_format(out_fmt)) {
        cli_error("Invalid format name: '%s'", out_fmt);
        goto out;
    }

    if (!unsafe) {
        rb.old_b = rb.bs->backing;
        if (out_base[0]) {
            const char *ov = rb.bs->file ? rb.bs->file->filename
                                         : rb.bs->filename;
            char *path = resolve_against(ov, out_base);
            if (!path) {
                cli_error("Out of memory");
                goto out;
            }
            rb.prefix = find_in_chain(rb.bs, path);
            if (rb.prefix) {
                rb.new_b = rb.prefix;
            } else {
                struct bdev_open_args a = {
                    .fmt = out_fmt,
                    .flags = o.force_share ? BDEV_O_SHARE : 0,
                    .cache = scache,
                    .quiet_probe = true,
                };
                rb.new_b = bdev_open(path, &a, NULL, &err);
                if (!rb.new_b) {
                    free(path);
                    cli_report_prefixed(&err, "Could not open new backing "
                                        "file '%s': ", out_base);
                    goto out;
                }
            }
            free(path);
        }
        rb.buf_old = malloc(IO_BUF_SIZE);
        rb.buf_new = malloc(IO_BUF_SIZE);
        if (!rb.buf_old || !rb.buf_new) {
            cli_error("Out of memory");
            goto out;
        }
        if (copy_differences(&rb, &err) < 0) {
            cli_report(&err);
            goto out;
        }
    }

    int r;
    if (out_base && out_base[0] && !out_fmt) {
        cli_error("Could not change the backing file to '%s': backing format "
                  "must be specified", out_base);
        goto out;
    }
    if (out_base && out_base[0])
        r = bdev_change_backing_file(rb.bs, out_base, out_fmt, &err);
    else
        r = bdev_change_backing_file(rb.bs, NULL, NULL, &err);
    if (r == -ENOSPC)
        cli_error("Could not change the backing file to '%s': No space left "
                  "in the file header", out_base);
    else if (r < 0)
        cli_error("Could not change the backing file to '%s': %s",
                  out_base ? out_base : "(null)", strerror(-r));
    else
        ret = 0;
    progress_print(100, 0);
out:
    progress_end();
    if (rb.new_b && rb.new_b != rb.prefix)
        bdev_close(rb.new_b);
    free(rb.buf_old);
    free(rb.buf_new);
    bdev_close(rb.bs);
    return ret;
}
