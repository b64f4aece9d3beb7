/* create: not implemented yet. */
#include "cli/cli.h"

int cmd_create(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'create' is not implemented yet");
    return 1;
}
