/* measure: not implemented yet. */
#include "cli/cli.h"

int cmd_measure(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'measure' is not implemented yet");
    return 1;
}
