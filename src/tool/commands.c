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

/* Print the usage of command `name`; returns -EINVAL for the caller to
 * pass on. */
static int usage_of(const char *name)
{
    const struct tool_cmd *c = find_cmd(name);
    if (c)
        tool_print_usage(c);
    return -EINVAL;
}

static int parse_pattern(const char *arg);

/* The flags read, write and discard share. */
struct io_flags {
    bool bflag, pflag, qflag, terse;
    int pattern;
};

/* Handle one of the shared flags (-b, -C, -P, -q; each command lists
 * those it takes): 1 handled, 0 not a shared flag, -EINVAL after
 * printing a bad pattern. */
static int io_flag(int c, const char *arg, struct io_flags *f)
{
    switch (c) {
    case 'b': f->bflag = true; return 1;
    case 'C': f->terse = true; return 1;
    case 'q': f->qflag = true; return 1;
    case 'P':
        f->pflag = true;
        f->pattern = parse_pattern(arg);
        return f->pattern < 0 ? -EINVAL : 1;
    default:
        return 0;
    }
}

/* A byte-count argument: 0 with the value in *out, or the negative errno
 * after printing qemu-io's parsing error. */
static int number_arg(const char *arg, int64_t *out)
{
    *out = tool_cvtnum(arg);
    if (*out < 0) {
        tool_print_cvtnum_err(*out, arg);
        return (int)*out;
    }
    return 0;
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

/* The "off len" operands that end read, write and discard (from optind),
 * with qemu-io's usage and messages; a length over one request is refused
 * unless `any_len` (write -n).  Returns 0 or -EINVAL after printing. */
static int parse_request(const char *name, int argc, char **argv,
                         bool any_len, int64_t *off, int64_t *len)
{
    if (optind != argc - 2)
        return usage_of(name);
    if (number_arg(argv[optind], off) < 0 ||
        number_arg(argv[optind + 1], len) < 0)
        return -EINVAL;
    if (*len > REQUEST_MAX_BYTES && !any_len) {
        printf("length cannot exceed %" PRId64 "%s, given %s\n",
               REQUEST_MAX_BYTES, strcmp(name, "write") ? "" : " without -n",
               argv[optind + 1]);
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
    struct io_flags f = { .pattern = 0 };
    bool sflag = false, lflag = false, vflag = false;
    int c, r;
    int64_t off, count, poff = 0, pcount = 0;

    reset_getopt();
    while ((c = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        if ((r = io_flag(c, optarg, &f)) != 0) {
            if (r < 0)
                return r;
            continue;
        }
        switch (c) {
        case 'l':
            lflag = true;
            if (number_arg(optarg, &pcount) < 0)
                return -EINVAL;
            break;
        case 'p': break;    /* accepted and ignored, as by qemu-io */
        case 's':
            sflag = true;
            if (number_arg(optarg, &poff) < 0)
                return -EINVAL;
            break;
        case 'v': vflag = true; break;
        default:
            return usage_of("read");
        }
    }
    if (parse_request("read", argc, argv, false, &off, &count) < 0)
        return -EINVAL;
    if (!f.pflag && (lflag || sflag))
        return usage_of("read");
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
    if (f.bflag)
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
    if (f.pflag) {
        for (int64_t i = 0; i < pcount; i++) {
            if (buf[poff + i] != f.pattern) {
                printf("Pattern verification failed at offset %" PRId64
                       ", %" PRId64 " bytes\n", off + poff, pcount);
                r = -EINVAL;
                break;
            }
        }
    }
    if (!f.qflag) {
        if (vflag)
            tool_dump_buffer(buf, off, count);
        tool_print_report("read", &t2, off, count, count, 1, f.terse);
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
    struct io_flags f = { .pattern = 0xcd };
    bool zflag = false, cflag = false, fua = false, unmap = false,
         no_fallback = false;
    const char *source = NULL;
    int c, r;
    int64_t off, count;

    reset_getopt();
    while ((c = getopt(argc, argv, "bcCfnP:qs:uz")) != -1) {
        if ((r = io_flag(c, optarg, &f)) != 0) {
            if (r < 0)
                return r;
            continue;
        }
        switch (c) {
        case 'c': cflag = true; break;
        case 'f': fua = true; break;
        case 'n': no_fallback = true; break;
        case 's': source = optarg; break;
        case 'u': unmap = true; break;
        case 'z': zflag = true; break;
        default:
            return usage_of("write");
        }
    }
    if (optind != argc - 2)
        return usage_of("write");
    if (zflag + f.pflag + (source != NULL) > 1) {
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
    if (parse_request("write", argc, argv, no_fallback, &off, &count) < 0)
        return -EINVAL;

    uint8_t *buf = NULL;
    if (!zflag) {
        buf = alloc_buf(count, f.pattern);
        if (!buf) {
            printf("write failed: %s\n", strerror(ENOMEM));
            return -ENOMEM;
        }
        if (source) {
            r = read_source_file(source, buf, count);
            if (r < 0) {
                free(buf);
                return r;
            }
        }
    }

    struct err err = ERR_INIT;
    struct timespec t1 = now();
    if (f.bflag)
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
    if (!f.qflag)
        tool_print_report("wrote", &t2, off, count, count, 1, f.terse);
    return 0;
}

static int cmd_discard(struct bdev **bsp, int argc, char **argv)
{
    struct io_flags f = { 0 };
    int64_t off, count;
    int c;

    reset_getopt();
    while ((c = getopt(argc, argv, "Cq")) != -1) {
        if (io_flag(c, optarg, &f) <= 0)
            return usage_of("discard");
    }
    if (parse_request("discard", argc, argv, false, &off, &count) < 0)
        return -EINVAL;
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
    if (!f.qflag)
        tool_print_report("discard", &t2, off, count, count, 1, f.terse);
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

    int r = number_arg(argv[1], &off);
    if (r < 0 || (argc == 3 && (r = number_arg(argv[2], &count)) < 0))
        return r;
    start = off;
    remaining = count;
    while (remaining) {
        r = is_allocated(*bsp, off, remaining, &num);
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
            return usage_of("truncate");
        }
    }
    if (optind != argc - 1)
        return usage_of("truncate");
    int64_t size;
    int r = number_arg(argv[optind], &size);
    if (r < 0)
        return r;
    r = bdev_truncate(*bsp, (uint64_t)size, true, prealloc, &err);
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
