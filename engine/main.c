/*
 * main.c — the `eddy` command: dispatches to a subcommand. Each subcommand lives
 * in the module it belongs to and handles its own --help; this file only knows
 * their names and one-line summaries.
 */
#include "eddy.h"
#include "engine/cli.h"

#include <stdio.h>
#include <string.h>

typedef struct command_s {
    const char *name;                  /* as typed after `eddy` */
    int (*run)(int argc, char **argv); /* returns the exit code */
    const char *summary;               /* one line for `eddy --help` */
} command_t;

static const command_t commands[] = {
    {"broker", eddy_cmd_broker, "run the embedded Kafka-protocol test broker (mock cluster)"},
    {"gen", eddy_cmd_gen, "load generator: HTTP-log or user-activity events at a steady rate"},
    {"topology", eddy_cmd_topology, "check or describe a topology file"},
    {"run", eddy_cmd_run, "run a topology: stream threads, RocksDB state, HTTP queries"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: eddy <command> [options]\n\n"
                 "eddy is a stream-processing engine in the mould of Kafka Streams.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'eddy <command> --help' describes a command's options.\n"
                 "'eddy --version' prints the version.\n"
                 "Exit codes: 0 ok, 1 runtime failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "eddy: no command given (see 'eddy --help')\n");
        return EDDY_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return EDDY_EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("eddy %s\n", eddy_version());
        return EDDY_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "eddy: unknown command '%s' (see 'eddy --help')\n", name);
    return EDDY_EXIT_USAGE;
}
