/* qimg-io: a disk exerciser with qemu-io's command language, used by the
 * tests to write and check image contents through qimg's own block layer.
 *   qimg-io [-f fmt] [-r] [-U] [-n] [-k] [-i aio] [-t cache] [--image-opts]
 *           -c 'CMD' [-c 'CMD'...] [filename]
 * Every command runs, even after a failure; the exit status is 1 when any
 * command failed, as with qemu-io. */
#include "tool/tool.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool quit_requested;

static void usage(void)
{
    printf("Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
           "Disk exerciser for qimg's block layer\n"
           "\n"
           "  --image-opts         treat file as option string\n"
           "  -c, --cmd STRING     execute command with its arguments\n"
           "                       from the given string\n"
           "  -f, --format FMT     specifies the block driver to use\n"
           "  -r, --read-only      export read-only\n"
           "  -n, --nocache        disable host cache, short for -t none\n"
           "  -k, --native-aio     use kernel AIO implementation\n"
           "                       (Linux only, prefer use of -i)\n"
           "  -i, --aio=MODE       use AIO mode (threads, native or io_uring)\n"
           "  -t, --cache=MODE     use the given cache mode for the image\n"
           "  -U, --force-share    force shared permissions\n"
           "  -h, --help           display this help and exit\n"
           "  -V, --version        output version information and exit\n"
           "\n"
           "See '%s -c help' for information on available commands.\n",
           tool_prog, tool_prog);
}

/* Split on single spaces, skipping empty words, as qemu-io does (no
 * quoting).  Returns a NULL-terminated vector pointing into `line`. */
static char **split_words(char *line, int *count)
{
    char **v = calloc(strlen(line) / 2 + 2, sizeof(*v));
    int n = 0;
    if (!v)
        return NULL;
    for (char *p = line, *w; (w = strsep(&p, " ")) != NULL;)
        if (*w)
            v[n++] = w;
    v[n] = NULL;
    *count = n;
    return v;
}

static int run_cmd(struct bdev **bsp, const struct tool_cmd *c, int argc,
                   char **argv)
{
    if (c->needs_image && !*bsp) {
        fflush(stdout);
        fprintf(stderr, "no file open, try 'help open'\n");
        return -EINVAL;
    }
    if (argc - 1 < c->argmin || (c->argmax != -1 && argc - 1 > c->argmax)) {
        fflush(stdout);
        if (c->argmax == -1)
            fprintf(stderr, "bad argument count %d to %s, expected at least "
                    "%d arguments\n", argc - 1, c->name, c->argmin);
        else if (c->argmin == c->argmax)
            fprintf(stderr, "bad argument count %d to %s, expected %d "
                    "arguments\n", argc - 1, c->name, c->argmin);
        else
            fprintf(stderr, "bad argument count %d to %s, expected between "
                    "%d and %d arguments\n", argc - 1, c->name, c->argmin,
                    c->argmax);
        return -EINVAL;
    }
    if (c->needs_write && (*bsp)->read_only) {
        tool_error("Block node is read-only");
        return -EPERM;
    }
    if (!c->run) {
        quit_requested = true;
        return 0;
    }
    return c->run(bsp, argc, argv);
}

int tool_run_line(struct bdev **bsp, const char *line)
{
    char *copy = strdup(line);
    int argc = 0, r = 0;
    char **argv = copy ? split_words(copy, &argc) : NULL;
    if (!argv) {
        free(copy);
        return -ENOMEM;
    }
    if (argc > 0) {
        const struct tool_cmd *c = NULL;
        for (const struct tool_cmd *t = tool_cmds; t->name; t++)
            if (!strcmp(t->name, argv[0]))
                c = t;
        if (!c) {
            fflush(stdout);
            fprintf(stderr, "command \"%s\" not found\n", argv[0]);
            r = -EINVAL;
        } else {
            r = run_cmd(bsp, c, argc, argv);
        }
    }
    fflush(stdout);
    free(argv);
    free(copy);
    return r;
}

/* Without -c, commands come from standard input, one per line. */
static int run_stdin(struct bdev **bsp)
{
    char *line = NULL;
    size_t cap = 0;
    int last = 0;
    while (!quit_requested) {
        printf("%s> ", tool_prog);
        fflush(stdout);
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0)
            break;
        if (n > 0 && line[n - 1] == '\n')
            line[n - 1] = 0;
        int r = tool_run_line(bsp, line);
        if (r < 0)
            last = r;
    }
    free(line);
    return last;
}

static struct bdev *open_image(const char *filename, const char *fmt,
                               bool image_opts, int flags,
                               enum cache_mode cache, const char *aio)
{
    struct bdev_open_args a = { 0 };
    struct err err = ERR_INIT;
    char *warning = NULL;
    struct bdev *bs;

    if ((flags & BDEV_O_SHARE) && (flags & BDEV_O_RDWR)) {
        if (image_opts)
            tool_error("can't open: force-share=on can only be used with "
                       "read-only images");
        else
            tool_error("can't open device %s: force-share=on can only be "
                       "used with read-only images", filename);
        return NULL;
    }
    a.fmt = fmt;
    a.flags = flags;
    a.cache = cache;
    a.aio = aio;        /* -i/-k: every file node's aio mode */
    if (image_opts) {
        struct kvlist opts = KVLIST_INIT;
        if (kv_parse(&opts, filename, NULL, &err) < 0) {
            tool_error("%s", err.msg);
            return NULL;
        }
        bs = bdev_open_opts(&opts, &a, &warning, &err);
        kv_free(&opts);
    } else {
        bs = bdev_open(filename, &a, &warning, &err);
    }
    if (!bs) {
        if (image_opts)
            tool_error("can't open: %s", err.msg);
        else
            tool_error("can't open device %s: %s", filename, err.msg);
    } else if (warning) {
        fprintf(stderr, "%s\n", warning);
    }
    free(warning);
    return bs;
}

int main(int argc, char **argv)
{
    enum { OPT_IMAGE_OPTS = 256 };
    static const struct option longopts[] = {
        { "cmd", required_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "nocache", no_argument, NULL, 'n' },
        { "cache", required_argument, NULL, 't' },
        { "force-share", no_argument, NULL, 'U' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "native-aio", no_argument, NULL, 'k' },
        { "aio", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *slash = strrchr(argv[0], '/');
    const char *fmt = NULL;
    bool read_only = false, force_share = false, image_opts = false;
    /* As in qemu-io, aio choices add up: native wins over io_uring,
     * which wins over threads. */
    bool native = false, uring = false, threads = false;
    enum cache_mode cache = CACHE_WRITETHROUGH;   /* qemu-io's default */
    char **cmds = NULL;
    int ncmds = 0, c, ret = 0;
    struct err err = ERR_INIT;

    tool_prog = slash ? slash + 1 : argv[0];
    argv[0] = (char *)tool_prog;    /* getopt's messages name the program */
    cmds = calloc((size_t)argc, sizeof(*cmds));
    if (!cmds)
        return 1;
    while ((c = getopt_long(argc, argv, "c:f:hi:knrt:UV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': cmds[ncmds++] = optarg; break;
        case 'f': fmt = optarg; break;
        case 'n': cache = CACHE_NONE; break;
        case 'k': native = true; break;
        case 'i':
            if (!strcmp(optarg, "native")) {
                native = true;
            } else if (!strcmp(optarg, "io_uring")) {
                uring = true;
            } else if (!strcmp(optarg, "threads")) {
                threads = true;
            } else {
                tool_error("Invalid aio option: %s", optarg);
                free(cmds);
                return 1;
            }
            break;
        case 'r': read_only = true; break;
        case 't':
            if (cache_mode_parse(optarg, &cache, &err) < 0) {
                tool_error("%s", err.msg);
                free(cmds);
                return 1;
            }
            break;
        case 'U': force_share = true; break;
        case OPT_IMAGE_OPTS: image_opts = true; break;
        case 'h':
            usage();
            free(cmds);
            return 0;
        case 'V':
            printf("%s version " QIMG_VERSION_STRING "\n", tool_prog);
            free(cmds);
            return 0;
        default:
            usage();
            free(cmds);
            return 1;
        }
    }
    if (argc - optind > 1) {
        usage();
        free(cmds);
        return 1;
    }
    if (image_opts && fmt) {
        tool_error("--image-opts and --format are mutually exclusive");
        free(cmds);
        return 1;
    }

    struct bdev *bs = NULL;
    if (optind < argc) {
        int flags = (read_only ? 0 : BDEV_O_RDWR) |
                    (force_share ? BDEV_O_SHARE : 0);
        const char *aio = native ? "native" : uring ? "io_uring"
                          : threads ? "threads" : NULL;
        bs = open_image(argv[optind], fmt, image_opts, flags, cache, aio);
        if (!bs) {
            free(cmds);
            return 1;
        }
    }

    if (ncmds == 0) {
        ret = run_stdin(&bs);
    } else {
        for (int i = 0; i < ncmds && !quit_requested; i++) {
            int r = tool_run_line(&bs, cmds[i]);
            if (r < 0)
                ret = r;
        }
    }
    if (bs) {
        err_clear(&err);
        if (bdev_flush(bs, &err) < 0 && ret == 0) {
            tool_error("%s", err.msg);
            ret = -EIO;
        }
        bdev_close(bs);
    }
    free(cmds);
    return ret < 0 ? 1 : 0;
}
