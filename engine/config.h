/*
 * config.h — the configuration of `eddy run`, with Kafka Streams' names.
 *
 * Settings come from defaults, then a properties file (--config FILE: `key=value`
 * lines, '#' comments), then command-line flags, each overriding the one before.
 * Unknown keys are errors that name the file, the line and the nearest known key;
 * `consumer.<prop>` / `producer.<prop>` and -X pass librdkafka properties through.
 * Built once on the main thread, read-only afterwards.
 */
#ifndef EDDY_CONFIG_H
#define EDDY_CONFIG_H

#include "eddy.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#define EDDY_CONFIG_MAX_PROPS 64

typedef enum eddy_guarantee_e {
    EDDY_AT_LEAST_ONCE = 0,
    EDDY_EXACTLY_ONCE_V2 = 1,
} eddy_guarantee_t;

typedef struct eddy_kv_s {
    char *key;   /* librdkafka property name (owned) */
    char *value; /* its value (owned) */
} eddy_kv_t;

typedef struct eddy_config_s {
    char *application_id;             /* application.id: consumer group, topic and dir prefix */
    char *bootstrap_servers;          /* bootstrap.servers */
    char *topology_path;              /* topology (file) */
    char *state_dir;                  /* state.dir: RocksDB lives in <state.dir>/<application.id> */
    char *application_server;         /* application.server: HOST:PORT of the HTTP API ("" = off) */
    int num_stream_threads;           /* num.stream.threads */
    int64_t commit_interval_ms;       /* commit.interval.ms */
    eddy_guarantee_t guarantee;       /* processing.guarantee */
    int64_t poll_ms;                  /* poll.ms: longest wait for records in one poll */
    int64_t task_max_failed_commits;  /* task.max.failed.commits: see docs/running.md */
    int64_t changelog_snapshot_bytes; /* changelog.snapshot.bytes: see docs/stores.md */
    char *dlq_topic;                  /* errors.deadletterqueue.topic.name ("" = <app>-dlq) */
    int64_t ws_interval_ms;           /* http.ws.interval.ms: WebSocket update checks */
    int64_t ws_max_queue_bytes;       /* http.ws.max.queue.bytes: per-client send queue */
    char *ws_allowed_origins;         /* http.ws.allowed.origins: "" = the listener's own */
    int64_t http_header_timeout_ms;   /* http.request.header.timeout.ms: slow clients */
    int64_t http_body_timeout_ms;     /* http.request.body.timeout.ms: likewise */
    int64_t http_max_connections;     /* http.connections.max: open HTTP connections */
    int64_t http_max_connections_ip;  /* http.connections.max.per.ip: from one address */
    int64_t instances_heartbeat_ms;   /* instances.heartbeat.ms: see docs/running.md */
    int64_t peer_timeout_ms;          /* query.peer.timeout.ms: wait for a peer's partials */
    char *http_static_dir;            /* http.static.dir: dashboard files; "" = built ui/dist */
    int64_t event_time_max_future_ms; /* event.time.max.future.ms: bound on event times */
    char *state_corruption_action;    /* state.corruption.action: restore or fail */
    char *state_verify_on_open;       /* state.verify.on.open: true or false */
    eddy_kv_t consumer_props[EDDY_CONFIG_MAX_PROPS]; /* passed to every consumer */
    int n_consumer_props;                            /* entries used */
    eddy_kv_t producer_props[EDDY_CONFIG_MAX_PROPS]; /* passed to every producer */
    int n_producer_props;                            /* entries used */
} eddy_config_t;

/** Fills the defaults (application.id "eddy", 1 thread, 100 ms commits, ...). */
void eddy_config_init(eddy_config_t *cfg);

/** Frees what the config owns; the struct can be re-initialised afterwards. */
void eddy_config_free(eddy_config_t *cfg);

/** Sets one key (Kafka Streams name, consumer.X / producer.X, or a bare librdkafka
 *  property, which goes to both clients). `origin` ("FILE:LINE" or "--flag") is
 *  named in errors. */
eddy_err_t eddy_config_set(eddy_config_t *cfg, const char *key, const char *value,
                           const char *origin, char *errstr, size_t errstr_size);

#define EDDY_CONFIG_FILE_MAX (1 << 20) /* bytes in a properties file */
#define EDDY_CONFIG_LINE_MAX 65536     /* bytes in one of its lines */

/** Reads a properties file into cfg (at most EDDY_CONFIG_FILE_MAX bytes). */
eddy_err_t eddy_config_load_file(eddy_config_t *cfg, const char *path, char *errstr,
                                 size_t errstr_size);

/** Reads `len` bytes of properties text into cfg: `key=value` (or `key: value`)
 *  lines, blanks around both trimmed, `#` and `!` comment lines, at most
 *  EDDY_CONFIG_LINE_MAX bytes a line, no NUL byte. Errors name `name`:LINE. The
 *  settings before a failing line stay set. */
eddy_err_t eddy_config_load_string(eddy_config_t *cfg, const char *text, size_t len,
                                   const char *name, char *errstr, size_t errstr_size);

/** Checks that required settings are present and consistent. */
eddy_err_t eddy_config_check(const eddy_config_t *cfg, char *errstr, size_t errstr_size);

/** A librdkafka configuration: eddy's `defaults` (n pairs of key, value) first,
 *  then the user's `props` (consumer or producer), which win. NULL with the
 *  offending property named in errstr if one is refused; `what` ("consumer", ...)
 *  prefixes the message. */
rd_kafka_conf_t *eddy_config_kafka_conf(const char *what, const char *const (*defaults)[2],
                                        size_t n, const eddy_kv_t *props, int n_props, char *errstr,
                                        size_t errstr_size);

/** Creates a librdkafka client of `type` from `conf` (taken over: destroyed if
 *  creation fails). NULL with "cannot create the WHAT: <reason>" in errstr. */
rd_kafka_t *eddy_config_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                                  char *errstr, size_t errstr_size);

/** Takes what `queue` holds, up to `max` messages, waiting at most `timeout_ms`
 *  only while it holds none. rd_kafka_consume_batch_queue() alone waits for all
 *  `max` (or the timeout) even when some are there: at a catch-up's pace the
 *  stream threads sat idle in it half the time. Returns the count, or -1. */
ssize_t eddy_kafka_consume_batch(rd_kafka_queue_t *queue, int timeout_ms, rd_kafka_message_t **msgs,
                                 size_t max);

/** Writes every setting's name and one-line help to `out`, but those in `skip`
 *  (NULL-terminated; NULL: none), for --help. */
void eddy_config_help(FILE *out, const char *const *skip);

/** Writes every setting, one `key=value` per line, to the log at INFO. */
void eddy_config_log(const eddy_config_t *cfg);

#endif /* EDDY_CONFIG_H */
