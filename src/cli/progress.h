/* progress: qemu-img's progress line ("    (12.34/100%)" rewritten with
 * '\r' on stdout with -p) and, without -p, one report on stderr each time
 * SIGUSR1 arrives. */
#ifndef QIMG_CLI_PROGRESS_H
#define QIMG_CLI_PROGRESS_H

#include <stdbool.h>

/* Start reporting; a line is printed only after at least `min_skip`
 * percent of progress since the last one (and always at 0 and 100). */
void progress_init(bool enabled, float min_skip);
/* `max` 0: `delta` is the absolute percentage done.  Otherwise `delta` is
 * progress of a part weighing `max` percent of the whole. */
void progress_print(float delta, int max);
/* End the line (with -p). */
void progress_end(void);

#endif
