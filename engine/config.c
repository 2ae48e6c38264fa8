/*
 * config.c — `eddy run` settings (see config.h). Every known key is a row of the
 * table below: its name, its type and range, and where it lands in the struct, so
 * parsing, checking, error messages and the startup log share one description.
 */
#include "engine/config.h"
#include "engine/log.h"
#include "engine/util.h"
#include "topology/topology_int.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_STR, T_INT, T_GUARANTEE } key_type_t;

typedef struct key_def_s {
    const char *name; /* Kafka Streams name */
    key_type_t type;  /* how the value parses */
    size_t offset;    /* where it lands in eddy_config_t */
    int64_t min, max; /* range for T_INT */
    const char *help; /* one line, for errors */
} key_def_t;

/* T_STR keys that take one of a few words (NULL-terminated lists). */
static const struct {
    const char *name;
    const char *const choices[3];
} choice_keys[] = {
    {"state.corruption.action", {"restore", "fail", NULL}},
    {"state.verify.on.open", {"true", "false", NULL}},
};

#define OFF(field) offsetof(eddy_config_t, field)

static const key_def_t keys[] = {
    {"application.id", T_STR, OFF(application_id), 0, 0,
     "consumer group id and prefix of internal topics and state"},
    {"bootstrap.servers", T_STR, OFF(bootstrap_servers), 0, 0, "HOST:PORT,... of Kafka"},
    {"topology", T_STR, OFF(topology_path), 0, 0, "path of the topology file"},
    {"state.dir", T_STR, OFF(state_dir), 0, 0, "directory for local state (RocksDB)"},
    {"application.server", T_STR, OFF(application_server), 0, 0,
     "HOST:PORT the HTTP API listens on"},
    {"num.stream.threads", T_INT, OFF(num_stream_threads), 1, 64, "stream threads (1..64)"},
    {"commit.interval.ms", T_INT, OFF(commit_interval_ms), 1, 3600000,
     "milliseconds between commits (1..3600000)"},
    {"processing.guarantee", T_GUARANTEE, OFF(guarantee), 0, 0, "at_least_once or exactly_once_v2"},
    {"poll.ms", T_INT, OFF(poll_ms), 1, 10000, "longest wait in one poll, ms (1..10000)"},
    {"task.max.failed.commits", T_INT, OFF(task_max_failed_commits), 1, 1000000,
     "commits in a row a task's record may fail for the same deterministic reason (too large, "
     "invalid) before the task stops in the error state (1..1000000)"},
    {"changelog.snapshot.bytes", T_INT, OFF(changelog_snapshot_bytes), 0, INT64_MAX / 4,
     "changelog bytes between two snapshots of a store's task, 0 = never"},
    {"errors.deadletterqueue.topic.name", T_STR, OFF(dlq_topic), 0, 0,
     "topic for bad records (dead letters); empty = <application.id>-dlq"},
    {"http.ws.interval.ms", T_INT, OFF(ws_interval_ms), 50, 3600000,
     "milliseconds between WebSocket update checks (50..3600000)"},
    {"http.ws.max.queue.bytes", T_INT, OFF(ws_max_queue_bytes), 4096, 1 << 30,
     "bytes queued for one WebSocket client before it is dropped (4096..1073741824)"},
    {"http.ws.allowed.origins", T_STR, OFF(ws_allowed_origins), 0, 0,
     "comma-separated origins allowed on /ws besides the listener's own, or *"},
    {"http.request.header.timeout.ms", T_INT, OFF(http_header_timeout_ms), 100, 3600000,
     "milliseconds a request has for its headers, from its start (100..3600000)"},
    {"http.request.body.timeout.ms", T_INT, OFF(http_body_timeout_ms), 100, 3600000,
     "milliseconds a request has for its headers and body, from its start (100..3600000)"},
    {"http.connections.max", T_INT, OFF(http_max_connections), 1, 100000,
     "open HTTP connections before the slowest incomplete one is evicted (1..100000)"},
    {"http.connections.max.per.ip", T_INT, OFF(http_max_connections_ip), 1, 100000,
     "open HTTP connections from one address, likewise (1..100000)"},
    {"instances.heartbeat.ms", T_INT, OFF(instances_heartbeat_ms), 100, 600000,
     "milliseconds between two records of this instance on <application.id>-instances"},
    {"query.peer.timeout.ms", T_INT, OFF(peer_timeout_ms), 10, 600000,
     "how long a query waits for a peer instance's partials, ms (10..600000)"},
    {"http.static.dir", T_STR, OFF(http_static_dir), 0, 0,
     "directory of the dashboard's files served at /; empty = the built ui/dist, off = none"},
    {"event.time.max.future.ms", T_INT, OFF(event_time_max_future_ms), 0, EDDY_DURATION_MAX_MS,
     "how far an event time may be ahead of the wall clock, ms (0..3153600000000); a topology's "
     "source.timestamp.max_future wins"},
    {"state.corruption.action", T_STR, OFF(state_corruption_action), 0, 0,
     "restore (move damaged local state aside, restore from the changelogs) or fail (stop)"},
    {"state.verify.on.open", T_STR, OFF(state_verify_on_open), 0, 0,
     "true or false: check every block of the local state at startup"},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

void eddy_config_init(eddy_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->application_id = strdup("eddy");
    cfg->state_dir = strdup("/tmp/eddy-state");
    cfg->application_server = strdup("127.0.0.1:8083");
    cfg->num_stream_threads = 1;
    cfg->commit_interval_ms = 100;
    cfg->guarantee = EDDY_EXACTLY_ONCE_V2;
    cfg->poll_ms = 100;
    cfg->task_max_failed_commits = 3;
    cfg->changelog_snapshot_bytes = 4 << 20;
    cfg->dlq_topic = strdup("");
    cfg->ws_interval_ms = 1000;
    cfg->ws_max_queue_bytes = 1 << 20;
    cfg->ws_allowed_origins = strdup("");
    cfg->http_header_timeout_ms = 10000;
    cfg->http_body_timeout_ms = 30000;
    cfg->http_max_connections = 256;
    cfg->http_max_connections_ip = 64;
    cfg->instances_heartbeat_ms = 2000;
    cfg->peer_timeout_ms = 500;
    cfg->http_static_dir = strdup("");
    cfg->event_time_max_future_ms = EDDY_MAX_FUTURE_DEFAULT_MS;
    cfg->state_corruption_action = strdup("restore");
    cfg->state_verify_on_open = strdup("true");
}

void eddy_config_free(eddy_config_t *cfg)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].type == T_STR)
            free(*(char **)((char *)cfg + keys[i].offset));
    for (int i = 0; i < cfg->n_consumer_props; i++) {
        free(cfg->consumer_props[i].key);
        free(cfg->consumer_props[i].value);
    }
    for (int i = 0; i < cfg->n_producer_props; i++) {
        free(cfg->producer_props[i].key);
        free(cfg->producer_props[i].value);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* librdkafka properties that eddy's guarantees rest on. A user's value for one is
 * refused, with the reason, unless it is eddy's own (one of `values`, or none at
 * all when values is NULL): -X, consumer.X and producer.X can tune the clients,
 * never turn off what exactly-once needs. */
typedef struct guarded_s {
    const char *name;        /* the property (and its librdkafka aliases as rows) */
    bool consumer, producer; /* the clients it guards */
    const char *values[3];   /* what may be set: eddy's own value; NULL-terminated */
    const char *why;         /* the reason, for the error */
} guarded_t;

#define WHY_COMMIT                                                                                 \
    "eddy commits input offsets itself, with the stores' changes (in one transaction with "        \
    "exactly_once_v2); offsets committed on their own would skip records after a crash"
#define WHY_IDEMPOTENCE                                                                            \
    "the changelogs and exactly_once_v2 need the idempotent producer with acks=all; "              \
    "processing.guarantee=at_least_once is the setting that gives up transactions"

static const guarded_t guarded[] = {
    {"enable.auto.commit", true, false, {"false"}, WHY_COMMIT},
    {"auto.commit.enable", true, false, {"false"}, WHY_COMMIT},
    {"enable.auto.offset.store", true, false, {"false"}, WHY_COMMIT},
    {"isolation.level",
     true,
     false,
     {"read_committed"},
     "eddy reads its input and its changelogs read_committed: read_uncommitted would count the "
     "records of aborted transactions"},
    {"group.id", true, false, {NULL}, "the consumer group is application.id: set that instead"},
    {"auto.offset.reset",
     true,
     false,
     {"earliest", "smallest", "beginning"},
     "a task without a position reads its partition from the start and counts what retention "
     "deleted (input_lost); another value would skip records without a trace"},
    {"enable.idempotence", false, true, {"true"}, WHY_IDEMPOTENCE},
    {"acks", false, true, {"all", "-1"}, WHY_IDEMPOTENCE},
    {"request.required.acks", false, true, {"all", "-1"}, WHY_IDEMPOTENCE},
    {"transactional.id",
     false,
     true,
     {NULL},
     "eddy gives each stream thread a transactional.id of its own (exactly_once_v2)"},
    {"bootstrap.servers",
     true,
     true,
     {NULL},
     "every client of eddy uses bootstrap.servers (--bootstrap): set that instead"},
    {"metadata.broker.list",
     true,
     true,
     {NULL},
     "every client of eddy uses bootstrap.servers (--bootstrap): set that instead"},
};

/* Refuses `key`=`value` for the consumer and/or the producer if it is guarded. */
static eddy_err_t check_guarded(const char *key, const char *value, bool consumer, bool producer,
                                const char *shown, const char *origin, char *errstr,
                                size_t errstr_size)
{
    for (size_t i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++) {
        const guarded_t *g = &guarded[i];
        if (strcmp(g->name, key) || !((consumer && g->consumer) || (producer && g->producer)))
            continue;
        for (int v = 0; v < 3 && g->values[v]; v++)
            if (!strcmp(g->values[v], value))
                return EDDY_OK;
        if (g->values[0])
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "%s: %s=%s: eddy needs %s=%s: %s", origin, shown, value, key,
                             g->values[0], g->why);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s: %s=%s: %s cannot be set: %s",
                         origin, shown, value, key, g->why);
    }
    return EDDY_OK;
}

static eddy_err_t add_prop(eddy_kv_t *props, int *n, const char *key, const char *value,
                           const char *origin, char *errstr, size_t errstr_size)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(props[i].key, key)) {
            free(props[i].value);
            props[i].value = strdup(value);
            return EDDY_OK;
        }
    if (*n == EDDY_CONFIG_MAX_PROPS)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "%s: more than %d client properties", origin, EDDY_CONFIG_MAX_PROPS);
    props[*n].key = strdup(key);
    props[*n].value = strdup(value);
    (*n)++;
    return EDDY_OK;
}

/* Whether a T_STR key takes `value` (any, unless it is one of choice_keys). */
static bool allowed(const key_def_t *def, const char *value)
{
    for (size_t i = 0; i < sizeof(choice_keys) / sizeof(choice_keys[0]); i++) {
        if (strcmp(choice_keys[i].name, def->name))
            continue;
        for (const char *const *c = choice_keys[i].choices; *c; c++)
            if (!strcmp(*c, value))
                return true;
        return false;
    }
    return true;
}

eddy_err_t eddy_config_set(eddy_config_t *cfg, const char *key, const char *value,
                           const char *origin, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def_t *def = &keys[i];
        if (strcmp(def->name, key))
            continue;
        void *field = (char *)cfg + def->offset;
        int64_t v;
        switch (def->type) {
        case T_STR:
            if (!allowed(def, value))
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s: %s=%s: expected %s",
                                 origin, key, value, def->help);
            free(*(char **)field);
            *(char **)field = strdup(value);
            return EDDY_OK;
        case T_INT:
            if (!eddy_parse_i64(value, def->min, def->max, &v))
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s: %s=%s: expected %s",
                                 origin, key, value, def->help);
            if (def->offset == OFF(num_stream_threads))
                *(int *)field = (int)v;
            else
                *(int64_t *)field = v;
            return EDDY_OK;
        case T_GUARANTEE:
            if (!strcmp(value, "at_least_once"))
                cfg->guarantee = EDDY_AT_LEAST_ONCE;
            else if (!strcmp(value, "exactly_once_v2") || !strcmp(value, "exactly_once"))
                cfg->guarantee = EDDY_EXACTLY_ONCE_V2;
            else
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                 "%s: %s=%s: expected at_least_once or exactly_once_v2", origin,
                                 key, value);
            return EDDY_OK;
        }
    }
    if (!strncmp(key, "consumer.", 9) && key[9])
        return check_guarded(key + 9, value, true, false, key, origin, errstr, errstr_size)
                   ? EDDY_ERR_INVALID
                   : add_prop(cfg->consumer_props, &cfg->n_consumer_props, key + 9, value, origin,
                              errstr, errstr_size);
    if (!strncmp(key, "producer.", 9) && key[9])
        return check_guarded(key + 9, value, false, true, key, origin, errstr, errstr_size)
                   ? EDDY_ERR_INVALID
                   : add_prop(cfg->producer_props, &cfg->n_producer_props, key + 9, value, origin,
                              errstr, errstr_size);

    /* A bare librdkafka property goes to both clients, if librdkafka knows it. */
    rd_kafka_conf_t *probe = rd_kafka_conf_new();
    char rderr[256];
    bool known = rd_kafka_conf_set(probe, key, value, rderr, sizeof(rderr)) == RD_KAFKA_CONF_OK;
    bool unknown_name = !known && strstr(rderr, "No such configuration property") != NULL;
    rd_kafka_conf_destroy(probe);
    if (known) {
        eddy_err_t err = check_guarded(key, value, true, true, key, origin, errstr, errstr_size);
        if (err)
            return err;
        err = add_prop(cfg->consumer_props, &cfg->n_consumer_props, key, value, origin, errstr,
                       errstr_size);
        return err ? err
                   : add_prop(cfg->producer_props, &cfg->n_producer_props, key, value, origin,
                              errstr, errstr_size);
    }
    if (!unknown_name)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s: %s=%s: %s", origin, key, value,
                         rderr);

    const char *nearest = NULL;
    size_t best = 4;
    for (size_t i = 0; i < N_KEYS; i++) {
        size_t d = eddy_topology_edit_distance(key, keys[i].name);
        if (d < best) {
            best = d;
            nearest = keys[i].name;
        }
    }
    if (nearest)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "%s: unknown setting '%s'; did you mean '%s'?", origin, key, nearest);
    return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                     "%s: unknown setting '%s' (not a Kafka Streams setting eddy knows, nor a "
                     "librdkafka property; see 'eddy run --help')",
                     origin, key);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

eddy_err_t eddy_config_load_string(eddy_config_t *cfg, const char *text, size_t len,
                                   const char *name, char *errstr, size_t errstr_size)
{
    char *line = malloc(EDDY_CONFIG_LINE_MAX + 1);
    if (!line)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    eddy_err_t err = EDDY_OK;
    size_t pos = 0;
    for (int lineno = 1; !err && pos < len; lineno++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        char origin[4200];
        snprintf(origin, sizeof(origin), "%s:%d", name, lineno);
        if (n > EDDY_CONFIG_LINE_MAX) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                            "%s: the line is longer than %d bytes", origin, EDDY_CONFIG_LINE_MAX);
            break;
        }
        if (memchr(text + pos, '\0', n)) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                            "%s: a NUL byte (is this a properties file?)", origin);
            break;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl != NULL);
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            eq = strchr(s, ':');
        if (!eq) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                            "%s: expected key=value, got '%.200s'", origin, s);
            break;
        }
        *eq = '\0';
        err = eddy_config_set(cfg, trim(s), trim(eq + 1), origin, errstr, errstr_size);
    }
    free(line);
    return err;
}

eddy_err_t eddy_config_load_file(eddy_config_t *cfg, const char *path, char *errstr,
                                 size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "%s: cannot open: %s", path,
                         strerror(errno));
    /* A properties file is small: read it whole, at most EDDY_CONFIG_FILE_MAX. */
    char *text = malloc(EDDY_CONFIG_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, EDDY_CONFIG_FILE_MAX + 1, f) : 0;
    bool failed = ferror(f);
    fclose(f);
    eddy_err_t err;
    if (!text)
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    else if (failed)
        err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "%s: cannot read", path);
    else if (len > EDDY_CONFIG_FILE_MAX)
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                        "%s: larger than %d bytes: not a properties file", path,
                        EDDY_CONFIG_FILE_MAX);
    else
        err = eddy_config_load_string(cfg, text, len, path, errstr, errstr_size);
    free(text);
    return err;
}

eddy_err_t eddy_config_check(const eddy_config_t *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg->bootstrap_servers || !*cfg->bootstrap_servers)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "bootstrap.servers is not set (--bootstrap or the config file)");
    if (!cfg->topology_path || !*cfg->topology_path)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "no topology (--topology FILE or topology= in the config file)");
    if (!*cfg->application_id)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "application.id is empty");
    for (const char *p = cfg->application_id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "application.id '%s' may hold only letters, digits, '.', '_' "
                             "and '-' (it prefixes topic names)",
                             cfg->application_id);
    if (!*cfg->state_dir)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "state.dir is empty");
    return EDDY_OK;
}

rd_kafka_conf_t *eddy_config_kafka_conf(const char *what, const char *const (*defaults)[2],
                                        size_t n, const eddy_kv_t *props, int n_props, char *errstr,
                                        size_t errstr_size)
{
    char rderr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], rderr, sizeof(rderr)))
            goto bad;
    for (int i = 0; i < n_props; i++)
        if (rd_kafka_conf_set(conf, props[i].key, props[i].value, rderr, sizeof(rderr)))
            goto bad;
    return conf;
bad:
    rd_kafka_conf_destroy(conf);
    eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s configuration: %s", what, rderr);
    return NULL;
}

rd_kafka_t *eddy_config_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                                  char *errstr, size_t errstr_size)
{
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot create the %s: %s", what, rderr);
    }
    return rk;
}

void eddy_config_help(FILE *out, const char *const *skip)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        bool skipped = false;
        for (size_t j = 0; skip && skip[j] && !skipped; j++)
            skipped = !strcmp(skip[j], keys[i].name);
        if (!skipped)
            fprintf(out, "  %s\n      %s\n", keys[i].name, keys[i].help);
    }
}

void eddy_config_log(const eddy_config_t *cfg)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const void *field = (const char *)cfg + keys[i].offset;
        switch (keys[i].type) {
        case T_STR: {
            const char *s = *(char *const *)field;
            eddy_log_info("config %s=%s", keys[i].name, s ? s : "");
            break;
        }
        case T_INT:
            if (keys[i].offset == OFF(num_stream_threads))
                eddy_log_info("config %s=%d", keys[i].name, *(const int *)field);
            else
                eddy_log_info("config %s=%lld", keys[i].name, (long long)*(const int64_t *)field);
            break;
        case T_GUARANTEE:
            eddy_log_info("config %s=%s", keys[i].name,
                          cfg->guarantee == EDDY_AT_LEAST_ONCE ? "at_least_once"
                                                               : "exactly_once_v2");
            break;
        }
    }
    for (int i = 0; i < cfg->n_consumer_props; i++)
        eddy_log_info(
            "config consumer.%s=%s", cfg->consumer_props[i].key,
            strstr(cfg->consumer_props[i].key, "password") ? "***" : cfg->consumer_props[i].value);
    for (int i = 0; i < cfg->n_producer_props; i++)
        eddy_log_info(
            "config producer.%s=%s", cfg->producer_props[i].key,
            strstr(cfg->producer_props[i].key, "password") ? "***" : cfg->producer_props[i].value);
}

ssize_t eddy_kafka_consume_batch(rd_kafka_queue_t *queue, int timeout_ms, rd_kafka_message_t **msgs,
                                 size_t max)
{
    ssize_t n = rd_kafka_consume_batch_queue(queue, 0, msgs, max);
    if (n != 0 || timeout_ms == 0 || max == 0)
        return n;
    n = rd_kafka_consume_batch_queue(queue, timeout_ms, msgs, 1); /* the wait: for one */
    if (n == 1 && max > 1) {
        ssize_t more = rd_kafka_consume_batch_queue(queue, 0, msgs + 1, max - 1);
        if (more > 0)
            n += more;
    }
    return n;
}
