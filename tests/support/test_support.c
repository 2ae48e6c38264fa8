/*
 * test_support.c — see test_support.h.
 */
#define _GNU_SOURCE
#include "test_support.h"

#include "engine/broker.h"
#include "producer/gen.h"
#include "topology/topology_int.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void eddy_test_mkdtemp(const char *tag, char *out, size_t out_size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, out_size, "%s/eddy-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(out))
        fail_msg("mkdtemp(%s) failed", out);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void eddy_test_rmtree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *eddy_test_bin(void)
{
    const char *bin = getenv("EDDY_BIN");
    return bin && *bin ? bin : NULL;
}

int eddy_test_generate(const char *bootstrap, const char *topic, int kind, uint64_t seed,
                       int64_t count, int64_t start_ts, double span_s)
{
    eddy_gen_config_t cfg;
    eddy_gen_config_defaults(&cfg);
    cfg.bootstrap = bootstrap;
    cfg.topic = topic;
    cfg.kind = (eddy_gen_kind_t)kind;
    cfg.rate = 0;
    cfg.count = count;
    cfg.seed = seed;
    cfg.simulated_time = true;
    cfg.start_ts = start_ts;
    cfg.span_s = span_s;
    eddy_gen_stats_t stats;
    char errstr[512];
    if (eddy_gen_run(&cfg, NULL, &stats, errstr, sizeof(errstr)))
        fail_msg("gen: %s", errstr);
    assert_int_equal(stats.sent, count);
    assert_int_equal(stats.acked, count);
    assert_int_equal(stats.failed, 0);
    return stats.partitions;
}

int eddy_test_create_changelogs(struct eddy_broker_s *broker, const char *topology, const char *app,
                                int partitions)
{
    char path[512], errstr[512];
    if (topology[0] == '/')
        snprintf(path, sizeof(path), "%s", topology);
    else
        snprintf(path, sizeof(path), "%s/topology/examples/%s", EDDY_SOURCE_DIR, topology);
    eddy_topology_t *topo = eddy_topology_load_file(path, errstr, sizeof(errstr));
    if (!topo) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < eddy_topology_store_count(topo) && rc == 0; i++) {
        char name[300];
        snprintf(name, sizeof(name), "%s-%s-changelog", app, eddy_topology_store(topo, i)->name);
        if (eddy_broker_create_topic(broker, name, partitions, errstr, sizeof(errstr))) {
            fprintf(stderr, "%s\n", errstr);
            rc = -1;
        }
    }
    bool any_sink = false;
    for (size_t i = 0; i < eddy_topology_store_count(topo); i++)
        any_sink = any_sink || eddy_topology_store(topo, i)->sink_topic;
    char sinks[300]; /* where sink emission stands, for a topology with sinks */
    snprintf(sinks, sizeof(sinks), "%s-sinks-changelog", app);
    if (rc == 0 && any_sink && eddy_broker_create_topic(broker, sinks, 1, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s\n", errstr);
        rc = -1;
    }
    char dlq[300]; /* eddy run's default dead-letter topic */
    snprintf(dlq, sizeof(dlq), "%s-dlq", app);
    if (rc == 0 && eddy_broker_create_topic(broker, dlq, partitions, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s\n", errstr);
        rc = -1;
    }
    char instances[300]; /* where instances publish themselves (engine/instances.h) */
    snprintf(instances, sizeof(instances), "%s-instances", app);
    if (rc == 0 && eddy_broker_create_topic(broker, instances, 1, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s\n", errstr);
        rc = -1;
    }
    eddy_topology_destroy(topo);
    return rc;
}
