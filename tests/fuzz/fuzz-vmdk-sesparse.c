/* fuzz-vmdk-sesparse: the input is a vmdk seSparse extent file.  It is
 * written beside a descriptor naming it (extents are files the descriptor
 * names, so a memfd alone cannot reach this parser), then the image is
 * opened read-only and read, mapped, described and checked, and opened for
 * writing, which must be refused (see fuzz-image.h). */
#define FUZZ_FORMAT "vmdk"
#define FUZZ_CUSTOM_INPUT
#include "fuzz-image.h"

#include <fcntl.h>

static char dir[64];

static int write_file(const char *path, const void *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    int r = size && write(fd, data, size) != (ssize_t)size ? -1 : 0;
    close(fd);
    return r;
}

static void remove_dir(void)
{
    char p[96];
    snprintf(p, sizeof(p), "%s/d.vmdk", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/d-sesparse.vmdk", dir);
    unlink(p);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char desc[] =
        "# Disk DescriptorFile\nversion=1\nCID=12345678\n"
        "parentCID=ffffffff\ncreateType=\"seSparse\"\n"
        "RW 2048 SESPARSE \"d-sesparse.vmdk\"\n";
    char path[96], ext[96];
    struct err err = ERR_INIT;
    struct bdev_open_args a;

    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "%s/fuzz-sesparse.XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            dir[0] = 0;
            return 0;
        }
        atexit(remove_dir);
    }
    snprintf(path, sizeof(path), "%s/d.vmdk", dir);
    snprintf(ext, sizeof(ext), "%s/d-sesparse.vmdk", dir);
    if (write_file(path, desc, sizeof(desc) - 1) < 0 ||
        write_file(ext, data, size) < 0)
        return 0;
    memset(&a, 0, sizeof(a));
    a.fmt = FUZZ_FORMAT;
    a.flags = BDEV_O_NO_BACKING | BDEV_O_NO_LOCK;
    struct bdev *bs = bdev_open(path, &a, NULL, &err);
    if (bs) {
        fuzz_read_all(bs);
        fuzz_info_check(bs);
        bdev_close(bs);
    }
    err_clear(&err);
    a.flags = BDEV_O_RDWR | BDEV_O_NO_BACKING | BDEV_O_NO_LOCK;
    bs = bdev_open(path, &a, NULL, &err);
    if (bs)
        abort();    /* seSparse images are read-only */
    err_clear(&err);
    return 0;
}
