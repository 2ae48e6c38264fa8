/*
 * test_sketch.c — the quantile sketch's contract, checked against exact sorted
 * data: every quantile lies within 1% of the value of rank floor(q*(n-1)) for
 * latencies, lognormal, six decades, constants, negatives and zeros; merging any
 * split of the data gives the very sketch of all of it (same bytes); the
 * serialized form round-trips, and every truncation, bit flip or random garbage
 * is rejected or decodes to a canonical sketch, never crashes; collapsing keeps
 * the upper quantiles exact to 1%; adding within the range does not allocate.
 */
#include "test_support.h"

#include "topology/sketch.h"

#include <float.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA EDDY_SKETCH_ALPHA

/* --- data ------------------------------------------------------------------- */

typedef struct rng_s {
    uint64_t s; /* xorshift64 state, never 0 */
} rng_t;

static uint64_t next_u64(rng_t *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static double unit(rng_t *r) /* [0, 1) */
{
    return (double)(next_u64(r) >> 11) * 0x1.0p-53;
}

static double normal(rng_t *r)
{
    return sqrt(-2.0 * log(1.0 - unit(r))) * cos(2.0 * M_PI * unit(r));
}

typedef double(gen_fn)(rng_t *r);

static double gen_latency(rng_t *r) /* normal, mean 80 sd 20, clipped to > 0 */
{
    double v;
    do
        v = 80.0 + 20.0 * normal(r);
    while (v <= 0);
    return v;
}

static double gen_lognormal(rng_t *r)
{
    return exp(3.0 + 1.5 * normal(r));
}

static double gen_decades(rng_t *r) /* log-uniform over [1e-3, 1e3) */
{
    return pow(10.0, -3.0 + 6.0 * unit(r));
}

static double gen_uniform(rng_t *r)
{
    return 1e6 * unit(r);
}

static double gen_constant(rng_t *r)
{
    (void)r;
    return 42.5;
}

static double gen_negative(rng_t *r)
{
    return -gen_lognormal(r);
}

static double gen_mixed(rng_t *r) /* both signs around 0 */
{
    return 100.0 * normal(r);
}

static double gen_zeros(rng_t *r) /* 30% exact or tiny zeros, the rest of both signs */
{
    double u = unit(r);
    if (u < 0.2)
        return 0.0;
    if (u < 0.3)
        return (unit(r) - 0.5) * 1e-9; /* |v| < 1e-9: counted as zero */
    return u < 0.6 ? -gen_lognormal(r) : gen_lognormal(r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --- checks ------------------------------------------------------------------ */

static const double qs[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};
#define N_QS (sizeof(qs) / sizeof(qs[0]))

static double worst_seen; /* largest relative error over the whole run, reported at the end */

/* The reference quantile: the value of rank floor(q*(n-1)) in sorted order. */
static double ref_quantile(const double *sorted, size_t n, double q)
{
    return sorted[(size_t)floor(q * (double)(n - 1))];
}

/* Relative error of got against want, or 0 when want is a "zero" and got is
 * within the zero bucket's absolute error. Fails the test beyond ALPHA. */
static double check_one(double got, double want, double q, const char *what)
{
    double err;
    if (fabs(want) < EDDY_SKETCH_MIN_VALUE) {
        if (!(fabs(got - want) < EDDY_SKETCH_MIN_VALUE))
            fail_msg("%s q=%g: got %.17g, want %.17g (zero bucket)", what, q, got, want);
        return 0;
    }
    err = fabs(got - want) / fabs(want);
    if (!(err <= ALPHA * (1 + 1e-9)))
        fail_msg("%s q=%g: got %.17g, want %.17g (relative error %g)", what, q, got, want, err);
    return err;
}

/* Checks the quantiles of sketch against the values in v (sorted here), at the
 * listed q and at 1001 evenly spaced ones; returns the worst relative error. */
static double check_quantiles(const eddy_sketch_t *sketch, double *v, size_t n, const char *what)
{
    qsort(v, n, sizeof(double), cmp_double);
    assert_int_equal(eddy_sketch_count(sketch), n);
    assert_true(eddy_sketch_min(sketch) == v[0]);
    assert_true(eddy_sketch_max(sketch) == v[n - 1]);
    double worst = 0;
    for (size_t i = 0; i < N_QS; i++) {
        double err =
            check_one(eddy_sketch_quantile(sketch, qs[i]), ref_quantile(v, n, qs[i]), qs[i], what);
        worst = err > worst ? err : worst;
    }
    for (int i = 0; i <= 1000; i++) {
        double q = i / 1000.0;
        double err = check_one(eddy_sketch_quantile(sketch, q), ref_quantile(v, n, q), q, what);
        worst = err > worst ? err : worst;
    }
    assert_true(eddy_sketch_quantile(sketch, 0) == v[0]);
    assert_true(eddy_sketch_quantile(sketch, 1) == v[n - 1]);
    worst_seen = worst > worst_seen ? worst : worst_seen;
    return worst;
}

static eddy_sketch_t *sketch_of(const double *v, size_t n)
{
    eddy_sketch_t *sketch = eddy_sketch_new();
    assert_non_null(sketch);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(eddy_sketch_add(sketch, v[i]), EDDY_OK);
    return sketch;
}

/* Serializes sketch into a fresh buffer (caller frees) and checks the size calls agree. */
static uint8_t *bytes_of(const eddy_sketch_t *sketch, size_t *len)
{
    size_t n = eddy_sketch_serialized_size(sketch);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(eddy_sketch_serialize(sketch, buf, n), n);
    if (n > 0)
        assert_int_equal(eddy_sketch_serialize(sketch, buf, n - 1), 0);
    *len = n;
    return buf;
}

/* Same serialized bytes; with ignore_sum, but for the 8 bytes of the sum (which
 * follow version, flags and the count varint in the documented format), as the
 * order of additions may round it differently. */
static void assert_same_bytes_opt(const eddy_sketch_t *a, const eddy_sketch_t *b, bool ignore_sum)
{
    size_t la, lb;
    uint8_t *ba = bytes_of(a, &la), *bb = bytes_of(b, &lb);
    assert_int_equal(la, lb);
    if (ignore_sum && eddy_sketch_count(a) > 0) {
        size_t at = 2;
        while (ba[at] & 0x80)
            at++;
        at++;
        assert_true(at + 8 <= la);
        memset(ba + at, 0, 8);
        memset(bb + at, 0, 8);
    }
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void assert_same_bytes(const eddy_sketch_t *a, const eddy_sketch_t *b)
{
    assert_same_bytes_opt(a, b, false);
}

/* --- tests ------------------------------------------------------------------- */

static void test_empty(void **state)
{
    eddy_sketch_t *sketch = eddy_sketch_new();
    assert_non_null(sketch);
    assert_int_equal(eddy_sketch_count(sketch), 0);
    assert_true(eddy_sketch_sum(sketch) == 0);
    assert_true(isnan(eddy_sketch_min(sketch)));
    assert_true(isnan(eddy_sketch_max(sketch)));
    assert_true(isnan(eddy_sketch_quantile(sketch, 0.5)));
    assert_false(eddy_sketch_collapsed(sketch));
    assert_int_equal(eddy_sketch_serialized_size(sketch), 3);

    size_t len;
    uint8_t *buf = bytes_of(sketch, &len);
    eddy_sketch_t *back = eddy_sketch_new();
    assert_int_equal(eddy_sketch_add(back, 1.0), EDDY_OK);
    assert_int_equal(eddy_sketch_deserialize(back, buf, len), EDDY_OK);
    assert_int_equal(eddy_sketch_count(back), 0);
    assert_int_equal(eddy_sketch_merge(sketch, back), EDDY_OK);
    assert_int_equal(eddy_sketch_count(sketch), 0);
    free(buf);
    eddy_sketch_destroy(back);
    eddy_sketch_destroy(sketch);
    eddy_sketch_destroy(NULL);
}

static void test_bad_values(void **state)
{
    eddy_sketch_t *sketch = eddy_sketch_new();
    assert_int_equal(eddy_sketch_add(sketch, 5.0), EDDY_OK);
    assert_int_equal(eddy_sketch_add(sketch, NAN), EDDY_ERR_INVALID);
    assert_int_equal(eddy_sketch_add(sketch, INFINITY), EDDY_ERR_INVALID);
    assert_int_equal(eddy_sketch_add(sketch, -INFINITY), EDDY_ERR_INVALID);
    assert_int_equal(eddy_sketch_count(sketch), 1);
    assert_true(eddy_sketch_sum(sketch) == 5.0);
    assert_true(isnan(eddy_sketch_quantile(sketch, -0.01)));
    assert_true(isnan(eddy_sketch_quantile(sketch, 1.01)));
    assert_true(isnan(eddy_sketch_quantile(sketch, NAN)));
    assert_true(eddy_sketch_quantile(sketch, 0.5) == 5.0);
    eddy_sketch_destroy(sketch);
}

static void run_distribution(const char *name, gen_fn *gen, size_t n, uint64_t seed)
{
    rng_t r = {seed};
    double *v = malloc(n * sizeof(double));
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = gen(&r);
        sum += v[i];
    }
    eddy_sketch_t *sketch = sketch_of(v, n);
    assert_true(fabs(eddy_sketch_sum(sketch) - sum) <= 1e-9 * fabs(sum) + 1e-9);
    double worst = check_quantiles(sketch, v, n, name);
    print_message("  %-10s n=%-7zu worst relative error %.5f%%, %zu bytes serialized\n", name, n,
                  100 * worst, eddy_sketch_serialized_size(sketch));
    assert_false(eddy_sketch_collapsed(sketch));
    eddy_sketch_destroy(sketch);
    free(v);
}

static void test_distributions(void **state)
{
    run_distribution("latency", gen_latency, 100000, 1);
    run_distribution("lognormal", gen_lognormal, 100000, 2);
    run_distribution("decades", gen_decades, 100000, 3);
    run_distribution("uniform", gen_uniform, 100000, 4);
    run_distribution("constant", gen_constant, 1000, 5);
    run_distribution("negative", gen_negative, 100000, 6);
    run_distribution("mixed", gen_mixed, 100000, 7);
    run_distribution("zeros", gen_zeros, 100000, 8);
    /* Tiny inputs, where rank rounding matters most. */
    for (size_t n = 1; n <= 20; n++) {
        run_distribution("small-lat", gen_latency, n, 100 + n);
        run_distribution("small-mix", gen_zeros, n, 200 + n);
    }
}

/* Values at the edges of what a double holds and of the zero bucket. */
static void test_extremes(void **state)
{
    double v[] = {DBL_MAX,  -DBL_MAX, DBL_MIN, -DBL_MIN, 0.0,    -0.0,   1e-9, -1e-9,
                  0.99e-9,  1.01e-9,  1e300,   -1e300,   1e-300, 5e-324, 1.0,  -1.0,
                  123456.0, 1e-8,     2e-9,    -3e-9,    1e15,   -1e15,  1e10, -1e10};
    size_t n = sizeof(v) / sizeof(v[0]);
    eddy_sketch_t *sketch = sketch_of(v, n);
    assert_true(eddy_sketch_collapsed(sketch)); /* DBL_MAX and 1e-9 are far more than 2048 apart */
    for (int i = 0; i <= 100; i++)
        assert_true(isfinite(eddy_sketch_quantile(sketch, i / 100.0)));
    assert_true(eddy_sketch_quantile(sketch, 0) == -DBL_MAX);
    assert_true(eddy_sketch_quantile(sketch, 1) == DBL_MAX);
    size_t len;
    uint8_t *buf = bytes_of(sketch, &len);
    eddy_sketch_t *back = eddy_sketch_new();
    assert_int_equal(eddy_sketch_deserialize(back, buf, len), EDDY_OK);
    assert_same_bytes(sketch, back);
    free(buf);
    eddy_sketch_destroy(back);
    eddy_sketch_destroy(sketch);

    /* Each alone, within the range of one sign: exact to 1%. */
    double w[] = {DBL_MAX, DBL_MAX / 3, 1e300, 1e295};
    sketch = sketch_of(w, 4);
    check_quantiles(sketch, w, 4, "huge");
    eddy_sketch_destroy(sketch);
    double z[] = {1e-9, 1.5e-9, 1e-8, 0.5e-9, 0.0, -0.0, -2e-9};
    sketch = sketch_of(z, 7);
    check_quantiles(sketch, z, 7, "tiny");
    eddy_sketch_destroy(sketch);
}

/* Values rounded to multiples of 2^-10 below 2^20, so that every partial sum is
 * exact and sketches built in any order have identical bytes, sum included. */
static double dyadic(double v)
{
    return round(v * 1024.0) / 1024.0;
}

static void test_merge_exact(void **state)
{
    enum { N = 60000, PARTS = 7 };
    rng_t r = {42};
    double *v = malloc(N * sizeof(double));
    for (size_t i = 0; i < N; i++) {
        double x = i % 3 == 0 ? gen_latency(&r) : i % 3 == 1 ? gen_zeros(&r) : gen_decades(&r);
        v[i] = dyadic(fmin(x, 1e5));
    }
    eddy_sketch_t *all = sketch_of(v, N);

    /* Uneven contiguous parts, merged left to right. */
    size_t cut[PARTS + 1] = {0, 1, 17, 5000, 5001, 30000, 59999, N};
    eddy_sketch_t *part[PARTS];
    for (int p = 0; p < PARTS; p++)
        part[p] = sketch_of(v + cut[p], cut[p + 1] - cut[p]);
    eddy_sketch_t *seq = eddy_sketch_new();
    for (int p = 0; p < PARTS; p++)
        assert_int_equal(eddy_sketch_merge(seq, part[p]), EDDY_OK);
    assert_same_bytes(all, seq);

    /* The same parts merged as a tree, right to left. */
    assert_int_equal(eddy_sketch_merge(part[5], part[6]), EDDY_OK);
    assert_int_equal(eddy_sketch_merge(part[3], part[4]), EDDY_OK);
    assert_int_equal(eddy_sketch_merge(part[3], part[5]), EDDY_OK);
    assert_int_equal(eddy_sketch_merge(part[1], part[2]), EDDY_OK);
    assert_int_equal(eddy_sketch_merge(part[0], part[1]), EDDY_OK);
    assert_int_equal(eddy_sketch_merge(part[0], part[3]), EDDY_OK);
    assert_same_bytes(all, part[0]);

    /* Interleaved split: odd and even positions, through the serialized form. */
    eddy_sketch_t *odd = eddy_sketch_new(), *even = eddy_sketch_new();
    for (size_t i = 0; i < N; i++)
        assert_int_equal(eddy_sketch_add(i % 2 ? odd : even, v[i]), EDDY_OK);
    size_t len;
    uint8_t *buf = bytes_of(odd, &len);
    assert_int_equal(eddy_sketch_merge_serialized(even, buf, len), EDDY_OK);
    assert_same_bytes(all, even);
    free(buf);

    /* Same quantiles everywhere, which is what a query sees. */
    for (int i = 0; i <= 1000; i++)
        assert_true(eddy_sketch_quantile(all, i / 1000.0) ==
                    eddy_sketch_quantile(even, i / 1000.0));
    check_quantiles(all, v, N, "merged");

    /* Merging with itself doubles every count. */
    eddy_sketch_t *twice = sketch_of(v, N);
    assert_int_equal(eddy_sketch_merge(twice, twice), EDDY_OK);
    assert_int_equal(eddy_sketch_count(twice), 2 * N);
    assert_true(eddy_sketch_sum(twice) == 2 * eddy_sketch_sum(all));
    double *v2 = malloc(2 * N * sizeof(double));
    memcpy(v2, v, N * sizeof(double));
    memcpy(v2 + N, v, N * sizeof(double));
    check_quantiles(twice, v2, 2 * N, "self-merged");
    free(v2);
    eddy_sketch_t *again = eddy_sketch_new();
    assert_int_equal(eddy_sketch_merge(again, all), EDDY_OK);
    assert_int_equal(eddy_sketch_merge(again, all), EDDY_OK);
    assert_same_bytes(again, twice);

    eddy_sketch_destroy(again);
    eddy_sketch_destroy(twice);
    eddy_sketch_destroy(odd);
    eddy_sketch_destroy(even);
    eddy_sketch_destroy(seq);
    for (int p = 0; p < PARTS; p++)
        eddy_sketch_destroy(part[p]);
    eddy_sketch_destroy(all);
    free(v);
}

static void test_serialize_round_trip(void **state)
{
    gen_fn *gens[] = {gen_latency, gen_lognormal, gen_decades, gen_negative, gen_zeros};
    for (size_t g = 0; g < sizeof(gens) / sizeof(gens[0]); g++) {
        enum { N = 20000 };
        rng_t r = {1000 + g};
        double *v = malloc(N * sizeof(double));
        for (size_t i = 0; i < N; i++)
            v[i] = gens[g](&r);
        eddy_sketch_t *sketch = sketch_of(v, N);
        size_t len;
        uint8_t *buf = bytes_of(sketch, &len);

        /* Into a sketch holding something else: replaced wholesale. */
        eddy_sketch_t *back = eddy_sketch_new();
        for (int i = 0; i < 100; i++)
            assert_int_equal(eddy_sketch_add(back, -1e6 + i), EDDY_OK);
        assert_int_equal(eddy_sketch_deserialize(back, buf, len), EDDY_OK);
        assert_same_bytes(sketch, back);
        assert_int_equal(eddy_sketch_count(back), N);
        assert_true(eddy_sketch_sum(back) == eddy_sketch_sum(sketch));
        assert_true(eddy_sketch_min(back) == eddy_sketch_min(sketch));
        assert_true(eddy_sketch_max(back) == eddy_sketch_max(sketch));
        for (int i = 0; i <= 100; i++)
            assert_true(eddy_sketch_quantile(back, i / 100.0) ==
                        eddy_sketch_quantile(sketch, i / 100.0));
        check_quantiles(back, v, N, "round-trip");

        /* A deserialized sketch keeps growing like any other. */
        assert_int_equal(eddy_sketch_add(back, 1e12), EDDY_OK);
        assert_int_equal(eddy_sketch_add(back, -1e12), EDDY_OK);
        assert_true(eddy_sketch_max(back) == 1e12);
        assert_true(eddy_sketch_min(back) == -1e12);
        free(buf);
        eddy_sketch_destroy(back);
        eddy_sketch_destroy(sketch);
        free(v);
    }
}

/* Decodes buf into a sketch holding one value: either it is rejected and the
 * sketch untouched, or it is accepted and re-encodes to exactly buf. */
static void check_decode(const uint8_t *buf, size_t len, int *accepted)
{
    eddy_sketch_t *sketch = eddy_sketch_new();
    assert_int_equal(eddy_sketch_add(sketch, 7.0), EDDY_OK);
    eddy_err_t err = eddy_sketch_deserialize(sketch, buf, len);
    if (err) {
        assert_int_equal(err, EDDY_ERR_INVALID);
        assert_int_equal(eddy_sketch_count(sketch), 1);
        assert_true(eddy_sketch_quantile(sketch, 0.5) == 7.0);
        err = eddy_sketch_merge_serialized(sketch, buf, len);
        assert_int_equal(err, EDDY_ERR_INVALID);
        assert_int_equal(eddy_sketch_count(sketch), 1);
    } else {
        (*accepted)++;
        size_t n = eddy_sketch_serialized_size(sketch);
        assert_int_equal(n, len);
        uint8_t *again = malloc(n);
        assert_int_equal(eddy_sketch_serialize(sketch, again, n), n);
        assert_memory_equal(again, buf, n);
        free(again);
        for (int i = 0; i <= 10; i++) {
            double q = eddy_sketch_quantile(sketch, i / 10.0);
            if (eddy_sketch_count(sketch) == 0)
                assert_true(isnan(q));
            else
                assert_true(q >= eddy_sketch_min(sketch) && q <= eddy_sketch_max(sketch));
        }
    }
    eddy_sketch_destroy(sketch);
}

static void test_malformed_input(void **state)
{
    rng_t r = {77};
    eddy_sketch_t *sketch = eddy_sketch_new();
    for (int i = 0; i < 3000; i++)
        assert_int_equal(eddy_sketch_add(sketch, gen_zeros(&r)), EDDY_OK);
    size_t len;
    uint8_t *buf = bytes_of(sketch, &len);
    int accepted = 0;

    /* Every truncation, including the empty buffer and NULL. */
    for (size_t cut = 0; cut < len; cut++)
        check_decode(buf, cut, &accepted);
    assert_int_equal(accepted, 0);
    assert_int_equal(eddy_sketch_deserialize(sketch, NULL, 0), EDDY_ERR_INVALID);

    /* Every single bit flipped: rejected, or a canonical sketch (sum bits). */
    uint8_t *mut = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            memcpy(mut, buf, len);
            mut[i] ^= (uint8_t)(1u << b);
            check_decode(mut, len, &accepted);
        }
    }
    /* One byte too many. */
    memcpy(mut, buf, len);
    mut[len] = 0;
    accepted = 0;
    check_decode(mut, len + 1, &accepted);
    assert_int_equal(accepted, 0);

    /* Hand-made cases: bad version, unknown flag, empty with trailing byte, a
     * collapsed flag on a short store, a non-minimal varint. */
    const uint8_t bad[][6] = {
        {2, 0, 0}, {1, 4, 0}, {1, 1, 0}, {1, 0, 0, 0}, {1, 0, 0x80, 0}, {0xff, 0xff, 0xff},
    };
    const size_t bad_len[] = {3, 3, 3, 4, 4, 3};
    for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
        accepted = 0;
        check_decode(bad[i], bad_len[i], &accepted);
        assert_int_equal(accepted, 0);
    }

    /* Random garbage, and garbage behind a plausible header. */
    uint8_t junk[96];
    for (int t = 0; t < 20000; t++) {
        size_t n = next_u64(&r) % sizeof(junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)next_u64(&r);
        if (t % 2 && n >= 3) {
            junk[0] = 1;
            junk[1] = (uint8_t)(next_u64(&r) % 4);
            junk[2] = (uint8_t)(next_u64(&r) % 8);
        }
        check_decode(junk, n, &accepted);
    }
    free(mut);
    free(buf);
    eddy_sketch_destroy(sketch);
}

static void test_collapse(void **state)
{
    /* Log-uniform over 1e-6 .. 1e15: 21 decades, ~2420 buckets > 2048. */
    enum { N = 50000 };
    rng_t r = {9};
    double *v = malloc(N * sizeof(double));
    for (size_t i = 0; i < N; i++)
        v[i] = pow(10.0, -6.0 + 21.0 * unit(&r));
    eddy_sketch_t *sketch = sketch_of(v, N);
    assert_true(eddy_sketch_collapsed(sketch));
    qsort(v, N, sizeof(double), cmp_double);
    assert_int_equal(eddy_sketch_count(sketch), N);
    assert_true(eddy_sketch_min(sketch) == v[0]);
    assert_true(eddy_sketch_max(sketch) == v[N - 1]);

    /* The kept range ends at max's bucket; 2048 buckets down from there, with
     * a bucket's slack, is the lowest magnitude still exact to 1%. */
    double gamma = (1 + ALPHA) / (1 - ALPHA);
    double kept = v[N - 1] * pow(gamma, -(EDDY_SKETCH_MAX_BUCKETS - 2));
    int exact = 0, over = 0;
    for (int i = 0; i <= 1000; i++) {
        double q = i / 1000.0;
        double want = ref_quantile(v, N, q), got = eddy_sketch_quantile(sketch, q);
        if (want >= kept) {
            check_one(got, want, q, "collapsed");
            exact++;
        } else {
            /* In or folded into the lowest bucket kept: never below want by more
             * than 1%, and reported as that bucket. */
            assert_true(got >= want * (1 - ALPHA));
            assert_true(got <= kept);
            over++;
        }
    }
    assert_true(exact > 800 && over > 100);
    print_message("  collapse: %d of 1001 quantiles exact to 1%%, %d overestimated; %zu bytes\n",
                  exact, over, eddy_sketch_serialized_size(sketch));
    assert_true(eddy_sketch_quantile(sketch, 0.99) >=
                v[(size_t)floor(0.99 * (N - 1))] * (1 - ALPHA));

    /* Merging parts that did not collapse on their own collapses the same way. */
    rng_t r2 = {9};
    eddy_sketch_t *low = eddy_sketch_new(), *high = eddy_sketch_new();
    for (size_t i = 0; i < N; i++) {
        double x = pow(10.0, -6.0 + 21.0 * unit(&r2));
        assert_int_equal(eddy_sketch_add(x < 1e4 ? low : high, x), EDDY_OK);
    }
    assert_false(eddy_sketch_collapsed(low));
    assert_false(eddy_sketch_collapsed(high));
    assert_int_equal(eddy_sketch_merge(low, high), EDDY_OK);
    assert_true(eddy_sketch_collapsed(low));
    for (int i = 0; i <= 10000; i++)
        assert_true(eddy_sketch_quantile(low, i / 10000.0) ==
                    eddy_sketch_quantile(sketch, i / 10000.0));
    assert_same_bytes_opt(low, sketch, true);
    assert_true(fabs(eddy_sketch_sum(low) - eddy_sketch_sum(sketch)) <=
                1e-12 * eddy_sketch_sum(sketch));

    /* Round trip of a collapsed sketch keeps the flag. */
    size_t len;
    uint8_t *buf = bytes_of(sketch, &len);
    eddy_sketch_t *back = eddy_sketch_new();
    assert_int_equal(eddy_sketch_deserialize(back, buf, len), EDDY_OK);
    assert_true(eddy_sketch_collapsed(back));
    assert_same_bytes(sketch, back);
    free(buf);

    /* Negatives mirror it: the most negative values fold, those near 0 stay
     * exact up to 2048 buckets above the smallest magnitude. */
    double kept_neg = v[0] * pow(gamma, EDDY_SKETCH_MAX_BUCKETS - 2);
    eddy_sketch_t *neg = eddy_sketch_new();
    for (size_t i = 0; i < N; i++)
        assert_int_equal(eddy_sketch_add(neg, -v[i]), EDDY_OK);
    assert_true(eddy_sketch_collapsed(neg));
    for (size_t i = 0; i < N; i++)
        v[i] = -v[i];
    qsort(v, N, sizeof(double), cmp_double);
    exact = over = 0;
    for (int i = 0; i <= 1000; i++) {
        double q = i / 1000.0;
        double want = ref_quantile(v, N, q), got = eddy_sketch_quantile(neg, q);
        if (-want <= kept_neg) {
            check_one(got, want, q, "collapsed negative");
            exact++;
        } else {
            assert_true(got >= want * (1 + ALPHA));
            assert_true(got <= -kept_neg);
            over++;
        }
    }
    assert_true(exact > 800 && over > 100);
    eddy_sketch_destroy(neg);
    eddy_sketch_destroy(back);
    eddy_sketch_destroy(low);
    eddy_sketch_destroy(high);
    eddy_sketch_destroy(sketch);
    free(v);
}

static void test_reset_reuse(void **state)
{
    rng_t r = {5};
    double v[5000];
    for (size_t i = 0; i < 5000; i++)
        v[i] = gen_mixed(&r);
    eddy_sketch_t *sketch = sketch_of(v, 5000);
    eddy_sketch_reset(sketch);
    assert_int_equal(eddy_sketch_count(sketch), 0);
    assert_true(isnan(eddy_sketch_quantile(sketch, 0.5)));
    assert_int_equal(eddy_sketch_serialized_size(sketch), 3);
    for (size_t i = 0; i < 5000; i++)
        v[i] = gen_latency(&r);
    for (size_t i = 0; i < 5000; i++)
        assert_int_equal(eddy_sketch_add(sketch, v[i]), EDDY_OK);
    eddy_sketch_t *fresh = sketch_of(v, 5000);
    assert_same_bytes(sketch, fresh);
    check_quantiles(sketch, v, 5000, "reused");
    eddy_sketch_destroy(fresh);
    eddy_sketch_destroy(sketch);
}

/* Once the range is established, adding allocates nothing (glibc's own count;
 * sanitizers replace malloc, so the check is skipped under them). */
static void test_add_does_not_allocate(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip();
#else
    rng_t r = {11};
    eddy_sketch_t *sketch = eddy_sketch_new();
    assert_int_equal(eddy_sketch_add(sketch, 1.0), EDDY_OK);
    assert_int_equal(eddy_sketch_add(sketch, 1000.0), EDDY_OK);
    assert_int_equal(eddy_sketch_add(sketch, -1.0), EDDY_OK);
    assert_int_equal(eddy_sketch_add(sketch, -1000.0), EDDY_OK);
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 200000; i++) {
        double x = 1.0 + 999.0 * unit(&r);
        assert_int_equal(eddy_sketch_add(sketch, i % 4 ? x : -x), EDDY_OK);
        if (i % 10 == 0)
            assert_int_equal(eddy_sketch_add(sketch, 0.0), EDDY_OK);
    }
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(before.uordblks, after.uordblks);
    assert_int_equal(eddy_sketch_count(sketch), 4 + 200000 + 20000);
    eddy_sketch_destroy(sketch);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_distributions),   cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_merge_exact),     cmocka_unit_test(test_serialize_round_trip),
        cmocka_unit_test(test_malformed_input), cmocka_unit_test(test_collapse),
        cmocka_unit_test(test_reset_reuse),     cmocka_unit_test(test_add_does_not_allocate),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    print_message("worst relative error over all checks: %.5f%% (bound %.2f%%)\n", 100 * worst_seen,
                  100 * ALPHA);
    return failed;
}
