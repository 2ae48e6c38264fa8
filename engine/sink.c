/*
 * sink.c — the sink emitter (see sink.h). Each tick: find the final-window
 * cutoff per store from the partitions' committed stream times, read the merged
 * windows in [emitted, cutoff) through window_query, produce one JSON record per
 * window keyed by its group key, wait for the acks, then save the new cutoff.
 */
#include "engine/sink.h"
#include "engine/log.h"
#include "engine/util.h"
#include "query/window_query.h"

#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLUSH_TIMEOUT_MS 10000

struct eddy_sink_s {
    eddy_runtime_t *rt;                        /* borrowed */
    rd_kafka_t *rk;                            /* the sink producer */
    char path[4096];                           /* sinks.json */
    int64_t emitted[EDDY_TOPOLOGY_MAX_STORES]; /* windows starting before this are sent */
    bool has_sink[EDDY_TOPOLOGY_MAX_STORES];   /* store declares a sink */
    int64_t failed;                            /* deliveries failed since the last tick */
    bool warned_partial;                       /* logged that not all partitions are here */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    eddy_sink_t *sink = opaque;
    if (msg->err) {
        if (sink->failed++ == 0)
            eddy_log_error("sink delivery to %s failed: %s", rd_kafka_topic_name(msg->rkt),
                           rd_kafka_err2str(msg->err));
    }
}

static void load_state(eddy_sink_t *sink)
{
    json_t *root = json_load_file(sink->path, 0, NULL);
    for (size_t i = 0; i < eddy_topology_store_count(sink->rt->topo); i++) {
        json_t *v = json_object_get(root, eddy_topology_store(sink->rt->topo, i)->name);
        sink->emitted[i] = json_is_integer(v) ? json_integer_value(v) : INT64_MIN;
    }
    json_decref(root);
}

static int save_state(eddy_sink_t *sink)
{
    json_t *root = json_object();
    for (size_t i = 0; i < eddy_topology_store_count(sink->rt->topo); i++)
        if (sink->has_sink[i])
            json_object_set_new(root, eddy_topology_store(sink->rt->topo, i)->name,
                                json_integer(sink->emitted[i]));
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", sink->path);
    int rc = json_dump_file(root, tmp, JSON_COMPACT);
    json_decref(root);
    if (rc == 0 && rename(tmp, sink->path) == 0)
        return 0;
    eddy_log_error("cannot save %s; windows may be sent again after a restart", sink->path);
    return -1;
}

eddy_sink_t *eddy_sink_new(eddy_runtime_t *rt, const char *dir, char *errstr, size_t errstr_size)
{
    if (errstr_size)
        errstr[0] = '\0';
    bool any = false;
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++)
        any = any || eddy_topology_store(rt->topo, i)->sink_topic;
    if (!any)
        return NULL;
    eddy_sink_t *sink = calloc(1, sizeof(*sink));
    sink->rt = rt;
    snprintf(sink->path, sizeof(sink->path), "%s/sinks.json", dir);
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++)
        sink->has_sink[i] = eddy_topology_store(rt->topo, i)->sink_topic != NULL;
    load_state(sink);

    const char *const settings[][2] = {
        {"bootstrap.servers", rt->cfg->bootstrap_servers},
        {"client.id", "eddy-sink"},
        {"enable.idempotence", "true"},
        {"compression.codec", "zstd"},
        {"linger.ms", "5"},
        {"log_level", "4"},
    };
    rd_kafka_conf_t *conf = eddy_config_kafka_conf(
        "sink producer", settings, sizeof(settings) / sizeof(settings[0]), rt->cfg->producer_props,
        rt->cfg->n_producer_props, errstr, errstr_size);
    if (!conf) {
        free(sink);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, sink);
    char rderr[512];
    sink->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!sink->rk) {
        rd_kafka_conf_destroy(conf);
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot create the sink producer: %s",
                  rderr);
        free(sink);
        return NULL;
    }
    return sink;
}

typedef struct emit_ctx_s {
    eddy_sink_t *sink; /* the emitter */
    int store;         /* store index */
    const char *topic; /* its sink topic */
    bool final;        /* the windows are closed */
    int64_t sent;      /* records produced */
} emit_ctx_t;

static void emit_window(int64_t start, const char *key, size_t key_len, const eddy_agg_t *agg,
                        void *opaque)
{
    emit_ctx_t *e = opaque;
    json_t *w = eddy_window_to_json(e->sink->rt, e->store, start, key, key_len, agg);
    json_object_set_new(
        w, "store", json_string(eddy_topology_store(e->sink->rt->topo, (size_t)e->store)->name));
    json_object_set_new(w, "final", json_boolean(e->final));
    char *text = json_dumps(w, JSON_COMPACT);
    json_decref(w);
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(
                e->sink->rk, RD_KAFKA_V_TOPIC(e->topic), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_VALUE(text, strlen(text)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(e->sink->rk, 10);
    if (err) {
        free(text);
        e->sink->failed++;
        return;
    }
    e->sent++;
}

/* The start below which every window of `def` is final: a window closes when
 * stream time reaches its end plus grace, in every partition. INT64_MIN if not
 * known yet. */
static int64_t final_cutoff(const eddy_runtime_t *rt, const eddy_store_def_t *def)
{
    int64_t min_time = INT64_MAX;
    for (int p = 0; p < rt->source_partitions; p++) {
        int64_t t = atomic_load(&rt->metrics.parts[p].committed_stream_time);
        if (t == INT64_MIN)
            return INT64_MIN; /* a partition without data yet could still add to any window */
        if (t < min_time)
            min_time = t;
    }
    return min_time - def->window.size_ms - def->window.grace_ms + 1;
}

void eddy_sink_tick(eddy_sink_t *sink)
{
    eddy_runtime_t *rt = sink->rt;
    for (int p = 0; p < rt->source_partitions; p++)
        if (!atomic_load(&rt->metrics.parts[p].owner)) {
            if (!sink->warned_partial)
                eddy_log_info("sinks wait: this instance does not own every partition of %s",
                              rt->source_topic);
            sink->warned_partial = true;
            return;
        }
    sink->warned_partial = false;
    bool advanced = false;
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++) {
        if (!sink->has_sink[i])
            continue;
        const eddy_store_def_t *def = eddy_topology_store(rt->topo, i);
        int64_t cutoff = final_cutoff(rt, def);
        char errstr[256];
        emit_ctx_t e = {sink, (int)i, def->sink_topic, true, 0};
        if (cutoff > sink->emitted[i]) {
            sink->failed = 0;
            if (eddy_windows_merged(rt, (int)i, sink->emitted[i], cutoff, NULL, emit_window, &e,
                                    NULL, errstr, sizeof(errstr))) {
                eddy_log_error("sink %s: %s", def->name, errstr);
                continue;
            }
            rd_kafka_flush(sink->rk, FLUSH_TIMEOUT_MS);
            if (sink->failed || rd_kafka_outq_len(sink->rk) > 0) {
                eddy_log_error("sink %s: %lld windows not confirmed; will send them again",
                               def->name, (long long)sink->failed);
                continue;
            }
            sink->emitted[i] = cutoff;
            advanced = true;
        }
        if (def->sink_emit == EDDY_EMIT_UPDATES && cutoff != INT64_MIN) {
            e.final = false;
            eddy_windows_merged(rt, (int)i, cutoff, INT64_MAX, NULL, emit_window, &e, NULL, errstr,
                                sizeof(errstr));
        }
    }
    rd_kafka_poll(sink->rk, 0);
    if (advanced)
        save_state(sink);
}

void eddy_sink_destroy(eddy_sink_t *sink)
{
    if (!sink)
        return;
    rd_kafka_flush(sink->rk, FLUSH_TIMEOUT_MS);
    rd_kafka_destroy(sink->rk);
    free(sink);
}
