/*
 * view.c — views: named queries over a store, each served at its own HTTP route
 * (eddy.h, docs/topology.md "Views"). The builder call checks what a view says
 * about itself (name, route, key, window range, the `having` syntax);
 * eddy_view_def_check(), run by eddy_topology_finish() after the stores, resolves
 * what it says about the rest (store, aggregates, having fields, share) and
 * refuses views whose answers would be wrong (overlapping hopping windows merged)
 * or unroutable (two views with one route shape, a route of the built-in API).
 * Every failure records a JSON path ("views.NAME.field") for the loader. Built on
 * one thread; read-only once the topology is finished.
 */
#include "engine/util.h"
#include "topology/predicate.h"
#include "topology/topology_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records the JSON path of the next error: views.NAME[.field]. A name with
 * characters other than letters, digits and '_' is quoted, as the loader does. */
static void blame(eddy_topology_t *topo, const char *name, const char *field)
{
    bool plain = isalpha((unsigned char)*name) || *name == '_';
    for (const char *p = name; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    snprintf(topo->err_path, sizeof(topo->err_path), plain ? "views.%s%s%s" : "views[\"%s\"]%s%s",
             name, *field ? "." : "", field);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A route segment: one "{name}" parameter, or literal URL characters. */
static bool literal_segment(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-._~", s[i]))
            return false;
    return n > 0;
}

static bool param_segment(const char *s, size_t n)
{
    if (n < 3 || s[0] != '{' || s[n - 1] != '}' || !(isalpha((unsigned char)s[1]) || s[1] == '_'))
        return false;
    for (size_t i = 2; i + 1 < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* Checks the route's syntax; the parameter's name goes to *param (malloc'ed, or
 * NULL when the route has none). */
static eddy_err_t parse_route(const char *route, char **param, char *errstr, size_t errstr_size)
{
    static const char expected[] =
        "expected a route such as \"/api/metrics/endpoint/{endpoint}\": \"/api/\", then "
        "non-empty segments of letters, digits, '-', '.', '_', '~', or one {parameter}";
    *param = NULL;
    if (strncmp(route, "/api/", 5) != 0 || strlen(route) > 256)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s, got \"%.100s\"", expected,
                         route);
    for (const char *seg = route + 5;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (param_segment(seg, n)) {
            if (*param) {
                free(*param);
                *param = NULL;
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                 "a route has at most one {parameter} (the group key), got "
                                 "\"%.100s\"",
                                 route);
            }
            *param = strndup(seg + 1, n - 2);
        } else if (!literal_segment(seg, n)) {
            free(*param);
            *param = NULL;
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s, got \"%.100s\"", expected,
                             route);
        }
        if (!end)
            break;
        seg = end + 1;
    }
    /* The built-in API owns these (query/api.c); a view there would never be
     * reached or would be refused by the router. */
    static const char *const reserved[] = {"/api/stores", "/api/topology", "/api/health",
                                           "/api/metrics/health"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        size_t n = strlen(reserved[i]);
        if (!strncmp(route, reserved[i], n) && (route[n] == '\0' || route[n] == '/')) {
            free(*param);
            *param = NULL;
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "the route \"%.100s\" belongs to eddy's own API (%s); choose "
                             "another, such as \"/api/metrics/...\"",
                             route, reserved[i]);
        }
    }
    return EDDY_OK;
}

void eddy_view_def_destroy(eddy_view_def_t *view)
{
    if (!view)
        return;
    free(view->name);
    free(view->description);
    free(view->route);
    free(view->param);
    free(view->store_name);
    free(view->key);
    for (size_t i = 0; i < view->n_agg_names; i++)
        free(view->agg_names[i]);
    eddy_predicate_destroy(view->having);
    free(view->share_name);
    free(view);
}

eddy_err_t eddy_topology_add_view(eddy_topology_t *topo, const eddy_view_spec_t *spec, char *errstr,
                                  size_t errstr_size)
{
    const char *name = spec->name ? spec->name : "";
    eddy_view_def_t *view = NULL;
    eddy_err_t err = EDDY_OK;
    char msg[384];
    blame(topo, name, "");
    if (topo->finished) {
        err = eddy_errf(EDDY_ERR_STATE, errstr, errstr_size,
                        "topology \"%s\" is finished and can no longer change", topo->name);
        goto out;
    }
    size_t n = strlen(name);
    bool ok = n > 0 && n <= EDDY_NAME_MAX;
    for (const char *p = name; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-';
    if (!ok) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                        "expected a view name of 1 to %d letters, digits, '_' or '-', got "
                        "\"%.100s\"",
                        EDDY_NAME_MAX, name);
        goto out;
    }
    for (size_t i = 0; i < topo->n_views; i++)
        if (!strcmp(topo->views[i]->name, name)) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "duplicate view name \"%s\"",
                            name);
            goto out;
        }
    if (topo->n_views == EDDY_TOPOLOGY_MAX_VIEWS) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d views",
                        EDDY_TOPOLOGY_MAX_VIEWS);
        goto out;
    }
    if (!(view = calloc(1, sizeof(*view)))) {
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    view->share = -1;
    view->name = strdup(name);
    view->description = dup_or_null(spec->description);

    blame(topo, name, "route");
    if (!spec->route) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "a view needs a route");
        goto out;
    }
    if ((err = parse_route(spec->route, &view->param, errstr, errstr_size)))
        goto out;
    view->route = strdup(spec->route);

    blame(topo, name, "key");
    if (spec->key && spec->key[0] == '{') {
        size_t kn = strlen(spec->key);
        if (!view->param || kn != strlen(view->param) + 2 || spec->key[kn - 1] != '}' ||
            strncmp(spec->key + 1, view->param, kn - 2)) {
            if (view->param)
                err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                "expected \"{%s}\" (the route's parameter) or a literal group "
                                "key, got \"%.100s\"",
                                view->param, spec->key);
            else
                err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                "\"%.100s\" names a route parameter, but the route \"%.100s\" "
                                "has none; add one, such as \"/api/x/{%.*s}\"",
                                spec->key, view->route, (int)(kn > 2 ? kn - 2 : 0), spec->key + 1);
            goto out;
        }
        view->key_from_param = true;
    } else if (spec->key) {
        view->key = strdup(spec->key);
    }
    if (view->param && !view->key_from_param) {
        blame(topo, name, view->key ? "key" : "");
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                        "the route's parameter {%s} is not used: add \"key\": \"{%s}\" to "
                        "select the group key by it",
                        view->param, view->param);
        goto out;
    }

    blame(topo, name, spec->last_ms ? "last" : "windows");
    if ((spec->windows > 0) == (spec->last_ms > 0) || spec->windows < 0 || spec->last_ms < 0) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                        "a view selects its windows by either \"windows\" (how many, the "
                        "current one included) or \"last\" (a duration of event time), not "
                        "both or neither");
        if (!spec->windows && !spec->last_ms)
            blame(topo, name, "");
        goto out;
    }
    if (spec->windows > EDDY_VIEW_MAX_WINDOWS || spec->last_ms > EDDY_DURATION_MAX_MS) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "expected at most %d windows",
                        EDDY_VIEW_MAX_WINDOWS);
        goto out;
    }
    view->windows = spec->windows;
    view->last_ms = spec->last_ms;
    blame(topo, name, "at");
    if (spec->at != EDDY_VIEW_STREAM_TIME && spec->at != EDDY_VIEW_NOW) {
        err =
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "unknown view time %d", (int)spec->at);
        goto out;
    }
    view->at = spec->at;
    blame(topo, name, "combine");
    if (spec->combine != EDDY_VIEW_SERIES && spec->combine != EDDY_VIEW_MERGE) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "unknown view combination %d",
                        (int)spec->combine);
        goto out;
    }
    view->combine = spec->combine;

    blame(topo, name, "aggregates");
    for (const char *const *a = spec->aggregates; a && *a; a++) {
        if (view->n_agg_names == EDDY_MAX_AGGREGATES) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d aggregates",
                            EDDY_MAX_AGGREGATES);
            goto out;
        }
        view->agg_names[view->n_agg_names++] = strdup(*a);
    }
    if (spec->aggregates && !view->n_agg_names) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                        "expected a non-empty list of aggregate names (leave \"aggregates\" out "
                        "to answer all of them)");
        goto out;
    }
    if (spec->having) {
        blame(topo, name, "having");
        if (!(view->having = eddy_predicate_parse(spec->having, msg, sizeof(msg)))) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s", msg);
            goto out;
        }
    }
    if (spec->share) {
        blame(topo, name, "share");
        if (spec->combine != EDDY_VIEW_MERGE) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                            "\"share\" needs \"combine\": \"merge\" (a share of the total over "
                            "keys)");
            goto out;
        }
        view->share_name = strdup(spec->share);
    }
    view->store_name = dup_or_null(spec->store);
    topo->views[topo->n_views++] = view;
    view = NULL;
out:
    eddy_view_def_destroy(view);
    return err;
}

/* Two routes have the same shape when they differ only in parameter names. */
static bool same_shape(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a == '{' && *b == '{') {
            a = strchr(a, '}') + 1;
            b = strchr(b, '}') + 1;
        } else if (*a++ != *b++) {
            return false;
        }
    }
    return !*a && !*b;
}

static void list_aggregates(const eddy_store_def_t *store, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t a = 0; a < store->n_aggregates; a++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", a ? ", " : "",
                 store->aggregates[a].name);
}

eddy_err_t eddy_view_def_check(eddy_topology_t *topo, size_t i, char *errstr, size_t errstr_size)
{
    eddy_view_def_t *view = topo->views[i];
    char list[512];
    blame(topo, view->name, "store");
    if (!view->store_name)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "a view needs a store");
    const eddy_store_def_t *store = eddy_topology_store_by_name(topo, view->store_name);
    if (!store) {
        list[0] = '\0';
        const char *near = NULL;
        size_t best = SIZE_MAX;
        for (size_t s = 0; s < topo->n_stores; s++) {
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", s ? ", " : "",
                     topo->stores[s]->name);
            size_t d = eddy_topology_hint_distance(view->store_name, topo->stores[s]->name);
            if (d < best) {
                best = d;
                near = topo->stores[s]->name;
            }
        }
        if (near)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "no store named \"%.100s\"; did you mean \"%s\"?", view->store_name,
                             near);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "no store named \"%.100s\" (the stores are %s)", view->store_name, list);
    }
    view->store = store;
    list_aggregates(store, list, sizeof(list));

    blame(topo, view->name, "aggregates");
    for (size_t a = 0; a < store->n_aggregates; a++)
        view->agg_selected[a] = view->n_agg_names == 0;
    for (size_t a = 0; a < view->n_agg_names; a++) {
        int idx = eddy_store_def_aggregate_index(store, view->agg_names[a]);
        if (idx < 0)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "store \"%s\" has no aggregate \"%.100s\" (it has %s)", store->name,
                             view->agg_names[a], list);
        view->agg_selected[idx] = true;
    }
    if (view->having) {
        blame(topo, view->name, "having");
        for (size_t f = 0; f < eddy_predicate_field_count(view->having); f++) {
            const char *field = eddy_predicate_field_name(view->having, f);
            if (strcmp(field, "key") && eddy_store_def_aggregate_index(store, field) < 0)
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                 "\"having\" compares \"key\" or aggregates of store \"%s\" (%s), "
                                 "got \"%.100s\"",
                                 store->name, list, field);
        }
    }
    if (view->share_name) {
        blame(topo, view->name, "share");
        int idx = eddy_store_def_aggregate_index(store, view->share_name);
        if (idx < 0)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "store \"%s\" has no aggregate \"%.100s\" (it has %s)", store->name,
                             view->share_name, list);
        eddy_agg_op_t op = store->aggregates[idx].op;
        if (op != EDDY_AGG_COUNT && op != EDDY_AGG_COUNT_IF && op != EDDY_AGG_SUM)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "a share divides a count, count_if or sum by its total over keys, "
                             "but \"%s\" is a %s",
                             view->share_name, eddy_agg_op_name(op));
        view->share = idx;
    }

    const eddy_window_spec_t *w = &store->window;
    int64_t n = eddy_view_def_window_count(view);
    int64_t kept = w->retention_ms / w->advance_ms;
    blame(topo, view->name, view->last_ms ? "last" : "windows");
    if (n > EDDY_VIEW_MAX_WINDOWS || n > (kept > 1 ? kept : 1))
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "store \"%s\" keeps %lld windows (retention / advance), the view asks "
                         "for %lld",
                         store->name, (long long)(kept > 1 ? kept : 1), (long long)n);
    /* Hopping windows overlap: merging two counts an event twice. */
    if (view->combine == EDDY_VIEW_MERGE && w->type == EDDY_WINDOW_HOPPING && n > 1) {
        char size[32];
        eddy_duration_format(w->size_ms, size, sizeof(size));
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "store \"%s\" has hopping windows, which overlap: merging %lld of them "
                         "would count events several times; use \"windows\": 1 (the current "
                         "window already covers the last %s) or \"combine\": \"series\"",
                         store->name, (long long)n, size);
    }
    blame(topo, view->name, "route");
    for (size_t j = 0; j < i; j++)
        if (same_shape(topo->views[j]->route, view->route))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "the route \"%.100s\" is already served by view \"%s\" (\"%.100s\")",
                             view->route, topo->views[j]->name, topo->views[j]->route);
    return EDDY_OK;
}

int64_t eddy_view_def_window_count(const eddy_view_def_t *view)
{
    if (view->windows)
        return view->windows;
    int64_t a = view->store->window.advance_ms;
    return view->last_ms / a + (view->last_ms % a != 0);
}

size_t eddy_topology_view_count(const eddy_topology_t *topo)
{
    return topo->n_views;
}

const eddy_view_def_t *eddy_topology_view(const eddy_topology_t *topo, size_t i)
{
    return i < topo->n_views ? topo->views[i] : NULL;
}
