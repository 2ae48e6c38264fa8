/*
 * test_cluster_codec.c — the pieces of cluster-wide queries that need no
 * processes: a partial aggregate survives the partials codec (hex of the store
 * codec inside JSON) exactly, and merging decoded partials equals one aggregate
 * over all events; malformed entries are rejected; instance records parse and
 * bad ones are refused; the peer HTTP client parses Content-Length, chunked and
 * close-delimited bodies and rejects cut-short or malformed responses.
 */
#include "eddy_proc.h"
#include "test_support.h"

#include "engine/instances.h"
#include "query/cluster_query.h"
#include "query/peer_client.h"
#include "topology/aggregate.h"

#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

static const char topo_json[] =
    "{\"name\":\"t\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\",\"format\":"
    "\"epoch_ms\"}},"
    "\"stores\":[{\"name\":\"s\",\"group_by\":[\"k\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"count\",\"op\":\"count\"},"
    "{\"name\":\"errors\",\"op\":\"count_if\",\"where\":\"status >= 500\"},"
    "{\"name\":\"mean_v\",\"op\":\"mean\",\"field\":\"v\"},"
    "{\"name\":\"p99\",\"op\":\"percentile\",\"field\":\"v\",\"q\":0.99},"
    "{\"name\":\"users\",\"op\":\"distinct\",\"field\":\"u\"}]}]}";

typedef struct fixture_s {
    eddy_topology_t *topo;
    eddy_agg_layout_t *layout;
} fixture_t;

static int setup(void **state)
{
    static fixture_t fx;
    char errstr[512];
    fx.topo = eddy_topology_load_string(topo_json, "test", errstr, sizeof(errstr));
    if (!fx.topo)
        return -1;
    fx.layout = eddy_agg_layout_new(eddy_topology_store(fx.topo, 0), errstr, sizeof(errstr));
    *state = &fx;
    return fx.layout ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_layout_destroy(fx->layout);
    eddy_topology_destroy(fx->topo);
    return 0;
}

static void event(fixture_t *fx, eddy_agg_t *agg, int status, double v, const char *user)
{
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    memset(values, 0, sizeof(values));
    values[eddy_topology_field_index(fx->topo, "status")] =
        (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = status};
    values[eddy_topology_field_index(fx->topo, "v")] =
        (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = v};
    values[eddy_topology_field_index(fx->topo, "u")] =
        (eddy_value_t){.type = EDDY_VALUE_STRING, .str = user, .len = strlen(user)};
    eddy_agg_update(fx->layout, agg, values);
}

static char *agg_json(fixture_t *fx, const eddy_agg_t *agg)
{
    json_t *o = json_object();
    eddy_agg_to_json(fx->layout, agg, o);
    char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return s;
}

static void test_partials_round_trip_and_merge(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_t *whole = eddy_agg_new(fx->layout),
               *parts[2] = {eddy_agg_new(fx->layout), eddy_agg_new(fx->layout)};
    char user[16];
    for (int i = 1; i <= 2000; i++) {
        snprintf(user, sizeof(user), "u%d", i % 300);
        event(fx, whole, i % 7 ? 200 : 503, i * 0.5, user);
        event(fx, parts[i % 2], i % 7 ? 200 : 503, i * 0.5, user);
    }
    /* Over the wire: encode each partial, decode, merge. */
    eddy_agg_t *merged = eddy_agg_new(fx->layout), *scratch = eddy_agg_new(fx->layout);
    for (int i = 0; i < 2; i++) {
        json_t *entry = eddy_partial_encode(fx->layout, 60000, "/api/\"x\"", 8, parts[i]);
        assert_non_null(entry);
        char *text = json_dumps(entry, JSON_COMPACT);
        json_decref(entry);
        entry = json_loads(text, 0, NULL);
        free(text);
        int64_t start = 0;
        const char *key = NULL;
        size_t key_len = 0;
        assert_int_equal(eddy_partial_decode(fx->layout, entry, &start, &key, &key_len, scratch),
                         0);
        assert_int_equal(start, 60000);
        assert_int_equal(key_len, 8);
        assert_memory_equal(key, "/api/\"x\"", 8);
        eddy_agg_merge(fx->layout, merged, scratch);
        json_decref(entry);
    }
    char *a = agg_json(fx, whole), *b = agg_json(fx, merged);
    assert_string_equal(a, b);
    free(a);
    free(b);

    /* Malformed entries are refused, never half applied. */
    static const char *const bad[] = {
        "[1,\"k\"]",        "[\"1\",\"k\",\"00\"]", "[1,2,\"00\"]",       "[1,\"k\",\"0\"]",
        "[1,\"k\",\"zz\"]", "[1,\"k\",\"\"]",       "[1,\"k\",\"0102\"]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *entry = json_loads(bad[i], 0, NULL);
        int64_t start;
        const char *key;
        size_t key_len;
        assert_int_not_equal(
            eddy_partial_decode(fx->layout, entry, &start, &key, &key_len, scratch), 0);
        json_decref(entry);
    }
    eddy_agg_destroy(scratch);
    eddy_agg_destroy(merged);
    eddy_agg_destroy(parts[0]);
    eddy_agg_destroy(parts[1]);
    eddy_agg_destroy(whole);
}

static void test_instance_records(void **state)
{
    (void)state;
    static const char ok[] =
        "{\"id\":\"127.0.0.1:8083/ab\",\"server\":\"127.0.0.1:8083\",\"partitions\":[0,3],"
        "\"restoring\":[5],\"generation\":2,\"time\":1700000000000,\"interval_ms\":2000}";
    eddy_peer_t p;
    assert_true(eddy_instances_parse(ok, strlen(ok), &p));
    assert_string_equal(p.id, "127.0.0.1:8083/ab");
    assert_string_equal(p.server, "127.0.0.1:8083");
    assert_true(p.running[0] && p.running[3] && !p.running[1] && !p.running[5]);
    assert_true(p.restoring[5] && !p.restoring[0]);
    assert_int_equal(p.generation, 2);
    assert_int_equal(p.time_ms, 1700000000000LL);
    assert_int_equal(p.interval_ms, 2000);
    static const char *const bad[] = {
        "not json",
        "{\"id\":\"a\",\"server\":\"s\",\"partitions\":[0],\"restoring\":[],\"generation\":1,"
        "\"time\":1}",
        "{\"id\":\"a\",\"server\":\"s\",\"partitions\":[999],\"restoring\":[],\"generation\":1,"
        "\"time\":1,\"interval_ms\":1}",
        "{\"id\":\"a\",\"server\":\"s\",\"partitions\":[-1],\"restoring\":[],\"generation\":1,"
        "\"time\":1,\"interval_ms\":1}",
        "{\"id\":1,\"server\":\"s\",\"partitions\":[],\"restoring\":[],\"generation\":1,"
        "\"time\":1,\"interval_ms\":1}",
        "{\"id\":\"a\",\"server\":\"s\",\"partitions\":[],\"restoring\":[],\"generation\":1,"
        "\"time\":1,\"interval_ms\":0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(eddy_instances_parse(bad[i], strlen(bad[i]), &p));
    char topic[64];
    eddy_instances_topic("mon", topic, sizeof(topic));
    assert_string_equal(topic, "mon-instances");
}

static void parse_ok(const char *raw, int want_status, const char *want_body)
{
    int status = 0;
    char *body = NULL, errstr[256];
    size_t len = 0;
    assert_int_equal(
        eddy_peer_parse_response(raw, strlen(raw), &status, &body, &len, errstr, sizeof(errstr)),
        0);
    assert_int_equal(status, want_status);
    assert_int_equal(len, strlen(want_body));
    assert_string_equal(body, want_body);
    free(body);
}

static void test_peer_response_parsing(void **state)
{
    (void)state;
    parse_ok("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}", 200, "{\"a\":1}");
    parse_ok("HTTP/1.1 200 OK\r\ncontent-length:  2 \r\nX: y\r\n\r\nabEXTRA", 200, "ab");
    parse_ok("HTTP/1.0 404 Not Found\r\n\r\nnope", 404, "nope");
    parse_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=1\r\npedia\r\n"
             "0\r\n\r\n",
             200, "Wikipedia");
    parse_ok("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 204, "");
    static const char *const bad[] = {
        "",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",         /* headers cut short */
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",  /* body cut short */
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc", /* negative */
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nabc", /* not a number */
        "HTTP/2 200\r\n\r\n",                               /* not HTTP/1.x */
        "HTTP/1.1 2000 OK\r\n\r\n",                         /* bad status */
        "SMTP ready\r\n\r\n",                               /* not HTTP */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc\r\n0\r\n\r\n", /* short */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",                /* size */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",          /* no end */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int status = 0;
        char *body = NULL, errstr[256];
        size_t len = 0;
        assert_int_not_equal(eddy_peer_parse_response(bad[i], strlen(bad[i]), &status, &body, &len,
                                                      errstr, sizeof(errstr)),
                             0);
        assert_null(body);
    }
}

static void test_peer_get_unreachable(void **state)
{
    (void)state;
    int status = 0, port = eddy_test_free_port();
    char server[64], *body = NULL, errstr[256];
    size_t len = 0;
    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    assert_int_equal(eddy_peer_get(server, "/", 200, &status, &body, &len, errstr, sizeof(errstr)),
                     EDDY_ERR_IO);
    assert_non_null(strstr(errstr, "cannot connect"));
    assert_int_equal(
        eddy_peer_get("no-port", "/", 200, &status, &body, &len, errstr, sizeof(errstr)),
        EDDY_ERR_INVALID);

    /* A peer that accepts (the kernel does, into the backlog) but never answers
     * costs the timeout, not more. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sa.sin_port));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(eddy_peer_get(server, "/", 300, &status, &body, &len, errstr, sizeof(errstr)),
                     EDDY_ERR_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took >= 0.25 && took < 2.0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partials_round_trip_and_merge),
        cmocka_unit_test(test_instance_records),
        cmocka_unit_test(test_peer_response_parsing),
        cmocka_unit_test(test_peer_get_unreachable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
