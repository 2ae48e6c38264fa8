/*
 * test_topology_loader.c — topology files: both examples load with the stores,
 * windows, aggregates and fields users rely on; the conveniences of the format
 * work (topics lists, shorthands, integer and compound durations); field
 * declarations and max_future give each field its rule; and bad files and
 * strings fail with the exact message — file, JSON path, what was expected.
 * Files are found through EDDY_SOURCE_DIR, the repository path.
 */
#include "test_support.h"

#include "topology/predicate.h"
#include "topology/topology_int.h"
#include "topology/topology_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLES EDDY_SOURCE_DIR "/topology/examples/"
#define BAD_DATA EDDY_SOURCE_DIR "/tests/unit/data/topology/"

static eddy_topology_t *load_example(const char *name)
{
    char path[512], err[1024] = "";
    snprintf(path, sizeof(path), EXAMPLES "%s", name);
    eddy_topology_t *topo = eddy_topology_load_file(path, err, sizeof(err));
    if (!topo)
        fail_msg("%s", err);
    assert_true(topo->finished);
    return topo;
}

static void assert_window(const eddy_store_def_t *s, eddy_window_type_t type, int64_t size,
                          int64_t advance)
{
    assert_int_equal(s->window.type, type);
    assert_int_equal(s->window.size_ms, size);
    assert_int_equal(s->window.advance_ms, advance);
    assert_int_equal(s->window.grace_ms, 30000);
    assert_int_equal(s->window.retention_ms, 2 * 3600000);
}

static void assert_group_by(const eddy_topology_t *topo, const eddy_store_def_t *s,
                            const char *field)
{
    assert_int_equal(s->n_group, 1);
    assert_string_equal(s->group_names[0], field);
    assert_int_equal(s->group_fields[0], eddy_topology_field_index(topo, field));
}

static void assert_agg(const eddy_topology_t *topo, const eddy_store_def_t *s, size_t i,
                       const char *name, eddy_agg_op_t op, const char *field)
{
    assert_true(i < s->n_aggregates);
    const eddy_agg_def_t *agg = &s->aggregates[i];
    assert_string_equal(agg->name, name);
    assert_int_equal(agg->op, op);
    if (field) {
        assert_string_equal(agg->field_name, field);
        assert_int_equal(agg->field, eddy_topology_field_index(topo, field));
    } else {
        assert_null(agg->field_name);
        assert_int_equal(agg->field, -1);
    }
}

static void test_monitoring_example(void **state)
{
    eddy_topology_t *topo = load_example("monitoring.json");
    assert_string_equal(eddy_topology_name(topo), "monitoring");
    assert_int_equal(eddy_topology_source_count(topo), 1);
    assert_string_equal(eddy_topology_source_topic(topo, 0), "log-events");
    assert_int_equal(eddy_topology_timestamp_format(topo), EDDY_TS_EPOCH_MS);
    assert_string_equal(eddy_topology_field_name(topo, eddy_topology_timestamp_field(topo)), "ts");

    static const char *const stores[] = {"requests_per_endpoint", "endpoint_stats", "status_codes",
                                         "region_stats"};
    assert_int_equal(eddy_topology_store_count(topo), 4);
    for (size_t i = 0; i < 4; i++) {
        const eddy_store_def_t *s = eddy_topology_store(topo, i);
        assert_string_equal(eddy_store_def_name(s), stores[i]);
        assert_ptr_equal(eddy_topology_store_by_name(topo, stores[i]), s);
        assert_null(s->sink_topic);
    }

    const eddy_store_def_t *s = eddy_topology_store(topo, 0);
    assert_group_by(topo, s, "endpoint");
    assert_window(s, EDDY_WINDOW_TUMBLING, 60000, 60000);
    assert_int_equal(s->n_aggregates, 1);
    assert_agg(topo, s, 0, "count", EDDY_AGG_COUNT, NULL);

    s = eddy_topology_store(topo, 1);
    assert_group_by(topo, s, "endpoint");
    assert_window(s, EDDY_WINDOW_TUMBLING, 60000, 60000);
    assert_int_equal(s->n_aggregates, 7);
    assert_agg(topo, s, 0, "count", EDDY_AGG_COUNT, NULL);
    assert_agg(topo, s, 1, "errors", EDDY_AGG_COUNT_IF, NULL);
    assert_string_equal(eddy_predicate_text(s->aggregates[1].predicate), "status >= 500");
    assert_agg(topo, s, 2, "error_rate", EDDY_AGG_RATIO, NULL);
    assert_int_equal(s->aggregates[2].numerator, 1);
    assert_int_equal(s->aggregates[2].denominator, 0);
    static const double qs[] = {0.50, 0.95, 0.99};
    static const char *const pnames[] = {"p50", "p95", "p99"};
    for (size_t i = 0; i < 3; i++) {
        assert_agg(topo, s, 3 + i, pnames[i], EDDY_AGG_PERCENTILE, "latency_ms");
        assert_true(s->aggregates[3 + i].q == qs[i]);
    }
    assert_agg(topo, s, 6, "mean_latency_ms", EDDY_AGG_MEAN, "latency_ms");

    /* errors counts status >= 500 of the event's extracted values. */
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS] = {{0}};
    int status = eddy_topology_field_index(topo, "status");
    values[status] = (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = 503};
    assert_true(eddy_predicate_eval(s->aggregates[1].predicate, values));
    values[status].num = 404;
    assert_false(eddy_predicate_eval(s->aggregates[1].predicate, values));

    s = eddy_topology_store(topo, 2);
    assert_group_by(topo, s, "status");
    assert_window(s, EDDY_WINDOW_HOPPING, 300000, 60000);
    assert_int_equal(eddy_window_max_per_event(&s->window), 5);
    assert_int_equal(s->n_aggregates, 2);
    assert_agg(topo, s, 0, "count", EDDY_AGG_COUNT, NULL);
    assert_agg(topo, s, 1, "failed", EDDY_AGG_COUNT_IF, NULL);
    assert_string_equal(eddy_predicate_text(s->aggregates[1].predicate), "status >= 400");
    /* status 500 is group key "500". */
    char key[32];
    size_t len;
    values[status].num = 500;
    assert_true(eddy_store_group_key(s, values, key, sizeof(key), &len));
    assert_string_equal(key, "500");

    s = eddy_topology_store(topo, 3);
    assert_group_by(topo, s, "region");
    assert_window(s, EDDY_WINDOW_TUMBLING, 60000, 60000);
    assert_int_equal(s->n_aggregates, 3);
    assert_agg(topo, s, 0, "count", EDDY_AGG_COUNT, NULL);
    assert_agg(topo, s, 1, "errors", EDDY_AGG_COUNT_IF, NULL);
    assert_agg(topo, s, 2, "mean_latency_ms", EDDY_AGG_MEAN, "latency_ms");

    /* The decoder reads five fields, timestamp first; nothing else. */
    static const char *const fields[] = {"ts", "endpoint", "status", "latency_ms", "region"};
    /* What each must hold: the declarations of "fields" (status a whole number from
     * 100 to 599, latency_ms from 0 to 1e7 ms, endpoint and region strings). */
    static const eddy_field_type_t types[] = {EDDY_FIELD_NUMBER, EDDY_FIELD_STRING,
                                              EDDY_FIELD_INTEGER, EDDY_FIELD_NUMBER,
                                              EDDY_FIELD_STRING};
    static const double mins[] = {-INFINITY, -INFINITY, 100, 0, -INFINITY};
    static const double maxs[] = {INFINITY, INFINITY, 599, 1e7, INFINITY};
    assert_int_equal(eddy_topology_field_count(topo), 5);
    for (size_t i = 0; i < 5; i++) {
        const eddy_field_rule_t *r = eddy_topology_field_rule(topo, i);
        assert_string_equal(eddy_topology_field_name(topo, i), fields[i]);
        assert_int_equal(r->type, types[i]);
        assert_true(r->required);
        assert_false(r->coerce);
        assert_true(r->min == mins[i] && r->max == maxs[i]);
    }
    assert_int_equal(eddy_topology_max_future(topo), -1);
    eddy_topology_destroy(topo);
}

static void test_activity_example(void **state)
{
    eddy_topology_t *topo = load_example("activity.json");
    assert_string_equal(eddy_topology_name(topo), "activity");
    assert_string_equal(eddy_topology_source_topic(topo, 0), "user-events");
    assert_int_equal(eddy_topology_timestamp_format(topo), EDDY_TS_ISO8601);
    assert_string_equal(eddy_topology_field_name(topo, eddy_topology_timestamp_field(topo)),
                        "timestamp");
    assert_int_equal(eddy_topology_store_count(topo), 3);

    const eddy_store_def_t *s = eddy_topology_store_by_name(topo, "events_per_type");
    assert_non_null(s);
    assert_group_by(topo, s, "event_type");
    assert_window(s, EDDY_WINDOW_TUMBLING, 60000, 60000);
    assert_agg(topo, s, 0, "count", EDDY_AGG_COUNT, NULL);
    assert_agg(topo, s, 1, "users", EDDY_AGG_DISTINCT, "user_id");

    s = eddy_topology_store_by_name(topo, "events_per_element");
    assert_non_null(s);
    assert_group_by(topo, s, "element_id");
    assert_window(s, EDDY_WINDOW_TUMBLING, 60000, 60000);
    assert_int_equal(s->n_aggregates, 1);
    assert_agg(topo, s, 0, "count", EDDY_AGG_COUNT, NULL);

    /* Distinct active users per minute: one global group, key "". */
    s = eddy_topology_store_by_name(topo, "active_users");
    assert_non_null(s);
    assert_int_equal(s->n_group, 0);
    assert_window(s, EDDY_WINDOW_TUMBLING, 60000, 60000);
    assert_agg(topo, s, 0, "events", EDDY_AGG_COUNT, NULL);
    assert_agg(topo, s, 1, "active_users", EDDY_AGG_DISTINCT, "user_id");
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS] = {{0}};
    char key[8] = "x";
    size_t len = 9;
    assert_true(eddy_store_group_key(s, values, key, sizeof(key), &len));
    assert_int_equal(len, 0);
    assert_string_equal(key, "");

    /* Every store sends its closed windows to event-metrics. */
    for (size_t i = 0; i < 3; i++) {
        s = eddy_topology_store(topo, i);
        assert_string_equal(s->sink_topic, "event-metrics");
        assert_int_equal(s->sink_emit, EDDY_EMIT_ON_CLOSE);
    }
    static const char *const fields[] = {"timestamp", "event_type", "user_id", "element_id"};
    assert_int_equal(eddy_topology_field_count(topo), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(eddy_topology_field_name(topo, i), fields[i]);
    eddy_topology_destroy(topo);
}

static void test_describe_json(void **state)
{
    eddy_topology_t *topo = load_example("monitoring.json");
    json_t *j = eddy_topology_to_json(topo);
    assert_non_null(j);
    json_t *stores = json_object_get(j, "stores");
    assert_int_equal(json_array_size(stores), 4);
    json_t *codes = json_array_get(stores, 2);
    assert_string_equal(json_string_value(json_object_get(codes, "name")), "status_codes");
    json_t *w = json_object_get(codes, "window");
    assert_string_equal(json_string_value(json_object_get(w, "type")), "hopping");
    assert_int_equal(json_integer_value(json_object_get(w, "size_ms")), 300000);
    assert_int_equal(json_integer_value(json_object_get(w, "advance_ms")), 60000);
    assert_int_equal(json_integer_value(json_object_get(w, "grace_ms")), 30000);
    assert_int_equal(json_integer_value(json_object_get(w, "retention_ms")), 7200000);
    assert_true(json_is_null(json_object_get(codes, "sink")));
    json_t *rate = json_array_get(json_object_get(json_array_get(stores, 1), "aggregates"), 2);
    assert_string_equal(json_string_value(json_object_get(rate, "op")), "ratio");
    assert_string_equal(json_string_value(json_object_get(rate, "numerator")), "errors");
    json_t *fields = json_object_get(j, "fields");
    assert_int_equal(json_array_size(fields), 5);
    json_t *status = json_array_get(fields, 2);
    assert_string_equal(json_string_value(json_object_get(status, "name")), "status");
    assert_int_equal(json_integer_value(json_object_get(status, "slot")), 2);
    assert_int_equal(json_array_size(json_object_get(status, "uses")), 2);
    json_t *ts = json_object_get(json_object_get(j, "source"), "timestamp");
    assert_string_equal(json_string_value(json_object_get(ts, "format")), "epoch_ms");
    json_decref(j);
    eddy_topology_destroy(topo);
}

/* JSON written with ' for " (so the cases stay readable); the loaded topology. */
static eddy_topology_t *load_quoted(const char *text, char *err, size_t err_size)
{
    char *json = strdup(text);
    for (char *p = json; *p; p++)
        if (*p == '\'')
            *p = '"';
    eddy_topology_t *topo = eddy_topology_load_string(json, "bad.json", err, err_size);
    free(json);
    return topo;
}

#define SOURCE     "'name':'t','source':{'topic':'in','timestamp':{'field':'ts'}}"
#define STORE_HEAD "'name':'s','group_by':['a'],"
#define WINDOW     "'window':{'type':'tumbling','size':'1m'}"
#define COUNT      "{'name':'count','op':'count'}"
/* A topology of one store: STORE_HEAD, then `rest`. */
#define ONE_STORE(rest) "{" SOURCE ",'stores':[{" STORE_HEAD rest "}]}"
/* A store with WINDOW and the aggregates `aggs`. */
#define AGGS(aggs) ONE_STORE(WINDOW ",'aggregates':[" aggs "]")

static void test_format_conveniences(void **state)
{
    char err[1024];
    eddy_topology_t *topo = load_quoted(
        "{'name':'t.v-2','description':'what for','source':{'topics':['a','b.c'],'format':'json',"
        "'timestamp':'time'},'stores':[{'name':'S-1_x','description':'d','group_by':'k',"
        "'window':{'type':'hopping','size':'1h30m','advance':900000,'grace':0,"
        "'retention':'1d'},'aggregates':[{'op':'ratio','name':'r','numerator':'s',"
        "'denominator':'c'},{'name':'c','op':'count'},{'name':'s','op':'sum','field':'v'},"
        "{'name':'lo','op':'min','field':'v'},{'name':'hi','op':'max','field':'v'},"
        "{'name':'q','op':'percentile','field':'v','q':1},"
        "{'name':'f','op':'count_if','where':'k == \\'x\\' and (v > 1 or flag == true)'}],"
        "'sink':{'topic':'out','emit':'updates'}}]}",
        err, sizeof(err));
    if (!topo)
        fail_msg("%s", err);
    assert_string_equal(topo->description, "what for");
    assert_int_equal(eddy_topology_source_count(topo), 2);
    assert_string_equal(eddy_topology_source_topic(topo, 1), "b.c");
    assert_int_equal(eddy_topology_timestamp_format(topo), EDDY_TS_AUTO);
    const eddy_store_def_t *s = eddy_topology_store(topo, 0);
    assert_string_equal(s->description, "d");
    assert_int_equal(s->n_group, 1);
    assert_int_equal(s->window.size_ms, 5400000);
    assert_int_equal(s->window.advance_ms, 900000);
    assert_int_equal(s->window.grace_ms, 0);
    assert_int_equal(s->window.retention_ms, 86400000);
    assert_int_equal(s->aggregates[0].numerator, 2);
    assert_int_equal(s->aggregates[0].denominator, 1);
    assert_true(s->aggregates[5].q == 1.0);
    assert_string_equal(s->sink_topic, "out");
    assert_int_equal(s->sink_emit, EDDY_EMIT_UPDATES);
    /* time, k, v, flag */
    assert_int_equal(eddy_topology_field_count(topo), 4);
    assert_string_equal(eddy_topology_field_name(topo, 3), "flag");
    eddy_topology_destroy(topo);

    /* The defaults: format auto, grace 0, retention 24 h, emit on_close. */
    topo = load_quoted("{" SOURCE ",'stores':[{" STORE_HEAD WINDOW ",'aggregates':[" COUNT
                       "],'sink':{'topic':'out'}}]}",
                       err, sizeof(err));
    if (!topo)
        fail_msg("%s", err);
    s = eddy_topology_store(topo, 0);
    assert_int_equal(eddy_topology_timestamp_format(topo), EDDY_TS_AUTO);
    assert_int_equal(s->window.grace_ms, 0);
    assert_int_equal(s->window.retention_ms, 86400000);
    assert_int_equal(s->sink_emit, EDDY_EMIT_ON_CLOSE);
    eddy_topology_destroy(topo);

    /* A string without origin is named <string>. */
    assert_null(eddy_topology_load_string("[]", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "<string>: $: expected an object"));
}

static void test_bad_strings(void **state)
{
    static const struct {
        const char *json, *error;
    } cases[] = {
        {"[]", "bad.json: $: expected an object such as {\"name\": ..., \"source\": {...}, "
               "\"stores\": [...]}, got an empty array"},
        {"{'source':{}}", "bad.json: $: missing \"name\" (expected the topology's name, such as "
                          "\"monitoring\")"},
        {"{'name':'a b'}", "bad.json: $.name: expected a topology name of 1 to 64 letters, "
                           "digits, '.', '_' or '-', got \"a b\""},
        {"{'name':'t','store':[]}",
         "bad.json: $.store: unknown key in a topology; did you mean \"stores\"?"},
        {"{'name':'t'}", "bad.json: $: missing \"source\" (expected an object such as {\"topic\": "
                         "\"log-events\", \"timestamp\": {...}})"},
        {"{'name':'t','source':'in'}",
         "bad.json: $.source: expected an object such as {\"topic\": \"log-events\", "
         "\"timestamp\": {\"field\": \"ts\"}}, got \"in\""},
        {"{'name':'t','source':{'topic':'a','topics':['b']}}",
         "bad.json: $.source.topics: give either \"topic\" or \"topics\", not both"},
        {"{'name':'t','source':{'topics':[]}}",
         "bad.json: $.source.topics: expected a non-empty list of topic names, got an empty "
         "array"},
        {"{'name':'t','source':{'topics':['a','b','a']}}",
         "bad.json: $.source.topics[2]: source topic \"a\" is listed twice"},
        {"{'name':'t','source':{'topic':'log events'}}",
         "bad.json: $.source.topic: expected a Kafka topic name (1 to 249 letters, digits, '.', "
         "'_' or '-'), got \"log events\""},
        {"{'name':'t','source':{'topic':'in','format':'avro'}}",
         "bad.json: $.source.format: expected \"json\", got \"avro\""},
        {"{'name':'t','source':{'topic':'in'}}",
         "bad.json: $.source: missing \"timestamp\" (expected {\"field\": \"ts\", \"format\": "
         "\"epoch_ms\"})"},
        {"{'name':'t','source':{'topic':'in','timestamp':{'field':'ts','format':'iso-8601'}}}",
         "bad.json: $.source.timestamp.format: expected \"epoch_ms\", \"iso8601\" or \"auto\", "
         "got \"iso-8601\"; did you mean \"iso8601\"?"},
        {"{'name':'t','source':{'topic':'in','timestamp':{'format':'auto'}}}",
         "bad.json: $.source.timestamp: missing \"field\" (expected the name of the event-time "
         "field)"},
        {"{" SOURCE "}", "bad.json: $: missing \"stores\" (expected a list of stores)"},
        {"{" SOURCE ",'stores':[]}",
         "bad.json: $.stores: expected a non-empty list of stores, got an empty array"},
        {"{" SOURCE ",'stores':['s']}",
         "bad.json: $.stores[0]: expected an object such as {\"name\": \"per_endpoint\", "
         "\"group_by\": [\"endpoint\"], ...}, got \"s\""},
        {"{" SOURCE ",'stores':[{'name':'s'}]}",
         "bad.json: $.stores[0]: missing \"group_by\" (expected a field name, a list of them, or "
         "[] for one group of all events)"},
        {"{" SOURCE ",'stores':[{'name':'s','group_by':5}]}",
         "bad.json: $.stores[0].group_by: expected a field name or a list of them ([] for one "
         "group of all events), got 5"},
        {"{" SOURCE ",'stores':[{'name':'s','group_by':['a',7]}]}",
         "bad.json: $.stores[0].group_by[1]: expected an event field name, got 7"},
        {"{" SOURCE ",'stores':[{'name':'s','group_by':['a','a']}]}",
         "bad.json: $.stores[0].group_by[1]: group_by field \"a\" is listed twice"},
        {"{" SOURCE ",'stores':[{" STORE_HEAD WINDOW ",'aggregates':[" COUNT "]},{'name':'s'}]}",
         "bad.json: $.stores[1].name: duplicate store name \"s\" (already used by stores[0])"},
        {ONE_STORE("'colour':'red'"), "bad.json: $.stores[0].colour: unknown key in a store (it "
                                      "takes name, description, group_by, window, aggregates, "
                                      "sink)"},
        {ONE_STORE("'my key':1"), "bad.json: $.stores[0][\"my key\"]: unknown key in a store (it "
                                  "takes name, description, group_by, window, aggregates, sink)"},
        {ONE_STORE("'window':{'type':'tumbling','size':0}"),
         "bad.json: $.stores[0].window.size: expected a positive window size of at most 100 "
         "years, got 0s"},
        {ONE_STORE("'window':{'type':'tumbling','size':-5}"),
         "bad.json: $.stores[0].window.size: expected a duration such as \"1m\" or 60000, got "
         "-5"},
        {ONE_STORE("'window':{'type':'tumbling','size':1.5}"),
         "bad.json: $.stores[0].window.size: expected a duration such as \"1m\" or 60000, got "
         "1.5"},
        {ONE_STORE("'window':{'type':'tumbling','size':'37000d'}"),
         "bad.json: $.stores[0].window.size: expected a duration such as \"1m\" or 60000, got "
         "\"37000d\""},
        {ONE_STORE("'window':{'type':'tumbling','size':4000000000000}"),
         "bad.json: $.stores[0].window.size: expected a duration such as \"1m\" or 60000 of at "
         "most 100 years, got 4000000000000"},
        {ONE_STORE("'window':{'size':'1m'}"),
         "bad.json: $.stores[0].window: missing \"type\" (expected \"tumbling\" or \"hopping\")"},
        {ONE_STORE("'window':{'type':'sliding','size':'1m'}"),
         "bad.json: $.stores[0].window.type: expected \"tumbling\" or \"hopping\", got "
         "\"sliding\""},
        {ONE_STORE("'window':{'type':'tumbling'}"),
         "bad.json: $.stores[0].window: missing \"size\" (expected a duration such as \"1m\" or "
         "60000)"},
        {ONE_STORE("'window':{'type':'tumbling','size':'1m','advance':'1m'}"),
         "bad.json: $.stores[0].window.advance: a tumbling window has no advance (its advance is "
         "its size); use \"type\": \"hopping\" for overlapping windows"},
        {ONE_STORE("'window':{'type':'hopping','size':'5m'}"),
         "bad.json: $.stores[0].window: missing \"advance\" (expected a duration such as \"1m\": "
         "how far each hopping window starts after the previous one)"},
        {ONE_STORE("'window':{'type':'hopping','size':'1m','advance':'2m'}"),
         "bad.json: $.stores[0].window.advance: the advance (2m) must not exceed the window size "
         "(1m)"},
        {ONE_STORE("'window':{'type':'tumbling','size':'1m','grace':'30s','retention':'1m'},"
                   "'aggregates':[" COUNT "]"),
         "bad.json: $.stores[0].window.retention: expected a retention of at least size + grace "
         "= 1m + 30s = 1m30s (or windows are deleted before they close), got 1m"},
        {ONE_STORE(WINDOW), "bad.json: $.stores[0]: missing \"aggregates\" (expected a list of "
                            "aggregates)"},
        {AGGS(""), "bad.json: $.stores[0].aggregates: expected a non-empty list of aggregates "
                   "such as [{\"name\": \"count\", \"op\": \"count\"}], got an empty array"},
        {AGGS("{'name':'c','op':'cnt'}"),
         "bad.json: $.stores[0].aggregates[0].op: expected \"count\", \"count_if\", \"sum\", "
         "\"min\", \"max\", \"mean\", \"percentile\", \"distinct\" or \"ratio\", got \"cnt\"; did "
         "you mean \"count\"?"},
        {AGGS("{'op':'count'}"), "bad.json: $.stores[0].aggregates[0]: missing \"name\" "
                                 "(expected the aggregate's name)"},
        {AGGS(COUNT "," COUNT),
         "bad.json: $.stores[0].aggregates[1].name: duplicate aggregate name \"count\" in store "
         "\"s\" (already used by aggregates[0])"},
        {AGGS("{'name':'key','op':'count'}"),
         "bad.json: $.stores[0].aggregates[0].name: \"key\" is reserved: every window result "
         "already has key, start and end"},
        {AGGS("{'name':'c','op':'count','field':'x'}"),
         "bad.json: $.stores[0].aggregates[0].field: a count aggregate has no \"field\" (it takes "
         "name, op)"},
        {AGGS("{'name':'m','op':'mean','fields':'x'}"),
         "bad.json: $.stores[0].aggregates[0].fields: unknown key in an aggregate; did you mean "
         "\"field\"?"},
        {AGGS("{'name':'m','op':'mean'}"),
         "bad.json: $.stores[0].aggregates[0]: missing \"field\" (expected an event field name)"},
        {AGGS("{'name':'p','op':'percentile','field':'l','q':1.5}"),
         "bad.json: $.stores[0].aggregates[0].q: expected a quantile q in (0, 1] such as 0.99 "
         "for P99, got 1.5"},
        {AGGS("{'name':'p','op':'percentile','field':'l','q':'0.5'}"),
         "bad.json: $.stores[0].aggregates[0].q: expected the quantile in (0, 1], such as 0.99 "
         "for P99, got \"0.5\""},
        {AGGS("{'name':'p','op':'percentile','field':'l'}"),
         "bad.json: $.stores[0].aggregates[0]: missing \"q\" (expected the quantile in (0, 1], "
         "such as 0.99 for P99)"},
        {AGGS("{'name':'e','op':'count_if','where':'status >= '}"),
         "bad.json: $.stores[0].aggregates[0].where: column 11: expected a number, a quoted "
         "string, true or false after '>=', got the end of the text"},
        {AGGS(COUNT ",{'name':'p50','op':'percentile','field':'l','q':0.5},"
                    "{'name':'r','op':'ratio','numerator':'p50','denominator':'count'}"),
         "bad.json: $.stores[0].aggregates[2].numerator: a ratio divides count, count_if or sum "
         "aggregates, but \"p50\" is a percentile"},
        {AGGS(COUNT ",{'name':'r','op':'ratio','numerator':'count','denominator':'total'}"),
         "bad.json: $.stores[0].aggregates[1].denominator: no aggregate named \"total\" in store "
         "\"s\""},
        {ONE_STORE(WINDOW ",'aggregates':[" COUNT "],'sink':'out'"),
         "bad.json: $.stores[0].sink: expected an object such as {\"topic\": \"event-metrics\", "
         "\"emit\": \"on_close\"}, got \"out\""},
        {ONE_STORE(WINDOW ",'aggregates':[" COUNT "],'sink':{'topic':'out','emit':'on-close'}"),
         "bad.json: $.stores[0].sink.emit: expected \"on_close\" or \"updates\", got "
         "\"on-close\"; did you mean \"on_close\"?"},
        {ONE_STORE(WINDOW ",'aggregates':[" COUNT "],'sink':{'topic':'in'}"),
         "bad.json: $.stores[0].sink.topic: the sink topic \"in\" is also a source topic; the "
         "store would read its own output"},
        {ONE_STORE(WINDOW ",'aggregates':[" COUNT "],'sink':{'emit':'updates'}"),
         "bad.json: $.stores[0].sink: missing \"topic\" (expected a topic name)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[1024] = "";
        eddy_topology_t *topo = load_quoted(cases[i].json, err, sizeof(err));
        if (topo)
            fail_msg("case %zu loaded: %s", i, cases[i].json);
        if (strcmp(err, cases[i].error))
            fail_msg("case %zu: %s\n  got  %s\n  want %s", i, cases[i].json, err, cases[i].error);
    }

    /* Syntax errors give line and column. */
    char err[1024];
    assert_null(eddy_topology_load_string("{\"name\":\n  }", "x.json", err, sizeof(err)));
    assert_non_null(strstr(err, "x.json: line 2, column 3: invalid JSON: "));
}

/* "fields" declarations and max_future: what each field must hold comes from its
 * uses and its declaration; the timestamp's bound from source.timestamp. */
static void test_fields(void **state)
{
    char err[1024];
    eddy_topology_t *topo = load_quoted(
        "{'name':'t','source':{'topic':'in','timestamp':{'field':'ts','format':'epoch_ms',"
        "'max_future':'1h'}},'fields':{'status':{'type':'integer','coerce':true,'min':100,"
        "'max':599},'lat':{'type':'number','min':0},'ok':{'type':'boolean'},"
        "'w e':{'type':'string'}},'stores':[{'name':'s','group_by':['status','w e','k'],"
        "'window':{'type':'tumbling','size':'1m'},'aggregates':[{'name':'m','op':'mean',"
        "'field':'lat'},{'name':'e','op':'count_if','where':'ok == true or r == \\'x\\' or "
        "`w e` != \\'y\\' or n > 1'}]}]}",
        err, sizeof(err));
    if (!topo)
        fail_msg("%s", err);
    assert_int_equal(eddy_topology_max_future(topo), 3600000);
    static const struct {
        const char *name;
        eddy_field_type_t type;
        bool required, coerce;
        double min, max;
    } want[] = {
        {"ts", EDDY_FIELD_NUMBER, true, false, -INFINITY, INFINITY},
        {"status", EDDY_FIELD_INTEGER, true, true, 100, 599},
        {"w e", EDDY_FIELD_STRING, true, false, -INFINITY, INFINITY},
        {"k", EDDY_FIELD_ANY, true, false, -INFINITY, INFINITY},
        {"lat", EDDY_FIELD_NUMBER, true, false, 0, INFINITY},
        {"ok", EDDY_FIELD_BOOL, false, false, -INFINITY, INFINITY},
        {"r", EDDY_FIELD_STRING, false, false, -INFINITY, INFINITY},
        {"n", EDDY_FIELD_NUMBER, false, false, -INFINITY, INFINITY},
    };
    assert_int_equal(eddy_topology_field_count(topo), 8);
    for (size_t i = 0; i < 8; i++) {
        const eddy_field_rule_t *r = eddy_topology_field_rule(topo, i);
        assert_string_equal(eddy_topology_field_name(topo, i), want[i].name);
        if (r->type != want[i].type || r->required != want[i].required ||
            r->coerce != want[i].coerce || r->min != want[i].min || r->max != want[i].max)
            fail_msg("field %s: %s%s%s %g..%g", want[i].name, eddy_field_type_name(r->type),
                     r->required ? " required" : "", r->coerce ? " coerce" : "", r->min, r->max);
    }
    /* describe --json shows the rules with the field table, and the bound. */
    json_t *j = eddy_topology_to_json(topo);
    json_t *status = json_array_get(json_object_get(j, "fields"), 1);
    assert_string_equal(json_string_value(json_object_get(status, "need")), "integer");
    assert_true(json_is_true(json_object_get(status, "required")));
    assert_true(json_is_true(json_object_get(status, "coerce")));
    assert_true(json_real_value(json_object_get(status, "min")) == 100);
    assert_true(json_real_value(json_object_get(status, "max")) == 599);
    json_t *ok = json_array_get(json_object_get(j, "fields"), 5);
    assert_true(json_is_false(json_object_get(ok, "required")));
    assert_null(json_object_get(ok, "coerce"));
    assert_null(json_object_get(ok, "min"));
    json_t *ts = json_object_get(json_object_get(j, "source"), "timestamp");
    assert_int_equal(json_integer_value(json_object_get(ts, "max_future_ms")), 3600000);
    json_decref(j);
    eddy_topology_destroy(topo);

    /* Without max_future, eddy run's setting applies: null in describe. */
    topo = load_example("activity.json");
    j = eddy_topology_to_json(topo);
    ts = json_object_get(json_object_get(j, "source"), "timestamp");
    assert_true(json_is_null(json_object_get(ts, "max_future_ms")));
    json_decref(j);
    eddy_topology_destroy(topo);
}

#define FIELDS(decls, aggs)                                                                        \
    "{" SOURCE ",'fields':{" decls "},'stores':[{" STORE_HEAD WINDOW ",'aggregates':[" aggs "]}]}"
#define WHERE(name, text) "{'name':'" name "','op':'count_if','where':'" text "'}"

static void test_bad_fields(void **state)
{
    static const struct {
        const char *json, *error;
    } cases[] = {
        {"{" SOURCE ",'fields':[]}",
         "bad.json: $.fields: expected an object of field declarations by name, such as "
         "{\"latency_ms\": {\"type\": \"number\", \"min\": 0}}, got an empty array"},
        {FIELDS("'a':'number'", COUNT),
         "bad.json: $.fields.a: expected an object such as {\"type\": \"number\", \"min\": 0}, got "
         "\"number\""},
        {FIELDS("'a':{}", COUNT), "bad.json: $.fields.a: missing \"type\" (expected \"number\", "
                                  "\"integer\", \"string\" or \"boolean\")"},
        {FIELDS("'a':{'type':'numbr'}", COUNT),
         "bad.json: $.fields.a.type: expected \"number\", \"integer\", \"string\" or \"boolean\", "
         "got \"numbr\"; did you mean \"number\"?"},
        {FIELDS("'a':{'type':'number','mx':1}", COUNT),
         "bad.json: $.fields.a.mx: unknown key in a field declaration; did you mean \"max\"?"},
        {FIELDS("'a':{'type':'number','range':[0,1]}", COUNT),
         "bad.json: $.fields.a.range: unknown key in a field declaration (it takes type, coerce, "
         "min, max)"},
        {FIELDS("'a':{'type':'number','coerce':'yes'}", COUNT),
         "bad.json: $.fields.a.coerce: expected true (read a string such as \"503\" as the "
         "number 503) or false, got \"yes\""},
        {FIELDS("'a':{'type':'number','min':'0'}", COUNT),
         "bad.json: $.fields.a.min: expected a number, got \"0\""},
        {FIELDS("'a':{'type':'string','coerce':true}", COUNT),
         "bad.json: $.fields.a.coerce: coerce reads a string such as \"503\" as a number: it is "
         "for fields of type number or integer, not string"},
        {FIELDS("'a':{'type':'boolean','max':1}", COUNT),
         "bad.json: $.fields.a.max: a range (max) is for fields of type number or integer, not "
         "boolean"},
        {FIELDS("'a':{'type':'integer','min':10,'max':5}", COUNT),
         "bad.json: $.fields.a.max: expected max >= min (10), got 5"},
        {FIELDS("'lattency':{'type':'number'}", "{'name':'m','op':'mean','field':'latency'}"),
         "bad.json: $.fields.lattency: field \"lattency\" is declared but the topology does not "
         "read it (a declaration of a field no store reads would check nothing); did you mean "
         "\"latency\"?"},
        {FIELDS("'x-y':{'type':'number'}", COUNT),
         "bad.json: $.fields[\"x-y\"]: field \"x-y\" is declared but the topology does not read "
         "it (a declaration of a field no store reads would check nothing)"},
        {FIELDS("'ts':{'type':'number'}", COUNT),
         "bad.json: $.fields.ts: \"ts\" is the timestamp field: its format and max_future are "
         "declared at source.timestamp"},
        {FIELDS("'a':{'type':'number'}", WHERE("e", "a == \\'x\\'")),
         "bad.json: $.fields.a.type: declared number, but the field is compared with a string at "
         "$.stores[0].aggregates[0].where"},
        {FIELDS("'v':{'type':'string'}", "{'name':'m','op':'mean','field':'v'}"),
         "bad.json: $.fields.v.type: declared string, but the field is read as a number (by a "
         "mean) at $.stores[0].aggregates[0].field"},
        {FIELDS("'a':{'type':'boolean'}", WHERE("e", "a >= 500")),
         "bad.json: $.fields.a.type: declared boolean, but the field is compared with a number "
         "at $.stores[0].aggregates[0].where"},
        {AGGS(WHERE("e", "a == \\'x\\'") "," WHERE("f", "a > 5")),
         "bad.json: $.stores[0].aggregates[1].where: field \"a\" is compared with a number here "
         "but compared with a string at $.stores[0].aggregates[0].where; no value is both, so "
         "one of them could never hold"},
        {AGGS(WHERE("e", "a == 1 or a == \\'1\\'")),
         "bad.json: $.stores[0].aggregates[0].where: field \"a\" is compared with a number and "
         "compared with a string; no value is both, so one of them could never hold"},
        {AGGS("{'name':'s','op':'sum','field':'b'}," WHERE("e", "b == true")),
         "bad.json: $.stores[0].aggregates[1].where: field \"b\" is compared with true or false "
         "here but read as a number (by a sum) at $.stores[0].aggregates[0].field; no value is "
         "both, so one of them could never hold"},
        {AGGS(WHERE("e", "ts > 0")),
         "bad.json: $.stores[0].aggregates[0].where: field \"ts\" is compared with a number here "
         "but the timestamp, a number or a string (format auto) at $.source.timestamp; give the "
         "timestamp the format it has, epoch_ms or iso8601"},
        {"{'name':'t','source':{'topic':'in','timestamp':{'field':'ts','format':'epoch_ms'}},"
         "'stores':[{" STORE_HEAD WINDOW ",'aggregates':[" WHERE("e", "ts == \\'x\\'") "]}]}",
         "bad.json: $.stores[0].aggregates[0].where: field \"ts\" is compared with a string here "
         "but the timestamp, a number (format epoch_ms) at $.source.timestamp; no value is both, "
         "so one of them could never hold"},
        {"{'name':'t','source':{'topic':'in','timestamp':{'field':'ts','max_future':-5}}}",
         "bad.json: $.source.timestamp.max_future: expected a duration such as \"1m\" or 60000, "
         "got -5"},
        {"{'name':'t','source':{'topic':'in','timestamp':{'field':'ts','max_future':'soon'}}}",
         "bad.json: $.source.timestamp.max_future: expected a duration such as \"1m\" or 60000, "
         "got \"soon\""},
        {"{'name':'t','source':{'topic':'in','timestamp':{'field':'ts','max_futur':'1h'}}}",
         "bad.json: $.source.timestamp.max_futur: unknown key in a timestamp; did you mean "
         "\"max_future\"?"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[1024] = "";
        eddy_topology_t *topo = load_quoted(cases[i].json, err, sizeof(err));
        if (topo)
            fail_msg("case %zu loaded: %s", i, cases[i].json);
        if (strcmp(err, cases[i].error))
            fail_msg("case %zu: %s\n  got  %s\n  want %s", i, cases[i].json, err, cases[i].error);
    }
}

/* The seed-001 endpoints of monitoring.json are views; each resolves to its store. */
static void test_monitoring_views(void **state)
{
    eddy_topology_t *topo = load_example("monitoring.json");
    static const struct {
        const char *name, *route, *store;
        int64_t windows, last_ms;
        eddy_view_combine_t combine;
    } want[] = {
        {"requests_current", "/api/metrics/requests/current", "requests_per_endpoint", 0, 300000,
         EDDY_VIEW_MERGE},
        {"endpoint", "/api/metrics/endpoint/{endpoint}", "endpoint_stats", 11, 0, EDDY_VIEW_SERIES},
        {"errors", "/api/metrics/errors", "status_codes", 1, 0, EDDY_VIEW_MERGE},
        {"regions", "/api/metrics/regions", "region_stats", 0, 300000, EDDY_VIEW_MERGE},
    };
    assert_int_equal(eddy_topology_view_count(topo), 4);
    for (size_t i = 0; i < 4; i++) {
        const eddy_view_def_t *v = eddy_topology_view(topo, i);
        assert_string_equal(v->name, want[i].name);
        assert_string_equal(v->route, want[i].route);
        assert_ptr_equal(v->store, eddy_topology_store_by_name(topo, want[i].store));
        assert_int_equal(v->windows, want[i].windows);
        assert_int_equal(v->last_ms, want[i].last_ms);
        assert_int_equal(v->combine, want[i].combine);
        assert_int_equal(v->at, EDDY_VIEW_STREAM_TIME);
        assert_int_equal(eddy_view_def_window_count(v), want[i].windows ? want[i].windows : 5);
    }
    const eddy_view_def_t *v = eddy_topology_view(topo, 1);
    assert_true(v->key_from_param);
    assert_string_equal(v->param, "endpoint");
    v = eddy_topology_view(topo, 2);
    assert_true(v->agg_selected[0]);
    assert_false(v->agg_selected[1]); /* failed: only in having */
    assert_string_equal(eddy_predicate_text(v->having), "failed > 0");
    v = eddy_topology_view(topo, 3);
    assert_int_equal(v->share, 0);
    json_t *j = eddy_topology_to_json(topo);
    json_t *views = json_object_get(j, "views");
    assert_int_equal(json_array_size(views), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(views, 2), "having")),
                        "failed > 0");
    json_t *graph = json_object_get(j, "graph");
    assert_int_equal(json_array_size(json_object_get(graph, "nodes")), 9);
    assert_int_equal(json_array_size(json_object_get(graph, "edges")), 8);
    json_decref(j);
    eddy_topology_destroy(topo);
}

/* A topology of two stores, s (tumbling 1m, 2 h retention: 120 windows) and h
 * (hopping 5m by 1m), and the views `views`. */
#define VIEWS(views)                                                                               \
    "{" SOURCE ",'stores':[{" STORE_HEAD                                                           \
    "'window':{'type':'tumbling','size':'1m','retention':'2h'},'aggregates':[" COUNT               \
    ",{'name':'errors','op':'count_if','where':'status >= 500'},"                                  \
    "{'name':'p50','op':'percentile','field':'x','q':0.5}]},"                                      \
    "{'name':'h','group_by':[],'window':{'type':'hopping','size':'5m','advance':'1m'},"            \
    "'aggregates':[" COUNT "]}],'views':{" views "}}"

static void test_bad_views(void **state)
{
    static const struct {
        const char *json, *error;
    } cases[] = {
        {VIEWS("'v':{'route':'/api/v','store':'nope','windows':1}"),
         "bad.json: $.views.v.store: no store named \"nope\" (the stores are s, h)"},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'aggregates':['count','p99']}"),
         "bad.json: $.views.v.aggregates: store \"s\" has no aggregate \"p99\" (it has count, "
         "errors, p50)"},
        {VIEWS("'v':{'route':'api/v','store':'s','windows':1}"),
         "bad.json: $.views.v.route: expected a route such as "
         "\"/api/metrics/endpoint/{endpoint}\": \"/api/\", then non-empty segments of letters, "
         "digits, '-', '.', '_', '~', or one {parameter}, got \"api/v\""},
        {VIEWS("'v':{'route':'/api/v//x','store':'s','windows':1}"),
         "bad.json: $.views.v.route: expected a route such as "
         "\"/api/metrics/endpoint/{endpoint}\": \"/api/\", then non-empty segments of letters, "
         "digits, '-', '.', '_', '~', or one {parameter}, got \"/api/v//x\""},
        {VIEWS("'v':{'route':'/api/{a}/{b}','store':'s','windows':1,'key':'{a}'}"),
         "bad.json: $.views.v.route: a route has at most one {parameter} (the group key), got "
         "\"/api/{a}/{b}\""},
        {VIEWS("'v':{'route':'/api/stores/x','store':'s','windows':1}"),
         "bad.json: $.views.v.route: the route \"/api/stores/x\" belongs to eddy's own API "
         "(/api/stores); choose another, such as \"/api/metrics/...\""},
        {VIEWS("'v':{'route':'/api/v/{endpoint}','store':'s','windows':1}"),
         "bad.json: $.views.v: the route's parameter {endpoint} is not used: add \"key\": "
         "\"{endpoint}\" to select the group key by it"},
        {VIEWS("'v':{'route':'/api/v/{endpoint}','store':'s','windows':1,'key':'{ep}'}"),
         "bad.json: $.views.v.key: expected \"{endpoint}\" (the route's parameter) or a literal "
         "group key, got \"{ep}\""},
        {VIEWS("'v':{'route':'/api/v','store':'s'}"),
         "bad.json: $.views.v: missing \"windows\" (how many windows, the current one included) "
         "or \"last\" (a duration of event time, such as \"5m\")"},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'last':'5m'}"),
         "bad.json: $.views.v.last: give either \"windows\" or \"last\", not both"},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':0}"),
         "bad.json: $.views.v.windows: expected how many windows, the current one included (1 "
         "to 4096), got 0"},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':121}"),
         "bad.json: $.views.v.windows: store \"s\" keeps 120 windows (retention / advance), the "
         "view asks for 121"},
        {VIEWS("'v':{'route':'/api/v','store':'h','last':'5m','combine':'merge'}"),
         "bad.json: $.views.v.last: store \"h\" has hopping windows, which overlap: merging 5 of "
         "them would count events several times; use \"windows\": 1 (the current window already "
         "covers the last 5m) or \"combine\": \"series\""},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'combine':'sum'}"),
         "bad.json: $.views.v.combine: expected \"series\" or \"merge\", got \"sum\""},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'at':'wall'}"),
         "bad.json: $.views.v.at: expected \"stream_time\" or \"now\", got \"wall\""},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'having':'errors >'}"),
         "bad.json: $.views.v.having: column 9: expected a number, a quoted string, true or false "
         "after '>', got the end of the text"},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'having':'status > 1'}"),
         "bad.json: $.views.v.having: \"having\" compares \"key\" or aggregates of store \"s\" "
         "(count, errors, p50), got \"status\""},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'share':'count'}"),
         "bad.json: $.views.v.share: \"share\" needs \"combine\": \"merge\" (a share of the total "
         "over keys)"},
        {VIEWS("'v':{'route':'/api/v','store':'s','windows':1,'combine':'merge','share':'p50'}"),
         "bad.json: $.views.v.share: a share divides a count, count_if or sum by its total over "
         "keys, but \"p50\" is a percentile"},
        {VIEWS("'v':{'route':'/api/v/{a}','store':'s','windows':1,'key':'{a}'},"
               "'w':{'route':'/api/v/{b}','store':'s','windows':1,'key':'{b}'}"),
         "bad.json: $.views.w.route: the route \"/api/v/{b}\" is already served by view \"v\" "
         "(\"/api/v/{a}\")"},
        {VIEWS("'v':{'route':'/api/v','store':'s','window':1}"),
         "bad.json: $.views.v.window: unknown key in a view; did you mean \"windows\"?"},
        {VIEWS("'a b':{'route':'/api/v','store':'s','windows':1}"),
         "bad.json: $.views[\"a b\"]: expected a view name of 1 to 64 letters, digits, '_' or "
         "'-', got \"a b\""},
        {"{" SOURCE ",'stores':[{" STORE_HEAD WINDOW ",'aggregates':[" COUNT "]}],'views':[]}",
         "bad.json: $.views: expected an object of views by name, such as {\"errors\": "
         "{\"route\": \"/api/metrics/errors\", ...}}, got an empty array"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[1024] = "";
        eddy_topology_t *topo = load_quoted(cases[i].json, err, sizeof(err));
        if (topo)
            fail_msg("case %zu loaded", i);
        if (strcmp(err, cases[i].error))
            fail_msg("case %zu:\n  got  %s\n  want %s", i, err, cases[i].error);
    }
    /* A literal key and a view of the wall clock load. */
    char err[1024] = "";
    eddy_topology_t *topo = load_quoted(
        VIEWS("'v':{'route':'/api/v','store':'s','key':'/api/orders','windows':3,'at':'now'}"), err,
        sizeof(err));
    if (!topo)
        fail_msg("%s", err);
    assert_string_equal(eddy_topology_view(topo, 0)->key, "/api/orders");
    assert_int_equal(eddy_topology_view(topo, 0)->at, EDDY_VIEW_NOW);
    eddy_topology_destroy(topo);
}

static void test_bad_files(void **state)
{
    static const struct {
        const char *file, *error;
    } cases[] = {
        {"syntax_error.json", "line 3, column 66: invalid JSON: string or '}' expected near '}'"},
        {"duplicate_key.json", "line 8, column 57: invalid JSON: duplicate object key near "
                               "'\"size\"'"},
        {"empty.json", "line 1, column 0: invalid JSON: '[' or '{' expected near end of file"},
        {"bad_duration.json", "$.stores[1].window.size: expected a duration such as \"1m\" or "
                              "60000, got \"abc\""},
        {"unknown_key.json",
         "$.stores[0].window.retension: unknown key in a window; did you mean \"retention\"?"},
        {"retention_too_short.json",
         "$.stores[0].window.retention: expected a retention of at least size + grace = 5m + "
         "30s = 5m30s (or windows are deleted before they close), got 5m"},
        {"ratio_to_percentile.json",
         "$.stores[0].aggregates[2].numerator: a ratio divides count, count_if or sum "
         "aggregates, but \"p50\" is a percentile"},
        {"bad_predicate.json",
         "$.stores[0].aggregates[1].where: column 8: expected a comparison operator (==, !=, <, "
         "<=, >, >=) after 'status', got 'is'"},
        {"field_type_conflict.json",
         "$.fields.status.type: declared string, but the field is compared with a number at "
         "$.stores[0].aggregates[1].where"},
        {"field_not_read.json",
         "$.fields.latncy_ms: field \"latncy_ms\" is declared but the topology does not read it "
         "(a declaration of a field no store reads would check nothing); did you mean "
         "\"latency_ms\"?"},
        {"does_not_exist.json", "cannot read: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[512], want[1024], err[1024] = "";
        snprintf(path, sizeof(path), BAD_DATA "%s", cases[i].file);
        snprintf(want, sizeof(want), "%s: %s", path, cases[i].error);
        eddy_topology_t *topo = eddy_topology_load_file(path, err, sizeof(err));
        if (topo)
            fail_msg("%s loaded", cases[i].file);
        if (strcmp(err, want))
            fail_msg("%s:\n  got  %s\n  want %s", cases[i].file, err, want);
    }
    char err[1024];
    assert_null(eddy_topology_load_file(BAD_DATA, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read: it is a directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitoring_example),
        cmocka_unit_test(test_activity_example),
        cmocka_unit_test(test_describe_json),
        cmocka_unit_test(test_format_conveniences),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_monitoring_views),
        cmocka_unit_test(test_bad_views),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_bad_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
