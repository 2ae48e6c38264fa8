/*
 * test_views.c — the views of monitoring.json (the seed-001 endpoints) and the
 * per-key series, end to end: `eddy run` over 324 hand-made http events with
 * fixed event times over 8 minutes, then every answer is compared with values
 * computed here from the same events — counts per endpoint, status and region
 * exactly, error rates and means to rounding, percentiles within the sketch's 1%
 * of the exact value. The views count back from stream time, so the answers do
 * not depend on the wall clock.
 */
#include "eddy_proc.h"
#include "test_support.h"

#include "engine/broker.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B          1699999980000LL /* a minute boundary */
#define MIN        60000LL
#define MINUTES    8
#define ENDPOINTS  3
#define MAX_EVENTS 400

static const char *const endpoints[ENDPOINTS] = {"/api/orders", "/api/users", "/api/search"};
static const char *const regions[3] = {"us-east-1", "eu-west-1", "ap-south-1"};

typedef struct event_s {
    int64_t ts;        /* event time */
    int endpoint;      /* index into endpoints */
    int status;        /* HTTP status */
    double latency_ms; /* distinct per (endpoint, minute) */
    int region;        /* index into regions */
} event_t;

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[256];
    event_t events[MAX_EVENTS];
    size_t n;
    int64_t max_ts;
    int port;
    pid_t pid;
} fixture_t;

/* Minute m, endpoint j: 5 (j + 1) + m events one second apart; every 5th (from
 * the first) is a 500, the next a 404, the rest 200; latencies 10 (j + 1) + i +
 * 0.5; regions in turn. */
static void make_events(fixture_t *fx)
{
    for (int m = 0; m < MINUTES; m++)
        for (int j = 0; j < ENDPOINTS; j++)
            for (int i = 0; i < 5 * (j + 1) + m; i++) {
                event_t *e = &fx->events[fx->n++];
                e->ts = B + m * MIN + i * 1000;
                e->endpoint = j;
                e->status = i % 5 == 0 ? 500 : i % 5 == 1 ? 404 : 200;
                e->latency_ms = 10.0 * (j + 1) + i + 0.5;
                e->region = i % 3;
                if (e->ts > fx->max_ts)
                    fx->max_ts = e->ts;
            }
}

static void produce(fixture_t *fx)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", eddy_broker_bootstraps(fx->broker), NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (size_t i = 0; i < fx->n; i++) {
        const event_t *e = &fx->events[i];
        char value[256], key[24];
        snprintf(value, sizeof(value),
                 "{\"ts\":%lld,\"endpoint\":\"%s\",\"method\":\"GET\",\"status\":%d,"
                 "\"latency_ms\":%.1f,\"region\":\"%s\",\"user_id\":\"u%zu\"}",
                 (long long)e->ts, endpoints[e->endpoint], e->status, e->latency_ms,
                 regions[e->region], i);
        snprintf(key, sizeof(key), "u%zu", i);
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
    fixture_t *fx = calloc(1, sizeof(*fx));
    *state = fx; /* teardown cleans up whatever setup got to */
    fx->broker = eddy_broker_new(1, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", 4, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", "views", 4))
        return -1;
    eddy_test_mkdtemp("views", fx->state_dir, sizeof(fx->state_dir));
    fx->max_ts = INT64_MIN;
    make_events(fx);
    produce(fx);
    fx->port = eddy_test_free_port();
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(fx->broker),
                           .topology = "monitoring.json",
                           .app = "views",
                           .state_dir = fx->state_dir,
                           .port = fx->port};
    fx->pid = eddy_test_run_start(&run);
    json_decref(eddy_test_wait_caught_up(fx->port, 4, (int64_t)fx->n, 60));
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    if (fx->pid > 0)
        eddy_test_run_stop(fx->pid, SIGTERM);
    eddy_broker_destroy(fx->broker);
    eddy_test_rmtree(fx->state_dir);
    free(fx);
    return 0;
}

/* --- helpers ------------------------------------------------------------------------ */

static json_t *get_ok(fixture_t *fx, const char *path)
{
    int status = 0;
    json_t *j = eddy_test_get_json(fx->port, path, &status);
    if (status != 200 || !j)
        fail_msg("GET %s: status %d", path, status);
    /* Every answer says what it covers: here all 4 partitions, none restoring. */
    assert_true(json_is_true(json_object_get(j, "complete")));
    assert_int_equal(json_array_size(json_object_get(j, "partitions")), 4);
    assert_int_equal(json_array_size(json_object_get(j, "restoring")), 0);
    return j;
}

static void expect_error(fixture_t *fx, const char *path, int want)
{
    int status = 0;
    json_t *j = eddy_test_get_json(fx->port, path, &status);
    if (status != want)
        fail_msg("GET %s: status %d, want %d", path, status, want);
    assert_non_null(j);
    json_t *err = json_object_get(j, "error");
    assert_int_equal(json_integer_value(json_object_get(err, "status")), want);
    assert_true(json_is_string(json_object_get(err, "message")));
    json_decref(j);
}

static double num(const json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_number(v))
        fail_msg("no number \"%s\"", name);
    return json_number_value(v);
}

/* The row of `rows` whose "key" is key, or NULL. */
static json_t *row(json_t *rows, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i,
                       r) if (!strcmp(json_string_value(json_object_get(r, "key")), key)) return r;
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Checks one endpoint_stats window of endpoint j and minute m against the events. */
static void check_endpoint_window(fixture_t *fx, json_t *w, int j, int m)
{
    double lat[64], sum = 0;
    int64_t count = 0, errors = 0;
    for (size_t i = 0; i < fx->n; i++) {
        const event_t *e = &fx->events[i];
        if (e->endpoint != j || e->ts < B + m * MIN || e->ts >= B + (m + 1) * MIN)
            continue;
        lat[count++] = e->latency_ms;
        sum += e->latency_ms;
        errors += e->status >= 500;
    }
    assert_string_equal(json_string_value(json_object_get(w, "key")), endpoints[j]);
    assert_int_equal(json_integer_value(json_object_get(w, "start")), B + m * MIN);
    assert_int_equal(json_integer_value(json_object_get(w, "end")), B + (m + 1) * MIN);
    assert_int_equal(json_integer_value(json_object_get(w, "count")), count);
    assert_int_equal(json_integer_value(json_object_get(w, "errors")), errors);
    assert_true(fabs(num(w, "error_rate") - (double)errors / (double)count) < 1e-12);
    assert_true(fabs(num(w, "mean_latency_ms") - sum / (double)count) < 1e-9);
    qsort(lat, (size_t)count, sizeof(double), cmp_double);
    static const struct {
        const char *name;
        double q;
    } pcts[] = {{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}};
    for (int p = 0; p < 3; p++) {
        double rank = pcts[p].q * (double)(count - 1);
        double lo = lat[(size_t)floor(rank)], hi = lat[(size_t)ceil(rank)];
        double got = num(w, pcts[p].name);
        if (got < lo * 0.99 || got > hi * 1.01)
            fail_msg("%s minute %d %s = %g, exact %g..%g", endpoints[j], m, pcts[p].name, got, lo,
                     hi);
    }
}

/* --- the seed endpoints ----------------------------------------------------------------- */

/* Requests per endpoint over the last 5 minutes: the 1-minute windows 3..7. */
static void test_requests_current(void **state)
{
    fixture_t *fx = *state;
    json_t *j = get_ok(fx, "/api/metrics/requests/current");
    assert_string_equal(json_string_value(json_object_get(j, "view")), "requests_current");
    assert_int_equal(json_integer_value(json_object_get(j, "at")), fx->max_ts);
    assert_int_equal(json_integer_value(json_object_get(j, "current_start")), B + 7 * MIN);
    assert_int_equal(json_integer_value(json_object_get(j, "from")), B + 3 * MIN);
    json_t *rows = json_object_get(j, "keys");
    assert_int_equal(json_array_size(rows), ENDPOINTS);
    for (int e = 0; e < ENDPOINTS; e++) {
        json_t *r = row(rows, endpoints[e]);
        assert_non_null(r);
        /* sum over m = 3..7 of 5 (e + 1) + m */
        assert_int_equal(json_integer_value(json_object_get(r, "count")), 25 * (e + 2));
    }
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "count")),
                     225);
    json_decref(j);

    /* ?at= moves the reference time: minutes 0..4. */
    char path[128];
    snprintf(path, sizeof(path), "/api/metrics/requests/current?at=%lld", B + 4 * MIN + 1);
    j = get_ok(fx, path);
    assert_string_equal(json_string_value(json_object_get(j, "at_source")), "query");
    rows = json_object_get(j, "keys");
    for (int e = 0; e < ENDPOINTS; e++)
        assert_int_equal(json_integer_value(json_object_get(row(rows, endpoints[e]), "count")),
                         25 * (e + 1) + 10);
    json_decref(j);
    expect_error(fx, "/api/metrics/requests/current?at=soon", 400);
    expect_error(fx, "/api/metrics/requests/current?windows=0", 400);
}

/* One endpoint's series: every minute that has windows (0..7, the view asks for
 * 11), oldest first, and the current one; ?windows=N cuts it. */
static void test_endpoint_series(void **state)
{
    fixture_t *fx = *state;
    json_t *j = get_ok(fx, "/api/metrics/endpoint/%2Fapi%2Forders");
    assert_string_equal(json_string_value(json_object_get(j, "key")), "/api/orders");
    json_t *windows = json_object_get(j, "windows");
    assert_int_equal(json_array_size(windows), MINUTES);
    for (int m = 0; m < MINUTES; m++)
        check_endpoint_window(fx, json_array_get(windows, (size_t)m), 0, m);
    check_endpoint_window(fx, json_object_get(j, "current"), 0, 7);
    json_decref(j);

    j = get_ok(fx, "/api/metrics/endpoint/%2Fapi%2Fsearch?windows=3");
    windows = json_object_get(j, "windows");
    assert_int_equal(json_array_size(windows), 3);
    for (int m = 5; m < MINUTES; m++)
        check_endpoint_window(fx, json_array_get(windows, (size_t)(m - 5)), 2, m);
    json_decref(j);

    /* An endpoint without traffic: no windows, no current one. */
    j = get_ok(fx, "/api/metrics/endpoint/nope");
    assert_int_equal(json_array_size(json_object_get(j, "windows")), 0);
    assert_true(json_is_null(json_object_get(j, "current")));
    json_decref(j);
    expect_error(fx, "/api/metrics/endpoint/x?windows=121", 400); /* 2 h of 1-minute windows */
}

/* Failing statuses in the current 5-minute hopping window: [B + 3m, B + 8m). */
static void test_errors(void **state)
{
    fixture_t *fx = *state;
    int64_t n500 = 0, n404 = 0;
    for (size_t i = 0; i < fx->n; i++)
        if (fx->events[i].ts >= B + 3 * MIN) {
            n500 += fx->events[i].status == 500;
            n404 += fx->events[i].status == 404;
        }
    json_t *j = get_ok(fx, "/api/metrics/errors");
    assert_int_equal(json_integer_value(json_object_get(j, "current_start")), B + 3 * MIN);
    json_t *rows = json_object_get(j, "keys");
    assert_int_equal(json_array_size(rows), 2); /* 200 is not a failure */
    assert_int_equal(json_integer_value(json_object_get(row(rows, "404"), "count")), n404);
    assert_int_equal(json_integer_value(json_object_get(row(rows, "500"), "count")), n500);
    assert_null(json_object_get(row(rows, "500"), "failed")); /* not among its aggregates */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "count")),
                     n404 + n500);
    json_decref(j);
    /* Merging overlapping hopping windows would count events twice. */
    expect_error(fx, "/api/metrics/errors?windows=2", 400);
}

/* Requests, errors, mean latency and share per region over the last 5 minutes. */
static void test_regions(void **state)
{
    fixture_t *fx = *state;
    json_t *j = get_ok(fx, "/api/metrics/regions");
    json_t *rows = json_object_get(j, "keys");
    assert_int_equal(json_array_size(rows), 3);
    int64_t all = 0;
    for (size_t i = 0; i < fx->n; i++)
        all += fx->events[i].ts >= B + 3 * MIN;
    assert_int_equal(all, 225);
    for (int r = 0; r < 3; r++) {
        int64_t count = 0, errors = 0;
        double sum = 0;
        for (size_t i = 0; i < fx->n; i++) {
            const event_t *e = &fx->events[i];
            if (e->region != r || e->ts < B + 3 * MIN)
                continue;
            count++;
            errors += e->status >= 500;
            sum += e->latency_ms;
        }
        json_t *x = row(rows, regions[r]);
        assert_non_null(x);
        assert_int_equal(json_integer_value(json_object_get(x, "count")), count);
        assert_int_equal(json_integer_value(json_object_get(x, "errors")), errors);
        assert_true(fabs(num(x, "mean_latency_ms") - sum / (double)count) < 1e-9);
        assert_true(fabs(num(x, "share") - (double)count / (double)all) < 1e-12);
    }
    json_decref(j);
}

/* --- generic queries -------------------------------------------------------------------- */

static void test_key_series(void **state)
{
    fixture_t *fx = *state;
    char path[160];
    snprintf(path, sizeof(path),
             "/api/stores/endpoint_stats/keys/%%2Fapi%%2Fusers?from=%lld&to=%lld", B + 2 * MIN,
             B + 5 * MIN);
    json_t *j = get_ok(fx, path);
    assert_string_equal(json_string_value(json_object_get(j, "key")), "/api/users");
    json_t *windows = json_object_get(j, "windows");
    assert_int_equal(json_array_size(windows), 3);
    for (int m = 2; m < 5; m++)
        check_endpoint_window(fx, json_array_get(windows, (size_t)(m - 2)), 1, m);
    json_decref(j);

    /* Without a range: every window of the key, of a store with another shape. */
    j = get_ok(fx, "/api/stores/status_codes/keys/500");
    windows = json_object_get(j, "windows");
    assert_int_equal(json_array_size(windows), MINUTES + 4); /* starts B - 4m .. B + 7m */
    json_t *w = json_array_get(windows, 0);
    assert_int_equal(json_integer_value(json_object_get(w, "start")), B - 4 * MIN);
    assert_int_equal(json_integer_value(json_object_get(w, "end")), B + MIN);
    json_decref(j);

    expect_error(fx, "/api/stores/nope/keys/500", 404);
    expect_error(fx, "/api/stores/status_codes/keys/500?from=x", 400);
    expect_error(fx, "/api/stores/status_codes/keys/500?from=10&to=5", 400);
}

static void test_topology_and_stores(void **state)
{
    fixture_t *fx = *state;
    int status = 0;
    json_t *t = eddy_test_get_json(fx->port, "/api/topology", &status);
    assert_int_equal(status, 200);
    json_t *views = json_object_get(t, "views");
    assert_int_equal(json_array_size(views), 4);
    json_t *v = json_array_get(views, 1);
    assert_string_equal(json_string_value(json_object_get(v, "route")),
                        "/api/metrics/endpoint/{endpoint}");
    assert_string_equal(json_string_value(json_object_get(v, "key")), "{endpoint}");
    json_t *graph = json_object_get(t, "graph");
    assert_int_equal(json_array_size(json_object_get(graph, "nodes")), 1 + 4 + 4);
    bool edge = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(graph, "edges"), i, e)
    {
        edge |= !strcmp(json_string_value(json_object_get(e, "from")), "store:status_codes") &&
                !strcmp(json_string_value(json_object_get(e, "to")), "view:errors");
    }
    assert_true(edge);
    json_decref(t);

    t = eddy_test_get_json(fx->port, "/api/stores", &status);
    assert_int_equal(status, 200);
    json_t *s = json_array_get(json_object_get(t, "stores"), 2);
    assert_string_equal(json_string_value(json_object_get(s, "name")), "status_codes");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(s, "window"), "retention_ms")), 7200000);
    assert_int_equal(json_array_size(json_object_get(s, "aggregates")), 2);
    json_decref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_current), cmocka_unit_test(test_endpoint_series),
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_regions),
        cmocka_unit_test(test_key_series),       cmocka_unit_test(test_topology_and_stores),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
