/*
 * api.c — the REST API of a running instance:
 *
 *   GET /api/stores                      stores with their window specs
 *   GET /api/stores/{store}/windows?from=MS&to=MS[&key=K][&local=true]
 *                                        windows starting in [from, to), merged
 *                                        across every instance's tasks
 *                                        (query/cluster_query.c)
 *   GET /api/stores/{store}/keys/{key}?from=MS&to=MS
 *                                        one key's windows (query/view_query.c)
 *   GET <route of a view>                the topology's views (query/view_query.c)
 *   GET /api/topology                    the topology graph
 *   GET /api/health                      instance, partitions, counters, peers
 *   GET /api/internal/stores/{store}/partials
 *                                        this instance's raw partials, for peers
 *                                        (query/cluster_query.c)
 *   GET /metrics                         Prometheus text format (query/prometheus.c)
 *   GET /ws                              WebSocket subscriptions to stores and to
 *                                        "health:" (the /api/health body; query/ws.c)
 *   GET /, /<file>                       the dashboard (ui/dist, http.static.dir)
 *
 * Queries read committed state (RocksDB), so answers trail processing by at most
 * one commit interval and never show a half-applied commit. Handlers run on the
 * HTTP server's threads, concurrently; they only read the runtime.
 */
#include "query/api.h"
#include "engine/instances.h"
#include "engine/local_state.h"
#include "query/answer_cache.h"
#include "engine/log.h"
#include "engine/util.h"
#include "query/cluster_query.h"
#include "query/http.h"
#include "query/prometheus.h"
#include "query/view_query.h"
#include "query/ws.h"
#include "query/window_query.h"
#include "topology/aggregate.h"
#include "topology/topology_json.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct eddy_api_s {
    eddy_runtime_t *rt;           /* borrowed */
    eddy_answer_cache_t *answers; /* windows answers until the state changes (answer_cache.h) */
    eddy_http_t *http;            /* the server (query/http.c) */
    eddy_prom_sources_t metrics;  /* what GET /metrics reads (query/prometheus.c) */
    eddy_view_query_t *views;     /* the topology's views and per-key series (view_query.c) */
    eddy_ws_t *ws;                /* GET /ws (query/ws.c) */
    char listen[256];             /* HOST:PORT, for the log */
};

/* --- /api/stores ----------------------------------------------------------------- */

static int get_stores(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_api_t *api = opaque;
    json_t *stores = json_array();
    eddy_statedb_t *db = eddy_local_state_read_begin(api->rt); /* NULL: being reset */
    for (size_t i = 0; i < eddy_topology_store_count(api->rt->topo); i++) {
        const eddy_store_def_t *s = eddy_topology_store(api->rt->topo, i);
        json_t *j = eddy_store_def_to_json(s);
        uint64_t keys = 0, sst = 0;
        if (db)
            eddy_statedb_store_stats(db, (int)i, &keys, &sst);
        json_object_set_new(j, "approximate_keys",
                            db ? json_integer((json_int_t)keys) : json_null());
        json_object_set_new(j, "sst_bytes", db ? json_integer((json_int_t)sst) : json_null());
        json_array_append_new(stores, j);
    }
    if (db)
        eddy_local_state_read_end(api->rt);
    json_t *body = json_object();
    json_object_set_new(body, "stores", stores);
    eddy_http_json(resp, 200, body);
    return 0;
}

static int get_topology(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_api_t *api = opaque;
    eddy_http_json(resp, 200, eddy_topology_to_json(api->rt->topo));
    return 0;
}

/* --- /api/stores/{store}/windows -------------------------------------------------- */

typedef struct windows_ctx_s {
    eddy_runtime_t *rt; /* the runtime */
    int store;          /* store index */
    json_t *windows;    /* the array being filled */
} windows_ctx_t;

static void add_window(int64_t start, const char *key, size_t key_len, const eddy_agg_t *agg,
                       void *opaque)
{
    windows_ctx_t *w = opaque;
    json_array_append_new(w->windows,
                          eddy_window_to_json(w->rt, w->store, start, key, key_len, agg));
}

/* The body of GET /api/stores/{store}/windows (and of WebSocket store
 * subscriptions): the whole application's windows (query/cluster_query.h), or
 * only this instance's if `local`; NULL with *err and errstr filled if the store
 * cannot be read (eddy_windows_error() answers it). */
static json_t *windows_body(eddy_runtime_t *rt, const eddy_store_def_t *def, int64_t from,
                            int64_t to, const char *key, bool local, eddy_err_t *err, char *errstr,
                            size_t errstr_size)
{
    const int idx = (int)def->index;
    windows_ctx_t w = {.rt = rt, .store = idx, .windows = json_array()};
    bool corrupt = false;
    eddy_coverage_t cov;
    if ((*err = eddy_windows_cluster(rt, idx, from, to, key, local, add_window, &w, &cov, &corrupt,
                                     errstr, errstr_size))) {
        eddy_coverage_free(&cov);
        json_decref(w.windows);
        return NULL;
    }
    json_t *body = json_object();
    json_object_set_new(body, "store", json_string(def->name));
    json_object_set_new(body, "from", json_integer(from));
    json_object_set_new(body, "to", json_integer(to));
    json_object_set_new(body, "windows", w.windows);
    /* A restoring or unreachable partition makes the answer partial. */
    eddy_coverage_json(&cov, body);
    eddy_coverage_free(&cov);
    if (corrupt)
        json_object_set_new(body, "warning",
                            json_string("some stored windows could not be "
                                        "read and were left out"));
    return body;
}

static int get_windows(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_api_t *api = opaque;
    const char *name = eddy_http_param(req, "store");
    const eddy_store_def_t *def = eddy_topology_store_by_name(api->rt->topo, name);
    if (!def)
        return eddy_http_error(resp, 404, "no store named '%s' (GET /api/stores lists them)", name);
    int64_t from = 0, to = INT64_MAX;
    if (eddy_http_query_i64(req, resp, "from", "epoch milliseconds", INT64_MIN, INT64_MAX, &from) ||
        eddy_http_query_i64(req, resp, "to", "epoch milliseconds", INT64_MIN, INT64_MAX, &to))
        return 0; /* answered 400 */
    if (from > to)
        return eddy_http_error(resp, 400, "'from' (%lld) is after 'to' (%lld)", (long long)from,
                               (long long)to);
    const char *local = eddy_http_query(req, "local");
    if (local && strcmp(local, "true") && strcmp(local, "false"))
        return eddy_http_error(resp, 400, "'local' must be true or false");
    const char *key = eddy_http_query(req, "key");
    char cache_key[320];
    int n = snprintf(cache_key, sizeof(cache_key), "%s|%lld|%lld|%d|%s", def->name, (long long)from,
                     (long long)to, local && !strcmp(local, "true"), key ? key : "\x01");
    bool cacheable = n > 0 && (size_t)n < sizeof(cache_key);
    const uint64_t gen = eddy_answer_generation(api->rt); /* before the state is read */
    const int64_t at_ns = eddy_mono_ns();
    if (cacheable && eddy_answer_cache_get(api->answers, cache_key, gen, resp))
        return 0;
    char errstr[512];
    eddy_err_t err = EDDY_OK;
    json_t *body = windows_body(api->rt, def, from, to, key, local && !strcmp(local, "true"), &err,
                                errstr, sizeof(errstr));
    if (!body)
        return eddy_windows_error(resp, err, errstr);
    return eddy_answer_cache_put_json(cacheable ? api->answers : NULL, cache_key, gen, at_ns, body,
                                      errstr, resp);
}

/* A WebSocket subscription to a store (query/ws.h): the same body as GET
 * /api/stores/{store}/windows, with from, to and key from the subscribe message.
 * Runs on the ws thread. */
static json_t *ws_store_source(void *opaque, const char *name, json_t *params, char *err,
                               size_t errsz)
{
    eddy_api_t *api = opaque;
    const eddy_store_def_t *def = eddy_topology_store_by_name(api->rt->topo, name);
    if (!def) {
        snprintf(err, errsz, "no store named '%s' (GET /api/stores lists them)", name);
        return NULL;
    }
    json_t *f = json_object_get(params, "from"), *t = json_object_get(params, "to");
    json_t *k = json_object_get(params, "key");
    if ((f && !json_is_integer(f)) || (t && !json_is_integer(t)) || (k && !json_is_string(k))) {
        snprintf(err, errsz, "'from' and 'to' must be epoch milliseconds, 'key' a string");
        return NULL;
    }
    const int64_t from = f ? json_integer_value(f) : 0, to = t ? json_integer_value(t) : INT64_MAX;
    if (from > to) {
        snprintf(err, errsz, "'from' (%lld) is after 'to' (%lld)", (long long)from, (long long)to);
        return NULL;
    }
    eddy_err_t why = EDDY_OK;
    return windows_body(api->rt, def, from, to, k ? json_string_value(k) : NULL, false, &why, err,
                        errsz);
}

/* --- /api/health --------------------------------------------------------------------- */

/* The record counters of /api/health, per partition and in the totals, in one
 * place so that both say the same (docs/api.md, "Health"). `processed` is what
 * reached the stores: consumed - dead_lettered. */
enum { C_CONSUMED, C_PROCESSED, C_DEAD, C_LATE, C_LOST, C_DLQ_W, C_DLQ_T, C_DLQ_F, N_COUNTERS };
static const char *const counter_names[N_COUNTERS] = {
    "consumed",   "processed",   "dead_lettered", "late",
    "input_lost", "dlq_written", "dlq_truncated", "dlq_failed",
};

static void read_counters(eddy_partition_stats_t *ps, int64_t *c)
{
    c[C_CONSUMED] = atomic_load(&ps->consumed);
    c[C_DEAD] = atomic_load(&ps->dead_lettered);
    c[C_PROCESSED] = c[C_CONSUMED] - c[C_DEAD];
    c[C_LATE] = atomic_load(&ps->late);
    c[C_LOST] = atomic_load(&ps->input_lost);
    c[C_DLQ_W] = atomic_load(&ps->dlq_written);
    c[C_DLQ_T] = atomic_load(&ps->dlq_truncated);
    c[C_DLQ_F] = atomic_load(&ps->dlq_failed);
}

static const char *task_state_name(int state)
{
    return state == EDDY_TASK_RESTORING ? "restoring"
           : state == EDDY_TASK_ERROR   ? "error"
                                        : "running";
}

/* The body of GET /api/health (and of the WebSocket source "health"). Any thread. */
static json_t *health_body(eddy_runtime_t *rt)
{
    json_t *parts = json_array();
    int64_t sums[N_COUNTERS] = {0}, committed = 0;
    int owned = 0, failed = 0;
    for (int p = 0; p < rt->source_partitions; p++) {
        eddy_partition_stats_t *ps = &rt->metrics.parts[p];
        int owner = atomic_load(&ps->owner);
        int64_t c = atomic_load(&ps->committed_offset), counts[N_COUNTERS];
        read_counters(ps, counts);
        for (int i = 0; i < N_COUNTERS; i++)
            sums[i] += counts[i];
        if (!owner)
            continue;
        owned++;
        committed += c > 0 ? c : 0;
        json_t *j = json_object();
        json_object_set_new(j, "partition", json_integer(p));
        json_object_set_new(j, "thread", json_integer(owner));
        int state = atomic_load(&ps->state);
        json_object_set_new(j, "state", json_string(task_state_name(state)));
        if (state == EDDY_TASK_RESTORING) {
            json_t *r = json_object();
            int64_t read = atomic_load(&ps->restore_read), total = atomic_load(&ps->restore_total);
            json_object_set_new(r, "records", json_integer(read));
            json_object_set_new(r, "total", json_integer(total));
            json_object_set_new(r, "percent",
                                json_real(total ? 100.0 * (double)read / (double)total : 100.0));
            json_object_set_new(j, "restore", r);
        } else if (state == EDDY_TASK_ERROR) {
            failed++;
            int code = atomic_load(&ps->error_code);
            json_object_set_new(j, "error",
                                json_pack("{s:s, s:s, s:i, s:I}", "reason",
                                          rd_kafka_err2str((rd_kafka_resp_err_t)code), "code",
                                          rd_kafka_err2name((rd_kafka_resp_err_t)code),
                                          "failed_commits", atomic_load(&ps->error_commits),
                                          "since_ms",
                                          (json_int_t)atomic_load(&ps->error_since_ms)));
        }
        json_object_set_new(j, "next_offset", json_integer(atomic_load(&ps->next_offset)));
        json_object_set_new(j, "committed_offset", json_integer(c));
        /* Lag as in /metrics: the input's end offset (as of the last fetch) minus
         * the position; null until a fetch response brought a watermark. */
        int64_t high = atomic_load(&ps->high_watermark), next = atomic_load(&ps->next_offset);
        int64_t low = atomic_load(&ps->low_watermark);
        int64_t pos = next >= 0 ? next : (low >= 0 ? low : 0);
        json_object_set_new(j, "lag",
                            high < 0 ? json_null() : json_integer(high > pos ? high - pos : 0));
        int64_t st = atomic_load(&ps->stream_time);
        json_object_set_new(j, "stream_time", st == INT64_MIN ? json_null() : json_integer(st));
        for (int i = 0; i < N_COUNTERS; i++)
            json_object_set_new(j, counter_names[i], json_integer(counts[i]));
        json_array_append_new(parts, j);
    }
    json_t *totals = json_object();
    for (int i = 0; i < N_COUNTERS; i++)
        json_object_set_new(totals, counter_names[i], json_integer(sums[i]));
    json_object_set_new(totals, "committed_records", json_integer(committed));
    json_object_set_new(totals, "commits", json_integer(atomic_load(&rt->metrics.commits)));
    json_object_set_new(totals, "commit_seconds_total",
                        json_real((double)atomic_load(&rt->metrics.commit_ns_total) / 1e9));
    json_t *lat = json_object();
    json_object_set_new(lat, "p50", json_real(eddy_metrics_commit_ms(&rt->metrics, 0.5)));
    json_object_set_new(lat, "p99", json_real(eddy_metrics_commit_ms(&rt->metrics, 0.99)));
    json_object_set_new(lat, "max", json_real(eddy_metrics_commit_ms(&rt->metrics, 1.0)));
    json_object_set_new(totals, "commit_ms", lat);
    json_object_set_new(totals, "windows_written",
                        json_integer(atomic_load(&rt->metrics.dirty_written)));
    json_object_set_new(totals, "rebalances", json_integer(atomic_load(&rt->metrics.rebalances)));
    json_object_set_new(totals, "aborted_commits", json_integer(atomic_load(&rt->metrics.aborts)));
    json_object_set_new(totals, "producer_restarts",
                        json_integer(atomic_load(&rt->metrics.producer_restarts)));
    json_object_set_new(totals, "restores", json_integer(atomic_load(&rt->metrics.restores)));
    json_object_set_new(totals, "restored_records",
                        json_integer(atomic_load(&rt->metrics.restored_records)));
    json_t *body = json_object();
    /* degraded: some task of this instance stopped in the error state. */
    json_object_set_new(body, "status",
                        json_string(failed  ? "degraded"
                                    : owned ? "running"
                                            : "waiting_for_partitions"));
    json_object_set_new(body, "application_id", json_string(rt->cfg->application_id));
    json_object_set_new(body, "source_topic", json_string(rt->source_topic));
    json_object_set_new(body, "source_partitions", json_integer(rt->source_partitions));
    json_object_set_new(body, "threads", json_integer(rt->cfg->num_stream_threads));
    json_object_set_new(body, "processing_guarantee",
                        json_string(rt->cfg->guarantee == EDDY_EXACTLY_ONCE_V2 ? "exactly_once_v2"
                                                                               : "at_least_once"));
    json_object_set_new(body, "partitions", parts);
    json_object_set_new(body, "totals", totals);
    /* Broker connectivity: connected while commits reach the brokers. Either sign
     * says they do not: "all brokers down" from a client since the last commit, or
     * no commit for 3 commit intervals + 5 s (a thread blocked in a commit call
     * serves no error events, so that sign can come late). */
    int64_t last = atomic_load(&rt->metrics.last_commit_ms);
    const int64_t stale_ms = 3 * rt->cfg->commit_interval_ms + 5000;
    bool owns_any = false;
    for (int p = 0; p < rt->source_partitions; p++)
        owns_any = owns_any || atomic_load(&rt->metrics.parts[p].owner);
    json_t *broker = json_object();
    const bool down = atomic_load(&rt->metrics.brokers_down);
    json_object_set_new(
        broker, "connected", /* null: no commit yet, nothing known */
        !down && last == 0
            ? json_null()
            : json_boolean(!down && (!owns_any || eddy_now_ms() - last <= stale_ms)));
    json_object_set_new(broker, "last_commit_ms", last > 0 ? json_integer(last) : json_null());
    json_object_set_new(broker, "last_commit_age_ms",
                        last > 0 ? json_integer(eddy_now_ms() - last) : json_null());
    json_object_set_new(body, "broker", broker);
    /* Local state: damage found, where it went, whether a reset is under way. */
    eddy_local_state_stats_t ls;
    eddy_local_state_stats(rt, &ls);
    json_t *state = json_object();
    json_object_set_new(state, "status", json_string(ls.resetting ? "resetting" : "ok"));
    json_object_set_new(state, "damaged", json_integer(ls.damaged));
    json_object_set_new(state, "resets", json_integer(ls.resets));
    json_object_set_new(state, "last_reset_ms",
                        ls.last_reset_ms ? json_integer(ls.last_reset_ms) : json_null());
    json_object_set_new(state, "last_reset_seconds",
                        ls.last_reset_ms ? json_real((double)ls.last_reset_ns / 1e9) : json_null());
    json_object_set_new(state, "moved_to", *ls.moved_to ? json_string(ls.moved_to) : json_null());
    json_object_set_new(state, "reason", *ls.reason ? json_string(ls.reason) : json_null());
    json_object_set_new(body, "local_state", state);
    /* Per stream thread: its tasks, running and restoring. */
    json_t *threads = json_array();
    for (int t = 1; t <= rt->cfg->num_stream_threads; t++) {
        int running = 0, restoring = 0, in_error = 0;
        for (int p = 0; p < rt->source_partitions; p++)
            if (atomic_load(&rt->metrics.parts[p].owner) == t) {
                int task_state = atomic_load(&rt->metrics.parts[p].state);
                restoring += task_state == EDDY_TASK_RESTORING;
                in_error += task_state == EDDY_TASK_ERROR;
                running += task_state == EDDY_TASK_RUNNING;
            }
        json_array_append_new(threads,
                              json_pack("{s:i, s:i, s:i, s:i}", "thread", t, "running", running,
                                        "restoring", restoring, "error", in_error));
    }
    json_object_set_new(body, "stream_threads", threads);
    if (rt->instances)
        json_object_set_new(body, "instances", eddy_instances_json(rt->instances));
    return body;
}

static int get_health(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_api_t *api = opaque;
    return eddy_http_json(resp, 200, health_body(api->rt));
}

/* WebSocket subscriptions "health:" (any name, e.g. "health:instance"): the body
 * of GET /api/health, so the dashboard's engine panels update without polling.
 * Runs on the ws thread. */
static json_t *ws_health_source(void *opaque, const char *name, json_t *params, char *err,
                                size_t errsz)
{
    eddy_api_t *api = opaque;
    return health_body(api->rt);
}

/* --- the dashboard's files ------------------------------------------------------------ */

/* The directory served at / (http.static.dir): the configured one, none for "off",
 * else the first built ui/dist holding an index.html, next to the binary (the
 * build directory) or in the source tree. NULL if there is none: the API runs
 * without the dashboard. */
static char *static_dir(const eddy_config_t *cfg)
{
    if (!strcmp(cfg->http_static_dir, "off"))
        return NULL;
    if (cfg->http_static_dir[0])
        return strdup(cfg->http_static_dir);
    char exe[4096] = "", path[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(path, sizeof(path), "%s/ui/dist/index.html", exe);
        if (!access(path, R_OK)) {
            path[strlen(path) - strlen("/index.html")] = '\0';
            return strdup(path);
        }
    }
    snprintf(path, sizeof(path), "%s/ui/dist/index.html", EDDY_SOURCE_DIR);
    if (!access(path, R_OK)) {
        path[strlen(path) - strlen("/index.html")] = '\0';
        return strdup(path);
    }
    return NULL;
}

static void api_free(eddy_api_t *api)
{
    eddy_answer_cache_destroy(api->answers);
    free(api);
}

eddy_api_t *eddy_api_new(eddy_runtime_t *rt, const char *listen, char *errstr, size_t errstr_size)
{
    eddy_api_t *api = calloc(1, sizeof(*api));
    if (!api) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    api->rt = rt;
    snprintf(api->listen, sizeof(api->listen), "%s", listen);
    char *root = static_dir(rt->cfg);
    eddy_http_config_t cfg = {.listen = listen,
                              .static_root = root,
                              .connection_limit = (unsigned)rt->cfg->http_max_connections,
                              .per_ip_limit = (unsigned)rt->cfg->http_max_connections_ip,
                              .header_timeout_ms = (unsigned)rt->cfg->http_header_timeout_ms,
                              .body_timeout_ms = (unsigned)rt->cfg->http_body_timeout_ms};
    api->http = eddy_http_new(&cfg, errstr, errstr_size);
    if (api->http && root)
        eddy_log_info("dashboard: http://%s/ (files from %s)", listen, root);
    else if (api->http && strcmp(rt->cfg->http_static_dir, "off"))
        eddy_log_info("dashboard: not built (no ui/dist; `make` builds it with npm)");
    free(root);
    if (!api->http) {
        api_free(api);
        return NULL;
    }
    return api;
}

eddy_err_t eddy_api_start(eddy_api_t *api, char *errstr, size_t errstr_size)
{
    eddy_runtime_t *rt = api->rt;
    api->answers = eddy_answer_cache_new(rt); /* NULL: answers are not cached */
    static const struct {
        const char *pattern;
        eddy_http_handler_fn fn;
    } routes[] = {
        {"/api/stores", get_stores},         {"/api/stores/{store}/windows", get_windows},
        {"/api/topology", get_topology},     {"/api/health", get_health},
        {"/api/metrics/health", get_health},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        eddy_http_route(api->http, "GET", routes[i].pattern, routes[i].fn, api);
    const eddy_ws_config_t wcfg = {.interval_ms = rt->cfg->ws_interval_ms,
                                   .max_queue = (size_t)rt->cfg->ws_max_queue_bytes,
                                   .allowed_origins = rt->cfg->ws_allowed_origins};
    if (!(api->ws = eddy_ws_new(&wcfg, errstr, errstr_size)))
        return EDDY_ERR_INVALID;
    eddy_ws_source(api->ws, NULL, ws_store_source, api);
    eddy_ws_source(api->ws, "health", ws_health_source, api);
    eddy_http_route(api->http, "GET", "/ws", eddy_ws_handle, api->ws);
    eddy_http_route(api->http, "GET", "/api/internal/stores/{store}/partials", eddy_partials_handle,
                    rt);
    api->metrics = (eddy_prom_sources_t){.rt = rt, .http = api->http, .ws = api->ws};
    eddy_http_route(api->http, "GET", "/metrics", eddy_prom_handle, &api->metrics);
    api->views = eddy_view_query_new(api->http, rt, errstr, errstr_size);
    if (!api->views)
        return EDDY_ERR_INVALID;
    eddy_view_query_ws(api->views, api->ws); /* "view:NAME" subscriptions */
    eddy_err_t err = eddy_http_start(api->http, errstr, errstr_size);
    if (err)
        return err;
    eddy_log_info("HTTP API on http://%s (GET /api/stores, /api/health)", api->listen);
    return EDDY_OK;
}

void eddy_api_stop(eddy_api_t *api)
{
    if (!api)
        return;
    if (api->ws)
        eddy_ws_stop(api->ws); /* upgraded connections are closed by their owner first */
    eddy_http_destroy(api->http);
    eddy_ws_destroy(api->ws);
    eddy_view_query_destroy(api->views);
    api_free(api);
}
