/* snapshot: not implemented yet. */
#include "cli/cli.h"

int cmd_snapshot(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'snapshot' is not implemented yet");
    return 1;
}
