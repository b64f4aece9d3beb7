/* snapshot: the `snapshot` subcommand: list (-l), create (-c), apply (-a)
 * and delete (-d) internal snapshots, with qemu-img's table and errors. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util/size.h"

enum action { ACT_NONE, ACT_LIST, ACT_APPLY, ACT_CREATE, ACT_DELETE };

static void print_row(const struct snapshot_info *sn)
{
    char size[64], date[64] = "", clock[64], icount[32] = "";
    time_t t = (time_t)sn->date_sec;
    struct tm tm;
    uint64_t secs = sn->vm_clock_nsec / 1000000000;

    format_size_human(sn->vm_state_size, size, sizeof(size));
    if (localtime_r(&t, &tm))
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d", (int)(secs / 3600),
             (int)((secs / 60) % 60), (int)(secs % 60),
             (int)((sn->vm_clock_nsec / 1000000) % 1000));
    if (sn->has_icount)
        snprintf(icount, sizeof(icount), "%" PRId64, (int64_t)sn->icount);
    printf("%-9s %-16s %8s%20s%13s%11s\n", sn->id, sn->name, size, date,
           clock, icount);
}

static void list_snapshots(struct bdev *bs)
{
    struct snapshot_info *list = NULL;
    struct err err = ERR_INIT;
    int n = 0;
    if (bdev_snapshot_list(bs, &list, &n, &err) < 0 || n <= 0) {
        snapshot_info_free(list, n);
        return;
    }
    printf("Snapshot list:\n");
    printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
           "VM CLOCK", "ICOUNT");
    for (int i = 0; i < n; i++)
        print_row(&list[i]);
    snapshot_info_free(list, n);
}

/* qemu-img's bdrv_snapshot_find: by name only. */
static int find_by_name(struct bdev *bs, const char *name, char *id,
                        size_t idlen)
{
    struct snapshot_info *list = NULL;
    struct err err = ERR_INIT;
    int n = 0, found = -ENOENT;
    if (bdev_snapshot_list(bs, &list, &n, &err) < 0)
        return -ENOENT;
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i].name, name)) {
            snprintf(id, idlen, "%s", list[i].id);
            found = 0;
            break;
        }
    snapshot_info_free(list, n);
    return found;
}

int cmd_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS_SHARED,
        { NULL, 0, NULL, 0 },
    };
    struct cli_open o = { .cache = CACHE_WRITEBACK, .writable = true };
    struct cli_common co = { 0 };
    enum action action = ACT_NONE;
    const char *name = NULL;
    int c, rc;

    while ((c = cli_getopt_common(argc, argv, "la:c:d:hqU", longopts, &co,
                                  &rc)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            return rc;
        case 'l': case 'a': case 'c': case 'd':
            if (action != ACT_NONE)
                return cli_error_exit("Cannot mix '-l', '-a', '-c', '-d'");
            action = c == 'l' ? ACT_LIST : c == 'a' ? ACT_APPLY :
                     c == 'c' ? ACT_CREATE : ACT_DELETE;
            if (c == 'l')
                o.writable = false;
            else
                name = optarg;
            break;
        }
    }
    cli_open_common(&o, &co);
    o.quiet = co.quiet;
    if (optind != argc - 1)
        return cli_error_exit("Expecting one image file name");
    const char *filename = argv[optind];

    struct bdev *bs = cli_open_image(filename, &o);
    if (!bs)
        return 1;

    struct err err = ERR_INIT;
    int ret = 0;
    switch (action) {
    case ACT_NONE:
        break;
    case ACT_LIST:
        list_snapshots(bs);
        break;
    case ACT_CREATE: {
        struct snapshot_info sn = { .name = (char *)name, .has_icount = true };
        struct timeval tv;
        gettimeofday(&tv, NULL);
        sn.date_sec = (uint32_t)tv.tv_sec;
        sn.date_nsec = (uint32_t)tv.tv_usec * 1000;
        int r = bdev_snapshot_create(bs, &sn, &err);
        if (r < 0) {
            cli_error("Could not create snapshot '%s': %d (%s)", name, r,
                      strerror(-r));
            ret = 1;
        }
        break;
    }
    case ACT_APPLY:
        if (bdev_snapshot_apply(bs, name, &err) < 0) {
            /* qemu-img reopens a probed raw image while looking for a
             * layer with snapshots, and warns a second time. */
            if (err.code == -ENOTSUP && bs->probed_raw)
                fprintf(stderr, "WARNING: Image format was not specified for "
                        "'%s' and probing guessed raw.\n         Automatically "
                        "detecting the format is dangerous for raw images, "
                        "write operations on block 0 will be restricted.\n"
                        "         Specify the 'raw' format explicitly to "
                        "remove the restrictions.\n", filename);
            cli_report_prefixed(&err, "Could not apply snapshot '%s': ", name);
            ret = 1;
        }
        break;
    case ACT_DELETE: {
        char id[128];
        if (find_by_name(bs, name, id, sizeof(id)) < 0) {
            cli_error("Could not delete snapshot '%s': snapshot not found",
                      name);
            ret = 1;
        } else if (bdev_snapshot_delete(bs, id, name, &err) < 0) {
            cli_report_prefixed(&err, "Could not delete snapshot '%s': ", name);
            ret = 1;
        }
        break;
    }
    }
    bdev_close(bs);
    return ret;
}
