/* commands: the data-path commands of qimg-io (read, write, discard,
 * alloc, map, flush, truncate, length, close, help, quit), each following
 * qemu-io's options, checks, messages and exit status. */
#include "tool/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* qemu's largest single request: INT_MAX rounded down to 512 bytes. */
#define REQUEST_MAX_BYTES ((int64_t)(INT_MAX >> 9) << 9)

int tool_cmd_info(struct bdev **bsp, int argc, char **argv);

static void reset_getopt(void)
{
    optind = 0;     /* glibc: full re-initialisation between commands */
}

static struct timespec now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static const struct tool_cmd *find_cmd(const char *name)
{
    for (const struct tool_cmd *c = tool_cmds; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

static void usage_of(const char *name)
{
    const struct tool_cmd *c = find_cmd(name);
    if (c)
        tool_print_usage(c);
}

static int parse_pattern(const char *arg)
{
    char *end = NULL;
    long v = strtol(arg, &end, 0);
    if (v < 0 || v > UCHAR_MAX || *end) {
        printf("%s is not a valid pattern byte\n", arg);
        return -1;
    }
    return (int)v;
}

/* Offset and length arguments of read/write/discard, with qemu-io's
 * messages.  Returns 0 or -EINVAL after printing. */
static int parse_off_len(char **argv, int64_t *off, int64_t *len)
{
    *off = tool_cvtnum(argv[0]);
    if (*off < 0) {
        tool_print_cvtnum_err(*off, argv[0]);
        return -EINVAL;
    }
    *len = tool_cvtnum(argv[1]);
    if (*len < 0) {
        tool_print_cvtnum_err(*len, argv[1]);
        return -EINVAL;
    }
    return 0;
}

static uint8_t *alloc_buf(int64_t len, int fill)
{
    size_t n = (size_t)(len ? len : 1);
    uint8_t *buf = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
    if (buf)
        memset(buf, fill, n);
    return buf;
}

/* The block layer reports out-of-range requests with its own wording;
 * qemu-io prints only strerror of the errno. */
static int range_check(struct bdev *bs, int64_t off, int64_t len)
{
    if ((uint64_t)off > bs->size || (uint64_t)len > bs->size - (uint64_t)off)
        return -EIO;
    return 0;
}

static int cmd_read(struct bdev **bsp, int argc, char **argv)
{
    struct bdev *bs = *bsp;
    bool pflag = false, sflag = false, lflag = false, vflag = false,
         qflag = false, terse = false, bflag = false;
    int pattern = 0, c;
    int64_t off, count, poff = 0, pcount = 0;

    reset_getopt();
    while ((c = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        switch (c) {
        case 'b': bflag = true; break;
        case 'C': terse = true; break;
        case 'l':
            lflag = true;
            pcount = tool_cvtnum(optarg);
            if (pcount < 0) {
                tool_print_cvtnum_err(pcount, optarg);
                return -EINVAL;
            }
            break;
        case 'p': break;    /* accepted and ignored, as by qemu-io */
        case 'P':
            pflag = true;
            pattern = parse_pattern(optarg);
            if (pattern < 0)
                return -EINVAL;
            break;
        case 'q': qflag = true; break;
        case 's':
            sflag = true;
            poff = tool_cvtnum(optarg);
            if (poff < 0) {
                tool_print_cvtnum_err(poff, optarg);
                return -EINVAL;
            }
            break;
        case 'v': vflag = true; break;
        default:
            usage_of("read");
            return -EINVAL;
        }
    }
    if (optind != argc - 2) {
        usage_of("read");
        return -EINVAL;
    }
    if (parse_off_len(argv + optind, &off, &count) < 0)
        return -EINVAL;
    if (count > REQUEST_MAX_BYTES) {
        printf("length cannot exceed %" PRId64 ", given %s\n",
               REQUEST_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }
    if (!pflag && (lflag || sflag)) {
        usage_of("read");
        return -EINVAL;
    }
    if (!lflag)
        pcount = count - poff;
    if (pcount < 0 || pcount + poff > count) {
        printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }

    uint8_t *buf = alloc_buf(count, 0xab);
    if (!buf) {
        printf("read failed: %s\n", strerror(ENOMEM));
        return -ENOMEM;
    }
    struct err err = ERR_INIT;
    struct timespec t1 = now();
    int r;
    if (bflag)
        r = -ENOTSUP;       /* no format here keeps a VM state area */
    else
        r = range_check(bs, off, count);
    if (r == 0)
        r = bdev_pread(bs, (uint64_t)off, (uint64_t)count, buf, &err);
    struct timespec t2 = tool_tsub(now(), t1);
    if (r < 0) {
        printf("read failed: %s\n", strerror(-r));
        free(buf);
        return r;
    }
    if (pflag) {
        for (int64_t i = 0; i < pcount; i++) {
            if (buf[poff + i] != pattern) {
                printf("Pattern verification failed at offset %" PRId64
                       ", %" PRId64 " bytes\n", off + poff, pcount);
                r = -EINVAL;
                break;
            }
        }
    }
    if (!qflag) {
        if (vflag)
            tool_dump_buffer(buf, off, count);
        tool_print_report("read", &t2, off, count, count, 1, terse);
    }
    free(buf);
    return r;
}

static int read_source_file(const char *path, uint8_t *buf, int64_t count)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        fflush(stdout);
        fprintf(stderr, "%s: %s\n", path, strerror(e));
        return -e;
    }
    int64_t done = 0;
    while (done < count) {
        ssize_t n = pread(fd, buf + done, (size_t)(count - done), done);
        if (n < 0) {
            int e = errno;
            fprintf(stderr, "%s: %s\n", path, strerror(e));
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        done += n;
    }
    /* A short source file is repeated to fill the request, as qemu-io
     * does; an empty one leaves zeros. */
    if (done == 0)
        memset(buf, 0, (size_t)count);
    for (int64_t i = done; done && i < count; i++)
        buf[i] = buf[i - done];
    close(fd);
    return 0;
}

static int cmd_write(struct bdev **bsp, int argc, char **argv)
{
    struct bdev *bs = *bsp;
    bool pflag = false, zflag = false, cflag = false, bflag = false,
         qflag = false, terse = false, fua = false, unmap = false,
         no_fallback = false;
    const char *source = NULL;
    int pattern = 0xcd, c;
    int64_t off, count;

    reset_getopt();
    while ((c = getopt(argc, argv, "bcCfnP:qs:uz")) != -1) {
        switch (c) {
        case 'b': bflag = true; break;
        case 'c': cflag = true; break;
        case 'C': terse = true; break;
        case 'f': fua = true; break;
        case 'n': no_fallback = true; break;
        case 'P':
            pflag = true;
            pattern = parse_pattern(optarg);
            if (pattern < 0)
                return -EINVAL;
            break;
        case 'q': qflag = true; break;
        case 's': source = optarg; break;
        case 'u': unmap = true; break;
        case 'z': zflag = true; break;
        default:
            usage_of("write");
            return -EINVAL;
        }
    }
    if (optind != argc - 2) {
        usage_of("write");
        return -EINVAL;
    }
    if (zflag + pflag + (source != NULL) > 1) {
        printf("Only one of -z, -P, and -s can be specified at the same time\n");
        return -EINVAL;
    }
    if (unmap && !zflag) {
        printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (no_fallback && !zflag) {
        printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    if (parse_off_len(argv + optind, &off, &count) < 0)
        return -EINVAL;
    if (count > REQUEST_MAX_BYTES && !no_fallback) {
        printf("length cannot exceed %" PRId64 " without -n, given %s\n",
               REQUEST_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }

    uint8_t *buf = NULL;
    if (!zflag) {
        buf = alloc_buf(count, pattern);
        if (!buf) {
            printf("write failed: %s\n", strerror(ENOMEM));
            return -ENOMEM;
        }
        if (source) {
            int r = read_source_file(source, buf, count);
            if (r < 0) {
                free(buf);
                return r;
            }
        }
    }

    struct err err = ERR_INIT;
    struct timespec t1 = now();
    int r;
    if (bflag)
        r = -ENOTSUP;
    else
        r = range_check(bs, off, count);
    if (r == 0) {
        if (zflag)
            r = bdev_pwrite_zeroes(bs, (uint64_t)off, (uint64_t)count,
                                   (unmap ? BDEV_ZERO_MAY_UNMAP : 0) |
                                   (no_fallback ? BDEV_ZERO_NO_FALLBACK : 0),
                                   &err);
        else if (cflag)
            r = bdev_pwrite_compressed(bs, (uint64_t)off, (uint64_t)count,
                                       buf, &err);
        else
            r = bdev_pwrite(bs, (uint64_t)off, (uint64_t)count, buf, &err);
    }
    if (r == 0 && fua)
        r = bdev_flush(bs, &err);
    struct timespec t2 = tool_tsub(now(), t1);
    free(buf);
    if (r < 0) {
        printf("write failed: %s\n", strerror(-r));
        return r;
    }
    if (!qflag)
        tool_print_report("wrote", &t2, off, count, count, 1, terse);
    return 0;
}

static int cmd_discard(struct bdev **bsp, int argc, char **argv)
{
    bool qflag = false, terse = false;
    int64_t off, count;
    int c;

    reset_getopt();
    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C': terse = true; break;
        case 'q': qflag = true; break;
        default:
            usage_of("discard");
            return -EINVAL;
        }
    }
    if (optind != argc - 2) {
        usage_of("discard");
        return -EINVAL;
    }
    if (parse_off_len(argv + optind, &off, &count) < 0)
        return -EINVAL;
    if (count > REQUEST_MAX_BYTES) {
        printf("length cannot exceed %" PRId64 ", given %s\n",
               REQUEST_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }
    struct err err = ERR_INIT;
    struct timespec t1 = now();
    int r = range_check(*bsp, off, count);
    if (r == 0)
        r = bdev_discard(*bsp, (uint64_t)off, (uint64_t)count, &err);
    struct timespec t2 = tool_tsub(now(), t1);
    if (r < 0) {
        printf("discard failed: %s\n", strerror(-r));
        return r;
    }
    if (!qflag)
        tool_print_report("discard", &t2, off, count, count, 1, terse);
    return 0;
}

/* Whether [off, off+bytes) starts with a run this image itself decides
 * (qemu's "is allocated"): 1 or 0 with the run length in *pnum, which is
 * 0 at or past the end; negative errno on failure. */
static int is_allocated(struct bdev *bs, int64_t off, int64_t bytes,
                        int64_t *pnum)
{
    struct bstatus st;
    struct err err = ERR_INIT;
    *pnum = 0;
    if ((uint64_t)off >= bs->size || bytes <= 0)
        return 0;
    int r = bdev_block_status(bs, (uint64_t)off, (uint64_t)bytes, &st, &err);
    if (r < 0)
        return r;
    *pnum = (int64_t)st.len;
    return (st.flags & BS_ALLOCATED) != 0;
}

static int cmd_alloc(struct bdev **bsp, int argc, char **argv)
{
    int64_t off, start, count = 512, remaining, sum = 0, num;
    char s1[64];

    start = off = tool_cvtnum(argv[1]);
    if (off < 0) {
        tool_print_cvtnum_err(off, argv[1]);
        return (int)off;
    }
    if (argc == 3) {
        count = tool_cvtnum(argv[2]);
        if (count < 0) {
            tool_print_cvtnum_err(count, argv[2]);
            return (int)count;
        }
    }
    remaining = count;
    while (remaining) {
        int r = is_allocated(*bsp, off, remaining, &num);
        if (r < 0) {
            printf("is_allocated failed: %s\n", strerror(-r));
            return r;
        }
        off += num;
        remaining -= num;
        if (r)
            sum += num;
        if (num == 0) {
            count -= remaining;
            remaining = 0;
        }
    }
    tool_cvtstr((double)start, s1, sizeof(s1));
    printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n",
           sum, count, s1);
    return 0;
}

/* One run of equal allocation status, merging consecutive answers. */
static int map_run(struct bdev *bs, int64_t off, int64_t bytes, int64_t *pnum)
{
    int64_t num;
    int first = is_allocated(bs, off, bytes, &num);
    if (first < 0)
        return first;
    *pnum = num;
    while (bytes > 0) {
        off += num;
        bytes -= num;
        int r = is_allocated(bs, off, bytes, &num);
        if (r != first || !num)
            break;
        *pnum += num;
    }
    return first;
}

static int cmd_map(struct bdev **bsp, int argc, char **argv)
{
    (void)argc; (void)argv;
    struct bdev *bs = *bsp;
    int64_t off = 0, bytes = (int64_t)bs->size, num;
    char s1[64], s2[64];
    if (bytes == 0)
        return 0;
    do {
        int r = map_run(bs, off, bytes, &num);
        if (r < 0) {
            tool_error("Failed to get allocation status: %s", strerror(-r));
            return r;
        }
        if (!num) {
            tool_error("Unexpected end of image");
            return -EIO;
        }
        tool_cvtstr((double)num, s1, sizeof(s1));
        tool_cvtstr((double)off, s2, sizeof(s2));
        printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
               s1, (uint64_t)num, r ? "    allocated" : "not allocated",
               s2, (uint64_t)off);
        off += num;
        bytes -= num;
    } while (bytes);
    return 0;
}

static int cmd_flush(struct bdev **bsp, int argc, char **argv)
{
    (void)argc; (void)argv;
    struct err err = ERR_INIT;
    return bdev_flush(*bsp, &err);
}

static int cmd_truncate(struct bdev **bsp, int argc, char **argv)
{
    enum prealloc prealloc = PREALLOC_OFF;
    struct err err = ERR_INIT;
    int c;

    reset_getopt();
    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm':
            if (prealloc_parse(optarg, &prealloc, &err) < 0) {
                tool_error("Invalid preallocation mode '%s'", optarg);
                return -EINVAL;
            }
            break;
        default:
            usage_of("truncate");
            return -EINVAL;
        }
    }
    if (optind != argc - 1) {
        usage_of("truncate");
        return -EINVAL;
    }
    int64_t size = tool_cvtnum(argv[optind]);
    if (size < 0) {
        tool_print_cvtnum_err(size, argv[optind]);
        return (int)size;
    }
    int r = bdev_truncate(*bsp, (uint64_t)size, true, prealloc, &err);
    if (r < 0) {
        tool_error("%s", err.msg);
        return r;
    }
    return 0;
}

static int cmd_length(struct bdev **bsp, int argc, char **argv)
{
    (void)argc; (void)argv;
    char s1[64];
    tool_cvtstr((double)(*bsp)->size, s1, sizeof(s1));
    printf("%s\n", s1);
    return 0;
}

static int cmd_close(struct bdev **bsp, int argc, char **argv)
{
    (void)argc; (void)argv;
    bdev_close(*bsp);
    *bsp = NULL;
    return 0;
}

static int cmd_help(struct bdev **bsp, int argc, char **argv)
{
    (void)bsp;
    if (argc == 2) {
        const struct tool_cmd *c = find_cmd(argv[1]);
        if (!c) {
            printf("command %s not found\n", argv[1]);
            return 0;
        }
        tool_print_usage(c);
        return 0;
    }
    for (const struct tool_cmd *c = tool_cmds; c->name; c++)
        tool_print_usage(c);
    printf("\nUse 'help commandname' for extended help.\n");
    return 0;
}

/* Sorted by name, as help lists them. */
const struct tool_cmd tool_cmds[] = {
    { "alloc", "offset [count]", "checks if offset is allocated in the file",
      1, 2, true, false, cmd_alloc },
    { "close", NULL, "close the current open file",
      0, 0, true, false, cmd_close },
    { "discard", "[-Cq] off len", "discards a number of bytes at a specified offset",
      2, -1, true, true, cmd_discard },
    { "flush", NULL, "flush all in-core file state to disk",
      0, 0, true, false, cmd_flush },
    { "help", "[command]", "help for one or all commands",
      0, 1, false, false, cmd_help },
    { "info", NULL, "prints information about the current file",
      0, 0, true, false, tool_cmd_info },
    { "length", NULL, "gets the length of the current file",
      0, 0, true, false, cmd_length },
    { "map", "", "prints the allocated areas of a file",
      0, 0, true, false, cmd_map },
    { "quit", NULL, "exit the program", 0, 0, false, false, NULL },
    { "read", "[-abCqv] [-P pattern [-s off] [-l len]] off len",
      "reads a number of bytes at a specified offset",
      2, -1, true, false, cmd_read },
    { "truncate", "[-m prealloc_mode] off",
      "truncates the current file at the given offset",
      1, 3, true, true, cmd_truncate },
    { "write", "[-bcCfnquz] [-P pattern | -s source_file] off len",
      "writes a number of bytes at a specified offset",
      2, -1, true, true, cmd_write },
    { NULL, NULL, NULL, 0, 0, false, false, NULL },
};
