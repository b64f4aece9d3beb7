/* amend: the `amend` subcommand: change options of an existing image
 * (-o), with qemu-img's option help, parsing errors (creation-only options
 * named as such) and messages. */
#include "cli/cli.h"
#include "cli/progress.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_FORCE = CLI_OPT_OWN };

/* The options qcow2 accepts for amend, in qemu-img's help order. */
static const struct opt_desc qcow2_amend_opts[] = {
    { "backing_file", OPT_STRING, "File name of a base image", NULL },
    { "backing_fmt", OPT_STRING, "Image format of the base image", NULL },
    { "compat", OPT_STRING, "Compatibility level (v2 [0.10] or v3 [1.1])", NULL },
    { "data_file", OPT_STRING, "File name of an external data file", NULL },
    { "data_file_raw", OPT_BOOL, "The external data file must stay valid as a raw image", NULL },
    { "encrypt.iter-time", OPT_NUMBER, "Time to spend in PBKDF in milliseconds", NULL },
    { "encrypt.keyslot", OPT_NUMBER, "Select a single keyslot to modify explicitly", NULL },
    { "encrypt.new-secret", OPT_STRING, "New secret to set in the matching keyslots. Empty string to erase", NULL },
    { "encrypt.old-secret", OPT_STRING, "Select all keyslots that match this password", NULL },
    { "encrypt.state", OPT_STRING, "Select new state of affected keyslots (active/inactive)", NULL },
    { "lazy_refcounts", OPT_BOOL, "Postpone refcount updates", NULL },
    { "refcount_bits", OPT_NUMBER, "Width of a reference count entry in bits", NULL },
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { NULL, OPT_STRING, NULL, NULL },
};

static const struct opt_desc *amend_opts_of(const char *fmt)
{
    return !strcmp(fmt, "qcow2") ? qcow2_amend_opts : NULL;
}

static const char *type_name(enum opt_type t)
{
    switch (t) {
    case OPT_BOOL: return "bool (on/off)";
    case OPT_NUMBER: return "num";
    case OPT_SIZE: return "size";
    default: return "str";
    }
}

static int print_amend_help(const char *fmt)
{
    if (!bdev_find_format(fmt)) {
        cli_error("Unknown file format '%s'", fmt);
        return 1;
    }
    const struct opt_desc *o = amend_opts_of(fmt);
    if (!o) {
        cli_error("Format driver '%s' does not support option amendment", fmt);
        return 1;
    }
    printf("Amend options for '%s':\n", fmt);
    for (; o->name; o++) {
        char head[256];
        snprintf(head, sizeof(head), "  %s=<%s>", o->name, type_name(o->type));
        printf("%-24s", head);
        if (o->help)
            printf(" - %s", o->help);
        printf("\n");
    }
    return 0;
}

static size_t list_of(const struct opt_desc *o, const struct opt_desc **out,
                      size_t n, size_t max)
{
    for (; o && o->name && n < max; o++)
        out[n++] = o;
    return n;
}

static void amend_progress(void *opaque, uint64_t done, uint64_t total)
{
    (void)opaque;
    /* Single precision, as qemu-img computes it. */
    if (total)
        progress_print(100.f * (float)done / (float)total, 0);
}

int cmd_amend(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPT_HELP,
        CLI_LONGOPT_OBJECT,
        CLI_LONGOPT_IMAGE_OPTS,
        { "force", no_argument, NULL, OPT_FORCE },
        { NULL, 0, NULL, 0 },
    };
    struct cli_open o = { .cache = CACHE_WRITEBACK, .writable = true };
    struct cli_common co = { 0 };
    const char *cache = "writeback";
    char *options = NULL;
    bool progress = false, force = false;
    int c, rc, ret = 1;

    while ((c = cli_getopt_common(argc, argv, "ho:f:t:pq", longopts, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            free(options);
            return rc;
        case 'o':
            if (cli_accumulate_options(&options, optarg) < 0)
                return 1;
            break;
        case 't':
            cache = optarg;
            break;
        case 'p':
            progress = true;
            break;
        case OPT_FORCE:
            force = true;
            break;
        }
    }
    if (!options)
        return cli_error_exit("Must specify options (-o)");
    cli_open_common(&o, &co);
    bool quiet = co.quiet;
    if (quiet)
        progress = false;
    progress_init(progress, 1.f);
    const char *filename = optind == argc - 1 ? argv[argc - 1] : NULL;
    struct bdev *bs = NULL;
    struct kvlist kv = KVLIST_INIT;
    struct err err = ERR_INIT;

    if (o.fmt && cli_options_want_help(options)) {
        ret = print_amend_help(o.fmt);
        goto out_noprog;
    }
    if (optind != argc - 1) {
        cli_error("Expecting one image file name");
        goto out_noprog;
    }
    if (cache_mode_parse(cache, &o.cache, &err) < 0) {
        cli_error("Invalid cache option: %s", cache);
        goto out_noprog;
    }
    o.quiet = quiet;
    bs = cli_open_image(filename, &o);
    if (!bs)
        goto out_noprog;
    const char *fmt = bdev_format_name(bs);
    if (cli_options_want_help(options)) {
        ret = print_amend_help(fmt);
        goto out_noprog;
    }
    const struct opt_desc *aopts = amend_opts_of(fmt);
    if (!aopts) {
        cli_error("Format driver '%s' does not support option amendment", fmt);
        goto out_noprog;
    }
    const struct opt_desc *list[128];
    size_t n = list_of(aopts, list, 0, 128);
    if (cli_parse_opt_string(options, list, n, &kv, &err) < 0) {
        /* Name the options that only creation accepts. */
        struct kvlist kv2 = KVLIST_INIT;
        struct err e2 = ERR_INIT;
        size_t m = list_of(bdev_driver_create_opts(fmt), list, n, 128);
        bool create_only = cli_parse_opt_string(options, list, m, &kv2, &e2) >= 0;
        kv_free(&kv2);
        if (create_only)
            cli_error("%s\nThis option is only supported for image creation",
                      err.msg);
        else
            cli_report(&err);
        goto out_noprog;
    }
    progress_print(0.f, 0);
    int r = bdev_amend(bs, &kv, force, amend_progress, NULL, &err);
    progress_print(100.f, 0);
    if (r == -ENOTSUP && !err_isset(&err)) {
        cli_error("Format driver '%s' does not support option amendment", fmt);
    } else if (r < 0) {
        cli_report(&err);
    } else {
        ret = 0;
    }
    progress_end();
    goto out;
out_noprog:
    progress_end();
out:
    kv_free(&kv);
    bdev_close(bs);
    free(options);
    return ret;
}
