/*
 * test_startup.c — what `eddy run` says when it cannot start, checked on a live
 * process:
 *
 *   1. its HTTP address in use: it stops within seconds with one error naming
 *      --http, before it touches Kafka: nothing published on the instances topic,
 *      no group joined;
 *   2. an unreachable --bootstrap: one line naming the address, the connection
 *      error and the setting to check, within 5 s, and none of librdkafka's own
 *      log lines.
 */
#include "eddy_proc.h"
#include "test_support.h"
#include "topic_reader.h"

#include "engine/broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PARTITIONS 4

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to timeout_s for pid to exit; returns its exit status, -1 if it did
 * not exit (then it is killed). */
static int wait_exit(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 20; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Lines of `path` that contain `needle` (NULL: all lines); *raw gets the number of
 * librdkafka log lines ("%3|..."). */
static int count_lines(const char *path, const char *needle, int *raw)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    if (raw)
        *raw = 0;
    while (fgets(line, sizeof(line), f)) {
        if (raw && line[0] == '%')
            (*raw)++;
        if (!needle || strstr(line, needle))
            n++;
    }
    fclose(f);
    return n;
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

/* 1. The HTTP address is taken: no publishing, no group, one clear error. */
static void test_http_address_in_use(void **state)
{
    (void)state;
    char errstr[256], dir[256], log[300], state_dir[300];
    eddy_broker_t *broker = eddy_broker_new(1, errstr, sizeof(errstr));
    assert_non_null(broker);
    assert_int_equal(
        eddy_broker_create_topic(broker, "log-events", PARTITIONS, errstr, sizeof(errstr)), 0);
    assert_int_equal(eddy_test_create_changelogs(broker, "monitoring.json", "busy", PARTITIONS), 0);
    eddy_test_mkdtemp("startup", dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s/eddy.log", dir);
    snprintf(state_dir, sizeof(state_dir), "%s/state", dir);

    /* Someone else listens on the port. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);

    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(broker),
                           .topology = "monitoring.json",
                           .app = "busy",
                           .state_dir = state_dir,
                           .port = port,
                           .log_path = log};
    double t0 = now_s();
    int rc = wait_exit(eddy_test_run_start(&run), 30);
    double took = now_s() - t0;
    if (rc != 1 || count_lines(log, " ERROR ", NULL) != 1 || !count_lines(log, "--http", NULL) ||
        !count_lines(log, "Address already in use", NULL)) {
        print_file(log);
        fail_msg("exit %d after %.1f s: want exit 1 and one error naming --http", rc, took);
    }
    assert_true(took < 10);
    /* Nothing reached Kafka: no group member, no instance record. */
    assert_int_equal(count_lines(log, "subscribed to", NULL), 0);
    assert_int_equal(count_lines(log, "publishes itself", NULL), 0);
    eddy_test_topic_t instances;
    assert_int_equal(
        eddy_test_read_topic(eddy_broker_bootstraps(broker), "busy-instances", &instances), 0);
    if (instances.n)
        fail_msg("the instance published itself (%zu records on busy-instances) before it "
                 "found its address taken",
                 instances.n);
    eddy_test_topic_free(&instances);
    close(fd);
    eddy_broker_destroy(broker);
    eddy_test_rmtree(dir);
}

/* 2. Nothing listens at --bootstrap: one line, quickly, no librdkafka log. */
static void test_unreachable_bootstrap(void **state)
{
    (void)state;
    char dir[256], log[300], state_dir[300], bootstrap[64];
    eddy_test_mkdtemp("startup", dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s/eddy.log", dir);
    snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
    /* A port nobody listens on: bound and closed (connections are refused). */
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", eddy_test_free_port());
    eddy_test_run_t run = {.bootstrap = bootstrap,
                           .topology = "monitoring.json",
                           .app = "unreachable",
                           .state_dir = state_dir,
                           .port = eddy_test_free_port(),
                           .log_path = log};
    double t0 = now_s();
    int rc = wait_exit(eddy_test_run_start(&run), 30);
    double took = now_s() - t0;
    int raw = 0;
    int errors = count_lines(log, " ERROR ", &raw);
    char said[128];
    snprintf(said, sizeof(said), "cannot reach Kafka at %s: ", bootstrap);
    int named = count_lines(log, said, NULL);
    int refused = count_lines(log, "Connection refused", NULL);
    int setting = count_lines(log, "check --bootstrap", NULL);
    if (rc != 1 || errors != 1 || raw || !named || !refused || !setting || took >= 5) {
        print_file(log);
        fail_msg("exit %d after %.1f s with %d error lines and %d librdkafka log lines: want "
                 "exit 1 within 5 s, one line naming %s, the refusal and --bootstrap",
                 rc, took, errors, raw, bootstrap);
    }
    eddy_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_address_in_use),
        cmocka_unit_test(test_unreachable_bootstrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
