/*
 * bare_consumer.c — the baseline of eddy's throughput figures: a plain librdkafka
 * consumer-group consumer that reads a topic from the beginning until it has seen
 * N records, doing nothing with them. Prints one JSON line:
 *   {"records":N,"seconds":S,"rate":R,"bytes":B}
 * Usage: bare_consumer BOOTSTRAP TOPIC N [GROUP]
 */
#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: bare_consumer BOOTSTRAP TOPIC N [GROUP]\n");
        return argc < 4 ? 2 : 0;
    }
    long long want = atoll(argv[3]);
    char group[128];
    snprintf(group, sizeof(group), "%s", argc > 4 ? argv[4] : "eddy-bench-bare");
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const settings[][2] = {
        {"bootstrap.servers", argv[1]},
        {"group.id", group},
        {"auto.offset.reset", "earliest"},
        {"enable.auto.commit", "false"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"fetch.wait.max.ms", "50"},
        {"queued.min.messages", "200000"},
        {"log_level", "3"},
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr))) {
            fprintf(stderr, "bare_consumer: %s\n", errstr);
            return 1;
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "bare_consumer: %s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    long long got = 0, bytes = 0;
    double start = 0, deadline = now_s() + 300;
    while (got < want && now_s() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err) {
            if (got == 0)
                start = now_s(); /* from the first record: excludes the group join */
            got++;
            bytes += (long long)msg->len;
        }
        rd_kafka_message_destroy(msg);
    }
    double secs = now_s() - start;
    printf("{\"records\":%lld,\"seconds\":%.3f,\"rate\":%.0f,\"bytes\":%lld}\n", got, secs,
           secs > 0 ? (double)got / secs : 0.0, bytes);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got < want;
}
