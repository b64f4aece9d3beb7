/* output: qemu-io's number, time and report formats, and argument parsing
 * shared by the commands.  The formats are those scripts grep for, so they
 * follow qemu-io exactly. */
#include "tool/tool.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/size.h"

const char *tool_prog = "qimg-io";

void tool_error(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", tool_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void tool_cvtstr(double value, char *str, size_t size)
{
    static const struct { double unit; const char *suffix; } units[] = {
        { 1152921504606846976.0, " EiB" }, { 1125899906842624.0, " PiB" },
        { 1099511627776.0, " TiB" }, { 1073741824.0, " GiB" },
        { 1048576.0, " MiB" }, { 1024.0, " KiB" },
    };
    const char *suffix = " bytes";
    size_t i;

    if (size < 8) {
        if (size)
            str[0] = 0;
        return;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (value >= units[i].unit)
            break;
    if (i < sizeof(units) / sizeof(units[0])) {
        suffix = units[i].suffix;
        snprintf(str, size - 4, "%.3f", value / units[i].unit);
    } else {
        snprintf(str, size - 6, "%f", value);
    }
    /* A whole number drops its ".000..." fraction. */
    char *trim = strstr(str, ".000");
    if (trim)
        strcpy(trim, suffix);
    else
        strcat(str, suffix);
}

void tool_timestr(const struct timespec *t, char *ts, size_t size, bool fixed)
{
    double frac = t->tv_nsec / 1e9;
    unsigned long s = (unsigned long)t->tv_sec;
    if (fixed || s)
        snprintf(ts, size, "%lu:%02lu:%05.2f", s / 3600, s / 60 % 60,
                 (double)(s % 60) + frac);
    else
        snprintf(ts, size, "%05.2f sec", frac);
}

struct timespec tool_tsub(struct timespec a, struct timespec b)
{
    struct timespec r = { a.tv_sec - b.tv_sec, a.tv_nsec - b.tv_nsec };
    if (r.tv_nsec < 0) {
        r.tv_sec--;
        r.tv_nsec += 1000000000L;
    }
    return r;
}

static double tdiv(double value, const struct timespec *t)
{
    double secs = (double)t->tv_sec + t->tv_nsec / 1e9;
    return secs > 0 ? value / secs : 0;
}

void tool_print_report(const char *op, const struct timespec *t,
                       int64_t offset, int64_t count, int64_t total, int cnt,
                       bool terse)
{
    char s1[64], s2[64], ts[64];
    tool_timestr(t, ts, sizeof(ts), terse);
    if (terse) {
        printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
               tdiv((double)total, t), tdiv((double)cnt, t));
        return;
    }
    tool_cvtstr((double)total, s1, sizeof(s1));
    tool_cvtstr(tdiv((double)total, t), s2, sizeof(s2));
    printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n",
           op, total, count, offset);
    printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n",
           s1, cnt, ts, s2, tdiv((double)cnt, t));
}

void tool_dump_buffer(const void *buf, int64_t offset, int64_t len)
{
    const uint8_t *p = buf;
    for (int64_t i = 0; i < len; i += 16) {
        int64_t n = len - i < 16 ? len - i : 16;
        printf("%08" PRIx64 ":  ", (uint64_t)(offset + i));
        for (int64_t j = 0; j < n; j++)
            printf("%02x ", p[i + j]);
        putchar(' ');
        for (int64_t j = 0; j < n; j++)
            putchar(isalnum(p[i + j]) ? p[i + j] : '.');
        putchar('\n');
    }
}

int64_t tool_cvtnum(const char *s)
{
    uint64_t v;
    int r = parse_size(s, &v);
    if (r < 0)
        return r;
    if (v > INT64_MAX)
        return -ERANGE;
    return (int64_t)v;
}

void tool_print_cvtnum_err(int64_t rc, const char *arg)
{
    if (rc == -EINVAL)
        printf("Parsing error: non-numeric argument, or extraneous/"
               "unrecognized suffix -- %s\n", arg);
    else if (rc == -ERANGE)
        printf("Parsing error: argument too large -- %s\n", arg);
    else
        printf("Parsing error: %s\n", arg);
}

void tool_print_usage(const struct tool_cmd *c)
{
    if (c->args)
        printf("%s %s -- %s\n", c->name, c->args, c->oneline);
    else
        printf("%s -- %s\n", c->name, c->oneline);
}
