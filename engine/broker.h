/*
 * broker.h — the embedded Kafka-protocol broker: librdkafka's mock cluster hosted
 * in this process. It is eddy's default for the demo and the broker of every test.
 * It keeps at most 5 MiB (or 100,000 message sets) per partition, writes no
 * transaction markers and lives only as long as its process (docs/kafka.md).
 *
 * All functions are called from the owning thread; the mock cluster serves
 * clients on its own thread.
 */
#ifndef EDDY_BROKER_H
#define EDDY_BROKER_H

#include "eddy.h"

#include <stdbool.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

typedef struct eddy_broker_s eddy_broker_t;

/** Per-partition retention of the mock cluster, for messages to users. */
#define EDDY_BROKER_RETENTION_BYTES (5 * 1024 * 1024)

/** Starts a mock cluster of `brokers` brokers (1..16) on random loopback ports.
 *  Returns NULL and fills errstr on failure. */
eddy_broker_t *eddy_broker_new(int brokers, char *errstr, size_t errstr_size);

/** Stops the cluster; every client connected to it loses its broker. NULL is a no-op. */
void eddy_broker_destroy(eddy_broker_t *broker);

/** Creates `topic` with `partitions` partitions (replication min(3, brokers)).
 *  Creating an existing topic with the same partition count is not an error. */
eddy_err_t eddy_broker_create_topic(eddy_broker_t *broker, const char *topic, int partitions,
                                    char *errstr, size_t errstr_size);

/** "127.0.0.1:PORT,..." — valid until eddy_broker_destroy(). */
const char *eddy_broker_bootstraps(const eddy_broker_t *broker);

/** The mock cluster itself, for fault injection (rd_kafka_mock_*). Borrowed. */
rd_kafka_mock_cluster_t *eddy_broker_mock(eddy_broker_t *broker);

/** Checks that `name` is a legal Kafka topic name ([A-Za-z0-9._-]{1,249}, not "." or "..").
 *  Returns false and fills errstr otherwise. */
bool eddy_topic_name_valid(const char *name, char *errstr, size_t errstr_size);

/** Parses "NAME" or "NAME:PARTITIONS"; `default_partitions` applies to "NAME".
 *  Writes the name into `name` (cap bytes). Returns false and fills errstr on a bad spec. */
bool eddy_topic_spec_parse(const char *spec, int default_partitions, char *name, size_t cap,
                           int *partitions, char *errstr, size_t errstr_size);

#endif /* EDDY_BROKER_H */
