/*
 * topics.c — topic existence checks (see topics.h). Asks for all topics' metadata
 * without naming any, because naming a topic in a metadata request is what makes
 * an auto-creating broker create it.
 */
#include "engine/topics.h"
#include "engine/util.h"

#include <string.h>

#define METADATA_TIMEOUT_MS 10000

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
