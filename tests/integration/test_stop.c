/*
 * test_stop.c — a stop is quick, whatever the brokers do, and loses nothing.
 *
 * The contract (docs/running.md, "Stopping"): SIGTERM ends `eddy run` with exit
 * status 0 after its last commit; with no broker answering, the commits that
 * cannot finish are given up within a second or so (they are redone from the
 * last commit by the next start), so the stop takes seconds, not the ~45 s that
 * librdkafka's calls in flight took before. Afterwards every window equals the
 * reference (tests/support/reference.c) over the input topic.
 *
 * And the other side of "A task that cannot commit" (docs/running.md): a broker
 * outage fails commit after commit, but it is transient, so no task stops in the
 * error state; eddy retries until the brokers are back and is exact.
 */
#include "eddy_proc.h"
#include "test_support.h"
#include "topic_reader.h"
#include "window_check.h"

#include "engine/broker.h"
#include "producer/gen.h"

#include <jansson.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0         1700000000000LL
#define PARTITIONS 12
#define BROKERS    3

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[256];
} fixture_t;

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(BROKERS, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", PARTITIONS, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "stop", PARTITIONS))
        return -1;
    eddy_test_mkdtemp("stop", fx->state_dir, sizeof(fx->state_dir));
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_brokers(fixture_t *fx, bool up)
{
    rd_kafka_mock_cluster_t *mc = eddy_broker_mock(fx->broker);
    for (int b = 1; b <= BROKERS; b++)
        if (up)
            rd_kafka_mock_broker_set_up(mc, b);
        else
            rd_kafka_mock_broker_set_down(mc, b);
}

static pid_t start(fixture_t *fx, int port)
{
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(fx->broker),
                           .topology = "monitoring.json",
                           .app = "stop",
                           .state_dir = fx->state_dir,
                           .port = port};
    return eddy_test_run_start(&run);
}

/* SIGTERM, then the seconds until the process exited; fails unless it exited 0. */
static double stop_seconds(pid_t pid)
{
    double t0 = now_s();
    kill(pid, SIGTERM);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    double took = now_s() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("eddy run ended with status %d after SIGTERM", status);
    return took;
}

/* Every window of the four stores equals the reference over the input topic. */
static void check_exact(fixture_t *fx, int port)
{
    eddy_test_topic_t input;
    assert_int_equal(eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), "log-events", &input),
                     0);
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_monitoring(port, &input, &chk), 0);
    if (chk.mismatches)
        fail_msg("%zu of %zu windows differ from the reference", chk.mismatches, chk.windows);
    eddy_test_topic_free(&input);
}

static void test_stop_with_brokers_down(void **state)
{
    fixture_t *fx = *state;
    const int64_t first = 40000;
    eddy_test_generate(eddy_broker_bootstraps(fx->broker), "log-events", EDDY_GEN_HTTP, 61, first,
                       T0, 300);
    int port = eddy_test_free_port();
    pid_t pid = start(fx, port);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, first, 90));
    /* More input, so that commits with data are under way when the brokers go. */
    eddy_test_generate(eddy_broker_bootstraps(fx->broker), "log-events", EDDY_GEN_HTTP, 62, 20000,
                       T0 + 300000, 60);
    set_brokers(fx, false);
    struct timespec pause = {3, 0}; /* the clients notice: connections refused */
    nanosleep(&pause, NULL);
    double took = stop_seconds(pid);
    fprintf(stderr, "stop with every broker down took %.2f s\n", took);
    /* Before: ~41 s (calls in flight waited for librdkafka's 30 s timeouts); now
     * ~1.3 s. 5 s leaves room for a loaded machine. */
    if (took > 5.0)
        fail_msg("the stop with every broker down took %.1f s", took);

    /* Nothing lost: the next start is exact. */
    set_brokers(fx, true);
    pid = start(fx, port);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, first + 20000, 120));
    check_exact(fx, port);
    took = stop_seconds(pid);
    fprintf(stderr, "a normal stop took %.2f s\n", took);
    if (took > 8.0)
        fail_msg("a normal stop took %.1f s", took);
}

static void test_outage_is_retried(void **state)
{
    fixture_t *fx = *state;
    const int64_t first = 30000;
    eddy_test_generate(eddy_broker_bootstraps(fx->broker), "log-events", EDDY_GEN_HTTP, 71, first,
                       T0, 300);
    int port = eddy_test_free_port();
    pid_t pid = start(fx, port);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, first, 90));
    eddy_test_generate(eddy_broker_bootstraps(fx->broker), "log-events", EDDY_GEN_HTTP, 72, 20000,
                       T0 + 300000, 60);
    /* Down for 8 s: far more failed commits than task.max.failed.commits (3). */
    set_brokers(fx, false);
    struct timespec outage = {8, 0};
    nanosleep(&outage, NULL);
    set_brokers(fx, true);
    json_t *h = eddy_test_wait_caught_up(port, PARTITIONS, first + 20000, 120);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "running");
    json_t *parts = json_object_get(h, "partitions"), *p;
    size_t i;
    json_array_foreach(parts, i, p)
        assert_string_equal(json_string_value(json_object_get(p, "state")), "running");
    json_decref(h);
    check_exact(fx, port);
    stop_seconds(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stop_with_brokers_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_is_retried, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
