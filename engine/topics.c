/*
 * topics.c — topic existence checks (see topics.h). Asks for all topics' metadata
 * without naming any, because naming a topic in a metadata request is what makes
 * an auto-creating broker create it. eddy_topics_reach asks first, with a quiet
 * client of its own, so an unreachable cluster is one line, not librdkafka's log.
 */
#include "engine/topics.h"
#include "engine/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define METADATA_TIMEOUT_MS 10000
#define REACH_TIMEOUT_NS    (10 * 1000000000LL) /* at most, while brokers answer at all */
#define REACH_DOWN_NS       (2 * 1000000000LL)  /* all brokers down for this long: give up */
#define REACH_POLL_MS       250

typedef struct reach_s {
    char reason[256]; /* the last client error, trimmed to what a user acts on */
    bool all_down;    /* librdkafka reported every broker down */
} reach_t;

/* Keeps "Connect to ipv4#127.0.0.1:1 failed: Connection refused" of
 * "127.0.0.1:1/bootstrap: Connect to ... refused (after 0ms in state CONNECT)". */
static void on_reach_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    reach_t *r = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        r->all_down = true;
        return;
    }
    const char *start = reason, *colon = strstr(reason, ": "), *space = strchr(reason, ' ');
    if (colon && memchr(reason, '/', (size_t)(colon - reason)) && (!space || colon < space))
        start = colon + 2; /* the broker's name: the message names the bootstrap */
    size_t len = strlen(start);
    const char *after = strstr(start, " (after ");
    if (after)
        len = (size_t)(after - start);
    snprintf(r->reason, sizeof(r->reason), "%.*s", (int)len, start);
}

eddy_err_t eddy_topics_reach(rd_kafka_conf_t *conf, const char *bootstrap, const char *setting,
                             char *errstr, size_t errstr_size)
{
    reach_t r = {.reason = ""};
    char rderr[256];
    rd_kafka_conf_set_error_cb(conf, on_reach_error);
    rd_kafka_conf_set_opaque(conf, &r);
    rd_kafka_conf_set_dr_msg_cb(conf, NULL);
    if (rd_kafka_conf_set(conf, "log_level", "0", rderr, sizeof(rderr)) ||
        rd_kafka_conf_set(conf, "client.id", "eddy-reach", rderr, sizeof(rderr))) {
        rd_kafka_conf_destroy(conf);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "metadata client: %s", rderr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot create a client for %s: %s",
                         bootstrap, rderr);
    }
    int64_t start = eddy_mono_ns();
    rd_kafka_resp_err_t err;
    for (;;) {
        const struct rd_kafka_metadata *md;
        err = rd_kafka_metadata(rk, 0, NULL, &md, REACH_POLL_MS);
        if (!err) {
            rd_kafka_metadata_destroy(md);
            break;
        }
        rd_kafka_poll(rk, 0); /* serves on_reach_error */
        int64_t waited = eddy_mono_ns() - start;
        if ((r.all_down && waited >= REACH_DOWN_NS) || waited >= REACH_TIMEOUT_NS)
            break;
    }
    rd_kafka_destroy(rk);
    if (!err)
        return EDDY_OK;
    return eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size,
                     "cannot reach Kafka at %s: %s; check %s and that the brokers are up",
                     bootstrap, *r.reason ? r.reason : rd_kafka_err2str(err), setting);
}

eddy_err_t eddy_topics_check(rd_kafka_t *rk, const char *bootstrap, const char *role,
                             const char *const *topics, int n, int *partitions, char *errstr,
                             size_t errstr_size)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, METADATA_TIMEOUT_MS);
    if (err)
        return eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot reach Kafka at %s: %s",
                         bootstrap, rd_kafka_err2str(err));
    eddy_err_t result = EDDY_OK;
    for (int t = 0; t < n && !result; t++) {
        int count = 0;
        for (int i = 0; i < md->topic_cnt; i++)
            if (!strcmp(md->topics[i].topic, topics[t]) && !md->topics[i].err)
                count = md->topics[i].partition_cnt;
        if (partitions)
            partitions[t] = count;
        if (count == 0)
            result = eddy_errf(EDDY_ERR_NOTFOUND, errstr, errstr_size,
                               "%s topic '%s' does not exist at %s; create it first (embedded: "
                               "eddy broker --topic %s:12)",
                               role, topics[t], bootstrap, topics[t]);
    }
    rd_kafka_metadata_destroy(md);
    return result;
}

eddy_err_t eddy_topics_create(rd_kafka_t *rk, const char *topic, int partitions,
                              const char *const (*configs)[2], size_t n_configs, char *errstr,
                              size_t errstr_size)
{
    char rderr[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, rderr, sizeof(rderr));
    if (!nt)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "topic '%s': %s", topic, rderr);
    for (size_t i = 0; i < n_configs; i++)
        rd_kafka_NewTopic_set_config(nt, configs[i][0], configs[i][1]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, METADATA_TIMEOUT_MS, NULL, 0);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, METADATA_TIMEOUT_MS + 2000);
    eddy_err_t result = EDDY_OK;
    if (!ev) {
        result = eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "creating topic '%s' got no answer",
                           topic);
    } else if (rd_kafka_event_error(ev)) {
        result = eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot create topic '%s': %s",
                           topic, rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt && !result; i++) {
            rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
            if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                result = eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size,
                                   "cannot create topic '%s': %s", topic,
                                   rd_kafka_topic_result_error_string(res[i])
                                       ? rd_kafka_topic_result_error_string(res[i])
                                       : rd_kafka_err2str(err));
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return result;
}
