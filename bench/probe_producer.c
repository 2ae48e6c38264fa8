/*
 * probe_producer.c — the end-to-end latency probe's producer (bench/live): reads
 * records from stdin, one per line as KEY<TAB>VALUE, and produces each at once
 * (linger.ms=0, acks=all, no compression) to TOPIC, partitioned by KEY with the
 * Java-compatible murmur2 partitioner like `eddy gen`. The caller notes the wall
 * time at which it wrote a line; this tool adds no batching delay. Delivery
 * failures go to stderr; at the end of stdin it flushes and prints one JSON line:
 *   {"produced":N,"failed":F}
 * Usage: probe_producer BOOTSTRAP TOPIC
 */
#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        failed++;
        fprintf(stderr, "probe_producer: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || !strcmp(argv[1], "--help")) {
        fprintf(stderr,
                "usage: probe_producer BOOTSTRAP TOPIC  (records on stdin: KEY<TAB>VALUE)\n");
        return argc < 3 ? 2 : 0;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const settings[][2] = {
        {"bootstrap.servers", argv[1]},    {"linger.ms", "0"}, {"acks", "all"},
        {"partitioner", "murmur2_random"}, {"log_level", "3"},
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr))) {
            fprintf(stderr, "probe_producer: %s\n", errstr);
            return 1;
        }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "probe_producer: %s\n", errstr);
        return 1;
    }
    char line[65536];
    long long produced = 0;
    while (fgets(line, sizeof(line), stdin)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        const char *key = line, *val = tab + 1;
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)val, strlen(val)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err) {
            failed++;
            fprintf(stderr, "probe_producer: produce failed: %s\n", rd_kafka_err2str(err));
        } else {
            produced++;
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 10000);
    printf("{\"produced\":%lld,\"failed\":%lld}\n", produced, failed);
    rd_kafka_destroy(rk);
    return failed > 0;
}
