/*
 * gen_cmd.c — the `eddy gen` command: parses options into an eddy_gen_config_t,
 * runs the generator and prints one JSON summary line on stdout.
 */
#include "engine/cli.h"
#include "engine/log.h"
#include "engine/util.h"
#include "producer/gen.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char gen_help[] =
    "usage: eddy gen --bootstrap SERVERS [options]\n"
    "\n"
    "Sends synthetic events to a Kafka topic at a steady rate: HTTP request logs\n"
    "(--kind http, for topology/examples/monitoring.json) or user activity events\n"
    "(--kind activity, for activity.json). Schemas: docs/events.md. Records are keyed\n"
    "by user_id and partitioned with Java-compatible murmur2; the producer is\n"
    "idempotent with acks=all.\n"
    "\n"
    "Prints a progress line each second on a terminal and ends with one JSON line:\n"
    "  {\"sent\":N,\"acked\":N,\"failed\":N,\"seconds\":S,\"rate\":R,\"cpu_seconds\":C}\n"
    "(rate = acked events per second). Exit code 1 if any event failed.\n"
    "\n"
    "options:\n"
    "  --bootstrap SERVERS     bootstrap.servers (also the 'bootstrap.servers=...' line\n"
    "                          that 'eddy broker' prints)\n"
    "  --topic NAME            topic to write (default log-events); must exist\n"
    "  --kind http|activity    event kind (default http)\n"
    "  --rate N                events per second (default 40000; 0 = as fast as possible)\n"
    "  --duration SECONDS      run this long (with --rate N: exactly N*SECONDS events)\n"
    "  --count N               send exactly N events\n"
    "                          (neither: run until SIGINT/SIGTERM)\n"
    "  --seed N                event model seed (default 1); same seed and options give\n"
    "                          byte-identical records when event time is simulated\n"
    "  --start-ts MS           simulated event time starting at MS (epoch milliseconds);\n"
    "                          advances 1000/rate ms per event unless --span is given\n"
    "  --span SECONDS          with --start-ts: spread the events evenly over SECONDS;\n"
    "                          event i of N gets start + i*SECONDS*1000/N\n"
    "  --compression CODEC     none, gzip, snappy, lz4 or zstd (default zstd)\n"
    "  -X key=value            any librdkafka producer property (repeatable)\n"
    "  -q, --quiet             no progress line\n"
    "  -h, --help              this help\n";

int eddy_cmd_gen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"kind", required_argument, NULL, 'k'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"start-ts", required_argument, NULL, 'S'},
        {"span", required_argument, NULL, 'p'},
        {"compression", required_argument, NULL, 'z'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    eddy_gen_config_t cfg;
    eddy_gen_config_defaults(&cfg);
    cfg.progress = isatty(STDERR_FILENO);
    char errstr[512];
    int64_t v;
    double d;

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":X:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            cfg.bootstrap = strncmp(optarg, "bootstrap.servers=", 18) ? optarg : optarg + 18;
            break;
        case 't':
            cfg.topic = optarg;
            break;
        case 'k':
            if ((v = eddy_gen_kind_parse(optarg)) < 0)
                return eddy_cli_usage_error("gen", "--kind must be http or activity, not '%s'",
                                            optarg);
            cfg.kind = (eddy_gen_kind_t)v;
            break;
        case 'r':
            if (!eddy_parse_i64(optarg, 0, 100000000, &cfg.rate))
                return eddy_cli_usage_error("gen", "--rate must be an integer in 0..100000000");
            break;
        case 'd':
            if (!eddy_parse_double(optarg, 0.001, 1e9, &cfg.duration_s))
                return eddy_cli_usage_error("gen", "--duration must be a positive number of "
                                                   "seconds");
            break;
        case 'c':
            if (!eddy_parse_i64(optarg, 1, INT64_MAX / 1000, &cfg.count))
                return eddy_cli_usage_error("gen", "--count must be a positive integer");
            break;
        case 's':
            if (!eddy_parse_i64(optarg, 0, INT64_MAX, &v))
                return eddy_cli_usage_error("gen", "--seed must be a non-negative integer");
            cfg.seed = (uint64_t)v;
            break;
        case 'S':
            if (!eddy_parse_i64(optarg, 0, 253402300799999LL, &cfg.start_ts))
                return eddy_cli_usage_error("gen", "--start-ts must be epoch milliseconds "
                                                   "(e.g. 1700000000000)");
            cfg.simulated_time = true;
            break;
        case 'p':
            if (!eddy_parse_double(optarg, 0.001, 1e9, &d))
                return eddy_cli_usage_error("gen", "--span must be a positive number of "
                                                   "seconds");
            cfg.span_s = d;
            break;
        case 'z': {
            bool ok = false;
            for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
                ok = ok || !strcmp(optarg, codecs[i]);
            if (!ok)
                return eddy_cli_usage_error("gen", "--compression must be none, gzip, snappy, "
                                                   "lz4 or zstd");
            cfg.compression = optarg;
            break;
        }
        case 'X':
            if (cfg.n_props == EDDY_GEN_MAX_PROPS)
                return eddy_cli_usage_error("gen", "at most %d -X options", EDDY_GEN_MAX_PROPS);
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return eddy_cli_usage_error("gen", "-X '%s' is not key=value", optarg);
            cfg.props[cfg.n_props++] = optarg;
            break;
        case 'q':
            cfg.progress = false;
            break;
        case 'h':
            fputs(gen_help, stdout);
            return EDDY_EXIT_OK;
        case ':':
            return eddy_cli_usage_error("gen", "option '%s' needs a value", argv[optind - 1]);
        default:
            return eddy_cli_usage_error("gen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eddy_cli_usage_error("gen", "unexpected argument '%s'", argv[optind]);
    if (eddy_gen_config_check(&cfg, errstr, sizeof(errstr)))
        return eddy_cli_usage_error("gen", "%s", errstr);

    eddy_log_set_thread_name("gen");
    eddy_cli_catch_stop_signals();
    eddy_gen_stats_t stats;
    eddy_err_t err = eddy_gen_run(&cfg, &eddy_cli_stop, &stats, errstr, sizeof(errstr));
    if (err) {
        eddy_log_error("%s", errstr);
        if (stats.sent == 0)
            return EDDY_EXIT_FAIL;
    }
    printf("{\"sent\":%lld,\"acked\":%lld,\"failed\":%lld,\"seconds\":%.3f,\"rate\":%.1f,"
           "\"cpu_seconds\":%.3f}\n",
           (long long)stats.sent, (long long)stats.acked, (long long)stats.failed, stats.seconds,
           stats.seconds > 0 ? (double)stats.acked / stats.seconds : 0.0, stats.cpu_seconds);
    fflush(stdout);
    return err || stats.failed > 0 ? EDDY_EXIT_FAIL : EDDY_EXIT_OK;
}
