/* resize: change an image's virtual size, absolutely or by a +/- amount,
 * with qemu-img's checks (shrinking needs --shrink, preallocation only
 * when growing) and messages. */
#include "cli/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "util/size.h"

enum { OPT_PREALLOCATION = CLI_OPT_OWN, OPT_SHRINK };

static const struct option resize_long[] = {
    CLI_LONGOPT_HELP,
    CLI_LONGOPT_OBJECT,
    CLI_LONGOPT_IMAGE_OPTS,
    { "preallocation", required_argument, NULL, OPT_PREALLOCATION },
    { "shrink", no_argument, NULL, OPT_SHRINK },
    { NULL, 0, NULL, 0 },
};

int cmd_resize(int argc, char **argv)
{
    struct cli_common co = { 0 };
    const char *size;
    bool shrink = false;
    enum prealloc prealloc = PREALLOC_OFF;
    struct err err = ERR_INIT;
    int c, rc = 0, relative = 0;

    /* The size is the last argument, taken before option parsing so that
     * "-1G" is not read as an option. */
    if (argc < 3)
        return cli_error_exit("Not enough arguments");
    size = argv[--argc];

    while ((c = cli_getopt_common(argc, argv, "f:hq", resize_long, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            return rc;
        case OPT_PREALLOCATION:
            if (prealloc_parse(optarg, &prealloc, NULL) < 0) {
                cli_error("Invalid preallocation mode '%s'", optarg);
                return 1;
            }
            break;
        case OPT_SHRINK:
            shrink = true;
            break;
        }
    }
    if (optind != argc - 1)
        return cli_error_exit("Expecting image file name and size");
    const char *filename = argv[optind];

    if (size[0] == '+' || size[0] == '-') {
        relative = size[0] == '+' ? 1 : -1;
        size++;
    }
    uint64_t n;
    if (parse_size(size, &n) < 0) {
        cli_error("Parameter 'size' expects a non-negative number below 2^64\n"
                  "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, "
                  "tera-, peta-\nand exabytes, respectively.");
        return 1;
    }

    struct cli_open o = { .writable = true, .extra_flags = BDEV_O_RESIZE };
    cli_open_common(&o, &co);
    struct bdev *bs = cli_open_image(filename, &o);
    if (!bs)
        return 1;

    /* Signed 64-bit arithmetic with wrap-around, as qemu-img computes it,
     * so that absurd sizes end in the same "must be positive" error. */
    int64_t current = (int64_t)bs->size;
    int64_t total = relative ? (int64_t)((uint64_t)current +
                                         (uint64_t)relative * n)
                             : (int64_t)n;
    rc = 1;
    if (total <= 0) {
        cli_error("New image size must be positive");
        goto out;
    }
    if (total <= current && prealloc != PREALLOC_OFF) {
        cli_error("Preallocation can only be used for growing images");
        goto out;
    }
    if (total < current && !shrink) {
        cli_error("Use the --shrink option to perform a shrink operation.");
        fprintf(stderr, "%s: warning: Shrinking an image will delete all data "
                "beyond the shrunken image's end. Before performing such an "
                "operation, make sure there is no important data there.\n",
                cli_prog);
        goto out;
    }
    if (bdev_truncate(bs, (uint64_t)total, shrink, prealloc, &err) < 0) {
        cli_report(&err);
        goto out;
    }
    if (bdev_flush(bs, &err) < 0) {
        cli_report(&err);
        goto out;
    }
    if (!co.quiet)
        printf("Image resized.\n");
    rc = 0;
out:
    bdev_close(bs);
    return rc;
}
