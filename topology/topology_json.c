/*
 * topology_json.c — a topology as JSON, for `eddy topology describe --json` and
 * the HTTP API (see topology_json.h). Built with jansson's reference-stealing
 * setters: a failed allocation anywhere makes the whole result NULL.
 */
#include "topology/topology_json.h"
#include "topology/predicate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Sets obj[key] = value, stealing value even on failure; false if either is
 * NULL (out of memory) or the set fails. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    if (!obj) {
        json_decref(value);
        return false;
    }
    return json_object_set_new(obj, key, value) == 0;
}

/* Appends value to arr, stealing it like put(). */
static bool append(json_t *arr, json_t *value)
{
    if (!arr) {
        json_decref(value);
        return false;
    }
    return json_array_append_new(arr, value) == 0;
}

static json_t *window_json(const eddy_window_spec_t *w)
{
    json_t *obj = json_object();
    bool ok = put(obj, "type", json_string(eddy_window_type_name(w->type))) &&
              put(obj, "size_ms", json_integer(w->size_ms)) &&
              put(obj, "advance_ms", json_integer(w->advance_ms)) &&
              put(obj, "grace_ms", json_integer(w->grace_ms)) &&
              put(obj, "retention_ms", json_integer(w->retention_ms));
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}

static json_t *aggregate_json(const eddy_agg_def_t *agg)
{
    json_t *obj = json_object();
    bool ok = put(obj, "name", json_string(agg->name)) &&
              put(obj, "op", json_string(eddy_agg_op_name(agg->op)));
    if (ok && agg->field_name)
        ok = put(obj, "field", json_string(agg->field_name));
    if (ok && agg->op == EDDY_AGG_PERCENTILE)
        ok = put(obj, "q", json_real(agg->q));
    if (ok && agg->predicate)
        ok = put(obj, "where", json_string(eddy_predicate_text(agg->predicate)));
    if (ok && agg->op == EDDY_AGG_RATIO)
        ok = put(obj, "numerator", json_string(agg->num_name)) &&
             put(obj, "denominator", json_string(agg->den_name));
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}

json_t *eddy_store_def_to_json(const eddy_store_def_t *store)
{
    json_t *obj = json_object();
    bool ok = put(obj, "name", json_string(store->name));
    if (ok && store->description)
        ok = put(obj, "description", json_string(store->description));
    json_t *group = json_array();
    for (size_t g = 0; ok && g < store->n_group; g++)
        ok = append(group, json_string(store->group_names[g]));
    ok = put(obj, "group_by", group) && ok;
    ok = ok && put(obj, "window", window_json(&store->window));
    json_t *aggs = json_array();
    for (size_t a = 0; ok && a < store->n_aggregates; a++)
        ok = append(aggs, aggregate_json(&store->aggregates[a]));
    ok = put(obj, "aggregates", aggs) && ok;
    if (ok && store->sink_topic) {
        json_t *sink = json_object();
        ok = put(sink, "topic", json_string(store->sink_topic)) &&
             put(sink, "emit", json_string(eddy_emit_name(store->sink_emit)));
        ok = put(obj, "sink", sink) && ok;
    } else if (ok) {
        ok = put(obj, "sink", json_null());
    }
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}

static json_t *field_json(const eddy_topology_t *topo, size_t i)
{
    static const char *const use_names[EDDY_FIELD_USE_COUNT] = {"timestamp", "group_by", "numeric",
                                                                "distinct", "predicate"};
    const eddy_field_rule_t *r = &topo->field_rules[i];
    json_t *obj = json_object();
    json_t *uses = json_array();
    bool ok = put(obj, "slot", json_integer((json_int_t)i)) &&
              put(obj, "name", json_string(topo->fields[i])) &&
              put(obj, "need", json_string(eddy_field_type_name(r->type))) &&
              put(obj, "required", json_boolean(r->required));
    if (ok && r->coerce)
        ok = put(obj, "coerce", json_true());
    if (ok && isfinite(r->min))
        ok = put(obj, "min", json_real(r->min));
    if (ok && isfinite(r->max))
        ok = put(obj, "max", json_real(r->max));
    for (unsigned b = 0; ok && b < EDDY_FIELD_USE_COUNT; b++)
        if (topo->field_uses[i] & (1u << b))
            ok = append(uses, json_string(use_names[b]));
    ok = put(obj, "uses", uses) && ok;
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}

json_t *eddy_view_def_to_json(const eddy_view_def_t *view)
{
    static const char *const ats[] = {"stream_time", "now"};
    static const char *const combines[] = {"series", "merge"};
    const eddy_store_def_t *store = view->store;
    json_t *obj = json_object();
    bool ok = put(obj, "name", json_string(view->name));
    if (ok && view->description)
        ok = put(obj, "description", json_string(view->description));
    ok = ok && put(obj, "route", json_string(view->route)) &&
         put(obj, "store", json_string(view->store_name));
    if (ok && view->key_from_param) {
        char key[EDDY_NAME_MAX + 8];
        snprintf(key, sizeof(key), "{%s}", view->param);
        ok = put(obj, "key", json_string(key));
    } else if (ok) {
        ok = put(obj, "key", view->key ? json_string(view->key) : json_null());
    }
    if (ok && view->windows)
        ok = put(obj, "windows", json_integer(view->windows));
    if (ok && view->last_ms)
        ok = put(obj, "last_ms", json_integer(view->last_ms));
    ok = ok && put(obj, "at", json_string(ats[view->at])) &&
         put(obj, "combine", json_string(combines[view->combine]));
    json_t *aggs = json_array();
    for (size_t a = 0; ok && store && a < store->n_aggregates; a++)
        if (view->agg_selected[a])
            ok = append(aggs, json_string(store->aggregates[a].name));
    ok = put(obj, "aggregates", aggs) && ok;
    ok = ok && put(obj, "having",
                   view->having ? json_string(eddy_predicate_text(view->having)) : json_null());
    ok = ok && put(obj, "share", view->share_name ? json_string(view->share_name) : json_null());
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}

/* A node of the graph: {"id": "KIND:NAME", "kind": KIND, "name": NAME}. */
static json_t *node_json(const char *kind, const char *name)
{
    char id[EDDY_TOPIC_NAME_MAX + 16];
    snprintf(id, sizeof(id), "%s:%s", kind, name);
    json_t *obj = json_object();
    bool ok = put(obj, "id", json_string(id)) && put(obj, "kind", json_string(kind)) &&
              put(obj, "name", json_string(name));
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}

static bool edge(json_t *edges, const char *from_kind, const char *from, const char *to_kind,
                 const char *to)
{
    char a[EDDY_TOPIC_NAME_MAX + 16], b[EDDY_TOPIC_NAME_MAX + 16];
    snprintf(a, sizeof(a), "%s:%s", from_kind, from);
    snprintf(b, sizeof(b), "%s:%s", to_kind, to);
    json_t *obj = json_object();
    bool ok = put(obj, "from", json_string(a)) && put(obj, "to", json_string(b));
    if (!ok)
        json_decref(obj);
    return ok && append(edges, obj);
}

json_t *eddy_topology_graph_json(const eddy_topology_t *topo)
{
    json_t *graph = json_object(), *nodes = json_array(), *edges = json_array();
    bool ok = graph && nodes && edges;
    for (size_t i = 0; ok && i < topo->n_sources; i++)
        ok = append(nodes, node_json("source", topo->sources[i]));
    for (size_t s = 0; ok && s < topo->n_stores; s++) {
        const eddy_store_def_t *store = topo->stores[s];
        ok = append(nodes, node_json("store", store->name));
        for (size_t i = 0; ok && i < topo->n_sources; i++)
            ok = edge(edges, "source", topo->sources[i], "store", store->name);
        if (ok && store->sink_topic) {
            /* Several stores may share a sink: one node per topic. */
            bool seen = false;
            for (size_t p = 0; p < s && !seen; p++)
                seen = topo->stores[p]->sink_topic &&
                       !strcmp(topo->stores[p]->sink_topic, store->sink_topic);
            if (!seen)
                ok = append(nodes, node_json("sink", store->sink_topic));
            ok = ok && edge(edges, "store", store->name, "sink", store->sink_topic);
        }
    }
    for (size_t v = 0; ok && v < topo->n_views; v++) {
        ok = append(nodes, node_json("view", topo->views[v]->name)) &&
             edge(edges, "store", topo->views[v]->store_name, "view", topo->views[v]->name);
    }
    ok = put(graph, "nodes", nodes) && put(graph, "edges", edges) && ok;
    if (!ok)
        json_decref(graph);
    return ok ? graph : NULL;
}

json_t *eddy_topology_to_json(const eddy_topology_t *topo)
{
    json_t *root = json_object();
    bool ok = put(root, "name", json_string(topo->name));
    if (ok && topo->description)
        ok = put(root, "description", json_string(topo->description));
    json_t *source = json_object(), *topics = json_array(), *ts = json_object();
    for (size_t i = 0; ok && i < topo->n_sources; i++)
        ok = append(topics, json_string(topo->sources[i]));
    ok = put(source, "topics", topics) && ok;
    ok = ok && put(source, "format", json_string("json"));
    ok = put(ts, "field", json_string(topo->ts_field_name)) && ok;
    ok = ok && put(ts, "format", json_string(eddy_ts_format_name(topo->ts_format)));
    ok = ok && put(ts, "max_future_ms",
                   topo->ts_max_future_ms < 0 ? json_null() : json_integer(topo->ts_max_future_ms));
    ok = put(source, "timestamp", ts) && ok;
    ok = put(root, "source", source) && ok;
    json_t *stores = json_array();
    for (size_t i = 0; ok && i < topo->n_stores; i++)
        ok = append(stores, eddy_store_def_to_json(topo->stores[i]));
    ok = put(root, "stores", stores) && ok;
    json_t *fields = json_array();
    for (size_t i = 0; ok && i < topo->n_fields; i++)
        ok = append(fields, field_json(topo, i));
    ok = put(root, "fields", fields) && ok;
    json_t *views = json_array();
    for (size_t i = 0; ok && i < topo->n_views; i++)
        ok = append(views, eddy_view_def_to_json(topo->views[i]));
    ok = put(root, "views", views) && ok;
    ok = ok && put(root, "graph", eddy_topology_graph_json(topo));
    if (!ok)
        json_decref(root);
    return ok ? root : NULL;
}
