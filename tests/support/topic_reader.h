/*
 * topic_reader.h — test-side Kafka helpers, written independently of eddy's own
 * code so tests can check eddy against them: read a whole topic back (every
 * partition up to its high watermark) and compute the partition the Java
 * producer would choose for a key (murmur2, as in Kafka's Utils.murmur2).
 */
#ifndef EDDY_TEST_TOPIC_READER_H
#define EDDY_TEST_TOPIC_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One header of a record: name and value are NUL-terminated copies. */
typedef struct eddy_test_header_s {
    char *name;  /* header name */
    char *value; /* its value (NULL for a null value) */
    size_t len;  /* value bytes */
} eddy_test_header_t;

typedef struct eddy_test_record_s {
    int32_t partition;           /* partition the record was read from */
    int64_t offset;              /* its offset there */
    int64_t timestamp;           /* record timestamp, ms (-1: none) */
    char *key;                   /* NUL-terminated copy (NULL for a null key) */
    size_t key_len;              /* key bytes */
    char *value;                 /* NUL-terminated copy of the payload ("" for a null value) */
    size_t len;                  /* payload bytes */
    bool value_null;             /* the value was null (a tombstone) */
    eddy_test_header_t *headers; /* in record order */
    size_t n_headers;            /* entries in headers */
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

/** Frees what one record holds (eddy_test_topic_free does it for all). */
void eddy_test_record_free(eddy_test_record_t *rec);

/** The value of the last header named `name` of `rec` (NUL-terminated), or NULL if
 *  it has none; *len (if not NULL) gets its length. */
const char *eddy_test_record_header(const eddy_test_record_t *rec, const char *name, size_t *len);

/** Fills *rec with copies of msg's partition, offset, key and value (freed by
 *  eddy_test_topic_free). `msg` is an rd_kafka_message_t. */
struct rd_kafka_message_s;
void eddy_test_record_set(eddy_test_record_t *rec, const struct rd_kafka_message_s *msg);

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2). */
int32_t eddy_test_murmur2(const void *data, size_t len);

/** The partition Kafka's Java producer picks for a non-null key. */
int eddy_test_java_partition(const void *key, size_t len, int partitions);

#endif /* EDDY_TEST_TOPIC_READER_H */
