/* rebase: not implemented yet. */
#include "cli/cli.h"

int cmd_rebase(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'rebase' is not implemented yet");
    return 1;
}
