/* commit: not implemented yet. */
#include "cli/cli.h"

int cmd_commit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'commit' is not implemented yet");
    return 1;
}
