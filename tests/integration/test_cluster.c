/*
 * test_cluster.c — any instance answers for all partitions (docs/http.md,
 * "Cluster-wide answers"). Two `eddy run` processes with one application id
 * split the 12 partitions of log-events; each one's GET
 * /api/stores/<store>/windows must equal the reference over the whole input for
 * all four monitoring stores, cover 12 partitions and say complete; ?local=true
 * covers only its own. After one is SIGKILLed, the survivor's answer is marked
 * partial (its peer's partitions unreachable, complete false) until it has
 * taken them over, and then is whole again.
 */
#include "eddy_proc.h"
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

#define T0         1700000000000LL
#define EVENTS     40000
#define PARTITIONS 12

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[2][256];
} fixture_t;

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(3, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", PARTITIONS, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "clu", PARTITIONS))
        return -1;
    eddy_test_mkdtemp("clu0", fx->state_dir[0], sizeof(fx->state_dir[0]));
    eddy_test_mkdtemp("clu1", fx->state_dir[1], sizeof(fx->state_dir[1]));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_broker_destroy(fx->broker);
    eddy_test_rmtree(fx->state_dir[0]);
    eddy_test_rmtree(fx->state_dir[1]);
    free(fx);
    return 0;
}

static pid_t start_instance(fixture_t *fx, int i, int port)
{
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(fx->broker),
                           .topology = "monitoring.json",
                           .app = "clu",
                           .state_dir = fx->state_dir[i],
                           .port = port,
                           .extra = {"-X", "consumer.partition.assignment.strategy=roundrobin",
                                     "-X", "consumer.session.timeout.ms=3000", "-X",
                                     "consumer.heartbeat.interval.ms=500", "-X",
                                     "instances.heartbeat.ms=500"}};
    return eddy_test_run_start(&run);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Running (not restoring) partitions and committed records of one instance, and
 * how many alive instances its /api/health lists; false if it did not answer. */
static bool health(int port, int *running, int64_t *committed, int *alive)
{
    int status = 0;
    json_t *h = eddy_test_get_json(port, "/api/health", &status);
    if (!h || status != 200) {
        json_decref(h);
        return false;
    }
    json_t *p, *parts = json_object_get(h, "partitions");
    size_t j;
    *running = 0;
    json_array_foreach(parts, j, p) *running +=
        !strcmp(json_string_value(json_object_get(p, "state")), "running");
    *committed = eddy_test_health_total(h, "committed_records");
    *alive = 0;
    json_array_foreach(json_object_get(h, "instances"), j, p) *alive +=
        json_is_true(json_object_get(p, "alive"));
    json_decref(h);
    return true;
}

/* Waits until the instances on ports[0..n) together run all partitions, have
 * committed every record, and each knows n instances. */
static void wait_cluster(const int *ports, int n, int timeout_s)
{
    int total = 0, known = 0;
    int64_t records = 0;
    for (int t = 0; t < timeout_s * 10; t++, sleep_ms(100)) {
        total = 0, known = n;
        records = 0;
        bool up = true;
        for (int i = 0; i < n && up; i++) {
            int running = 0, alive = 0;
            int64_t committed = 0;
            up = health(ports[i], &running, &committed, &alive);
            total += running;
            records += committed;
            if (alive < known)
                known = alive;
        }
        if (up && total == PARTITIONS && records == EVENTS && known == n)
            return;
    }
    fail_msg("after %d s: %d of %d partitions running, %lld of %d records committed, an "
             "instance knows only %d of %d",
             timeout_s, total, PARTITIONS, (long long)records, EVENTS, known, n);
}

/* The windows answer of endpoint_stats at port (with `query` appended). */
static json_t *windows(int port, const char *query)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/stores/endpoint_stats/windows?from=0&to=9000000000000%s",
             query);
    int status = 0;
    json_t *body = eddy_test_get_json(port, path, &status);
    assert_non_null(body);
    assert_int_equal(status, 200);
    return body;
}

/* Every store of every listed instance equals the reference over the whole
 * input, and says so: complete, 12 partitions, none unreachable. */
static void check_whole(const int *ports, int n, const eddy_test_topic_t *input)
{
    for (int i = 0; i < n; i++) {
        eddy_test_check_t chk = {.max_print = 10};
        assert_int_equal(eddy_test_check_monitoring(ports[i], input, &chk), 0);
        if (chk.mismatches)
            fail_msg("instance on %d: %zu of %zu windows differ from the reference", ports[i],
                     chk.mismatches, chk.windows);
        assert_true(chk.windows > 0);
        json_t *w = windows(ports[i], "");
        assert_true(json_is_true(json_object_get(w, "complete")));
        assert_int_equal(json_array_size(json_object_get(w, "partitions")), PARTITIONS);
        assert_int_equal(json_array_size(json_object_get(w, "unreachable")), 0);
        json_decref(w);
    }
}

static void test_any_instance_answers_for_all(void **state)
{
    fixture_t *fx = *state;
    const char *bs = eddy_broker_bootstraps(fx->broker);
    eddy_test_generate(bs, "log-events", EDDY_GEN_HTTP, 7, EVENTS, T0, 300);
    eddy_test_topic_t input;
    assert_int_equal(eddy_test_read_topic(bs, "log-events", &input), 0);

    int ports[2] = {eddy_test_free_port(), 0};
    pid_t pids[2];
    pids[0] = start_instance(fx, 0, ports[0]);
    ports[1] = eddy_test_free_port();
    pids[1] = start_instance(fx, 1, ports[1]);
    wait_cluster(ports, 2, 25);

    /* 1. Each instance answers for the whole application. */
    check_whole(ports, 2, &input);
    int local_parts[2];
    for (int i = 0; i < 2; i++) {
        json_t *w = windows(ports[i], "&local=true");
        local_parts[i] = (int)json_array_size(json_object_get(w, "partitions"));
        assert_true(local_parts[i] > 0 && local_parts[i] < PARTITIONS);
        assert_false(json_is_true(json_object_get(w, "complete")));
        assert_true(json_is_true(json_object_get(w, "local")));
        json_decref(w);
    }
    assert_int_equal(local_parts[0] + local_parts[1], PARTITIONS);

    /* 2. Kill one: before the group takes its partitions away, the survivor's
     *    answer is partial and says which partitions are missing. */
    eddy_test_run_stop(pids[1], SIGKILL);
    json_t *w = windows(ports[0], "");
    assert_false(json_is_true(json_object_get(w, "complete")));
    size_t unreachable = json_array_size(json_object_get(w, "unreachable"));
    size_t covered = json_array_size(json_object_get(w, "partitions"));
    assert_true(unreachable > 0);
    assert_int_equal(covered + unreachable, PARTITIONS);
    json_decref(w);

    /* 3. Once it has taken them over, whole again. */
    wait_cluster(ports, 1, 25);
    check_whole(ports, 1, &input);
    eddy_test_run_stop(pids[0], SIGTERM);
    eddy_test_topic_free(&input);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_any_instance_answers_for_all, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
