/*
 * sink.c — the sink emitter (see sink.h). Each tick: find the final-window
 * cutoff per store from the partitions' committed stream times, read the merged
 * windows in [emitted, cutoff) through window_query, produce one JSON record per
 * window keyed by its group key and one progress record per store that moved to
 * the sinks changelog, all in one transaction (exactly_once_v2) or one flush
 * (at_least_once); only then does `emitted` move.
 *
 * Where emission stands is read back from the sinks changelog (read_committed,
 * last record per store wins) whenever this instance becomes the emitter: at the
 * start and each time it owns every partition again. Before reading, the
 * transactional producer's init_transactions has aborted whatever a previous
 * emitter with the same transactional.id left open, so what is read is final.
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

#define KAFKA_TIMEOUT_MS 10000 /* one transactional call, flush or read-back */
#define COMMIT_RETRIES   5

struct eddy_sink_s {
    eddy_runtime_t *rt;                        /* borrowed */
    rd_kafka_t *rk;                            /* the sink producer; NULL until (re)made */
    bool eos;                                  /* transactions (exactly_once_v2) */
    char txn_id[300];                          /* <application.id>-sinks */
    int64_t emitted[EDDY_TOPOLOGY_MAX_STORES]; /* windows starting before this are sent */
    bool has_sink[EDDY_TOPOLOGY_MAX_STORES];   /* store declares a sink */
    bool loaded;                               /* emitted[] read back since we own all */
    int64_t failed;                            /* deliveries failed since the last tick */
    bool warned_partial;                       /* logged that not all partitions are here */
    int64_t retry_after_ns;                    /* after a failure: wait until then */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    eddy_sink_t *sink = opaque;
    if (msg->err) {
        if (sink->failed++ == 0)
            eddy_log_error("sink delivery to %s failed: %s", rd_kafka_topic_name(msg->rkt),
                           rd_kafka_err2str(msg->err));
    }
}

static rd_kafka_t *make_producer(eddy_sink_t *sink, char *errstr, size_t errstr_size)
{
    const eddy_config_t *cfg = sink->rt->cfg;
    const char *const settings[][2] = {
        {"bootstrap.servers", cfg->bootstrap_servers},
        {"client.id", "eddy-sink"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.codec", "zstd"},
        {"linger.ms", "5"},
        {"log_level", "4"},
        {"transactional.id", sink->txn_id}, /* these two only with exactly_once_v2 */
        {"transaction.timeout.ms", "60000"},
    };
    size_t n = sizeof(settings) / sizeof(settings[0]) - (sink->eos ? 0 : 2);
    rd_kafka_conf_t *conf =
        eddy_config_kafka_conf("sink producer", settings, n, cfg->producer_props,
                               cfg->n_producer_props, errstr, errstr_size);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, sink);
    rd_kafka_t *rk =
        eddy_config_kafka_new(RD_KAFKA_PRODUCER, conf, "sink producer", errstr, errstr_size);
    if (!rk)
        return NULL;
    if (!sink->eos)
        return rk;
    /* Fences an older emitter with the same id and aborts what it left open. */
    rd_kafka_error_t *error = rd_kafka_init_transactions(rk, KAFKA_TIMEOUT_MS);
    if (error) {
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size,
                  "cannot start the sink's transactions as %s: %s", sink->txn_id,
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* Reads the sinks changelog to its (committed) end; the last record of each
 * store says where its emission stands. */
static eddy_err_t load_progress(eddy_sink_t *sink, char *errstr, size_t errstr_size)
{
    eddy_runtime_t *rt = sink->rt;
    const char *const settings[][2] = {
        {"bootstrap.servers", rt->cfg->bootstrap_servers},
        {"client.id", "eddy-sink-progress"},
        {"group.id", sink->txn_id}, /* never joined or committed: assign() only */
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"isolation.level", "read_committed"},
        {"log_level", "4"},
    };
    rd_kafka_conf_t *conf = eddy_config_kafka_conf(
        "sink progress reader", settings, sizeof(settings) / sizeof(settings[0]),
        rt->cfg->consumer_props, rt->cfg->n_consumer_props, errstr, errstr_size);
    if (!conf)
        return EDDY_ERR_INVALID;
    rd_kafka_t *rk =
        eddy_config_kafka_new(RD_KAFKA_CONSUMER, conf, "sink progress reader", errstr, errstr_size);
    if (!rk)
        return EDDY_ERR_KAFKA;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, rt->sinks_topic, 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int64_t emitted[EDDY_TOPOLOGY_MAX_STORES];
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++)
        emitted[i] = INT64_MIN;
    eddy_err_t err = EDDY_ERR_TIMEOUT;
    int64_t records = 0, deadline = eddy_mono_ns() + (int64_t)KAFKA_TIMEOUT_MS * 1000000;
    while (eddy_mono_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            err = EDDY_OK;
            break;
        }
        if (m->err) {
            eddy_log_warn("reading %s: %s", rt->sinks_topic, rd_kafka_message_errstr(m));
        } else {
            records++;
            json_t *v = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
            json_t *e = json_object_get(v, "emitted");
            for (size_t i = 0; i < eddy_topology_store_count(rt->topo) && json_is_integer(e); i++) {
                const char *name = eddy_topology_store(rt->topo, i)->name;
                if (m->key_len == strlen(name) && !memcmp(m->key, name, m->key_len))
                    emitted[i] = json_integer_value(e);
            }
            json_decref(v);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (err)
        return eddy_errf(err, errstr, errstr_size, "could not read %s to its end within %d ms",
                         rt->sinks_topic, KAFKA_TIMEOUT_MS);
    memcpy(sink->emitted, emitted, sizeof(emitted));
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++)
        if (sink->has_sink[i]) {
            if (emitted[i] == INT64_MIN)
                eddy_log_info("sink of %s: nothing emitted yet (%lld progress records read)",
                              eddy_topology_store(rt->topo, i)->name, (long long)records);
            else
                eddy_log_info("sink of %s: windows starting before %lld were emitted",
                              eddy_topology_store(rt->topo, i)->name, (long long)emitted[i]);
        }
    return EDDY_OK;
}

eddy_sink_t *eddy_sink_new(eddy_runtime_t *rt, char *errstr, size_t errstr_size)
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
    sink->eos = rt->cfg->guarantee == EDDY_EXACTLY_ONCE_V2;
    snprintf(sink->txn_id, sizeof(sink->txn_id), "%s-sinks", rt->cfg->application_id);
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++) {
        sink->has_sink[i] = eddy_topology_store(rt->topo, i)->sink_topic != NULL;
        sink->emitted[i] = INT64_MIN;
    }
    sink->rk = make_producer(sink, errstr, errstr_size);
    if (!sink->rk) {
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

static rd_kafka_resp_err_t produce(eddy_sink_t *sink, const char *topic, const void *key,
                                   size_t key_len, char *text)
{
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(sink->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                                    RD_KAFKA_V_VALUE(text, strlen(text)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(sink->rk, 10);
    if (err) {
        free(text);
        if (sink->failed++ == 0)
            eddy_log_error("cannot produce to %s: %s", topic, rd_kafka_err2str(err));
    }
    return err;
}

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
    if (produce(e->sink, e->topic, key, key_len, text) == RD_KAFKA_RESP_ERR_NO_ERROR)
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

/* Ends the tick's transaction (or flush). true if everything produced is in. */
static bool finish(eddy_sink_t *sink)
{
    if (!sink->eos) {
        rd_kafka_flush(sink->rk, KAFKA_TIMEOUT_MS);
        return sink->failed == 0 && rd_kafka_outq_len(sink->rk) == 0;
    }
    rd_kafka_error_t *error = NULL;
    if (sink->failed == 0)
        for (int attempt = 1;; attempt++) {
            error = rd_kafka_commit_transaction(sink->rk, KAFKA_TIMEOUT_MS);
            if (!error || !rd_kafka_error_is_retriable(error) || attempt == COMMIT_RETRIES)
                break;
            rd_kafka_error_destroy(error);
        }
    if (!error && sink->failed == 0)
        return true;
    bool fatal = error && rd_kafka_error_is_fatal(error);
    if (error) {
        eddy_log_error("sink transaction: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (!fatal) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(sink->rk, KAFKA_TIMEOUT_MS);
        fatal = e != NULL;
        if (e) {
            eddy_log_error("sink transaction abort: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    if (fatal) { /* a new producer, and read back where emission stands */
        rd_kafka_destroy(sink->rk);
        sink->rk = NULL;
        sink->loaded = false;
    }
    return false;
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
            sink->loaded = false; /* another instance may emit meanwhile */
            return;
        }
    sink->warned_partial = false;
    if (eddy_mono_ns() < sink->retry_after_ns)
        return;
    char errstr[512];
    if (!sink->rk && !(sink->rk = make_producer(sink, errstr, sizeof(errstr)))) {
        eddy_log_error("%s; retrying in 1 s", errstr);
        sink->retry_after_ns = eddy_mono_ns() + 1000000000;
        return;
    }
    if (!sink->loaded) {
        if (load_progress(sink, errstr, sizeof(errstr))) {
            eddy_log_error("sinks: %s; retrying in 1 s", errstr);
            sink->retry_after_ns = eddy_mono_ns() + 1000000000;
            return;
        }
        sink->loaded = true;
    }

    /* What this tick sends: final windows up to each store's cutoff, and for
     * "updates" stores the open windows. */
    int64_t cutoff[EDDY_TOPOLOGY_MAX_STORES];
    bool any = false;
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++) {
        const eddy_store_def_t *def = eddy_topology_store(rt->topo, i);
        cutoff[i] = sink->has_sink[i] ? final_cutoff(rt, def) : INT64_MIN;
        any = any || (sink->has_sink[i] &&
                      (cutoff[i] > sink->emitted[i] ||
                       (def->sink_emit == EDDY_EMIT_UPDATES && cutoff[i] != INT64_MIN)));
    }
    if (!any)
        return;
    sink->failed = 0;
    rd_kafka_error_t *error = sink->eos ? rd_kafka_begin_transaction(sink->rk) : NULL;
    if (error) {
        eddy_log_error("sink transaction: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_destroy(sink->rk);
        sink->rk = NULL;
        sink->loaded = false;
        return;
    }
    int64_t sent = 0;
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++) {
        if (!sink->has_sink[i])
            continue;
        const eddy_store_def_t *def = eddy_topology_store(rt->topo, i);
        emit_ctx_t e = {sink, (int)i, def->sink_topic, true, 0};
        if (cutoff[i] > sink->emitted[i]) {
            if (eddy_windows_merged(rt, (int)i, sink->emitted[i], cutoff[i], NULL, emit_window, &e,
                                    NULL, errstr, sizeof(errstr))) {
                eddy_log_error("sink %s: %s", def->name, errstr);
                sink->failed++;
                break;
            }
            json_t *progress = json_pack(
                "{s:s, s:I, s:s, s:I}", "store", def->name, "emitted", (json_int_t)cutoff[i],
                "server", rt->cfg->application_server, "ts", (json_int_t)eddy_now_ms());
            produce(sink, rt->sinks_topic, def->name, strlen(def->name),
                    json_dumps(progress, JSON_COMPACT));
            json_decref(progress);
        }
        if (def->sink_emit == EDDY_EMIT_UPDATES && cutoff[i] != INT64_MIN) {
            e.final = false;
            if (eddy_windows_merged(rt, (int)i, cutoff[i], INT64_MAX, NULL, emit_window, &e, NULL,
                                    errstr, sizeof(errstr))) {
                eddy_log_error("sink %s: %s", def->name, errstr);
                sink->failed++;
                break;
            }
        }
        sent += e.sent;
    }
    if (!finish(sink)) {
        eddy_log_error("sinks: %lld windows not confirmed; they will be sent again",
                       (long long)sent);
        return;
    }
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++)
        if (sink->has_sink[i] && cutoff[i] > sink->emitted[i])
            sink->emitted[i] = cutoff[i];
    rd_kafka_poll(sink->rk, 0);
}

void eddy_sink_destroy(eddy_sink_t *sink)
{
    if (!sink)
        return;
    if (sink->rk) {
        rd_kafka_flush(sink->rk, KAFKA_TIMEOUT_MS);
        rd_kafka_destroy(sink->rk);
    }
    free(sink);
}
