/* cli: shared declarations of the qimg program.  Every subcommand lives in
 * cmd-<name>.c as `int cmd_<name>(int argc, char **argv)` and returns the
 * process exit code (argv[0] is the subcommand name). */
#ifndef QIMG_CLI_H
#define QIMG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "block/bdev.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
};

/* The sorted command table (commands.c). */
extern const struct command cli_commands[];
const struct command *cli_find_command(const char *name);

/* Program name used as the error prefix: basename of argv[0]. */
extern const char *cli_prog;

/* "prog: message\n" on stderr, as qemu-img's error_report. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print an err, each line of a multi-line message prefixed like qemu. */
void cli_report(const struct err *err);
/* "prog: <prefix><err message>" */
void cli_report_prefixed(const struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Options shared by the commands that open images. */
struct cli_open {
    const char *fmt;        /* -f, or NULL to probe */
    bool image_opts;        /* --image-opts: filename is an option string */
    bool force_share;       /* -U */
    bool writable;
    bool no_backing;
    bool unsafe_backing;
    bool quiet;             /* suppress the raw-probing warning */
    enum cache_mode cache;
};

/* Open an image as qemu-img's commands do, printing the probing warning
 * and prefixing errors with "Could not open 'x': ".  NULL after printing
 * the error. */
struct bdev *cli_open_image(const char *filename, const struct cli_open *o);

#define CMD(name) int cmd_##name(int argc, char **argv)
CMD(amend); CMD(bench); CMD(bitmap); CMD(check); CMD(commit); CMD(compare);
CMD(convert); CMD(create); CMD(dd); CMD(info); CMD(map); CMD(measure);
CMD(rebase); CMD(resize); CMD(snapshot);
#undef CMD

#endif
