/*
 * cli.c — helpers shared by the subcommands of `eddy` (see cli.h).
 */
#include "engine/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t eddy_cli_stop = 0;

int eddy_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    fprintf(stderr, "eddy %s: %s (see 'eddy %s --help')\n", cmd, reason, cmd);
    return EDDY_EXIT_USAGE;
}

static void on_stop_signal(int sig)
{
    if (eddy_cli_stop) {
        static const char msg[] = "eddy: second signal, exiting now\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(128 + sig);
    }
    eddy_cli_stop = 1;
}

void eddy_cli_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* A shell script starts its background commands with SIGINT ignored, so that a
     * terminal's Ctrl-C (sent to the whole foreground process group) reaches the
     * script alone, which then stops them in its own order (scripts/demo: the
     * processor before the broker). Such a process keeps ignoring it. */
    struct sigaction old;
    if (sigaction(SIGINT, NULL, &old) || old.sa_handler != SIG_IGN)
        sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
