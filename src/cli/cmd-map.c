/* map: not implemented yet. */
#include "cli/cli.h"

int cmd_map(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'map' is not implemented yet");
    return 1;
}
