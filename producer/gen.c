/*
 * gen.c — the load generator's send loop (see gen.h).
 *
 * Pacing: event i is due at start + i/rate seconds. Each round sends every event
 * that is due, serves delivery reports, and sleeps until the next one is due but
 * never less than a millisecond, so at 40,000 ev/s it wakes ~1000 times a second
 * and sends ~40 events per wake-up instead of sleeping per event. When the
 * producer's queue is full it waits on delivery reports (backpressure); the rate
 * then drops and the summary shows it.
 */
#include "producer/gen.h"
#include "engine/log.h"
#include "engine/topics.h"
#include "engine/util.h"

#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define FLUSH_TIMEOUT_MS    60000
#define MAX_REPORTED_ERRORS 5

typedef struct gen_run_s {
    eddy_gen_stats_t *stats; /* counters, updated by the delivery-report callback */
    int reported_errors;     /* delivery errors logged so far (capped) */
} gen_run_t;

void eddy_gen_config_defaults(eddy_gen_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->topic = "log-events";
    cfg->kind = EDDY_GEN_HTTP;
    cfg->rate = 40000;
    cfg->seed = 1;
    cfg->compression = "zstd";
}

int64_t eddy_gen_total(const eddy_gen_config_t *cfg)
{
    if (cfg->count > 0)
        return cfg->count;
    if (cfg->duration_s > 0 && cfg->rate > 0)
        return (int64_t)(cfg->duration_s * (double)cfg->rate + 0.5);
    return 0;
}

int64_t eddy_gen_event_time(const eddy_gen_config_t *cfg, int64_t i)
{
    if (cfg->span_s > 0) {
        int64_t total = eddy_gen_total(cfg);
        __int128 span_ms = (__int128)(cfg->span_s * 1000.0 + 0.5);
        return cfg->start_ts + (int64_t)((__int128)i * span_ms / total);
    }
    return cfg->start_ts + (int64_t)((__int128)i * 1000 / cfg->rate);
}

eddy_err_t eddy_gen_config_check(const eddy_gen_config_t *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg->bootstrap || !*cfg->bootstrap)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "--bootstrap is required (the line 'eddy broker' prints)");
    if (cfg->count > 0 && cfg->duration_s > 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "give --count or --duration, not both");
    if (cfg->span_s > 0 && !cfg->simulated_time)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "--span needs --start-ts");
    if (cfg->span_s > 0 && eddy_gen_total(cfg) == 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "--span needs a known number of events: --count, or --duration "
                         "with --rate > 0");
    if (cfg->simulated_time && cfg->span_s <= 0 && cfg->rate == 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "--start-ts with --rate 0 needs --span (event time cannot follow "
                         "an unlimited rate)");
    return EDDY_OK;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    gen_run_t *run = opaque;
    if (!msg->err) {
        run->stats->acked++;
        return;
    }
    run->stats->failed++;
    if (run->reported_errors++ < MAX_REPORTED_ERRORS)
        eddy_log_error("delivery failed (partition %d): %s", (int)msg->partition,
                       rd_kafka_err2str(msg->err));
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static rd_kafka_conf_t *producer_conf(const eddy_gen_config_t *cfg, gen_run_t *run, char *errstr,
                                      size_t errstr_size)
{
    /* Tuned for throughput: large batches, a deep local queue, and a 50 ms linger:
     * at 40,000 events/s over 12 partitions a 5 ms linger makes batches of ~17
     * events, and each batch costs a request and a fresh zstd context. Measured
     * here at 40,000/s for 40 s: 50 ms halves the generator's CPU (5.1 s instead of
     * 11.0 s) and the embedded broker's 5 MiB per partition holds 31% more events
     * (1.37 M instead of 1.05 M), since larger batches compress better. The
     * partitioner hashes keys with murmur2 exactly as the Java producer does. */
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "50"},
        {"batch.num.messages", "10000"},
        {"batch.size", "1000000"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
        {"partitioner", "murmur2_random"},
        {"client.id", "eddy-gen"},
        {"log_level", "4"},
    };
    char rderr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->bootstrap, rderr, sizeof(rderr)) ||
        rd_kafka_conf_set(conf, "compression.codec", cfg->compression, rderr, sizeof(rderr)))
        goto bad;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], rderr, sizeof(rderr)))
            goto bad;
    for (int i = 0; i < cfg->n_props; i++) {
        char key[256];
        const char *eq = strchr(cfg->props[i], '=');
        size_t klen = eq ? (size_t)(eq - cfg->props[i]) : 0;
        if (!eq || klen == 0 || klen >= sizeof(key)) {
            snprintf(rderr, sizeof(rderr), "-X '%s' is not key=value", cfg->props[i]);
            goto bad;
        }
        memcpy(key, cfg->props[i], klen);
        key[klen] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, rderr, sizeof(rderr)))
            goto bad;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, run);
    return conf;
bad:
    rd_kafka_conf_destroy(conf);
    eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "producer configuration: %s", rderr);
    return NULL;
}

static void show_progress(const eddy_gen_stats_t *st, double elapsed, int64_t total, bool final)
{
    char of[48] = "";
    if (total > 0)
        snprintf(of, sizeof(of), "/%lld", (long long)total);
    fprintf(stderr, "\r\033[Kgen: %6.1fs  sent %lld%s  acked %lld  failed %lld  %.0f ev/s%s",
            elapsed, (long long)st->sent, of, (long long)st->acked, (long long)st->failed,
            elapsed > 0 ? (double)st->sent / elapsed : 0.0, final ? "\n" : "");
}

eddy_err_t eddy_gen_run(const eddy_gen_config_t *cfg, volatile sig_atomic_t *stop,
                        eddy_gen_stats_t *stats, char *errstr, size_t errstr_size)
{
    memset(stats, 0, sizeof(*stats));
    eddy_err_t err = eddy_gen_config_check(cfg, errstr, errstr_size);
    if (err)
        return err;

    gen_run_t run = {.stats = stats};
    rd_kafka_conf_t *conf = producer_conf(cfg, &run, errstr, errstr_size);
    if (!conf)
        return EDDY_ERR_INVALID;
    /* Unreachable: one line, before the producer's own log could say it ten times. */
    err = eddy_topics_reach(rd_kafka_conf_dup(conf), cfg->bootstrap, "--bootstrap", errstr,
                            errstr_size);
    if (err) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "producer configuration: %s",
                         rderr);
    }
    rd_kafka_topic_t *rkt = NULL;
    err = eddy_topics_check(rk, cfg->bootstrap, "the", &cfg->topic, 1, &stats->partitions, errstr,
                            errstr_size);
    if (err)
        goto out;
    rkt = rd_kafka_topic_new(rk, cfg->topic, NULL);

    const int64_t total = eddy_gen_total(cfg);
    const int64_t deadline_ns = cfg->duration_s > 0 && cfg->rate == 0
                                    ? (int64_t)(cfg->duration_s * 1e9)
                                    : INT64_MAX; /* with a rate, total decides */
    eddy_gen_model_t model;
    eddy_gen_model_init(&model, cfg->kind, cfg->seed);
    char buf[EDDY_GEN_EVENT_MAX];

    char pace[48] = "as fast as possible";
    if (cfg->rate > 0)
        snprintf(pace, sizeof(pace), "%lld events/s", (long long)cfg->rate);
    eddy_log_info("sending %s events to %s (%d partitions) at %s, %s",
                  cfg->kind == EDDY_GEN_HTTP ? "http" : "activity", cfg->topic, stats->partitions,
                  cfg->bootstrap, pace);

    const double cpu0 = cpu_seconds();
    const int64_t t0 = eddy_mono_ns();
    int64_t next_progress = t0 + 1000000000;
    while (!(stop && *stop) && (total == 0 || stats->sent < total)) {
        int64_t now = eddy_mono_ns();
        if (now - t0 >= deadline_ns)
            break;
        /* How many events should have been sent by now. */
        int64_t due = cfg->rate > 0 ? (int64_t)((__int128)(now - t0) * cfg->rate / 1000000000) + 1
                                    : stats->sent + 10000;
        if (total > 0 && due > total)
            due = total;
        while (stats->sent < due && !(stop && *stop)) {
            int64_t ts =
                cfg->simulated_time ? eddy_gen_event_time(cfg, stats->sent) : eddy_now_ms();
            size_t key_off, key_len;
            size_t len = eddy_gen_model_next(&model, ts, buf, sizeof(buf), &key_off, &key_len);
            while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, buf, len,
                                    buf + key_off, key_len, NULL) == -1) {
                rd_kafka_resp_err_t perr = rd_kafka_last_error();
                if (perr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    stats->failed++;
                    if (run.reported_errors++ < MAX_REPORTED_ERRORS)
                        eddy_log_error("produce failed: %s", rd_kafka_err2str(perr));
                    break;
                }
                rd_kafka_poll(rk, 1); /* backpressure: wait for deliveries */
            }
            stats->sent++;
        }
        rd_kafka_poll(rk, 0);

        char fatal[256];
        if (rd_kafka_fatal_error(rk, fatal, sizeof(fatal))) {
            err = eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "producer failed: %s", fatal);
            break;
        }
        now = eddy_mono_ns();
        if (cfg->progress && now >= next_progress) {
            show_progress(stats, (double)(now - t0) / 1e9, total, false);
            next_progress += 1000000000;
        }
        if (cfg->rate > 0 && (total == 0 || stats->sent < total)) {
            int64_t next_due = t0 + (int64_t)((__int128)stats->sent * 1000000000 / cfg->rate);
            int64_t wait = next_due - now;
            if (wait > 0)
                eddy_sleep_ns(wait < 1000000 ? 1000000 : wait, NULL);
        }
    }

    /* Wait for every outstanding delivery; what is still queued at the end failed. */
    int64_t flush_start = eddy_mono_ns();
    while (rd_kafka_outq_len(rk) > 0 &&
           eddy_mono_ns() - flush_start < (int64_t)FLUSH_TIMEOUT_MS * 1000000) {
        rd_kafka_flush(rk, 1000);
        if (cfg->progress)
            show_progress(stats, (double)(eddy_mono_ns() - t0) / 1e9, total, false);
    }
    int left = rd_kafka_outq_len(rk);
    if (left > 0) {
        eddy_log_error("%d events still undelivered after %d s; counted as failed", left,
                       FLUSH_TIMEOUT_MS / 1000);
        stats->failed += left;
    }
    stats->seconds = (double)(eddy_mono_ns() - t0) / 1e9;
    stats->cpu_seconds = cpu_seconds() - cpu0;
    if (cfg->progress)
        show_progress(stats, stats->seconds, total, true);

out:
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return err;
}
