/*
 * app.c — `eddy run`: one eddy application instance. The main thread loads the
 * configuration and the topology, checks the source topic, opens the state
 * database, starts the stream threads and the HTTP query server, and then waits
 * for SIGINT/SIGTERM (or a failed thread) to stop them in reverse order. When a
 * reader finds the local state damaged, it waits for the stream threads to halt
 * (their tasks dropped), has the state moved aside and a fresh database opened
 * (engine/local_state.h), and lets them restore their tasks; the HTTP server
 * answers throughout.
 */
#include "engine/cli.h"
#include "engine/config.h"
#include "engine/instances.h"
#include "engine/local_state.h"
#include "engine/log.h"
#include "engine/runtime.h"
#include "engine/sink.h"
#include "engine/stream_thread.h"
#include "engine/topics.h"
#include "engine/util.h"
#include "query/api.h"

#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char run_help[] =
    "usage: eddy run --bootstrap SERVERS --topology FILE [options]\n"
    "\n"
    "Runs a topology: consumes its source topic with N stream threads (one task per\n"
    "partition, partitions split across every instance with the same application id),\n"
    "keeps windowed aggregates in RocksDB under STATE_DIR/APPLICATION_ID, and serves\n"
    "them over HTTP. Stops cleanly on SIGINT/SIGTERM (commits first).\n"
    "\n"
    "options (each also a setting of the --config file, Kafka Streams names):\n"
    "  --bootstrap SERVERS        bootstrap.servers\n"
    "  --topology FILE            topology (see docs/topology.md)\n"
    "  --state-dir DIR            state.dir (default /tmp/eddy-state)\n"
    "  --http HOST:PORT           application.server: where the HTTP API listens\n"
    "                             (default 127.0.0.1:8083; 'off' to disable)\n"
    "  --threads N                num.stream.threads (default 1)\n"
    "  --application-id ID        application.id (default eddy): consumer group and\n"
    "                             prefix of internal topics and state\n"
    "  --commit-interval-ms MS    commit.interval.ms (default 100)\n"
    "  --processing-guarantee G   exactly_once_v2 (default: Kafka transactions) or\n"
    "                             at_least_once (no transactions; see docs/running.md)\n"
    "  --config FILE              properties file: key=value lines, '#' comments; flags\n"
    "                             given on the command line win over it\n"
    "  -X key=value               a setting or librdkafka property (consumer.X and\n"
    "                             producer.X address one client); repeatable\n"
    "  -h, --help                 this help\n"
    "\n"
    "Every other setting (-X key=value or the --config file; docs/running.md):\n";

/* The settings the flags above set: --help lists the others from config.c. */
static const char *const flag_settings[] = {
    "bootstrap.servers",
    "topology",
    "state.dir",
    "application.server",
    "num.stream.threads",
    "application.id",
    "commit.interval.ms",
    "processing.guarantee",
    NULL,
};

/* Each store's changelog must have one partition per source partition. A missing
 * one is created through the Admin API (real Kafka: compacted, and deleted after
 * the store's retention plus a day, as Kafka Streams does for windowed stores). */
static eddy_err_t check_changelog(rd_kafka_t *rk, const eddy_config_t *cfg,
                                  const eddy_store_def_t *store, const char *topic,
                                  int source_partitions, char *errstr, size_t errstr_size)
{
    int parts = 0;
    eddy_err_t err =
        eddy_topics_check(rk, cfg->bootstrap_servers, "changelog", &topic, 1, &parts, NULL, 0);
    if (err == EDDY_ERR_NOTFOUND) {
        char retention[32];
        snprintf(retention, sizeof(retention), "%lld",
                 (long long)(store->window.retention_ms + 86400000));
        const char *const configs[][2] = {{"cleanup.policy", "compact,delete"},
                                          {"retention.ms", retention}};
        char why[512];
        if (eddy_topics_create(rk, topic, source_partitions, configs, 2, why, sizeof(why)))
            return eddy_errf(EDDY_ERR_NOTFOUND, errstr, errstr_size,
                             "changelog topic '%s' of store '%s' does not exist at %s and eddy "
                             "could not create it (%s); create it with %d partitions (embedded "
                             "broker: eddy broker --topology %s --application-id %s)",
                             topic, store->name, cfg->bootstrap_servers, why, source_partitions,
                             cfg->topology_path, cfg->application_id);
        eddy_log_info("created changelog topic %s with %d partitions", topic, source_partitions);
        return EDDY_OK;
    }
    if (err)
        return eddy_topics_check(rk, cfg->bootstrap_servers, "changelog", &topic, 1, NULL, errstr,
                                 errstr_size);
    if (parts != source_partitions)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "changelog topic '%s' has %d partitions, but the source topic has %d: "
                         "a changelog needs one partition per source partition; delete and "
                         "recreate it with %d (its state is rebuilt from the input only if the "
                         "input is complete)",
                         topic, parts, source_partitions, source_partitions);
    return EDDY_OK;
}

/* A topic eddy needs and may create: checked, and if missing created through the
 * Admin API with `partitions` and `configs`; otherwise an error that says what to
 * create (and `hint`, if any). *found gets its partition count (may be NULL). */
static eddy_err_t ensure_topic(rd_kafka_t *rk, const eddy_config_t *cfg, const char *role,
                               const char *topic, int partitions, const char *const (*configs)[2],
                               size_t n_configs, const char *hint, int *found, char *errstr,
                               size_t errstr_size)
{
    eddy_err_t err = eddy_topics_check(rk, cfg->bootstrap_servers, role, &topic, 1, found, NULL, 0);
    if (err != EDDY_ERR_NOTFOUND)
        return err ? eddy_topics_check(rk, cfg->bootstrap_servers, role, &topic, 1, found, errstr,
                                       errstr_size)
                   : EDDY_OK;
    char why[512];
    if (eddy_topics_create(rk, topic, partitions, configs, n_configs, why, sizeof(why)))
        return eddy_errf(EDDY_ERR_NOTFOUND, errstr, errstr_size,
                         "%s topic '%s' does not exist at %s and eddy could not create it (%s); "
                         "create it with %d partition%s (embedded broker: eddy broker "
                         "--topology %s --application-id %s)%s",
                         role, topic, cfg->bootstrap_servers, why, partitions,
                         partitions == 1 ? "" : "s", cfg->topology_path, cfg->application_id,
                         hint ? hint : "");
    eddy_log_info("created %s topic %s with %d partition%s", role, topic, partitions,
                  partitions == 1 ? "" : "s");
    if (found)
        *found = partitions;
    return EDDY_OK;
}

/* The dead-letter topic may have any partition count (a task writes to partition
 * <its partition> % count); a missing one gets the source's, kept for 7 days. The
 * instances topic (engine/instances.h) and the sinks changelog (engine/sink.h)
 * have one partition and are compacted (one live record per instance or store). */
static eddy_err_t check_internal_topics(rd_kafka_t *rk, eddy_runtime_t *rt, bool any_sink,
                                        char *errstr, size_t errstr_size)
{
    const eddy_config_t *cfg = rt->cfg;
    const char *const dlq_configs[][2] = {{"cleanup.policy", "delete"},
                                          {"retention.ms", "604800000"}};
    const char *const compact[][2] = {{"cleanup.policy", "compact"}};
    char instances[300];
    eddy_instances_topic(cfg->application_id, instances, sizeof(instances));
    eddy_err_t err =
        ensure_topic(rk, cfg, "dead-letter", rt->dlq_topic, rt->source_partitions, dlq_configs, 2,
                     ", or name another one with errors.deadletterqueue.topic.name",
                     &rt->dlq_partitions, errstr, errstr_size);
    if (!err)
        err = ensure_topic(rk, cfg, "instances", instances, 1, compact, 1, NULL, NULL, errstr,
                           errstr_size);
    if (!err && any_sink)
        err = ensure_topic(rk, cfg, "sinks changelog", rt->sinks_topic, 1, compact, 1, NULL, NULL,
                           errstr, errstr_size);
    return err;
}

/* Checks the source topic (and learns its partition count), every sink topic,
 * every changelog topic, the dead-letter topic and the instances topic. */
static eddy_err_t check_topics(eddy_runtime_t *rt, char *errstr, size_t errstr_size)
{
    const eddy_config_t *cfg = rt->cfg;
    const eddy_topology_t *topo = rt->topo;
    const char *const settings[][2] = {{"bootstrap.servers", cfg->bootstrap_servers},
                                       {"log_level", "3"}};
    rd_kafka_conf_t *conf =
        eddy_config_kafka_conf("metadata client", settings, 2, cfg->consumer_props,
                               cfg->n_consumer_props, errstr, errstr_size);
    if (!conf)
        return EDDY_ERR_INVALID;
    rd_kafka_conf_t *probe = rd_kafka_conf_dup(conf);
    if (eddy_topics_reach(probe, cfg->bootstrap_servers, "--bootstrap (bootstrap.servers)", errstr,
                          errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return EDDY_ERR_KAFKA;
    }
    rd_kafka_t *rk =
        eddy_config_kafka_new(RD_KAFKA_PRODUCER, conf, "metadata client", errstr, errstr_size);
    if (!rk)
        return EDDY_ERR_KAFKA;
    const char *source = rt->source_topic;
    eddy_err_t err = eddy_topics_check(rk, cfg->bootstrap_servers, "source", &source, 1,
                                       &rt->source_partitions, errstr, errstr_size);
    if (!err && rt->source_partitions > EDDY_MAX_PARTITIONS)
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                        "source topic '%s' has %d partitions; eddy handles at most %d", source,
                        rt->source_partitions, EDDY_MAX_PARTITIONS);
    bool any_sink = false;
    for (size_t i = 0; !err && i < eddy_topology_store_count(topo); i++) {
        const eddy_store_def_t *store = eddy_topology_store(topo, i);
        const char *sink = store->sink_topic;
        any_sink = any_sink || sink;
        if (sink)
            err = eddy_topics_check(rk, cfg->bootstrap_servers, "sink", &sink, 1, NULL, errstr,
                                    errstr_size);
        if (!err)
            err = check_changelog(rk, cfg, store, rt->changelog_topics[i], rt->source_partitions,
                                  errstr, errstr_size);
    }
    if (!err)
        err = check_internal_topics(rk, rt, any_sink, errstr, errstr_size);
    rd_kafka_destroy(rk);
    return err;
}

/* Damaged local state was found while running. Every stream thread sees it,
 * drops its tasks without a commit (what they did since their last commit is
 * redone) and halts; a thread that failed on it instead is joined. Then the
 * state is moved aside and a fresh database opened, the halted threads create
 * their tasks again, which restore from the changelogs, and failed ones are
 * started anew. The consumers of halted threads stay in the group. With
 * state.corruption.action=fail, or when the reset fails, an error: eddy stops
 * (the caller stops the threads). */
static eddy_err_t reset_local_state(eddy_runtime_t *rt, eddy_stream_thread_t **threads)
{
    const int n = rt->cfg->num_stream_threads;
    char errstr[1024], why[512];
    eddy_local_state_noticed(rt->local_state);
    eddy_statedb_damage(rt->db, why, sizeof(why));
    if (eddy_local_state_fails(rt->local_state)) {
        eddy_log_error("local state in %s/%s is damaged (%s); stopping "
                       "(state.corruption.action=fail): move the dir away or set "
                       "state.corruption.action=restore, and eddy restores it from the "
                       "changelogs",
                       rt->cfg->state_dir, rt->cfg->application_id, why);
        return EDDY_ERR_CORRUPT;
    }
    eddy_log_error("local state is damaged (%s): halting the stream threads to move it aside", why);
    for (int i = 0; i < n; i++) {
        while (threads[i] && !eddy_stream_thread_halted(threads[i]) &&
               !eddy_stream_thread_failed(threads[i]))
            eddy_sleep_ns(2 * 1000000, NULL);
        if (threads[i] && !eddy_stream_thread_halted(threads[i])) {
            eddy_stream_thread_join(threads[i]); /* failed: its exit may still read rt->db */
            threads[i] = NULL;
        }
    }
    if (eddy_local_state_reset(rt->local_state, errstr, sizeof(errstr))) {
        eddy_log_error("%s", errstr);
        return EDDY_ERR_CORRUPT;
    }
    for (int i = 0; i < n; i++)
        if (!threads[i] &&
            !(threads[i] = eddy_stream_thread_start(rt, i, errstr, sizeof(errstr)))) {
            eddy_log_error("%s", errstr);
            return EDDY_ERR_STORE;
        }
    eddy_local_state_reset_done(rt->local_state);
    return EDDY_OK;
}

/* Parses the command line into cfg: --config first, so flags override the file. */
static int parse_args(int argc, char **argv, eddy_config_t *cfg)
{
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topology", required_argument, NULL, 't'},
        {"state-dir", required_argument, NULL, 's'},
        {"http", required_argument, NULL, 'H'},
        {"threads", required_argument, NULL, 'n'},
        {"application-id", required_argument, NULL, 'a'},
        {"commit-interval-ms", required_argument, NULL, 'c'},
        {"processing-guarantee", required_argument, NULL, 'g'},
        {"config", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const keys[128] = {
        ['b'] = "bootstrap.servers",  ['t'] = "topology",
        ['s'] = "state.dir",          ['H'] = "application.server",
        ['n'] = "num.stream.threads", ['a'] = "application.id",
        ['c'] = "commit.interval.ms", ['g'] = "processing.guarantee",
    };
    char errstr[1024];
    int c;
    for (int pass = 0; pass < 2; pass++) {
        opterr = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, ":X:h", opts, NULL)) != -1) {
            if (c == 'h') {
                fputs(run_help, stdout);
                eddy_config_help(stdout, flag_settings);
                return -1;
            }
            if (c == ':')
                return eddy_cli_usage_error("run", "option '%s' needs a value", argv[optind - 1]);
            if (c == '?')
                return eddy_cli_usage_error("run", "unknown option '%s'", argv[optind - 1]);
            if (c == 'C') {
                if (pass == 0 && eddy_config_load_file(cfg, optarg, errstr, sizeof(errstr)))
                    return eddy_cli_usage_error("run", "%s", errstr);
                continue;
            }
            if (pass == 0)
                continue;
            char origin[32];
            if (c == 'X') {
                char key[256];
                const char *eq = strchr(optarg, '=');
                if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof(key))
                    return eddy_cli_usage_error("run", "-X '%s' is not key=value", optarg);
                memcpy(key, optarg, (size_t)(eq - optarg));
                key[eq - optarg] = '\0';
                if (eddy_config_set(cfg, key, eq + 1, "-X", errstr, sizeof(errstr)))
                    return eddy_cli_usage_error("run", "%s", errstr);
                continue;
            }
            const char *value = optarg;
            if (c == 'H' && !strcmp(value, "off"))
                value = "";
            /* The flag, not argv[optind - 1]: that is the value for "--threads 0". */
            for (const struct option *o = opts; o->name; o++)
                if (o->val == c)
                    snprintf(origin, sizeof(origin), "--%s", o->name);
            if (c == 'b' && !strncmp(value, "bootstrap.servers=", 18))
                value += 18;
            if (eddy_config_set(cfg, keys[c], value, origin, errstr, sizeof(errstr)))
                return eddy_cli_usage_error("run", "%s", errstr);
        }
    }
    if (optind < argc)
        return eddy_cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
    if (eddy_config_check(cfg, errstr, sizeof(errstr)))
        return eddy_cli_usage_error("run", "%s", errstr);
    return 0;
}

int eddy_cmd_run(int argc, char **argv)
{
    eddy_config_t cfg;
    eddy_config_init(&cfg);
    int rc = parse_args(argc, argv, &cfg);
    if (rc) {
        eddy_config_free(&cfg);
        return rc < 0 ? EDDY_EXIT_OK : rc;
    }

    char errstr[1024];
    eddy_runtime_t *rt = calloc(1, sizeof(*rt));
    eddy_stream_thread_t *threads[64] = {0};
    eddy_api_t *api = NULL;
    eddy_sink_t *sink = NULL;
    eddy_topology_t *topo = NULL;
    eddy_local_state_t *local_state = NULL;
    rc = EDDY_EXIT_FAIL;
    if (!rt || eddy_metrics_init(&rt->metrics)) {
        fprintf(stderr, "eddy run: out of memory\n");
        free(rt);
        eddy_config_free(&cfg);
        return EDDY_EXIT_FAIL;
    }
    eddy_cli_catch_stop_signals();

    topo = eddy_topology_load_file(cfg.topology_path, errstr, sizeof(errstr));
    if (!topo) {
        fprintf(stderr, "eddy run: %s\n", errstr);
        goto out;
    }
    if (eddy_topology_source_count(topo) != 1) {
        fprintf(stderr,
                "eddy run: %s: eddy runs topologies with exactly one source topic for "
                "now\n",
                cfg.topology_path);
        goto out;
    }
    rt->cfg = &cfg;
    rt->topo = topo;
    rt->source_topic = eddy_topology_source_topic(topo, 0);
    for (size_t i = 0; i < eddy_topology_store_count(topo); i++)
        snprintf(rt->changelog_topics[i], sizeof(rt->changelog_topics[i]), "%s-%s-changelog",
                 cfg.application_id, eddy_topology_store(topo, i)->name);
    snprintf(rt->sinks_topic, sizeof(rt->sinks_topic), "%s-sinks-changelog", cfg.application_id);
    if (*cfg.dlq_topic)
        snprintf(rt->dlq_topic, sizeof(rt->dlq_topic), "%s", cfg.dlq_topic);
    else
        snprintf(rt->dlq_topic, sizeof(rt->dlq_topic), "%s-dlq", cfg.application_id);
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        atomic_store(&rt->metrics.parts[p].next_offset, -1);
        atomic_store(&rt->metrics.parts[p].committed_offset, -1);
        atomic_store(&rt->metrics.parts[p].stream_time, INT64_MIN);
        atomic_store(&rt->metrics.parts[p].committed_stream_time, INT64_MIN);
        atomic_store(&rt->metrics.parts[p].low_watermark, -1);
        atomic_store(&rt->metrics.parts[p].high_watermark, -1);
    }
    eddy_config_log(&cfg);

    /* The listen address first: a port in use stops eddy before it touches Kafka
     * (creates topics, joins the group or publishes itself). */
    if (*cfg.application_server) {
        api = eddy_api_new(rt, cfg.application_server, errstr, sizeof(errstr));
        if (!api) {
            eddy_log_error("%s; set another address with --http HOST:PORT (application.server), "
                           "or --http off",
                           errstr);
            goto out;
        }
    }
    if (check_topics(rt, errstr, sizeof(errstr))) {
        eddy_log_error("%s", errstr);
        goto out;
    }

    size_t n_stores = eddy_topology_store_count(topo);
    for (size_t i = 0; i < n_stores; i++) {
        rt->layouts[i] = eddy_agg_layout_new(eddy_topology_store(topo, i), errstr, sizeof(errstr));
        if (!rt->layouts[i]) {
            eddy_log_error("%s", errstr);
            goto out;
        }
    }
    /* Creates <state.dir>/<application.id> (and its parents) as needed. */
    local_state = eddy_local_state_open(rt, errstr, sizeof(errstr));
    if (!local_state) {
        eddy_log_error("%s", errstr);
        goto out;
    }

    if (*cfg.application_server) {
        /* Peers find this instance only if it serves queries. */
        rt->instances = eddy_instances_start(rt, errstr, sizeof(errstr));
        if (!rt->instances) {
            eddy_log_error("%s", errstr);
            goto out;
        }
        if (eddy_api_start(api, errstr, sizeof(errstr))) {
            eddy_log_error("%s", errstr);
            goto out;
        }
    }
    sink = eddy_sink_new(rt, errstr, sizeof(errstr));
    if (!sink && *errstr) {
        eddy_log_error("%s", errstr);
        goto out;
    }
    for (int i = 0; i < cfg.num_stream_threads; i++) {
        threads[i] = eddy_stream_thread_start(rt, i, errstr, sizeof(errstr));
        if (!threads[i]) {
            eddy_log_error("%s", errstr);
            goto stop;
        }
    }
    eddy_log_info("running %s: %zu stores over %s (%d partitions), %d stream threads%s%s",
                  cfg.topology_path, n_stores, rt->source_topic, rt->source_partitions,
                  cfg.num_stream_threads, *cfg.application_server ? ", HTTP on " : "",
                  cfg.application_server);

    rc = EDDY_EXIT_OK;
    int64_t next_sink_tick = eddy_mono_ns();
    while (!eddy_cli_stop) {
        eddy_sleep_ns(100 * 1000000, NULL);
        /* Damage first: a thread that failed on the damaged state is reset too. */
        if (eddy_local_state_damaged(local_state)) {
            if (reset_local_state(rt, threads)) {
                rc = EDDY_EXIT_FAIL;
                break;
            }
            continue;
        }
        if (sink && eddy_mono_ns() >= next_sink_tick) {
            eddy_sink_tick(sink);
            next_sink_tick = eddy_mono_ns() + cfg.commit_interval_ms * 1000000;
        }
        for (int i = 0; i < cfg.num_stream_threads; i++)
            if (threads[i] && eddy_stream_thread_failed(threads[i])) {
                eddy_log_error("a stream thread failed; stopping");
                rc = EDDY_EXIT_FAIL;
                eddy_cli_stop = 1;
            }
    }
    eddy_log_info("stopping");
stop:
    for (int i = 0; i < cfg.num_stream_threads; i++)
        if (threads[i])
            eddy_stream_thread_signal_stop(threads[i]);
    for (int i = 0; i < cfg.num_stream_threads; i++)
        eddy_stream_thread_join(threads[i]);
    if (sink)
        eddy_sink_tick(sink); /* what the final commits closed */
out:
    eddy_sink_destroy(sink);
    eddy_api_stop(api);
    eddy_instances_stop(rt->instances); /* after the API: queries read its table */
    eddy_local_state_close(local_state, rc == EDDY_EXIT_OK);
    for (size_t i = 0; i < EDDY_TOPOLOGY_MAX_STORES; i++)
        eddy_agg_layout_destroy(rt->layouts[i]);
    eddy_topology_destroy(topo);
    eddy_metrics_free(&rt->metrics);
    free(rt);
    eddy_config_free(&cfg);
    return rc;
}
