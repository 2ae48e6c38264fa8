/*
 * instances.c — publishing this instance and tracking its peers (see
 * instances.h). The record is JSON:
 *
 *   {"id":..., "server":"HOST:PORT", "application_id":..., "partitions":[running],
 *    "restoring":[...], "generation":N, "time":EPOCH_MS, "interval_ms":MS}
 *
 * The topic is read from the beginning (it is small: real Kafka compacts it, the
 * embedded broker's retention trims it), so liveness is judged by the record's
 * own time, not by when it was read: old records of dead instances never look
 * alive. That assumes instance clocks agree to well within 3 heartbeats.
 */
#include "engine/instances.h"
#include "engine/log.h"
#include "engine/util.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MAX_PEERS 64
#define POLL_MS   100

struct eddy_instances_s {
    eddy_runtime_t *rt;           /* borrowed */
    char topic[300];              /* <application.id>-instances */
    char id[160];                 /* this instance's id (record key) */
    rd_kafka_t *producer;         /* publishes this instance */
    rd_kafka_t *consumer;         /* reads every instance, assigned, no group */
    pthread_t thread;             /* run() */
    atomic_int stop;              /* set by eddy_instances_stop */
    pthread_mutex_t lock;         /* guards peers, n_peers, self */
    eddy_peer_t peers[MAX_PEERS]; /* the table, this instance excluded */
    size_t n_peers;               /* entries used */
    eddy_peer_t self;             /* what was last published */
};

void eddy_instances_topic(const char *application_id, char *buf, size_t size)
{
    snprintf(buf, size, "%s-instances", application_id);
}

const char *eddy_instances_id(const eddy_instances_t *inst)
{
    return inst->id;
}

static bool alive(const eddy_peer_t *p, int64_t now)
{
    return now - p->time_ms <= EDDY_INSTANCES_MISSED_BEATS * p->interval_ms;
}

static json_t *partitions_json(const bool *set)
{
    json_t *a = json_array();
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
        if (set[p])
            json_array_append_new(a, json_integer(p));
    return a;
}

static bool parse_partitions(json_t *a, bool *set)
{
    if (!json_is_array(a))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= EDDY_MAX_PARTITIONS)
            return false;
        set[json_integer_value(v)] = true;
    }
    return true;
}

bool eddy_instances_parse(const char *value, size_t len, eddy_peer_t *peer)
{
    memset(peer, 0, sizeof(*peer));
    json_t *j = json_loadb(value, len, 0, NULL);
    json_t *id = json_object_get(j, "id"), *server = json_object_get(j, "server");
    json_t *gen = json_object_get(j, "generation"), *t = json_object_get(j, "time");
    json_t *iv = json_object_get(j, "interval_ms");
    bool ok = json_is_string(id) && json_is_string(server) && json_is_integer(gen) &&
              json_is_integer(t) && json_is_integer(iv) && json_integer_value(iv) > 0 &&
              json_string_length(id) < sizeof(peer->id) &&
              json_string_length(server) < sizeof(peer->server) &&
              parse_partitions(json_object_get(j, "partitions"), peer->running) &&
              parse_partitions(json_object_get(j, "restoring"), peer->restoring);
    if (ok) {
        snprintf(peer->id, sizeof(peer->id), "%s", json_string_value(id));
        snprintf(peer->server, sizeof(peer->server), "%s", json_string_value(server));
        peer->generation = json_integer_value(gen);
        peer->time_ms = json_integer_value(t);
        peer->interval_ms = json_integer_value(iv);
    }
    json_decref(j);
    return ok;
}

/* Reads which partitions the stream threads own now into *self; true if that
 * differs from what *self said before. */
static bool snapshot_assignment(eddy_instances_t *inst, eddy_peer_t *self)
{
    bool changed = false;
    for (int p = 0; p < inst->rt->source_partitions; p++) {
        const eddy_partition_stats_t *ps = &inst->rt->metrics.parts[p];
        const bool owned = atomic_load(&ps->owner) != 0;
        const bool restoring = owned && atomic_load(&ps->state) == EDDY_TASK_RESTORING;
        changed |= self->running[p] != (owned && !restoring) || self->restoring[p] != restoring;
        self->running[p] = owned && !restoring;
        self->restoring[p] = restoring;
    }
    return changed;
}

/* Produces the record of *self (or a tombstone when leaving). */
static void publish(eddy_instances_t *inst, const eddy_peer_t *self, bool leaving)
{
    char *value = NULL;
    if (!leaving) {
        json_t *j = json_object();
        json_object_set_new(j, "id", json_string(self->id));
        json_object_set_new(j, "server", json_string(self->server));
        json_object_set_new(j, "application_id", json_string(inst->rt->cfg->application_id));
        json_object_set_new(j, "partitions", partitions_json(self->running));
        json_object_set_new(j, "restoring", partitions_json(self->restoring));
        json_object_set_new(j, "generation", json_integer(self->generation));
        json_object_set_new(j, "time", json_integer(self->time_ms));
        json_object_set_new(j, "interval_ms", json_integer(self->interval_ms));
        value = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!value)
            return;
    }
    rd_kafka_resp_err_t err =
        rd_kafka_producev(inst->producer, RD_KAFKA_V_TOPIC(inst->topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(inst->id, strlen(inst->id)),
                          RD_KAFKA_V_VALUE(value, value ? strlen(value) : 0),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err)
        eddy_log_warn("cannot publish this instance on %s: %s", inst->topic, rd_kafka_err2str(err));
    free(value);
}

/* Applies one record of the instances topic to the table. */
static void apply(eddy_instances_t *inst, const rd_kafka_message_t *m)
{
    if (!m->key || (m->key_len == strlen(inst->id) && !memcmp(m->key, inst->id, m->key_len)))
        return;
    eddy_peer_t peer;
    const bool tombstone = !m->payload;
    if (!tombstone && !eddy_instances_parse(m->payload, m->len, &peer)) {
        eddy_log_warn("%s [%lld]: not an instance record; ignored", inst->topic,
                      (long long)m->offset);
        return;
    }
    pthread_mutex_lock(&inst->lock);
    size_t i = 0;
    while (i < inst->n_peers && !(strlen(inst->peers[i].id) == m->key_len &&
                                  !memcmp(inst->peers[i].id, m->key, m->key_len)))
        i++;
    const int64_t now = eddy_now_ms();
    if (tombstone) {
        if (i < inst->n_peers)
            inst->peers[i] = inst->peers[--inst->n_peers];
    } else if (i < inst->n_peers) {
        if (peer.time_ms >= inst->peers[i].time_ms)
            inst->peers[i] = peer;
    } else {
        /* The table is full of live peers only if there are that many; drop the
         * long-gone first. */
        for (size_t k = 0; k < inst->n_peers;)
            if (!alive(&inst->peers[k], now))
                inst->peers[k] = inst->peers[--inst->n_peers];
            else
                k++;
        if (inst->n_peers < MAX_PEERS)
            inst->peers[inst->n_peers++] = peer;
    }
    pthread_mutex_unlock(&inst->lock);
}

static void *run(void *arg)
{
    eddy_instances_t *inst = arg;
    eddy_log_set_thread_name("instances");
    eddy_peer_t self;
    pthread_mutex_lock(&inst->lock);
    self = inst->self;
    pthread_mutex_unlock(&inst->lock);
    int64_t next_beat = 0;
    while (!atomic_load(&inst->stop)) {
        const bool changed = snapshot_assignment(inst, &self);
        if (changed || eddy_mono_ns() >= next_beat) {
            self.generation += changed;
            self.time_ms = eddy_now_ms();
            publish(inst, &self, false);
            pthread_mutex_lock(&inst->lock);
            inst->self = self;
            pthread_mutex_unlock(&inst->lock);
            next_beat = eddy_mono_ns() + self.interval_ms * 1000000;
        }
        rd_kafka_poll(inst->producer, 0);
        for (int timeout = POLL_MS;; timeout = 0) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(inst->consumer, timeout);
            if (!m)
                break;
            if (!m->err)
                apply(inst, m);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                eddy_log_warn("reading %s: %s", inst->topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        }
    }
    return NULL;
}

static rd_kafka_t *new_client(eddy_instances_t *inst, rd_kafka_type_t type, char *errstr,
                              size_t errstr_size)
{
    const eddy_config_t *cfg = inst->rt->cfg;
    const char *const consumer[][2] = {{"bootstrap.servers", cfg->bootstrap_servers},
                                       {"enable.auto.commit", "false"},
                                       {"enable.auto.offset.store", "false"},
                                       {"enable.partition.eof", "false"},
                                       {"log_level", "3"}};
    const char *const producer[][2] = {
        {"bootstrap.servers", cfg->bootstrap_servers}, {"linger.ms", "0"}, {"log_level", "3"}};
    const bool c = type == RD_KAFKA_CONSUMER;
    rd_kafka_conf_t *conf = eddy_config_kafka_conf(
        c ? "instances consumer" : "instances producer", c ? consumer : producer, c ? 5 : 3,
        c ? cfg->consumer_props : cfg->producer_props,
        c ? cfg->n_consumer_props : cfg->n_producer_props, errstr, errstr_size);
    if (!conf)
        return NULL;
    /* This consumer reads the whole topic by assignment and never joins a group
     * (it must not get source partitions); librdkafka still wants a group id for
     * assign(), so it gets one of its own that nobody commits to. */
    char group[400];
    snprintf(group, sizeof(group), "%s-reader", inst->id);
    if (c)
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    return eddy_config_kafka_new(type, conf, "instances client", errstr, errstr_size);
}

eddy_instances_t *eddy_instances_start(eddy_runtime_t *rt, char *errstr, size_t errstr_size)
{
    eddy_instances_t *inst = calloc(1, sizeof(*inst));
    if (!inst) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    inst->rt = rt;
    pthread_mutex_init(&inst->lock, NULL);
    eddy_instances_topic(rt->cfg->application_id, inst->topic, sizeof(inst->topic));
    uint32_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
        nonce = (uint32_t)eddy_mono_ns() ^ (uint32_t)getpid();
    snprintf(inst->id, sizeof(inst->id), "%.140s/%08x", rt->cfg->application_server, nonce);
    snprintf(inst->self.id, sizeof(inst->self.id), "%s", inst->id);
    snprintf(inst->self.server, sizeof(inst->self.server), "%s", rt->cfg->application_server);
    inst->self.interval_ms = rt->cfg->instances_heartbeat_ms;
    if (!(inst->producer = new_client(inst, RD_KAFKA_PRODUCER, errstr, errstr_size)) ||
        !(inst->consumer = new_client(inst, RD_KAFKA_CONSUMER, errstr, errstr_size)))
        goto err;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, inst->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t rerr = rd_kafka_assign(inst->consumer, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (rerr) {
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot read %s: %s", inst->topic,
                  rd_kafka_err2str(rerr));
        goto err;
    }
    if (pthread_create(&inst->thread, NULL, run, inst)) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "cannot start the instances thread");
        goto err;
    }
    eddy_log_info("instance %s publishes itself on %s", inst->id, inst->topic);
    return inst;
err:
    if (inst->consumer)
        rd_kafka_destroy(inst->consumer);
    if (inst->producer)
        rd_kafka_destroy(inst->producer);
    pthread_mutex_destroy(&inst->lock);
    free(inst);
    return NULL;
}

void eddy_instances_stop(eddy_instances_t *inst)
{
    if (!inst)
        return;
    atomic_store(&inst->stop, 1);
    pthread_join(inst->thread, NULL);
    publish(inst, &inst->self, true);
    /* No broker answered since the last commit: do not wait the 2 s for nothing. */
    const bool down = atomic_load(&inst->rt->metrics.brokers_down);
    if (rd_kafka_flush(inst->producer, down ? 100 : 2000))
        eddy_log_warn("could not publish that instance %s leaves; peers notice in %lld ms",
                      inst->id, (long long)(EDDY_INSTANCES_MISSED_BEATS * inst->self.interval_ms));
    rd_kafka_consumer_close(inst->consumer);
    rd_kafka_destroy(inst->consumer);
    rd_kafka_destroy(inst->producer);
    pthread_mutex_destroy(&inst->lock);
    free(inst);
}

size_t eddy_instances_peers(eddy_instances_t *inst, eddy_peer_t *out, size_t cap)
{
    const int64_t now = eddy_now_ms();
    size_t n = 0;
    pthread_mutex_lock(&inst->lock);
    for (size_t i = 0; i < inst->n_peers && n < cap; i++)
        if (alive(&inst->peers[i], now))
            out[n++] = inst->peers[i];
    pthread_mutex_unlock(&inst->lock);
    return n;
}

static json_t *peer_json(const eddy_peer_t *p, bool self, int64_t now)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(p->id));
    json_object_set_new(j, "server", json_string(p->server));
    json_object_set_new(j, "self", json_boolean(self));
    json_object_set_new(j, "partitions", partitions_json(p->running));
    json_object_set_new(j, "restoring", partitions_json(p->restoring));
    json_object_set_new(j, "generation", json_integer(p->generation));
    json_object_set_new(j, "last_seen_ms", json_integer(p->time_ms));
    json_object_set_new(j, "alive", json_boolean(self || alive(p, now)));
    return j;
}

json_t *eddy_instances_json(eddy_instances_t *inst)
{
    const int64_t now = eddy_now_ms();
    json_t *a = json_array();
    pthread_mutex_lock(&inst->lock);
    json_array_append_new(a, peer_json(&inst->self, true, now));
    for (size_t i = 0; i < inst->n_peers; i++)
        json_array_append_new(a, peer_json(&inst->peers[i], false, now));
    pthread_mutex_unlock(&inst->lock);
    return a;
}
