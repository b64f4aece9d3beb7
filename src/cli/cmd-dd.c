/* dd: not implemented yet. */
#include "cli/cli.h"

int cmd_dd(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'dd' is not implemented yet");
    return 1;
}
