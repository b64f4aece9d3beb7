/* opts: option parsing shared by the subcommands, with qemu-img's exact
 * error messages: getopt errors, sizes (cvtnum), --output, -o option
 * strings and their help listing, --object secrets, cache modes, and the
 * options every command shares (-f, -q, -T, -U, --object, --image-opts). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/secret.h"
#include "util/size.h"

int cli_error_exit(const char *fmt, ...)
{
    char buf[ERR_MSG_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s --help' for more information\n",
            cli_prog, buf, cli_prog);
    return 1;
}

int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts, int *exit_code)
{
    char spec[128];
    snprintf(spec, sizeof(spec), ":%s", shortopts);
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    switch (c) {
    case '?':
        *exit_code = cli_error_exit("unrecognized option '%s'", argv[optind - 1]);
        return CLI_OPT_EXIT;
    case ':':
        *exit_code = cli_error_exit("missing argument for option '%s'",
                                    argv[optind - 1]);
        return CLI_OPT_EXIT;
    case 'h':
        if (strchr(shortopts, 'h')) {
            *exit_code = cli_help();
            return CLI_OPT_EXIT;
        }
        return c;
    default:
        return c;
    }
}

int cli_common_option(int c, const char *arg, struct cli_common *co,
                      int *exit_code)
{
    int r;
    switch (c) {
    case 'f':
        co->fmt = arg;
        return 1;
    case 'T':
        co->src_cache = arg;
        return 1;
    case 'q':
        co->quiet = true;
        return 1;
    case 'U':
        co->force_share = true;
        return 1;
    case CLI_OPT_IMAGE_OPTS:
        co->image_opts = true;
        return 1;
    case CLI_OPT_OBJECT:
        r = cli_add_object(arg);
        if (!r)
            return 1;
        *exit_code = r < 0 ? 1 : 0;
        return CLI_OPT_EXIT;
    default:
        return 0;
    }
}

int cli_getopt_common(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, struct cli_common *co,
                      int *exit_code)
{
    for (;;) {
        int c = cli_getopt(argc, argv, shortopts, longopts, exit_code);
        if (c == -1 || c == CLI_OPT_EXIT)
            return c;
        int r = cli_common_option(c, optarg, co, exit_code);
        if (r == 0)
            return c;
        if (r == CLI_OPT_EXIT)
            return r;
    }
}

void cli_open_common(struct cli_open *o, const struct cli_common *co)
{
    o->fmt = co->fmt;
    o->force_share = co->force_share;
    o->image_opts = co->image_opts;
}

int cli_parse_snapshot_arg(const char *arg, struct kvlist *sn_opts,
                           bool *has_opts, const char **name)
{
    struct err err = ERR_INIT;
    if (strncmp(arg, "snapshot.", 9)) {
        *name = arg;
        return 0;
    }
    kv_free(sn_opts);
    if (kv_parse(sn_opts, arg, NULL, &err) < 0) {
        cli_report(&err);
        cli_error("Failed in parsing snapshot param '%s'", arg);
        return -1;
    }
    for (size_t i = 0; i < sn_opts->n; i++) {
        const char *k = sn_opts->items[i].key;
        if (strcmp(k, "snapshot.id") && strcmp(k, "snapshot.name")) {
            cli_error("Invalid parameter '%s'", k);
            cli_error("Failed in parsing snapshot param '%s'", arg);
            return -1;
        }
    }
    *has_opts = true;
    return 0;
}

int cli_cvtnum_full(const char *name, const char *value, int64_t min,
                    int64_t max, int64_t *out)
{
    uint64_t v = 0;
    unsigned flags = 0;
    int r = parse_size_flags(value, &v, &flags);
    if (r == 0 && (flags & SIZE_HEX_WITH_SUFFIX))
        fprintf(stderr, "%s: warning: Using a multiplier suffix on hex numbers "
                "is deprecated: %s\n", cli_prog, value);
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

int cli_cvtnum(const char *name, const char *value, int64_t *out)
{
    return cli_cvtnum_full(name, value, 0, INT64_MAX, out);
}

int cli_parse_output(const char *arg)
{
    if (!strcmp(arg, "json"))
        return CLI_OUTPUT_JSON;
    if (!strcmp(arg, "human"))
        return CLI_OUTPUT_HUMAN;
    cli_error("--output must be used with human or json as argument.");
    return -1;
}

/* qemu-img refuses empty lists, a leading comma and an odd run of trailing
 * commas (an even run is an escaped comma). */
static bool option_list_valid(const char *s)
{
    size_t len = strlen(s), trailing = 0;
    if (!len || s[0] == ',')
        return false;
    while (trailing < len && s[len - 1 - trailing] == ',')
        trailing++;
    return trailing % 2 == 0;
}

int cli_accumulate_options(char **acc, const char *arg)
{
    char *n;
    if (!option_list_valid(arg)) {
        cli_error("Invalid option list: %s", arg);
        return -1;
    }
    if (!*acc) {
        n = strdup(arg);
    } else if (asprintf(&n, "%s,%s", *acc, arg) < 0) {
        n = NULL;
    }
    if (!n) {
        cli_error("Out of memory");
        return -1;
    }
    free(*acc);
    *acc = n;
    return 0;
}

bool cli_options_want_help(const char *options)
{
    const char *p = options;
    while (p && *p) {
        const char *s = p;
        size_t n = 0;
        char item[16];
        /* Items are separated by single commas; ",," is an escaped one. */
        while (*p && !(*p == ',' && p[1] != ',')) {
            if (*p == ',')
                p++;
            if (n < sizeof(item) - 1)
                item[n++] = *p;
            p++;
        }
        item[n] = 0;
        if ((size_t)(p - s) < sizeof(item) &&
            (!strcmp(item, "help") || !strcmp(item, "?")))
            return true;
        if (*p == ',')
            p++;
    }
    return false;
}

static const char *opt_type_name(enum opt_type t)
{
    switch (t) {
    case OPT_BOOL: return "bool (on/off)";
    case OPT_NUMBER: return "num";
    case OPT_SIZE: return "size";
    case OPT_STRING: default: return "str";
    }
}

static int cmp_desc(const void *a, const void *b)
{
    const struct opt_desc *x = *(const struct opt_desc *const *)a;
    const struct opt_desc *y = *(const struct opt_desc *const *)b;
    return strcmp(x->name, y->name);
}

static size_t collect_opts(const struct opt_desc **out, size_t n, size_t max,
                           const struct opt_desc *d)
{
    for (; d && d->name && n < max; d++) {
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = !strcmp(out[i]->name, d->name);
        if (!dup)
            out[n++] = d;
    }
    return n;
}

int cli_print_option_help(const char *fmt, const char *filename)
{
    const struct opt_desc *fmt_opts = bdev_driver_create_opts(fmt);
    const struct opt_desc *list[256];
    size_t n = 0;

    if (!bdev_find_format(fmt)) {
        cli_error("Unknown file format '%s'", fmt);
        return 1;
    }
    if (!fmt_opts) {
        cli_error("Format driver '%s' does not support image creation", fmt);
        return 1;
    }
    n = collect_opts(list, n, 256, fmt_opts);
    if (filename)
        n = collect_opts(list, n, 256, bdev_driver_create_opts("file"));
    qsort(list, n, sizeof(list[0]), cmp_desc);
    if (filename)
        printf("Supported options:\n");
    else
        printf("Supported %s options:\n", fmt);
    for (size_t i = 0; i < n; i++) {
        char head[256];
        snprintf(head, sizeof(head), "  %s=<%s>", list[i]->name,
                 opt_type_name(list[i]->type));
        printf("%-24s", head);
        if (list[i]->help)
            printf(" - %s", list[i]->help);
        printf("\n");
    }
    if (!filename)
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    return 0;
}

int cli_parse_cache(const char *arg, enum cache_mode *out)
{
    struct err err = ERR_INIT;
    if (cache_mode_parse(arg, out, &err) < 0) {
        cli_report(&err);
        return -1;
    }
    return 0;
}

static const char *const creatable_types[] = {
    "authz-list", "authz-list-file", "authz-simple", "main-loop",
    "pr-manager-helper", "secret", "secret_keyring", "thread-context",
    "throttle-group", "tls-cipher-suites", "tls-creds-anon", "tls-creds-psk",
    "tls-creds-x509", NULL,
};

/* Every object type QEMU 7.2 knows: a known type that qemu-img cannot
 * (or qimg does not) create is "invalid", any other is not a value of the
 * qom-type parameter at all. */
static const char *const known_types[] = {
    "authz-list", "authz-listfile", "authz-pam", "authz-simple", "can-bus",
    "can-host-socketcan", "colo-compare", "cryptodev-backend",
    "cryptodev-backend-builtin", "cryptodev-vhost-user", "dbus-vmstate",
    "filter-buffer", "filter-dump", "filter-mirror", "filter-redirector",
    "filter-replay", "filter-rewriter", "input-barrier", "input-linux",
    "iothread", "main-loop", "memory-backend-epc", "memory-backend-file",
    "memory-backend-memfd", "memory-backend-ram", "pef-guest",
    "pr-manager-helper", "qtest", "rng-builtin", "rng-egd", "rng-random",
    "secret", "secret_keyring", "sev-guest", "s390-pv-guest",
    "thread-context", "throttle-group", "tls-creds-anon", "tls-creds-psk",
    "tls-creds-x509", "tls-cipher-suites", "x-remote-object",
    "x-vfio-user-server", NULL,
};

static const char *const secret_keys[] = {
    "qom-type", "id", "data", "file", "format", "keyid", "iv", "loaded", NULL,
};

int cli_add_object(const char *arg)
{
    struct kvlist kv = KVLIST_INIT;
    struct err err = ERR_INIT;
    int r = -1;

    if (!strcmp(arg, "help") || !strcmp(arg, "?")) {
        printf("List of user creatable objects:\n");
        for (int i = 0; creatable_types[i]; i++)
            printf("  %s\n", creatable_types[i]);
        return 1;
    }
    if (cli_options_want_help(arg) && !strncmp(arg, "secret,", 7)) {
        printf("secret options:\n  data=<string>\n  file=<string>\n"
               "  format=<QCryptoSecretFormat>\n  iv=<string>\n"
               "  keyid=<string>\n");
        return 1;
    }
    if (kv_parse(&kv, arg, "qom-type", &err) < 0) {
        cli_report(&err);
        goto out;
    }
    const char *type = kv_peek(&kv, "qom-type");
    bool known = false;
    for (int i = 0; type && known_types[i]; i++)
        known |= !strcmp(known_types[i], type);
    if (!type) {
        cli_error("Parameter 'qom-type' is missing");
        goto out;
    }
    if (!known) {
        cli_error("Parameter 'qom-type' does not accept value '%s'", type);
        goto out;
    }
    if (strcmp(type, "secret")) {
        cli_error("invalid object type: %s", type);
        goto out;
    }
    for (size_t i = 0; i < kv.n; i++) {
        bool ok = false;
        for (int k = 0; secret_keys[k]; k++)
            ok |= !strcmp(secret_keys[k], kv.items[i].key);
        if (!ok) {
            cli_error("Parameter '%s' is unexpected", kv.items[i].key);
            goto out;
        }
    }
    if (secret_add(kv_peek(&kv, "id"), kv_peek(&kv, "data"),
                   kv_peek(&kv, "file"), kv_peek(&kv, "format"),
                   kv_peek(&kv, "keyid"), kv_peek(&kv, "iv"), &err) < 0) {
        cli_report(&err);
        goto out;
    }
    r = 0;
out:
    kv_free(&kv);
    return r;
}

size_t cli_create_opt_list(const char *fmt, const struct opt_desc **out,
                           size_t max)
{
    size_t n = collect_opts(out, 0, max, bdev_driver_create_opts(fmt));
    return collect_opts(out, n, max, bdev_driver_create_opts("file"));
}

int cli_parse_create_opts(const char *fmt, const char *options,
                          struct kvlist *out, struct err *err)
{
    const struct opt_desc *list[128];
    size_t n = cli_create_opt_list(fmt, list, 128);
    if (!options)
        return 0;
    return cli_parse_opt_string(options, list, n, out, err);
}

static const struct opt_desc *find_desc(const struct opt_desc *const *list,
                                        size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i]->name, name))
            return list[i];
    return NULL;
}

static int check_opt_value(const struct opt_desc *d, const char *val,
                           struct err *err)
{
    uint64_t u;
    char *end;
    switch (d->type) {
    case OPT_BOOL: {
        /* qemu's boolean spellings */
        static const char *const words[] = { "on", "yes", "true", "y",
                                             "off", "no", "false", "n" };
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (!strcmp(val, words[i]))
                return 0;
        return err_set(err, -EINVAL, "Parameter '%s' expects 'on' or 'off'",
                       d->name);
    }
    case OPT_SIZE:
        if (parse_size(val, &u) < 0)
            return err_set(err, -EINVAL,
                           "Parameter '%s' expects a non-negative number below 2^64\n"
                           "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                           "and exabytes, respectively.", d->name);
        return 0;
    case OPT_NUMBER:
        errno = 0;
        (void)strtoull(val, &end, 0);
        if (!*val || *end || errno || *val == '-')
            return err_set(err, -EINVAL, "Parameter '%s' expects a number",
                           d->name);
        return 0;
    case OPT_STRING:
    default:
        return 0;
    }
}

int cli_parse_opt_string(const char *str, const struct opt_desc *const *list,
                         size_t n, struct kvlist *out, struct err *err)
{
    const char *p = str;
    int r = 0;
    while (*p && r == 0) {
        size_t klen = strcspn(p, "=,");
        char *key = strndup(p, klen), *val;
        p += klen;
        if (*p == '=') {
            size_t cap = strlen(++p) + 1, m = 0;
            val = malloc(cap);
            while (val && *p) {
                if (*p == ',') {
                    if (p[1] != ',')
                        break;
                    p++;
                }
                val[m++] = *p++;
            }
            if (val)
                val[m] = 0;
        } else if (key && !strncmp(key, "no", 2)) {
            /* qemu's flag form: "nofoo" is foo=off, "foo" is foo=on */
            memmove(key, key + 2, strlen(key + 2) + 1);
            val = strdup("off");
        } else {
            val = strdup("on");
        }
        if (*p == ',')
            p++;
        if (!key || !val) {
            r = err_set(err, -ENOMEM, "Out of memory");
        } else {
            const struct opt_desc *d = find_desc(list, n, key);
            if (!d)
                r = err_set(err, -EINVAL, "Invalid parameter '%s'", key);
            else if ((r = check_opt_value(d, val, err)) == 0 &&
                     kv_set(out, key, val) < 0)
                r = err_set(err, -ENOMEM, "Out of memory");
        }
        free(key);
        free(val);
    }
    return r;
}
