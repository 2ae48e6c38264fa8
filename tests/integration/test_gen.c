/*
 * test_gen.c — the load generator against the embedded broker, checked from the
 * outside: 100,000 events with a fixed seed and simulated event time go into a
 * 12-partition topic, are read back with a plain consumer, and must
 *   - all be there, spread over all 12 partitions;
 *   - each sit in the partition Kafka's Java producer would pick for its key
 *     (murmur2, computed by the test's own implementation);
 *   - each match the schema of docs/events.md;
 *   - equal, partition by partition and in order, what the event model gives for
 *     the same seed (so the same seed gives the same events), with the event time
 *     start + i*span*1000/N;
 *   - equal what `eddy gen --count 100000 --seed 1 --start-ts 1700000000000
 *     --span 600 --rate 0` (the binary) writes into another topic.
 */
#include "test_support.h"
#include "topic_reader.h"

#include "engine/broker.h"
#include "producer/gen.h"

#include <jansson.h>
#include <regex.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_EVENTS   100000
#define PARTITIONS 12
#define START_TS   1700000000000LL
#define SPAN_S     600

typedef struct fixture_s {
    eddy_broker_t *broker;
} fixture_t;

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(3, errstr, sizeof(errstr));
    if (!fx->broker) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    static const char *const topics[] = {"a", "b", "c", "act"};
    for (size_t i = 0; i < 4; i++)
        if (eddy_broker_create_topic(fx->broker, topics[i], PARTITIONS, errstr, sizeof(errstr)))
            return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_broker_destroy(fx->broker);
    free(fx);
    return 0;
}

static void generate(fixture_t *fx, const char *topic, eddy_gen_kind_t kind, uint64_t seed,
                     int64_t count)
{
    int partitions = eddy_test_generate(eddy_broker_bootstraps(fx->broker), topic, kind, seed,
                                        count, START_TS, SPAN_S);
    assert_int_equal(partitions, PARTITIONS);
}

/* Runs the `eddy gen` binary with the flags a user would give it (docs/events.md). */
static void generate_cli(fixture_t *fx, const char *topic)
{
    const char *bin = eddy_test_bin();
    if (!bin)
        fail_msg("EDDY_BIN is not set (run through ctest)");
    char *const argv[] = {
        (char *)bin, "gen",         "--bootstrap", (char *)eddy_broker_bootstraps(fx->broker),
        "--topic",   (char *)topic, "--count",     "100000",
        "--seed",    "1",           "--start-ts",  "1700000000000",
        "--span",    "600",         "--rate",      "0",
        "-q",        NULL};
    extern char **environ;
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, bin, NULL, NULL, argv, environ), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

static const char *str_field(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        fail_msg("field %s missing or not a string", name);
    return json_string_value(v);
}

/* Checks one http event against docs/events.md. */
static void check_http_schema(const eddy_test_record_t *r, regex_t *uuid)
{
    json_error_t jerr;
    json_t *ev = json_loadb(r->value, r->len, 0, &jerr);
    if (!ev)
        fail_msg("record %d/%lld is not JSON: %s", r->partition, (long long)r->offset, jerr.text);
    assert_int_equal(json_object_size(ev), 8);
    json_t *ts = json_object_get(ev, "ts");
    assert_true(json_is_integer(ts));
    assert_true(json_integer_value(ts) >= START_TS);
    assert_true(json_integer_value(ts) < START_TS + SPAN_S * 1000);
    assert_true(in_list(str_field(ev, "endpoint"), eddy_gen_http_endpoints));
    assert_true(in_list(str_field(ev, "method"), eddy_gen_http_methods));
    json_t *status = json_object_get(ev, "status");
    assert_true(json_is_integer(status));
    int code = (int)json_integer_value(status);
    assert_true(code >= 200 && code <= 599);
    json_t *lat = json_object_get(ev, "latency_ms");
    assert_true(json_is_number(lat));
    assert_true(json_number_value(lat) > 0);
    assert_true(in_list(str_field(ev, "region"), eddy_gen_http_regions));
    const char *user = str_field(ev, "user_id");
    assert_int_equal(strlen(user), 9);
    assert_memory_equal(user, "user_", 5);
    assert_int_equal(r->key_len, 9);
    assert_memory_equal(r->key, user, 9);
    assert_int_equal(regexec(uuid, str_field(ev, "request_id"), 0, NULL, 0), 0);
    json_decref(ev);
}

/* Regenerates the sequence with the model and groups it by Java partition. */
static void expected_by_partition(eddy_gen_kind_t kind, uint64_t seed, int64_t count,
                                  eddy_test_topic_t *want)
{
    eddy_gen_config_t cfg;
    eddy_gen_config_defaults(&cfg);
    cfg.count = count;
    cfg.simulated_time = true;
    cfg.start_ts = START_TS;
    cfg.span_s = SPAN_S;
    eddy_gen_model_t model;
    eddy_gen_model_init(&model, kind, seed);
    want->recs = calloc((size_t)count, sizeof(*want->recs));
    want->n = (size_t)count;
    want->partitions = PARTITIONS;
    int64_t next_offset[PARTITIONS] = {0};
    for (int64_t i = 0; i < count; i++) {
        char buf[EDDY_GEN_EVENT_MAX];
        size_t key_off, key_len;
        size_t len = eddy_gen_model_next(&model, eddy_gen_event_time(&cfg, i), buf, sizeof(buf),
                                         &key_off, &key_len);
        assert_true(len > 0);
        eddy_test_record_t *r = &want->recs[i];
        r->partition = eddy_test_java_partition(buf + key_off, key_len, PARTITIONS);
        r->offset = next_offset[r->partition]++;
        r->value = strndup(buf, len);
        r->len = len;
    }
}

static int by_partition_offset(const void *a, const void *b)
{
    const eddy_test_record_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition - y->partition;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void test_murmur2_reference(void **state)
{
    /* Published values of Kafka's Utils.murmur2, so the reference itself is right. */
    assert_int_equal(eddy_test_murmur2("1", 1), -1993445489);
    assert_int_equal(eddy_test_murmur2("12", 2), 126087238);
    assert_int_equal(eddy_test_murmur2("123", 3), -267702483);
    assert_int_equal(eddy_test_murmur2("1234", 4), -1614185708);
    assert_int_equal(eddy_test_murmur2("12345", 5), -1188365604);
}

static void test_http_events_round_trip(void **state)
{
    fixture_t *fx = *state;
    const char *bootstrap = eddy_broker_bootstraps(fx->broker);
    generate(fx, "a", EDDY_GEN_HTTP, 1, N_EVENTS); /* the library ... */
    generate_cli(fx, "b");                         /* ... and the command, same flags */
    generate(fx, "c", EDDY_GEN_HTTP, 2, N_EVENTS);

    eddy_test_topic_t a, b, c, want;
    assert_int_equal(eddy_test_read_topic(bootstrap, "a", &a), 0);
    assert_int_equal(eddy_test_read_topic(bootstrap, "b", &b), 0);
    assert_int_equal(eddy_test_read_topic(bootstrap, "c", &c), 0);
    assert_int_equal(a.n, N_EVENTS);
    assert_int_equal(b.n, N_EVENTS);

    /* Spread: every partition used, none far from the mean (10,000 users hashed). */
    size_t per_partition[PARTITIONS] = {0};
    regex_t uuid;
    assert_int_equal(
        regcomp(&uuid, "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                REG_EXTENDED | REG_NOSUB),
        0);
    for (size_t i = 0; i < a.n; i++) {
        const eddy_test_record_t *r = &a.recs[i];
        per_partition[r->partition]++;
        assert_int_equal(r->partition, eddy_test_java_partition(r->key, r->key_len, PARTITIONS));
        check_http_schema(r, &uuid);
    }
    regfree(&uuid);
    for (int p = 0; p < PARTITIONS; p++) {
        assert_true(per_partition[p] > N_EVENTS / PARTITIONS / 2);
        assert_true(per_partition[p] < N_EVENTS / PARTITIONS * 2);
    }

    /* Same seed: byte-identical payloads, partition by partition, in order. */
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.recs[i].partition, b.recs[i].partition);
        assert_int_equal(a.recs[i].offset, b.recs[i].offset);
        assert_int_equal(a.recs[i].len, b.recs[i].len);
        assert_memory_equal(a.recs[i].value, b.recs[i].value, a.recs[i].len);
    }
    /* ... and exactly the model's sequence with the documented event times. */
    expected_by_partition(EDDY_GEN_HTTP, 1, N_EVENTS, &want);
    qsort(want.recs, want.n, sizeof(*want.recs), by_partition_offset);
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.recs[i].partition, want.recs[i].partition);
        assert_string_equal(a.recs[i].value, want.recs[i].value);
    }
    /* A different seed gives different events. */
    size_t differing = 0;
    for (size_t i = 0; i < a.n && i < c.n; i++)
        differing += a.recs[i].len != c.recs[i].len ||
                     memcmp(a.recs[i].value, c.recs[i].value, a.recs[i].len) != 0;
    assert_true(differing > N_EVENTS / 2);

    eddy_test_topic_free(&a);
    eddy_test_topic_free(&b);
    eddy_test_topic_free(&c);
    eddy_test_topic_free(&want);
}

static void test_activity_events_round_trip(void **state)
{
    fixture_t *fx = *state;
    const int64_t count = 20000;
    generate(fx, "act", EDDY_GEN_ACTIVITY, 7, count);
    eddy_test_topic_t got, want;
    assert_int_equal(eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "act", &got), 0);
    assert_int_equal(got.n, count);
    expected_by_partition(EDDY_GEN_ACTIVITY, 7, count, &want);
    qsort(want.recs, want.n, sizeof(*want.recs), by_partition_offset);

    regex_t iso, user;
    assert_int_equal(regcomp(&iso,
                             "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5]"
                             "[0-9]\\.[0-9]{3}Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regcomp(&user, "^user_[0-9]{3}$", REG_EXTENDED | REG_NOSUB), 0);
    for (size_t i = 0; i < got.n; i++) {
        const eddy_test_record_t *r = &got.recs[i];
        assert_string_equal(r->value, want.recs[i].value);
        assert_int_equal(r->partition, eddy_test_java_partition(r->key, r->key_len, PARTITIONS));
        json_t *ev = json_loadb(r->value, r->len, 0, NULL);
        assert_non_null(ev);
        assert_int_equal(json_object_size(ev), 4);
        assert_int_equal(regexec(&user, str_field(ev, "user_id"), 0, NULL, 0), 0);
        assert_string_equal(r->key, str_field(ev, "user_id"));
        assert_true(in_list(str_field(ev, "event_type"), eddy_gen_activity_types));
        assert_true(strlen(str_field(ev, "element_id")) > 0);
        assert_int_equal(regexec(&iso, str_field(ev, "timestamp"), 0, NULL, 0), 0);
        json_decref(ev);
    }
    regfree(&iso);
    regfree(&user);
    eddy_test_topic_free(&got);
    eddy_test_topic_free(&want);
}

static void test_missing_topic_is_an_error(void **state)
{
    fixture_t *fx = *state;
    eddy_gen_config_t cfg;
    eddy_gen_config_defaults(&cfg);
    cfg.bootstrap = eddy_broker_bootstraps(fx->broker);
    cfg.topic = "no-such-topic";
    cfg.count = 10;
    eddy_gen_stats_t stats;
    char errstr[512];
    assert_int_equal(eddy_gen_run(&cfg, NULL, &stats, errstr, sizeof(errstr)), EDDY_ERR_NOTFOUND);
    assert_non_null(strstr(errstr, "no-such-topic"));
    assert_non_null(strstr(errstr, "eddy broker --topic"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_reference),
        cmocka_unit_test(test_http_events_round_trip),
        cmocka_unit_test(test_activity_events_round_trip),
        cmocka_unit_test(test_missing_topic_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
