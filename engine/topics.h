/*
 * topics.h — checks that topics exist before eddy uses them, so a missing topic is
 * a clear error instead of one the broker auto-creates with its default partition
 * count (4 on the embedded broker). Any thread; one metadata request per call.
 */
#ifndef EDDY_TOPICS_H
#define EDDY_TOPICS_H

#include "eddy.h"

#include <librdkafka/rdkafka.h>

/** Looks up each of `topics` (n of them) through `rk` and writes their partition
 *  counts into `partitions` (may be NULL). Fails, naming the first missing topic
 *  and how to create it, if one does not exist or the cluster cannot be reached.
 *  `bootstrap` is only used in messages; `role` ("source", "sink", ...) too. */
eddy_err_t eddy_topics_check(rd_kafka_t *rk, const char *bootstrap, const char *role,
                             const char *const *topics, int n, int *partitions, char *errstr,
                             size_t errstr_size);

/** Creates `topic` with `partitions` partitions and the given topic configs
 *  (n pairs of key, value) through the Admin API; an existing topic is not an
 *  error. The embedded broker does not support it (create topics there with
 *  `eddy broker --topic` / `--topology`). */
eddy_err_t eddy_topics_create(rd_kafka_t *rk, const char *topic, int partitions,
                              const char *const (*configs)[2], size_t n_configs, char *errstr,
                              size_t errstr_size);

#endif /* EDDY_TOPICS_H */
