/* progress: see progress.h.  Single-threaded callers only, or callers
 * that serialise calls themselves (the copy engine calls it under its
 * lock). */
#include "cli/progress.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct {
    bool enabled;
    float current, last, min_skip;
} st;
static volatile sig_atomic_t pending;

static void on_usr1(int sig)
{
    (void)sig;
    pending = 1;
}

void progress_init(bool enabled, float min_skip)
{
    memset(&st, 0, sizeof(st));
    st.enabled = enabled;
    st.min_skip = min_skip;
    if (!enabled) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sigfillset(&sa.sa_mask);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
    }
}

static void emit(void)
{
    if (st.enabled) {
        printf("    (%3.2f/100%%)\r", st.current);
        fflush(stdout);
    } else if (pending) {
        fprintf(stderr, "    (%3.2f/100%%)\n", st.current);
        pending = 0;
    }
}

void progress_print(float delta, int max)
{
    float cur = max == 0 ? delta : st.current + delta / 100 * max;
    if (cur > 100)
        cur = 100;
    st.current = cur;
    if (cur > st.last + st.min_skip || cur < st.last - st.min_skip ||
        cur == 100 || cur == 0) {
        st.last = cur;
        emit();
    }
}

void progress_end(void)
{
    if (st.enabled)
        printf("\n");
}
