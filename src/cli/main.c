/* main: qemu-img's global options (-h, -V, -T), then dispatch to the
 * subcommand named by the first non-option argument. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crypto/secret.h"

static const char help_body[] =
    "Command syntax:\n"
    "  amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename\n"
    "  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename\n"
    "  bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file [-F source_fmt]] [-g granularity] [--object objectdef] [--image-opts | -f fmt] filename bitmap\n"
    "  check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename\n"
    "  commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename\n"
    "  compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2\n"
    "  convert [--object objectdef] [--image-opts] [--target-image-opts] [--target-is-zero] [--bitmaps] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] [-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] [--salvage] filename [filename2 [...]] output_filename\n"
    "  create [--object objectdef] [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]\n"
    "  dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output\n"
    "  info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename\n"
    "  map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename\n"
    "  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--object objectdef] [--image-opts] [-f fmt] [-l snapshot_param] filename]\n"
    "  snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename\n"
    "  rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename\n"
    "  resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size\n"
    "\n"
    "Command parameters:\n"
    "  'filename' is a disk image filename\n"
    "  'objectdef' is a QEMU user creatable object definition. See the qemu(1)\n"
    "    manual page for a description of the object properties. The most common\n"
    "    object type is a 'secret', which is used to supply passwords and/or\n"
    "    encryption keys.\n"
    "  'fmt' is the disk image format. It is guessed automatically in most cases\n"
    "  'cache' is the cache mode used to write the output disk image, the valid\n"
    "    options are: 'none', 'writeback' (default, except for convert), 'writethrough',\n"
    "    'directsync' and 'unsafe' (default for convert)\n"
    "  'src_cache' is the cache mode used to read input disk images, the valid\n"
    "    options are the same as for the 'cache' option\n"
    "  'size' is the disk image size in bytes. Optional suffixes\n"
    "    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' (gigabyte, 1024M),\n"
    "    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' (exabyte, 1024P)  are\n"
    "    supported. 'b' is ignored.\n"
    "  'output_filename' is the destination disk image filename\n"
    "  'output_fmt' is the destination format\n"
    "  'options' is a comma separated list of format specific options in a\n"
    "    name=value format. Use -o help for an overview of the options supported by\n"
    "    the used format\n"
    "  'snapshot_param' is param used for internal snapshot, format\n"
    "    is 'snapshot.id=[ID],snapshot.name=[NAME]', or\n"
    "    '[ID_OR_NAME]'\n"
    "  '-c' indicates that target image must be compressed (qcow format only)\n"
    "  '-u' allows unsafe backing chains. For rebasing, it is assumed that old and\n"
    "       new backing file match exactly. The image doesn't need a working\n"
    "       backing file before rebasing in this case (useful for renaming the\n"
    "       backing file). For image creation, allow creating without attempting\n"
    "       to open the backing file.\n"
    "  '-h' with or without a command shows this help and lists the supported formats\n"
    "  '-p' show progress of command (only certain commands)\n"
    "  '-q' use Quiet mode - do not print any output (except errors)\n"
    "  '-S' indicates the consecutive number of bytes (defaults to 4k) that must\n"
    "       contain only zeros for qemu-img to create a sparse image during\n"
    "       conversion. If the number of bytes is 0, the source will not be scanned for\n"
    "       unallocated or zero sectors, and the destination image will always be\n"
    "       fully allocated\n"
    "  '--output' takes the format in which the output must be done (human or json)\n"
    "  '-n' skips the target volume creation (useful if the volume is created\n"
    "       prior to running qemu-img)\n"
    "\n"
    "Parameters to bitmap subcommand:\n"
    "  'bitmap' is the name of the bitmap to manipulate, through one or more\n"
    "       actions from '--add', '--remove', '--clear', '--enable', '--disable',\n"
    "       or '--merge source'\n"
    "  '-g granularity' sets the granularity for '--add' actions\n"
    "  '-b source' and '-F src_fmt' tell '--merge' actions to find the source\n"
    "       bitmaps from an alternative file\n"
    "\n"
    "Parameters to check subcommand:\n"
    "  '-r' tries to repair any inconsistencies that are found during the check.\n"
    "       '-r leaks' repairs only cluster leaks, whereas '-r all' fixes all\n"
    "       kinds of errors, with a higher risk of choosing the wrong fix or\n"
    "       hiding corruption that has already occurred.\n"
    "\n"
    "Parameters to convert subcommand:\n"
    "  '--bitmaps' copies all top-level persistent bitmaps to destination\n"
    "  '-m' specifies how many coroutines work in parallel during the convert\n"
    "       process (defaults to 8)\n"
    "  '-W' allow to write to the target out of order rather than sequential\n"
    "\n"
    "Parameters to snapshot subcommand:\n"
    "  'snapshot' is the name of the snapshot to create, apply or delete\n"
    "  '-a' applies a snapshot (revert disk to saved state)\n"
    "  '-c' creates a snapshot\n"
    "  '-d' deletes a snapshot\n"
    "  '-l' lists all snapshots in the given image\n"
    "\n"
    "Parameters to compare subcommand:\n"
    "  '-f' first image format\n"
    "  '-F' second image format\n"
    "  '-s' run in Strict mode - fail on different image size or sector allocation\n"
    "\n"
    "Parameters to dd subcommand:\n"
    "  'bs=BYTES' read and write up to BYTES bytes at a time (default: 512)\n"
    "  'count=N' copy only N input blocks\n"
    "  'if=FILE' read from FILE\n"
    "  'of=FILE' write to FILE\n"
    "  'skip=N' skip N bs-sized blocks at the start of input\n"
    "\n";

static void print_version(void)
{
    printf("qimg version " QIMG_VERSION " (qemu-img 7.2 compatible)\n"
           "Copyright (c) 2026 the qimg developers\n");
}

int cli_help(void)
{
    char *formats = bdev_list_formats();
    print_version();
    printf("usage: %s [standard options] command [command options]\n"
           "QEMU disk image utility\n"
           "\n"
           "    '-h', '--help'       display this help and exit\n"
           "    '-V', '--version'    output version information and exit\n"
           "    '-T', '--trace'      [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
           "                         specify tracing options\n"
           "\n", cli_prog);
    fputs(help_body, stdout);
    printf("Supported formats: %s\n\n", formats ? formats : "");
    printf("See the qimg(1) manual page for details.\n"
           "qimg reads and writes the images QEMU 7.2 does.\n");
    free(formats);
    return 0;
}

/* qimg has no trace events: report every named event as qemu-img reports
 * an unknown one; patterns and "help" list nothing. */
static int trace_option(const char *arg)
{
    struct kvlist kv = KVLIST_INIT;
    struct err err = ERR_INIT;
    if (kv_parse(&kv, arg, "enable", &err) < 0) {
        cli_report(&err);
        return -1;
    }
    for (size_t i = 0; i < kv.n; i++) {
        const char *k = kv.items[i].key, *v = kv.items[i].val;
        if (!strcmp(k, "enable") && strcmp(v, "help") && !strpbrk(v, "*?"))
            fprintf(stderr, "%s: warning: trace event '%s' does not exist\n",
                    cli_prog, v);
    }
    kv_free(&kv);
    return 0;
}

static const struct option global_long[] = {
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "trace", required_argument, NULL, 'T' },
    { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    int c;
    cli_prog = slash ? slash + 1 : argv[0];
    if (argc < 2)
        return cli_error_exit("Not enough arguments");

    while ((c = getopt_long(argc, argv, "+:hVT:", global_long, NULL)) != -1) {
        switch (c) {
        case ':':
            return cli_error_exit("missing argument for option '%s'",
                                  argv[optind - 1]);
        case '?':
            return cli_error_exit("unrecognized option '%s'", argv[optind - 1]);
        case 'h':
            return cli_help();
        case 'V':
            print_version();
            return 0;
        case 'T':
            if (trace_option(optarg) < 0)
                return 1;
            break;
        }
    }
    if (optind >= argc)
        return 0;       /* only global options: nothing to do */
    const struct command *cmd = cli_find_command(argv[optind]);
    if (!cmd)
        return cli_error_exit("Command not found: %s", argv[optind]);
    argc -= optind;
    argv += optind;
    optind = 0;     /* full getopt reset for the subcommand's own options */
    int rc = cmd->run(argc, argv);
    fflush(stdout);
    secret_clear_all();
    return rc;
}
