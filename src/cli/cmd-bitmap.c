/* bitmap: not implemented yet. */
#include "cli/cli.h"

int cmd_bitmap(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'bitmap' is not implemented yet");
    return 1;
}
