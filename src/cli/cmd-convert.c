/* convert: not implemented yet. */
#include "cli/cli.h"

int cmd_convert(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'convert' is not implemented yet");
    return 1;
}
