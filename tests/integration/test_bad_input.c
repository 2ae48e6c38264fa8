/*
 * test_bad_input.c — what counts as a valid event, end to end: a live `eddy run`
 * of monitoring.json on the embedded broker reads generated http events with bad
 * records mixed in (between two halves of good ones, in every partition):
 *   - a timestamp in the year 9999 and one before the epoch;
 *   - a status given as the string "503", a fractional status, one out of its
 *     declared range, and a missing one;
 *   - an object-valued endpoint and a null region;
 *   - latencies outside their declared range (negative, 1e9 ms).
 * The contract (docs/running.md, "What it does"; docs/topology.md, "Fields"):
 * each bad record reaches the dead-letter topic exactly once, as it was, with its
 * exact reason and its source position; it changes no store: every window of
 * every store equals the independent reference (tests/support/reference.c),
 * nothing was dropped as late or deleted by retention; and no bad record moves a
 * partition's stream time (/api/health) or the time a view answers for (`at`).
 * Then event.time.max.future.ms: with 1 h, an event 30 minutes ahead of the wall
 * clock counts and one 2 hours ahead goes to the dead-letter topic.
 */
#include "eddy_proc.h"
#include "reference.h"
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

#define T0         1700000000000LL
#define PARTITIONS 4
#define HALF       10000 /* good events before the bad ones, and again after */

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[256];
} fixture_t;

/* The record's last header `name`, or "" if it has none. */
static const char *header(const eddy_test_record_t *rec, const char *name)
{
    const char *v = eddy_test_record_header(rec, name, NULL);
    return v ? v : "";
}

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    *state = fx;
    fx->broker = eddy_broker_new(1, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", PARTITIONS, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "bad", PARTITIONS) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "soon", PARTITIONS))
        return -1;
    eddy_test_mkdtemp("bad-input", fx->state_dir, sizeof(fx->state_dir));
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_broker_destroy(fx->broker);
    if (fx->state_dir[0])
        eddy_test_rmtree(fx->state_dir);
    free(fx);
    return 0;
}

/* A record of the http kind with one thing wrong, and the exact reason the
 * dead-letter topic must give for it. Event times are those of the good events
 * around them, so a record that got into a store would change its windows. */
#define GOOD_TS "1700000150000"
static const struct {
    const char *value;
    const char *reason;
} bad[] = {
    {"{\"ts\":253402214400000,\"endpoint\":\"/api/orders\",\"status\":200,\"latency_ms\":12.5,"
     "\"region\":\"eu-west-1\"}",
     "the timestamp is too far in the future: beyond the wall clock plus max_future (field 'ts')"},
    {"{\"ts\":-86400000,\"endpoint\":\"/api/orders\",\"status\":200,\"latency_ms\":12.5,"
     "\"region\":\"eu-west-1\"}",
     "the timestamp is before the epoch, 1970-01-01T00:00:00Z (field 'ts')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":\"/api/orders\",\"status\":\"503\",\"latency_ms\":12.5,"
     "\"region\":\"eu-west-1\"}",
     "the field holds a string; expected a whole number (field 'status')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":{\"path\":\"/api/orders\"},\"status\":200,"
     "\"latency_ms\":12.5,\"region\":\"eu-west-1\"}",
     "the field holds an object; expected a string (field 'endpoint')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":\"/api/orders\",\"status\":200,\"latency_ms\":-5,"
     "\"region\":\"eu-west-1\"}",
     "the field holds a number outside its declared range (field 'latency_ms')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":\"/api/orders\",\"status\":200,\"latency_ms\":1e9,"
     "\"region\":\"eu-west-1\"}",
     "the field holds a number outside its declared range (field 'latency_ms')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":\"/api/orders\",\"status\":503.5,\"latency_ms\":12.5,"
     "\"region\":\"eu-west-1\"}",
     "the field holds a fractional number; expected a whole number (field 'status')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":\"/api/orders\",\"status\":99,\"latency_ms\":12.5,"
     "\"region\":\"eu-west-1\"}",
     "the field holds a number outside its declared range (field 'status')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":\"/api/orders\",\"latency_ms\":12.5,"
     "\"region\":\"eu-west-1\"}",
     "the field is missing; expected a whole number (field 'status')"},
    {"{\"ts\":" GOOD_TS ",\"endpoint\":\"/api/orders\",\"status\":200,\"latency_ms\":12.5,"
     "\"region\":null}",
     "the field is null; expected a string (field 'region')"},
};
#define N_BAD (sizeof(bad) / sizeof(bad[0]))

/* Produces every bad record to every partition. */
static void produce_bad(fixture_t *fx)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", eddy_broker_bootstraps(fx->broker), NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int p = 0; p < PARTITIONS; p++)
        for (size_t i = 0; i < N_BAD; i++) {
            char key[16];
            snprintf(key, sizeof(key), "bad%zu", i);
            assert_int_equal(
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("log-events"), RD_KAFKA_V_PARTITION(p),
                                  RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE((void *)bad[i].value, strlen(bad[i].value)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                0);
        }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

/* Which bad record `rec` is, or -1 for a good one. */
static int bad_kind(const eddy_test_record_t *rec)
{
    for (size_t i = 0; i < N_BAD; i++)
        if (rec->len == strlen(bad[i].value) && !memcmp(rec->value, bad[i].value, rec->len))
            return (int)i;
    return -1;
}

/* The dead-letter topic holds each bad record of the input once, as it was (key
 * and value), with its exact reason and the source position of that record. */
static void check_dead_letters(fixture_t *fx, const eddy_test_topic_t *input)
{
    eddy_test_topic_t dlq;
    assert_int_equal(eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "bad-dlq", &dlq), 0);
    bool *used = calloc(input->n, sizeof(bool));
    size_t per_kind[N_BAD] = {0};
    for (size_t d = 0; d < dlq.n; d++) {
        const eddy_test_record_t *m = &dlq.recs[d];
        const char *reason = header(m, "eddy.error.reason");
        assert_string_equal(header(m, "eddy.source.topic"), "log-events");
        int part = atoi(header(m, "eddy.source.partition"));
        long long off = atoll(header(m, "eddy.source.offset"));
        size_t i = 0;
        while (i < input->n && !(input->recs[i].partition == part && input->recs[i].offset == off))
            i++;
        if (i == input->n)
            fail_msg("a dead letter names log-events [%d] @%lld, which is not in the input", part,
                     off);
        if (used[i])
            fail_msg("log-events [%d] @%lld is in the dead-letter topic twice", part, off);
        used[i] = true;
        assert_int_equal(m->len, input->recs[i].len);
        assert_memory_equal(m->value, input->recs[i].value, m->len);
        assert_int_equal(m->key_len, input->recs[i].key_len);
        assert_memory_equal(m->key, input->recs[i].key, m->key_len);
        int kind = bad_kind(m);
        if (kind < 0)
            fail_msg("a good record in the dead-letter topic: %s (reason: %s)", m->value, reason);
        if (strcmp(reason, bad[kind].reason) != 0)
            fail_msg("dead letter %s:\n  reason   '%s'\n  expected '%s'", m->value, reason,
                     bad[kind].reason);
        per_kind[kind]++;
    }
    for (size_t k = 0; k < N_BAD; k++)
        if (per_kind[k] != PARTITIONS)
            fail_msg("%zu dead letters of %s (reason '%s'), expected %d", per_kind[k], bad[k].value,
                     bad[k].reason, PARTITIONS);
    assert_int_equal(dlq.n, N_BAD * PARTITIONS);
    free(used);
    eddy_test_topic_free(&dlq);
}

/* Every partition's stream time is the largest event time of its good records;
 * the views answer as of the largest of those. */
static void check_stream_time(int port, const eddy_test_topic_t *input)
{
    int64_t want[PARTITIONS], want_max = INT64_MIN;
    for (int p = 0; p < PARTITIONS; p++)
        want[p] = INT64_MIN;
    for (size_t i = 0; i < input->n; i++) {
        const eddy_test_record_t *r = &input->recs[i];
        if (bad_kind(r) >= 0)
            continue;
        json_t *ev = json_loadb(r->value, r->len, 0, NULL);
        int64_t ts = json_integer_value(json_object_get(ev, "ts"));
        json_decref(ev);
        if (ts > want[r->partition])
            want[r->partition] = ts;
        if (ts > want_max)
            want_max = ts;
    }
    int status = 0;
    json_t *h = eddy_test_get_json(port, "/api/health", &status);
    assert_int_equal(status, 200);
    json_t *parts = json_object_get(h, "partitions"), *p;
    size_t j;
    assert_int_equal(json_array_size(parts), PARTITIONS);
    json_array_foreach(parts, j, p)
    {
        int part = (int)json_integer_value(json_object_get(p, "partition"));
        assert_true(part >= 0 && part < PARTITIONS);
        json_int_t got = json_integer_value(json_object_get(p, "stream_time"));
        if (got != want[part])
            fail_msg("partition %d: stream time %lld, the largest good event time is %lld", part,
                     (long long)got, (long long)want[part]);
    }
    json_decref(h);
    json_t *view = eddy_test_get_json(port, "/api/metrics/requests/current", &status);
    assert_int_equal(status, 200);
    json_int_t at = json_integer_value(json_object_get(view, "at"));
    if (at != want_max)
        fail_msg("the view answers at %lld, the largest good event time is %lld", (long long)at,
                 (long long)want_max);
    json_decref(view);
}

static void test_bad_records_change_nothing(void **state)
{
    fixture_t *fx = *state;
    const char *bs = eddy_broker_bootstraps(fx->broker);
    eddy_test_generate(bs, "log-events", EDDY_GEN_HTTP, 7, HALF, T0, 150);
    produce_bad(fx);
    eddy_test_generate(bs, "log-events", EDDY_GEN_HTTP, 8, HALF, T0 + 150000, 150);
    const int64_t total = 2 * HALF + (int64_t)(N_BAD * PARTITIONS);

    int port = eddy_test_free_port();
    eddy_test_run_t run = {.bootstrap = bs,
                           .topology = "monitoring.json",
                           .app = "bad",
                           .state_dir = fx->state_dir,
                           .port = port};
    pid_t pid = eddy_test_run_start(&run);
    json_t *h = eddy_test_wait_caught_up(port, PARTITIONS, total, 60);
    assert_int_equal(eddy_test_health_total(h, "dead_lettered"), (int64_t)(N_BAD * PARTITIONS));
    assert_int_equal(eddy_test_health_total(h, "late"), 0);
    json_decref(h);

    eddy_test_topic_t input;
    assert_int_equal(eddy_test_read_topic(bs, "log-events", &input), 0);
    assert_int_equal((int64_t)input.n, total);
    check_dead_letters(fx, &input);
    check_stream_time(port, &input);

    /* Every window of the four stores equals the reference, which rejects the same
     * records by its own reading of the rules, and keeps every good one. */
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_monitoring(port, &input, &chk), 0);
    if (chk.mismatches)
        fail_msg("%zu of %zu windows differ from the reference", chk.mismatches, chk.windows);
    assert_true(chk.windows > 0);
    assert_int_equal(chk.late, 0);
    assert_int_equal(chk.undecodable, (int64_t)(N_BAD * PARTITIONS));
    eddy_test_topic_free(&input);
    eddy_test_run_stop(pid, SIGTERM);
}

/* event.time.max.future.ms bounds event times relative to the wall clock: with
 * 1 h, an event 30 minutes ahead counts (and is its partition's stream time), one
 * 2 hours ahead is a dead letter. (Another application over the same topic: the
 * records of the test above come first and are dealt with as there.) */
static void test_max_future_setting(void **state)
{
    fixture_t *fx = *state;
    const char *bs = eddy_broker_bootstraps(fx->broker);
    eddy_test_topic_t before;
    assert_int_equal(eddy_test_read_topic(bs, "log-events", &before), 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    const int64_t soon = now_ms + 1800000, later = now_ms + 7200000;
    char value[2][256];
    for (int i = 0; i < 2; i++)
        snprintf(value[i], sizeof(value[i]),
                 "{\"ts\":%lld,\"endpoint\":\"/api/orders\",\"status\":200,\"latency_ms\":12.5,"
                 "\"region\":\"eu-west-1\"}",
                 (long long)(i ? later : soon));
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("log-events"), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE(value[i], strlen(value[i])),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);

    int port = eddy_test_free_port();
    eddy_test_run_t run = {.bootstrap = bs,
                           .topology = "monitoring.json",
                           .app = "soon",
                           .state_dir = fx->state_dir,
                           .port = port,
                           .extra = {"-X", "event.time.max.future.ms=3600000"}};
    pid_t pid = eddy_test_run_start(&run);
    json_t *h = eddy_test_wait_caught_up(port, PARTITIONS, (int64_t)before.n + 2, 60);
    assert_int_equal(eddy_test_health_total(h, "dead_lettered"), (int64_t)(N_BAD * PARTITIONS) + 1);
    json_t *p;
    size_t j;
    json_array_foreach(json_object_get(h, "partitions"), j, p)
    {
        if (json_integer_value(json_object_get(p, "partition")) == 0)
            assert_int_equal(json_integer_value(json_object_get(p, "stream_time")), soon);
    }
    json_decref(h);
    eddy_test_topic_t dlq;
    assert_int_equal(eddy_test_read_topic(bs, "soon-dlq", &dlq), 0);
    int seen = 0;
    for (size_t i = 0; i < dlq.n; i++) {
        if (dlq.recs[i].len == strlen(value[0]) &&
            !memcmp(dlq.recs[i].value, value[0], dlq.recs[i].len))
            fail_msg("the event 30 minutes ahead is a dead letter");
        if (dlq.recs[i].len != strlen(value[1]) ||
            memcmp(dlq.recs[i].value, value[1], dlq.recs[i].len))
            continue;
        seen++;
        assert_string_equal(
            header(&dlq.recs[i], "eddy.error.reason"),
            "the timestamp is too far in the future: beyond the wall clock plus max_future "
            "(field 'ts')");
    }
    assert_int_equal(seen, 1);
    eddy_test_topic_free(&dlq);
    eddy_test_topic_free(&before);
    eddy_test_run_stop(pid, SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_records_change_nothing),
        cmocka_unit_test(test_max_future_setting),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
