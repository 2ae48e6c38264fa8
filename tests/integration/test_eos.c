/*
 * test_eos.c — exactly-once on the embedded broker: changelogs, restore, failed
 * commits, kill -9. Every check compares the windows eddy serves with the
 * reference recomputed from the input topic (window_check.h); none trusts eddy's
 * own numbers.
 *
 *   1. kill -9 at random moments while catching up, a wiped state dir before one
 *      restart and again at the end: the state comes back from the changelogs;
 *   2. an abandoned commit (changelog records without their marker, as a crash
 *      mid-commit leaves them) is never applied: neither when replaying after
 *      local state nor when restoring a wiped state dir;
 *   3. broker faults injected into Produce, AddPartitionsToTxn, TxnOffsetCommit
 *      and EndTxn while processing: commits are retried, aborted and rolled back,
 *      the producer recreated after a fatal error, and the result is exact;
 *   4. at_least_once after kill -9 and a wipe (see that test for what it promises);
 *   5. a missing changelog topic, or one with the wrong partition count, stops
 *      eddy at startup with a message that says what to create;
 *   6. input that retention deleted before it was processed is counted
 *      (input_lost) and logged, never skipped silently.
 */
#include "eddy_proc.h"
#include "reference.h"
#include "test_support.h"
#include "topic_reader.h"
#include "window_check.h"

#include "engine/broker.h"
#include "producer/gen.h"
#include "stores/changelog.h"

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

/* Kafka protocol ApiKeys (not in librdkafka's public headers). */
#define API_PRODUCE           0
#define API_ADD_PARTITIONS    24
#define API_END_TXN           26
#define API_TXN_OFFSET_COMMIT 28

typedef struct fixture_s {
    eddy_broker_t *broker;
    char dir[256];       /* everything of the test */
    char state_dir[300]; /* eddy's state.dir */
    char log[300];       /* eddy's stderr */
} fixture_t;

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(3, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", PARTITIONS, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "eos", PARTITIONS))
        return -1;
    eddy_test_mkdtemp("eos", fx->dir, sizeof(fx->dir));
    snprintf(fx->state_dir, sizeof(fx->state_dir), "%s/state", fx->dir);
    snprintf(fx->log, sizeof(fx->log), "%s/eddy.log", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_broker_destroy(fx->broker);
    if (getenv("EDDY_TEST_KEEP")) /* for a look at eddy.log */
        fprintf(stderr, "kept %s\n", fx->dir);
    else
        eddy_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static const char *bootstrap(fixture_t *fx)
{
    return eddy_broker_bootstraps(fx->broker);
}

static pid_t start_with(fixture_t *fx, int port, const char *guarantee, const char *setting)
{
    eddy_test_run_t run = {.bootstrap = bootstrap(fx),
                           .topology = "monitoring.json",
                           .app = "eos",
                           .state_dir = fx->state_dir,
                           .port = port,
                           .guarantee = guarantee,
                           .log_path = fx->log,
                           .extra = {setting ? "-X" : NULL, setting}};
    return eddy_test_run_start(&run);
}

static pid_t start(fixture_t *fx, int port, const char *guarantee)
{
    return start_with(fx, port, guarantee, NULL);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits until caught up with the whole input topic and compares every window of
 * every store with the reference; returns the instance's /api/health. */
static json_t *check_exact(fixture_t *fx, int port)
{
    eddy_test_topic_t input;
    assert_int_equal(eddy_test_read_topic(bootstrap(fx), "log-events", &input), 0);
    json_t *health = eddy_test_wait_caught_up(port, PARTITIONS, (int64_t)input.n, 120);
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_monitoring(port, &input, &chk), 0);
    if (chk.mismatches)
        fail_msg("%zu of %zu windows differ from the reference", chk.mismatches, chk.windows);
    assert_true(chk.windows > 100);
    eddy_test_topic_free(&input);
    return health;
}

/* Sum of "K" in every "(K of unfinished commits dropped" line of the log. */
static int64_t dropped_in_log(fixture_t *fx)
{
    FILE *f = fopen(fx->log, "r");
    assert_non_null(f);
    char line[2048];
    int64_t sum = 0;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, " of unfinished commits dropped");
        if (!p)
            continue;
        while (p > line && p[-1] != '(')
            p--;
        sum += atoll(p);
    }
    fclose(f);
    return sum;
}

static void truncate_log(fixture_t *fx)
{
    FILE *f = fopen(fx->log, "w");
    if (f)
        fclose(f);
}

/* 1. kill -9 at random moments; wipes; the changelogs bring the state back. */
static void test_kill_and_wipe(void **state)
{
    fixture_t *fx = *state;
    int port = eddy_test_free_port();
    srand(11);
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 21, 150000, T0, 600);
    for (int round = 0; round < 3; round++) {
        pid_t pid = start(fx, port, NULL);
        /* Up while it assigns, restores and catches up: somewhere in there. */
        sleep_ms(6500 + rand() % 1500);
        eddy_test_run_stop(pid, SIGKILL);
        if (round == 1)
            eddy_test_rmtree(fx->state_dir);
        eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 22 + round, 20000,
                           T0 + 600000 + round * 60000, 60);
    }
    pid_t pid = start(fx, port, NULL);
    json_t *h = check_exact(fx, port);
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);

    /* A wiped state dir, restored from the changelogs alone. */
    eddy_test_rmtree(fx->state_dir);
    pid = start(fx, port, NULL);
    h = check_exact(fx, port);
    assert_true(eddy_test_health_total(h, "restored_records") > 1000);
    /* Every task restored (twice if the two threads joined the group one after
     * the other: the eager rebalance then hands the partitions out again). */
    assert_true(eddy_test_health_total(h, "restores") >= PARTITIONS);
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);
}

/* Appends to every changelog partition of `store` a copy of its first data
 * record under a new incarnation and without a marker: what a writer that crashed
 * mid-commit leaves. Applied, it would set the window back to an early state.
 * Returns the records written. */
static int append_abandoned_commit(fixture_t *fx, const char *store)
{
    char topic[256];
    snprintf(topic, sizeof(topic), "eos-%s-changelog", store);
    eddy_test_topic_t log;
    assert_int_equal(eddy_test_read_topic(bootstrap(fx), topic, &log), 0);
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap(fx), NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    bool done[PARTITIONS] = {false};
    int written = 0;
    for (size_t i = 0; i < log.n; i++) {
        eddy_test_record_t *r = &log.recs[i];
        if (done[r->partition] || !r->key || r->key[0] != 'W')
            continue;
        uint8_t value[8192];
        assert_true(r->len <= sizeof(value));
        memcpy(value, r->value, r->len);
        eddy_changelog_data_header(value, 0xdeadbeef00000000ULL + (uint64_t)r->partition, 1);
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(r->partition),
                              RD_KAFKA_V_KEY(r->key, r->key_len), RD_KAFKA_V_VALUE(value, r->len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        done[r->partition] = true;
        written++;
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    eddy_test_topic_free(&log);
    return written;
}

/* 2. Records of a commit that never finished are not applied on restore. */
static void test_abandoned_commit_is_not_applied(void **state)
{
    fixture_t *fx = *state;
    int port = eddy_test_free_port();
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 31, 60000, T0, 300);
    /* Without snapshots, which would rewrite every window after the abandoned
     * records and so hide whether they were applied. */
    const char *no_snapshots = "changelog.snapshot.bytes=0";
    pid_t pid = start_with(fx, port, NULL, no_snapshots);
    json_decref(check_exact(fx, port));
    eddy_test_run_stop(pid, SIGTERM);

    int abandoned = append_abandoned_commit(fx, "endpoint_stats") +
                    append_abandoned_commit(fx, "requests_per_endpoint");
    assert_int_equal(abandoned, 2 * PARTITIONS);
    /* Input for other windows: the next instance's commits follow the abandoned
     * records, so the second restore meets them followed by another incarnation. */
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 32, 10000, T0 + 400000, 60);

    /* Local state: the replay after the local position reads them (the end of the
     * log: still waiting for a marker) and drops them. */
    truncate_log(fx);
    pid = start_with(fx, port, NULL, no_snapshots);
    json_decref(check_exact(fx, port));
    eddy_test_run_stop(pid, SIGTERM);
    assert_int_equal(dropped_in_log(fx), abandoned);

    /* No local state: the full restore reads them too, and drops them when the
     * next incarnation's records show their writer is gone. */
    eddy_test_rmtree(fx->state_dir);
    truncate_log(fx);
    pid = start_with(fx, port, NULL, no_snapshots);
    json_decref(check_exact(fx, port));
    eddy_test_run_stop(pid, SIGTERM);
    assert_int_equal(dropped_in_log(fx), abandoned);
}

/* 3. Broker faults during processing. */
static void test_broker_faults(void **state)
{
    fixture_t *fx = *state;
    int port = eddy_test_free_port();
    rd_kafka_mock_cluster_t *mc = eddy_broker_mock(fx->broker);
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 41, 40000, T0, 300);
    pid_t pid = start(fx, port, NULL);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, 40000, 60));
    static const struct {
        int16_t api;
        rd_kafka_resp_err_t err;
        int count;
    } faults[] = {
        /* retriable: retried by librdkafka or by eddy's commit loop */
        {API_PRODUCE, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 3},
        {API_END_TXN, RD_KAFKA_RESP_ERR_NOT_COORDINATOR, 2},
        {API_TXN_OFFSET_COMMIT, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, 2},
        /* abortable: the transaction is aborted and the tasks rolled back */
        {API_ADD_PARTITIONS, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 1},
        /* fatal: the producer is recreated */
        {API_END_TXN, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, 1},
    };
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        rd_kafka_resp_err_t errs[4];
        for (int j = 0; j < faults[i].count; j++)
            errs[j] = faults[i].err;
        rd_kafka_mock_push_request_errors_array(mc, faults[i].api, (size_t)faults[i].count, errs);
        /* New input, so the next commits carry data through the fault. */
        eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 42 + i, 10000,
                           T0 + 300000 + (int64_t)i * 30000, 30);
        sleep_ms(700);
    }
    json_t *h = check_exact(fx, port);
    assert_true(eddy_test_health_total(h, "aborted_commits") >= 2);
    assert_true(eddy_test_health_total(h, "producer_restarts") >= 1);
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);
}

/* 4. at_least_once: no transactions; the changelog markers still decide what a
 *    restore applies, so the stores stay exact through kill -9 and a wipe (what
 *    at_least_once gives up is fencing of zombie writers on a real cluster and
 *    transactional sink output). The test checks exactly that: exact windows. */
static void test_at_least_once_recovers(void **state)
{
    fixture_t *fx = *state;
    int port = eddy_test_free_port();
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 51, 100000, T0, 600);
    pid_t pid = start(fx, port, "at_least_once");
    sleep_ms(6500);
    eddy_test_run_stop(pid, SIGKILL);
    eddy_test_generate(bootstrap(fx), "log-events", EDDY_GEN_HTTP, 52, 20000, T0 + 600000, 60);
    pid = start(fx, port, "at_least_once");
    sleep_ms(7000);
    eddy_test_run_stop(pid, SIGKILL);
    eddy_test_rmtree(fx->state_dir);
    pid = start(fx, port, "at_least_once");
    json_t *h = check_exact(fx, port);
    assert_string_equal(json_string_value(json_object_get(h, "processing_guarantee")),
                        "at_least_once");
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);
}

/* Runs eddy with application id `app` until it exits; returns its stderr. */
static char *run_until_exit(fixture_t *fx, const char *app, int *status)
{
    truncate_log(fx);
    eddy_test_run_t run = {.bootstrap = bootstrap(fx),
                           .topology = "monitoring.json",
                           .app = app,
                           .state_dir = fx->state_dir,
                           .port = eddy_test_free_port(),
                           .log_path = fx->log};
    pid_t pid = eddy_test_run_start(&run);
    assert_int_equal(waitpid(pid, status, 0), pid);
    FILE *f = fopen(fx->log, "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* 5. Changelog topics are checked before anything runs. */
static void test_changelog_topics_are_checked(void **state)
{
    fixture_t *fx = *state;
    int status = 0;
    char *err = run_until_exit(fx, "nochangelogs", &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    assert_non_null(strstr(err, "changelog topic 'nochangelogs-requests_per_endpoint-changelog'"));
    assert_non_null(strstr(err, "create it with 12 partitions"));
    assert_non_null(strstr(err, "eddy broker --topology"));

    char errstr[256];
    static const char *const stores[] = {"requests_per_endpoint", "endpoint_stats", "status_codes",
                                         "region_stats"};
    for (int i = 0; i < 4; i++) {
        char name[128];
        snprintf(name, sizeof(name), "wrongcount-%s-changelog", stores[i]);
        assert_int_equal(eddy_broker_create_topic(fx->broker, name, i == 1 ? 4 : PARTITIONS, errstr,
                                                  sizeof(errstr)),
                         0);
    }
    err = run_until_exit(fx, "wrongcount", &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    assert_non_null(strstr(err, "changelog topic 'wrongcount-endpoint_stats-changelog' has 4 "
                                "partitions, but the source topic has 12"));
}

/* The low watermark of `topic` [partition]. */
static int64_t log_start(fixture_t *fx, const char *topic, int32_t partition)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap(fx), NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 10000), 0);
    rd_kafka_destroy(rk);
    return lo;
}

/* 6. The embedded broker keeps 5 MiB per partition: a processor that is stopped
 *    while 200,000 more events arrive finds its position gone. */
static void test_input_lost_to_retention_is_counted(void **state)
{
    fixture_t *fx = *state;
    char errstr[256];
    /* monitoring.json reads log-events; setup made it with 12 partitions, so a
     * broker of this test's own has a one-partition one (5 MiB fill sooner). */
    eddy_broker_t *broker = eddy_broker_new(1, errstr, sizeof(errstr));
    assert_non_null(broker);
    assert_int_equal(eddy_broker_create_topic(broker, "log-events", 1, errstr, sizeof(errstr)), 0);
    assert_int_equal(eddy_test_create_changelogs(broker, "monitoring.json", "short", 1), 0);
    const char *bs = eddy_broker_bootstraps(broker);
    eddy_test_generate(bs, "log-events", EDDY_GEN_HTTP, 61, 10000, T0, 60);
    int port = eddy_test_free_port();
    truncate_log(fx);
    eddy_test_run_t run = {.bootstrap = bs,
                           .topology = "monitoring.json",
                           .app = "short",
                           .state_dir = fx->state_dir,
                           .port = port,
                           .log_path = fx->log};
    pid_t pid = eddy_test_run_start(&run);
    json_decref(eddy_test_wait_caught_up(port, 1, 10000, 60));
    eddy_test_run_stop(pid, SIGTERM);

    eddy_test_generate(bs, "log-events", EDDY_GEN_HTTP, 62, 200000, T0 + 60000, 600);
    eddy_broker_t *saved = fx->broker;
    fx->broker = broker;
    int64_t lo = log_start(fx, "log-events", 0);
    fx->broker = saved;
    assert_true(lo > 10000); /* retention moved the log start past the position */

    pid = eddy_test_run_start(&run);
    json_t *h = eddy_test_wait_caught_up(port, 1, 210000, 60);
    assert_int_equal(eddy_test_health_total(h, "input_lost"), lo - 10000);
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);
    FILE *f = fopen(fx->log, "r");
    char line[2048];
    bool said = false;
    while (f && fgets(line, sizeof(line), f))
        said = said || strstr(line, "were deleted by retention before they were processed");
    if (f)
        fclose(f);
    assert_true(said);
    eddy_broker_destroy(broker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_and_wipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_commit_is_not_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_at_least_once_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changelog_topics_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_lost_to_retention_is_counted, setup, teardown),
    };
    if (getenv("EDDY_TEST_FILTER")) /* e.g. EDDY_TEST_FILTER='*abandoned*' */
        cmocka_set_test_filter(getenv("EDDY_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
