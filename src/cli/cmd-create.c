/* create: make a new image, following qemu-img's order of checks so that
 * every error and the "Formatting ..." line come out as qemu-img's do:
 * parse -o against the format's and the protocol's create options, apply
 * -b/-F, take the size from the backing image when none is given (unless
 * -u), print the options, then let the format driver create the file. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

#define MAX_OPTS 256


static const struct option create_long[] = {
    CLI_LONGOPT_HELP,
    CLI_LONGOPT_OBJECT,
    { NULL, 0, NULL, 0 },
};

/* The backing file name as seen from the new image's directory. */
static char *backing_path(const char *filename, const char *backing)
{
    char *out;
    const char *slash = strrchr(filename, '/');
    if (backing[0] == '/' || !strncmp(backing, "json:", 5) ||
        strstr(backing, "://") || !slash)
        return strdup(backing);
    if (asprintf(&out, "%.*s/%s", (int)(slash - filename), filename, backing) < 0)
        return NULL;
    return out;
}

static bool has_desc(const struct opt_desc *const *list, size_t n,
                     const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i]->name, name))
            return true;
    return false;
}

/* "name=value" pairs of every set option or option with a default, in
 * create-option order, as qemu-img prints them. */
static void print_formatting(const char *filename, const char *fmt,
                             const struct opt_desc *const *list, size_t n,
                             const struct kvlist *opts)
{
    const char *sep = "";
    printf("Formatting '%s', fmt=%s ", filename, fmt);
    for (size_t i = 0; i < n; i++) {
        const struct opt_desc *d = list[i];
        const char *set = kv_peek(opts, d->name);
        const char *v = set ? set : d->def;
        uint64_t num;
        if (!v)
            continue;
        printf("%s%s=", sep, d->name);
        sep = " ";
        if (d->type == OPT_STRING) {
            for (const char *p = v; *p; p++) {
                if (*p == ',')
                    putchar(',');
                putchar(*p);
            }
        } else if ((d->type == OPT_SIZE || d->type == OPT_NUMBER) && set &&
                   (d->type == OPT_SIZE ? parse_size(v, &num)
                                        : (num = strtoull(v, NULL, 0), 0)) == 0) {
            printf("%" PRId64, (int64_t)num);
        } else {
            fputs(v, stdout);
        }
    }
    puts("");
    fflush(stdout);
}

static int do_create(const char *filename, const char *fmt, const char *base,
                     const char *base_fmt, const char *options,
                     int64_t img_size, bool no_open_backing, bool quiet)
{
    const struct opt_desc *list[MAX_OPTS];
    struct kvlist opts = KVLIST_INIT;
    struct err err = ERR_INIT;
    char *full = NULL;
    int rc = 1;

    if (!bdev_find_format(fmt)) {
        err_set(&err, -EINVAL, "Unknown file format '%s'", fmt);
        goto fail;
    }
    if (!bdev_driver_create_opts(fmt)) {
        err_set(&err, -ENOTSUP, "Format driver '%s' does not support image creation",
                fmt);
        goto fail;
    }
    size_t n = cli_create_opt_list(fmt, list, MAX_OPTS);
    if (options && cli_parse_opt_string(options, list, n, &opts, &err) < 0)
        goto fail;

    /* qemu-img's size option stays "unset" at 2^64-1. */
    uint64_t size = UINT64_MAX;
    const char *osize = kv_peek(&opts, "size");
    if (osize) {
        if (img_size >= 0) {
            err_set(&err, -EINVAL, "The image size must be specified only once");
            goto fail;
        }
        parse_size(osize, &size);
    } else if (img_size >= 0) {
        size = (uint64_t)img_size;
    }

    if (base) {
        if (!has_desc(list, n, "backing_file")) {
            err_set(&err, -ENOTSUP, "Backing file not supported for file format '%s'",
                    fmt);
            goto fail;
        }
        kv_set(&opts, "backing_file", base);
    }
    if (base_fmt) {
        if (!has_desc(list, n, "backing_fmt")) {
            err_set(&err, -ENOTSUP,
                    "Backing file format not supported for file format '%s'", fmt);
            goto fail;
        }
        kv_set(&opts, "backing_fmt", base_fmt);
    }
    const char *bfile = kv_peek(&opts, "backing_file");
    const char *bfmt = kv_peek(&opts, "backing_fmt");
    if (bfile) {
        if (!strcmp(filename, bfile)) {
            err_set(&err, -EINVAL, "Error: Trying to create an image with the "
                    "same filename as the backing file");
            goto fail;
        }
        if (!bfile[0]) {
            err_set(&err, -EINVAL, "Expected backing file name, got empty string");
            goto fail;
        }
    }

    if (bfile && !no_open_backing) {
        struct bdev_open_args a = { .fmt = bfmt,
                                    .flags = BDEV_O_SHARE | BDEV_O_NO_IO,
                                    .quiet_probe = true };
        full = backing_path(filename, bfile);
        struct bdev *bs = full ? bdev_open(full, &a, NULL, &err) : NULL;
        if (!bs) {
            if (!full)
                err_set(&err, -ENOMEM, "Out of memory");
            fprintf(stderr, "%s: %s: %s\nCould not open backing image.\n",
                    cli_prog, filename, err.msg);
            goto out;
        }
        if (!bfmt) {
            fprintf(stderr, "%s: %s: Backing file specified without backing "
                    "format\nDetected format of %s.", cli_prog, filename,
                    bdev_format_name(bs));
            bdev_close(bs);
            goto out;
        }
        if (size == UINT64_MAX)
            size = bs->size;
        bdev_close(bs);
    } else if (bfile && !bfmt) {
        err_set(&err, -EINVAL, "Backing file specified without backing format");
        goto fail;
    }
    if (size == UINT64_MAX) {
        err_set(&err, -EINVAL, "Image creation needs a size parameter");
        goto fail;
    }
    kv_set_u64(&opts, "size", size);

    if (!quiet)
        print_formatting(filename, fmt, list, n, &opts);
    int r = bdev_create(fmt, filename, &opts, &err);
    if (r == -EFBIG) {
        /* qemu-img replaces the driver's message for this case */
        uint64_t cs = 0;
        const char *v = kv_peek(&opts, "cluster_size");
        if (v)
            parse_size(v, &cs);
        err_clear(&err);
        err_set(&err, -EFBIG, "The image size is too large for file format '%s'%s",
                fmt, cs ? " (try using a larger cluster size)" : "");
    }
    if (r < 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    cli_report_prefixed(&err, "%s: ", filename);
out:
    free(full);
    kv_free(&opts);
    return rc;
}

int cmd_create(int argc, char **argv)
{
    struct cli_common co = { .fmt = "raw" };
    const char *base = NULL, *base_fmt = NULL;
    char *options = NULL;
    bool no_open_backing = false;
    int64_t img_size = -1;
    int c, rc = 0;

    while ((c = cli_getopt_common(argc, argv, "F:b:f:ho:qu", create_long, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            goto out;
        case 'F':
            base_fmt = optarg;
            break;
        case 'b':
            base = optarg;
            break;
        case 'o':
            if (cli_accumulate_options(&options, optarg) < 0) {
                rc = 1;
                goto out;
            }
            break;
        case 'u':
            no_open_backing = true;
            break;
        }
    }
    const char *fmt = co.fmt;

    const char *filename = optind < argc ? argv[optind] : NULL;
    if (options && cli_options_want_help(options)) {
        rc = cli_print_option_help(fmt, filename);
        goto out;
    }
    if (optind >= argc) {
        rc = cli_error_exit("Expecting image file name");
        goto out;
    }
    optind++;
    if (optind < argc && cli_cvtnum("image size", argv[optind++], &img_size) < 0) {
        rc = 1;
        goto out;
    }
    if (optind != argc) {
        rc = cli_error_exit("Unexpected argument: %s", argv[optind]);
        goto out;
    }
    rc = do_create(filename, fmt, base, base_fmt, options, img_size,
                   no_open_backing, co.quiet);
out:
    free(options);
    return rc;
}
