/*
 * api.c — the REST API of a running instance (issue 3's minimal query layer):
 *
 *   GET /api/stores                      stores with their window specs
 *   GET /api/stores/{store}/windows?from=MS&to=MS[&key=K]
 *                                        windows starting in [from, to), merged
 *                                        across this instance's tasks
 *   GET /api/topology                    the topology graph
 *   GET /api/health                      instance, partitions and counters
 *
 * Queries read committed state (RocksDB), so answers trail processing by at most
 * one commit interval and never show a half-applied commit. Handlers run on the
 * HTTP server's threads, concurrently; they only read the runtime.
 */
#include "query/api.h"
#include "engine/log.h"
#include "engine/util.h"
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include "query/window_query.h"
#include "topology/aggregate.h"
#include "topology/topology_json.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct eddy_api_s {
    eddy_runtime_t *rt;     /* borrowed */
    struct MHD_Daemon *mhd; /* the server (libmicrohttpd, its own thread pool) */
};

/* One request as the handlers see it. */
typedef struct eddy_http_req_s {
    struct MHD_Connection *conn; /* for query arguments */
    char store[256];             /* the {store} path segment, percent-decoded */
} eddy_http_req_t;

/* The answer a handler builds. */
typedef struct eddy_http_resp_s {
    int status;   /* HTTP status */
    json_t *body; /* JSON body (owned) */
} eddy_http_resp_t;

static void eddy_http_json(eddy_http_resp_t *resp, int status, json_t *body)
{
    resp->status = status;
    json_decref(resp->body);
    resp->body = body;
}

static int eddy_http_error(eddy_http_resp_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int eddy_http_error(eddy_http_resp_t *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *err = json_object();
    json_object_set_new(err, "status", json_integer(status));
    json_object_set_new(err, "message", json_string(msg));
    json_t *body = json_object();
    json_object_set_new(body, "error", err);
    eddy_http_json(resp, status, body);
    return 0;
}

static const char *eddy_http_param(eddy_http_req_t *req, const char *name)
{
    (void)name; /* the only path parameter is {store} */
    return req->store;
}

static const char *eddy_http_query(eddy_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Parses an optional integer query parameter; answers 400 and returns -1 if bad. */
static int eddy_http_query_i64(eddy_http_req_t *req, eddy_http_resp_t *resp, const char *name,
                               int64_t *out)
{
    const char *v = eddy_http_query(req, name);
    if (!v)
        return 0;
    if (!eddy_parse_i64(v, INT64_MIN, INT64_MAX, out)) {
        eddy_http_error(resp, 400, "query parameter '%s' must be epoch milliseconds, got '%s'",
                        name, v);
        return -1;
    }
    return 0;
}

/* --- /api/stores ----------------------------------------------------------------- */

static int get_stores(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_api_t *api = opaque;
    json_t *stores = json_array();
    for (size_t i = 0; i < eddy_topology_store_count(api->rt->topo); i++) {
        const eddy_store_def_t *s = eddy_topology_store(api->rt->topo, i);
        json_t *j = eddy_store_def_to_json(s);
        uint64_t keys = 0, sst = 0;
        eddy_statedb_store_stats(api->rt->db, (int)i, &keys, &sst);
        json_object_set_new(j, "approximate_keys", json_integer((json_int_t)keys));
        json_object_set_new(j, "sst_bytes", json_integer((json_int_t)sst));
        json_array_append_new(stores, j);
    }
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

static int get_windows(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_api_t *api = opaque;
    const char *name = eddy_http_param(req, "store");
    int idx = -1;
    for (size_t i = 0; i < eddy_topology_store_count(api->rt->topo); i++)
        if (!strcmp(eddy_topology_store(api->rt->topo, i)->name, name))
            idx = (int)i;
    if (idx < 0)
        return eddy_http_error(resp, 404, "no store named '%s' (GET /api/stores lists them)", name);
    int64_t from = 0, to = INT64_MAX;
    if (eddy_http_query_i64(req, resp, "from", &from) || eddy_http_query_i64(req, resp, "to", &to))
        return 0; /* the helper answered 400 */
    if (from > to)
        return eddy_http_error(resp, 400, "'from' (%lld) is after 'to' (%lld)", (long long)from,
                               (long long)to);
    const eddy_store_def_t *def = eddy_topology_store(api->rt->topo, (size_t)idx);
    windows_ctx_t w = {.rt = api->rt, .store = idx, .windows = json_array()};
    bool corrupt = false;
    char errstr[256];
    if (eddy_windows_merged(api->rt, idx, from, to, eddy_http_query(req, "key"), add_window, &w,
                            &corrupt, errstr, sizeof(errstr))) {
        json_decref(w.windows);
        return eddy_http_error(resp, 500, "%s", errstr);
    }
    json_t *body = json_object();
    json_object_set_new(body, "store", json_string(def->name));
    json_object_set_new(body, "from", json_integer(from));
    json_object_set_new(body, "to", json_integer(to));
    json_object_set_new(body, "windows", w.windows);
    json_t *parts = json_array();
    int owned = 0;
    for (int p = 0; p < api->rt->source_partitions; p++)
        if (atomic_load(&api->rt->metrics.parts[p].owner)) {
            json_array_append_new(parts, json_integer(p));
            owned++;
        }
    json_object_set_new(body, "partitions", parts);
    json_object_set_new(body, "complete", json_boolean(owned == api->rt->source_partitions));
    if (corrupt)
        json_object_set_new(body, "warning",
                            json_string("some stored windows could not be "
                                        "read and were left out"));
    eddy_http_json(resp, 200, body);
    return 0;
}

/* --- /api/health --------------------------------------------------------------------- */

static int get_health(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_api_t *api = opaque;
    eddy_runtime_t *rt = api->rt;
    json_t *parts = json_array();
    int64_t processed = 0, late = 0, undecodable = 0, committed = 0;
    int owned = 0;
    for (int p = 0; p < rt->source_partitions; p++) {
        eddy_partition_stats_t *ps = &rt->metrics.parts[p];
        int owner = atomic_load(&ps->owner);
        int64_t c = atomic_load(&ps->committed_offset);
        processed += atomic_load(&ps->processed);
        late += atomic_load(&ps->late);
        undecodable += atomic_load(&ps->undecodable);
        if (!owner)
            continue;
        owned++;
        committed += c > 0 ? c : 0;
        json_t *j = json_object();
        json_object_set_new(j, "partition", json_integer(p));
        json_object_set_new(j, "thread", json_integer(owner));
        json_object_set_new(j, "state", json_string("running"));
        json_object_set_new(j, "next_offset", json_integer(atomic_load(&ps->next_offset)));
        json_object_set_new(j, "committed_offset", json_integer(c));
        int64_t st = atomic_load(&ps->stream_time);
        json_object_set_new(j, "stream_time", st == INT64_MIN ? json_null() : json_integer(st));
        json_object_set_new(j, "processed", json_integer(atomic_load(&ps->processed)));
        json_object_set_new(j, "late", json_integer(atomic_load(&ps->late)));
        json_object_set_new(j, "undecodable", json_integer(atomic_load(&ps->undecodable)));
        json_array_append_new(parts, j);
    }
    json_t *totals = json_object();
    json_object_set_new(totals, "processed", json_integer(processed));
    json_object_set_new(totals, "committed_records", json_integer(committed));
    json_object_set_new(totals, "late", json_integer(late));
    json_object_set_new(totals, "undecodable", json_integer(undecodable));
    json_object_set_new(totals, "commits", json_integer(atomic_load(&rt->metrics.commits)));
    json_object_set_new(totals, "rebalances", json_integer(atomic_load(&rt->metrics.rebalances)));
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string(owned ? "running" : "waiting_for_partitions"));
    json_object_set_new(body, "application_id", json_string(rt->cfg->application_id));
    json_object_set_new(body, "source_topic", json_string(rt->source_topic));
    json_object_set_new(body, "source_partitions", json_integer(rt->source_partitions));
    json_object_set_new(body, "threads", json_integer(rt->cfg->num_stream_threads));
    json_object_set_new(body, "partitions", parts);
    json_object_set_new(body, "totals", totals);
    eddy_http_json(resp, 200, body);
    return 0;
}

typedef int(handler_fn)(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque);

/* Percent-decodes src[0..len) into dst (cap bytes); false if it does not fit. */
static bool decode_segment(const char *src, size_t len, char *dst, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n + 1 >= cap)
            return false;
        unsigned v;
        if (src[i] == '%' && i + 2 < len && sscanf(src + i + 1, "%2x", &v) == 1) {
            dst[n++] = (char)v;
            i += 2;
        } else {
            dst[n++] = src[i];
        }
    }
    dst[n] = '\0';
    return true;
}

/* Routes a path to its handler; fills req->store for the windows route. Returns
 * NULL for an unknown path. */
static handler_fn *route(const char *url, eddy_http_req_t *req)
{
    if (!strcmp(url, "/api/stores"))
        return get_stores;
    if (!strcmp(url, "/api/topology"))
        return get_topology;
    if (!strcmp(url, "/api/health") || !strcmp(url, "/api/metrics/health"))
        return get_health;
    static const char prefix[] = "/api/stores/", suffix[] = "/windows";
    size_t len = strlen(url);
    if (!strncmp(url, prefix, sizeof(prefix) - 1) &&
        len > sizeof(prefix) - 1 + sizeof(suffix) - 1 &&
        !strcmp(url + len - (sizeof(suffix) - 1), suffix)) {
        const char *seg = url + sizeof(prefix) - 1;
        size_t seg_len = len - (sizeof(prefix) - 1) - (sizeof(suffix) - 1);
        if (memchr(seg, '/', seg_len) ||
            !decode_segment(seg, seg_len, req->store, sizeof(req->store)))
            return NULL;
        return get_windows;
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    eddy_api_t *api = cls;
    eddy_http_req_t req = {.conn = conn};
    eddy_http_resp_t resp = {.status = 500};
    handler_fn *fn = route(url, &req);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!fn)
        eddy_http_error(&resp, 404, "no such resource: %s", url);
    else if (!get)
        eddy_http_error(&resp, 405, "%s is not allowed here; use GET", method);
    else if (fn(&req, &resp, api) != 0 || !resp.body)
        eddy_http_error(&resp, 500, "the request could not be answered");
    char *text = json_dumps(resp.body, JSON_COMPACT);
    json_decref(resp.body);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (char *)"",
                                        text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (resp.status == 405)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp.status, r);
    MHD_destroy_response(r);
    return ret;
}

eddy_api_t *eddy_api_start(eddy_runtime_t *rt, const char *listen, char *errstr, size_t errstr_size)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    int64_t port;
    if (!colon || (size_t)(colon - listen) >= sizeof(host) ||
        !eddy_parse_i64(colon + 1, 0, 65535, &port)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "application.server '%s' is not HOST:PORT",
                  listen);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!*host || !strcmp(host, "0.0.0.0"))
        addr.sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcmp(host, "localhost"))
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "application.server '%s': '%s' is not an IPv4 address", listen, host);
        return NULL;
    }
    eddy_api_t *api = calloc(1, sizeof(*api));
    api->rt = rt;
    api->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, api, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!api->mhd) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size,
                  "cannot listen on %s (address in use, or not an address of this machine)",
                  listen);
        free(api);
        return NULL;
    }
    eddy_log_info("HTTP API on http://%s (GET /api/stores, /api/health)", listen);
    return api;
}

void eddy_api_stop(eddy_api_t *api)
{
    if (!api)
        return;
    MHD_stop_daemon(api->mhd);
    free(api);
}
