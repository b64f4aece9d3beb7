/* convert: copy one or more images (concatenated) into a new or existing
 * target of any format, as qemu-img convert does.  Option checks and
 * their messages follow qemu-img 7.2 in its order; the copying itself is
 * the block layer's copy engine (block/copy.h). */
#include "cli/cli.h"
#include "cli/progress.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/copy.h"

enum {
    OPT_TARGET_IMAGE_OPTS = CLI_OPT_OWN, OPT_SALVAGE,
    OPT_TARGET_IS_ZERO, OPT_BITMAPS, OPT_SKIP_BROKEN,
};

struct convert {
    struct cli_common co;   /* -f, -T, -q, -U, --image-opts, --object */
    const char *out_fmt, *cache, *out_baseimg;
    const char *backing_fmt, *snapshot_name, *out_filename;
    char *options;
    struct kvlist sn_opts;
    bool has_sn_opts;
    bool tgt_image_opts, skip_create, progress;
    bool compress, copy_range, explicit_sparse, salvage;
    bool target_is_zero, bitmaps, skip_broken, out_of_order;
    int64_t sparse_bytes, rate_limit, workers;
};

static void on_progress(void *opaque, double percent)
{
    (void)opaque;
    progress_print((float)percent, 0);
}

static void on_warn(void *opaque, const char *msg)
{
    const struct convert *c = opaque;
    if (!c->co.quiet)
        fprintf(stderr, "%s: warning: %s\n", cli_prog, msg);
}

static int parse_args(struct convert *c, int argc, char **argv, int *rc)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS_SHARED,
        { "target-image-opts", no_argument, 0, OPT_TARGET_IMAGE_OPTS },
        { "salvage", no_argument, 0, OPT_SALVAGE },
        { "target-is-zero", no_argument, 0, OPT_TARGET_IS_ZERO },
        { "bitmaps", no_argument, 0, OPT_BITMAPS },
        { "skip-broken-bitmaps", no_argument, 0, OPT_SKIP_BROKEN },
        { 0, 0, 0, 0 },
    };
    int ch;
    *rc = 1;
    while ((ch = cli_getopt_common(argc, argv, "hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:",
                                   longopts, &c->co, rc)) != -1) {
        switch (ch) {
        case CLI_OPT_EXIT: return -1;
        case 'O': c->out_fmt = optarg; break;
        case 'B': c->out_baseimg = optarg; break;
        case 'C': c->copy_range = true; break;
        case 'c': c->compress = true; break;
        case 'F': c->backing_fmt = optarg; break;
        case 'o':
            if (cli_accumulate_options(&c->options, optarg) < 0)
                return -1;
            break;
        case 'l':
            if (cli_parse_snapshot_arg(optarg, &c->sn_opts, &c->has_sn_opts,
                                       &c->snapshot_name) < 0)
                return -1;
            break;
        case 'S': {
            int64_t v;
            if (cli_cvtnum("buffer size for sparse output", optarg, &v) < 0)
                return -1;
            if (v % 512 || v / 512 > 32768) {
                cli_error("Invalid buffer size for sparse output specified. "
                          "Valid sizes are multiples of 512 up to 16777216. "
                          "Select 0 to disable sparse detection (fully "
                          "allocates output).");
                return -1;
            }
            c->sparse_bytes = v;
            c->explicit_sparse = true;
            break;
        }
        case 'p': c->progress = true; break;
        case 't': c->cache = optarg; break;
        case 'n': c->skip_create = true; break;
        case 'm': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 0);
            if (errno || end == optarg || *end || v < 1 || v > 16) {
                cli_error("Invalid number of coroutines. Allowed number of "
                          "coroutines is between 1 and 16");
                return -1;
            }
            c->workers = v;
            break;
        }
        case 'W': c->out_of_order = true; break;
        case 'r':
            if (cli_cvtnum("rate limit", optarg, &c->rate_limit) < 0)
                return -1;
            break;
        case OPT_SALVAGE: c->salvage = true; break;
        case OPT_TARGET_IMAGE_OPTS: c->tgt_image_opts = true; break;
        case OPT_TARGET_IS_ZERO: c->target_is_zero = true; break;
        case OPT_BITMAPS: c->bitmaps = true; break;
        case OPT_SKIP_BROKEN: c->skip_broken = true; break;
        default: break;
        }
    }
    return 0;
}

/* The checks qemu-img makes before opening anything. */
static int check_args(struct convert *c)
{
    if (!c->out_fmt && !c->tgt_image_opts)
        c->out_fmt = "raw";
    if (c->skip_broken && !c->bitmaps)
        return cli_error("Use of --skip-broken-bitmaps requires --bitmaps"), -1;
    if (c->compress && c->copy_range)
        return cli_error("Cannot enable copy offloading when -c is used"), -1;
    if (c->explicit_sparse && c->copy_range)
        return cli_error("Cannot enable copy offloading when -S is used"), -1;
    if (c->copy_range && c->salvage)
        return cli_error("Cannot use copy offloading in salvaging mode"), -1;
    if (c->tgt_image_opts && !c->skip_create)
        return cli_error("--target-image-opts requires use of -n flag"), -1;
    if (c->skip_create && c->options)
        return cli_error("-o has no effect when skipping image creation"), -1;
    if (c->target_is_zero && !c->skip_create)
        return cli_error("--target-is-zero requires use of -n flag"), -1;
    return 0;
}

/* The create options: -o, then the size and -B/-F. */
static int build_create_opts(struct convert *c, struct kvlist *opts,
                             uint64_t size)
{
    struct err err = ERR_INIT;
    if (cli_parse_create_opts(c->out_fmt, c->options, opts, &err) < 0) {
        cli_report(&err);
        return -1;
    }
    kv_set_u64(opts, "size", size);
    if (c->out_baseimg) {
        if (!bdev_format_has_create_opt(c->out_fmt, "backing_file")) {
            cli_error("Backing file not supported for file format '%s'",
                      c->out_fmt);
            return -1;
        }
        kv_set(opts, "backing_file", c->out_baseimg);
    }
    if (c->backing_fmt) {
        if (!bdev_format_has_create_opt(c->out_fmt, "backing_fmt")) {
            cli_error("Backing file format not supported for file format "
                      "'%s'", c->out_fmt);
            return -1;
        }
        kv_set(opts, "backing_fmt", c->backing_fmt);
    }
    return 0;
}

static bool opt_true(const char *v)
{
    return v && (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"));
}

static int load_snapshot(struct convert *c, struct bdev *src, int nsrc)
{
    struct err err = ERR_INIT;
    int r = 0;
    if (c->has_sn_opts) {
        r = bdev_snapshot_load(src, kv_peek(&c->sn_opts, "snapshot.id"),
                               kv_peek(&c->sn_opts, "snapshot.name"), &err);
    } else if (c->snapshot_name) {
        if (nsrc > 1) {
            cli_error("No support for concatenating multiple snapshot");
            return -1;
        }
        r = bdev_snapshot_load_id_or_name(src, c->snapshot_name, &err);
    }
    if (r < 0) {
        cli_report_prefixed(&err, "Failed to load snapshot: ");
        return -1;
    }
    return 0;
}

static int run(struct convert *c, int nsrc, char **names)
{
    struct bdev **src = calloc((size_t)nsrc, sizeof(*src));
    struct bdev *dst = NULL;
    struct kvlist opts = KVLIST_INIT;
    struct err err = ERR_INIT;
    enum cache_mode src_cache = CACHE_WRITEBACK, dst_cache;
    bool created = false;
    int ret = -1;

    if (!src) {
        cli_error("Out of memory");
        return 1;
    }
    if (c->co.src_cache &&
        cache_mode_parse(c->co.src_cache, &src_cache, &err) < 0) {
        cli_error("Invalid source cache option: %s", c->co.src_cache);
        free(src);
        return 1;
    }
    if (c->co.quiet)
        c->progress = false;
    progress_init(c->progress, 1.0f);
    progress_print(0, 100);

    for (int i = 0; i < nsrc; i++) {
        struct cli_open o = { .quiet = true, .cache = src_cache };
        cli_open_common(&o, &c->co);
        src[i] = cli_open_image(names[i], &o);
        if (!src[i])
            goto out;
    }
    uint64_t total = copy_total_size(src, nsrc);
    if (load_snapshot(c, src[0], nsrc) < 0)
        goto out;

    const char *out_baseimg = c->out_baseimg;
    if (!c->skip_create) {
        if (!bdev_find_format(c->out_fmt)) {
            cli_error("Unknown file format '%s'", c->out_fmt);
            goto out;
        }
        if (build_create_opts(c, &opts, total) < 0)
            goto out;
        const char *b = kv_peek(&opts, "backing_file");
        if (b)
            out_baseimg = b;
    }
    bool has_backing = out_baseimg != NULL;
    if (c->target_is_zero && has_backing) {
        cli_error("Cannot use --target-is-zero when the destination image "
                  "has a backing file");
        /* qemu-img 7.2 exits with 0 here. */
        ret = 0;
        goto out;
    }
    if (nsrc > 1 && out_baseimg) {
        cli_error("Having a backing file for the target makes no sense when "
                  "concatenating multiple input images");
        goto out;
    }
    if (!c->skip_create && kv_peek(&opts, "backing_file") &&
        !kv_peek(&opts, "backing_fmt")) {
        cli_error("Use of backing file requires explicit backing format");
        goto out;
    }
    if (c->compress && !c->skip_create) {
        const char *pa = kv_peek(&opts, "preallocation");
        if (!bdev_format_can_compress(c->out_fmt)) {
            cli_error("Compression not supported for this file format");
            goto out;
        }
        if (opt_true(kv_peek(&opts, "encryption")) ||
            kv_peek(&opts, "encrypt.format")) {
            cli_error("Compression and encryption not supported at the same "
                      "time");
            goto out;
        }
        if (pa && strcmp(pa, "off")) {
            cli_error("Compression and preallocation not supported at the "
                      "same time");
            goto out;
        }
    }
    if (c->bitmaps) {
        if (nsrc > 1) {
            cli_error("Copying bitmaps only possible with single source");
            goto out;
        }
        if (!bdev_supports_bitmaps(src[0])) {
            cli_error("Source lacks bitmap support");
            goto out;
        }
        if (cli_convert_check_bitmaps(src[0], c->skip_broken) < 0)
            goto out;
    }

    if (!c->skip_create) {
        if (bdev_create(c->out_fmt, c->out_filename, &opts, &err) < 0) {
            cli_report_prefixed(&err, "%s: error while converting %s: ",
                                c->out_filename, c->out_fmt);
            goto out;
        }
        created = true;
    }

    if (cache_mode_parse(c->cache ? c->cache : "unsafe", &dst_cache, &err) < 0) {
        cli_error("Invalid cache option: %s", c->cache);
        goto out;
    }
    struct cli_open to = {
        .fmt = c->out_fmt, .image_opts = c->tgt_image_opts,
        .writable = true, .quiet = c->co.quiet, .cache = dst_cache,
    };
    dst = cli_open_image(c->out_filename, &to);
    if (!dst)
        goto out;
    if (c->bitmaps && !bdev_supports_bitmaps(dst)) {
        cli_error("Format driver '%s' does not support bitmaps",
                  bdev_format_name(dst));
        goto out;
    }
    if (c->compress && !bdev_can_compress(dst)) {
        cli_error("Compression not supported for this file format");
        goto out;
    }
    if (c->skip_create && dst->size < total) {
        cli_error("output file is smaller than input file");
        goto out;
    }

    struct copy_params p = {
        .src = src, .nsrc = nsrc, .dst = dst,
        .sparse_bytes = (uint64_t)c->sparse_bytes,
        .compress = c->compress,
        .dst_has_backing = has_backing,
        .dst_backing_size = UINT64_MAX,
        .out_of_order = c->out_of_order,
        .workers = (int)c->workers,
        .rate_bytes = (uint64_t)c->rate_limit,
        .salvage = c->salvage,
        .copy_offload = c->copy_range,
        .progress = on_progress, .warn = on_warn, .opaque = c,
    };
    if (has_backing && !c->skip_create && dst->backing)
        p.dst_backing_size = dst->backing->size;
    p.dst_is_zero = c->target_is_zero ||
                    (!c->skip_create && c->sparse_bytes && !has_backing &&
                     bdev_has_zero_init(dst));
    if (c->compress && !bdev_cluster_size(dst)) {
        /* every format that compresses has driver info; a flat vmdk has
         * no cluster size */
        cli_error("invalid cluster size");
        goto out;
    }
    if (copy_run(&p, &err) < 0) {
        cli_report(&err);
        goto out;
    }
    if (c->bitmaps && cli_convert_copy_bitmaps(src[0], dst) < 0)
        goto out;
    if (bdev_flush(dst, &err) < 0) {
        cli_report(&err);
        goto out;
    }
    ret = 0;
out:
    if (ret == 0)
        progress_print(100, 0);
    progress_end();
    bdev_close(dst);
    for (int i = 0; i < nsrc; i++)
        bdev_close(src[i]);
    free(src);
    kv_free(&opts);
    /* A target this command created and could not fill is not left
     * behind looking complete. */
    if (ret < 0 && created)
        unlink(c->out_filename);
    return ret < 0 ? 1 : 0;
}

int cmd_convert(int argc, char **argv)
{
    struct convert c = {
        .sparse_bytes = 4096, .workers = 8, .sn_opts = KVLIST_INIT,
    };
    int rc = 1;
    optind = 0;
    if (parse_args(&c, argc, argv, &rc) < 0)
        goto out;
    rc = 1;
    if (check_args(&c) < 0)
        goto out;
    int nsrc = argc - optind - 1;
    c.out_filename = nsrc >= 1 ? argv[argc - 1] : NULL;
    if (c.options && cli_options_want_help(c.options)) {
        if (c.out_fmt) {
            rc = cli_print_option_help(c.out_fmt, c.out_filename);
        } else {
            cli_error("Option help requires a format be specified");
        }
        goto out;
    }
    if (nsrc < 1) {
        cli_error("Must specify image file name");
        goto out;
    }
    rc = run(&c, nsrc, argv + optind);
out:
    free(c.options);
    kv_free(&c.sn_opts);
    return rc;
}
