/* open: opening images the way every qemu-img command does. */
#include "cli/cli.h"

#include <stdlib.h>

struct bdev *cli_open_image(const char *filename, const struct cli_open *o)
{
    struct bdev_open_args a = { 0 };
    struct err err = ERR_INIT;
    struct kvlist opts = KVLIST_INIT;
    char *warning = NULL;
    struct bdev *bs;

    a.fmt = o->fmt;
    a.cache = o->cache;
    a.aio = o->aio;
    a.flags = (o->writable ? BDEV_O_RDWR : 0) |
              (o->force_share ? BDEV_O_SHARE : 0) |
              (o->no_backing ? BDEV_O_NO_BACKING : 0) |
              (o->unsafe_backing ? BDEV_O_UNSAFE_BACKING : 0) |
              (o->no_io ? BDEV_O_NO_IO : 0) |
              o->extra_flags;
    if (o->image_opts) {
        if (o->fmt) {
            cli_error("--image-opts and --format are mutually exclusive");
            return NULL;
        }
        if (kv_parse(&opts, filename, NULL, &err) < 0) {
            cli_report(&err);
            return NULL;
        }
        bs = bdev_open_opts(&opts, &a, &warning, &err);
        kv_free(&opts);
    } else {
        bs = bdev_open(filename, &a, &warning, &err);
    }
    if (!bs) {
        /* qemu-img warns when it probes, before a later failure */
        if (warning && o->writable && !o->quiet)
            fprintf(stderr, "%s\n", warning);
        cli_report_prefixed(&err, "Could not open '%s': ", filename);
        free(warning);
        return NULL;
    }
    /* qemu-img shows the probing warning only where it may write. */
    if (warning && o->writable && !o->quiet)
        fprintf(stderr, "%s\n", warning);
    free(warning);
    return bs;
}
