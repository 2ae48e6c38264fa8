/*
 * cli.h — what the `eddy` command's subcommands share: the exit-code contract,
 * usage-error reporting and stop-signal handling. Every subcommand is a function
 * `int eddy_cmd_<name>(int argc, char **argv)` (argv[0] is the subcommand name)
 * that returns an exit code, and handles --help itself.
 */
#ifndef EDDY_CLI_H
#define EDDY_CLI_H

#include <signal.h>

enum {
    EDDY_EXIT_OK = 0,    /**< the command did what was asked */
    EDDY_EXIT_FAIL = 1,  /**< runtime failure (broker unreachable, delivery failed, ...) */
    EDDY_EXIT_USAGE = 2, /**< bad command line; a one-line reason went to stderr */
};

/** Prints "eddy CMD: <reason> (see 'eddy CMD --help')" on stderr; returns EDDY_EXIT_USAGE. */
int eddy_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Set to 1 by SIGINT/SIGTERM once eddy_cli_catch_stop_signals() ran. */
extern volatile sig_atomic_t eddy_cli_stop;

/** Installs SIGINT/SIGTERM handlers that set eddy_cli_stop (a second signal exits at
 *  once with status 128 + signal), and ignores SIGPIPE. A SIGINT ignored by the
 *  parent (a script's background command) stays ignored: SIGTERM stops such a
 *  process. Call from the main thread. */
void eddy_cli_catch_stop_signals(void);

int eddy_cmd_broker(int argc, char **argv);
int eddy_cmd_gen(int argc, char **argv);
int eddy_cmd_topology(int argc, char **argv);
int eddy_cmd_run(int argc, char **argv);

#endif /* EDDY_CLI_H */
