/* commands: the one sorted table of subcommands. */
#include "cli/cli.h"

#include <string.h>

const struct command cli_commands[] = {
    { "amend", cmd_amend },
    { "bench", cmd_bench },
    { "bitmap", cmd_bitmap },
    { "check", cmd_check },
    { "commit", cmd_commit },
    { "compare", cmd_compare },
    { "convert", cmd_convert },
    { "create", cmd_create },
    { "dd", cmd_dd },
    { "info", cmd_info },
    { "map", cmd_map },
    { "measure", cmd_measure },
    { "rebase", cmd_rebase },
    { "resize", cmd_resize },
    { "snapshot", cmd_snapshot },
    { NULL, NULL },
};

const struct command *cli_find_command(const char *name)
{
    for (const struct command *c = cli_commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}
