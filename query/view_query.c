/*
 * view_query.c — the answers of views and of the per-key series (view_query.h).
 *
 * A view's windows are chosen back from a reference time T (the committed stream
 * time, the wall clock, or ?at=): the CURRENT window is the earliest-starting
 * window that holds T (for tumbling windows the one holding T; for hopping ones
 * the one ending first, which holds the most of the recent past), and a view of
 * N windows reads the starts [current - (N-1) * advance, current]. Everything is
 * read through eddy_windows_cluster() (every partition, from this instance and
 * its peers), once per answer; a merge view then folds
 * each key's windows into one aggregate state, which is exact because aggregates
 * merge (topology/aggregate.h) and the view check refused overlapping windows.
 * Handlers run on the HTTP threads, concurrently, and only read the runtime.
 */
#include "query/view_query.h"
#include "query/answer_cache.h"
#include "query/cluster_query.h"
#include "engine/util.h"
#include "query/window_query.h"
#include "query/ws.h"
#include "stores/record_cache.h"
#include "topology/aggregate.h"
#include "topology/predicate.h"

#include <stdlib.h>
#include <string.h>

typedef struct view_route_s {
    eddy_runtime_t *rt;           /* borrowed */
    const eddy_view_def_t *view;  /* borrowed from the topology */
    eddy_answer_cache_t *answers; /* shared by the routes (answer_cache.h) */
} view_route_t;

struct eddy_view_query_s {
    eddy_runtime_t *rt;           /* borrowed */
    eddy_answer_cache_t *answers; /* answers until the state changes; NULL: none */
    view_route_t series;          /* GET /api/stores/{store}/keys/{key} */
    view_route_t *routes;         /* one per view */
    size_t n_routes;              /* how many */
};

/* floor(a / b) for b > 0, also for negative a. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && a < 0);
}

/* Removes from a window or row object the aggregates the view does not answer. */
static void drop_unselected(const eddy_view_def_t *view, json_t *obj)
{
    for (size_t a = 0; a < view->store->n_aggregates; a++)
        if (!view->agg_selected[a])
            json_object_del(obj, view->store->aggregates[a].name);
    /* "degraded" names only the percentiles the view shows. */
    json_t *degraded = json_object_get(obj, EDDY_AGG_DEGRADED);
    for (size_t i = json_array_size(degraded); i-- > 0;)
        if (!json_object_get(obj, json_string_value(json_array_get(degraded, i))))
            json_array_remove(degraded, i);
    if (degraded && json_array_size(degraded) == 0)
        json_object_del(obj, EDDY_AGG_DEGRADED);
}

/* The view's `having` over a row (key and every aggregate of the store). */
static bool having(const eddy_view_def_t *view, const json_t *row)
{
    if (!view->having)
        return true;
    eddy_value_t values[EDDY_PREDICATE_MAX_TERMS * 2] = {{0}};
    size_t n = eddy_predicate_field_count(view->having);
    for (size_t i = 0; i < n && i < sizeof(values) / sizeof(values[0]); i++) {
        json_t *v = json_object_get(row, eddy_predicate_field_name(view->having, i));
        if (json_is_number(v))
            values[i] = (eddy_value_t){.type = EDDY_VALUE_NUMBER, .num = json_number_value(v)};
        else if (json_is_string(v))
            values[i] = (eddy_value_t){.type = EDDY_VALUE_STRING,
                                       .str = json_string_value(v),
                                       .len = json_string_length(v)};
        else if (json_is_boolean(v))
            values[i] = (eddy_value_t){.type = EDDY_VALUE_BOOL, .num = json_is_true(v)};
        else if (json_is_null(v))
            values[i].type = EDDY_VALUE_NULL;
    }
    return eddy_predicate_eval(view->having, values);
}

/* --- reading windows -------------------------------------------------------------- */

typedef struct read_ctx_s {
    eddy_runtime_t *rt;              /* the runtime */
    const eddy_view_def_t *view;     /* NULL for the key series */
    int store;                       /* store index */
    const eddy_agg_layout_t *layout; /* its layout */
    json_t *windows;                 /* series: the windows, oldest first */
    eddy_cache_t *keys;              /* merge: key -> merged eddy_agg_t (window start 0) */
    bool nomem;                      /* an allocation failed */
} read_ctx_t;

static void free_agg(void *state, void *opaque)
{
    (void)opaque;
    eddy_agg_destroy(state);
}

static void on_window(int64_t start, const char *key, size_t key_len, const eddy_agg_t *agg,
                      void *opaque)
{
    read_ctx_t *r = opaque;
    if (r->keys) {
        eddy_cache_entry_t *e = eddy_cache_find(r->keys, 0, key, key_len);
        if (!e) {
            eddy_agg_t *state = eddy_agg_new(r->layout);
            if (!state || !(e = eddy_cache_insert(r->keys, 0, key, key_len, state))) {
                r->nomem = true; /* (the cache freed state) */
                return;
            }
        }
        if (eddy_agg_merge(r->layout, e->state, agg))
            r->nomem = true;
        return;
    }
    json_t *w = eddy_window_to_json(r->rt, r->store, start, key, key_len, agg);
    if (r->view && !having(r->view, w)) {
        json_decref(w);
        return;
    }
    if (r->view)
        drop_unselected(r->view, w);
    json_array_append_new(r->windows, w);
}

/* --- merge answers ------------------------------------------------------------------ */

/* Sets "keys" (one row per key, by key, those `having` keeps) and "total" (their
 * merge) on body; with a share, each row's share of the total. */
static eddy_err_t merge_answer(read_ctx_t *r, json_t *body)
{
    const eddy_view_def_t *view = r->view;
    size_t n = 0; /* every key at start 0: sorted by key */
    eddy_cache_entry_t **entries = eddy_cache_sorted(r->keys, &n);
    eddy_agg_t *total = eddy_agg_new(r->layout);
    if (!entries || !total) {
        free(entries);
        eddy_agg_destroy(total);
        return EDDY_ERR_NOMEM;
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_object();
        json_object_set_new(row, "key", json_stringn(entries[i]->key, entries[i]->key_len));
        eddy_agg_to_json(r->layout, entries[i]->state, row);
        if (!having(view, row)) {
            json_decref(row);
            continue;
        }
        eddy_agg_merge(r->layout, total, entries[i]->state);
        json_array_append_new(rows, row);
    }
    json_t *tot = json_object();
    eddy_agg_to_json(r->layout, total, tot);
    if (view->share >= 0) {
        const char *name = view->store->aggregates[view->share].name;
        double sum = json_number_value(json_object_get(tot, name));
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            double v = json_number_value(json_object_get(row, name));
            json_object_set_new(row, "share", sum > 0 ? json_real(v / sum) : json_null());
        }
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) drop_unselected(view, row);
    drop_unselected(view, tot);
    json_object_set_new(body, "keys", rows);
    json_object_set_new(body, "total", tot);
    free(entries);
    eddy_agg_destroy(total);
    return EDDY_OK;
}

/* ?local=true: only this instance's partitions (as for the windows answer). */
static int local_param(eddy_http_req_t *req, eddy_http_resp_t *resp, bool *local)
{
    const char *v = eddy_http_query(req, "local");
    if (v && strcmp(v, "true") && strcmp(v, "false")) {
        eddy_http_error(resp, 400, "'local' must be true or false");
        return -1;
    }
    *local = v && !strcmp(v, "true");
    return 0;
}

/* --- GET <view route> --------------------------------------------------------------- */

/* The answer of `view` over n windows back from `at` (INT64_MIN: nothing
 * processed yet), for group key `key`; NULL with *code and err filled on failure. */
static json_t *view_body(const view_route_t *vr, int64_t n, int64_t at, const char *at_source,
                         const char *key, bool local, eddy_err_t *code, char *err, size_t errsz)
{
    *code = EDDY_OK;
    const eddy_view_def_t *view = vr->view;
    eddy_runtime_t *rt = vr->rt;
    const eddy_window_spec_t *w = &view->store->window;
    const int store = (int)view->store->index;
    json_t *body = json_object();
    json_object_set_new(body, "view", json_string(view->name));
    json_object_set_new(body, "store", json_string(view->store->name));
    json_object_set_new(body, "key", key ? json_string(key) : json_null());
    json_object_set_new(body, "at_source", json_string(at_source));
    read_ctx_t r = {.rt = rt,
                    .view = view,
                    .store = store,
                    .layout = rt->layouts[store],
                    .windows = json_array()};
    if (view->combine == EDDY_VIEW_MERGE)
        r.keys = eddy_cache_new(free_agg, NULL);
    bool corrupt = false;
    eddy_coverage_t cov = {0};
    int64_t current = 0;
    if (at != INT64_MIN) {
        /* The earliest-starting window holding `at`: the first multiple of advance
         * above at - size. */
        current = floor_div(at - w->size_ms, w->advance_ms) * w->advance_ms + w->advance_ms;
        int64_t from = current - (n - 1) * w->advance_ms;
        char errstr[512];
        eddy_err_t rerr = EDDY_ERR_NOMEM;
        if ((view->combine == EDDY_VIEW_MERGE && !r.keys) ||
            (rerr = eddy_windows_cluster(rt, store, from, current + 1, key, local, on_window, &r,
                                         &cov, &corrupt, errstr, sizeof(errstr))) ||
            r.nomem) {
            eddy_coverage_free(&cov);
            json_decref(body);
            json_decref(r.windows);
            eddy_cache_destroy(r.keys);
            *code = rerr ? rerr : EDDY_ERR_NOMEM;
            eddy_errf(*code, err, errsz, "view '%s': %s", view->name,
                      rerr == EDDY_ERR_NOMEM || r.nomem ? "out of memory" : errstr);
            return NULL;
        }
        json_object_set_new(body, "at", json_integer(at));
        json_object_set_new(body, "from", json_integer(from));
        json_object_set_new(body, "to", json_integer(current + 1));
        json_object_set_new(body, "current_start", json_integer(current));
    } else {
        /* Nothing processed yet: no stream time, no windows. */
        json_object_set_new(body, "at", json_null());
        json_object_set_new(body, "from", json_null());
        json_object_set_new(body, "to", json_null());
        json_object_set_new(body, "current_start", json_null());
    }
    json_object_set_new(body, "window_count", json_integer(n));
    json_object_set_new(body, "window_size_ms", json_integer(w->size_ms));
    if (view->combine == EDDY_VIEW_MERGE) {
        if (merge_answer(&r, body)) {
            eddy_coverage_free(&cov);
            json_decref(body);
            json_decref(r.windows);
            eddy_cache_destroy(r.keys);
            *code = eddy_errf(EDDY_ERR_NOMEM, err, errsz, "view '%s': out of memory", view->name);
            return NULL;
        }
        json_decref(r.windows);
    } else {
        /* The current window: one key's (or null), or every key's. */
        json_t *cur = key ? json_null() : json_array();
        size_t i;
        json_t *win;
        json_array_foreach(r.windows, i, win)
        {
            if (at == INT64_MIN || json_integer_value(json_object_get(win, "start")) != current)
                continue;
            if (key) {
                json_decref(cur);
                cur = json_incref(win);
            } else {
                json_array_append(cur, win);
            }
        }
        json_object_set_new(body, "current", cur);
        json_object_set_new(body, "windows", r.windows);
    }
    eddy_cache_destroy(r.keys);
    if (at == INT64_MIN)
        eddy_windows_coverage_json(rt, body); /* nothing read: local coverage */
    else
        eddy_coverage_json(&cov, body);
    eddy_coverage_free(&cov);
    if (corrupt)
        json_object_set_new(body, "warning",
                            json_string("some stored windows could not be read and were left out"));
    return body;
}

/* The most windows a request may ask of `view` (?windows=, "windows"). */
static int64_t view_max_windows(const eddy_view_def_t *view)
{
    const eddy_window_spec_t *w = &view->store->window;
    int64_t kept = w->retention_ms / w->advance_ms;
    if (view->combine == EDDY_VIEW_MERGE && w->type == EDDY_WINDOW_HOPPING)
        return 1; /* hopping windows overlap: merging two would count events twice */
    return kept < 1 ? 1 : kept > EDDY_VIEW_MAX_WINDOWS ? EDDY_VIEW_MAX_WINDOWS : kept;
}

/* The reference time of a view's answer, unless the request names one. */
static int64_t view_at(const view_route_t *vr, const char **source)
{
    *source = vr->view->at == EDDY_VIEW_NOW ? "now" : "stream_time";
    return vr->view->at == EDDY_VIEW_NOW ? eddy_now_ms() : eddy_windows_stream_time(vr->rt);
}

static int get_view(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    view_route_t *vr = opaque;
    const eddy_view_def_t *view = vr->view;
    const uint64_t gen = eddy_answer_generation(vr->rt); /* before the state is read */
    const int64_t at_ns = eddy_mono_ns();
    int64_t n = eddy_view_def_window_count(view);
    if (eddy_http_query_i64(req, resp, "windows", NULL, 1, view_max_windows(view), &n))
        return 0;
    const char *at_source;
    int64_t at = view_at(vr, &at_source);
    if (eddy_http_query(req, "at")) {
        if (eddy_http_query_i64(req, resp, "at", "epoch milliseconds", -EDDY_EVENT_TIME_ABS_MAX,
                                EDDY_EVENT_TIME_ABS_MAX, &at))
            return 0;
        at_source = "query";
    }
    const char *key = view->key_from_param ? eddy_http_param(req, view->param) : view->key;
    bool local = false;
    if (local_param(req, resp, &local))
        return 0;

    char ck[320];
    int len = snprintf(ck, sizeof(ck), "view|%s|%lld|%lld|%s|%d|%s", view->name, (long long)n,
                       (long long)at, at_source, local, key ? key : "\x01");
    bool cacheable = len > 0 && (size_t)len < sizeof(ck);
    if (cacheable && eddy_answer_cache_get(vr->answers, ck, gen, resp))
        return 0;
    char err[768];
    eddy_err_t code = EDDY_OK;
    json_t *body = view_body(vr, n, at, at_source, key, local, &code, err, sizeof(err));
    if (!body)
        return eddy_windows_error(resp, code, err);
    return eddy_answer_cache_put_json(cacheable ? vr->answers : NULL, ck, gen, at_ns, body, err,
                                      resp);
}

/* --- GET /api/stores/{store}/keys/{key} ------------------------------------------------ */

static int get_key_series(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    const view_route_t *vr = opaque;
    eddy_runtime_t *rt = vr->rt;
    const uint64_t gen = eddy_answer_generation(rt); /* before the state is read */
    const int64_t at_ns = eddy_mono_ns();
    const char *name = eddy_http_param(req, "store");
    const char *key = eddy_http_param(req, "key");
    const eddy_store_def_t *def = eddy_topology_store_by_name(rt->topo, name);
    if (!def)
        return eddy_http_error(resp, 404, "no store named '%s' (GET /api/stores lists them)", name);
    int64_t from = 0, to = INT64_MAX;
    if (eddy_http_query_i64(req, resp, "from", "epoch milliseconds", INT64_MIN, INT64_MAX, &from) ||
        eddy_http_query_i64(req, resp, "to", "epoch milliseconds", INT64_MIN, INT64_MAX, &to))
        return 0;
    if (from > to)
        return eddy_http_error(resp, 400, "'from' (%lld) is after 'to' (%lld)", (long long)from,
                               (long long)to);
    bool local = false;
    if (local_param(req, resp, &local))
        return 0;
    char ck[320];
    int len = snprintf(ck, sizeof(ck), "series|%s|%lld|%lld|%d|%s", def->name, (long long)from,
                       (long long)to, local, key);
    bool cacheable = len > 0 && (size_t)len < sizeof(ck);
    if (cacheable && eddy_answer_cache_get(vr->answers, ck, gen, resp))
        return 0;
    const int store = (int)def->index;
    read_ctx_t r = {
        .rt = rt, .store = store, .layout = rt->layouts[store], .windows = json_array()};
    bool corrupt = false;
    eddy_coverage_t cov = {0};
    char errstr[512];
    eddy_err_t err = eddy_windows_cluster(rt, store, from, to, key, local, on_window, &r, &cov,
                                          &corrupt, errstr, sizeof(errstr));
    if (err) {
        eddy_coverage_free(&cov);
        json_decref(r.windows);
        return eddy_windows_error(resp, err, errstr);
    }
    json_t *body = json_object();
    json_object_set_new(body, "store", json_string(def->name));
    json_object_set_new(body, "key", json_string(key));
    json_object_set_new(body, "from", json_integer(from));
    json_object_set_new(body, "to", json_integer(to));
    json_object_set_new(body, "windows", r.windows);
    eddy_coverage_json(&cov, body);
    eddy_coverage_free(&cov);
    if (corrupt)
        json_object_set_new(body, "warning",
                            json_string("some stored windows could not be read and were left out"));
    return eddy_answer_cache_put_json(cacheable ? vr->answers : NULL, ck, gen, at_ns, body,
                                      "out of memory", resp);
}

/* WebSocket subscriptions "view:NAME" with params {"key", "windows", "at",
 * "local"}: the same answer as GET <route>. */
static json_t *ws_view_source(void *opaque, const char *name, json_t *params, char *err,
                              size_t errsz)
{
    const eddy_view_query_t *vq = opaque;
    const view_route_t *vr = NULL;
    for (size_t i = 0; i < vq->n_routes && !vr; i++)
        if (!strcmp(vq->routes[i].view->name, name))
            vr = &vq->routes[i];
    if (!vr) {
        snprintf(err, errsz, "no view named '%s' (GET /api/topology lists them)", name);
        return NULL;
    }
    const eddy_view_def_t *view = vr->view;
    json_t *jkey = json_object_get(params, "key"), *jn = json_object_get(params, "windows");
    json_t *jat = json_object_get(params, "at"), *jlocal = json_object_get(params, "local");
    const char *key = view->key;
    if (view->key_from_param) {
        if (!json_is_string(jkey)) {
            snprintf(err, errsz, "view '%s' needs \"key\" (its route's {%s})", name, view->param);
            return NULL;
        }
        key = json_string_value(jkey);
    }
    int64_t n = eddy_view_def_window_count(view);
    if (jn && (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
               json_integer_value(jn) > view_max_windows(view))) {
        snprintf(err, errsz, "\"windows\" must be an integer from 1 to %lld",
                 (long long)view_max_windows(view));
        return NULL;
    }
    if (jn)
        n = json_integer_value(jn);
    if ((jat && !json_is_integer(jat)) || (jlocal && !json_is_boolean(jlocal))) {
        snprintf(err, errsz, "\"at\" must be epoch milliseconds and \"local\" a boolean");
        return NULL;
    }
    const char *at_source;
    int64_t at = view_at(vr, &at_source);
    if (jat) {
        at = json_integer_value(jat);
        at_source = "query";
    }
    eddy_err_t code = EDDY_OK;
    return view_body(vr, n, at, at_source, key, json_is_true(jlocal), &code, err, errsz);
}

void eddy_view_query_ws(eddy_view_query_t *vq, eddy_ws_t *ws)
{
    if (vq && ws)
        eddy_ws_source(ws, "view", ws_view_source, vq);
}

eddy_view_query_t *eddy_view_query_new(eddy_http_t *http, eddy_runtime_t *rt, char *errstr,
                                       size_t errstr_size)
{
    const size_t n = eddy_topology_view_count(rt->topo);
    eddy_view_query_t *vq = calloc(1, sizeof(*vq));
    if (vq)
        vq->routes = calloc(n + 1, sizeof(*vq->routes));
    if (!vq || !vq->routes) {
        free(vq);
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    vq->rt = rt;
    vq->n_routes = n;
    vq->answers = eddy_answer_cache_new(rt); /* NULL: answers are not cached */
    vq->series = (view_route_t){.rt = rt, .answers = vq->answers};
    if (eddy_http_route(http, "GET", "/api/stores/{store}/keys/{key}", get_key_series,
                        &vq->series)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "cannot route GET /api/stores/{store}/keys/{key}");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        vq->routes[i] = (view_route_t){
            .rt = rt, .view = eddy_topology_view(rt->topo, i), .answers = vq->answers};
        if (eddy_http_route(http, "GET", vq->routes[i].view->route, get_view, &vq->routes[i])) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "view '%s': cannot route GET %s (another route of the same shape?)",
                      vq->routes[i].view->name, vq->routes[i].view->route);
            goto fail;
        }
    }
    return vq;
fail:
    eddy_view_query_destroy(vq);
    return NULL;
}

void eddy_view_query_destroy(eddy_view_query_t *vq)
{
    if (!vq)
        return;
    eddy_answer_cache_destroy(vq->answers);
    free(vq->routes);
    free(vq);
}
