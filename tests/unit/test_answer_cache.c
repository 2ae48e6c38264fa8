/*
 * test_answer_cache.c — query/answer_cache.h through a real HTTP server: an answer
 * is served again while the runtime's generation stays and it is younger than one
 * commit interval; a commit, a rebalance, a restore, an abort or the interval
 * passing make the next request compute it anew; different keys never share an
 * answer.
 */
#include "http_client.h"
#include "test_support.h"

#include "engine/config.h"
#include "engine/util.h"
#include "query/answer_cache.h"
#include "query/http.h"

#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define HOST "127.0.0.1"

typedef struct fixture_s {
    eddy_config_t cfg;
    eddy_runtime_t rt;
    eddy_answer_cache_t *cache;
    eddy_http_t *http;
    atomic_int computed; /* answers made by the handler (misses), on the server's thread */
} fixture_t;

/* GET /a?k=K: {"k":K,"n":<answers computed so far>} through the cache. */
static int handler(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    fixture_t *fx = opaque;
    const char *k = eddy_http_query(req, "k");
    char key[64];
    snprintf(key, sizeof(key), "a|%s", k ? k : "");
    const uint64_t gen = eddy_answer_generation(&fx->rt);
    const int64_t at_ns = eddy_mono_ns();
    if (eddy_answer_cache_get(fx->cache, key, gen, resp))
        return 0;
    char *body = malloc(64);
    snprintf(body, 64, "{\"k\":\"%s\",\"n\":%d}", k ? k : "",
             atomic_fetch_add(&fx->computed, 1) + 1);
    return eddy_answer_cache_put(fx->cache, key, gen, at_ns, body, resp);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    eddy_config_init(&fx->cfg);
    fx->cfg.commit_interval_ms = 300;
    fx->rt.cfg = &fx->cfg;
    fx->cache = eddy_answer_cache_new(&fx->rt);
    char errstr[256];
    eddy_http_config_t hc = {.listen = HOST ":0", .threads = 1};
    fx->http = eddy_http_new(&hc, errstr, sizeof(errstr));
    if (!fx->cache || !fx->http)
        return -1;
    eddy_http_route(fx->http, "GET", "/a", handler, fx);
    if (eddy_http_start(fx->http, errstr, sizeof(errstr)))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_http_destroy(fx->http);
    eddy_answer_cache_destroy(fx->cache);
    eddy_config_free(&fx->cfg);
    free(fx);
    return 0;
}

/* The "n" of GET /a?k=k. */
static int get_n(fixture_t *fx, const char *k)
{
    char target[64];
    snprintf(target, sizeof(target), "/a?k=%s", k);
    eddy_test_http_resp_t r = {0};
    assert_int_equal(
        eddy_test_http(HOST, eddy_http_port(fx->http), "GET", target, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(eddy_test_http_header(&r, "Content-Type"), "application/json"));
    char want[32];
    snprintf(want, sizeof(want), "{\"k\":\"%s\",", k);
    assert_memory_equal(r.body, want, strlen(want));
    int n = atoi(strstr(r.body, "\"n\":") + 4);
    eddy_test_http_resp_free(&r);
    return n;
}

static void test_served_until_the_state_changes(void **state)
{
    fixture_t *fx = *state;
    eddy_metrics_t *m = &fx->rt.metrics;
    int n = get_n(fx, "x");
    assert_int_equal(get_n(fx, "x"), n); /* the same answer, not computed again */
    assert_int_equal(get_n(fx, "x"), n);
    assert_int_equal(atomic_load(&fx->computed), n);

    atomic_fetch_add(&m->commits, 1);
    assert_int_equal(get_n(fx, "x"), ++n);
    atomic_fetch_add(&m->rebalances, 1);
    assert_int_equal(get_n(fx, "x"), ++n);
    atomic_fetch_add(&m->restores, 1);
    assert_int_equal(get_n(fx, "x"), ++n);
    atomic_fetch_add(&m->aborts, 1);
    assert_int_equal(get_n(fx, "x"), ++n);
    assert_int_equal(get_n(fx, "x"), n);

    /* Older than one commit interval (300 ms here): computed again. */
    struct timespec ts = {0, 350 * 1000000};
    nanosleep(&ts, NULL);
    assert_int_equal(get_n(fx, "x"), ++n);
    assert_int_equal(get_n(fx, "x"), n);
}

static void test_keys_do_not_share(void **state)
{
    fixture_t *fx = *state;
    atomic_fetch_add(&fx->rt.metrics.commits, 1);
    /* 200 keys over 64 slots: collisions replace, never answer for another key
     * (get_n checks the key in every answer). */
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        get_n(fx, k);
    }
    int before = atomic_load(&fx->computed);
    get_n(fx, "k199");
    get_n(fx, "k199");
    assert_true(atomic_load(&fx->computed) - before <= 1);
    uint64_t hits = 0, misses = 0;
    eddy_answer_cache_stats(fx->cache, &hits, &misses);
    assert_int_equal(misses, (uint64_t)atomic_load(&fx->computed));
    assert_true(hits > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_until_the_state_changes),
        cmocka_unit_test(test_keys_do_not_share),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
