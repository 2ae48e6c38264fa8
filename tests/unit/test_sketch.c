/*
 * test_sketch.c — the DDSketch's stated guarantee, checked against exact sorted
 * data: for q in a set of quantiles, the estimate lies within 1% of the value of
 * rank floor(q*(n-1)); merging split data gives the same quantiles as one sketch;
 * serialization round-trips and rejects every truncation and garbage.
 */
#include "test_support.h"

#include "topology/sketch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ULL;

static double unit(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

static double normal(void)
{
    return sqrt(-2 * log(1 - unit())) * cos(2 * M_PI * unit());
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const double qs[] = {0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1};

static double check_quantiles(const eddy_sketch_t *s, double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp);
    double worst = 0;
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double want = v[(size_t)floor(qs[i] * (double)(n - 1))];
        double got = eddy_sketch_quantile(s, qs[i]);
        double err = want == 0 ? fabs(got) : fabs(got - want) / fabs(want);
        if (err > 0.01 + 1e-12)
            fail_msg("q=%g: got %.17g, want %.17g (relative error %g)", qs[i], got, want, err);
        if (err > worst)
            worst = err;
    }
    return worst;
}

static void run_distribution(const char *name, double (*gen)(void), size_t n)
{
    double *v = malloc(n * sizeof(double));
    eddy_sketch_t *s = eddy_sketch_new(), *a = eddy_sketch_new(), *b = eddy_sketch_new();
    for (size_t i = 0; i < n; i++) {
        v[i] = gen();
        eddy_sketch_add(s, v[i]);
        eddy_sketch_add(i % 3 ? a : b, v[i]);
    }
    assert_int_equal(eddy_sketch_count(s), n);
    assert_int_equal(eddy_sketch_merge(a, b), EDDY_OK);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        assert_true(eddy_sketch_quantile(a, qs[i]) == eddy_sketch_quantile(s, qs[i]));
    double worst = check_quantiles(s, v, n);
    printf("  %-10s n=%zu worst relative error %.5f\n", name, n, worst);
    /* Round trip keeps every answer. */
    size_t len = eddy_sketch_serialized_size(s);
    uint8_t *buf = malloc(len);
    assert_int_equal(eddy_sketch_serialize(s, buf, len), len);
    eddy_sketch_t *r = eddy_sketch_new();
    assert_int_equal(eddy_sketch_deserialize(r, buf, len), EDDY_OK);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        assert_true(eddy_sketch_quantile(r, qs[i]) == eddy_sketch_quantile(s, qs[i]));
    assert_true(eddy_sketch_sum(r) == eddy_sketch_sum(s));
    free(buf);
    free(v);
    eddy_sketch_destroy(s);
    eddy_sketch_destroy(a);
    eddy_sketch_destroy(b);
    eddy_sketch_destroy(r);
}

static double latency(void)
{
    double x = 80 + 20 * normal();
    return x > 0.1 ? x : 0.1;
}
static double lognormal(void)
{
    return exp(3 + 1.5 * normal());
}
static double decades(void)
{
    return pow(10, -3 + 6 * unit());
}
static double constant(void)
{
    return 42.5;
}
static double mixed_sign(void)
{
    double u = unit();
    return u < 0.1 ? 0 : (u < 0.5 ? -1 : 1) * exp(4 * normal());
}

static void test_distributions(void **state)
{
    run_distribution("latency", latency, 100000);
    run_distribution("lognormal", lognormal, 100000);
    run_distribution("decades", decades, 100000);
    run_distribution("constant", constant, 1000);
    run_distribution("mixed", mixed_sign, 100000);
    run_distribution("latency", latency, 1);
    run_distribution("latency", latency, 7);
}

static void test_empty(void **state)
{
    eddy_sketch_t *s = eddy_sketch_new();
    assert_true(isnan(eddy_sketch_quantile(s, 0.5)));
    assert_true(isnan(eddy_sketch_min(s)));
    uint8_t buf[64];
    size_t len = eddy_sketch_serialize(s, buf, sizeof(buf));
    assert_true(len > 0);
    eddy_sketch_t *r = eddy_sketch_new();
    assert_int_equal(eddy_sketch_deserialize(r, buf, len), EDDY_OK);
    assert_int_equal(eddy_sketch_count(r), 0);
    eddy_sketch_add(s, NAN); /* ignored */
    assert_int_equal(eddy_sketch_count(s), 0);
    eddy_sketch_destroy(s);
    eddy_sketch_destroy(r);
    eddy_sketch_destroy(NULL);
}

static void test_collapse_keeps_upper_quantiles(void **state)
{
    /* 10^-30 .. 10^30 spans far more than 2048 buckets: the lowest fold together. */
    eddy_sketch_t *s = eddy_sketch_new();
    size_t n = 60001;
    double *v = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        v[i] = pow(10, -30 + 60.0 * (double)i / (double)(n - 1));
        eddy_sketch_add(s, v[i]);
    }
    assert_true(eddy_sketch_serialized_size(s) < 2 * 2048 * 3 + 64);
    const double upper[] = {0.8, 0.9, 0.99, 1}; /* the top 17 decades */
    for (size_t i = 0; i < 4; i++) {
        double want = v[(size_t)floor(upper[i] * (double)(n - 1))];
        double got = eddy_sketch_quantile(s, upper[i]);
        assert_true(fabs(got - want) <= 0.01 * want);
    }
    assert_true(eddy_sketch_quantile(s, 0) == v[0]); /* min is exact */
    free(v);
    eddy_sketch_destroy(s);
}

static void test_rejects_malformed(void **state)
{
    eddy_sketch_t *s = eddy_sketch_new(), *r = eddy_sketch_new();
    for (int i = 0; i < 1000; i++)
        eddy_sketch_add(s, latency() * (i % 2 ? 1 : -1));
    size_t len = eddy_sketch_serialized_size(s);
    uint8_t *buf = malloc(len);
    eddy_sketch_serialize(s, buf, len);
    assert_int_equal(eddy_sketch_serialize(s, buf, len - 1), 0);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(eddy_sketch_deserialize(r, buf, cut), EDDY_ERR_INVALID);
    uint8_t garbage[256];
    for (int t = 0; t < 2000; t++) {
        size_t n = (size_t)(unit() * sizeof(garbage));
        for (size_t i = 0; i < n; i++)
            garbage[i] = (uint8_t)(unit() * 256);
        if (n > 0 && t % 2)
            garbage[0] = 1;                     /* right version: exercise the deeper checks */
        eddy_sketch_deserialize(r, garbage, n); /* must not crash or leak */
    }
    /* A failed parse leaves the target as it was. */
    assert_int_equal(eddy_sketch_deserialize(r, buf, len), EDDY_OK);
    assert_int_equal(eddy_sketch_deserialize(r, buf, 3), EDDY_ERR_INVALID);
    assert_int_equal(eddy_sketch_count(r), 1000);
    free(buf);
    eddy_sketch_destroy(s);
    eddy_sketch_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distributions),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_collapse_keeps_upper_quantiles),
        cmocka_unit_test(test_rejects_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
