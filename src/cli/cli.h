/* cli: shared declarations of the qimg program.  Every subcommand lives in
 * cmd-<name>.c as `int cmd_<name>(int argc, char **argv)` and returns the
 * process exit code (argv[0] is the subcommand name). */
#ifndef QIMG_CLI_H
#define QIMG_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
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
    bool no_io;             /* metadata only (info): BDEV_O_NO_IO */
    enum cache_mode cache;
    int extra_flags;        /* further BDEV_O_* bits (BDEV_O_CHECK) */
    const char *aio;        /* bench -i/-n: aio mode of every file node */
};

/* Open an image as qemu-img's commands do, printing the probing warning
 * and prefixing errors with "Could not open 'x': ".  NULL after printing
 * the error. */
struct bdev *cli_open_image(const char *filename, const struct cli_open *o);

/* ---- Option parsing helpers (opts.c) ---- */

/* Long-option values of the options the commands share; a command's own
 * long options take values from CLI_OPT_OWN up. */
enum { CLI_OPT_OBJECT = 256, CLI_OPT_IMAGE_OPTS, CLI_OPT_OWN };
#define CLI_LONGOPT_HELP        { "help", no_argument, NULL, 'h' }
#define CLI_LONGOPT_OBJECT      { "object", required_argument, NULL, CLI_OPT_OBJECT }
#define CLI_LONGOPT_IMAGE_OPTS  { "image-opts", no_argument, NULL, CLI_OPT_IMAGE_OPTS }
#define CLI_LONGOPT_FORCE_SHARE { "force-share", no_argument, NULL, 'U' }
/* The four together, as most commands take them. */
#define CLI_LONGOPTS_SHARED CLI_LONGOPT_HELP, CLI_LONGOPT_OBJECT, \
    CLI_LONGOPT_IMAGE_OPTS, CLI_LONGOPT_FORCE_SHARE

/* getopt_long with qemu-img's error handling: `shortopts` without the
 * leading ':'; unknown options print "unrecognized option '-x'", missing
 * arguments "missing argument for option '-x'", each followed by the
 * "Try '<prog> --help'" line; 'h' prints the help.  Returns the option
 * character, -1 at the end of the options, or CLI_OPT_EXIT when the
 * command must return *exit_code right away. */
#define CLI_OPT_EXIT (-2)
int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts, int *exit_code);

/* The options several commands share, with one meaning everywhere (a
 * command only gets those its option string lists). */
struct cli_common {
    const char *fmt;        /* -f: the (first) image's format */
    const char *src_cache;  /* -T: source cache mode, NULL when not given */
    bool quiet;             /* -q */
    bool force_share;       /* -U, --force-share */
    bool image_opts;        /* --image-opts */
};

/* Handle `c` if it is one of the shared options (--object registers the
 * object right away).  Returns 1 when handled, 0 when `c` is the command's
 * own, or CLI_OPT_EXIT with *exit_code set (--object help or error). */
int cli_common_option(int c, const char *arg, struct cli_common *co,
                      int *exit_code);

/* cli_getopt that handles the shared options itself, returning only the
 * command's own options, -1 at the end, or CLI_OPT_EXIT. */
int cli_getopt_common(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, struct cli_common *co,
                      int *exit_code);

/* -l of convert and measure: "snapshot.id=I,snapshot.name=N" options go
 * to *sn_opts (setting *has_opts), anything else is a snapshot name or id
 * stored in *name.  0, or -1 after printing qemu-img's error. */
int cli_parse_snapshot_arg(const char *arg, struct kvlist *sn_opts,
                           bool *has_opts, const char **name);

/* Copy -f, -U and --image-opts into the options of the image to open. */
void cli_open_common(struct cli_open *o, const struct cli_common *co);

/* "prog: <msg>\nTry 'prog --help' for more information"; returns 1. */
int cli_error_exit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The global help text (exit 0). */
int cli_help(void);

/* qemu-img's cvtnum: parse a size-like number named `name` ("image size")
 * into 0..INT64_MAX, printing qemu-img's errors.  0 or -1. */
int cli_cvtnum(const char *name, const char *value, int64_t *out);
int cli_cvtnum_full(const char *name, const char *value, int64_t min,
                    int64_t max, int64_t *out);

/* Parse -o `options` against format `fmt`'s create options (and the file
 * protocol's), typed as qemu-img checks them; 0 (also for NULL options)
 * or -errno with `err`. */
int cli_parse_create_opts(const char *fmt, const char *options,
                          struct kvlist *out, struct err *err);

/* --output=human|json: 0 human, 1 json, -1 after printing the error. */
#define CLI_OUTPUT_HUMAN 0
#define CLI_OUTPUT_JSON  1
int cli_parse_output(const char *arg);

/* Append one -o argument to an accumulated option string (*acc, malloc'd),
 * joining repeated -o with ','.  0 or -1 (out of memory, printed). */
int cli_accumulate_options(char **acc, const char *arg);

/* Whether an option string asks for help ("help" or "?" among its
 * comma-separated items). */
bool cli_options_want_help(const char *options);

/* Print the "-o help" listing of format `fmt` (plus the protocol's options
 * when `filename` is given).  Returns the exit code (0, or 1 after an
 * error). */
int cli_print_option_help(const char *fmt, const char *filename);

/* The create options of format `fmt` followed by those of the file
 * protocol not already listed: the order of qemu-img's "Formatting" line
 * and the keys -o accepts.  Returns how many were stored in `out`. */
size_t cli_create_opt_list(const char *fmt, const struct opt_desc **out,
                           size_t max);

/* Parse a -o string as qemu-img does, against `list`: "k=v" items, ",," an
 * escaped comma, a bare "k" meaning k=on and "nok" k=off.  Unknown keys
 * fail with "Invalid parameter 'k'"; values are checked by type.  Items
 * are set in `out` (the last of a repeated key wins). */
int cli_parse_opt_string(const char *str, const struct opt_desc *const *list,
                         size_t n, struct kvlist *out, struct err *err);

/* --object: register a user-creatable object (only "secret" is known).
 * Prints errors.  0 done, -1 error (exit 1), 1 help was printed (exit 0):
 *     r = cli_add_object(optarg); if (r) return r < 0 ? 1 : 0; */
int cli_add_object(const char *arg);

/* -t / -T: parse a cache mode, printing qemu-img's error.  0 or -1. */
int cli_parse_cache(const char *arg, enum cache_mode *out);

/* ---- convert --bitmaps (convert-bitmaps.c) ---- */

/* Refuse a source with bitmaps marked in use (inconsistent), unless
 * `skip_broken`, with qemu-img's messages.  0 or -1 after printing. */
int cli_convert_check_bitmaps(struct bdev *src, bool skip_broken);
/* Copy every consistent persistent bitmap of `src` into `dst` (warning
 * about each skipped one).  0 or -1 after printing. */
int cli_convert_copy_bitmaps(struct bdev *src, struct bdev *dst);

/* ---- Output helpers (output.c) ---- */

/* Print a json-c value the way qemu-img pretty-prints JSON: 4-space
 * indents, object keys in QEMU's dictionary order, no trailing newline. */
void cli_print_json(FILE *f, struct json_object *obj);
/* The same on one line ({"a": 1, "b": {"c": "d"}}), as in json: names. */
void cli_print_json_compact(FILE *f, struct json_object *obj);
/* Human form of a format-specific information object, as qemu-img's info
 * prints it below "Format specific information:" (indent level 1). */
void cli_print_human_dict(FILE *f, struct json_object *obj, int indent);

#define CMD(name) int cmd_##name(int argc, char **argv)
CMD(amend); CMD(bench); CMD(bitmap); CMD(check); CMD(commit); CMD(compare);
CMD(convert); CMD(create); CMD(dd); CMD(info); CMD(map); CMD(measure);
CMD(rebase); CMD(resize); CMD(snapshot);
#undef CMD

#endif
