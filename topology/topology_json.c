/*
 * topology_json.c — a topology as JSON, for `eddy topology describe --json` and
 * the HTTP API (see topology_json.h). Built with jansson's reference-stealing
 * setters: a failed allocation anywhere makes the whole result NULL.
 */
#include "topology/topology_json.h"
#include "topology/predicate.h"

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
    static const char *const use_names[] = {"timestamp", "group_by", "numeric", "distinct",
                                            "predicate"};
    json_t *obj = json_object();
    json_t *uses = json_array();
    bool ok = put(obj, "slot", json_integer((json_int_t)i)) &&
              put(obj, "name", json_string(topo->fields[i])) &&
              put(obj, "need", json_string(eddy_field_need_name(topo->field_needs[i])));
    for (unsigned b = 0; ok && b < 5; b++)
        if (topo->field_uses[i] & (1u << b))
            ok = append(uses, json_string(use_names[b]));
    ok = put(obj, "uses", uses) && ok;
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
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
    if (!ok)
        json_decref(root);
    return ok ? root : NULL;
}
