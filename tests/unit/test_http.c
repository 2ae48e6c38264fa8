/*
 * test_http.c — the HTTP server (query/http.h) through a real socket, with the
 * tests' own HTTP client: routing (path parameters, percent-decoding, catch-alls,
 * specificity), query parameters, the JSON error shape of every error the server
 * makes (400, 404, 405, 408, 413, 500, 503), HEAD and OPTIONS, static files and
 * the ways out of their root, body limits, concurrent clients, the latency
 * histogram, connection limits (global and per address) and the eviction of the
 * slowest incomplete request they do, idle timeouts, header and body deadlines
 * that trickled bytes do not move, upgrades, two servers in one process,
 * destroying a server with connections open, and listen errors.
 */
#define _GNU_SOURCE
#include "test_support.h"

#include "http_client.h"
#include "query/http.h"

#include <jansson.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOST "127.0.0.1"

/* --- handlers ---------------------------------------------------------------------- */

static int h_windows(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    int64_t from = 0, to = INT64_MAX;
    if (eddy_http_query_i64(req, resp, "from", "epoch milliseconds", INT64_MIN, INT64_MAX, &from) ||
        eddy_http_query_i64(req, resp, "to", "epoch milliseconds", INT64_MIN, INT64_MAX, &to))
        return 0;
    const char *key = eddy_http_query(req, "key");
    json_t *body = json_object();
    json_object_set_new(body, "store", json_string(eddy_http_param(req, "store")));
    json_object_set_new(body, "from", json_integer(from));
    json_object_set_new(body, "to", json_integer(to));
    json_object_set_new(body, "key", key ? json_string(key) : json_null());
    json_object_set_new(body, "method", json_string(eddy_http_method(req)));
    json_object_set_new(body, "path", json_string(eddy_http_path(req)));
    json_object_set_new(body, "nope", eddy_http_param(req, "nope") ? json_true() : json_false());
    return eddy_http_json(resp, 200, body);
}

static int h_special(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    return eddy_http_json(resp, 200, json_pack("{s:b}", "special", 1));
}

static int h_endpoint(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    return eddy_http_json(resp, 200,
                          json_pack("{s:s}", "endpoint", eddy_http_param(req, "endpoint")));
}

static int h_rest(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    return eddy_http_json(resp, 200, json_pack("{s:s}", "path", eddy_http_param(req, "path")));
}

static int h_limit(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    int64_t limit = 10;
    if (eddy_http_query_i64(req, resp, "limit", NULL, 1, 1000, &limit))
        return 0;
    return eddy_http_json(resp, 200, json_pack("{s:I}", "limit", (json_int_t)limit));
}

static int h_echo(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    size_t len;
    const char *body = eddy_http_body(req, &len);
    char n[32];
    snprintf(n, sizeof(n), "%zu", len);
    if (eddy_http_resp_header(resp, "X-Body-Length", n))
        return -1;
    return eddy_http_bytes(resp, 200, "text/plain; charset=utf-8", body, len);
}

static int h_headers(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    const char *v = eddy_http_header(req, "x-test");
    /* Handlers run on the server's threads, where cmocka cannot fail a test: a
     * wrong result becomes a 500 that the test sees. */
    if (eddy_http_resp_header(resp, "X-Reply", v ? v : "none") ||
        eddy_http_resp_header(resp, "Cache-Control", "max-age=5"))
        return -1;
    /* What the server owns, or what would split the header block, is refused. */
    if (eddy_http_resp_header(resp, "Content-Length", "3") != EDDY_ERR_INVALID ||
        eddy_http_resp_header(resp, "X-Evil", "a\r\nSet-Cookie: x=1") != EDDY_ERR_INVALID)
        return -1;
    static const char text[] = "static text";
    return eddy_http_bytes_owned(resp, 200, "text/plain", (void *)text, sizeof(text) - 1, NULL);
}

static int h_client(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    return eddy_http_json(resp, 200, json_pack("{s:s}", "client", eddy_http_client(req)));
}

static int h_fail(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    /* A failing handler's half-built answer is dropped (no leak, not sent). */
    eddy_http_json(resp, 200, json_pack("{s:s}", "half", "built"));
    return -1;
}

static int h_silent(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    return 0;
}

static int h_slow(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    struct timespec ts = {0, 40 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return eddy_http_json(resp, 200, json_object());
}

static int h_count(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    atomic_fetch_add((atomic_int *)opaque, 1);
    return eddy_http_json(resp, 200, json_pack("{s:s}", "n", eddy_http_param(req, "n")));
}

static atomic_int blocked, block_release;

/* Holds its thread (up to 5 s) until the test sets block_release. */
static int h_block(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    atomic_fetch_add(&blocked, 1);
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 1000 && !atomic_load(&block_release); i++)
        nanosleep(&ts, NULL);
    return eddy_http_json(resp, 200, json_object());
}

static int h_name(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    return eddy_http_json(resp, 200, json_pack("{s:s}", "server", (const char *)opaque));
}

static void upgraded(void *opaque, int fd, const char *extra, size_t extra_len,
                     struct MHD_UpgradeResponseHandle *urh)
{
    /* Say hello, echo what the client sent early, and hang up. */
    char buf[64];
    int n =
        snprintf(buf, sizeof(buf), "hello %s|%.*s", (const char *)opaque, (int)extra_len, extra);
    if (write(fd, buf, (size_t)n) != n)
        n = 0; /* the test then misses the greeting */
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static int h_upgrade(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    if (eddy_http_resp_header(resp, "Upgrade", "eddy-test"))
        return -1;
    return eddy_http_upgrade(resp, upgraded, "there");
}

/* --- helpers ----------------------------------------------------------------------- */

static atomic_int counted;

static eddy_http_t *server(eddy_http_config_t cfg)
{
    char errstr[256] = "";
    if (!cfg.listen)
        cfg.listen = HOST ":0";
    eddy_http_t *http = eddy_http_new(&cfg, errstr, sizeof(errstr));
    if (!http)
        fail_msg("eddy_http_new: %s", errstr);
    assert_int_equal(eddy_http_route(http, "GET", "/api/stores/{store}/windows", h_windows, NULL),
                     EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/api/stores/special/windows", h_special, NULL),
                     EDDY_OK);
    assert_int_equal(
        eddy_http_route(http, "GET", "/api/metrics/endpoint/{endpoint}", h_endpoint, NULL),
        EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/files/{path...}", h_rest, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/limit", h_limit, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "POST", "/echo", h_echo, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "PUT", "/echo", h_echo, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/headers", h_headers, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/client", h_client, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/fail", h_fail, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/silent", h_silent, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/slow", h_slow, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/count/{n}", h_count, &counted), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/upgrade", h_upgrade, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/block", h_block, NULL), EDDY_OK);
    assert_int_equal(eddy_http_start(http, errstr, sizeof(errstr)), EDDY_OK);
    assert_true(eddy_http_port(http) > 0);
    return http;
}

static json_t *get_json(int port, const char *target, int want_status)
{
    eddy_test_http_resp_t resp = {0};
    assert_int_equal(eddy_test_http(HOST, port, "GET", target, NULL, NULL, 0, &resp), 0);
    if (resp.status != want_status)
        fail_msg("GET %s: status %d, wanted %d: %s", target, resp.status, want_status, resp.body);
    assert_string_equal(eddy_test_http_header(&resp, "Content-Type"),
                        "application/json; charset=utf-8");
    json_error_t jerr;
    json_t *j = json_loadb(resp.body, resp.body_len, 0, &jerr);
    if (!j)
        fail_msg("GET %s: body is not JSON (%s): %s", target, jerr.text, resp.body);
    eddy_test_http_resp_free(&resp);
    return j;
}

/* Checks that r carries {"error":{"status":status,"message":...}} and returns the
 * message (valid until r is freed... copied into msg). */
static void assert_error_body(const eddy_test_http_resp_t *r, int status, char *msg, size_t n)
{
    assert_int_equal(r->status, status);
    assert_string_equal(eddy_test_http_header(r, "Content-Type"),
                        "application/json; charset=utf-8");
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    if (!j)
        fail_msg("error body is not JSON: %s", r->body);
    json_t *e = json_object_get(j, "error");
    assert_non_null(e);
    assert_int_equal(json_object_size(j), 1);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
    const char *m = json_string_value(json_object_get(e, "message"));
    assert_non_null(m);
    assert_true(strlen(m) > 0);
    if (msg)
        snprintf(msg, n, "%s", m);
    json_decref(j);
}

static void expect_error(int port, const char *method, const char *target, int status,
                         const char *want_msg)
{
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http(HOST, port, method, target, NULL, NULL, 0, &r), 0);
    if (r.status != status)
        fail_msg("%s %s: status %d, wanted %d: %s", method, target, r.status, status, r.body);
    char msg[512];
    assert_error_body(&r, status, msg, sizeof(msg));
    if (want_msg && !strstr(msg, want_msg))
        fail_msg("%s %s: message '%s' lacks '%s'", method, target, msg, want_msg);
    eddy_test_http_resp_free(&r);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Counters are updated after the last byte is sent, so a client can be a little
 * ahead of them; wait (up to 3 s) until the server has counted `n` requests. */
static void wait_requests(eddy_http_t *http, uint64_t n, eddy_http_stats_t *st)
{
    int64_t deadline = now_ms() + 3000;
    do {
        eddy_http_stats(http, st);
        if (st->requests >= n)
            return;
        sleep_ms(2);
    } while (now_ms() < deadline);
    fail_msg("the server counted %llu requests, expected %llu", (unsigned long long)st->requests,
             (unsigned long long)n);
}

static void wait_open(eddy_http_t *http, uint64_t n)
{
    eddy_http_stats_t st;
    int64_t deadline = now_ms() + 3000;
    do {
        eddy_http_stats(http, &st);
        if (st.connections_open == n)
            return;
        sleep_ms(2);
    } while (now_ms() < deadline);
    fail_msg("%llu connections open, expected %llu", (unsigned long long)st.connections_open,
             (unsigned long long)n);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* --- routing ------------------------------------------------------------------------- */

static void test_params_and_decoding(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    int port = eddy_http_port(http);

    json_t *j = get_json(port, "/api/stores/endpoint_stats/windows?from=1000&to=2000", 200);
    assert_string_equal(json_string_value(json_object_get(j, "store")), "endpoint_stats");
    assert_int_equal(json_integer_value(json_object_get(j, "from")), 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "to")), 2000);
    assert_true(json_is_null(json_object_get(j, "key")));
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        "/api/stores/endpoint_stats/windows");
    assert_true(json_is_false(json_object_get(j, "nope")));
    json_decref(j);

    /* Percent-decoding per segment and per query value; '+' is a space in queries
     * only; the first of repeated query parameters wins; negative numbers. */
    j = get_json(port, "/api/stores/my%20store/windows?key=%2Fapi%2Forders+x&key=second&from=-5&x",
                 200);
    assert_string_equal(json_string_value(json_object_get(j, "store")), "my store");
    assert_string_equal(json_string_value(json_object_get(j, "key")), "/api/orders x");
    assert_int_equal(json_integer_value(json_object_get(j, "from")), -5);
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        "/api/stores/my%20store/windows");
    json_decref(j);

    j = get_json(port, "/api/metrics/endpoint/%2Fapi%2Forders", 200);
    assert_string_equal(json_string_value(json_object_get(j, "endpoint")), "/api/orders");
    json_decref(j);
    j = get_json(port, "/api/metrics/endpoint/a+b%2B%C3%A9", 200);
    assert_string_equal(json_string_value(json_object_get(j, "endpoint")), "a+b+\xc3\xa9");
    json_decref(j);

    /* A literal segment beats a parameter, whatever the registration order. */
    j = get_json(port, "/api/stores/special/windows", 200);
    assert_true(json_is_true(json_object_get(j, "special")));
    json_decref(j);

    /* Catch-all: the rest of the path, possibly empty. */
    j = get_json(port, "/files/a/b%2Fc/d.txt", 200);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "a/b/c/d.txt");
    json_decref(j);
    j = get_json(port, "/files/", 200);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "");
    json_decref(j);
    j = get_json(port, "/files", 200);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "");
    json_decref(j);

    /* Absolute-form targets (what proxies send) route like their path. */
    j = get_json(port, "http://example.com/api/metrics/endpoint/x?y=1", 200);
    assert_string_equal(json_string_value(json_object_get(j, "endpoint")), "x");
    json_decref(j);

    /* Parameters never match empty segments; trailing slashes are significant. */
    expect_error(port, "GET", "/api/stores//windows", 404, "no such resource");
    expect_error(port, "GET", "/api/metrics/endpoint/x/", 404, NULL);
    eddy_http_destroy(http);
}

static void test_query_params(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    int port = eddy_http_port(http);
    expect_error(port, "GET", "/api/stores/s/windows?from=abc", 400,
                 "query parameter 'from' must be epoch milliseconds, got 'abc'");
    expect_error(port, "GET", "/api/stores/s/windows?from=1&to=12x", 400,
                 "query parameter 'to' must be epoch milliseconds, got '12x'");
    expect_error(port, "GET", "/api/stores/s/windows?from=", 400, "got ''");
    expect_error(port, "GET", "/api/stores/s/windows?from=99999999999999999999", 400, NULL);
    expect_error(port, "GET", "/limit?limit=5000", 400,
                 "query parameter 'limit' must be an integer from 1 to 1000, got '5000'");
    json_t *j = get_json(port, "/limit", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "limit")), 10);
    json_decref(j);
    j = get_json(port, "/limit?limit=7", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "limit")), 7);
    json_decref(j);
    /* Malformed encodings are the client's fault, in the path or the query. */
    expect_error(port, "GET", "/api/stores/a%zz/windows", 400, "percent-encoding");
    expect_error(port, "GET", "/api/stores/a%2/windows", 400, "percent-encoding");
    expect_error(port, "GET", "/api/stores/a%00b/windows", 400, "%00");
    expect_error(port, "GET", "/limit?limit=%G1", 400, "percent-encoding");
    eddy_http_destroy(http);
}

static void test_errors_404_405(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    int port = eddy_http_port(http);
    eddy_test_http_resp_t r = {0};

    assert_int_equal(eddy_test_http(HOST, port, "GET", "/nope", NULL, NULL, 0, &r), 0);
    assert_error_body(&r, 404, NULL, 0);
    assert_string_equal(r.body,
                        "{\"error\":{\"status\":404,\"message\":\"no such resource: /nope\"}}");
    assert_string_equal(eddy_test_http_header(&r, "Server"), "eddy");
    assert_string_equal(eddy_test_http_header(&r, "Cache-Control"), "no-store");

    assert_int_equal(eddy_test_http(HOST, port, "POST", "/api/stores/x/windows", NULL, "{}", 2, &r),
                     0);
    assert_error_body(&r, 405, NULL, 0);
    assert_string_equal(eddy_test_http_header(&r, "Allow"), "GET, HEAD, OPTIONS");

    assert_int_equal(eddy_test_http(HOST, port, "DELETE", "/echo", NULL, NULL, 0, &r), 0);
    assert_error_body(&r, 405, NULL, 0);
    assert_string_equal(eddy_test_http_header(&r, "Allow"), "POST, PUT, OPTIONS");

    /* OPTIONS answers with what the path allows; CORS is off by default. */
    assert_int_equal(
        eddy_test_http(HOST, port, "OPTIONS", "/api/stores/x/windows", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 204);
    assert_string_equal(eddy_test_http_header(&r, "Allow"), "GET, HEAD, OPTIONS");
    assert_null(eddy_test_http_header(&r, "Access-Control-Allow-Origin"));
    assert_int_equal(eddy_test_http(HOST, port, "OPTIONS", "*", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 204);
    expect_error(port, "OPTIONS", "/nope", 404, NULL);

    /* Dot segments are never routed (a client should have removed them). */
    expect_error(port, "GET", "/api/stores/../stores/x/windows", 400, "'..'");
    expect_error(port, "GET", "/./limit", 400, "'.'");
    /* Percent-encoded dots are data in an API path. */
    json_t *j = get_json(port, "/api/metrics/endpoint/%2e%2e", 200);
    assert_string_equal(json_string_value(json_object_get(j, "endpoint")), "..");
    json_decref(j);

    /* Something that is not HTTP is refused by MHD's parser (its own short body). */
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, port);
    assert_non_null(conn);
    const char junk[] = "GET /limit HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n";
    assert_int_equal(eddy_test_http_send(conn, junk, sizeof(junk) - 1), 0);
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_int_equal(r.status, 400);
    eddy_test_http_close(conn);

    /* Headers beyond MHD's per-connection memory: refused, and the server goes on. */
    size_t big = 40 * 1024;
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    memcpy(huge, "X-Big: ", 7);
    memset(huge + 7, 'a', big);
    memcpy(huge + 7 + big, "\r\n", 3);
    conn = eddy_test_http_connect(HOST, port);
    assert_int_equal(eddy_test_http_request(conn, "GET", "/limit", huge, NULL, 0, &r), 0);
    assert_true(r.status == 431 || r.status == 413);
    eddy_test_http_close(conn);
    free(huge);
    json_decref(get_json(port, "/limit", 200));
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

static void test_head_and_keep_alive(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    int port = eddy_http_port(http);
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, port);
    assert_non_null(conn);
    eddy_test_http_resp_t get = {0}, head = {0};
    assert_int_equal(
        eddy_test_http_request(conn, "GET", "/api/metrics/endpoint/e", NULL, NULL, 0, &get), 0);
    assert_int_equal(get.status, 200);
    assert_int_equal(
        eddy_test_http_request(conn, "HEAD", "/api/metrics/endpoint/e", NULL, NULL, 0, &head), 0);
    assert_int_equal(head.status, 200);
    assert_int_equal(head.body_len, 0);
    char n[32];
    snprintf(n, sizeof(n), "%zu", get.body_len);
    assert_string_equal(eddy_test_http_header(&head, "Content-Length"), n);
    assert_string_equal(eddy_test_http_header(&head, "Content-Type"),
                        "application/json; charset=utf-8");
    /* The same connection goes on: nothing stray was sent after HEAD's headers. */
    assert_int_equal(eddy_test_http_request(conn, "GET", "/limit", NULL, NULL, 0, &get), 0);
    assert_int_equal(get.status, 200);
    assert_string_equal(get.body, "{\"limit\":10}");

    /* Handler headers, a handler's Cache-Control, request headers, static bodies. */
    assert_int_equal(
        eddy_test_http_request(conn, "GET", "/headers", "X-Test: hi there\r\n", NULL, 0, &get), 0);
    assert_int_equal(get.status, 200);
    assert_string_equal(get.body, "static text");
    assert_string_equal(eddy_test_http_header(&get, "X-Reply"), "hi there");
    assert_string_equal(eddy_test_http_header(&get, "Cache-Control"), "max-age=5");
    assert_null(eddy_test_http_header(&get, "Set-Cookie"));
    assert_int_equal(eddy_test_http_request(conn, "GET", "/client", NULL, NULL, 0, &get), 0);
    assert_string_equal(get.body, "{\"client\":\"127.0.0.1\"}");
    eddy_test_http_resp_free(&get);
    eddy_test_http_resp_free(&head);
    eddy_test_http_close(conn);
    eddy_http_destroy(http);
}

/* --- static files -------------------------------------------------------------------- */

static void test_static_files(void **state)
{
    char top[256], root[300], sub[320], path[512], target[512];
    eddy_test_mkdtemp("http", top, sizeof(top));
    snprintf(root, sizeof(root), "%s/www", top);
    snprintf(sub, sizeof(sub), "%s/sub", root);
    assert_int_equal(mkdir(root, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_file(top, "secret.txt", "secret");
    write_file(root, "index.html", "<h1>eddy</h1>");
    write_file(root, "app.js", "let x = 1;");
    write_file(root, "style.css", "body{}");
    write_file(root, "logo.svg", "<svg/>");
    write_file(root, "img.png", "\x89PNG");
    write_file(root, "data.json", "{}");
    write_file(root, "font.woff2", "wOF2");
    write_file(root, "blob.bin", "??");
    write_file(root, ".env", "TOKEN=1");
    write_file(sub, "index.html", "<p>sub</p>");
    snprintf(path, sizeof(path), "%s/out.txt", root);
    assert_int_equal(symlink("../secret.txt", path), 0); /* leads out of the root */
    snprintf(path, sizeof(path), "%s/outdir", root);
    assert_int_equal(symlink(top, path), 0); /* a directory outside */
    snprintf(path, sizeof(path), "%s/in.html", root);
    assert_int_equal(symlink("sub/index.html", path), 0); /* stays inside */

    eddy_http_t *http = server((eddy_http_config_t){.static_root = root});
    int port = eddy_http_port(http);
    static const struct {
        const char *target, *type, *body;
    } files[] = {
        {"/", "text/html; charset=utf-8", "<h1>eddy</h1>"},
        {"/index.html", "text/html; charset=utf-8", "<h1>eddy</h1>"},
        {"/app.js", "text/javascript; charset=utf-8", "let x = 1;"},
        {"/style.css", "text/css; charset=utf-8", "body{}"},
        {"/logo.svg", "image/svg+xml", "<svg/>"},
        {"/img.png", "image/png", "\x89PNG"},
        {"/data.json", "application/json; charset=utf-8", "{}"},
        {"/font.woff2", "font/woff2", "wOF2"},
        {"/blob.bin", "application/octet-stream", "??"},
        {"/sub/", "text/html; charset=utf-8", "<p>sub</p>"},
        {"/in.html", "text/html; charset=utf-8", "<p>sub</p>"},
        {"/%73ub/index.html", "text/html; charset=utf-8", "<p>sub</p>"},
    };
    eddy_test_http_resp_t r = {0};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        assert_int_equal(eddy_test_http(HOST, port, "GET", files[i].target, NULL, NULL, 0, &r), 0);
        if (r.status != 200)
            fail_msg("GET %s: %d %s", files[i].target, r.status, r.body);
        assert_string_equal(eddy_test_http_header(&r, "Content-Type"), files[i].type);
        assert_string_equal(r.body, files[i].body);
        assert_string_equal(eddy_test_http_header(&r, "Cache-Control"), "no-cache");
        assert_string_equal(eddy_test_http_header(&r, "X-Content-Type-Options"), "nosniff");
    }
    assert_int_equal(eddy_test_http(HOST, port, "HEAD", "/app.js", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(eddy_test_http_header(&r, "Content-Length"), "10");
    assert_int_equal(r.body_len, 0);

    /* Routes come first; static files only fill in unrouted paths. */
    json_t *j = get_json(port, "/limit", 200);
    json_decref(j);

    /* Every way out of the root fails, and so do hidden files and directories. */
    static const struct {
        const char *target;
        int status;
    } refused[] = {
        {"/../secret.txt", 400},
        {"/sub/../../secret.txt", 400},
        {"/%2e%2e/secret.txt", 400},
        {"/%2E%2E/secret.txt", 400},
        {"/sub/%2e%2e/%2e%2e/secret.txt", 400},
        {"/.%2e/secret.txt", 400},
        {"/%2e", 400},
        {"/..%2fsecret.txt", 404},
        {"/..%5csecret.txt", 404},
        {"/%2F..%2Fsecret.txt", 404},
        {"/%2Fetc%2Fpasswd", 404},
        {"//etc/passwd", 404},
        {"/etc/passwd", 404},
        {"/out.txt", 404},
        {"/outdir/secret.txt", 404},
        {"/.env", 404},
        {"/sub", 404},
        {"/missing.html", 404},
        {"http://x/../secret.txt", 400},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        expect_error(port, "GET", refused[i].target, refused[i].status, NULL);
    /* What counts is where a file really is: through a link out and back in is in. */
    assert_int_equal(eddy_test_http(HOST, port, "GET", "/outdir/www/index.html", NULL, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    /* An absolute path as the target is not a path under the root either. */
    snprintf(target, sizeof(target), "%s/secret.txt", top);
    expect_error(port, "GET", target, 404, NULL);

    /* Files take GET and HEAD only. */
    assert_int_equal(eddy_test_http(HOST, port, "POST", "/app.js", NULL, "x", 1, &r), 0);
    assert_error_body(&r, 405, NULL, 0);
    assert_string_equal(eddy_test_http_header(&r, "Allow"), "GET, HEAD, OPTIONS");
    expect_error(port, "POST", "/missing.js", 404, NULL);
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);

    /* A root that is not a directory is refused up front. */
    char errstr[256];
    eddy_http_config_t cfg = {.listen = HOST ":0", .static_root = path};
    assert_null(eddy_http_new(&cfg, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "not a directory"));
    snprintf(path, sizeof(path), "%s/nowhere", top);
    assert_null(eddy_http_new(&cfg, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "No such file or directory"));
    eddy_test_rmtree(top);
}

/* --- bodies and failures ---------------------------------------------------------------- */

static void test_body_limit(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){.max_body = 1024});
    int port = eddy_http_port(http);
    char big[4096];
    memset(big, 'b', sizeof(big));
    eddy_test_http_resp_t r = {0};

    assert_int_equal(eddy_test_http(HOST, port, "POST", "/echo", NULL, big, 1024, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1024);
    assert_string_equal(eddy_test_http_header(&r, "X-Body-Length"), "1024");
    assert_int_equal(eddy_test_http(HOST, port, "PUT", "/echo", NULL, "", 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(eddy_test_http_header(&r, "X-Body-Length"), "0");

    /* Too large by Content-Length: refused before the body is read, then closed. */
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, port);
    assert_int_equal(eddy_test_http_request(conn, "POST", "/echo", NULL, big, 1025, &r), 0);
    assert_error_body(&r, 413, NULL, 0);
    assert_true(eddy_test_http_peer_closed(conn, 2000));
    eddy_test_http_close(conn);

    /* Expect: 100-continue: refused without the client sending anything. */
    conn = eddy_test_http_connect(HOST, port);
    const char expect[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                          "Expect: 100-continue\r\n\r\n";
    assert_int_equal(eddy_test_http_send(conn, expect, sizeof(expect) - 1), 0);
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_error_body(&r, 413, NULL, 0);
    eddy_test_http_close(conn);

    /* Chunked bodies have no length up front: counted as they come. */
    conn = eddy_test_http_connect(HOST, port);
    const char small[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_int_equal(eddy_test_http_send(conn, small, sizeof(small) - 1), 0);
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world");
    const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(eddy_test_http_send(conn, head, sizeof(head) - 1), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(eddy_test_http_send(conn, "400\r\n", 5), 0);
        assert_int_equal(eddy_test_http_send(conn, big, 0x400), 0);
        assert_int_equal(eddy_test_http_send(conn, "\r\n", 2), 0);
    }
    assert_int_equal(eddy_test_http_send(conn, "0\r\n\r\n", 5), 0);
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_error_body(&r, 413, NULL, 0);
    eddy_test_http_close(conn);
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

static void test_handler_failure(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    int port = eddy_http_port(http);
    expect_error(port, "GET", "/fail", 500, "failed to answer GET /fail");
    expect_error(port, "GET", "/silent", 500, NULL);
    eddy_http_stats_t st;
    wait_requests(http, 2, &st);
    assert_int_equal(st.status_class[5], 2);
    eddy_http_destroy(http);
}

/* --- concurrency, metrics, limits ---------------------------------------------------------- */

typedef struct client_arg_s {
    int port; /* the server */
    int id;   /* this client */
    int done; /* requests answered correctly */
} client_arg_t;

#define CLIENTS         8
#define CLIENT_REQUESTS 40

static void *client_main(void *p)
{
    client_arg_t *arg = p;
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, arg->port);
    if (!conn)
        return NULL;
    eddy_test_http_resp_t r = {0};
    for (int i = 0; i < CLIENT_REQUESTS; i++) {
        char target[64], want[64];
        snprintf(target, sizeof(target), "/count/%d-%d", arg->id, i);
        snprintf(want, sizeof(want), "{\"n\":\"%d-%d\"}", arg->id, i);
        if (eddy_test_http_request(conn, "GET", target, NULL, NULL, 0, &r) || r.status != 200 ||
            strcmp(r.body, want))
            break;
        arg->done++;
    }
    eddy_test_http_resp_free(&r);
    eddy_test_http_close(conn);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){.threads = 4});
    atomic_store(&counted, 0);
    pthread_t threads[CLIENTS];
    client_arg_t args[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        args[i] = (client_arg_t){.port = eddy_http_port(http), .id = i};
        assert_int_equal(pthread_create(&threads[i], NULL, client_main, &args[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].done, CLIENT_REQUESTS);
    }
    assert_int_equal(atomic_load(&counted), CLIENTS * CLIENT_REQUESTS);
    eddy_http_stats_t st;
    wait_requests(http, CLIENTS * CLIENT_REQUESTS, &st);
    assert_int_equal(st.requests, CLIENTS * CLIENT_REQUESTS);
    assert_int_equal(st.status_class[2], CLIENTS * CLIENT_REQUESTS);
    assert_int_equal(st.connections_total, CLIENTS);
    eddy_http_destroy(http);
}

static void test_latency_histogram(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    int port = eddy_http_port(http);
    eddy_http_stats_t st;
    eddy_http_stats(http, &st);
    assert_int_equal(st.requests, 0);
    assert_int_equal(st.latency_count, 0);

    for (int i = 0; i < 5; i++)
        json_decref(get_json(port, "/limit", 200));
    json_decref(get_json(port, "/slow", 200));
    expect_error(port, "GET", "/nope", 404, NULL);
    wait_requests(http, 7, &st);
    assert_int_equal(st.requests, 7);
    assert_int_equal(st.status_class[2], 6);
    assert_int_equal(st.status_class[4], 1);
    assert_int_equal(st.latency_count, 7);
    /* Buckets are cumulative and end at the count; the slow request (40 ms) lies
     * above the 25 ms bound and within 10 s. */
    for (int i = 1; i < EDDY_HTTP_LATENCY_BUCKETS; i++)
        assert_true(st.latency_le[i] >= st.latency_le[i - 1]);
    assert_true(eddy_http_latency_bounds[7] == 0.025);
    assert_true(st.latency_le[7] <= 6);
    assert_int_equal(st.latency_le[EDDY_HTTP_LATENCY_BUCKETS - 1], 7);
    assert_true(st.latency_sum >= 0.040 && st.latency_sum < 10);
    assert_int_equal(st.connections_total, 7);
    eddy_http_destroy(http);
}

/* Waits (up to 3 s) until the server answers no request: a client has the last
 * byte of an answer before MHD's completion runs, and a loaded machine can hold
 * that completion back for a while; until it runs the connection is still being
 * answered (not evictable) and its idle time has not begun. */
static void settle(eddy_http_t *http)
{
    for (int64_t deadline = now_ms() + 3000; now_ms() < deadline;) {
        eddy_http_stats_t hs;
        eddy_http_stats(http, &hs);
        if (hs.requests_in_flight == 0)
            return;
        sleep_ms(2);
    }
}

/* The connection limit keeps room for newcomers: past it, the connection with the
 * oldest start that is still waiting for or receiving a request is evicted (a
 * request that has begun is told 503 why); only when every connection is being
 * answered (or upgraded) is the newcomer refused with a 503. */
static void test_connection_limit(void **state)
{
    eddy_http_t *http = server(
        (eddy_http_config_t){.connection_limit = 2, .threading = EDDY_HTTP_THREAD_PER_CONNECTION});
    int port = eddy_http_port(http);
    eddy_test_http_resp_t r = {0};
    char msg[256];

    /* b stalls inside its headers; a is answered and stays open (keep-alive). */
    eddy_test_http_conn_t *b = eddy_test_http_connect(HOST, port);
    const char stall[] = "GET /limit HTTP/1.1\r\nHost: x\r\nX-Slow: aaa";
    assert_int_equal(eddy_test_http_send(b, stall, sizeof(stall) - 1), 0);
    sleep_ms(50); /* its request line is read */
    eddy_test_http_conn_t *a = eddy_test_http_connect(HOST, port);
    assert_int_equal(eddy_test_http_request(a, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    settle(http); /* a idle from now on: older than c will be */

    /* c is served; b, the oldest incomplete request, is evicted and told why. */
    eddy_test_http_conn_t *c = eddy_test_http_connect(HOST, port);
    assert_int_equal(eddy_test_http_request(c, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(eddy_test_http_read_response(b, false, &r), 0);
    assert_error_body(&r, 503, msg, sizeof(msg));
    assert_non_null(strstr(msg, "connection limit"));
    assert_string_equal(eddy_test_http_header(&r, "Retry-After"), "1");
    assert_true(eddy_test_http_peer_closed(b, 2000));
    eddy_test_http_close(b);

    /* Next is a, idle since its answer: closed without a word, like any idle one. */
    settle(http);
    eddy_test_http_conn_t *d = eddy_test_http_connect(HOST, port);
    assert_int_equal(eddy_test_http_request(d, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    char byte;
    assert_int_equal(eddy_test_http_recv(a, &byte, 1), 0);
    eddy_test_http_close(a);

    /* With c and d being answered there is nothing to evict: the newcomer is told. */
    wait_open(http, 2);
    atomic_store(&blocked, 0);
    atomic_store(&block_release, 0);
    assert_int_equal(eddy_test_http_send_request(c, "GET", "/block", NULL, NULL, 0), 0);
    assert_int_equal(eddy_test_http_send_request(d, "GET", "/block", NULL, NULL, 0), 0);
    for (int64_t deadline = now_ms() + 3000; atomic_load(&blocked) < 2 && now_ms() < deadline;)
        sleep_ms(2);
    assert_int_equal(atomic_load(&blocked), 2);
    eddy_test_http_conn_t *e = eddy_test_http_connect(HOST, port);
    assert_int_equal(eddy_test_http_request(e, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_error_body(&r, 503, msg, sizeof(msg));
    assert_non_null(strstr(msg, "too many connections"));
    assert_true(eddy_test_http_peer_closed(e, 2000));
    eddy_test_http_close(e);
    atomic_store(&block_release, 1);
    assert_int_equal(eddy_test_http_read_response(c, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(eddy_test_http_read_response(d, false, &r), 0);
    assert_int_equal(r.status, 200);

    eddy_http_stats_t st;
    eddy_http_stats(http, &st);
    assert_int_equal(st.connections_evicted, 2);
    assert_int_equal(st.connections_refused, 1);
    assert_int_equal(st.connections_timed_out, 0);
    eddy_test_http_close(c);
    eddy_test_http_close(d);
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

/* The same per address: a newcomer past per_ip_limit evicts the oldest waiting
 * connection of its own address, never another's; refused (503) only when its
 * address has nothing to evict. */
static void test_per_ip_limit(void **state)
{
    eddy_http_t *http = server(
        (eddy_http_config_t){.per_ip_limit = 2, .threading = EDDY_HTTP_THREAD_PER_CONNECTION});
    int port = eddy_http_port(http);
    eddy_test_http_resp_t r = {0};
    char msg[256];
    eddy_test_http_conn_t *other = eddy_test_http_connect_from(HOST, port, "127.0.0.2");
    assert_non_null(other);
    assert_int_equal(eddy_test_http_request(other, "GET", "/limit", NULL, NULL, 0, &r), 0);
    eddy_test_http_conn_t *a = eddy_test_http_connect_from(HOST, port, "127.0.0.1");
    eddy_test_http_conn_t *b = eddy_test_http_connect_from(HOST, port, "127.0.0.1");
    assert_int_equal(eddy_test_http_request(a, "GET", "/limit", NULL, NULL, 0, &r), 0);
    settle(http); /* a idle before b: the older of the two */
    assert_int_equal(eddy_test_http_request(b, "GET", "/limit", NULL, NULL, 0, &r), 0);
    settle(http);

    /* A third from 127.0.0.1 is served; a (its address's oldest) goes, not `other`,
     * older still but from 127.0.0.2. */
    eddy_test_http_conn_t *c = eddy_test_http_connect_from(HOST, port, "127.0.0.1");
    assert_int_equal(eddy_test_http_request(c, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(eddy_test_http_peer_closed(a, 2000));
    eddy_test_http_close(a);
    assert_int_equal(eddy_test_http_request(other, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(eddy_test_http_request(b, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);

    /* b and c being answered: a third from 127.0.0.1 is refused, 127.0.0.2 is not. */
    atomic_store(&blocked, 0);
    atomic_store(&block_release, 0);
    assert_int_equal(eddy_test_http_send_request(b, "GET", "/block", NULL, NULL, 0), 0);
    assert_int_equal(eddy_test_http_send_request(c, "GET", "/block", NULL, NULL, 0), 0);
    for (int64_t deadline = now_ms() + 3000; atomic_load(&blocked) < 2 && now_ms() < deadline;)
        sleep_ms(2);
    assert_int_equal(atomic_load(&blocked), 2);
    eddy_test_http_conn_t *d = eddy_test_http_connect_from(HOST, port, "127.0.0.1");
    assert_int_equal(eddy_test_http_request(d, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_error_body(&r, 503, msg, sizeof(msg));
    assert_non_null(strstr(msg, "from your address"));
    eddy_test_http_close(d);
    eddy_test_http_conn_t *e = eddy_test_http_connect_from(HOST, port, "127.0.0.2");
    assert_int_equal(eddy_test_http_request(e, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    eddy_test_http_close(e);
    atomic_store(&block_release, 1);
    assert_int_equal(eddy_test_http_read_response(b, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(eddy_test_http_read_response(c, false, &r), 0);
    assert_int_equal(r.status, 200);
    eddy_http_stats_t st;
    eddy_http_stats(http, &st);
    assert_int_equal(st.connections_evicted, 1);
    assert_int_equal(st.connections_refused, 1);
    eddy_test_http_close(b);
    eddy_test_http_close(c);
    eddy_test_http_close(other);
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

static void test_idle_timeout(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){.timeout_s = 1});
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, eddy_http_port(http));
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http_request(conn, "GET", "/limit", NULL, NULL, 0, &r), 0);
    int64_t t0 = now_ms();
    assert_true(eddy_test_http_peer_closed(conn, 3000));
    assert_true(now_ms() - t0 >= 900);
    eddy_test_http_close(conn);
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

/* Sends `start`, then one byte of `drip` every 50 ms (activity that keeps MHD's
 * idle timeout from ever firing) until the server answers or closes; returns the
 * milliseconds from connect to that, with the answer (if any) in *r. */
static int64_t trickle(int port, const char *start, eddy_test_http_resp_t *r, bool *answered)
{
    int64_t t0 = now_ms();
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, port);
    assert_non_null(conn);
    assert_int_equal(eddy_test_http_send(conn, start, strlen(start)), 0);
    int64_t end = -1;
    *answered = false;
    while (now_ms() - t0 < 10000) {
        struct pollfd pfd = {.fd = eddy_test_http_fd(conn), .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0) {
            end = now_ms() - t0;
            eddy_test_http_set_timeout(conn, 2000);
            *answered = eddy_test_http_read_response(conn, false, r) == 0;
            break;
        }
        if (eddy_test_http_send(conn, "a", 1)) {
            end = now_ms() - t0;
            break;
        }
    }
    eddy_test_http_close(conn);
    if (end < 0)
        fail_msg("a trickling client was not closed in 10 s: %s", start);
    return end;
}

/* A request has its headers deadline, then its body deadline, counted from its
 * start (the accept; on a keep-alive connection the end of the previous answer)
 * and not reset by the bytes it trickles: past it the request is answered 408 and
 * closed. A connection that sends nothing is closed at the header deadline
 * without an answer. (MHD's own idle timeout is 30 s here: it plays no part.) */
static void test_request_deadlines(void **state)
{
    enum { HEADER_MS = 600, BODY_MS = 1200, SLACK_MS = 2500 };
    eddy_http_t *http = server((eddy_http_config_t){
        .timeout_s = 30, .header_timeout_ms = HEADER_MS, .body_timeout_ms = BODY_MS});
    int port = eddy_http_port(http);
    eddy_test_http_resp_t r = {0};
    char msg[256];
    bool answered;

    int64_t ms = trickle(port, "GET /limit HTTP/1.1\r\nHost: x\r\nX-Drip: ", &r, &answered);
    assert_true(ms >= HEADER_MS - 50 && ms < HEADER_MS + SLACK_MS);
    assert_true(answered);
    assert_error_body(&r, 408, msg, sizeof(msg));
    assert_non_null(strstr(msg, "headers did not arrive in time"));
    assert_string_equal(eddy_test_http_header(&r, "Connection"), "close");

    ms = trickle(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", &r,
                 &answered);
    assert_true(ms >= BODY_MS - 50 && ms < BODY_MS + SLACK_MS);
    assert_true(answered);
    assert_error_body(&r, 408, msg, sizeof(msg));
    assert_non_null(strstr(msg, "body did not arrive in time"));

    /* Not even a request line: closed unanswered at the header deadline. */
    int64_t t0 = now_ms();
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, port);
    char byte;
    eddy_test_http_set_timeout(conn, HEADER_MS + SLACK_MS);
    assert_int_equal(eddy_test_http_recv(conn, &byte, 1), 0);
    assert_true(now_ms() - t0 >= HEADER_MS - 50);
    eddy_test_http_close(conn);

    /* Keep-alive: the next request's clock starts when the last answer ends. */
    conn = eddy_test_http_connect(HOST, port);
    assert_int_equal(eddy_test_http_request(conn, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    t0 = now_ms();
    eddy_test_http_set_timeout(conn, HEADER_MS + SLACK_MS);
    assert_int_equal(eddy_test_http_recv(conn, &byte, 1), 0);
    assert_true(now_ms() - t0 >= HEADER_MS - 50);
    eddy_test_http_close(conn);

    /* A request that keeps to its deadlines is served, however it is split. */
    conn = eddy_test_http_connect(HOST, port);
    const char part1[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n";
    const char part2[] = "\r\nhel";
    assert_int_equal(eddy_test_http_send(conn, part1, sizeof(part1) - 1), 0);
    sleep_ms(HEADER_MS / 2);
    assert_int_equal(eddy_test_http_send(conn, part2, sizeof(part2) - 1), 0);
    sleep_ms(HEADER_MS / 2);
    assert_int_equal(eddy_test_http_send(conn, "lo", 2), 0);
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    eddy_test_http_close(conn);

    eddy_http_stats_t st;
    eddy_http_stats(http, &st);
    assert_int_equal(st.connections_timed_out, 4);
    assert_int_equal(st.connections_evicted, 0);
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

/* A request being answered is never closed by a deadline, however long its
 * handler takes. */
static void test_deadline_spares_answers(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){.header_timeout_ms = 200,
                                                    .body_timeout_ms = 200,
                                                    .threading = EDDY_HTTP_THREAD_PER_CONNECTION});
    atomic_store(&blocked, 0);
    atomic_store(&block_release, 0);
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, eddy_http_port(http));
    assert_int_equal(eddy_test_http_send_request(conn, "GET", "/block", NULL, NULL, 0), 0);
    for (int64_t deadline = now_ms() + 3000; atomic_load(&blocked) < 1 && now_ms() < deadline;)
        sleep_ms(2);
    sleep_ms(600);
    atomic_store(&block_release, 1);
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_int_equal(r.status, 200);
    eddy_http_stats_t st;
    eddy_http_stats(http, &st);
    assert_int_equal(st.connections_timed_out, 0);
    eddy_test_http_close(conn);
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

/* --- upgrades, CORS, servers side by side ------------------------------------------------- */

static void test_upgrade(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, eddy_http_port(http));
    /* Bytes sent right after the request reach the callback as `extra`. */
    const char req[] = "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       "Upgrade: eddy-test\r\n\r\nearly";
    assert_int_equal(eddy_test_http_send(conn, req, sizeof(req) - 1), 0);
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_int_equal(r.status, 101);
    assert_string_equal(eddy_test_http_header(&r, "Upgrade"), "eddy-test");
    char buf[128];
    size_t n = 0;
    for (ssize_t got; n < sizeof(buf) - 1 &&
                      (got = eddy_test_http_recv(conn, buf + n, sizeof(buf) - 1 - n)) > 0;)
        n += (size_t)got;
    buf[n] = '\0';
    assert_string_equal(buf, "hello there|early");
    eddy_test_http_close(conn);

    /* HTTP/1.0 cannot switch protocols. */
    conn = eddy_test_http_connect(HOST, eddy_http_port(http));
    const char old[] = "GET /upgrade HTTP/1.0\r\nUpgrade: eddy-test\r\n\r\n";
    assert_int_equal(eddy_test_http_send(conn, old, sizeof(old) - 1), 0);
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_error_body(&r, 400, NULL, 0);
    eddy_test_http_close(conn);
    eddy_test_http_resp_free(&r);

    eddy_http_stats_t st;
    wait_requests(http, 2, &st);
    assert_int_equal(st.status_class[1], 1);
    assert_int_equal(st.latency_count, 1); /* the upgrade is not a latency */
    eddy_http_destroy(http);
}

static void test_cors(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){.cors_origin = "http://localhost:3000"});
    int port = eddy_http_port(http);
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http(HOST, port, "GET", "/limit", NULL, NULL, 0, &r), 0);
    assert_string_equal(eddy_test_http_header(&r, "Access-Control-Allow-Origin"),
                        "http://localhost:3000");
    assert_string_equal(eddy_test_http_header(&r, "Vary"), "Origin");
    assert_int_equal(eddy_test_http(HOST, port, "OPTIONS", "/echo",
                                    "Origin: http://localhost:3000\r\n"
                                    "Access-Control-Request-Method: POST\r\n",
                                    NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 204);
    assert_string_equal(eddy_test_http_header(&r, "Access-Control-Allow-Methods"),
                        "POST, PUT, OPTIONS");
    assert_non_null(eddy_test_http_header(&r, "Access-Control-Allow-Headers"));
    eddy_test_http_resp_free(&r);
    eddy_http_destroy(http);
}

static void test_two_servers(void **state)
{
    char errstr[256];
    eddy_http_t *s[2];
    static const char *const names[2] = {"one", "two"};
    static const eddy_http_threading_t models[2] = {EDDY_HTTP_POOL_POLL,
                                                    EDDY_HTTP_THREAD_PER_CONNECTION};
    for (int i = 0; i < 2; i++) {
        eddy_http_config_t cfg = {.listen = HOST ":0", .threading = models[i], .threads = 3};
        s[i] = eddy_http_new(&cfg, errstr, sizeof(errstr));
        assert_non_null(s[i]);
        assert_int_equal(eddy_http_route(s[i], "GET", "/name", h_name, (void *)names[i]), EDDY_OK);
        assert_int_equal(eddy_http_start(s[i], errstr, sizeof(errstr)), EDDY_OK);
    }
    assert_int_not_equal(eddy_http_port(s[0]), eddy_http_port(s[1]));
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 2; i++) {
            json_t *j = get_json(eddy_http_port(s[i]), "/name", 200);
            assert_string_equal(json_string_value(json_object_get(j, "server")), names[i]);
            json_decref(j);
        }
    json_decref(get_json(eddy_http_port(s[1]), "/nope", 404));
    eddy_http_stats_t st;
    wait_requests(s[0], 3, &st);
    wait_requests(s[1], 4, &st);
    eddy_http_stats(s[0], &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.status_class[4], 0);
    eddy_http_stats(s[1], &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.status_class[4], 1);
    eddy_http_destroy(s[0]);
    /* The other one is unaffected by its neighbour's end. */
    json_decref(get_json(eddy_http_port(s[1]), "/name", 200));
    eddy_http_destroy(s[1]);
}

/* --- life cycle ----------------------------------------------------------------------------- */

static void test_destroy_with_open_connections(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    int port = eddy_http_port(http);
    eddy_test_http_conn_t *idle = eddy_test_http_connect(HOST, port);
    eddy_test_http_conn_t *half = eddy_test_http_connect(HOST, port);
    eddy_test_http_conn_t *body = eddy_test_http_connect(HOST, port);
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http_request(idle, "GET", "/limit", NULL, NULL, 0, &r), 0);
    const char partial[] = "GET /limit HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(eddy_test_http_send(half, partial, sizeof(partial) - 1), 0);
    const char upload[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    assert_int_equal(eddy_test_http_send(body, upload, sizeof(upload) - 1), 0);
    wait_open(http, 3);
    sleep_ms(20); /* let the server read what was sent */

    int64_t t0 = now_ms();
    eddy_http_destroy(http);
    assert_true(now_ms() - t0 < 2000);
    assert_true(eddy_test_http_peer_closed(idle, 1000));
    assert_true(eddy_test_http_peer_closed(half, 1000));
    assert_true(eddy_test_http_peer_closed(body, 1000));
    eddy_test_http_close(idle);
    eddy_test_http_close(half);
    eddy_test_http_close(body);
    eddy_test_http_resp_free(&r);

    /* Never started, or NULL: destroy is still fine. */
    char errstr[256];
    eddy_http_config_t cfg = {.listen = HOST ":0"};
    http = eddy_http_new(&cfg, errstr, sizeof(errstr));
    assert_non_null(http);
    eddy_http_destroy(http);
    eddy_http_destroy(NULL);
}

static void test_listen_errors(void **state)
{
    eddy_http_t *http = server((eddy_http_config_t){0});
    char listen[64], errstr[256], want[128];
    snprintf(listen, sizeof(listen), HOST ":%d", eddy_http_port(http));
    eddy_http_config_t cfg = {.listen = listen};
    assert_null(eddy_http_new(&cfg, errstr, sizeof(errstr)));
    snprintf(want, sizeof(want), "cannot listen on %s: Address already in use", listen);
    assert_string_equal(errstr, want);
    eddy_http_destroy(http);

    /* The port is free again once the server is gone. */
    http = eddy_http_new(&cfg, errstr, sizeof(errstr));
    if (!http)
        fail_msg("%s", errstr);
    eddy_http_destroy(http);

    static const char *const bad[] = {"nonsense", "127.0.0.1", "127.0.0.1:99999", "1.2.3.4:x",
                                      "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.listen = bad[i];
        assert_null(eddy_http_new(&cfg, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "is not HOST:PORT"));
    }
    cfg.listen = "192.0.2.1:0"; /* TEST-NET: not an address of this machine */
    assert_null(eddy_http_new(&cfg, errstr, sizeof(errstr)));
    assert_string_equal(errstr, "cannot listen on 192.0.2.1:0: Cannot assign requested address");

    /* Other spellings of an address. */
    static const char *const good[] = {":0", "*:0", "localhost:0", "[::1]:0", "0.0.0.0:0"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cfg.listen = good[i];
        http = eddy_http_new(&cfg, errstr, sizeof(errstr));
        if (!http && i == 3 && strstr(errstr, "Cannot assign"))
            continue; /* no IPv6 loopback in this container */
        if (!http)
            fail_msg("%s: %s", good[i], errstr);
        assert_true(eddy_http_port(http) > 0);
        eddy_http_destroy(http);
    }
}

static void test_route_registration(void **state)
{
    char errstr[256];
    eddy_http_config_t cfg = {.listen = HOST ":0"};
    eddy_http_t *http = eddy_http_new(&cfg, errstr, sizeof(errstr));
    assert_non_null(http);
    static const char *const bad[] = {
        "api/x",
        "/a/{}",
        "/a/{x",
        "/a/x{y}",
        "/a/{x...}/b",
        "/a/{x}/{x}",
        "/a/{with-dash}",
        "/a/%2F",
        "/a?b",
        "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22/23/24/25/26/27/28/29/30/31/32/"
        "33",
        "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (eddy_http_route(http, "GET", bad[i], h_limit, NULL) != EDDY_ERR_INVALID)
            fail_msg("pattern '%s' was accepted", bad[i]);
    assert_int_equal(eddy_http_route(http, "get", "/a", h_limit, NULL), EDDY_ERR_INVALID);
    assert_int_equal(eddy_http_route(http, "GET", "/a/{x}", h_limit, NULL), EDDY_OK);
    /* Same shape, other parameter name: still a duplicate. */
    assert_int_equal(eddy_http_route(http, "GET", "/a/{y}", h_limit, NULL), EDDY_ERR_INVALID);
    assert_int_equal(eddy_http_route(http, "POST", "/a/{y}", h_limit, NULL), EDDY_OK);
    assert_int_equal(eddy_http_route(http, "GET", "/", h_limit, NULL), EDDY_OK);
    assert_int_equal(eddy_http_start(http, errstr, sizeof(errstr)), EDDY_OK);
    assert_int_equal(eddy_http_start(http, errstr, sizeof(errstr)), EDDY_ERR_STATE);
    assert_int_equal(eddy_http_route(http, "GET", "/late", h_limit, NULL), EDDY_ERR_STATE);
    json_t *j = get_json(eddy_http_port(http), "/?limit=3", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "limit")), 3);
    json_decref(j);
    eddy_http_destroy(http);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_and_decoding),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_errors_404_405),
        cmocka_unit_test(test_head_and_keep_alive),
        cmocka_unit_test(test_static_files),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_handler_failure),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_latency_histogram),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_per_ip_limit),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_request_deadlines),
        cmocka_unit_test(test_deadline_spares_answers),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_two_servers),
        cmocka_unit_test(test_destroy_with_open_connections),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_route_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
