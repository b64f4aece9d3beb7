/* dd: copy an image, or a part of it (bs=, count=, skip=), into a new
 * image, with qemu-img dd's operands, arithmetic and messages.  Like
 * qemu-img, every byte of the range is written: the output is fully
 * allocated.  The copy engine (block/copy.h) moves the bytes in large
 * requests; the block size only defines the units of count and skip. */
#include "cli/cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "block/copy.h"
#include "util/align.h"


#define F_BS    01
#define F_COUNT 02
#define F_IF    04
#define F_OF    010
#define F_SKIP  020

struct dd {
    unsigned flags;
    int64_t bs, count, skip;
    const char *in, *out;
};

static int operand(struct dd *d, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) {
        cli_error("unrecognized operand %s", arg);
        return -1;
    }
    size_t klen = (size_t)(eq - arg);
    const char *v = eq + 1;
#define KEY(k) (klen == strlen(k) && !strncmp(arg, k, klen))
    if (KEY("bs")) {
        if (cli_cvtnum_full("bs", v, 1, INT_MAX, &d->bs) < 0)
            return -1;
        d->flags |= F_BS;
    } else if (KEY("count")) {
        if (cli_cvtnum_full("count", v, 0, INT64_MAX, &d->count) < 0)
            return -1;
        d->flags |= F_COUNT;
    } else if (KEY("if")) {
        d->in = v;
        d->flags |= F_IF;
    } else if (KEY("of")) {
        d->out = v;
        d->flags |= F_OF;
    } else if (KEY("skip")) {
        if (cli_cvtnum_full("skip", v, 0, INT64_MAX, &d->skip) < 0)
            return -1;
        d->flags |= F_SKIP;
    } else {
        /* qemu-img names the operand without its value. */
        cli_error("unrecognized operand %.*s", (int)klen, arg);
        return -1;
    }
#undef KEY
    return 0;
}

/* Copy [in_pos, size) of the source to the start of the target with the
 * copy engine: no zero detection (every byte is written, as qemu-img dd
 * writes each block it reads), writes in order. */
static int copy(struct bdev *src, struct bdev *dst, uint64_t in_pos,
                uint64_t size)
{
    struct err err = ERR_INIT;
    struct bdev *srcs[1] = { src };
    if (in_pos >= size)
        return 0;
    struct copy_params p = {
        .src = srcs, .nsrc = 1, .dst = dst,
        .sparse_bytes = 0,
        .dst_backing_size = UINT64_MAX,
        .workers = 8,
        .src_offset = in_pos, .length = size - in_pos,
    };
    int r = copy_run(&p, &err);
    if (r < 0) {
        /* qemu-img dd names only the side that failed. */
        bool wr = !strncmp(err.msg, "error while writing", 19);
        cli_error("error while %s: %s", wr ? "writing to output image file"
                  : "reading from input image file", strerror(-r));
        return -1;
    }
    return 0;
}

int cmd_dd(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS_SHARED,
        { 0, 0, 0, 0 },
    };
    struct dd d = { .bs = 512 };
    struct cli_open o = { .quiet = true };
    struct cli_common co = { 0 };
    const char *out_fmt = "raw";
    struct bdev *src = NULL, *dst = NULL;
    struct kvlist opts = KVLIST_INIT;
    struct err err = ERR_INIT;
    int c, rc = 1;

    optind = 0;
    while ((c = cli_getopt_common(argc, argv, "hf:O:U", longopts, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT: return rc;
        case 'O': out_fmt = optarg; break;
        default: break;
        }
    }
    cli_open_common(&o, &co);
    rc = 1;
    for (int i = optind; i < argc; i++)
        if (operand(&d, argv[i]) < 0)
            return 1;
    if (!(d.flags & F_IF) || !(d.flags & F_OF)) {
        cli_error("Must specify both input and output files");
        return 1;
    }
    src = cli_open_image(d.in, &o);
    if (!src)
        goto out;
    if (!bdev_find_format(out_fmt)) {
        cli_error("Unknown file format");
        goto out;
    }
    if (!bdev_format_can_create(out_fmt)) {
        cli_error("Format driver '%s' does not support image creation",
                  out_fmt);
        goto out;
    }
    int64_t size = (int64_t)src->size;
    if ((d.flags & F_COUNT) && d.count <= INT64_MAX / d.bs &&
        d.count * d.bs < size)
        size = d.count * d.bs;
    /* A skip past the end makes an empty image, as dd(1) does. */
    bool skip_past = (d.flags & F_SKIP) &&
                     (d.skip > INT64_MAX / d.bs || size < d.bs * d.skip);
    kv_set_u64(&opts, "size", skip_past ? 0 : (uint64_t)(size - d.bs * d.skip));
    if (bdev_create(out_fmt, d.out, &opts, &err) < 0) {
        cli_report_prefixed(&err, "%s: error while creating output image: ",
                            d.out);
        goto out;
    }
    struct cli_open to = { .fmt = out_fmt, .writable = true };
    dst = cli_open_image(d.out, &to);
    if (!dst)
        goto out;
    int64_t in_pos;
    if (skip_past) {
        cli_error("%s: cannot skip to specified offset", d.in);
        in_pos = size;
    } else {
        in_pos = d.skip * d.bs;
    }
    if (copy(src, dst, (uint64_t)in_pos, (uint64_t)size) < 0)
        goto out;
    rc = 0;
out:
    kv_free(&opts);
    bdev_close(dst);
    bdev_close(src);
    return rc;
}
