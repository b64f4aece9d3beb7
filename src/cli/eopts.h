/* eopts: option helpers used by convert, compare, map, measure and dd
 * (qemu-img's getopt error handling and number parsing). */
#ifndef QIMG_CLI_EOPTS_H
#define QIMG_CLI_EOPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

/* getopt_long with a leading ':' added to `shortopts`; prints qemu-img's
 * "missing argument" / "unrecognized option" errors and, for 'h' (when
 * listed), the help text.  Returns the option, -1 at the end, or -2 when
 * the command must return *rc right away. */
int eo_getopt(int argc, char **argv, const char *shortopts,
              const struct option *longopts, int *rc);
/* "prog: msg\nTry 'prog --help' for more information"; returns 1. */
int eo_error_exit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* qemu-img's cvtnum: 0, or -1 after printing the error. */
int eo_cvtnum(const char *name, const char *value, int64_t min, int64_t max,
              int64_t *out);
/* Append -o arguments joined with ','; 0 or -1 after printing. */
int eo_accumulate(char **acc, const char *arg);
/* --output=human|json: 0 human, 1 json, -1 after printing. */
int eo_output(const char *arg);

/* Parse -o `options` against format `fmt`'s create options (and the file
 * protocol's), typed as qemu-img checks them; 0 or -errno with `err`. */
struct kvlist;
struct err;
int eo_create_opts(const char *fmt, const char *options, struct kvlist *out,
                   struct err *err);

#endif
