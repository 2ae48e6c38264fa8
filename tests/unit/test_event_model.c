/*
 * test_event_model.c — the generator's event model and time rules, no broker:
 * determinism, the documented distributions (docs/events.md), ISO-8601
 * formatting and the simulated event-time formula.
 */
#include "test_support.h"

#include "producer/event_model.h"
#include "producer/gen.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N 100000

static void test_same_seed_same_bytes(void **state)
{
    eddy_gen_model_t m1, m2, m3;
    eddy_gen_model_init(&m1, EDDY_GEN_HTTP, 42);
    eddy_gen_model_init(&m2, EDDY_GEN_HTTP, 42);
    eddy_gen_model_init(&m3, EDDY_GEN_HTTP, 43);
    int same_as_other_seed = 0;
    for (int i = 0; i < 1000; i++) {
        char a[EDDY_GEN_EVENT_MAX], b[EDDY_GEN_EVENT_MAX], c[EDDY_GEN_EVENT_MAX];
        size_t ko, kl;
        size_t la = eddy_gen_model_next(&m1, 1000 + i, a, sizeof(a), &ko, &kl);
        size_t lb = eddy_gen_model_next(&m2, 1000 + i, b, sizeof(b), &ko, &kl);
        size_t lc = eddy_gen_model_next(&m3, 1000 + i, c, sizeof(c), &ko, &kl);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        same_as_other_seed += la == lc && !memcmp(a, c, la);
    }
    assert_int_equal(same_as_other_seed, 0);
}

static void test_key_is_user_id(void **state)
{
    for (int kind = EDDY_GEN_HTTP; kind <= EDDY_GEN_ACTIVITY; kind++) {
        eddy_gen_model_t m;
        eddy_gen_model_init(&m, (eddy_gen_kind_t)kind, 5);
        for (int i = 0; i < 1000; i++) {
            char buf[EDDY_GEN_EVENT_MAX];
            size_t ko, kl;
            size_t len = eddy_gen_model_next(&m, 1700000000000LL, buf, sizeof(buf), &ko, &kl);
            json_t *ev = json_loadb(buf, len, 0, NULL);
            assert_non_null(ev);
            const char *user = json_string_value(json_object_get(ev, "user_id"));
            assert_non_null(user);
            assert_int_equal(strlen(user), kl);
            assert_memory_equal(buf + ko, user, kl);
            json_decref(ev);
        }
    }
}

static void test_small_buffer_is_refused(void **state)
{
    eddy_gen_model_t m;
    eddy_gen_model_init(&m, EDDY_GEN_HTTP, 1);
    char buf[32];
    size_t ko, kl;
    assert_int_equal(eddy_gen_model_next(&m, 0, buf, sizeof(buf), &ko, &kl), 0);
}

static int index_of(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(s, list[i]))
            return i;
    return -1;
}

/* The http distributions documented in docs/events.md, measured over 100k events. */
static void test_http_distributions(void **state)
{
    eddy_gen_model_t m;
    eddy_gen_model_init(&m, EDDY_GEN_HTTP, 11);
    int endpoint_n[8] = {0}, endpoint_5xx[8] = {0}, region_n[6] = {0};
    double endpoint_lat[8] = {0};
    int class_n[6] = {0};
    double min_latency = 1e9;
    for (int i = 0; i < N; i++) {
        char buf[EDDY_GEN_EVENT_MAX];
        size_t ko, kl;
        size_t len = eddy_gen_model_next(&m, 1700000000000LL + i, buf, sizeof(buf), &ko, &kl);
        json_t *ev = json_loadb(buf, len, 0, NULL);
        assert_non_null(ev);
        int e =
            index_of(json_string_value(json_object_get(ev, "endpoint")), eddy_gen_http_endpoints);
        int r = index_of(json_string_value(json_object_get(ev, "region")), eddy_gen_http_regions);
        assert_true(e >= 0 && r >= 0);
        assert_true(
            index_of(json_string_value(json_object_get(ev, "method")), eddy_gen_http_methods) >= 0);
        int status = (int)json_integer_value(json_object_get(ev, "status"));
        double latency = json_number_value(json_object_get(ev, "latency_ms"));
        assert_true(status >= 200 && status < 600);
        assert_true(latency > 0);
        min_latency = fmin(min_latency, latency);
        endpoint_n[e]++;
        endpoint_5xx[e] += status >= 500;
        endpoint_lat[e] += latency;
        region_n[r]++;
        class_n[status / 100]++;
        json_decref(ev);
    }
    /* Every endpoint and region used, with the documented shares (±1.5 points). */
    static const double endpoint_share[8] = {22, 18, 15, 12, 10, 10, 7, 6};
    static const double region_share[6] = {30, 22, 18, 12, 10, 8};
    for (int e = 0; e < 8; e++)
        assert_true(fabs(100.0 * endpoint_n[e] / N - endpoint_share[e]) < 1.5);
    for (int r = 0; r < 6; r++)
        assert_true(fabs(100.0 * region_n[r] / N - region_share[r]) < 1.5);
    /* Mostly 2xx, some 3xx and 4xx, a few 5xx. */
    assert_true(class_n[2] > N * 0.85);
    assert_true(class_n[3] > 0 && class_n[4] > class_n[5] && class_n[5] > N * 0.005);
    assert_true(class_n[5] < N * 0.05);
    /* Some endpoints are worse: payments fails far more often than products. */
    double products_5xx = (double)endpoint_5xx[0] / endpoint_n[0];
    double payments_5xx = (double)endpoint_5xx[7] / endpoint_n[7];
    assert_true(payments_5xx > 4 * products_5xx);
    /* Latency differs per endpoint: users fastest, payments slowest. */
    double users = endpoint_lat[1] / endpoint_n[1], payments = endpoint_lat[7] / endpoint_n[7];
    assert_true(users > 40 && users < 70);
    assert_true(payments > 300 && payments < 450);
    assert_true(min_latency >= 0.1);
}

static void test_activity_distributions(void **state)
{
    eddy_gen_model_t m;
    eddy_gen_model_init(&m, EDDY_GEN_ACTIVITY, 3);
    int type_n[5] = {0};
    for (int i = 0; i < N / 10; i++) {
        char buf[EDDY_GEN_EVENT_MAX];
        size_t ko, kl;
        size_t len = eddy_gen_model_next(&m, 1705314600123LL, buf, sizeof(buf), &ko, &kl);
        json_t *ev = json_loadb(buf, len, 0, NULL);
        assert_non_null(ev);
        assert_string_equal(json_string_value(json_object_get(ev, "timestamp")),
                            "2024-01-15T10:30:00.123Z");
        int t =
            index_of(json_string_value(json_object_get(ev, "event_type")), eddy_gen_activity_types);
        assert_true(t >= 0);
        type_n[t]++;
        json_decref(ev);
    }
    static const double share[5] = {40, 30, 15, 10, 5};
    for (int t = 0; t < 5; t++)
        assert_true(fabs(100.0 * type_n[t] / (N / 10) - share[t]) < 2.0);
}

static void test_iso8601(void **state)
{
    char buf[32];
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1705314600123LL, "2024-01-15T10:30:00.123Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        {1709251199999LL, "2024-02-29T23:59:59.999Z"},
        {4102444800000LL, "2100-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-86400000LL, "1969-12-31T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(eddy_format_iso8601_ms(cases[i].ms, buf, sizeof(buf)), 24);
        assert_string_equal(buf, cases[i].want);
    }
    assert_int_equal(eddy_format_iso8601_ms(0, buf, 10), 0);
}

static void test_event_time(void **state)
{
    eddy_gen_config_t cfg;
    eddy_gen_config_defaults(&cfg);
    cfg.simulated_time = true;
    cfg.start_ts = 1700000000000LL;
    /* With a span: start + i*span*1000/N. */
    cfg.count = 100000;
    cfg.span_s = 600;
    assert_int_equal(eddy_gen_event_time(&cfg, 0), 1700000000000LL);
    assert_int_equal(eddy_gen_event_time(&cfg, 1), 1700000000006LL);
    assert_int_equal(eddy_gen_event_time(&cfg, 50000), 1700000300000LL);
    assert_int_equal(eddy_gen_event_time(&cfg, 99999), 1700000599994LL);
    /* Without: 1000/rate ms per event. */
    cfg.span_s = 0;
    cfg.count = 0;
    cfg.rate = 40000;
    cfg.duration_s = 60;
    assert_int_equal(eddy_gen_total(&cfg), 2400000);
    assert_int_equal(eddy_gen_event_time(&cfg, 39999), 1700000000999LL);
    assert_int_equal(eddy_gen_event_time(&cfg, 40000), 1700000001000LL);
    /* --duration with a span spreads rate*duration events over it. */
    cfg.span_s = 120;
    assert_int_equal(eddy_gen_event_time(&cfg, 1200000), 1700000060000LL);
}

static void test_config_check(void **state)
{
    eddy_gen_config_t cfg;
    char errstr[256];
    eddy_gen_config_defaults(&cfg);
    assert_int_equal(eddy_gen_config_check(&cfg, errstr, sizeof(errstr)), EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "--bootstrap"));
    cfg.bootstrap = "127.0.0.1:9092";
    assert_int_equal(eddy_gen_config_check(&cfg, errstr, sizeof(errstr)), EDDY_OK);
    cfg.span_s = 60;
    assert_int_equal(eddy_gen_config_check(&cfg, errstr, sizeof(errstr)), EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "--start-ts"));
    cfg.simulated_time = true;
    assert_int_equal(eddy_gen_config_check(&cfg, errstr, sizeof(errstr)), EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "--count"));
    cfg.count = 10;
    assert_int_equal(eddy_gen_config_check(&cfg, errstr, sizeof(errstr)), EDDY_OK);
    cfg.duration_s = 5;
    assert_int_equal(eddy_gen_config_check(&cfg, errstr, sizeof(errstr)), EDDY_ERR_INVALID);
    cfg.duration_s = 0;
    cfg.span_s = 0;
    cfg.rate = 0;
    assert_int_equal(eddy_gen_config_check(&cfg, errstr, sizeof(errstr)), EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "--span"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_bytes),
        cmocka_unit_test(test_key_is_user_id),
        cmocka_unit_test(test_small_buffer_is_refused),
        cmocka_unit_test(test_http_distributions),
        cmocka_unit_test(test_activity_distributions),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_event_time),
        cmocka_unit_test(test_config_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
