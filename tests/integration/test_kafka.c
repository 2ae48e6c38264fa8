/*
 * test_kafka.c — eddy on a real Apache Kafka: a single KRaft node started by
 * scripts/kafka in a temporary directory (Java and Maven needed: without them the
 * test fails, it does not skip). `eddy run` creates its changelogs, dead-letter
 * and instances topics there through the Admin API, processes generated HTTP
 * events with exactly-once transactions, and every window of the four stores of
 * monitoring.json is compared with the reference recomputed from the input read
 * back (window_check.h); then kill -9, more input, a restart that resumes from
 * the state dir and the changelogs, and the same comparison; then a wiped state
 * dir, restored from the changelogs alone (read_committed, past the transaction
 * markers a real broker writes), and the same comparison.
 */
#include "eddy_proc.h"
#include "test_support.h"
#include "topic_reader.h"
#include "window_check.h"

#include "producer/gen.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0         1700000000000LL
#define PARTITIONS 12

typedef struct fixture_s {
    char dir[256];       /* everything of the test */
    char kafka_dir[300]; /* scripts/kafka --dir */
    char state_dir[300]; /* eddy's state.dir */
    char log[300];       /* eddy's stderr */
    char bootstrap[512]; /* bootstrap.servers of the cluster */
    bool up;             /* scripts/kafka up succeeded */
} fixture_t;

/* Runs scripts/kafka with `args`; its output goes to DIR/kafka.out. Returns its
 * exit status. */
static int kafka(fixture_t *fx, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s/scripts/kafka' %s --dir '%s' >>'%s/kafka.out' 2>&1",
             EDDY_SOURCE_DIR, args, fx->kafka_dir, fx->dir);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    while (f && fgets(line, sizeof(line), f))
        fprintf(stderr, "  | %s", line);
    if (f)
        fclose(f);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    eddy_test_mkdtemp("kafka", fx->dir, sizeof(fx->dir));
    snprintf(fx->kafka_dir, sizeof(fx->kafka_dir), "%s/kafka", fx->dir);
    snprintf(fx->state_dir, sizeof(fx->state_dir), "%s/state", fx->dir);
    snprintf(fx->log, sizeof(fx->log), "%s/eddy.log", fx->dir);
    *state = fx;
    /* --owner: the cluster goes down with this process, even if it is killed. */
    char args[128];
    snprintf(args, sizeof(args), "up --nodes 1 --owner %d --timeout 180", (int)getpid());
    int rc = kafka(fx, args);
    if (rc == 0) {
        snprintf(args, sizeof(args), "topics log-events:%d", PARTITIONS);
        rc = kafka(fx, args);
    }
    char path[400];
    snprintf(path, sizeof(path), "%s/bootstrap", fx->kafka_dir);
    FILE *f = rc == 0 ? fopen(path, "r") : NULL;
    if (!f || !fgets(fx->bootstrap, sizeof(fx->bootstrap), f) ||
        strncmp(fx->bootstrap, "bootstrap.servers=", 18)) {
        snprintf(path, sizeof(path), "%s/kafka.out", fx->dir);
        fprintf(stderr,
                "test_kafka: scripts/kafka could not start a real Kafka (exit %d); this "
                "test needs Java 17+ and Maven (scripts/install-deps):\n",
                rc);
        print_file(path);
        if (f)
            fclose(f);
        return 0; /* the test itself fails, loudly: a missing Kafka is no reason to skip */
    }
    fclose(f);
    memmove(fx->bootstrap, fx->bootstrap + 18, strlen(fx->bootstrap + 18) + 1);
    fx->bootstrap[strcspn(fx->bootstrap, "\r\n")] = '\0';
    fx->up = true;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    kafka(fx, "down");
    if (getenv("EDDY_TEST_KEEP")) /* for a look at eddy.log and the broker's log */
        fprintf(stderr, "kept %s\n", fx->dir);
    else
        eddy_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static pid_t start(fixture_t *fx, int port)
{
    eddy_test_run_t run = {.bootstrap = fx->bootstrap,
                           .topology = "monitoring.json",
                           .app = "kafka",
                           .state_dir = fx->state_dir,
                           .port = port,
                           .log_path = fx->log};
    return eddy_test_run_start(&run);
}

/* Waits until caught up with the whole input and compares every window of every
 * store with the reference; returns the instance's /api/health. */
static json_t *check_exact(fixture_t *fx, int port)
{
    eddy_test_topic_t input;
    assert_int_equal(eddy_test_read_topic(fx->bootstrap, "log-events", &input), 0);
    json_t *health = eddy_test_wait_caught_up(port, PARTITIONS, (int64_t)input.n, 120);
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_monitoring(port, &input, &chk), 0);
    if (chk.mismatches) {
        print_file(fx->log);
        fail_msg("%zu of %zu windows differ from the reference", chk.mismatches, chk.windows);
    }
    assert_true(chk.windows > 100);
    eddy_test_topic_free(&input);
    return health;
}

static int count_in_log(fixture_t *fx, const char *needle)
{
    FILE *f = fopen(fx->log, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void test_exact_across_kill_and_wipe(void **state)
{
    fixture_t *fx = *state;
    if (!fx->up)
        fail_msg("no real Kafka (see above): scripts/kafka up failed");
    int port = eddy_test_free_port();

    /* 1. Input, processed from scratch: eddy creates its topics on the cluster. */
    assert_int_equal(
        eddy_test_generate(fx->bootstrap, "log-events", EDDY_GEN_HTTP, 31, 60000, T0, 300),
        PARTITIONS);
    pid_t pid = start(fx, port);
    json_decref(check_exact(fx, port));
    static const char *const created[] = {
        "created changelog topic kafka-requests_per_endpoint-changelog with 12 partitions",
        "created changelog topic kafka-endpoint_stats-changelog with 12 partitions",
        "created changelog topic kafka-status_codes-changelog with 12 partitions",
        "created changelog topic kafka-region_stats-changelog with 12 partitions",
        "created dead-letter topic kafka-dlq with 12 partitions",
        "created instances topic kafka-instances with 1 partition",
    };
    for (size_t i = 0; i < sizeof(created) / sizeof(created[0]); i++)
        if (count_in_log(fx, created[i]) != 1) {
            print_file(fx->log);
            fail_msg("eddy run did not log '%s' once", created[i]);
        }

    /* 2. kill -9 while more input arrives; the restart resumes and is exact. */
    eddy_test_generate(fx->bootstrap, "log-events", EDDY_GEN_HTTP, 32, 20000, T0 + 300000, 60);
    eddy_test_run_stop(pid, SIGKILL);
    eddy_test_generate(fx->bootstrap, "log-events", EDDY_GEN_HTTP, 33, 20000, T0 + 360000, 60);
    pid = start(fx, port);
    json_t *h = check_exact(fx, port);
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);

    /* 3. A wiped state dir: the state comes back from the changelogs alone. */
    eddy_test_rmtree(fx->state_dir);
    pid = start(fx, port);
    h = check_exact(fx, port);
    assert_true(eddy_test_health_total(h, "restored_records") > 1000);
    json_decref(h);
    eddy_test_run_stop(pid, SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_across_kill_and_wipe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
