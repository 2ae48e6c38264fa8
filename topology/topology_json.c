/*
 * topology_json.c — a topology as JSON, for `eddy topology describe --json`,
 * GET /api/topology and GET /api/stores (see topology_json.h).
 */
#include "topology/topology_json.h"

static const char *const op_names[] = {"count", "count_if",   "sum",      "min",  "max",
                                       "mean",  "percentile", "distinct", "ratio"};

json_t *eddy_store_def_to_json(const eddy_store_def_t *s)
{
    json_t *store = json_object();
    json_object_set_new(store, "name", json_string(s->name));
    json_t *group = json_array();
    for (size_t g = 0; g < s->n_group; g++)
        json_array_append_new(group, json_string(s->group_names[g]));
    json_object_set_new(store, "group_by", group);
    json_t *w = json_object();
    json_object_set_new(
        w, "type", json_string(s->window.type == EDDY_WINDOW_TUMBLING ? "tumbling" : "hopping"));
    json_object_set_new(w, "size_ms", json_integer(s->window.size_ms));
    json_object_set_new(w, "advance_ms", json_integer(s->window.advance_ms));
    json_object_set_new(w, "grace_ms", json_integer(s->window.grace_ms));
    json_object_set_new(w, "retention_ms", json_integer(s->window.retention_ms));
    json_object_set_new(store, "window", w);
    json_t *aggs = json_array();
    for (size_t a = 0; a < s->n_aggregates; a++) {
        const eddy_agg_def_t *d = &s->aggregates[a];
        json_t *agg = json_object();
        json_object_set_new(agg, "name", json_string(d->name));
        json_object_set_new(agg, "op", json_string(op_names[d->op]));
        if (d->field_name)
            json_object_set_new(agg, "field", json_string(d->field_name));
        if (d->predicate)
            json_object_set_new(agg, "where", json_string(d->predicate->text));
        if (d->op == EDDY_AGG_PERCENTILE)
            json_object_set_new(agg, "q", json_real(d->q));
        if (d->op == EDDY_AGG_RATIO) {
            json_object_set_new(agg, "numerator", json_string(d->num_name));
            json_object_set_new(agg, "denominator", json_string(d->den_name));
        }
        json_array_append_new(aggs, agg);
    }
    json_object_set_new(store, "aggregates", aggs);
    if (s->sink_topic) {
        json_t *sink = json_object();
        json_object_set_new(sink, "topic", json_string(s->sink_topic));
        json_object_set_new(
            sink, "emit", json_string(s->sink_emit == EDDY_EMIT_ON_CLOSE ? "on_close" : "updates"));
        json_object_set_new(store, "sink", sink);
    }
    return store;
}

json_t *eddy_topology_to_json(const eddy_topology_t *topo)
{
    json_t *root = json_object();
    json_object_set_new(root, "name", json_string(topo->name));
    json_t *sources = json_array();
    for (size_t i = 0; i < topo->n_sources; i++)
        json_array_append_new(sources, json_string(topo->sources[i]));
    json_object_set_new(root, "sources", sources);
    json_t *ts = json_object();
    json_object_set_new(ts, "field", json_string(topo->ts_field_name));
    json_object_set_new(ts, "format",
                        json_string(topo->ts_format == EDDY_TS_EPOCH_MS  ? "epoch_ms"
                                    : topo->ts_format == EDDY_TS_ISO8601 ? "iso8601"
                                                                         : "auto"));
    json_object_set_new(root, "timestamp", ts);
    json_t *stores = json_array();
    for (size_t i = 0; i < topo->n_stores; i++)
        json_array_append_new(stores, eddy_store_def_to_json(topo->stores[i]));
    json_object_set_new(root, "stores", stores);
    json_t *fields = json_array();
    for (size_t i = 0; i < topo->n_fields; i++)
        json_array_append_new(fields, json_string(topo->fields[i]));
    json_object_set_new(root, "fields", fields);
    return root;
}
