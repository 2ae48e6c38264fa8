/*
 * test_sketch.c — the quantile sketch's contract, checked against exact sorted
 * data: every quantile lies within 1% of the value of rank floor(q*(n-1)) for
 * latencies, lognormal, six decades, constants, negatives and zeros, and stays
 * there whatever outliers (any finite double, either sign, tiny or huge) are
 * added; merging any split of the data gives the very sketch of all of it (same
 * bytes), collapsed or not, in any order; past the bucket bound the top 2047
 * buckets stay exact, exactly the quantiles below them say they are degraded,
 * and memory stays under its bound whatever is sent; the serialized form
 * round-trips, version 1 (committed files) is still read, and every truncation,
 * bit flip or random garbage is rejected or decodes to a canonical sketch, never
 * crashes; adding to a warmed-up sketch does not allocate.
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
    /* 24 values in 17 buckets, however far apart: all exact. */
    assert_false(eddy_sketch_collapsed(sketch));
    for (int i = 0; i <= 100; i++)
        assert_true(isfinite(eddy_sketch_quantile(sketch, i / 100.0)));
    assert_true(eddy_sketch_quantile(sketch, 0) == -DBL_MAX);
    assert_true(eddy_sketch_quantile(sketch, 1) == DBL_MAX);
    double *sorted = malloc(sizeof(v));
    memcpy(sorted, v, sizeof(v));
    check_quantiles(sketch, sorted, n, "extremes");
    free(sorted);
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
        uint8_t *again = malloc(n);
        assert_int_equal(eddy_sketch_serialize(sketch, again, n), n);
        if (buf[0] == 1) {
            /* Version 1 is read, never written: its re-encoding is canonical. */
            assert_int_equal(again[0], 2);
            eddy_sketch_t *v2 = eddy_sketch_new();
            assert_int_equal(eddy_sketch_deserialize(v2, again, n), EDDY_OK);
            assert_same_bytes(sketch, v2);
            eddy_sketch_destroy(v2);
        } else {
            assert_int_equal(n, len);
            assert_memory_equal(again, buf, n);
        }
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

    /* Hand-made cases: unknown versions, unknown flags, empty with trailing byte,
     * a collapsed flag on an empty sketch or a short version 1 store, non-minimal
     * varints, a gap first or after a gap, a key out of range. */
    const uint8_t bad[][40] = {
        {3, 0, 0},
        {0, 0, 0},
        {1, 4, 0},
        {2, 2, 0},
        {1, 1, 0},
        {2, 1, 0},
        {1, 0, 0, 0},
        {2, 0, 0, 0},
        {1, 0, 0x80, 0},
        {2, 0, 0x80, 0},
        {0xff, 0xff, 0xff},
        /* count 1 of 1.0 (key 1037 = zigzag 2074), then a gap first */
        {2,    0,    1, 0, 0, 0, 0, 0, 0,    0xf0, 0x3f, 0,    0,    0, 0, 0, 0,
         0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 1,    0x9a, 0x10, 0, 0, 1},
        /* two buckets: 1 at key 1037, a gap, a second gap */
        {2,    0, 2, 0, 0, 0, 0, 0,    0,    0, 0x40, 0,    0, 0, 0, 0, 0, 0xf0,
         0x3f, 0, 0, 0, 0, 0, 0, 0x00, 0x40, 2, 0x9a, 0x10, 1, 0, 0, 0, 0, 1},
        /* key 40000 (zigzag 80000) */
        {2, 0,    1,    0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0,    0,    0,    0,
         0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 1, 0x80, 0xf1, 0x04, 1},
    };
    const size_t bad_len[] = {3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 3, 33, 36, 32};
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
            junk[0] = (uint8_t)(1 + t % 4 / 2);
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
        /* Every estimate not flagged keeps the bound. */
        if (!eddy_sketch_quantile_degraded(sketch, q))
            check_one(got, want, q, "collapsed, not flagged");
        if (want >= kept) {
            check_one(got, want, q, "collapsed");
            assert_false(eddy_sketch_quantile_degraded(sketch, q));
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
        if (!eddy_sketch_quantile_degraded(neg, q))
            check_one(got, want, q, "collapsed negative, not flagged");
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

/* --- outliers, the bucket bound, version 1 ------------------------------------------ */

static void shuffle(double *v, size_t n, rng_t *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = next_u64(r) % i;
        double t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* No quantile of the sketch says it is degraded. */
static void assert_nothing_degraded(const eddy_sketch_t *sketch)
{
    for (int i = 0; i <= 1000; i++)
        assert_false(eddy_sketch_quantile_degraded(sketch, i / 1000.0));
}

/* Any finite double, alone or with a few others, added to a distribution: every
 * quantile of the whole stays within 1% and nothing collapses or says degraded;
 * in any order, and merged from any split, the same bytes. */
static void test_outliers(void **state)
{
    static const double outliers[] = {
        DBL_MAX, -DBL_MAX, 1e308, -1e308, 1e300, -1e300, 1e-300, -1e-300, 5e-324, -5e-324,
        DBL_MIN, 1e-9,     -1e-9, 2e-9,   1e-8,  0.0,    -0.0,   1e15,    -1e15,  123456.0,
    };
    const size_t n_out = sizeof(outliers) / sizeof(outliers[0]);
    gen_fn *gens[] = {gen_latency, gen_lognormal, gen_negative, gen_mixed, gen_zeros};
    const char *names[] = {"latency", "lognormal", "negative", "mixed", "zeros"};
    enum { N = 5000 };
    double *v = malloc((N + n_out) * sizeof(double));
    for (size_t g = 0; g < sizeof(gens) / sizeof(gens[0]); g++) {
        for (size_t k = 0; k <= n_out; k++) {
            /* k < n_out: the distribution and outlier k; k == n_out: all of them. */
            rng_t r = {300 + g};
            for (size_t i = 0; i < N; i++)
                v[i] = gens[g](&r);
            size_t n = N;
            if (k < n_out)
                v[n++] = outliers[k];
            else
                for (size_t j = 0; j < n_out; j++)
                    v[n++] = outliers[j];
            eddy_sketch_t *sketch = sketch_of(v, n);
            assert_false(eddy_sketch_collapsed(sketch));
            assert_nothing_degraded(sketch);
            char what[64];
            snprintf(what, sizeof(what), "%s + outlier %zu", names[g], k);
            double *sorted = malloc(n * sizeof(double));
            memcpy(sorted, v, n * sizeof(double));
            check_quantiles(sketch, sorted, n, what);
            free(sorted);
            if (k == 0 || k == n_out) {
                /* The outlier first, last or anywhere: the same sketch. */
                shuffle(v, n, &r);
                eddy_sketch_t *again = sketch_of(v, n);
                assert_same_bytes_opt(sketch, again, true);
                eddy_sketch_t *half = sketch_of(v, n / 2), *rest = sketch_of(v + n / 2, n - n / 2);
                assert_int_equal(eddy_sketch_merge(rest, half), EDDY_OK);
                assert_same_bytes_opt(sketch, rest, true);
                if (g == 0 && k == 0)
                    print_message("  latency + 1e308: %zu bytes serialized, %zu bytes held\n",
                                  eddy_sketch_serialized_size(sketch), eddy_sketch_memory(sketch));
                eddy_sketch_destroy(half);
                eddy_sketch_destroy(rest);
                eddy_sketch_destroy(again);
            }
            eddy_sketch_destroy(sketch);
        }
    }
    free(v);
}

/* Values in known, distinct buckets: bucket j (0 <= j < m) holds (j % 3) + 1
 * copies of base * 1.03^j (1.03 > gamma = 1.0202: one bucket each), so the test
 * knows what the bound keeps: the top N - 1 buckets exact, the N-th holding
 * every lower value. */
typedef struct spread_s {
    double *v;    /* the values */
    size_t n;     /* how many */
    size_t below; /* values in the buckets folded together (0: no collapse) */
    double kept;  /* value of the lowest bucket kept, where they are folded */
} spread_t;

static void make_spread(spread_t *sp, int m, double base, double sign)
{
    sp->v = malloc((size_t)m * 3 * sizeof(double));
    sp->n = 0;
    sp->below = 0;
    const int fold = m - EDDY_SKETCH_MAX_BUCKETS; /* buckets 0..fold fold into bucket fold */
    for (int j = 0; j < m; j++) {
        for (int c = 0; c <= j % 3; c++)
            sp->v[sp->n++] = sign * base * pow(1.03, j);
        if (fold > 0 && j <= fold && sign > 0)
            sp->below += (size_t)(j % 3) + 1;
    }
    if (sign < 0 && fold > 0) /* negatives: the most negative ones fold */
        for (int j = m - 1 - fold; j < m; j++)
            sp->below += (size_t)(j % 3) + 1;
    sp->kept = sign * base * pow(1.03, sign > 0 ? fold : m - 1 - fold);
}

/* The collapsed sketch of a spread against its sorted values: ranks in the
 * folded bucket are degraded and reported as its value, all others exact. */
static void check_spread(const eddy_sketch_t *sketch, const spread_t *sp, const char *what)
{
    double *sorted = malloc(sp->n * sizeof(double));
    memcpy(sorted, sp->v, sp->n * sizeof(double));
    qsort(sorted, sp->n, sizeof(double), cmp_double);
    assert_int_equal(eddy_sketch_collapsed(sketch), sp->below > 0);
    int degraded = 0;
    for (int i = 0; i <= 2000; i++) {
        double q = i / 2000.0;
        size_t rank = (size_t)floor(q * (double)(sp->n - 1));
        bool folded = rank > 0 && rank < sp->n - 1 && rank < sp->below;
        assert_int_equal(eddy_sketch_quantile_degraded(sketch, q), folded);
        double got = eddy_sketch_quantile(sketch, q);
        if (folded) {
            check_one(got, sp->kept, q, what);
            degraded++;
        } else {
            check_one(got, sorted[rank], q, what);
        }
    }
    if (sp->below > 0)
        assert_true(degraded > 0);
    free(sorted);
}

static void test_collapse_bound(void **state)
{
    rng_t r = {4242};
    const int N = EDDY_SKETCH_MAX_BUCKETS;
    struct {
        int m;
        double base, sign;
    } cases[] = {
        {N, 1e-3, 1},       /* exactly the bound: nothing folds */
        {N + 1, 1e-3, 1},   /* one bucket more: the two lowest fold */
        {N + 700, 1e-3, 1}, /* far more */
        {N + 700, 1e-3, -1},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        spread_t sp;
        make_spread(&sp, cases[c].m, cases[c].base, cases[c].sign);
        eddy_sketch_t *sorted_order = sketch_of(sp.v, sp.n);
        check_spread(sorted_order, &sp, "spread, ascending");
        /* Any order, any split merged in any order: the same sketch. */
        for (int t = 0; t < 3; t++) {
            shuffle(sp.v, sp.n, &r);
            eddy_sketch_t *shuffled = sketch_of(sp.v, sp.n);
            assert_same_bytes_opt(sorted_order, shuffled, true);
            enum { PARTS = 5 };
            eddy_sketch_t *part[PARTS];
            for (int p = 0; p < PARTS; p++)
                part[p] = eddy_sketch_new();
            for (size_t i = 0; i < sp.n; i++)
                assert_int_equal(eddy_sketch_add(part[next_u64(&r) % PARTS], sp.v[i]), EDDY_OK);
            eddy_sketch_t *merged = eddy_sketch_new();
            for (int p = PARTS - 1; p >= 0; p--) {
                if (t == 1) { /* through the serialized form */
                    size_t len;
                    uint8_t *buf = bytes_of(part[p], &len);
                    assert_int_equal(eddy_sketch_merge_serialized(merged, buf, len), EDDY_OK);
                    free(buf);
                } else {
                    assert_int_equal(eddy_sketch_merge(merged, part[p]), EDDY_OK);
                }
            }
            assert_same_bytes_opt(sorted_order, merged, true);
            check_spread(merged, &sp, "spread, merged");
            /* A tree of merges too. */
            assert_int_equal(eddy_sketch_merge(part[0], part[1]), EDDY_OK);
            assert_int_equal(eddy_sketch_merge(part[2], part[3]), EDDY_OK);
            assert_int_equal(eddy_sketch_merge(part[4], part[0]), EDDY_OK);
            assert_int_equal(eddy_sketch_merge(part[2], part[4]), EDDY_OK);
            assert_same_bytes_opt(sorted_order, part[2], true);
            for (int p = 0; p < PARTS; p++)
                eddy_sketch_destroy(part[p]);
            eddy_sketch_destroy(merged);
            eddy_sketch_destroy(shuffled);
        }
        /* Round trip keeps it, flag included. */
        size_t len;
        uint8_t *buf = bytes_of(sorted_order, &len);
        eddy_sketch_t *back = eddy_sketch_new();
        assert_int_equal(eddy_sketch_deserialize(back, buf, len), EDDY_OK);
        assert_same_bytes(sorted_order, back);
        check_spread(back, &sp, "spread, round trip");
        print_message("  %d buckets (%s): collapsed %d, %zu values folded, %zu bytes serialized, "
                      "%zu held\n",
                      cases[c].m, cases[c].sign > 0 ? "positive" : "negative",
                      eddy_sketch_collapsed(back), sp.below, len, eddy_sketch_memory(back));
        /* Once collapsed, a value below the kept buckets joins the lowest: the
         * flag stays, nothing else changes. */
        if (sp.below) {
            assert_int_equal(eddy_sketch_add(back, cases[c].sign > 0 ? 1e-6 : -1e300), EDDY_OK);
            assert_true(eddy_sketch_collapsed(back));
            sp.v[sp.n++] = cases[c].sign > 0 ? 1e-6 : -1e300;
            sp.below++;
            check_spread(back, &sp, "spread + a lower value");
        }
        free(buf);
        eddy_sketch_destroy(back);
        eddy_sketch_destroy(sorted_order);
        free(sp.v);
    }
}

/* An attacker's values across every bucket there is, both signs and zero, in
 * several orders: the sketch stays under its memory bound, keeps the top 2047
 * buckets exact, flags the rest, and ends the same whatever the order. */
static void test_memory_bound(void **state)
{
    const int32_t lo = -1036, hi = 35488; /* bucket indices of 1e-9 and of DBL_MAX */
    const double ln_gamma = log((1 + ALPHA) / (1 - ALPHA));
    size_t n = 2 * (size_t)(hi - lo + 1) + 1;
    double *v = malloc(n * sizeof(double));
    size_t k = 0;
    for (int32_t i = lo; i <= hi; i++) {
        double mag = i == hi ? DBL_MAX : exp(((double)i - 0.5) * ln_gamma);
        v[k++] = mag;
        v[k++] = -mag;
    }
    v[k++] = 0.0;
    assert_int_equal(k, n);
    double *sorted = malloc(n * sizeof(double));
    memcpy(sorted, v, n * sizeof(double));
    qsort(sorted, n, sizeof(double), cmp_double);

    rng_t r = {99};
    eddy_sketch_t *first = NULL;
    for (int order = 0; order < 4; order++) {
        if (order == 1)
            memcpy(v, sorted, n * sizeof(double));
        if (order == 2)
            for (size_t i = 0; i < n; i++)
                v[i] = sorted[n - 1 - i];
        if (order == 3)
            shuffle(v, n, &r);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
        struct mallinfo2 before = mallinfo2();
#endif
        eddy_sketch_t *sketch = eddy_sketch_new();
        size_t peak = 0;
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(eddy_sketch_add(sketch, v[i]), EDDY_OK);
            size_t held = eddy_sketch_memory(sketch);
            peak = held > peak ? held : peak;
        }
        assert_true(peak <= EDDY_SKETCH_MAX_MEMORY);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
        /* What the allocator handed out: chunk overhead and the small blocks
         * realloc freed, which glibc's per-thread cache still counts as in use. */
        struct mallinfo2 after = mallinfo2();
        if (after.uordblks - before.uordblks > EDDY_SKETCH_MAX_MEMORY + 2048)
            fail_msg("order %d: %zu bytes allocated", order, after.uordblks - before.uordblks);
#endif
        assert_true(eddy_sketch_collapsed(sketch));
        assert_int_equal(eddy_sketch_count(sketch), n);
        /* Each value has a bucket of its own: the top N - 1 are exact. */
        const size_t below = n - (EDDY_SKETCH_MAX_BUCKETS - 1);
        for (int i = 0; i <= 1000; i++) {
            double q = 1.0 - i / 100000.0; /* the upper tail */
            size_t rank = (size_t)floor(q * (double)(n - 1));
            assert_int_equal(eddy_sketch_quantile_degraded(sketch, q),
                             rank > 0 && rank < n - 1 && rank < below);
            if (rank >= below)
                check_one(eddy_sketch_quantile(sketch, q), sorted[rank], q, "attacked");
        }
        assert_true(eddy_sketch_quantile_degraded(sketch, 0.5));
        assert_true(eddy_sketch_quantile(sketch, 0) == -DBL_MAX);
        assert_true(eddy_sketch_quantile(sketch, 1) == DBL_MAX);
        if (!first) {
            first = sketch;
            print_message("  every bucket (%zu values): %zu bytes held at most, %zu serialized\n",
                          n, peak, eddy_sketch_serialized_size(sketch));
        } else {
            assert_same_bytes_opt(first, sketch, true);
            eddy_sketch_destroy(sketch);
        }
    }
    eddy_sketch_destroy(first);
    free(sorted);
    free(v);
}

/* The committed files were written by the version 1 code from values this test
 * makes again; read now, they give the same quantiles (the version 2 sketch of
 * the same values, byte for byte, when they had not collapsed), and what a
 * version 1 collapse lost is reported as degraded. */
static uint8_t *read_v1(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/unit/data/sketch-v1/%s.bin", EDDY_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    uint8_t *buf = malloc(8192);
    *len = fread(buf, 1, 8192, f);
    fclose(f);
    assert_true(*len > 0 && *len < 8192);
    assert_int_equal(buf[0], 1);
    return buf;
}

static eddy_sketch_t *from_v1(const char *name)
{
    size_t len;
    uint8_t *buf = read_v1(name, &len);
    eddy_sketch_t *sketch = eddy_sketch_new();
    assert_int_equal(eddy_sketch_deserialize(sketch, buf, len), EDDY_OK);
    /* Every truncation is refused; a bit flip is refused or read canonically. */
    int accepted = 0;
    for (size_t cut = 0; cut < len; cut++)
        check_decode(buf, cut, &accepted);
    assert_int_equal(accepted, 0);
    for (size_t i = 0; i < len && i < 300; i++)
        for (int b = 0; b < 8; b++) {
            buf[i] ^= (uint8_t)(1u << b);
            check_decode(buf, len, &accepted);
            buf[i] ^= (uint8_t)(1u << b);
        }
    free(buf);
    return sketch;
}

static void test_version1(void **state)
{
    eddy_sketch_t *empty = from_v1("empty");
    assert_int_equal(eddy_sketch_count(empty), 0);
    eddy_sketch_destroy(empty);

    /* Not collapsed: the very sketch the values give now. */
    const char *names[] = {"latency", "mixed"};
    gen_fn *gens[] = {gen_latency, gen_zeros};
    for (int g = 0; g < 2; g++) {
        rng_t r = {21 + (uint64_t)g};
        double v[1000];
        for (int i = 0; i < 1000; i++)
            v[i] = gens[g](&r);
        eddy_sketch_t *old = from_v1(names[g]), *now = sketch_of(v, 1000);
        assert_same_bytes(old, now);
        check_quantiles(old, v, 1000, names[g]);
        assert_nothing_degraded(old);
        eddy_sketch_destroy(old);
        eddy_sketch_destroy(now);
    }

    /* 100 latencies and 1e308: version 1 folded the latencies into the lowest of
     * the 2048 buckets below 1e308's. Every quantile but the max is degraded,
     * and stays so when more values are merged in. */
    double v[102];
    for (int i = 0; i < 100; i++)
        v[i] = 10.0 + (double)((i * 37) % 1000) / 100.0;
    v[100] = 1e308;
    eddy_sketch_t *old = from_v1("outlier");
    assert_true(eddy_sketch_collapsed(old));
    assert_int_equal(eddy_sketch_count(old), 101);
    for (int i = 1; i < 100; i++)
        assert_true(eddy_sketch_quantile_degraded(old, i / 100.0));
    assert_false(eddy_sketch_quantile_degraded(old, 1.0));
    assert_true(eddy_sketch_quantile(old, 1.0) == 1e308);
    assert_true(eddy_sketch_quantile(old, 0.0) == 10.0);
    eddy_sketch_t *more = sketch_of(v, 100);
    assert_int_equal(eddy_sketch_merge(more, old), EDDY_OK);
    assert_true(eddy_sketch_collapsed(more));
    assert_true(eddy_sketch_quantile_degraded(more, 0.5));
    assert_int_equal(eddy_sketch_merge(old, more), EDDY_OK); /* and the other way round */
    assert_true(eddy_sketch_quantile_degraded(old, 0.5));
    eddy_sketch_destroy(more);
    eddy_sketch_destroy(old);

    /* The same negated: version 1 folded -1e308 alone into its lowest bucket,
     * the latencies stayed exact, and so they are read. */
    for (int i = 0; i < 101; i++)
        v[i] = -v[i];
    old = from_v1("negative-outlier");
    assert_true(eddy_sketch_collapsed(old));
    assert_nothing_degraded(old);
    check_quantiles(old, v, 101, "negative outlier, version 1");

    /* The extremes both signs of which version 1 collapsed: everything below the
     * lowest positive bucket it kept (all but 1e300 and DBL_MAX) is folded. */
    eddy_sketch_destroy(old);
    old = from_v1("extremes");
    assert_true(eddy_sketch_collapsed(old));
    assert_int_equal(eddy_sketch_count(old), 24);
    for (int rank = 1; rank < 23; rank++)
        assert_int_equal(eddy_sketch_quantile_degraded(old, rank / 23.0), rank < 22);
    check_one(eddy_sketch_quantile(old, 22 / 23.0), 1e300, 22 / 23.0, "extremes, version 1");
    assert_true(eddy_sketch_quantile(old, 0) == -DBL_MAX);
    eddy_sketch_destroy(old);
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

    /* An outlier first, then latencies: once the window moved to them, nothing
     * allocates, outliers of both signs included. */
    sketch = eddy_sketch_new();
    assert_int_equal(eddy_sketch_add(sketch, 1e308), EDDY_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(eddy_sketch_add(sketch, gen_latency(&r)), EDDY_OK);
    assert_int_equal(eddy_sketch_add(sketch, 1.0), EDDY_OK); /* the range used below */
    assert_int_equal(eddy_sketch_add(sketch, 160.0), EDDY_OK);
    assert_int_equal(eddy_sketch_add(sketch, -1e308), EDDY_OK);
    assert_int_equal(eddy_sketch_add(sketch, 1e-300), EDDY_OK);
    before = mallinfo2();
    for (int i = 0; i < 200000; i++) {
        double x = gen_latency(&r);
        assert_int_equal(eddy_sketch_add(sketch, x < 1 || x > 160 ? 80 : x), EDDY_OK);
        if (i % 1000 == 0) {
            assert_int_equal(eddy_sketch_add(sketch, 1e308), EDDY_OK);
            assert_int_equal(eddy_sketch_add(sketch, -1e308), EDDY_OK);
        }
    }
    after = mallinfo2();
    assert_int_equal(before.uordblks, after.uordblks);
    eddy_sketch_destroy(sketch);

    /* An attacker's values across the whole range: once the arrays reached
     * their bound, sending them all again in another order allocates nothing. */
    enum { SPREAD = 20000 };
    double *v = malloc(SPREAD * sizeof(double));
    for (size_t i = 0; i < SPREAD; i++) {
        double x = exp(log(1e-9) + (log(1e308) - log(1e-9)) * unit(&r));
        v[i] = i % 2 ? x : -x;
    }
    sketch = sketch_of(v, SPREAD);
    shuffle(v, SPREAD, &r);
    for (size_t i = 0; i < SPREAD; i++)
        assert_int_equal(eddy_sketch_add(sketch, v[i]), EDDY_OK);
    shuffle(v, SPREAD, &r);
    before = mallinfo2();
    for (size_t i = 0; i < SPREAD; i++)
        assert_int_equal(eddy_sketch_add(sketch, v[i]), EDDY_OK);
    after = mallinfo2();
    assert_int_equal(before.uordblks, after.uordblks);
    eddy_sketch_destroy(sketch);
    free(v);
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
        cmocka_unit_test(test_outliers),        cmocka_unit_test(test_collapse_bound),
        cmocka_unit_test(test_memory_bound),    cmocka_unit_test(test_version1),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    print_message("worst relative error over all checks: %.5f%% (bound %.2f%%)\n", 100 * worst_seen,
                  100 * ALPHA);
    return failed;
}
