/*
 * topic_reader.c — see topic_reader.h. Uses a plain assign()-based consumer (no
 * group), so reading a topic never disturbs the consumer groups under test.
 */
#include "topic_reader.h"

#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int32_t eddy_test_murmur2(const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cU ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        uint32_t k = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const uint8_t *tail = p + (len & ~(size_t)3);
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int eddy_test_java_partition(const void *key, size_t len, int partitions)
{
    return (int)(((uint32_t)eddy_test_murmur2(key, len) & 0x7fffffffU) % (uint32_t)partitions);
}

static int by_partition_offset(const void *a, const void *b)
{
    const eddy_test_record_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static char *dup_bytes(const void *p, size_t len)
{
    char *s = malloc(len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

void eddy_test_record_set(eddy_test_record_t *r, const rd_kafka_message_t *msg)
{
    r->partition = msg->partition;
    r->offset = msg->offset;
    r->key = msg->key ? dup_bytes(msg->key, msg->key_len) : NULL;
    r->key_len = msg->key_len;
    r->value = dup_bytes(msg->payload, msg->len);
    r->len = msg->len;
    rd_kafka_headers_t *hdrs = NULL;
    r->headers = rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR
                     ? rd_kafka_headers_copy(hdrs)
                     : NULL;
}

const char *eddy_test_record_header(const eddy_test_record_t *rec, const char *name, char *buf,
                                    size_t size)
{
    const void *v = NULL;
    size_t len = 0;
    buf[0] = '\0';
    if (!rec->headers || rd_kafka_header_get_last(rec->headers, name, &v, &len) || len >= size)
        return buf;
    if (len)
        memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

int eddy_test_read_topic(const char *bootstrap, const char *topic, eddy_test_topic_t *out)
{
    memset(out, 0, sizeof(*out));
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "eddy-test-reader", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "topic_reader: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "topic_reader: no metadata for %s: %s\n", topic,
                rd_kafka_err2str(err ? err : md->topics[0].err));
        if (!err)
            rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return -1;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);

    /* Assign each non-empty partition from its low watermark; stop at its high one. */
    int64_t *high = calloc((size_t)parts, sizeof(*high));
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(parts);
    size_t expected = 0;
    int pending = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (err) {
            fprintf(stderr, "topic_reader: watermarks of %s[%d]: %s\n", topic, p,
                    rd_kafka_err2str(err));
            goto fail;
        }
        high[p] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(assignment, topic, p)->offset = lo;
            expected += (size_t)(hi - lo);
            pending++;
        }
    }
    rd_kafka_assign(rk, assignment);

    out->recs = calloc(expected ? expected : 1, sizeof(*out->recs));
    out->partitions = parts;
    int idle_polls = 0;
    while (pending > 0 && out->n < expected && idle_polls < 100) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg) {
            idle_polls++;
            continue;
        }
        idle_polls = 0;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (msg->err) {
            fprintf(stderr, "topic_reader: %s\n", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            goto fail;
        }
        if (msg->offset < high[msg->partition]) {
            eddy_test_record_set(&out->recs[out->n++], msg);
            if (msg->offset == high[msg->partition] - 1)
                pending--;
        }
        rd_kafka_message_destroy(msg);
    }
    if (out->n != expected) {
        fprintf(stderr, "topic_reader: read %zu of %zu records of %s\n", out->n, expected, topic);
        goto fail;
    }
    /* Partitions arrive interleaved; order by (partition, offset). */
    qsort(out->recs, out->n, sizeof(*out->recs), by_partition_offset);
    rd_kafka_topic_partition_list_destroy(assignment);
    free(high);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
fail:
    rd_kafka_topic_partition_list_destroy(assignment);
    free(high);
    eddy_test_topic_free(out);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return -1;
}

void eddy_test_topic_free(eddy_test_topic_t *topic)
{
    for (size_t i = 0; i < topic->n; i++) {
        free(topic->recs[i].key);
        free(topic->recs[i].value);
        if (topic->recs[i].headers)
            rd_kafka_headers_destroy(topic->recs[i].headers);
    }
    free(topic->recs);
    memset(topic, 0, sizeof(*topic));
}
