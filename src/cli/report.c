/* report: error printing with qemu-img's "prog: " prefix rule. */
#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

const char *cli_prog = "qimg";

static void print_lines(const char *msg)
{
    /* qemu-img prefixes only the first line of a multi-line error. */
    fprintf(stderr, "%s: %s\n", cli_prog, msg);
}

void cli_error(const char *fmt, ...)
{
    char buf[ERR_MSG_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    print_lines(buf);
}

void cli_report(const struct err *err)
{
    print_lines(err->msg);
}

void cli_report_prefixed(const struct err *err, const char *fmt, ...)
{
    char pre[ERR_MSG_MAX], buf[ERR_MSG_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof(buf), "%s%s", pre, err->msg);
    print_lines(buf);
}
