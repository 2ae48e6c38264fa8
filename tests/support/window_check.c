/*
 * window_check.c — served windows against the reference (see window_check.h).
 *
 * Each window is checked field by field; the first difference found in a window
 * is what gets reported for it, and the window counts once. Reference windows
 * that were never served count as mismatches too, so "0 mismatches" means the
 * two sets of windows are the same. A window saying "degraded" is a mismatch:
 * generated values never exceed the sketch's bucket bound.
 */
#include "window_check.h"
#include "http_client.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report(eddy_test_check_t *chk, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Counts one mismatching window and prints it while under max_print. */
static void report(eddy_test_check_t *chk, const char *fmt, ...)
{
    chk->mismatches++;
    if (chk->printed >= chk->max_print)
        return;
    chk->printed++;
    va_list ap;
    va_start(ap, fmt);
    fputs("window mismatch: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Fetches the store's windows; NULL (and a line on stderr) if that fails. */
static json_t *fetch_windows(int port, const char *store)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/stores/%s/windows?from=0&to=9000000000000", store);
    eddy_test_http_conn_t *conn = eddy_test_http_connect("127.0.0.1", port);
    if (!conn) {
        fprintf(stderr, "window_check: cannot connect to 127.0.0.1:%d\n", port);
        return NULL;
    }
    eddy_test_http_set_timeout(conn, 30000);
    eddy_test_http_resp_t resp = {0};
    json_t *body = NULL;
    if (eddy_test_http_request(conn, "GET", path, NULL, NULL, 0, &resp) != 0)
        fprintf(stderr, "window_check: GET %s on port %d: no answer\n", path, port);
    else if (resp.status != 200)
        fprintf(stderr, "window_check: GET %s: status %d: %.300s\n", path, resp.status, resp.body);
    else if (!(body = json_loadb(resp.body, resp.body_len, 0, NULL)))
        fprintf(stderr, "window_check: GET %s: the body is not JSON\n", path);
    eddy_test_http_resp_free(&resp);
    eddy_test_http_close(conn);
    if (body && (!json_is_array(json_object_get(body, "windows")) ||
                 !json_is_string(json_object_get(body, "store")) ||
                 strcmp(json_string_value(json_object_get(body, "store")), store) != 0)) {
        fprintf(stderr, "window_check: GET %s: not a windows answer for %s\n", path, store);
        json_decref(body);
        body = NULL;
    }
    return body;
}

/* A numeric field of a served window; false (and NaN, for messages) when it is
 * absent or not a number. */
static bool field(json_t *w, const char *name, double *out)
{
    json_t *v = json_object_get(w, name);
    *out = NAN;
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* Compares one served window with its reference; reports the first difference. */
static void compare_window(eddy_test_check_t *chk, const char *store, const ref_spec_t *spec,
                           eddy_test_check_kind_t kind, json_t *w, const ref_window_t *rw)
{
    const char *key = rw->key;
    long long start = (long long)rw->start;
    double got;
    if (json_integer_value(json_object_get(w, "end")) != rw->start + spec->size_ms) {
        report(chk, "%s %lld/%s: end %lld, want %lld", store, start, key,
               (long long)json_integer_value(json_object_get(w, "end")),
               (long long)(rw->start + spec->size_ms));
        return;
    }
    /* Generated data spans a few decades: no percentile may say it lost accuracy. */
    if (json_object_get(w, "degraded")) {
        report(chk, "%s %lld/%s: \"degraded\" although the values span a few hundred buckets",
               store, start, key);
        return;
    }
    const char *count_name = !strcmp(store, "active_users") ? "events" : "count";
    if (!field(w, count_name, &got)) {
        report(chk, "%s %lld/%s: no numeric %s", store, start, key, count_name);
        return;
    }
    if ((int64_t)got != rw->count) {
        report(chk, "%s %lld/%s: %s %lld, reference %lld (%+lld)", store, start, key, count_name,
               (long long)got, (long long)rw->count, (long long)got - (long long)rw->count);
        return;
    }
    if (kind == EDDY_TEST_CHECK_MONITORING && json_object_get(w, "errors")) {
        if (!field(w, "errors", &got) || (int64_t)got != rw->errors) {
            report(chk, "%s %lld/%s: errors %g, reference %lld", store, start, key, got,
                   (long long)rw->errors);
            return;
        }
    }
    if (json_object_get(w, "error_rate")) {
        double want = (double)rw->errors / (double)rw->count;
        if (!field(w, "error_rate", &got) || !(fabs(got - want) < 1e-12)) {
            report(chk, "%s %lld/%s: error_rate %.17g, reference %.17g", store, start, key, got,
                   want);
            return;
        }
    }
    if (json_object_get(w, "mean_latency_ms")) {
        double want = rw->sum / (double)rw->count;
        if (!field(w, "mean_latency_ms", &got) || !(fabs(got - want) <= 1e-9 * want)) {
            report(chk, "%s %lld/%s: mean_latency_ms %.17g, reference %.17g", store, start, key,
                   got, want);
            return;
        }
    }
    static const struct {
        const char *name;
        double q;
    } pcts[] = {{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}};
    for (int p = 0; p < 3; p++) {
        if (!json_object_get(w, pcts[p].name))
            continue;
        double lo = 0, hi = 0;
        bool ok = field(w, pcts[p].name, &got) && rw->n_values > 0;
        if (ok)
            ref_quantile_bounds(rw, pcts[p].q, &lo, &hi);
        if (!ok || got < lo * 0.99 - 1e-9 || got > hi * 1.01 + 1e-9) {
            report(chk, "%s %lld/%s: %s = %g, exact value %g..%g", store, start, key, pcts[p].name,
                   got, lo, hi);
            return;
        }
    }
    const char *distinct_name = !strcmp(store, "active_users") ? "active_users" : "users";
    if (kind == EDDY_TEST_CHECK_ACTIVITY && json_object_get(w, distinct_name)) {
        double want = (double)rw->n_distinct;
        if (!field(w, distinct_name, &got) || fabs(got - want) > fmax(2, 3 * 0.0081 * want)) {
            report(chk, "%s %lld/%s: %g distinct users, exactly %g", store, start, key, got, want);
            return;
        }
    }
}

/* Compares the served windows of `store` with `ref` (computed from `spec`). */
static int check_store_ref(int port, const char *store, const ref_spec_t *spec,
                           const ref_result_t *ref, eddy_test_check_kind_t kind,
                           eddy_test_check_t *chk)
{
    json_t *res = fetch_windows(port, store);
    if (!res) {
        chk->fetch_errors++;
        return -1;
    }
    chk->late += ref->late;
    chk->undecodable = ref->undecodable;
    bool *seen = calloc(ref->n ? ref->n : 1, sizeof(*seen));
    json_t *windows = json_object_get(res, "windows");
    if (json_array_size(windows) != ref->n && chk->printed < chk->max_print)
        fprintf(stderr, "window_check: %s: %zu windows served, reference has %zu\n", store,
                json_array_size(windows), ref->n);
    size_t i;
    json_t *w;
    json_array_foreach(windows, i, w)
    {
        chk->windows++;
        const char *key = json_string_value(json_object_get(w, "key"));
        json_t *start_v = json_object_get(w, "start");
        if (!key || !json_is_integer(start_v)) {
            report(chk, "%s: window #%zu has no string key or integer start", store, i);
            continue;
        }
        long long start = (long long)json_integer_value(start_v);
        const ref_window_t *rw = ref_find(ref, start, key);
        if (!rw) {
            double got = 0;
            field(w, !strcmp(store, "active_users") ? "events" : "count", &got);
            report(chk, "%s %lld/%s: served (count %.0f) but not in the reference", store, start,
                   key, got);
            continue;
        }
        size_t idx = (size_t)(rw - ref->windows);
        if (seen[idx]) {
            report(chk, "%s %lld/%s: served twice", store, start, key);
            continue;
        }
        seen[idx] = true;
        compare_window(chk, store, spec, kind, w, rw);
    }
    for (size_t r = 0; r < ref->n; r++)
        if (!seen[r]) {
            chk->windows++;
            report(chk, "%s %lld/%s: in the reference (count %lld) but not served", store,
                   (long long)ref->windows[r].start, ref->windows[r].key,
                   (long long)ref->windows[r].count);
        }
    free(seen);
    json_decref(res);
    return 0;
}

int eddy_test_check_store(int port, const char *store, const ref_spec_t *spec,
                          const eddy_test_topic_t *input, eddy_test_check_kind_t kind,
                          eddy_test_check_t *chk)
{
    ref_result_t ref;
    ref_compute(spec, input, &ref);
    int rc = check_store_ref(port, store, spec, &ref, kind, chk);
    ref_result_free(&ref);
    return rc;
}

/* One reference computation, so that the four run on threads of their own: the
 * reference parses every record again per store, which is what takes the time. */
typedef struct ref_job_s {
    const char *store;              /* the store it is for */
    ref_spec_t spec;                /* its spec */
    const eddy_test_topic_t *input; /* borrowed */
    ref_result_t ref;               /* the result */
    pthread_t thread;               /* computing it */
    bool threaded;                  /* thread was started */
} ref_job_t;

static void *ref_job_main(void *opaque)
{
    ref_job_t *job = opaque;
    ref_compute(&job->spec, job->input, &job->ref);
    return NULL;
}

ref_spec_t eddy_test_monitoring_spec(const char *group_field)
{
    /* monitoring.json's "fields": what makes an event valid besides its time. */
    const ref_spec_t spec = {
        .time_field = "ts",
        .size_ms = 60000,
        .advance_ms = 60000,
        .grace_ms = 30000,
        .value_field = "latency_ms",
        .group_field = group_field,
        .checks = {{.field = "endpoint"},
                   {.field = "region"},
                   {.field = "status", .number = true, .whole = true, .min = 100, .max = 599},
                   {.field = "latency_ms", .number = true, .min = 0, .max = 1e7}}};
    return spec;
}

int eddy_test_check_monitoring(int port, const eddy_test_topic_t *input, eddy_test_check_t *chk)
{
    const ref_spec_t tumbling = eddy_test_monitoring_spec(NULL);
    ref_job_t jobs[4] = {
        {.store = "requests_per_endpoint", .spec = tumbling},
        {.store = "endpoint_stats", .spec = tumbling},
        {.store = "region_stats", .spec = tumbling},
        {.store = "status_codes", .spec = tumbling},
    };
    jobs[0].spec.group_field = jobs[1].spec.group_field = "endpoint";
    jobs[2].spec.group_field = "region";
    jobs[3].spec.group_field = "status";
    jobs[3].spec.size_ms = 300000; /* hopping: 5 minutes, advancing by 1 */
    for (int i = 0; i < 4; i++) {
        jobs[i].input = input;
        jobs[i].threaded = pthread_create(&jobs[i].thread, NULL, ref_job_main, &jobs[i]) == 0;
    }
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        if (jobs[i].threaded)
            pthread_join(jobs[i].thread, NULL);
        else
            ref_job_main(&jobs[i]);
        rc |= check_store_ref(port, jobs[i].store, &jobs[i].spec, &jobs[i].ref,
                              EDDY_TEST_CHECK_MONITORING, chk);
        ref_result_free(&jobs[i].ref);
    }
    return rc ? -1 : 0;
}
