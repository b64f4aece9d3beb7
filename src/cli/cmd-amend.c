/* amend: not implemented yet. */
#include "cli/cli.h"

int cmd_amend(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'amend' is not implemented yet");
    return 1;
}
