/*
 * gen.h — the load generator: sends events from an event model (event_model.h) to
 * a Kafka topic at a steady rate with an idempotent, acks=all producer keyed by
 * user_id (Java-compatible murmur2 partitioning). Runs on the calling thread;
 * librdkafka's own threads do the network I/O.
 */
#ifndef EDDY_GEN_H
#define EDDY_GEN_H

#include "eddy.h"
#include "producer/event_model.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define EDDY_GEN_MAX_PROPS 64

typedef struct eddy_gen_config_s {
    const char *bootstrap;   /* bootstrap.servers */
    const char *topic;       /* must exist (checked up front) */
    eddy_gen_kind_t kind;    /* http or activity events */
    int64_t rate;            /* events per second; 0 = as fast as possible */
    double duration_s;       /* stop after this long (0 = no limit); with rate > 0
                                this means exactly rate*duration events */
    int64_t count;           /* stop after this many events (0 = no limit) */
    uint64_t seed;           /* event model seed */
    const char *compression; /* compression.codec */
    bool simulated_time;     /* event time from start_ts instead of the wall clock */
    int64_t start_ts;        /* ms; first simulated event time */
    double span_s;           /* > 0: events spread evenly over this span (needs a total) */
    const char *props[EDDY_GEN_MAX_PROPS]; /* "key=value" librdkafka overrides, applied last */
    int n_props;                           /* entries used in props */
    bool progress;                         /* a progress line each second on stderr */
} eddy_gen_config_t;

typedef struct eddy_gen_stats_s {
    int64_t sent;       /* handed to the producer */
    int64_t acked;      /* acknowledged by the broker (acks=all) */
    int64_t failed;     /* rejected, failed delivery or still undelivered at the end */
    double seconds;     /* from the first send until every event was acked or failed */
    double cpu_seconds; /* user + system CPU of this process over the run */
    int partitions;     /* partitions of the topic */
} eddy_gen_stats_t;

/** Fills cfg with the defaults of `eddy gen` (40,000 http events/s, seed 1, zstd, ...). */
void eddy_gen_config_defaults(eddy_gen_config_t *cfg);

/** Total number of events the configuration asks for, or 0 if it is open-ended. */
int64_t eddy_gen_total(const eddy_gen_config_t *cfg);

/** Event time of event number i (0-based) under a simulated-time configuration:
 *  with a span, start + i*span*1000/N; otherwise start + i*1000/rate. */
int64_t eddy_gen_event_time(const eddy_gen_config_t *cfg, int64_t i);

/** Checks that the options fit together (e.g. --span needs --start-ts and a total).
 *  Fills errstr with a one-line reason when they do not. */
eddy_err_t eddy_gen_config_check(const eddy_gen_config_t *cfg, char *errstr, size_t errstr_size);

/** Runs the generator until done or until *stop becomes nonzero, then waits for
 *  outstanding deliveries. Fills stats (also on failure, as far as it got).
 *  Returns EDDY_OK when it ran (even if some deliveries failed: see stats->failed),
 *  an error when it could not run at all (unreachable broker, missing topic, ...). */
eddy_err_t eddy_gen_run(const eddy_gen_config_t *cfg, volatile sig_atomic_t *stop,
                        eddy_gen_stats_t *stats, char *errstr, size_t errstr_size);

#endif /* EDDY_GEN_H */
