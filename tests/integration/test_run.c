/*
 * test_run.c — `eddy run` end to end, checked against the reference
 * implementation (tests/support/reference.c), never against eddy's own code.
 *
 * monitoring.json over 200,000 generated http events (fixed seeds, simulated
 * event time over 15 minutes, 12 partitions, 2 stream threads):
 *   1. the first half is processed, then the processor is killed with SIGKILL;
 *   2. the second half is produced and a new processor resumes from its state dir;
 *   3. it is stopped cleanly (SIGTERM), malformed records and records far in the
 *      past are added, and a third processor catches up;
 * after each step every window of all four stores must equal the reference:
 * counts and error counts exactly, means to rounding, percentiles within the
 * sketch's 1% of the exact value; and late and undecodable records are counted.
 *
 * activity.json over 100,000 activity events (ISO-8601 timestamps): counts
 * exact, distinct users within the HyperLogLog's error.
 */
#include "eddy_proc.h"
#include "reference.h"
#include "test_support.h"
#include "topic_reader.h"
#include "window_check.h"

#include "engine/broker.h"
#include "producer/gen.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[256];
} fixture_t;

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(3, errstr, sizeof(errstr));
    if (!fx->broker)
        return -1;
    static const char *const topics[] = {"log-events", "user-events", "event-metrics"};
    for (int i = 0; i < 3; i++)
        if (eddy_broker_create_topic(fx->broker, topics[i], 12, errstr, sizeof(errstr)))
            return -1;
    if (eddy_test_create_changelogs(fx->broker, "monitoring.json", "mon", 12) ||
        eddy_test_create_changelogs(fx->broker, "activity.json", "act", 12) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "reb", 12))
        return -1;
    eddy_test_mkdtemp("run", fx->state_dir, sizeof(fx->state_dir));
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

/* --- processes and HTTP ------------------------------------------------------- */

static pid_t start_eddy(fixture_t *fx, const char *topology, const char *app, int port)
{
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(fx->broker),
                           .topology = topology,
                           .app = app,
                           .state_dir = fx->state_dir,
                           .port = port};
    return eddy_test_run_start(&run);
}

/* --- comparison ------------------------------------------------------------------ */

/* Compares every window of `store` served by eddy with the reference; any
 * mismatch (window_check.h prints the first ones) fails the test. */
static void compare_store(int port, const char *store, const ref_spec_t *spec,
                          const eddy_test_topic_t *input, eddy_test_check_kind_t kind,
                          int64_t *late)
{
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_store(port, store, spec, input, kind, &chk), 0);
    if (chk.mismatches)
        fail_msg("%s: %zu of %zu windows differ from the reference", store, chk.mismatches,
                 chk.windows);
    *late += chk.late;
}

static void compare_monitoring(fixture_t *fx, int port, int64_t *late, int64_t *undecodable)
{
    eddy_test_topic_t input;
    assert_int_equal(eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "log-events", &input),
                     0);
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_monitoring(port, &input, &chk), 0);
    if (chk.mismatches)
        fail_msg("monitoring: %zu of %zu windows differ from the reference", chk.mismatches,
                 chk.windows);
    assert_true(chk.windows > 0);
    *late = chk.late;
    *undecodable = chk.undecodable;
    eddy_test_topic_free(&input);
}

static void generate(fixture_t *fx, const char *topic, eddy_gen_kind_t kind, uint64_t seed,
                     int64_t count, int64_t start, double span)
{
    eddy_test_generate(eddy_broker_bootstraps(fx->broker), topic, kind, seed, count, start, span);
}

/* Malformed records, one of each kind the decoder must reject, and the reason
 * the dead-letter topic must give for each (a part of it). */
static const char *const bad[] = {
    "not json at all",
    "[1,2,3]",
    "{\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
    "{\"ts\":\"yesterday\",\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":1,"
    "\"region\":\"r\"}",
    "{\"ts\":1700000500000,\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
    "{\"ts\":1700000500000,\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":\"slow\","
    "\"region\":\"r\"}",
    "{\"ts\":-5,\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
    "{\"ts\":1700000500000,\"endpoint\":[1],\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
};
static const char *const bad_reason[] = {
    "not valid JSON",
    "not a JSON object",
    "the field is missing; expected epoch milliseconds (a number) (field 'ts')",
    "the field holds a string; expected epoch milliseconds (a number) (field 'ts')",
    "the field is missing; expected a string (field 'endpoint')",
    "the field holds a string; expected a number (field 'latency_ms')",
    "the timestamp is before the epoch, 1970-01-01T00:00:00Z (field 'ts')",
    "the field holds an array; expected a string (field 'endpoint')",
};
#define N_BAD (sizeof(bad) / sizeof(bad[0]))

/* Produces every malformed record 12 times, keyed to spread. */
static int64_t produce_malformed(fixture_t *fx)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", eddy_broker_bootstraps(fx->broker), NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    int64_t n = 0;
    for (int rep = 0; rep < 12; rep++)
        for (size_t i = 0; i < N_BAD; i++, n++) {
            char key[16];
            snprintf(key, sizeof(key), "k%d", rep);
            assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("log-events"),
                                               RD_KAFKA_V_KEY(key, strlen(key)),
                                               RD_KAFKA_V_VALUE((void *)bad[i], strlen(bad[i])),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END),
                             0);
        }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    return n;
}

static const char *header(rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t size)
{
    const void *v = NULL;
    size_t len = 0;
    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &len) || len >= size)
        return "";
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

/* Reads the dead-letter topic mon-dlq to its end: it must hold each malformed
 * record of the input exactly once (a clean run), as it was (key and value), with
 * headers naming the reason and the input record it came from. */
static void check_dead_letters(fixture_t *fx, int64_t expected)
{
    eddy_test_topic_t input;
    const char *bs = eddy_broker_bootstraps(fx->broker);
    assert_int_equal(eddy_test_read_topic(bs, "log-events", &input), 0);
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "dlq-check", NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(12);
    for (int p = 0; p < 12; p++)
        rd_kafka_topic_partition_list_add(parts, "mon-dlq", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    int64_t seen = 0;
    size_t per_kind[N_BAD] = {0};
    bool *used = calloc(input.n, sizeof(bool));
    int eofs = 0;
    time_t deadline = time(NULL) + 30;
    while (eofs < 12 && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else {
            assert_int_equal(m->err, 0);
            rd_kafka_headers_t *h = NULL;
            rd_kafka_message_headers(m, &h);
            char b[4][512];
            const char *reason = header(h, "eddy.error.reason", b[0], sizeof(b[0]));
            assert_string_equal(header(h, "eddy.source.topic", b[1], sizeof(b[1])), "log-events");
            int part = atoi(header(h, "eddy.source.partition", b[2], sizeof(b[2])));
            long long off = atoll(header(h, "eddy.source.offset", b[3], sizeof(b[3])));
            /* The input record it names is this very record, seen only once. */
            size_t i = 0;
            while (i < input.n && !(input.recs[i].partition == part && input.recs[i].offset == off))
                i++;
            if (i == input.n)
                fail_msg("dead letter names log-events [%d] @%lld, which is not in the input", part,
                         off);
            assert_false(used[i]);
            used[i] = true;
            assert_int_equal(m->len, input.recs[i].len);
            assert_memory_equal(m->payload, input.recs[i].value, m->len);
            assert_int_equal(m->key_len, input.recs[i].key_len);
            assert_memory_equal(m->key, input.recs[i].key, m->key_len);
            size_t kind = 0;
            while (kind < N_BAD &&
                   (strlen(bad[kind]) != m->len || memcmp(bad[kind], m->payload, m->len)))
                kind++;
            if (kind == N_BAD)
                fail_msg("a valid record in the dead-letter topic: %.*s", (int)m->len,
                         (const char *)m->payload);
            if (strcmp(reason, bad_reason[kind]) != 0)
                fail_msg("dead letter '%s': reason '%s', expected '%s'", bad[kind], reason,
                         bad_reason[kind]);
            per_kind[kind]++;
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eofs, 12);
    assert_int_equal(seen, expected);
    for (size_t k = 0; k < N_BAD; k++)
        assert_int_equal(per_kind[k], 12);
    free(used);
    rd_kafka_destroy(rk);
    eddy_test_topic_free(&input);
}

static void test_monitoring_exact_across_restarts(void **state)
{
    fixture_t *fx = *state;
    int port = eddy_test_free_port();
    int64_t late, undecodable;

    /* 1. First half, processed, then SIGKILL. */
    generate(fx, "log-events", EDDY_GEN_HTTP, 42, 100000, T0, 450);
    pid_t pid = start_eddy(fx, "monitoring.json", "mon", port);
    json_decref(eddy_test_wait_caught_up(port, 12, 100000, 60));
    compare_monitoring(fx, port, &late, &undecodable);
    eddy_test_run_stop(pid, SIGKILL);

    /* 2. Second half; a new process resumes from the state dir. */
    generate(fx, "log-events", EDDY_GEN_HTTP, 43, 100000, T0 + 450000, 450);
    pid = start_eddy(fx, "monitoring.json", "mon", port);
    json_decref(eddy_test_wait_caught_up(port, 12, 200000, 60));
    compare_monitoring(fx, port, &late, &undecodable);
    assert_int_equal(late, 0);

    /* 3. Clean stop; malformed and late records; catch up again. */
    eddy_test_run_stop(pid, SIGTERM);
    int64_t n_bad = produce_malformed(fx);
    generate(fx, "log-events", EDDY_GEN_HTTP, 44, 1000, T0 - 3600000, 60);
    pid = start_eddy(fx, "monitoring.json", "mon", port);
    json_t *h = eddy_test_wait_caught_up(port, 12, 200000 + n_bad + 1000, 60);
    compare_monitoring(fx, port, &late, &undecodable);
    assert_int_equal(undecodable, n_bad);
    assert_int_equal(eddy_test_health_total(h, "dead_lettered"), n_bad);
    assert_int_equal(eddy_test_health_total(h, "dlq_written"), n_bad);
    check_dead_letters(fx, n_bad);
    assert_true(late >= 1000 * 8); /* every window of every store closed: 1+1+5+1 each */
    assert_int_equal(eddy_test_health_total(h, "late"), late);
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);
}

/* The sink topic must carry every final window of the three stores exactly once,
 * merged across partitions: final = its end + grace is behind the stream time of
 * every partition. */
static void check_sink(fixture_t *fx, const eddy_test_topic_t *input)
{
    int64_t part_time[12];
    for (int p = 0; p < 12; p++)
        part_time[p] = INT64_MIN;
    for (size_t i = 0; i < input->n; i++) {
        json_t *ev = json_loadb(input->recs[i].value, input->recs[i].len, 0, NULL);
        int64_t ts = ref_parse_iso8601(json_string_value(json_object_get(ev, "timestamp")));
        if (ts > part_time[input->recs[i].partition])
            part_time[input->recs[i].partition] = ts;
        json_decref(ev);
    }
    int64_t min_time = INT64_MAX;
    for (int p = 0; p < 12; p++)
        min_time = part_time[p] < min_time ? part_time[p] : min_time;
    const int64_t cutoff = min_time - 60000 - 30000 + 1;

    static const char *const stores[] = {"events_per_type", "events_per_element", "active_users"};
    static const char *const groups[] = {"event_type", "element_id", NULL};
    ref_result_t refs[3];
    size_t want = 0;
    for (int s = 0; s < 3; s++) {
        ref_spec_t spec = {.time_field = "timestamp",
                           .time_iso = true,
                           .size_ms = 60000,
                           .advance_ms = 60000,
                           .grace_ms = 30000,
                           .distinct_field = "user_id",
                           .group_field = groups[s],
                           .checks = {{.field = "event_type"}, {.field = "element_id"}}};
        ref_compute(&spec, input, &refs[s]);
        for (size_t i = 0; i < refs[s].n; i++)
            want += refs[s].windows[i].start < cutoff;
    }
    assert_true(want > 0);
    eddy_test_topic_t out = {0};
    for (int tries = 0; tries < 100; tries++) {
        eddy_test_topic_free(&out);
        assert_int_equal(
            eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "event-metrics", &out), 0);
        if (out.n >= want)
            break;
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(out.n, want);
    for (size_t i = 0; i < out.n; i++) {
        json_t *w = json_loadb(out.recs[i].value, out.recs[i].len, 0, NULL);
        assert_non_null(w);
        assert_true(json_is_true(json_object_get(w, "final")));
        const char *store = json_string_value(json_object_get(w, "store"));
        int s = !strcmp(store, stores[0]) ? 0 : !strcmp(store, stores[1]) ? 1 : 2;
        assert_string_equal(store, stores[s]);
        int64_t start = json_integer_value(json_object_get(w, "start"));
        const char *key = json_string_value(json_object_get(w, "key"));
        assert_true(start < cutoff);
        const ref_window_t *rw = ref_find(&refs[s], start, key);
        assert_non_null(rw);
        const char *count_name = s == 2 ? "events" : "count";
        assert_int_equal(json_integer_value(json_object_get(w, count_name)), rw->count);
        /* Exactly once in the sink: mark the reference window as seen. */
        assert_true(rw->count >= 0);
        ((ref_window_t *)rw)->count = -1;
        json_decref(w);
    }
    for (int s = 0; s < 3; s++)
        ref_result_free(&refs[s]);
    eddy_test_topic_free(&out);
}

/* Bad requests get a JSON error with the right status code. */
static void check_errors(int port)
{
    static const struct {
        const char *method, *path;
        int status;
    } cases[] = {
        {"GET", "/api/stores/no_such_store/windows", 404},
        {"GET", "/api/stores/active_users/windows?from=yesterday", 400},
        {"GET", "/api/stores/active_users/windows?from=10&to=5", 400},
        {"POST", "/api/stores", 405},
        {"GET", "/api/nothing/here", 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = 0;
        json_t *body = eddy_test_call_json(port, cases[i].method, cases[i].path, &status);
        assert_int_equal(status, cases[i].status);
        json_t *err = json_object_get(body, "error");
        assert_int_equal(json_integer_value(json_object_get(err, "status")), cases[i].status);
        assert_true(json_string_length(json_object_get(err, "message")) > 0);
        json_decref(body);
    }
    int status = 0;
    json_t *stores = eddy_test_get_json(port, "/api/stores", &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(stores, "stores")), 3);
    json_decref(stores);
}

static void test_activity_iso_timestamps(void **state)
{
    fixture_t *fx = *state;
    int port = eddy_test_free_port();
    generate(fx, "user-events", EDDY_GEN_ACTIVITY, 5, 100000, T0, 600);
    pid_t pid = start_eddy(fx, "activity.json", "act", port);
    json_decref(eddy_test_wait_caught_up(port, 12, 100000, 60));
    eddy_test_topic_t input;
    assert_int_equal(
        eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "user-events", &input), 0);
    ref_spec_t s = {.time_field = "timestamp",
                    .time_iso = true,
                    .size_ms = 60000,
                    .advance_ms = 60000,
                    .grace_ms = 30000,
                    .distinct_field = "user_id",
                    .checks = {{.field = "event_type"}, {.field = "element_id"}}};
    int64_t late = 0;
    s.group_field = "event_type";
    compare_store(port, "events_per_type", &s, &input, EDDY_TEST_CHECK_ACTIVITY, &late);
    s.group_field = "element_id";
    compare_store(port, "events_per_element", &s, &input, EDDY_TEST_CHECK_ACTIVITY, &late);
    s.group_field = NULL;
    compare_store(port, "active_users", &s, &input, EDDY_TEST_CHECK_ACTIVITY, &late);
    assert_int_equal(late, 0);
    check_sink(fx, &input);
    check_errors(port);
    eddy_test_topic_free(&input);

    /* The sink goes on where its last transaction ended, even from a wiped state
     * dir (its progress is in act-sinks-changelog): the windows sent before are
     * not sent again, the ones that close now are sent once. */
    eddy_test_run_stop(pid, SIGKILL);
    eddy_test_rmtree(fx->state_dir);
    generate(fx, "user-events", EDDY_GEN_ACTIVITY, 6, 20000, T0 + 600000, 120);
    pid = start_eddy(fx, "activity.json", "act", port);
    json_decref(eddy_test_wait_caught_up(port, 12, 120000, 60));
    sleep(2); /* a few sink ticks after the catch-up */
    assert_int_equal(
        eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "user-events", &input), 0);
    check_sink(fx, &input);
    eddy_test_topic_free(&input);
    eddy_test_run_stop(pid, SIGTERM);
}

/* Partitions owned and records committed by an instance, from /api/health. */
static void instance_progress(int port, int *owned, int64_t *committed)
{
    int status = 0;
    json_t *h = eddy_test_get_json(port, "/api/health", &status);
    *owned = h ? (int)json_array_size(json_object_get(h, "partitions")) : 0;
    *committed = h ? eddy_test_health_total(h, "committed_records") : 0;
    json_decref(h);
}

/* Adds an instance's window counts of `store` into `sums` (a JSON object keyed
 * "start/key"). */
static void add_counts(int port, const char *store, json_t *sums)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/stores/%s/windows?local=true", store); /* this one's share */
    int status = 0;
    json_t *res = eddy_test_get_json(port, path, &status);
    assert_int_equal(status, 200);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(res, "windows"), i, w)
    {
        char id[256];
        snprintf(id, sizeof(id), "%lld/%s",
                 (long long)json_integer_value(json_object_get(w, "start")),
                 json_string_value(json_object_get(w, "key")));
        json_int_t n = json_integer_value(json_object_get(w, "count"));
        json_object_set_new(sums, id,
                            json_integer(json_integer_value(json_object_get(sums, id)) + n));
    }
    json_decref(res);
}

/* Two instances of one application split the partitions; together they hold
 * exactly the reference counts. When one dies, the other takes its partitions back
 * (replaying from the changelogs what B committed meanwhile) and alone holds the
 * exact windows again. B started without state for A's partitions: it restored
 * them from the changelogs. */
static void test_rebalance_two_instances(void **state)
{
    fixture_t *fx = *state;
    eddy_test_topic_t input;
    assert_int_equal(eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "log-events", &input),
                     0);
    const int64_t n = (int64_t)input.n;
    char dir_a[256], dir_b[256];
    snprintf(dir_a, sizeof(dir_a), "%.200s/a", fx->state_dir);
    snprintf(dir_b, sizeof(dir_b), "%.200s/b", fx->state_dir);
    int port_a = eddy_test_free_port(), port_b = eddy_test_free_port();
    char saved[256];
    snprintf(saved, sizeof(saved), "%s", fx->state_dir);

    snprintf(fx->state_dir, sizeof(fx->state_dir), "%s", dir_a);
    pid_t a = start_eddy(fx, "monitoring.json", "reb", port_a);
    json_decref(eddy_test_wait_caught_up(port_a, 12, n, 60));
    snprintf(fx->state_dir, sizeof(fx->state_dir), "%s", dir_b);
    pid_t b = start_eddy(fx, "monitoring.json", "reb", port_b);
    snprintf(fx->state_dir, sizeof(fx->state_dir), "%s", saved);

    /* Wait until the two own all 12 partitions between them and are caught up. */
    int owned_a = 0, owned_b = 0;
    int64_t done_a = 0, done_b = 0;
    for (int i = 0; i < 600; i++) {
        instance_progress(port_a, &owned_a, &done_a);
        instance_progress(port_b, &owned_b, &done_b);
        if (owned_a > 0 && owned_b > 0 && owned_a + owned_b == 12 && done_a + done_b >= n)
            break;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (!(owned_a > 0 && owned_b > 0 && owned_a + owned_b == 12 && done_a + done_b >= n))
        fail_msg("instances own %d + %d partitions and committed %lld + %lld of %lld records",
                 owned_a, owned_b, (long long)done_a, (long long)done_b, (long long)n);

    const ref_spec_t spec = eddy_test_monitoring_spec("endpoint");
    ref_result_t ref;
    ref_compute(&spec, &input, &ref);
    json_t *sums = json_object();
    add_counts(port_a, "endpoint_stats", sums);
    add_counts(port_b, "endpoint_stats", sums);
    assert_int_equal(json_object_size(sums), ref.n);
    for (size_t i = 0; i < ref.n; i++) {
        char id[REF_KEY_MAX + 32];
        snprintf(id, sizeof(id), "%lld/%s", (long long)ref.windows[i].start, ref.windows[i].key);
        assert_int_equal(json_integer_value(json_object_get(sums, id)), ref.windows[i].count);
    }
    json_decref(sums);
    ref_result_free(&ref);

    /* B dies; A gets its partitions back after the session timeout and is exact. */
    eddy_test_run_stop(b, SIGKILL);
    for (int i = 0; i < 600 && owned_a < 12; i++) {
        instance_progress(port_a, &owned_a, &done_a);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(owned_a, 12);
    json_decref(eddy_test_wait_caught_up(port_a, 12, n, 60));
    int64_t late, undecodable;
    compare_monitoring(fx, port_a, &late, &undecodable);
    eddy_test_run_stop(a, SIGTERM);
    eddy_test_topic_free(&input);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitoring_exact_across_restarts),
        cmocka_unit_test(test_activity_iso_timestamps),
        cmocka_unit_test(test_rebalance_two_instances),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
