/*
 * test_hll.c — xxHash64 and HyperLogLog. The hash matches the published vectors
 * and the reference implementation on every code path (13 lengths up to 200, two
 * seeds; unaligned input). Distinct counts from 0 to 10^6 lie within 3 standard
 * errors (0.81% each); the sparse form is exact but for a collision or two of
 * 25-bit indices (exact to 10, within 0.2% to 2000). Merging any split equals the
 * HLL of the union (same bytes), across sparse and dense; sparse serialization
 * stays small; malformed input is rejected or decodes to a canonical HLL.
 */
#include "test_support.h"

#include "topology/hash.h"
#include "topology/hll.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STD_ERR (1.04 / 128.0) /* 1.04 / sqrt(2^14) */

static void test_hash_vectors(void **state)
{
    /* Published by the xxHash project. */
    assert_true(eddy_hash64("", 0, 0) == 0xEF46DB3751D8E999ULL);
    assert_true(eddy_hash64(NULL, 0, 0) == 0xEF46DB3751D8E999ULL);
    assert_true(eddy_hash64("a", 1, 0) == 0xD24EC4F1A98C6E5BULL);
    assert_true(eddy_hash64("abc", 3, 0) == 0x44BC2CF5AD770999ULL);

    /* Computed with the reference implementation (libxxhash 0.8.1) over the
     * bytes (i * 131 + 7) & 0xff: every tail length and the 32-byte stripes. */
    static const struct {
        size_t len;
        uint64_t seed0, seed1; /* seeds 0 and 0x1234567890ABCDEF */
    } vec[] = {
        {4, 0xFA212AE44B3BB23DULL, 0xD668EF04E6CAFBA7ULL},
        {5, 0xD339DCC9AC8E6776ULL, 0xB9F4E12D55D79322ULL},
        {8, 0x994B676B71CE94DDULL, 0xB4A129E28EAC8BD4ULL},
        {12, 0xB92F588CE720786EULL, 0xC90C1B29AD04A8F7ULL},
        {15, 0x09E6451ED2FF8B1DULL, 0x34E68A4A8C5CE071ULL},
        {16, 0x94AD0095E72B24D5ULL, 0xAE256E82C354B2C4ULL},
        {31, 0x6711D55E306B5D8FULL, 0x7BC9DD904D44715CULL},
        {33, 0x09F85EEB4E1CBE9FULL, 0x5EF95D8A8B8CED34ULL},
        {63, 0xB7C9968C066CB6A5ULL, 0x8704186D213DCF9BULL},
        {64, 0x50D4159A0411632EULL, 0x2B33088BB23FF9F5ULL},
        {65, 0xD277176BFF863EFCULL, 0xCA53F19FC629EF1BULL},
        {127, 0x54CF771B5423F6A7ULL, 0x973AF0517F9A0C95ULL},
        {200, 0x3B8CC7EAA63F107EULL, 0x6D626A4E67CBEBBCULL},
    };
    uint8_t buf[201];
    for (int i = 0; i < 200; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        assert_true(eddy_hash64(buf, vec[i].len, 0) == vec[i].seed0);
        assert_true(eddy_hash64(buf, vec[i].len, 0x1234567890ABCDEFULL) == vec[i].seed1);
    }
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_true(eddy_hash64(fox, strlen(fox), 0) == 0x0B242D361FDA71BCULL);
    assert_true(eddy_hash64("0123456789abcdef0123456789abcdef", 32, 0) == 0x642A94958E71E6C5ULL);

    /* Unaligned input hashes like aligned input. */
    uint8_t shifted[201];
    memcpy(shifted + 1, buf, 200);
    for (size_t len = 0; len <= 200; len++)
        assert_true(eddy_hash64(shifted + 1, len, 7) == eddy_hash64(buf, len, 7));
}

/* Adds the values from..to-1, each as its 8 little-endian bytes, twice. */
static void add_range(eddy_hll_t *hll, uint64_t from, uint64_t to, uint64_t salt)
{
    for (uint64_t i = from; i < to; i++) {
        uint8_t key[16];
        for (int b = 0; b < 8; b++) {
            key[b] = (uint8_t)(i >> (8 * b));
            key[8 + b] = (uint8_t)(salt >> (8 * b));
        }
        assert_int_equal(eddy_hll_add(hll, key, salt ? 16 : 8), EDDY_OK);
        if (i % 2 == 0) /* duplicates change nothing */
            assert_int_equal(eddy_hll_add(hll, key, salt ? 16 : 8), EDDY_OK);
    }
}

static uint8_t *bytes_of(const eddy_hll_t *hll, size_t *len)
{
    size_t n = eddy_hll_serialized_size(hll);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(eddy_hll_serialize(hll, buf, n), n);
    assert_int_equal(eddy_hll_serialize(hll, buf, n - 1), 0);
    *len = n;
    return buf;
}

static void assert_same_bytes(const eddy_hll_t *a, const eddy_hll_t *b)
{
    size_t la, lb;
    uint8_t *ba = bytes_of(a, &la), *bb = bytes_of(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void test_empty(void **state)
{
    eddy_hll_t *hll = eddy_hll_new();
    assert_non_null(hll);
    assert_true(eddy_hll_is_sparse(hll));
    assert_int_equal(eddy_hll_estimate(hll), 0);
    assert_int_equal(eddy_hll_serialized_size(hll), 3);
    size_t len;
    uint8_t *buf = bytes_of(hll, &len);
    eddy_hll_t *other = eddy_hll_new();
    add_range(other, 0, 10, 0);
    assert_int_equal(eddy_hll_deserialize(other, buf, len), EDDY_OK);
    assert_int_equal(eddy_hll_estimate(other), 0);
    assert_int_equal(eddy_hll_merge(hll, other), EDDY_OK);
    assert_int_equal(eddy_hll_estimate(hll), 0);
    free(buf);
    eddy_hll_destroy(other);
    eddy_hll_destroy(hll);
    eddy_hll_destroy(NULL);
}

static void test_add_is_hash_of_bytes(void **state)
{
    eddy_hll_t *a = eddy_hll_new(), *b = eddy_hll_new();
    const char *words[] = {"GET /api/orders", "", "user-17", "eu-west-1"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(eddy_hll_add(a, words[i], strlen(words[i])), EDDY_OK);
        assert_int_equal(
            eddy_hll_add_hash(b, eddy_hash64(words[i], strlen(words[i]), EDDY_HLL_SEED)), EDDY_OK);
    }
    assert_same_bytes(a, b);
    assert_int_equal(eddy_hll_estimate(a), 4);
    eddy_hll_destroy(a);
    eddy_hll_destroy(b);
}

typedef struct worst_s {
    uint64_t n;   /* cardinality */
    double worst; /* largest |relative error| over the trials */
    double mean;  /* mean relative error (bias) */
} worst_t;

static worst_t run_cardinality(uint64_t n, int trials, double bound)
{
    worst_t w = {n, 0, 0};
    for (int t = 0; t < trials; t++) {
        eddy_hll_t *hll = eddy_hll_new();
        add_range(hll, 0, n, (uint64_t)t);
        double est = (double)eddy_hll_estimate(hll);
        double err = n ? (est - (double)n) / (double)n : est;
        if (fabs(err) > bound)
            fail_msg("n=%llu trial %d: estimate %.0f, relative error %.4f%% > %.4f%%",
                     (unsigned long long)n, t, est, 100 * err, 100 * bound);
        w.worst = fabs(err) > w.worst ? fabs(err) : w.worst;
        w.mean += err / trials;
        if (n <= EDDY_HLL_SPARSE_MAX)
            assert_true(eddy_hll_is_sparse(hll));
        eddy_hll_destroy(hll);
    }
    print_message("  n=%-8llu %3d trials: worst %.4f%%, mean %+.4f%% (bound %.4f%%)\n",
                  (unsigned long long)n, trials, 100 * w.worst, 100 * w.mean, 100 * bound);
    return w;
}

static void test_cardinalities(void **state)
{
    /* Sparse: linear counting over 2^25 registers, exact but for collisions. */
    assert_true(run_cardinality(0, 1, 0).worst == 0);
    assert_true(run_cardinality(1, 20, 0).worst == 0);
    assert_true(run_cardinality(10, 20, 0).worst == 0);
    run_cardinality(100, 20, 0.01);   /* at most one collision */
    run_cardinality(1000, 20, 0.002); /* at most two */
    run_cardinality(2000, 10, 0.002);
    /* Dense: 3 standard errors for any single HLL; the mean over trials shows
     * no bias beyond 3 standard errors of the mean. */
    static const struct {
        uint64_t n;
        int trials;
    } dense[] = {{3000, 20}, {10000, 20}, {30000, 10}, {100000, 5}, {1000000, 1}};
    for (size_t i = 0; i < sizeof(dense) / sizeof(dense[0]); i++) {
        worst_t w = run_cardinality(dense[i].n, dense[i].trials, 3 * STD_ERR);
        assert_true(fabs(w.mean) <= 3 * STD_ERR / sqrt(dense[i].trials) + 1e-12);
    }
}

static void test_merge_is_union(void **state)
{
    static const struct {
        uint64_t a_from, a_to, b_from, b_to;
        const char *what;
    } cases[] = {
        {0, 500, 300, 900, "sparse + sparse -> sparse"},
        {0, 1500, 1000, 2600, "sparse + sparse -> dense"},
        {0, 50000, 40000, 100000, "dense + dense"},
        {0, 20000, 5, 700, "dense + sparse"},
        {0, 700, 5, 20000, "sparse + dense"},
        {0, 0, 0, 3000, "empty + dense"},
        {0, 3000, 0, 0, "dense + empty"},
        {0, 2048, 2048, 2049, "sparse at the limit + one more"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        eddy_hll_t *a = eddy_hll_new(), *b = eddy_hll_new(), *u = eddy_hll_new();
        add_range(a, cases[c].a_from, cases[c].a_to, 0);
        add_range(b, cases[c].b_from, cases[c].b_to, 0);
        uint64_t lo = cases[c].a_from < cases[c].b_from ? cases[c].a_from : cases[c].b_from;
        uint64_t hi = cases[c].a_to > cases[c].b_to ? cases[c].a_to : cases[c].b_to;
        add_range(u, lo, hi, 0);
        assert_int_equal(eddy_hll_merge(a, b), EDDY_OK);
        assert_true(eddy_hll_is_sparse(a) == eddy_hll_is_sparse(u));
        assert_int_equal(eddy_hll_estimate(a), eddy_hll_estimate(u));
        assert_same_bytes(a, u);

        /* Through the serialized form, into the other side. */
        eddy_hll_t *a2 = eddy_hll_new();
        add_range(a2, cases[c].a_from, cases[c].a_to, 0);
        size_t len;
        uint8_t *buf = bytes_of(a2, &len);
        assert_int_equal(eddy_hll_merge_serialized(b, buf, len), EDDY_OK);
        assert_same_bytes(b, u);
        print_message("  %-30s union %llu: estimate %llu\n", cases[c].what,
                      (unsigned long long)(hi - lo), (unsigned long long)eddy_hll_estimate(a));
        free(buf);
        eddy_hll_destroy(a2);
        eddy_hll_destroy(a);
        eddy_hll_destroy(b);
        eddy_hll_destroy(u);
    }

    /* A union with itself is itself, sparse or dense. */
    for (uint64_t n = 100; n <= 10000; n *= 100) {
        eddy_hll_t *h = eddy_hll_new(), *copy = eddy_hll_new();
        add_range(h, 0, n, 0);
        add_range(copy, 0, n, 0);
        assert_int_equal(eddy_hll_merge(h, h), EDDY_OK);
        assert_int_equal(eddy_hll_merge(h, copy), EDDY_OK);
        assert_same_bytes(h, copy);
        eddy_hll_destroy(h);
        eddy_hll_destroy(copy);
    }

    /* Many small partitions (tasks) merged into one: the same as one HLL. */
    eddy_hll_t *all = eddy_hll_new(), *merged = eddy_hll_new();
    add_range(all, 0, 6000, 0);
    for (uint64_t p = 0; p < 16; p++) {
        eddy_hll_t *part = eddy_hll_new();
        for (uint64_t i = p; i < 6000; i += 16)
            add_range(part, i, i + 1, 0);
        assert_true(eddy_hll_is_sparse(part));
        assert_int_equal(eddy_hll_merge(merged, part), EDDY_OK);
        eddy_hll_destroy(part);
    }
    assert_same_bytes(all, merged);
    eddy_hll_destroy(all);
    eddy_hll_destroy(merged);
}

/* The sparse form turns dense past EDDY_HLL_SPARSE_MAX indices, and the dense
 * registers it makes are exactly those that adding every hash densely gives:
 * one HLL fed in order (mostly dense adds), one fed in reverse, and two sparse
 * halves merged (all through conversion) end up with the same bytes. */
static void test_sparse_to_dense(void **state)
{
    enum { N = 5000 };
    eddy_hll_t *fwd = eddy_hll_new(), *rev = eddy_hll_new();
    eddy_hll_t *lo = eddy_hll_new(), *hi = eddy_hll_new();
    uint64_t switched_at = 0;
    for (uint64_t i = 0; i < N; i++) {
        add_range(fwd, i, i + 1, 0);
        if (!switched_at && !eddy_hll_is_sparse(fwd))
            switched_at = i + 1;
        add_range(rev, N - 1 - i, N - i, 0);
    }
    /* 25-bit indices rarely collide: it switches right after the limit. */
    assert_true(switched_at > EDDY_HLL_SPARSE_MAX && switched_at <= EDDY_HLL_SPARSE_MAX + 5);
    add_range(lo, 0, 2000, 0);
    add_range(hi, 2000, N, 0);
    assert_true(eddy_hll_is_sparse(lo));
    assert_false(eddy_hll_is_sparse(hi));
    eddy_hll_t *lo2 = eddy_hll_new(), *mid = eddy_hll_new();
    add_range(lo2, 0, 1900, 0);
    add_range(mid, 1900, 3800, 0);
    assert_true(eddy_hll_is_sparse(lo2) && eddy_hll_is_sparse(mid));
    assert_int_equal(eddy_hll_merge(lo2, mid), EDDY_OK); /* 3800 > limit: converts */
    assert_false(eddy_hll_is_sparse(lo2));
    add_range(lo2, 3800, N, 0);
    assert_int_equal(eddy_hll_merge(lo, hi), EDDY_OK);
    assert_same_bytes(fwd, rev);
    assert_same_bytes(fwd, lo);
    assert_same_bytes(fwd, lo2);
    uint64_t est = eddy_hll_estimate(fwd);
    print_message("  turned dense after %llu values; %d values estimated %llu\n",
                  (unsigned long long)switched_at, N, (unsigned long long)est);
    assert_true(fabs((double)est - N) <= 3 * STD_ERR * N);

    /* reset goes back to sparse and behaves like a new HLL. */
    eddy_hll_reset(fwd);
    assert_true(eddy_hll_is_sparse(fwd));
    assert_int_equal(eddy_hll_estimate(fwd), 0);
    add_range(fwd, 0, 100, 0);
    eddy_hll_t *fresh = eddy_hll_new();
    add_range(fresh, 0, 100, 0);
    assert_same_bytes(fwd, fresh);
    eddy_hll_destroy(fresh);
    eddy_hll_destroy(lo2);
    eddy_hll_destroy(mid);
    eddy_hll_destroy(fwd);
    eddy_hll_destroy(rev);
    eddy_hll_destroy(lo);
    eddy_hll_destroy(hi);
}

static void test_serialized_sizes(void **state)
{
    static const struct {
        uint64_t n;
        size_t max_bytes;
    } sizes[] = {{1, 8}, {10, 50}, {100, 450}, {1000, 4000}, {2000, 7000}, {3000, 12290}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        eddy_hll_t *hll = eddy_hll_new();
        add_range(hll, 0, sizes[i].n, 0);
        size_t len;
        uint8_t *buf = bytes_of(hll, &len);
        print_message("  %llu distinct: %zu bytes (%s)\n", (unsigned long long)sizes[i].n, len,
                      eddy_hll_is_sparse(hll) ? "sparse" : "dense");
        assert_true(len <= sizes[i].max_bytes);
        eddy_hll_t *back = eddy_hll_new();
        assert_int_equal(eddy_hll_deserialize(back, buf, len), EDDY_OK);
        assert_same_bytes(hll, back);
        assert_int_equal(eddy_hll_estimate(back), eddy_hll_estimate(hll));
        assert_true(eddy_hll_is_sparse(back) == eddy_hll_is_sparse(hll));
        /* A deserialized HLL keeps counting. */
        add_range(back, 0, sizes[i].n + 10, 0);
        add_range(hll, sizes[i].n, sizes[i].n + 10, 0);
        assert_same_bytes(hll, back);
        free(buf);
        eddy_hll_destroy(back);
        eddy_hll_destroy(hll);
    }
    eddy_hll_t *dense = eddy_hll_new();
    add_range(dense, 0, 100000, 0);
    assert_int_equal(eddy_hll_serialized_size(dense), 2 + 16384 / 4 * 3);
    eddy_hll_destroy(dense);
}

/* Decodes buf into an HLL holding 5 values: either it is rejected and the HLL
 * untouched, or accepted and re-encodes to exactly buf. */
static void check_decode(const uint8_t *buf, size_t len, int *accepted)
{
    eddy_hll_t *hll = eddy_hll_new();
    add_range(hll, 0, 5, 0);
    eddy_err_t err = eddy_hll_deserialize(hll, buf, len);
    if (err) {
        assert_int_equal(err, EDDY_ERR_INVALID);
        assert_int_equal(eddy_hll_estimate(hll), 5);
        assert_int_equal(eddy_hll_merge_serialized(hll, buf, len), EDDY_ERR_INVALID);
        assert_int_equal(eddy_hll_estimate(hll), 5);
    } else {
        (*accepted)++;
        size_t n = eddy_hll_serialized_size(hll);
        assert_int_equal(n, len);
        uint8_t *again = malloc(n);
        assert_int_equal(eddy_hll_serialize(hll, again, n), n);
        assert_memory_equal(again, buf, n);
        free(again);
        (void)eddy_hll_estimate(hll);
        add_range(hll, 0, 10, 0);
    }
    eddy_hll_destroy(hll);
}

static void check_malformed_of(const eddy_hll_t *hll, int flip_stride)
{
    size_t len;
    uint8_t *buf = bytes_of(hll, &len);
    int accepted = 0;
    for (size_t cut = 0; cut<len; cut += len> 1000 ? 97 : 1)
        check_decode(buf, cut, &accepted);
    check_decode(buf, len - 1, &accepted);
    assert_int_equal(accepted, 0);

    uint8_t *mut = malloc(len + 1);
    for (size_t i = 0; i < len; i += (size_t)flip_stride) {
        for (int b = 0; b < 8; b++) {
            memcpy(mut, buf, len);
            mut[i] ^= (uint8_t)(1u << b);
            check_decode(mut, len, &accepted);
        }
    }
    memcpy(mut, buf, len);
    mut[len] = 0;
    accepted = 0;
    check_decode(mut, len + 1, &accepted);
    assert_int_equal(accepted, 0);
    free(mut);
    free(buf);
}

static void test_malformed_input(void **state)
{
    eddy_hll_t *sparse = eddy_hll_new(), *dense = eddy_hll_new();
    add_range(sparse, 0, 300, 0);
    add_range(dense, 0, 50000, 0);
    check_malformed_of(sparse, 1);
    check_malformed_of(dense, 61);
    assert_int_equal(eddy_hll_deserialize(sparse, NULL, 0), EDDY_ERR_INVALID);

    /* Hand-made: bad version, unknown form, rank 0, rank 41, index not
     * ascending, index repeated, more entries than the limit, non-minimal
     * varint, a dense register of 52. */
    const uint8_t bad[][12] = {
        {2, 0, 0},
        {1, 2, 0},
        {1, 0, 1, 0x40},             /* entry index 1, rank 0 */
        {1, 0, 1, 0x69},             /* rank 41 */
        {1, 0, 2, 0x81, 0x01, 0x01}, /* index 2 rank 1, then delta 1: index 2 again */
        {1, 0, 2, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10}, /* delta 2^32: index past 2^25 */
        {1, 0, 0x81, 0x10},                            /* n = 2049 */
        {1, 0, 0x80, 0x00},                            /* non-minimal n */
        {1, 0, 1, 0x81, 0x00},                         /* non-minimal entry */
    };
    const size_t bad_len[] = {3, 3, 4, 4, 6, 9, 4, 4, 5};
    for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
        int accepted = 0;
        check_decode(bad[i], bad_len[i], &accepted);
        assert_int_equal(accepted, 0);
    }
    size_t len;
    uint8_t *buf = bytes_of(dense, &len);
    buf[2] = (buf[2] & 0xc0) | 52; /* register 0 */
    int accepted = 0;
    check_decode(buf, len, &accepted);
    assert_int_equal(accepted, 0);
    buf[2] = (buf[2] & 0xc0) | 51;
    check_decode(buf, len, &accepted);
    assert_int_equal(accepted, 1);
    free(buf);

    /* Random garbage, and garbage behind a plausible header. */
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    uint8_t junk[80];
    for (int t = 0; t < 20000; t++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = (s >> 33) % sizeof(junk);
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            junk[i] = (uint8_t)(s >> 56);
        }
        if (t % 2 && n >= 3) {
            junk[0] = 1;
            junk[1] = 0;
            junk[2] = (uint8_t)(n / 4);
        }
        check_decode(junk, n, &accepted);
    }
    eddy_hll_destroy(sparse);
    eddy_hll_destroy(dense);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),         cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_is_hash_of_bytes), cmocka_unit_test(test_cardinalities),
        cmocka_unit_test(test_merge_is_union),       cmocka_unit_test(test_sparse_to_dense),
        cmocka_unit_test(test_serialized_sizes),     cmocka_unit_test(test_malformed_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
