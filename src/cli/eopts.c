/* eopts: see eopts.h; thin names over the shared option helpers. */
#include "cli/eopts.h"
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>

int eo_error_exit(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return cli_error_exit("%s", buf);
}

int eo_getopt(int argc, char **argv, const char *shortopts,
              const struct option *longopts, int *rc)
{
    return cli_getopt(argc, argv, shortopts, longopts, rc);
}

int eo_cvtnum(const char *name, const char *value, int64_t min, int64_t max,
              int64_t *out)
{
    return cli_cvtnum_full(name, value, min, max, out);
}

int eo_accumulate(char **acc, const char *arg)
{
    return cli_accumulate_options(acc, arg);
}

int eo_output(const char *arg)
{
    return cli_parse_output(arg);
}

int eo_create_opts(const char *fmt, const char *options, struct kvlist *out,
                   struct err *err)
{
    const struct opt_desc *list[128];
    size_t n = cli_create_opt_list(fmt, list, 128);
    if (!options)
        return 0;
    return cli_parse_opt_string(options, list, n, out, err);
}
