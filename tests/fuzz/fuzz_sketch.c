/*
 * fuzz_sketch.c — libFuzzer target: the readers of serialized states that come
 * from outside the process (changelog records, RocksDB values, peers' partials):
 * eddy_sketch_deserialize / eddy_sketch_merge_serialized and
 * eddy_agg_deserialize. Every input must be refused with the sketch untouched,
 * or read into a sketch that re-serializes canonically (the same bytes for
 * version 2; for version 1, bytes that read back to themselves), stays within
 * its memory bound, answers quantiles in [min, max] that never decrease with q,
 * and merges with another sketch the same way in either order (and doubles
 * the same by merging with itself as with its parts again). An
 * aggregate state read renders to JSON, and so does its re-serialization,
 * identically. Any breach aborts.
 *
 * Built when the compiler is clang (target fuzz_sketch, ctest label `fuzz`);
 * docs/development.md says how to run it for longer.
 */
#include "topology/aggregate.h"
#include "topology/sketch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char topology[] =
    "{\"name\":\"f\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\",\"format\":"
    "\"epoch_ms\"}},\"stores\":[{\"name\":\"s\",\"group_by\":[\"k\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"n\",\"op\":\"count\"},"
    "{\"name\":\"e\",\"op\":\"count_if\",\"where\":\"status >= 500\"},"
    "{\"name\":\"r\",\"op\":\"ratio\",\"numerator\":\"total\",\"denominator\":\"n\"},"
    "{\"name\":\"total\",\"op\":\"sum\",\"field\":\"v\"},"
    "{\"name\":\"lo\",\"op\":\"min\",\"field\":\"v\"},"
    "{\"name\":\"hi\",\"op\":\"max\",\"field\":\"v\"},"
    "{\"name\":\"m\",\"op\":\"mean\",\"field\":\"v\"},"
    "{\"name\":\"p50\",\"op\":\"percentile\",\"field\":\"v\",\"q\":0.5},"
    "{\"name\":\"p99\",\"op\":\"percentile\",\"field\":\"v\",\"q\":0.99},"
    "{\"name\":\"u\",\"op\":\"distinct\",\"field\":\"k\"}]}]}";

static eddy_topology_t *topo;
static eddy_agg_layout_t *layout;
static eddy_sketch_t *other; /* a fixed sketch to merge with: both signs, zeros */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_sketch: %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char errstr[256];
    topo = eddy_topology_load_string(topology, "fuzz", errstr, sizeof(errstr));
    layout =
        topo ? eddy_agg_layout_new(eddy_topology_store(topo, 0), errstr, sizeof(errstr)) : NULL;
    other = eddy_sketch_new();
    if (!layout || !other) {
        fprintf(stderr, "fuzz_sketch: %s\n", errstr);
        abort();
    }
    static const double v[] = {-1e6, -3.5, -1e-3, 0.0, 0.0, 1e-12, 2.0, 17.0, 17.5, 1e300};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        eddy_sketch_add(other, v[i]);
    return 0;
}

/* The serialized bytes of a sketch (malloc'd). */
static uint8_t *bytes_of(const eddy_sketch_t *s, size_t *len)
{
    *len = eddy_sketch_serialized_size(s);
    uint8_t *b = malloc(*len);
    CHECK(b && eddy_sketch_serialize(s, b, *len) == *len);
    return b;
}

static bool same_bytes(const eddy_sketch_t *a, const eddy_sketch_t *b)
{
    size_t la, lb;
    uint8_t *ba = bytes_of(a, &la), *bb = bytes_of(b, &lb);
    bool same = la == lb && memcmp(ba, bb, la) == 0;
    free(ba);
    free(bb);
    return same;
}

static eddy_sketch_t *copy_of(const eddy_sketch_t *s)
{
    size_t len;
    uint8_t *b = bytes_of(s, &len);
    eddy_sketch_t *c = eddy_sketch_new();
    CHECK(c && eddy_sketch_deserialize(c, b, len) == EDDY_OK);
    free(b);
    return c;
}

static void check_sketch(const uint8_t *data, size_t size)
{
    eddy_sketch_t *s = eddy_sketch_new();
    CHECK(s && eddy_sketch_add(s, 7.0) == EDDY_OK);
    eddy_err_t err = eddy_sketch_deserialize(s, data, size);
    if (err) {
        CHECK(err == EDDY_ERR_INVALID);
        CHECK(eddy_sketch_count(s) == 1 && eddy_sketch_quantile(s, 0.5) == 7.0);
        CHECK(eddy_sketch_merge_serialized(s, data, size) == EDDY_ERR_INVALID);
        CHECK(eddy_sketch_count(s) == 1);
        eddy_sketch_destroy(s);
        return;
    }
    CHECK(eddy_sketch_memory(s) <= EDDY_SKETCH_MAX_MEMORY);
    size_t len;
    uint8_t *again = bytes_of(s, &len);
    if (data[0] == 1) {
        eddy_sketch_t *v2 = eddy_sketch_new();
        CHECK(v2 && eddy_sketch_deserialize(v2, again, len) == EDDY_OK);
        CHECK(same_bytes(s, v2));
        eddy_sketch_destroy(v2);
    } else {
        CHECK(len == size && memcmp(again, data, size) == 0);
    }
    free(again);

    uint64_t n = eddy_sketch_count(s);
    double prev = -INFINITY;
    for (int i = 0; i <= 100; i++) {
        double q = eddy_sketch_quantile(s, i / 100.0);
        (void)eddy_sketch_quantile_degraded(s, i / 100.0);
        if (n == 0) {
            CHECK(isnan(q));
            continue;
        }
        CHECK(q >= eddy_sketch_min(s) && q <= eddy_sketch_max(s) && q >= prev);
        prev = q;
    }

    /* Merged with another sketch, in either order: the same sketch. */
    eddy_sketch_t *a = copy_of(s), *b = copy_of(other);
    CHECK(eddy_sketch_merge(a, other) == EDDY_OK);
    CHECK(eddy_sketch_merge(b, s) == EDDY_OK);
    CHECK(same_bytes(a, b));
    CHECK(eddy_sketch_count(a) == n + eddy_sketch_count(other));
    CHECK(eddy_sketch_memory(a) <= EDDY_SKETCH_MAX_MEMORY);
    /* Doubled by merging with itself, or by merging both again. */
    CHECK(eddy_sketch_merge_serialized(b, data, size) == EDDY_OK);
    CHECK(eddy_sketch_merge(b, other) == EDDY_OK);
    CHECK(eddy_sketch_merge(a, a) == EDDY_OK);
    CHECK(eddy_sketch_count(a) == eddy_sketch_count(b) &&
          eddy_sketch_collapsed(a) == eddy_sketch_collapsed(b));
    for (int i = 0; i <= 100; i++) {
        double q = i / 100.0;
        CHECK(eddy_sketch_quantile(a, q) == eddy_sketch_quantile(b, q));
        CHECK(eddy_sketch_quantile_degraded(a, q) == eddy_sketch_quantile_degraded(b, q));
    }
    eddy_sketch_destroy(a);
    eddy_sketch_destroy(b);
    eddy_sketch_destroy(s);
}

static char *json_of(const eddy_agg_t *agg)
{
    json_t *obj = json_object();
    eddy_agg_to_json(layout, agg, obj);
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    CHECK(text);
    return text;
}

static void check_agg(const uint8_t *data, size_t size)
{
    eddy_agg_t *agg = eddy_agg_new(layout);
    CHECK(agg);
    if (eddy_agg_deserialize(layout, agg, data, size) == EDDY_OK) {
        char *text = json_of(agg);
        size_t len = eddy_agg_serialized_size(layout, agg);
        uint8_t *again = malloc(len);
        CHECK(again && eddy_agg_serialize(layout, agg, again, len) == len);
        eddy_agg_t *back = eddy_agg_new(layout);
        CHECK(back && eddy_agg_deserialize(layout, back, again, len) == EDDY_OK);
        char *text2 = json_of(back);
        CHECK(strcmp(text, text2) == 0);
        CHECK(eddy_agg_merge(layout, back, agg) == EDDY_OK);
        free(json_of(back));
        free(text);
        free(text2);
        free(again);
        eddy_agg_destroy(back);
    }
    eddy_agg_destroy(agg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_sketch(data, size);
    check_agg(data, size);
    return 0;
}
