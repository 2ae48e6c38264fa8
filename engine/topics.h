/*
 * topics.h — checks that topics exist before eddy uses them, so a missing topic is
 * a clear error instead of one the broker auto-creates with its default partition
 * count (4 on the embedded broker). Any thread; one metadata request per call.
 */
#ifndef EDDY_TOPICS_H
#define EDDY_TOPICS_H

#include "eddy.h"

#include <librdkafka/rdkafka.h>

/** Asks the cluster at `bootstrap` for its brokers through a client made from
 *  `conf` (taken over, destroyed here), with librdkafka's own logging off: fails
 *  with one message naming the address, the last connection error and `setting`
 *  (the flag that sets the address) once every broker has been down for 2 s, or
 *  after 10 s without an answer. Main thread; call before the clients that log. */
eddy_err_t eddy_topics_reach(rd_kafka_conf_t *conf, const char *bootstrap, const char *setting,
                             char *errstr, size_t errstr_size);

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
