/* check: not implemented yet. */
#include "cli/cli.h"

int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'check' is not implemented yet");
    return 1;
}
