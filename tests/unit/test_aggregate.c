/*
 * test_aggregate.c — aggregate layouts and states over a real topology string:
 * updates give the declared outputs (counts exact, mean, ratio, min/max, sum,
 * percentiles and distinct within their sketches' error), merging partial states
 * equals one state over all events, serialization round-trips and rejects
 * truncated input, undefined outputs are null.
 */
#include "test_support.h"

#include "topology/aggregate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char topo_json[] =
    "{\"name\":\"t\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\",\"format\":"
    "\"epoch_ms\"}},"
    "\"stores\":[{\"name\":\"s\",\"group_by\":[\"k\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"count\",\"op\":\"count\"},"
    "{\"name\":\"errors\",\"op\":\"count_if\",\"where\":\"status >= 500\"},"
    "{\"name\":\"error_rate\",\"op\":\"ratio\",\"numerator\":\"errors\",\"denominator\":\"count\"},"
    "{\"name\":\"total\",\"op\":\"sum\",\"field\":\"v\"},"
    "{\"name\":\"lo\",\"op\":\"min\",\"field\":\"v\"},"
    "{\"name\":\"hi\",\"op\":\"max\",\"field\":\"v\"},"
    "{\"name\":\"mean_v\",\"op\":\"mean\",\"field\":\"v\"},"
    "{\"name\":\"p50\",\"op\":\"percentile\",\"field\":\"v\",\"q\":0.5},"
    "{\"name\":\"p99\",\"op\":\"percentile\",\"field\":\"v\",\"q\":0.99},"
    "{\"name\":\"users\",\"op\":\"distinct\",\"field\":\"u\"}]}]}";

typedef struct fixture_s {
    eddy_topology_t *topo;
    eddy_agg_layout_t *layout;
    int f_status, f_v, f_u;
} fixture_t;

static int setup(void **state)
{
    static fixture_t fx;
    char errstr[512];
    fx.topo = eddy_topology_load_string(topo_json, "test", errstr, sizeof(errstr));
    if (!fx.topo) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    fx.layout = eddy_agg_layout_new(eddy_topology_store(fx.topo, 0), errstr, sizeof(errstr));
    fx.f_status = eddy_topology_field_index(fx.topo, "status");
    fx.f_v = eddy_topology_field_index(fx.topo, "v");
    fx.f_u = eddy_topology_field_index(fx.topo, "u");
    *state = &fx;
    return fx.layout ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    if (!fx)
        return 0;
    eddy_agg_layout_destroy(fx->layout);
    eddy_topology_destroy(fx->topo);
    return 0;
}

static void event(fixture_t *fx, eddy_agg_t *agg, int status, double v, const char *user)
{
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    memset(values, 0, sizeof(values));
    values[fx->f_status] = (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = status};
    values[fx->f_v] = (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = v};
    values[fx->f_u] = (eddy_value_t){.type = EDDY_VALUE_STRING, .str = user, .len = strlen(user)};
    eddy_agg_update(fx->layout, agg, values);
}

static double get(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_outputs(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_t *agg = eddy_agg_new(fx->layout);
    char user[16];
    for (int i = 1; i <= 1000; i++) {
        snprintf(user, sizeof(user), "u%d", i % 250);
        event(fx, agg, i % 10 == 0 ? 503 : 200, i, user);
    }
    json_t *out = json_object();
    eddy_agg_to_json(fx->layout, agg, out);
    assert_int_equal(json_integer_value(json_object_get(out, "count")), 1000);
    assert_true(json_is_integer(json_object_get(out, "count")));
    assert_int_equal(json_integer_value(json_object_get(out, "errors")), 100);
    assert_true(get(out, "error_rate") == 0.1);
    assert_true(get(out, "total") == 500500);
    assert_true(get(out, "lo") == 1 && get(out, "hi") == 1000);
    assert_true(get(out, "mean_v") == 500.5);
    assert_true(fabs(get(out, "p50") - 500) <= 5.0); /* value of rank floor(0.5*999) = 500 */
    assert_true(fabs(get(out, "p99") - 990) <= 9.9);
    assert_int_equal(json_integer_value(json_object_get(out, "users")), 250);
    assert_int_equal(eddy_agg_count(agg), 1000);
    json_decref(out);
    eddy_agg_destroy(agg);
}

static void test_empty_is_null(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_t *agg = eddy_agg_new(fx->layout);
    json_t *out = json_object();
    eddy_agg_to_json(fx->layout, agg, out);
    assert_int_equal(json_integer_value(json_object_get(out, "count")), 0);
    assert_true(json_is_null(json_object_get(out, "error_rate")));
    assert_true(json_is_null(json_object_get(out, "mean_v")));
    assert_true(json_is_null(json_object_get(out, "lo")));
    assert_true(json_is_null(json_object_get(out, "p50")));
    json_decref(out);
    eddy_agg_destroy(agg);
}

static void test_merge_equals_whole(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_t *whole = eddy_agg_new(fx->layout), *parts[3];
    for (int p = 0; p < 3; p++)
        parts[p] = eddy_agg_new(fx->layout);
    char user[16];
    for (int i = 0; i < 3000; i++) {
        snprintf(user, sizeof(user), "u%d", (i * 7) % 1000);
        double v = 10 + (i * 37) % 400;
        event(fx, whole, i % 7 ? 200 : 500, v, user);
        event(fx, parts[i % 3], i % 7 ? 200 : 500, v, user);
    }
    assert_int_equal(eddy_agg_merge(fx->layout, parts[0], parts[1]), EDDY_OK);
    assert_int_equal(eddy_agg_merge(fx->layout, parts[0], parts[2]), EDDY_OK);
    json_t *a = json_object(), *b = json_object();
    eddy_agg_to_json(fx->layout, whole, a);
    eddy_agg_to_json(fx->layout, parts[0], b);
    const char *exact[] = {"count", "errors", "lo", "hi", "p50", "p99", "users"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        assert_true(json_equal(json_object_get(a, exact[i]), json_object_get(b, exact[i])));
    assert_true(fabs(get(a, "mean_v") - get(b, "mean_v")) < 1e-9);
    json_decref(a);
    json_decref(b);
    eddy_agg_destroy(whole);
    for (int p = 0; p < 3; p++)
        eddy_agg_destroy(parts[p]);
}

static void test_serialization(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_t *agg = eddy_agg_new(fx->layout), *back = eddy_agg_new(fx->layout);
    for (int i = 0; i < 500; i++)
        event(fx, agg, 200 + i % 400, i * 1.5, i % 2 ? "a" : "b");
    size_t cap = eddy_agg_serialized_size(fx->layout, agg);
    uint8_t *buf = malloc(cap);
    size_t len = eddy_agg_serialize(fx->layout, agg, buf, cap);
    assert_true(len > 0 && len <= cap);
    assert_int_equal(eddy_agg_serialize(fx->layout, agg, buf, 3), 0);
    len = eddy_agg_serialize(fx->layout, agg, buf, cap);
    assert_int_equal(eddy_agg_deserialize(fx->layout, back, buf, len), EDDY_OK);
    json_t *a = json_object(), *b = json_object();
    eddy_agg_to_json(fx->layout, agg, a);
    eddy_agg_to_json(fx->layout, back, b);
    assert_true(json_equal(a, b));
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(eddy_agg_deserialize(fx->layout, back, buf, cut), EDDY_ERR_INVALID);
    json_decref(a);
    json_decref(b);
    free(buf);
    eddy_agg_destroy(agg);
    eddy_agg_destroy(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_empty_is_null),
        cmocka_unit_test(test_merge_equals_whole),
        cmocka_unit_test(test_serialization),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
