/*
 * test_outliers.c — what a live `eddy run` serves for percentiles when a window
 * holds outliers, checked against exact rank quantiles computed here from the
 * values sent (docs/topology.md: the q-quantile is x[floor(q * (n - 1))] of the n
 * values in ascending order; the answer is within 1% of it).
 *
 *   1. Windows of 100 latencies of 10-19 ms plus one or a few outliers of every
 *      kind (1e308, 1e-300, -1e308, DBL_MAX twice with a tiny positive): p50, p95
 *      and p99 are within 1% of the exact ones, the mean is a number (two DBL_MAX
 *      sum beyond the double range) and within 1e-12 of the exact one, and
 *      no answer says "degraded" — in the windows, a key's series, both kinds of
 *      view (their merge of several windows too) and the sink's records.
 *   2. A window fed more distinct buckets than a sketch keeps (2048, the bound
 *      docs/topology.md states): its answers list exactly the percentiles whose
 *      rank fell among the folded values ("degraded": ["p50"]), the others stay
 *      within 1%; the sketch that collapsed in a task is counted by
 *      eddy_sketch_collapses_total, one that only collapses when partitions are
 *      merged for the answer is flagged but not counted.
 *   3. A changelog written in the sketch's first serialization (version 1) is
 *      restored into a fresh state dir and served exactly (a collapsed one
 *      flagged), and new records merge into the restored windows.
 *
 * The topology is written by the test into its temp dir, so that the value ranges
 * the examples declare cannot send the outliers to the dead-letter topic.
 */
#include "eddy_proc.h"
#include "http_client.h"
#include "test_support.h"
#include "topic_reader.h"

#include "engine/broker.h"
#include "stores/changelog.h"

#include <float.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0         1700000040000LL /* a window start (a multiple of 60 s) */
#define MINUTE     60000LL
#define PARTITIONS 4

typedef struct fixture_s {
    eddy_broker_t *broker;
    char dir[256];       /* temp dir: topologies and state dirs */
    char topo_new[300];  /* topology reading lat-events (tests 1 and 2) */
    char topo_old[300];  /* the same reading old-events (test 3) */
    char state_dir[300]; /* state dir of the running instance */
} fixture_t;

/* The store's declaration, with the source topic and sink topic filled in. */
static const char topology_fmt[] =
    "{\"name\": \"outliers\",\n"
    " \"source\": {\"topic\": \"%s\", \"format\": \"json\",\n"
    "            \"timestamp\": {\"field\": \"ts\", \"format\": \"epoch_ms\"}},\n"
    " \"stores\": [{\n"
    "   \"name\": \"latency\", \"group_by\": [\"endpoint\"],\n"
    "   \"window\": {\"type\": \"tumbling\", \"size\": \"1m\", \"grace\": \"1s\",\n"
    "              \"retention\": \"1d\"},\n"
    "   \"aggregates\": [\n"
    "     {\"name\": \"count\", \"op\": \"count\"},\n"
    "     {\"name\": \"p50\", \"op\": \"percentile\", \"field\": \"latency_ms\", \"q\": 0.5},\n"
    "     {\"name\": \"p95\", \"op\": \"percentile\", \"field\": \"latency_ms\", \"q\": 0.95},\n"
    "     {\"name\": \"p99\", \"op\": \"percentile\", \"field\": \"latency_ms\", \"q\": 0.99},\n"
    "     {\"name\": \"mean\", \"op\": \"mean\", \"field\": \"latency_ms\"}],\n"
    "   \"sink\": {\"topic\": \"%s\", \"emit\": \"on_close\"}}],\n"
    " \"views\": {\n"
    "   \"series\": {\"route\": \"/api/lat/{endpoint}\", \"store\": \"latency\",\n"
    "              \"key\": \"{endpoint}\", \"windows\": 10, \"combine\": \"series\"},\n"
    "   \"merged\": {\"route\": \"/api/lat-merged\", \"store\": \"latency\", \"windows\": 10,\n"
    "              \"combine\": \"merge\"},\n"
    "   \"p99_only\": {\"route\": \"/api/lat-p99/{endpoint}\", \"store\": \"latency\",\n"
    "                \"key\": \"{endpoint}\", \"windows\": 10, \"combine\": \"series\",\n"
    "                \"aggregates\": [\"p99\"]}}}\n";

static void write_topology(const char *path, const char *source, const char *sink)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, topology_fmt, source, sink);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(1, errstr, sizeof(errstr));
    if (!fx->broker)
        return -1;
    eddy_test_mkdtemp("outliers", fx->dir, sizeof(fx->dir));
    snprintf(fx->topo_new, sizeof(fx->topo_new), "%s/new.json", fx->dir);
    snprintf(fx->topo_old, sizeof(fx->topo_old), "%s/old.json", fx->dir);
    write_topology(fx->topo_new, "lat-events", "lat-out");
    write_topology(fx->topo_old, "old-events", "old-out");
    static const char *const topics[] = {"lat-events", "old-events"};
    for (int i = 0; i < 2; i++)
        if (eddy_broker_create_topic(fx->broker, topics[i], PARTITIONS, errstr, sizeof(errstr)))
            return -1;
    if (eddy_broker_create_topic(fx->broker, "lat-out", 1, errstr, sizeof(errstr)) ||
        eddy_broker_create_topic(fx->broker, "old-out", 1, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, fx->topo_new, "out", PARTITIONS) ||
        eddy_test_create_changelogs(fx->broker, fx->topo_old, "old", PARTITIONS))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_broker_destroy(fx->broker);
    eddy_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static pid_t start_eddy(fixture_t *fx, const char *topology, const char *app, const char *dir,
                        int port)
{
    snprintf(fx->state_dir, sizeof(fx->state_dir), "%s/%s", fx->dir, dir);
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(fx->broker),
                           .topology = topology,
                           .app = app,
                           .state_dir = fx->state_dir,
                           .port = port};
    return eddy_test_run_start(&run);
}

/* --- what the test sends, and the exact answers ------------------------------------- */

/* The values one (window, key) was sent; `degraded` lists the percentiles the
 * answer must flag ("" for none, else e.g. "p50"). */
typedef struct group_s {
    int64_t start;        /* window start */
    const char *key;      /* endpoint */
    double *v;            /* every value sent */
    size_t n, cap;        /* used, allocated */
    const char *degraded; /* the percentiles expected in "degraded", comma-separated */
} group_t;

#define MAX_GROUPS 16

typedef struct sent_s {
    group_t g[MAX_GROUPS]; /* one per (window, key) */
    size_t n;              /* used */
    rd_kafka_t *rk;        /* producer */
    int64_t records;       /* records produced */
} sent_t;

static void sent_open(sent_t *s, const char *bootstrap)
{
    memset(s, 0, sizeof(*s));
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(s->rk);
}

static void sent_flush(sent_t *s)
{
    assert_int_equal(rd_kafka_flush(s->rk, 30000), 0);
}

static void sent_close(sent_t *s)
{
    sent_flush(s);
    rd_kafka_destroy(s->rk);
    for (size_t i = 0; i < s->n; i++)
        free(s->g[i].v);
}

static group_t *group(sent_t *s, int64_t start, const char *key, const char *degraded)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->g[i].start == start && !strcmp(s->g[i].key, key))
            return &s->g[i];
    assert_true(s->n < MAX_GROUPS);
    group_t *g = &s->g[s->n++];
    *g = (group_t){.start = start, .key = key, .degraded = degraded};
    return g;
}

/* Produces one event to `partition` of `topic` with latency_ms = v (printed so
 * that it reads back as the very same double) and remembers v. */
static void send_value(sent_t *s, const char *topic, int partition, group_t *g, int64_t ts,
                       double v)
{
    char buf[256];
    int len = snprintf(buf, sizeof(buf), "{\"ts\":%lld,\"endpoint\":\"%s\",\"latency_ms\":%.17g}",
                       (long long)ts, g->key, v);
    assert_true(len > 0 && (size_t)len < sizeof(buf));
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(s->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                    RD_KAFKA_V_KEY(g->key, strlen(g->key)),
                                    RD_KAFKA_V_VALUE(buf, (size_t)len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(s->rk, 10);
    assert_int_equal(err, 0);
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 128;
        g->v = realloc(g->v, g->cap * sizeof(double));
        assert_non_null(g->v);
    }
    g->v[g->n++] = v;
    s->records++;
}

/* 100 latencies of 10-19.99 ms over the partitions, the first event at ts. */
static void send_latencies(sent_t *s, const char *topic, group_t *g, int64_t ts, int count)
{
    for (int i = 0; i < count; i++)
        send_value(s, topic, i % PARTITIONS, g, ts + i, 10.0 + (double)((i * 37) % 1000) / 100.0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The exact q-quantile of the values: x[floor(q * (n - 1))] in ascending order. */
static double exact_quantile(const double *v, size_t n, double q)
{
    double *sorted = malloc(n * sizeof(double));
    memcpy(sorted, v, n * sizeof(double));
    qsort(sorted, n, sizeof(double), cmp_double);
    double x = sorted[(size_t)floor(q * (double)(n - 1))];
    free(sorted);
    return x;
}

/* Within 1% of want (values of magnitude below 1e-9 count as 0). */
static bool within(double got, double want)
{
    if (fabs(want) < 1e-9)
        return fabs(got) < 1e-9;
    return fabs(got - want) <= 0.01 * fabs(want) * (1 + 1e-9);
}

/* "degraded" of an answer as a comma-separated list ("" when absent); fails the
 * test if it is present but empty or not an array of strings. */
static void degraded_of(const json_t *obj, char *out, size_t size)
{
    out[0] = '\0';
    json_t *d = json_object_get(obj, "degraded");
    if (!d)
        return;
    assert_true(json_is_array(d));
    assert_true(json_array_size(d) > 0);
    size_t i;
    json_t *name;
    json_array_foreach(d, i, name)
    {
        assert_true(json_is_string(name));
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", i ? "," : "", json_string_value(name));
    }
}

/* Fails the test with the message and the answer it is about. */
#define FAIL_ANSWER(w, ...)                                                                        \
    do {                                                                                           \
        char *text_ = json_dumps((w), JSON_COMPACT);                                               \
        print_error("answer: %.2000s\n", text_ ? text_ : "?");                                     \
        free(text_);                                                                               \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)

static const struct {
    const char *name;
    double q;
} pcts[] = {{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}};

/* A window (or merged row) of the values v[0..n) against the exact answers:
 * count, mean, every percentile not in `degraded` within 1%, and "degraded"
 * exactly as expected. `only` limits the check to one aggregate (a view that
 * selects it), NULL for all. */
static void check_answer(const json_t *w, const double *v, size_t n, const char *degraded,
                         const char *only, const char *what)
{
    char got_degraded[64];
    degraded_of(w, got_degraded, sizeof(got_degraded));
    if (strcmp(got_degraded, degraded))
        FAIL_ANSWER(w, "%s: \"degraded\" is [%s], expected [%s]", what, got_degraded, degraded);
    if (!only) {
        assert_int_equal(json_integer_value(json_object_get(w, "count")), (json_int_t)n);
        /* The mean as a sum of v / n, which cannot overflow where the sum would. */
        double want = 0;
        for (size_t i = 0; i < n; i++)
            want += v[i] / (double)n;
        json_t *mean = json_object_get(w, "mean");
        if (!json_is_number(mean))
            FAIL_ANSWER(w, "%s: mean is not a number", what);
        if (!(fabs(json_number_value(mean) - want) <= 1e-12 * fabs(want)))
            FAIL_ANSWER(w, "%s: mean %.17g, exact %.17g", what, json_number_value(mean), want);
    }
    for (size_t p = 0; p < sizeof(pcts) / sizeof(pcts[0]); p++) {
        if (only && strcmp(only, pcts[p].name))
            continue;
        json_t *got = json_object_get(w, pcts[p].name);
        double want = exact_quantile(v, n, pcts[p].q);
        if (!json_is_number(got))
            FAIL_ANSWER(w, "%s: %s is not a number", what, pcts[p].name);
        bool flagged = strstr(degraded, pcts[p].name) != NULL;
        if (!flagged && !within(json_number_value(got), want))
            FAIL_ANSWER(w, "%s: %s = %.17g, exact %.17g (more than 1%% off)", what, pcts[p].name,
                        json_number_value(got), want);
        /* A flag that is not needed would be a false alarm: here the folded
         * values are reported far above what they were. */
        if (flagged && within(json_number_value(got), want))
            FAIL_ANSWER(w, "%s: %s = %.17g is flagged but within 1%% of %.17g", what, pcts[p].name,
                        json_number_value(got), want);
    }
}

static const json_t *find_window(const json_t *windows, int64_t start, const char *key)
{
    size_t i;
    json_t *w;
    json_array_foreach(windows, i, w)
    {
        if (json_integer_value(json_object_get(w, "start")) == start &&
            !strcmp(json_string_value(json_object_get(w, "key")), key))
            return w;
    }
    return NULL;
}

static json_t *get_ok(int port, const char *path)
{
    int status = 0;
    json_t *body = eddy_test_get_json(port, path, &status);
    if (status != 200 || !body)
        fail_msg("GET %s: status %d", path, status);
    assert_true(json_is_true(json_object_get(body, "complete")));
    return body;
}

/* Every group against /api/stores/latency/windows, its key's series and the
 * series view. */
static void check_windows(int port, const sent_t *s)
{
    json_t *body = get_ok(port, "/api/stores/latency/windows");
    json_t *windows = json_object_get(body, "windows");
    for (size_t i = 0; i < s->n; i++) {
        const group_t *g = &s->g[i];
        char what[128], path[256];
        snprintf(what, sizeof(what), "window %lld/%s", (long long)g->start, g->key);
        const json_t *w = find_window(windows, g->start, g->key);
        if (!w)
            fail_msg("%s: not served", what);
        check_answer(w, g->v, g->n, g->degraded, NULL, what);

        snprintf(path, sizeof(path), "/api/stores/latency/keys/%%2F%s", g->key + 1);
        json_t *series = get_ok(port, path);
        snprintf(what, sizeof(what), "key series %lld/%s", (long long)g->start, g->key);
        w = find_window(json_object_get(series, "windows"), g->start, g->key);
        if (!w)
            fail_msg("%s: not served", what);
        check_answer(w, g->v, g->n, g->degraded, NULL, what);
        json_decref(series);

        /* Views answer as of the stream time (the last window sent): ask as of
         * this window's end, with enough windows to include it. */
        snprintf(path, sizeof(path), "/api/lat/%%2F%s?at=%lld", g->key + 1,
                 (long long)(g->start + MINUTE - 1));
        json_t *view = get_ok(port, path);
        snprintf(what, sizeof(what), "series view %lld/%s", (long long)g->start, g->key);
        w = find_window(json_object_get(view, "windows"), g->start, g->key);
        if (!w)
            fail_msg("%s: not served", what);
        check_answer(w, g->v, g->n, g->degraded, NULL, what);
        json_decref(view);

        /* A view selecting p99 only lists p99 in "degraded", if at all. */
        snprintf(path, sizeof(path), "/api/lat-p99/%%2F%s?at=%lld", g->key + 1,
                 (long long)(g->start + MINUTE - 1));
        view = get_ok(port, path);
        snprintf(what, sizeof(what), "p99 view %lld/%s", (long long)g->start, g->key);
        w = find_window(json_object_get(view, "windows"), g->start, g->key);
        if (!w)
            fail_msg("%s: not served", what);
        assert_null(json_object_get(w, "p50"));
        check_answer(w, g->v, g->n, strstr(g->degraded, "p99") ? "p99" : "", "p99", what);
        json_decref(view);
    }
    json_decref(body);
}

/* The merge view over the windows [from, from + n * 1m) of one key: one row that
 * merges them, against the exact answers over all their values. */
static void check_merged(int port, const sent_t *s, const char *key, int64_t from, int n,
                         const char *degraded)
{
    char path[256], what[128];
    snprintf(path, sizeof(path), "/api/lat-merged?at=%lld&windows=%d",
             (long long)(from + n * MINUTE - 1), n);
    json_t *view = get_ok(port, path);
    snprintf(what, sizeof(what), "merge view of %d windows from %lld, key %s", n, (long long)from,
             key);
    const json_t *row = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(view, "keys"), i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "key")), key))
            row = r;
    }
    if (!row)
        fail_msg("%s: no row", what);
    double *all = NULL;
    size_t total = 0;
    for (size_t g = 0; g < s->n; g++) {
        if (strcmp(s->g[g].key, key) || s->g[g].start < from || s->g[g].start >= from + n * MINUTE)
            continue;
        all = realloc(all, (total + s->g[g].n) * sizeof(double));
        memcpy(all + total, s->g[g].v, s->g[g].n * sizeof(double));
        total += s->g[g].n;
    }
    assert_true(total > 0);
    check_answer(row, all, total, degraded, NULL, what);
    free(all);
    json_decref(view);
}

/* eddy_sketch_collapses_total of store `latency`: the sum over the partitions
 * and the value of `partition`. */
static void collapses(int port, int partition, double *sum, double *of_partition)
{
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http("127.0.0.1", port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    *sum = 0;
    *of_partition = 0;
    bool family = false;
    char want[64];
    snprintf(want, sizeof(want), "partition=\"%d\"", partition);
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "# TYPE eddy_sketch_collapses_total counter", 41))
            family = true;
        if (strncmp(line, "eddy_sketch_collapses_total{", 28) || !strstr(line, "store=\"latency\""))
            continue;
        double v = atof(strrchr(line, ' ') + 1);
        *sum += v;
        if (strstr(line, want))
            *of_partition = v;
    }
    eddy_test_http_resp_free(&r);
    if (!family)
        fail_msg("/metrics has no counter eddy_sketch_collapses_total");
}

/* Reads `topic` until it holds every final window of the groups; each record
 * must carry the same answers as the query. */
static void check_sink(fixture_t *fx, const char *topic, const sent_t *s)
{
    eddy_test_topic_t out = {0};
    size_t found = 0;
    for (int tries = 0; tries < 300 && found < s->n; tries++) {
        if (tries) {
            struct timespec ts = {0, 100 * 1000000};
            nanosleep(&ts, NULL);
        }
        eddy_test_topic_free(&out);
        assert_int_equal(eddy_test_read_topic(eddy_broker_bootstraps(fx->broker), topic, &out), 0);
        found = 0;
        for (size_t g = 0; g < s->n; g++)
            for (size_t i = 0; i < out.n; i++) {
                json_t *w = json_loadb(out.recs[i].value, out.recs[i].len, 0, NULL);
                bool same = w && json_integer_value(json_object_get(w, "start")) == s->g[g].start &&
                            !strcmp(json_string_value(json_object_get(w, "key")), s->g[g].key);
                json_decref(w);
                if (same) {
                    found++;
                    break;
                }
            }
    }
    if (found < s->n)
        fail_msg("%s holds %zu of the %zu windows", topic, found, s->n);
    for (size_t g = 0; g < s->n; g++)
        for (size_t i = 0; i < out.n; i++) {
            json_t *w = json_loadb(out.recs[i].value, out.recs[i].len, 0, NULL);
            if (json_integer_value(json_object_get(w, "start")) == s->g[g].start &&
                !strcmp(json_string_value(json_object_get(w, "key")), s->g[g].key)) {
                char what[128];
                snprintf(what, sizeof(what), "sink record %lld/%s", (long long)s->g[g].start,
                         s->g[g].key);
                assert_true(json_is_true(json_object_get(w, "final")));
                check_answer(w, s->g[g].v, s->g[g].n, s->g[g].degraded, NULL, what);
            }
            json_decref(w);
        }
    eddy_test_topic_free(&out);
}

/* Closes every window sent so far: one event per partition an hour later. */
static void close_windows(sent_t *s, const char *topic, int64_t ts)
{
    group_t *g = group(s, ts - ts % MINUTE, "close", "");
    for (int p = 0; p < PARTITIONS; p++)
        send_value(s, topic, p, g, ts, 1.0);
}

/* --- 1 and 2: outliers and the collapse bound ---------------------------------------- */

static void test_outliers(void **state)
{
    fixture_t *fx = *state;
    const char *bs = eddy_broker_bootstraps(fx->broker);
    sent_t s;
    sent_open(&s, bs);

    /* 1. One window per kind of outlier, key /a; latencies over all partitions,
     *    outliers on partition 0. */
    const double outliers[][3] = {
        {1e308, NAN, NAN},          /* the one of the report */
        {1e-300, NAN, NAN},         /* below 1e-9: counts as 0 */
        {-1e308, NAN, NAN},         /* the other sign */
        {DBL_MAX, DBL_MAX, 2.5e-9}, /* a sum beyond the double range, the lowest bucket */
    };
    for (int k = 0; k < 4; k++) {
        group_t *g = group(&s, T0 + k * MINUTE, "/a", "");
        send_latencies(&s, "lat-events", g, g->start, 100);
        for (int j = 0; j < 3 && !isnan(outliers[k][j]); j++)
            send_value(&s, "lat-events", 0, g, g->start + 500 + j, outliers[k][j]);
    }

    /* 2. More distinct buckets than a sketch keeps: 3000 latencies and 2100 values
     *    3% apart (each in its own bucket: buckets are 2% wide). p50's rank falls
     *    among the latencies, which are folded; p95 and p99 fall among the spread
     *    values, which are kept. /deg gets the spread values on partition 0 alone,
     *    whose sketch collapses in its task; /split spreads them over all
     *    partitions: no task's sketch collapses, their merge does. */
    const int64_t w4 = T0 + 4 * MINUTE;
    group_t *deg = group(&s, w4, "/deg", "p50"), *split = group(&s, w4, "/split", "p50");
    send_latencies(&s, "lat-events", deg, w4, 3000);
    send_latencies(&s, "lat-events", split, w4, 3000);
    for (int j = 0; j < 2100; j++) {
        double v = 100.0 * pow(1.03, j);
        send_value(&s, "lat-events", 0, deg, w4 + 10000 + j, v);
        send_value(&s, "lat-events", j % PARTITIONS, split, w4 + 10000 + j, v);
    }
    sent_flush(&s);

    int port = eddy_test_free_port();
    pid_t pid = start_eddy(fx, fx->topo_new, "out", "state-out", port);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, s.records, 120));
    check_windows(port, &s);
    check_merged(port, &s, "/a", T0, 4, "");
    check_merged(port, &s, "/deg", w4, 1, "p50");

    double sum, p0;
    collapses(port, 0, &sum, &p0);
    if (sum != 1 || p0 != 1)
        fail_msg("eddy_sketch_collapses_total{store=\"latency\"}: %g in all, %g on partition 0; "
                 "expected 1 (the sketch of /deg on partition 0)",
                 sum, p0);

    /* The sink's records carry the same; then the same answers after a restart
     * that restores from the changelogs only. */
    close_windows(&s, "lat-events", T0 + 60 * MINUTE);
    sent_flush(&s);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, s.records, 120));
    sent_t closed = s;
    closed.n--; /* the window of the closing events is not final yet */
    check_sink(fx, "lat-out", &closed);
    eddy_test_run_stop(pid, SIGTERM);
    eddy_test_rmtree(fx->state_dir);
    pid = start_eddy(fx, fx->topo_new, "out", "state-out", port);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, s.records, 120));
    check_windows(port, &closed);
    eddy_test_run_stop(pid, SIGTERM);
    sent_close(&s);
}

/* --- 3. a changelog of version 1 ------------------------------------------------------- */

typedef struct bytes_s {
    uint8_t b[4096]; /* content */
    size_t n;        /* used */
} bytes_t;

static void put_byte(bytes_t *o, uint8_t v)
{
    assert_true(o->n < sizeof(o->b));
    o->b[o->n++] = v;
}

static void put_varint(bytes_t *o, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(o, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(o, (uint8_t)v);
}

static void put_f64(bytes_t *o, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        put_byte(o, (uint8_t)(u >> (8 * i)));
}

static uint64_t zigzag(int64_t v)
{
    return v < 0 ? ((uint64_t)(-(v + 1)) << 1) | 1 : (uint64_t)v << 1;
}

/* The bucket of v > 0 in the documented layout: i with v in (gamma^(i-1), gamma^i],
 * gamma = 1.01 / 0.99. (The values used here are far from a bucket's edge.) */
static int64_t bucket_of(double v)
{
    return (int64_t)ceil(log(v) / log(1.01 / 0.99));
}

/*
 * The state of a window of this topology as eddy wrote it with sketch version 1:
 * aggregate format 1 = u8 1, the scalar slots (record count as a zigzag varint,
 * the sum of latency_ms as f64, the count of numeric latency_ms as a zigzag
 * varint), then the sketch's length and bytes. Sketch version 1: u8 1, u8 flags
 * (2: positives collapsed), count; f64 sum, min, max; the zero count; the
 * negative store (0: empty); the positive store as span, zigzag first bucket and
 * span counts. `counts` of `span` buckets from bucket `lo` on.
 */
static void v1_state(bytes_t *o, const double *values, size_t n, bool collapsed, int64_t lo,
                     const uint64_t *counts, size_t span)
{
    double sum = 0, min = INFINITY, max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        sum += values[i];
        min = fmin(min, values[i]);
        max = fmax(max, values[i]);
    }
    bytes_t sk = {.n = 0};
    put_byte(&sk, 1);
    put_byte(&sk, collapsed ? 2 : 0);
    put_varint(&sk, n);
    put_f64(&sk, sum);
    put_f64(&sk, min);
    put_f64(&sk, max);
    put_varint(&sk, 0);
    put_varint(&sk, 0);
    put_varint(&sk, span);
    put_varint(&sk, zigzag(lo));
    for (size_t i = 0; i < span; i++)
        put_varint(&sk, counts[i]);
    put_byte(o, 1);
    put_varint(o, zigzag((int64_t)n));
    put_f64(o, sum);
    put_varint(o, zigzag((int64_t)n));
    put_varint(o, sk.n);
    memcpy(o->b + o->n, sk.b, sk.n);
    o->n += sk.n;
}

static void produce_raw(rd_kafka_t *rk, const char *topic, int partition, const void *key,
                        size_t key_len, const void *value, size_t len)
{
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_KEY(key, key_len),
                                       RD_KAFKA_V_VALUE((void *)value, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
}

static void test_restore_version1(void **state)
{
    fixture_t *fx = *state;
    const char *bs = eddy_broker_bootstraps(fx->broker);
    sent_t s;
    sent_open(&s, bs);

    /* /v1: 50 values of 10 and 50 of 20 ms. /v1c: the same and 1e308, which made
     * the first sketch fold its lowest buckets: 2048 buckets up to 1e308's, the
     * lowest holding the 100 others. */
    const int64_t start = T0;
    group_t *v1 = group(&s, start, "/v1", ""), *v1c = group(&s, start, "/v1c", "p50,p95,p99");
    for (int i = 0; i < 100; i++) {
        v1->v = realloc(v1->v, (v1->n + 1) * sizeof(double));
        v1->v[v1->n++] = i < 50 ? 10.0 : 20.0;
    }
    v1c->v = malloc(101 * sizeof(double));
    memcpy(v1c->v, v1->v, 100 * sizeof(double));
    v1c->v[100] = 1e308;
    v1c->n = v1c->cap = 101;
    v1->cap = v1->n;

    static uint64_t counts[2048];
    bytes_t state_v1 = {.n = 0}, state_v1c = {.n = 0};
    const int64_t b10 = bucket_of(10), b20 = bucket_of(20), bmax = bucket_of(1e308);
    memset(counts, 0, sizeof(counts));
    counts[0] = 50;
    counts[b20 - b10] = 50;
    v1_state(&state_v1, v1->v, v1->n, false, b10, counts, (size_t)(b20 - b10 + 1));
    memset(counts, 0, sizeof(counts));
    counts[0] = 100;
    counts[2047] = 1;
    v1_state(&state_v1c, v1c->v, v1c->n, true, bmax - 2047, counts, 2048);

    /* One commit of an earlier writer on changelog partition 0: the two data
     * records, then its marker (input offset 0: the input is read from the start). */
    const char *changelog = "old-latency-changelog";
    const uint64_t incarnation = 0x0123456789abcdefULL;
    uint8_t key[256], value[4200];
    const bytes_t *states[] = {&state_v1, &state_v1c};
    const group_t *groups[] = {v1, v1c};
    for (int i = 0; i < 2; i++) {
        size_t key_len = eddy_changelog_data_key(key, sizeof(key), start, groups[i]->key,
                                                 strlen(groups[i]->key));
        assert_true(key_len > 0);
        eddy_changelog_data_header(value, incarnation, 1);
        memcpy(value + EDDY_CHANGELOG_DATA_HDR, states[i]->b, states[i]->n);
        produce_raw(s.rk, changelog, 0, key, key_len, value,
                    EDDY_CHANGELOG_DATA_HDR + states[i]->n);
    }
    eddy_changelog_rec_t marker = {.marker = true,
                                   .incarnation = incarnation,
                                   .seq = 1,
                                   .input_offset = 0,
                                   .stream_time = start + 1000,
                                   .records = 2};
    uint8_t mkey[EDDY_CHANGELOG_MARKER_KEY], mvalue[EDDY_CHANGELOG_MARKER_LEN];
    eddy_changelog_marker(mkey, mvalue, &marker);
    produce_raw(s.rk, changelog, 0, mkey, sizeof(mkey), mvalue, sizeof(mvalue));
    sent_flush(&s);

    int port = eddy_test_free_port();
    pid_t pid = start_eddy(fx, fx->topo_old, "old", "state-old", port);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, 0, 120));
    check_windows(port, &s);

    /* New records of the same windows, on partition 0 where the restored state is:
     * merged with it, in the new layout. */
    for (int i = 0; i < 40; i++) {
        send_value(&s, "old-events", 0, v1, start + 2000 + i, 30.0 + i);
        send_value(&s, "old-events", 0, v1c, start + 2000 + i, 30.0 + i);
    }
    sent_flush(&s);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, s.records, 120));
    check_windows(port, &s);

    /* And once more from the changelog alone (version 1 and 2 records). */
    eddy_test_run_stop(pid, SIGTERM);
    eddy_test_rmtree(fx->state_dir);
    pid = start_eddy(fx, fx->topo_old, "old", "state-old", port);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, s.records, 120));
    check_windows(port, &s);
    eddy_test_run_stop(pid, SIGTERM);
    sent_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outliers),
        cmocka_unit_test(test_restore_version1),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
