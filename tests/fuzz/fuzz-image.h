/* fuzz-image: the body shared by the per-format image targets.  The input
 * is an image file: it is placed in a memfd and opened through the normal
 * path with the format forced, then every read-side entry point runs on
 * it (reads of the first 16 MiB, block status, info, check without
 * repair), and for writable formats a few writes go to a copy.  A target
 * defines FUZZ_FORMAT (and FUZZ_WRITE when the format can be written) and
 * includes this file; with FUZZ_CUSTOM_INPUT it brings its own
 * LLVMFuzzerTestOneInput and uses only the helpers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "block/driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_READ_LIMIT (16u << 20)

#ifndef FUZZ_CUSTOM_INPUT
static int fuzz_memfd(const uint8_t *data, size_t size, char *path,
                      size_t pathlen)
{
    int fd = memfd_create("fuzz-image", 0);
    if (fd < 0)
        return -1;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return -1;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}
#endif

static void fuzz_read_all(struct bdev *bs)
{
    static uint8_t buf[1 << 16];
    struct err err = ERR_INIT;
    uint64_t end = bs->size < FUZZ_READ_LIMIT ? bs->size : FUZZ_READ_LIMIT;
    for (uint64_t off = 0; off < end; off += sizeof(buf)) {
        uint64_t n = end - off < sizeof(buf) ? end - off : sizeof(buf);
        err_clear(&err);
        if (bdev_pread(bs, off, n, buf, &err) < 0)
            break;
    }
    /* One unaligned read across a cluster boundary. */
    if (bs->size > 70000) {
        err_clear(&err);
        bdev_pread(bs, 65530, 100, buf, &err);
    }
    uint64_t off = 0;
    for (int i = 0; i < 4096 && off < bs->size; i++) {
        struct bstatus st;
        err_clear(&err);
        if (bdev_block_status(bs, off, bs->size - off, &st, &err) < 0)
            break;
        off += st.len;
    }
}

static void fuzz_info_check(struct bdev *bs)
{
    struct err err = ERR_INIT;
    if (bs->drv->get_info) {
        struct bdev_info info;
        memset(&info, 0, sizeof(info));
        if (bs->drv->get_info(bs, &info, &err) >= 0 && info.format_specific)
            json_object_put(info.format_specific);
    }
    if (bs->drv->check) {
        struct check_result res;
        memset(&res, 0, sizeof(res));
        err_clear(&err);
        bs->drv->check(bs, &res, 0, &err);
    }
}

#ifndef FUZZ_CUSTOM_INPUT
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    struct err err = ERR_INIT;
    struct bdev_open_args a;
    int fd = fuzz_memfd(data, size, path, sizeof(path));
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof(a));
    a.fmt = FUZZ_FORMAT;
    a.flags = BDEV_O_NO_BACKING | BDEV_O_NO_LOCK;
    struct bdev *bs = bdev_open(path, &a, NULL, &err);
    if (bs) {
        fuzz_read_all(bs);
        bdev_close(bs);
    }
    err_clear(&err);
    a.flags |= BDEV_O_CHECK;
    bs = bdev_open(path, &a, NULL, &err);
    if (bs) {
        fuzz_info_check(bs);
        bdev_close(bs);
    }
#ifdef FUZZ_WRITE
    /* Writes go to the memfd itself: it is this run's private copy. */
    err_clear(&err);
    a.flags = BDEV_O_RDWR | BDEV_O_NO_BACKING | BDEV_O_NO_LOCK;
    bs = bdev_open(path, &a, NULL, &err);
    if (bs) {
        static uint8_t pattern[8192];
        memset(pattern, 0xa5, sizeof(pattern));
        uint64_t mid = bs->size / 2;
        if (bs->size >= sizeof(pattern)) {
            err_clear(&err);
            bdev_pwrite(bs, 0, sizeof(pattern), pattern, &err);
            err_clear(&err);
            bdev_pwrite(bs, mid - mid % 512, 512, pattern, &err);
            err_clear(&err);
            bdev_pwrite_zeroes(bs, bs->size - 512, 512, 0, &err);
        }
        bdev_close(bs);
    }
#endif
    close(fd);
    return 0;
}
#endif
