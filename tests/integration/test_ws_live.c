/*
 * test_ws_live.c — GET /ws of a real `eddy run`, with an independent client:
 * tests/integration/ws_client.py on Debian's python3-websockets (/usr/bin/python3).
 *
 * Known input (monitoring.json, one minute window: 30 requests to /api/a and 20
 * to /api/b) is processed; the client's Origin from elsewhere is refused (403),
 * and so is a DNS-rebinding pair (Host and Origin both of the attacker's name);
 * its subscription to endpoint_stats gets a snapshot whose windows hold exactly
 * those counts; 12 more requests to /api/a are produced, and an update with 42
 * and 20 arrives. The frame-level behaviour (close codes, slow clients, ping,
 * idle) is tested against the endpoint directly in tests/unit/test_ws.c.
 */
#define _GNU_SOURCE
#include "eddy_proc.h"
#include "http_client.h"
#include "test_support.h"

#include "engine/broker.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0     1699999980000LL /* a minute boundary */
#define PYTHON "/usr/bin/python3"

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[256];
    int port;
    pid_t pid;
} fixture_t;

/* n requests to `endpoint`, all in the minute starting at T0. */
static void produce(fixture_t *fx, const char *endpoint, int n, int first)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", eddy_broker_bootstraps(fx->broker), NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int i = first; i < first + n; i++) {
        char value[256], key[16];
        snprintf(value, sizeof(value),
                 "{\"ts\":%lld,\"endpoint\":\"%s\",\"method\":\"GET\",\"status\":200,"
                 "\"latency_ms\":12.5,\"region\":\"eu-west\",\"user_id\":\"u%d\"}",
                 (long long)(T0 + 100LL * i), endpoint, i);
        snprintf(key, sizeof(key), "u%d", i);
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("log-events"), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(value, strlen(value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

static int setup(void **state)
{
    char errstr[256];
    if (access(PYTHON, X_OK)) {
        fprintf(stderr, "test_ws_live: %s missing (scripts/install-deps)\n", PYTHON);
        return -1;
    }
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(1, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", 4, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "wslive", 4))
        return -1;
    eddy_test_mkdtemp("wslive", fx->state_dir, sizeof(fx->state_dir));
    produce(fx, "/api/a", 30, 0);
    produce(fx, "/api/b", 20, 30);
    fx->port = eddy_test_free_port();
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(fx->broker),
                           .topology = "monitoring.json",
                           .app = "wslive",
                           .state_dir = fx->state_dir,
                           .port = fx->port};
    fx->pid = eddy_test_run_start(&run);
    json_decref(eddy_test_wait_caught_up(fx->port, 4, 50, 60));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_test_run_stop(fx->pid, SIGTERM);
    eddy_broker_destroy(fx->broker);
    eddy_test_rmtree(fx->state_dir);
    free(fx);
    return 0;
}

/* One line of the client's output as JSON; NULL at its end. */
static json_t *read_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    json_t *j = NULL;
    if (n > 0) {
        json_error_t e;
        j = json_loads(line, 0, &e);
        if (!j)
            fail_msg("client printed something not JSON: %s", line);
    }
    free(line);
    return j;
}

/* The count of the endpoint's window at T0 in a snapshot or update; -1 if absent. */
static json_int_t count_of(json_t *msg, const char *endpoint)
{
    json_t *data = json_object_get(msg, "data"), *w;
    size_t i;
    json_array_foreach(json_object_get(data, "windows"), i, w)
    {
        if (!strcmp(json_string_value(json_object_get(w, "key")), endpoint)) {
            assert_int_equal(json_integer_value(json_object_get(w, "start")), T0);
            return json_integer_value(json_object_get(w, "count"));
        }
    }
    return -1;
}

static void test_snapshot_then_update(void **state)
{
    fixture_t *fx = *state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), PYTHON " %s/tests/integration/ws_client.py %d endpoint_stats 62",
             EDDY_SOURCE_DIR, fx->port);
    FILE *client = popen(cmd, "r");
    assert_non_null(client);

    json_t *j = read_line(client);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "origin_check")), 403);
    json_decref(j);

    j = read_line(client);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "snapshot");
    assert_string_equal(json_string_value(json_object_get(j, "source")), "endpoint_stats");
    json_t *data = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(data, "store")), "endpoint_stats");
    assert_true(json_is_true(json_object_get(data, "complete")));
    assert_int_equal(json_array_size(json_object_get(data, "windows")), 2);
    assert_int_equal(count_of(j, "/api/a"), 30);
    assert_int_equal(count_of(j, "/api/b"), 20);
    const json_int_t sub = json_integer_value(json_object_get(j, "subscription"));
    json_decref(j);

    produce(fx, "/api/a", 12, 50);

    /* Updates until the client saw the new counts (it exits then). */
    json_t *last = NULL;
    int updates = 0;
    while ((j = read_line(client))) {
        json_decref(last);
        last = j;
        assert_string_equal(json_string_value(json_object_get(j, "type")), "update");
        assert_int_equal(json_integer_value(json_object_get(j, "subscription")), sub);
        updates++;
    }
    int status = pclose(client);
    assert_non_null(last);
    assert_int_equal(count_of(last, "/api/a"), 42);
    assert_int_equal(count_of(last, "/api/b"), 20);
    json_decref(last);
    assert_true(updates >= 1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
 * Host and Origin of its own name, which agree with each other: refused (403,
 * JSON error), while the dashboard's own origins (127.0.0.1 or localhost with the
 * listener's port) upgrade. */
static void test_dns_rebinding_refused(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *host, *origin_host;
        int status;
    } cases[] = {
        {"evil.example", "evil.example", 403},
        {"127.0.0.1", "evil.example", 403},
        {"localhost", "localhost", 101},
        {"127.0.0.1", "127.0.0.1", 101},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req),
                 "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nOrigin: http://%s:%d\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                 cases[i].host, fx->port, cases[i].origin_host, fx->port);
        eddy_test_http_conn_t *conn = eddy_test_http_connect("127.0.0.1", fx->port);
        assert_non_null(conn);
        assert_int_equal(eddy_test_http_send(conn, req, strlen(req)), 0);
        eddy_test_http_resp_t r = {0};
        assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
        if (r.status != cases[i].status)
            fail_msg("Host %s, Origin http://%s: status %d, wanted %d", cases[i].host,
                     cases[i].origin_host, r.status, cases[i].status);
        if (r.status == 403) {
            json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
            assert_non_null(j);
            assert_int_equal(
                json_integer_value(json_object_get(json_object_get(j, "error"), "status")), 403);
            json_decref(j);
        }
        eddy_test_http_resp_free(&r);
        eddy_test_http_close(conn);
    }
}

/* The first message the real client gets for `subject` with `params` (JSON). */
static json_t *subscribe_once(fixture_t *fx, const char *subject, const char *params)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), PYTHON " %s/tests/integration/ws_client.py %d --once '%s' '%s'",
             EDDY_SOURCE_DIR, fx->port, subject, params);
    FILE *client = popen(cmd, "r");
    assert_non_null(client);
    json_t *j = read_line(client);
    int status = pclose(client);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(j);
    return j;
}

/* Views are WebSocket sources too: "view:NAME" gets what GET <route> answers. */
static void test_view_subscription(void **state)
{
    fixture_t *fx = *state;
    json_t *j = subscribe_once(fx, "view:requests_current", "{}");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "snapshot");
    json_t *data = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(data, "view")), "requests_current");
    int status = 0;
    json_t *rest = eddy_test_get_json(fx->port, "/api/metrics/requests/current", &status);
    assert_int_equal(status, 200);
    assert_true(json_equal(json_object_get(data, "keys"), json_object_get(rest, "keys")));
    assert_true(json_equal(json_object_get(data, "total"), json_object_get(rest, "total")));
    /* After the first test: 42 requests of /api/a and 20 of /api/b at T0. */
    json_int_t a = -1, b = -1;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(data, "keys"), i, row)
    {
        const char *k = json_string_value(json_object_get(row, "key"));
        if (!strcmp(k, "/api/a"))
            a = json_integer_value(json_object_get(row, "count"));
        if (!strcmp(k, "/api/b"))
            b = json_integer_value(json_object_get(row, "count"));
    }
    assert_int_equal(a, 42);
    assert_int_equal(b, 20);
    json_decref(rest);
    json_decref(j);

    /* A view with a key parameter needs it; an unknown view is an error message. */
    j = subscribe_once(fx, "view:endpoint", "{\"key\":\"/api/b\",\"windows\":2}");
    data = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(data, "key")), "/api/b");
    assert_int_equal(json_integer_value(json_object_get(data, "window_count")), 2);
    json_decref(j);
    j = subscribe_once(fx, "view:endpoint", "{}");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    json_decref(j);
    j = subscribe_once(fx, "view:nope", "{}");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    json_decref(j);

    /* The instance's health, as GET /api/health answers it (the dashboard's engine
     * panel): every record of the two tests processed. */
    j = subscribe_once(fx, "health:instance", "{}");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "snapshot");
    json_t *totals = json_object_get(json_object_get(j, "data"), "totals");
    assert_int_equal(json_integer_value(json_object_get(totals, "processed")), 62);
    json_decref(j);
}

/* /api/health's "broker" while the (only) broker is down and after it is back. */
static bool broker_connected(fixture_t *fx)
{
    int status = 0;
    json_t *h = eddy_test_get_json(fx->port, "/api/health", &status);
    assert_int_equal(status, 200);
    json_t *b = json_object_get(h, "broker");
    assert_true(json_is_boolean(json_object_get(b, "connected")));
    bool up = json_is_true(json_object_get(b, "connected"));
    assert_int_equal(json_array_size(json_object_get(h, "stream_threads")), 2);
    json_decref(h);
    return up;
}

static void wait_connected(fixture_t *fx, bool want)
{
    for (int i = 0; i < 300 && broker_connected(fx) != want; i++) {
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(broker_connected(fx) == want);
}

static void test_health_shows_broker_connectivity(void **state)
{
    fixture_t *fx = *state;
    wait_connected(fx, true);
    rd_kafka_mock_broker_set_down(eddy_broker_mock(fx->broker), 1);
    wait_connected(fx, false);
    rd_kafka_mock_broker_set_up(eddy_broker_mock(fx->broker), 1);
    wait_connected(fx, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_then_update),
        cmocka_unit_test(test_dns_rebinding_refused),
        cmocka_unit_test(test_view_subscription),
        cmocka_unit_test(test_health_shows_broker_connectivity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
