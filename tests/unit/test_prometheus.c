/*
 * test_prometheus.c — the text exposition writer (query/prometheus.h): a golden
 * exposition, escaping of label values and help texts, value formatting, and
 * histograms (cumulative buckets, +Inf equal to _count, labels before le); and
 * the /metrics handler over a real socket while another thread counts the way
 * the stream threads do (for TSan: relaxed atomics only, no torn reads).
 */
#include "test_support.h"

#include "http_client.h"
#include "query/prometheus.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_golden(void **state)
{
    eddy_prom_t *prom = eddy_prom_new();
    assert_non_null(prom);
    eddy_prom_metric(prom, "eddy_commits_total", EDDY_PROM_COUNTER, "Commits.", 42);
    eddy_prom_family(prom, "eddy_tasks", EDDY_PROM_GAUGE, "Tasks by state.");
    eddy_prom_sample(prom, (const char *[]){"state", "running", NULL}, 11);
    eddy_prom_sample(prom, (const char *[]){"state", "restoring", NULL}, 1);
    eddy_prom_family(prom, "eddy_commit_duration_seconds", EDDY_PROM_HISTOGRAM, "Commit time.");
    static const double bounds[] = {0.01, 0.1, 1};
    static const uint64_t le[] = {2, 5, 5};
    eddy_prom_histogram(prom, NULL, bounds, le, 3, 7, 12.5);
    size_t len = 0;
    const char *text = eddy_prom_text(prom, &len);
    static const char golden[] = "# HELP eddy_commits_total Commits.\n"
                                 "# TYPE eddy_commits_total counter\n"
                                 "eddy_commits_total 42\n"
                                 "# HELP eddy_tasks Tasks by state.\n"
                                 "# TYPE eddy_tasks gauge\n"
                                 "eddy_tasks{state=\"running\"} 11\n"
                                 "eddy_tasks{state=\"restoring\"} 1\n"
                                 "# HELP eddy_commit_duration_seconds Commit time.\n"
                                 "# TYPE eddy_commit_duration_seconds histogram\n"
                                 "eddy_commit_duration_seconds_bucket{le=\"0.01\"} 2\n"
                                 "eddy_commit_duration_seconds_bucket{le=\"0.1\"} 5\n"
                                 "eddy_commit_duration_seconds_bucket{le=\"1\"} 5\n"
                                 "eddy_commit_duration_seconds_bucket{le=\"+Inf\"} 7\n"
                                 "eddy_commit_duration_seconds_sum 12.5\n"
                                 "eddy_commit_duration_seconds_count 7\n";
    assert_string_equal(text, golden);
    assert_int_equal(len, strlen(golden));
    eddy_prom_destroy(prom);
}

static void test_escaping(void **state)
{
    eddy_prom_t *prom = eddy_prom_new();
    eddy_prom_family(prom, "eddy_store_keys", EDDY_PROM_GAUGE,
                     "Keys \"estimated\"\nby RocksDB \\ per store.");
    eddy_prom_sample(prom, (const char *[]){"store", "a\"b\\c\nd", "partition", "3", NULL}, 1);
    eddy_prom_sample(prom, (const char *[]){"store", "", NULL}, 0);
    const char *text = eddy_prom_text(prom, NULL);
    /* Help escapes backslash and newline only; label values also the quote. */
    assert_string_equal(text, "# HELP eddy_store_keys Keys \"estimated\"\\nby RocksDB \\\\ per "
                              "store.\n"
                              "# TYPE eddy_store_keys gauge\n"
                              "eddy_store_keys{store=\"a\\\"b\\\\c\\nd\",partition=\"3\"} 1\n"
                              "eddy_store_keys{store=\"\"} 0\n");
    eddy_prom_destroy(prom);
}

static void test_values(void **state)
{
    eddy_prom_t *prom = eddy_prom_new();
    eddy_prom_family(prom, "v", EDDY_PROM_GAUGE, "values");
    const double values[] = {
        0, -3, 1e15, 0.1, 1.0 / 3, 1700000000.123, 9007199254740993.0, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        eddy_prom_sample(prom, NULL, values[i]);
    const char *text = eddy_prom_text(prom, NULL);
    assert_string_equal(text, "# HELP v values\n# TYPE v gauge\n"
                              "v 0\nv -3\nv 1000000000000000\nv 0.1\nv 0.3333333333333333\n"
                              "v 1700000000.123\nv 9007199254740992\nv NaN\nv +Inf\nv -Inf\n");
    /* Every finite value reads back exactly. */
    const char *line = strstr(text, "v 0.333");
    assert_true(strtod(line + 2, NULL) == 1.0 / 3);
    eddy_prom_destroy(prom);
}

static void test_histogram_with_labels(void **state)
{
    eddy_prom_t *prom = eddy_prom_new();
    eddy_prom_family(prom, "h_seconds", EDDY_PROM_HISTOGRAM, "h");
    static const double bounds[] = {0.0001, 0.00025, 2.5};
    static const uint64_t le[] = {0, 0, 3};
    eddy_prom_histogram(prom, (const char *[]){"route", "/x", NULL}, bounds, le, 3, 3, 0.75);
    eddy_prom_histogram(prom, (const char *[]){"route", "/y", NULL}, bounds,
                        (const uint64_t[]){1, 1, 1}, 3, 4, 60);
    const char *text = eddy_prom_text(prom, NULL);
    assert_string_equal(text, "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
                              "h_seconds_bucket{route=\"/x\",le=\"0.0001\"} 0\n"
                              "h_seconds_bucket{route=\"/x\",le=\"0.00025\"} 0\n"
                              "h_seconds_bucket{route=\"/x\",le=\"2.5\"} 3\n"
                              "h_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
                              "h_seconds_sum{route=\"/x\"} 0.75\n"
                              "h_seconds_count{route=\"/x\"} 3\n"
                              "h_seconds_bucket{route=\"/y\",le=\"0.0001\"} 1\n"
                              "h_seconds_bucket{route=\"/y\",le=\"0.00025\"} 1\n"
                              "h_seconds_bucket{route=\"/y\",le=\"2.5\"} 1\n"
                              "h_seconds_bucket{route=\"/y\",le=\"+Inf\"} 4\n"
                              "h_seconds_sum{route=\"/y\"} 60\n"
                              "h_seconds_count{route=\"/y\"} 4\n");
    eddy_prom_destroy(prom);
}

/* A large exposition grows the buffer and stays whole. */
static void test_large(void **state)
{
    eddy_prom_t *prom = eddy_prom_new();
    eddy_prom_family(prom, "eddy_task_records_consumed_total", EDDY_PROM_COUNTER, "many");
    char label[16];
    for (int p = 0; p < 5000; p++) {
        snprintf(label, sizeof(label), "%d", p);
        eddy_prom_sample(prom, (const char *[]){"partition", label, NULL}, p);
    }
    size_t len = 0;
    const char *text = eddy_prom_text(prom, &len);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "eddy_task_records_consumed_total{partition=\"4999\"} 4999\n"));
    int lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 5002);
    eddy_prom_destroy(prom);
    eddy_prom_destroy(NULL);
}

/* --- the handler, scraped while a "stream thread" counts ---------------------------- */

typedef struct counter_s {
    eddy_runtime_t *rt; /* what it counts into */
    atomic_bool stop;   /* set by the test */
    long long commits;  /* commits recorded (read after the join) */
} counter_t;

/* Publishes the way task.c and stream_thread.c do: relaxed stores per commit. */
static void *count_forever(void *arg)
{
    counter_t *c = arg;
    eddy_metrics_t *m = &c->rt->metrics;
    for (long long n = 1; !atomic_load(&c->stop); n++) {
        for (int p = 0; p < 12; p++) {
            eddy_partition_stats_t *ps = &m->parts[p];
            atomic_store_explicit(&ps->consumed, n * 10, memory_order_relaxed);
            atomic_store_explicit(&ps->dead_lettered, n, memory_order_relaxed);
            atomic_store_explicit(&ps->next_offset, n * 10, memory_order_relaxed);
            atomic_store_explicit(&ps->high_watermark, n * 10 + p, memory_order_relaxed);
            atomic_store_explicit(&ps->cache_hits, n * 7, memory_order_relaxed);
        }
        eddy_metrics_commit(m, (int64_t)(n % 50) * 1000000, 3);
        c->commits = n;
    }
    return NULL;
}

/* The value of the unlabelled sample `name` in an exposition. */
static double sample_value(const char *text, const char *name)
{
    char pattern[160];
    snprintf(pattern, sizeof(pattern), "\n%s ", name);
    const char *at = strstr(text, pattern);
    if (!at)
        fail_msg("no sample %s", name);
    return strtod(at + strlen(pattern), NULL);
}

static void test_scrape_while_counting(void **state)
{
    char dir[256], errstr[512], path[512];
    eddy_test_mkdtemp("prom", dir, sizeof(dir));
    eddy_config_t cfg;
    eddy_config_init(&cfg);
    snprintf(path, sizeof(path), "%s/topology/examples/monitoring.json", EDDY_SOURCE_DIR);
    eddy_topology_t *topo = eddy_topology_load_file(path, errstr, sizeof(errstr));
    assert_non_null(topo);
    const char *names[EDDY_TOPOLOGY_MAX_STORES];
    size_t n_stores = eddy_topology_store_count(topo);
    for (size_t i = 0; i < n_stores; i++)
        names[i] = eddy_topology_store(topo, i)->name;
    eddy_runtime_t *rt = calloc(1, sizeof(*rt));
    *rt = (eddy_runtime_t){
        .cfg = &cfg, .topo = topo, .source_topic = "log-events", .source_partitions = 12};
    rt->db = eddy_statedb_open(dir, names, n_stores, errstr, sizeof(errstr));
    assert_non_null(rt->db);
    assert_int_equal(eddy_metrics_init(&rt->metrics), EDDY_OK);
    for (int p = 0; p < 12; p++) {
        atomic_store(&rt->metrics.parts[p].owner, 1 + p % 2);
        atomic_store(&rt->metrics.parts[p].state, EDDY_TASK_RUNNING);
        atomic_store(&rt->metrics.parts[p].stream_time, INT64_MIN);
        atomic_store(&rt->metrics.parts[p].high_watermark, -1);
    }

    eddy_http_t *http =
        eddy_http_new(&(eddy_http_config_t){.listen = "127.0.0.1:0"}, errstr, sizeof(errstr));
    assert_non_null(http);
    eddy_prom_sources_t src = {.rt = rt, .http = http};
    assert_int_equal(eddy_http_route(http, "GET", "/metrics", eddy_prom_handle, &src), EDDY_OK);
    assert_int_equal(eddy_http_start(http, errstr, sizeof(errstr)), EDDY_OK);
    counter_t c = {.rt = rt};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, count_forever, &c), 0);

    eddy_test_http_resp_t r = {0};
    double last_commits = 0;
    for (int i = 0; i < 30; i++) {
        assert_int_equal(
            eddy_test_http("127.0.0.1", eddy_http_port(http), "GET", "/metrics", NULL, NULL, 0, &r),
            0);
        assert_int_equal(r.status, 200);
        assert_string_equal(eddy_test_http_header(&r, "Content-Type"), EDDY_PROM_CONTENT_TYPE);
        /* The histogram is read before the counter, which is bumped first. */
        double count = sample_value(r.body, "eddy_commit_duration_seconds_count");
        double commits = sample_value(r.body, "eddy_commits_total");
        assert_true(count <= commits && commits >= last_commits);
        last_commits = commits;
        assert_non_null(strstr(r.body, "eddy_tasks{state=\"running\"} 12\n"));
        assert_non_null(strstr(r.body, "eddy_store_keys{store=\"endpoint_stats\"} "));
    }
    atomic_store(&c.stop, true);
    pthread_join(thread, NULL);
    assert_int_equal(
        eddy_test_http("127.0.0.1", eddy_http_port(http), "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_true(sample_value(r.body, "eddy_commits_total") == (double)c.commits);
    assert_true(sample_value(r.body, "eddy_commit_duration_seconds_count") == (double)c.commits);
    char want[128];
    snprintf(want, sizeof(want),
             "eddy_consumer_lag_records{topic=\"log-events\",partition=\"5\"} 5\n");
    assert_non_null(strstr(r.body, want));
    eddy_test_http_resp_free(&r);

    eddy_http_destroy(http);
    eddy_statedb_close(rt->db);
    eddy_metrics_free(&rt->metrics);
    free(rt);
    eddy_topology_destroy(topo);
    eddy_config_free(&cfg);
    eddy_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden), cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_values), cmocka_unit_test(test_histogram_with_labels),
        cmocka_unit_test(test_large),  cmocka_unit_test(test_scrape_while_counting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
