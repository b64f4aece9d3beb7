/* bitmap: the `bitmap` subcommand: add, remove, clear, enable, disable and
 * merge persistent dirty bitmaps, in command-line order, as qemu-img does
 * (the first failing action stops the rest; earlier ones are kept). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_ADD = CLI_OPT_OWN, OPT_REMOVE, OPT_CLEAR,
       OPT_ENABLE, OPT_DISABLE, OPT_MERGE };

static const char *const op_names[] = {
    [BITMAP_ACT_ADD] = "add", [BITMAP_ACT_REMOVE] = "remove",
    [BITMAP_ACT_CLEAR] = "clear", [BITMAP_ACT_ENABLE] = "enable",
    [BITMAP_ACT_DISABLE] = "disable", [BITMAP_ACT_MERGE] = "merge",
};

int cmd_bitmap(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPT_HELP,
        CLI_LONGOPT_OBJECT,
        CLI_LONGOPT_IMAGE_OPTS,
        { "add", no_argument, NULL, OPT_ADD },
        { "remove", no_argument, NULL, OPT_REMOVE },
        { "clear", no_argument, NULL, OPT_CLEAR },
        { "enable", no_argument, NULL, OPT_ENABLE },
        { "disable", no_argument, NULL, OPT_DISABLE },
        { "merge", required_argument, NULL, OPT_MERGE },
        { "granularity", required_argument, NULL, 'g' },
        { "source-file", required_argument, NULL, 'b' },
        { "source-format", required_argument, NULL, 'F' },
        { NULL, 0, NULL, 0 },
    };
    struct cli_open o = { .cache = CACHE_WRITEBACK, .writable = true,
                          .no_backing = true };
    struct cli_common co = { 0 };
    struct bitmap_action *acts = NULL;
    const char *src_file = NULL, *src_fmt = NULL;
    int64_t granularity = 0;
    bool add = false, merge = false;
    int n = 0, c, rc, ret = 1;

    while ((c = cli_getopt_common(argc, argv, "hb:f:F:g:", longopts, &co,
                                  &rc)) != -1) {
        enum bitmap_act op;
        switch (c) {
        case CLI_OPT_EXIT:
            free(acts);
            return rc;
        case 'b':
            src_file = optarg;
            continue;
        case 'F':
            src_fmt = optarg;
            continue;
        case 'g':
            if (cli_cvtnum("granularity", optarg, &granularity) < 0) {
                free(acts);
                return 1;
            }
            continue;
        case OPT_ADD: op = BITMAP_ACT_ADD; add = true; break;
        case OPT_REMOVE: op = BITMAP_ACT_REMOVE; break;
        case OPT_CLEAR: op = BITMAP_ACT_CLEAR; break;
        case OPT_ENABLE: op = BITMAP_ACT_ENABLE; break;
        case OPT_DISABLE: op = BITMAP_ACT_DISABLE; break;
        case OPT_MERGE: op = BITMAP_ACT_MERGE; merge = true; break;
        default:
            continue;
        }
        struct bitmap_action *na = realloc(acts, ((size_t)n + 1) * sizeof(*na));
        if (!na) {
            free(acts);
            cli_error("Out of memory");
            return 1;
        }
        acts = na;
        acts[n] = (struct bitmap_action){ .op = op };
        if (op == BITMAP_ACT_MERGE)
            acts[n].src_name = optarg;
        n++;
    }
    cli_open_common(&o, &co);
    struct bdev *bs = NULL, *src = NULL;
    if (!n) {
        cli_error("Need at least one of --add, --remove, --clear, --enable, "
                  "--disable, or --merge");
        goto out;
    }
    if (granularity && !add) {
        cli_error("granularity only supported with --add");
        goto out;
    }
    if (src_fmt && !src_file) {
        cli_error("-F only supported with -b");
        goto out;
    }
    if (src_file && !merge) {
        cli_error("Merge bitmap source file only supported with --merge");
        goto out;
    }
    if (optind != argc - 2) {
        cli_error("Expecting filename and bitmap name");
        goto out;
    }
    const char *filename = argv[optind], *name = argv[optind + 1];

    bs = cli_open_image(filename, &o);
    if (!bs)
        goto out;
    if (src_file) {
        struct cli_open so = { .fmt = src_fmt, .cache = CACHE_WRITEBACK,
                               .no_backing = true };
        src = cli_open_image(src_file, &so);
        if (!src)
            goto out;
    }
    for (int i = 0; i < n; i++) {
        acts[i].name = name;
        acts[i].granularity = (uint64_t)granularity;
        acts[i].src = src;
    }
    struct err err = ERR_INIT;
    int failed = 0;
    if (bdev_bitmap_apply(bs, acts, n, &failed, &err) < 0) {
        if (failed < 0 || failed >= n)
            failed = 0;
        cli_report_prefixed(&err, "Operation %s on bitmap %s failed: ",
                            op_names[acts[failed].op], name);
        goto out;
    }
    ret = 0;
out:
    bdev_close(src);
    bdev_close(bs);
    free(acts);
    return ret;
}
