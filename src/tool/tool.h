/* tool: shared declarations of qimg-io, a tester that drives the block
 * layer with qemu-io's command language and prints qemu-io's output. */
#ifndef QIMG_TOOL_H
#define QIMG_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "block/bdev.h"

/* Program name for error messages: basename of argv[0]. */
extern const char *tool_prog;

/* "prog: message\n" on stderr. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One command of the command language.  `run` gets argv[0] = the command
 * name and returns 0 or a negative errno (any failure makes the program
 * exit 1 once every command has run). */
struct tool_cmd {
    const char *name;
    const char *args;        /* usage after the name; NULL prints none */
    const char *oneline;
    int argmin, argmax;      /* argmax -1: unlimited */
    bool needs_image;
    bool needs_write;
    int (*run)(struct bdev **bsp, int argc, char **argv);
};

/* The command table (commands.c), terminated by a NULL name. */
extern const struct tool_cmd tool_cmds[];

/* Run one command line ("read -P 1 0 4k"); returns 0 or a negative errno. */
int tool_run_line(struct bdev **bsp, const char *line);

/* Output helpers (output.c). */

/* qemu's number form for byte counts: "64 KiB", "1.500 MiB", "40 bytes". */
void tool_cvtstr(double value, char *str, size_t size);
/* Elapsed time as qemu-io prints it ("00.00 sec", or "0:00:00.00" when
 * `fixed`). */
void tool_timestr(const struct timespec *t, char *ts, size_t size, bool fixed);
struct timespec tool_tsub(struct timespec a, struct timespec b);
/* The two report lines after an I/O command ("wrote N/N bytes at offset
 * X" and the rate), or the terse -C form. */
void tool_print_report(const char *op, const struct timespec *t,
                       int64_t offset, int64_t count, int64_t total, int cnt,
                       bool terse);
/* Hex and character dump of `len` bytes read at `offset` (read -v). */
void tool_dump_buffer(const void *buf, int64_t offset, int64_t len);
/* Parse a byte count like qemu-io: size suffixes, at most INT64_MAX.
 * Returns the value or -EINVAL / -ERANGE. */
int64_t tool_cvtnum(const char *s);
/* "Parsing error: ..." for a tool_cvtnum failure. */
void tool_print_cvtnum_err(int64_t rc, const char *arg);
/* Print the usage line of a command ("read [-abCqv] ... -- reads ..."). */
void tool_print_usage(const struct tool_cmd *c);

#endif
