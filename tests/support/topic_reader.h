/*
 * topic_reader.h — test-side Kafka helpers, written independently of eddy's own
 * code so tests can check eddy against them: read a whole topic back (every
 * partition up to its high watermark) and compute the partition the Java
 * producer would choose for a key (murmur2, as in Kafka's Utils.murmur2). Records
 * keep their headers, so a dead-letter topic can be read back and checked.
 */
#ifndef EDDY_TEST_TOPIC_READER_H
#define EDDY_TEST_TOPIC_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct eddy_test_record_s {
    int32_t partition; /* partition the record was read from */
    int64_t offset;    /* its offset there */
    char *key;         /* NUL-terminated copy (NULL for a null key) */
    size_t key_len;    /* key bytes */
    char *value;       /* NUL-terminated copy of the payload */
    size_t len;        /* payload bytes */
    void *headers;     /* copy of its headers (an rd_kafka_headers_t), or NULL */
} eddy_test_record_t;

typedef struct eddy_test_topic_s {
    eddy_test_record_t *recs; /* ordered by partition, then offset */
    size_t n;                 /* records */
    int partitions;           /* partition count of the topic */
} eddy_test_topic_t;

/** Reads every record of `topic` (all partitions, from the beginning up to the high
 *  watermark at the time of the call). Returns 0 on success; on failure prints why
 *  and returns -1. */
int eddy_test_read_topic(const char *bootstrap, const char *topic, eddy_test_topic_t *out);

void eddy_test_topic_free(eddy_test_topic_t *topic);

/** Fills *rec with copies of msg's partition, offset, key and value (freed by
 *  eddy_test_topic_free). `msg` is an rd_kafka_message_t. */
struct rd_kafka_message_s;
void eddy_test_record_set(eddy_test_record_t *rec, const struct rd_kafka_message_s *msg);

/** The last header `name` of rec as a NUL-terminated string in buf; "" if it has
 *  none (or the value does not fit in size - 1 bytes). */
const char *eddy_test_record_header(const eddy_test_record_t *rec, const char *name, char *buf,
                                    size_t size);

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2). */
int32_t eddy_test_murmur2(const void *data, size_t len);

/** The partition Kafka's Java producer picks for a non-null key. */
int eddy_test_java_partition(const void *key, size_t len, int partitions);

#endif /* EDDY_TEST_TOPIC_READER_H */
