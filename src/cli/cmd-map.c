/* map: print how an image's ranges map to its files, as qemu-img map does
 * (human table or JSON array), merging adjacent entries the same way. */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/copy.h"
#include "util/align.h"

enum { OPT_OUTPUT = CLI_OPT_OWN };

struct entry {
    uint64_t start, length, offset;
    int depth;
    bool present, zero, data, has_offset;
    const char *filename;       /* NULL when there is none */
};

static bool mergeable(const struct entry *a, const struct entry *b)
{
    if (a->length == 0)
        return false;
    if (a->zero != b->zero || a->data != b->data || a->depth != b->depth ||
        a->present != b->present || !a->filename != !b->filename ||
        a->has_offset != b->has_offset)
        return false;
    if (a->filename && strcmp(a->filename, b->filename))
        return false;
    if (a->has_offset && a->offset + a->length != b->offset)
        return false;
    return true;
}

static int dump(bool json, const struct entry *e, struct entry *next)
{
    if (!json) {
        if (e->data && !e->has_offset) {
            cli_error("File contains external, encrypted or compressed "
                      "clusters.");
            return -1;
        }
        if (e->data && !e->zero)
            printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
                   e->start, e->length, e->has_offset ? e->offset : 0,
                   e->filename ? e->filename : "");
        /* The table does not tell zero kinds apart: merge them. */
        if (next && (!next->data || next->zero)) {
            next->data = false;
            next->zero = true;
        }
        return 0;
    }
    printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d,"
           " \"present\": %s, \"zero\": %s, \"data\": %s", e->start,
           e->length, e->depth, e->present ? "true" : "false",
           e->zero ? "true" : "false", e->data ? "true" : "false");
    if (e->has_offset)
        printf(", \"offset\": %" PRIu64, e->offset);
    putchar('}');
    if (next)
        puts(",");
    return 0;
}

static int get_entry(struct bdev *bs, uint64_t off, uint64_t len,
                     struct entry *e)
{
    struct bstatus st;
    struct err err = ERR_INIT;
    int r = bdev_map_status(bs, off, len, &st, &err);
    if (r < 0)
        return r;
    memset(e, 0, sizeof(*e));
    e->start = off;
    e->length = st.len;
    e->depth = st.depth;
    e->data = st.flags & BS_DATA;
    e->zero = st.flags & BS_ZERO;
    e->present = st.flags & BS_ALLOCATED;
    e->has_offset = st.flags & BS_OFFSET_VALID;
    e->offset = e->has_offset ? st.host_off : 0;
    if (e->has_offset && st.file)
        e->filename = st.file->filename;
    return 0;
}

int cmd_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPT_HELP,
        { "format", required_argument, 0, 'f' },
        { "output", required_argument, 0, OPT_OUTPUT },
        CLI_LONGOPT_OBJECT,
        CLI_LONGOPT_IMAGE_OPTS,
        CLI_LONGOPT_FORCE_SHARE,
        { "start-offset", required_argument, 0, 's' },
        { "max-length", required_argument, 0, 'l' },
        { 0, 0, 0, 0 },
    };
    struct cli_open o = { .quiet = true };
    struct cli_common co = { 0 };
    const char *output = NULL;
    int64_t start = 0, max_length = -1;
    int c, rc = 1;

    optind = 0;
    while ((c = cli_getopt_common(argc, argv, "f:s:l:hU", longopts, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT: return rc;
        case OPT_OUTPUT: output = optarg; break;
        case 's':
            if (cli_cvtnum("start offset", optarg, &start) < 0)
                return 1;
            break;
        case 'l':
            if (cli_cvtnum("max length", optarg, &max_length) < 0)
                return 1;
            break;
        default: break;
        }
    }
    cli_open_common(&o, &co);
    if (optind != argc - 1)
        return cli_error_exit("Expecting one image file name");
    bool json = false;
    if (output) {
        int f = cli_parse_output(output);
        if (f < 0)
            return 1;
        json = f == 1;
    }
    struct bdev *bs = cli_open_image(argv[optind], &o);
    if (!bs)
        return 1;

    if (json)
        putchar('[');
    else
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");

    uint64_t length = bs->size;
    if (max_length != -1)
        length = min_u64((uint64_t)start + (uint64_t)max_length, length);

    struct entry cur = { .start = (uint64_t)start }, next;
    int r = 0;
    while (cur.start + cur.length < length) {
        uint64_t off = cur.start + cur.length;
        r = get_entry(bs, off, length - off, &next);
        if (r < 0) {
            cli_error("Could not read file metadata: %s", strerror(-r));
            goto out;
        }
        if (mergeable(&cur, &next)) {
            cur.length += next.length;
            continue;
        }
        if (cur.length > 0) {
            r = dump(json, &cur, &next);
            if (r < 0)
                goto out;
        }
        cur = next;
    }
    r = dump(json, &cur, NULL);
    if (json)
        puts("]");
out:
    bdev_close(bs);
    return r < 0;
}
