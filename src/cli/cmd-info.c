/* info: describe an image (and with --backing-chain its whole chain), in
 * qemu-img's human layout or its JSON.  The generic part (sizes, backing
 * link, snapshots) comes from the block layer; the format-specific object
 * comes from the driver's get_info. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "util/size.h"

enum { OPT_OUTPUT = CLI_OPT_OWN, OPT_BACKING_CHAIN };

static const struct option info_long[] = {
    CLI_LONGOPT_HELP,
    { "format", required_argument, NULL, 'f' },
    { "output", required_argument, NULL, OPT_OUTPUT },
    { "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
    CLI_LONGOPT_OBJECT,
    CLI_LONGOPT_IMAGE_OPTS,
    CLI_LONGOPT_FORCE_SHARE,
    { NULL, 0, NULL, 0 },
};

/* The name qemu-img shows for an image opened from options (--image-opts
 * or a json: name): the file name, unless options that change what the
 * image is were given (raw's offset and size), in which case it is a
 * json: description of the node.  Caller frees. */
static char *display_name(struct bdev *bs, const char *given, bool image_opts)
{
    bool is_json = !strncmp(given, "json:", 5);
    if (!(image_opts || is_json) || !bs->file)
        return strdup(bs->filename);
    if (strcmp(bdev_format_name(bs), "raw"))
        return strdup(bs->file->filename);

    struct json_object *user = NULL, *node = json_object_new_object();
    struct kvlist kv = KVLIST_INIT;
    struct err err = ERR_INIT;
    static const char *const strong[] = { "offset", "size" };
    bool any = false;
    if (is_json)
        user = json_tokener_parse(given + 5);
    else
        kv_parse(&kv, given, NULL, &err);
    json_object_object_add(node, "driver", json_object_new_string("raw"));
    for (int i = 0; i < 2; i++) {
        struct json_object *v;
        if (user && json_object_object_get_ex(user, strong[i], &v)) {
            json_object_object_add(node, strong[i], json_object_get(v));
            any = true;
        } else if (!user && kv_peek(&kv, strong[i])) {
            json_object_object_add(node, strong[i],
                                   json_object_new_string(kv_peek(&kv, strong[i])));
            any = true;
        }
    }
    struct json_object *file = json_object_new_object();
    json_object_object_add(file, "driver", json_object_new_string("file"));
    json_object_object_add(file, "filename", json_object_new_string(bs->file->filename));
    json_object_object_add(node, "file", file);

    char *out = NULL;
    size_t len = 0;
    if (any) {
        FILE *f = open_memstream(&out, &len);
        if (f) {
            fputs("json:", f);
            cli_print_json_compact(f, node);
            fclose(f);
        }
    }
    json_object_put(node);
    json_object_put(user);
    kv_free(&kv);
    return out ? out : strdup(bs->file->filename);
}

static struct json_object *snapshot_json(const struct snapshot_info *sn)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(sn->id));
    json_object_object_add(o, "name", json_object_new_string(sn->name ? sn->name : ""));
    json_object_object_add(o, "vm-state-size", json_object_new_int64((int64_t)sn->vm_state_size));
    json_object_object_add(o, "date-sec", json_object_new_int64(sn->date_sec));
    json_object_object_add(o, "date-nsec", json_object_new_int64(sn->date_nsec));
    json_object_object_add(o, "vm-clock-sec",
                           json_object_new_int64((int64_t)(sn->vm_clock_nsec / 1000000000)));
    json_object_object_add(o, "vm-clock-nsec",
                           json_object_new_int64((int64_t)(sn->vm_clock_nsec % 1000000000)));
    if (sn->has_icount)
        json_object_object_add(o, "icount", json_object_new_int64((int64_t)sn->icount));
    return o;
}

/* Collect one image's information as the JSON object qemu-img prints. */
static struct json_object *image_json(struct bdev *bs, const char *given,
                                      bool image_opts, struct err *err)
{
    struct json_object *o = json_object_new_object();
    struct bdev_info bi;
    memset(&bi, 0, sizeof(bi));

    char *name = display_name(bs, given, image_opts);
    json_object_object_add(o, "filename", json_object_new_string(name ? name : ""));
    free(name);
    json_object_object_add(o, "format", json_object_new_string(bdev_format_name(bs)));
    json_object_object_add(o, "virtual-size", json_object_new_int64((int64_t)bs->size));
    int64_t actual = bdev_allocated_size(bs);
    if (actual >= 0)
        json_object_object_add(o, "actual-size", json_object_new_int64(actual));

    bool has_dirty = true;
    int r = bdev_get_info(bs, &bi, err);
    if (r == -ENOTSUP) {
        /* qemu's raw and file drivers answer the info query (clean, no
         * cluster size); other formats without it show no dirty flag. */
        has_dirty = !strcmp(bdev_format_name(bs), "raw") ||
                    !strcmp(bdev_format_name(bs), "file");
    } else if (r < 0) {
        json_object_put(o);
        return NULL;
    }
    if (bi.encrypted)
        json_object_object_add(o, "encrypted", json_object_new_boolean(1));
    if (bi.cluster_size > 0)
        json_object_object_add(o, "cluster-size", json_object_new_int64(bi.cluster_size));
    if (has_dirty)
        json_object_object_add(o, "dirty-flag", json_object_new_boolean(bi.dirty_flag));

    if (bs->backing_file && bs->backing_file[0]) {
        json_object_object_add(o, "backing-filename",
                               json_object_new_string(bs->backing_file));
        if (bs->full_backing_filename)
            json_object_object_add(o, "full-backing-filename",
                                   json_object_new_string(bs->full_backing_filename));
        if (bs->backing_fmt)
            json_object_object_add(o, "backing-filename-format",
                                   json_object_new_string(bs->backing_fmt));
    }

    struct snapshot_info *list = NULL;
    int n = 0;
    r = bdev_snapshot_list(bs, &list, &n, err);
    if (r < 0 && r != -ENOTSUP) {
        json_object_put(o);
        if (bi.format_specific)
            json_object_put(bi.format_specific);
        return NULL;
    }
    if (r >= 0 && n > 0) {
        struct json_object *arr = json_object_new_array();
        for (int i = 0; i < n; i++)
            json_object_array_add(arr, snapshot_json(&list[i]));
        json_object_object_add(o, "snapshots", arr);
    }
    snapshot_info_free(list, n);

    if (bi.format_specific) {
        struct json_object *fs = json_object_new_object();
        json_object_object_add(fs, "type", json_object_new_string(bdev_format_name(bs)));
        json_object_object_add(fs, "data", bi.format_specific);
        json_object_object_add(o, "format-specific", fs);
    }
    return o;
}

static int64_t get_i64(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *get_str(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void print_snapshot_row(struct json_object *sn)
{
    char size[64], date[64], clock[64], icount[32] = "";
    struct json_object *v;
    time_t t = (time_t)get_i64(sn, "date-sec");
    struct tm tm;
    int64_t secs = get_i64(sn, "vm-clock-sec");
    int64_t ms = get_i64(sn, "vm-clock-nsec") / 1000000;

    format_size_human((uint64_t)get_i64(sn, "vm-state-size"), size, sizeof(size));
    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(clock, sizeof(clock), "%02" PRId64 ":%02d:%02d.%03d", secs / 3600,
             (int)(secs / 60 % 60), (int)(secs % 60), (int)ms);
    if (json_object_object_get_ex(sn, "icount", &v))
        snprintf(icount, sizeof(icount), "%" PRId64, json_object_get_int64(v));
    const char *id = get_str(sn, "id"), *name = get_str(sn, "name");
    printf("%-9s %-16s %8s%20s%13s%11s\n", id ? id : "", name ? name : "",
           size, date, clock, icount);
}

static void print_human(struct json_object *o)
{
    char buf[64];
    struct json_object *v;
    int64_t vsize = get_i64(o, "virtual-size");

    printf("image: %s\nfile format: %s\nvirtual size: %s (%" PRId64 " bytes)\n",
           get_str(o, "filename"), get_str(o, "format"),
           format_size_human((uint64_t)vsize, buf, sizeof(buf)), vsize);
    if (json_object_object_get_ex(o, "actual-size", &v))
        printf("disk size: %s\n",
               format_size_human((uint64_t)json_object_get_int64(v), buf, sizeof(buf)));
    else
        printf("disk size: unavailable\n");
    if (json_object_object_get_ex(o, "encrypted", &v) && json_object_get_boolean(v))
        printf("encrypted: yes\n");
    if (json_object_object_get_ex(o, "cluster-size", &v))
        printf("cluster_size: %" PRId64 "\n", json_object_get_int64(v));
    if (json_object_object_get_ex(o, "dirty-flag", &v) && json_object_get_boolean(v))
        printf("cleanly shut down: no\n");
    const char *bf = get_str(o, "backing-filename");
    if (bf) {
        const char *full = get_str(o, "full-backing-filename");
        printf("backing file: %s", bf);
        if (!full)
            printf(" (cannot determine actual path)");
        else if (strcmp(bf, full))
            printf(" (actual path: %s)", full);
        printf("\n");
        const char *bfmt = get_str(o, "backing-filename-format");
        if (bfmt)
            printf("backing file format: %s\n", bfmt);
    }
    if (json_object_object_get_ex(o, "snapshots", &v)) {
        printf("Snapshot list:\n");
        printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
               "VM CLOCK", "ICOUNT");
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++)
            print_snapshot_row(json_object_array_get_idx(v, i));
    }
    if (json_object_object_get_ex(o, "format-specific", &v)) {
        struct json_object *data;
        printf("Format specific information:\n");
        if (json_object_object_get_ex(v, "data", &data))
            cli_print_human_dict(stdout, data, 1);
    }
}

/* Open each image of the chain in turn (without its backing), as qemu-img
 * does, so every layer is described from its own header. */
static struct json_object *collect(const char *filename, const char *fmt,
                                   bool image_opts, bool force_share, bool chain)
{
    struct json_object *list = json_object_new_array();
    char **seen = NULL;
    size_t nseen = 0;
    char *name = strdup(filename), *format = fmt ? strdup(fmt) : NULL;
    bool ok = false;

    while (name) {
        for (size_t i = 0; i < nseen; i++) {
            if (!strcmp(seen[i], name)) {
                cli_error("Backing file '%s' creates an infinite loop.", name);
                goto out;
            }
        }
        char **ns = realloc(seen, (nseen + 1) * sizeof(*seen));
        if (!ns)
            goto out;
        seen = ns;
        seen[nseen++] = strdup(name);

        struct cli_open o = { .fmt = format, .image_opts = image_opts,
                              .force_share = force_share, .no_backing = true,
                              .no_io = true };
        struct bdev *bs = cli_open_image(name, &o);
        if (!bs)
            goto out;
        struct err err = ERR_INIT;
        struct json_object *info = image_json(bs, name, image_opts, &err);
        bdev_close(bs);
        if (!info) {
            cli_report(&err);
            goto out;
        }
        json_object_array_add(list, info);
        free(name);
        name = NULL;
        if (!chain)
            break;
        const char *full = get_str(info, "full-backing-filename");
        const char *bf = get_str(info, "backing-filename");
        if (!full && bf) {
            cli_error("Could not determine absolute backing filename, but "
                      "backing filename '%s' present", bf);
            goto out;
        }
        if (full)
            name = strdup(full);
        free(format);
        format = get_str(info, "backing-filename-format") ?
                 strdup(get_str(info, "backing-filename-format")) : NULL;
        image_opts = false;
    }
    ok = true;
out:
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    free(name);
    free(format);
    if (!ok) {
        json_object_put(list);
        return NULL;
    }
    return list;
}

int cmd_info(int argc, char **argv)
{
    struct cli_common co = { 0 };
    const char *output = NULL;
    bool chain = false;
    int c, rc = 0;

    while ((c = cli_getopt_common(argc, argv, "f:hU", info_long, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            return rc;
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_BACKING_CHAIN:
            chain = true;
            break;
        }
    }
    if (optind != argc - 1)
        return cli_error_exit("Expecting one image file name");
    int out = CLI_OUTPUT_HUMAN;
    if (output && (out = cli_parse_output(output)) < 0)
        return 1;

    struct json_object *list = collect(argv[optind], co.fmt, co.image_opts,
                                       co.force_share, chain);
    if (!list)
        return 1;
    size_t n = json_object_array_length(list);
    if (out == CLI_OUTPUT_JSON) {
        cli_print_json(stdout, chain ? list : json_object_array_get_idx(list, 0));
        printf("\n");
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i)
                printf("\n");
            print_human(json_object_array_get_idx(list, i));
        }
    }
    json_object_put(list);
    return 0;
}
