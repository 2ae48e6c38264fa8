/*
 * test_topology.c — the topology module through its C interfaces: the builder and
 * what eddy_topology_finish() makes of it (field table, bound references,
 * defaults), the errors of every rule with the JSON path they point at, window
 * starts (tumbling, hopping, negative times, against brute force), durations,
 * count_if predicates (precedence, parentheses, strings, types, error columns)
 * and group keys (number formatting, escaping, missing fields, buffer sizes).
 */
#include "test_support.h"

#include "engine/util.h"
#include "topology/predicate.h"
#include "topology/topology_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static eddy_value_t num(double d)
{
    return (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = d};
}

static eddy_value_t str(const char *s)
{
    return (eddy_value_t){.type = EDDY_VALUE_STRING, .str = s, .len = strlen(s)};
}

static eddy_value_t boolean(bool b)
{
    return (eddy_value_t){.type = EDDY_VALUE_BOOL, .num = b};
}

static const eddy_value_t missing = {.type = EDDY_VALUE_MISSING};
static const eddy_value_t null_value = {.type = EDDY_VALUE_NULL};

/* A topology with one source and timestamp; stores are the test's business. */
static eddy_topology_t *base_topology(void)
{
    char err[256];
    eddy_topology_t *topo = eddy_topology_new("test", err, sizeof(err));
    assert_non_null(topo);
    assert_int_equal(eddy_topology_add_source_topic(topo, "log-events", err, sizeof(err)), 0);
    assert_int_equal(eddy_topology_set_timestamp(topo, "ts", EDDY_TS_EPOCH_MS, err, sizeof(err)),
                     0);
    return topo;
}

/* A store with a 1 min tumbling window and a count. */
static eddy_store_def_t *simple_store(eddy_topology_t *topo, const char *name)
{
    char err[256];
    eddy_store_def_t *store = eddy_topology_add_store(topo, name, err, sizeof(err));
    assert_non_null(store);
    assert_int_equal(eddy_store_def_tumbling(store, 60000, err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_count(store, "count", err, sizeof(err)), 0);
    return store;
}

#define assert_error(call, code, text, path)                                                       \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal((call), (code));                                                          \
        if (!strstr(err, (text)))                                                                  \
            fail_msg("error \"%s\" lacks \"%s\"", err, (text));                                    \
        assert_string_equal(eddy_topology_error_path(topo), (path));                               \
    } while (0)

/* --- builder --------------------------------------------------------------------- */

static void test_builder_builds_and_finishes(void **state)
{
    char err[256];
    eddy_topology_t *topo = base_topology();
    assert_int_equal(eddy_topology_set_description(topo, "what it is for", err, sizeof(err)), 0);

    eddy_store_def_t *stats = eddy_topology_add_store(topo, "endpoint_stats", err, sizeof(err));
    assert_non_null(stats);
    assert_int_equal(eddy_store_def_group_by(stats, "endpoint", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_tumbling(stats, 60000, err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_grace(stats, 30000, err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_retention(stats, 7200000, err, sizeof(err)), 0);
    /* A ratio may name aggregates declared after it. */
    assert_int_equal(
        eddy_store_def_add_ratio(stats, "error_rate", "errors", "count", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_count(stats, "count", err, sizeof(err)), 0);
    assert_int_equal(
        eddy_store_def_add_count_if(stats, "errors", "status >= 500", err, sizeof(err)), 0);
    assert_int_equal(
        eddy_store_def_add_percentile(stats, "p99", "latency_ms", 0.99, err, sizeof(err)), 0);
    assert_int_equal(
        eddy_store_def_add_percentile(stats, "max_q", "latency_ms", 1.0, err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_mean(stats, "mean", "latency_ms", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_sum(stats, "sum", "latency_ms", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_min(stats, "min", "latency_ms", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_max(stats, "max", "latency_ms", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_distinct(stats, "users", "user_id", err, sizeof(err)), 0);
    assert_int_equal(
        eddy_store_def_sink(stats, "endpoint-metrics", EDDY_EMIT_UPDATES, err, sizeof(err)), 0);

    eddy_store_def_t *codes = eddy_topology_add_store(topo, "status_codes", err, sizeof(err));
    assert_non_null(codes);
    assert_int_equal(eddy_store_def_group_by(codes, "status", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_group_by(codes, "method", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_hopping(codes, 300000, 60000, err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_count(codes, "count", err, sizeof(err)), 0);
    assert_int_equal(
        eddy_store_def_add_count_if(codes, "slow", "latency_ms > 1000 or ts < 0", err, sizeof(err)),
        0);

    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK); /* idempotent */

    /* Public accessors. */
    assert_string_equal(eddy_topology_name(topo), "test");
    assert_int_equal(eddy_topology_source_count(topo), 1);
    assert_string_equal(eddy_topology_source_topic(topo, 0), "log-events");
    assert_int_equal(eddy_topology_store_count(topo), 2);
    assert_ptr_equal(eddy_topology_store(topo, 1), codes);
    assert_ptr_equal(eddy_topology_store_by_name(topo, "endpoint_stats"), stats);
    assert_null(eddy_topology_store_by_name(topo, "nope"));
    assert_string_equal(eddy_store_def_name(stats), "endpoint_stats");

    /* The field table: each field once, timestamp first, then in order of use. */
    static const char *const names[] = {"ts",         "endpoint", "status",
                                        "latency_ms", "user_id",  "method"};
    assert_int_equal(eddy_topology_field_count(topo), 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(eddy_topology_field_name(topo, i), names[i]);
        assert_int_equal(eddy_topology_field_index(topo, names[i]), (int)i);
    }
    assert_int_equal(eddy_topology_field_index(topo, "region"), -1);
    assert_int_equal(eddy_topology_timestamp_field(topo), 0);
    assert_int_equal(eddy_topology_timestamp_format(topo), EDDY_TS_EPOCH_MS);
    /* What each must hold: the timestamp a number (epoch_ms); status, a group key
     * compared with numbers, a number; a field of sum/percentile a number; group
     * keys and distinct fields any scalar; all of them required. */
    static const eddy_field_type_t types[] = {EDDY_FIELD_NUMBER, EDDY_FIELD_ANY, EDDY_FIELD_NUMBER,
                                              EDDY_FIELD_NUMBER, EDDY_FIELD_ANY, EDDY_FIELD_ANY};
    for (size_t i = 0; i < 6; i++) {
        const eddy_field_rule_t *r = eddy_topology_field_rule(topo, i);
        assert_int_equal(r->type, types[i]);
        assert_true(r->required);
        assert_false(r->coerce);
        assert_true(isinf(r->min) && r->min < 0 && isinf(r->max) && r->max > 0);
    }
    assert_int_equal(topo->field_uses[0], EDDY_FIELD_USE_TIMESTAMP | EDDY_FIELD_USE_PREDICATE);
    assert_int_equal(topo->field_uses[2], EDDY_FIELD_USE_GROUP_BY | EDDY_FIELD_USE_PREDICATE);
    assert_int_equal(topo->field_uses[3], EDDY_FIELD_USE_NUMERIC | EDDY_FIELD_USE_PREDICATE);
    assert_int_equal(topo->field_uses[4], EDDY_FIELD_USE_DISTINCT);

    /* Stores refer to fields by slot; ratios to aggregates by index. */
    assert_int_equal(stats->n_group, 1);
    assert_int_equal(stats->group_fields[0], 1);
    assert_int_equal(codes->group_fields[0], 2);
    assert_int_equal(codes->group_fields[1], 5);
    assert_int_equal(stats->n_aggregates, 10);
    const eddy_agg_def_t *rate = &stats->aggregates[0];
    assert_int_equal(rate->op, EDDY_AGG_RATIO);
    assert_int_equal(rate->numerator, 2);
    assert_int_equal(rate->denominator, 1);
    assert_int_equal(rate->field, -1);
    assert_int_equal(stats->aggregates[1].op, EDDY_AGG_COUNT);
    assert_int_equal(stats->aggregates[3].op, EDDY_AGG_PERCENTILE);
    assert_true(stats->aggregates[3].q == 0.99);
    assert_int_equal(stats->aggregates[3].field, 3);
    assert_int_equal(stats->aggregates[4].field, 3);
    assert_int_equal(stats->aggregates[9].op, EDDY_AGG_DISTINCT);
    assert_int_equal(stats->aggregates[9].field, 4);
    assert_int_equal(eddy_store_def_aggregate_index(stats, "users"), 9);
    assert_int_equal(eddy_store_def_aggregate_index(stats, "nope"), -1);

    /* Predicates are bound to the field table. */
    eddy_value_t values[6] = {num(0), str("/api/orders"), num(503), num(12), str("u"), str("GET")};
    assert_true(eddy_predicate_eval(stats->aggregates[2].predicate, values));
    values[2] = num(200);
    assert_false(eddy_predicate_eval(stats->aggregates[2].predicate, values));
    assert_false(eddy_predicate_eval(codes->aggregates[1].predicate, values));
    values[0] = num(-5);
    assert_true(eddy_predicate_eval(codes->aggregates[1].predicate, values));

    /* Window specs and sinks. */
    assert_int_equal(stats->window.type, EDDY_WINDOW_TUMBLING);
    assert_int_equal(stats->window.advance_ms, 60000);
    assert_int_equal(stats->window.grace_ms, 30000);
    assert_int_equal(stats->window.retention_ms, 7200000);
    assert_int_equal(codes->window.type, EDDY_WINDOW_HOPPING);
    assert_int_equal(codes->window.size_ms, 300000);
    assert_int_equal(codes->window.advance_ms, 60000);
    assert_int_equal(codes->window.grace_ms, 0);
    assert_int_equal(codes->window.retention_ms, EDDY_RETENTION_DEFAULT_MS);
    assert_string_equal(stats->sink_topic, "endpoint-metrics");
    assert_int_equal(stats->sink_emit, EDDY_EMIT_UPDATES);
    assert_null(codes->sink_topic);

    /* Finished means frozen. */
    assert_error(eddy_store_def_add_count(stats, "more", err, sizeof(err)), EDDY_ERR_STATE,
                 "is finished", "");
    assert_error(eddy_topology_add_source_topic(topo, "other", err, sizeof(err)), EDDY_ERR_STATE,
                 "is finished", "");
    assert_null(eddy_topology_add_store(topo, "late", err, sizeof(err)));
    assert_int_equal(eddy_store_def_grace(codes, 1, err, sizeof(err)), EDDY_ERR_STATE);
    assert_int_equal(eddy_topology_store_count(topo), 2);
    assert_int_equal(stats->n_aggregates, 10);
    eddy_topology_destroy(topo);
    eddy_topology_destroy(NULL);
}

static void test_builder_rejects(void **state)
{
    char err[512];
    assert_null(eddy_topology_new("", err, sizeof(err)));
    assert_non_null(strstr(err, "expected a topology name"));
    assert_null(eddy_topology_new("has space", err, sizeof(err)));

    eddy_topology_t *topo = base_topology();
    assert_error(eddy_topology_add_source_topic(topo, "log-events", err, sizeof(err)),
                 EDDY_ERR_INVALID, "source topic \"log-events\" is listed twice", "source.topic");
    assert_error(eddy_topology_add_source_topic(topo, "bad topic", err, sizeof(err)),
                 EDDY_ERR_INVALID, "expected a Kafka topic name", "source.topic");
    assert_error(eddy_topology_add_source_topic(topo, "..", err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a Kafka topic name", "source.topic");
    assert_error(eddy_topology_set_timestamp(topo, "", EDDY_TS_AUTO, err, sizeof(err)),
                 EDDY_ERR_INVALID, "expected the event-time field", "source.timestamp.field");
    assert_error(eddy_topology_set_timestamp(topo, "t", (eddy_ts_format_t)7, err, sizeof(err)),
                 EDDY_ERR_INVALID, "expected a timestamp format", "source.timestamp.format");

    eddy_store_def_t *s = simple_store(topo, "s0");
    assert_null(eddy_topology_add_store(topo, "s0", err, sizeof(err)));
    assert_non_null(strstr(err, "duplicate store name \"s0\" (already used by stores[0])"));
    assert_string_equal(eddy_topology_error_path(topo), "stores[1].name");
    assert_null(eddy_topology_add_store(topo, "a/b", err, sizeof(err)));
    assert_non_null(strstr(err, "expected a store name of 1 to 64 letters"));
    char long_name[80];
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    assert_null(eddy_topology_add_store(topo, long_name, err, sizeof(err)));

    assert_error(eddy_store_def_group_by(s, "", err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a group_by field", "stores[0].group_by[0]");
    assert_int_equal(eddy_store_def_group_by(s, "a", err, sizeof(err)), 0);
    assert_error(eddy_store_def_group_by(s, "a", err, sizeof(err)), EDDY_ERR_INVALID,
                 "group_by field \"a\" is listed twice", "stores[0].group_by[1]");
    assert_error(eddy_store_def_tumbling(s, 0, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a positive window size of at most 100 years, got 0s",
                 "stores[0].window.size");
    assert_error(eddy_store_def_tumbling(s, -5, err, sizeof(err)), EDDY_ERR_INVALID, "got -5 ms",
                 "stores[0].window.size");
    assert_error(eddy_store_def_tumbling(s, EDDY_DURATION_MAX_MS + 1, err, sizeof(err)),
                 EDDY_ERR_INVALID, "at most 100 years", "stores[0].window.size");
    assert_error(eddy_store_def_hopping(s, 60000, 120000, err, sizeof(err)), EDDY_ERR_INVALID,
                 "the advance (2m) must not exceed the window size (1m)",
                 "stores[0].window.advance");
    assert_error(eddy_store_def_hopping(s, 60000, 0, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a positive advance", "stores[0].window.advance");
    assert_error(eddy_store_def_hopping(s, 86400000, 60000, err, sizeof(err)), EDDY_ERR_INVALID,
                 "puts each event in 1440 windows; at most 64", "stores[0].window.advance");
    assert_error(eddy_store_def_hopping(s, 64500, 1000, err, sizeof(err)), EDDY_ERR_INVALID,
                 "puts each event in 65 windows", "stores[0].window.advance");
    assert_int_equal(eddy_store_def_hopping(s, 64000, 1000, err, sizeof(err)), 0);
    assert_error(eddy_store_def_grace(s, -1, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a non-negative grace period", "stores[0].window.grace");
    assert_int_equal(eddy_store_def_grace(s, 0, err, sizeof(err)), 0);
    assert_error(eddy_store_def_retention(s, 0, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a positive retention", "stores[0].window.retention");

    /* Aggregates: names, fields and op arguments; failures add nothing. */
    assert_error(eddy_store_def_add_count(s, "count", err, sizeof(err)), EDDY_ERR_INVALID,
                 "duplicate aggregate name \"count\" in store \"s0\" (already used by "
                 "aggregates[0])",
                 "stores[0].aggregates[1].name");
    assert_error(eddy_store_def_add_count(s, "start", err, sizeof(err)), EDDY_ERR_INVALID,
                 "\"start\" is reserved", "stores[0].aggregates[1].name");
    assert_error(eddy_store_def_add_percentile(s, "degraded", "l", 0.5, err, sizeof(err)),
                 EDDY_ERR_INVALID, "\"degraded\" is reserved", "stores[0].aggregates[1].name");
    assert_error(eddy_store_def_add_count(s, "a b", err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected an aggregate name", "stores[0].aggregates[1].name");
    assert_error(eddy_store_def_add_sum(s, "sum", "", err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a field", "stores[0].aggregates[1].field");
    assert_error(eddy_store_def_add_percentile(s, "p", "l", 0, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a quantile q in (0, 1] such as 0.99 for P99, got 0",
                 "stores[0].aggregates[1].q");
    assert_error(eddy_store_def_add_percentile(s, "p", "l", 1.5, err, sizeof(err)),
                 EDDY_ERR_INVALID, "got 1.5", "stores[0].aggregates[1].q");
    assert_error(eddy_store_def_add_percentile(s, "p", "l", NAN, err, sizeof(err)),
                 EDDY_ERR_INVALID, "expected a quantile", "stores[0].aggregates[1].q");
    assert_error(eddy_store_def_add_count_if(s, "e", "status >", err, sizeof(err)),
                 EDDY_ERR_INVALID, "column 9: expected a number", "stores[0].aggregates[1].where");
    assert_error(eddy_store_def_add_ratio(s, "r", "", "count", err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected the name of a count, count_if or sum aggregate",
                 "stores[0].aggregates[1].numerator");
    assert_int_equal(s->n_aggregates, 1);
    assert_error(eddy_store_def_sink(s, "", EDDY_EMIT_ON_CLOSE, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a Kafka topic name", "stores[0].sink.topic");
    assert_error(eddy_store_def_sink(s, "out", (eddy_emit_t)9, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected an emit mode", "stores[0].sink.emit");
    assert_null(s->sink_topic);
    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    eddy_topology_destroy(topo);
}

static void test_finish_rejects(void **state)
{
    char err[512];
    eddy_topology_t *topo = eddy_topology_new("t", err, sizeof(err));
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID, "no source topic",
                 "source");
    assert_int_equal(eddy_topology_add_source_topic(topo, "in", err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "no timestamp field", "source.timestamp");
    assert_int_equal(eddy_topology_set_timestamp(topo, "ts", EDDY_TS_AUTO, err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID, "no store",
                 "stores");

    eddy_store_def_t *s = eddy_topology_add_store(topo, "s", err, sizeof(err));
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "store \"s\" has no window", "stores[0].window");
    assert_int_equal(eddy_store_def_tumbling(s, 60000, err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "store \"s\" has no aggregate", "stores[0].aggregates");
    assert_int_equal(eddy_store_def_add_count(s, "count", err, sizeof(err)), 0);

    /* Retention must cover size + grace, whatever the order of the calls. */
    assert_int_equal(eddy_store_def_retention(s, 80000, err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_grace(s, 30000, err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a retention of at least size + grace = 1m + 30s = 1m30s (or windows "
                 "are deleted before they close), got 1m20s",
                 "stores[0].window.retention");
    assert_int_equal(eddy_store_def_retention(s, 90000, err, sizeof(err)), 0);

    /* A store must not feed its own source. */
    assert_int_equal(eddy_store_def_sink(s, "in", EDDY_EMIT_ON_CLOSE, err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "the sink topic \"in\" is also a source topic", "stores[0].sink.topic");
    assert_int_equal(eddy_store_def_sink(s, "out", EDDY_EMIT_ON_CLOSE, err, sizeof(err)), 0);

    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    assert_string_equal(eddy_topology_error_path(topo), "");
    assert_int_equal(s->window.retention_ms, 90000);
    eddy_topology_destroy(topo);

    /* Ratios divide counts, count_ifs and sums of the same store. */
    topo = base_topology();
    s = simple_store(topo, "s");
    assert_int_equal(eddy_store_def_add_mean(s, "mean", "x", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_ratio(s, "r", "count", "mean", err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "a ratio divides count, count_if or sum aggregates, but \"mean\" is a mean",
                 "stores[0].aggregates[2].denominator");
    eddy_topology_destroy(topo);
    topo = base_topology();
    s = simple_store(topo, "s");
    assert_int_equal(eddy_store_def_add_ratio(s, "r", "cuont", "count", err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "no aggregate named \"cuont\" in store \"s\"; did you mean \"count\"?",
                 "stores[0].aggregates[1].numerator");
    eddy_topology_destroy(topo);
    topo = base_topology();
    s = simple_store(topo, "s");
    assert_int_equal(eddy_store_def_add_sum(s, "bytes", "size", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_count_if(s, "big", "size > 1000", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_ratio(s, "r1", "big", "count", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_ratio(s, "r2", "bytes", "big", err, sizeof(err)), 0);
    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    assert_int_equal(s->aggregates[4].numerator, 1);
    assert_int_equal(s->aggregates[4].denominator, 2);
    eddy_topology_destroy(topo);
}

static void test_default_retention(void **state)
{
    char err[256];
    eddy_topology_t *topo = base_topology();
    eddy_store_def_t *small = simple_store(topo, "small");
    eddy_store_def_t *big = simple_store(topo, "big");
    assert_int_equal(eddy_store_def_tumbling(big, 2 * 86400000LL, err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_grace(big, 3600000, err, sizeof(err)), 0);
    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    assert_int_equal(small->window.grace_ms, 0);
    assert_int_equal(small->window.retention_ms, 24 * 3600000LL);
    assert_int_equal(big->window.retention_ms, 49 * 3600000LL);
    eddy_topology_destroy(topo);
}

static void test_field_table_limit(void **state)
{
    char err[256], name[16];
    eddy_topology_t *topo = base_topology();
    eddy_store_def_t *s = simple_store(topo, "s");
    for (int i = 0; i < EDDY_MAX_AGGREGATES - 1; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(eddy_store_def_add_sum(s, name, name, err, sizeof(err)), 0);
    }
    assert_int_equal(eddy_store_def_add_sum(s, "one_more", "x", err, sizeof(err)),
                     EDDY_ERR_INVALID);
    assert_non_null(strstr(err, "at most 32 aggregates per store"));
    s = simple_store(topo, "t");
    for (int i = 0; i < EDDY_MAX_AGGREGATES - 1; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        assert_int_equal(eddy_store_def_add_sum(s, name, name, err, sizeof(err)), 0);
    }
    /* 1 + 31 + 31 = 63 fields fit; 1 + 31 + 30 + 3 = 65 below do not. */
    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    eddy_topology_destroy(topo);

    topo = base_topology();
    s = simple_store(topo, "s");
    for (int i = 0; i < EDDY_MAX_AGGREGATES - 1; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(eddy_store_def_add_sum(s, name, name, err, sizeof(err)), 0);
    }
    s = simple_store(topo, "t");
    for (int i = 0; i < EDDY_MAX_AGGREGATES - 2; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        assert_int_equal(eddy_store_def_add_sum(s, name, name, err, sizeof(err)), 0);
    }
    assert_int_equal(
        eddy_store_def_add_count_if(s, "c", "h1 == 1 or h2 == 2 or h3 == 3", err, sizeof(err)), 0);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "more than 64 distinct event fields", "stores[1].aggregates[31].where");
    assert_int_equal(topo->n_fields, 0);
    assert_false(topo->finished);
    eddy_topology_destroy(topo);
}

/* Field declarations and max_future through the C API: what each call refuses,
 * that a failed call changes nothing, and what finish derives. */
static void test_field_declarations(void **state)
{
    char err[512];
    eddy_topology_t *topo = base_topology();
    eddy_store_def_t *s = simple_store(topo, "s");
    assert_int_equal(eddy_store_def_group_by(s, "status", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_max(s, "m", "latency_ms", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_add_count_if(s, "e", "status >= 500", err, sizeof(err)), 0);

    eddy_field_spec_t spec = {.name = "status", .type = EDDY_FIELD_ANY};
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a type: number, integer, string or boolean, got 0",
                 "fields.status.type");
    spec = (eddy_field_spec_t){.name = "", .type = EDDY_FIELD_NUMBER};
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a declared field", "fields");
    spec = (eddy_field_spec_t){.name = "a\"b", .type = EDDY_FIELD_STRING, .coerce = true};
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_INVALID,
                 "it is for fields of type number or integer, not string",
                 "fields[\"a\\\"b\"].coerce");
    spec = (eddy_field_spec_t){
        .name = "latency_ms", .type = EDDY_FIELD_NUMBER, .has_min = true, .min = NAN};
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a finite number, got nan", "fields.latency_ms.min");
    spec.min = 0;
    spec.has_max = true;
    spec.max = INFINITY;
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected a finite number, got inf", "fields.latency_ms.max");
    spec.max = -1;
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_INVALID,
                 "expected max >= min (0), got -1", "fields.latency_ms.max");
    assert_int_equal(topo->n_decls, 0); /* failed calls changed nothing */
    spec.max = 1e7;
    assert_int_equal(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_OK);
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_INVALID,
                 "field \"latency_ms\" is declared twice", "fields.latency_ms");
    spec = (eddy_field_spec_t){.name = "status", .type = EDDY_FIELD_INTEGER, .coerce = true};
    assert_int_equal(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_OK);

    assert_error(eddy_topology_set_max_future(topo, -1, err, sizeof(err)), EDDY_ERR_INVALID,
                 "a non-negative duration of at most 100 years, got -1 ms",
                 "source.timestamp.max_future");
    assert_error(eddy_topology_set_max_future(topo, EDDY_DURATION_MAX_MS + 1, err, sizeof(err)),
                 EDDY_ERR_INVALID, "at most 100 years", "source.timestamp.max_future");
    assert_int_equal(eddy_topology_max_future(topo), -1);
    assert_int_equal(eddy_topology_set_max_future(topo, 0, err, sizeof(err)), EDDY_OK);
    assert_int_equal(eddy_topology_max_future(topo), 0);

    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    const eddy_field_rule_t *r = eddy_topology_field_rule(topo, 1); /* status */
    assert_int_equal(r->type, EDDY_FIELD_INTEGER);
    assert_true(r->required && r->coerce && isinf(r->min) && isinf(r->max));
    r = eddy_topology_field_rule(topo, 2); /* latency_ms */
    assert_int_equal(r->type, EDDY_FIELD_NUMBER);
    assert_true(r->required && !r->coerce && r->min == 0 && r->max == 1e7);
    spec = (eddy_field_spec_t){.name = "region", .type = EDDY_FIELD_STRING};
    assert_error(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_ERR_STATE,
                 "is finished", "");
    assert_error(eddy_topology_set_max_future(topo, 1000, err, sizeof(err)), EDDY_ERR_STATE,
                 "is finished", "");
    eddy_topology_destroy(topo);

    /* A failed finish leaves the topology open: the declaration can be fixed. */
    topo = base_topology();
    s = simple_store(topo, "s");
    assert_int_equal(eddy_store_def_add_sum(s, "sum", "bytes", err, sizeof(err)), 0);
    spec = (eddy_field_spec_t){.name = "bytes", .type = EDDY_FIELD_STRING};
    assert_int_equal(eddy_topology_declare_field(topo, &spec, err, sizeof(err)), EDDY_OK);
    assert_error(eddy_topology_finish(topo, err, sizeof(err)), EDDY_ERR_INVALID,
                 "declared string, but the field is read as a number (by a sum) at "
                 "$.stores[0].aggregates[1].field",
                 "fields.bytes.type");
    assert_false(topo->finished);
    assert_int_equal(topo->n_fields, 0);
    topo->decls[0].type = EDDY_FIELD_INTEGER;
    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    eddy_topology_destroy(topo);
}

/* --- windows and durations --------------------------------------------------------------- */

/* The tumbling window start of ts, computed the long way. */
static int64_t floor_start(int64_t ts, int64_t size)
{
    int64_t r = ts % size;
    return r < 0 ? ts - r - size : ts - r;
}

static void test_window_starts_tumbling(void **state)
{
    eddy_window_spec_t w = {.type = EDDY_WINDOW_TUMBLING, .size_ms = 60000, .advance_ms = 60000};
    const struct {
        int64_t ts, start;
    } cases[] = {
        {0, 0},
        {59999, 0},
        {60000, 60000},
        {1700000012345LL, 1700000000000LL - 1700000000000LL % 60000},
        {-1, -60000},
        {-59999, -60000},
        {-60000, -60000},
        {-60001, -120000},
        {EDDY_EVENT_TIME_ABS_MAX, floor_start(EDDY_EVENT_TIME_ABS_MAX, 60000)},
        {-EDDY_EVENT_TIME_ABS_MAX, floor_start(-EDDY_EVENT_TIME_ABS_MAX, 60000)},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t starts[2] = {-7, -7};
        assert_int_equal(eddy_window_starts(&w, cases[i].ts, starts, 2), 1);
        assert_int_equal(starts[0], cases[i].start);
        assert_int_equal(starts[1], -7);
        assert_true(starts[0] <= cases[i].ts && cases[i].ts < starts[0] + w.size_ms);
        assert_int_equal(starts[0] % 60000, 0);
    }
    assert_int_equal(eddy_window_max_per_event(&w), 1);
}

static void test_window_starts_hopping(void **state)
{
    eddy_window_spec_t w = {.type = EDDY_WINDOW_HOPPING, .size_ms = 300000, .advance_ms = 60000};
    int64_t starts[8];
    assert_int_equal(eddy_window_starts(&w, 130000, starts, 8), 5);
    static const int64_t want[] = {-120000, -60000, 0, 60000, 120000};
    assert_memory_equal(starts, want, sizeof(want));
    assert_int_equal(eddy_window_starts(&w, 0, starts, 8), 5);
    assert_int_equal(starts[0], -240000);
    assert_int_equal(starts[4], 0);
    assert_int_equal(eddy_window_starts(&w, -1, starts, 8), 5);
    assert_int_equal(starts[0], -300000);
    assert_int_equal(starts[4], -60000);
    /* A small cap gets the first starts and the true count. */
    starts[2] = 42;
    assert_int_equal(eddy_window_starts(&w, 130000, starts, 2), 5);
    assert_int_equal(starts[0], -120000);
    assert_int_equal(starts[1], -60000);
    assert_int_equal(starts[2], 42);
    assert_int_equal(eddy_window_starts(&w, 130000, NULL, 0), 5);
    assert_int_equal(eddy_window_max_per_event(&w), 5);

    /* Against brute force, including sizes that are no multiple of the advance. */
    static const int64_t shapes[][2] = {{10, 4}, {10, 5}, {10, 10}, {7, 3}, {6, 1}, {9, 9}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        eddy_window_spec_t h = {
            .type = EDDY_WINDOW_HOPPING, .size_ms = shapes[k][0], .advance_ms = shapes[k][1]};
        for (int64_t ts = -60; ts <= 60; ts++) {
            int64_t expect[16], got[16];
            size_t n = 0;
            for (int64_t s = -100 * h.advance_ms; s <= 200; s += h.advance_ms)
                if (s <= ts && ts < s + h.size_ms)
                    expect[n++] = s;
            assert_int_equal(eddy_window_starts(&h, ts, got, 16), n);
            assert_memory_equal(got, expect, n * sizeof(int64_t));
            assert_true(n <= eddy_window_max_per_event(&h));
        }
    }
}

static void test_durations(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"250ms", 250},
        {"10s", 10000},
        {"1m", 60000},
        {"2h", 7200000},
        {"1d", 86400000},
        {"0s", 0},
        {"0", -1},
        {"1h30m", 5400000},
        {"1m30s", 90000},
        {"1d2h3m4s5ms", 93784005},
        {"36500d", 36500LL * 86400000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -2;
        bool ok = eddy_duration_parse(good[i].text, &ms);
        if (good[i].ms < 0) {
            assert_false(ok);
            continue;
        }
        assert_true(ok);
        assert_int_equal(ms, good[i].ms);
        char back[48];
        eddy_duration_format(ms, back, sizeof(back));
        int64_t again;
        assert_true(eddy_duration_parse(back, &again));
        assert_int_equal(again, ms);
    }
    static const char *const bad[] = {
        "",      "m",    "1",   "1.5m", "-1s", "1 m",  "1M",     "1w",
        "30m1h", "1m1m", "1mm", "abc",  "1s ", "1e3s", "36501d", "99999999999999999999ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 7;
        if (eddy_duration_parse(bad[i], &ms))
            fail_msg("\"%s\" parsed as %lld", bad[i], (long long)ms);
        assert_int_equal(ms, 7);
    }
    char buf[48];
    assert_int_equal(eddy_duration_format(5400000, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "1h30m");
    eddy_duration_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "0s");
    eddy_duration_format(250, buf, sizeof(buf));
    assert_string_equal(buf, "250ms");
    eddy_duration_format(7200000, buf, sizeof(buf));
    assert_string_equal(buf, "2h");
    assert_int_equal(eddy_duration_format(93784005, buf, 4), 11); /* truncated, full length */
    assert_string_equal(buf, "1d2");
}

/* --- predicates ------------------------------------------------------------------------------ */

/* Evaluates `text` with values for its fields in order of first appearance. */
static bool eval3(const char *text, eddy_value_t a, eddy_value_t b, eddy_value_t c)
{
    char err[256];
    eddy_predicate_t *pred = eddy_predicate_parse(text, err, sizeof(err));
    if (!pred)
        fail_msg("\"%s\": %s", text, err);
    eddy_value_t values[3] = {a, b, c};
    bool result = eddy_predicate_eval(pred, values);
    eddy_predicate_destroy(pred);
    return result;
}

static bool eval1(const char *text, eddy_value_t a)
{
    return eval3(text, a, missing, missing);
}

static void test_predicate_comparisons(void **state)
{
    assert_true(eval1("status >= 500", num(500)));
    assert_true(eval1("status >= 500", num(503.5)));
    assert_false(eval1("status >= 500", num(499)));
    assert_true(eval1("status>=500", num(500)));
    assert_true(eval1("  status == 500  ", num(500)));
    assert_true(eval1("status != 500", num(200)));
    assert_true(eval1("status < 300", num(204)));
    assert_true(eval1("status <= 300", num(300)));
    assert_true(eval1("status > 300", num(301)));
    assert_false(eval1("status > 300", num(300)));
    assert_true(eval1("x > -1.5e3", num(-1000)));
    assert_true(eval1("x == .5", num(0.5)));
    assert_true(eval1("x == +2", num(2)));

    /* Strings: == and ordering by bytes; both quote styles and escapes. */
    assert_true(eval1("region == \"eu-west-1\"", str("eu-west-1")));
    assert_false(eval1("region == \"eu-west-1\"", str("eu-west-10")));
    assert_true(eval1("region == 'eu-west-1'", str("eu-west-1")));
    assert_true(eval1("name == 'it\\'s'", str("it's")));
    assert_true(eval1("name == \"a\\\\b\\\"c\"", str("a\\b\"c")));
    assert_true(eval1("name == \"\"", str("")));
    assert_true(eval1("name < \"b\"", str("abc")));
    assert_true(eval1("name < \"ab\"", str("a")));
    assert_false(eval1("name < \"a\"", str("a")));
    assert_true(eval1("name >= \"a\"", str("a")));

    /* Booleans. */
    assert_true(eval1("mobile == true", boolean(true)));
    assert_false(eval1("mobile == true", boolean(false)));
    assert_true(eval1("mobile != TRUE", boolean(false)));

    /* Missing values and other types never compare equal; != is the negation of ==. */
    assert_false(eval1("status >= 500", missing));
    assert_false(eval1("status == 500", missing));
    assert_true(eval1("status != 500", missing));
    assert_false(eval1("status < 500", null_value));
    assert_false(eval1("status == 500", str("500")));
    assert_true(eval1("status != 500", str("500")));
    assert_false(eval1("region == \"1\"", num(1)));
    assert_false(eval1("flag == true", num(1)));
    assert_false(eval1("flag == 1", boolean(true)));

    /* Field names: identifiers with . - @ $, or anything in backquotes. */
    assert_true(eval1("http.status-code == 1", num(1)));
    assert_true(eval1("@timestamp > 0", num(1)));
    assert_true(eval1("`user id` == 'x'", str("x")));
    assert_true(eval1("`and` == 1", num(1)));
}

/* Which kinds of literal each field is compared with: what gives a field read
 * only by predicates its type. */
static void test_predicate_literals(void **state)
{
    char err[256];
    eddy_predicate_t *p = eddy_predicate_parse(
        "a == 1 or b == 'x' or (a > 2 and c == true) or d != \"y\" or d < 3", err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(eddy_predicate_field_count(p), 4);
    assert_int_equal(eddy_predicate_field_literals(p, 0), EDDY_PREDICATE_LIT_NUMBER);
    assert_int_equal(eddy_predicate_field_literals(p, 1), EDDY_PREDICATE_LIT_STRING);
    assert_int_equal(eddy_predicate_field_literals(p, 2), EDDY_PREDICATE_LIT_BOOL);
    assert_int_equal(eddy_predicate_field_literals(p, 3),
                     EDDY_PREDICATE_LIT_STRING | EDDY_PREDICATE_LIT_NUMBER);
    /* Objects and arrays compare like any other type: never equal. */
    eddy_value_t values[4] = {{.type = EDDY_VALUE_OBJECT},
                              {.type = EDDY_VALUE_ARRAY},
                              {.type = EDDY_VALUE_OBJECT},
                              {.type = EDDY_VALUE_ARRAY}};
    assert_true(eddy_predicate_eval(p, values)); /* d != "y" */
    values[3] = (eddy_value_t){.type = EDDY_VALUE_STRING, .str = "y", .len = 1};
    assert_false(eddy_predicate_eval(p, values));
    eddy_predicate_destroy(p);
}

static void test_predicate_logic(void **state)
{
    eddy_value_t one = num(1), zero = num(0);
    /* `and` binds tighter than `or`: a or (b and c). */
    const char *mixed = "a == 1 or b == 1 and c == 1";
    assert_true(eval3(mixed, one, zero, zero));
    assert_false(eval3(mixed, zero, one, zero));
    assert_true(eval3(mixed, zero, one, one));
    const char *mixed2 = "a == 1 and b == 1 or c == 1";
    assert_true(eval3(mixed2, zero, zero, one));
    assert_false(eval3(mixed2, one, zero, zero));
    /* Parentheses override it. */
    const char *grouped = "(a == 1 or b == 1) and c == 1";
    assert_false(eval3(grouped, one, zero, zero));
    assert_true(eval3(grouped, one, zero, one));
    assert_true(eval3("((a == 1))", one, missing, missing));
    assert_true(eval3("a == 1 and (b == 1 or (c == 1))", one, zero, one));
    /* Keywords in any case; chains. */
    assert_true(eval3("a == 1 AND b == 0 Or c == 5", one, zero, zero));
    assert_true(eval3("a == 0 or b == 0 or c == 1", one, one, one));
    assert_false(eval3("a == 1 and b == 1 and c == 0", one, one, one));

    /* Each field is read from one slot, however often it appears. */
    char err[256];
    eddy_predicate_t *pred =
        eddy_predicate_parse("status >= 500 and status < 600 or region == 'x'", err, sizeof(err));
    assert_non_null(pred);
    assert_int_equal(eddy_predicate_field_count(pred), 2);
    assert_string_equal(eddy_predicate_field_name(pred, 0), "status");
    assert_string_equal(eddy_predicate_field_name(pred, 1), "region");
    assert_string_equal(eddy_predicate_text(pred),
                        "status >= 500 and status < 600 or region == 'x'");
    eddy_predicate_bind(pred, 0, 3);
    eddy_predicate_bind(pred, 1, 0);
    eddy_value_t values[4] = {str("y"), missing, missing, num(503)};
    assert_true(eddy_predicate_eval(pred, values));
    values[3] = num(600);
    assert_false(eddy_predicate_eval(pred, values));
    values[0] = str("x");
    assert_true(eddy_predicate_eval(pred, values));
    eddy_predicate_destroy(pred);
    eddy_predicate_destroy(NULL);
}

static void test_predicate_errors(void **state)
{
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"", "column 1: empty predicate; expected a comparison such as 'status >= 500'"},
        {"   ", "column 4: empty predicate; expected a comparison such as 'status >= 500'"},
        {"status",
         "column 7: expected a comparison operator (==, !=, <, <=, >, >=) after 'status', got "
         "the end of the text"},
        {"status is 500", "column 8: expected a comparison operator (==, !=, <, <=, >, >=) after "
                          "'status', got 'is'"},
        {"status = 500", "column 8: '=' is not an operator; did you mean '=='?"},
        {"status >= ", "column 11: expected a number, a quoted string, true or false after '>=', "
                       "got the end of the text"},
        {"status >= abc", "column 11: expected a number, a quoted string, true or false after "
                          "'>=', got 'abc'"},
        {"x == 5abc", "column 6: expected a number, got '5abc'"},
        {"x == 1e", "column 6: expected a number, got '1e'"},
        {"x == -", "column 6: expected a number, got '-'"},
        {"status >= 500 and", "column 18: expected a field name (a comparison such as 'status >= "
                              "500'), got the end of the text"},
        {"500 <= status", "column 1: expected a field name (a comparison such as 'status >= "
                          "500'), got '500'"},
        {"status >= 500 && x == 1", "column 15: '&&' is not an operator; use 'and'"},
        {"a == 1 || b == 1", "column 8: '||' is not an operator; use 'or'"},
        {"a == 1 b == 2", "column 8: expected 'and', 'or' or the end of the text, got 'b'"},
        {"(status >= 500", "column 15: expected 'and', 'or' or ')' to close the '(' of column 1, "
                           "got the end of the text"},
        {"status >= 500)", "column 14: ')' without a matching '('"},
        {"()", "column 2: expected a field name (a comparison such as 'status >= 500'), got ')'"},
        {"region == \"eu", "column 11: unterminated string (no closing \")"},
        {"region == 'eu\\x'", "column 14: unknown escape '\\x' (use \\\\, \\\", \\', \\n or \\t)"},
        {"flag > true", "column 8: true and false can only be compared with == or !="},
        {"and == 1", "column 1: expected a field name, got 'and' (write `and` for a field of that "
                     "name)"},
        {"`x == 1", "column 1: unterminated `quoted field name`"},
        {"x == 1e999", "column 6: the number 1e999 is out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        eddy_predicate_t *pred = eddy_predicate_parse(cases[i].text, err, sizeof(err));
        if (pred)
            fail_msg("\"%s\" parsed", cases[i].text);
        if (strcmp(err, cases[i].error))
            fail_msg("\"%s\":\n  got  %s\n  want %s", cases[i].text, err, cases[i].error);
    }

    /* Limits: 32 comparisons, 16 levels of parentheses. */
    char text[2048] = "f0 == 0";
    for (int i = 1; i < EDDY_PREDICATE_MAX_TERMS; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), " or f%d == %d", i, i);
    char err[256];
    eddy_predicate_t *pred = eddy_predicate_parse(text, err, sizeof(err));
    assert_non_null(pred);
    eddy_value_t values[EDDY_PREDICATE_MAX_TERMS] = {{0}};
    values[31] = num(31);
    assert_true(eddy_predicate_eval(pred, values));
    eddy_predicate_destroy(pred);
    strcat(text, " or g == 1");
    assert_null(eddy_predicate_parse(text, err, sizeof(err)));
    assert_non_null(strstr(err, "too long: at most 32 comparisons"));
    /* Right-nested, so every comparison is parsed before any `and` node exists. */
    strcpy(text, "");
    for (int i = 0; i < 33; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "f%d == 1 and (", i);
    assert_null(eddy_predicate_parse(text, err, sizeof(err)));
    assert_true(strstr(err, "at most 32 comparisons") || strstr(err, "nested deeper than 16"));
    strcpy(text, "");
    for (int i = 0; i < 17; i++)
        strcat(text, "(");
    strcat(text, "a == 1");
    for (int i = 0; i < 17; i++)
        strcat(text, ")");
    assert_null(eddy_predicate_parse(text, err, sizeof(err)));
    assert_string_equal(err, "column 17: parentheses nested deeper than 16");
    memmove(text, text + 1, strlen(text));
    text[strlen(text) - 1] = '\0';
    pred = eddy_predicate_parse(text, err, sizeof(err));
    assert_non_null(pred);
    eddy_predicate_destroy(pred);
}

/* --- group keys ------------------------------------------------------------------------------ */

/* A finished topology with stores keyed by (a), (a, b) and nothing. */
static eddy_topology_t *key_topology(const eddy_store_def_t **one, const eddy_store_def_t **two,
                                     const eddy_store_def_t **none)
{
    char err[256];
    eddy_topology_t *topo = base_topology();
    eddy_store_def_t *s1 = simple_store(topo, "one");
    assert_int_equal(eddy_store_def_group_by(s1, "a", err, sizeof(err)), 0);
    eddy_store_def_t *s2 = simple_store(topo, "two");
    assert_int_equal(eddy_store_def_group_by(s2, "a", err, sizeof(err)), 0);
    assert_int_equal(eddy_store_def_group_by(s2, "b", err, sizeof(err)), 0);
    eddy_store_def_t *s0 = simple_store(topo, "none");
    assert_int_equal(eddy_topology_finish(topo, err, sizeof(err)), EDDY_OK);
    assert_int_equal(eddy_topology_field_index(topo, "a"), 1);
    assert_int_equal(eddy_topology_field_index(topo, "b"), 2);
    *one = s1;
    *two = s2;
    *none = s0;
    return topo;
}

static const char *key_of(const eddy_store_def_t *store, eddy_value_t a, eddy_value_t b)
{
    static char key[128];
    size_t len = 99;
    eddy_value_t values[3] = {num(0), a, b};
    if (!eddy_store_group_key(store, values, key, sizeof(key), &len)) {
        assert_int_equal(len, 0);
        return NULL;
    }
    assert_int_equal(len, strlen(key));
    return key;
}

static void test_group_keys(void **state)
{
    const eddy_store_def_t *one, *two, *none;
    eddy_topology_t *topo = key_topology(&one, &two, &none);

    assert_string_equal(key_of(one, str("/api/orders"), missing), "/api/orders");
    assert_string_equal(key_of(one, str(""), missing), "");
    assert_string_equal(key_of(one, num(500), missing), "500");
    assert_string_equal(key_of(one, num(-42), missing), "-42");
    assert_string_equal(key_of(one, num(-0.0), missing), "0");
    assert_string_equal(key_of(one, num(131.4), missing), "131.4");
    assert_string_equal(key_of(one, num(0.1), missing), "0.1");
    assert_string_equal(key_of(one, num(1.0 / 3), missing), "0.3333333333333333");
    assert_string_equal(key_of(one, num(9007199254740991.0), missing), "9007199254740991");
    assert_string_equal(key_of(one, num(-9007199254740991.0), missing), "-9007199254740991");
    assert_string_equal(key_of(one, num(0), missing), "0");
    assert_string_equal(key_of(one, num(7), missing), "7");
    assert_string_equal(key_of(one, num(1e20), missing), "1e+20");
    assert_string_equal(key_of(one, boolean(true), missing), "true");
    assert_string_equal(key_of(one, boolean(false), missing), "false");
    /* One field is its value as it is, '|' and '\' included. */
    assert_string_equal(key_of(one, str("a|b\\c"), missing), "a|b\\c");
    /* Several are joined by '|', each escaped. */
    assert_string_equal(key_of(two, str("/api"), num(500)), "/api|500");
    assert_string_equal(key_of(two, str("a|b"), str("c\\d")), "a\\|b|c\\\\d");
    assert_string_equal(key_of(two, str(""), str("")), "|");
    assert_string_equal(key_of(two, str("|"), str("")), "\\||");
    /* No group_by field: one key for everything. */
    assert_string_equal(key_of(none, str("x"), missing), "");
    /* A string need not be NUL-terminated. */
    eddy_value_t part = {.type = EDDY_VALUE_STRING, .str = "endpointXXXX", .len = 8};
    assert_string_equal(key_of(one, part, missing), "endpoint");

    /* Missing, null and non-scalar values give no key. */
    assert_null(key_of(one, missing, missing));
    assert_null(key_of(one, null_value, missing));
    assert_null(key_of(two, str("a"), missing));
    assert_null(key_of(two, null_value, str("b")));

    /* Buffer sizes: the NUL must fit; otherwise the needed length comes back. */
    eddy_value_t values[3] = {num(0), str("a|b"), str("cd")};
    char key[16];
    size_t len = 0;
    assert_true(eddy_store_group_key(two, values, key, 8, &len)); /* "a\|b|cd" is 7 bytes */
    assert_string_equal(key, "a\\|b|cd");
    assert_int_equal(len, 7);
    assert_false(eddy_store_group_key(two, values, key, 7, &len));
    assert_int_equal(len, 7);
    assert_false(eddy_store_group_key(two, values, key, 0, &len));
    assert_int_equal(len, 7);
    assert_true(eddy_store_group_key(none, values, key, 1, &len));
    assert_int_equal(len, 0);
    assert_string_equal(key, "");
    eddy_topology_destroy(topo);
}

static void test_names(void **state)
{
    assert_string_equal(eddy_agg_op_name(EDDY_AGG_COUNT_IF), "count_if");
    assert_string_equal(eddy_agg_op_name(EDDY_AGG_RATIO), "ratio");
    assert_null(eddy_agg_op_name((eddy_agg_op_t)EDDY_AGG_OP_COUNT));
    assert_string_equal(eddy_ts_format_name(EDDY_TS_ISO8601), "iso8601");
    assert_string_equal(eddy_emit_name(EDDY_EMIT_ON_CLOSE), "on_close");
    assert_string_equal(eddy_window_type_name(EDDY_WINDOW_HOPPING), "hopping");
    assert_string_equal(eddy_field_type_name(EDDY_FIELD_NUMBER), "number");
    assert_string_equal(eddy_field_type_name(EDDY_FIELD_ANY), "scalar");
    assert_string_equal(eddy_field_type_name(EDDY_FIELD_BOOL), "boolean");
    assert_null(eddy_field_type_name((eddy_field_type_t)5));
    assert_int_equal(eddy_topology_edit_distance("sise", "size"), 1);
    assert_int_equal(eddy_topology_edit_distance("", "abc"), 3);
    assert_int_equal(eddy_topology_edit_distance("tumbing", "tumbling"), 1);
    assert_int_equal(eddy_topology_edit_distance("retnetion", "retention"), 2);
    assert_int_equal(eddy_topology_hint_distance("cnt", "count"), 2);
    assert_int_equal(eddy_topology_hint_distance("x", "q"), SIZE_MAX);
    assert_int_equal(eddy_topology_hint_distance("sliding", "tumbling"), SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builder_builds_and_finishes),
        cmocka_unit_test(test_field_declarations),
        cmocka_unit_test(test_predicate_literals),
        cmocka_unit_test(test_builder_rejects),
        cmocka_unit_test(test_finish_rejects),
        cmocka_unit_test(test_default_retention),
        cmocka_unit_test(test_field_table_limit),
        cmocka_unit_test(test_window_starts_tumbling),
        cmocka_unit_test(test_window_starts_hopping),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_predicate_comparisons),
        cmocka_unit_test(test_predicate_logic),
        cmocka_unit_test(test_predicate_errors),
        cmocka_unit_test(test_group_keys),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
