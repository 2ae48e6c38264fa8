/*
 * broker.c — the embedded broker (see broker.h) and the `eddy broker` command.
 *
 * The mock cluster needs an rd_kafka_t for its bookkeeping; we give it a producer
 * that never produces. Topics are created up front because the mock auto-creates
 * only 4 partitions and eddy's topics need exact partition counts.
 *
 * With --control the command's main thread also reads fault-injection commands
 * from stdin (one per line, one answer line each on stdout) and applies them
 * through the mock API: request errors, brokers down and up. The drill
 * (tests/drills/drill.c) drives it that way.
 */
#include "engine/broker.h"
#include "engine/cli.h"
#include "engine/instances.h"
#include "engine/log.h"
#include "engine/util.h"
#include "topology/topology_int.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct eddy_broker_s {
    rd_kafka_t *rk;                    /* owner handle the mock cluster hangs off */
    rd_kafka_mock_cluster_t *mcluster; /* the cluster; serves on its own thread */
    int brokers;                       /* number of brokers in the cluster */
};

eddy_broker_t *eddy_broker_new(int brokers, char *errstr, size_t errstr_size)
{
    if (brokers < 1 || brokers > 16) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "broker count %d is not in 1..16",
                  brokers);
        return NULL;
    }
    char rderr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "client.id", "eddy-broker", NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size,
                  "cannot create the mock cluster's handle: %s", rderr);
        return NULL;
    }
    rd_kafka_mock_cluster_t *mcluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mcluster) {
        rd_kafka_destroy(rk);
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size,
                  "cannot start the mock cluster (no free loopback ports?)");
        return NULL;
    }
    eddy_broker_t *broker = calloc(1, sizeof(*broker));
    if (!broker) {
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    broker->rk = rk;
    broker->mcluster = mcluster;
    broker->brokers = brokers;
    return broker;
}

void eddy_broker_destroy(eddy_broker_t *broker)
{
    if (!broker)
        return;
    rd_kafka_mock_cluster_destroy(broker->mcluster);
    rd_kafka_destroy(broker->rk);
    free(broker);
}

eddy_err_t eddy_broker_create_topic(eddy_broker_t *broker, const char *topic, int partitions,
                                    char *errstr, size_t errstr_size)
{
    if (!eddy_topic_name_valid(topic, errstr, errstr_size))
        return EDDY_ERR_INVALID;
    if (partitions < 1 || partitions > 10000)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "topic '%s': partition count %d is not in 1..10000", topic, partitions);
    int rf = broker->brokers < 3 ? broker->brokers : 3;
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(broker->mcluster, topic, partitions, rf);
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot create topic '%s': %s", topic,
                         rd_kafka_err2str(err));
    return EDDY_OK;
}

const char *eddy_broker_bootstraps(const eddy_broker_t *broker)
{
    return rd_kafka_mock_cluster_bootstraps(broker->mcluster);
}

rd_kafka_mock_cluster_t *eddy_broker_mock(eddy_broker_t *broker)
{
    return broker->mcluster;
}

bool eddy_topic_name_valid(const char *name, char *errstr, size_t errstr_size)
{
    size_t len = strlen(name);
    if (len == 0 || len > 249 || !strcmp(name, ".") || !strcmp(name, "..")) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "topic name '%s' must be 1 to 249 characters and not '.' or '..'", name);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "topic name '%s' has '%c'; Kafka allows only letters, digits, '.', '_' "
                      "and '-'",
                      name, c);
            return false;
        }
    }
    return true;
}

bool eddy_topic_spec_parse(const char *spec, int default_partitions, char *name, size_t cap,
                           int *partitions, char *errstr, size_t errstr_size)
{
    const char *colon = strrchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len >= cap) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "topic name in '%s' is too long", spec);
        return false;
    }
    memcpy(name, spec, len);
    name[len] = '\0';
    if (!eddy_topic_name_valid(name, errstr, errstr_size))
        return false;
    int64_t p = default_partitions;
    if (colon && !eddy_parse_i64(colon + 1, 1, 10000, &p)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "'%s': partition count after ':' must be an integer in 1..10000", spec);
        return false;
    }
    *partitions = (int)p;
    return true;
}

/* --- eddy broker ------------------------------------------------------------ */

static const char broker_help[] =
    "usage: eddy broker [options]\n"
    "\n"
    "Runs the embedded Kafka-protocol broker (librdkafka's mock cluster) in this\n"
    "process until SIGINT/SIGTERM. It is an in-memory TEST broker: it keeps at most\n"
    "5 MiB per partition, writes no transaction markers and forgets everything on\n"
    "exit. For real Kafka, see docs/kafka.md.\n"
    "\n"
    "When ready it prints exactly one line on stdout (with --control, the answers\n"
    "to the commands follow it):\n"
    "  bootstrap.servers=127.0.0.1:PORT,...\n"
    "\n"
    "options:\n"
    "  --brokers N              brokers in the cluster (default 3)\n"
    "  --topic NAME[:PARTS]     create a topic up front (repeatable); without :PARTS\n"
    "                           it gets --partitions partitions. The mock auto-creates\n"
    "                           unknown topics with only 4 partitions.\n"
    "  --partitions N           default partition count for --topic (default 12)\n"
    "  --topology FILE          also create the topics a topology needs: its source\n"
    "                           and sink topics with --partitions partitions and, with\n"
    "                           --application-id, the changelog topics\n"
    "                           <application.id>-<store>-changelog and the dead-letter\n"
    "                           topic <application.id>-dlq, the one-partition\n"
    "                           topic <application.id>-instances and, for a topology\n"
    "                           with sinks, <application.id>-sinks-changelog\n"
    "                           (repeatable)\n"
    "  --application-id ID      application.id for the changelog topic names\n"
    "  --bootstrap-file PATH    also write the bootstrap.servers line to PATH\n"
    "  --control                read fault-injection commands from stdin, one per\n"
    "                           line, after the bootstrap line; each gets one answer\n"
    "                           line on stdout, 'ok' or 'error: <why>':\n"
    "      error REQUEST COUNT ERR  the next COUNT requests of type REQUEST (Produce,\n"
    "                           Fetch, OffsetCommit, Heartbeat, InitProducerId,\n"
    "                           AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,\n"
    "                           TxnOffsetCommit), from any client, fail with Kafka\n"
    "                           error ERR (a name such as NOT_LEADER_FOR_PARTITION,\n"
    "                           REQUEST_TIMED_OUT, NOT_COORDINATOR, or its number)\n"
    "      down ID | up ID      take broker ID (1..N) down (connections dropped and\n"
    "                           refused) or bring it back\n"
    "      quit                 stop, as on SIGINT; so does the end of stdin\n"
    "  -h, --help               this help\n";

static eddy_err_t write_file_atomic(const char *path, const char *text, char *errstr,
                                    size_t errstr_size)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "path too long: %s", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot write %s: %m", tmp);
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot write %s: %m", path);
    }
    return EDDY_OK;
}

/* --- --control: fault injection ------------------------------------------------ */

/* Requests the control channel can fail, by Kafka protocol ApiKey. */
static const struct {
    const char *name;
    int16_t api_key;
} control_requests[] = {
    {"Produce", 0},          {"Fetch", 1},           {"OffsetCommit", 8},
    {"Heartbeat", 12},       {"InitProducerId", 22}, {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},         {"TxnOffsetCommit", 28},
};

/* A broker-side Kafka error by name (librdkafka's table, without the
 * RD_KAFKA_RESP_ERR_ prefix, which is also accepted, or Java's) or by number. librdkafka's
 * internal errors (negative, below UNKNOWN) never travel on the wire and are
 * refused, as is NO_ERROR. */
static bool control_error_parse(const char *text, rd_kafka_resp_err_t *out)
{
    int64_t code;
    if (eddy_parse_i64(text, -1, 32767, &code)) {
        if (code == 0)
            return false;
        *out = (rd_kafka_resp_err_t)code;
        return true;
    }
    if (!strncasecmp(text, "RD_KAFKA_RESP_ERR_", 18))
        text += 18;
    /* Java's names where librdkafka's table has another one. */
    static const struct {
        const char *name;
        rd_kafka_resp_err_t err;
    } aliases[] = {
        {"UNKNOWN_SERVER_ERROR", RD_KAFKA_RESP_ERR_UNKNOWN},
        {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
    };
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (!strcasecmp(aliases[i].name, text)) {
            *out = aliases[i].err;
            return true;
        }
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && descs[i].code >= -1 && descs[i].code != 0 &&
            !strcasecmp(descs[i].name, text)) {
            *out = descs[i].code;
            return true;
        }
    return false;
}

/* Applies one command line; writes the answer (without newline) into `reply`.
 * Returns true when the command asks the broker to stop. */
static bool control_apply(eddy_broker_t *broker, char *line, char *reply, size_t cap)
{
    char *save = NULL, *argv[6];
    int argc = 0;
    for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (argc == 5) {
            snprintf(reply, cap, "error: too many words");
            return false;
        }
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    const char *cmd = argv[0];
    if (!strcmp(cmd, "quit") && argc == 1) {
        snprintf(reply, cap, "ok");
        return true;
    }
    if ((!strcmp(cmd, "down") || !strcmp(cmd, "up")) && argc == 2) {
        int64_t id;
        if (!eddy_parse_i64(argv[1], 1, broker->brokers, &id)) {
            snprintf(reply, cap, "error: broker id '%s' is not in 1..%d", argv[1], broker->brokers);
            return false;
        }
        rd_kafka_resp_err_t err = !strcmp(cmd, "down")
                                      ? rd_kafka_mock_broker_set_down(broker->mcluster, (int)id)
                                      : rd_kafka_mock_broker_set_up(broker->mcluster, (int)id);
        if (err)
            snprintf(reply, cap, "error: %s broker %d: %s", cmd, (int)id, rd_kafka_err2str(err));
        else
            snprintf(reply, cap, "ok");
        return false;
    }
    if (!strcmp(cmd, "error") && argc == 4) {
        int api_key = -1;
        for (size_t i = 0; i < sizeof(control_requests) / sizeof(control_requests[0]); i++)
            if (!strcasecmp(argv[1], control_requests[i].name))
                api_key = control_requests[i].api_key;
        int64_t count;
        rd_kafka_resp_err_t err;
        if (api_key < 0)
            snprintf(reply, cap,
                     "error: unknown request '%s' (Produce, Fetch, OffsetCommit, Heartbeat, "
                     "InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, "
                     "TxnOffsetCommit)",
                     argv[1]);
        else if (!eddy_parse_i64(argv[2], 1, 100000, &count))
            snprintf(reply, cap, "error: count '%s' is not an integer in 1..100000", argv[2]);
        else if (!control_error_parse(argv[3], &err))
            snprintf(reply, cap,
                     "error: '%s' is not a Kafka error name (e.g. NOT_LEADER_FOR_PARTITION) "
                     "or a non-zero code",
                     argv[3]);
        else {
            rd_kafka_resp_err_t *errs = malloc((size_t)count * sizeof(*errs));
            if (!errs) {
                snprintf(reply, cap, "error: out of memory");
                return false;
            }
            for (int64_t i = 0; i < count; i++)
                errs[i] = err;
            rd_kafka_mock_push_request_errors_array(broker->mcluster, (int16_t)api_key,
                                                    (size_t)count, errs);
            free(errs);
            snprintf(reply, cap, "ok");
        }
        return false;
    }
    snprintf(reply, cap,
             "error: unknown command '%s' (error REQUEST COUNT ERR, down ID, up ID, quit)", cmd);
    return false;
}

/* Reads commands from stdin until quit, the end of stdin or a stop signal.
 * poll() with a timeout so that a signal is noticed while stdin is idle. */
static void control_loop(eddy_broker_t *broker)
{
    char buf[4096];
    size_t len = 0;
    bool quit = false, eof = false;
    while (!quit && !eof && !eddy_cli_stop) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int pr = poll(&pfd, 1, 100);
        if (pr < 0 && errno != EINTR) {
            eddy_log_error("control: poll on stdin: %s", strerror(errno));
            break;
        }
        if (pr <= 0)
            continue;
        ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            eof = true;
            if (len == 0)
                break;
            buf[len++] = '\n'; /* a last line without its newline still counts */
        } else {
            len += (size_t)n;
        }
        size_t start = 0;
        char *nl;
        while (!quit && (nl = memchr(buf + start, '\n', len - start))) {
            *nl = '\0';
            char *cmd = buf + start;
            start = (size_t)(nl - buf) + 1;
            size_t cl = strlen(cmd);
            while (cl && (cmd[cl - 1] == '\r' || cmd[cl - 1] == ' ' || cmd[cl - 1] == '\t'))
                cmd[--cl] = '\0';
            cmd += strspn(cmd, " \t");
            if (!*cmd || *cmd == '#')
                continue; /* blank lines and comments get no answer */
            char echo[256], reply[512];
            snprintf(echo, sizeof(echo), "%s", cmd);
            quit = control_apply(broker, cmd, reply, sizeof(reply));
            eddy_log_info("control: %s -> %s", echo, reply);
            printf("%s\n", reply);
            fflush(stdout);
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (len == sizeof(buf) - 1) {
            eddy_log_warn("control: command longer than %zu bytes dropped", sizeof(buf) - 2);
            printf("error: command too long\n");
            fflush(stdout);
            len = 0;
        }
    }
    if (quit)
        eddy_log_info("stopping on 'quit'");
    else if (eof)
        eddy_log_info("stopping: end of stdin");
    else
        eddy_log_info("stopping on signal");
}

#define MAX_TOPICS 64

int eddy_cmd_broker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"partitions", required_argument, NULL, 'p'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"topology", required_argument, NULL, 'T'},
        {"application-id", required_argument, NULL, 'a'},
        {"control", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t brokers = 3, partitions = 12;
    const char *topic_specs[MAX_TOPICS];
    int n_topics = 0;
    const char *bootstrap_file = NULL;
    const char *topology_files[8];
    int n_topologies = 0;
    const char *app_id = NULL;
    bool control = false;
    char errstr[512];

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!eddy_parse_i64(optarg, 1, 16, &brokers))
                return eddy_cli_usage_error("broker", "--brokers must be an integer in 1..16");
            break;
        case 't':
            if (n_topics == MAX_TOPICS)
                return eddy_cli_usage_error("broker", "at most %d --topic options", MAX_TOPICS);
            topic_specs[n_topics++] = optarg;
            break;
        case 'p':
            if (!eddy_parse_i64(optarg, 1, 10000, &partitions))
                return eddy_cli_usage_error("broker",
                                            "--partitions must be an integer in 1..10000");
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'T':
            if (n_topologies == 8)
                return eddy_cli_usage_error("broker", "at most 8 --topology options");
            topology_files[n_topologies++] = optarg;
            break;
        case 'a':
            app_id = optarg;
            break;
        case 'c':
            control = true;
            break;
        case 'h':
            fputs(broker_help, stdout);
            return EDDY_EXIT_OK;
        case ':':
            return eddy_cli_usage_error("broker", "option '%s' needs a value", argv[optind - 1]);
        default:
            return eddy_cli_usage_error("broker", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eddy_cli_usage_error("broker", "unexpected argument '%s'", argv[optind]);

    /* Validate every topic spec before starting anything. */
    char names[MAX_TOPICS][256];
    int parts[MAX_TOPICS];
    for (int i = 0; i < n_topics; i++)
        if (!eddy_topic_spec_parse(topic_specs[i], (int)partitions, names[i], sizeof(names[i]),
                                   &parts[i], errstr, sizeof(errstr)))
            return eddy_cli_usage_error("broker", "--topic %s", errstr);

    /* Topics a topology needs: its sources and sinks, and with an application id
     * the changelog of every store, one partition per source partition. */
    for (int f = 0; f < n_topologies; f++) {
        eddy_topology_t *topo = eddy_topology_load_file(topology_files[f], errstr, sizeof(errstr));
        if (!topo)
            return eddy_cli_usage_error("broker", "--topology %s", errstr);
        size_t n_needed = eddy_topology_source_count(topo) + 3 * (app_id != NULL);
        for (size_t i = 0; i < eddy_topology_store_count(topo); i++)
            n_needed += 1 + (app_id != NULL);
        if (n_topics + (int)n_needed > MAX_TOPICS) {
            eddy_topology_destroy(topo);
            return eddy_cli_usage_error("broker", "more than %d topics", MAX_TOPICS);
        }
        /* A source named by --topic keeps its count; changelogs follow the source. */
        int source_parts = (int)partitions;
        for (size_t i = 0; i < eddy_topology_source_count(topo); i++) {
            const char *src = eddy_topology_source_topic(topo, i);
            int p = (int)partitions;
            for (int j = 0; j < n_topics; j++)
                if (!strcmp(names[j], src))
                    p = parts[j];
            if (i == 0)
                source_parts = p;
            snprintf(names[n_topics], sizeof(names[0]), "%s", src);
            parts[n_topics++] = p;
        }
        for (size_t i = 0; i < eddy_topology_store_count(topo); i++) {
            const eddy_store_def_t *store = eddy_topology_store(topo, i);
            if (store->sink_topic) {
                snprintf(names[n_topics], sizeof(names[0]), "%s", store->sink_topic);
                parts[n_topics++] = (int)partitions;
            }
            if (app_id) {
                snprintf(names[n_topics], sizeof(names[0]), "%s-%s-changelog", app_id, store->name);
                parts[n_topics++] = source_parts;
            }
        }
        if (app_id) { /* the dead-letter topic, eddy run's default name */
            snprintf(names[n_topics], sizeof(names[0]), "%s-dlq", app_id);
            parts[n_topics++] = source_parts;
            /* where instances publish themselves (engine/instances.h) */
            eddy_instances_topic(app_id, names[n_topics], sizeof(names[0]));
            parts[n_topics++] = 1;
        }
        bool any_sink = false;
        for (size_t i = 0; i < eddy_topology_store_count(topo); i++)
            any_sink = any_sink || eddy_topology_store(topo, i)->sink_topic;
        if (app_id && any_sink) { /* where sink emission stands (engine/sink.h) */
            snprintf(names[n_topics], sizeof(names[0]), "%s-sinks-changelog", app_id);
            parts[n_topics++] = 1;
        }
        eddy_topology_destroy(topo);
    }
    for (int i = 0; i < n_topics; i++)
        if (!eddy_topic_name_valid(names[i], errstr, sizeof(errstr)))
            return eddy_cli_usage_error("broker", "%s", errstr);
    /* A topic named twice (by --topic and a topology) is created once, first wins. */
    int kept = 0;
    for (int i = 0; i < n_topics; i++) {
        bool seen = false;
        for (int j = 0; j < kept && !seen; j++)
            seen = !strcmp(names[j], names[i]);
        if (!seen) {
            memmove(names[kept], names[i], sizeof(names[0]));
            parts[kept++] = parts[i];
        }
    }
    n_topics = kept;

    eddy_cli_catch_stop_signals();
    eddy_log_set_thread_name("broker");
    fprintf(stderr,
            "eddy broker: in-memory test broker (librdkafka mock cluster, %d brokers), "
            "5 MiB retention per partition, nothing kept on exit; for real Kafka see "
            "docs/kafka.md\n",
            (int)brokers);

    eddy_broker_t *broker = eddy_broker_new((int)brokers, errstr, sizeof(errstr));
    if (!broker) {
        eddy_log_error("%s", errstr);
        return EDDY_EXIT_FAIL;
    }
    int rc = EDDY_EXIT_OK;
    for (int i = 0; i < n_topics; i++) {
        if (eddy_broker_create_topic(broker, names[i], parts[i], errstr, sizeof(errstr))) {
            eddy_log_error("%s", errstr);
            rc = EDDY_EXIT_FAIL;
            goto out;
        }
        eddy_log_info("created topic %s with %d partitions", names[i], parts[i]);
    }

    char line[4096];
    snprintf(line, sizeof(line), "bootstrap.servers=%s\n", eddy_broker_bootstraps(broker));
    if (bootstrap_file && write_file_atomic(bootstrap_file, line, errstr, sizeof(errstr))) {
        eddy_log_error("%s", errstr);
        rc = EDDY_EXIT_FAIL;
        goto out;
    }
    fputs(line, stdout);
    fflush(stdout);

    if (control) {
        control_loop(broker);
    } else {
        /* Poll the flag rather than pause(): the signal may land on a mock-cluster thread. */
        while (!eddy_cli_stop)
            eddy_sleep_ns(100 * 1000000, NULL);
        eddy_log_info("stopping on signal");
    }

out:
    eddy_broker_destroy(broker);
    if (bootstrap_file)
        unlink(bootstrap_file);
    return rc;
}
