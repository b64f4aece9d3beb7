/* eopts: see eopts.h. */
#include "cli/eopts.h"
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

int eo_error_exit(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s --help' for more information\n",
            cli_prog, buf, cli_prog);
    return 1;
}

int eo_getopt(int argc, char **argv, const char *shortopts,
              const struct option *longopts, int *rc)
{
    char spec[128];
    snprintf(spec, sizeof(spec), ":%s", shortopts);
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    if (c == '?') {
        *rc = eo_error_exit("unrecognized option '%s'", argv[optind - 1]);
        return -2;
    }
    if (c == ':') {
        *rc = eo_error_exit("missing argument for option '%s'",
                            argv[optind - 1]);
        return -2;
    }
    if (c == 'h') {
        const struct command *help = cli_find_command("--help");
        *rc = 0;
        if (help)
            *rc = help->run(1, argv);
        return -2;
    }
    return c;
}

int eo_cvtnum(const char *name, const char *value, int64_t min, int64_t max,
              int64_t *out)
{
    uint64_t v = 0;
    int r = parse_size(value, &v);
    if (r < 0 && r != -ERANGE) {
        cli_error("Invalid %s specified. You may use k, M, G, T, P or E "
                  "suffixes for", name);
        cli_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and "
                  "exabytes.");
        return -1;
    }
    if (r == -ERANGE || v > (uint64_t)INT64_MAX || (int64_t)v < min ||
        (int64_t)v > max) {
        cli_error("Invalid %s specified. Must be between %" PRId64 " and %"
                  PRId64 ".", name, min, max);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int eo_accumulate(char **acc, const char *arg)
{
    size_t len = strlen(arg), trailing = 0;
    while (trailing < len && arg[len - 1 - trailing] == ',')
        trailing++;
    if (!len || arg[0] == ',' || trailing % 2) {
        cli_error("Invalid option list: %s", arg);
        return -1;
    }
    char *n;
    if (!*acc)
        n = strdup(arg);
    else if (asprintf(&n, "%s,%s", *acc, arg) < 0)
        n = NULL;
    if (!n) {
        cli_error("Out of memory");
        return -1;
    }
    free(*acc);
    *acc = n;
    return 0;
}

int eo_output(const char *arg)
{
    if (!strcmp(arg, "json"))
        return 1;
    if (!strcmp(arg, "human"))
        return 0;
    cli_error("--output must be used with human or json as argument.");
    return -1;
}
