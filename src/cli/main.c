/* main: global options, then dispatch to the subcommand. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    cli_prog = slash ? slash + 1 : argv[0];
    if (argc < 2) {
        cli_error("Not enough arguments\nTry '%s --help' for more information", cli_prog);
        return 1;
    }
    const struct command *c = cli_find_command(argv[1]);
    if (!c) {
        cli_error("Command not found: %s", argv[1]);
        return 1;
    }
    return c->run(argc - 1, argv + 1);
}
