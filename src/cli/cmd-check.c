/* check: the `check` subcommand.  Runs the format's consistency check
 * (repairing with -r leaks / -r all), prints qemu-img's human summary or
 * its JSON object, and exits as qemu-img does: 0 clean, 1 check failed,
 * 2 corruptions, 3 leaks only, 63 format without checks. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <string.h>

enum { OPT_OUTPUT = CLI_OPT_OWN };

static void print_human(const struct check_result *c, bool quiet)
{
    if (quiet)
        return;
    if (!(c->corruptions || c->leaks || c->check_errors)) {
        printf("No errors were found on the image.\n");
    } else {
        if (c->corruptions)
            printf("\n%d errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image "
                   "may corrupt it.\n", c->corruptions);
        if (c->leaks)
            printf("\n%d leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   c->leaks);
        if (c->check_errors)
            printf("\n%d internal errors have occurred during the check.\n",
                   c->check_errors);
    }
    if (c->total_clusters && c->allocated_clusters)
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
               "fragmented, %0.2f%% compressed clusters\n",
               c->allocated_clusters, c->total_clusters,
               c->allocated_clusters * 100.0 / c->total_clusters,
               c->fragmented_clusters * 100.0 / c->allocated_clusters,
               c->compressed_clusters * 100.0 / c->allocated_clusters);
    if (c->image_end_offset)
        printf("Image end offset: %" PRId64 "\n", c->image_end_offset);
}

static void add_int(struct json_object *o, const char *key, int64_t v,
                    bool always)
{
    if (v || always)
        json_object_object_add(o, key, json_object_new_int64(v));
}

static void print_json(const struct check_result *c, const char *filename,
                       const char *format, bool quiet)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "filename", json_object_new_string(filename));
    json_object_object_add(o, "format", json_object_new_string(format));
    add_int(o, "check-errors", c->check_errors, true);
    add_int(o, "image-end-offset", c->image_end_offset, false);
    add_int(o, "corruptions", c->corruptions, false);
    add_int(o, "leaks", c->leaks, false);
    add_int(o, "corruptions-fixed", c->corruptions_fixed, false);
    add_int(o, "leaks-fixed", c->leaks_fixed, false);
    add_int(o, "total-clusters", (int64_t)c->total_clusters, false);
    add_int(o, "allocated-clusters", (int64_t)c->allocated_clusters, false);
    add_int(o, "fragmented-clusters", (int64_t)c->fragmented_clusters, false);
    add_int(o, "compressed-clusters", (int64_t)c->compressed_clusters, false);
    if (!quiet) {
        cli_print_json(stdout, o);
        printf("\n");
    }
    json_object_put(o);
}

int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPT_HELP,
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        CLI_LONGOPT_OBJECT,
        CLI_LONGOPT_IMAGE_OPTS,
        CLI_LONGOPT_FORCE_SHARE,
        { NULL, 0, NULL, 0 },
    };
    struct cli_open o = { .cache = CACHE_WRITEBACK, .extra_flags = BDEV_O_CHECK };
    struct cli_common co = { 0 };
    const char *output = NULL;
    unsigned fix = 0;
    int c, rc, json = 0;

    while ((c = cli_getopt_common(argc, argv, "hf:r:T:qU", longopts, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            return rc;
        case 'r':
            o.writable = true;
            if (!strcmp(optarg, "leaks"))
                fix = CHECK_FIX_LEAKS;
            else if (!strcmp(optarg, "all"))
                fix = CHECK_FIX_LEAKS | CHECK_FIX_ERRORS;
            else
                return cli_error_exit("Unknown option value for -r "
                                      "(expecting 'leaks' or 'all'): %s",
                                      optarg);
            break;
        case OPT_OUTPUT:
            output = optarg;
            break;
        }
    }
    cli_open_common(&o, &co);
    const char *cache = co.src_cache ? co.src_cache : "writeback";
    bool quiet = co.quiet;
    if (optind != argc - 1)
        return cli_error_exit("Expecting one image file name");
    const char *filename = argv[optind];

    if (output && !strcmp(output, "json")) {
        json = 1;
    } else if (output && strcmp(output, "human")) {
        cli_error("--output must be used with human or json as argument.");
        return 1;
    }
    struct err err = ERR_INIT;
    if (cache_mode_parse(cache, &o.cache, &err) < 0) {
        cli_error("Invalid source cache option: %s", cache);
        return 1;
    }

    struct bdev *bs = cli_open_image(filename, &o);
    if (!bs)
        return 1;

    struct check_result res;
    fflush(stdout);
    int r = bdev_check(bs, &res, fix, &err);
    if (r == -ENOTSUP) {
        cli_error("This image format does not support checks");
        bdev_close(bs);
        return 63;
    }
    if (r >= 0 && (res.corruptions_fixed || res.leaks_fixed)) {
        int cf = res.corruptions_fixed, lf = res.leaks_fixed;
        if (!json && !quiet) {
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %d leaked clusters\n"
                   "    %d corruptions\n\n"
                   "Double checking the fixed image now...\n", lf, cf);
            fflush(stdout);
        }
        err_clear(&err);
        r = bdev_check(bs, &res, 0, &err);
        res.corruptions_fixed = cf;
        res.leaks_fixed = lf;
    }
    fflush(stderr);
    if (r >= 0) {
        if (json)
            print_json(&res, filename, bdev_format_name(bs), quiet);
        else
            print_human(&res, quiet);
    }
    fflush(stdout);
    int ret;
    if (r < 0 || res.check_errors) {
        /* A driver's reason worded as a check report is shown first. */
        if (r < 0 && err_isset(&err) && !strncmp(err.msg, "ERROR ", 6))
            cli_report(&err);
        if (r < 0)
            cli_error("Check failed: %s", strerror(-r));
        else
            cli_error("Check failed");
        ret = 1;
    } else if (res.corruptions) {
        ret = 2;
    } else if (res.leaks) {
        ret = 3;
    } else {
        ret = 0;
    }
    bdev_close(bs);
    return ret;
}
