/* resize: not implemented yet. */
#include "cli/cli.h"

int cmd_resize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("'resize' is not implemented yet");
    return 1;
}
