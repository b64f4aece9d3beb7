/* measure: how large an image of a given format would be, for a new image
 * of --size bytes or to hold an existing image, as qemu-img measure
 * prints it (human or JSON).  The numbers come from the target format's
 * measure callback. */
#include "cli/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/copy.h"
#include "util/align.h"

enum { OPT_OUTPUT = CLI_OPT_OWN, OPT_SIZE_ARG };

struct measure {
    struct cli_common co;   /* -f, -U, --image-opts, --object */
    const char *out_fmt, *snapshot_name, *filename;
    char *options;
    struct kvlist sn_opts;
    bool has_sn_opts, json;
    int64_t size;               /* -1: not given */
};

/* measure uses plain getopt: errors come from getopt itself, then the
 * help text. */
static int show_help(char **argv)
{
    (void)argv;
    return cli_help();
}

static int parse_args(struct measure *m, int argc, char **argv, int *rc)
{
    static const struct option longopts[] = {
        CLI_LONGOPT_HELP,
        CLI_LONGOPT_IMAGE_OPTS,
        CLI_LONGOPT_OBJECT,
        { "output", required_argument, 0, OPT_OUTPUT },
        { "size", required_argument, 0, OPT_SIZE_ARG },
        CLI_LONGOPT_FORCE_SHARE,
        { 0, 0, 0, 0 },
    };
    int c;
    *rc = 1;
    optind = 0;
    while ((c = getopt_long(argc, argv, "hf:O:o:l:U", longopts, NULL)) != -1) {
        switch (c) {
        case '?':
        case 'h':
            *rc = show_help(argv);
            return -1;
        case 'O': m->out_fmt = optarg; break;
        case 'o':
            if (cli_accumulate_options(&m->options, optarg) < 0)
                return -1;
            break;
        case 'l':
            if (cli_parse_snapshot_arg(optarg, &m->sn_opts, &m->has_sn_opts,
                                       &m->snapshot_name) < 0)
                return -1;
            break;
        case OPT_OUTPUT: {
            int f = cli_parse_output(optarg);
            if (f < 0)
                return -1;
            m->json = f == 1;
            break;
        }
        case OPT_SIZE_ARG:
            if (cli_cvtnum("image size", optarg, &m->size) < 0)
                return -1;
            break;
        default:
            if (cli_common_option(c, optarg, &m->co, rc) == CLI_OPT_EXIT)
                return -1;
            break;
        }
    }
    if (argc - optind > 1) {
        cli_error("At most one filename argument is allowed.");
        return -1;
    }
    if (argc - optind == 1)
        m->filename = argv[optind];
    if (!m->filename && (m->co.image_opts || m->co.fmt || m->snapshot_name ||
                         m->has_sn_opts)) {
        cli_error("--image-opts, -f, and -l require a filename argument.");
        return -1;
    }
    if (m->filename && m->size != -1) {
        cli_error("--size N cannot be used together with a filename.");
        return -1;
    }
    if (!m->filename && m->size == -1) {
        cli_error("Either --size N or one filename must be specified.");
        return -1;
    }
    return 0;
}

static int load_snapshot(struct measure *m, struct bdev *bs)
{
    struct err err = ERR_INIT;
    int r = 0;
    if (m->has_sn_opts)
        r = bdev_snapshot_load(bs, kv_peek(&m->sn_opts, "snapshot.id"),
                               kv_peek(&m->sn_opts, "snapshot.name"), &err);
    else if (m->snapshot_name)
        r = bdev_snapshot_load_id_or_name(bs, m->snapshot_name, &err);
    if (r < 0) {
        cli_report_prefixed(&err, "Failed to load snapshot: ");
        return -1;
    }
    return 0;
}

static int run(struct measure *m)
{
    struct bdev *in = NULL;
    struct kvlist opts = KVLIST_INIT;
    struct err err = ERR_INIT;
    struct bdev_measure info;
    int rc = 1;

    if (m->filename) {
        struct cli_open o = { .quiet = true };
        cli_open_common(&o, &m->co);
        in = cli_open_image(m->filename, &o);
        if (!in || load_snapshot(m, in) < 0)
            goto out;
    }
    if (!bdev_find_format(m->out_fmt)) {
        cli_error("Unknown file format '%s'", m->out_fmt);
        goto out;
    }
    if (!bdev_format_can_create(m->out_fmt)) {
        cli_error("Format driver '%s' does not support image creation",
                  m->out_fmt);
        goto out;
    }
    if (m->options && cli_parse_create_opts(m->out_fmt, m->options, &opts, &err) < 0) {
        cli_report(&err);
        cli_error("Invalid options for file format '%s'", m->out_fmt);
        goto out;
    }
    uint64_t size = in ? in->size : (uint64_t)m->size;
    size = align_up(size, 512);
    if (!in)
        kv_set_u64(&opts, "size", size);
    if (bdev_measure(m->out_fmt, &opts, in, size, &info, &err) < 0) {
        cli_report(&err);
        goto out;
    }
    if (!m->json) {
        printf("required size: %" PRIu64 "\n", info.required);
        printf("fully allocated size: %" PRIu64 "\n", info.fully_allocated);
        if (info.has_bitmaps)
            printf("bitmaps size: %" PRIu64 "\n", info.bitmaps);
    } else {
        printf("{\n");
        if (info.has_bitmaps)
            printf("    \"bitmaps\": %" PRIu64 ",\n", info.bitmaps);
        printf("    \"required\": %" PRIu64 ",\n", info.required);
        printf("    \"fully-allocated\": %" PRIu64 "\n}\n",
               info.fully_allocated);
    }
    rc = 0;
out:
    kv_free(&opts);
    bdev_close(in);
    return rc;
}

int cmd_measure(int argc, char **argv)
{
    struct measure m = { .out_fmt = "raw", .size = -1, .sn_opts = KVLIST_INIT };
    int rc;
    if (parse_args(&m, argc, argv, &rc) == 0)
        rc = run(&m);
    free(m.options);
    kv_free(&m.sn_opts);
    return rc;
}
