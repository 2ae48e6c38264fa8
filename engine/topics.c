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
