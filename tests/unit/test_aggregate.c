/*
 * test_aggregate.c — aggregate layouts and states over a real topology string:
 * updates give the declared outputs (counts exact, mean, ratio, min/max, sum,
 * percentiles and distinct within their sketches' error), merging partial states
 * equals one state over all events, serialization round-trips and rejects
 * truncated input, undefined outputs are null; outliers near the double range
 * keep percentiles and means (a sum beyond it is null, the mean is not); a
 * sketch that collapses is counted once and its lost percentiles, and only
 * those, are listed in "degraded", merged or read back; a state of format
 * version 1 is still read.
 */
#include "test_support.h"

#include "topology/aggregate.h"
#include "topology/hll.h"

#include <float.h>
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

/* Folds one event in; returns what eddy_agg_update returned. */
static int event(fixture_t *fx, eddy_agg_t *agg, int status, double v, const char *user)
{
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    memset(values, 0, sizeof(values));
    values[fx->f_status] = (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = status};
    values[fx->f_v] = (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = v};
    values[fx->f_u] = (eddy_value_t){.type = EDDY_VALUE_STRING, .str = user, .len = strlen(user)};
    return eddy_agg_update(fx->layout, agg, values);
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

/* "degraded" of an output object as a comma-separated list; "" when absent. */
static void degraded_of(json_t *obj, char *out, size_t size)
{
    out[0] = '\0';
    json_t *d = json_object_get(obj, EDDY_AGG_DEGRADED), *name;
    size_t i;
    if (d)
        assert_true(json_is_array(d) && json_array_size(d) > 0);
    json_array_foreach(d, i, name)
    {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", i ? "," : "", json_string_value(name));
    }
}

static bool within(double got, double want)
{
    return fabs(got - want) <= 0.01 * fabs(want) * (1 + 1e-9);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The exact q-quantile of v[0..n): x[floor(q * (n - 1))] in ascending order (sorts v). */
static double exact(double *v, size_t n, double q)
{
    qsort(v, n, sizeof(double), cmp_double);
    return v[(size_t)floor(q * (double)(n - 1))];
}

/* 100 latencies of 10-19.99 and two 1e308: the percentiles of the rest keep 1%,
 * the mean is a number, the sum (2e308) is beyond the double range: null. */
static void test_outliers(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_t *agg = eddy_agg_new(fx->layout), *half[2];
    half[0] = eddy_agg_new(fx->layout);
    half[1] = eddy_agg_new(fx->layout);
    double sum = 0, all[102];
    for (int i = 0; i < 100; i++) {
        double v = 10.0 + (double)((i * 37) % 1000) / 100.0;
        sum += v;
        all[i] = v;
        assert_int_equal(event(fx, agg, 200, v, "u"), 0);
        event(fx, half[i % 2], 200, v, "u");
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(event(fx, agg, 200, 1e308, "u"), 0);
        event(fx, half[i], 200, 1e308, "u");
        all[100 + i] = 1e308;
    }
    const double p50 = exact(all, 102, 0.5), p99 = exact(all, 102, 0.99);
    assert_int_equal(eddy_agg_merge(fx->layout, half[0], half[1]), EDDY_OK);
    eddy_agg_t *states[] = {agg, half[0]};
    for (int s = 0; s < 2; s++) {
        json_t *out = json_object();
        eddy_agg_to_json(fx->layout, states[s], out);
        char degraded[64];
        degraded_of(out, degraded, sizeof(degraded));
        assert_string_equal(degraded, "");
        assert_true(within(get(out, "p50"), p50));
        assert_true(within(get(out, "p99"), p99));
        assert_true(json_is_null(json_object_get(out, "total")));
        assert_true(fabs(get(out, "mean_v") - (2 * (1e308 / 102) + sum / 102)) <= 1e-12 * 2e306);
        assert_true(get(out, "hi") == 1e308);
        json_decref(out);
    }
    /* And back from the serialized form: the scale of the sum is kept. */
    size_t len = eddy_agg_serialized_size(fx->layout, agg);
    uint8_t *buf = malloc(len);
    assert_int_equal(eddy_agg_serialize(fx->layout, agg, buf, len), len);
    eddy_agg_t *back = eddy_agg_new(fx->layout);
    assert_int_equal(eddy_agg_deserialize(fx->layout, back, buf, len), EDDY_OK);
    json_t *a = json_object(), *b = json_object();
    eddy_agg_to_json(fx->layout, agg, a);
    eddy_agg_to_json(fx->layout, back, b);
    assert_true(json_equal(a, b));
    /* A sum that cancels goes back to the plain scale, where a value as small as
     * 1e-300 still counts (the latencies were absorbed by 1e308, as in any
     * floating-point sum). */
    for (int i = 0; i < 2; i++)
        event(fx, back, 200, -1e308, "u");
    event(fx, back, 200, 1e-300, "u");
    json_t *c = json_object();
    eddy_agg_to_json(fx->layout, back, c);
    assert_true(get(c, "total") == 1e-300);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    free(buf);
    eddy_agg_destroy(back);
    eddy_agg_destroy(agg);
    eddy_agg_destroy(half[0]);
    eddy_agg_destroy(half[1]);
}

/* 3000 values of 10-19.99 and 2100 others 3% apart (a bucket each): more than
 * 2048 buckets, so the lowest fold. p50's rank falls among the folded values,
 * p99's does not: "degraded" is ["p50"]. */
static void test_degraded(void **state)
{
    fixture_t *fx = *state;
    eddy_agg_t *agg = eddy_agg_new(fx->layout), *part[3];
    for (int p = 0; p < 3; p++)
        part[p] = eddy_agg_new(fx->layout);
    int collapses = 0, part_collapses = 0;
    double *all = malloc(5100 * sizeof(double));
    for (int i = 0; i < 3000; i++) {
        double v = 10.0 + (double)((i * 37) % 1000) / 100.0;
        all[i] = v;
        collapses += event(fx, agg, 200, v, "u");
        part_collapses += event(fx, part[i % 3], 200, v, "u");
    }
    for (int j = 0; j < 2100; j++) {
        double v = 100.0 * pow(1.03, j);
        all[3000 + j] = v;
        collapses += event(fx, agg, 200, v, "u");
        part_collapses += event(fx, part[j % 3], 200, v, "u");
    }
    const double p50 = exact(all, 5100, 0.5), p99 = exact(all, 5100, 0.99);
    free(all);
    assert_int_equal(collapses, 1); /* counted once, when it happened */
    assert_int_equal(part_collapses, 0);
    assert_int_equal(eddy_agg_merge(fx->layout, part[0], part[1]), EDDY_OK);
    assert_int_equal(eddy_agg_merge(fx->layout, part[0], part[2]), EDDY_OK);

    size_t len = eddy_agg_serialized_size(fx->layout, agg);
    uint8_t *buf = malloc(len);
    assert_int_equal(eddy_agg_serialize(fx->layout, agg, buf, len), len);
    eddy_agg_t *back = eddy_agg_new(fx->layout);
    assert_int_equal(eddy_agg_deserialize(fx->layout, back, buf, len), EDDY_OK);

    eddy_agg_t *states[] = {agg, part[0], back};
    for (int s = 0; s < 3; s++) {
        json_t *out = json_object();
        eddy_agg_to_json(fx->layout, states[s], out);
        char degraded[64];
        degraded_of(out, degraded, sizeof(degraded));
        assert_string_equal(degraded, "p50");
        assert_true(within(get(out, "p99"), p99));
        assert_false(within(get(out, "p50"), p50)); /* folded: reported far above */
        assert_int_equal(json_integer_value(json_object_get(out, "count")), 5100);
        json_decref(out);
    }
    free(buf);
    eddy_agg_destroy(back);
    eddy_agg_destroy(agg);
    for (int p = 0; p < 3; p++)
        eddy_agg_destroy(part[p]);
}

/* A state as format version 1 wrote it (slots: count, errors, sum, min, max and
 * the count of numbers as zigzag varints or f64, then the sketch and the HLL as
 * length and bytes; sketch version 1: the committed latency file's layout, here
 * a store of span 1) is read, and written back as version 2. */
static void put_varint(uint8_t *b, size_t *n, uint64_t v)
{
    while (v >= 0x80) {
        b[(*n)++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[(*n)++] = (uint8_t)v;
}

static void put_f64(uint8_t *b, size_t *n, double d)
{
    memcpy(b + *n, &d, 8); /* little-endian machines only, like the format */
    *n += 8;
}

static void test_version1(void **state)
{
    fixture_t *fx = *state;
    eddy_hll_t *hll = eddy_hll_new();
    eddy_hll_add(hll, "a", 1);
    uint8_t hll_bytes[256];
    size_t hll_len = eddy_hll_serialize(hll, hll_bytes, sizeof(hll_bytes));
    assert_true(hll_len > 0);
    eddy_hll_destroy(hll);
    /* Sketch v1 of 4 values of 20.0: bucket ceil(ln 20 / ln gamma) = 150. */
    uint8_t sk[64];
    size_t skn = 0;
    sk[skn++] = 1;
    sk[skn++] = 0;
    put_varint(sk, &skn, 4);
    put_f64(sk, &skn, 80.0);
    put_f64(sk, &skn, 20.0);
    put_f64(sk, &skn, 20.0);
    put_varint(sk, &skn, 0);   /* zeros */
    put_varint(sk, &skn, 0);   /* no negatives */
    put_varint(sk, &skn, 1);   /* span */
    put_varint(sk, &skn, 300); /* zigzag(150) */
    put_varint(sk, &skn, 4);
    uint8_t buf[512];
    size_t n = 0;
    buf[n++] = 1;
    put_varint(buf, &n, 8); /* count 4 */
    put_varint(buf, &n, 2); /* errors 1 */
    put_f64(buf, &n, 80.0);
    put_f64(buf, &n, 20.0);
    put_f64(buf, &n, 20.0);
    put_varint(buf, &n, 8); /* numbers 4 */
    put_varint(buf, &n, skn);
    memcpy(buf + n, sk, skn);
    n += skn;
    put_varint(buf, &n, hll_len);
    memcpy(buf + n, hll_bytes, hll_len);
    n += hll_len;

    eddy_agg_t *agg = eddy_agg_new(fx->layout);
    assert_int_equal(eddy_agg_deserialize(fx->layout, agg, buf, n), EDDY_OK);
    json_t *out = json_object();
    eddy_agg_to_json(fx->layout, agg, out);
    assert_int_equal(json_integer_value(json_object_get(out, "count")), 4);
    assert_int_equal(json_integer_value(json_object_get(out, "errors")), 1);
    assert_true(get(out, "total") == 80.0);
    assert_true(get(out, "mean_v") == 20.0);
    assert_true(get(out, "p50") == 20.0);
    assert_int_equal(json_integer_value(json_object_get(out, "users")), 1);
    assert_null(json_object_get(out, EDDY_AGG_DEGRADED));

    size_t len = eddy_agg_serialized_size(fx->layout, agg);
    uint8_t *again = malloc(len);
    assert_int_equal(eddy_agg_serialize(fx->layout, agg, again, len), len);
    assert_int_equal(again[0], 2);
    eddy_agg_t *back = eddy_agg_new(fx->layout);
    assert_int_equal(eddy_agg_deserialize(fx->layout, back, again, len), EDDY_OK);
    json_t *out2 = json_object();
    eddy_agg_to_json(fx->layout, back, out2);
    assert_true(json_equal(out, out2));
    /* Version 2 with a sum scaled beyond what any sum needs: refused. */
    size_t at = 1 + 1 + 1 + 8; /* version, count, errors, the sum's f64 */
    assert_int_equal(again[at], 0);
    again[at] = 5;
    assert_int_equal(eddy_agg_deserialize(fx->layout, back, again, len), EDDY_ERR_INVALID);
    free(again);
    json_decref(out);
    json_decref(out2);
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
        cmocka_unit_test(test_outliers),
        cmocka_unit_test(test_degraded),
        cmocka_unit_test(test_version1),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
