/*
 * test_dlq.c — bad records and failing commits never stop the good data.
 *
 * The contract (docs/running.md, "Bad input" and "A task that cannot commit"):
 *   1. a record that cannot be used reaches the dead-letter topic once, as it
 *      was: same key, same headers, a null value stays null; a copy that would
 *      not fit the producer's message limit is cut to fit, with headers giving
 *      the original sizes, and never stalls its stream thread;
 *   2. the counters agree: consumed = processed + dead-lettered, dead letters
 *      written = dead-lettered, the same in /api/health and /metrics;
 *   3. a commit that fails again and again for the same deterministic reason (a
 *      changelog record the producer can never send) puts that one task in an
 *      error state that /api/health and /metrics show; the thread's other tasks
 *      go on, and their windows equal the reference; a restart without the cause
 *      brings the task back, and then every window equals the reference.
 * Windows are compared with tests/support/reference.c over the input topic.
 */
#include "eddy_proc.h"
#include "http_client.h"
#include "test_support.h"
#include "topic_reader.h"
#include "window_check.h"

#include "engine/broker.h"
#include "producer/gen.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0         1700000000000LL
#define PARTITIONS 12
#define BIG_VALUE  1048000 /* legal on a real Kafka (1,048,588 by default) */

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[256];
} fixture_t;

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(1, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", PARTITIONS, errstr, sizeof(errstr)))
        return -1;
    if (eddy_test_create_changelogs(fx->broker, "monitoring.json", "dlq", PARTITIONS) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "stuck", PARTITIONS))
        return -1;
    eddy_test_mkdtemp("dlq", fx->state_dir, sizeof(fx->state_dir));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_broker_destroy(fx->broker);
    eddy_test_rmtree(fx->state_dir);
    free(fx);
    return 0;
}

static const char *bootstrap(fixture_t *fx)
{
    return eddy_broker_bootstraps(fx->broker);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* A producer for hand-made records, allowed records up to 2 MB. */
static rd_kafka_t *raw_producer(fixture_t *fx)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap(fx), NULL, 0);
    rd_kafka_conf_set(conf, "message.max.bytes", "2000000", NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    return rk;
}

/* Produces one record to log-events [partition]; value NULL: a tombstone. */
static void produce_raw(rd_kafka_t *rk, int partition, const char *key, const void *value,
                        size_t len, const char *const *headers)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (int i = 0; headers && headers[i]; i += 2)
        rd_kafka_header_add(h, headers[i], -1, headers[i + 1], -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC("log-events"), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err)
        rd_kafka_headers_destroy(h);
    assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static pid_t start(fixture_t *fx, const char *app, int port, const char *x1, const char *x2)
{
    eddy_test_run_t run = {.bootstrap = bootstrap(fx),
                           .topology = "monitoring.json",
                           .app = app,
                           .state_dir = fx->state_dir,
                           .port = port,
                           .threads = 2,
                           .extra = {x1 ? "-X" : NULL, x1, x2 ? "-X" : NULL, x2}};
    return eddy_test_run_start(&run);
}

/* The sum of every sample of `family` (with any labels) in a /metrics answer. */
static double metric_sum(const char *text, const char *family)
{
    double sum = 0;
    size_t n = strlen(family);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL)
        if (!strncmp(line, family, n) && (line[n] == ' ' || line[n] == '{')) {
            const char *v = line[n] == '{' ? strchr(line, '}') : line + n;
            if (v)
                sum += strtod(v + 1, NULL);
        }
    return sum;
}

/* The value of the first sample of `family` whose labels contain `label`; -1 if none. */
static double metric_value(const char *text, const char *family, const char *label)
{
    size_t n = strlen(family);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *end = strchr(line, '}');
        const char *eol = strchr(line, '\n');
        if (strncmp(line, family, n) || line[n] != '{' || !end || (eol && end > eol))
            continue;
        char labels[256];
        snprintf(labels, sizeof(labels), "%.*s", (int)(end - line - n), line + n);
        if (strstr(labels, label))
            return strtod(end + 1, NULL);
    }
    return -1;
}

static char *get_metrics(int port)
{
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http("127.0.0.1", port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    char *body = strdup(r.body);
    eddy_test_http_resp_free(&r);
    return body;
}

/* Every window of the four stores equals the reference over `input`. */
static void check_windows(int port, const eddy_test_topic_t *input)
{
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_monitoring(port, input, &chk), 0);
    if (chk.mismatches)
        fail_msg("%zu of %zu windows differ from the reference", chk.mismatches, chk.windows);
    assert_true(chk.windows > 0);
}

/* 1 and 2: an oversized bad record, a tombstone and a bad record with headers. */
static void test_dead_letters_as_they_were(void **state)
{
    fixture_t *fx = *state;
    rd_kafka_t *rk = raw_producer(fx);
    char *big = malloc(BIG_VALUE);
    memset(big, 'x', BIG_VALUE);
    memcpy(big, "oversized", 9);
    static const char *const big_headers[] = {"trace-id", "abc123", "origin", "test", NULL};
    static const char *const tomb_headers[] = {"h1", "v1", NULL};
    static const char *const small_headers[] = {"a", "1", "b", "2", NULL};
    produce_raw(rk, 3, "big", big, BIG_VALUE, big_headers);
    produce_raw(rk, 5, "gone", NULL, 0, tomb_headers);
    produce_raw(rk, 7, NULL, "{not json", 9, small_headers);
    rd_kafka_destroy(rk);
    const int64_t good = 30000, bad = 3;
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 11, good, T0, 300);

    int port = eddy_test_free_port();
    pid_t pid = start(fx, "dlq", port, NULL, NULL);
    /* Before the fix the oversized copy failed every commit of its thread: never caught up. */
    json_t *h = eddy_test_wait_caught_up(port, PARTITIONS, good + bad, 90);
    assert_int_equal(eddy_test_health_total(h, "consumed"), good + bad);
    assert_int_equal(eddy_test_health_total(h, "processed"), good);
    assert_int_equal(eddy_test_health_total(h, "dead_lettered"), bad);
    assert_int_equal(eddy_test_health_total(h, "dlq_written"), bad);
    assert_int_equal(eddy_test_health_total(h, "dlq_truncated"), 1);
    assert_int_equal(eddy_test_health_total(h, "dlq_failed"), 0);
    assert_int_equal(eddy_test_health_total(h, "aborted_commits"), 0);
    json_decref(h);

    /* /metrics says the same. */
    char *m = get_metrics(port);
    assert_int_equal((int64_t)metric_sum(m, "eddy_task_records_consumed_total"), good + bad);
    assert_int_equal((int64_t)metric_sum(m, "eddy_task_records_processed_total"), good);
    assert_int_equal((int64_t)metric_sum(m, "eddy_task_records_dead_lettered_total"), bad);
    assert_int_equal((int64_t)metric_sum(m, "eddy_dlq_records_written_total"), bad);
    assert_int_equal((int64_t)metric_sum(m, "eddy_dlq_records_truncated_total"), 1);
    assert_int_equal((int64_t)metric_sum(m, "eddy_dlq_write_failures_total"), 0);
    free(m);

    eddy_test_topic_t input, dlq;
    assert_int_equal(eddy_test_read_topic(bootstrap(fx), "log-events", &input), 0);
    check_windows(port, &input);
    eddy_test_run_stop(pid, SIGTERM);

    assert_int_equal(eddy_test_read_topic(bootstrap(fx), "dlq-dlq", &dlq), 0);
    assert_int_equal(dlq.n, bad);
    int seen = 0;
    for (size_t i = 0; i < dlq.n; i++) {
        const eddy_test_record_t *r = &dlq.recs[i];
        const char *part = eddy_test_record_header(r, "eddy.source.partition", NULL);
        const char *off = eddy_test_record_header(r, "eddy.source.offset", NULL);
        const char *reason = eddy_test_record_header(r, "eddy.error.reason", NULL);
        assert_non_null(part);
        assert_non_null(off);
        assert_non_null(reason);
        assert_string_equal(eddy_test_record_header(r, "eddy.source.topic", NULL), "log-events");
        assert_string_equal(off, "0"); /* each was the first record of its partition */
        if (!strcmp(part, "3")) {
            /* Cut to fit the producer's 1,000,000 bytes, what is left is the start. */
            assert_true(r->len > 900000 && r->len < 1000000);
            assert_memory_equal(r->value, big, r->len);
            assert_string_equal(r->key, "big");
            assert_string_equal(eddy_test_record_header(r, "trace-id", NULL), "abc123");
            assert_string_equal(eddy_test_record_header(r, "origin", NULL), "test");
            assert_string_equal(eddy_test_record_header(r, "eddy.truncated", NULL), "value");
            assert_string_equal(eddy_test_record_header(r, "eddy.original.value.size", NULL),
                                "1048000");
            assert_string_equal(eddy_test_record_header(r, "eddy.original.key.size", NULL), "3");
            seen |= 1;
        } else if (!strcmp(part, "5")) {
            assert_true(r->value_null); /* a tombstone stays a tombstone */
            assert_string_equal(r->key, "gone");
            assert_string_equal(eddy_test_record_header(r, "h1", NULL), "v1");
            assert_null(eddy_test_record_header(r, "eddy.truncated", NULL));
            seen |= 2;
        } else if (!strcmp(part, "7")) {
            assert_false(r->value_null);
            assert_null(r->key);
            assert_int_equal(r->len, 9);
            assert_memory_equal(r->value, "{not json", 9);
            assert_string_equal(eddy_test_record_header(r, "a", NULL), "1");
            assert_string_equal(eddy_test_record_header(r, "b", NULL), "2");
            assert_null(eddy_test_record_header(r, "eddy.truncated", NULL));
            seen |= 4;
        } else {
            fail_msg("a dead letter from partition %s", part);
        }
    }
    assert_int_equal(seen, 7);
    eddy_test_topic_free(&dlq);
    eddy_test_topic_free(&input);
    free(big);
}

/* The partition's entry in /api/health's partitions, or NULL. */
static json_t *health_partition(json_t *health, int partition)
{
    json_t *parts = json_object_get(health, "partitions"), *p;
    size_t i;
    json_array_foreach(parts, i, p) if (json_integer_value(json_object_get(p, "partition")) ==
                                        partition) return p;
    return NULL;
}

/* Input without the records of one partition. */
static void without_partition(const eddy_test_topic_t *in, int partition, eddy_test_topic_t *out)
{
    *out = *in;
    out->recs = calloc(in->n ? in->n : 1, sizeof(*out->recs));
    out->n = 0;
    for (size_t i = 0; i < in->n; i++)
        if (in->recs[i].partition != partition)
            out->recs[out->n++] = in->recs[i];
}

/* 3: one task's changelog record can never be sent. */
static void test_deterministic_failure_stops_one_task(void **state)
{
    fixture_t *fx = *state;
    const int stuck = 4;
    /* A valid event whose group key (a 1000-byte endpoint) makes a changelog record
     * larger than the 1000 bytes the processor's producer is allowed below. */
    char event[1200], endpoint[1001];
    memset(endpoint, 'e', 1000);
    endpoint[0] = '/';
    endpoint[1000] = '\0';
    snprintf(event, sizeof(event),
             "{\"ts\":%lld,\"endpoint\":\"%s\",\"status\":200,\"latency_ms\":12,"
             "\"region\":\"eu\"}",
             (long long)T0, endpoint);
    rd_kafka_t *rk = raw_producer(fx);
    produce_raw(rk, stuck, "k", event, strlen(event), NULL);
    rd_kafka_destroy(rk);
    const int64_t good = 30000;
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 21, good, T0, 300);
    eddy_test_topic_t input, others;
    assert_int_equal(eddy_test_read_topic(bootstrap(fx), "log-events", &input), 0);
    without_partition(&input, stuck, &others);
    int64_t others_total = (int64_t)others.n;

    int port = eddy_test_free_port();
    pid_t pid = start(fx, "stuck", port, "producer.message.max.bytes=1000", NULL);
    /* Wait for the task to be in error and the other partitions to be caught up. */
    json_t *h = NULL;
    json_t *p = NULL;
    int64_t committed = 0;
    for (int i = 0; i < 120 * 10; i++) {
        json_decref(h);
        int status = 0;
        h = eddy_test_get_json(port, "/api/health", &status);
        p = h ? health_partition(h, stuck) : NULL;
        committed = h ? eddy_test_health_total(h, "committed_records") : 0;
        if (p && !strcmp(json_string_value(json_object_get(p, "state")), "error") &&
            committed >= others_total)
            break;
        sleep_ms(100);
    }
    if (!p || strcmp(json_string_value(json_object_get(p, "state")), "error"))
        fail_msg("partition %d is not in the error state: %s", stuck,
                 p ? json_string_value(json_object_get(p, "state")) : "(not owned)");
    assert_int_equal(committed, others_total); /* the task in error committed nothing */
    json_t *e = json_object_get(p, "error");
    assert_non_null(e);
    const char *reason = json_string_value(json_object_get(e, "reason"));
    assert_non_null(reason);
    if (!strstr(reason, "too large"))
        fail_msg("error reason: %s", reason);
    assert_true(json_integer_value(json_object_get(e, "failed_commits")) >= 3);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
    /* It stays there: no endless retries. */
    int64_t aborts = eddy_test_health_total(h, "aborted_commits");
    json_decref(h);
    sleep_ms(3000);
    int status = 0;
    h = eddy_test_get_json(port, "/api/health", &status);
    assert_int_equal(eddy_test_health_total(h, "aborted_commits"), aborts);
    assert_string_equal(json_string_value(json_object_get(health_partition(h, stuck), "state")),
                        "error");
    json_decref(h);
    char *m = get_metrics(port);
    if (!strstr(m, "eddy_tasks{state=\"error\"} 1"))
        fail_msg("/metrics has no task in error");
    char want[64];
    snprintf(want, sizeof(want), "partition=\"%d\"", stuck);
    assert_true(metric_sum(m, "eddy_task_failed") == 1);
    assert_true(metric_value(m, "eddy_task_failed", want) == 1);
    free(m);
    /* Answers say which partition they lack, and the others are exact. */
    json_t *w = eddy_test_get_json(port, "/api/stores/requests_per_endpoint/windows", &status);
    assert_int_equal(status, 200);
    assert_false(json_is_true(json_object_get(w, "complete")));
    json_t *failed = json_object_get(w, "failed");
    assert_int_equal(json_array_size(failed), 1);
    assert_int_equal(json_integer_value(json_array_get(failed, 0)), stuck);
    json_decref(w);
    check_windows(port, &others);
    eddy_test_run_stop(pid, SIGTERM);

    /* Without the limit the record fits: the task comes back and all is exact. */
    pid = start(fx, "stuck", port, NULL, NULL);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, (int64_t)input.n, 90));
    check_windows(port, &input);
    eddy_test_run_stop(pid, SIGTERM);
    free(others.recs);
    eddy_test_topic_free(&input);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dead_letters_as_they_were, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic_failure_stops_one_task, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
