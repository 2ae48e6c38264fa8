/*
 * test_metrics.c — GET /metrics of a running `eddy run`, read the way Prometheus
 * reads it: a small parser of the text format written here (not eddy's writer)
 * checks the syntax of the whole exposition — every line a comment or a sample
 * `name{labels} value`, one TYPE per family before its samples, no series twice,
 * histograms cumulative with +Inf equal to _count — and then the values against
 * known input:
 *
 *   20,000 generated http events (12 partitions), 96 malformed records, 240
 *   records an hour older than everything else (late in each of the monitoring
 *   topology's 8 windows per event); after catching up:
 *   processed == valid records, dead-lettered == malformed, late updates == 240*8,
 *   consumed == high watermarks == all records, lag 0 on all 12 partitions,
 *   commits counted and histogrammed, store keys > 0, cache lookups counted, and
 *   the HTTP latency histogram grows between two scrapes.
 */
#include "eddy_proc.h"
#include "http_client.h"
#include "test_support.h"

#include "engine/broker.h"
#include "producer/gen.h"

#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0         1700000000000LL
#define N_EVENTS   20000
#define N_LATE     240
#define PARTITIONS 12

/* --- an independent parser of the text format 0.0.4 ---------------------------------- */

typedef struct sample_s {
    char name[128];   /* metric name as written (with _bucket, _sum, ...) */
    char labels[512]; /* name="value" pairs, unescaped, sorted, ',' separated; no le */
    char le[32];      /* the le label of a bucket, "" otherwise */
    double value;     /* the value */
    char family[128]; /* the family (TYPE) it belongs to */
} sample_t;

typedef struct family_s {
    char name[128]; /* as in # TYPE */
    char type[16];  /* counter, gauge, histogram, summary, untyped */
} family_t;

typedef struct expo_s {
    sample_t *samples;
    size_t n;
    family_t families[256];
    size_t n_families;
} expo_t;

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *p; false if there is none. */
static bool read_name(const char **p, char *out, size_t size)
{
    size_t n = 0;
    while (name_char((*p)[n], n == 0))
        n++;
    if (n == 0 || n >= size)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return true;
}

static bool parse_value(const char *s, double *out)
{
    if (!strcmp(s, "+Inf")) {
        *out = INFINITY;
        return true;
    }
    if (!strcmp(s, "-Inf")) {
        *out = -INFINITY;
        return true;
    }
    if (!strcmp(s, "NaN")) {
        *out = NAN;
        return true;
    }
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == '\0';
}

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const family_t *find_family(const expo_t *e, const char *name)
{
    for (size_t i = 0; i < e->n_families; i++)
        if (!strcmp(e->families[i].name, name))
            return &e->families[i];
    return NULL;
}

/* The family a sample name belongs to: itself, or for histograms the name without
 * _bucket/_sum/_count. */
static const family_t *family_of(const expo_t *e, const char *name)
{
    const family_t *f = find_family(e, name);
    if (f)
        return f;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), m = strlen(suffixes[i]);
        if (n > m && !strcmp(name + n - m, suffixes[i])) {
            char base[128];
            snprintf(base, sizeof(base), "%.*s", (int)(n - m), name);
            f = find_family(e, base);
            if (f && !strcmp(f->type, "histogram"))
                return f;
        }
    }
    return NULL;
}

/* Parses one sample line; a failure names what is wrong. */
static void parse_sample(expo_t *e, const char *line, int lineno)
{
    sample_t s = {0};
    const char *p = line;
    if (!read_name(&p, s.name, sizeof(s.name)))
        fail_msg("line %d: no metric name: %s", lineno, line);
    char *pairs[32];
    size_t n_pairs = 0;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char lname[64], lvalue[256];
            size_t n = 0;
            if (!read_name(&p, lname, sizeof(lname)) || *p++ != '=' || *p++ != '"')
                fail_msg("line %d: bad label: %s", lineno, line);
            for (; *p != '"'; p++) {
                if (!*p || *p == '\n' || n + 1 >= sizeof(lvalue))
                    fail_msg("line %d: unterminated label value: %s", lineno, line);
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        fail_msg("line %d: bad escape in label value: %s", lineno, line);
                    lvalue[n++] = *p == 'n' ? '\n' : *p;
                } else {
                    lvalue[n++] = *p;
                }
            }
            lvalue[n] = '\0';
            p++;
            if (!strcmp(lname, "le")) {
                snprintf(s.le, sizeof(s.le), "%.31s", lvalue);
            } else {
                for (size_t i = 0; i < n_pairs; i++)
                    if (!strncmp(pairs[i], lname, strlen(lname)) && pairs[i][strlen(lname)] == '=')
                        fail_msg("line %d: label %s twice: %s", lineno, lname, line);
                assert_true(n_pairs < 32);
                char buf[400];
                snprintf(buf, sizeof(buf), "%s=%s", lname, lvalue);
                pairs[n_pairs++] = strdup(buf);
            }
            if (*p == ',')
                p++;
            else if (*p != '}')
                fail_msg("line %d: expected , or }: %s", lineno, line);
        }
        p++;
    }
    if (*p++ != ' ')
        fail_msg("line %d: expected one space before the value: %s", lineno, line);
    if (!parse_value(p, &s.value)) /* no timestamps: eddy writes none */
        fail_msg("line %d: bad value '%s'", lineno, p);
    qsort(pairs, n_pairs, sizeof(pairs[0]), cmp_pair);
    size_t len = 0;
    for (size_t i = 0; i < n_pairs; i++) {
        len += (size_t)snprintf(s.labels + len, sizeof(s.labels) - len, "%s%s", i ? "," : "",
                                pairs[i]);
        free(pairs[i]);
    }
    const family_t *f = family_of(e, s.name);
    if (!f)
        fail_msg("line %d: sample %s before (or without) its # TYPE", lineno, s.name);
    if (e->n && strcmp(e->samples[e->n - 1].family, f->name))
        for (size_t i = 0; i < e->n; i++)
            if (!strcmp(e->samples[i].family, f->name))
                fail_msg("line %d: %s's samples are not together", lineno, f->name);
    snprintf(s.family, sizeof(s.family), "%s", f->name);
    if (!strcmp(f->type, "histogram") && !!s.le[0] != !!strstr(s.name, "_bucket"))
        fail_msg("line %d: le on a sample that is not a bucket, or a bucket without: %s", lineno,
                 line);
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->samples[i].name, s.name) && !strcmp(e->samples[i].labels, s.labels) &&
            !strcmp(e->samples[i].le, s.le))
            fail_msg("line %d: series %s{%s} twice", lineno, s.name, s.labels);
    e->samples = realloc(e->samples, (e->n + 1) * sizeof(*e->samples));
    e->samples[e->n++] = s;
}

/* Parses a whole exposition; any syntax error fails the test. */
static void parse_exposition(const char *text, expo_t *e)
{
    memset(e, 0, sizeof(*e));
    char *copy = strdup(text), *save = NULL;
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n'); /* the last line ends too */
    int lineno = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] != '#') {
            parse_sample(e, line, lineno);
            continue;
        }
        char kind[8], name[128], rest[512];
        if (sscanf(line, "# %7s %127s %511[^\n]", kind, name, rest) < 3)
            fail_msg("line %d: bad comment line: %s", lineno, line);
        const family_t *f = find_family(e, name);
        if (!strcmp(kind, "TYPE")) {
            if (f)
                fail_msg("line %d: second TYPE for %s", lineno, name);
            static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                "untyped"};
            bool known = false;
            for (int i = 0; i < 5; i++)
                known |= !strcmp(rest, types[i]);
            if (!known)
                fail_msg("line %d: unknown type %s", lineno, rest);
            assert_true(e->n_families < 256);
            family_t *nf = &e->families[e->n_families++];
            snprintf(nf->name, sizeof(nf->name), "%s", name);
            snprintf(nf->type, sizeof(nf->type), "%.15s", rest);
        } else if (!strcmp(kind, "HELP")) {
            if (f)
                fail_msg("line %d: HELP of %s after its TYPE", lineno, name);
        } else {
            fail_msg("line %d: unknown comment %s", lineno, kind);
        }
    }
    free(copy);
    /* Counters end in _total; every family has samples. */
    for (size_t i = 0; i < e->n_families; i++) {
        const family_t *f = &e->families[i];
        if (!strcmp(f->type, "counter")) {
            size_t n = strlen(f->name);
            if (n < 6 || strcmp(f->name + n - 6, "_total"))
                fail_msg("counter %s does not end in _total", f->name);
        }
    }
}

/* Checks every histogram series: le ascending, buckets cumulative, the last le
 * +Inf and equal to _count, a _sum. */
static void check_histograms(const expo_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        const sample_t *s = &e->samples[i];
        size_t n = strlen(s->name);
        if (n < 7 || strcmp(s->name + n - 7, "_bucket"))
            continue;
        if (i > 0 && !strcmp(e->samples[i - 1].name, s->name) &&
            !strcmp(e->samples[i - 1].labels, s->labels))
            continue; /* not the first bucket of its series */
        double prev_le = -INFINITY, prev = 0;
        size_t j = i;
        for (; j < e->n && !strcmp(e->samples[j].name, s->name) &&
               !strcmp(e->samples[j].labels, s->labels);
             j++) {
            double le;
            assert_true(parse_value(e->samples[j].le, &le));
            if (!(le > prev_le))
                fail_msg("%s{%s}: le %s not ascending", s->name, s->labels, e->samples[j].le);
            if (e->samples[j].value < prev)
                fail_msg("%s{%s}: bucket le=%s holds %g < %g: not cumulative", s->name, s->labels,
                         e->samples[j].le, e->samples[j].value, prev);
            prev_le = le;
            prev = e->samples[j].value;
        }
        if (!isinf(prev_le))
            fail_msg("%s{%s}: no le=\"+Inf\" bucket", s->name, s->labels);
        char count[140], sum[140];
        snprintf(count, sizeof(count), "%s_count", s->family);
        snprintf(sum, sizeof(sum), "%s_sum", s->family);
        bool found_count = false, found_sum = false;
        for (size_t k = 0; k < e->n; k++) {
            if (strcmp(e->samples[k].labels, s->labels))
                continue;
            if (!strcmp(e->samples[k].name, count)) {
                found_count = true;
                if (e->samples[k].value != prev)
                    fail_msg("%s{%s} = %g but the +Inf bucket holds %g", count, s->labels,
                             e->samples[k].value, prev);
            }
            found_sum |= !strcmp(e->samples[k].name, sum);
        }
        assert_true(found_count && found_sum);
    }
}

static void expo_free(expo_t *e)
{
    free(e->samples);
    memset(e, 0, sizeof(*e));
}

/* The sample `name` whose labels include `label` (e.g. "partition=3"; NULL: the
 * unlabelled one), or NULL. */
static const sample_t *find(const expo_t *e, const char *name, const char *label)
{
    for (size_t i = 0; i < e->n; i++) {
        const sample_t *s = &e->samples[i];
        if (strcmp(s->name, name))
            continue;
        if (!label ? !s->labels[0] : strstr(s->labels, label) != NULL)
            return s;
    }
    return NULL;
}

static double value(const expo_t *e, const char *name, const char *label)
{
    const sample_t *s = find(e, name, label);
    if (!s)
        fail_msg("no sample %s{%s}", name, label ? label : "");
    return s->value;
}

/* The sum of every series of `name`, and how many there are. */
static double sum_of(const expo_t *e, const char *name, size_t *series)
{
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->samples[i].name, name)) {
            sum += e->samples[i].value;
            n++;
        }
    if (series)
        *series = n;
    return sum;
}

/* GET /metrics, checked for status and Content-Type, parsed and validated. */
static void scrape(int port, expo_t *e)
{
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http("127.0.0.1", port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(eddy_test_http_header(&r, "Content-Type"),
                        "text/plain; version=0.0.4; charset=utf-8");
    parse_exposition(r.body, e);
    check_histograms(e);
    eddy_test_http_resp_free(&r);
}

/* --- the test ------------------------------------------------------------------------------- */

static int64_t produce_malformed(const char *bootstrap)
{
    static const char *const bad[] = {
        "not json at all",
        "[1,2,3]",
        "{\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
        "{\"ts\":\"yesterday\",\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":1,"
        "\"region\":\"r\"}",
        "{\"ts\":1700000100000,\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
        "{\"ts\":1700000100000,\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":\"slow\","
        "\"region\":\"r\"}",
        "{\"ts\":-5,\"endpoint\":\"/api/x\",\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
        "{\"ts\":1700000100000,\"endpoint\":[1],\"status\":200,\"latency_ms\":1,\"region\":\"r\"}",
    };
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    int64_t n = 0;
    for (int rep = 0; rep < 12; rep++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++, n++) {
            char key[16];
            snprintf(key, sizeof(key), "k%d", rep);
            assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("log-events"),
                                               RD_KAFKA_V_KEY(key, strlen(key)),
                                               RD_KAFKA_V_VALUE((void *)bad[i], strlen(bad[i])),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END),
                             0);
        }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_metrics_values(void **state)
{
    char errstr[256], state_dir[256];
    eddy_broker_t *broker = eddy_broker_new(1, errstr, sizeof(errstr));
    assert_non_null(broker);
    const char *bootstrap = eddy_broker_bootstraps(broker);
    assert_int_equal(
        eddy_broker_create_topic(broker, "log-events", PARTITIONS, errstr, sizeof(errstr)), 0);
    assert_int_equal(eddy_test_create_changelogs(broker, "monitoring.json", "prom", PARTITIONS), 0);
    eddy_test_mkdtemp("metrics", state_dir, sizeof(state_dir));

    /* Valid events over 5 minutes, then malformed ones, then events an hour old:
     * each partition has seen the valid ones first, so every window of the old
     * ones is closed (1 + 1 + 5 + 1 windows per event in monitoring.json). */
    eddy_test_generate(bootstrap, "log-events", EDDY_GEN_HTTP, 7, N_EVENTS, T0, 300);
    const int64_t bad = produce_malformed(bootstrap);
    eddy_test_generate(bootstrap, "log-events", EDDY_GEN_HTTP, 8, N_LATE, T0 - 3600000, 60);
    const int64_t total = N_EVENTS + bad + N_LATE;

    int port = eddy_test_free_port();
    eddy_test_run_t run = {.bootstrap = bootstrap,
                           .topology = "monitoring.json",
                           .app = "prom",
                           .state_dir = state_dir,
                           .port = port};
    pid_t pid = eddy_test_run_start(&run);
    json_decref(eddy_test_wait_caught_up(port, PARTITIONS, total, 30));

    /* The lag is sampled at each commit: 0 on all partitions within a few. */
    expo_t e = {0};
    char label[32];
    for (int tries = 0;; tries++) {
        scrape(port, &e);
        size_t series = 0;
        double lag = sum_of(&e, "eddy_consumer_lag_records", &series);
        if (series == PARTITIONS && lag == 0)
            break;
        if (tries == 50)
            fail_msg("lag %g over %zu partitions after catching up", lag, series);
        expo_free(&e);
        sleep_ms(100);
    }
    for (int p = 0; p < PARTITIONS; p++) {
        snprintf(label, sizeof(label), "partition=%d", p);
        assert_true(value(&e, "eddy_consumer_lag_records", label) == 0);
        assert_non_null(
            strstr(find(&e, "eddy_consumer_lag_records", label)->labels, "topic=log-events"));
        assert_true(value(&e, "eddy_task_restoring", label) == 0);
    }

    /* Records: every one consumed once, split into processed and dead-lettered. */
    size_t series = 0;
    assert_true(sum_of(&e, "eddy_task_records_consumed_total", &series) == (double)total);
    assert_int_equal(series, PARTITIONS);
    assert_true(sum_of(&e, "eddy_task_records_processed_total", NULL) == N_EVENTS + N_LATE);
    assert_true(sum_of(&e, "eddy_task_records_dead_lettered_total", NULL) == (double)bad);
    assert_true(sum_of(&e, "eddy_dlq_records_written_total", NULL) == (double)bad);
    assert_true(sum_of(&e, "eddy_dlq_write_failures_total", NULL) == 0);
    assert_true(sum_of(&e, "eddy_task_late_updates_total", NULL) == N_LATE * 8);
    assert_true(sum_of(&e, "eddy_task_input_lost_records_total", NULL) == 0);
    assert_true(sum_of(&e, "eddy_consumer_high_watermark_offset", NULL) == (double)total);
    assert_true(sum_of(&e, "eddy_task_next_offset", NULL) == (double)total);
    assert_true(sum_of(&e, "eddy_task_committed_offset", NULL) == (double)total);
    /* Stream time: the newest event is within the 5 minutes after T0. */
    double st_max = 0;
    for (size_t i = 0; i < e.n; i++)
        if (!strcmp(e.samples[i].name, "eddy_task_stream_time_seconds") &&
            e.samples[i].value > st_max)
            st_max = e.samples[i].value;
    assert_true(st_max >= T0 / 1000.0 && st_max < T0 / 1000.0 + 300);

    /* Tasks, commits, rebalances. */
    assert_true(value(&e, "eddy_tasks", "state=running") == PARTITIONS);
    assert_true(value(&e, "eddy_tasks", "state=restoring") == 0);
    assert_true(value(&e, "eddy_source_partitions", NULL) == PARTITIONS);
    assert_true(value(&e, "eddy_rebalances_total", NULL) >= 1);
    assert_true(value(&e, "eddy_commit_windows_written_total", NULL) > 0);
    assert_true(value(&e, "eddy_commit_aborts_total", NULL) == 0);
    assert_true(value(&e, "eddy_producer_restarts_total", NULL) == 0);
    assert_true(value(&e, "eddy_info", "application_id=prom") == 1);

    /* Every commit is in the histogram. Commits go on meanwhile, and the counter
     * is bumped just before the buckets: a scrape may catch one in between. */
    for (int tries = 0;; tries++) {
        double commits = value(&e, "eddy_commits_total", NULL);
        double count = value(&e, "eddy_commit_duration_seconds_count", NULL);
        assert_true(commits > 0);
        assert_true(count <= commits);
        assert_true(value(&e, "eddy_commit_duration_seconds_sum", NULL) > 0);
        if (count == commits)
            break;
        if (tries == 20)
            fail_msg("commits_total %g, histogram count %g", commits, count);
        expo_free(&e);
        scrape(port, &e);
    }

    /* Stores: the four of monitoring.json, each with keys. */
    static const char *const stores[] = {"requests_per_endpoint", "endpoint_stats", "status_codes",
                                         "region_stats"};
    size_t n_stores = 0;
    sum_of(&e, "eddy_store_keys", &n_stores);
    assert_int_equal(n_stores, 4);
    for (int s = 0; s < 4; s++) {
        snprintf(label, sizeof(label), "store=%s", stores[s]);
        assert_true(value(&e, "eddy_store_keys", label) > 0);
        assert_true(value(&e, "eddy_store_sst_bytes", label) >= 0);
    }

    /* The record cache: a lookup per (valid record, open window), and those of
     * changelog snapshots; most hit. */
    double hits = sum_of(&e, "eddy_record_cache_hits_total", NULL);
    double misses = sum_of(&e, "eddy_record_cache_misses_total", NULL);
    assert_true(hits + misses >= (double)N_EVENTS * 8);
    assert_true(hits > misses);

    /* HTTP: the requests so far (health polls, scrapes) are counted; the next
     * scrape sees at least this one more. */
    double http_count = value(&e, "eddy_http_request_duration_seconds_count", NULL);
    assert_true(http_count >= 2);
    assert_true(value(&e, "eddy_http_responses_total", "code=2xx") >= 2);
    assert_true(value(&e, "eddy_http_connections", NULL) >= 1); /* this scrape's */
    /* WebSocket: nobody connected. */
    assert_true(value(&e, "eddy_ws_clients", NULL) == 0);
    assert_true(value(&e, "eddy_ws_clients_total", NULL) == 0);
    assert_true(value(&e, "eddy_ws_slow_client_drops_total", NULL) == 0);
    expo_t e2 = {0};
    scrape(port, &e2);
    assert_true(value(&e2, "eddy_http_request_duration_seconds_count", NULL) >= http_count + 1);
    assert_true(value(&e2, "eddy_http_requests_total", NULL) >=
                value(&e, "eddy_http_requests_total", NULL) + 1);
    /* Counters never go down between scrapes. */
    for (size_t i = 0; i < e.n; i++) {
        const sample_t *a = &e.samples[i];
        const family_t *f = find_family(&e, a->family);
        if (strcmp(f->type, "counter") && strcmp(f->type, "histogram"))
            continue;
        for (size_t j = 0; j < e2.n; j++)
            if (!strcmp(e2.samples[j].name, a->name) && !strcmp(e2.samples[j].labels, a->labels) &&
                !strcmp(e2.samples[j].le, a->le) && e2.samples[j].value < a->value)
                fail_msg("%s{%s} went from %g to %g", a->name, a->labels, a->value,
                         e2.samples[j].value);
    }
    expo_free(&e2);
    expo_free(&e);

    /* HEAD answers like GET, without a body; other methods are 405. */
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http("127.0.0.1", port, "POST", "/metrics", NULL, "", 0, &r), 0);
    assert_int_equal(r.status, 405);
    eddy_test_http_resp_free(&r);

    eddy_test_run_stop(pid, SIGTERM);
    eddy_broker_destroy(broker);
    eddy_test_rmtree(state_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
